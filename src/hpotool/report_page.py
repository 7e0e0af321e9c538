"""The report laid out: one HTML page (`render_html`: plotly.js embedded once, works offline) or JSON
(`render_json`: `ReportInfo` as data plus each figure's plotly JSON), and the text of its tables."""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from hpotool.formatting import counted, format_param
from hpotool.report_figures import FigureInfo
from hpotool.report_info import ReportInfo, prunes
from hpotool.strict_json import json_safe

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _lr_text(lrs: list[float]) -> str:
    """`0.0002, 0.001, 0.00075 (epochs 0 to 2)`; a long run's first 8 and last 3."""
    shown = [_fmt(v) for v in lrs]
    if len(shown) > 12:
        shown = [*shown[:8], "…", *shown[-3:]]
    return f"{', '.join(shown)} (epochs 0 to {len(lrs) - 1})"


def _fmt(v: Any) -> str:
    """A cell of the pruning table or a learning rate: a float to 4 significant digits, `–` for none."""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    if v is None:
        return "–"
    return str(v)


def param_text(name: str, value: Any, categorical: list[str]) -> str:
    """A best trial's parameter as the progress lines and `hpotool trials` show it: a choice as the YAML
    spells it (null, 0.0, [8, 8]), a number to 4 significant digits."""
    return format_param(value, name in categorical)


def _seconds(s: float | None) -> str:
    return "–" if s is None else f"{s:.1f} s"


def _unobserved(count: float | None) -> str:
    """The time row's word on the trials whose worker died unobserved, which its figures leave out."""
    if not count:
        return ""
    return f" ({counted(int(count), 'trial')} whose worker died unobserved not counted: seconds unknown)"


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def _header_rows(info: ReportInfo) -> list[tuple[str, str]]:
    rows = [("study", info.study_name), ("storage", info.storage)]
    rows += [
        ("objective" if len(info.objectives) == 1 else f"objective {i}", f"{o['name']} ({o['direction']})")
        for i, o in enumerate(info.objectives)
    ]
    rows.append(("trials", ", ".join(f"{k} {v}" for k, v in info.counts.items()) or "none"))
    if not info.best:
        complete = info.counts.get("complete", 0)
        rows.append(
            ("best", "no complete trial meets the constraints" if complete else "no complete trial yet")
        )
    for b in info.best[:10]:
        values = ", ".join(_fmt(v) for v in b["values"] or [])
        params = ", ".join(f"{k}={param_text(k, v, b['categorical'])}" for k, v in b["params"].items())
        rows.append((f"best trial #{b['number']}", f"{values}  ({params})"))
    if len(info.best) == 1 and info.best[0].get("lr"):  # a warm-up or a plateau cut shows here
        rows.append(("its lr by epoch", _lr_text(info.best[0]["lr"])))
    if len(info.best) > 10:
        rows.append(("", f"… and {len(info.best) - 10} more Pareto-optimal trials"))
    t = info.time
    rows.append(
        (
            "time",
            f"{_seconds(t['trials_total_s'])} in trials, {_seconds(t['per_trial_mean_s'])} per trial, "
            f"{_seconds(t['wall_s'])} first start to last finish" + _unobserved(t.get("unobserved")),
        )
    )
    e = info.epochs
    if e["run"] is None:
        rows.append(("epochs", f"not recorded ({e['not_recorded']})"))
    elif not (info.counts.get("complete") or info.counts.get("pruned")):  # all failed, or none ended yet
        rows.append(("epochs", "none counted: no trial completed or was pruned"))
    elif not prunes(info.pruner):  # several objectives, or pruning off
        rows.append(("epochs", f"{e['run']} run (no pruning)"))
    else:
        saved = "" if e["saved_fraction"] is None else f" — pruning saved {e['saved_fraction']:.0%}"
        rows.append(
            ("epochs", f"{e['run']} run of {e['planned']} a study without pruning would have run{saved}")
        )
    if info.pruner:
        rows.append(("pruner", f"{info.pruner.get('name')} {json.dumps(info.pruner.get('kwargs') or {})}"))
    rows.append(("versions", _versions_text(info)))
    rows.append(("importance evaluator", info.evaluator))
    return rows


def _versions_text(info: ReportInfo) -> str:
    """The versions the study was created with, and those of later runs that differ (an upgrade): the row said
    `optuna 4.0.0` alone for a study whose later trials ran with 5.1.0."""
    created = ", ".join(f"{k} {v}" for k, v in info.versions.items())
    if not created:
        return "not recorded"
    later = []
    for entry in info.later_versions:
        differ = [f"{k} {v}" for k, v in entry.items() if info.versions.get(k, "").split("+")[0] != v]
        if differ:
            later.append(", ".join(differ))
    return f"{created} (created with)" + (f"; later runs: {'; '.join(later)}" if later else "")


def _epochs_run(row: dict[str, Any]) -> int | None:
    """The epochs a pruned trial ran: its last step (counted from 0, as Optuna's are) plus one."""
    return (
        row["epochs_run"]
        if row.get("epochs_run") is not None
        else (None if row["epoch"] is None else row["epoch"] + 1)
    )


def _pruning_html(info: ReportInfo) -> str:
    if not info.pruned:
        return "<p class='note'>No trial was pruned.</p>"
    head = "<tr><th>trial</th><th>epochs run</th><th>value</th><th>threshold</th><th>how</th><th>reason</th></tr>"
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_fmt(v))}</td>"
            for v in (
                r["number"],
                _epochs_run(r),
                r["value"],
                r["threshold"],
                r["threshold_note"],
                r["reason"],
            )
        )
        + "</tr>"
        for r in info.pruned
    )
    return f"<table class='grid'>{head}{body}</table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;overflow-wrap:anywhere}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} th,td{padding:.25em .8em;text-align:left;vertical-align:top}
table.kv th{color:#555;font-weight:600;white-space:nowrap} table.grid th{background:#f3f3f3} table.grid td{border-top:1px solid #eee}
code{background:#f3f3f3;padding:.1em .3em} .note{color:#777;font-style:italic}
section.figure{margin:1em 0;overflow-x:auto}
"""


def _with_code(text: str) -> str:
    """`text` as HTML, its `backticked` commands as <code>: the note under the command that reproduces the
    best trial names others so, as the JSON report keeps it, and the page showed the backticks."""
    parts = [html.escape(part) for part in text.split("`")]
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def render_html(info: ReportInfo, figures: dict[str, go.Figure]) -> str:
    """The report as one HTML page: plotly.js embedded once, every figure drawn from it, nothing fetched."""
    from plotly.offline import get_plotlyjs

    parts = [f"<h1>Study {html.escape(info.study_name)}</h1>", _table(_header_rows(info))]
    if info.reproduce:
        which = "the best trial" if len(info.objectives) == 1 else "a Pareto-optimal trial"
        parts.append(f"<p>Reproduce {which}:</p>")
        parts.append(
            f"<pre><code>{html.escape(info.reproduce[0])}</code></pre><p>{_with_code(info.reproduce[1])}</p>"
        )
    if info.audit:
        parts.append(
            "<h2>Audit</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in info.audit) + "</ul>"
        )
        parts.append(
            "<p>(<code>hpotool refine</code> turns these findings into the next stage's configs.)</p>"
        )
    by_key = {f.key: f for f in info.figures}
    parts.append("<h2>Figures</h2>")
    for f in info.figures:
        if f.kind == "intermediate":
            continue  # drawn beside the pruning table
        parts.append(_figure_html(f, figures))
    parts.append("<h2>Pruning</h2>")
    parts.append(_figure_html(by_key["intermediate"], figures))
    parts.append(_pruning_html(info))
    body = "\n".join(parts)
    title = html.escape(f"hpotool report: {info.study_name}")
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style>\n<script type='text/javascript'>{get_plotlyjs()}</script>\n</head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _figure_html(f: FigureInfo, figures: dict[str, go.Figure]) -> str:
    head = f"<section class='figure' id='section-{f.key}'><h3>{html.escape(f.title)}</h3>"
    if f.reason is not None:
        return f"{head}<p class='note unavailable'>Not drawn: {html.escape(f.reason)}.</p></section>"
    div = figures[f.key].to_html(include_plotlyjs=False, full_html=False, div_id=f"fig-{f.key}")
    note = f"<p class='note'>{html.escape(f.note[0].upper() + f.note[1:])}.</p>" if f.note else ""
    return f"{head}{note}{div}</section>"


def render_json(info: ReportInfo, figures: dict[str, go.Figure]) -> str:
    """The report as JSON: `report_info` plus each figure's plotly JSON (null with a reason when not drawn)."""
    data = info.as_dict()
    for f in data["figures"]:
        fig = figures.get(f["key"])
        f["plotly"] = json.loads(fig.to_json()) if fig is not None else None
    # Strict JSON, as the exports write it: an infinite or NaN value (a trial's -inf) is the string
    # "-Infinity", not the bare -Infinity that jq and JSON.parse refuse, nor null (no value).
    return json.dumps(json_safe(data), indent=2, allow_nan=False, default=str) + "\n"
