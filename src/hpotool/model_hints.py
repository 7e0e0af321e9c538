"""The hints `dry_run` adds to a model's error: what torch said, and what in the config, the data or the
model to change (a float for an int, samples without a channel, a forward() that takes more than x)."""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from hpotool.components import resolve_component
from hpotool.config import RunConfig
from hpotool.formatting import quoted_text
from hpotool.signatures import INPUT_SIZE_NAMES


def number_spelling_hint(where: str, section: Any, exc: Exception) -> str:
    """For a TypeError building or stepping a section's component (`where`: data, model, optimizer,
    scheduler or loss): an argument given as a whole float (`channels: 8.0`) where the component's default is an int, or
    as text that spells a number (`channels: '8'`, `momentum: '0.9'`), which torch refuses deep inside its
    code ("empty(): argument 'size' must be tuple of ints, but found element of type float", "'<' not
    supported between instances of 'str' and 'float'", "can't multiply sequence by non-int of type
    'float'"), naming the user's line, if any, but not the key; empty where none is."""
    if not isinstance(exc, TypeError):
        return ""
    try:
        params = inspect.signature(resolve_component(where, section.name)).parameters  # type: ignore[arg-type]
    except Exception:  # no signature to read: no hint
        return ""
    text = str(exc)
    given = section.model_fields_set | set(section.model_extra or {})  # not the defaults hpotool fills in
    args = {k: v for k, v in section.kwargs.items() if k in given}
    for key, value in args.items():
        if (
            isinstance(value, str)
            and ("str" in text or "sequence" in text)  # text * a float: "can't multiply sequence by ..."
            and re.fullmatch(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?", value.strip())
        ):
            return f"; {where}.{key} is the text {quoted_text(value)}: write {value.strip()} without quotes, a number"
    for key, value in args.items():
        param = params.get(key)
        if param is None or "float" in str(param.annotation):  # torch's `weight_decay: float = 0`
            continue
        default = param.default
        counts = isinstance(default, int) and not isinstance(default, bool)
        if isinstance(value, float) and value.is_integer() and counts and "float" in text:
            return f"; {where}.{key} is {value!r}, a float, where {default!r}, its default, is an int: write {int(value)}"
    return ""


def one_tensor_hint(out: Any) -> str:
    """For a forward() that returns several things (`(logits, features)`, a Hugging Face output with
    `.logits`): which one to return, as the loss and the metrics take one tensor."""
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        kind = type(out).__name__
        return f"; forward() returns a {kind} of {len(out)}: return the one tensor the loss takes (such as the {kind}'s [0])"
    if isinstance(out, dict) and "logits" in out:
        return "; forward() returns a mapping: return its ['logits'] alone"
    return ""


def training_output(model: nn.Module, x: torch.Tensor) -> str | None:
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


def needs_flat_input(exc: BaseException, x: torch.Tensor, model: nn.Module) -> str | None:
    """How to fix a model whose layers met samples of several dimensions (digits' are 1x8x8 images) as if
    they were flat: `nn.Linear(in_features, ...)` given `(batch, 1, 8, 8)` said only "mat1 and mat2 shapes
    cannot be multiplied (64x8 and 64x16)". A torch layer named as the model (`torch.nn:Linear`) or an
    `nn.Sequential` has no forward() of the user's to flatten in. None for another error, or flat samples."""
    if x.dim() <= 2 or not isinstance(exc, RuntimeError):
        return None
    if "shapes cannot be multiplied" not in str(exc):  # a linear layer's, on the last dimension alone
        return None
    sample = tuple(x.shape[1:])
    said = f"each sample of the data's x is shaped {sample}, and in_features ({int(np.prod(sample))}) is that size flattened"
    cls = type(model)
    if cls is nn.Sequential:
        return (
            f"{said}: make nn.Flatten() the Sequential's first layer, as the built-in mlp flattens its input"
        )
    if cls.__module__.startswith("torch."):  # torch.nn:Linear named as the model
        return (
            f"{said}: torch's {cls.__name__} takes flat samples, and its forward() is torch's: flatten x in the "
            f"dataset function (x.flatten(1)), or name a model of yours whose forward() flattens it first, as "
            f"the built-in mlp does"
        )
    return f"{said}: flatten it first in forward() (x = x.flatten(1)), as the built-in mlp does, or ask for input_shape"


def fixed_input_hint(exc: BaseException, x: torch.Tensor, cfg: RunConfig) -> str | None:
    """How to fix a model whose linear layer takes another number of features than the data's flat samples
    have, where its constructor asks for no in_features: its input size written in its code (`nn.Linear(7,
    16)`), or taken under another name (`input_dim=7`) that the config leaves at its default. torch said only
    "mat1 and mat2 shapes cannot be multiplied (8x10 and 7x16)", naming neither the data nor that hpotool
    passes the size to a model that asks for it. None for another error, or a model that takes in_features
    or input_shape (the size reached it: its code uses it wrongly)."""
    if x.dim() != 2 or not isinstance(exc, RuntimeError):
        return None
    found = re.search(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x\d+\)", str(exc))
    features = int(x.shape[1])
    if found is None or int(found.group(2)) != features or int(found.group(3)) == features:
        return None
    try:
        params = inspect.signature(resolve_component("model", cfg.model.name)).parameters
    except (TypeError, ValueError):
        return None
    if "in_features" in params or "input_shape" in params:
        return None
    said = (
        f"each sample of the data's x has {features} features, and the model's linear layer that met them "
        f"takes {found.group(3)}"
    )
    for name in INPUT_SIZE_NAMES:
        if name not in params:
            continue
        if name in cfg.model.kwargs:
            given = cfg.model.kwargs[name]
            return f"{said}: model.{name} is {given!r}: set {name}: {features}, or rename the argument in_features, which hpotool sets from the data"
        default = (
            ""
            if params[name].default is inspect.Parameter.empty
            else f" ({params[name].default!r} by default)"
        )
        return (
            f"{said}: {cfg.model.name} takes its input size as {name}{default}, which hpotool does not set (it "
            f"passes in_features): rename the argument in_features, which hpotool sets from the data, or set "
            f"{name}: {features} under model:"
        )
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None  # in_features reached its **kwargs
    return (
        f"{said}: {cfg.model.name} takes no in_features, so its input size is fixed in its code: take "
        f"in_features as an argument for its first layer (nn.Linear(in_features, ...)), which hpotool sets to "
        f"{features} from the data"
    )


def needs_a_channel(exc: BaseException, x: torch.Tensor) -> str | None:
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


def forward_needs_more(model: nn.Module, exc: BaseException) -> str | None:
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


def wants_integer_ids(exc: BaseException, x: torch.Tensor) -> bool:
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


def width_argument_hint(cfg: RunConfig, width: int | None) -> str:
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


def fixed_width_hint(cfg: RunConfig, columns: int, width: int) -> str:
    """Where the model's output has `columns` where the task needs `width` and its constructor asks for no
    width at all (`nn.Linear(in_features, 10)` written in its code): that hpotool passes the width to a model
    that asks for it. The line gave the two shapes alone. Empty for a model that takes one (`width_argument_hint`
    says how to set it), or **kwargs, and for one logit where two classes need two (the loss's hint)."""
    if columns == 1 and width == 2:
        return ""
    try:
        params = inspect.signature(resolve_component("model", cfg.model.name)).parameters
    except (TypeError, ValueError):
        return ""
    takes_width = any(name in params for name in ("out_features", *WIDTH_NAMES))
    if takes_width or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return ""
    return (
        f"; {cfg.model.name} takes no out_features, so its output width is fixed in its code: take "
        f"out_features in its constructor for its last layer, which hpotool sets to {width} from the data"
    )
