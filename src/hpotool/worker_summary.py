"""The end of an `optimize --workers N` run, once every worker has ended: its summary, with why it stopped
and what happened to the workers that ended early, or the error of a worker's problem that ends the command
(its storage lost, its configs failing there, the training function breaking hpotool's contract)."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from typing import Any

from optuna.trial import TrialState

from hpotool.errors import HpoError
from hpotool.exhaustion import EXHAUSTED
from hpotool.interrupts import exit_code
from hpotool.owners import run_by
from hpotool.run_failures import run_error
from hpotool.run_summary import (
    add_fallback_note,
    add_ran_now_states,
    already_done,
    failures_stop,
    interrupted_idle,
    ran_now_states,
    timed_out,
    workers_interrupted,
)
from hpotool.storage_faults import storage_lost
from hpotool.study import FINISHED
from hpotool.summary import StudySummary, summarize
from hpotool.trial_run import trained_by
from hpotool.worker_exits import worker_ended
from hpotool.worker_problems import CONTRACT_EXIT, ERROR_EXIT, LOST_STORAGE_EXIT, SETUP_EXIT, lost_causes
from hpotool.worker_run import WorkerRun


def sum_up(run: WorkerRun, start: float) -> StudySummary:
    """The run's summary (its wall time from `start`, a `time.perf_counter()`), once every worker has ended.

    Raises:
        HpoError: a worker ended on a problem of its own that ends the command (`_raise_a_workers_problem`).
    """
    study, pids = run.study, run.pids()
    ran_now = ran_now_states(study, pids, run.before)
    summary = summarize(study, run.plan, sum(ran_now.values()), time.perf_counter() - start, run.before)
    add_ran_now_states(summary, ran_now)
    summary.extra["workers"] = run.n_workers
    if run.n_workers < run.asked:
        summary.extra["workers_note"] = _fewer_workers(run)
    add_fallback_note(summary, run.fallback)
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    # A worker that lost its connection, where the others finished the study (its trial failed and run
    # again by them), is named in a note below, as one that ended otherwise.
    run.problems.drain()
    lost = run.problems.lost(run.procs)
    _raise_a_workers_problem(run, finished, lost)
    named = _say_why_it_stopped(run, summary, finished)
    if not named:
        _note_workers_ended(run, summary, lost)
    return summary


def _fewer_workers(run: WorkerRun) -> str:
    """The note that the run started fewer workers than --workers asked, one per trial left."""
    left, target, n = run.target - run.done, run.target, run.n_workers
    return (
        f"--workers {run.asked}: {left} of the study's {target} trials {'were' if left > 1 else 'was'} left "
        f"to run, so {n} worker{'s' if n > 1 else ''} ran {'them' if left > 1 else 'it'}"
    )


def _raise_a_workers_problem(run: WorkerRun, finished: int, lost: list[tuple[str, str]]) -> None:
    """Raise the error of the first worker that ended on a problem that ends the command: the storage lost
    (where the study is not finished), its configs or storage failing there, the training function broken;
    `--debug` shows the worker's traceback above the line (it showed this process's alone)."""
    procs, problems = run.procs, run.problems
    if any(p.exitcode == LOST_STORAGE_EXIT for p in procs) and finished < run.target:
        # every worker that lost it, each cause once: the line named the first worker's alone
        running, pids = run.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)), run.pids()
        raise storage_lost(
            run.plan.storage_url,
            lost_causes(lost) or "a worker lost its connection",
            left_running=any(run_by(t, pids) or "worker" not in t.user_attrs for t in running),
            waited=problems.lock_waited(procs),  # a write refused at once is no other process's lock
        ) from problems.tracebacks(procs)
    error, setup = problems.first(ERROR_EXIT), problems.first(SETUP_EXIT)
    if any(p.exitcode == ERROR_EXIT for p in procs) and error is not None:
        raise HpoError(error) from problems.first_traceback(ERROR_EXIT)
    if any(p.exitcode == SETUP_EXIT for p in procs) and setup is not None:
        raise HpoError(
            f"{setup}; it passed in the main process but not in a worker: check what the workers' "
            "environment lacks"
        ) from problems.first_traceback(SETUP_EXIT)
    if any(p.exitcode == CONTRACT_EXIT for p in procs) and run.plan.run.trainer is not None:
        _raise_contract_stop(run)


def _raise_contract_stop(run: WorkerRun) -> None:
    """Raise that the training function broke hpotool's contract, naming the first of this run's failed
    trials (the study's first where this run has none) and its reason, as one process does."""
    from hpotool.trainer_contract import contract_stop

    fails = run.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    mine = [t for t in fails if t.number not in run.before] or fails
    function = trained_by(run.plan, mine[0]) if mine else None
    if function is not None:
        raise contract_stop(
            function,
            mine[0].number,
            str(mine[0].user_attrs.get("fail_reason", "unknown error")),
            run.plan.run_from,
            run.plan.opt.objectives,
        )


def _say_why_it_stopped(run: WorkerRun, summary: StudySummary, finished: int) -> bool:
    """Set on `summary` why the run stopped (and whether it was interrupted or failed); returns whether
    that names the workers that ended early."""
    procs, target = run.procs, run.target
    dead = [p.name for p in procs if p.exitcode not in (0, None)]
    signalled = [p for p in procs if p.exitcode in (exit_code(signal.SIGINT), exit_code(signal.SIGTERM))]
    if run.done >= target:
        summary.stopped = already_done(run.done, target)
    elif run.interrupted is not None:
        summary.interrupted = run.interrupted
        gone = _ended_before_the_signal(run)  # their trials ended before it: not the signal's to count
        pids = run.pids() - {p.pid for p in gone}
        summary.stopped = interrupted_idle(run.study, pids, run.before) or workers_interrupted(
            run.study, pids, run.before, run.n_workers, len(gone)
        )
    elif signalled and finished < target:  # signals sent to the workers alone, not to this process
        _say_signalled(run, summary, signalled)
        return True
    elif len(dead) == run.n_workers and finished < target:  # one dead worker's trial is retried by the others
        _say_died(run, summary, dead)
        return True
    elif run.shared.exhausted.is_set():
        summary.stopped = EXHAUSTED
    elif run.shared.stop.is_set() and finished < target:
        summary.stopped = failures_stop(run.max_failures)
        summary.failed = True
        summary.first_error = run_error(run.study, os.getpid(), datetime.fromtimestamp(run.started))
    else:
        summary.stopped = timed_out(run.plan, run.study, target)
    return False


def _say_signalled(run: WorkerRun, summary: StudySummary, signalled: list[Any]) -> None:
    """The run stopped because its workers were signalled alone (their pids, not this process): say which."""
    signum = signalled[0].exitcode - 128
    summary.interrupted = signum
    names = ", ".join(p.name for p in signalled)
    summary.stopped = (
        f"interrupted: {len(signalled)} of {run.n_workers} workers ({names}) ended their trial as FAIL on "
        f"{signal.Signals(signum).name}; run the same command to resume"
    )


def _say_died(run: WorkerRun, summary: StudySummary, dead: list[str]) -> None:
    """The run stopped because every worker died: say which, and exit as the signal that killed one."""
    summary.stopped = f"{len(dead)} of {run.n_workers} workers died ({', '.join(dead)}); run again to resume"
    # The command exited 0, as if the study were done: now the shell's code for the signal that killed
    # a worker (137 for kill -9, the OOM killer), or 1 for a worker that crashed.
    killed = [p.exitcode for p in run.procs if p.exitcode is not None and p.exitcode < 0]
    if killed:
        summary.interrupted = -killed[0]
    else:
        summary.failed = True


def _ended_before_the_signal(run: WorkerRun) -> list[Any]:
    """The workers of an interrupted run that had ended otherwise before the signal (killed, crashed, stopped
    alone): those it ended exit with its code (130, 143), and those it found between trials with 0 or that
    code too. A worker SIGTERM'd alone earlier exits 143 as well: this process saw it gone before the signal
    came (`WorkerRun.gone_before`); it was counted as one the signal ended, its trial among the signal's."""
    by_signal = (0, None, exit_code(signal.SIGINT), exit_code(signal.SIGTERM))
    return [
        p
        for p in run.procs
        if p.exitcode not in by_signal or (p.exitcode not in (0, None) and p.pid in run.gone_before)
    ]


def _note_workers_ended(run: WorkerRun, summary: StudySummary, lost: list[tuple[str, str]]) -> None:
    """Say what happened to each worker that ended early, and to its trial, where the stop does not."""
    # A worker stopped alone while the others ran on: the run ended as usual (exit code 0 when they
    # finished the study), and only '1 trial failed ... interrupted' hinted that a worker had gone.
    causes = dict(lost)
    # Interrupted, the workers the signal ended are counted in the summary's line; those gone before it are not
    procs = _ended_before_the_signal(run) if run.interrupted is not None else run.procs
    ended = [
        worker_ended(run.study, p, run.before, causes.get(p.name))
        for p in procs
        if p.exitcode not in (0, None)
    ]
    if ended:
        summary.extra["workers_ended"] = ended
