"""The report's figures drawn with `optuna.visualization` (`make_figures`), as `report_figures` planned them:
YAML labels and hover text, short importance ticks, the timeline's measured and running bars, and one
warning for the trials left out. plotly is imported here only inside the functions that draw."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import ended_unobserved, measured_trial
from hpotool.figure_labels import labelled_trials, yaml_hovertext, yaml_labels
from hpotool.importance import FEW_IN_REGIME, LOW_TARGET_IS_BETTER, basis, make_evaluator
from hpotool.report_figures import curve_trials, figure_target, importance_target, sample_trials
from hpotool.report_info import ReportInfo, categorical
from hpotool.report_page import param_text
from hpotool.snapshot import StudySnapshot
from hpotool.trial_table import trial_params

if TYPE_CHECKING:
    import plotly.graph_objects as go


_OMITTED = re.compile(r"Trial (\d+) is omitted in visualization because its objective value is inf or nan")


class _Omitted(logging.Filter):
    """Keeps the trial numbers of Optuna's "Trial N is omitted in visualization" records and drops them:
    each figure logs one per such trial."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        match = _OMITTED.match(record.getMessage())
        if match is None:
            return True
        self.numbers.add(int(match.group(1)))
        return False


def make_figures(study: optuna.Study, info: ReportInfo) -> dict[str, go.Figure]:
    """Draw every drawable figure of `info` with `optuna.visualization`, keyed by `FigureInfo.key`; trials
    whose value is inf or nan, which the figures leave out, are named in one warning."""
    omitted = _Omitted()
    loggers = [logging.getLogger(f"optuna.visualization.{m}") for m in ("_utils", "_rank")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addFilter(omitted)
        logger.setLevel(logging.WARNING)  # made whatever Optuna's verbosity, so the filter sees them
    try:
        figures = _draw_figures(study, info)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeFilter(omitted)
            logger.setLevel(level)
    if omitted.numbers:
        numbers = ", ".join(f"#{n}" for n in sorted(omitted.numbers))
        trials = "trial" if len(omitted.numbers) == 1 else "trials"
        warnings.warn(f"the figures leave out {trials} {numbers}: their value is inf or nan", stacklevel=2)
    return figures


def _draw_figures(study: optuna.Study, info: ReportInfo) -> dict[str, go.Figure]:
    import optuna.visualization as vis

    figures: dict[str, go.Figure] = {}
    trials = study.get_trials(deepcopy=False)
    labelled = labelled_trials(trials, study.user_attrs)  # the slice, parallel and contour draw these
    curves = curve_trials(study, trials, info.objectives[0]["name"])
    for f in info.figures:
        if f.reason is not None:
            continue
        among = curves if f.kind == "intermediate" else labelled.trials
        drawn = StudySnapshot(study, sample_trials(f.kind, among, study.directions, f.objective or 0))
        target = figure_target(study, f.objective)
        kw: dict[str, Any] = {"target": target, "target_name": info.objectives[f.objective or 0]["name"]}
        match f.kind:
            case "history":
                figures[f.key] = vis.plot_optimization_history(study, **kw)
            case "importances":
                on = basis(study)  # a pruned study: every finished trial, ranked (`on.target`)
                target = importance_target(study, f.objective) or on.target
                with warnings.catch_warnings():  # "lower target values are better": the target is so
                    warnings.filterwarnings("ignore", message=LOW_TARGET_IS_BETTER)
                    warnings.filterwarnings("ignore", message=FEW_IN_REGIME, category=UserWarning)
                    figures[f.key] = vis.plot_param_importances(
                        on.study, evaluator=make_evaluator(), **{**kw, "target": target}
                    )
                _short_ticks(figures[f.key])
            case "parallel":
                figures[f.key] = vis.plot_parallel_coordinate(drawn, **kw)
            case "slice":
                figures[f.key] = vis.plot_slice(StudySnapshot(study, labelled.trials), **kw)
            case "contour":
                figures[f.key] = vis.plot_contour(drawn, params=f.params, **kw)
            case "edf":
                figures[f.key] = vis.plot_edf(study, **kw)
            case "intermediate":
                figures[f.key] = vis.plot_intermediate_values(drawn)
            case "timeline":
                figures[f.key] = _timeline(study, trials)
            case "pareto":
                names = [o["name"] for o in info.objectives]
                figures[f.key] = vis.plot_pareto_front(study, target_names=names)
        if f.key in figures:
            plotted = drawn.get_trials(deepcopy=False) if f.kind == "parallel" else []
            params = {p for t in plotted for p in t.params}
            yaml_labels(figures[f.key], f.kind, labelled.choices, _unset(plotted, target), params)
        if f.kind in ("timeline", "pareto") and f.key in figures:
            yaml_hovertext(figures[f.key], _shown_params(study, trials))
    return figures


_TICK_CHARS = 40  # the importance figure's longest parameter name on its axis; the hover names it whole


def _short_ticks(figure: go.Figure) -> None:
    """Shorten the importance bars' parameter names past `_TICK_CHARS` to their head, `…` and tail (two
    `model.hidden_sizes.<n>` stay apart), in place: whole, a long name takes the figure's width from its
    bars. Optuna's hover text names each parameter whole."""
    names = [name for trace in figure.data for name in (trace.y or ())]
    if not any(len(name) > _TICK_CHARS for name in names):
        return
    tail = _TICK_CHARS // 3
    head = _TICK_CHARS - tail - 1
    short = [name if len(name) <= _TICK_CHARS else f"{name[:head]}…{name[-tail:]}" for name in names]
    figure.update_yaxes(tickmode="array", tickvals=names, ticktext=short)


def _unset(trials: list[FrozenTrial], target: Callable[[FrozenTrial], float] | None) -> set[str]:
    """The parameters that some trial the parallel coordinates draw (the complete ones with finite values,
    or a finite `target`) did not set."""
    drawn = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and all(math.isfinite(v) for v in ([target(t)] if target is not None else t.values))
    ]
    every = {name for t in drawn for name in t.params}
    return {name for name in every if any(name not in t.params for t in drawn)}


class _ReversedRunning(logging.Filter):
    """Drops Optuna's "start and end times for Trial N seem to be reversed" for the RUNNING trials in
    `numbers`, whose bars `_timeline` redraws; the warning stays for any other trial (clocks out of step)."""

    def __init__(self, numbers: set[int]) -> None:
        super().__init__()
        self.numbers = numbers

    def filter(self, record: logging.LogRecord) -> bool:
        found = re.match(r"The start and end times for Trial (\d+) seem to be reversed", record.getMessage())
        return found is None or int(found[1]) not in self.numbers


def _timeline(study: optuna.Study, trials: list[FrozenTrial]) -> go.Figure:
    """Optuna's timeline, its bars spanning the times hpotool measured where it recorded them
    (`measured_trial`), with every RUNNING trial's bar reaching the time the report was made, without the
    trials whose worker died unobserved (`ended_unobserved`): their bars ran on to when they were found dead.

    Optuna's datetimes are whole seconds on MySQL: every short trial there was a bar of 0 s or 1 s.

    Optuna ends a RUNNING trial's bar at the study's last finish when it takes the trial's worker for dead;
    a trial that started after that (the usual case: the worker was killed during the last trial) got a bar
    of negative length, which nothing showed, and a warning log line on the console.
    """
    import optuna.visualization as vis

    running = {t.number for t in trials if t.state == TrialState.RUNNING}
    logger = logging.getLogger("optuna.visualization._timeline")
    quiet = _ReversedRunning(running)
    logger.addFilter(quiet)
    try:
        shown = [measured_trial(t) for t in trials if not ended_unobserved(t)]  # said in the figure's note
        figure = vis.plot_timeline(StudySnapshot(study, shown))
    finally:
        logger.removeFilter(quiet)
    now = datetime.now()  # naive local time, as Optuna stores a trial's start
    for trace in figure.data:
        if trace.name == "RUNNING" and trace.x is not None and trace.base is not None:
            trace.x = [
                x if x > 0 else max((now - datetime.fromisoformat(b)).total_seconds() * 1000, 1000.0)
                for x, b in zip(trace.x, trace.base, strict=True)
            ]
    return figure


def _shown_params(study: optuna.Study, trials: list[FrozenTrial]) -> dict[int, dict[str, str]]:
    """Each trial's parameters as the report's tables show them (`format_param`), by trial number."""
    attrs = study.user_attrs
    return {
        t.number: {k: param_text(k, v, categorical(t)) for k, v in trial_params(attrs, t).items()}
        for t in trials
    }
