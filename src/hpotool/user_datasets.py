"""What a user's dataset function returns (a `Dataset`, an `(x, y)` pair, a torch Dataset), made a
checked `Dataset`: `as_dataset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hpotool.data_arrays import as_tensor
from hpotool.dataset_checks import (
    check_dataset,
    label_matrix,
    not_complex,
    several_labels,
    soft_labels,
    zero_one_labels,
)
from hpotool.datasets import DataError, Dataset, Task
from hpotool.torch_datasets import stack_torch_dataset


def as_dataset(obj: Any, *, binary: bool = False, classes: bool = False) -> Dataset:
    """Accept what a user's dataset function returns: a `Dataset`, an `(x, y)` pair of tensors, numpy
    arrays, pandas objects or lists, or a map-style torch Dataset of `(x, y)` samples (stacked into
    tensors: the Trainer slices batches from memory); checked with `check_dataset`.

    For a pair or a torch Dataset, integer targets mean classification; floating-point targets regression,
    except with `binary` (the loss is binary cross-entropy with logits), where one floating-point target
    per sample holding only 0 and 1 is two classes, as np.loadtxt or `(x > 0).float()` store labels.

    An `(n, C)` matrix of 0/1 targets is labels, not C numbers to regress: one-hot rows (a single 1 each)
    become class ids where the loss scores classes (`classes`: cross-entropy) or y holds integers; with
    `binary` the matrix is a multilabel task (a logit per label); several 1s in a row with a loss that picks
    one class, or integer y, are refused. Before, one-hot or multi-label floats trained as a regression and
    reported the RMSE of logits against 0/1 targets, with no accuracy. Floating-point rows of class
    probabilities (soft labels, each row summing to 1) with a loss that scores classes are a classification
    too, kept as probabilities for the loss (torch's cross-entropy takes them), its accuracy the share of
    samples whose most likely class the model's largest logit names. A `Dataset` keeps the task it names.
    """
    if isinstance(obj, Dataset):
        return check_dataset(obj)
    if isinstance(obj, torch.utils.data.Dataset):
        obj = stack_torch_dataset(obj)
    if isinstance(obj, tuple | list) and len(obj) == 2 and all(map(_a_split, obj)):
        # numpy's "setting an array element with a sequence ... inhomogeneous shape" said nothing of this
        raise DataError(
            f"got two {'(x, y) pairs' if isinstance(obj[0], tuple | list) else 'torch Datasets'}, a training "
            f"and a validation split?; return all the samples as one (x, y) pair: hpotool makes the "
            f"validation split itself (data.val_fraction, data.split_seed)"
        )
    if isinstance(obj, tuple | list) and len(obj) == 2:
        return _from_pair(obj[0], obj[1], binary, classes)
    raise _not_a_dataset(obj)


def _from_pair(x_given: Any, y_given: Any, binary: bool, classes: bool) -> Dataset:
    """The checked Dataset of an `(x, y)` pair, its task read from y and the loss (`as_dataset`)."""
    x, y = as_tensor(x_given, "x"), as_tensor(y_given, "y")
    not_complex(x, y)  # before x is cast to float32, which drops imaginary parts with only a warning
    task: Task = "regression" if y.is_floating_point() else "classification"
    if binary and zero_one_labels(y):
        y, task = y.reshape(-1).long(), "classification"
    matrix = label_matrix(y)
    if matrix is not None and binary:
        y, task = y.float(), "multilabel"
    elif matrix == "one-hot" and (classes or not y.is_floating_point()):
        y, task = y.long().argmax(dim=1), "classification"
    elif matrix == "multi-label" and (classes or not y.is_floating_point()):
        raise DataError(several_labels(y, "cross-entropy" if classes else None))
    elif matrix is None and classes and soft_labels(y):  # class probabilities: soft labels
        task = "classification"
    ds = check_dataset(Dataset(x.float(), y, task))
    n_classes = ds.n_classes or 0
    if n_classes > len(ds.y):  # quantities stored as integers (prices, counts), not class ids
        raise DataError(
            f"y holds integers up to {n_classes - 1} for {len(ds.y)} samples, which would make a "
            f"classification task of {n_classes} classes; to predict these numbers give y as floats "
            f"(y.astype('float32')) for regression, or for class ids return "
            f"hpotool.datasets.Dataset(x, y, 'classification')"
        )
    return ds


def _not_a_dataset(obj: Any) -> DataError:
    """The error for what a dataset function returned that is no dataset, saying what to return instead."""
    bunch = isinstance(obj, dict) and "data" in obj and "target" in obj  # scikit-learn's Bunch is a dict
    got = type(obj).__name__
    if isinstance(obj, tuple | list) and len(obj) > 2 and all(_a_sample(item) for item in obj):
        # the samples a script collects in a list: "return x and y alone" told no way to do so
        got = (
            f"a {got} of {len(obj)} (x, y) samples; return them as one (x, y) pair: "
            f"torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])"
        )
    elif isinstance(obj, tuple | list):  # (x, y, weights), or train_test_split's four arrays
        got = f"a {got} of {len(obj)} items; return x and y alone"
        if len(obj) == 4:
            got += ": the validation split is hpotool's (data.val_fraction)"
    elif isinstance(obj, dict) and not bunch and obj:  # "got dict" told no way to return its arrays
        got = _dict_hint(obj)
    elif (alone := _one_array_hint(obj)) is not None:
        got = alone
    elif hasattr(obj, "__len__") and hasattr(obj, "__getitem__") and not isinstance(obj, str | bytes | dict):
        got += (  # a map-style dataset of the user's, or another library's, that torch's does not see as one
            ", which has __len__ and __getitem__ but is no torch.utils.data.Dataset: make its class a subclass of "
            "torch.utils.data.Dataset, or return an (x, y) pair"
        )
    return DataError(
        f"a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) "
        f"samples, got {got}"
        + ("; scikit-learn's loaders return (x, y) with return_X_y: true under data:" if bunch else "")
    )


def _one_array_hint(obj: Any) -> str | None:
    """What `_not_a_dataset` says of one array returned alone (a numpy array, a tensor, a pandas DataFrame or
    Series): the (x, y) pair to return instead, a DataFrame's spelt with its target column where one is named
    so. Such an array has __len__ and __getitem__, and the line told its class to subclass torch's Dataset,
    which no ndarray, Tensor or DataFrame can; None for anything else."""
    kind = type(obj)
    pandas = kind.__module__.split(".")[0] == "pandas"  # pandas.core.frame, or pandas itself on pandas 3
    if isinstance(obj, np.ndarray | torch.Tensor):
        name = "a numpy array" if isinstance(obj, np.ndarray) else "a tensor"
        shape = tuple(obj.shape)
        got = f"{name} alone, " + (f"of {shape[0]} values" if len(shape) == 1 else f"shaped {shape}")
        if len(shape) == 2 and shape[1] > 1:  # a table, its target a column: np.column_stack([x, y])
            return (
                f"{got}: return the inputs and the targets as an (x, y) pair (return x, y); a table whose "
                f"last column is the target: return a[:, :-1], a[:, -1]"
            )
        return f"{got}: return the inputs and the targets as an (x, y) pair (return x, y)"
    if pandas and kind.__name__ == "DataFrame":
        columns = [str(c) for c in obj.columns]
        target = next((c for c in columns if c.lower() in _TARGET_KEYS), None)
        shown = ", ".join(_spelt(c) for c in columns[:8]) + (
            f" and {len(columns) - 8} more" if len(columns) > 8 else ""
        )
        spelt = _spelt(target) if target is not None else '"<target column>"'
        return (
            f"a pandas DataFrame alone (columns {shown}); return its inputs and its target as an (x, y) "
            f"pair: return df.drop(columns=[{spelt}]), df[{spelt}]"
        )
    if pandas and kind.__name__ == "Series":
        return f"a pandas Series alone ({len(obj)} values): return the inputs and the targets as an (x, y) pair (return x, y)"
    return None


_INPUT_KEYS = ("x", "inputs", "input", "features", "data", "images", "samples")
_TARGET_KEYS = ("y", "targets", "target", "labels", "label")


def _dict_hint(d: dict[Any, Any]) -> str:
    """What `_not_a_dataset` says of a dict (`{"x": ..., "y": ...}`): its keys, and the (x, y) pair to return
    instead, spelt with its own keys where they read as inputs and targets (by name, or the other of two)."""
    keys = list(d)
    x_key = next((k for k in keys if isinstance(k, str) and k.lower() in _INPUT_KEYS), None)
    y_key = next((k for k in keys if isinstance(k, str) and k.lower() in _TARGET_KEYS), None)
    if len(keys) == 2 and (x_key is None) != (y_key is None):
        other = keys[1] if (x_key if x_key is not None else y_key) == keys[0] else keys[0]
        x_key, y_key = (x_key, other) if x_key is not None else (other, y_key)
    shown = ", ".join(_spelt(k) for k in keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    pair = (
        f"(d[{_spelt(x_key)}], d[{_spelt(y_key)}])"
        if x_key is not None and y_key is not None
        else "(d[<key of the inputs>], d[<key of the targets>])"
    )
    return f"a dict (keys {shown}); return its inputs and targets as an (x, y) pair: return {pair}"


def _spelt(key: Any) -> str:
    """A dict key as Python spells it, a string in double quotes ("x")."""
    return '"' + key + '"' if isinstance(key, str) and '"' not in key and "\\" not in key else repr(key)


def _a_sample(item: Any) -> bool:
    """Whether `item` reads as one `(x, y)` sample: a pair whose y is a single number (a label or a target)."""
    if not isinstance(item, tuple | list) or len(item) != 2:
        return False
    import numbers

    y = item[1]
    return isinstance(y, numbers.Number) or (isinstance(y, torch.Tensor | np.ndarray) and y.ndim == 0)


def _a_split(part: Any) -> bool:
    """Whether `part` is a whole split rather than x or y: a torch Dataset, or an (x, y) pair of
    equal-length arrays (x and y of two samples hold numbers, not arrays, in y)."""
    if isinstance(part, torch.utils.data.Dataset):
        return True
    if not isinstance(part, tuple | list) or len(part) != 2:
        return False
    x, y = part
    arrays = all(hasattr(a, "__len__") and not isinstance(a, str | bytes) for a in (x, y))
    return (
        arrays
        and len(x) == len(y)
        and all(hasattr(v, "__len__") or hasattr(v, "shape") for v in (x[0], y[0]))
    )
