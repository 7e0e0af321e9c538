"""The parts of a run hpotool builds from its RunConfig: the model, the optimizer, and the Trainer around
them with the schedule (`lr_schedule`) and the loss (`criterion`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from hpotool.components import first_argument, resolve_component
from hpotool.config import RunConfig
from hpotool.criterion import build_loss
from hpotool.data import PreparedData, one_logit
from hpotool.device import module_keys
from hpotool.errors import RunCheckError
from hpotool.formatting import returned_kind
from hpotool.lean_step import defer_dynamo
from hpotool.lr_schedule import Schedule, build_schedule
from hpotool.signatures import accepted_kwargs, construct, pick_kwargs
from hpotool.trainer import Trainer
from hpotool.user_code import described


def model_out_features(cfg: RunConfig, data: PreparedData) -> int:
    """The model's outputs: a logit per class, one for a one-logit loss (`one_logit`), or the targets'."""
    return 1 if one_logit(cfg, data) else data.out_features


def build_model(cfg: RunConfig, data: PreparedData) -> nn.Module:
    """Instantiate the model, passing the data's shapes to the arguments its signature asks for."""
    return make_model(cfg, data.input_shape, model_out_features(cfg, data))


def make_model(cfg: RunConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Instantiate the model for data of these shapes (what `build_model` and a saved model use)."""
    cls = resolve_component("model", cfg.model.name)
    model = construct(cls, (), shape_arguments(cfg, input_shape, out_features), cfg.model.kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model {cfg.model.name!r} returned {returned_kind(model)}, not a torch.nn.Module; return the model it "
            "builds"
        )
    _check_registered(model)
    return model


def shape_arguments(cfg: RunConfig, input_shape: tuple[int, ...], out_features: int) -> dict[str, Any]:
    """The data's shapes hpotool passes the model, those of `in_features`, `out_features` and `input_shape`
    that its signature asks for."""
    shapes = {
        "in_features": int(np.prod(input_shape)),
        "out_features": out_features,
        "input_shape": tuple(input_shape),
    }
    return pick_kwargs(resolve_component("model", cfg.model.name), shapes)


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
    torch_keys = module_keys()
    for prefix, sub in model.named_modules():
        for key, value in vars(sub).items():
            if key in torch_keys:
                continue
            where = f"{prefix}.{key}" if prefix else key
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                _check_tensor(name, where, value)
            elif isinstance(value, dict | list | tuple):
                _check_container(name, where, value, modules, params)


def _check_tensor(name: str, where: str, value: torch.Tensor) -> None:
    """Raise `RunCheckError` for a trainable tensor kept in `self.<where>` that is not an nn.Parameter."""
    if value.requires_grad and value.is_leaf:
        raise RunCheckError(
            "model",
            f"{name} keeps a trainable tensor in self.{where}, which is not an nn.Parameter, so the "
            f"optimizer never updates it and the saved model lacks it; wrap it: "
            f"nn.Parameter(tensor) (or register_buffer for a constant)",
        )


def _check_container(
    name: str,
    where: str,
    value: dict[Any, Any] | list[Any] | tuple[Any, ...],
    modules: set[int],
    params: set[int],
) -> None:
    """Raise `RunCheckError` for layers (trainable, or with dropout) or trainable parameters kept in the plain
    dict, list or tuple `self.<where>`, outside the model's registered `modules` and `params` (their ids)."""
    items = list(value.values()) if isinstance(value, dict) else list(value)
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
            f"optimizer {cfg.optimizer.name!r} returned {returned_kind(optimizer)}, not a torch.optim.Optimizer; "
            "return the optimizer it builds"
        )
    return optimizer


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
