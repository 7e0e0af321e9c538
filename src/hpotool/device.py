"""Where a run trains: the device a config names (`resolve_device`), the seeds, and moving a module there
with every tensor it keeps (`to_device`)."""

from __future__ import annotations

import functools
import os
import random
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from hpotool.errors import HpoError
from hpotool.formatting import counted

if TYPE_CHECKING:
    import torch
    from torch import nn


def resolve_device(spec: str, source: str | None = None) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is absent is an `HpoError` naming
    `source`, where the device was given: a file (`run.yaml`), the flag `--device`, or `device=` (the argument of
    a Python call, `load_model`)."""
    import torch

    return torch.device(device_name(spec, source))


def device_name(spec: str, source: str | None = None) -> str:
    """`resolve_device`'s device as text (`cuda`, `cpu`), importing torch only where the answer needs it: a
    user's training function that never uses torch is handed `cpu` for `auto` on a machine without an
    accelerator, without the ~2 s of `import torch`.

    Raises:
        HpoError: as `resolve_device`.
    """
    if spec == "cpu" or (spec == "auto" and not _may_have_accelerator()):
        return "cpu"
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HpoError(_absent_device(spec, "CUDA is not available here", source))
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            given = "--device " if source == "--device" else f"{source}: device: " if source else "device: "
            raise HpoError(f"{given}{spec} does not exist; this machine has {counted(count, 'GPU')}")
    if spec == "mps" and not torch.backends.mps.is_available():
        raise HpoError(_absent_device(spec, "MPS is not available here", source))
    return str(torch.device(spec))


# Device files a GPU driver makes on Linux: NVIDIA's, AMD ROCm's (which torch reaches as cuda) and WSL 2's.
_ACCELERATOR_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def _may_have_accelerator() -> bool:
    """Whether torch could find a GPU here: False only on Linux with none of the driver's device files,
    where `torch.cuda.is_available()` is False too (and mps is macOS's alone); True elsewhere, to ask torch."""
    return sys.platform != "linux" or any(os.path.exists(path) for path in _ACCELERATOR_FILES)


def _absent_device(spec: str, why: str, source: str | None) -> str:
    if source == "--device":  # the flag wins over the config's device: the fix is the flag
        return f"--device {spec}: {why}; give --device auto or cpu"
    # a Python call's argument (load_model): "use device: auto" is a config's spelling
    if source == "device=":
        return f"device={spec!r}: {why}; give device='auto' or device='cpu'"
    where = f"{source}: " if source else ""
    return f"{where}device: {spec} was asked for but {why}; use device: auto or cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices), torch where it is imported: a run of hpotool's Trainer
    has imported it, and a user's training function whose module imports it too (its module is imported
    first), while one that never uses torch does not pay for importing it."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def to_device(module: nn.Module, device: torch.device, _done: set[int] | None = None) -> nn.Module:
    """`module.to(device)`, and the tensors it (or a layer of it) keeps as plain attributes too: a user's
    `self.weight = torch.tensor(weights)` rather than a buffer, which `.to()` leaves where it is, so on a GPU
    the model or loss failed every step with 'Expected all tensors to be on the same device'. So do tensors
    in a plain list, tuple or dict attribute (`self.masks = [torch.ones(n), ...]`): lists and dicts are
    changed in place, so other references to them see the moved tensors; and so do layers kept there, as a
    frozen distillation teacher is (`self._teacher = [teacher]`, hidden from the optimizer and train())."""
    import torch
    from torch import nn

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

    torch_keys = module_keys()
    for sub in module.modules():
        for key, value in list(vars(sub).items()):
            if key in torch_keys:  # torch's own: parameters and buffers are moved by .to()
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


@functools.cache
def module_keys() -> frozenset[str]:
    """torch's own attributes of every module (its parameters, buffers and hooks), which `.to()` moves."""
    from torch import nn

    return frozenset(vars(nn.Module()))
