"""A self-contained report of a study: one HTML file (plotly.js embedded once, works offline) or JSON.

Compute data, then draw (Optuna's visualization modules do the same): `report_info.report_info` builds plain
data (header, which figures can be drawn and why not, the pruning table) that tests assert on;
`report_drawing.make_figures` draws the drawable ones with `optuna.visualization`; `report_page.render_html`
/ `render_json` lay them out. This module picks the format and writes the report.

JSON format: the report info as data, plus `figures[i]["plotly"]`, the figure as plotly's JSON dict
(`{"data": [...], "layout": {...}}`, which `plotly.graph_objects.Figure(...)` takes), or null with `reason`.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from hpotool.atomic import write_text
from hpotool.errors import HpoError
from hpotool.report_drawing import make_figures
from hpotool.report_info import report_info
from hpotool.report_page import render_html, render_json
from hpotool.snapshot import StudySnapshot

FORMATS = ("html", "json")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise HpoError(f"--format: {fmt!r} is not a report format; choose one of: {', '.join(FORMATS)}")


def report_format(out: Path | None, fmt: str | None) -> str:
    """The report's format: `fmt` when given, else the suffix of `out` (.json, .html), else html.

    Raises:
        HpoError: for an unknown `fmt`, or one that contradicts the suffix of `out` (HTML in a .json file).
    """
    suffix = out.suffix.lower().removeprefix(".") if out is not None else ""
    implied = suffix if suffix in FORMATS else None
    if fmt is None:
        return implied or "html"
    fmt = fmt.lower()  # as the --out suffix is read (R.JSON), and trials --state (PRUNED)
    check_format(fmt)
    if implied is not None and implied != fmt:
        raise HpoError(
            f"--format {fmt} does not match --out {out} (a .{suffix} file); "
            f"drop --format, or give --format {implied} or an --out ending in .{fmt}"
        )
    return fmt


def default_report_path(study_name: str, fmt: str = "html") -> Path:
    return Path("studies") / study_name / f"report.{fmt}"


def render_report(study: optuna.Study, storage: str, fmt: str = "html") -> str:
    """Build and draw the report of `study`: the HTML page or the JSON document, as text."""
    check_format(fmt)
    study = StudySnapshot(study)  # read the trials once, not once per figure
    info = report_info(study, storage)
    figures = make_figures(study, info)
    return render_html(info, figures) if fmt == "html" else render_json(info, figures)


def write_report(study: optuna.Study, storage: str, out: Path, fmt: str = "html") -> Path:
    """Build, draw and write the report of `study` to `out` atomically."""
    write_text(out, render_report(study, storage, fmt))
    return out
