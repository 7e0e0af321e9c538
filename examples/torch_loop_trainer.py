"""Wrap an existing PyTorch training loop: hpotool hands it the resolved config and a `report` callable.

`hpotool optimize -r examples/torch_loop_run.yaml -o examples/torch_loop_optimize.yaml`
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hpotool.config import RunConfig


def my_existing_loop(
    lr: float, width: int, epochs: int, seed: int, on_epoch: Callable[[int, float], None]
) -> float:
    """Stands for the loop a project already has: fit y = sin(3x) with a small network."""
    torch.manual_seed(seed)
    x = torch.linspace(-1, 1, 256).unsqueeze(1)
    y = torch.sin(3 * x)
    model = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.zeros(())
    for epoch in range(epochs):
        for i in range(0, 256, 32):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x[i : i + 32]), y[i : i + 32])
            loss.backward()
            opt.step()
        with torch.no_grad():
            loss = nn.functional.mse_loss(model(x), y)
        on_epoch(epoch, float(loss))
    return float(loss)


def fit(run_config: RunConfig, report: Callable[[int, dict[str, float]], None]) -> dict[str, float]:
    """The adapter: read what the loop needs from the typed config, report each epoch, return the result."""
    width = int(run_config.trainer.kwargs["width"]) if run_config.trainer else 32
    final = my_existing_loop(
        run_config.optimizer.lr,
        width,
        run_config.epochs,
        run_config.seed,
        lambda epoch, val_loss: report(epoch, {"val_loss": val_loss}),
    )
    return {"val_loss": final}
