"""Users' own training functions, through the real CLI: a scikit-learn model and a wrapped PyTorch loop."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.cli_run import optimize

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("run", "opt", "study", "params"),
    [
        ("sklearn_run", "sklearn_optimize", "sklearn_digits", {"trainer.alpha", "trainer.eta0"}),
        ("torch_loop_run", "torch_loop_optimize", "sine_loop", {"optimizer.lr", "trainer.width"}),
    ],
)
def test_own_training_function(
    run: str, opt: str, study: str, params: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    optimize(f"examples/{run}.yaml", f"examples/{opt}.yaml", storage, 6)
    s = optuna.load_study(study_name=study, storage=storage)
    finished = [t for t in s.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6 and not [t for t in s.trials if t.state == TrialState.FAIL]
    for t in finished:
        assert set(t.params) == params
        assert t.user_attrs["history"] and len(t.intermediate_values) == t.user_attrs["epochs_run"]


def test_a_trainer_that_misses_the_metric_fails_the_trial_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text(
        (REPO / "examples/torch_loop_optimize.yaml")
        .read_text()
        .replace("metric: val_loss", "metric: val_accuracy")
        .replace("direction: minimize", "direction: maximize")
    )
    result = optimize(
        "examples/torch_loop_run.yaml", str(opt), storage, 2, "--max-failures", "1", exit_code=1
    )
    assert "stopped after 1 failed trials in a row" in result.stderr
    (trial,) = optuna.load_study(study_name="sine_loop", storage=storage).trials
    assert (
        trial.user_attrs["fail_reason"]
        == "ValueError: the run produced no val_accuracy; it produced: val_loss, epoch_time"
    )


def test_train_with_a_training_function_saves_no_model_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.errors import HpoError
    from hpotool.saved import load_model

    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "-r", "examples/torch_loop_run.yaml", "--epochs", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "metrics.json, history.csv, config.yaml" in result.stdout and "model.pt" not in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "history.csv", "metrics.json"]
    with pytest.raises(HpoError, match="trained by a user's training function"):
        load_model(out / "model.pt")
