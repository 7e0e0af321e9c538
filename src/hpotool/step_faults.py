"""Which part of a run raised what `dry_run` caught, and what in the config to check: the model, the
optimizer, the schedule or the loss, for the one training step; a section's arguments, for an error torch
raised building a component. torch's own refusals deep in its code name neither the key nor the value
(`TypeError: '<' not supported between instances of 'str' and 'float'` for `momentum: '0.9'`), and a
schedule's failing step was blamed on the loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hpotool.config import RunConfig
from hpotool.data import PreparedData
from hpotool.epoch import NonFiniteLossError
from hpotool.formatting import format_choice
from hpotool.lean_step import LeanStep
from hpotool.loss_checks import probability_loss_hint
from hpotool.model_hints import number_spelling_hint, training_output
from hpotool.user_code import raised_by_hpotool, user_frame


def set_arguments(section: Any) -> str:
    """The arguments the config sets in a component's section, as YAML spells them (`lr: 0.01, betas:
    [0.9, 0.99]`), not the defaults hpotool fills in (an optimizer's `weight_decay: 0.0`)."""
    given = section.model_fields_set | set(section.model_extra or {})
    return ", ".join(f"{k}: {format_choice(v)}" for k, v in section.kwargs.items() if k in given)


def building_hint(where: str, section: Any, exc: Exception) -> str:
    """What to add to the error building `section` (`where`: model, optimizer, scheduler or loss) raised: the
    number spelt as text or a float that torch refused, or, for an error from a library's code (not the
    user's, whose frame the line names, nor hpotool's own refusal), the arguments the section sets."""
    spelt = number_spelling_hint(where, section, exc)
    if spelt or user_frame(exc) is not None or raised_by_hpotool(exc):
        return spelt
    args = set_arguments(section)
    return f"; check the {where} section's arguments ({args})" if args else ""


def _check_section(where: str, section: Any, exc: Exception) -> str:
    """`check the scheduler section's arguments (step_size: 0)`, or the number spelt otherwise in it."""
    spelt = number_spelling_hint(where, section, exc)
    if spelt:
        return spelt.removeprefix("; ")
    args = set_arguments(section)
    return f"check the {where} section's arguments ({args})" if args else f"check the {where} section"


def step_hint(
    exc: Exception, cfg: RunConfig, data: PreparedData, trainer: Any, x: torch.Tensor, k: int
) -> str:
    """What to check where the training step of `trainer` on `k` samples (`x`) raised `exc`, by what
    raised it."""
    model = trainer.model
    part = _raised_in(exc, model, trainer.optimizer, trainer.scheduler)
    if isinstance(exc, NonFiniteLossError):
        return "lower optimizer.lr or set grad_clip"
    if part == "optimizer":
        return (
            f"the optimizer's step() raised it: {_check_section('optimizer', cfg.optimizer, exc)}; hpotool "
            f"calls step() with no arguments, once per batch"
        )
    if part == "scheduler":
        return f"the scheduler's step() raised it: {_check_section('scheduler', cfg.scheduler, exc)}"
    if (
        part == "model"
        and k == 1
        and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    ):
        return (  # batch norm needs two samples a batch; hpotool's own batches never leave one over
            "batch norm cannot train on a batch of one sample: set batch_size to 2 or more"
            if cfg.batch_size == 1
            else "batch norm cannot train on a batch of one sample, and the training split holds one: "
            "use more data (data.val_fraction, data.subset_fraction)"
        )
    if part == "model":
        return "the model raised it in training mode: check its forward()"
    if (returned := training_output(model, x)) is not None:
        return (
            f"in training mode the model returns a {returned}, not a tensor (in eval mode it returns one), "
            f"and hpotool gives the loss what forward() returns: return the prediction alone in training "
            f"mode too (torchvision's inception_v3 and googlenet: set aux_logits: false under model:)"
        )
    return _loss_hint(exc, cfg, data)


def _loss_hint(exc: Exception, cfg: RunConfig, data: PreparedData) -> str:
    """What to check where the loss raised `exc` in the step: binary cross-entropy given logits, the user's
    own loss code (named by the error's `at` already; whether the loss fits the task is beside the point
    there: a KeyError in it read "check that the loss fits this regression task"), the loss section's
    arguments, or that a built-in loss fits the task (its outputs' or targets' shape or dtype)."""
    if (bce := probability_loss_hint(cfg, data)) is not None:
        return bce
    args = ", ".join(f"{k}: {format_choice(v)}" for k, v in cfg.loss.kwargs.items())
    if user_frame(exc) is not None:  # the user's own loss raised it, at the line the error names
        also = f", and the loss section's arguments ({args})" if args else ""
        return f"the loss {cfg.loss.name} raised it in its own code: check that code{also}"
    if args:  # torch refuses an argument's value as the loss runs (huber's delta: 0)
        return f"check the loss section's arguments ({args}), and that the loss fits this {data.task} task"
    return f"check that the loss fits this {data.task} task"


def _is_schedule(owner: Any, scheduler: Any) -> bool:
    """Whether `owner` is the run's schedule, or a torch schedule (one a `SequentialLR` holds, say)."""
    kinds = tuple(
        kind
        for kind in (
            getattr(torch.optim.lr_scheduler, "LRScheduler", None),
            getattr(torch.optim.lr_scheduler, "ReduceLROnPlateau", None),
        )
        if isinstance(kind, type)
    )
    return (scheduler is not None and owner is scheduler) or isinstance(owner, kinds)


def _raised_in(
    exc: BaseException, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> str | None:
    """ "model", "optimizer" or "scheduler" when the innermost method of one of them on the traceback is the
    model's (or one of its layers'), the optimizer's (or hpotool's `LeanStep`, which takes its steps) or the
    schedule's, else None (the loss, or hpotool's own code)."""
    layers = {id(m) for m in model.modules()}
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        if owner is optimizer or (isinstance(owner, LeanStep) and owner.optimizer is optimizer):
            return "optimizer"
        if _is_schedule(owner, scheduler):
            return "scheduler"
        if isinstance(owner, nn.Module):
            return "model" if id(owner) in layers else None
    return None
