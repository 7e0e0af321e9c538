"""Built-in models. Models take keyword arguments; hpotool passes `in_features`, `out_features` and
`input_shape` itself to any model whose signature asks for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from hpotool.formatting import format_choice
from hpotool.near_names import did_you_mean

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}
_NORMS = ("none", "batch", "layer")
# dropout is a probability: 1 drops every unit (the network then trained to one constant output)
_DROPOUT = (
    "dropout must be from 0 up to but not including 1, got {}; give a value such as 0.1 (0: no dropout)"
)


def _listened() -> bool:
    """Whether a global module hook or a TorchScript trace would see each module call."""
    mod = nn.modules.module
    return bool(
        mod._global_forward_hooks
        or mod._global_forward_pre_hooks
        or mod._global_backward_hooks
        or mod._global_backward_pre_hooks
        or torch.jit.is_tracing()
    )


def _plain(module: nn.Module) -> bool:
    """Whether `module(x)` would just return `module.forward(x)`, global hooks and traces aside: torch's own
    `__call__`, no hooks of the module's own, not compiled in place."""
    return not (
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        or module._compiled_call_impl is not None
        or type(module).__call__ is not nn.Module.__call__
    )


def direct_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What calling `fn` comes down to right now: an nn.Module's bound `forward` where its `__call__` would
    add nothing but Python (~2 us a call: no hook would see it, see `run_layers`), else `fn` itself. The
    Trainer takes it once an epoch for the model and the loss, so hooks registered between epochs count."""
    if isinstance(fn, nn.Module) and not _listened() and _plain(fn):
        return fn.forward
    return fn


def run_layers(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`net(x)`, calling each layer's forward() directly where no hook or tracer could tell the difference.

    `nn.Module.__call__` costs ~2 us of Python a module; on the digits MLP (batch 32) the Sequential and its
    four layers were ~8% of a training step. Any hook (global, on `net` or on a layer), a compiled layer or a
    TorchScript trace goes through `net(x)` as before.
    """
    # Sequential's own `_modules`, as its forward iterates them: `tuple(net)` made a tuple every step (0.6 µs
    # against 0.07), on the one path here that runs once per batch (tests/test_library_internals.py guards it).
    layers = net._modules.values()
    if _listened() or not _plain(net) or not all(_plain(layer) for layer in layers):
        return net(x)
    for layer in layers:
        x = layer.forward(x)
    return x


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}{did_you_mean(name, _ACTIVATIONS)}; choose one of: {', '.join(_ACTIVATIONS)}"
        ) from None


def layer_widths(hidden: int | Sequence[int], layers: int | None) -> list[int]:
    """Hidden widths: `hidden` itself, or its first `layers` entries (the last repeated when short)."""
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    if layers is not None:
        if layers < 0:
            raise ValueError(f"layers must be 0 or more, got {layers}; give 0 for no hidden layer")
        if widths:
            widths = (widths + [widths[-1]] * layers)[:layers]
    if any(w < 1 for w in widths):
        raise ValueError(
            f"hidden widths must be 1 or more, got {format_choice(widths)}; give each hidden layer 1 unit or more"
        )
    _check_sizes("hidden widths", widths)
    return widths


# torch sizes a tensor with 64-bit integers: `hidden: 1000000000000000000000000000000` failed as "TypeError:
# empty(): argument 'size' failed to unpack ... Overflow when unpacking long long".
MAX_SIZE = 2**63 - 1


def _check_sizes(what: str, sizes: Sequence[int]) -> None:
    """Refuse a layer size torch cannot hold (past 2**63 - 1)."""
    if too_big := [n for n in sizes if n > MAX_SIZE]:
        raise ValueError(
            f"{what} must be at most 2**63 - 1 (torch sizes a layer with a 64-bit integer), got {too_big[0]}"
        )


class MLP(nn.Module):
    """A multi-layer perceptron over flattened inputs.

    Args:
        in_features: input size (set by hpotool).
        out_features: classes, or regression targets (set by hpotool).
        hidden: width of each hidden layer, or one width for all.
        layers: how many hidden layers to use; `hidden` is cut or its last width repeated to fit.
        activation: relu, gelu, silu, tanh, leaky_relu or elu.
        dropout: dropout probability after each hidden layer.
        norm: none, batch or layer normalization after each hidden linear layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: int | Sequence[int] = (128,),
        layers: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str = "none",
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(_DROPOUT.format(dropout))
        if norm not in _NORMS:
            raise ValueError(
                f"unknown norm {norm!r}{did_you_mean(norm, _NORMS)}; choose one of: {', '.join(_NORMS)}"
            )
        blocks: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for w in layer_widths(hidden, layers):
            blocks.append(nn.Linear(width, w))
            if norm == "batch":
                blocks.append(nn.BatchNorm1d(w))
            elif norm == "layer":
                blocks.append(nn.LayerNorm(w))
            blocks.append(make_activation(activation))
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = w
        blocks.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.net, x)


class CNN(nn.Module):
    """A small convolutional network for image-shaped inputs (C x H x W), such as digits as 1x8x8.

    Args:
        input_shape: (channels, height, width) (set by hpotool).
        out_features: classes, or regression targets (set by hpotool).
        channels: output channels of each 3x3-style conv block; each block halves H and W while > 1.
        kernel_size: convolution kernel size (odd).
        hidden: width of the fully connected layer before the output.
        activation: as for MLP.
        dropout: dropout before the output layers.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        hidden: int = 64,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            # a grayscale image batch (n, H, W) has no channel axis: say how to add one
            hint = (
                "; for one-channel (grayscale) images add the channel axis in the dataset function: "
                "x.unsqueeze(1) (numpy: x[:, None])"
                if len(input_shape) == 2
                else ""
            )
            raise ValueError(
                f"cnn needs inputs shaped (channels, height, width), got {tuple(input_shape)}{hint}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        # As MLP's checks: torch built a dropout of 1 and a hidden layer of 0 units without a word, and the
        # network then trained to one constant output (val_accuracy 0.086 on digits, every trial alike).
        if not 0.0 <= dropout < 1.0:
            raise ValueError(_DROPOUT.format(dropout))
        if hidden < 1:
            raise ValueError(
                f"hidden must be 1 or more (the width of the fully connected layer), got {hidden}; give its units"
            )
        if any(n < 1 for n in channels):
            raise ValueError(f"channels must each be >= 1, got {list(channels)}")
        _check_sizes("hidden", [hidden])
        _check_sizes("channels", list(channels))
        c, h, w = input_shape
        blocks: list[nn.Module] = []
        for out_c in channels:
            blocks += [
                nn.Conv2d(c, out_c, kernel_size, padding=kernel_size // 2),
                make_activation(activation),
            ]
            if min(h, w) > 1:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out_c
        blocks += [
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c * h * w, hidden),
            make_activation(activation),
        ]
        blocks += [nn.Dropout(dropout), nn.Linear(hidden, out_features)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.net, x)
