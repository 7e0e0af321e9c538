"""The `auto` loss: cross-entropy for classification, binary cross-entropy with logits for multilabel, mean
squared error for regression."""

from __future__ import annotations

from torch import nn


def auto(task: str) -> nn.Module:
    """Cross-entropy for classification, BCE with logits for multilabel, MSE for regression."""
    if task == "multilabel":
        return nn.BCEWithLogitsLoss()
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
