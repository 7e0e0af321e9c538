from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpotool.config import OptimizeConfig
from hpotool.constraints import INFEASIBLE, Constraint, parse_constraint
from hpotool.factories import make_sampler
from hpotool.objective import sampler_constraints
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


def test_samplers_that_take_constraints_get_them() -> None:
    opt = OptimizeConfig.model_validate(
        {
            "study_name": "s",
            "constraints": ["n_params <= 10"],
            "search_space": {"optimizer.lr": {"type": "float", "low": 0.1, "high": 1}},
        }
    )
    func = sampler_constraints(opt)
    sampler = make_sampler("tpe", {}, seed=0, space=opt.search_space, constraints_func=func)
    assert sampler._constraints_func is func  # type: ignore[attr-defined]
    make_sampler(
        "random", {}, seed=0, space=opt.search_space, constraints_func=func
    )  # takes none: not passed


def test_constraint_values_are_stored_and_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    optimize("configs/run_template.yaml", "examples/constrained_optimize.yaml", storage, 8)
    trials = optuna.load_study(study_name="digits_small_models", storage=storage).trials
    for t in trials:
        (value,) = t.user_attrs["constraints"]
        assert value == t.user_attrs["metrics"]["n_params"] - 20000
        assert t.user_attrs["feasible"] == (value <= 0)
        assert t.system_attrs["constraints"] == [value]  # what Optuna's TPE recorded from constraints_func
    assert {t.user_attrs["feasible"] for t in trials} == {True, False}
