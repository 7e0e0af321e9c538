from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.config_files import load_optimize_config, load_run_config
from hpotool.errors import HpoError
from hpotool.overrides import apply_overrides
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
    ("section", "message"),
    [
        (
            {"scheduler": {"name": "cosine", "intervall": "step"}},
            "scheduler: 'intervall' is neither an argument of scheduler 'cosine' nor one of the section's own keys "
            "(did you mean 'interval'?); scheduler 'cosine' takes: eta_min, warmup_epochs, warmup_start",
        ),
        (  # it said "data 'digits' takes no argument 'val_fracion' (did you mean 'val_fraction'?); it takes: no
            # arguments", as if val_fraction were an argument of digits it did not list
            {"data": {"name": "digits", "val_fracion": 0.3}},
            "data: 'val_fracion' is neither an argument of data 'digits' nor one of the section's own keys (did you "
            "mean 'val_fraction'?); data 'digits' takes no arguments",
        ),
    ],
)
def test_a_misspelt_key_of_the_section_itself_is_suggested(section: dict[str, Any], message: str) -> None:
    """The section's own keys (scheduler.interval and monitor, data.val_fraction, subset_fraction and
    split_seed) were left out of the suggestions: `intervall: step` got no "did you mean", only the
    schedule's arguments."""
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, section, "run.yaml")
    assert str(err.value) == f"run.yaml: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optimizr": {}}, "run.yaml: unknown key 'optimizr' (did you mean 'optimizer'?)"),
        ({"optimizer": {"name": "adamx"}}, "unknown optimizer 'adamx' (did you mean 'adam'?)"),
        ({"epochs": "many"}, "run.yaml: epochs: Input should be a valid integer"),
        ({"epochs": 0}, "run.yaml: epochs: must be 1 or more"),
        ({"device": "gpu"}, "run.yaml: device: must be auto, cpu, cuda, cuda:N or mps, got gpu"),
        ({"model": {"name": "mlp", "hiden": 3}}, "did you mean 'hidden'?"),
        ({"model": {"name": "mlp", "in_features": 3}}, "'in_features' is set by hpotool"),
        ({"data": {"val_fraction": 1.5}}, "run.yaml: data.val_fraction: must be below 1, got 1.5"),
        ({"model": {"name": "nomodule.x:Y"}}, "cannot import 'nomodule.x:Y': No module named 'nomodule'"),
        ({"model": "mlp"}, "run.yaml: model: expected a mapping, got mlp; write model: {name: mlp}"),
        (
            {"trainer": "tests.trainers:never_reports"},
            "run.yaml: trainer: expected a mapping, got tests.trainers:never_reports; write trainer: "
            "{function: tests.trainers:never_reports}",
        ),
    ],
)
def test_run_config_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, data, "run.yaml")
    assert message in str(err.value)


def test_an_empty_section_is_not_told_to_write_an_empty_name() -> None:
    # `model: ""` said "expected a mapping, got \"\"; write model: {name: }"
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, {"model": ""}, "run.yaml")
    assert str(err.value) == 'run.yaml: model: expected a mapping, got ""'


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


def test_pruner_null_means_no_pruning(tmp_path: Path) -> None:
    """`pruner: null`, written like `storage: null` and `timeout: null`, was 'expected a mapping, got None';
    with several metrics it is what the refusal of a pruner asks for."""
    opt = OptimizeConfig.model_validate({"study_name": "s", "pruner": None, "search_space": SPACE_DOTTED})
    assert opt.pruner.name == "nop" and opt.pruner.kwargs == {}
    path = write_yaml(
        tmp_path / "o.yaml",
        {"study_name": "s", "metrics": ["val_loss", "n_params"], "directions": ["minimize", "minimize"]}
        | {"pruner": None, "search_space": SPACE_DOTTED},
    )
    assert load_optimize_config(path).pruner.name == "nop"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"study_name": "a/b"}, "study_name: 'a/b' may hold only"),
        ({"study_name": "..x"}, "may hold only"),
        ({"study_name": "ü_study"}, "study_name: 'ü_study' may hold only ASCII letters"),  # said "letters"
        (
            {"study_name": "-x"},
            "study_name: '-x' may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter",
        ),
        (
            {"study_name": "a.db"},
            "study_name: 'a.db' ends in .db, and its default storage adds .db (studies/a.db.db); "
            "name the study 'a' (its file is then studies/a.db)",
        ),
        ({"study_name": "run.2.sqlite3"}, "name the study 'run.2' (its file is then studies/run.2.db)"),
        (
            {"study_name": "x."},
            "study_name: 'x.' ends in '.' (its file would be studies/x..db); drop the final '.'",
        ),
        ({"study_name": "a" * 245}, "study_name: is 245 characters long; give at most 244"),
        ({"n_trials": 0}, "n_trials: must be above 0"),
        ({"direction": "up"}, "direction: Input should be minimize or maximize, got up"),
        # a British spelling, or the start alone (Ray Tune's mode: max), got no "did you mean"
        (
            {"direction": "minimise"},
            "direction: Input should be minimize or maximize, got minimise (did you mean 'minimize'?)",
        ),
        (
            {"directions": ["minimize", "Maximise"]},
            "directions.1: Input should be minimize or maximize, got Maximise (did you mean 'maximize'?)",
        ),
        (
            {"direction": "max"},
            "direction: Input should be minimize or maximize, got max (did you mean 'maximize'?)",
        ),
        ({"n_trial": 3}, "unknown key 'n_trial' (did you mean 'n_trials'?)"),
        (
            {"search_space": {}},
            "opt.yaml: search_space: the search space is empty; add at least one parameter",
        ),
        (
            {"search_space": {"x": {"type": "flaot", "low": 1, "high": 2}}},
            "search_space.x: unknown type 'flaot' (did you mean 'float'?); choose one of: float, int, categorical",
        ),
        (
            {"search_space": {"x": {"type": "float", "lwo": 1, "high": 2}}},
            "search_space.x: unknown key 'lwo' (did you mean 'low'?)",
        ),
        ({"search_space": {"x": {"low": 1, "high": 2}}}, "search_space.x: a parameter needs a 'type'"),
        (
            {"search_space": {"x": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "search_space.x: low must be above 0 with log: true (a log scale has no 0), got 0.0; give a low above 0, such as 1.0e-5, or drop log: true",
        ),
        (
            {"search_space": {"x": {"type": "float", "low": 2, "high": 1}}},
            "search_space.x: low must be at most high, got low: 2.0, high: 1.0; swap them (low: 1.0, high: 2.0)",
        ),
        (
            {"search_space": {"x": {"type": "categorical", "choices": []}}},
            "search_space.x.choices: must have at least 1 item",
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


@pytest.mark.parametrize(
    ("name", "suggested"),
    [("a/b", "a_b"), ("x..y", "x.y"), ("..x", "x"), ("my study", "my_study"), ("-x", "x"), ("ü", "mnist")],
)
def test_a_study_name_refused_for_its_characters_suggests_one_that_is_taken(
    name: str, suggested: str
) -> None:
    """It said which characters a name may hold, and no name to give."""
    data = {"study_name": name, "search_space": SPACE_DOTTED}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value).endswith(f"; name it {suggested!r}, say")
    assert (
        validate_config(OptimizeConfig, {**data, "study_name": suggested}, "opt.yaml").study_name == suggested
    )


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


@pytest.mark.parametrize(
    ("metric", "refused"),
    [("val_accuracy", True), ("f1", True), ("val_loss", False), ("val_rmse", False), ("mae_loss", False)],
)
def test_a_metric_with_no_direction_is_minimized_only_when_it_is_a_loss_or_cost(
    tmp_path: Path, metric: str, refused: bool
) -> None:
    """Omitting direction minimizes (Optuna's default): right for losses, errors, size and time; for
    val_accuracy or a trainer's own score it would search for the worst model, so it is refused."""
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    path = write_yaml(
        tmp_path / "optimize.yaml", {"study_name": "s", "metric": metric, "search_space": space}
    )
    if not refused:
        assert load_optimize_config(path).direction == "minimize"
        return
    with pytest.raises(HpoError, match=rf"^{path}: direction: not given, so {metric} would be minimized"):
        load_optimize_config(path)
    write_yaml(path, {"study_name": "s", "metric": metric, "direction": "minimize", "search_space": space})
    assert load_optimize_config(path).direction == "minimize"  # said on purpose


def test_a_loss_or_error_to_maximize_is_refused(tmp_path: Path) -> None:
    # It was accepted without a word, and the study searched for the worst model.
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    path = tmp_path / "optimize.yaml"
    write_yaml(
        path, {"study_name": "s", "metric": "val_rmse", "direction": "maximize", "search_space": space}
    )
    with pytest.raises(
        HpoError, match=rf"^{path}: direction: maximize would search for the largest val_rmse"
    ):
        load_optimize_config(path)
    # metric left out (deleted with its line): "use minimize" would have searched val_loss, not the metric meant
    write_yaml(path, {"study_name": "s", "direction": "maximize", "search_space": space})
    with pytest.raises(
        HpoError,
        match=rf"^{path}: direction: maximize, and metric is not given, so it would search for the largest "
        r"val_loss \(the default metric\), the worst model; name the metric to maximize \(metric: val_accuracy, "
        r"or your trainer's\), or use minimize$",
    ):
        load_optimize_config(path)
    multi = {"metrics": ["n_params", "val_loss"], "directions": ["maximize", "maximize"]}
    write_yaml(path, {"study_name": "s", **multi, "search_space": space})
    with pytest.raises(HpoError, match=r"directions\[1\]: maximize would search for the largest val_loss"):
        load_optimize_config(path)
    write_yaml(
        path, {"study_name": "s", "metric": "neg_loss", "direction": "maximize", "search_space": space}
    )
    assert load_optimize_config(path).direction == "maximize"  # a trainer's own score, named as it likes


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (
            ["relu", "gelu"],
            "[relu, gelu]; write a list of choices as {type: categorical, choices: [relu, gelu]}",
        ),
        (
            32,
            "32; a fixed value belongs in the run config (model.activation: 32); to search it, give "
            "{type: int, low: ..., high: ...}",
        ),
    ],
)
def test_a_search_space_entry_that_is_not_a_mapping_says_how_to_write_it(
    tmp_path: Path, value: Any, hint: str
) -> None:
    path = write_yaml(
        tmp_path / "optimize.yaml",
        {"study_name": "s", "search_space": {"model.activation": value}},
    )
    with pytest.raises(HpoError) as info:
        load_optimize_config(path)
    assert str(info.value) == f"{path}: search_space.model.activation: expected a mapping, got {hint}"


def test_a_run_config_and_an_optimize_config_given_the_wrong_way_round_is_one_line(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Swapping -r and -o printed a line per key of the other file (eleven `unknown key` lines)."""
    run, opt = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
    with pytest.raises(HpoError) as info:
        load_run_config(opt)
    assert str(info.value) == (
        f"{opt}: this is an optimize config (it has study_name, n_trials, metric, ...), not a run config; give "
        f"a run config (project, data, model, ...) here, and this file as --optimize-config"
    )
    with pytest.raises(HpoError) as info:
        load_optimize_config(run)
    assert str(info.value) == (
        f"{run}: this is a run config (it has project, device, torch_threads, ...), not an optimize config; give "
        f"it as --run-config, and an optimize config (study_name, search_space, ...) as --optimize-config"
    )
    write_yaml(run, {**run_dict, "search_spce": {}})  # one stray key still gets its own line
    with pytest.raises(HpoError, match=r"unknown key 'search_spce'"):
        load_run_config(run)


def test_an_enqueued_value_whose_condition_the_same_set_switches_off_is_refused() -> None:
    """`{optimizer.name: adam, optimizer.momentum: 0.9}` with momentum only for sgd ran adam and dropped the
    momentum without a word."""
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer.name": "sgd"}},
    }
    data = {
        "study_name": "s",
        "search_space": space,
        "enqueue": [{"optimizer.name": "adam", "optimizer.momentum": 0.9}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == (
        "o.yaml: enqueue.0: optimizer.momentum=0.9 would not be used: its condition optimizer.name: sgd does "
        "not hold for optimizer.name=adam; drop optimizer.momentum from this set or change optimizer.name"
    )
    data["enqueue"] = [{"optimizer.name": "sgd", "optimizer.momentum": 0.9}, {"optimizer.name": "adam"}]
    assert len(validate_config(OptimizeConfig, data, "o.yaml").enqueue) == 2


def test_enqueued_sets_that_name_one_section_choice_are_refused_as_one_set() -> None:
    """`enqueue: [{optimizer: {name: adam}}, {optimizer: {name: adam, lr: 0.001}}]` name the one choice
    {name: adam} (adam's default lr): a new study queued it twice and trained it twice."""
    data = {
        "study_name": "s",
        "search_space": {
            "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]}
        },
        "enqueue": [{"optimizer": {"name": "adam"}}, {"optimizer": {"name": "adam", "lr": 0.001}}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == (
        "o.yaml: enqueue.1: optimizer={name: adam, lr: 0.001} is the set enqueue.0 gives (optimizer={name: adam}): "
        "its sections build the same choices (optimizer={name: adam}), so the study would train it twice; drop one"
    )
    data["enqueue"] = [{"optimizer": {"name": "adam", "lr": 0.001}}, {"optimizer": {"name": "sgd"}}]
    assert validate_config(OptimizeConfig, data, "o.yaml").enqueue == [
        {"optimizer": {"name": "adam"}},
        {"optimizer": {"name": "sgd"}},
    ]


def test_an_enqueued_set_written_twice_is_refused() -> None:
    """`enqueue: [{optimizer.lr: 0.01}, {optimizer.lr: 0.01}]` was queued twice on a new study (two trials of
    one configuration) but once on a resume (the second counted as tried): refused at load, as sets written
    apart that name the same choices are; a whole section written twice alike too."""
    data: dict[str, Any] = {
        "study_name": "s",
        "search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        "enqueue": [{"optimizer.lr": 0.01}, {"optimizer.lr": 0.02}, {"optimizer.lr": 0.01}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == (
        "o.yaml: enqueue.2: optimizer.lr=0.01 is enqueue.0 again, so a new study would train it twice; drop one"
    )
    data["search_space"]["optimizer"] = {
        "type": "categorical",
        "choices": [{"name": "sgd"}, {"name": "adam"}],
    }
    data["enqueue"] = [{"optimizer": {"name": "adam"}}, {"optimizer": {"name": "adam"}}]
    with pytest.raises(HpoError, match=r"enqueue.1: optimizer=\{name: adam\} is enqueue.0 again"):
        validate_config(OptimizeConfig, data, "o.yaml")


def test_an_enqueued_section_names_the_choice_whose_keys_the_set_searched_below_it_replaces() -> None:
    """`{optimizer: {name: sgd, lr: 0.05, momentum: 0.9}, optimizer.lr: 0.05}` beside the choice {name: sgd,
    lr: 0.1, momentum: 0.9} and a searched optimizer.lr trains sgd with lr 0.05 and momentum 0.9, as the set
    says: it was refused as outside the search space; it now names that choice. A section that says another
    lr than the set's optimizer.lr, or a choice whose lr the searched key does not replace, is still outside."""
    sgd = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    data: dict[str, Any] = {
        "study_name": "s",
        "search_space": {
            "optimizer": {"type": "categorical", "choices": [sgd, {"name": "adam"}]},
            "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.2, "log": True},
        },
        "enqueue": [{"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "optimizer.lr": 0.05}],
    }
    (params,) = validate_config(OptimizeConfig, data, "o.yaml").enqueue
    assert params == {"optimizer": sgd, "optimizer.lr": 0.05}
    trained = apply_overrides(RunConfig(), params).optimizer.model_dump()
    assert (trained["name"], trained["lr"], trained["momentum"]) == ("sgd", 0.05, 0.9)  # what the set says
    data["enqueue"] = [{"optimizer": {"name": "sgd", "momentum": 0.9}, "optimizer.lr": 0.05}]
    assert validate_config(OptimizeConfig, data, "o.yaml").enqueue == [
        {"optimizer": sgd, "optimizer.lr": 0.05}
    ]
    data["enqueue"] = [{"optimizer": {"name": "sgd", "lr": 0.07, "momentum": 0.9}, "optimizer.lr": 0.05}]
    with pytest.raises(
        HpoError, match=r"enqueue.0: optimizer=\{name: sgd, lr: 0.07, momentum: 0.9\} lies outside"
    ):
        validate_config(OptimizeConfig, data, "o.yaml")
    data["enqueue"] = [{"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "optimizer.lr": 0.05}]
    data["search_space"]["optimizer.lr"]["when"] = {"optimizer": {"in": [{"name": "adam"}]}}
    with pytest.raises(
        HpoError, match=r"enqueue.0: optimizer=\{name: sgd, lr: 0.05, momentum: 0.9\} lies outside"
    ):
        validate_config(OptimizeConfig, data, "o.yaml")


def test_components_of_a_package_that_does_not_import_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from the wrong folder, a config whose model and loss come from the user's package printed the
    same 'No module named' line once per section."""
    monkeypatch.chdir(tmp_path)
    run = {"model": {"name": "mylab.nets:Net"}, "loss": {"name": "mylab.losses:Focal"}}
    with pytest.raises(HpoError) as info:
        validate_config(RunConfig, run, "run.yaml")
    assert str(info.value) == (
        "run.yaml: model: cannot import 'mylab.nets:Net': No module named 'mylab'; imports resolve from the "
        "current folder and PYTHONPATH: run hpotool from the folder that holds mylab/ (or mylab.py), add that "
        f"folder to PYTHONPATH, or install your project in the Python hpotool runs in ({sys.executable} -m pip "
        "install -e YOUR_PROJECT) (loss needs it too)"
    )


def test_an_argument_of_the_auto_loss_says_to_name_the_loss(run_dict: dict[str, Any]) -> None:
    """`loss: {name: auto, label_smoothing: 0.1}` said "it takes: no arguments", and searching
    loss.label_smoothing "the run config has no such key", neither saying that cross_entropy takes it."""
    with pytest.raises(
        HpoError, match=r"loss: loss 'auto' takes no arguments; to give it label_smoothing, name "
    ):
        validate_config(RunConfig, {**run_dict, "loss": {"name": "auto", "label_smoothing": 0.1}}, "r.yaml")
    validate_config(
        RunConfig, {**run_dict, "loss": {"name": "cross_entropy", "label_smoothing": 0.1}}, "r.yaml"
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (1.0, "1.0 trains every sample towards the same uniform target whatever its label"),
        (1, "1 trains every sample towards the same uniform target whatever its label"),
        (1.5, "1.5 is outside what it means"),
        (-0.1, "-0.1 is outside what it means"),
    ],
)
def test_label_smoothing_outside_0_to_1_is_refused_with_the_config(
    run_dict: dict[str, Any], value: float, why: str
) -> None:
    """label_smoothing: 1.0, which torch accepts, trained every sample towards the uniform target: the model
    learned nothing and val_accuracy stayed at chance (0.11 on digits), without a word; 1.5 failed only at
    the one-step check, naming no valid range."""
    loss = {"name": "cross_entropy", "label_smoothing": value}
    with pytest.raises(HpoError) as info:
        validate_config(RunConfig, {**run_dict, "loss": loss}, "r.yaml")
    assert str(info.value) == (
        f"r.yaml: loss: loss 'cross_entropy' argument 'label_smoothing': {why}"
        + (
            ", so the model learns nothing"
            if value == 1
            else " (a share of the target spread over the classes)"
        )
        + "; give a value from 0 up to but not including 1, such as 0.1"
    )
    functional = {"name": "torch.nn.functional:cross_entropy", "label_smoothing": value}
    with pytest.raises(HpoError, match="argument 'label_smoothing'"):
        validate_config(RunConfig, {**run_dict, "loss": functional}, "r.yaml")
    for fine in (0.0, 0.99):
        validate_config(RunConfig, {**run_dict, "loss": {**loss, "label_smoothing": fine}}, "r.yaml")


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_no_sampler_takes_is_refused_as_the_seed(seed: int) -> None:
    """It was "sampler: 'tpe' rejected its kwargs: Seed must be between 0 and 2**32 - 1", naming kwargs the
    config does not have."""
    with pytest.raises(HpoError, match=rf"o.yaml: seed: must be from 0 to 4294967295 .*, got {seed}"):
        validate_config(
            OptimizeConfig, {"study_name": "s", "seed": seed, "search_space": SPACE_DOTTED}, "o.yaml"
        )


def test_the_largest_seed_gives_every_worker_a_seed_its_sampler_takes() -> None:
    from hpotool.study_sampler import study_sampler

    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "seed": 2**32 - 1, "sampler": "random", "search_space": SPACE_DOTTED}
    )
    assert isinstance(study_sampler(opt, worker=1), optuna.samplers.RandomSampler)  # seed 2**32 was refused


@pytest.mark.parametrize(
    ("key", "value", "instead"),
    [
        ("load_if_exists", True, "hpotool always resumes a study of that name"),
        ("n_jobs", 4, "optimize --workers N"),
        ("show_progress_bar", False, "optimize --quiet"),
        ("catch", ["ValueError"], "optimize --max-failures K"),
    ],
)
def test_an_optuna_script_s_study_arguments_name_what_hpotool_takes_instead(
    opt_dict: dict[str, Any], key: str, value: Any, instead: str
) -> None:
    """They listed the valid keys, leaving an Optuna user to guess where load_if_exists or n_jobs went."""
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, {**opt_dict, key: value}, "o.yaml")
    assert str(info.value).startswith(f"o.yaml: unknown key {key!r}; ")
    assert instead in str(info.value)
    assert "valid keys" not in str(info.value)


def test_n_trials_and_its_alias_trials_together_are_one_clear_line(opt_dict: dict[str, Any]) -> None:
    """It said "unknown key 'trials' (did you mean 'n_trials'?)", though trials is a valid spelling."""
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, {**opt_dict, "trials": 5}, "o.yaml")
    assert str(info.value) == "o.yaml: give either 'n_trials' or 'trials' (the same setting), not both"


def test_a_fixed_value_in_a_nested_section_of_the_space_is_named(tmp_path: Path) -> None:
    """`optimizer: {name: sgd, lr: {...}}` said "search_space.optimizer: a parameter needs a 'type'"."""
    space = {"optimizer": {"name": "sgd", "lr": {"type": "float", "low": 0.001, "high": 0.1}}}
    path = write_yaml(tmp_path / "optimize.yaml", {"study_name": "s", "search_space": space})
    with pytest.raises(HpoError) as info:
        load_optimize_config(path)
    assert str(info.value) == (
        f"{path}: search_space.optimizer.name: expected a mapping, got sgd; a fixed value belongs in the run "
        f"config (optimizer.name: sgd); to search it, give {{type: categorical, choices: [...]}}"
    )


@pytest.mark.parametrize("name", ["digits.v2", "run.dbx", "db", "_db", "a" * 244])
def test_a_study_name_with_a_dot_or_db_inside_it_is_accepted(name: str) -> None:
    assert (
        OptimizeConfig.model_validate({"study_name": name, "search_space": SPACE_DOTTED}).study_name == name
    )


def test_optimizer_lr_given_a_yaml_boolean_is_refused(run_dict: dict[str, Any]) -> None:
    """`lr: yes` (a YAML boolean) trained at lr 1.0 without a word, as pydantic takes true as 1.0."""
    with pytest.raises(HpoError) as info:
        validate_config(RunConfig, {**run_dict, "optimizer": {"name": "adam", "lr": True}}, "r.yaml")
    assert str(info.value) == (
        "r.yaml: optimizer.lr: Input should be a valid number, got true; YAML reads an unquoted yes, no, on, off, "
        "true or false as a boolean: write a number"
    )


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        (
            {"mlflow": {"tracking_url": "sqlite:///mlflow.db"}},
            "opt.yaml: tracking.mlflow: unknown key 'tracking_url' (did you mean 'tracking_uri'?); "
            "valid keys: tracking_uri, experiment",
        ),
        (
            {"mlflw": {"tracking_uri": "sqlite:///mlflow.db"}},
            "opt.yaml: tracking: unknown key 'mlflw' (did you mean 'mlflow'?); valid keys: mlflow",
        ),
    ],
)
def test_a_misspelt_key_of_an_optional_section_is_one_line_naming_its_spelling(
    tracking: dict[str, Any], message: str
) -> None:
    """`tracking:` may be left out (its type is `TrackingConfig | None`): a typo inside it was two lines, the
    key "required key is missing" and the typo "unknown key" with neither its spelling nor the valid keys."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, "tracking": tracking}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        (
            "n_params <= 20000",
            'opt.yaml: constraints: expected a list, got the text "n_params <= 20000"; write '
            'constraints: ["n_params <= 20000"], a list even of one',
        ),
        (
            [{"n_params": "<= 20000"}],
            'opt.yaml: constraints: {n_params: "<= 20000"} is not a constraint; write each as the text '
            "METRIC <= NUMBER (or <, >=, >): 'n_params <= 20000'",
        ),
        (
            [{"metric": "n_params", "max": 20000}],
            "opt.yaml: constraints: {metric: n_params, max: 20000} is not a constraint; write each as the text "
            "METRIC <= NUMBER (or <, >=, >), e.g. 'n_params <= 200000'",
        ),
    ],
)
def test_a_constraint_not_written_as_a_list_of_texts_says_how_to_write_it(
    constraints: Any, message: str
) -> None:
    """A constraint is a text (`constraints: ["n_params <= 20000"]`). One given as a mapping (`- n_params: <=
    20000`, as YAML reads a colon) or as bare text instead of a list got pydantic's "Input should be a valid
    string" or "a valid list", which say neither what a constraint looks like nor how to write it."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, "constraints": constraints}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("change", "location", "word"),
    [
        ({"n_trials": True}, "n_trials", "integer"),
        ({"timeout": True}, "timeout", "number"),
        ({"seed": True}, "seed", "integer"),
        ({"final": {"epochs": True}}, "final.epochs", "integer"),
        ({"final": {"seeds": True}}, "final.seeds", "integer"),
        (
            {"search_space": {"model.dropout": {"type": "float", "low": True, "high": 2.0}}},
            "search_space.model.dropout.low",
            "number",
        ),
        (
            {"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": True}}},
            "search_space.model.dropout.high",
            "number",
        ),
        (
            {"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": True}}},
            "search_space.model.dropout.step",
            "number",
        ),
        (
            {"search_space": {"model.layers": {"type": "int", "low": True, "high": 3}}},
            "search_space.model.layers.low",
            "integer",
        ),
        (
            {"search_space": {"model.layers": {"type": "int", "low": 0, "high": True}}},
            "search_space.model.layers.high",
            "integer",
        ),
        (
            {"search_space": {"model.layers": {"type": "int", "low": 0, "high": 3, "step": True}}},
            "search_space.model.layers.step",
            "integer",
        ),
    ],
)
def test_an_optimize_config_number_given_a_yaml_boolean_is_refused(
    change: dict[str, Any], location: str, word: str
) -> None:
    """`n_trials: yes` ran one trial, `timeout: on` stopped after a second, `final: {seeds: yes}` trained one
    seed and `low: yes` searched from 1, without a word: pydantic takes true as 1. The run config's numbers
    refuse a YAML boolean (`epochs: yes`); the optimize config's did not."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, **change}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == (
        f"opt.yaml: {location}: Input should be a valid {word}, got true; YAML reads an unquoted yes, no, on, "
        f"off, true or false as a boolean: write a number{' of seconds' if location == 'timeout' else ''}"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"constraints": None},
        {"enqueue": None},
        {"final": None},
        {"final": {"epochs": 3, "overrides": None}},
        {"sampler": {"name": "tpe", "kwargs": None}},
        {"pruner": {"name": "median", "kwargs": None}},
    ],
)
def test_a_list_or_mapping_left_empty_is_the_same_as_left_out(change: dict[str, Any]) -> None:
    """A template's `constraints:` (or `enqueue:`, `final:`, `kwargs:`) with every entry commented out is
    null in YAML: it was refused as "Input should be a valid list, got null", though it can only mean none."""
    key = next(iter(change))
    data = {"study_name": "s", "search_space": SPACE_DOTTED}
    empty = {"final": {"epochs": 3}} if change == {"final": {"epochs": 3, "overrides": None}} else {}
    empty |= {key: {"name": change[key]["name"]}} if key in ("sampler", "pruner") else {}
    assert validate_config(OptimizeConfig, {**data, **change}, "opt.yaml") == validate_config(
        OptimizeConfig, {**data, **empty}, "opt.yaml"
    )


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("1h", "'1h' is not a number of seconds; write timeout: 3600 (1h in seconds)"),
        ("1h30m", "'1h30m' is not a number of seconds; write timeout: 5400 (1h30m in seconds)"),
        ("10 minutes", "'10 minutes' is not a number of seconds; write timeout: 600 (10 minutes in seconds)"),
        ("90s", "'90s' is not a number of seconds; write timeout: 90 (90s in seconds)"),
        ("1.5 hours", "'1.5 hours' is not a number of seconds; write timeout: 5400 (1.5 hours in seconds)"),
        (
            "soon",
            "'soon' is not a number of seconds; write one, e.g. timeout: 3600 for an hour, or timeout: null "
            "for no time limit (with n_trials set)",
        ),
    ],
)
def test_a_timeout_with_a_unit_names_its_seconds(timeout: str, message: str) -> None:
    """`timeout: 1h` read "Input should be a valid number, unable to parse string as a number, got 1h",
    which says neither that the timeout is in seconds nor how many to write."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, "timeout": timeout}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == f"opt.yaml: timeout: {message}"


def test_a_timeout_given_as_quoted_digits_is_its_seconds() -> None:
    data = {"study_name": "s", "search_space": SPACE_DOTTED, "timeout": "3600"}
    assert validate_config(OptimizeConfig, data, "opt.yaml").timeout == 3600


def test_a_misspelt_required_key_of_a_section_that_takes_any_key_is_named(run_dict: dict[str, Any]) -> None:
    """`trainer:` takes keys of the user's own (`trainer.alpha`), so a misspelt `functon:` is no unknown key:
    the line said only "trainer.function: required key is missing", leaving the user to spot the typo."""
    data = {**run_dict, "trainer": {"functon": "mypkg.train:fit", "alpha": 0.1}}
    with pytest.raises(HpoError) as err:
        validate_config(RunConfig, data, "run.yaml")
    assert str(err.value) == (
        "run.yaml: trainer.function: required key is missing; 'functon' is given: did you mean 'function'?"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"pruner": {"name": "median", "n_startup_trials": 2}},
            "opt.yaml: pruner: unknown key 'n_startup_trials'; the pruner's own arguments go under kwargs: "
            "write pruner: {name: median, kwargs: {n_startup_trials: 2}}",
        ),
        (
            {"sampler": {"name": "tpe", "n_startup_trials": 5, "multivariate": True}},
            "opt.yaml: sampler: unknown keys 'n_startup_trials', 'multivariate'; the sampler's own arguments go "
            "under kwargs: write sampler: {name: tpe, kwargs: {n_startup_trials: 5, multivariate: true}}",
        ),
        (
            {"sampler": {"name": "tpe", "kwargs": {"seed": 1}, "n_startup_trials": 5}},
            "opt.yaml: sampler: unknown key 'n_startup_trials'; the sampler's own arguments go under kwargs: "
            "write sampler: {name: tpe, kwargs: {seed: 1, n_startup_trials: 5}}",
        ),
        (
            {"sampler": {"name": "tpe", "params": {"n_startup_trials": 5}}},
            "opt.yaml: sampler: unknown key 'params'; the sampler's own arguments go under kwargs: write "
            "sampler: {name: tpe, kwargs: {n_startup_trials: 5}}",
        ),
    ],
)
def test_a_sampler_or_pruner_argument_given_flat_says_to_put_it_under_kwargs(
    change: dict[str, Any], message: str
) -> None:
    """A run config section takes its component's arguments flat (`optimizer: {name: sgd, momentum: 0.9}`);
    a sampler or pruner takes them under `kwargs:`. Written flat, as the run config taught, each read
    "unknown key 'n_startup_trials'; valid keys: name, kwargs", one line per argument."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, **change}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == message


def test_a_null_sampler_says_how_to_get_the_default_or_name_one() -> None:
    """`pruner: null` is no pruning; `sampler: null` read "expected a mapping, got null", with no word of
    what to write (there is no sampling without a sampler)."""
    data = {"study_name": "s", "search_space": SPACE_DOTTED, "sampler": None}
    with pytest.raises(HpoError) as err:
        validate_config(OptimizeConfig, data, "opt.yaml")
    assert str(err.value) == (
        "opt.yaml: sampler: expected a mapping, got null; leave sampler out for its default ({name: tpe}), or "
        "write sampler: {name: ...}"
    )


@pytest.mark.parametrize(
    ("kind", "text", "line"),
    [
        (  # it said "1: Keys should be strings, got true"
            "run",
            "device: cpu\ntrue: 3\n",
            "run.yaml: the key true is read as a boolean (YAML reads yes, no, on, off, true and false so), where "
            "keys are names; quote it ('true': ...) or write the name",
        ),
        (  # "data.None: Keys should be strings, got null"
            "run",
            "data: {name: digits, ~: 3}\n",
            "run.yaml: data: a key is null (written null or ~), where keys are names; write the name",
        ),
        (
            "optimize",
            "study_name: s\nsearch_space:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1, 3: 4}\n",
            "optimize.yaml: search_space.optimizer.lr: the key 3 is read as a number, where keys are names; quote "
            "it ('3': ...) or write the name",
        ),
        (  # "search_space.optimizer.lr.when.1.[key]: Input should be a valid string, got 1"
            "optimize",
            "study_name: s\nsearch_space:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1, when: {1: 2}}\n",
            "optimize.yaml: search_space.optimizer.lr.when: the key 1 is read as a number, where keys are names; "
            "quote it ('1': ...) or write the name",
        ),
    ],
)
def test_a_key_yaml_reads_as_a_number_boolean_or_null_is_named_as_written(
    tmp_path: Path, kind: str, text: str, line: str
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    load = load_run_config if kind == "run" else load_optimize_config
    with pytest.raises(HpoError) as err:
        load(path)
    assert str(err.value) == f"{tmp_path}/{line}"


@pytest.mark.parametrize(
    ("section", "line"),
    [
        (  # it said "takes no argument 'nam'; it takes: hidden, ..." and never name
            {"model": {"nam": "mlp"}},
            "model: 'nam' is neither an argument of model 'mlp' nor one of the section's own keys (did you mean "
            "'name'?); model 'mlp' takes: hidden, layers, activation, dropout, norm",
        ),
        (
            {"data": {"NAME": "digits"}},
            "data: 'NAME' is neither an argument of data 'digits' nor one of the section's own keys (did you mean "
            "'name'?); data 'digits' takes no arguments",
        ),
        (  # an argument misspelt is still told as one
            {"model": {"name": "mlp", "hiden": 8}},
            "model: model 'mlp' takes no argument 'hiden' (did you mean 'hidden'?); it takes: hidden, layers, "
            "activation, dropout, norm",
        ),
        (  # it said "to give it nam, name the loss it stands for", a fix for an argument, not a misspelt key
            {"loss": {"nam": "mse"}},
            "loss: 'nam' is neither an argument of loss 'auto' nor one of the section's own keys (did you mean "
            "'name'?); loss 'auto' takes no arguments",
        ),
    ],
)
def test_a_misspelt_name_in_a_section_is_suggested_name(tmp_path: Path, section: dict, line: str) -> None:
    path = write_yaml(tmp_path / "run.yaml", {"device": "cpu", **section})
    with pytest.raises(HpoError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}: {line}"


def test_an_argument_near_name_beside_a_name_is_not_suggested_name(tmp_path: Path) -> None:
    # name given: the other key is the component's argument, misspelt or not, never a second name
    path = write_yaml(tmp_path / "run.yaml", {"model": {"name": "mlp", "nam": 3}})
    with pytest.raises(HpoError, match=r"takes no argument 'nam'; it takes: hidden"):
        load_run_config(path)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (  # passed the config and the dry run; every trial failed "Overflow when unpacking long long"
            {"torch_threads": 10**30},
            "torch_threads: must be 2147483647 or less, got 1000000000000000000000000000000",
        ),
        (  # passed the config: Optuna's steps (epochs) are 32-bit integers on PostgreSQL and MySQL
            {"epochs": 10**30},
            "epochs: must be at most 2147483647 (2**31 - 1: Optuna stores each epoch as a 32-bit step on "
            "PostgreSQL and MySQL), got 1000000000000000000000000000000",
        ),
        (  # passed the config and the dry run's step; every trial's loss went NaN, pruned
            {"optimizer": {"name": "adam", "lr": float("inf")}},
            "optimizer.lr: Input should be a finite number, got .inf",
        ),
        (
            {"optimizer": {"name": "sgd", "weight_decay": float("inf")}},
            "optimizer.weight_decay: Input should be a finite number, got .inf",
        ),
        (  # it said "Input should be less than 1, got .nan", as if a smaller .nan would do
            {"data": {"name": "digits", "val_fraction": float("nan")}},
            "data.val_fraction: got .nan, YAML's not-a-number, which is no value hpotool can use: write a number",
        ),
        (
            {"optimizer": {"name": "sgd", "weight_decay": float("nan")}},
            "optimizer.weight_decay: got .nan, YAML's not-a-number, which is no value hpotool can use: write a "
            "number",
        ),
        (
            {"grad_clip": float("nan")},
            "grad_clip: got .nan, YAML's not-a-number, which is no value hpotool can use: write a number (null: no "
            "clipping)",
        ),
    ],
)
def test_values_no_trial_can_train_with_are_refused(tmp_path: Path, changes: dict, line: str) -> None:
    path = write_yaml(tmp_path / "run.yaml", {"device": "cpu", **changes})
    with pytest.raises(HpoError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}: {line}"


@pytest.mark.parametrize(
    ("final", "line"),
    [
        (
            {"seeds": 10**30},
            "final.seeds: must be at most 2147483647 (2**31 - 1: each seed is a whole training run), got "
            "1000000000000000000000000000000",
        ),
        (
            {"epochs": 2**31},
            "final.epochs: must be at most 2147483647 (2**31 - 1: Optuna stores each epoch as a 32-bit step on "
            "PostgreSQL and MySQL), got 2147483648",
        ),
    ],
)
def test_a_final_count_nothing_can_mean_is_refused(tmp_path: Path, final: dict, line: str) -> None:
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    path = write_yaml(tmp_path / "optimize.yaml", {"study_name": "s", "search_space": space, "final": final})
    with pytest.raises(HpoError) as err:
        load_optimize_config(path)
    assert str(err.value) == f"{path}: {line}"


def test_an_empty_storage_is_refused_not_taken_as_the_default(tmp_path: Path) -> None:
    # storage: "" (a templated ${DB_URL} left empty) was taken as null: local SQLite, not the shared server
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    path = write_yaml(tmp_path / "optimize.yaml", {"study_name": "s", "storage": "", "search_space": space})
    with pytest.raises(HpoError, match=rf"^{path}: storage: is empty; give a storage URL"):
        load_optimize_config(path)


def test_a_timeout_in_hours_and_minutes_is_refused_not_read_in_base_60(tmp_path: Path) -> None:
    # YAML 1.1 read `timeout: 2:00` as 120 seconds: a study meant to run two hours stopped after two minutes
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    path = tmp_path / "optimize.yaml"
    path.write_text(f"study_name: s\ntimeout: 2:00\nsearch_space: {space}\n")
    with pytest.raises(HpoError, match=rf"^{path}: timeout: '2:00' is not a number of seconds; write one"):
        load_optimize_config(path)


@pytest.mark.parametrize(
    ("model", "line"),
    [
        (  # it said 'Input should be a valid number, got "0.1"', not what to change
            {"name": "mlp", "dropout": "0.1"},
            "model: model 'mlp' argument 'dropout': Input should be a valid number, got \"0.1\"; write 0.1 without "
            "quotes, a number",
        ),
        (
            {"name": "mlp", "layers": "2"},
            "model: model 'mlp' argument 'layers': Input should be a valid integer, got \"2\"; write 2 without "
            "quotes, a number",
        ),
        (  # a text that is no number: pydantic's line, and what to write (it said no more)
            {"name": "mlp", "dropout": "abc"},
            "model: model 'mlp' argument 'dropout': Input should be a valid number, got abc; write a number",
        ),
    ],
)
def test_a_quoted_number_for_a_built_in_component_says_to_drop_the_quotes(
    tmp_path: Path, model: dict, line: str
) -> None:
    path = write_yaml(tmp_path / "run.yaml", {"device": "cpu", "model": model})
    with pytest.raises(HpoError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}: {line}"


@pytest.mark.parametrize(
    ("given", "shown"),
    [(float("inf"), ".inf"), ({"a": 1}, "{a: 1}"), (None, "null"), (3, "3")],
)
def test_a_parameter_type_that_is_no_name_is_shown_as_written(given: Any, shown: str) -> None:
    # it said "unknown type 'inf' (did you mean 'int'?)" for .inf, and "{'a': 1}" as Python writes it
    with pytest.raises(HpoError) as err:
        validate_config(
            OptimizeConfig,
            {"study_name": "s", "search_space": {"optimizer.lr": {"type": given, "low": 1, "high": 2}}},
            "optimize.yaml",
        )
    assert str(err.value) == (
        f"optimize.yaml: search_space.optimizer.lr: unknown type {shown}, not a name; choose one of: float, int, "
        "categorical"
    )


@pytest.mark.parametrize(
    ("kind", "value", "refused"),
    [
        (int, True, "Input should be a valid integer, got true"),
        (float, False, "Input should be a valid number, got false"),
        (
            float,
            float("nan"),
            "got .nan, YAML's not-a-number, which is no value hpotool can use: write a number",
        ),
        (int, 3, None),
        (float, 0.5, None),
    ],
)
def test_a_number_setting_refuses_a_boolean_and_a_float_one_nan(
    kind: type, value: Any, refused: str | None
) -> None:
    # config_fields' validator was named `no_boolean` when it came to refuse NaN too: its name said half of
    # what it refuses (a float setting given .nan), so a reader of `Annotated[float, no_boolean(float)]`
    # did not know a .nan was refused there.
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from hpotool.config_fields import no_boolean_or_nan

    field = TypeAdapter(Annotated[kind, no_boolean_or_nan(kind)])  # type: ignore[valid-type]
    if refused is None:
        assert field.validate_python(value) == value
    else:
        with pytest.raises(ValidationError, match=re.escape(refused)):
            field.validate_python(value)


def test_a_quoted_bound_is_its_number_log_yes_is_true_and_a_quoted_text_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    # On purpose, as the README's search space section says: a config written for YAML 1.1 quotes 1e-4 (which
    # PyYAML reads unquoted as text), and YAML reads an unquoted yes as true. A quoted text that is no number is
    # refused in one line naming the file and the key.
    head = "study_name: s\nsearch_space:\n  optimizer.lr: {type: float, "
    path = tmp_path / "optimize.yaml"
    path.write_text(head + 'low: "1e-4", high: "0.1", log: yes}\n')
    lr = load_optimize_config(path).search_space["optimizer.lr"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 0.1, True)
    path.write_text(head + 'low: "abc", high: 0.1, log: yes}\n')
    with pytest.raises(HpoError) as err:
        load_optimize_config(path)
    assert str(err.value) == (
        f"{path}: search_space.optimizer.lr.low: Input should be a valid number, got abc; write a number"
    )


@pytest.mark.parametrize(
    ("given", "fix"),
    [
        ("suggest_float", "write type: float (Optuna's suggest_float)"),
        ("suggest_int", "write type: int (Optuna's suggest_int)"),
        ("suggest_categorical", "write type: categorical (Optuna's suggest_categorical)"),
        ("trial.suggest_float", "write type: float (Optuna's suggest_float)"),
        ("suggest_loguniform", "write type: float, log: true"),
        ("suggest_discrete_uniform", "write type: float, with step: ..."),
    ],
)
def test_a_type_spelt_as_optunas_suggest_method_names_the_type_to_write(given: str, fix: str) -> None:
    # A script being ported says trial.suggest_float(...): the type was "unknown ...; choose one of" the
    # three, with no word that suggest_float is type: float.
    with pytest.raises(HpoError) as err:
        validate_config(
            OptimizeConfig,
            {"study_name": "s", "search_space": {"optimizer.lr": {"type": given, "low": 1, "high": 2}}},
            "optimize.yaml",
        )
    assert str(err.value) == f"optimize.yaml: search_space.optimizer.lr: unknown type {given!r}; {fix}"


@pytest.mark.parametrize(
    ("param", "value", "line"),
    [
        (  # it said "lies outside its search space ([0.0001, 0.1], log)", which holds 0.001
            {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
            "1e-3",
            '"1e-3" is text (in quotes), where optimizer.lr\'s values are numbers; write 0.001 without quotes',
        ),
        (
            {"type": "categorical", "choices": [0.001, 0.01]},
            "0.01",
            '"0.01" is text (in quotes), where optimizer.lr\'s values are numbers; write 0.01 without quotes',
        ),
    ],
)
def test_an_enqueued_number_in_quotes_says_to_drop_the_quotes(param: dict, value: Any, line: str) -> None:
    data = {"study_name": "s", "search_space": {"optimizer.lr": param}, "enqueue": [{"optimizer.lr": value}]}
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == f"o.yaml: enqueue.0: optimizer.lr: {line}"


def test_an_enqueued_whole_float_for_an_int_says_to_write_the_integer() -> None:
    # it said batch_size=32.0 "lies outside its search space ([16, 64])"
    data = {
        "study_name": "s",
        "search_space": {"batch_size": {"type": "int", "low": 16, "high": 64}},
        "enqueue": [{"batch_size": 32.0}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert (
        str(info.value)
        == "o.yaml: enqueue.0: batch_size: 32.0 is a float, where batch_size takes whole numbers; write 32"
    )


@pytest.mark.parametrize(
    ("param", "value", "line"),
    [
        (  # it said "model.dropout=0.15 lies outside its search space ([0.0, 0.5], step 0.1)"
            {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
            0.15,
            "0.15 is not on the step 0.1 from 0.0: write 0.1 or 0.2",
        ),
        (  # 0.2 + 0.1 is 0.30000000000000004 in floats: the values named as the YAML writes them
            {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
            0.25,
            "0.25 is not on the step 0.1 from 0.0: write 0.2 or 0.3",
        ),
        (
            {"type": "int", "low": 8, "high": 64, "step": 8},
            20,
            "20 is not on the step 8 from 8: write 16 or 24",
        ),
        ({"type": "int", "low": 1, "high": 10}, 4.5, "4.5 is not on the step 1 from 1: write 4 or 5"),
    ],
)
def test_an_enqueued_value_between_two_steps_names_the_two_to_write(
    param: dict, value: Any, line: str
) -> None:
    data = {
        "study_name": "s",
        "search_space": {"model.dropout": param},
        "enqueue": [{"model.dropout": value}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == f"o.yaml: enqueue.0: model.dropout: {line}"


@pytest.mark.parametrize(
    ("param", "value", "shown"),
    [
        ({"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}, 0.55, "[0.0, 0.5], step 0.1"),
        ({"type": "int", "low": 8, "high": 64, "step": 8}, 4, "[8, 64], step 8"),
    ],
)
def test_an_enqueued_value_beyond_a_stepped_range_still_lies_outside_it(
    param: dict, value: Any, shown: str
) -> None:
    data = {
        "study_name": "s",
        "search_space": {"model.dropout": param},
        "enqueue": [{"model.dropout": value}],
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert str(info.value) == (
        f"o.yaml: enqueue.0: model.dropout={value} lies outside its search space ({shown}); give a value "
        f"within it, or widen search_space.model.dropout"
    )


@pytest.mark.parametrize("key", ["range", "bounds"])
def test_a_range_given_as_one_pair_is_one_line_naming_low_and_high(key: str) -> None:
    # it was three lines: low missing, high missing, and the unknown key with the valid keys
    data = {
        "study_name": "s",
        "search_space": {"optimizer.lr": {"type": "float", key: [1e-4, 0.1], "log": True}},
    }
    with pytest.raises(HpoError) as info:
        validate_config(OptimizeConfig, data, "o.yaml")
    assert (
        str(info.value)
        == f"o.yaml: search_space.optimizer.lr: unknown key {key!r}; write low: 0.0001, high: 0.1"
    )
