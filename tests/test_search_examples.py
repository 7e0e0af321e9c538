"""The warm-start and PFL examples run as documented."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpotool.cli import app
from tests.cli_run import optimize

REPO = Path(__file__).resolve().parents[1]


def _optimize(example: str, storage: str, n: int) -> None:
    optimize("configs/run_template.yaml", f"examples/{example}.yaml", storage, n)


def test_warm_start_example_runs_the_enqueued_trials_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    _optimize("warm_start_optimize", storage, 3)
    trials = optuna.load_study(study_name="digits_warm", storage=storage).trials
    assert [t.params for t in trials[:2]] == [
        {"optimizer.lr": 3e-3, "model.hidden.0": 128},
        {"optimizer.lr": 1e-2, "model.hidden.0": 64},
    ]


def test_pfl_example_prunes_and_its_audit_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    _optimize("pfl_optimize", storage, 12)
    trials = optuna.load_study(study_name="digits_pfl", storage=storage).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4
    audit = CliRunner().invoke(
        app,
        ["prune-audit", "--study-name", "digits_pfl", "--storage", storage, "--json"],
        catch_exceptions=False,
    )
    assert audit.exit_code == 0 and '"prediction_errors"' in audit.stdout
