"""N worker processes on this machine sharing one study; the same loop joins a study from other machines.

The main process creates the study once (SQLite races when workers create it together), then starts the
workers and follows the storage, feeding every worker's finished trials to the observer. Each worker runs
`run_trials`: ask, reserve a slot, train, tell. The slot makes `n_trials` exact: after `ask`, a trial whose
rank among the finished and running trials is beyond the target goes back to WAITING untrained (Optuna
counts only COMPLETE and PRUNED trials, and the next `ask` anywhere picks the WAITING trial up again), so
workers racing at the end never overshoot the target.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, NoReturn

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.data import load_checked
from hpotool.errors import HpoError, unsuppress_context
from hpotool.exhaustion import EXHAUSTED
from hpotool.factories import make_pruner, study_sampler
from hpotool.fallback import IndependentSampling, independent_sampling
from hpotool.forkserver import start_worker_server, worker_context
from hpotool.heartbeat import has_heartbeat
from hpotool.interrupts import (
    Interrupted,
    deferred,
    exit_code,
    interrupt_pending,
    quiet_dropped,
    raise_dropped,
    record,
    signal_of,
    signals_ignored,
    signals_interrupt,
)
from hpotool.loop import run_trials
from hpotool.objective import StudyObserver
from hpotool.overrides import leaf_values
from hpotool.pipes import guard_streams
from hpotool.plan import StudyPlan
from hpotool.resume import queue_interrupted
from hpotool.run_summary import (
    add_fallback_note,
    add_ran_now_states,
    already_done,
    failures_stop,
    interrupted_idle,
    ran_now_states,
    timed_out,
)
from hpotool.stale import fail_dead_local_trials, failed_in_run, of_run, run_by
from hpotool.storage import make_storage
from hpotool.storage_faults import lost_cause, lost_connection, storage_lost, study_deleted
from hpotool.storage_settings import heartbeat_settings
from hpotool.storage_url import storage_file, storage_named, storage_origin
from hpotool.study import FINISHED
from hpotool.study_run import open_for_run
from hpotool.summary import StudySummary, summarize
from hpotool.tracking import make_tracker, tracking_off
from hpotool.trial_run import trained_by
from hpotool.user_trainer import ContractStop
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.waiting import FULL_LOOK_S, study_version

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue
    from multiprocessing.synchronize import Event

    from hpotool.tracking import Tracker

DISPLAY_S = 0.5  # how often the main process shows the workers' newly finished trials
LOST_STORAGE_EXIT = 3  # a worker's exit code when the storage stopped answering
CONTRACT_EXIT = 4  # a worker's exit code when the training function broke hpotool's contract
SETUP_EXIT = 5  # a worker's exit code when its configs or data, checked in the main process, failed here
ERROR_EXIT = 6  # a worker's exit code when it met one of hpotool's own errors after set-up (its storage
# would not open), which the main process says in one line


def worker_threads(n_workers: int, configured: int | None, cores: int | None = None) -> int:
    """Torch threads per worker: the cores split between the workers, or fewer if the config says so."""
    share = max(1, (cores or os.cpu_count() or 1) // n_workers)
    return min(share, configured) if configured is not None else share


def worker_device(device: str, index: int, gpu_count: int) -> str:
    """`cuda:i` round-robin over several GPUs when the config asks for cuda or auto; else unchanged."""
    if device in ("cuda", "auto") and gpu_count > 1:
        return f"cuda:{index % gpu_count}"
    return device


def worker_run_config(run: RunConfig, n_workers: int, index: int) -> RunConfig:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    changes = {
        "torch_threads": worker_threads(n_workers, run.torch_threads),
        "device": worker_device(run.device, index, gpus),
    }
    return validate_config(RunConfig, {**run.model_dump(), **changes}, f"worker {index}")


def worker_plan(
    run: RunConfig,
    opt: OptimizeConfig,
    storage_url: str,
    index: int,
    existing: int,
    salt: tuple[int, ...] = (),
    storage_origin: str | None = None,
) -> StudyPlan:
    """The plan of worker `index` in a run that found `existing` trials in the study: its own seed stream
    (`factories.study_sampler`), so the workers' random start-up points differ. What fails is an `HpoError`
    naming the config and key: a user's dataset that raises in a worker alone (a file or library only the
    main process can reach), or a sampler's, printed a traceback in each worker."""
    try:
        sampler = study_sampler(opt, fixed=leaf_values(run), worker=index, existing=existing, salt=salt)
        pruner = make_pruner(opt.pruner.name, opt.pruner.kwargs)
    except HpoError as exc:
        raise HpoError(f"optimize config: {exc}") from None
    data = load_checked(run, "run config")
    return StudyPlan(run, opt, data, sampler, pruner, storage_url, storage_origin=storage_origin)


def _interrupt_once(signum: int, frame: Any) -> None:
    """First SIGINT/SIGTERM: end the current trial as interrupted; later ones are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record(signum)
    raise Interrupted(signum)


@dataclass(frozen=True)
class WorkerArgs:
    """What a worker process receives (picklable: configs as plain dicts)."""

    run: dict[str, Any]
    opt: dict[str, Any]
    storage_url: str
    index: int
    n_workers: int
    max_failures: int
    existing: int  # trials in the study when the run started
    salt: tuple[int, ...] = ()  # `factories.process_salt()` where other processes sample the study too
    started: float = 0.0  # when the run started (time.time() in the main process)
    storage_origin: str | None = None  # where the storage URL was given (`StudyPlan.storage_origin`)
    # The main process shows hpotool's DEBUG records (`hpotool --debug`), a failed trial's traceback: so
    # does this one.
    debug: bool = False
    # The main process's HPOTOOL_* environment variables (heartbeat, server silence, SQLite busy timeout...)
    # as the command started (`hpotool_environ`): a worker forked from a forkserver has the server's
    # environment, which is the one its first command had, not a later one's in the same process.
    environ: dict[str, str] = field(default_factory=dict)


def hpotool_environ() -> dict[str, str]:
    """This process's HPOTOOL_* environment variables, for the workers it starts."""
    return {k: v for k, v in os.environ.items() if k.startswith("HPOTOOL_")}


def _take_environ(environ: dict[str, str]) -> None:
    """Set this worker's HPOTOOL_* environment variables to the main process's (`WorkerArgs.environ`)."""
    for name in [k for k in os.environ if k.startswith("HPOTOOL_") and k not in environ]:
        del os.environ[name]
    os.environ.update(environ)


def _end_with_the_main_process() -> None:
    """When the main process is gone (kill -9, an OOM kill), end this worker as a SIGTERM would: its trial
    ends as FAIL ("interrupted"). Left alone, the workers ran the study to its end, unseen, after the
    command had returned to the shell."""
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the main process has exited, however it ended
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hpotool-main-watch", daemon=True).start()


@dataclass(frozen=True)
class TrackingOff:
    """What the workers of a run share about MLflow tracking: `off`, set by the first worker that cannot log
    a trial (then no worker tries again), and `warnings`, on which that worker puts the warning for the main
    process to print once. Each worker printed its own 'tracking is off for the rest of this run' (as many
    warnings as workers when the server went away), and the others went on trying, each paying the retries."""

    off: Event
    warnings: SimpleQueue


class _SharedTracker:
    """A worker's tracker that logs nothing once `TrackingOff.off` is set, and sets it at its first error."""

    def __init__(self, tracker: Tracker, shared: TrackingOff) -> None:
        self.tracker, self.shared = tracker, shared

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.shared.off.is_set():
            return
        try:
            self.tracker(study, trial)
        except Exception as exc:
            self.shared.off.set()
            self.shared.warnings.put(tracking_off(trial.number, exc))


def worker_main(
    args: WorkerArgs,
    stop: Event,
    exhausted: Event,
    fallbacks: SimpleQueue | None = None,
    problems: SimpleQueue | None = None,
    tracking: TrackingOff | None = None,
) -> None:
    """The entry point of a worker process; sets `exhausted` when its sampler has nothing left to try, puts
    what its sampler sampled independently on `fallbacks` (for the main process's summary), on `problems`
    why its configs or data could not be set up here (then it exits `SETUP_EXIT`), and on `tracking` why
    MLflow tracking went off."""
    # A process the forkserver started takes forkserver as its default start method: a user's DataLoader
    # with num_workers then started a forkserver of its own, importing torch again (its first batch took
    # 24 s instead of 0.1 s), where one process forks. The platform's default again, as in one process.
    multiprocessing.set_start_method(None, force=True)
    _take_environ(args.environ)
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    sys.unraisablehook = quiet_dropped(sys.unraisablehook)
    guard_streams(stop=False)  # a closed pipe (`|& head`) is the main process's to act on
    _end_with_the_main_process()
    if args.debug:  # a failed trial's traceback (`trial_run.run_trial`), on the stderr this worker shares
        logger = logging.getLogger("hpotool")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(logging.StreamHandler())
    try:
        try:
            run = validate_config(RunConfig, args.run, "run config")
            run = worker_run_config(run, args.n_workers, args.index)
            opt = validate_config(OptimizeConfig, args.opt, "optimize config", budget_given=True)
            plan = worker_plan(
                run, opt, args.storage_url, args.index, args.existing, args.salt, args.storage_origin
            )
        except HpoError as exc:
            # What passed the main process's checks fails here (a user's module that imports there, not
            # here): each worker printed a traceback, and the command exited 0 saying 'run again'. The main
            # process says it in one line (under --debug, after this traceback), and the other workers stop
            # after their trial.
            _tell_and_exit(problems, stop, SETUP_EXIT, exc)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            alone_since = None if args.salt else args.existing
            since = datetime.fromtimestamp(args.started)  # naive local time, as Optuna stores its times
            main = multiprocessing.parent_process()  # as `stale.owner` records it on each trial
            streak_of = functools.partial(run_streak, main=(main and main.pid) or os.getpid(), since=since)
            guard = (args.max_failures, streak_of)
            if _run_worker_trials(plan, opt, stop, guard, fallbacks, alone_since, tracking):
                exhausted.set()
        except ContractStop:  # the training function broke hpotool's contract: the main process says so
            stop.set()
            sys.exit(CONTRACT_EXIT)
        except HpoError as exc:
            # The study would not open here (its file moved or deleted, its database dropped since the main
            # process opened it): each worker printed a traceback, and the command said 'N of N workers died;
            # run again to resume', exit code 1. The main process says why in one line; the others stop.
            _tell_and_exit(problems, stop, ERROR_EXIT, exc)
        except Exception as exc:  # after the data is loaded: a user's database error there is not ours
            deleted = study_deleted(opt.study_name, args.storage_url, exc)
            if deleted is not None:  # the main process finds it gone too, and says so
                _tell_and_exit(problems, stop, ERROR_EXIT, deleted)
            if lost_connection(exc) is None:
                raise
            # The storage stopped answering: the main process says so in one line, naming this cause (it
            # said "ConnectionError: a worker lost its connection", which hid a locked or read-only file),
            # and shows this traceback under --debug (it showed its own alone, never the driver's error here).
            if problems is not None:
                name, trace = multiprocessing.current_process().name, traceback.format_exc()
                problems.put((LOST_STORAGE_EXIT, lost_cause(exc), name, trace))
            sys.exit(LOST_STORAGE_EXIT)
    except KeyboardInterrupt as exc:
        # The shell's code for the signal: a worker signalled alone (its pid killed) tells the main process
        # why it stopped; it exited 0 as if its work were done, and the run ended short with exit code 0.
        sys.exit(exit_code(signal_of(exc)))


def _tell_and_exit(problems: SimpleQueue | None, stop: Event, code: int, why: HpoError) -> NoReturn:
    """Put why this worker ends, named, on `problems` for the main process's one line, with its traceback
    (the user's error it was raised from too) for `--debug`; stop the other workers after their trial; exit
    with `code`."""
    if problems is not None:
        name = multiprocessing.current_process().name
        unsuppress_context(why)
        problems.put((code, f"{name}: {why}", name, "".join(traceback.format_exception(why))))
    stop.set()
    sys.exit(code)


def _run_worker_trials(
    plan: StudyPlan,
    opt: OptimizeConfig,
    stop: Event,
    guard: tuple[int, Callable[[optuna.Study], int]],
    fallbacks: SimpleQueue | None,
    alone_since: int | None = None,
    tracking: TrackingOff | None = None,
) -> bool:
    """Join the study and run trials; returns whether the sampler has nothing left to try, and puts what
    its sampler sampled independently on `fallbacks`. `alone_since`: as `loop.run_trials` takes it."""
    study = _open_study(plan, opt)
    own: Tracker | None = None
    if tracking is None or not tracking.off.is_set():
        try:
            own = make_tracker(plan)  # the main process created the store and the experiment
        except HpoError as exc:
            warning = f"warning: {exc}; tracking is off for the rest of this run, and the study goes on"
            if tracking is None:
                logging.getLogger("hpotool").warning("%s", warning)
            else:
                tracking.off.set()
                tracking.warnings.put(warning)
    tracker = _SharedTracker(own, tracking) if own is not None and tracking is not None else own
    with independent_sampling(study.sampler) as fallback:
        try:
            max_failures, streak_of = guard
            return run_trials(
                study,
                plan,
                stop,
                max_failures=max_failures,
                tracker=tracker,
                alone_since=alone_since,
                streak_of=streak_of,
            ).exhausted
        finally:
            if own is not None:
                own.close()
            if fallback.trials and fallbacks is not None:
                fallbacks.put(fallback.as_dict())


def _open_study(plan: StudyPlan, opt: OptimizeConfig) -> optuna.Study:
    """The study the main process opened (and created) a moment ago, opened in this worker.

    Raises:
        HpoError: it does not open here, naming the storage, why, and what to do.
    """
    what = ""
    named = storage_named(plan.storage_url, plan.storage_origin)  # as the main process's errors name it
    try:
        with storage_origin(plan.storage_url, plan.storage_origin):
            storage = make_storage(plan.storage_url, create=False)
        return optuna.load_study(
            study_name=opt.study_name, storage=storage, sampler=plan.sampler, pruner=plan.pruner
        )
    except HpoError as exc:
        what = str(exc)
    except KeyError:
        what = f"{named} no longer holds study {opt.study_name!r}"
    except Exception as exc:
        if lost_connection(exc) is not None:  # the server stopped answering: LOST_STORAGE_EXIT
            raise
        text = str(exc).strip()
        first = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
        what = f"{named}: cannot open study {opt.study_name!r}: {first}"
    if storage_file(plan.storage_url) is not None:
        fix = "(the file moved or deleted?): put it back where the storage names it"
    else:
        fix = "(the server gone, the database or the study dropped?): once the server holds the study again"
    raise HpoError(
        f"{what}; this command opened the study a moment before, and its workers could not {fix}, run the "
        f"same command to resume"
    )


def run_streak(study: optuna.Study, main: int, since: datetime) -> int:
    """The failed trials in a row that the workers of one run (its main process `main`, on this host,
    started at `since`) ended last, in the order they ended, whichever workers ran them: `--max-failures`
    counts them, where each worker counted its own (two workers failing every trial in turn ran about
    twice as many failed trials as asked). Read from the storage, so no worker needs the others' pids.

    A FAIL trial whose run did not fail (`stale.failed_in_run`: one another process failed, as stale, as it
    ran, one interrupted) is passed over: it neither counts nor ends the streak. Before, a trial whose
    result was not kept (another worker ran its retry) counted, once a failed trial followed it."""
    streak = 0
    for t in reversed(_ended_in_run(study, main, since)):
        if t.state != TrialState.FAIL:
            break
        streak += failed_in_run(t)
    return streak


def run_error(study: optuna.Study, main: int, since: datetime) -> str | None:
    """The `fail_reason` of the last trial whose run failed (`stale.failed_in_run`) that the workers of one
    run ended (as `run_streak` takes them): the error the summary names where `--max-failures` stopped the
    run. Before, that of the study's FAIL trial of the highest number, which could be one another process
    failed as stale as it ran, or another command's."""
    failed = [t for t in _ended_in_run(study, main, since) if failed_in_run(t)]
    return str(failed[-1].user_attrs.get("fail_reason", "unknown error")) if failed else None


def _ended_in_run(study: optuna.Study, main: int, since: datetime) -> list[FrozenTrial]:
    """The trials that the workers of one run (its main process `main`, on this host, started at `since`)
    ended, in the order they ended."""
    ended = [
        t
        for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL))
        if t.datetime_complete is not None
        and t.datetime_start is not None
        and t.datetime_start >= since
        and of_run(t, main)
    ]
    ended.sort(key=lambda t: (t.datetime_complete, t.number))
    return ended


class _Monitor:
    """Follows the study in the storage and tells the observer about each newly finished trial.

    A look reads the study's trials only when `study_version` has changed since the last read (a trial
    added, or one whose state changed: each finished trial is one), at least every `FULL_LOOK_S`, and when
    `wake_for` asks (a note due): before, every look (twice a second, the whole run) read them all."""

    def __init__(self, study: optuna.Study, observer: StudyObserver | None) -> None:
        self.study, self.observer = study, observer
        self.version = study_version(study)  # before the trials: a change in between is read next look
        self.trials = study.get_trials(deepcopy=False)  # as the last look found them
        self.read_at = time.monotonic()
        self.read_by: float | None = None  # when a note wants the trials read again, changed or not
        self.seen = {t.number for t in self.trials if t.state.is_finished()}

    def wake_for(self, seconds: float | None) -> None:
        """Read the trials again at the first look `seconds` from now (None: no such need)."""
        self.read_by = None if seconds is None else time.monotonic() + seconds

    def poll(self, *, read: bool = False) -> None:
        """Show the newly finished trials (`read`: read the trials whether or not the study changed). A connection the server dropped (a restart, a failover) is only
        a look missed: the next one reconnects. Before, this process stopped every worker (their trials
        ended FAIL, "interrupted", never run again) while the server answered them; one gone for good,
        the workers meet at their next write, and end the run (`LOST_STORAGE_EXIT`)."""
        try:
            self._poll(read=read)
        except Exception as exc:
            if lost_connection(exc) is None:
                raise

    def _poll(self, *, read: bool = False) -> None:
        version = study_version(self.study)
        now = time.monotonic()
        due = now >= self.read_at + FULL_LOOK_S or (self.read_by is not None and now >= self.read_by)
        if version == self.version and not (read or due):
            return
        self.version, self.read_at, self.read_by = version, now, None
        self.trials = self.study.get_trials(deepcopy=False)
        new = [t for t in self.trials if t.state.is_finished() and t.number not in self.seen]
        for t in sorted(new, key=lambda t: (t.datetime_complete or t.datetime_start, t.number)):
            self.seen.add(t.number)
            if self.observer is not None:
                self.observer.trial_finished(self.study, t)


def _look_for_a_wait(
    note: WaitNote | None,
    ownerless: OwnerlessNote,
    study: optuna.Study,
    trials: list[FrozenTrial],
    target: int,
    procs: list[Any],
) -> None:
    """Whether a worker waits for a slot, every one taken by the study's finished and running trials, and
    fewer of them run by the live workers than there are: `note` says once that the run waits for the
    other machines' (each worker would say it; a single process says it itself, `loop.run_trials`), and
    `ownerless` that it waits for a trial with no owner recorded."""
    taken = [t for t in trials if t.state in FINISHED or t.state == TrialState.RUNNING]
    alive = {p.pid for p in procs if p.pid is not None and p.is_alive()}
    busy = sum(t.state == TrialState.RUNNING and run_by(t, alive) for t in taken)
    finished = sum(t.state in FINISHED for t in taken)
    waiting = len(taken) >= target > finished and busy < len(alive)
    if note is not None:
        note.look(taken, waiting, time.monotonic())
    if waiting:
        ownerless.look(study, taken, say=True)
    else:
        ownerless.note_in = None  # none to say while the run does not wait


def _note_due(note: WaitNote | None, ownerless: OwnerlessNote) -> float | None:
    """Seconds until one of the notes on a wait may be due (None: neither), when `_look_for_a_wait` must
    see the trials as they are then, not as the last change left them: a trial's owner, recorded after
    its `ask`, changes no state."""
    due = [s for s in (ownerless.note_in, note.due_in(time.monotonic()) if note else None) if s is not None]
    return min(due) if due else None


def _stop_workers(procs: list[Any], stop: Event, signum: int) -> None:
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


def _fail_trials_of_exited(
    study: optuna.Study, procs: list[Any], exited: set[int], plan: StudyPlan | None = None
) -> None:
    """Mark FAIL the RUNNING trials of the workers that have exited since the last look, and queue their
    values again (`stale.fail_dead_local_trials`): a worker killed outright (kill -9, the OOM killer)
    cannot end its trial, and its trial stayed RUNNING for the heartbeat's whole grace period (60 s) while
    this process knew at once that its worker was gone. Only the trials that name an exited worker's pid
    (and whose process no longer exists) are touched: never a live worker's. With `plan` (the run goes on),
    a worker stopped alone by Ctrl-C or SIGTERM has its interrupted trial's chosen values (a warm start, a
    retry, a brute-force or QMC point) queued at once, for the other workers (`queue_interrupted`): they
    finished the study without them, and a resume found nothing left to run."""
    gone = {p.pid for p in procs if p.pid is not None and p.pid not in exited and p.exitcode is not None}
    if gone:
        exited |= gone
        fail_dead_local_trials(study, pids=gone)
        stopped = (exit_code(signal.SIGINT), exit_code(signal.SIGTERM))
        alone = not interrupt_pending()  # not the command's signal: this process would have one too
        if plan is not None and alone and any(p.pid in gone and p.exitcode in stopped for p in procs):
            queue_interrupted(study, plan)


def _worker_ended(study: optuna.Study, proc: Any, before: set[int], lost: str | None = None) -> str:
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
    problems = _Problems()
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


class _Problems:
    """What the workers put on `queue` (their exit code, the problem in words, their name, their traceback
    or ""), gathered."""

    def __init__(self) -> None:
        self.queue: SimpleQueue | None = None  # made with the workers' context (`_run_workers`)
        self.said: list[tuple[int, str, str, str]] = []

    def drain(self) -> None:
        while self.queue is not None and not self.queue.empty():
            self.said.append(self.queue.get())

    def first(self, code: int) -> str | None:
        """The first problem a worker that exited with `code` put."""
        return next((text for said, text, _, _ in self.said if said == code), None)

    def lost(self, procs: list[Any]) -> list[tuple[str, str]]:
        """(worker name, cause) of each worker that exited because it lost the storage."""
        gone = {p.name for p in procs if p.exitcode == LOST_STORAGE_EXIT}
        return [
            (name, text) for code, text, name, _ in self.said if code == LOST_STORAGE_EXIT and name in gone
        ]

    def tracebacks(self, procs: list[Any]) -> WorkerTracebacks | None:
        """The tracebacks of the workers that exited because they lost the storage, for the error that says
        so to be raised from (`--debug` shows them); None where none sent one."""
        gone = {p.name for p in procs if p.exitcode == LOST_STORAGE_EXIT}
        said = [
            (name, trace) for code, _, name, trace in self.said if code == LOST_STORAGE_EXIT and name in gone
        ]
        shown = [f"The traceback of {name}:\n{trace.rstrip()}" for name, trace in said if trace]
        return WorkerTracebacks("\n\n".join(shown)) if shown else None

    def first_traceback(self, code: int) -> WorkerTracebacks | None:
        """The traceback of the first worker that exited with `code` (whose problem `first` gives), for the
        error that says so to be raised from (`--debug` shows it); None where it sent none."""
        for said, _, name, trace in self.said:
            if said == code:
                return WorkerTracebacks(f"The traceback of {name}:\n{trace.rstrip()}") if trace else None
        return None


class WorkerTracebacks(Exception):
    """The tracebacks of workers, as they sent them (text), that the main process's error is raised from:
    Python prints them above it where the error is not caught (`hpotool --debug`)."""

    def __str__(self) -> str:
        return "what the workers met, in their own process:\n\n" + str(self.args[0])


def lost_causes(causes: list[tuple[str, str]]) -> str:
    """Why the storage failed the processes `causes` names, in one line: each cause once, after the names of
    the processes that met it (`hpotool-worker-0, hpotool-worker-1: OperationalError: ...`)."""
    by_cause: dict[str, list[str]] = {}
    for name, cause in causes:
        names = by_cause.setdefault(cause, [])
        if name not in names:
            names.append(name)
    return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in by_cause.items())


def _run_workers(
    plan: StudyPlan,
    n_workers: int,
    observer: StudyObserver | None,
    max_failures: int,
    procs: list[Any],
    problems: _Problems,
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
    monitor = _Monitor(study, observer)
    # Storages without a heartbeat (Redis, journal files): a wait for other machines' trials is said once.
    wait_note = None if has_heartbeat(study._storage) else WaitNote(plan, heartbeat_settings()[1])
    ownerless_note = OwnerlessNote(heartbeat_settings()[1])
    ctx: Any = worker_context()
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
    exited: set[int] = set()  # the pids of the workers whose trials _fail_trials_of_exited has looked at
    start_worker_server()  # started already by the CLI; this makes it ignore a process group's SIGTERM
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
                    _look_for_a_wait(wait_note, ownerless_note, study, monitor.trials, target, procs)
                    monitor.wake_for(_note_due(wait_note, ownerless_note))
                    alive = [p.sentinel for p in procs if p.is_alive()]
                    _fail_trials_of_exited(study, procs, exited, plan)
                if not alive:
                    break
                wait(alive, timeout=DISPLAY_S)  # wakes as soon as a worker exits
        except KeyboardInterrupt as exc:
            interrupted = signal_of(exc)
            with signals_ignored():  # a second signal must not orphan the workers
                _stop_workers(procs, stop, interrupted)
    for p in procs:
        if p.pid is not None:  # none is started on a study that already has its trials
            p.join()
    with deferred():
        _fail_trials_of_exited(study, procs, exited)
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
            _worker_ended(study, p, before, causes.get(p.name)) for p in procs if p.exitcode not in (0, None)
        ]
        if ended:
            summary.extra["workers_ended"] = ended
    return summary
