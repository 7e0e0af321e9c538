"""What `optimize` prints and returns at the end: the study's states, best trial and what went wrong."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from shlex import quote
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import trial_seconds
from hpotool.formatting import counted
from hpotool.plan import StudyPlan
from hpotool.repeats import repeats_note
from hpotool.search_space import (
    Param,
    decode_params,
)

if TYPE_CHECKING:
    pass


@dataclass
class StudySummary:
    """The outcome of `run_study`, for the summary table and `--json`."""

    study_name: str
    storage: str
    metric: str
    direction: str
    target: int | None  # None: n_trials null, the timeout ends the study
    counts: dict[str, int]
    ran_now: int
    wall_time: float
    best: dict[str, Any] | None
    stopped: str | None = None
    first_error: str | None = None
    interrupted: int | None = None  # the signal that stopped the run (SIGINT 2, SIGTERM 15)
    failed: bool = False  # stopped by --max-failures failed trials in a row (exit code 1)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def summarize(
    study: optuna.Study,
    plan: StudyPlan,
    ran_now: int,
    wall_time: float,
    finished_before: Collection[int] = frozenset(),
) -> StudySummary:
    """The summary of a run of `study`; `finished_before`: the numbers of the trials finished before the run
    (the failures note tells its own from those of earlier runs)."""
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    best, pareto, space = None, [], plan.opt.search_space
    if counts["complete"] and plan.opt.multi_objective:
        pareto = [_trial_summary(t, space) for t in sorted(study.best_trials, key=lambda t: t.number)]
    elif counts["complete"]:
        from hpotool.ranking import ranked_trials

        ranked = ranked_trials(study)  # constraints respected, as Optuna's best_trial does
        best = _trial_summary(ranked[0], space) if ranked else None
    summary = StudySummary(
        study_name=plan.opt.study_name,
        storage=plan.storage_url,
        metric=", ".join(plan.opt.objectives),
        direction=", ".join(plan.opt.study_directions),
        target=plan.opt.n_trials,
        counts={k: v for k, v in counts.items() if v},
        ran_now=ran_now,
        wall_time=wall_time,
        best=best,
    )
    if pareto:
        summary.extra["pareto"] = pareto
    blind = _unpruneable(trials, plan)
    if blind:
        summary.extra["note"] = blind
    failures = _failures(trials, plan, finished_before)
    if failures:
        summary.extra["failures"] = failures
    pruned = _all_pruned(study, trials, counts)
    if pruned:
        summary.extra["pruned"] = pruned
    repeats = repeats_note(trials, study.user_attrs)
    if repeats:
        summary.extra["repeats"] = repeats
    return summary


def _all_pruned(study: optuna.Study, trials: list[FrozenTrial], counts: Mapping[str, int]) -> str | None:
    """Where no trial completed and some were pruned, that and why, with what to change (as export-best
    refuses such a study): the states said only `pruned 6`, and more trials alike end alike."""
    if counts["complete"] or not counts["pruned"]:
        return None
    from hpotool.ranking import why_pruned

    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    which = (
        "every trial was pruned"
        if len(pruned) == len(trials)
        else f"no trial completed ({counted(len(pruned), 'trial')} pruned)"
    )
    return f"{which}: {why_pruned(study, pruned, rule=True)}"


def _failures(trials: list[FrozenTrial], plan: StudyPlan, finished_before: Collection[int]) -> str | None:
    """How many trials failed (those of runs before this one, `finished_before`, said apart: a resume that
    ran cleanly said "1 trial failed; the last, #2: interrupted", the trial an earlier run's Ctrl-C ended, as
    if this run had failed), why the last one did, where its values ran again, and the command that lists
    them: the summary's states say only `fail N`. A failed trial whose result its live worker kept in
    another (`result_of`: a stale check took the worker for dead) says where: its values did not fail, and
    the study counts them in that trial (before: the note read as if the run had lost them)."""
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if not failed:
        return None
    from hpotool.storage_url import shown_url

    kept = {
        t.user_attrs["result_of"]: t.number
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and "result_of" in t.user_attrs
    }
    last = failed[-1]
    reason = last.user_attrs.get("fail_reason", "unknown error")
    if last.number in kept:
        reason += f"; its worker was alive and kept its result in #{kept[last.number]}"
    else:
        reason += _ran_again(last, trials)
    earlier = [f"#{t.number}'s result in #{kept[t.number]}" for t in failed[:-1] if t.number in kept]
    said = f" (kept by live workers: {', '.join(earlier)})" if earlier else ""
    before = sum(t.number in finished_before for t in failed)
    if before == len(failed):
        when = " before this run, none in it"
    elif before:
        when = f", {before} of them before this run"
    else:
        when = ""
    where = f"--study-name {quote(plan.opt.study_name)} --storage {quote(shown_url(plan.storage_url))}"
    return (
        f"{len(failed)} trial{'s' if len(failed) > 1 else ''} failed{when}{said}; the last, #{last.number}: "
        f"{reason}; hpotool trials {where} --state fail lists them"
    )


def _ran_again(failed: FrozenTrial, trials: list[FrozenTrial]) -> str:
    """Where the values of the `failed` trial were queued again (a retry, `retry_of`; a queued point, its
    `fixed_params`, an interrupt's resume queues again): " (its values ran again in #N)", or " (its values
    are queued again as #N)" while that trial has not finished; "" where none holds them (freely drawn
    values are not run again: later trials draw their own)."""
    values = failed.system_attrs.get("fixed_params")
    for t in trials:
        if t.number > failed.number and (
            t.user_attrs.get("retry_of") == failed.number
            or (values and t.system_attrs.get("fixed_params") == values)
        ):
            return (
                f" (its values ran again in #{t.number})"
                if t.state.is_finished()
                else f" (its values are queued again as #{t.number})"
            )
    return ""


def _unpruneable(trials: list[FrozenTrial], plan: StudyPlan) -> str | None:
    """With a pruner, complete trials that reported no value of the metric to it could not have been
    stopped: a training function that never calls `report` (or reports other names) makes the pruner idle."""
    opt = plan.opt
    if opt.multi_objective or opt.pruner.is_nop:
        return None
    blind = [t for t in trials if t.state == TrialState.COMPLETE and not t.intermediate_values]
    if not blind:
        return None
    how = (
        f"; {plan.run.trainer.function} must call report(epoch, {{{opt.metric!r}: value}}) after each epoch"
        if plan.run.trainer is not None
        else ""
    )
    return (
        f"the pruner saw no {opt.metric} from {counted(len(blind), 'complete trial')}, so it could not stop "
        f"{'it' if len(blind) == 1 else 'them'}{how}"
    )


def _trial_summary(t: FrozenTrial, space: Mapping[str, Param]) -> dict[str, Any]:
    return {
        "number": t.number,
        "value": t.value if len(t.values or []) == 1 else None,
        "values": t.values,
        "params": decode_params(t.params, space),
        "metrics": t.user_attrs.get("metrics", {}),
        "duration_s": trial_seconds(t),  # as `hpotool trials --json` and the exports name it
    }
