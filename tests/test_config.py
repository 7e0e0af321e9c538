from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.config import OptimizeConfig, RunConfig, load_optimize_config, load_run_config, validate_config
from hpotool.errors import HpoError
from hpotool.search_space import FloatParam, IntParam

from .conftest import write_yaml

REPO = Path(__file__).resolve().parents[1]


def test_shipped_configs_load() -> None:
    run = load_run_config(REPO / "configs" / "run_template.yaml")
    opt = load_optimize_config(REPO / "configs" / "optimize_template.yaml")
    assert run.model.name == "mlp"
    assert opt.n_trials == 20
    assert opt.sampler.name == "rung_tpe" and opt.pruner.name == "successive_halving"


def test_template_spells_out_optunas_own_defaults() -> None:
    """The template's sampler and pruner kwargs say "Optuna 5 defaults, written out" (TPE's, for rung_tpe):
    each must build the same sampler or pruner as leaving it out (a written-out `multivariate: false` once
    turned Optuna 5's multivariate TPE off in every study made from the template)."""
    opt = load_optimize_config(REPO / "configs" / "optimize_template.yaml")

    def sampled(**kwargs: Any) -> list[dict[str, Any]]:
        study = optuna.create_study(
            direction=opt.direction, sampler=optuna.samplers.TPESampler(seed=0, **kwargs)
        )
        study.optimize(
            lambda t: -((t.suggest_float("x", -3, 3) - 1) ** 2) - t.suggest_float("y", -3, 3) ** 2, 14
        )
        return [t.params for t in study.trials]

    assert sampled(**opt.sampler.kwargs) == sampled()  # differs after the startup trials if a kwarg is not
    pruner_defaults = {
        name: p.default
        for name, p in inspect.signature(optuna.pruners.SuccessiveHalvingPruner).parameters.items()
    }
    assert opt.pruner.kwargs == {name: pruner_defaults[name] for name in opt.pruner.kwargs}


def test_defaults_are_complete_and_frozen() -> None:
    run = RunConfig()
    assert run.device == "auto" and run.data.name == "digits" and run.optimizer.lr == 1e-3
    with pytest.raises(Exception, match="frozen"):
        run.epochs = 3  # type: ignore[misc]


def test_component_arguments_are_flat_and_checked() -> None:
    run = RunConfig.model_validate({"optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}})
    assert run.optimizer.kwargs == {"lr": 0.01, "weight_decay": 0.0, "momentum": 0.9}
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, {"optimizer": {"name": "sgd", "momentm": 0.9}}, "run.yaml")
    assert str(err.value).startswith("run.yaml: optimizer: optimizer 'sgd' takes no argument 'momentm'")
    assert "did you mean 'momentum'?" in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optimizr": {}}, "run.yaml: unknown key 'optimizr' (did you mean 'optimizer'?)"),
        ({"optimizer": {"name": "adamx"}}, "unknown optimizer 'adamx' (did you mean 'adam'?)"),
        ({"epochs": "many"}, "run.yaml: epochs: Input should be a valid integer"),
        ({"epochs": 0}, "run.yaml: epochs: Input should be greater than or equal to 1"),
        ({"device": "gpu"}, "run.yaml: device: device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
        ({"model": {"name": "mlp", "hiden": 3}}, "did you mean 'hidden'?"),
        ({"model": {"name": "mlp", "in_features": 3}}, "'in_features' is set by hpotool"),
        ({"data": {"val_fraction": 1.5}}, "run.yaml: data.val_fraction: Input should be less than 1"),
        ({"model": {"name": "nomodule.x:Y"}}, "cannot import 'nomodule.x:Y': No module named 'nomodule'"),
        ({"model": "mlp"}, "run.yaml: model: expected a mapping, got 'mlp'"),
    ],
)
def test_run_config_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, data, "run.yaml")
    assert message in str(err.value)


SPACE_DOTTED = {
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "model.hidden.0": {"type": "int", "low": 16, "high": 64, "step": 16},
    "model.activation": {"type": "categorical", "choices": ["relu", "gelu"]},
}
SPACE_NESTED = {
    "optimizer": {"lr": {"type": "float", "min": 1e-4, "max": 1e-1, "log": True}},
    "model": {
        "hidden": {"0": {"type": "int", "min": 16, "max": 64, "step": 16}},
        "activation": {"type": "categorical", "choices": ["relu", "gelu"]},
    },
}


def test_both_search_space_spellings_mean_the_same() -> None:
    dotted = OptimizeConfig.model_validate({"study_name": "s", "search_space": SPACE_DOTTED})
    nested = OptimizeConfig.model_validate({"study_name": "s", "trials": 20, "search_space": SPACE_NESTED})
    assert dotted.search_space == nested.search_space
    assert list(nested.search_space) == ["optimizer.lr", "model.hidden.0", "model.activation"]
    assert nested.search_space["optimizer.lr"] == FloatParam(type="float", low=1e-4, high=1e-1, log=True)
    assert isinstance(nested.search_space["model.hidden.0"], IntParam)
    assert nested.n_trials == 20


def test_sampler_shorthand_and_default_storage() -> None:
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "sampler": "random", "search_space": SPACE_DOTTED}
    )
    assert opt.sampler.name == "random" and opt.sampler.kwargs == {}
    assert opt.storage_url == "sqlite:///studies/s.db"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"study_name": "a/b"}, "study_name: study_name 'a/b' may hold only"),
        ({"study_name": "..x"}, "may hold only"),
        ({"study_name": "ü_study"}, "study_name 'ü_study' may hold only ASCII letters"),  # said "letters"
        (
            {"study_name": "-x"},
            "study_name '-x' may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter",
        ),
        ({"n_trials": 0}, "n_trials: Input should be greater than 0"),
        ({"direction": "up"}, "direction: Input should be 'minimize' or 'maximize', got 'up'"),
        ({"n_trial": 3}, "unknown key 'n_trial' (did you mean 'n_trials'?)"),
        (
            {"search_space": {}},
            "opt.yaml: search_space: the search space is empty; add at least one parameter",
        ),
        (
            {"search_space": {"x": {"type": "flaot", "low": 1, "high": 2}}},
            "search_space.x: unknown type 'flaot' (did you mean 'float'?); use one of: float, int, categorical",
        ),
        (
            {"search_space": {"x": {"type": "float", "lwo": 1, "high": 2}}},
            "search_space.x: unknown key 'lwo' (did you mean 'low'?)",
        ),
        ({"search_space": {"x": {"low": 1, "high": 2}}}, "search_space.x: a parameter needs a 'type'"),
        (
            {"search_space": {"x": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "search_space.x: low must be > 0 when log is true, got 0.0",
        ),
        (
            {"search_space": {"x": {"type": "float", "low": 2, "high": 1}}},
            "search_space.x: low must be <= high, got low=2.0 > high=1.0",
        ),
        (
            {"search_space": {"x": {"type": "categorical", "choices": []}}},
            "search_space.x.choices: List should have at least 1 item",
        ),
        (
            {"search_space": {"x": {"type": "int", "low": 1, "high": 10, "step": 4}}},
            "step 4 does not divide the range [1, 10]",
        ),
    ],
)
def test_optimize_config_errors(change: dict[str, Any], message: str) -> None:
    data = {"study_name": "s", "search_space": SPACE_DOTTED, **change}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert message in str(err.value)


def test_loaders_name_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "opt.yaml", {"study_name": "s"})
    with pytest.raises(HpoError, match=r"opt.yaml: search_space: required key is missing"):
        load_optimize_config(path)


def test_component_arguments_are_checked_unless_asked_not_to(run_dict: dict[str, Any]) -> None:
    data = {**run_dict, "optimizer": {"name": "adam", "lr": 0.01, "betas_typo": [0.9, 0.99]}}
    with pytest.raises(HpoError, match="betas_typo"):
        validate_config(RunConfig, data, "run.yaml")
    run = validate_config(RunConfig, data, "study 's': run_config", check_components=False)
    assert run.optimizer.kwargs["betas_typo"] == [0.9, 0.99]


def test_n_trials_null_runs_until_the_timeout_and_needs_one(opt_dict: dict[str, Any]) -> None:
    opt = validate_config(OptimizeConfig, {**opt_dict, "n_trials": None, "timeout": 60}, "optimize.yaml")
    assert opt.n_trials is None and opt.timeout == 60
    with pytest.raises(HpoError) as caught:
        validate_config(OptimizeConfig, {**opt_dict, "n_trials": None}, "optimize.yaml")
    assert str(caught.value) == (
        "optimize.yaml: n_trials: null runs trials until the timeout, and timeout is null too; give n_trials a "
        "number, or timeout: SECONDS"
    )
