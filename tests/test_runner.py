from __future__ import annotations

import pytest
import torch
from torch import nn

from hpotool.config import RunConfig
from hpotool.runner import build_trainer, fast_optimizer_kwargs, load_data


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad])
def test_torch_optimizers_with_a_fused_kernel_get_it_on_cpu(cls: type) -> None:
    assert fast_optimizer_kwargs(cls, _model(), {"lr": 0.1}) == {"lr": 0.1, "fused": True}


@pytest.mark.parametrize("kwargs", [{"fused": False}, {"foreach": True}, {"foreach": False}])
def test_the_users_own_choice_of_kernel_wins(kwargs: dict[str, bool]) -> None:
    assert fast_optimizer_kwargs(torch.optim.Adam, _model(), kwargs) == kwargs


def test_optimizers_without_a_fused_kernel_and_other_classes_are_left_alone() -> None:
    assert fast_optimizer_kwargs(torch.optim.RMSprop, _model(), {}) == {}

    class MyAdam(torch.optim.Adam):
        pass

    MyAdam.__module__ = "mypackage.optim"
    assert fast_optimizer_kwargs(MyAdam, _model(), {}) == {}
    assert fast_optimizer_kwargs(torch.optim.Adam, nn.ReLU(), {}) == {}  # no parameters


def test_a_run_trains_with_the_fused_kernel_and_it_learns() -> None:
    cfg = RunConfig.model_validate(
        {"data": {"name": "digits"}, "optimizer": {"name": "adam", "lr": 0.01}, "epochs": 2, "device": "cpu"}
    )
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    trainer = build_trainer(cfg, data, model)
    assert trainer.optimizer.defaults["fused"] is True
    last = trainer.fit(data.train, data.val, epochs=2)
    assert last.metrics["val_accuracy"] > 0.8
