"""Train a scikit-learn model with hpotool: no torch in this file.

`hpotool optimize -r examples/sklearn_run.yaml -o examples/sklearn_optimize.yaml` searches `trainer.alpha`
and `trainer.eta0`; hpotool calls `fit` once per trial and prunes through `report`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split


def fit(config: dict[str, Any], report: Callable[[int, dict[str, float]], None]) -> dict[str, float]:
    """A linear classifier trained epoch by epoch with partial_fit."""
    options = config["trainer"]
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=config["data"]["val_fraction"], random_state=config["data"]["split_seed"]
    )
    model = SGDClassifier(
        loss="log_loss",
        alpha=options["alpha"],
        eta0=options["eta0"],
        learning_rate="constant",
        random_state=config["seed"],
    )
    classes = np.unique(y)
    metrics: dict[str, float] = {}
    for epoch in range(config["epochs"]):
        model.partial_fit(x_train, y_train, classes=classes)
        metrics = {
            "train_loss": float(log_loss(y_train, model.predict_proba(x_train), labels=classes)),
            "val_loss": float(log_loss(y_val, model.predict_proba(x_val), labels=classes)),
            "val_accuracy": float(model.score(x_val, y_val)),
        }
        report(epoch, metrics)
    return metrics
