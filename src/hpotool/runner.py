"""From a RunConfig to a trained model: load data, resolve the device, build components, run the Trainer.

Used by both `optimize` (one call per trial) and `train`. Knows nothing about Optuna.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, SequentialLR
from torch.overrides import TorchFunctionMode

from hpotool.components import REGISTRIES, first_argument, loss_inputs, resolve_component
from hpotool.config import (
    CHECK_COMPONENTS,
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    DataConfig,
    RunConfig,
)
from hpotool.datasets import (
    DataError,
    SplitError,
    Task,
    TensorData,
    as_dataset,
    label_matrix,
    split,
    zero_one_labels,
)
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.lean_step import defer_dynamo
from hpotool.resolve import accepted_kwargs, described, pick_kwargs
from hpotool.schedulers import (
    DEFAULT_MONITOR,
    HIGHER_IS_BETTER,
    counts_epochs,
    held_schedules,
    resumed_at,
    step_counted_argument,
    steps_per_batch,
    takes_epoch,
    takes_epoch_and_metric,
    takes_metric,
)
from hpotool.trainer import (
    EpochResult,
    NonFiniteLossError,
    Trainer,
    input_changed,
    same_values,
    steps_per_epoch,
)

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
        y = torch.cat([self.train.y, self.val.y])
        return zero_one_labels(y) or label_matrix(y) == "multi-label"

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every value a run on this data reports: the task's epoch metrics, then the measures."""
        epoch_metrics = REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS
        return epoch_metrics + MEASURES


@dataclass
class RunResult:
    """What one training run produced."""

    metrics: dict[str, float]
    history: list[dict[str, float]]
    model: nn.Module | None  # None: a user's training function keeps its own model
    seconds: float
    device: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


_DATA_CACHE: dict[str, PreparedData] = {}
_DEVICE_CACHE: dict[tuple[str, str], tuple[TensorData, TensorData]] = {}


def load_data(cfg: DataConfig, loss: str | None = None) -> PreparedData:
    """Load and split the dataset once per process; trials with the same data section share it.

    `loss` is the run's loss name: with binary cross-entropy with logits, floating-point 0/1 targets are two
    classes (val_accuracy), not a regression (val_rmse), and a matrix of 0/1 floats a multilabel task; with
    cross-entropy, one-hot float rows are class ids; see `as_dataset`."""
    binary = loss is not None and _one_logit_loss(loss)
    classes = loss is not None and _class_loss(loss)
    key = json.dumps([cfg.model_dump(mode="json"), binary, classes], sort_keys=True)
    if key not in _DATA_CACHE:
        factory = resolve_component("data", cfg.name)
        ds = as_dataset(factory(**cfg.kwargs), binary=binary, classes=classes)
        train, val = split(ds, cfg.val_fraction, cfg.subset_fraction, cfg.split_seed)
        _DATA_CACHE[key] = PreparedData(train, val, ds.task, ds.out_features)
    return _DATA_CACHE[key]


def _on_device(data: PreparedData, device: torch.device) -> tuple[TensorData, TensorData]:
    """The splits on `device`, copied there once per process."""
    key = (str(id(data)), str(device))
    if key not in _DEVICE_CACHE:
        _DEVICE_CACHE[key] = (data.train.to(device), data.val.to(device))
    return _DEVICE_CACHE[key]


def resolve_device(spec: str, source: str | None = None) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is absent is an `HpoError` naming
    `source`, where the device was given: a file (`run.yaml`) or the flag `--device`."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HpoError(_absent_device(spec, "CUDA is not available here", source))
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            given = "--device " if source == "--device" else f"{source}: device: " if source else "device: "
            raise HpoError(f"{given}{spec} does not exist; this machine has {count} GPU(s)")
    if spec == "mps" and not torch.backends.mps.is_available():
        raise HpoError(_absent_device(spec, "MPS is not available here", source))
    return torch.device(spec)


def _absent_device(spec: str, why: str, source: str | None) -> str:
    if source == "--device":  # the flag wins over the config's device: the fix is the flag
        return f"--device {spec}: {why}; give --device auto or cpu"
    where = f"{source}: " if source else ""
    return f"{where}device: {spec} was asked for but {why}; use device: auto or cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def one_logit(cfg: RunConfig, data: PreparedData) -> bool:
    """Whether the loss scores a classification with one logit per sample (torch's BCEWithLogitsLoss, or
    its function `binary_cross_entropy_with_logits`): the model then has one output, the loss is given the
    class (0 or 1) as a float of shape (batch, 1), and accuracy counts a positive logit as class 1."""
    return data.task == "classification" and _one_logit_loss(cfg.loss.name)


def _one_logit_loss(name: str) -> bool:
    """Whether the loss `name` resolves to is binary cross-entropy with logits (class or function); a name
    that does not resolve is not (`build_loss` says why)."""
    try:
        loss = resolve_component("loss", name)
    except HpoError:
        return False
    binary: Any = nn.functional.binary_cross_entropy_with_logits
    return loss is binary or (isinstance(loss, type) and issubclass(loss, nn.BCEWithLogitsLoss))


def _class_loss(name: str) -> bool:
    """Whether the loss `name` resolves to takes one class id per sample: torch's cross-entropy or negative
    log-likelihood (class or function)."""
    try:
        loss = resolve_component("loss", name)
    except HpoError:
        return False
    return _takes_class_weights(loss)


def model_out_features(cfg: RunConfig, data: PreparedData) -> int:
    """The model's outputs: a logit per class, one for a one-logit loss (`one_logit`), or the targets'."""
    return 1 if one_logit(cfg, data) else data.out_features


def build_model(cfg: RunConfig, data: PreparedData) -> nn.Module:
    """Instantiate the model, passing the data's shapes to the arguments its signature asks for."""
    return make_model(cfg, data.input_shape, model_out_features(cfg, data))


def make_model(cfg: RunConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Instantiate the model for data of these shapes (what `build_model` and a saved model use)."""
    cls = resolve_component("model", cfg.model.name)
    shapes = {
        "in_features": int(np.prod(input_shape)),
        "out_features": out_features,
        "input_shape": tuple(input_shape),
    }
    model = construct(cls, (), pick_kwargs(cls, shapes), cfg.model.kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {cfg.model.name!r} returned {type(model).__name__}, not a torch.nn.Module")
    _check_registered(model)
    return model


def construct(factory: Any, args: tuple[Any, ...], offered: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """`factory(*args, **offered, **kwargs)`, `offered` being what hpotool passes (a model's shapes, a
    schedule's epochs). A factory taking `**kwargs` is offered all of it, and one that hands them on
    (`def __init__(self, **kwargs): super().__init__(**kwargs)`, `def cosine(optimizer, **kw): return
    CosineAnnealingLR(optimizer, **kw)`) failed with "unexpected keyword argument 'input_shape'" (or
    'epochs'), which no config could fix: such an argument is left out and the factory called again, on the
    random numbers' state of the first call."""
    state = torch.random.get_rng_state()
    while True:
        try:
            return factory(*args, **offered, **kwargs)
        except TypeError as exc:
            found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if found is None or found.group(1) not in offered or not accepted_kwargs(factory)[1]:
                raise
            offered = {k: v for k, v in offered.items() if k != found.group(1)}
            torch.random.set_rng_state(state)


_STEP_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"
_MODULE_KEYS = frozenset(vars(nn.Module()))  # torch's own attributes of every module


def _check_registered(model: nn.Module) -> None:
    """Layers, parameters and trainable tensors a model keeps where torch does not look: in a plain list,
    tuple or dict (`self.layers = [nn.Linear(...)]`), or a tensor that is not an nn.Parameter. On the CPU
    the model trained without an error, those weights never updated (the optimizer is given
    `model.parameters()`), missing from n_params and the saved model; `eval()` left their dropout on; on a
    GPU they stayed on the CPU.

    Raises:
        RunCheckError: naming the attribute and the container to use.
    """
    modules = {id(m) for m in model.modules()}
    params = {id(p) for p in model.parameters()}
    name = type(model).__name__
    for prefix, sub in model.named_modules():
        for key, value in vars(sub).items():
            if key in _MODULE_KEYS:
                continue
            where = f"{prefix}.{key}" if prefix else key
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                if value.requires_grad and value.is_leaf:
                    raise RunCheckError(
                        "model",
                        f"{name} keeps a trainable tensor in self.{where}, which is not an nn.Parameter, so the "
                        f"optimizer never updates it and the saved model lacks it; wrap it: "
                        f"nn.Parameter(tensor) (or register_buffer for a constant)",
                    )
                continue
            if isinstance(value, dict):
                items = list(value.values())
            elif isinstance(value, list | tuple):
                items = list(value)
            else:
                continue
            for item in items:
                if isinstance(item, nn.Module) and id(item) not in modules:
                    trainable = any(p.requires_grad for p in item.parameters())
                    if not trainable and not any(
                        isinstance(m, nn.modules.dropout._DropoutNd) and m.training for m in item.modules()
                    ):
                        # an activation, or a frozen model hidden on purpose (a distillation teacher): its
                        # dropout, if any, is off, and hidden so that model.train() would not switch it on
                        continue
                    kind = type(item).__name__
                    fix = "nn.ModuleDict" if isinstance(value, dict) else "nn.ModuleList"
                    raise RunCheckError(
                        "model",
                        f"{name} keeps its {kind} layers in a plain {type(value).__name__}, self.{where}, which "
                        f"torch does not register: the optimizer would never train them, eval() would not "
                        f"switch them, the saved model would lack them and the device would not get them; "
                        f"use {fix}",
                    )
                if isinstance(item, nn.Parameter) and id(item) not in params and item.requires_grad:
                    fix = "nn.ParameterDict" if isinstance(value, dict) else "nn.ParameterList"
                    raise RunCheckError(
                        "model",
                        f"{name} keeps parameters in a plain {type(value).__name__}, self.{where}, which torch "
                        f"does not register: the optimizer would never train them and the saved model would "
                        f"lack them; use {fix}",
                    )


FUSED_DEVICES = ("cpu", "cuda")


def fast_optimizer_kwargs(opt_cls: Any, model: nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs`, plus `fused=True` where torch has a fused kernel for this optimizer and device.

    torch's fused Adam, AdamW, SGD and Adagrad update every parameter in one kernel call instead of a
    Python loop of several calls per parameter: on small models that loop was half of each step. The
    user's own `fused` or `foreach` setting always wins; torch's other optimizers are left as they are.
    """
    if "fused" in kwargs or "foreach" in kwargs or not str(opt_cls.__module__).startswith("torch.optim"):
        return kwargs
    if "fused" not in accepted_kwargs(opt_cls)[0]:
        return kwargs
    params = list(model.parameters())
    devices = {p.device for p in params}
    if len(devices) != 1 or next(iter(devices)).type not in FUSED_DEVICES:
        return kwargs
    if not all(p.is_floating_point() for p in params):
        return kwargs
    return {**kwargs, "fused": True}


# What a user's optimizer function calls its first argument when it wants the model itself, or its
# (name, parameter) pairs: to leave biases and norms out of weight decay, which needs the names.
_MODEL_ARGUMENTS = ("model", "module", "net", "network")
_NAMED_ARGUMENTS = ("named_parameters", "named_params")
_GIVES = (
    "the model's parameters (a list); name that argument model to be given the model, or named_parameters "
    "to be given its (name, parameter) pairs"
)


def optimizer_input(opt_cls: Any, model: nn.Module) -> Any:
    """What the optimizer is built on: the model's parameters (a list), or, for a function whose first
    argument is named `model` (`module`, `net`, `network`), the model, and for one whose first argument is
    named `named_parameters` (`named_params`), the model's (name, parameter) pairs."""
    first = first_argument("optimizer", opt_cls) if not isinstance(opt_cls, type) else ()
    if first and first[0] in _MODEL_ARGUMENTS:
        return model
    if first and first[0] in _NAMED_ARGUMENTS:
        return list(model.named_parameters())
    # A list, not the generator model.parameters(): a user's function reading it twice (weight-decay groups
    # by two comprehensions) found it empty the second time, leaving those parameters untrained.
    return list(model.parameters())


def build_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer the config names, over `model`'s parameters (torch's fused kernel where it has one)."""
    opt_cls = resolve_component("optimizer", cfg.optimizer.name)
    defer_dynamo()
    given = optimizer_input(opt_cls, model)
    kwargs = dict(fast_optimizer_kwargs(opt_cls, model, cfg.optimizer.kwargs))
    # weight_decay 0 (none, the default) is offered, not insisted on: a user's function under a decorator
    # without functools.wraps shows (*args, **kwargs), and failed on a weight_decay the config never set.
    offered = {"weight_decay": kwargs.pop("weight_decay")} if kwargs.get("weight_decay") == 0.0 else {}
    try:
        optimizer = construct(opt_cls, (given,), offered, kwargs)
    except (AttributeError, ValueError) as exc:
        # a training script's `def make_optimizer(net_, lr)` calling net_.parameters(), or `for name, p in
        # params`, given the parameters themselves: "too many values to unpack (expected 2)"
        wrong = (
            str(exc).startswith("'list' object has no attribute")
            if isinstance(exc, AttributeError)
            else "values to unpack" in str(exc)
        )
        plain = isinstance(given, list) and not (given and isinstance(given[0], tuple))
        if not wrong or not plain or isinstance(opt_cls, type):
            raise
        raise RunCheckError(
            "optimizer", f"{described(exc)}; hpotool calls {cfg.optimizer.name!r} with {_GIVES}"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer {cfg.optimizer.name!r} returned {type(optimizer).__name__}, not a torch.optim.Optimizer"
        )
    return optimizer


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule and how the Trainer steps it."""

    scheduler: Any  # an LRScheduler, ReduceLROnPlateau, or None
    per_step: bool
    watched: str | None  # the metric its step() is given, for a schedule that watches one
    by_epoch: bool = False  # its step() is given the number of epochs done (timm's step(epoch))
    updates: bool = False  # its step_update(num_updates) is called after each optimizer step (timm's)


def build_schedule(cfg: RunConfig, data: PreparedData, optimizer: torch.optim.Optimizer) -> Schedule:
    """The schedule the config names, built for the run's length in the steps it takes."""
    sched_fn = resolve_component("scheduler", cfg.scheduler.name)
    per_step = steps_per_batch(cfg.scheduler.name, cfg.scheduler.interval, sched_fn)
    counted = step_counted_argument(sched_fn)
    if per_step and counts_epochs(cfg.scheduler.name, sched_fn) and counted:
        raise RunCheckError(  # stepped per batch for `counted`, but told the run's length in epochs
            "scheduler",
            f"{cfg.scheduler.name!r} asks for epochs, the run's length in epochs, but counts {counted} in "
            f"batches, so stepped after every batch it would run its course in the first {cfg.epochs} batches; "
            f"ask for num_training_steps (the run's batches, which hpotool fills in) instead of epochs, or for "
            f"steps_per_epoch beside it, or set interval: epoch to count {counted} in epochs too",
        )
    if per_step and counts_epochs(cfg.scheduler.name, sched_fn):
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} takes the run's length as epochs (it asks for epochs, not steps_per_epoch "
            f"or num_training_steps), but interval: step steps it after every batch, so it would run its course "
            f"in the first {cfg.epochs} batches; drop interval: step, or give it a steps_per_epoch argument and "
            f"span epochs * steps_per_epoch steps",
        )
    # The run's length in the schedule's own steps: batches when it steps per batch, else epochs.
    batches = steps_per_epoch(len(data.train), cfg.batch_size) if per_step else 1
    # num_training_steps: a Hugging Face schedule's length, which its users worked out by hand (and a searched
    # epochs or batch_size changed under them)
    run_shape = {
        "epochs": cfg.epochs,
        "steps_per_epoch": batches,
        "num_training_steps": cfg.epochs * batches,
        # timm's create_scheduler_v2: num_epochs, and updates_per_epoch, the optimizer steps of an epoch (its
        # step_update is given them after each, however the schedule is stepped)
        "num_epochs": cfg.epochs,
        "updates_per_epoch": steps_per_epoch(len(data.train), cfg.batch_size),
    }
    with warnings.catch_warnings():
        # torch's SequentialLR steps its first schedule as it is built, and a ChainedScheduler there steps the
        # ones it holds a second time, which torch takes for a run stepping the schedule before the optimizer:
        # each trial printed its "Detected call of `lr_scheduler.step()` before `optimizer.step()`" warning
        warnings.filterwarnings("ignore", _STEP_BEFORE_OPTIMIZER, UserWarning)
        built = construct(sched_fn, (optimizer,), pick_kwargs(sched_fn, run_shape), cfg.scheduler.kwargs)
    scheduler = _unpacked(cfg, built)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):  # None: a constant lr
        raise TypeError(
            f"scheduler {cfg.scheduler.name!r} returned {type(scheduler).__name__}, not a learning-rate schedule "
            f"(an object with a step() method, such as torch.optim.lr_scheduler.StepLR)"
        )
    total = getattr(scheduler, "total_steps", None)  # OneCycleLR raises once stepped more than this
    run_steps = cfg.epochs * batches
    per = f"{cfg.epochs} epochs x {batches} batches" if per_step else f"once per epoch, {cfg.epochs} epochs"
    # and stepped fewer times, its cycle stopped part-way, the lr never annealed: a one-cycle's whole point
    one_cycle = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    if isinstance(total, int) and (total < run_steps or (one_cycle and total > run_steps)):
        what = (
            "and it fails past its end"
            if total < run_steps
            else f"so its cycle would stop {run_steps / total:.0%} of the way through, before the lr anneals"
        )
        raise ValueError(
            f"scheduler {cfg.scheduler.name!r} has total_steps {total}, but the run steps it {run_steps} times "
            f"({per}), {what}; drop total_steps (hpotool passes epochs and steps_per_epoch)"
        )
    by_path = cfg.scheduler.name not in REGISTRIES["scheduler"]  # the built-in cosine spans the run itself
    unit = "batch" if per_step else "epoch"
    if by_path and (ends := _cosine_past_end(scheduler, run_steps, f"the run's last {unit}")) is not None:
        zero = "" if ends == _CLIMBS else ", or eta_min above 0"
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} has T_max {scheduler.T_max}, but the run steps it {run_steps} times ({per}), "
            f"{ends}; set T_max to the run's steps{zero}, or use name: cosine (hpotool's, which spans every trial's "
            f"run)",
        )
    if by_path and (at := resumed_at(scheduler)) is not None:
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} returned a {type(scheduler).__name__} {_resumed_part_way(at)}",
        )
    if by_path:
        _check_held(cfg.scheduler.name, scheduler, run_steps, per, unit)
    by_epoch = scheduler is not None and takes_epoch(scheduler)
    if by_epoch and per_step:
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} is given the number of epochs done in step(epoch), once per epoch; drop "
            f"interval: step",
        )
    updates = scheduler is not None and callable(getattr(scheduler, "step_update", None))
    return Schedule(scheduler, per_step, _watched(cfg, data, scheduler, per_step), by_epoch, updates)


def _unpacked(cfg: RunConfig, built: Any) -> Any:
    """The schedule of a factory that returns it with the epochs to train it for, `(schedule, num_epochs)`
    as timm's create_scheduler_v2 does (it was refused: "returned tuple, not a learning-rate schedule");
    anything else as it is.

    Raises:
        RunCheckError: those epochs are not the run's: timm added its cooldown, a warmup_prefix's warm-up
            or more cycles to num_epochs, which the run would stop before (or, fewer, train past).
    """
    if not (isinstance(built, tuple) and len(built) == 2 and callable(getattr(built[0], "step", None))):
        return built
    scheduler, epochs = built
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return built  # refused below as a tuple
    if epochs != cfg.epochs:
        extra = epochs - cfg.epochs
        counted = f"{abs(extra)} epoch{'s' if abs(extra) != 1 else ''}"
        what = (
            f"so the schedule's last {counted} would never run"
            if extra > 0
            else f"so the run would train {counted} past the schedule's end"
        )
        raise RunCheckError(
            "scheduler",
            f"{cfg.scheduler.name!r} returned ({type(scheduler).__name__}, {epochs}): a schedule and the epochs to "
            f"train it for (as timm's create_scheduler_v2 does, adding cooldown_epochs, a warmup_prefix's warm-up "
            f"and cycle_limit's cycles to num_epochs), but the run trains {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, {what}; drop "
            f"cooldown_epochs, warmup_prefix and cycle_limit, so that it spans the run (hpotool fills in num_epochs "
            f"and updates_per_epoch for each run)",
        )
    return scheduler


def _resumed_part_way(at: int) -> str:
    """Why a schedule a factory built at its step `at` (a config's last_epoch is refused at load time)."""
    return (
        f"that starts part-way through, at its step {at} (built with last_epoch {at - 1}, which resumes a schedule "
        f"from a checkpoint, or stepped before it was returned), and hpotool starts every run's schedule at its "
        f"beginning; build it without last_epoch"
    )


_CLIMBS = "and past T_max its cosine climbs back up towards the lr"


def _cosine_past_end(scheduler: Any, span: int, last: str) -> str | None:
    """What goes wrong where torch's CosineAnnealingLR sets the lr of `span` steps and its T_max is shorter
    than that (`last`: the last of them, "the run's last epoch"), or None. The lr of step t is its cosine at
    t, which reaches eta_min at T_max: with T_max below span - 1 the steps after it climb back up towards
    the lr, and with T_max at span - 1 the last step trains at eta_min, which at 0 moves no weight (stepped
    per epoch, a trial pays for a whole last epoch that changes none of its weights). Above 0 that is where a
    cosine ending at eta_min should end."""
    t_max = getattr(scheduler, "T_max", None)
    if not isinstance(scheduler, CosineAnnealingLR) or not isinstance(t_max, int) or t_max >= span:
        return None
    if t_max < span - 1:
        return _CLIMBS
    if scheduler.eta_min != 0:
        return None
    return f"so its cosine ends at T_max, at eta_min 0, and {last} trains at lr 0, which moves no weight"


def _check_held(name: str, scheduler: Any, run_steps: int, per: str, unit: str) -> None:
    """The total_steps and T_max checks above, for the schedules a SequentialLR or ChainedScheduler of a
    user's factory holds, against their part of the run (`held_schedules`), and the refusal of a schedule
    resumed part-way, for those torch steps on from where they were built.

    Raises:
        RunCheckError: naming the schedule held, its place, and its part of the run.
    """
    fix = (
        "from the arguments hpotool fills in (epochs, steps_per_epoch, num_training_steps), to span its part of "
        "the run"
    )
    for held in held_schedules(scheduler, run_steps):
        inner, span = held.scheduler, held.span
        part = f"its part of the run's {run_steps} steps, " if span != run_steps else ""
        kind = type(inner).__name__
        said = f"{name!r} holds a {kind} ({held.where})"
        if not held.from_built and isinstance(inner, SequentialLR | ChainedScheduler):
            # torch: SequentialLR restarts it with step(0), which these two take to LRScheduler.get_lr
            raise RunCheckError(
                "scheduler",
                f"{said}, which the SequentialLR restarts at its milestone with step(0), and torch's {kind} cannot "
                "take that: the run would fail there, part-way through; put the schedules it holds into the outer "
                "SequentialLR (or a ChainedScheduler around it) instead",
            )
        if held.from_built and (at := resumed_at(inner)) is not None:
            raise RunCheckError("scheduler", f"{said} {_resumed_part_way(at)}")
        total = getattr(inner, "total_steps", None)
        one_cycle = isinstance(inner, torch.optim.lr_scheduler.OneCycleLR)
        if isinstance(total, int) and (total < held.stepped or (one_cycle and total > span)):
            what = (
                "and it fails past its end"
                if total < held.stepped
                else f"so its cycle would stop {span / total:.0%} of the way through, before the lr anneals"
            )
            raise RunCheckError(
                "scheduler",
                f"{said} with total_steps {total}, but the run steps it {span} times ({part}{per}), {what}; build "
                f"it with total_steps {fix}",
            )
        last = f"the last {unit} of its part" if part else f"the run's last {unit}"
        if (ends := _cosine_past_end(inner, span, last)) is not None:
            zero = "" if ends == _CLIMBS else ", or with eta_min above 0"
            raise RunCheckError(
                "scheduler",
                f"{said} with T_max {inner.T_max}, but the run steps it {span} times ({part}{per}), {ends}; build it "
                f"with T_max {fix}{zero}",
            )


def _watched(cfg: RunConfig, data: PreparedData, scheduler: Any, per_step: bool) -> str | None:
    """The epoch metric a schedule whose step() takes one is given: `scheduler.monitor`, val_loss by
    default; None for any other schedule.

    Raises:
        RunCheckError: a metric this task does not measure, a mode that reads it the wrong way round, a
            watching schedule stepped per batch, or `monitor` set for a schedule that watches nothing.
    """
    name, monitor = cfg.scheduler.name, cfg.scheduler.monitor
    # timm's step(epoch, metric=None) is given the metric only where monitor names one
    optional = scheduler is not None and monitor is not None and takes_epoch_and_metric(scheduler)
    if scheduler is None or not (takes_metric(scheduler) or optional):
        if monitor is not None:
            raise RunCheckError(
                "scheduler.monitor",
                f"scheduler {name!r} watches no metric (its step() takes none), so monitor: {monitor} would "
                f"do nothing; drop monitor, or use a schedule that watches one (name: plateau)",
            )
        return None
    watched = monitor or DEFAULT_MONITOR
    epoch_metrics = [m for m in data.metrics if m not in MEASURES]
    if watched not in epoch_metrics:
        raise RunCheckError(
            "scheduler.monitor",
            f"{watched!r} is not measured each epoch of this {data.task} task; choose one of: "
            f"{', '.join(epoch_metrics)}",
        )
    if per_step:
        raise RunCheckError("scheduler", f"{name!r} watches {watched} once per epoch; drop interval: step")
    mode = getattr(scheduler, "mode", None)  # a schedule of the user's may have none: it knows its metric
    if watched in HIGHER_IS_BETTER and mode == "min":  # it would cut the lr while the metric rises
        raise RunCheckError(
            "scheduler",
            f"{name!r} watches {watched}, which is better higher, but its mode is {mode}, which cuts the lr "
            f"while {watched} rises; set mode: max",
        )
    if watched not in HIGHER_IS_BETTER and mode == "max":  # it would cut the lr while the loss falls
        raise RunCheckError(
            "scheduler",
            f"{name!r} watches {watched}, which is better lower, but its mode is max, which cuts the lr "
            f"while {watched} falls; " + ("set mode: min" if monitor else "drop mode or set mode: min"),
        )
    return watched


def build_loss(
    cfg: RunConfig,
    data: PreparedData,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss the config names: a class or factory built with its arguments (told the task where its
    signature asks), or a plain loss function called with them; on `device` (a loss module's buffers, such
    as class weights, and the tensors given to a function).

    A list given for an argument annotated as a tensor (`weight: [1.0, 5.0]`, `pos_weight`) becomes one, of
    `dtype` (the model's floating-point type; float32 by default): YAML has no other way to write it."""
    loss = resolve_component("loss", cfg.loss.name)
    if one_logit(cfg, data):
        _check_binary_labels(cfg.loss.name, data)
    else:
        _check_loss_fits_task(cfg, data, loss)
    kwargs = _tensor_arguments(loss, cfg.loss.kwargs, device, dtype or torch.float32)
    _check_weights(cfg, data, loss, kwargs)
    if loss_inputs(loss, cfg.loss.kwargs):
        return functools.partial(loss, **kwargs)
    built: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = construct(
        loss, (), pick_kwargs(loss, {"task": data.task}), kwargs
    )
    if not callable(built):
        raise TypeError(
            f"loss {cfg.loss.name!r} returned {type(built).__name__}, not a loss (a torch.nn.Module or function "
            f"called with the prediction and the target)"
        )
    if isinstance(built, nn.Module) and device is not None:
        built = to_device(built, device)
    return built


def to_device(module: nn.Module, device: torch.device, _done: set[int] | None = None) -> nn.Module:
    """`module.to(device)`, and the tensors it (or a layer of it) keeps as plain attributes too: a user's
    `self.weight = torch.tensor(weights)` rather than a buffer, which `.to()` leaves where it is, so on a GPU
    the model or loss failed every step with 'Expected all tensors to be on the same device'. So do tensors
    in a plain list, tuple or dict attribute (`self.masks = [torch.ones(n), ...]`): lists and dicts are
    changed in place, so other references to them see the moved tensors; and so do layers kept there, as a
    frozen distillation teacher is (`self._teacher = [teacher]`, hidden from the optimizer and train())."""
    module = module.to(device)
    done = _done if _done is not None else set()
    done.update(id(m) for m in module.modules())  # moved by .to(), however else they are referenced

    def moved(value: Any) -> Any:
        if (
            isinstance(value, nn.Parameter) and value.device != device
        ):  # a frozen one, which torch does not hold
            return nn.Parameter(value.to(device), requires_grad=value.requires_grad)
        if isinstance(value, torch.Tensor) and value.device != device:
            return value.to(device)
        if isinstance(value, nn.Module) and id(value) not in done:
            to_device(value, device, done)  # in place, as nn.Module.to is
        return value

    for sub in module.modules():
        for key, value in list(vars(sub).items()):
            if key in _MODULE_KEYS:  # torch's own: parameters and buffers are moved by .to()
                continue
            if isinstance(value, torch.Tensor):
                if moved(value) is not value:
                    setattr(sub, key, moved(value))
            # a list or dict holding nothing to move stays untouched: it may be one that refuses changes
            # (torch.fx's immutable_list), or a long vocabulary not worth rewriting every trial
            elif isinstance(value, list) and any(moved(v) is not v for v in value):
                value[:] = [moved(v) for v in value]
            elif isinstance(value, dict) and any(moved(v) is not v for v in value.values()):
                value.update({k: moved(v) for k, v in value.items()})
            elif type(value) is tuple and any(moved(v) is not v for v in value):
                setattr(sub, key, tuple(moved(v) for v in value))
    return module


REGRESSION_LOSSES = "mse, l1, smooth_l1 or huber"


def _check_loss_fits_task(cfg: RunConfig, data: PreparedData, loss: Any) -> None:
    """A classification loss given float targets trains on nothing that makes sense, without an error:
    cross-entropy over one output is 0 whatever the model predicts, and binary cross-entropy of targets
    outside 0..1 goes below 0; so does negative log-likelihood of a built-in model's logits. A regression
    loss given class labels fails with a shape error. A `RunCheckError` naming the loss and what to use."""
    from hpotool.components import REGISTRIES

    F, name = nn.functional, cfg.loss.name

    def among(classes: tuple[type, ...], functions: tuple[Any, ...]) -> bool:
        return (isinstance(loss, type) and issubclass(loss, classes)) or any(loss is f for f in functions)

    if data.task == "classification":
        if among((nn.NLLLoss,), (F.nll_loss,)) and data.train.y.is_floating_point():
            raise RunCheckError(
                "loss",
                f"{name!r} takes one class id per sample, but y holds each sample's class probabilities (soft "
                f"labels); use cross_entropy, which takes probabilities, or give class ids (y.argmax(1))",
            )
        if among((nn.NLLLoss,), (F.nll_loss,)) and cfg.model.name in REGISTRIES["model"]:
            raise RunCheckError(
                "loss",
                f"{name!r} takes log-probabilities, but the built-in model {cfg.model.name!r} outputs logits, "
                f"whose negative log-likelihood falls below 0 without end while the model learns nothing; use "
                f"cross_entropy (log_softmax and NLL in one), or a model of your own ending in log_softmax",
            )
        numeric = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
        numbers = among(numeric, (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss))
        if numbers and data.train.y.is_floating_point():  # told "y holds class labels ... give floats"
            raise RunCheckError(
                "loss",
                f"{name!r} compares numbers, but y holds each sample's class probabilities (soft labels of a "
                f"classification task of {data.out_features} classes); use cross_entropy (or auto), which takes "
                f"probabilities, or to fit them as numbers return hpotool.datasets.Dataset(x, y, 'regression')",
            )
        if numbers:
            raise RunCheckError(
                "loss",
                f"{name!r} compares numbers, but y holds class labels (a classification task of "
                f"{data.out_features} classes); use cross_entropy (or auto), or give y as floating-point "
                f"numbers for regression",
            )
        return
    if among((nn.CrossEntropyLoss, nn.NLLLoss), (F.cross_entropy, F.nll_loss)) and data.out_features == 1:
        raise RunCheckError(
            "loss",
            f"{name!r} scores classes, but y holds one floating-point number per sample (a regression task), "
            f"over which it is 0 whatever the model predicts; use {REGRESSION_LOSSES}, or give y as integer "
            f"class labels for classification",
        )
    if among(
        (nn.BCEWithLogitsLoss, nn.BCELoss), (F.binary_cross_entropy_with_logits, F.binary_cross_entropy)
    ):
        low = float(min(data.train.y.min(), data.val.y.min()))
        high = float(max(data.train.y.max(), data.val.y.max()))
        if low < 0 or high > 1:
            raise RunCheckError(
                "loss",
                f"{name!r} takes targets from 0 to 1 (probabilities, or 0/1 labels), but y holds values from "
                f"{low:.4g} to {high:.4g}; for regression use {REGRESSION_LOSSES}",
            )


def _takes_class_weights(loss: Any) -> bool:
    """Whether `weight` is one weight per class: torch's cross-entropy and negative log-likelihood."""
    classes = (nn.CrossEntropyLoss, nn.NLLLoss)
    functions = (nn.functional.cross_entropy, nn.functional.nll_loss)
    return (isinstance(loss, type) and issubclass(loss, classes)) or any(loss is f for f in functions)


def _check_weights(cfg: RunConfig, data: PreparedData, loss: Any, kwargs: dict[str, Any]) -> None:
    """Class weights that do not fit the classes, as a `RunCheckError` saying what to give; torch said only
    that a shape did not broadcast, or that weight 'should be defined for all 2 classes'."""
    weight, pos_weight = kwargs.get("weight"), kwargs.get("pos_weight")
    if one_logit(cfg, data):
        if isinstance(pos_weight, torch.Tensor) and pos_weight.numel() != 1:
            raise RunCheckError(
                "loss",
                f"pos_weight: {format_choice(cfg.loss.kwargs['pos_weight'])} holds {pos_weight.numel()} weights; with one "
                f"logit per sample it is one number, the weight of class 1 against class 0 (pos_weight: 3.0 "
                f"counts each class-1 sample three times)",
            )
        if isinstance(weight, torch.Tensor) and weight.numel() > 1:
            pair = weight.reshape(-1).tolist() if weight.numel() == 2 else []
            ratio = (
                f"{pair[1] / pair[0]:g}" if pair and pair[0] > 0 else "N"
            )  # class 1's weight over class 0's
            raise RunCheckError(
                "loss",
                f"weight: {format_choice(cfg.loss.kwargs['weight'])}: for {cfg.loss.name!r} weight scales the loss of each "
                f"position in a batch, not of each class; to weight class 1 against class 0, give pos_weight: "
                f"{ratio} instead",
            )
    elif (
        data.task == "classification"
        and _takes_class_weights(loss)
        and isinstance(weight, torch.Tensor)
        and (weight.ndim != 1 or len(weight) != data.out_features)
    ):
        n, given = data.out_features, cfg.loss.kwargs["weight"]
        labels = _shown_labels(list(range(n)))
        if weight.ndim == 0:  # 'holds 1 weights' hid that a list was wanted
            example = f" (such as {[1.0] * (n - 1) + [float(given)]})" if n <= 10 else ""
            raise RunCheckError(
                "loss",
                f"weight: {format_choice(given)} is one number, but {cfg.loss.name!r} takes one weight per class: give a list "
                f"of {n} for the classes of y (labels {labels}), class 0's first{example}",
            )
        raise RunCheckError(
            "loss",
            f"weight: {format_choice(given)} holds {weight.numel()} weights for the {n} classes of y (labels {labels}); "
            f"give one weight per class, class 0's first",
        )


def _shown_labels(labels: list[int]) -> str:
    """`1 and 2`, `0, 1 and 2`, `0 to 9`."""
    if len(labels) > 4 and labels == list(range(labels[0], labels[-1] + 1)):
        return f"{labels[0]} to {labels[-1]}"
    shown = [str(v) for v in labels[:6]] + (["..."] if len(labels) > 6 else [])
    return ", ".join(shown[:-1]) + f" and {shown[-1]}"


def _check_binary_labels(name: str, data: PreparedData) -> None:
    """A one-logit loss (binary cross-entropy) takes the labels 0 and 1: a `RunCheckError` saying which
    labels y holds and how to number them, or to use cross_entropy for more than two classes."""
    if data.train.y.is_floating_point():  # soft labels: read as labels, truncated to 0, and one logit
        raise RunCheckError(  # against a column per class failed the step with a shape mismatch
            "loss",
            f"{name!r} scores two classes with one logit per sample, but y holds each sample's probabilities "
            f"over {data.out_features} classes (soft labels); use cross_entropy (or auto), which takes "
            f"probabilities, or for {data.out_features} independent targets from 0 to 1 return "
            f"hpotool.datasets.Dataset(x, y, 'multilabel')",
        )
    labels = sorted(
        int(v) for v in torch.unique(torch.cat([data.train.y.reshape(-1), data.val.y.reshape(-1)]))
    )
    if set(labels) <= {0, 1}:
        return
    if len(labels) == 2:
        raise RunCheckError(
            "loss",
            f"{name!r} is binary cross-entropy, which needs the labels 0 and 1, but y holds the labels "
            f"{_shown_labels(labels)}; number the two classes 0 and 1 in the dataset function: (y == {labels[1]})"
            f".long() turns {labels[1]} into 1 and {labels[0]} into 0",
        )
    raise RunCheckError(
        "loss",
        f"{name!r} scores two classes with one logit per sample, but y holds {len(labels)} classes (labels "
        f"{_shown_labels(labels)}); use loss: {{name: cross_entropy}}",
    )


def _tensor_arguments(
    obj: Callable[..., Any],
    kwargs: dict[str, Any],
    device: torch.device | None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """`kwargs` with each list of numbers, or number, that `obj`'s signature annotates as a Tensor made a
    tensor of `dtype` (`pos_weight: 3.0` for BCEWithLogitsLoss): float32 weights given to a float64 model's
    loss failed every step ('expected scalar type Double but found Float')."""
    import inspect

    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    out = dict(kwargs)
    for key, value in kwargs.items():
        param = params.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if param is None or not (isinstance(value, list) or number) or "Tensor" not in str(param.annotation):
            continue
        try:
            out[key] = torch.tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError):
            continue  # not numbers: the component says what it wants
    return out


def build_trainer(cfg: RunConfig, data: PreparedData, model: nn.Module) -> Trainer:
    """The optimizer, schedule and loss the config names, around `model`."""
    optimizer = build_optimizer(cfg, model)
    device = next((p.device for p in model.parameters()), None)
    loss = build_loss(cfg, data, device, model_dtype(model))
    return assemble_trainer(cfg, data, model, optimizer, build_schedule(cfg, data, optimizer), loss)


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating-point type of the model's first floating-point parameter (None without one)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def assemble_trainer(
    cfg: RunConfig,
    data: PreparedData,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Trainer:
    return Trainer(
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        task=data.task,
        one_logit=one_logit(cfg, data),
        batch_size=cfg.batch_size,
        scheduler=schedule.scheduler,
        scheduler_per_step=schedule.per_step,
        scheduler_metric=schedule.watched,
        scheduler_epoch=schedule.by_epoch,
        scheduler_updates=schedule.updates,
        grad_clip=cfg.grad_clip,
        seed=cfg.seed,
        classes=data.out_features if data.task == "classification" else None,
    )


def _noop(_: EpochResult) -> None:
    return None


DRY_RUN_SAMPLES = 8


class RunCheckError(ValueError):
    """A run that cannot train, found by `dry_run`: `where` is the config section or the step that failed."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail


@contextmanager
def _part(where: str, section: Any = None) -> Iterator[None]:
    """Turn what building or checking `where` raised into a `RunCheckError`; `section`, the run config's
    section built there (`cfg.model`), lets a TypeError name the argument spelt as the wrong type."""
    try:
        yield
    except RunCheckError:
        raise
    except Exception as exc:
        hint = _number_spelling_hint(where, section, exc) if section is not None else ""
        raise RunCheckError(where, described(exc) + hint) from None


def _number_spelling_hint(where: str, section: Any, exc: Exception) -> str:
    """For a TypeError building a section: an argument given as a whole float (`channels: 8.0`) where the
    component's default is an int, or as text that spells a number (`channels: '8'`), which torch's layers
    refuse deep inside their code ("empty(): argument 'size' must be tuple of ints, but found element of
    type float", "not all arguments converted during string formatting"), naming the user's line but not
    the key; empty where none is."""
    if not isinstance(exc, TypeError) or where != "model":
        return ""
    try:
        params = inspect.signature(resolve_component("model", section.name)).parameters
    except Exception:  # no signature to read: no hint
        return ""
    text = str(exc)
    for key, value in section.kwargs.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        counts = isinstance(default, int) and not isinstance(default, bool)
        if isinstance(value, float) and value.is_integer() and counts and "float" in text:
            return f"; {where}.{key} is {value!r}, a float, where {default!r}, its default, is an int: write {int(value)}"
        if (
            isinstance(value, str)
            and "str" in text
            and re.fullmatch(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?", value.strip())
        ):
            return f"; {where}.{key} is the text {value!r}: write {value.strip()} without quotes, a number"
    return ""


def data_failure(cfg: DataConfig, exc: Exception) -> str:
    """What went wrong loading `cfg`'s dataset, in one line: what its function returned that hpotool cannot
    train on, or the exception it raised."""
    if isinstance(exc, DataError):
        return f"{cfg.name!r} returned data hpotool cannot train on: {exc}"
    if isinstance(exc, SplitError):  # the section's own fractions, not the dataset, are to change
        return str(exc)
    return f"loading {cfg.name!r} failed: {described(exc)}"


def unused_classes_note(data: PreparedData, name: str) -> str | None:
    """A note when a classification's labels skip class ids: labels 1..K (as R and MATLAB number them) or
    sparse codes (10, 20) give the model an output for every id up to the largest, some for classes no
    sample has, and integer amounts (counts, ages) read as class ids look the same. None when 0..K-1 all
    occur (in the training and validation samples)."""
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


def load_checked(cfg: RunConfig, source: str) -> PreparedData:
    """`load_data`, with a failure as an `HpoError` naming `source` (the config file) and its data section."""
    try:
        return load_data(cfg.data, cfg.loss.name)
    except Exception as exc:
        raise HpoError(f"{source}: data: {data_failure(cfg.data, exc)}") from None


def check_batch_size(size: int, data: PreparedData, where: str) -> None:
    """An `HpoError` when a batch of `size` is larger than the training split: every epoch would be one
    smaller batch, so the run would not train as configured. `where` names the file and key."""
    problem = _batch_size_problem(size, data)
    if problem:
        raise HpoError(f"{where}: {problem}")


def _batch_size_problem(size: int, data: PreparedData) -> str | None:
    if len(data.train) >= size:
        return None
    return (
        f"{size} is larger than the {len(data.train)} training samples; "
        f"use a smaller batch_size or more data (data.subset_fraction, data.val_fraction)"
    )


def check_run(cfg: RunConfig, source: str) -> str | None:
    """What `train` checks before it trains: the device, the data, the batch size (as `optimize` does) and
    `dry_run`, each failure an `HpoError` naming `source`. A user's own training function is checked only
    for the device and whether hpotool can call it.

    Returns:
        The note `optimize` prints before trial 0 on class labels that skip ids (`unused_classes_note`), or
        None.
    """
    resolve_device(cfg.device, source)  # a user's training function is handed the device too
    if cfg.trainer is not None:
        from hpotool.user_trainer import check_user_trainer

        try:
            check_user_trainer(cfg, pruning=False)
        except HpoError as exc:
            raise HpoError(f"{source}: {exc}") from None
        return None
    data = load_checked(cfg, source)
    try:
        dry_run(cfg, data)
    except RunCheckError as exc:
        raise HpoError(f"{source}: {exc}") from None
    check_batch_size(cfg.batch_size, data, f"{source}: batch_size")  # after the step, as optimize does
    return unused_classes_note(data, cfg.data.name)


def _cross_entropy(loss_fn: Any) -> bool:
    """Whether `loss_fn` is torch's cross-entropy, which takes logits: the class or the function (with its
    arguments bound, as a loss section's keys bind them)."""
    fn = loss_fn.func if isinstance(loss_fn, functools.partial) else loss_fn
    return isinstance(fn, nn.CrossEntropyLoss) or fn is nn.functional.cross_entropy


def _probabilities(out: torch.Tensor) -> bool:
    """Whether every row of a (batch, classes) output is a probability distribution: in [0, 1], summing
    to 1 (a softmax's output; a model's logits are so only by a chance that does not happen)."""
    if not (out.is_floating_point() and out.ndim == 2 and out.shape[1] >= 2 and len(out) >= 2):
        return False
    values = out.detach().float()
    in_range = bool(((values >= 0) & (values <= 1)).all())
    return in_range and bool(torch.allclose(values.sum(dim=1), torch.ones_like(values[:, 0]), atol=1e-4))


def _one_tensor_hint(out: Any) -> str:
    """For a forward() that returns several things (`(logits, features)`, a Hugging Face output with
    `.logits`): which one to return, as the loss and the metrics take one tensor."""
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        kind = type(out).__name__
        return f"; forward() returns a {kind} of {len(out)}: return the one tensor the loss takes (such as the {kind}'s [0])"
    if isinstance(out, dict) and "logits" in out:
        return "; forward() returns a mapping: return its ['logits'] alone"
    return ""


def dry_run(cfg: RunConfig, data: PreparedData, *, step: bool = True) -> None:
    """Build the run's model, optimizer, schedule and loss and train them for one step on a few samples, on
    the CPU, so a mistake that would fail every trial (a bad argument, a loss that does not fit the task, a
    model whose output does not fit the targets, a schedule that cannot step) fails once, before any.
    `step=False` only builds them.

    Raises:
        RunCheckError: naming the section (model, optimizer, scheduler, loss) or the step that failed.
    """
    with _part("model", cfg.model):
        model = build_model(cfg, data)
        _check_trainable(model)
    with _part("optimizer"):
        optimizer = build_optimizer(cfg, model)
    with _part("scheduler"):
        schedule = build_schedule(cfg, data, optimizer)
    with _part("loss"):
        loss_fn = build_loss(cfg, data, dtype=model_dtype(model))
    trainer = assemble_trainer(cfg, data, model, optimizer, schedule, loss_fn)
    if not step:
        return
    # The step trains on a batch the run could take and validates on what the validation split has: a
    # validation split of one sample did not shrink the training batch to one (batch norm refuses that).
    # Copies: a model changing its input in place would otherwise change the data every trial shares.
    k = max(1, min(len(data.train), cfg.batch_size, DRY_RUN_SAMPLES))
    train = TensorData(data.train.x[:k].clone(), data.train.y[:k])
    val = TensorData(data.val.x[:DRY_RUN_SAMPLES].clone(), data.val.y[:DRY_RUN_SAMPLES])
    with _part("model"), torch.no_grad():
        model.eval()
        try:
            out = model(val.x[:])  # a view of its own: an unsqueeze_() in forward() leaves val.x's shape
        except Exception as exc:
            dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
            mismatch = (
                val.x.is_floating_point() or "type" in str(exc).lower()
            )  # not an embedding's index error
            if dtypes and val.x.dtype not in dtypes and val.x.dtype != torch.bool and mismatch:
                x_type, p_type = (str(t).removeprefix("torch.") for t in (val.x.dtype, next(iter(dtypes))))
                if val.x.is_floating_point() and p_type == "float32":  # float64 from numpy, kept by a Dataset
                    fix = "give x as float32 in the dataset function (x.float())"
                elif val.x.is_floating_point():  # a model built in float64 (.double()) or half precision
                    # "give x as float64 in the dataset function" was read as returning x.double(), which a
                    # plain (x, y) pair's cast to float32 undid: the same error again
                    fix = (
                        f"a plain (x, y) pair's x is cast to float32, so return "
                        f"hpotool.datasets.Dataset(x.to(torch.{p_type}), y, {data.task!r}) from the dataset "
                        f"function (it keeps x's type), or build the model in float32 (no .double() or .half())"
                    )
                else:  # uint8 pixels kept by a Dataset object (x is kept as it is, for token ids)
                    fix = (
                        f"give x as {p_type} in the dataset function, scaled as the model expects (pixels: "
                        f"x.float() / 255); integer x is kept as it is for a model that embeds token ids"
                    )
                raise RunCheckError(
                    "model",
                    f"{described(exc)}; the data's x is {x_type} and the model's parameters {p_type}: {fix}",
                ) from None
            if (more := _forward_needs_more(model, exc)) is not None:
                raise RunCheckError("model", f"{described(exc)}; {more}") from None
            if (channel := _needs_a_channel(exc, val.x)) is not None:
                raise RunCheckError("model", f"{described(exc)}; {channel}") from None
            if (flat := _needs_flat_input(exc, val.x)) is not None:
                raise RunCheckError("model", f"{described(exc)}; {flat}") from None
            if _wants_integer_ids(exc, val.x):
                raise RunCheckError(
                    "model",
                    f"{described(exc)}; the data's x is {str(val.x.dtype).removeprefix('torch.')} (hpotool casts "
                    f"the x of an (x, y) pair to float32): to keep integer x, such as token ids for an "
                    f"embedding, return hpotool.datasets.Dataset(x, y, {data.task!r}) from the dataset function",
                ) from None
            raise
        if not same_values(val.x, data.val.x[:DRY_RUN_SAMPLES]):
            raise RunCheckError("model", input_changed(model))
    n_val = len(val)
    want = (n_val, model_out_features(cfg, data)) if data.task == "classification" else tuple(val.y.shape)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape != want:
        given = f"has shape {shape}" if shape is not None else f"is a {type(out).__name__}"
        if data.task == "regression":
            need = "(batch, outputs), as the targets"
            # forward() ends in .squeeze(), as the user's 1-D targets suggest
            if shape == (n_val,) and want == (n_val, 1):
                need += (
                    ": hpotool gives a 1-D y to the loss as (n, 1), so return the output without .squeeze()"
                )
        elif data.task == "multilabel":
            need = "one logit per label, as the targets' columns"
        elif want[1] == 1:
            need = f"one logit per sample, as loss {cfg.loss.name!r} takes"
        else:
            need = "(batch, classes) logits"
            if shape == (n_val, 1) and want[1] == 2:  # one logit for two classes: the loss takes one
                need += "; for one logit per sample, set loss: {name: bce_with_logits}"
        raise RunCheckError(
            "model",
            f"its output for {n_val} samples {given}; this {data.task} task needs {want}: {need}"
            + _width_argument_hint(cfg, want[-1] if len(want) == 2 else None)
            + _one_tensor_hint(out),
        )
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise RunCheckError(
            "model",
            f"its output for {n_val} samples holds NaN or infinite values before any training; check "
            f"its forward()",
        )
    if data.task == "classification" and _cross_entropy(loss_fn) and _probabilities(out):
        # cross-entropy applies log_softmax itself: probabilities make a softmax of a softmax, whose loss
        # barely moves (every trial trained, slowly and badly, without a word)
        raise RunCheckError(
            "model",
            f"its output for {n_val} samples is probabilities, each row summing to 1 (a softmax at the end of "
            f"forward()), and the cross-entropy loss applies log_softmax itself, so it would train on a "
            f"softmax of a softmax: return the logits (drop the softmax; torch.softmax(model(x), 1) gives "
            f"probabilities when you need them)",
        )
    try:  # with autograd on, to tell whether a gradient reaches the parameters
        with warnings.catch_warnings(), _PairwiseWatch(model(val.x[:]), trainer.loss_targets(val).y) as watch:
            warnings.simplefilter("ignore")
            value = loss_fn(watch.pred, watch.target)
    except Exception:
        pass  # the training step below says what failed
    else:
        _check_loss_value(value, n_val)
        if watch.found is not None:
            _refuse_pairwise_loss(watch.found, n_val, data.task)
        _check_loss_is_a_mean(model, loss_fn, trainer.loss_targets(val))
    try:
        with warnings.catch_warnings():  # torch's warnings come again from the trial, if it gets that far
            warnings.simplefilter("ignore")
            trainer.fit(train, val, epochs=1)
    except Exception as exc:
        part = _raised_in(exc, model, optimizer)
        if isinstance(exc, NonFiniteLossError):
            hint = "lower optimizer.lr or set grad_clip"
        elif part == "optimizer":
            hint = (
                "the optimizer's step() raised it: check the optimizer section (hpotool calls step() with no "
                "arguments, once per batch)"
            )
        elif (
            part == "model"
            and k == 1
            and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        ):
            hint = (  # batch norm needs two samples a batch; hpotool's own batches never leave one over
                "batch norm cannot train on a batch of one sample: set batch_size to 2 or more"
                if cfg.batch_size == 1
                else "batch norm cannot train on a batch of one sample, and the training split holds one: "
                "use more data (data.val_fraction, data.subset_fraction)"
            )
        elif part == "model":
            hint = "the model raised it in training mode: check its forward()"
        elif (returned := _training_output(model, train.x)) is not None:
            hint = (
                f"in training mode the model returns a {returned}, not a tensor (in eval mode it returns one), "
                f"and hpotool gives the loss what forward() returns: return the prediction alone in training "
                f"mode too (torchvision's inception_v3 and googlenet: set aux_logits: false under model:)"
            )
        elif (bce := _probability_loss_hint(cfg, data)) is not None:
            hint = bce
        elif cfg.loss.kwargs:  # torch refuses an argument's value as the loss runs (huber's delta: 0)
            args = ", ".join(f"{k}: {format_choice(v)}" for k, v in cfg.loss.kwargs.items())
            hint = (
                f"check the loss section's arguments ({args}), and that the loss fits this {data.task} task"
            )
        else:
            hint = f"check that the loss fits this {data.task} task"
        samples = "1 sample" if k == 1 else f"{k} samples"
        raise RunCheckError("training", f"one step on {samples} failed: {described(exc)}; {hint}") from None


def _probability_loss_hint(cfg: RunConfig, data: PreparedData) -> str | None:
    """Why binary cross-entropy on probabilities (torch's BCELoss, or `binary_cross_entropy`) failed a
    classification's step, as the soft-label lines of `_check_loss_fits_task` say it; None for another loss
    or task. It takes probabilities after a sigmoid, but a classification model outputs a logit per class,
    and the step failed on "all elements of input should be between 0 and 1; check that the loss fits this
    classification task" (a size mismatch, for class labels)."""
    if data.task != "classification":
        return None
    try:
        loss = resolve_component("loss", cfg.loss.name)
    except HpoError:
        return None
    F, name, n = nn.functional, cfg.loss.name, data.out_features
    if not (loss is F.binary_cross_entropy or (isinstance(loss, type) and issubclass(loss, nn.BCELoss))):
        return None
    said = f"{name!r} takes probabilities (after a sigmoid), but the model outputs one logit per class"
    if data.train.y.is_floating_point():
        return (
            f"{said}, and y holds each sample's probabilities over {n} classes (soft labels); use cross_entropy "
            f"(or auto), which takes the logits and probabilities, or for {n} independent targets from 0 to 1 "
            f"return hpotool.datasets.Dataset(x, y, 'multilabel') with loss bce_with_logits"
        )
    return (
        f"{said}, and y holds class labels ({n} classes); use cross_entropy (or auto), or bce_with_logits "
        f"for two classes labelled 0 and 1 (one logit per sample)"
    )


def _training_output(model: nn.Module, x: torch.Tensor) -> str | None:
    """The type of what `model` returns for `x` in training mode when it is not a tensor (an Inception-style
    model's `(logits, aux_logits)`), else None. The check before it ran the model in eval mode, so the loss
    that then failed on the tuple was blamed, with "check that the loss fits this classification task"."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        model.train()
        try:
            out = model(x.clone())
        except Exception:
            return None
    return None if isinstance(out, torch.Tensor) else type(out).__name__


def _needs_flat_input(exc: BaseException, x: torch.Tensor) -> str | None:
    """How to fix a model whose layers met samples of several dimensions (digits' are 1x8x8 images) as if
    they were flat: `nn.Linear(in_features, ...)` given `(batch, 1, 8, 8)` said only "mat1 and mat2 shapes
    cannot be multiplied (64x8 and 64x16)". None for another error, or flat samples."""
    if x.dim() <= 2 or not isinstance(exc, RuntimeError):
        return None
    if "shapes cannot be multiplied" not in str(exc):  # a linear layer's, on the last dimension alone
        return None
    sample = tuple(x.shape[1:])
    return (
        f"each sample of the data's x is shaped {sample}, and in_features ({int(np.prod(sample))}) is that size "
        f"flattened: flatten it first in forward() (x = x.flatten(1)), as the built-in mlp does, or ask for "
        f"input_shape"
    )


def _needs_a_channel(exc: BaseException, x: torch.Tensor) -> str | None:
    """How to fix samples without the channel dimension a convolution takes: sequences shaped (length,) for
    a Conv1d, images (height, width) for a Conv2d. torch reads such a batch as one unbatched sample whose
    channels are the batch ("expected input[1, 8, 32] to have 1 channels, but got 8 channels"), naming
    neither the data nor the fix. None for another error."""
    n = len(x)
    pattern = rf"expected input\[1, {n}(?:, \d+)+\] to have \d+ channels, but got {n} channels"
    if not isinstance(exc, RuntimeError) or re.search(pattern, str(exc)) is None:
        return None
    sample = tuple(x.shape[1:])
    with_channel = (1, *sample)
    return (
        f"each sample of the data's x is shaped {sample}, without a channel dimension, so the convolution read "
        f"the batch of {n} as the channels of one sample: give the samples a channel dimension, {with_channel}, "
        f"in the dataset function (x.unsqueeze(1); input_shape follows), or at the start of forward() (x = "
        f"x.unsqueeze(1)) where the model's channels do not come from input_shape"
    )


def _forward_needs_more(model: nn.Module, exc: BaseException) -> str | None:
    """What to do where the model's forward() requires more than the one batch tensor hpotool calls it with
    (`forward(self, x, mask)`), naming its file and line; None when it does not. The step said only
    "Net.forward() missing 1 required positional argument: 'mask'", without where or why."""
    if not isinstance(exc, TypeError):
        return None
    forward = inspect.unwrap(type(model).forward)
    try:
        params = list(inspect.signature(forward).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return None
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if len(required) < 2 or not any(repr(n) in str(exc) for n in required[1:]):
        return None
    try:
        file = inspect.getsourcefile(forward)
        line = inspect.getsourcelines(forward)[1]
    except (OSError, TypeError):
        file = None
    where = ""
    if file is not None:
        path = os.path.abspath(file)
        shown = os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
        where = f" ({shown}:{line})"
    extra = ", ".join(required[1:])
    defaults = ", ".join(f"{n}=None" for n in required[1:])
    return (
        f"hpotool calls forward(x) with one batch tensor, and {type(model).__name__}.forward{where} also "
        f"requires {extra}: give {'them defaults' if len(required) > 2 else 'it a default'} "
        f"(def forward(self, {required[0]}, {defaults})), or wrap the model in a module whose forward takes "
        f"x alone"
    )


def _wants_integer_ids(exc: BaseException, x: torch.Tensor) -> bool:
    """Whether the model refused floating-point `x` of whole numbers where it takes integer indices (an
    embedding's "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long,
    Int; but got torch.FloatTensor"): token ids a dataset returned as an (x, y) pair, which hpotool cast to
    float32, so the user, who gave integers, read that the model got floats."""
    if not x.is_floating_point() or not bool((x == x.round()).all()):
        return False
    text = str(exc).lower()
    return any(word in text for word in ("indices", "index tensor", "long"))


# What other libraries call the output width (torchvision's num_classes): hpotool passes out_features.
WIDTH_NAMES = ("num_classes", "n_classes", "classes", "num_outputs", "n_outputs", "output_dim", "output_size")


def _width_argument_hint(cfg: RunConfig, width: int | None) -> str:
    """Where the model takes its output width under another name than out_features, which the config leaves
    at its default: how to set it."""
    cls = resolve_component("model", cfg.model.name)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return ""
    for name in WIDTH_NAMES:
        param = params.get(name)
        if param is not None and name not in cfg.model.kwargs and "out_features" not in params:
            default = "" if param.default is inspect.Parameter.empty else f" ({param.default!r} by default)"
            value = f"{name}: {width}" if width is not None else name
            return (
                f"; {cfg.model.name} takes its width as {name}{default}, which hpotool does not set (it passes "
                f"out_features): set {value} under model:, or name the argument out_features"
            )
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    given = {*WIDTH_NAMES, "out_features"} & set(cfg.model.kwargs)
    if var_kw and width is not None and "out_features" not in params and not given:
        return (  # torchvision's resnet18(*, weights=None, progress=True, **kwargs) hands num_classes on
            f"; {cfg.model.name} takes **kwargs and names no width: if it hands them to a model taking "
            f"num_classes (torchvision's and timm's do), set num_classes: {width} under model:"
        )
    return ""


def _check_trainable(model: nn.Module) -> None:
    """A model with something to train: with no parameter the optimizer said "ValueError: optimizer got an
    empty parameter list", and with every parameter frozen the loss was blamed ("does not depend on the
    model's parameters ... compute it from the prediction with differentiable torch operations").

    Raises:
        RunCheckError: naming the model and what to change.
    """
    params = list(model.parameters())
    name = type(model).__name__
    if not params:
        raise RunCheckError(
            "model",
            f"{name} has no parameters, so there is nothing to train; build its layers as attributes in "
            f"__init__ (self.fc = nn.Linear(in_features, out_features))",
        )
    if not any(p.requires_grad for p in params):
        raise RunCheckError(
            "model",
            f"every one of {name}'s {len(params)} parameters is frozen (requires_grad=False), so training would "
            f"change nothing; leave the layers to train trainable (freeze a backbone, not the head)",
        )


def _check_loss_value(value: Any, n: int) -> None:
    """The loss of the untrained model's (finite) output on `n` samples is one finite number that a
    gradient flows back from: what backward() and the Trainer need, or only their own errors would say so.

    Raises:
        RunCheckError: naming the loss and what to change.
    """
    if isinstance(value, tuple | list | dict):  # (loss, logs) or {"loss": ...}: not a number to fix
        kind = type(value).__name__
        got = (
            f"a {kind} with keys {', '.join(map(repr, value))}"
            if isinstance(value, dict)
            else f"a {kind} of {len(value)} items"
        )
        raise RunCheckError(
            "loss",
            f"it returned {got} for {n} samples, not a tensor; hpotool calls backward() on the loss alone: "
            f"return the loss tensor by itself",
        )
    if not isinstance(value, torch.Tensor):
        raise RunCheckError(
            "loss",
            f"it returned {type(value).__name__} for {n} samples, not a tensor; hpotool calls backward() on it: "
            f"compute it from the prediction with torch operations (no .item())",
        )
    if value.numel() != 1:  # backward() would say only "scalar outputs"
        raise RunCheckError(
            "loss",
            f"it returned shape {tuple(value.shape)} for {n} samples, not one number; hpotool needs the "
            f"batch's mean loss: return loss.mean()",
        )
    if not bool(torch.isfinite(value.detach())):  # the Trainer would blame the lr
        raise RunCheckError(
            "loss",
            f"it returned {value.item()} for the untrained model's finite output on {n} samples, before any "
            f"step: check the loss function",
        )
    if not value.requires_grad:
        raise RunCheckError(
            "loss",
            f"its value for {n} samples does not depend on the model's parameters (no gradient reaches them): "
            f"compute it from the prediction with differentiable torch operations (no .item(), .detach(), "
            f"argmax or comparisons)",
        )


class _PairwiseWatch(TorchFunctionMode):
    """Watches a loss function's torch operations for the prediction compared with the targets across
    samples: a 1-D (n,) tensor from one against an (n, 1) one from the other, which broadcast to (n, n).
    `(pred.squeeze() - target) ** 2` with hpotool's (n, 1) regression targets (or a 1-D target against the
    (n, 1) output) gave a scalar all the same: the mean over every prediction against every target, which
    trained towards the targets' mean with no error. `found` holds the two shapes and the result's."""

    def __init__(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        super().__init__()
        self.pred, self.target = pred, target
        self.found: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None
        # where each tensor came from, by id; `keep` holds them, so no id is reused while the loss runs
        self._origin: dict[int, frozenset[str]] = {
            id(pred): frozenset({"pred"}),
            id(target): frozenset({"target"}),
        }
        self._keep: list[torch.Tensor] = [pred, target]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        inputs = [a for a in (*args, *(kwargs or {}).values()) if isinstance(a, torch.Tensor)]
        origin = frozenset().union(*(self._origin.get(id(t), frozenset()) for t in inputs))
        if isinstance(result, torch.Tensor):
            outputs = [result]
        elif isinstance(result, tuple | list):
            outputs = [r for r in result if isinstance(r, torch.Tensor)]
        else:
            outputs = []
        for out in outputs:
            self._keep.append(out)
            self._origin[id(out)] = origin
        if self.found is None and len(inputs) == 2 and len(outputs) == 1:
            n = len(self.pred)
            sides = {self._origin.get(id(t), frozenset()) for t in inputs}
            shapes = sorted((tuple(t.shape) for t in inputs), key=len)
            out_shape = tuple(outputs[0].shape)
            if (
                n > 1
                and sides == {frozenset({"pred"}), frozenset({"target"})}
                and shapes[0] == (n,)
                and len(shapes[1]) == 2
                and shapes[1] == (n, 1)
                and out_shape == (n, n)
            ):
                self.found = (shapes[0], shapes[1], out_shape)
        return result


@torch.no_grad()
def _check_loss_is_a_mean(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], val: TensorData
) -> None:
    """A loss whose value on a batch is the sum of its values on the batch's two halves sums over the
    samples (reduction 'sum' inside a user's function): hpotool weights each batch's loss by its size, so
    train_loss and val_loss came out scaled by the batch size, val_loss by its own (the validation split's)
    where a built-in loss's reduction: sum is refused. Only exact additivity counts, which a mean (half the
    sum of the halves) or a loss pairing the samples does not show; a loss of 0, or one that raises or
    returns other than one finite number, is left to the other checks.

    Raises:
        RunCheckError: naming the loss, the three values and the fix.
    """
    half = len(val) // 2
    if half < 1:
        return
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = model(val.x[: 2 * half].clone())
            y = val.y[: 2 * half]
            values = [loss_fn(out, y), loss_fn(out[:half], y[:half]), loss_fn(out[half:], y[half:])]
        except Exception:
            return
    if not all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in values):
        return
    whole, first, second = (float(v.detach().float()) for v in values)
    if not all(math.isfinite(v) for v in (whole, first, second)) or min(abs(first), abs(second)) == 0:
        return
    if math.isclose(whole, first + second, rel_tol=1e-4) and not math.isclose(
        whole, (first + second) / 2, rel_tol=1e-2
    ):
        raise RunCheckError(
            "loss",
            f"its value for {2 * half} samples is the sum of its values for their two halves of {half}, not "
            f"their mean: it sums over the samples, so train_loss and val_loss would grow with "
            f"the batch and the validation split's sizes; hpotool needs each batch's mean loss (it weights "
            f"batches by their size): return the mean, .mean() or reduction='mean' (for larger steps, raise "
            f"optimizer.lr)",
        )


def _refuse_pairwise_loss(found: tuple[tuple[int, ...], ...], n: int, task: str) -> None:
    vector, column, out = found
    same = (
        "the model's output and the targets have the same shape (batch, outputs): compare them as they come"
        if task != "classification"
        else "compare each sample's prediction with its own target"
    )
    raise RunCheckError(
        "loss",
        f"for {n} samples it compares the prediction and the targets as shapes {vector} and {column}, which "
        f"broadcast to {out}: every prediction against every target, so its value is not the batch's loss "
        f"(a .squeeze() or .view(-1) on one of them?); {same}, or to compare every pair on purpose write "
        f"pred.reshape(-1, 1) - target.reshape(1, -1)",
    )


def _raised_in(exc: BaseException, model: nn.Module, optimizer: torch.optim.Optimizer) -> str | None:
    """ "model" or "optimizer" when the innermost method of one of them on the traceback is the model's (or
    one of its layers') or the optimizer's, else None (the loss, or hpotool's own code)."""
    layers = {id(m) for m in model.modules()}
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        if owner is optimizer:
            return "optimizer"
        if isinstance(owner, nn.Module):
            return "model" if id(owner) in layers else None
    return None


def _device_picked(cfg: RunConfig) -> RunConfig:
    """`cfg` with device `auto` replaced by the device it picks, for a user's training function: given
    'auto', which torch.device() refuses, every trial of the default config failed."""
    if cfg.device != "auto":
        return cfg
    data = {**cfg.model_dump(mode="python"), "device": str(resolve_device("auto"))}
    return RunConfig.model_validate(data, context={CHECK_COMPONENTS: False})


def train_run(
    cfg: RunConfig,
    *,
    on_epoch_end: Callable[[EpochResult], None] = _noop,
    history: list[dict[str, float]] | None = None,
) -> RunResult:
    """Train `cfg` from scratch and return its final metrics.

    Args:
        cfg: the run.
        on_epoch_end: called after each epoch; raise from it to stop training.
        history: filled with one row per epoch as training goes, so a caller still has the rows when
            training stops with an exception.
    """
    start = time.perf_counter()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    rows = history if history is not None else []
    if cfg.trainer is not None:  # the user's own training function
        from hpotool.user_trainer import run_user_trainer

        seed_everything(cfg.seed)
        metrics = run_user_trainer(_device_picked(cfg), on_epoch_end, rows)
        return RunResult(metrics, rows, None, time.perf_counter() - start, "user code")
    device = resolve_device(cfg.device)
    data = load_data(cfg.data, cfg.loss.name)
    # A trial's batch_size and data that fail together only inside the searched ranges, or with three or
    # more searched keys (the check before trial 0 tries ends, in pairs), trained on one smaller batch an
    # epoch while the study recorded the batch_size it was given.
    problem = _batch_size_problem(cfg.batch_size, data)
    if problem:
        raise RunCheckError("batch_size", problem)
    train, val = _on_device(data, device)
    seed_everything(cfg.seed)
    model = to_device(build_model(cfg, data), device)
    trainer = build_trainer(cfg, data, model)

    def record(result: EpochResult) -> None:
        rows.append(result.as_row())
        on_epoch_end(result)

    last = trainer.fit(train, val, epochs=cfg.epochs, on_epoch_end=record)
    metrics = {
        **last.metrics,
        "n_params": float(sum(p.numel() for p in model.parameters())),
        "epoch_time": sum(r["epoch_time"] for r in rows) / max(1, len(rows)),
    }
    return RunResult(metrics, rows, model, time.perf_counter() - start, str(device))
