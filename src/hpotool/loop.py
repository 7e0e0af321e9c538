"""The trial loop every hpotool process runs, alone or as one of many workers.

Ask, reserve a slot, train, tell. The slot makes `n_trials` exact however many processes share the
study: after `ask`, a trial whose rank among the finished and running trials is beyond the target goes
back to WAITING untrained (Optuna counts only COMPLETE and PRUNED trials, and the next `ask` anywhere picks
the WAITING trial up again), so processes racing at the end never overshoot the target.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.exhaustion import (
    all_started,
    brute_force_point_left,
    own_values,
    sampler_exhausted,
    still_exhausted,
    waits_for_running,
)
from hpotool.factories import process_salt, study_sampler
from hpotool.heartbeat import fail_stale_trials, has_heartbeat
from hpotool.interrupts import deferred, raise_dropped
from hpotool.objective import StudyObserver, make_objective
from hpotool.overrides import leaf_values
from hpotool.plan import StudyPlan
from hpotool.run_summary import trial_target
from hpotool.search_space import drawn
from hpotool.stale import fail_dead_local_trials, fail_ownerless_trials, owner
from hpotool.storage_settings import heartbeat_settings
from hpotool.study import FINISHED
from hpotool.tracking import track
from hpotool.trial_run import end_interrupted, run_trial, trained_by
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.waiting import study_version, wait_for_change, wait_for_earlier_trials

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


# How often a process waiting for a slot (every remaining trial is running elsewhere) looks again: when
# the last trials end, idle workers notice within this and exit, so the command ends with its last trial.
# A look is one cheap query; the trials are read again only once it sees a change (`waiting`).
POLL_S = 0.1
# How long a brute-force trial waits for the values of trials asked before it (see _wait_for_earlier_draws).
DRAW_WAIT_S = 10.0


def _finished_and_running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))


def has_slot(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether `trial` is within the target: finished trials plus running ones asked before it."""
    ahead = sum(t.state in FINISHED or t.number <= trial.number for t in _finished_and_running(study))
    return ahead <= target


@dataclass
class FailureGuard:
    """Stops the study after `limit` consecutive failed trials, keeping the first error. `streak_of`, where
    several processes share the run, counts them in the storage (`run_failures.run_streak`): this process's own
    trials in a row stopped a run of N workers only after about N times `limit` failures."""

    limit: int
    streak: int = 0
    first_error: str | None = None
    tripped: bool = False
    exhausted: bool = False  # not a failure: the sampler stopped the study (grid, brute force: all tried)
    streak_of: Callable[[optuna.Study], int] | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial, *, failed: bool | None = None) -> None:
        """Count `trial`, which this process ran, as ended; `failed`: whether its training failed (by default,
        whether the trial is FAIL; not so where another process failed it as stale as it ran)."""
        if not (trial.state == TrialState.FAIL if failed is None else failed):
            self.streak = 0
            return
        self.streak = self.streak_of(study) if self.streak_of and self.limit else self.streak + 1
        if self.first_error is None:
            self.first_error = str(trial.user_attrs.get("fail_reason", "unknown error"))
        if self.limit and self.streak >= self.limit:
            self.tripped = True  # the trial loop stops on it


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
            if all_started(study):  # other workers run the last points: wait, run none twice
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
                    drawn_by_others = not brute_force_point_left(study, study.sampler)
                    if not own_values(own) and drawn_by_others and waits_for_running(study):
                        _send_back(study, trial)
                        time.sleep(poll * (1 + random.random()))
                        continue
            except KeyboardInterrupt:
                # One sent back to the queue is left there: told FAIL, it raised 'Cannot tell a WAITING trial'.
                # A second signal waits until it is told (it left the trial RUNNING).
                with deferred():
                    if trial is not None:
                        end_interrupted(study, trial, asked)
                raise
            ran = run_trial(study, trial, objective, lambda t: trained_by(plan, t), plan.run_from, asked)
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
            guard.exhausted = study._stop_flag and still_exhausted(study)
            if guard.tripped or guard.exhausted:
                if stop is not None:
                    stop.set()
                break
    finally:
        study._thread_local.in_optimize_loop = False
    return guard


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
