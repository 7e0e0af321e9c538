"""The model's output for a few validation samples, checked against the task before trial 0: the shape the
targets and loss need, finite values, and logits rather than probabilities for a cross-entropy loss."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from hpotool.config import RunConfig
from hpotool.data import PreparedData
from hpotool.datasets import TensorData
from hpotool.errors import RunCheckError
from hpotool.model_hints import fixed_width_hint, one_tensor_hint, width_argument_hint
from hpotool.parts import model_out_features


def check_output(cfg: RunConfig, data: PreparedData, val: TensorData, out: Any, loss_fn: Any) -> None:
    """The model's output for `val` fits the task: its shape, finite values, and logits, not probabilities,
    for a cross-entropy loss.

    Raises:
        RunCheckError: naming what the output is and what the task needs.
    """
    n_val = len(val)
    want = (n_val, model_out_features(cfg, data)) if data.task == "classification" else tuple(val.y.shape)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape != want:
        given = f"has shape {shape}" if shape is not None else f"is a {type(out).__name__}"
        raise RunCheckError(
            "model",
            f"its output for {n_val} samples {given}; this {data.task} task needs {want}: "
            f"{_shape_needed(cfg, data.task, shape, want, n_val)}"
            + width_argument_hint(cfg, want[-1] if len(want) == 2 else None)
            + _fixed_width(cfg, shape, want, n_val)
            + one_tensor_hint(out),
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


def _fixed_width(cfg: RunConfig, shape: tuple[int, ...] | None, want: tuple[int, ...], n_val: int) -> str:
    """`fixed_width_hint` for an output of a sample per row whose columns are not the task's."""
    if shape is None or len(shape) != 2 or len(want) != 2 or shape[0] != n_val:
        return ""
    return fixed_width_hint(cfg, shape[1], want[1])


def _shape_needed(
    cfg: RunConfig, task: str, shape: tuple[int, ...] | None, want: tuple[int, ...], n_val: int
) -> str:
    """The output shape the task needs, in words, with the fix for a common near miss."""
    if task == "regression":
        need = "(batch, outputs), as the targets"
        # forward() ends in .squeeze(), as the user's 1-D targets suggest
        if shape == (n_val,) and want == (n_val, 1):
            need += ": hpotool gives a 1-D y to the loss as (n, 1), so return the output without .squeeze()"
    elif task == "multilabel":
        need = "one logit per label, as the targets' columns"
    elif want[1] == 1:
        need = f"one logit per sample, as loss {cfg.loss.name!r} takes"
    else:
        need = "(batch, classes) logits"
        if shape == (n_val, 1) and want[1] == 2:  # one logit for two classes: the loss takes one
            need += "; for one logit per sample, set loss: {name: bce_with_logits}"
    return need


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
