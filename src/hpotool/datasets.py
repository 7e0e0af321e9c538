"""Built-in datasets from data that packages ship or that we generate, and the train/validation split.

A dataset is any callable returning a `Dataset` (or a plain `(x, y)` pair of tensors or arrays). Built-ins:
`digits` (scikit-learn's bundled 8x8 handwritten digits, classification) and `regression` (seeded synthetic
regression). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

Task = Literal["classification", "regression"]


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
    """A whole dataset before splitting. Classification targets are class indices (int64)."""

    x: torch.Tensor
    y: torch.Tensor
    task: Task

    @property
    def n_classes(self) -> int | None:
        return int(self.y.max().item()) + 1 if self.task == "classification" else None

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


def as_dataset(obj: Any) -> Dataset:
    """Accept what a user's dataset function returns: a `Dataset`, or an `(x, y)` pair.

    For a pair, integer targets mean classification; floating-point targets mean regression.
    """
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, tuple | list) and len(obj) == 2:
        x, y = (torch.as_tensor(v) for v in obj)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y differ in length: {x.shape[0]} != {y.shape[0]}")
        x = x.float()
        if y.is_floating_point():
            return Dataset(x, y.float().reshape(len(y), -1), "regression")
        return Dataset(x, y.long().reshape(-1), "classification")
    raise TypeError(
        f"a dataset function must return hpotool.datasets.Dataset or an (x, y) pair, got {type(obj).__name__}"
    )


def split(
    ds: Dataset, val_fraction: float, subset_fraction: float = 1.0, seed: int = 0
) -> tuple[TensorData, TensorData]:
    """Shuffle with `seed`, hold out `val_fraction` for validation, keep `subset_fraction` of the rest.

    The validation split does not depend on `subset_fraction`, so trials on a subset and the final run
    on everything are measured on the same samples.
    """
    n = len(ds.x)
    n_val = round(n * val_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    train_idx = train_idx[: round(len(train_idx) * subset_fraction)]
    if n_val < 1 or len(train_idx) < 1:
        raise ValueError(
            f"the dataset has {n} samples: too few for val_fraction={val_fraction} and "
            f"subset_fraction={subset_fraction} (got {len(train_idx)} train and {n_val} validation samples)"
        )
    return TensorData(ds.x[train_idx], ds.y[train_idx]), TensorData(ds.x[val_idx], ds.y[val_idx])
