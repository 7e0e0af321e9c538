"""What an epoch of training reports, from hpotool's Trainer or a user's training function: `EpochResult`,
and `NonFiniteLossError` for a loss that became NaN or infinite. No torch here: a study whose training
function does not use torch never imports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How the prune reason of a run whose final metrics (not an epoch's) were NaN or infinite ends
AT_RUN_END = "at the end of the run"


@dataclass(frozen=True)
class EpochResult:
    """Metrics after one epoch. `epoch` counts from 0. `lr` is the first parameter group's learning rate
    as the epoch began (a per-step schedule moves it within the epoch); None where hpotool does not run
    the optimizer (a user's training function)."""

    epoch: int
    metrics: dict[str, float]
    seconds: float
    lr: float | None = None

    def as_row(self) -> dict[str, float]:
        """The epoch's history row: epoch, metrics, lr (where known), epoch_time."""
        lr = {} if self.lr is None else {"lr": self.lr}
        return {"epoch": self.epoch, **self.metrics, **lr, "epoch_time": self.seconds}


class NonFiniteLossError(RuntimeError):
    """A loss (the training loss by default) or the metric a study optimizes became NaN or infinite."""

    def __init__(self, epoch: int, value: float, name: str = "train_loss") -> None:
        super().__init__(f"{name} is {value} in epoch {epoch + 1}")  # counted from 1, as users do
        self.epoch = epoch
        self.value = value
        self.name = name


def diverged_in_an_epoch(user_attrs: dict[str, Any]) -> bool:
    """Whether a trial was pruned by a NaN or infinite loss in an epoch it reported (its `diverged_at`, and a
    prune reason other than the final metrics'): the epochs before it are its count, none where it was the
    first, though a training function's trial then has no history."""
    reason = user_attrs.get("prune_reason")
    return user_attrs.get("diverged_at") is not None and not (
        isinstance(reason, str) and reason.endswith(AT_RUN_END)
    )
