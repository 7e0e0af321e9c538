"""A worker process of `optimize --workers N`: its entry point, set-up and trial loop.

Started from the worker server (`forkserver`), it sets up its configs and plan from `WorkerArgs`, joins the
study the main process opened, and runs `loop.run_trials` until the study is done or it is told to stop;
what ends it early it tells the main process by its exit code and the problems queue (`worker_problems`).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import optuna

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError, unsuppress_context
from hpotool.fallback import independent_sampling
from hpotool.interrupts import Interrupted, exit_code, quiet_dropped, record, signal_of
from hpotool.loop import run_trials
from hpotool.pipes import guard_streams
from hpotool.plan import StudyPlan
from hpotool.run_failures import run_streak
from hpotool.storage import make_storage
from hpotool.storage_faults import in_study, lock_waited, lost_cause, lost_connection, study_deleted
from hpotool.storage_url import storage_file, storage_named, storage_origin
from hpotool.tracking import make_tracker, tracking_off
from hpotool.trainer_contract import ContractStop
from hpotool.trial_setup import Unasked
from hpotool.worker_args import WorkerArgs, take_environ, worker_plan, worker_run_config
from hpotool.worker_problems import CONTRACT_EXIT, ERROR_EXIT, LOST_STORAGE_EXIT, SETUP_EXIT

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue
    from multiprocessing.synchronize import Event

    from hpotool.tracking import Tracker


def _interrupt_once(signum: int, frame: Any) -> None:
    """First SIGINT/SIGTERM: end the current trial as interrupted; later ones are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record(signum)
    raise Interrupted(signum)


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
    _become_a_worker(args)
    try:
        try:
            plan, opt = _worker_configs(args)
        except HpoError as exc:
            # What passed the main process's checks fails here (a user's module that imports there, not
            # here): each worker printed a traceback, and the command exited 0 saying 'run again'. The main
            # process says it in one line (under --debug, after this traceback), and the other workers stop
            # after their trial.
            _tell_and_exit(problems, stop, SETUP_EXIT, exc)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            guard = _failure_guard(args)
            if _run_worker_trials(
                plan, opt, stop, guard, fallbacks, args.alone_since, tracking, args.deadline
            ):
                exhausted.set()
        except ContractStop:  # the training function broke hpotool's contract: the main process says so
            stop.set()
            sys.exit(CONTRACT_EXIT)
        except HpoError as exc:
            # The study would not open here (its file moved or deleted, its database dropped since the main
            # process opened it): each worker printed a traceback, and the command said 'N of N workers died;
            # run again to resume', exit code 1. The main process says why in one line; the others stop. A
            # journal damaged as the trials ran is said as `optimize` says it during its study (`in_study`).
            _tell_and_exit(problems, stop, ERROR_EXIT, in_study(exc))
        except Exception as exc:  # after the data is loaded: a user's database error there is not ours
            _end_on_a_storage_error(exc, opt.study_name, args.storage_url, problems, stop)
            raise
    except KeyboardInterrupt as exc:
        # The shell's code for the signal: a worker signalled alone (its pid killed) tells the main process
        # why it stopped; it exited 0 as if its work were done, and the run ended short with exit code 0.
        sys.exit(exit_code(signal_of(exc)))


def _become_a_worker(args: WorkerArgs) -> None:
    """Set this process up as the main process's worker: its start method, environment, signals,
    streams and `--debug` logging, and its end when the main process is gone."""
    # A process the forkserver started takes forkserver as its default start method: a user's DataLoader
    # with num_workers then started a forkserver of its own, importing torch again (its first batch took
    # 24 s instead of 0.1 s), where one process forks. The platform's default again, as in one process.
    multiprocessing.set_start_method(None, force=True)
    take_environ(args.environ)
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    sys.unraisablehook = quiet_dropped(sys.unraisablehook)
    guard_streams(stop=False)  # a closed pipe (`|& head`) is the main process's to act on
    _end_with_the_main_process()
    if args.debug:  # a failed trial's traceback (`trial_run.run_trial`), on the stderr this worker shares
        logger = logging.getLogger("hpotool")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(logging.StreamHandler())


def _worker_configs(args: WorkerArgs) -> tuple[StudyPlan, OptimizeConfig]:
    """This worker's plan and optimize config, made from what the main process sent.

    Raises:
        HpoError: what passed the main process's checks fails here, naming the config and key.
    """
    run = validate_config(RunConfig, args.run, "run config")
    run = worker_run_config(run, args.n_workers, args.index, uses_torch=args.uses_torch)
    opt = validate_config(OptimizeConfig, args.opt, "optimize config", budget_given=True)
    plan = worker_plan(run, opt, args.storage_url, args.index, args.existing, args.salt, args.storage_origin)
    return plan, opt


def _failure_guard(args: WorkerArgs) -> tuple[int, Callable[[optuna.Study], int]]:
    """`--max-failures`, and how to count the failed trials in a row that the run's workers ended last
    (`run_failures.run_streak`), for `loop.run_trials`."""
    since = datetime.fromtimestamp(args.started)  # naive local time, as Optuna stores its times
    main = multiprocessing.parent_process()  # as `owners.owner` records it on each trial
    streak_of = functools.partial(run_streak, main=(main and main.pid) or os.getpid(), since=since)
    return args.max_failures, streak_of


def _end_on_a_storage_error(
    exc: Exception, study_name: str, storage_url: str, problems: SimpleQueue | None, stop: Event
) -> None:
    """End this worker where `exc` says the study was deleted (`ERROR_EXIT`) or the storage stopped
    answering (`LOST_STORAGE_EXIT`), telling the main process why; return on any other error."""
    deleted = study_deleted(study_name, storage_url, exc)
    if deleted is not None:  # the main process finds it gone too, and says so
        _tell_and_exit(problems, stop, ERROR_EXIT, deleted)
    if lost_connection(exc) is None:
        return
    # The storage stopped answering: the main process says so in one line, naming this cause (it said
    # "ConnectionError: a worker lost its connection", which hid a locked or read-only file), and shows
    # this traceback under --debug (it showed its own alone, never the driver's error here).
    if problems is not None:
        name, trace = multiprocessing.current_process().name, traceback.format_exc()
        problems.put((LOST_STORAGE_EXIT, lost_cause(exc), name, trace, lock_waited(exc)))
    sys.exit(LOST_STORAGE_EXIT)


def _tell_and_exit(problems: SimpleQueue | None, stop: Event, code: int, why: HpoError) -> NoReturn:
    """Put why this worker ends, named, on `problems` for the main process's one line, with its traceback
    (the user's error it was raised from too) for `--debug`; stop the other workers after their trial; exit
    with `code`."""
    if problems is not None:
        name = multiprocessing.current_process().name
        unsuppress_context(why)
        problems.put((code, f"{name}: {why}", name, "".join(traceback.format_exception(why)), None))
    stop.set()
    sys.exit(code)


def _run_worker_trials(
    plan: StudyPlan,
    opt: OptimizeConfig,
    stop: Event,
    guard: tuple[int, Callable[[optuna.Study], int]],
    fallbacks: SimpleQueue | None,
    alone_since: Unasked | None = None,
    tracking: TrackingOff | None = None,
    deadline: float | None = None,
) -> bool:
    """Join the study and run trials; returns whether the sampler has nothing left to try, and puts what
    its sampler sampled independently on `fallbacks`. `alone_since`, `deadline`: as `loop.run_trials` takes
    them (the main process's deadline: this worker's start-up counts against the run's timeout)."""
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
                deadline=deadline,
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
