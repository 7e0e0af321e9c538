"""What `train` and `train-from-best` print once training is over: a run's metrics and files, and the final
runs with their ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpotool.cli.terminal import escape, out_console, plain_table
from hpotool.formatting import counted, format_value
from hpotool.progress import duration


def print_run(run: Any) -> None:
    """A trained run: its folder, then its metrics, epochs, seed, device, wall time and saved files."""
    # The folder whole, on its line above the table: as the table's title it folded mid-name at the table's
    # width (its cells', 67 columns) however wide the terminal, and pasted as two.
    out_console().print(escape(f"run {run.folder}"), soft_wrap=True)
    table = plain_table("", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in run.metrics.items():
        table.add_row(k, format_value(v))
    table.add_row("epochs", str(run.epochs_run))
    table.add_row("seed", str(run.config.seed))
    table.add_row("device", run.device)
    table.add_row("wall time", duration(run.seconds))
    table.add_row("saved", ", ".join(run.files))
    out_console().print(table)


def print_final(summary: dict[str, Any]) -> None:
    """The final runs of train-from-best, their ranking by mean metric, and where the summary is."""
    metric = summary["metric"]
    trained = f" ({counted(summary['epochs'], 'epoch')})" if summary["epochs"] is not None else ""
    runs = plain_table(f"final runs{trained}")
    for col in ("trial", "seed", metric, "folder"):
        runs.add_column(col, overflow="fold")
    for c in summary["candidates"]:
        for r in c["runs"]:
            runs.add_row(
                str(c["trial_number"]), str(r["seed"]), format_value(r["metrics"][metric]), r["folder"]
            )
    out_console().print(runs)
    ranked = plain_table(f"ranked by mean {metric} ({summary['direction']})")
    for col in ("rank", "trial", "trial value", f"mean {metric}", "std", "seeds"):
        ranked.add_column(col)
    for c in summary["candidates"]:
        std = "-" if c["std"] is None else f"{c['std']:.2g}"
        ranked.add_row(
            str(c["rank"]),
            str(c["trial_number"]),
            format_value(c["trial_value"]),
            format_value(c["mean"]),
            std,
            str(len(c["runs"])),
        )
    out_console().print(ranked)
    out_console().print(f"summary: {escape(str(Path(summary['folder']) / 'summary.json'))}", soft_wrap=True)
