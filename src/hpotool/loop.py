"""The trial loop every hpotool process runs, alone or as one of many workers.

Ask, set up (`trial_setup`: a slot of `n_trials`, the trial's grid point, this process's own seeds), run and
tell (`trial_run`), count (`FailureGuard`: --max-failures); between trials, fail dead workers' trials and,
while other processes' trials hold every slot, wait for one to end.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.dead_trials import fail_dead_local_trials, fail_ownerless_trials
from hpotool.exhaustion import all_started, sampler_exhausted, still_exhausted
from hpotool.failed_trials import fail_trial
from hpotool.heartbeat import fail_stale_trials, has_heartbeat
from hpotool.interrupts import deferred, let_go, raise_dropped
from hpotool.objective import StudyObserver, make_objective
from hpotool.owners import owner
from hpotool.plan import StudyPlan
from hpotool.run_summary import trial_target
from hpotool.sampler_hooks import (
    BEFORE_TRIAL,
    AfterTrialFailed,
    after_trial_stop,
    created_trial,
    failed_hook,
    hook_reason,
)
from hpotool.slot_lock import slot_lock, slot_lock_path
from hpotool.storage_settings import heartbeat_settings
from hpotool.study import FINISHED
from hpotool.tracking import track
from hpotool.trial_run import end_interrupted, run_trial, trained_by
from hpotool.trial_setup import TrialSetup, Unasked, finished_and_running
from hpotool.user_code import refusing_exit
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.waiting import study_version, wait_for_change

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


# How often a process waiting for a slot (every remaining trial is running elsewhere) looks again: when
# the last trials end, idle workers notice within this and exit, so the command ends with its last trial.
# A look is one cheap query; the trials are read again only once it sees a change (`waiting`).
POLL_S = 0.1

_log = logging.getLogger("hpotool")


def run_trials(
    study: optuna.Study,
    plan: StudyPlan,
    stop: Event | None = None,
    *,
    observer: StudyObserver | None = None,
    max_failures: int = 5,
    poll: float = POLL_S,
    tracker: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    alone_since: Unasked | None = None,
    streak_of: Callable[[optuna.Study], int] | None = None,
    deadline: float | None = None,
) -> FailureGuard:
    """Run trials of `study` until it holds `n_trials` finished trials, the timeout passes (`deadline`: the
    run's `run_deadline`, by default the plan's timeout from now), `stop` is set, `max_failures` trials in
    a row fail in this run, or the sampler has nothing left to try (the last two set `stop`). `tracker`
    (`make_tracker`) logs each trial this process ran. `alone_since`: the trials no process had asked for
    when this process opened the study seeing no other process (`Unasked`: its sampler's seeds are
    reproducible ones, `study_sampler.study_sampler`), None where its seeds are its own already.
    `streak_of`: the run's failed trials in a row, where other processes share the run (`FailureGuard`).

    Returns:
        The failure guard, which says whether failures or the sampler stopped the loop, and the first error.
    """
    guard = FailureGuard(max_failures, streak_of=streak_of)
    if deadline is None:
        deadline = run_deadline(plan.opt.timeout)
    loop = _TrialLoop(study, plan, guard, stop, observer, poll, tracker, alone_since, deadline)
    # As Study.optimize does: a sampler with nothing left to try (grid, brute force) calls study.stop() from
    # `tell`, which Optuna allows only inside its optimize loop; this loop then ends the same way.
    study._stop_flag = False
    if sampler_exhausted(study):  # a complete grid, resumed: asking would run one of its points again
        guard.exhausted = True
        return guard
    study._thread_local.in_optimize_loop = True
    try:
        loop.run()
    finally:
        study._thread_local.in_optimize_loop = False
    return guard


def run_deadline(timeout: float | None) -> float | None:
    """The `time.monotonic()` past which a run starts no trial: `timeout` seconds from now, as the run
    starts (None: no timeout). One point in time for all the run's processes (CLOCK_MONOTONIC is one clock
    for the whole machine): each worker counted its own timeout from its trial loop, after its imports and
    data, and `--timeout 4 --workers 2` on a loaded machine lasted 8 s."""
    return None if timeout is None else time.monotonic() + timeout


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


class _TrialLoop:
    """One process's run of trials (`run_trials`): its settings, and what it keeps from one look at the
    study to the next."""

    def __init__(
        self,
        study: optuna.Study,
        plan: StudyPlan,
        guard: FailureGuard,
        stop: Event | None,
        observer: StudyObserver | None,
        poll: float,
        tracker: Callable[[optuna.Study, FrozenTrial], None] | None,
        alone_since: Unasked | None,
        deadline: float | None,
    ) -> None:
        self.study, self.plan, self.guard, self.stop, self.poll = study, plan, guard, stop, poll
        self.observer, self.tracker = observer, tracker
        self.storage = study._storage
        self.objective = make_objective(plan, observer)
        self.target, self.deadline = trial_target(plan), math.inf if deadline is None else deadline
        self.set_up = TrialSetup(study, plan, self.target, poll, alone_since)
        self.lock_path = slot_lock_path(plan.storage_url, study.study_name)
        self.start = time.monotonic()
        # Heartbeats are written every `interval` seconds, so a trial turns stale at that pace: looking once
        # per interval (not before every trial: ~10 ms of queries each) finds dead workers' trials as soon.
        # The same look finds the RUNNING trials of dead processes of this machine (one query, and a signal 0
        # per running trial), as a resumed run does: storages without a heartbeat (Redis, journal files) have
        # nothing else, and a heartbeat never fails a trial whose worker died before its first beat (while
        # it waited for a slot or for earlier brute-force draws), which then held its slot for good.
        self.interval, self.grace = heartbeat_settings()
        self.beating = has_heartbeat(self.storage)
        self.next_stale_check = self.start
        # notes that other processes' trials have taken every slot for so long, or that they have no owner
        self.wait_note = WaitNote(plan, self.grace)
        self.ownerless_note = OwnerlessNote(self.grace)
        # `study_version` as of the last read of the trials while the run waits (None: read it with them), so
        # a wait reads them again only once it changes (`waiting.wait_for_change`)
        self.version: Hashable = None

    def run(self) -> None:
        """Ask, set up, train and tell trials until `run_trials`'s ends: the target, the timeout, `stop`, the
        failure guard or the sampler."""
        while not (self.stop is not None and self.stop.is_set()):
            raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed between trials
            now = time.monotonic()
            if now >= self.deadline:
                break
            self._fail_stale_trials(now)
            if self.version is None:
                self.version = study_version(self.study)
            trials = finished_and_running(self.study)
            if sum(t.state in FINISHED for t in trials) >= self.target:
                break
            if self._waited_for_a_slot(trials, now):
                continue
            if all_started(self.study):  # other workers run the last points: wait, run none twice
                if sampler_exhausted(self.study, running_done=False):
                    self.guard.exhausted = True
                    break
                self.version = wait_for_change(self.study, self.version, self.poll, self._until(), self.stop)
                continue
            self.version = None
            taken = self._take_trial()
            if isinstance(taken, int):  # the sampler's before_trial failed: the trial is FAIL, counted
                if self._count(self.storage.get_trial(taken), failed=True):
                    break
            elif taken is not None and self._run_trial(*taken):
                break

    def _fail_stale_trials(self, now: float) -> None:
        """Fail the trials of dead workers, here and elsewhere, once per heartbeat interval."""
        if now >= self.next_stale_check:
            fail_stale_trials(self.study)
            fail_dead_local_trials(self.study, silent_only=self.beating)
            fail_ownerless_trials(self.study, self.grace)
            self.next_stale_check = now + self.interval

    def _until(self) -> float:
        """Until when a wait may last before the trials are read again: the next look for stale trials, or
        the timeout."""
        return min(self.next_stale_check, self.deadline)

    def _waited_for_a_slot(self, trials: list[FrozenTrial], now: float) -> bool:
        """Whether every slot is taken by the running `trials`, after waiting for one to finish or fail (or
        for a note due, or the next look for stale trials); notes a long wait."""
        waiting = len(trials) >= self.target  # every slot is taken: wait for one to finish or fail
        alone = multiprocessing.parent_process() is None  # a worker's main process says it
        if not self.beating and alone:
            self.wait_note.look(trials, waiting, now)
        until = self._until()
        if not waiting:
            return False
        due = self.ownerless_note.look(self.study, trials, say=alone)
        if due is not None:  # fail it as its grace ends, not up to `interval` later
            self.next_stale_check = min(self.next_stale_check, now + due)
        notes = (
            self.ownerless_note.note_in,
            self.wait_note.due_in(now) if not self.beating and alone else None,
        )
        until = min(self.next_stale_check, until, *(now + s for s in notes if s is not None))
        self.version = wait_for_change(self.study, self.version, self.poll, until, self.stop)
        return True

    def _take_trial(self) -> tuple[optuna.Trial, float] | int | None:
        """Ask for a trial, with `time.perf_counter()` as it was asked, and set it up to run (`TrialSetup`);
        None where it went back to the queue; the trial's id where the sampler's `before_trial` failed in
        `ask` (the trial is told FAIL, saying so). Ctrl-C or SIGTERM as it is set up ends it as FAIL."""
        trial: optuna.Trial | None = None
        asked = 0.0
        try:
            # The processes of this machine count the free slots and ask one at a time (`slot_lock`): two
            # that each saw the last slot free asked a trial each, and the later one's went back to WAITING.
            # "heartbeat is supposed to be used with Study.optimize": it is, below. A signal during `ask`
            # waits until it returns, so the trial it created is told FAIL below, not left RUNNING.
            with slot_lock(self.lock_path), warnings.catch_warnings(), deferred():
                if len(finished_and_running(self.study)) >= self.target:  # taken as this process waited
                    return None
                warnings.simplefilter("ignore", UserWarning)
                asked = time.perf_counter()
                try:
                    with refusing_exit():  # a sampler's sys.exit() in before_trial
                        trial = self.study.ask()
                except Exception as exc:
                    return self._fail_unasked(exc)
            try:
                with refusing_exit():  # the before_trial of a sampler seeded of its own (`TrialSetup`)
                    ready = self.set_up(trial)
            except Exception as exc:
                if not failed_hook(exc, "before_trial"):
                    raise
                return self._fail_hooked(trial._trial_id, exc)
            return (trial, asked) if ready else None
        except KeyboardInterrupt as exc:
            # One sent back to the queue is left there: told FAIL, it raised 'Cannot tell a WAITING trial'.
            # A second signal waits until it is told (it left the trial RUNNING).
            with deferred():
                let_go(exc)  # a storage read it cut short (setting the trial up) would fail the writes below
                if trial is not None:
                    end_interrupted(self.study, trial, asked, self.plan.opt.sampler.name)
            raise

    def _fail_unasked(self, exc: Exception) -> int:
        """Tell FAIL the trial `study.ask()` created before the sampler's `before_trial` raised `exc` (a
        `sys.exit()` there made one), with a reason naming the sampler, and return its id; `exc` goes on
        where it came from elsewhere. Before, the error ended the run with a traceback (a `sys.exit()` with
        no word, and its exit code), the trial left RUNNING."""
        trial_id = created_trial(exc)
        if trial_id is None:
            raise exc
        return self._fail_hooked(trial_id, exc)

    def _fail_hooked(self, trial_id: int, exc: Exception) -> int:
        """Tell FAIL the trial `trial_id`, whose sampler's `before_trial` raised `exc`, with a reason naming
        the sampler, and return its id."""
        reason = hook_reason(self.plan.opt.sampler.name, "before_trial", exc)
        _log.debug("trial %d failed: %s", trial_id, reason, exc_info=exc)
        self.storage.set_trial_user_attr(trial_id, "worker", owner())  # the run's own (`run_failures`)
        fail_trial(self.storage, trial_id, reason, run_failed=True, mark=BEFORE_TRIAL)
        return trial_id

    def _run_trial(self, trial: optuna.Trial, asked: float) -> bool:
        """Run and tell `trial`, then count it; returns whether the run ends here (failures in a row, or
        nothing left to try: `stop` is set)."""
        plan, study = self.plan, self.study
        try:
            ran = run_trial(
                study,
                trial,
                self.objective,
                lambda t: trained_by(plan, t),
                plan.run_from,
                asked,
                plan.opt.objectives,
            )
        except AfterTrialFailed as exc:
            raise after_trial_stop(plan.opt.sampler.name, exc) from exc.error
        return self._count(
            self.storage.get_trial(trial._trial_id if ran.kept is None else ran.kept), ran.failed
        )

    def _count(self, frozen: FrozenTrial, failed: bool) -> bool:
        """Show, track and count `frozen`, a trial this process ended (`failed`: its run failed); returns
        whether the run ends here (failures in a row, or nothing left to try: `stop` is set)."""
        study, guard = self.study, self.guard
        if self.observer is not None:
            self.observer.trial_finished(study, frozen)
        if self.tracker is not None:
            track(self.tracker, study, frozen)
        # A trial another process failed as stale while this one ran it (to its end, its result not kept;
        # or stopped by that FAIL as it trained) is no failure of the training: before, it counted as one,
        # and --max-failures could stop a run whose training never failed.
        guard(study, frozen, failed=failed)
        # study.stop() in `tell`: the sampler has nothing left, by its count of the dead workers' trials
        guard.exhausted = study._stop_flag and still_exhausted(study)
        if guard.tripped or guard.exhausted:
            if self.stop is not None:
                self.stop.set()
            return True
        return False
