"""Components the tests load by import path, as users' own code would be."""

from __future__ import annotations

import torch
from torch import nn


class ExplodingModel(nn.Module):
    """A model whose forward pass raises: every trial that uses it must end as FAIL."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom from user code")


class FragileModel(nn.Module):
    """Fails in training only for a large `width`, so a study sees both COMPLETE and FAIL trials."""

    def __init__(self, in_features: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        self.width = width
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.width > 24:
            raise ValueError(f"width {self.width} is too wide")
        return self.net(x)


class SlowModel(nn.Module):
    """A linear model that sleeps in every forward pass, so a trial is still running when a test acts."""

    def __init__(self, in_features: int, out_features: int, width: int = 8, sleep: float = 0.02) -> None:
        super().__init__()
        self.sleep = sleep
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(self.sleep)
        return self.net(x)
