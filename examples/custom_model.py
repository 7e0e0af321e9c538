"""A user's own model, used by `examples/custom_run.yaml` as `examples.custom_model:ResidualMLP`.

hpotool passes `in_features` and `out_features` because the signature asks for them; every other argument
comes from the `model:` section of the RunConfig and can be searched (`model.width`, `model.blocks`).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """An MLP with residual blocks of constant width."""

    def __init__(
        self, in_features: int, out_features: int, width: int = 64, blocks: int = 2, dropout: float = 0.0
    ):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, width),
            *[ResidualBlock(width, dropout) for _ in range(blocks)],
            nn.Linear(width, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
