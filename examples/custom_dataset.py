"""A user's own dataset, used by `examples/custom_run.yaml` as `examples.custom_dataset:two_moons`.

A dataset is any function returning an `(x, y)` pair: integer targets make it classification, float
targets regression. Its keyword arguments come from the `data:` section of the RunConfig.
"""

from __future__ import annotations

import math

import torch


def two_moons(n_samples: int = 600, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles, generated with a seeded generator (nothing is downloaded)."""
    g = torch.Generator().manual_seed(seed)
    half = n_samples // 2
    t = torch.rand(n_samples, generator=g) * math.pi
    upper = torch.stack([torch.cos(t[:half]), torch.sin(t[:half])], dim=1)
    lower = torch.stack([1 - torch.cos(t[half:]), 0.5 - torch.sin(t[half:])], dim=1)
    x = torch.cat([upper, lower]) + noise * torch.randn(n_samples, 2, generator=g)
    y = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(n_samples - half, dtype=torch.long)])
    return x, y
