"""A map-style torch Dataset's samples read once into two stacked tensors, and the random transforms
(augmentation) that reading once would apply only once refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hpotool.data_arrays import as_tensor
from hpotool.datasets import DataError

# Samples of a torch Dataset read twice to find a random transform (a flip half the time: 1 in 256 missed).
REREAD = 8


def stack_torch_dataset(ds: torch.utils.data.Dataset[Any]) -> tuple[torch.Tensor, torch.Tensor]:
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
        xs.append(as_tensor(sample[0], "x"))
        ys.append(as_tensor(sample[1], "y"))
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
    return _same(x, as_tensor(again[0], "x")) and _same(y, as_tensor(again[1], "y"))


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
