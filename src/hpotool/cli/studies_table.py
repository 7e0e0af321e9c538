"""The `hpotool studies` table: its layouts (a study a line, cells stacked, a section per study) and the
storage lines under it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpotool.cli.terminal import plain_table
from hpotool.formatting import format_value

if TYPE_CHECKING:
    from rich.table import Table


def _objectives(row: dict[str, Any]) -> list[str]:
    """'maximize val_accuracy', one per objective; the directions alone when no metric is stored (a
    plain Optuna study)."""
    metrics = row["metric"].split(", ") if row["metric"] else []
    if len(metrics) != len(row["directions"]):
        return [", ".join(row["directions"]), *([row["metric"]] if row["metric"] else [])]
    return [f"{d} {m}" for d, m in zip(row["directions"], metrics, strict=True)]


# The fewest characters of a study name a line of the `studies` table shows before it folds.
NAME_MIN = 10


def studies_table(rows: list[dict[str, Any]], *, stacked: tuple[str, ...] = ()) -> Table:
    """The `studies` table. Cells of the `stacked` columns go on several lines: one trial state per line,
    one objective per line (a lone objective's direction above its metric), the date above the time
    (and "last" above "activity"). Only a name too long for the terminal folds: every other cell stays
    whole."""
    table = plain_table("studies")
    for col in ("name", "objective", "trials", "best", "last activity"):
        header = col.replace(" ", "\n") if col in stacked else col
        table.add_column(header, overflow="fold", no_wrap=col != "name")

    def join(col: str, parts: list[str]) -> str:
        return ("\n" if col in stacked else ", ").join(parts)

    for r in rows:
        objectives = _objectives(r)
        if "objective" in stacked and len(objectives) == 1:
            objectives = objectives[0].split(" ", 1)
        last = (r["last_activity"] or "-").replace("T", " ")[:16]
        table.add_row(
            r["name"],
            join("objective", objectives),
            join("trials", [f"{k} {v}" for k, v in r["trials"].items()] or ["none"]),
            _best_cell(r, stacked="best" in stacked),
            last.replace(" ", "\n") if "last activity" in stacked else last,
        )
    return table


def studies_records(rows: list[dict[str, Any]]) -> Table:
    """The `studies` table for a terminal too narrow for a study a line (60 columns, 40): a section of
    lines per study, each value beside its key (`last activity  2026-12-06 09:02`), one trial state and
    one objective a line. The values wrap at their spaces; only a word wider than the values' column (a
    long study name) folds: in a table of a study a line, every cell wrapped at 60 columns, dates
    mid-number (`2026-12-0` over `6`)."""
    table = plain_table("studies", show_header=False)
    table.add_column(no_wrap=True)  # the keys, whole
    table.add_column()
    for r in rows:
        cells = {
            "name": r["name"],
            "objective": "\n".join(_objectives(r)),
            "trials": "\n".join(f"{k} {v}" for k, v in r["trials"].items()) or "none",
            "best": _best_cell(r, stacked=False),
            "last activity": (r["last_activity"] or "-").replace("T", " ")[:16],
        }
        for i, (key, value) in enumerate(cells.items()):
            table.add_row(key, value, end_section=i == len(cells) - 1)
    return table


def _best_cell(row: dict[str, Any], *, stacked: bool) -> str:
    """The `studies` table's best value; with several objectives, how many trials make the Pareto front
    (`stacked`: "Pareto" above the count, no wider than the column's "0.9805": at 80 columns a wider cell
    folded the names)."""
    if row["best_value"] is not None:
        return format_value(row["best_value"])
    if not row.get("pareto_trials"):
        return "-"
    return f"Pareto\n{row['pareto_trials']}" if stacked else f"Pareto: {row['pareto_trials']}"


def storage_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Where the listed studies are stored, for the lines under the `studies` table: each storage URL
    once (a column repeated it on every row and folded it at 80 columns), and studies in their default
    file `sqlite:///studies/<name>.db` as one line."""
    from shlex import quote

    from hpotool.storage_url import default_storage_url

    # Quoted where a shell needs it (a path with a space, a Redis URL's &), so each pastes as --storage.
    if len({r["storage"] for r in rows}) == 1:
        return [f"storage: {quote(rows[0]['storage'])}"]
    in_default = [r["storage"] == default_storage_url(r["name"]) for r in rows]
    several_default = sum(in_default) >= 2
    elsewhere: dict[str, list[str]] = {}
    for r, default in zip(rows, in_default, strict=True):
        if not (default and several_default):
            elsewhere.setdefault(r["storage"], []).append(r["name"])
    lines = [f"storage: {quote(url)} for {', '.join(names)}" for url, names in elsewhere.items()]
    if several_default:
        others = "each" if not elsewhere else "the others"
        lines.append(f"storage: {default_storage_url('<name>')} for {others}")
    return lines
