from __future__ import annotations

import optuna
import pytest

from hpotool.importance import param_importances


def test_the_parameter_that_matters_ranks_first() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        lambda t: 10 * t.suggest_float("big", 0, 1) + 0.01 * t.suggest_float("small", 0, 1), n_trials=30
    )
    imp = param_importances(study)
    assert list(imp) == ["big", "small"]
    assert imp["big"] > 0.9 and sum(imp.values()) == pytest.approx(1.0)


def test_too_few_trials_is_a_reason_not_a_crash() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ValueError, match="needs at least 2 complete trials, the study has 1"):
        param_importances(study)
