"""N worker processes on this machine sharing one study; the same loop joins a study from other machines.

The main process creates the study once (SQLite races when workers create it together), then starts the
workers and follows the storage, feeding every worker's finished trials to the observer. Each worker runs
`run_trials`: ask, reserve a slot, train, tell. The slot makes `n_trials` exact: after `ask`, a trial whose
rank among the finished and running trials is beyond the target goes back to WAITING untrained (Optuna
counts only COMPLETE and PRUNED trials, and the next `ask` anywhere picks the WAITING trial up again), so
workers racing at the end never overshoot the target.

The worker processes' side is `worker_process` (set up from `worker_args`); this module is the main
process's: it opens the run (`worker_run`), starts the workers, follows the study until they have all ended
(`worker_monitor`, `worker_exits`) and sums the run up (`worker_summary`), saying their problems
(`worker_problems`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any, NoReturn

from hpotool.errors import HpoError
from hpotool.forkserver import start_worker_server, worker_context
from hpotool.heartbeat import has_heartbeat
from hpotool.interrupts import (
    deferred,
    ending,
    raise_dropped,
    signal_of,
    signals_ignored,
    signals_interrupt,
)
from hpotool.loop import run_deadline
from hpotool.objective import StudyObserver
from hpotool.pipes import look_for_a_gone_reader
from hpotool.plan import StudyPlan
from hpotool.storage_faults import (
    in_study,
    lock_waited,
    lost_cause,
    lost_connection,
    storage_lost,
    study_deleted,
)
from hpotool.storage_settings import heartbeat_settings
from hpotool.storage_url import StorageFault
from hpotool.study_run import open_for_run
from hpotool.summary import StudySummary
from hpotool.tracking import make_tracker
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.worker_args import WorkerArgs, command_environ, trains_with_torch
from hpotool.worker_exits import end_workers, fail_trials_of_exited, stop_workers
from hpotool.worker_monitor import Monitor, look_for_a_wait, note_due
from hpotool.worker_problems import Problems, lost_causes
from hpotool.worker_process import worker_main
from hpotool.worker_run import Shared, WorkerRun
from hpotool.worker_summary import sum_up

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
        if isinstance(exc, StorageFault) and exc.in_study is not None and procs:
            # Its journal damaged as the trials ran (emptied, written over): the workers cannot write either.
            # They end, and this process says so in one line: it raised at once, and left them to find it.
            with signals_ignored():
                end_workers(procs)
            raise in_study(exc) from exc
        if isinstance(exc, HpoError):
            raise
        deleted = study_deleted(plan.opt.study_name, plan.storage_url, exc)
        if deleted is None and lost_connection(exc) is None:
            raise
        with signals_ignored():  # the workers cannot write either: they end, and this process says why
            end_workers(procs)
        if deleted is not None:
            raise deleted from None
        _raise_storage_lost(plan, exc, procs, problems)


def _raise_storage_lost(plan: StudyPlan, exc: Exception, procs: list[Any], problems: Problems) -> NoReturn:
    """Raise that the storage stopped answering this process (`exc`), once its workers have ended."""
    # This process's own cause, and those of the workers that lost the storage before it (a worker's
    # may differ: a locked file there, a connection the server dropped): the line named only this one.
    problems.drain()
    workers = problems.lost(procs)
    mine = lost_cause(exc)
    causes = lost_causes([("the main process", mine), *workers]) if workers else exc
    waited = problems.lock_waited(procs, (mine, lock_waited(exc)))  # the workers' said as text: not in it
    shown = problems.tracebacks(procs)
    if shown is not None:
        shown.__cause__ = exc  # this process's own error, above the workers'
    raise storage_lost(plan.storage_url, causes, waited=waited) from shown


def _run_workers(
    plan: StudyPlan,
    n_workers: int,
    observer: StudyObserver | None,
    max_failures: int,
    procs: list[Any],
    problems: Problems,
    on_open: Callable[[str | None], None] | None = None,
) -> StudySummary:
    """The main process's whole life with its workers: open the study, start them, show their trials until
    every one has ended, then sum the run up."""
    start = time.perf_counter()
    run = _open_run(plan, n_workers, observer, max_failures, procs, problems, on_open)
    procs += _worker_processes(run)  # `run_workers`'s list: it ends them where the storage stops answering
    # started already by the CLI (again here where the run needs other preloads); this makes it ignore a
    # process group's SIGTERM
    start_worker_server(run.uses_torch)
    _start_and_follow(run)
    _wait_for_the_workers(run)
    return sum_up(run, start)


def _open_run(
    plan: StudyPlan,
    n_workers: int,
    observer: StudyObserver | None,
    max_failures: int,
    procs: list[Any],
    problems: Problems,
    on_open: Callable[[str | None], None] | None,
) -> WorkerRun:
    """Open the study, before any worker starts, and make what the run's workers will share: the run's
    deadline among them, set as one process's run sets it, so the workers' start-up counts against it."""
    # creates the MLflow store and experiment once, here, before any worker starts
    tracker = make_tracker(plan)
    study, salt, existing, alone_since, target, before, done = open_for_run(plan, observer, on_open)
    if tracker is not None:
        tracker.end_cut_off_runs(study)
    deadline = run_deadline(plan.opt.timeout)  # the timeout counts from here, as in one process
    # One worker per trial left at most: more had nothing to run, and their trials, asked in a race at the
    # end, were sent back and kept WAITING in the study (each a process, with a smaller share of the cores).
    n_started = min(n_workers, target - done) if done < target else n_workers
    monitor = Monitor(study, observer)
    # Storages without a heartbeat (Redis, journal files): a wait for other machines' trials is said once.
    wait_note = None if has_heartbeat(study._storage) else WaitNote(plan, heartbeat_settings()[1])
    ownerless_note = OwnerlessNote(heartbeat_settings()[1])
    uses_torch = trains_with_torch(plan.run)  # the configs are checked: the function's module imported
    ctx: Any = worker_context(uses_torch)
    return WorkerRun(
        plan=plan,
        study=study,
        salt=salt,
        existing=existing,
        alone_since=alone_since,
        target=target,
        before=before,
        done=done,
        asked=n_workers,
        n_workers=n_started,
        max_failures=max_failures,
        procs=procs,
        problems=problems,
        monitor=monitor,
        wait_note=wait_note,
        ownerless_note=ownerless_note,
        uses_torch=uses_torch,
        ctx=ctx,
        shared=Shared.make(ctx, problems),
        started=time.time(),  # the trials the workers start from now on are this run's (`run_streak`)
        deadline=deadline,
    )


def _worker_processes(run: WorkerRun) -> list[Any]:
    """The run's worker processes, made, not started: each is given the configs and what it shares."""
    run_dump, opt_dump = run.plan.run.model_dump(mode="json"), run.plan.opt.model_dump(mode="json")
    shared = run.shared
    return [
        run.ctx.Process(
            target=worker_main,
            args=(
                _worker_args(run, i, run_dump, opt_dump),
                shared.stop,
                shared.exhausted,
                shared.fallbacks,
                run.problems.queue,
                shared.tracking,
            ),
            name=f"hpotool-worker-{i}",
        )
        for i in range(run.n_workers)
    ]


def _worker_args(
    run: WorkerRun, index: int, run_dump: dict[str, Any], opt_dump: dict[str, Any]
) -> WorkerArgs:
    """What worker `index` receives: the configs as plain dicts, and how this run and command started."""
    return WorkerArgs(
        run_dump,
        opt_dump,
        run.plan.storage_url,
        index,
        run.n_workers,
        run.max_failures,
        run.existing,
        run.salt,
        run.started,
        alone_since=run.alone_since,
        deadline=run.deadline,
        storage_origin=run.plan.storage_origin,
        debug=logging.getLogger("hpotool").isEnabledFor(logging.DEBUG),
        environ=command_environ(),
        uses_torch=run.uses_torch,
    )


def _start_and_follow(run: WorkerRun) -> None:
    """Start the workers (none where the study has its trials already) and follow them until every one has
    ended. Ctrl-C or SIGTERM (to this process or to the whole group) stops every worker: each ends its
    trial as FAIL ("interrupted"), and this process waits for them, then prints the summary."""
    with signals_interrupt():
        try:
            with deferred():  # a signal now waits until every worker has started, then stops them all
                if run.done < run.target:
                    for p in run.procs:
                        p.start()
            _follow(run)
        except KeyboardInterrupt as exc:
            run.interrupted = signal_of(exc)
            ending()  # once the workers have ended, another Ctrl-C waits for the summary
            with signals_ignored():  # a second signal must not orphan the workers
                stop_workers(run.procs, run.shared.stop, run.interrupted)


def _follow(run: WorkerRun) -> None:
    """Until no worker is alive: show the newly finished trials, say a wait for a slot, and fail the
    trials of the workers that exited; a look every `DISPLAY_S`, and at once when a worker exits."""
    while True:
        raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed
        with deferred():
            look_for_a_gone_reader()
            run.monitor.poll()
            run.gather()
            look_for_a_wait(
                run.wait_note, run.ownerless_note, run.study, run.monitor.trials, run.target, run.procs
            )
            run.monitor.wake_for(note_due(run.wait_note, run.ownerless_note))
            alive = [p.sentinel for p in run.procs if p.is_alive()]
            fail_trials_of_exited(run.study, run.procs, run.exited, run.plan, run.gone_before)
        if not alive:
            break
        wait(alive, timeout=DISPLAY_S)  # wakes as soon as a worker exits


def _wait_for_the_workers(run: WorkerRun) -> None:
    """Wait until every worker has ended, fail the trials they left RUNNING, and show the last ones."""
    for p in run.procs:
        if p.pid is not None:  # none is started on a study that already has its trials
            p.join()
    with deferred():
        fail_trials_of_exited(run.study, run.procs, run.exited)
    run.monitor.poll(read=True)
    run.gather()
