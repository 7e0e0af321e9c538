"""Built-in learning-rate schedules, and how any schedule is stepped.

Each schedule takes the optimizer, the run's length and its own arguments. The length comes in the units
the schedule is stepped in: `steps_per_epoch` is the number of batches when it steps after every batch,
and 1 when it steps once per epoch, so `epochs * steps_per_epoch` is always the number of steps it takes.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR

from hpotool.components import REGISTRIES
from hpotool.resolve import accepted_kwargs

# Built-ins stepped after every batch rather than every epoch.
PER_STEP = frozenset({"onecycle"})
# What a schedule whose step() takes a metric (torch's ReduceLROnPlateau) is given once per epoch, unless
# the scheduler section's `monitor` names another of the epoch's metrics.
DEFAULT_MONITOR = "val_loss"
# The epoch metrics that are better higher: a schedule watching one needs mode: max.
HIGHER_IS_BETTER = frozenset({"val_accuracy"})


def steps_per_batch(name: str, interval: str | None, factory: Any) -> bool:
    """Whether the schedule is stepped after every batch: `interval` where the config sets it; else the
    built-ins' own rule (onecycle per batch), and per batch for a schedule by path whose signature asks for
    `steps_per_epoch` (torch's OneCycleLR), per epoch for any other."""
    if interval is not None:
        return interval == "step"
    if name in REGISTRIES["scheduler"]:
        return name in PER_STEP
    return "steps_per_epoch" in accepted_kwargs(factory)[0]


def takes_metric(scheduler: Any) -> bool:
    """Whether `scheduler.step` needs a value to watch (torch's ReduceLROnPlateau: `step(metrics)`)."""
    try:
        params = list(inspect.signature(scheduler.step).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return bool(params) and params[0].kind in positional and params[0].default is inspect.Parameter.empty


def no_schedule(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int) -> None:
    """A constant learning rate."""
    return None


def cosine(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, eta_min: float = 0.0) -> LRScheduler:
    """Cosine decay from the optimizer's lr to `eta_min` over the run."""
    return CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=eta_min)


def step(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int | None = None,
    gamma: float = 0.1,
) -> LRScheduler:
    """Multiply the lr by `gamma` every `step_size` epochs (default: a third of the run)."""
    return StepLR(optimizer, step_size=(step_size or max(1, epochs // 3)) * steps_per_epoch, gamma=gamma)


def onecycle(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> LRScheduler:
    """The one-cycle policy (stepped every batch unless `interval: epoch`); `max_lr` defaults to the
    optimizer's lr."""
    peak = max_lr if max_lr is not None else optimizer.param_groups[0]["lr"]
    return OneCycleLR(
        optimizer,
        max_lr=peak,
        total_steps=epochs * steps_per_epoch,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
