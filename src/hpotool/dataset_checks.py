"""A dataset checked before trial 0 (`check_dataset`), and what a y of labels is: 0/1 values, one-hot or
multi-label rows, class probabilities.
"""

from __future__ import annotations

from typing import Literal

import torch

from hpotool.data_arrays import as_tensor
from hpotool.datasets import DataError, Dataset, Task
from hpotool.formatting import counted
from hpotool.near_names import did_you_mean


def _non_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = ~torch.isfinite(t.reshape(len(t), -1)).all(dim=1)
        first = int(bad.nonzero()[0].item())
        raise DataError(
            f"{name} holds NaN or infinite values in {counted(int(bad.sum()), 'sample')} (the first is sample "
            f"{first}); drop or fill them in the dataset function"
        )


def not_complex(x: torch.Tensor, y: torch.Tensor) -> None:
    for t, name in ((x, "x"), (y, "y")):
        if t.is_complex():
            raise DataError(
                f"{name} holds {str(t.dtype).removeprefix('torch.')} values; hpotool trains on real numbers: "
                f"give the real and imaginary parts as separate features, torch.view_as_real({name}).flatten(1)"
            )


def check_dataset(ds: Dataset) -> Dataset:
    """`ds`, checked so that a problem shows before trial 0 rather than as a failed or NaN trial.

    A 1-D `x` is one feature per sample (reshaped to `(n, 1)`); regression targets become `(n, outputs)`, in
    `x`'s floating-point type (float32 for integer inputs).

    Raises:
        DataError: an unknown task, no samples, x and y of different lengths, NaN or infinite values,
            classification targets that are not class indices 0..K-1 of at least two classes.
    """
    _check_task(ds.task)
    # Data, not part of a graph: features a user's torch encoder computed without torch.no_grad() passed
    # the one-step check, then failed every trial's second step ("backward through the graph a second time").
    # numpy arrays, pandas objects or lists given to Dataset(x, y, task) as to an (x, y) pair, their types kept:
    # they failed with "'numpy.ndarray' object has no attribute 'detach'"
    x, y = as_tensor(ds.x, "x").detach(), as_tensor(ds.y, "y").detach()
    not_complex(x, y)
    x = _checked_inputs(x, y)
    if ds.task != "classification":
        return _numeric_targets(x, y, ds.task)
    if soft_labels(y):  # class probabilities: cross-entropy takes them as they are
        return Dataset(x, y.to(x.dtype if x.is_floating_point() else torch.float32), "classification")
    return Dataset(x, _class_indices(y), "classification")


def _check_task(task: str) -> None:
    """Refuse a task other than classification, regression and multilabel, naming the one meant."""
    tasks = ("classification", "regression", "multilabel")
    if task not in tasks:
        near = did_you_mean(task, tasks) if isinstance(task, str) else ""
        raise DataError(f"task is {task!r}{near}; use 'classification', 'regression' or 'multilabel'")


def _transposed(x: torch.Tensor, y: torch.Tensor) -> str:
    """Where x and y differ in length because one holds its samples as columns (`np.vstack` of the features,
    or y shaped `(1, n)`): which one to transpose; empty where neither does. The line gave the two lengths
    alone, `200 != 1`, which did not say that y held all 200 samples."""
    for name, a, other in (("y", y, x), ("x", x, y)):
        if a.ndim == 2 and a.shape[1] == other.shape[0]:
            flat = f" or {name}.ravel()" if name == "y" and a.shape[0] == 1 else ""
            return (
                f"; {name} is shaped {tuple(a.shape)}, its {other.shape[0]} samples as columns: give one row per "
                f"sample, {name}.T{flat}"
            )
    return ""


def _checked_inputs(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`x` as one row per sample (a 1-D x is one feature each), once x and y hold as many samples, at least
    one, and x holds no NaN or infinite value."""
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(
            f"x and y must hold one row per sample; got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[0] != y.shape[0]:
        raise DataError(f"x and y differ in length: {x.shape[0]} != {y.shape[0]}{_transposed(x, y)}")
    if x.shape[0] == 0:
        raise DataError("the dataset is empty (0 samples)")
    if x.ndim == 1:
        x = x.unsqueeze(1)
    _non_finite(x, "x")
    return x


def _numeric_targets(x: torch.Tensor, y: torch.Tensor, task: Task) -> Dataset:
    """A regression or multilabel dataset: y as `(n, outputs)` in x's floating-point type, finite, and for
    a multilabel task each value from 0 to 1."""
    # Targets in the inputs' float type (float32 unless a Dataset keeps x otherwise): numpy's float64 made
    # huber_loss fail against a float32 model's output ("Found dtype Double but expected Float").
    want = x.dtype if x.is_floating_point() else torch.float32
    if y.dtype != want:
        y = y.to(want)
    _non_finite(y, "y")
    if task == "multilabel" and not bool(((y >= 0) & (y <= 1)).all()):
        raise DataError(
            "y holds values outside 0..1 for a multilabel task; give each label as 0 or 1 (one column per label)"
        )
    return Dataset(x, y.reshape(len(y), -1), task)


def _class_indices(y: torch.Tensor) -> torch.Tensor:
    """`y` as one class index per sample (int64), once it holds integers 0..K-1 of at least two classes."""
    if y.is_floating_point() or y.is_complex():
        raise DataError(
            f"y holds {str(y.dtype).removeprefix('torch.')} values for a classification task; give class "
            f"indices 0..K-1 as integers (y.long()), or each sample's class probabilities (rows summing to 1), "
            f"or use task 'regression'"
        )
    if y.ndim > 1 and y[0].numel() != 1:
        if label_matrix(y) == "one-hot":
            raise DataError(
                f"y has shape {tuple(y.shape)}, one-hot encoded; a classification task needs one class index "
                f"per sample: give y.argmax(1)"
            )
        if label_matrix(y) == "multi-label":
            raise DataError(several_labels(y, None))
        raise DataError(
            f"y has shape {tuple(y.shape)}; a classification task needs one class index per sample"
        )
    y = y.reshape(-1).long()
    low = int(y.min().item())
    if low < 0:
        # integer amounts that go below 0 (profits, temperatures) are read as labels too: say how to regress them
        raise DataError(
            f"y holds negative class labels (the smallest is {low}); number the classes 0..K-1, or give y as "
            f"floats (y.astype('float32')) if it holds amounts to predict (regression)"
        )
    classes = torch.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"y holds a single class ({int(classes[0].item())}); a classification task needs at least two"
        )
    return y


def zero_one_labels(y: torch.Tensor) -> bool:
    """Whether floating-point `y` is one value per sample, each 0 or 1 (and both present)."""
    if not y.is_floating_point() or len(y) == 0 or (y.ndim > 1 and y[0].numel() != 1):
        return False
    return set(torch.unique(y).tolist()) == {0.0, 1.0}


def soft_labels(y: torch.Tensor) -> bool:
    """Whether `y` is an (n, C) floating-point matrix of class probabilities, C > 1: each value from 0 to 1,
    each row summing to 1 (within 1e-3: probabilities rounded when written to a file). A one-hot matrix is
    one too (its rows hold a single 1)."""
    if not y.is_floating_point() or y.ndim != 2 or y.shape[1] < 2 or len(y) == 0:
        return False
    if not bool(torch.isfinite(y).all()) or not bool(((y >= 0) & (y <= 1)).all()):
        return False
    return bool(
        torch.allclose(y.double().sum(dim=1), torch.ones(len(y), dtype=torch.float64), atol=1e-3, rtol=0)
    )


def label_matrix(y: torch.Tensor) -> Literal["one-hot", "multi-label"] | None:
    """Whether `y` is an (n, C) matrix of 0/1 labels, C > 1: "one-hot" when each row holds a single 1,
    "multi-label" when some row holds several or none; None for anything else."""
    if y.ndim != 2 or y.shape[1] < 2 or len(y) == 0 or y.is_complex():
        return None
    if not bool(((y == 0) | (y == 1)).all()):
        return None
    return "one-hot" if bool((y.sum(dim=1) == 1).all()) else "multi-label"


def several_labels(y: torch.Tensor, loss: str | None) -> str:
    """Why a multi-label y (several 1s in a row) cannot be one class per sample, and what to do."""
    several = int((y.sum(dim=1) != 1).sum())
    picks = (
        f"{loss} picks one class per sample" if loss else "a classification task takes one class per sample"
    )
    return (
        f"y has shape {tuple(y.shape)} of 0/1 labels, with several labels (or none) for {several} of "
        f"{len(y)} samples, but {picks}; for several labels per sample set loss: {{name: bce_with_logits}} "
        f"(a multilabel task, scored by val_accuracy per label), or for one class per sample give class ids "
        f"0..K-1"
    )
