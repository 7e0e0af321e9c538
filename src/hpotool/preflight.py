"""The checks before any trial trains: `check_run` (what `train` checks) and `dry_run`, which builds the
run's parts and trains them one step on a few samples, so a mistake that would fail every trial fails
once, naming the config section and the fix."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from hpotool.config import RunConfig
from hpotool.criterion import build_loss
from hpotool.data import PreparedData
from hpotool.datasets import TensorData
from hpotool.errors import RunCheckError
from hpotool.loss_checks import PairwiseWatch, check_loss_is_a_mean, check_loss_value, refuse_pairwise_loss
from hpotool.lr_schedule import build_schedule
from hpotool.model_hints import (
    fixed_input_hint,
    forward_needs_more,
    needs_a_channel,
    needs_flat_input,
    number_spelling_hint,
    wants_integer_ids,
)
from hpotool.output_checks import check_output
from hpotool.parts import (
    assemble_trainer,
    build_model,
    build_optimizer,
    model_dtype,
    model_out_features,
    shape_arguments,
)
from hpotool.step_faults import building_hint, step_hint
from hpotool.trainer import input_changed, same_values
from hpotool.user_code import described, raised_by_hpotool, refusing_exit, user_frame, user_line

DRY_RUN_SAMPLES = 8


@contextmanager
def _part(where: str, section: Any = None) -> Iterator[None]:
    """Turn what building or checking `where` raised into a `RunCheckError`; `section`, the run config's
    section built there (`cfg.model`), lets it name the argument spelt as the wrong type, or the arguments
    the section sets where torch's code refused one of them."""
    try:
        with refusing_exit():
            yield
    except RunCheckError:
        raise
    except Exception as exc:
        hint = building_hint(where, section, exc) if section is not None else ""
        raise RunCheckError(where, described(exc) + hint) from None


def dry_run(cfg: RunConfig, data: PreparedData, *, step: bool = True) -> None:
    """Build the run's model, optimizer, schedule and loss and train them for one step on a few samples, on
    the CPU, so a mistake that would fail every trial (a bad argument, a loss that does not fit the task, a
    model whose output does not fit the targets, a schedule that cannot step) fails once, before any.
    `step=False` only builds them.

    Raises:
        RunCheckError: naming the section (model, optimizer, scheduler, loss) or the step that failed.
    """
    with _part("model", cfg.model):
        model = _build_model(cfg, data)
        _check_trainable(model)
    with _part("optimizer", cfg.optimizer):
        optimizer = build_optimizer(cfg, model)
    with _part("scheduler", cfg.scheduler):
        schedule = build_schedule(cfg, data, optimizer)
    with _part("loss", cfg.loss):
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
    out = _forward(cfg, model, val, data)
    check_output(cfg, data, val, out, loss_fn)
    _check_loss(model, loss_fn, trainer, val, data.task)
    _train_one_step(cfg, data, trainer, train, val, k)


def _build_model(cfg: RunConfig, data: PreparedData) -> nn.Module:
    """`build_model`, where an error in the user's own model code names the shapes hpotool passed it: a
    constructor's `c, h, w = input_shape` on samples without a channel said only "not enough values to
    unpack (expected 3, got 2)", not what the data gave it.

    Raises:
        RunCheckError: the user's model code failed given the data's shapes.
    """
    try:
        return build_model(cfg, data)
    except Exception as exc:
        if user_frame(exc) is None or raised_by_hpotool(exc) or number_spelling_hint("model", cfg.model, exc):
            raise  # not the user's code, or a number spelt wrong in the config: `_part` says so
        passed = shape_arguments(cfg, data.input_shape, model_out_features(cfg, data))
        # Only where the line that raised reads the shapes and none of the config's arguments: an error of
        # those (`range(depth)` given 2.5, `width` not a multiple of 3) is the config's, not the data's.
        words = set(re.findall(r"\w+", user_line(exc)))
        if not words & set(passed) or words & set(cfg.model.kwargs):
            raise
        said = ", ".join(f"{k}={v!r}" for k, v in passed.items())
        shape = "" if "input_shape" in passed else f" (each sample of x is shaped {tuple(data.input_shape)})"
        raise RunCheckError(
            "model", f"{described(exc)}; hpotool passed it {said}, from the data{shape}"
        ) from None


def _forward(cfg: RunConfig, model: nn.Module, val: TensorData, data: PreparedData) -> Any:
    """The model's output for the validation samples in eval mode, which must leave its input as it was.

    Raises:
        RunCheckError: the forward pass failed (with the fix, where the error tells it) or changed its input.
    """
    with _part("model"), torch.no_grad():
        model.eval()
        try:
            out = model(val.x[:])  # a view of its own: an unsqueeze_() in forward() leaves val.x's shape
        except Exception as exc:
            fix = _forward_fix(exc, cfg, model, val.x, data.task)
            if fix is not None:
                raise RunCheckError("model", f"{described(exc)}; {fix}") from None
            raise
        if not same_values(val.x, data.val.x[:DRY_RUN_SAMPLES]):
            raise RunCheckError("model", input_changed(model))
    return out


def _forward_fix(exc: Exception, cfg: RunConfig, model: nn.Module, x: torch.Tensor, task: str) -> str | None:
    """What to change where the forward pass of `x` raised `exc` for a known reason, or None."""
    if (dtype := _dtype_fix(exc, model, x, task)) is not None:
        return dtype
    if (more := forward_needs_more(model, exc)) is not None:
        return more
    if (channel := needs_a_channel(exc, x)) is not None:
        return channel
    if (flat := needs_flat_input(exc, x, model)) is not None:
        return flat
    if (fixed := fixed_input_hint(exc, x, cfg)) is not None:
        return fixed
    if wants_integer_ids(exc, x):
        return (
            f"the data's x is {str(x.dtype).removeprefix('torch.')} (hpotool casts "
            f"the x of an (x, y) pair to float32): to keep integer x, such as token ids for an "
            f"embedding, return hpotool.datasets.Dataset(x, y, {task!r}) from the dataset function"
        )
    return None


def _dtype_fix(exc: Exception, model: nn.Module, x: torch.Tensor, task: str) -> str | None:
    """Where the data's x and the model's parameters differ in type and `exc` says so: the two types and
    what to change; else None."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    mismatch = x.is_floating_point() or "type" in str(exc).lower()  # not an embedding's index error
    if not (dtypes and x.dtype not in dtypes and x.dtype != torch.bool and mismatch):
        return None
    x_type, p_type = (str(t).removeprefix("torch.") for t in (x.dtype, next(iter(dtypes))))
    if x.is_floating_point() and p_type == "float32":  # float64 from numpy, kept by a Dataset
        fix = "give x as float32 in the dataset function (x.float(); a numpy array: x.astype(np.float32))"
    elif x.is_floating_point() and p_type == str(torch.get_default_dtype()).removeprefix("torch."):
        # torch.set_default_dtype(torch.float64) in the user's module: the model called no .double()
        fix = (
            f"torch's default dtype is {p_type} (your code called torch.set_default_dtype(torch.{p_type})), so "
            f"every model is built in {p_type}, and a plain (x, y) pair's x is cast to float32: return "
            f"hpotool.datasets.Dataset(x.to(torch.{p_type}), y, {task!r}) from the dataset function (it keeps "
            f"x's type), or leave the default dtype at float32"
        )
    elif x.is_floating_point():  # a model built in float64 (.double()) or half precision
        # "give x as float64 in the dataset function" was read as returning x.double(), which a
        # plain (x, y) pair's cast to float32 undid: the same error again
        fix = (
            f"a plain (x, y) pair's x is cast to float32, so return "
            f"hpotool.datasets.Dataset(x.to(torch.{p_type}), y, {task!r}) from the dataset "
            f"function (it keeps x's type), or build the model in float32 (no .double() or .half())"
        )
    else:  # uint8 pixels kept by a Dataset object (x is kept as it is, for token ids)
        fix = (
            f"give x as {p_type} in the dataset function, scaled as the model expects (pixels: "
            f"x.float() / 255); integer x is kept as it is for a model that embeds token ids"
        )
    return f"the data's x is {x_type} and the model's parameters {p_type}: {fix}"


def _check_loss(model: nn.Module, loss_fn: Any, trainer: Any, val: TensorData, task: str) -> None:
    """The untrained model's loss on `val`: a finite mean over the samples, which a gradient carries back to
    the parameters, and no loss over pairs of samples. A loss that raises is left to the training step.

    Raises:
        RunCheckError: naming what is wrong with the loss value.
    """
    n_val = len(val)
    try:  # with autograd on, to tell whether a gradient reaches the parameters
        with (
            refusing_exit(),
            warnings.catch_warnings(),
            PairwiseWatch(model(val.x[:]), trainer.loss_targets(val).y) as watch,
        ):
            warnings.simplefilter("ignore")
            value = loss_fn(watch.pred, watch.target)
    except Exception:
        pass  # the training step says what failed
    else:
        check_loss_value(value, n_val)
        if watch.found is not None:
            refuse_pairwise_loss(watch.found, n_val, task)
        check_loss_is_a_mean(model, loss_fn, trainer.loss_targets(val))


def _train_one_step(
    cfg: RunConfig, data: PreparedData, trainer: Any, train: TensorData, val: TensorData, k: int
) -> None:
    """Train one epoch of one batch (`k` samples of `train`), as every trial will.

    Raises:
        RunCheckError: naming what raised there and what to check.
    """
    try:
        with warnings.catch_warnings(), refusing_exit():  # torch's warnings come again from the trial
            warnings.simplefilter("ignore")
            trainer.fit(train, val, epochs=1)
    except Exception as exc:
        hint = step_hint(exc, cfg, data, trainer, train.x, k)
        samples = "1 sample" if k == 1 else f"{k} samples"
        raise RunCheckError("training", f"one step on {samples} failed: {described(exc)}; {hint}") from None


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
