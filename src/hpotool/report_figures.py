"""Which figures the report has, the trials each draws, and why one is not drawn.

`figure_infos` plans the figures of a study as plain data (`FigureInfo`: drawn, or the one line why not);
figures that draw one line or grid cell per trial draw a sample of a big study (`sample_trials`).
`report_drawing` draws them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import ended_unobserved
from hpotool.formatting import counted
from hpotool.ranking import is_feasible

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


def _candidates(kind: str, trials: list[FrozenTrial], objective: int = 0) -> list[FrozenTrial]:
    if kind == "intermediate":
        return [t for t in trials if t.intermediate_values and t.state in _CURVE_STATES]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # Optuna leaves out a trial whose value is inf or nan: it would take a drawn one's place
    if kind == "contour":
        return [t for t in complete if t.values and math.isfinite(t.values[objective])]
    return complete


def sample_trials(
    kind: str, trials: list[FrozenTrial], directions: list[optuna.study.StudyDirection], objective: int = 0
) -> list[FrozenTrial]:
    """The trials figure `kind` draws: all its candidates, or SAMPLE_LIMITS[kind] of them (see above)."""
    candidates = _candidates(kind, trials, objective)
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


def _sampled_note(kind: str, trials: list[FrozenTrial], objective: int = 0) -> str:
    limit, n = SAMPLE_LIMITS.get(kind), len(_candidates(kind, trials, objective))
    if limit is None or n <= limit:
        return ""
    return f" ({limit:,} of {n:,} trials drawn: the best {limit // 10} and an even sample of the rest)"


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


@dataclass(frozen=True)
class _Complete:
    """The study's complete trials as the figures see them."""

    every: list[FrozenTrial]  # every complete trial
    finite: list[FrozenTrial]  # those the figures draw: a trial whose value is inf or nan is left out
    params: list[str]  # the parameters of `finite`, in the order the trials suggested them
    none: str | None  # why there is no complete trial to draw; None when there is one


def _complete_trials(trials: list[FrozenTrial]) -> _Complete:
    """The complete trials, those with finite values, their parameters, and why none is drawn."""
    every = [t for t in trials if t.state == TrialState.COMPLETE]
    # The figures leave out a trial whose value is inf or nan (the report warns of them)
    finite = [t for t in every if t.values is not None and all(map(math.isfinite, t.values))]
    none = (
        "no complete trial yet"
        if not every
        else None
        if finite
        else f"no complete trial with a finite value ({len(every)} complete, each inf or nan)"
    )
    params = list(dict.fromkeys(p for t in finite for p in t.params))
    return _Complete(every, finite, params, none)


def figure_infos(
    study: optuna.Study,
    trials: list[FrozenTrial],
    objectives: list[dict[str, str]],
    importances: list[dict[str, float] | None],
    importance_reasons: list[str | None],
    importance_basis: str,
    importances_caveat: str | None = None,
) -> list[FigureInfo]:
    """The report's figures in order: the Pareto front (several objectives), six figures per objective, the
    learning curves and the timeline."""
    done = _complete_trials(trials)
    figs = [_pareto_figure(objectives, done)] if len(objectives) > 1 else []
    for i in range(len(objectives)):
        importance = FigureInfo(
            f"importances{_suffix(i, objectives)}",
            "importances",
            f"Parameter importances{_label(i, objectives)} (PED-ANOVA over {importance_basis})",
            i,
            reason=None if importances[i] else importance_reasons[i],
            note=importances_caveat,
        )
        contour = sample_trials("contour", trials, study.directions, i)
        figs += _objective_figures(i, objectives, done, trials, contour, importances[i], importance)
    figs.append(_curves_figure(study, trials, objectives))
    figs.append(_timeline_figure(trials))
    return figs


def _timeline_figure(trials: list[FrozenTrial]) -> FigureInfo:
    """The timeline, which leaves out the trials whose worker died unobserved (`ended_unobserved`) and says
    so: nothing recorded when they died, and Optuna's bar ran on to when they were found dead (637 s for a
    trial killed after 1.5 s)."""
    unobserved = sum(map(ended_unobserved, trials))
    reason = None
    if not trials:
        reason = "the study has no trials"
    elif unobserved == len(trials):
        reason = "every trial's worker died unobserved: nothing recorded when they ran"
    note = None
    if unobserved and reason is None:
        note = f"{counted(unobserved, 'trial')} whose worker died unobserved left out: nothing recorded when it died"
    return FigureInfo("timeline", "timeline", "Timeline", reason=reason, note=note)


def _suffix(i: int, objectives: list[dict[str, str]]) -> str:
    """The key suffix of objective `i`'s figures: `.1` where the study has several objectives, else none."""
    return f".{i}" if len(objectives) > 1 else ""


def _label(i: int, objectives: list[dict[str, str]]) -> str:
    """The title suffix of objective `i`'s figures: ` — val_loss` where the study has several, else none."""
    return f" — {objectives[i]['name']}" if len(objectives) > 1 else ""


def _pareto_figure(objectives: list[dict[str, str]], done: _Complete) -> FigureInfo:
    """The Pareto front of a multi-objective study, or why it is not drawn."""
    infeasible = (
        None if any(is_feasible(t) for t in done.finite) else "no complete trial meets the constraints"
    )
    reason = (
        done.none
        or infeasible
        or (None if len(objectives) <= 3 else "a Pareto front needs 2 or 3 objectives")
    )
    return FigureInfo("pareto", "pareto", "Pareto front", reason=reason)


def _objective_figures(
    i: int,
    objectives: list[dict[str, str]],
    done: _Complete,
    trials: list[FrozenTrial],
    contour: list[FrozenTrial],
    importance: dict[str, float] | None,
    importance_figure: FigureInfo,
) -> list[FigureInfo]:
    """Objective `i`'s figures: history, importances (`importance_figure`), parallel, slice, contour (of the
    trials `contour`), EDF."""
    sfx, name = _suffix(i, objectives), _label(i, objectives)
    no_params = done.none or (None if done.params else "the trials have no parameters")
    contour_reason, pair = _contour_pair(done, contour, importance, no_params)
    return [
        FigureInfo(f"history{sfx}", "history", f"Optimization history{name}", i, reason=done.none),
        importance_figure,
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
            f"Contour of the two most important parameters{name}{_sampled_note('contour', trials, i)}",
            i,
            params=pair,
            reason=contour_reason,
        ),
        FigureInfo(f"edf{sfx}", "edf", f"Empirical distribution (EDF){name}", i, reason=done.none),
    ]


def _contour_pair(
    done: _Complete, drawn: list[FrozenTrial], importance: dict[str, float] | None, no_params: str | None
) -> tuple[str | None, list[str] | None]:
    """The contour's two parameters (the two most important that took two values or more in the trials it
    draws, `drawn`), or why none."""
    params, complete = done.params, done.finite
    if len(params) < 2:
        return no_params or f"a contour needs two parameters, the study has {len(params)}", None
    if len(complete) < 2:
        finite = " with a finite value" if len(complete) < len(done.every) else ""
        return f"a contour needs at least 2 complete trials{finite}, the study has {len(complete)}", None
    ranked = list(importance) if importance else params
    # Optuna draws an empty contour, and logs a warning, for a parameter with one value in the trials drawn
    # (a sample of a big study: another value may be in trials it leaves out)
    varied = [p for p in ranked if len({repr(t.params[p]) for t in drawn if p in t.params}) > 1]
    if len(varied) >= 2:
        return None, varied[:2]
    single = [p for p in params if p not in varied]
    return (
        f"a contour needs two parameters with two values or more in the complete trials; "
        f"{', '.join(single)} took one",
        None,
    )


def _curves_figure(
    study: optuna.Study, trials: list[FrozenTrial], objectives: list[dict[str, str]]
) -> FigureInfo:
    """The learning curves (the first objective's, per epoch), or why they are not drawn."""
    multi = len(objectives) > 1
    first = objectives[0]["name"]
    curves = curve_trials(study, trials, first)
    what = (
        f"{first}, the first objective, per epoch, from each trial's history"
        if multi
        else "intermediate values; pruned trials included"
    )
    return FigureInfo(
        "intermediate",
        "intermediate",
        f"Learning curves ({what})" + _sampled_note("intermediate", curves),
        reason=_curves_reason(trials, curves, first, multi),
    )


def _curves_reason(
    trials: list[FrozenTrial], curves: list[FrozenTrial], first: str, multi: bool
) -> str | None:
    """Why no learning curve is drawn; None when one is."""
    if any(t.intermediate_values for t in curves if t.state in _CURVE_STATES):
        return None
    if multi and curves:
        return f"only failed trials recorded {first} per epoch (a failed trial's curve is not drawn)"
    if multi:
        return f"no trial recorded {first} per epoch in its history"
    if any(t.intermediate_values for t in trials):
        return "only failed trials reported intermediate values (a failed trial's curve is not drawn)"
    return "no trial reported intermediate values"


def figure_target(study: optuna.Study, i: int | None) -> Callable[[FrozenTrial], float] | None:
    if i is None or len(study.directions) == 1:
        return None
    return lambda t: t.values[i]


def importance_target(study: optuna.Study, i: int | None) -> Callable[[FrozenTrial], float] | None:
    """`figure_target` as the importance evaluators want it: PED-ANOVA, given a target, takes lower as better, so
    an objective to maximize is negated (a single-objective study passes its direction itself)."""
    if i is None or len(study.directions) == 1:
        return None
    if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE:
        return lambda t: -t.values[i]
    return lambda t: t.values[i]
