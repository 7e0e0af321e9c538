"""A self-contained report of a study: one HTML file (plotly.js embedded once, works offline) or JSON.

Compute data, then draw (Optuna's visualization modules do the same): `report_info` builds plain data
(header, which figures can be drawn and why not, the pruning table) that tests assert on; `make_figures`
draws the drawable ones with `optuna.visualization`; `render_html` / `render_json` lay them out.

JSON format: the report info as data, plus `figures[i]["plotly"]`, the figure as plotly's JSON dict
(`{"data": [...], "layout": {...}}`, which `plotly.graph_objects.Figure(...)` takes), or null with `reason`.
"""

from __future__ import annotations

import copy
import html
import json
import logging
import math
import re
import statistics
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hpotool.atomic import write_text
from hpotool.audit import audit_findings, few_trials_caveat
from hpotool.config import is_nop_pruner
from hpotool.durations import measured_trial, trial_end, trial_seconds, trial_start
from hpotool.errors import HpoError
from hpotool.export import epochs_count, is_feasible, json_safe, ranked_trials, trial_params
from hpotool.figure_labels import categorical_choices, yaml_hovertext, yaml_labels
from hpotool.fingerprint import config_of, stored_config
from hpotool.formatting import format_param
from hpotool.importance import EVALUATOR, FEW_IN_REGIME, basis, make_evaluator, param_importances
from hpotool.pruning import pruned_rows
from hpotool.snapshot import StudySnapshot

if TYPE_CHECKING:
    import plotly.graph_objects as go

FORMATS = ("html", "json")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Figures that draw one line (or grid cell) per trial are drawn from a sample of a big study: the best
# tenth of the limit by the figure's objective plus an even sample of the rest. 10,000 learning curves make
# a 100 MB page no browser draws, and Optuna's contour grid grows with the square of the trials (1.2 GB at
# 10,000); Optuna draws parallel coordinates as two plotly traces a trial (0.75 s for 1,000), and past a few
# hundred lines they are one solid band anyway. Every other figure, the importances and the pruning table
# use every trial.
SAMPLE_LIMITS = {"intermediate": 500, "parallel": 500, "contour": 300}


# The trials whose learning curves Optuna's plot_intermediate_values draws: not a failed one, which it
# leaves out, logging "Study instance does not contain trials." where no other trial remains.
_CURVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _candidates(kind: str, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    if kind == "intermediate":
        return [t for t in trials if t.intermediate_values and t.state in _CURVE_STATES]
    return [t for t in trials if t.state == TrialState.COMPLETE]


def sample_trials(
    kind: str, trials: list[FrozenTrial], directions: list[optuna.study.StudyDirection], objective: int = 0
) -> list[FrozenTrial]:
    """The trials figure `kind` draws: all its candidates, or SAMPLE_LIMITS[kind] of them (see above)."""
    candidates = _candidates(kind, trials)
    limit = SAMPLE_LIMITS.get(kind)
    if limit is None or len(candidates) <= limit:
        return candidates
    sign = 1 if directions[objective] == optuna.study.StudyDirection.MINIMIZE else -1
    done = sorted(
        (t for t in candidates if t.state == TrialState.COMPLETE and t.values),
        key=lambda t: sign * t.values[objective],
    )
    best = {t.number for t in done[: limit // 10]}
    rest = [t for t in candidates if t.number not in best]
    step = len(rest) / (limit - len(best))
    chosen = best | {rest[int(i * step)].number for i in range(limit - len(best))}
    return [t for t in candidates if t.number in chosen]


def curve_trials(study: optuna.Study, trials: list[FrozenTrial], metric: str) -> list[FrozenTrial]:
    """The trials whose learning curves the report draws. One objective: the trials themselves (their
    reported values). Several: Optuna's Trial.report takes one objective, so none reports; each trial that
    recorded `metric` (the first objective's) in its per-epoch history, as a copy whose intermediate values
    are that history."""
    if len(study.directions) == 1:
        return trials
    curves = []
    for t in trials:
        rows = t.user_attrs.get("history")
        values = {
            r["epoch"]: float(r[metric])
            for r in (rows if isinstance(rows, list) else [])
            if isinstance(r, dict)
            and isinstance(r.get("epoch"), int)
            and isinstance(r.get(metric), int | float)
        }
        if values:
            curve = copy.copy(t)
            curve.intermediate_values = values
            curves.append(curve)
    return curves


def _sampled_note(kind: str, trials: list[FrozenTrial]) -> str:
    limit, n = SAMPLE_LIMITS.get(kind), len(_candidates(kind, trials))
    if limit is None or n <= limit:
        return ""
    return f" ({limit:,} of {n:,} trials drawn: the best {limit // 10} and an even sample of the rest)"


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


@dataclass(frozen=True)
class FigureInfo:
    """One figure of the report: drawn when `reason` is None, else replaced by that one line."""

    key: str  # unique, also the HTML element id: "history", "importances.1", ...
    kind: str  # history, importances, parallel, slice, contour, intermediate, timeline, edf, pareto
    title: str
    objective: int | None = None  # which objective a per-objective figure shows
    params: list[str] | None = None  # the contour's two parameters
    reason: str | None = None
    note: str | None = None  # a caveat shown above the drawn figure


@dataclass
class ReportInfo:
    """Everything the report shows, as plain data."""

    study_name: str
    storage: str
    objectives: list[dict[str, str]]  # [{"name": metric, "direction": "maximize"}, ...]
    counts: dict[str, int]
    best: list[dict[str, Any]]  # the best trial, or the Pareto-optimal trials of a multi-objective study
    time: dict[str, float | None]
    epochs: dict[str, Any]
    versions: dict[str, str]
    evaluator: str
    importances: list[dict[str, float] | None]  # per objective; None when they cannot be computed
    reproduce: list[str]
    figures: list[FigureInfo]
    pruned: list[dict[str, Any]]
    pruner: dict[str, Any] | None = None
    audit: list[str] = field(default_factory=list)  # `hpotool audit`'s findings (single objective)
    importances_caveat: str | None = None  # set when the importances rest on fewer trials than audit trusts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _objectives(study: optuna.Study, opt: dict[str, Any]) -> list[dict[str, str]]:
    directions = [d.name.lower() for d in study.directions]
    if len(directions) == 1 and opt.get("metric"):
        return [{"name": str(opt["metric"]), "direction": directions[0]}]
    metrics = opt.get("metrics")
    names = (
        study.metric_names
        or (metrics if isinstance(metrics, list) and len(metrics) == len(directions) else None)
        or [f"objective {i}" for i in range(len(directions))]
    )
    return [{"name": n, "direction": d} for n, d in zip(names, directions, strict=True)]


def _epochs(
    study: optuna.Study, trials: list[FrozenTrial], run: dict[str, Any], pruner: dict[str, Any] | None
) -> dict[str, Any]:
    """Epochs the finished trials ran versus what they would have run without pruning (each under the run
    config it ran with: `--allow-changed-config` may have changed the epochs on the way), and the fraction
    pruning saved (None without a pruner: trials that diverged stopped early, but no pruner saved those).
    `not_recorded` says why the counts are None."""
    finished = [t for t in trials if t.state in FINISHED]

    def unknown(why: str) -> dict[str, Any]:
        return {"run": None, "planned": None, "saved_fraction": None, "not_recorded": why}

    if not run or any(epochs_count(t.user_attrs.get("epochs_run")) is None for t in finished):
        return unknown("not an hpotool study")
    attrs = study.user_attrs
    bases = [config_of(attrs, t.number, "run_config") or run for t in finished]
    # A training function that reports no epoch trains in a loop hpotool never sees: its 0 is no count.
    if any(
        base.get("trainer") and not t.user_attrs.get("history")
        for t, base in zip(finished, bases, strict=True)
    ):
        return unknown("trainer.function reported no epochs, so hpotool cannot count them")
    ran = sum(t.user_attrs["epochs_run"] for t in finished)
    planned = sum(
        int(t.params.get("epochs", base.get("epochs", 0))) for t, base in zip(finished, bases, strict=True)
    )
    saved = 1 - ran / planned if planned and _prunes(pruner) else None
    return {"run": ran, "planned": planned, "saved_fraction": saved, "not_recorded": None}


def _prunes(pruner: dict[str, Any] | None) -> bool:
    """Whether a study's pruner section (None: several objectives, which nothing prunes) prunes at all."""
    return pruner is not None and not is_nop_pruner(str(pruner.get("name")))


def _time(trials: list[FrozenTrial]) -> dict[str, float | None]:
    durations = [s for s in map(trial_seconds, trials) if s is not None]
    # When hpotool recorded them (`durations`): Optuna's datetimes are whole seconds on MySQL
    starts = [s for s in map(trial_start, trials) if s is not None]
    ends = [e for e in map(trial_end, trials) if e is not None]
    return {
        "trials_total_s": sum(durations) if durations else None,
        "per_trial_mean_s": statistics.fmean(durations) if durations else None,
        "wall_s": max(ends) - min(starts) if starts and ends else None,
    }


def _best(study: optuna.Study, complete: list[FrozenTrial]) -> list[dict[str, Any]]:
    if not complete:
        return []
    best = ranked_trials(study)[:1] if len(study.directions) == 1 else study.best_trials
    attrs = study.user_attrs
    return [  # a list choice as the list, as best_params.json has it
        {
            "number": t.number,
            "values": t.values,
            "params": trial_params(attrs, t),
            "categorical": _categorical(t),
            "lr": _lrs(t),
        }
        for t in best
    ]


def _versions(stored: Any) -> dict[str, str]:
    """The versions hpotool stored on the study (`{"hpotool": ..., "optuna": ..., "torch": ...}`); none where
    the attr is not such a mapping: a plain Optuna study's own `versions` attr ("1.2", a list) failed the
    report with a ValueError traceback."""
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _categorical(trial: FrozenTrial) -> list[str]:
    """The trial's categorical parameters."""
    return [k for k, d in trial.distributions.items() if isinstance(d, CategoricalDistribution)]


def _lrs(trial: FrozenTrial) -> list[float]:
    """The lr each epoch of `trial` began with, from its history; empty where the history has none (a
    user's training function, or a study from before hpotool recorded it)."""
    history = trial.user_attrs.get("history") or []
    rows = [row for row in history if isinstance(row, dict)]
    if not rows or not all(isinstance(row.get("lr"), int | float) for row in rows):
        return []
    return [float(row["lr"]) for row in rows]


def _lr_text(lrs: list[float]) -> str:
    """`0.0002, 0.001, 0.00075 (epochs 0 to 2)`; a long run's first 8 and last 3."""
    shown = [_fmt(v) for v in lrs]
    if len(shown) > 12:
        shown = [*shown[:8], "…", *shown[-3:]]
    return f"{', '.join(shown)} (epochs 0 to {len(lrs) - 1})"


def _figure_infos(
    study: optuna.Study,
    trials: list[FrozenTrial],
    objectives: list[dict[str, str]],
    importances: list[dict[str, float] | None],
    importance_reasons: list[str | None],
    importance_basis: str,
    importances_caveat: str | None = None,
) -> list[FigureInfo]:
    every = [t for t in trials if t.state == TrialState.COMPLETE]
    # The figures leave out a trial whose value is inf or nan (the report warns of them)
    complete = [t for t in every if t.values is not None and all(map(math.isfinite, t.values))]
    none_complete = (
        "no complete trial yet"
        if not every
        else None
        if complete
        else f"no complete trial with a finite value ({len(every)} complete, each inf or nan)"
    )
    finite = " with a finite value" if len(complete) < len(every) else ""
    params = list(dict.fromkeys(p for t in complete for p in t.params))
    multi = len(objectives) > 1
    figs: list[FigureInfo] = []
    if multi:
        infeasible = (
            None if any(is_feasible(t) for t in complete) else "no complete trial meets the constraints"
        )
        reason = (
            none_complete
            or infeasible
            or (None if len(objectives) <= 3 else "a Pareto front needs 2 or 3 objectives")
        )
        figs.append(FigureInfo("pareto", "pareto", "Pareto front", reason=reason))
    for i, obj in enumerate(objectives):
        sfx, name = (f".{i}", f" — {obj['name']}") if multi else ("", "")
        no_params = none_complete or (None if params else "the trials have no parameters")
        if len(params) < 2:
            contour_reason, pair = (
                no_params or f"a contour needs two parameters, the study has {len(params)}",
                None,
            )
        elif len(complete) < 2:
            contour_reason, pair = (
                f"a contour needs at least 2 complete trials{finite}, the study has {len(complete)}",
                None,
            )
        else:
            imp = importances[i]
            ranked = list(imp) if imp else params
            # Optuna draws an empty contour, and logs a warning, for a parameter with one value
            varied = [p for p in ranked if len({repr(t.params[p]) for t in complete if p in t.params}) > 1]
            if len(varied) >= 2:
                contour_reason, pair = None, varied[:2]
            else:
                single = [p for p in params if p not in varied]
                contour_reason, pair = (
                    f"a contour needs two parameters with two values or more in the complete trials; "
                    f"{', '.join(single)} took one",
                    None,
                )
        figs += [
            FigureInfo(f"history{sfx}", "history", f"Optimization history{name}", i, reason=none_complete),
            FigureInfo(
                f"importances{sfx}",
                "importances",
                f"Parameter importances{name} (PED-ANOVA over {importance_basis})",
                i,
                reason=None if importances[i] else importance_reasons[i],
                note=importances_caveat,
            ),
            FigureInfo(
                f"parallel{sfx}",
                "parallel",
                f"Parallel coordinates{name}{_sampled_note('parallel', trials)}",
                i,
                reason=no_params,
            ),
            FigureInfo(f"slice{sfx}", "slice", f"Slice{name}", i, reason=no_params),
            FigureInfo(
                f"contour{sfx}",
                "contour",
                f"Contour of the two most important parameters{name}{_sampled_note('contour', trials)}",
                i,
                params=pair,
                reason=contour_reason,
            ),
            FigureInfo(f"edf{sfx}", "edf", f"Empirical distribution (EDF){name}", i, reason=none_complete),
        ]
    first = objectives[0]["name"]
    curves = curve_trials(study, trials, first)
    reported = any(t.intermediate_values for t in curves if t.state in _CURVE_STATES)
    curves_reason = (
        None
        if reported
        else f"only failed trials recorded {first} per epoch (a failed trial's curve is not drawn)"
        if multi and curves
        else f"no trial recorded {first} per epoch in its history"
        if multi
        else "only failed trials reported intermediate values (a failed trial's curve is not drawn)"
        if any(t.intermediate_values for t in trials)
        else "no trial reported intermediate values"
    )
    what = (
        f"{first}, the first objective, per epoch, from each trial's history"
        if multi
        else "intermediate values; pruned trials included"
    )
    figs.append(
        FigureInfo(
            "intermediate",
            "intermediate",
            f"Learning curves ({what})" + _sampled_note("intermediate", curves),
            reason=curves_reason,
        )
    )
    figs.append(
        FigureInfo("timeline", "timeline", "Timeline", reason=None if trials else "the study has no trials")
    )
    return figs


def _target(study: optuna.Study, i: int | None) -> Callable[[FrozenTrial], float] | None:
    if i is None or len(study.directions) == 1:
        return None
    return lambda t: t.values[i]


def _importance_target(study: optuna.Study, i: int | None) -> Callable[[FrozenTrial], float] | None:
    """`_target` as the importance evaluators want it: PED-ANOVA, given a target, takes lower as better, so
    an objective to maximize is negated (a single-objective study passes its direction itself)."""
    if i is None or len(study.directions) == 1:
        return None
    if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE:
        return lambda t: -t.values[i]
    return lambda t: t.values[i]


def report_info(study: optuna.Study, storage: str) -> ReportInfo:
    """The report of `study` as plain data (no plotting)."""
    from hpotool.storage_url import shown_url

    storage = shown_url(storage)  # the report is shared: no password in it
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    opt = stored_config(study.user_attrs, "optimize_config")
    run = stored_config(study.user_attrs, "run_config")
    objectives = _objectives(study, opt)
    importances: list[dict[str, float] | None] = []
    reasons: list[str | None] = []
    on = basis(study)  # in a pruned study with few complete trials: the trials as of an earlier epoch
    for i in range(len(objectives)):
        try:
            importances.append(param_importances(study, _importance_target(study, i), on=on))
            reasons.append(None)
        except ValueError as exc:
            importances.append(None)
            reasons.append(f"importances cannot be computed: {exc}")
    # audit's threshold: fewer trials rank parameters by noise (8 trials put optimizer.momentum first)
    caveat = few_trials_caveat(len(on.trials)) if any(importances) else None
    counts = {s.name.lower(): n for s in TrialState if (n := sum(t.state == s for t in trials))}
    best = _best(study, complete)
    reproduce = []
    names = f"--study-name {quote(study.study_name)} --storage {quote(storage)}"
    if best and run and len(objectives) == 1:
        reproduce = [
            f"hpotool train-from-best {names}",
            f"(`hpotool export-best {names}` writes its run config, best_run.yaml, and best_params.json instead)",
        ]
    elif best and run:  # a Pareto front has no one best trial: train-from-best trains the one picked
        folder = Path("studies") / study.study_name
        reproduce = [
            f"hpotool export-best {names}",
            f"(writes a run config for each Pareto-optimal trial, best_run_<trial>.yaml in {folder}/; train "
            f"the one you pick with `hpotool train-from-best {names} --trial <trial>`, under the study's final: "
            f"rules, or `hpotool train --run-config {quote(str(folder))}/best_run_<trial>.yaml`)",
        ]
    # A multi-objective study stores the default pruner section, but nothing prunes it (Trial.report is
    # single-objective): showing "pruner median" would say otherwise.
    pruner = opt.get("pruner") if len(objectives) == 1 else None
    rows = [r.as_dict() for r in pruned_rows(study, pruner)] if len(objectives) == 1 else []
    return ReportInfo(
        study_name=study.study_name,
        storage=storage,
        objectives=objectives,
        counts=counts,
        best=best,
        time=_time(trials),
        epochs=_epochs(study, trials, run, pruner),
        versions=_versions(study.user_attrs.get("versions")),
        evaluator=EVALUATOR,
        importances=importances,
        reproduce=reproduce,
        figures=_figure_infos(
            study, trials, objectives, importances, reasons, on.describe(objectives[0]["name"]), caveat
        ),
        pruned=rows,
        pruner=pruner,
        audit=audit_findings(study, importances[0]) if len(objectives) == 1 and complete else [],
        importances_caveat=caveat,
    )


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
        warnings.warn(f"the figures leave out trial(s) {numbers}: their value is inf or nan", stacklevel=2)
    return figures


def _draw_figures(study: optuna.Study, info: ReportInfo) -> dict[str, go.Figure]:
    import optuna.visualization as vis

    figures: dict[str, go.Figure] = {}
    trials = study.get_trials(deepcopy=False)
    choices = categorical_choices(trials)
    curves = curve_trials(study, trials, info.objectives[0]["name"])
    for f in info.figures:
        if f.reason is not None:
            continue
        among = curves if f.kind == "intermediate" else trials
        drawn = StudySnapshot(study, sample_trials(f.kind, among, study.directions, f.objective or 0))
        target = _target(study, f.objective)
        kw: dict[str, Any] = {"target": target, "target_name": info.objectives[f.objective or 0]["name"]}
        match f.kind:
            case "history":
                figures[f.key] = vis.plot_optimization_history(study, **kw)
            case "importances":
                on = basis(study)  # a pruned study: every finished trial, ranked (`on.target`)
                target = _importance_target(study, f.objective) or on.target
                with warnings.catch_warnings():  # "lower target values are better": the target is so
                    warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
                    warnings.filterwarnings("ignore", message=FEW_IN_REGIME, category=UserWarning)
                    figures[f.key] = vis.plot_param_importances(
                        on.study, evaluator=make_evaluator(), **{**kw, "target": target}
                    )
                _short_ticks(figures[f.key])
            case "parallel":
                figures[f.key] = vis.plot_parallel_coordinate(drawn, **kw)
            case "slice":
                figures[f.key] = vis.plot_slice(study, **kw)
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
            yaml_labels(figures[f.key], f.kind, choices, _unset(plotted, target), params)
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
    (`measured_trial`), with every RUNNING trial's bar reaching the time the report was made.

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
        figure = vis.plot_timeline(StudySnapshot(study, [measured_trial(t) for t in trials]))
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
        t.number: {k: _param_text(k, v, _categorical(t)) for k, v in trial_params(attrs, t).items()}
        for t in trials
    }


def _fmt(v: Any) -> str:
    """A cell of the pruning table or a learning rate: a float to 4 significant digits, `–` for none."""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    if v is None:
        return "–"
    return str(v)


def _param_text(name: str, value: Any, categorical: list[str]) -> str:
    """A best trial's parameter as the progress lines and `hpotool trials` show it: a choice as the YAML
    spells it (null, 0.0, [8, 8]), a number to 4 significant digits."""
    return format_param(value, name in categorical)


def _seconds(s: float | None) -> str:
    return "–" if s is None else f"{s:.1f} s"


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
        params = ", ".join(f"{k}={_param_text(k, v, b['categorical'])}" for k, v in b["params"].items())
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
            f"{_seconds(t['wall_s'])} first start to last finish",
        )
    )
    e = info.epochs
    if e["run"] is None:
        rows.append(("epochs", f"not recorded ({e['not_recorded']})"))
    elif not _prunes(info.pruner):  # several objectives, or pruning off
        rows.append(("epochs", f"{e['run']} run (no pruning)"))
    else:
        saved = "" if e["saved_fraction"] is None else f" — pruning saved {e['saved_fraction']:.0%}"
        rows.append(
            ("epochs", f"{e['run']} run of {e['planned']} a study without pruning would have run{saved}")
        )
    if info.pruner:
        rows.append(("pruner", f"{info.pruner.get('name')} {json.dumps(info.pruner.get('kwargs') or {})}"))
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in info.versions.items()) or "not recorded"))
    rows.append(("importance evaluator", info.evaluator))
    return rows


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


def render_html(info: ReportInfo, figures: dict[str, go.Figure]) -> str:
    """The report as one HTML page: plotly.js embedded once, every figure drawn from it, nothing fetched."""
    from plotly.offline import get_plotlyjs

    parts = [f"<h1>Study {html.escape(info.study_name)}</h1>", _table(_header_rows(info))]
    if info.reproduce:
        which = "the best trial" if len(info.objectives) == 1 else "a Pareto-optimal trial"
        parts.append(f"<p>Reproduce {which}:</p>")
        parts.append(
            f"<pre><code>{html.escape(info.reproduce[0])}</code></pre><p>{html.escape(info.reproduce[1])}</p>"
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
