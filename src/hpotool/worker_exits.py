"""The main process of `optimize --workers N` and its workers' ends: stopping them all, failing the trials
of those that exited, and saying what happened to one that ended alone."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from hpotool.dead_trials import fail_dead_local_trials
from hpotool.interrupts import exit_code, interrupt_pending
from hpotool.owners import run_by
from hpotool.plan import StudyPlan
from hpotool.resume import queue_interrupted
from hpotool.worker_problems import LOST_STORAGE_EXIT

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


def stop_workers(procs: list[Any], stop: Event, signum: int) -> None:
    """Tell every worker to stop: its current trial ends as FAIL ("interrupted"); wait until all have."""
    stop.set()
    if signum == signal.SIGPIPE:  # this process's output went into a closed pipe (`pipes`): the workers
        signum = signal.SIGTERM  # ignore SIGPIPE, as Python does, and would run their trials to the end
    for p in procs:
        if p.is_alive() and p.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signum)  # a worker that had it already (a group signal) ignores it
    for p in procs:
        if p.pid is not None:
            p.join()


def end_workers(procs: list[Any]) -> None:
    """SIGTERM every live worker, as where the storage stopped answering this process (the workers cannot
    write either): each ends its trial; wait until all have ended."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        if p.pid is not None:
            p.join()


def fail_trials_of_exited(
    study: optuna.Study,
    procs: list[Any],
    exited: set[int],
    plan: StudyPlan | None = None,
    gone_before: set[int] | None = None,
) -> None:
    """Mark FAIL the RUNNING trials of the workers that have exited since the last look, and queue their
    values again (`dead_trials.fail_dead_local_trials`): a worker killed outright (kill -9, the OOM killer)
    cannot end its trial, and its trial stayed RUNNING for the heartbeat's whole grace period (60 s) while
    this process knew at once that its worker was gone. Only the trials that name an exited worker's pid
    (and whose process no longer exists) are touched: never a live worker's. With `plan` (the run goes on),
    a worker stopped alone by Ctrl-C or SIGTERM has its interrupted trial's chosen values (a warm start, a
    retry, a brute-force or QMC point) queued at once, for the other workers (`queue_interrupted`): they
    finished the study without them, and a resume found nothing left to run. `gone_before` gets the pids of
    those seen gone while no signal of the command's was pending: ended before it (the exit code cannot
    tell a worker SIGTERM'd alone earlier from one the command's SIGTERM ended)."""
    gone = {p.pid for p in procs if p.pid is not None and p.pid not in exited and p.exitcode is not None}
    if gone:
        exited |= gone
        fail_dead_local_trials(study, pids=gone)
        stopped = (exit_code(signal.SIGINT), exit_code(signal.SIGTERM))
        alone = not interrupt_pending()  # not the command's signal: this process would have one too
        if alone and gone_before is not None:
            gone_before |= gone
        if plan is not None and alone and any(p.pid in gone and p.exitcode in stopped for p in procs):
            queue_interrupted(study, plan)


def worker_ended(study: optuna.Study, proc: Any, before: set[int], lost: str | None = None) -> str:
    """What happened to worker `proc`, which exited before the run ended, and to its last trial, in words;
    `lost`: the storage error it exited on (`LOST_STORAGE_EXIT`), which the note names."""
    code = proc.exitcode
    if code < 0 or code in (exit_code(signal.SIGINT), exit_code(signal.SIGTERM)):
        signum = -code if code < 0 else code - 128
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        how = f"was stopped by {name}" if code > 0 else f"was killed by {name}"
    elif code == LOST_STORAGE_EXIT:
        how = "lost its connection to the storage" + (f" ({lost})" if lost else "")
    else:
        how = f"exited with code {code}"
    mine = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number not in before and run_by(t, {proc.pid})
    ]
    what = f"{proc.name} (pid {proc.pid}) {how}"
    if not mine:
        return f"{what}; the other workers ran on"
    last = mine[-1]
    reason = str(last.user_attrs.get("fail_reason", "unknown error"))
    fixed = last.system_attrs.get("fixed_params")  # an interrupted warm start is queued from its list again
    queued = any(
        t.user_attrs.get("retry_of") == last.number
        or (fixed and t.number > last.number and t.system_attrs.get("fixed_params") == fixed)
        for t in study.get_trials(deepcopy=False)
    )
    again = ", its values queued again" if queued else ""
    return f"{what}: its trial #{last.number} ended as FAIL ({reason}){again}; the other workers ran on"
