"""Built-in datasets from data that packages ship or that we generate, and the train/validation split.

A dataset is any callable returning a `Dataset`, a plain `(x, y)` pair of tensors or arrays, or a
map-style torch Dataset of `(x, y)` samples. Built-ins:
`digits` (scikit-learn's bundled 8x8 handwritten digits, classification) and `regression` (seeded synthetic
regression). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hpotool.near_names import did_you_mean

# multilabel: several labels per sample, y an (n, labels) matrix of 0/1, scored by one logit per label.
Task = Literal["classification", "regression", "multilabel"]


@dataclass(frozen=True)
class TensorData:
    """Inputs and targets as tensors with the same first dimension."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device) -> TensorData:
        return TensorData(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """A whole dataset before splitting. Classification targets are class indices (int64), or each sample's
    class probabilities (soft labels: an (n, classes) float matrix whose rows sum to 1)."""

    x: torch.Tensor
    y: torch.Tensor
    task: Task

    @property
    def n_classes(self) -> int | None:
        if self.task != "classification":
            return None
        return int(self.y.shape[1]) if self.y.is_floating_point() else int(self.y.max().item()) + 1

    @property
    def out_features(self) -> int:
        return self.n_classes if self.n_classes is not None else int(self.y.shape[1])


def _digits_csv() -> Path | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def digits() -> Dataset:
    """scikit-learn's bundled handwritten digits: 1,797 images of 1x8x8 pixels, 10 classes, scaled to [0, 1]."""
    path = _digits_csv()
    if path is not None:  # read the file load_digits() reads, without paying for importing sklearn (~1 s)
        with gzip.open(path, "rt") as fh:
            raw = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        images, target = raw[:, :-1], raw[:, -1]
    else:  # pragma: no cover - a scikit-learn that moved its data file
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, target = bunch.data.astype(np.float32), bunch.target
    x = torch.from_numpy(images / 16.0).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(target.astype(np.int64))
    return Dataset(x, y, "classification")


def synthetic_regression(
    n_samples: int = 1000, n_features: int = 10, noise: float = 0.1, seed: int = 0
) -> Dataset:
    """A seeded nonlinear regression problem: y = tanh(x·w1)·w2 + noise."""
    if n_samples < 2 or n_features < 1:
        raise ValueError(f"need n_samples >= 2 and n_features >= 1, got {n_samples} and {n_features}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, n_features, generator=g)
    w1 = torch.randn(n_features, 16, generator=g) / n_features**0.5
    w2 = torch.randn(16, 1, generator=g)
    y = torch.tanh(x @ w1) @ w2 + noise * torch.randn(n_samples, 1, generator=g)
    return Dataset(x, y, "regression")


class DataError(ValueError):
    """A dataset hpotool cannot train on; the message says what is wrong with it and how to fix it."""


class SplitError(ValueError):
    """The data section's fractions leave a split empty; the message starts with the key to change."""


_NUMBER = (bool, int, float, np.bool_, np.number)


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    """`value` (a tensor, numpy array, pandas DataFrame or Series, or nested lists) as a tensor.

    An object array of numbers alone (a DataFrame of float and bool columns, as `pd.get_dummies` makes) is
    converted; anything else in one is refused, naming the DataFrame column or the sample it is in.
    """
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # scipy.sparse, as text vectorizers return
        shape = " x ".join(str(n) for n in value.shape)
        raise DataError(
            f"{name} is a scipy sparse matrix ({type(value).__name__} of {shape}); hpotool trains on dense "
            f"tensors kept in memory: return {name}.toarray() ({_size(4 * int(np.prod(value.shape)))} as float32)"
        )
    columns = list(getattr(value, "columns", ())) if hasattr(value, "to_numpy") else []
    if hasattr(value, "to_numpy"):  # pandas: its values, without the index
        value = value.to_numpy()
    try:
        array = np.asarray(value)
    except ValueError as exc:  # numpy's "inhomogeneous shape": a list of samples of several shapes
        ragged = _ragged(value, name)
        if ragged is None:
            raise
        raise DataError(ragged) from exc
    if array.dtype.kind in "USO":
        flat = array.reshape(-1)
        at = next((i for i, v in enumerate(flat) if not isinstance(v, _NUMBER)), None)
        if at is None:  # numbers only, of several types
            return torch.as_tensor(np.array(flat.tolist()).reshape(array.shape))
        example = flat[at]
        if isinstance(example, np.generic):
            example = example.item()
        shown = repr(example).splitlines()[0]
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        if example is None or type(example).__name__ in ("NAType", "NaTType"):
            per_sample = flat.size // array.shape[0] if array.ndim and array.shape[0] else 1
            sample = at // max(1, per_sample)
            raise DataError(
                f"{name} holds a missing value ({example}) in sample {sample}; drop or fill it in the dataset "
                f"function"
            )
        if name == "y" and isinstance(example, str | bytes):
            raise DataError(
                f"y holds text labels such as {shown}; give class indices 0..K-1 as integers "
                f"(e.g. np.unique(y, return_inverse=True)[1])"
            )
        if columns and array.ndim == 2:
            column = columns[at % array.shape[1]]
            raise DataError(
                f"{name} column {column!r} holds {type(example).__name__} values such as {shown}, not "
                f"numbers; encode it as numbers (pd.get_dummies({name}, dtype=float), or .cat.codes) or drop it"
            )
        raise DataError(
            f"{name} holds {type(example).__name__} values such as {shown}, not numbers; convert "
            f"{name} to a numeric array (e.g. .astype('float32'))"
        )
    if not array.flags.writeable:  # pandas hands out read-only views, which torch warns about
        array = array.copy()
    return torch.as_tensor(array)


def _ragged(value: Any, name: str) -> str | None:
    """What to say of a list whose samples differ in shape (sequences of several lengths), which numpy
    refused with "setting an array element with a sequence. The requested array has an inhomogeneous
    shape after 2 dimensions", naming neither the samples nor the fix; None where they do not differ."""
    if not isinstance(value, list | tuple) or not value:
        return None
    try:
        shapes = [np.shape(v) for v in value]
    except ValueError:  # a sample that is itself ragged: numpy's own line stands
        return None
    odd = next((i for i, shape in enumerate(shapes) if shape != shapes[0]), None)
    if odd is None:
        return None
    return (
        f"{name} is a list of samples of several shapes (sample 0: {shapes[0]}, sample {odd}: {shapes[odd]}); "
        f"hpotool keeps {name} as one tensor, so give every sample the same shape: pad or crop them to one "
        f"length in the dataset function"
    )


def _size(n: int) -> str:
    """`n` bytes, for people."""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _non_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = ~torch.isfinite(t.reshape(len(t), -1)).all(dim=1)
        first = int(bad.nonzero()[0].item())
        raise DataError(
            f"{name} holds NaN or infinite values in {int(bad.sum())} sample(s) (the first is sample "
            f"{first}); drop or fill them in the dataset function"
        )


def _not_complex(x: torch.Tensor, y: torch.Tensor) -> None:
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
    tasks = ("classification", "regression", "multilabel")
    if ds.task not in tasks:
        near = did_you_mean(ds.task, tasks) if isinstance(ds.task, str) else ""
        raise DataError(f"task is {ds.task!r}{near}; use 'classification', 'regression' or 'multilabel'")
    # Data, not part of a graph: features a user's torch encoder computed without torch.no_grad() passed
    # the one-step check, then failed every trial's second step ("backward through the graph a second time").
    x, y = ds.x.detach(), ds.y.detach()
    _not_complex(x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(
            f"x and y must hold one row per sample; got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[0] != y.shape[0]:
        raise DataError(f"x and y differ in length: {x.shape[0]} != {y.shape[0]}")
    if x.shape[0] == 0:
        raise DataError("the dataset is empty (0 samples)")
    if x.ndim == 1:
        x = x.unsqueeze(1)
    _non_finite(x, "x")
    if ds.task != "classification":
        # Targets in the inputs' float type (float32 unless a Dataset keeps x otherwise): numpy's float64 made
        # huber_loss fail against a float32 model's output ("Found dtype Double but expected Float").
        want = x.dtype if x.is_floating_point() else torch.float32
        if y.dtype != want:
            y = y.to(want)
        _non_finite(y, "y")
        if ds.task == "multilabel" and not bool(((y >= 0) & (y <= 1)).all()):
            raise DataError(
                "y holds values outside 0..1 for a multilabel task; give each label as 0 or 1 (one column per label)"
            )
        return Dataset(x, y.reshape(len(y), -1), ds.task)
    if soft_labels(y):  # class probabilities: cross-entropy takes them as they are
        return Dataset(x, y.to(x.dtype if x.is_floating_point() else torch.float32), "classification")
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
            raise DataError(_several_labels(y, None))
        raise DataError(
            f"y has shape {tuple(y.shape)}; a classification task needs one class index per sample"
        )
    y = y.reshape(-1).long()
    low = int(y.min().item())
    if low < 0:
        raise DataError(f"y holds negative class labels (the smallest is {low}); number the classes 0..K-1")
    classes = torch.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"y holds a single class ({int(classes[0].item())}); a classification task needs at least two"
        )
    return Dataset(x, y, "classification")


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
        obj = _stack_torch_dataset(obj)
    if isinstance(obj, tuple | list) and len(obj) == 2 and all(map(_a_split, obj)):
        # numpy's "setting an array element with a sequence ... inhomogeneous shape" said nothing of this
        raise DataError(
            f"got two {'(x, y) pairs' if isinstance(obj[0], tuple | list) else 'torch Datasets'}, a training "
            f"and a validation split?; return all the samples as one (x, y) pair: hpotool makes the "
            f"validation split itself (data.val_fraction, data.split_seed)"
        )
    if isinstance(obj, tuple | list) and len(obj) == 2:
        x, y = _as_tensor(obj[0], "x"), _as_tensor(obj[1], "y")
        _not_complex(x, y)  # before x is cast to float32, which drops imaginary parts with only a warning
        task: Task = "regression" if y.is_floating_point() else "classification"
        if binary and zero_one_labels(y):
            y, task = y.reshape(-1).long(), "classification"
        matrix = label_matrix(y)
        if matrix is not None and binary:
            y, task = y.float(), "multilabel"
        elif matrix == "one-hot" and (classes or not y.is_floating_point()):
            y, task = y.long().argmax(dim=1), "classification"
        elif matrix == "multi-label" and (classes or not y.is_floating_point()):
            raise DataError(_several_labels(y, "cross-entropy" if classes else None))
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
    bunch = isinstance(obj, dict) and "data" in obj and "target" in obj  # scikit-learn's Bunch is a dict
    got = type(obj).__name__
    if isinstance(obj, tuple | list):  # (x, y, weights), or train_test_split's four arrays
        got = f"a {got} of {len(obj)} items; return x and y alone"
        if len(obj) == 4:
            got += ": the validation split is hpotool's (data.val_fraction)"
    raise DataError(
        f"a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) "
        f"samples, got {got}"
        + ("; scikit-learn's loaders return (x, y) with return_X_y: true under data:" if bunch else "")
    )


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


def _several_labels(y: torch.Tensor, loss: str | None) -> str:
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


# Samples of a torch Dataset read twice to find a random transform (a flip half the time: 1 in 256 missed).
REREAD = 8


def _stack_torch_dataset(ds: torch.utils.data.Dataset[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """A map-style torch Dataset's samples as two stacked tensors (a TensorDataset's own tensors)."""
    name = type(ds).__name__
    if isinstance(ds, torch.utils.data.TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[0], ds.tensors[1]
    if isinstance(ds, torch.utils.data.IterableDataset) or not hasattr(ds, "__len__"):
        raise DataError(
            f"{name} is an iterable torch Dataset (no len): hpotool loads the samples into memory once, so "
            f"return a map-style Dataset (__len__ and __getitem__) or an (x, y) pair of tensors"
        )
    xs, ys = [], []
    for i in range(len(ds)):
        sample = ds[i]
        if not (isinstance(sample, tuple | list) and len(sample) == 2):
            kind = type(sample).__name__
            got = f"a {len(sample)}-item {kind}" if isinstance(sample, tuple | list) else f"a {kind}"
            raise DataError(f"{name}[{i}] is {got}; each sample must be an (x, y) pair{_pair_of(sample)}")
        xs.append(_as_tensor(sample[0], "x"))
        ys.append(_as_tensor(sample[1], "y"))
    if not xs:
        raise DataError("the dataset is empty (0 samples)")
    # A few samples, spread from the first to the last, read again at a cost that does not grow with the
    # dataset: a transform random for some samples only (augmentation that skips index 0) or only at
    # times (a flip half the time reads the same twice with odds 1/2) passed when sample 0 alone was.
    n = len(xs)
    for i in sorted({round(k * (n - 1) / (REREAD - 1)) for k in range(REREAD)}):
        if not _reads_the_same(ds[i], xs[i], ys[i]):
            raise _random_transform(name, i)
    for values, what in ((xs, "x"), (ys, "y")):
        odd = next((i for i, v in enumerate(values) if v.shape != values[0].shape), None)
        if odd is not None:
            raise DataError(
                f"{name}: sample {odd}'s {what} has shape {tuple(values[odd].shape)}, sample 0's "
                f"{tuple(values[0].shape)}; hpotool stacks the samples, so give every {what} the same shape"
            )
    return torch.stack(xs), torch.stack(ys)


# What a dict sample calls its target, as Hugging Face and torchvision-style datasets name it.
_TARGET_KEYS = ("label", "labels", "target", "targets", "y")


def _pair_of(sample: Any) -> str:
    """For a dict sample (`{'image': x, 'label': y}`): its keys, and the pair to return when one key is the
    target and one other is left; "" for anything else."""
    if not isinstance(sample, Mapping) or not sample:
        return ""
    keys = list(sample)
    listed = ", ".join(repr(k) for k in keys[:6]) + (", ..." if len(keys) > 6 else "")
    targets = [k for k in keys if str(k).lower() in _TARGET_KEYS]
    inputs = [k for k in keys if k not in targets]
    pair = (
        f": return (sample[{inputs[0]!r}], sample[{targets[0]!r}]) from __getitem__"
        if len(targets) == 1 and len(inputs) == 1
        else ": return the input and its target as a tuple from __getitem__"
    )
    return f" (its keys: {listed}){pair}"


def _reads_the_same(again: Any, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether a sample read again is the (x, y) pair first read as `x` and `y`."""
    if not (isinstance(again, tuple | list) and len(again) == 2):
        return False
    return _same(x, _as_tensor(again[0], "x")) and _same(y, _as_tensor(again[1], "y"))


def _random_transform(name: str, i: int) -> DataError:
    return DataError(
        f"{name}[{i}] differs between two reads (a random transform, such as augmentation?); hpotool reads "
        f"each sample once and trains on those tensors every epoch, so the transform would apply once, not "
        f"per epoch: drop the random transforms, or train with your own function (trainer: {{function: ...}})"
    )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same shape and values, NaN in the same places counting as the same."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))
    return torch.equal(a, b)


# The fewest samples a validation split may hold: one sample's accuracy is 0 or 1, so trials tie or differ
# by chance, and a study run on it ranked nothing, without a word.
MIN_VAL_SAMPLES = 2


def split(
    ds: Dataset, val_fraction: float, subset_fraction: float = 1.0, seed: int = 0
) -> tuple[TensorData, TensorData]:
    """Shuffle with `seed`, hold out `val_fraction` for validation, keep `subset_fraction` of the rest.

    The validation split does not depend on `subset_fraction`, so trials on a subset and the final run
    on everything are measured on the same samples.

    Raises:
        SplitError: fewer than `MIN_VAL_SAMPLES` validation samples, or no training sample.
    """
    n = len(ds.x)
    n_val = round(n * val_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if n_val < MIN_VAL_SAMPLES:
        left = "no validation sample"
        if n_val == 1:
            left = "1 validation sample, whose accuracy is 0 or 1 and error one prediction's: too few to compare runs"
        fix = (
            f"raise it to at least {MIN_VAL_SAMPLES / n:.3g}, or give more data"
            if n > MIN_VAL_SAMPLES
            else f"give more data (at least {MIN_VAL_SAMPLES + 1} samples: {MIN_VAL_SAMPLES} to validate, 1 to train)"
        )
        raise SplitError(f"val_fraction: {val_fraction} of the dataset's {n} samples leaves {left}; {fix}")
    if len(train_idx) < 1:
        raise SplitError(
            f"val_fraction: {val_fraction} of the dataset's {n} samples leaves no training sample; lower it, "
            f"or give more data"
        )
    n_train = len(train_idx)
    train_idx = train_idx[: round(n_train * subset_fraction)]
    if len(train_idx) < 1:
        raise SplitError(
            f"subset_fraction: {subset_fraction} of the {n_train} training samples leaves none; raise it to "
            f"at least {1 / n_train:.3g}"
        )
    return TensorData(ds.x[train_idx], ds.y[train_idx]), TensorData(ds.x[val_idx], ds.y[val_idx])
