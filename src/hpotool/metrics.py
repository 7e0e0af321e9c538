"""The epoch metrics hpotool's Trainer measures, which metrics a study minimizes when the optimize config
gives no direction, and the range of values each can take."""

from __future__ import annotations

import math

CLASSIFICATION_METRICS = ("train_loss", "val_loss", "val_accuracy")
REGRESSION_METRICS = ("train_loss", "val_loss", "val_rmse", "val_mae")
ERROR_METRICS = ("train_loss", "val_loss", "val_rmse", "val_mae")  # hpotool's own: lower is better, always
MINIMIZED_METRICS = (*ERROR_METRICS, "n_params", "epoch_time")


def minimized_by_default(metric: str) -> bool:
    """Whether leaving out `direction` (minimize) can only mean what the user wants: a loss, an error, the
    model's size or time. Accuracy, or a trainer's own score, would be searched for its worst value."""
    return metric in MINIMIZED_METRICS or metric.endswith("loss")


# The values hpotool's own Trainer can measure for each metric whose range is known whatever the loss: an
# accuracy is a fraction, errors, sizes and times are never negative (a loss may be anything a loss returns).
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "val_accuracy": (0.0, 1.0),
    "val_rmse": (0.0, math.inf),
    "val_mae": (0.0, math.inf),
    "n_params": (0.0, math.inf),
    "epoch_time": (0.0, math.inf),
}


def shown_range(metric: str) -> str:
    """`val_accuracy lies in [0, 1]`, `n_params is 0 or more`: the range of a metric of `METRIC_RANGES`."""
    low, high = METRIC_RANGES[metric]
    return f"{metric} is {low:g} or more" if math.isinf(high) else f"{metric} lies in [{low:g}, {high:g}]"


def never_met(metric: str, op: str, bound: float) -> bool:
    """Whether no value hpotool's Trainer can measure for `metric` meets `metric op bound` (False for a metric
    whose range is not known)."""
    if metric not in METRIC_RANGES:
        return False
    low, high = METRIC_RANGES[metric]
    return {"<": bound <= low, "<=": bound < low, ">": bound >= high, ">=": bound > high}[op]
