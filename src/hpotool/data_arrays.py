"""A user's x or y (a tensor, numpy array, pandas object or nested lists) as a tensor, and what cannot be
one (text, missing values, sparse matrices, samples of several shapes) refused, naming where it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hpotool.datasets import DataError

_NUMBER = (bool, int, float, np.bool_, np.number)


def as_tensor(value: Any, name: str) -> torch.Tensor:
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
        raise _not_a_number(array, at, columns, name)
    if not array.flags.writeable:  # pandas hands out read-only views, which torch warns about
        array = array.copy()
    return torch.as_tensor(array)


def _not_a_number(array: np.ndarray, at: int, columns: list[Any], name: str) -> DataError:
    """The error for the value at flat index `at` of an object array, which is no number: what it is, in
    which sample or DataFrame column, and how to make it one."""
    flat = array.reshape(-1)
    example = flat[at]
    if isinstance(example, np.generic):
        example = example.item()
    shown = repr(example).splitlines()[0]
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if example is None or type(example).__name__ in ("NAType", "NaTType"):
        per_sample = flat.size // array.shape[0] if array.ndim and array.shape[0] else 1
        sample = at // max(1, per_sample)
        return DataError(
            f"{name} holds a missing value ({example}) in sample {sample}; drop or fill it in the dataset "
            f"function"
        )
    if name == "y" and isinstance(example, str | bytes):
        return DataError(
            f"y holds text labels such as {shown}; give class indices 0..K-1 as integers "
            f"(e.g. np.unique(y, return_inverse=True)[1])"
        )
    if columns and array.ndim == 2:
        column = columns[at % array.shape[1]]
        return DataError(
            f"{name} column {column!r} holds {type(example).__name__} values such as {shown}, not "
            f"numbers; encode it as numbers (pd.get_dummies({name}, dtype=float), or .cat.codes) or drop it"
        )
    return DataError(
        f"{name} holds {type(example).__name__} values such as {shown}, not numbers; convert "
        f"{name} to a numeric array (e.g. .astype('float32'))"
    )


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
