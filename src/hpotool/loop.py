"""The trial loop every hpotool process runs, alone or as one of many workers.

Ask, reserve a slot, train, tell. The slot makes `n_trials` exact however many processes share the
study: after `ask`, a trial whose rank among the finished and running trials is beyond the target goes
back to WAITING untrained (Optuna counts only COMPLETE and PRUNED trials, and the next `ask` anywhere picks
the WAITING trial up again), so processes racing at the end never overshoot the target.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Collection, Hashable, Mapping
from shlex import quote
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import record_seconds
from hpotool.errors import HpoError
from hpotool.factories import process_salt, study_sampler
from hpotool.fallback import IndependentSampling, independent_sampling
from hpotool.formatting import format_choice, format_value
from hpotool.interrupts import deferred, raise_dropped, signal_of, signals_interrupt
from hpotool.objective import FailureGuard, StorageLostInTrial, StudyObserver, make_objective, reason_of
from hpotool.overrides import leaf_values
from hpotool.plan import WARM_START, StudyPlan
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, contains, drawn, encode_params
from hpotool.stale import (
    enqueue_owned,
    fail_dead_local_trials,
    fail_ownerless_trials,
    fail_trial,
    in_use,
    may_be_lost,
    on_this_host,
    owner,
    ownerless_left,
    ran_elsewhere,
    run_by,
)
from hpotool.stop_note import say_and_clear
from hpotool.storage import (
    fail_stale_trials,
    has_heartbeat,
    heartbeat_settings,
    lost_connection,
    storage_lost,
    study_deleted,
)
from hpotool.study import FINISHED, open_study
from hpotool.summary import StudySummary, summarize
from hpotool.user_trainer import broke_contract, contract_stop
from hpotool.waiting import study_version, wait_for_change, wait_for_earlier_trials

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from hpotool.tracking import MlflowTracker


# How often a process waiting for a slot (every remaining trial is running elsewhere) looks again: when
# the last trials end, idle workers notice within this and exit, so the command ends with its last trial.
# A look is one cheap query; the trials are read again only once it sees a change (`waiting`).
POLL_S = 0.1
# How long a brute-force trial waits for the values of trials asked before it (see _wait_for_earlier_draws).
DRAW_WAIT_S = 10.0
EXHAUSTED = "the sampler has tried everything it can propose (a grid or brute-force search is complete)"


def _finished_and_running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))


def has_slot(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether `trial` is within the target: finished trials plus running ones asked before it."""
    ahead = sum(t.state in FINISHED or t.number <= trial.number for t in _finished_and_running(study))
    return ahead <= target


class TrialRun(NamedTuple):
    """How `_run_trial` ran a trial: `kept`, the id of the trial that holds its result where another process
    ended it first (`_keep_result`); `failed`, whether this process told it FAIL as its run failed (marked
    `stale.RUN_FAILED`): False where another process failed it first, as stale, whether this one ran it to
    its end or stopped at a write the storage refused as it trained (before: counted as a failure)."""

    kept: int | None
    failed: bool


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float | list[float]],
    trained_by: Callable[[optuna.Trial], str | None] = lambda _: None,
    source: str | None = None,
    asked: float | None = None,
) -> TrialRun:
    """Run and tell one trial. `asked`: `time.perf_counter()` as the trial was asked for, where its wall
    time is recorded (`durations`) when it is told.

    Returns:
        Where its result is kept, and whether its training failed (`TrialRun`).

    Raises:
        HpoError: the user's training function (`trained_by` the trial) broke hpotool's contract
            (`broke_contract`), after the trial is told FAIL: every trial would fail the same way.
    """
    state, value, reason = None, None, ""
    interrupted: KeyboardInterrupt | None = None
    lost: StorageLostInTrial | None = None
    broken = False  # the training function broke hpotool's contract: every trial would fail the same way
    run_failed = False  # the objective raised: its run failed (not an interrupt)
    from optuna.storages._heartbeat import get_heartbeat_thread

    # What study.optimize does per trial, with the thread's start and stop out of a signal's reach: one
    # between Optuna's starting the thread and entering its `with` block skipped the stop, and the thread
    # beat on for good (a worker waited for it at exit, and the main process for that worker).
    heartbeat = get_heartbeat_thread(trial._trial_id, study._storage)
    started = False
    try:
        with deferred():
            heartbeat.start()
            started = True
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except StorageLostInTrial as exc:  # the trial stays RUNNING: the next run fails it and runs it again
            lost = exc
        except Exception as exc:
            state, reason, broken = TrialState.FAIL, reason_of(exc), broke_contract(exc)
            run_failed = True
            # The trial keeps one line; `hpotool --debug` (which shows hpotool's DEBUG records) shows where in
            # the user's code it failed, frame by frame: only the innermost frame reached the terminal.
            _log.debug("trial %d failed: %s", trial.number, reason, exc_info=exc)
        except KeyboardInterrupt as exc:
            state, interrupted, reason = TrialState.FAIL, exc, "interrupted"
    except KeyboardInterrupt as exc:  # as the heartbeat started: the objective never ran
        state, interrupted, reason = TrialState.FAIL, exc, "interrupted"
    try:
        with deferred():
            if started:
                heartbeat.join()
    except KeyboardInterrupt as exc:  # after the objective, as its heartbeat thread ended: the trial ran
        # to its end, and is told so below (before: it stayed RUNNING), then the interrupt goes on
        interrupted = exc
    if lost is not None:
        raise lost  # `storage_lost` says so in one line
    kept = None
    with deferred():  # a signal now ends the study after the trial is told, not half-way through
        try:
            if asked is not None:  # MySQL keeps Optuna's datetimes in whole seconds
                record_seconds(study, trial, time.perf_counter() - asked)
            # Every FAIL goes with its reason in one write: the objective's for its training's error, a missing
            # metric, a failed draw (`objective.give_reason`), "interrupted", any other error's message; a
            # failed run's with its mark (`RUN_FAILED`), which --max-failures counts.
            if state == TrialState.FAIL:
                told = _tell_failed(study, trial, reason, run_failed=run_failed)
            else:
                study.tell(trial, value, state=state)
                told = True
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if not study._storage.get_trial(trial._trial_id).state.is_finished():
                raise  # a value Optuna refuses, say: not another process's doing
            told = False
        if not told:  # another process ended it first
            kept = _keep_result(study, trial, study._storage.get_trial(trial._trial_id), value, state)
    if interrupted is not None:
        raise interrupted
    function = trained_by(trial) if broken else None
    if function is not None:
        raise contract_stop(function, trial.number, reason, source)
    return TrialRun(kept, run_failed and told)


def _tell_failed(study: optuna.Study, trial: optuna.Trial, reason: str, *, run_failed: bool = False) -> bool:
    """Tell `trial`, which this process runs, FAIL with `reason` as its `fail_reason`, as `study.tell` does
    (the sampler's `after_trial`, then the state), the state and the reason in one write on SQLite,
    PostgreSQL and MySQL (`stale.fail_trial`), with the mark of a failed run (`stale.RUN_FAILED`) where
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


def _end_interrupted(study: optuna.Study, trial: optuna.Trial, asked: float) -> None:
    """End `trial`, which Ctrl-C or SIGTERM interrupted as this process set it up (asked, its slot and point
    checked), as FAIL ("interrupted"), recording this process as its owner and its seconds; one sent back
    to the queue (WAITING) stays there, and one another process ended first keeps its state and reason."""
    if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
        return
    try:
        trial.set_user_attr("worker", owner())
        record_seconds(study, trial, time.perf_counter() - asked)
        _tell_failed(study, trial, "interrupted")
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another process (a stale check) ended it between the two writes: its state stands


def _keep_result(
    study: optuna.Study,
    trial: optuna.Trial,
    stored: FrozenTrial,
    value: float | list[float] | None,
    state: TrialState | None,
) -> int | None:
    """`trial`, which this process ran, was ended by another process as it ran (a stale check that took
    this live worker for a dead one: its heartbeat went unseen for the grace period): say so, and record
    the result it has, if any (COMPLETE, PRUNED), carrying `result_of`, in the retry the other process
    queued for its values (`_fill_retry`), so the study counts them once; as a new trial where none was
    queued, or where every retry of them failed; returns its id.

    Where another worker has taken the retry up (it runs them, or has run them), the result is not kept
    and that worker's stands: kept too, the values counted twice, one trial over `n_trials` (before). This
    process cannot take over a trial another one runs (its reports and attributes would mix with that
    one's), and stopping that run in favour of this result would leave a moment where neither counts or
    both do; the retry runs to its end, and this process's run of the values is spent."""
    from optuna.study._tell import _check_values_are_feasible

    from hpotool.stale import QUEUED_BY

    cached = trial._cached_frozen_trial  # what the trial holds here: a report not yet written too
    curve = {**stored.intermediate_values, **cached.intermediate_values}
    values: list[float] | None = None
    if state is None and value is not None:
        values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
        if _check_values_are_feasible(study, values) is not None:
            values = None
        state = TrialState.COMPLETE
    elif state == TrialState.PRUNED and curve and len(study.directions) == 1:
        last = curve[max(curve)]
        values = [last] if math.isfinite(last) else None
    how = f"{stored.state.name} ({stored.user_attrs.get('fail_reason', 'no reason given')})"
    if state not in (TrialState.COMPLETE, TrialState.PRUNED) or (state == TrialState.COMPLETE and not values):
        _log.warning(
            "warning: trial #%d was ended as %s by another process while this one ran it; its values are "
            "queued again where that process queued them",
            trial.number,
            how,
        )
        return None
    user_attrs = {k: v for k, v in {**stored.user_attrs, **cached.user_attrs}.items() if k != "fail_reason"}
    system_attrs = {k: v for k, v in {**stored.system_attrs, **cached.system_attrs}.items() if k != QUEUED_BY}
    result = optuna.trial.create_trial(
        state=state,
        values=values,
        params={**stored.params, **cached.params},
        distributions={**stored.distributions, **cached.distributions},
        user_attrs={**user_attrs, "result_of": trial.number},
        system_attrs=system_attrs,
        intermediate_values=curve,
    )
    retries = _retries_of(study.get_trials(deepcopy=False), trial.number)
    kept = _fill_retry(study, [t for t in retries if t.state == TrialState.WAITING], result)
    if kept is None:
        taken = [study._storage.get_trial(t._trial_id) for t in retries]
        holder = next((t for t in taken if t.state != TrialState.FAIL), None)
        if holder is not None:
            where = ran_elsewhere(holder) or "another worker"
            runs = "runs them" if holder.state == TrialState.RUNNING else f"ran them to {holder.state.name}"
            _log.warning(
                "warning: trial #%d was ended as %s by another process while this one ran it to %s: its result "
                "is not kept, as trial #%d, queued to run its values again, %s (%s), and that run counts",
                trial.number,
                how,
                state.name,
                holder.number,
                runs,
                where,
            )
            return None
        kept = _keep_as_new(study, trial.number, retries, result)
        if kept is None:
            return None
    _log.warning(
        "warning: trial #%d was ended as %s by another process while this one ran it to %s: its result is "
        "kept as trial #%d (result_of: %d)",
        trial.number,
        how,
        state.name,
        study._storage.get_trial(kept).number,
        trial.number,
    )
    return kept


def _keep_as_new(
    study: optuna.Study, number: int, retries: list[FrozenTrial], result: FrozenTrial
) -> int | None:
    """Keep `result`, trial `number`'s, as a new trial where every one of its `retries` failed; returns its
    id. Where the last of them was interrupted, a resume queues its values again (`_queue_interrupted_points`):
    this process claims that, as a resume does (`REQUEUED`), so that of the two one holds the point. Before,
    a resume that read the trials as this process kept its result queued them too, and the point ran twice.
    A resume that claimed it first queues a retry, which this process fills (`_fill_retry`) once it is there;
    None (not kept) where it is not there yet: it runs the values."""
    last = retries[-1] if retries else None
    if last is not None and _interrupted(last) and not _claim(study, f"{REQUEUED}{last.number}"):
        waiting = _retries_of(study.get_trials(deepcopy=False), number)
        kept = _fill_retry(study, [t for t in waiting if t.state == TrialState.WAITING], result)
        if kept is None:
            _log.warning(
                "warning: trial #%d was ended by another process while this one ran it: its result is not "
                "kept, as another process (a resume) queues its values again, after trial #%d was interrupted",
                number,
                last.number,
            )
        return kept
    return study._storage.create_new_trial(study._study_id, template_trial=result)


def _retries_of(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """The trials of `trials` queued to run trial `number`'s values again, whatever their state: its retries
    (Optuna's `retry_history`, hpotool's `retry_of`) and theirs, where a retry's worker died in turn."""
    chain, found = {number}, []
    for t in sorted(trials, key=lambda t: t.number):
        history = t.system_attrs.get("retry_history") or []
        if t.number > number and (t.user_attrs.get("retry_of") in chain or any(n in chain for n in history)):
            found.append(t)
            chain.add(t.number)
    return found


def _fill_retry(study: optuna.Study, waiting: list[FrozenTrial], result: FrozenTrial) -> int | None:
    """Take up one of the WAITING retries `waiting` and finish it with `result`; returns its id, or None
    where another worker took each one up first. Taken up as a worker takes up a queued trial (WAITING to
    RUNNING, which one process alone does), so a worker that took it first runs it; before, the retry ran
    the values a second time, one trial over `n_trials`."""
    storage = study._storage
    for t in waiting:
        if not storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
            continue  # another worker took it up: it runs the values
        for key, value in result.user_attrs.items():
            storage.set_trial_user_attr(t._trial_id, key, value)
        for key, value in result.system_attrs.items():
            if key not in t.system_attrs:  # the retry's count (`failed_trial`, `retry_history`) stays
                storage.set_trial_system_attr(t._trial_id, key, value)
        for name, value in result.params.items():
            if name not in t.params:
                dist = result.distributions[name]
                storage.set_trial_param(t._trial_id, name, dist.to_internal_repr(value), dist)
        for step, value in result.intermediate_values.items():
            storage.set_trial_intermediate_value(t._trial_id, step, value)
        storage.set_trial_state_values(t._trial_id, result.state, result.values)
        return t._trial_id
    return None


def trained_by(plan: StudyPlan, trial: optuna.Trial | FrozenTrial) -> str | None:
    """The user's training function `trial` ran: its whole trainer section's, where the search chooses one,
    or the run config's (None: hpotool's Trainer)."""
    sections = plan.opt.search_space.get("trainer")
    if isinstance(sections, CategoricalParam) and "trainer" in trial.params:
        chosen = sections.value_of(trial.params["trainer"])
        if isinstance(chosen, dict) and "function" in chosen:
            return str(chosen["function"])
    return plan.run.trainer.function if plan.run.trainer else None


def run_trials(
    study: optuna.Study,
    plan: StudyPlan,
    stop: Event | None = None,
    *,
    observer: StudyObserver | None = None,
    max_failures: int = 5,
    poll: float = POLL_S,
    tracker: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    alone_since: int | None = None,
    streak_of: Callable[[optuna.Study], int] | None = None,
) -> FailureGuard:
    """Run trials of `study` until it holds `n_trials` finished trials, the timeout passes, `stop` is set,
    `max_failures` trials in a row fail in this run, or the sampler has nothing left to try (the last
    two set `stop`). `tracker` (`make_tracker`) logs each trial this process ran. `alone_since`: the number
    of trials the study held when this process opened it seeing no other process (its sampler's seeds are
    reproducible ones, `factories.study_sampler`), None where its seeds are its own already. `streak_of`:
    the run's failed trials in a row, where other processes share the run (`FailureGuard`).

    Returns:
        The failure guard, which says whether failures or the sampler stopped the loop, and the first error.
    """
    storage = study._storage
    objective = make_objective(plan, observer)
    target, timeout = trial_target(plan), plan.opt.timeout
    guard = FailureGuard(max_failures, streak_of=streak_of)
    start = time.monotonic()
    # Heartbeats are written every `interval` seconds, so a trial turns stale at that pace: looking once
    # per interval (not before every trial: ~10 ms of queries each) finds dead workers' trials as soon.
    # The same look finds the RUNNING trials of dead processes of this machine (one query, and a signal 0
    # per running trial), as a resumed run does: storages without a heartbeat (Redis, journal files) have
    # nothing else, and a heartbeat never fails a trial whose worker died before its first beat (while
    # it waited for a slot or for earlier brute-force draws), which then held its slot for good.
    interval, grace = heartbeat_settings()
    beating = has_heartbeat(storage)
    next_stale_check = start
    wait_note = WaitNote(plan, grace)  # other processes' trials have taken every slot for so long
    ownerless_note = OwnerlessNote(grace)
    # `study_version` as of the last read of the trials while the run waits (None: read it with them), so a
    # wait reads them again only once it changes (`waiting.wait_for_change`)
    version: Hashable = None
    # As Study.optimize does: a sampler with nothing left to try (grid, brute force) calls study.stop() from
    # `tell`, which Optuna allows only inside its optimize loop; this loop then ends the same way.
    study._stop_flag = False
    if sampler_exhausted(study):  # a complete grid, resumed: asking would run one of its points again
        guard.exhausted = True
        return guard
    study._thread_local.in_optimize_loop = True
    try:
        while not (stop is not None and stop.is_set()):
            raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed between trials
            now = time.monotonic()
            if timeout is not None and now - start >= timeout:
                break
            if now >= next_stale_check:
                fail_stale_trials(study)
                fail_dead_local_trials(study, silent_only=beating)
                fail_ownerless_trials(study, grace)
                next_stale_check = now + interval
            if version is None:
                version = study_version(study)
            trials = _finished_and_running(study)
            if sum(t.state in FINISHED for t in trials) >= target:
                break
            waiting = len(trials) >= target  # every slot is taken: wait for one to finish or fail
            alone = multiprocessing.parent_process() is None  # a worker's main process says it
            if not beating and alone:
                wait_note.look(trials, waiting, now)
            # Until the trials are read again: the next look for stale trials, the timeout, a note due.
            until = min(next_stale_check, math.inf if timeout is None else start + timeout)
            if waiting:
                due = ownerless_note.look(study, trials, say=alone)
                if due is not None:  # fail it as its grace ends, not up to `interval` later
                    next_stale_check = min(next_stale_check, now + due)
                notes = (ownerless_note.note_in, wait_note.due_in(now) if not beating and alone else None)
                until = min(next_stale_check, until, *(now + s for s in notes if s is not None))
                version = wait_for_change(study, version, poll, until, stop)
                continue
            if _all_started(study):  # other workers run the last points: wait, run none twice
                if sampler_exhausted(study, running_done=False):
                    guard.exhausted = True
                    break
                version = wait_for_change(study, version, poll, until, stop)
                continue
            version = None
            trial: optuna.Trial | None = None
            try:
                # "heartbeat is supposed to be used with Study.optimize": it is, below. A signal during `ask`
                # waits until it returns, so the trial it created is told FAIL below, not left RUNNING.
                with warnings.catch_warnings(), deferred():
                    warnings.simplefilter("ignore", UserWarning)
                    asked = time.perf_counter()
                    trial = study.ask()
                if not has_slot(study, trial, target):  # another process asked at the same moment
                    _send_back(study, trial)
                    time.sleep(poll)
                    continue
                if not _holds_its_point(study, trial):  # the grid had no point left to pick, or another
                    # trial picked the same one: wait for the last points (random: two that both stepped back
                    # do not meet again)
                    _send_back(study, trial)
                    time.sleep(poll * (1 + random.random()))
                    continue
                trial.set_user_attr("worker", owner())
                if alone_since is not None:  # this process's first trial: see _own_seeds (a grid or brute
                    # force picks its points apart by the trials' numbers already, and a new sampler's
                    # before_trial would pick this trial's grid point again)
                    coordinated = isinstance(
                        study.sampler, (optuna.samplers.GridSampler, optuna.samplers.BruteForceSampler)
                    )
                    if not coordinated and _others_asked(study, alone_since, trial.number):
                        _own_seeds(study, trial, plan, alone_since)
                    alone_since = None
                if isinstance(study.sampler, optuna.samplers.BruteForceSampler):
                    _wait_for_earlier_draws(study, trial.number, plan, poll)
                    # Every point run or drawn by the trials asked before it, which this process saw as
                    # free before it asked: Optuna's brute force would run one again (a queued trial, such
                    # as a retry, runs its own values).
                    own = storage.get_trial_system_attrs(trial._trial_id)
                    drawn_by_others = not _brute_force_point_left(study, study.sampler)
                    if not _own_values(own) and drawn_by_others and _waits_for_running(study):
                        _send_back(study, trial)
                        time.sleep(poll * (1 + random.random()))
                        continue
            except KeyboardInterrupt:
                # One sent back to the queue is left there: told FAIL, it raised 'Cannot tell a WAITING trial'.
                # A second signal waits until it is told (it left the trial RUNNING).
                with deferred():
                    if trial is not None:
                        _end_interrupted(study, trial, asked)
                raise
            ran = _run_trial(study, trial, objective, lambda t: trained_by(plan, t), plan.run_from, asked)
            frozen = storage.get_trial(trial._trial_id if ran.kept is None else ran.kept)
            if observer is not None:
                observer.trial_finished(study, frozen)
            if tracker is not None:
                track(tracker, study, frozen)
            # A trial another process failed as stale while this one ran it (to its end, its result not kept;
            # or stopped by that FAIL as it trained) is no failure of the training: before, it counted as one,
            # and --max-failures could stop a run whose training never failed.
            guard(study, frozen, failed=ran.failed)
            # study.stop() in `tell`: the sampler has nothing left, by its count of the dead workers' trials
            guard.exhausted = study._stop_flag and _still_exhausted(study)
            if guard.tripped or guard.exhausted:
                if stop is not None:
                    stop.set()
                break
    finally:
        study._thread_local.in_optimize_loop = False
    return guard


class WaitNote:
    """Says once (`_waiting_for_other_machines`) that a run has waited the heartbeat's grace period for the
    study's last trials, running on other machines, on a storage without heartbeat (Redis, journal files),
    where a machine gone for good would keep it waiting silently for ever. A single process looks before
    each trial; with --workers, their main process looks (each worker would say it)."""

    def __init__(self, plan: StudyPlan, grace: float) -> None:
        self.plan, self.grace = plan, grace
        self.since: float | None = None  # since when this wait has lasted; None while not waiting
        self.said = False

    def look(self, trials: list[FrozenTrial], waiting: bool, now: float) -> None:
        """`trials`: the study's finished and running trials; `waiting`: whether the run waits for a slot."""
        if self.said or not waiting:
            self.since = None  # a slot came free: a later wait counts from its own start
            return
        if self.since is None:
            self.since = now
        elif now - self.since >= self.grace:
            self.said = _waiting_for_other_machines(self.plan, trials)

    def due_in(self, now: float) -> float | None:
        """Seconds until the next `look` may say it; None where it has said it, the run does not wait, or
        the grace has passed (it says it at the look that first finds a trial of another machine running:
        that trial's start is a change to the study, which a waiting run reads the trials again for)."""
        if self.said or self.since is None or now - self.since >= self.grace:
            return None
        return self.since + self.grace - now


OWNERLESS_NOTE_AFTER_S = 5.0  # an ownerless trial this old is no owner write on its way (those take ms)


class OwnerlessNote:
    """Says once that a run waiting for a slot waits for a trial left RUNNING with no owner recorded, for
    how long at most, and what then (`stale.fail_ownerless_trials`): a resumed run waited up to the grace
    period (60 s) without a word before it failed that trial. The grace is not shortened: the trial's
    process may be alive, waiting out a lock to record itself."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.said: set[int] = set()
        self.note_in: float | None = None  # seconds until a trial of the last look is old enough to say

    def look(self, study: optuna.Study, trials: list[FrozenTrial], *, say: bool) -> float | None:
        """Called while the run waits for a slot, every one taken by `trials`; returns the seconds until the
        first of their ownerless trials is past its grace (None where there is none), and says so where
        `say` (once for each such trial)."""
        self.note_in = None
        left = ownerless_left(trials, self.grace, study._storage)
        if not left:
            return None
        # A live process records its owner milliseconds after `ask`: one just asked (the last slot, which
        # this run waits for) is no wait to announce; one without an owner for seconds is.
        after = min(OWNERLESS_NOTE_AFTER_S, self.grace / 2)
        young = [
            s - (self.grace - after) for n, s in left.items() if n not in self.said and self.grace - s < after
        ]
        if say and young:  # the run looks again then, whether or not the study changed meanwhile
            self.note_in = max(min(young), 0.0)
        old = {n: s for n, s in left.items() if self.grace - s >= after}
        if (
            say and old and not old.keys() <= self.said and max(old.values()) > 0
        ):  # one past it: failed next look
            self.said |= old.keys()
            one = len(old) == 1
            _log.warning(
                "note: waiting up to %d s for %s %s, RUNNING with no owner recorded (%s ended or lost the "
                "storage before recording itself, or is still waiting to); a trial still without one %d s "
                "after its start is marked FAIL, and this run takes its slot",
                math.ceil(max(old.values())),
                "trial" if one else "trials",
                ", ".join(f"#{n}" for n in sorted(old)),
                "the process that started it" if one else "the processes that started them",
                self.grace,
            )
        return min(left.values())


def _waiting_for_other_machines(plan: StudyPlan, trials: list[FrozenTrial]) -> bool:
    """Say that the run waits for the study's last trials, running on other machines (`WaitNote`); returns
    whether it said it (False where none runs elsewhere: other processes of this machine)."""
    elsewhere = [t for t in trials if t.state == TrialState.RUNNING and not on_this_host(t)]
    if not elsewhere:
        return False
    from hpotool.storage import shown_url

    def where(t: FrozenTrial) -> str:
        who = t.user_attrs.get("worker")
        return f" ({who.get('host')}, pid {who.get('pid')})" if isinstance(who, dict) else ""

    listed = ", ".join(f"#{t.number}{where(t)}" for t in elsewhere)
    _log.warning(
        "note: waiting for the study's last trials, running on other machines: %s. This storage has no "
        "heartbeat to tell a dead machine from a live one: if one is gone, stop every run of the study and "
        "run hpotool fail-stale --study-name %s --storage %s --all-running",
        listed,
        quote(plan.opt.study_name),
        quote(shown_url(plan.storage_url)),
    )
    return True


def _others_asked(study: optuna.Study, since: int, mine: int) -> bool:
    """Whether another process has asked a trial since the study held `since` trials (one numbered `since`
    or more, other than this process's first, `mine`, has left the queue)."""
    asked = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False, states=asked)
    return any(t.number >= since and t.number != mine for t in trials)


def _own_seeds(study: optuna.Study, trial: optuna.Trial, plan: StudyPlan, existing: int) -> None:
    """Give this process a sampler seeded with its host and process id, before `trial` draws a value.

    A process that resumes an idle study seeds its sampler from the seed and the trial count alone, so a
    rerun gives the same study; the same command resumed at one moment on several machines did so on each
    and they drew the same values (trials 1 and 2 identical). Optuna draws at the first suggest, after
    `ask`: the later of two processes to ask sees the other's trial here at the latest, and draws its own.
    Their first trials are the only ones to check: a process that opens the study later counts another
    number of trials, which seeds it apart.
    """
    study.sampler = study_sampler(
        plan.opt, fixed=leaf_values(plan.run), existing=existing, salt=process_salt()
    )
    study.sampler.before_trial(study, study._storage.get_trial(trial._trial_id))


def _send_back(study: optuna.Study, trial: optuna.Trial) -> None:
    """Put `trial` back in the queue untrained, for the next `ask` anywhere to take (its grid point void:
    taken, it picks one again). A signal waits until it is there."""
    from hpotool.grid import GridSampler

    with deferred():
        if isinstance(study.sampler, GridSampler):
            study.sampler.void_point(study, trial._trial_id)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)


def _holds_its_point(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether `trial` may run the grid point it picked: no other trial ran it or holds it (without a
    heartbeat, a trial of another machine may be a dead worker's, whose point one trial here runs again, as
    Optuna's grid does rather than wait for ever: `GridSampler.holds_alone`). True for other samplers."""
    from hpotool.grid import GridSampler

    sampler = study.sampler
    return not isinstance(sampler, GridSampler) or sampler.holds_alone(study, trial._trial_id)


def _waits_for_running(study: optuna.Study) -> bool:
    """Whether a brute-force worker waits for the running trials' points rather than run one again: Optuna's
    brute force counts a running point as run, and the search ends without running it again; made with
    `avoid_premature_stop` it does not, and without a heartbeat a dead worker of another machine would keep
    its trial RUNNING for ever, so then a worker runs again a point that no process of this machine runs
    (hpotool's sampler draws no other: `BruteForceSampler.run_here_as_run`), and waits where there is none."""
    from hpotool.brute_force import BruteForceSampler

    sampler = study.sampler
    if not getattr(sampler, "_avoid_premature_stop", False) or has_heartbeat(study._storage):
        return True
    if not isinstance(sampler, BruteForceSampler):  # a subclass of Optuna's may draw any running point
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return all(on_this_host(t) for t in running)
    built = _brute_force_tree(study, sampler, sampler.run_here_as_run)
    return built is not None and built[0].children is not None and not built[0].is_any_expandable(False)


def _own_values(system_attrs: Mapping[str, Any]) -> bool:
    """Whether a trial with these system attributes runs values of its own: queued (a warm start, the retry
    of a dead worker's trial) or a heartbeat's retry."""
    return "fixed_params" in system_attrs or "failed_trial" in system_attrs


def _spare(trial: FrozenTrial) -> bool:
    """Whether `trial` is waiting in the queue with no values of its own to run: sent back untrained (no
    slot of `n_trials` left, or no grid point), it runs whatever the sampler proposes when taken. Unlike a
    queued point (a warm start, a retry), it leaves a grid or brute-force search complete."""
    return trial.state == TrialState.WAITING and not trial.params and not _own_values(trial.system_attrs)


def _queued(study: optuna.Study) -> list[FrozenTrial]:
    """The waiting trials that run values of their own (not `_spare`)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if not _spare(t)]


def _still_exhausted(study: optuna.Study) -> bool:
    """Whether a grid or brute-force search that said it is complete still is once the running trials of
    dead workers of this machine are failed (heartbeat or not: their process is gone) and their points
    queued again: it is not while a point waits in the queue. Brute force counts a running or failed point
    as run, so a worker killed mid-trial ended the search: the command exited with its trial RUNNING, or
    its retry queued, and its point not run (the heartbeat fails such a trial only after its grace)."""
    if not isinstance(study.sampler, optuna.samplers.GridSampler | optuna.samplers.BruteForceSampler):
        return True  # another sampler's study.stop() is its own
    fail_dead_local_trials(study)
    study._stop_flag = sampler_exhausted(study)
    return study._stop_flag


def _wait_for_earlier_draws(study: optuna.Study, number: int, plan: StudyPlan, poll: float) -> None:
    """Wait until every running trial asked before trial `number` has drawn its values (at most
    `DRAW_WAIT_S`, and once for a trial: a process of another machine that died between asking and drawing
    never will; one of this machine that died is not waited for). Brute force draws a trial's values from
    the trials stored as it draws, so two workers that asked at the same moment drew the same point: a
    3-point search with --workers 2 ran each point twice."""
    space, fixed = plan.opt.search_space, leaf_values(plan.run)
    wait_for_earlier_trials(
        study, number, lambda t: drawn(t.params, space, fixed), poll=poll, limit_s=DRAW_WAIT_S
    )


def _all_started(study: optuna.Study) -> bool:
    """Whether the study's grid or brute-force sampler has every point finished or running and nothing
    queued: asking now, either would run a running point again."""
    from hpotool.grid import GridSampler

    sampler = study.sampler
    if isinstance(sampler, GridSampler):  # a point only another machine's trial runs, without a heartbeat,
        # is not started: one trial here runs it again (`GridSampler.all_started`)
        return sampler.all_started(study) and not _queued(study)
    if isinstance(sampler, optuna.samplers.BruteForceSampler):
        return _brute_force_started(study, sampler) and not _queued(study) and _waits_for_running(study)
    return False


def sampler_exhausted(study: optuna.Study, *, running_done: bool | None = None) -> bool:
    """Whether the study's grid or brute-force sampler has run every point already. Optuna's samplers say
    so only in `tell` (study.stop()); a resumed study's first `ask` would run a point again.

    A brute-force point that is running counts as run as its sampler counts it (unless it was made with
    `avoid_premature_stop`), or as `running_done` says: False for a worker waiting for the last points."""
    sampler = study.sampler
    if _queued(study):  # queued points: they run whatever it says
        return False
    if isinstance(sampler, optuna.samplers.GridSampler):
        return sampler.is_exhausted(study)
    if isinstance(sampler, optuna.samplers.BruteForceSampler):
        if running_done is None:
            running_done = not sampler._avoid_premature_stop
        return _brute_force_done(study, sampler, running_done=running_done)
    return False


def _brute_force_tree(
    study: optuna.Study,
    sampler: optuna.samplers.BruteForceSampler,
    seen: Callable[[list[FrozenTrial]], list[FrozenTrial]] = list,
) -> tuple[Any, list[FrozenTrial]] | None:
    """The brute-force sampler's tree of the study's points and the trials it holds, as its after_trial
    builds them with no params fixed, of the trials as `seen` gives them; None before any trial."""
    from optuna.samplers._brute_force import _TreeNode

    trials = seen([t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING])
    if not trials:
        return None
    tree = _TreeNode()
    sampler._populate_tree(tree, trials, {})
    return tree, trials


def _brute_force_done(
    study: optuna.Study, sampler: optuna.samplers.BruteForceSampler, *, running_done: bool
) -> bool:
    """Whether every point of the brute-force search has finished (or is running, with `running_done`).
    Where the search counts a running point as run (Optuna's default, not `avoid_premature_stop`), a worker
    waiting for the last points waits for none once every running trial is another machine's without a
    heartbeat (`may_be_lost`): such a trial may never end."""
    built = _brute_force_tree(study, sampler)
    if built is not None and not running_done and not sampler._avoid_premature_stop:
        beating = has_heartbeat(study._storage)
        running = [t for t in built[1] if t.state == TrialState.RUNNING]
        running_done = bool(running) and all(may_be_lost(t, beating) for t in running)
    # A tree with no values drawn yet (another worker's first trial, just asked) has every point to run.
    return (
        built is not None and built[0].children is not None and not built[0].is_any_expandable(running_done)
    )


def _brute_force_point_left(study: optuna.Study, sampler: optuna.samplers.BruteForceSampler) -> bool:
    """Whether a point of the brute-force search is neither finished nor drawn by a running trial."""
    built = _brute_force_tree(study, sampler)
    return built is None or built[0].children is None or built[0].count_unexpanded(True) > 0


def _brute_force_started(study: optuna.Study, sampler: optuna.samplers.BruteForceSampler) -> bool:
    """Whether every point of the brute-force search has finished or is running, counting a running trial
    that has not suggested its values yet (another worker's, just asked) as taking one point left."""
    built = _brute_force_tree(study, sampler)
    if built is None or built[0].children is None:  # no point drawn yet: nothing to wait for
        return False
    tree, trials = built
    unsampled = sum(t.state == TrialState.RUNNING and not t.params for t in trials)
    return bool(tree.count_unexpanded(True) <= unsampled)


Tracker: TypeAlias = "MlflowTracker"
_log = logging.getLogger("hpotool")


def make_tracker(plan: StudyPlan) -> Tracker | None:
    """The MLflow logger the config asks for, or None; an `HpoError` when MLflow cannot be used.

    The main process makes it before any worker starts, so a new MLflow database is created (MLflow runs
    its migrations) and the experiment is created once, not by every worker at the same moment.
    """
    tracking = plan.opt.tracking
    if tracking is None or tracking.mlflow is None:
        return None
    from hpotool.tracking import MlflowTracker

    return MlflowTracker(tracking.mlflow, plan.opt.study_name)


def tracking_off(number: int, exc: BaseException) -> str:
    """The warning for trial `number`, which the tracker could not log: `exc`, in one line."""
    from hpotool.tracking import first_line

    return (
        f"warning: MLflow could not log trial #{number} ({first_line(exc)}); tracking is off for the rest of "
        "this run, and the study goes on"
    )


def track(
    tracker: Callable[[optuna.Study, FrozenTrial], None], study: optuna.Study, trial: FrozenTrial
) -> None:
    """Log `trial`; an error of the tracker is one warning line, the tracker logs no later trial of this
    process (a server that went away cost minutes of retries after every trial), and the study goes on."""
    try:
        tracker(study, trial)
    except Exception as exc:
        _log.warning("%s", tracking_off(trial.number, exc))


def prepare_resume(study: optuna.Study, plan: StudyPlan) -> int:
    """Clean up after dead local processes and enqueue the warm start; returns the finished count."""
    fail_dead_local_trials(study)
    fail_ownerless_trials(study, heartbeat_settings()[1])
    trials = study.get_trials(deepcopy=False)
    _drop_retries_outside_the_space(study, plan, trials)
    _drop_unlisted_warm_starts(study, plan, trials)
    queue_interrupted(study, plan)
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def queue_interrupted(study: optuna.Study, plan: StudyPlan) -> None:
    """Queue the warm start's points the study has not run (all of them in a new study; a point whose trial
    was interrupted never ran) and the other chosen values of interrupted trials (`_queue_interrupted_points`).
    A resume does, and so does the main process of `--workers` once a worker alone was stopped by a signal:
    the others run its point, rather than finish the study without it."""
    trials = study.get_trials(deepcopy=False)
    for i, params in enumerate(plan.opt.enqueue):  # warm start: known-good configurations run first
        params = encode_params(params)  # as Optuna stores them: a list choice as its label
        if any(_tried(trial, params) for trial in trials):
            continue
        with deferred():  # claimed, then queued: a signal between the two would lose the point
            if _claim(study, _warm_start_key(params, trials)):  # not another process queueing it now
                enqueue_owned(study, params, plan.warm_start_attrs(i))
    if _queue_interrupted_points(study):
        _drop_retries_outside_the_space(study, plan, study.get_trials(deepcopy=False))


def _queue_interrupted_points(study: optuna.Study) -> bool:
    """Queue once more, once, the values of each trial Ctrl-C or SIGTERM interrupted that were chosen rather
    than drawn freely: a queued point's (a warm start of `--enqueue-from` or an earlier run, whatever this
    command's flags; the optimize config's `enqueue` list queues its own), a dead trial's retry's (`retry_of`,
    or Optuna's heartbeat retry: `failed_trial`), and under brute force or QMC every point, which the search
    counts as run once its trial has ended (brute force ended without it; QMC's sequence skipped it). The
    new trial carries `retry_of`; a later trial that holds or ran the values (the enqueue list's, an earlier
    resume's) queues none, nor does a resume that another, at the same moment, beat to claim the trial
    (`_claim`). Returns whether it queued any."""
    sequence = isinstance(study.sampler, optuna.samplers.BruteForceSampler | optuna.samplers.QMCSampler)
    trials = study.get_trials(deepcopy=False)
    later: list[tuple[int, FrozenTrial | dict[str, Any]]] = [(t.number, t) for t in trials]
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = False
    for t in trials:
        if not _interrupted(t) or t.number in retried:
            continue
        fixed = t.system_attrs.get("fixed_params", {})
        if "retry_of" in t.user_attrs or "failed_trial" in t.system_attrs or sequence:
            values = {**fixed, **t.params}
        elif t.user_attrs.get(WARM_START) == "enqueue":
            continue  # the config rules: queued above while the list holds it
        else:
            values = dict(fixed)
        if not values:
            continue  # drew nothing of its own: the sampler draws anew
        if any(n > t.number and _holds(q, v) for n, q in later for v in (fixed, values) if v):
            continue
        with deferred():  # claimed, then queued: a signal between the two would lose the point
            if not _claim(study, f"{REQUEUED}{t.number}"):
                continue  # another process resuming at the same moment queued them
            _enqueue_again(study, values, t)
        later.append((sys.maxsize, values))
        queued = True
    return queued


# The study system attr that one process claims (`_claim`) to queue an interrupted trial's values again.
REQUEUED = "hpotool:requeued:"
# ... and to queue a point of the enqueue list (`_warm_start_key`).
WARM_QUEUED = "hpotool:warm-start:"


def _warm_start_key(params: Mapping[str, Any], trials: list[FrozenTrial]) -> str:
    """The claim (`_claim`) to queue the warm-start point `params` once more, of all the processes that see
    `trials`: the point (hashed: a key holds 512 characters) and how many trials have held it, so two
    resumes at the same moment queue it once (before: each checked, then queued, and it ran twice), and a
    resume after its trial was interrupted queues it again."""
    import hashlib
    import json

    point = hashlib.sha256(json.dumps(params, sort_keys=True, default=repr).encode()).hexdigest()[:32]
    return f"{WARM_QUEUED}{point}:{sum(_held(t, params) for t in trials)}"


def _claim(study: optuna.Study, key: str) -> bool:
    """Whether this process is the only one to claim `key` in `study`: on SQLite, PostgreSQL and MySQL by an
    insert the database lets one process make (`FastReadRDBStorage.claim`). Optuna's journal storages (Redis,
    journal files) apply every write in the journal's order, and hold no such conditional write: there
    every caller claims it (two resumes at the same moment may both queue a point)."""
    from hpotool.rdb import FastReadRDBStorage

    backend = getattr(study._storage, "_backend", study._storage)
    return not isinstance(backend, FastReadRDBStorage) or backend.claim(study._study_id, key)


# Optuna's RetryHeartbeatStaleTrialCallback counts a stale trial's retries in these system attributes.
RETRY_COUNT = ("failed_trial", "retry_history")


def _enqueue_again(study: optuna.Study, values: dict[str, Any], interrupted: FrozenTrial) -> None:
    """Queue `values` as `study.enqueue_trial` does, carrying `retry_of` and the interrupted trial's retry
    count (`RETRY_COUNT`), so a stale retry's values count their deaths on after an interrupt rather than
    afresh; the interrupt itself is no death and is not counted."""
    count = {k: interrupted.system_attrs[k] for k in RETRY_COUNT if k in interrupted.system_attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": values, **count},
            user_attrs={"retry_of": interrupted.number},
        )
    )


def _holds(trial: FrozenTrial | dict[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether `trial` ran or holds `params` (`_tried`); a dict: values queued just now."""
    if isinstance(trial, dict):
        return trial.keys() == params.keys() and all(_same(v, trial[k]) for k, v in params.items())
    return _tried(trial, params)


def _drop_retries_outside_the_space(study: optuna.Study, plan: StudyPlan, trials: list[FrozenTrial]) -> None:
    """A dead (or interrupted) trial's retry (`retry_of`, or Optuna's heartbeat retry: `failed_trial`) still
    waiting with a value the search space no longer holds (a range or step changed with --allow-changed-config
    since its worker died, or Ctrl-C stopped it) is marked FAIL ('dropped: ...'): it would run that value,
    outside the space, in the new experiment, with only Optuna's warning (none for a heartbeat retry, which
    carries its old params)."""
    for t in trials:
        if t.state != TrialState.WAITING:
            continue
        if "retry_of" not in t.user_attrs and "failed_trial" not in t.system_attrs:
            continue
        values = {**t.system_attrs.get("fixed_params", {}), **t.params}
        outside = [
            f"{name}={format_value(values[name])} (the space: {_range(p)})"
            for name, p in plan.opt.search_space.items()
            if name in values and isinstance(p, IntParam | FloatParam) and not contains(p, values[name])
        ]
        if not outside:
            continue
        reason = f"dropped: {', '.join(outside)} lies outside the search space"
        if fail_trial(study._storage, t._trial_id, reason, waiting=True):  # not one a worker took up now
            failed = t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial"))
            how = "interrupted" if any(_interrupted(f) for f in trials if f.number == failed) else "dead"
            _log.warning(
                "warning: trial #%d, queued to run %s trial #%s's values again, is not run: %s now (marked "
                "FAIL)",
                t.number,
                how,
                failed,
                reason.removeprefix("dropped: "),
            )


def _range(p: IntParam | FloatParam) -> str:
    """`p`'s values in words: `0.001 to 0.005`, `8 to 32 step 16`."""
    step = p.step not in (None, 1) or (isinstance(p, FloatParam) and p.step is not None)
    return f"{format_value(p.low)} to {format_value(p.high)}" + (
        f" step {format_value(p.step)}" if step else ""
    )


def _drop_unlisted_warm_starts(study: optuna.Study, plan: StudyPlan, trials: list[FrozenTrial]) -> None:
    """The config rules: a point an earlier run queued from the optimize config's enqueue list, still
    waiting, that the list no longer holds, is marked FAIL ('dropped: ...') so it does not run (Optuna
    cannot delete a trial; a FAIL trial takes no slot of n_trials). Studies of earlier hpotool versions
    carry no mark: there a waiting point the stored config's enqueue list held counts as one.

    Only on an idle study: while another process works on it (`in_use`: a machine that created it with its
    own enqueue list and is starting its workers, say), its queued points are its work, and stay queued."""
    stored = [encode_params(p) for p in study.user_attrs.get("optimize_config", {}).get("enqueue") or []]
    listed = [encode_params(p) for p in plan.opt.enqueue]
    unlisted = []
    for t in trials:
        if t.state != TrialState.WAITING or "retry_of" in t.user_attrs:
            continue
        queued = t.user_attrs.get(WARM_START) == "enqueue" or (
            not t.user_attrs and any(_tried(t, params) for params in stored)  # an older hpotool's: unmarked
        )
        if queued and not any(_tried(t, params) for params in listed):
            unlisted.append(t)
    if not unlisted:
        return

    def shown(points: list[FrozenTrial]) -> str:
        return "; ".join(
            ", ".join(f"{k}={format_choice(v)}" for k, v in t.system_attrs.get("fixed_params", {}).items())
            for t in points
        )

    busy = in_use(study, trials, heartbeat_settings()[1])
    if busy is not None:
        _log.warning(
            "note: study %r is in use (%s): %d point(s) queued from an enqueue list that this optimize config "
            "does not hold are left queued, and will run: %s",
            study.study_name,
            busy,
            len(unlisted),
            shown(unlisted),
        )
        return
    reason = "dropped: no longer in the optimize config's enqueue list"
    # one a worker took up as this process looked (a machine starting at this moment) runs: it is not failed
    dropped = [t for t in unlisted if fail_trial(study._storage, t._trial_id, reason, waiting=True)]
    if dropped:
        _log.warning(
            "warning: %d point(s) an earlier run queued from the optimize config's enqueue list are no longer "
            "listed there and will not run (marked FAIL, 'dropped'): %s",
            len(dropped),
            shown(dropped),
        )


def interrupted_idle(study: optuna.Study, pids: Collection[int], before: set[int]) -> str | None:
    """What the summary says of a Ctrl-C or SIGTERM that found none of the processes `pids` (this one, its
    workers) running a trial, or None when one ended its trial so ("interrupted"). The study's last trials
    run elsewhere (another machine, another command): this run waited for them, and they run on."""
    fails = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if any(t.number not in before and _interrupted(t) and run_by(t, pids) for t in fails):
        return None
    others = [f"#{t.number}" for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if not others:
        return "interrupted between trials: none was running; run the same command to resume"
    return (
        f"interrupted while waiting for the trials that other processes run ({', '.join(others)}): no trial "
        f"of this run was running; run the same command to resume"
    )


def _interrupted(trial: FrozenTrial) -> bool:
    """Whether Ctrl-C or SIGTERM ended `trial` (FAIL, "interrupted"): it never finished its run."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") == "interrupted"


def _tried(trial: FrozenTrial, params: Mapping[str, Any]) -> bool:
    """Whether `trial` ran `params`, or holds them in the queue, as Optuna's `skip_if_exists` tells: a
    warm-start point whose trial was interrupted (Ctrl-C, SIGTERM) never ran, and is queued again."""
    return not _interrupted(trial) and _held(trial, params)


def _held(trial: FrozenTrial, params: Mapping[str, Any]) -> bool:
    """Whether `trial` holds `params` (queued, or drawn), whatever its state."""
    ran = trial.system_attrs.get("fixed_params", trial.params)
    if ran.keys() != params.keys():
        return False
    return all(_same(value, ran[name]) for name, value in params.items())


def _same(value: Any, other: Any) -> bool:
    if isinstance(value, float) and isinstance(other, float):  # as Optuna's np.isclose(atol=0)
        return math.isclose(value, other, rel_tol=1e-5)
    return bool(value == other)


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


def run_study(
    plan: StudyPlan,
    observer: StudyObserver | None = None,
    *,
    max_failures: int = 5,
    on_open: Callable[[str | None], None] | None = None,
) -> StudySummary:
    """Run the study in this process until it holds `n_trials` finished trials, the timeout passes, or
    `max_failures` trials in a row fail. Re-running after an interruption runs only what is missing.

    Ctrl-C or SIGTERM ends the current trial as FAIL ("interrupted"); the summary says so and carries the
    signal in `interrupted`, for the CLI's exit code.

    Raises:
        HpoError: the configs or the study do not fit, or the storage stopped answering (`storage_lost`).
    """
    try:
        return _run_study(plan, observer, max_failures, on_open)
    except Exception as exc:
        if isinstance(exc, HpoError):
            raise
        deleted = study_deleted(plan.opt.study_name, plan.storage_url, exc)
        if deleted is not None:
            raise deleted from None
        if lost_connection(exc) is None:
            raise
        raise storage_lost(plan.storage_url, exc) from exc  # --debug shows the driver's error


class OpenedStudy(NamedTuple):
    """A study opened for a run (`open_for_run`), with what the run's summary compares against."""

    study: optuna.Study
    salt: tuple[int, ...]  # `factories.process_salt()` where other processes sample the study too
    existing: int  # trials it held when opened, before the warm start's queue: as open_study counts
    target: int  # `trial_target`
    before: set[int]  # the numbers of the trials finished before this run
    done: int  # finished trials that count towards the target, once the resume is prepared


def open_for_run(
    plan: StudyPlan, observer: StudyObserver | None, on_open: Callable[[str | None], None] | None = None
) -> OpenedStudy:
    """Open (or create) the study, prepare its resume and tell the observer: the start of a run of one
    process or of several workers alike. `on_open` is called once the study is open and checked (a study
    that will not open, or not as the config says, raises first), with the `new study ...` line when this
    process created it (see `open_study`), else None: the CLI prints the plan's notes then, so that a
    refusal is not read after notes about a run that will not happen."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the observer shows each trial instead
    created: list[str] = []
    study, salt = open_study(plan, created.append if on_open is not None else None)
    if on_open is not None:
        on_open(created[0] if created else None)
    say_and_clear(study)  # why the last run stopped, where it could not say it (`|& head`)
    existing = len(study.get_trials(deepcopy=False))
    target, before = trial_target(plan), finished_numbers(study)
    done = prepare_resume(study, plan)
    if observer is not None:
        # Whether this process created the study is known where its `new study` line is asked for (the CLI)
        observer.study_started(study, plan.opt.n_trials, done, joined=on_open is not None and not created)
    return OpenedStudy(study, salt, existing, target, before, done)


def _run_study(
    plan: StudyPlan,
    observer: StudyObserver | None,
    max_failures: int,
    on_open: Callable[[str | None], None] | None,
) -> StudySummary:
    start = time.perf_counter()
    tracker = make_tracker(plan)  # before the study: a tracking store that cannot be used writes nothing
    study, salt, existing, target, before, done = open_for_run(plan, observer, on_open)
    guard, interrupted = None, None
    fallback = IndependentSampling()
    if tracker is not None:
        tracker.end_cut_off_runs(study)
    if done < target:
        with signals_interrupt(), independent_sampling(study.sampler, fallback):
            try:
                guard = run_trials(
                    study,
                    plan,
                    observer=observer,
                    max_failures=max_failures,
                    tracker=tracker,
                    alone_since=None if salt else existing,
                )
            except KeyboardInterrupt as exc:
                interrupted = signal_of(exc)
            finally:
                if tracker is not None:
                    tracker.close()
    ran_now = ran_now_states(study, {os.getpid()}, before)
    summary = summarize(study, plan, sum(ran_now.values()), time.perf_counter() - start)
    add_ran_now_states(summary, ran_now)
    add_fallback_note(summary, fallback)
    if done >= target:
        summary.stopped = already_done(done, target)
    elif interrupted is not None:
        summary.interrupted = interrupted
        summary.stopped = interrupted_idle(study, {os.getpid()}, before) or (
            "interrupted: the running trial ended as FAIL; run the same command to resume"
        )
    elif guard is not None and guard.exhausted:
        summary.stopped = EXHAUSTED
    elif guard is not None and guard.tripped:
        summary.stopped = f"stopped after {guard.streak} failed trials in a row"
        summary.first_error = guard.first_error
        summary.failed = True
    else:
        summary.stopped = timed_out(plan, study, target)
    return summary
