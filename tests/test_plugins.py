"""What users plug in by import path, end to end: their own model trained, saved and loaded back."""

from __future__ import annotations

from pathlib import Path

import torch

from hpotool.config import RunConfig


def test_a_saved_run_of_a_users_model_loads_from_its_folder(tmp_path: Path) -> None:
    """`load_model("runs/x/20261205-141011")`, the folder train and train-from-best print, said "not a model
    saved by hpotool: IsADirectoryError: [Errno 21] Is a directory"; it takes the folder now too."""
    from hpotool.saved import load_model, train_and_save

    (tmp_path / "wide_net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features, width):\n        super().__init__()\n"
        "        self.f = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))\n\n"
        "    def forward(self, x):\n        return self.f(x)\n"
    )
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "regression", "n_samples": 64},
            "model": {"name": "wide_net:Net", "width": 4},
            "epochs": 1,
            "batch_size": 16,
            "device": "cpu",
        }
    )
    saved = train_and_save(cfg, tmp_path / "run")
    model, config, metrics = load_model(saved.folder)
    same, _, _ = load_model(saved.folder / "model.pt")
    assert config == cfg and metrics == saved.metrics and not model.training
    x = torch.randn(3, 10)
    assert torch.equal(model(x), same(x))
