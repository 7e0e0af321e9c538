"""A run of the study in this process: open it, prepare its resume, run the trial loop, sum it up."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NamedTuple

import optuna

from hpotool.errors import HpoError
from hpotool.exhaustion import EXHAUSTED
from hpotool.fallback import IndependentSampling, independent_sampling
from hpotool.interrupts import ending, signal_of, signals_interrupt
from hpotool.loop import run_deadline, run_trials
from hpotool.objective import StudyObserver
from hpotool.plan import StudyPlan
from hpotool.resume import prepare_resume
from hpotool.run_summary import (
    add_fallback_note,
    add_ran_now_states,
    already_done,
    failures_stop,
    finished_numbers,
    interrupted_idle,
    ran_now_states,
    timed_out,
    trial_target,
)
from hpotool.stop_note import say_and_clear
from hpotool.storage_faults import damage_during_study, lost_connection, storage_lost, study_deleted
from hpotool.study import open_study
from hpotool.summary import StudySummary, summarize
from hpotool.tracking import make_tracker
from hpotool.trial_setup import Unasked


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
    salt: tuple[int, ...]  # `study_sampler.process_salt()` where other processes sample the study too
    existing: int  # trials it held when opened, before the warm start's queue: as open_study counts
    # the trials not asked for then, where no other process was seen (`run_trials`); else None
    alone_since: Unasked | None
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
    trials = study.get_trials(deepcopy=False)
    existing = len(trials)
    queued = frozenset(t.number for t in trials if t.state == optuna.trial.TrialState.WAITING)
    alone_since = None if salt else Unasked(existing, queued)
    target, before = trial_target(plan), finished_numbers(study)
    done = prepare_resume(study, plan)
    if observer is not None:
        # Whether this process created the study is known where its `new study` line is asked for (the CLI)
        observer.study_started(study, plan.opt.n_trials, done, joined=on_open is not None and not created)
    return OpenedStudy(study, salt, existing, alone_since, target, before, done)


def _run_study(
    plan: StudyPlan,
    observer: StudyObserver | None,
    max_failures: int,
    on_open: Callable[[str | None], None] | None,
) -> StudySummary:
    start = time.perf_counter()
    tracker = make_tracker(plan)  # before the study: a tracking store that cannot be used writes nothing
    study, _, _, alone_since, target, before, done = open_for_run(plan, observer, on_open)
    with damage_during_study():  # the study is open: a journal damaged from now on is said as such
        guard, interrupted = None, None
        fallback = IndependentSampling()
        if tracker is not None:
            tracker.end_cut_off_runs(study)
        deadline = run_deadline(plan.opt.timeout)  # the timeout counts from here, as with --workers
        if done < target:
            with signals_interrupt(), independent_sampling(study.sampler, fallback):
                try:
                    guard = run_trials(
                        study,
                        plan,
                        observer=observer,
                        max_failures=max_failures,
                        tracker=tracker,
                        alone_since=alone_since,
                        deadline=deadline,
                    )
                except KeyboardInterrupt as exc:
                    interrupted = signal_of(exc)
                finally:
                    if tracker is not None:
                        tracker.close()  # a tracking server that hangs here can still be interrupted
        if interrupted is not None:
            ending()  # another Ctrl-C waits for the summary
        ran_now = ran_now_states(study, {os.getpid()}, before)
        summary = summarize(study, plan, sum(ran_now.values()), time.perf_counter() - start, before)
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
            summary.stopped = failures_stop(guard.streak)
            summary.first_error = guard.first_error
            summary.failed = True
        else:
            summary.stopped = timed_out(plan, study, target)
        return summary
