"""What a run's summary says of the run itself (`summary` sums up the study): the trials this run ended,
its target, and why it stopped short of it."""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping

import optuna
from optuna.trial import TrialState

from hpotool.fallback import IndependentSampling
from hpotool.owners import run_by
from hpotool.plan import StudyPlan
from hpotool.resume import was_interrupted
from hpotool.study import FINISHED
from hpotool.summary import StudySummary


def interrupted_idle(study: optuna.Study, pids: Collection[int], before: set[int]) -> str | None:
    """What the summary says of a Ctrl-C or SIGTERM that found none of the processes `pids` (this one, its
    workers) running a trial, or None when one ended its trial so ("interrupted"). The study's last trials
    run elsewhere (another machine, another command): this run waited for them, and they run on."""
    if interrupted_now(study, pids, before):
        return None
    others = [f"#{t.number}" for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if not others:
        return "interrupted between trials: none was running; run the same command to resume"
    return (
        f"interrupted while waiting for the trials that other processes run ({', '.join(others)}): no trial "
        f"of this run was running; run the same command to resume"
    )


def interrupted_now(study: optuna.Study, pids: Collection[int], before: set[int]) -> list[int]:
    """The numbers of the trials that the processes `pids` ended as interrupted in this run (not among the
    trials finished `before` it)."""
    fails = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return [t.number for t in fails if t.number not in before and was_interrupted(t) and run_by(t, pids)]


def workers_interrupted(
    study: optuna.Study, pids: Collection[int], before: set[int], n_workers: int, gone: int = 0
) -> str:
    """What the summary says of a Ctrl-C or SIGTERM that ended trials of the `n_workers` workers (`pids`, with
    the main process): how many of them it found running one, and which; `gone` of them had ended before
    it (killed, crashed: a note names each). Before, it said every worker ended its trial as FAIL where one
    had finished its last trial already (the study: complete 1, fail 1), and a worker killed earlier was one
    "running none"."""
    ended = interrupted_now(study, pids, before)
    numbers = ", ".join(f"#{n}" for n in ended)
    if len(ended) >= n_workers:
        said = f"every worker ended its trial as FAIL ({numbers})"
    else:
        did = "its trial" if len(ended) == 1 else "their trials"
        said = f"{len(ended)} of {n_workers} workers ended {did} as FAIL ({numbers}), {_the_rest(n_workers - len(ended), gone)}"
    return f"interrupted: {said}; run the same command to resume"


def _the_rest(rest: int, gone: int) -> str:
    """The workers that ended no trial as the signal came (`rest`): between trials, or `gone` before it."""
    them = "the other" if rest == 1 else "the others"
    if gone == 0:
        return f"{them} running none"
    if gone >= rest:
        return f"{them} ended before it (see the note above)"
    return f"{rest - gone} running none, {gone} ended before it (see the note above)"


def failures_stop(streak: int) -> str:
    """Why `--max-failures` stopped the run: `stopped after 2 failed trials in a row` (`1 failed trial`)."""
    return f"stopped after {streak} failed trial{'' if streak == 1 else 's'} in a row"


def finished_numbers(study: optuna.Study) -> set[int]:
    """The numbers of the trials that have ended (COMPLETE, PRUNED or FAIL)."""
    return {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}


def ran_now_states(study: optuna.Study, pids: Collection[int], finished_before: set[int]) -> dict[str, int]:
    """How many trials the processes `pids` (this one and its workers) ended in this run, by state
    (`complete`, `pruned`, `fail`): not the other processes' trials in a shared study, and every trial this
    run took from the queue (warm start, retries) or asked itself. Their sum is the summary's 'run now'."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished() and t.number not in finished_before and run_by(t, pids):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    return states


def add_ran_now_states(summary: StudySummary, states: Mapping[str, int]) -> None:
    """Put the states of the trials this run ended on the summary when some failed: 'trials 0/20 finished,
    2 run now' read as two trials running, or finished, where both had failed (interrupted)."""
    if states.get("fail"):
        order = ("complete", "pruned", "fail")
        summary.extra["ran_now_states"] = {k: states[k] for k in order if states.get(k)}


UNBOUNDED = sys.maxsize  # the trial target of `n_trials: null`: the timeout ends the study


def trial_target(plan: StudyPlan) -> int:
    """How many finished trials the study aims for (`UNBOUNDED` when only the timeout ends it)."""
    return plan.opt.n_trials if plan.opt.n_trials is not None else UNBOUNDED


def already_done(done: int, target: int) -> str:
    """The summary's note on a study that holds its `target` finished trials: the one line a run of it
    prints (its progress display says nothing more), with how to run more."""
    from hpotool.study import nothing_to_run

    return f"the study {nothing_to_run(done, target)}"


def timed_out(plan: StudyPlan, study: optuna.Study, target: int) -> str | None:
    """What the summary says when the timeout ended the run short of `target` (None when it did not)."""
    if plan.opt.timeout is None:
        return None
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if finished >= target:
        return None
    if target == UNBOUNDED:
        return f"the timeout ({plan.opt.timeout:g} s) ended the run"
    return (
        f"the timeout ({plan.opt.timeout:g} s) ended the run with {target - finished} of {target} trials to go; "
        f"run the same command to continue"
    )


def add_fallback_note(summary: StudySummary, fallback: IndependentSampling) -> None:
    """Put what the sampler sampled independently on the summary: one note, and the facts for --json."""
    note = fallback.note()
    if note is not None:
        summary.extra["independent_sampling"] = {"note": note, **fallback.as_dict()}
