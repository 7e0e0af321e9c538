"""The examples/ configs run as documented (from the repository root)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.cli_run import optimize

REPO = Path(__file__).resolve().parents[1]


def test_custom_model_and_dataset_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'moons.db'}"
    optimize("examples/custom_run.yaml", "examples/custom_optimize.yaml", storage, 3)
    study = optuna.load_study(study_name="moons_residual", storage=storage)
    assert set(study.best_trial.params) == {"model.width", "model.blocks", "optimizer.lr"}
    assert study.best_value > 0.8
