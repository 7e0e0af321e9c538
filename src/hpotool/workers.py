"""N worker processes on this machine sharing one study; the same loop joins a study from other machines.

The main process creates the study once (SQLite races when workers create it together), then starts the
workers and follows the storage, feeding every worker's finished trials to the observer. Each worker runs
`run_trials`: ask, reserve a slot, train, tell. The slot makes `n_trials` exact: after `ask`, a trial whose
rank among the finished and running trials is beyond the target goes back to WAITING untrained (Optuna
counts only COMPLETE and PRUNED trials, and the next `ask` anywhere picks the WAITING trial up again), so
workers racing at the end never overshoot the target.

The worker processes' side is `worker_process` (set up from `worker_args`); this module is the main
process's, which follows the study (`worker_monitor`), handles the workers' ends (`worker_exits`) and says
their problems (`worker_problems`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import wait
from typing import Any

from optuna.trial import TrialState

from hpotool.errors import HpoError
from hpotool.exhaustion import EXHAUSTED
from hpotool.fallback import IndependentSampling
from hpotool.forkserver import start_worker_server, worker_context
from hpotool.heartbeat import has_heartbeat
from hpotool.interrupts import (
    deferred,
    exit_code,
    raise_dropped,
    signal_of,
    signals_ignored,
    signals_interrupt,
)
from hpotool.objective import StudyObserver
from hpotool.plan import StudyPlan
from hpotool.run_failures import run_error
from hpotool.run_summary import (
    add_fallback_note,
    add_ran_now_states,
    already_done,
    failures_stop,
    interrupted_idle,
    ran_now_states,
    timed_out,
)
from hpotool.stale import run_by
from hpotool.storage_faults import lost_cause, lost_connection, storage_lost, study_deleted
from hpotool.storage_settings import heartbeat_settings
from hpotool.study import FINISHED
from hpotool.study_run import open_for_run
from hpotool.summary import StudySummary, summarize
from hpotool.tracking import make_tracker
from hpotool.trial_run import trained_by
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.worker_args import WorkerArgs, hpotool_environ, trains_with_torch
from hpotool.worker_exits import fail_trials_of_exited, stop_workers, worker_ended
from hpotool.worker_monitor import Monitor, look_for_a_wait, note_due
from hpotool.worker_problems import (
    CONTRACT_EXIT,
    ERROR_EXIT,
    LOST_STORAGE_EXIT,
    SETUP_EXIT,
    Problems,
    lost_causes,
)
from hpotool.worker_process import TrackingOff, worker_main

DISPLAY_S = 0.5  # how often the main process shows the workers' newly finished trials


def run_workers(
    plan: StudyPlan,
    n_workers: int,
    observer: StudyObserver | None = None,
    *,
    max_failures: int = 5,
    on_open: Callable[[str | None], None] | None = None,
) -> StudySummary:
    """Run the study with `n_workers` local worker processes; Ctrl-C or SIGTERM stops them all cleanly
    (each ends its trial as FAIL, "interrupted") and the summary carries the signal in `interrupted`.

    Raises:
        HpoError: the storage stopped answering (`storage_lost`), or the study was deleted under the run
            (`study_deleted`), once every worker has ended.
    """
    procs: list[Any] = []
    problems = Problems()
    try:
        return _run_workers(plan, n_workers, observer, max_failures, procs, problems, on_open)
    except Exception as exc:
        if isinstance(exc, HpoError):
            raise
        deleted = study_deleted(plan.opt.study_name, plan.storage_url, exc)
        if deleted is None and lost_connection(exc) is None:
            raise
        with signals_ignored():  # the workers cannot write either: they end, and this process says why
            for p in procs:
                if p.pid is not None and p.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGTERM)
            for p in procs:
                if p.pid is not None:
                    p.join()
        if deleted is not None:
            raise deleted from None
        # This process's own cause, and those of the workers that lost the storage before it (a worker's
        # may differ: a locked file there, a connection the server dropped): the line named only this one.
        problems.drain()
        workers = problems.lost(procs)
        causes = lost_causes([("the main process", lost_cause(exc)), *workers]) if workers else exc
        shown = problems.tracebacks(procs)
        if shown is not None:
            shown.__cause__ = exc  # this process's own error, above the workers'
        raise storage_lost(plan.storage_url, causes) from shown


def _run_workers(
    plan: StudyPlan,
    n_workers: int,
    observer: StudyObserver | None,
    max_failures: int,
    procs: list[Any],
    problems: Problems,
    on_open: Callable[[str | None], None] | None = None,
) -> StudySummary:
    start = time.perf_counter()
    # creates the MLflow store and experiment once, here, before any worker starts
    tracker = make_tracker(plan)
    study, salt, existing, target, before, done = open_for_run(
        plan, observer, on_open
    )  # before any worker starts
    if tracker is not None:
        tracker.end_cut_off_runs(study)
    # One worker per trial left at most: more had nothing to run, and their trials, asked in a race at the
    # end, were sent back and kept WAITING in the study (each a process, with a smaller share of the cores).
    asked = n_workers
    if done < target:
        n_workers = min(n_workers, target - done)
    monitor = Monitor(study, observer)
    # Storages without a heartbeat (Redis, journal files): a wait for other machines' trials is said once.
    wait_note = None if has_heartbeat(study._storage) else WaitNote(plan, heartbeat_settings()[1])
    ownerless_note = OwnerlessNote(heartbeat_settings()[1])
    uses_torch = trains_with_torch(plan.run)  # the configs are checked: the function's module imported
    ctx: Any = worker_context(uses_torch)
    stop, exhausted, fallbacks = ctx.Event(), ctx.Event(), ctx.SimpleQueue()
    problems.queue = ctx.SimpleQueue()
    tracking = TrackingOff(ctx.Event(), ctx.SimpleQueue())
    fallback = IndependentSampling()
    warned: list[
        str
    ] = []  # the tracking warning printed: one for the run, whichever workers found tracking broken

    def gather() -> None:  # drained while the workers run too, so a worker's put never waits on a full pipe
        while not fallbacks.empty():
            fallback.merge(fallbacks.get())
        problems.drain()
        while not tracking.warnings.empty():
            warning = tracking.warnings.get()
            if not warned:
                logging.getLogger("hpotool").warning("%s", warning)
                warned.append(warning)

    run_dump, opt_dump = plan.run.model_dump(mode="json"), plan.opt.model_dump(mode="json")
    started = time.time()  # the trials the workers start from now on are this run's (`run_streak`)
    procs += [
        ctx.Process(
            target=worker_main,
            args=(
                WorkerArgs(
                    run_dump,
                    opt_dump,
                    plan.storage_url,
                    i,
                    n_workers,
                    max_failures,
                    existing,
                    salt,
                    started,
                    storage_origin=plan.storage_origin,
                    debug=logging.getLogger("hpotool").isEnabledFor(logging.DEBUG),
                    environ=hpotool_environ(),
                    uses_torch=uses_torch,
                ),
                stop,
                exhausted,
                fallbacks,
                problems.queue,
                tracking,
            ),
            name=f"hpotool-worker-{i}",
        )
        for i in range(n_workers)
    ]
    interrupted: int | None = None
    exited: set[int] = set()  # the pids of the workers whose trials fail_trials_of_exited has looked at
    # started already by the CLI (again here where the run needs other preloads); this makes it ignore a
    # process group's SIGTERM
    start_worker_server(uses_torch)
    # Ctrl-C or SIGTERM (to this process or to the whole group) stops every worker: each ends its trial
    # as FAIL ("interrupted"), and this process waits for them, then prints the summary.
    with signals_interrupt():
        try:
            with deferred():  # a signal now waits until every worker has started, then stops them all
                if done < target:
                    for p in procs:
                        p.start()
            while True:
                raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed
                with deferred():
                    monitor.poll()
                    gather()
                    look_for_a_wait(wait_note, ownerless_note, study, monitor.trials, target, procs)
                    monitor.wake_for(note_due(wait_note, ownerless_note))
                    alive = [p.sentinel for p in procs if p.is_alive()]
                    fail_trials_of_exited(study, procs, exited, plan)
                if not alive:
                    break
                wait(alive, timeout=DISPLAY_S)  # wakes as soon as a worker exits
        except KeyboardInterrupt as exc:
            interrupted = signal_of(exc)
            with signals_ignored():  # a second signal must not orphan the workers
                stop_workers(procs, stop, interrupted)
    for p in procs:
        if p.pid is not None:  # none is started on a study that already has its trials
            p.join()
    with deferred():
        fail_trials_of_exited(study, procs, exited)
    monitor.poll(read=True)
    gather()
    pids = {os.getpid(), *(p.pid for p in procs if p.pid is not None)}
    ran_now = ran_now_states(study, pids, before)
    summary = summarize(study, plan, sum(ran_now.values()), time.perf_counter() - start)
    add_ran_now_states(summary, ran_now)
    summary.extra["workers"] = n_workers
    if n_workers < asked:
        left = target - done
        summary.extra["workers_note"] = (
            f"--workers {asked}: {left} of the study's {target} trials {'were' if left > 1 else 'was'} left to "
            f"run, so {n_workers} worker{'s' if n_workers > 1 else ''} ran {'them' if left > 1 else 'it'}"
        )
    add_fallback_note(summary, fallback)
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    # A worker that lost its connection, where the others finished the study (its trial failed and run
    # again by them), is named in a note below, as one that ended otherwise.
    problems.drain()
    lost = problems.lost(procs)
    if any(p.exitcode == LOST_STORAGE_EXIT for p in procs) and finished < target:
        # every worker that lost it, each cause once: the line named the first worker's alone
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        raise storage_lost(
            plan.storage_url,
            lost_causes(lost) or "a worker lost its connection",
            left_running=any(run_by(t, pids) or "worker" not in t.user_attrs for t in running),
        ) from problems.tracebacks(procs)
    error, setup = problems.first(ERROR_EXIT), problems.first(SETUP_EXIT)
    # --debug shows the worker's traceback above the line (it showed this process's alone)
    if any(p.exitcode == ERROR_EXIT for p in procs) and error is not None:
        raise HpoError(error) from problems.first_traceback(ERROR_EXIT)
    if any(p.exitcode == SETUP_EXIT for p in procs) and setup is not None:
        raise HpoError(
            f"{setup}; it passed in the main process but not in a worker: check what the workers' "
            "environment lacks"
        ) from problems.first_traceback(SETUP_EXIT)
    if any(p.exitcode == CONTRACT_EXIT for p in procs) and plan.run.trainer is not None:
        from hpotool.user_trainer import contract_stop

        fails = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        mine = [t for t in fails if t.number not in before] or fails
        function = trained_by(plan, mine[0]) if mine else None
        if function is not None:
            raise contract_stop(
                function,
                mine[0].number,
                str(mine[0].user_attrs.get("fail_reason", "unknown error")),
                plan.run_from,
            )
    dead = [p.name for p in procs if p.exitcode not in (0, None)]
    signalled = [p for p in procs if p.exitcode in (exit_code(signal.SIGINT), exit_code(signal.SIGTERM))]
    named = False  # whether summary.stopped names the workers that ended early
    if done >= target:
        summary.stopped = already_done(done, target)
    elif interrupted is not None:
        summary.interrupted = interrupted
        summary.stopped = interrupted_idle(study, pids, before) or (
            "interrupted: every worker ended its trial as FAIL; run the same command to resume"
        )
    elif signalled and finished < target:  # signals sent to the workers alone, not to this process
        signum = signalled[0].exitcode - 128
        summary.interrupted = signum
        names, named = ", ".join(p.name for p in signalled), True
        summary.stopped = (
            f"interrupted: {len(signalled)} of {n_workers} workers ({names}) ended their trial as FAIL on "
            f"{signal.Signals(signum).name}; run the same command to resume"
        )
    elif len(dead) == n_workers and finished < target:  # one dead worker's trial is retried by the others
        summary.stopped = f"{len(dead)} of {n_workers} workers died ({', '.join(dead)}); run again to resume"
        named = True
        # The command exited 0, as if the study were done: now the shell's code for the signal that killed
        # a worker (137 for kill -9, the OOM killer), or 1 for a worker that crashed.
        killed = [p.exitcode for p in procs if p.exitcode is not None and p.exitcode < 0]
        if killed:
            summary.interrupted = -killed[0]
        else:
            summary.failed = True
    elif exhausted.is_set():
        summary.stopped = EXHAUSTED
    elif stop.is_set() and finished < target:
        summary.stopped = failures_stop(max_failures)
        summary.failed = True
        summary.first_error = run_error(study, os.getpid(), datetime.fromtimestamp(started))
    else:
        summary.stopped = timed_out(plan, study, target)
    if interrupted is None and not named:
        # A worker stopped alone while the others ran on: the run ended as usual (exit code 0 when they
        # finished the study), and only '1 trial failed ... interrupted' hinted that a worker had gone.
        causes = dict(lost)
        ended = [
            worker_ended(study, p, before, causes.get(p.name)) for p in procs if p.exitcode not in (0, None)
        ]
        if ended:
            summary.extra["workers_ended"] = ended
    return summary
