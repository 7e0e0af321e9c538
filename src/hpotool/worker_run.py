"""What the main process of `optimize --workers N` holds of its run: the study it opened, its workers, the
events and queues it shares with them, and what they told it. `workers` runs it; `worker_summary` sums it up.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from hpotool.fallback import IndependentSampling
from hpotool.plan import StudyPlan
from hpotool.trial_setup import Unasked
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.worker_monitor import Monitor
from hpotool.worker_problems import Problems
from hpotool.worker_process import TrackingOff

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue
    from multiprocessing.synchronize import Event


@dataclass(frozen=True)
class Shared:
    """The events and queues the main process shares with its workers (made with the workers' context)."""

    stop: Event  # set: every worker ends after its trial (Ctrl-C, --max-failures, a worker's problem)
    exhausted: Event  # set by a worker whose sampler has nothing left to try
    fallbacks: SimpleQueue  # what each worker's sampler sampled independently (`IndependentSampling`)
    tracking: TrackingOff  # MLflow tracking gone off, and the warning that says so

    @classmethod
    def make(cls, ctx: Any, problems: Problems) -> Shared:
        """The run's events and queues, made with the workers' context `ctx`; `problems` gets its queue."""
        stop, exhausted, fallbacks = ctx.Event(), ctx.Event(), ctx.SimpleQueue()
        problems.queue = ctx.SimpleQueue()
        return cls(stop, exhausted, fallbacks, TrackingOff(ctx.Event(), ctx.SimpleQueue()))


@dataclass
class WorkerRun:
    """A `--workers` run as the main process follows it, from the study opened to the summary."""

    plan: StudyPlan
    study: optuna.Study
    salt: tuple[int, ...]  # `study_sampler.process_salt()` where other processes sample the study too
    existing: int  # trials in the study when the run started
    alone_since: Unasked | None  # the trials not asked then, where no other process was seen (`run_trials`)
    target: int  # `run_summary.trial_target`
    before: set[int]  # the numbers of the trials finished before this run
    done: int  # finished trials that count towards the target, once the resume is prepared
    asked: int  # the workers --workers asked for
    n_workers: int  # the workers started: at most one per trial left
    max_failures: int
    procs: list[Any]  # the worker processes
    problems: Problems  # why workers ended, as they said it
    monitor: Monitor
    wait_note: WaitNote | None  # None where the storage has a heartbeat
    ownerless_note: OwnerlessNote
    uses_torch: bool  # `worker_args.trains_with_torch`
    ctx: Any  # the workers' multiprocessing context (`forkserver.worker_context`)
    shared: Shared
    started: float  # time.time() before any worker started: the trials they start from then are this run's
    deadline: float | None  # `loop.run_deadline` as the run started: no worker starts a trial past it
    fallback: IndependentSampling = field(default_factory=IndependentSampling)  # the workers', merged
    tracking_warned: bool = False  # the tracking warning printed: one for the run, whichever workers sent it
    interrupted: int | None = None  # the signal that stopped the run (Ctrl-C, SIGTERM)
    exited: set[int] = field(default_factory=set)  # the pids of the workers whose trials were looked at
    # those of them seen gone while no signal of the command's was pending (`fail_trials_of_exited`): ended
    # before a Ctrl-C or SIGTERM that came later, whatever their exit code (143: a SIGTERM to it alone)
    gone_before: set[int] = field(default_factory=set)

    def gather(self) -> None:
        """Take what the workers put on the queues: their samplers' fallbacks, their problems, and the
        tracking warning (printed once). Drained while the workers run too, so a worker's put never waits
        on a full pipe."""
        while not self.shared.fallbacks.empty():
            self.fallback.merge(self.shared.fallbacks.get())
        self.problems.drain()
        while not self.shared.tracking.warnings.empty():
            warning = self.shared.tracking.warnings.get()
            if not self.tracking_warned:
                logging.getLogger("hpotool").warning("%s", warning)
                self.tracking_warned = True

    def pids(self) -> set[int]:
        """The pids of this process and of every worker it started."""
        return {os.getpid(), *(p.pid for p in self.procs if p.pid is not None)}
