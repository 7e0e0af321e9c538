"""Where a run trains: the device a config names (`resolve_device`), the seeds, and moving a module there
with every tensor it keeps (`to_device`)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from hpotool.errors import HpoError


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


MODULE_KEYS = frozenset(vars(nn.Module()))  # torch's own attributes of every module


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
            if key in MODULE_KEYS:  # torch's own: parameters and buffers are moved by .to()
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
