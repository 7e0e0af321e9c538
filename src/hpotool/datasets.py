"""Built-in datasets from data that packages ship or that we generate, and the train/validation split.

A dataset is any callable returning a `Dataset`, a plain `(x, y)` pair of tensors or arrays, or a
map-style torch Dataset of `(x, y)` samples. Built-ins:
`digits` (scikit-learn's bundled 8x8 handwritten digits, classification) and `regression` (seeded synthetic
regression). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

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
    """A seeded nonlinear regression problem: y = tanh(x·w1)·w2 + noise, `noise` the standard deviation of
    the Gaussian noise added to y (a negative one drew the same data as its positive, with no word)."""
    if n_samples < 2 or n_features < 1:
        raise ValueError(
            f"n_samples must be 2 or more and n_features 1 or more, got {n_samples} and {n_features}; give "
            "data.n_samples and data.n_features such values"
        )
    if noise < 0:
        raise ValueError(
            f"noise is the standard deviation of the noise added to y, so it must be 0 or more (0: none), got "
            f"{noise}; give data.noise 0 or more"
        )
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
