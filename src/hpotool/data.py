"""The run's data: its dataset loaded, split and cached once per process (`load_data`), and the checks of
the data against the run (the batch size, class labels that skip ids, a failure to load)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpotool.components import REGISTRIES, resolve_component
from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.formatting import counted
from hpotool.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from hpotool.run_sections import DataConfig
from hpotool.user_code import described, refusing_exit

# torch and the datasets are imported where data is loaded: a user's training function's run loads none
if TYPE_CHECKING:
    from hpotool.datasets import Task, TensorData

MEASURES = ("n_params", "epoch_time")


@dataclass(frozen=True)
class PreparedData:
    """A dataset split for training, on the CPU."""

    train: TensorData
    val: TensorData
    task: Task
    out_features: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def zero_one_floats(self) -> bool:
        """Regression targets that are each 0 or 1: class labels stored as floats, one per sample or several
        (a multi-label matrix, which bce_with_logits reads as a multilabel task)."""
        if self.task != "regression":
            return False
        import torch

        from hpotool.dataset_checks import label_matrix, zero_one_labels

        y = torch.cat([self.train.y, self.val.y])
        return zero_one_labels(y) or label_matrix(y) == "multi-label"

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every value a run on this data reports: the task's epoch metrics, then the measures."""
        epoch_metrics = REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS
        return epoch_metrics + MEASURES


# The dataset loaded for each data section (with the loss's reading of it): the folder a user's function
# read it in (its relative paths; None for hpotool's own datasets, which read no file), the function or class
# that made it, and the splits.
_DATA_CACHE: dict[str, tuple[str | None, Any, PreparedData]] = {}


def load_data(cfg: DataConfig, loss: str | None = None) -> PreparedData:
    """Load and split the dataset once per process; trials with the same data section share it.

    A user's dataset of the same section read in another folder (a relative `path: data.csv`), or from a
    module imported again (`importlib.reload`, or a module of the same name in another folder once the first
    is forgotten), is loaded again, in its place: a process that ran several commands (the tests, a notebook
    driving the CLI) trained the later ones on the first one's data.

    `loss` is the run's loss name: with binary cross-entropy with logits, floating-point 0/1 targets are two
    classes (val_accuracy), not a regression (val_rmse), and a matrix of 0/1 floats a multilabel task; with
    cross-entropy, one-hot float rows are class ids; see `as_dataset`."""
    from hpotool.datasets import split
    from hpotool.user_datasets import as_dataset

    binary = loss is not None and one_logit_loss(loss)
    classes = loss is not None and class_loss(loss)
    key = json.dumps([cfg.model_dump(mode="json"), binary, classes], sort_keys=True)
    factory = resolve_component("data", cfg.name)
    folder = None if cfg.name in REGISTRIES["data"] else os.getcwd()
    cached = _DATA_CACHE.get(key)
    if cached is None or cached[0] != folder or cached[1] is not factory:
        ds = as_dataset(factory(**cfg.kwargs), binary=binary, classes=classes)
        train, val = split(ds, cfg.val_fraction, cfg.subset_fraction, cfg.split_seed)
        cached = _DATA_CACHE[key] = (folder, factory, PreparedData(train, val, ds.task, ds.out_features))
    return cached[2]


def one_logit(cfg: RunConfig, data: PreparedData) -> bool:
    """Whether the loss scores a classification with one logit per sample (torch's BCEWithLogitsLoss, or
    its function `binary_cross_entropy_with_logits`): the model then has one output, the loss is given the
    class (0 or 1) as a float of shape (batch, 1), and accuracy counts a positive logit as class 1."""
    return data.task == "classification" and one_logit_loss(cfg.loss.name)


def one_logit_loss(name: str) -> bool:
    """Whether the loss `name` resolves to is binary cross-entropy with logits (class or function); a name
    that does not resolve is not (`build_loss` says why)."""
    try:
        loss = resolve_component("loss", name)
    except HpoError:
        return False
    from torch import nn

    binary: Any = nn.functional.binary_cross_entropy_with_logits
    return loss is binary or (isinstance(loss, type) and issubclass(loss, nn.BCEWithLogitsLoss))


def class_loss(name: str) -> bool:
    """Whether the loss `name` resolves to takes one class id per sample: torch's cross-entropy or negative
    log-likelihood (class or function)."""
    try:
        loss = resolve_component("loss", name)
    except HpoError:
        return False
    return takes_class_weights(loss)


def takes_class_weights(loss: Any) -> bool:
    """Whether `weight` is one weight per class: torch's cross-entropy and negative log-likelihood."""
    from torch import nn

    classes = (nn.CrossEntropyLoss, nn.NLLLoss)
    functions = (nn.functional.cross_entropy, nn.functional.nll_loss)
    return (isinstance(loss, type) and issubclass(loss, classes)) or any(loss is f for f in functions)


def data_failure(cfg: DataConfig, exc: Exception) -> str:
    """What went wrong loading `cfg`'s dataset, in one line: what its function returned that hpotool cannot
    train on, or the exception it raised."""
    from hpotool.datasets import DataError, SplitError

    if isinstance(exc, DataError):
        return f"{cfg.name!r} returned data hpotool cannot train on: {exc}"
    if isinstance(exc, SplitError):  # the section's own fractions, not the dataset, are to change
        return str(exc)
    from hpotool.model_hints import number_spelling_hint

    # `n_samples: '200'` or 200.0, which torch refuses in the user's code, naming the line but not the key
    return f"loading {cfg.name!r} failed: {described(exc)}{number_spelling_hint('data', cfg, exc)}"


def unused_classes_note(data: PreparedData, name: str) -> str | None:
    """A note when a classification's labels skip class ids: labels 1..K (as R and MATLAB number them) or
    sparse codes (10, 20) give the model an output for every id up to the largest, some for classes no
    sample has, and integer amounts (counts, ages) read as class ids look the same. None when 0..K-1 all
    occur (in the training and validation samples)."""
    import torch

    if data.task != "classification" or data.train.y.is_floating_point():  # soft labels: a column per class
        return None
    labels = torch.unique(torch.cat([data.train.y, data.val.y]))
    classes = data.out_features if data.out_features > 1 else 2  # one logit: two classes
    unused = classes - len(labels)
    if unused <= 0:
        return None
    missing = sorted(set(range(classes)) - set(labels.tolist()))
    shown = ", ".join(map(str, missing[:3])) + (", ..." if len(missing) > 3 else "")
    return (
        f"data: the labels of {name} run up to {classes - 1}, so the model has {classes} outputs, but {unused} "
        f"of those classes {'has' if unused == 1 else 'have'} no sample ({shown}); number the classes 0..{len(labels) - 1} in the dataset "
        f"function (np.unique(y, return_inverse=True)[1]), or give y as floats if it holds amounts (regression)"
    )


def float_classes_note(data: PreparedData, name: str) -> str | None:
    """A note where regression targets are the whole numbers 0..K-1 alone (2 to 20 of them, each sample's one
    number), as class labels stored as floats are (a CSV column read by pandas or np.loadtxt, a label
    column beside NaN): they trained as a regression, reporting val_rmse, without a word. None for other
    targets, and for a loss that reads 0/1 floats as two classes (the task is classification then)."""
    import torch

    if data.task != "regression" or data.train.y.dim() != 2 or data.train.y.shape[1] != 1:
        return None
    y = torch.cat([data.train.y, data.val.y]).reshape(-1)
    if not bool((y == y.round()).all()):
        return None
    values = torch.unique(y).tolist()
    k = len(values)
    if not 2 <= k <= 20 or values != list(range(k)) or len(y) < 5 * k:
        return None
    return (
        f"data: y of {name} holds only the whole numbers 0..{k - 1} as floats, which make a regression task "
        f"(val_rmse, val_mae); if they are class labels, give y as integers (y.astype(np.int64), a tensor's "
        f"y.long()) for a classification"
    )


def channels_last_note(data: PreparedData, cfg: RunConfig) -> str | None:
    """A note where the built-in cnn gets samples shaped as images with their channels last (16x16x3, as
    numpy and PIL give them): it reads them as C×H×W, 16 channels of 16×3 images, and trains without a word
    on a layout the user did not mean. None for other samples or models."""
    shape = tuple(data.input_shape)
    if cfg.model.name != "cnn" or len(shape) != 3 or shape[2] not in (1, 3, 4) or shape[0] <= 4:
        return None
    c, h, w = shape
    return (
        f"data: each sample of {cfg.data.name}'s x is shaped {shape}, which the cnn reads as {c} channels of "
        f"{h}×{w} images (C×H×W); if they are images with their channels last (H×W×C, as numpy and PIL give "
        f"them), return x.transpose(0, 3, 1, 2) (a tensor's x.permute(0, 3, 1, 2)) from the dataset function"
    )


def data_notes(data: PreparedData, cfg: RunConfig) -> tuple[str, ...]:
    """The notes on the data that optimize prints before trial 0, and train before it trains: class labels
    that skip ids (`unused_classes_note`), class labels stored as floats (`float_classes_note`), images with
    their channels last (`channels_last_note`)."""
    notes = (
        unused_classes_note(data, cfg.data.name),
        float_classes_note(data, cfg.data.name),
        channels_last_note(data, cfg),
    )
    return tuple(note for note in notes if note)


def load_checked(cfg: RunConfig, source: str) -> PreparedData:
    """`load_data`, with a failure as an `HpoError` naming `source` (the config file) and its data section."""
    try:
        with refusing_exit():
            return load_data(cfg.data, cfg.loss.name)
    except Exception as exc:
        hint = config_relative_hint(cfg.data, source) if isinstance(exc, OSError) else ""
        raise HpoError(f"{source}: data: {data_failure(cfg.data, exc)}{hint}") from None


def config_relative_hint(cfg: DataConfig, source: str) -> str:
    """For a dataset function that found no file at a relative path the data section gives (`path:
    data/train.csv`): that the path is read from the folder hpotool runs in, and the fix. Where the file is
    there from the config file's folder, the path to write; where it is there from a folder above the config
    (a best_run.yaml that export-best wrote into `proj/studies/NAME/`, trained from another folder) or above
    the study's storage file (train-from-best with `--storage` from another folder), the folder to run from.
    Where it is nowhere, the key and the files of its folder it looks like. The line said only
    "data/train.csv not found", which the user saw beside their config, or in their project."""
    from hpotool.import_hints import file_read

    here = os.path.abspath(os.getcwd())
    folder = os.path.dirname(source) if os.path.isfile(source) else ""
    above = [os.path.dirname(os.path.abspath(source))] if os.path.isfile(source) else []
    if (read := file_read()) is not None:
        above.append(os.path.dirname(read))
    projects = list(dict.fromkeys(f for start in above for f in _folder_and_parents(start) if f != here))
    for key, value in cfg.kwargs.items():
        if not isinstance(value, str) or not value or os.path.isabs(value) or os.path.exists(value):
            continue
        beside = os.path.join(folder, value)
        if folder and os.path.exists(beside):
            return (
                f"; data.{key}: a relative path is read from the folder hpotool runs in, not the config's, "
                f"and {beside} is there: write {key}: {beside}"
            )
        for project in projects:
            if os.path.exists(os.path.join(project, value)):
                return (
                    f"; data.{key}: a relative path is read from the folder hpotool runs in, and {project} holds "
                    f"{value}: run hpotool from there (cd {os.path.relpath(project)}), or write {key}: "
                    f"{os.path.join(project, value)}"
                )
    for key, value in cfg.kwargs.items():
        looks_a_path = isinstance(value, str) and ("/" in value or os.sep in value or "." in value)
        if looks_a_path and not os.path.exists(value) and (near := _near_file(value)):
            return f"; data.{key}: {value} does not exist (did you mean {near}?)"
    return ""


def _folder_and_parents(folder: str) -> list[str]:
    from pathlib import Path

    return [folder, *map(str, Path(folder).parents)]


def _near_file(path: str) -> str | None:
    """The file or folder beside the missing `path` whose name looks most like its name (`data/wine.csv` for
    `data/wines.csv`), as the user would write it; None where its folder is missing or holds none alike."""
    from hpotool.near_names import closest

    parent, name = os.path.split(path)
    try:
        names = [e.name for e in os.scandir(parent or ".") if not e.name.startswith(".")]
    except OSError:
        return None
    near = closest(name, names, n=1)
    return os.path.join(parent, near[0]) if near else None


def check_batch_size(size: int, data: PreparedData, where: str) -> None:
    """An `HpoError` when a batch of `size` is larger than the training split: every epoch would be one
    smaller batch, so the run would not train as configured. `where` names the file and key."""
    problem = batch_size_problem(size, data)
    if problem:
        raise HpoError(f"{where}: {problem}")


def batch_size_problem(size: int, data: PreparedData) -> str | None:
    if len(data.train) >= size:
        return None
    return (
        f"{size} is larger than the {counted(len(data.train), 'training sample')}; "
        f"use a smaller batch_size or more data (data.subset_fraction, data.val_fraction)"
    )
