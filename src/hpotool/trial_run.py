"""One trial, run and told by this process: the objective, its heartbeat, and the FAIL of a failed or
interrupted run told with its reason in one write."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import record_seconds
from hpotool.failed_trials import fail_trial
from hpotool.interrupts import deferred, let_go, raise_dropped
from hpotool.kept_results import keep_result
from hpotool.kept_writes import record_seconds_of_failed
from hpotool.objective import StorageLostInTrial, reason_of
from hpotool.owners import owner
from hpotool.plan import StudyPlan
from hpotool.sampler_hooks import AfterTrialFailed, failed_hook, hook_reason
from hpotool.search_space import CategoricalParam
from hpotool.trainer_contract import broke_contract, contract_stop
from hpotool.user_code import refusing_exit

_log = logging.getLogger("hpotool")


class TrialRun(NamedTuple):
    """How `run_trial` ran a trial: `kept`, the id of the trial that holds its result where another process
    ended it first (`keep_result`); `failed`, whether this process told it FAIL as its run failed (marked
    `failed_trials.RUN_FAILED`): False where another process failed it first, as stale, whether this one ran it to
    its end or stopped at a write the storage refused as it trained (before: counted as a failure)."""

    kept: int | None
    failed: bool


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float | list[float]],
    trained_by: Callable[[optuna.Trial], str | None] = lambda _: None,
    source: str | None = None,
    asked: float | None = None,
    metrics: Sequence[str] = (),
) -> TrialRun:
    """Run and tell one trial. `asked`: `time.perf_counter()` as the trial was asked for, where its wall
    time is recorded (`durations`) when it is told; `metrics`: those the study optimizes, for the line of a
    broken contract.

    Returns:
        Where its result is kept, and whether its training failed (`TrialRun`).

    Raises:
        HpoError: the user's training function (`trained_by` the trial) broke hpotool's contract
            (`broke_contract`), after the trial is told FAIL: every trial would fail the same way.
        AfterTrialFailed: the sampler's `after_trial` failed as the trial was told (its state stands).
    """
    ended = _run_beating(study, trial, objective)
    if ended.lost is not None:
        raise ended.lost  # `storage_lost` says so in one line
    kept, told = _tell(study, trial, ended, asked)
    if ended.interrupted is not None:
        raise ended.interrupted
    function = trained_by(trial) if ended.broken else None
    if function is not None:
        raise contract_stop(function, trial.number, ended.reason, source, metrics)
    return TrialRun(kept, ended.run_failed and told)


@dataclass
class _Ended:
    """How the objective's run of a trial ended: the state to tell it (None: COMPLETE, with `value`), the
    `reason` of a FAIL, and what else `run_trial` raises or counts."""

    state: TrialState | None = None
    value: float | list[float] | None = None
    reason: str = ""
    interrupted: KeyboardInterrupt | None = None
    lost: StorageLostInTrial | None = None  # the trial stays RUNNING: the next run fails it and runs it again
    # the training function broke hpotool's contract: every trial would fail the same way
    broken: bool = False
    run_failed: bool = False  # the objective raised: its run failed (not an interrupt)

    def interrupt(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM ended the run: the trial is told FAIL ("interrupted"), then `exc` goes on."""
        self.state, self.interrupted, self.reason = TrialState.FAIL, exc, "interrupted"


def _run_beating(
    study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float | list[float]]
) -> _Ended:
    """Run the objective on `trial` with its heartbeat beating, as study.optimize does per trial, the
    thread's start and stop out of a signal's reach: one between Optuna's starting the thread and entering
    its `with` block skipped the stop, and the thread beat on for good (a worker waited for it at exit, and
    the main process for that worker)."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    ended = _Ended()
    heartbeat = get_heartbeat_thread(trial._trial_id, study._storage)
    started = False
    try:
        with deferred():
            heartbeat.start()
            started = True
        _run_objective(trial, objective, ended)
    except KeyboardInterrupt as exc:  # in the objective, or as the heartbeat started (it never ran)
        ended.interrupt(exc)
    try:
        with deferred():
            if started:
                heartbeat.join()
    except KeyboardInterrupt as exc:  # after the objective, as its heartbeat thread ended: the trial ran
        # to its end, and is told so (before: it stayed RUNNING), then the interrupt goes on
        ended.interrupted = exc
    return ended


def _run_objective(
    trial: optuna.Trial, objective: Callable[[optuna.Trial], float | list[float]], ended: _Ended
) -> None:
    """Call `objective` on `trial`, recording in `ended` how it ended (an interrupt goes on)."""
    try:
        ended.value = objective(trial)
    except optuna.TrialPruned:
        ended.state = TrialState.PRUNED
    except StorageLostInTrial as exc:
        ended.lost = exc
    except Exception as exc:
        # A signal's interrupt that the code it landed in turned into an error of its own (pydantic's
        # serializers raise PydanticSerializationError for one raised in a Python function they call): the
        # trial ended 'PydanticSerializationError: ... Interrupted: SIGTERM' as a failed run, not as interrupted.
        raise_dropped()
        ended.state, ended.reason, ended.broken = TrialState.FAIL, reason_of(exc), broke_contract(exc)
        ended.run_failed = True
        # The trial keeps one line; `hpotool --debug` (which shows hpotool's DEBUG records) shows where in
        # the user's code it failed, frame by frame: only the innermost frame reached the terminal.
        _log.debug("trial %d failed: %s", trial.number, ended.reason, exc_info=exc)


def _tell(
    study: optuna.Study, trial: optuna.Trial, ended: _Ended, asked: float | None
) -> tuple[int | None, bool]:
    """Tell `trial` how its run `ended`, with its seconds since it was `asked`; a signal now ends the study
    after the trial is told, not half-way through. Returns the id of the trial that keeps its result where
    another process ended it first (`keep_result`; else None), and whether this process told it."""
    kept = None
    with deferred():
        if ended.interrupted is not None:  # a storage read it cut short holds the connection's snapshot
            let_go(ended.interrupted)
        try:
            if asked is not None:  # MySQL keeps Optuna's datetimes in whole seconds
                record_seconds(trial, time.perf_counter() - asked)
            # Every FAIL goes with its reason in one write: the objective's for its training's error, a missing
            # metric, a failed draw (`objective.give_reason`), "interrupted", any other error's message; a
            # failed run's with its mark (`RUN_FAILED`), which --max-failures counts.
            with refusing_exit():  # a sampler's sys.exit() in after_trial
                if ended.state == TrialState.FAIL:
                    told = _tell_failed(study, trial, ended.reason, run_failed=ended.run_failed)
                else:
                    study.tell(trial, ended.value, state=ended.state)
                    told = True
        except Exception as exc:
            if failed_hook(exc, "after_trial"):  # the state is written, whatever after_trial raised
                state = study._storage.get_trial(trial._trial_id).state
                raise AfterTrialFailed(trial.number, state.name, exc) from exc
            if not isinstance(exc, (optuna.exceptions.UpdateFinishedTrialError, ValueError)):
                raise
            if not study._storage.get_trial(trial._trial_id).state.is_finished():
                raise  # a value Optuna refuses, say: not another process's doing
            told = False
        if not told:  # another process ended it first
            kept = keep_result(
                study, trial, study._storage.get_trial(trial._trial_id), ended.value, ended.state
            )
            if kept is None:  # its seconds are on no trial: on the failed one, where the storage takes them
                record_seconds_of_failed(trial)
    return kept, told


def _tell_failed(study: optuna.Study, trial: optuna.Trial, reason: str, *, run_failed: bool = False) -> bool:
    """Tell `trial`, which this process runs, FAIL with `reason` as its `fail_reason`, as `study.tell` does
    (the sampler's `after_trial`, then the state), the state and the reason in one write on SQLite,
    PostgreSQL and MySQL (`failed_trials.fail_trial`), with the mark of a failed run (`failed_trials.RUN_FAILED`) where
    `run_failed`; returns whether this process ended it (False: another process, a stale check that took
    this one for dead, ended it first, and its state and reason stand).

    Before, the reason went first, then the FAIL: a stale check's FAIL landing in between was told
    "interrupted" over its own reason (a resume then took the point for one never run), and the FAIL raised;
    the objective's reasons (a training error, a missing metric, a failed draw) likewise, on SQLite, where the
    stale check's reason was overwritten by the one of a FAIL that never landed. The journal storages (Redis,
    journal files), which hold no transaction, write the reason first still.

    Raises:
        ValueError: `trial` is not running (Optuna's words: "Cannot tell a WAITING trial.").
    """
    from optuna.pruners import _filter_study

    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.state.is_finished():
        return False
    if frozen.state != TrialState.RUNNING:
        raise ValueError(f"Cannot tell a {frozen.state.name} trial.")
    study._thread_local.cached_all_trials = None  # as `tell` does: the cache holds within a trial only
    try:
        study.sampler.after_trial(_filter_study(study, frozen), frozen, TrialState.FAIL, None)
    finally:
        told = fail_trial(study._storage, trial._trial_id, reason, run_failed=run_failed)
    return told


def end_interrupted(study: optuna.Study, trial: optuna.Trial, asked: float, sampler: str) -> None:
    """End `trial`, which Ctrl-C or SIGTERM interrupted as this process set it up (asked, its slot and point
    checked), as FAIL ("interrupted"), recording this process as its owner and its seconds; one sent back
    to the queue (WAITING) stays there, and one another process ended first keeps its state and reason.
    The sampler (named `sampler`) failing in its `after_trial` is one line: the FAIL is written whatever it
    does, and the interrupt goes on (before, its error replaced the interrupt, with a traceback)."""
    if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
        return
    try:
        trial.set_user_attr("worker", owner())
        record_seconds(trial, time.perf_counter() - asked)
        with refusing_exit():  # a sampler's sys.exit() in after_trial
            _tell_failed(study, trial, "interrupted")
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another process (a stale check) ended it between the two writes: its state stands
    except Exception as exc:
        if not failed_hook(exc, "after_trial"):
            raise
        _log.warning(
            "trial %d was told FAIL (interrupted), its state stands: %s",
            trial.number,
            hook_reason(sampler, "after_trial", exc),
        )


def trained_by(plan: StudyPlan, trial: optuna.Trial | FrozenTrial) -> str | None:
    """The user's training function `trial` ran: its whole trainer section's, where the search chooses one,
    or the run config's (None: hpotool's Trainer)."""
    sections = plan.opt.search_space.get("trainer")
    if isinstance(sections, CategoricalParam) and "trainer" in trial.params:
        chosen = sections.value_of(trial.params["trainer"])
        if isinstance(chosen, dict) and "function" in chosen:
            return str(chosen["function"])
    return plan.run.trainer.function if plan.run.trainer else None
