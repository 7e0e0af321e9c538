"""The epoch metrics hpotool's Trainer measures, and which metrics a study minimizes when the optimize config
gives no direction."""

from __future__ import annotations

CLASSIFICATION_METRICS = ("train_loss", "val_loss", "val_accuracy")
REGRESSION_METRICS = ("train_loss", "val_loss", "val_rmse", "val_mae")
ERROR_METRICS = ("train_loss", "val_loss", "val_rmse", "val_mae")  # hpotool's own: lower is better, always
MINIMIZED_METRICS = (*ERROR_METRICS, "n_params", "epoch_time")


def minimized_by_default(metric: str) -> bool:
    """Whether leaving out `direction` (minimize) can only mean what the user wants: a loss, an error, the
    model's size or time. Accuracy, or a trainer's own score, would be searched for its worst value."""
    return metric in MINIMIZED_METRICS or metric.endswith("loss")
