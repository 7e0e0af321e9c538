"""What `dry_run` checks of the loss's value on the untrained model: one finite number a gradient flows
back from, a mean over the batch (not a sum), of each prediction against its own target."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from hpotool.components import resolve_component
from hpotool.config import RunConfig
from hpotool.data import PreparedData
from hpotool.datasets import TensorData
from hpotool.errors import HpoError, RunCheckError


def check_loss_value(value: Any, n: int) -> None:
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
            f"step, so the loss itself computes it: guard its log, division or sqrt against 0 (torch.log(p + 1e-8), "
            f"or torch.nn.functional.log_softmax in place of log(softmax))",
        )
    if not value.requires_grad and not torch.is_grad_enabled():  # the loss was not to blame
        raise RunCheckError(
            "model",
            "torch's gradients are off (torch.set_grad_enabled(False) at a module's top level in your code, or "
            "a torch.no_grad() entered and not left), so no step could train the model: remove it, and turn "
            "gradients off only inside a with torch.no_grad(): block",
        )
    if not value.requires_grad:
        raise RunCheckError(
            "loss",
            f"its value for {n} samples does not depend on the model's parameters (no gradient reaches them): "
            f"compute it from the prediction with differentiable torch operations (no .item(), .detach(), "
            f"argmax or comparisons)",
        )


class PairwiseWatch(TorchFunctionMode):
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
def check_loss_is_a_mean(
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


def refuse_pairwise_loss(found: tuple[tuple[int, ...], ...], n: int, task: str) -> None:
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


def probability_loss_hint(cfg: RunConfig, data: PreparedData) -> str | None:
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
