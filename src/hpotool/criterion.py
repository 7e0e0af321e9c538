"""The loss of a run: built with its arguments on the model's device and type, and checked against the
task and its labels (a classification loss on floats, class weights that do not fit the classes)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hpotool.components import loss_inputs, resolve_component
from hpotool.config import RunConfig
from hpotool.data import PreparedData, one_logit, takes_class_weights
from hpotool.device import to_device
from hpotool.errors import RunCheckError
from hpotool.formatting import format_choice, returned_kind
from hpotool.signatures import construct, pick_kwargs


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
            f"loss {cfg.loss.name!r} returned {returned_kind(built)}, not a loss (a torch.nn.Module or function "
            f"called with the prediction and the target); return the loss it builds"
        )
    if isinstance(built, nn.Module) and device is not None:
        built = to_device(built, device)
    return built


REGRESSION_LOSSES = "mse, l1, smooth_l1 or huber"


def _check_loss_fits_task(cfg: RunConfig, data: PreparedData, loss: Any) -> None:
    """A classification loss given float targets trains on nothing that makes sense, without an error:
    cross-entropy over one output is 0 whatever the model predicts, and binary cross-entropy of targets
    outside 0..1 goes below 0; so does negative log-likelihood of a built-in model's logits. A regression
    loss given class labels fails with a shape error. A `RunCheckError` naming the loss and what to use."""
    if data.task == "classification":
        _check_classification_loss(cfg, data, loss)
    else:
        _check_regression_loss(cfg, data, loss)


def _among(loss: Any, classes: tuple[type, ...], functions: tuple[Any, ...]) -> bool:
    """Whether `loss` is one of `classes` (or a subclass) or one of `functions`."""
    return (isinstance(loss, type) and issubclass(loss, classes)) or any(loss is f for f in functions)


def _check_classification_loss(cfg: RunConfig, data: PreparedData, loss: Any) -> None:
    """A `RunCheckError` for NLL of soft labels or of a built-in model's logits, or a loss that compares
    numbers, given class labels or probabilities."""
    from hpotool.components import REGISTRIES

    F, name = nn.functional, cfg.loss.name
    if _among(loss, (nn.NLLLoss,), (F.nll_loss,)) and data.train.y.is_floating_point():
        raise RunCheckError(
            "loss",
            f"{name!r} takes one class id per sample, but y holds each sample's class probabilities (soft "
            f"labels); use cross_entropy, which takes probabilities, or give class ids (y.argmax(1))",
        )
    if _among(loss, (nn.NLLLoss,), (F.nll_loss,)) and cfg.model.name in REGISTRIES["model"]:
        raise RunCheckError(
            "loss",
            f"{name!r} takes log-probabilities, but the built-in model {cfg.model.name!r} outputs logits, "
            f"whose negative log-likelihood falls below 0 without end while the model learns nothing; use "
            f"cross_entropy (log_softmax and NLL in one), or a model of your own ending in log_softmax",
        )
    numeric = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
    numbers = _among(loss, numeric, (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss))
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


def _check_regression_loss(cfg: RunConfig, data: PreparedData, loss: Any) -> None:
    """A `RunCheckError` for a loss that scores classes given one number per sample, or binary
    cross-entropy given targets outside 0..1."""
    F, name = nn.functional, cfg.loss.name
    if (
        _among(loss, (nn.CrossEntropyLoss, nn.NLLLoss), (F.cross_entropy, F.nll_loss))
        and data.out_features == 1
    ):
        raise RunCheckError(
            "loss",
            f"{name!r} scores classes, but y holds one floating-point number per sample (a regression task), "
            f"over which it is 0 whatever the model predicts; use {REGRESSION_LOSSES}, or give y as integer "
            f"class labels for classification",
        )
    if _among(
        loss, (nn.BCEWithLogitsLoss, nn.BCELoss), (F.binary_cross_entropy_with_logits, F.binary_cross_entropy)
    ):
        low = float(min(data.train.y.min(), data.val.y.min()))
        high = float(max(data.train.y.max(), data.val.y.max()))
        if low < 0 or high > 1:
            raise RunCheckError(
                "loss",
                f"{name!r} takes targets from 0 to 1 (probabilities, or 0/1 labels), but y holds values from "
                f"{low:.4g} to {high:.4g}; for regression use {REGRESSION_LOSSES}",
            )


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
        and takes_class_weights(loss)
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
