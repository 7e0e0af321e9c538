from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.constraints import INFEASIBLE, Constraint, parse_constraint
from hpotool.errors import HpoError
from hpotool.export import best_trials, ranked_trials
from tests.cli_run import optimize

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "metrics", "value"),
    [
        ("n_params <= 200000", {"n_params": 150000.0}, -50000.0),
        ("n_params<=1e5", {"n_params": 150000.0}, 50000.0),
        ("val_accuracy >= 0.9", {"val_accuracy": 0.95}, pytest.approx(-0.05)),
        ("epoch_time < 0.5", {"epoch_time": 0.5}, INFEASIBLE),
    ],
)
def test_constraint_values(text: str, metrics: dict, value: float) -> None:
    assert parse_constraint(text).value(metrics) == value


def test_bad_constraint_text() -> None:
    with pytest.raises(ValueError, match="is not a constraint; write METRIC <= NUMBER"):
        parse_constraint("n_params is small")
    assert str(Constraint("n_params", "<=", 2e5)) == "n_params <= 200000"


def test_the_best_trial_is_the_best_that_meets_the_constraints_as_optuna_judges_it() -> None:
    study = optuna.create_study(direction="maximize")
    for value, constraint in [(0.9, 5.0), (0.8, -1.0), (0.7, 0.0)]:
        trial = study.ask()
        trial.set_constraint("n_params <= 10", constraint)
        study.tell(trial, value)
    assert [t.number for t in ranked_trials(study)] == [1, 2]
    assert best_trials(study)[0].number == study.best_trial.number == 1


def test_a_study_where_no_complete_trial_meets_the_constraints_has_no_best() -> None:
    study = optuna.create_study(study_name="tight", direction="maximize")
    trial = study.ask()
    trial.set_constraint("n_params <= 10", 1.0)
    study.tell(trial, 0.9)
    assert ranked_trials(study) == []
    with pytest.raises(
        HpoError,
        match=re.escape("'tight' has no complete trial that meets its constraints (complete 1); every"),
    ) as plain:
        best_trials(study)
    # a plain Optuna study was told to "loosen the optimize config's constraints", which it has none of
    assert "optimize" not in str(plain.value)
    study.set_user_attr("optimize_config", {"constraints": ["n_params <= 10"]})
    with pytest.raises(HpoError, match=re.escape("(complete 1); loosen the optimize config's constraints")):
        best_trials(study)


def test_constraint_values_are_stored_and_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimize("configs/run_template.yaml", "examples/constrained_optimize.yaml", storage, 8)
    assert not [
        w for w in caught if issubclass(w.category, FutureWarning)
    ]  # Optuna 5's API, not constraints_func
    study = optuna.load_study(study_name="digits_small_models", storage=storage)
    for t in study.trials:
        (value,) = t.user_attrs["constraints"]
        assert value == t.user_attrs["metrics"]["n_params"] - 20000
        assert t.user_attrs["feasible"] == (value <= 0)
        assert t.constraints == {"n_params <= 20000": value}  # what Optuna's samplers and best_trial read
    assert {t.user_attrs["feasible"] for t in study.trials} == {True, False}
    assert study.best_trial.user_attrs["feasible"]


def test_when_no_trial_meets_the_constraints_optimize_says_so_and_export_best_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text((REPO / "examples/constrained_optimize.yaml").read_text().replace("<= 20000", "<= 10"))
    result = optimize("configs/run_template.yaml", opt, storage, 2)
    assert "no complete trial meets the constraints" in result.stdout
    export = CliRunner().invoke(
        app,
        [
            "export-best",
            "--study-name",
            "digits_small_models",
            "--storage",
            storage,
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert export.exit_code == 2
    assert "has no complete trial that meets its constraints (complete 2); loosen" in export.stderr
    assert not (tmp_path / "x").exists()
    final = CliRunner().invoke(
        app,
        [
            "train-from-best",
            "--study-name",
            "digits_small_models",
            "--storage",
            storage,
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert final.exit_code == 2 and "has no complete trial that meets its constraints" in final.stderr
