"""Built-in learning-rate schedules. Each takes the optimizer, the run's length, and its own arguments."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR

# Built-ins stepped after every batch rather than every epoch.
PER_STEP = frozenset({"onecycle"})


def no_schedule(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int) -> None:
    """A constant learning rate."""
    return None


def cosine(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, eta_min: float = 0.0) -> LRScheduler:
    """Cosine decay from the optimizer's lr to `eta_min` over the run."""
    return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min)


def step(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int | None = None,
    gamma: float = 0.1,
) -> LRScheduler:
    """Multiply the lr by `gamma` every `step_size` epochs (default: a third of the run)."""
    return StepLR(optimizer, step_size=step_size or max(1, epochs // 3), gamma=gamma)


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
    """The one-cycle policy, stepped every batch; `max_lr` defaults to the optimizer's lr."""
    peak = max_lr if max_lr is not None else optimizer.param_groups[0]["lr"]
    return OneCycleLR(
        optimizer,
        max_lr=peak,
        total_steps=epochs * steps_per_epoch,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
