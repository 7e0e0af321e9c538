"""MLflow tracking against a local SQLite-backed MLflow store (MLflow's file store is in maintenance mode)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from hpotool.cli import app

REPO = Path(__file__).resolve().parents[1]
mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'hpotool[mlflow]')")


def test_every_trial_is_logged_to_mlflow(tmp_path: Path) -> None:
    opt = yaml.safe_load((REPO / "examples/mlflow_optimize.yaml").read_text())
    opt["tracking"]["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opt["storage"] = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(opt))
    run = yaml.safe_load((REPO / "configs/run_template.yaml").read_text()) | {"epochs": 4}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(run))
    result = CliRunner().invoke(
        app,
        ["optimize", "-r", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o.yaml"), "-q", "--n-trials", "3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="digits_tracked", storage=opt["storage"]).trials
    client = mlflow.MlflowClient(tracking_uri=opt["tracking"]["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name("digits_tracked")
    runs = {r.data.tags["hpotool.trial"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {str(t.number) for t in trials}
    for t in trials:
        r = runs[str(t.number)]
        assert r.data.tags["hpotool.state"] == t.state.name
        assert float(r.data.params["optimizer.lr"]) == pytest.approx(t.params["optimizer.lr"])
        history = client.get_metric_history(r.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(t.user_attrs["epochs_run"]))
