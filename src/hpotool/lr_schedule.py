"""The learning-rate schedule of a run: built for the run's length in the steps it takes, and checked
against that length (`schedule_span`: a total_steps or T_max that does not span the run, a schedule resumed
part-way) and the task (a watched metric the task does not measure)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from hpotool.components import REGISTRIES, resolve_component
from hpotool.config import RunConfig
from hpotool.data import MEASURES, PreparedData
from hpotool.errors import RunCheckError
from hpotool.schedule_span import check_total_steps, check_users_schedule
from hpotool.schedulers import (
    DEFAULT_MONITOR,
    HIGHER_IS_BETTER,
    counts_epochs,
    step_counted_argument,
    steps_per_batch,
    takes_epoch,
    takes_epoch_and_metric,
    takes_metric,
)
from hpotool.signatures import construct, pick_kwargs
from hpotool.trainer import steps_per_epoch

_STEP_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule and how the Trainer steps it."""

    scheduler: Any  # an LRScheduler, ReduceLROnPlateau, or None
    per_step: bool
    watched: str | None  # the metric its step() is given, for a schedule that watches one
    by_epoch: bool = False  # its step() is given the number of epochs done (timm's step(epoch))
    updates: bool = False  # its step_update(num_updates) is called after each optimizer step (timm's)


def build_schedule(cfg: RunConfig, data: PreparedData, optimizer: torch.optim.Optimizer) -> Schedule:
    """The schedule the config names, built for the run's length in the steps it takes."""
    sched_fn = resolve_component("scheduler", cfg.scheduler.name)
    per_step = steps_per_batch(cfg.scheduler.name, cfg.scheduler.interval, sched_fn)
    _check_length_unit(cfg, sched_fn, per_step)
    # The run's length in the schedule's own steps: batches when it steps per batch, else epochs.
    batches = steps_per_epoch(len(data.train), cfg.batch_size) if per_step else 1
    scheduler = _unpacked(cfg, _constructed(cfg, data, sched_fn, optimizer, batches))
    if isinstance(scheduler, torch.optim.Optimizer):  # its step() would be taken for a schedule's
        raise TypeError(
            f"scheduler {cfg.scheduler.name!r} returned the optimizer ({type(scheduler).__name__}), not a "
            f"learning-rate schedule, so {'every batch' if per_step else 'each epoch'} would step the optimizer a "
            f"second time; return a schedule "
            f"built on it (return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)), or set scheduler: "
            f"{{name: none}} for a constant learning rate"
        )
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):  # None: a constant lr
        raise TypeError(
            f"scheduler {cfg.scheduler.name!r} returned {type(scheduler).__name__}, not a learning-rate schedule "
            f"(an object with a step() method, such as torch.optim.lr_scheduler.StepLR); return the schedule it "
            "builds"
        )
    run_steps = cfg.epochs * batches
    per = f"{cfg.epochs} epochs x {batches} batches" if per_step else f"once per epoch, {cfg.epochs} epochs"
    check_total_steps(cfg.scheduler.name, scheduler, run_steps, per)
    if cfg.scheduler.name not in REGISTRIES["scheduler"]:  # the built-in cosine spans the run itself
        check_users_schedule(cfg.scheduler.name, scheduler, run_steps, per, "batch" if per_step else "epoch")
    by_epoch = scheduler is not None and takes_epoch(scheduler)
    if by_epoch and per_step:
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} is given the number of epochs done in step(epoch), once per epoch; drop "
            f"interval: step",
        )
    updates = scheduler is not None and callable(getattr(scheduler, "step_update", None))
    return Schedule(scheduler, per_step, _watched(cfg, data, scheduler, per_step), by_epoch, updates)


def _check_length_unit(cfg: RunConfig, sched_fn: Any, per_step: bool) -> None:
    """Refuse a schedule stepped after every batch that is told the run's length in epochs.

    Raises:
        RunCheckError: it would run its course in the first batches; naming the argument to ask for.
    """
    counted = step_counted_argument(sched_fn)
    if per_step and counts_epochs(cfg.scheduler.name, sched_fn) and counted:
        raise RunCheckError(  # stepped per batch for `counted`, but told the run's length in epochs
            "scheduler",
            f"{cfg.scheduler.name!r} asks for epochs, the run's length in epochs, but counts {counted} in "
            f"batches, so stepped after every batch it would run its course in the first {cfg.epochs} batches; "
            f"ask for num_training_steps (the run's batches, which hpotool fills in) instead of epochs, or for "
            f"steps_per_epoch beside it, or set interval: epoch to count {counted} in epochs too",
        )
    if per_step and counts_epochs(cfg.scheduler.name, sched_fn):
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} takes the run's length as epochs (it asks for epochs, not steps_per_epoch "
            f"or num_training_steps), but interval: step steps it after every batch, so it would run its course "
            f"in the first {cfg.epochs} batches; drop interval: step, or give it a steps_per_epoch argument and "
            f"span epochs * steps_per_epoch steps",
        )


def _constructed(
    cfg: RunConfig, data: PreparedData, sched_fn: Any, optimizer: torch.optim.Optimizer, batches: int
) -> Any:
    """What the schedule's class or factory returns, given the run's length in the arguments it asks for
    (`batches`: the schedule's steps in an epoch) and the config's own."""
    # num_training_steps: a Hugging Face schedule's length, which its users worked out by hand (and a searched
    # epochs or batch_size changed under them)
    run_shape = {
        "epochs": cfg.epochs,
        "steps_per_epoch": batches,
        "num_training_steps": cfg.epochs * batches,
        # timm's create_scheduler_v2: num_epochs, and updates_per_epoch, the optimizer steps of an epoch (its
        # step_update is given them after each, however the schedule is stepped)
        "num_epochs": cfg.epochs,
        "updates_per_epoch": steps_per_epoch(len(data.train), cfg.batch_size),
    }
    with warnings.catch_warnings():
        # torch's SequentialLR steps its first schedule as it is built, and a ChainedScheduler there steps the
        # ones it holds a second time, which torch takes for a run stepping the schedule before the optimizer:
        # each trial printed its "Detected call of `lr_scheduler.step()` before `optimizer.step()`" warning
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER, UserWarning)
        return construct(sched_fn, (optimizer,), pick_kwargs(sched_fn, run_shape), cfg.scheduler.kwargs)


def _unpacked(cfg: RunConfig, built: Any) -> Any:
    """The schedule of a factory that returns it with the epochs to train it for, `(schedule, num_epochs)`
    as timm's create_scheduler_v2 does (it was refused: "returned tuple, not a learning-rate schedule");
    anything else as it is.

    Raises:
        RunCheckError: those epochs are not the run's: timm added its cooldown, a warmup_prefix's warm-up
            or more cycles to num_epochs, which the run would stop before (or, fewer, train past).
    """
    if not (isinstance(built, tuple) and len(built) == 2 and callable(getattr(built[0], "step", None))):
        return built
    scheduler, epochs = built
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return built  # refused below as a tuple
    if epochs != cfg.epochs:
        extra = epochs - cfg.epochs
        counted = f"{abs(extra)} epoch{'s' if abs(extra) != 1 else ''}"
        what = (
            f"so the schedule's last {counted} would never run"
            if extra > 0
            else f"so the run would train {counted} past the schedule's end"
        )
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} returned ({type(scheduler).__name__}, {epochs}): a schedule and the epochs to "
            f"train it for (as timm's create_scheduler_v2 does, adding cooldown_epochs, a warmup_prefix's warm-up "
            f"and cycle_limit's cycles to num_epochs), but the run trains {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, {what}; drop "
            f"cooldown_epochs, warmup_prefix and cycle_limit, so that it spans the run (hpotool fills in num_epochs "
            f"and updates_per_epoch for each run)",
        )
    return scheduler


def _watched(cfg: RunConfig, data: PreparedData, scheduler: Any, per_step: bool) -> str | None:
    """The epoch metric a schedule whose step() takes one is given: `scheduler.monitor`, val_loss by
    default; None for any other schedule.

    Raises:
        RunCheckError: a metric this task does not measure, a mode that reads it the wrong way round, a
            watching schedule stepped per batch, or `monitor` set for a schedule that watches nothing.
    """
    name, monitor = cfg.scheduler.name, cfg.scheduler.monitor
    # timm's step(epoch, metric=None) is given the metric only where monitor names one
    optional = scheduler is not None and monitor is not None and takes_epoch_and_metric(scheduler)
    if scheduler is None or not (takes_metric(scheduler) or optional):
        if monitor is not None:
            raise RunCheckError(
                "scheduler.monitor",
                f"scheduler {name!r} watches no metric (its step() takes none), so monitor: {monitor} would "
                f"do nothing; drop monitor, or use a schedule that watches one (name: plateau)",
            )
        return None
    watched = monitor or DEFAULT_MONITOR
    epoch_metrics = [m for m in data.metrics if m not in MEASURES]
    if watched not in epoch_metrics:
        raise RunCheckError(
            "scheduler.monitor",
            f"{watched!r} is not measured each epoch of this {data.task} task; choose one of: "
            f"{', '.join(epoch_metrics)}",
        )
    if per_step:
        raise RunCheckError("scheduler", f"{name!r} watches {watched} once per epoch; drop interval: step")
    mode = getattr(scheduler, "mode", None)  # a schedule of the user's may have none: it knows its metric
    if watched in HIGHER_IS_BETTER and mode == "min":  # it would cut the lr while the metric rises
        raise RunCheckError(
            "scheduler",
            f"{name!r} watches {watched}, which is better higher, but its mode is {mode}, which cuts the lr "
            f"while {watched} rises; set mode: max",
        )
    if watched not in HIGHER_IS_BETTER and mode == "max":  # it would cut the lr while the loss falls
        raise RunCheckError(
            "scheduler",
            f"{name!r} watches {watched}, which is better lower, but its mode is max, which cuts the lr "
            f"while {watched} falls; " + ("set mode: min" if monitor else "drop mode or set mode: min"),
        )
    return watched
