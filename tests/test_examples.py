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


def test_each_example_study_names_the_command_that_runs_it() -> None:
    """sklearn_optimize.yaml, torch_loop_optimize.yaml and custom_optimize.yaml did not say which run config
    goes with them; the other examples do, in a comment at the top."""
    import re

    for path in sorted((REPO / "examples").glob("*.yaml")):
        text = path.read_text()
        if "search_space:" not in text:
            continue  # a run config
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
        command = re.search(r"hpotool optimize -r (\S+) -o (\S+)", header)
        assert command, f"{path.name} does not name the command that runs it"
        assert (REPO / command.group(1)).is_file() and command.group(2) == f"examples/{path.name}", command
