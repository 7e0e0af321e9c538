"""`rung_tpe`: TPE ranking finished trials at the deepest step enough of them reported; the notes on a sampler
that repeats configurations over the space it is given."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.errors import HpoError
from hpotool.factories import make_sampler
from hpotool.plan import prepare_study
from hpotool.samplers import RungTPESampler, as_of_step, rung_step

from .conftest import write_yaml

X = FloatDistribution(0.0, 1.0)


def finished(x: float, curve: list[float], pruned: bool = False) -> optuna.trial.FrozenTrial:
    """A trial of parameter x that reported `curve` at steps 0, 1, ...: complete with its last value, or
    pruned."""
    return create_trial(
        params={"x": x},
        distributions={"x": X},
        intermediate_values=dict(enumerate(curve)),
        value=None if pruned else curve[-1],
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
    )


def successive_halving_like(study: optuna.Study) -> None:
    """What a small successive-halving study looks like: the first two trials (x near 0.1, mediocre)
    completed because they reached every rung first; of the later ones, all pruned at step 1, those near
    x = 0.9 reported far better values there."""
    for x in (0.10, 0.12):
        study.add_trial(finished(x, [0.50, 0.55, 0.60, 0.62]))
    for i in range(6):
        study.add_trial(finished(0.88 + 0.01 * i, [0.80, 0.90], pruned=True))
        study.add_trial(finished(0.40 + 0.05 * i, [0.20, 0.25], pruned=True))


def sampled_x(sampler: optuna.samplers.BaseSampler, n: int = 20) -> list[float]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    successive_halving_like(study)
    xs = []
    for _ in range(n):
        trial = study.ask()
        xs.append(trial.suggest_float("x", 0.0, 1.0))
        study.tell(trial, state=TrialState.FAIL)  # TPE ignores failed trials: every draw sees the same study
    return xs


def test_rung_step_is_the_deepest_step_enough_finished_trials_reported() -> None:
    trials = [finished(0.1, [0.5, 0.6, 0.7]), *(finished(0.5, [0.4, 0.5], pruned=True) for _ in range(3))]
    assert rung_step(trials, min_trials=4) == 1  # steps 0 and 1: 4 trials; step 2: 1
    assert rung_step(trials, min_trials=1) == 2
    assert rung_step(trials, min_trials=5) is None
    assert rung_step(trials) == 1  # one parameter: BOHB's rule asks for 2
    running = create_trial(state=TrialState.RUNNING, intermediate_values={0: 1.0, 1: 1.0, 2: 1.0})
    assert rung_step([*trials, running], min_trials=2) == 1  # running trials do not count
    assert rung_step([]) is None


def test_as_of_step_ranks_by_the_value_at_the_step_and_leaves_the_trials_alone() -> None:
    complete, deep, shallow = (
        finished(0.1, [0.5, 0.6, 0.7]),
        finished(0.5, [0.4, 0.9], pruned=True),
        finished(0.9, [0.3], pruned=True),
    )
    diverged = finished(0.7, [0.5, math.nan], pruned=True)
    running = create_trial(state=TrialState.RUNNING)
    view = as_of_step([complete, deep, shallow, diverged, running], step=1)
    assert [(t.state, t.value) for t in view] == [
        (TrialState.COMPLETE, 0.6),
        (TrialState.COMPLETE, 0.9),
        (TrialState.PRUNED, None),
        (TrialState.PRUNED, None),  # a NaN is no value to rank by: pruned, ranked last by TPE
        (TrialState.RUNNING, None),
    ]
    assert view[4] is running
    assert (complete.state, complete.value, deep.state) == (TrialState.COMPLETE, 0.7, TrialState.PRUNED)


def test_rung_tpe_imitates_the_best_trials_at_the_rung_where_tpe_imitates_the_complete_ones() -> None:
    plain = sampled_x(optuna.samplers.TPESampler(n_startup_trials=0, seed=1))
    rung = sampled_x(RungTPESampler(n_startup_trials=0, seed=1, min_trials=5))
    # TPE's "good" trials are the two complete ones (x near 0.1); at step 1 they are the x near 0.9.
    assert statistics.median(plain) < 0.35
    assert statistics.median(rung) > 0.65


def test_without_pruning_rung_tpe_samples_exactly_like_tpe() -> None:
    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -2, 2), trial.suggest_int("y", 0, 8)
        value = 0.0
        for step in range(4):
            value = -((x - 0.5) ** 2) - (y - 3) ** 2 / 10 + 0.1 * step
            trial.report(value, step)
        return value

    def params(sampler: optuna.samplers.BaseSampler) -> list[dict[str, float]]:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, 16)
        return [t.params for t in study.trials]

    assert params(RungTPESampler(n_startup_trials=5, seed=3)) == params(
        optuna.samplers.TPESampler(n_startup_trials=5, seed=3)
    )


def test_rung_tpe_by_name_with_tpe_s_kwargs_and_a_checked_typo() -> None:
    sampler = make_sampler("rung_tpe", {"n_startup_trials": 4, "min_trials": 6}, seed=0, space={})
    assert isinstance(sampler, RungTPESampler) and sampler._min_trials == 6
    with pytest.raises(HpoError, match=r"min_trial.*did you mean 'min_trials'"):
        make_sampler("rung_tpe", {"min_trial": 6}, seed=0, space={})
    with pytest.raises(HpoError, match="min_trials must be >= 1"):
        make_sampler("rung_tpe", {"min_trials": 0}, seed=0, space={})


def test_rung_tpe_drives_a_pruned_study_on_sqlite(tmp_path: Path) -> None:
    """A real study with successive halving: the sampler runs through Optuna's trial machinery (the
    view stands in for the study) and the stored trials keep their real states and values."""
    study = optuna.create_study(
        direction="maximize",
        storage=f"sqlite:///{tmp_path}/s.db",
        sampler=RungTPESampler(n_startup_trials=4, seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(8):
            trial.report(x * (1 - 0.5**step), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x * (1 - 0.5**7)

    study.optimize(objective, 25)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:  # as Optuna records them: the view changed nothing in the storage
        last_step = max(t.intermediate_values)
        assert (t.state == TrialState.COMPLETE) == (last_step == 7)
        assert t.value == t.intermediate_values[last_step]
    assert study.best_value > 0.85


def test_rung_tpe_from_the_cli_with_pruning_and_two_workers(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """The templates' pairing through `hpotool optimize --workers 2`: worker processes build the sampler
    from the config, TPE runs past its startup trials on the view, and the study stores real states."""
    run_dict["epochs"] = 6
    opt_dict.update(
        n_trials=14,
        sampler={"name": "rung_tpe", "kwargs": {"n_startup_trials": 4}},
        pruner={"name": "successive_halving", "kwargs": {"min_resource": 1}},
    )
    run, opt = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    result = CliRunner().invoke(
        app, ["optimize", "-r", str(run), "-o", str(opt), "--workers", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 14
    assert {t.state for t in done} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(len(t.intermediate_values) == 6 for t in done if t.state == TrialState.COMPLETE)


def _notes(tmp_path: Path, run_dict: dict, opt_dict: dict) -> tuple[str, ...]:
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    return prepare_study(run_path, opt_path).notes


def test_cmaes_over_a_few_rounded_values_says_its_trials_repeat(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """CMA-ES draws model.layers 1..4 continuously and rounds: a study of 8 trials ran 2 in five of them,
    the same training again, without a word."""
    opt_dict["sampler"] = {"name": "cmaes"}
    opt_dict["search_space"] = {"model.layers": {"type": "int", "low": 1, "high": 4}}
    assert _notes(tmp_path, run_dict, opt_dict) == (
        f"{tmp_path / 'o.yaml'}: sampler cmaes draws model.layers (4 values) as a continuous value rounded to "
        "its values, and no searched parameter is continuous: its trials repeat configurations already run, "
        "training the same values again, often one trial after trial; use tpe, or grid or "
        "bruteforce, which run each of the space's 4 configurations once",
    )
    opt_dict["search_space"]["model.dropout"] = {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25}
    opt_dict["search_space"]["model.activation"] = {"type": "categorical", "choices": ["relu", "tanh"]}
    assert _notes(tmp_path, run_dict, opt_dict) == (
        f"{tmp_path / 'o.yaml'}: sampler cmaes draws model.layers (4 values), model.dropout (3 values) as a "
        "continuous value rounded to their values, and no searched parameter is continuous: its trials repeat "
        "configurations already run, training the same values again, often one trial after trial; "
        "use tpe, or grid or bruteforce, which run each of the space's 24 configurations once",
    )
    opt_dict["search_space"]["optimizer.lr"] = {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
    assert _notes(tmp_path, run_dict, opt_dict) == ()  # a continuous lr: no configuration repeats
    del opt_dict["search_space"]["optimizer.lr"]
    opt_dict["sampler"] = {"name": "tpe"}
    assert _notes(tmp_path, run_dict, opt_dict) == ()
    opt_dict["sampler"] = {"name": "cmaes"}
    opt_dict["search_space"] = {"model.hidden.0": {"type": "int", "low": 8, "high": 64}}  # 57 values
    assert _notes(tmp_path, run_dict, opt_dict) == ()
    opt_dict["search_space"] = {  # 4 x 8 x 4 = 128 configurations: a repeat is rare
        "model.layers": {"type": "int", "low": 1, "high": 4},
        "model.hidden.0": {"type": "int", "low": 8, "high": 64, "step": 8},
        "batch_size": {"type": "int", "low": 16, "high": 64, "step": 16},
    }
    assert _notes(tmp_path, run_dict, opt_dict) == ()


def test_gp_over_only_categorical_parameters_says_it_may_repeat_one(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """GP over an all-categorical space proposed configurations already run (32 configurations: 15 in 25
    trials), each trained again, without a word."""
    opt_dict["sampler"] = {"name": "gp"}
    opt_dict["search_space"] = {
        "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd", "adamw"]},
    }
    assert _notes(tmp_path, run_dict, opt_dict) == (
        f"{tmp_path / 'o.yaml'}: sampler gp over only categorical parameters (model.activation, optimizer.name: "
        "6 configurations) may propose a configuration already run, training the same values again; "
        "use tpe, or bruteforce, which runs each configuration once",
    )
    opt_dict["search_space"]["optimizer.momentum"] = {  # 2 x (2 + 2): 8 configurations, not 12
        "type": "categorical",
        "choices": [0.5, 0.9],
        "when": {"optimizer.name": "sgd"},
    }
    assert (  # it said "at most 12 configurations", counting momentum also where optimizer.name is not sgd
        "optimizer.momentum: 8 configurations) may propose" in _notes(tmp_path, run_dict, opt_dict)[0]
    )
    opt_dict["search_space"]["model.layers"] = {"type": "int", "low": 1, "high": 3}
    assert _notes(tmp_path, run_dict, opt_dict) == ()


def test_cmaes_says_its_trials_repeat_by_the_configurations_a_conditional_space_reaches(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The note fired where the product of the value counts was at most 100: a conditional space of 72
    configurations (momentum's 5 choices only with sgd), whose product is 4 x 3 x 2 x 5 = 120, had none,
    though its trials repeat as those of a space of 72 do, and the note counts configurations so."""
    opt_dict["sampler"] = {"name": "cmaes"}
    opt_dict["search_space"] = {
        "model.layers": {"type": "int", "low": 1, "high": 4},
        "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
        "optimizer.name": {"type": "categorical", "choices": ["rmsprop", "sgd"]},
        "optimizer.momentum": {
            "type": "categorical",
            "choices": [0.0, 0.3, 0.5, 0.7, 0.9],
            "when": {"optimizer.name": "sgd"},
        },
    }
    assert _notes(tmp_path, run_dict, opt_dict) == (
        f"{tmp_path / 'o.yaml'}: sampler cmaes draws model.layers (4 values) as a continuous value rounded to "
        "its values, and no searched parameter is continuous: its trials repeat configurations already run, "
        "training the same values again, often one trial after trial; use tpe, or grid or bruteforce, which "
        "run each of the space's 72 configurations once",
    )
    opt_dict["search_space"]["optimizer.momentum"]["when"] = {"optimizer.name": {"in": ["rmsprop", "sgd"]}}
    assert _notes(tmp_path, run_dict, opt_dict) == ()  # the condition always holds: 120 configurations
