from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.conditions import holds, satisfying_value
from hpotool.config import OptimizeConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError
from hpotool.plan import prepare_study
from hpotool.space_notes import configuration_count, configurations_text, grid_notes
from tests.cli_run import optimize, shipped_run
from tests.conftest import write_yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("sgd", "sgd", True),
        ("sgd", "adam", False),
        ({"in": ["sgd", "rmsprop"]}, "rmsprop", True),
        ({"ge": 3}, 3, True),
        ({"ge": 3}, 2, False),
        ({"gt": 3}, None, False),
        ({"ne": "adam"}, "sgd", True),
        ({"lt": 3}, "x", False),
        (1, 1.0, True),  # numbers compare as numbers
        ({"in": [2, 3]}, 3.0, True),
        # a YAML boolean is not the number Python's == makes it: true matched a choice of 1, false one of 0
        (True, 1, False),
        (True, 1.0, False),
        (False, 0, False),
        (1, True, False),
        (True, True, True),
        ({"in": [True]}, 1, False),
        ({"in": [1]}, True, False),
        ({"ne": True}, 1, True),
        ({"ne": 0}, False, True),
        ({"ge": True}, 1, False),
        ({"lt": 1}, False, False),
    ],
)
def test_conditions(condition: Any, value: Any, expected: bool) -> None:
    assert holds(condition, value) is expected
    implied = satisfying_value(condition)
    if implied is not None:
        assert holds(condition, implied)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {
                "model.hidden.2": {"type": "int", "low": 8, "high": 16, "when": {"model.layers": {"ge": 3}}},
                "model.layers": {"type": "int", "low": 1, "high": 3},
            },
            "search_space.model.hidden.2.when: 'model.layers' is suggested after 'model.hidden.2'",
        ),
        (
            {"x.y": {"type": "int", "low": 1, "high": 3, "when": {"x.y": 2}}},
            "a parameter cannot depend on itself",
        ),
        (
            {"x.y": {"type": "int", "low": 1, "high": 3, "when": {"a.b": {"over": 2}}}},
            "give a value, or one test of: in, ne, ge, gt, le, lt",
        ),
        (  # a mapping choice reads as a test: the line says how to write it
            {
                "trainer.opts": {"type": "categorical", "choices": [{"a": 1, "b": 2}, {"a": 2, "b": 1}]},
                "x.y": {"type": "int", "low": 1, "high": 3, "when": {"trainer.opts": {"a": 1, "b": 2}}},
            },
            r"when.trainer.opts: give a value, or one test of: in, ne, ge, gt, le, lt \(e.g. \{ge: 3\}\), got "
            r"\{a: 1, b: 2\}; to match a mapping choice, write \{in: \[\{a: 1, b: 2\}\]\}$",
        ),
    ],
)
def test_bad_conditions_fail_at_load_time(space: dict[str, Any], message: str) -> None:
    with pytest.raises(HpoError, match=message):
        validate_config(OptimizeConfig, {"study_name": "s", "search_space": space}, "o.yaml")


def test_conditional_parameters_appear_only_when_their_condition_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    # 5 epochs, a step past the pruner's 3 warm-up steps: which parameters a trial has does not depend on its length
    optimize(shipped_run(tmp_path, epochs=5), "examples/conditional_optimize.yaml", storage, 10)
    trials = optuna.load_study(study_name="digits_conditional", storage=storage).trials
    assert trials
    for t in trials:
        assert ("optimizer.momentum" in t.params) == (t.params["optimizer.name"] == "sgd")
        assert ("model.hidden.2" in t.params) == (t.params["model.layers"] >= 3)
    assert any("optimizer.momentum" in t.params for t in trials) and any(
        "model.hidden.2" in t.params for t in trials
    )


def test_conditions_that_imply_no_single_value_are_checked_where_they_hold(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.0,
            "high": 0.9,
            "when": {"optimizer.name": {"ne": "adam"}},
        },
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "model.norm": {
            "type": "categorical",
            "choices": ["none", "layer"],
            "when": {"model.dropout": {"gt": 0}},
        },
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    prepare_study(run_path, opt_path)  # sgd with momentum, dropout 0.5 with a norm: both valid
    opt_dict["search_space"]["model.norm"]["when"] = {"model.dropout": {"gt": 0.7}}
    write_yaml(opt_path, opt_dict)
    with pytest.raises(HpoError, match=r"model.norm: the condition model.dropout: \{gt: 0.7\} never holds"):
        prepare_study(run_path, opt_path)


def test_a_condition_on_a_conditional_parameter_is_checked_where_that_one_applies(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """nesterov only with momentum, momentum only with sgd: the check before trial 0 built adam with a
    momentum and refused the valid space ("optimizer 'adam' takes no argument 'momentum'")."""
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer.name": "sgd"}},
        "optimizer.nesterov": {
            "type": "categorical",
            "choices": [True, False],
            "when": {"optimizer.momentum": {"ge": 0.6}},
        },
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    prepare_study(run_path, opt_path)


def test_an_argument_of_a_searched_component_is_checked_with_every_choice(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """momentum searched beside optimizer.name: [sgd, adam] on a run config with sgd was checked with sgd
    alone, and every trial that drew adam failed ("optimizer 'adam' takes no argument 'momentum'")."""
    run_dict["optimizer"] = {"name": "sgd", "lr": 0.01}
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9},
    }
    said, run_path, opt_path = _refused(tmp_path, run_dict, opt_dict)
    assert said.startswith(
        f"{opt_path}: search_space.optimizer.momentum: with optimizer.name=adam, optimizer.momentum=0.5: "
        f"optimizer: optimizer 'adam' takes no argument 'momentum'"
    )
    assert said.endswith(
        "; search it only with the optimizers that take it: when: {optimizer.name: {in: [sgd, rmsprop]}}"
    )
    opt_dict["search_space"]["optimizer.momentum"]["when"] = {"optimizer.name": {"in": ["sgd", "rmsprop"]}}
    prepare_study(run_path, write_yaml(opt_path, opt_dict))


def test_an_argument_none_of_the_searched_components_takes_names_those_that_do(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """momentum searched beside optimizer.name: [adam, adamw], neither of which takes it: "the RunConfig has
    no such path; did you mean 'optimizer.name', 'optimizer.betas', 'optimizer.maximize'?", as if it were
    misspelt, not that sgd and rmsprop take it. A misspelt argument keeps its "did you mean"."""
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "adamw"]},
        "optimizer.momentum": {"type": "float", "low": 0.8, "high": 0.99},
    }
    said, run_path, opt_path = _refused(tmp_path, run_dict, opt_dict)
    assert said == (
        f"{opt_path}: search_space.optimizer.momentum: none of the searched optimizers (optimizer.name: adam, "
        f"adamw) takes 'momentum'; sgd, rmsprop take it: add sgd to optimizer.name's choices and search "
        f"optimizer.momentum under when: {{optimizer.name: sgd}}, or remove optimizer.momentum"
    )
    opt_dict["search_space"]["optimizer.lrate"] = opt_dict["search_space"].pop("optimizer.momentum")
    with pytest.raises(
        HpoError, match=r"optimizer.lrate: the run config has no such key; did you mean 'optimizer.lr'"
    ):
        prepare_study(run_path, write_yaml(opt_path, opt_dict))
    opt_dict["search_space"]["optimizer.name"]["choices"] = ["adam", "sgd"]
    opt_dict["search_space"]["optimizer.momentum"] = {
        "type": "float",
        "low": 0.8,
        "high": 0.99,
        "when": {"optimizer.name": "sgd"},
    }
    del opt_dict["search_space"]["optimizer.lrate"]
    prepare_study(run_path, write_yaml(opt_path, opt_dict))


def test_a_condition_on_a_fixed_value_that_does_not_hold_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`when: {model.layers: 2}` with layers fixed at 1 in the run config switched the parameter off in
    every trial, silently: every trial trained the same config."""
    run_dict["model"]["layers"] = 1
    opt_dict["search_space"] = {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"model.layers": 2}},
    }
    said, run_path, opt_path = _refused(tmp_path, run_dict, opt_dict)
    assert said == (
        f"{opt_path}: search_space.model.dropout: the condition model.layers: 2 never holds: model.layers is "
        f"not searched and the run config sets it to 1, so model.dropout would never be set; search "
        f"model.layers (above model.dropout), set it to 2 in the run config, or change or drop the condition"
    )
    opt_dict["search_space"]["model.dropout"]["when"] = {"model.activation": "gelu"}  # left at its default
    write_yaml(opt_path, opt_dict)
    with pytest.raises(
        HpoError,
        match=r"model.activation is not searched and the run config does not set it \(a condition reads no "
        r"default\), so model.dropout would never be set; set model.activation in the run config, search it",
    ):
        prepare_study(run_path, opt_path)
    opt_dict["search_space"]["model.dropout"]["when"] = {"model.layers": {"le": 2}}  # holds for the fixed 1
    write_yaml(opt_path, opt_dict)
    prepare_study(run_path, opt_path)


def test_a_grid_over_a_conditional_space_says_its_trials_repeat(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Optuna's grid is the full product: adam ran once per momentum value, the same configuration twice,
    without a word."""
    opt_dict["sampler"] = {"name": "grid"}
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "categorical",
            "choices": [0.5, 0.9],
            "when": {"optimizer.name": "sgd"},
        },
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    assert prepare_study(run_path, opt_path).notes == (
        "the grid sampler runs every value of optimizer.momentum also where its condition does not hold, so "
        "those trials repeat one configuration; bruteforce runs each configuration once",
    )
    opt_dict["sampler"] = {"name": "bruteforce"}
    assert prepare_study(run_path, write_yaml(opt_path, opt_dict)).notes == ()


def test_a_grid_whose_conditions_hold_at_every_point_says_nothing_of_repeats(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A condition reading a value the run config fixes (optimizer.name: adam), or one every grid value of the
    parameter it reads satisfies, holds at every grid point: no trial repeats one, yet the note said they did."""
    opt_dict["sampler"] = {"name": "grid"}
    opt_dict["search_space"] = {
        "model.layers": {"type": "int", "low": 1, "high": 2},
        "model.dropout": {"type": "categorical", "choices": [0.0, 0.5], "when": {"optimizer.name": "adam"}},
        "model.hidden.0": {"type": "categorical", "choices": [8, 16], "when": {"model.layers": {"le": 2}}},
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    assert prepare_study(run_path, opt_path).notes == ()
    opt_dict["search_space"]["model.hidden.0"]["when"] = {"model.layers": {"le": 1}}  # fails at layers 2
    assert prepare_study(run_path, write_yaml(opt_path, opt_dict)).notes == (
        "the grid sampler runs every value of model.hidden.0 also where its condition does not hold, so "
        "those trials repeat one configuration; bruteforce runs each configuration once",
    )


def test_the_grid_note_reads_the_grid_hpotool_built_not_the_samplers_private_one(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The note reads the grid `make_sampler` built the sampler with, not Optuna's private
    `GridSampler._search_space`: a minor Optuna release renaming it failed every plan of a grid sampler with
    an AttributeError."""
    from hpotool.config_files import load_optimize_config
    from hpotool.study_sampler import study_sampler

    opt_dict["sampler"] = {
        "name": "grid",
        "kwargs": {"search_space": {"model.layers": [1, 2], "model.hidden.0": [8, 16]}},
    }
    opt_dict["search_space"] = {
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "model.hidden.0": {"type": "categorical", "choices": [8, 16], "when": {"model.layers": {"le": 1}}},
    }
    opt = load_optimize_config(write_yaml(tmp_path / "o.yaml", opt_dict))
    sampler = study_sampler(opt)
    del sampler._search_space  # as a release renaming it would leave the sampler
    assert grid_notes(opt, sampler) == (
        "the grid sampler runs every value of model.hidden.0 also where its condition does not hold, so "
        "those trials repeat one configuration; bruteforce runs each configuration once",
    )
    opt_dict["sampler"]["kwargs"]["search_space"]["model.layers"] = [1]  # the kwargs' grid, not the space's
    opt = load_optimize_config(write_yaml(tmp_path / "o.yaml", opt_dict))
    assert grid_notes(opt, study_sampler(opt)) == ()


def test_a_condition_on_a_list_choice_compares_the_list(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # A trial stores model.hidden as its label ("[32, 16]"); conditions read the list, as the YAML writes it.
    from hpotool.study_run import run_study

    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": [[16], [32, 16]]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"model.hidden": [32, 16]}},
        "optimizer.lr": {
            "type": "float",
            "low": 1e-3,
            "high": 1e-1,
            "when": {"model.hidden": {"in": [[16]]}},
        },
    }
    opt_dict.update(n_trials=6, seed=1)
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    run_study(prepare_study(run_path, write_yaml(tmp_path / "opt.yaml", opt_dict)))
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert {t.params["model.hidden"] for t in trials} == {"[16]", "[32, 16]"}
    for t in trials:
        wide = t.params["model.hidden"] == "[32, 16]"
        assert set(t.params) == {"model.hidden", "model.dropout" if wide else "optimizer.lr"}
    opt_dict["search_space"]["optimizer.lr"]["when"] = {"model.hidden": {"in": [[8]]}}
    with pytest.raises(HpoError, match=r"the condition model.hidden: \{in: \[\[8\]\]\} never holds"):
        prepare_study(run_path, write_yaml(tmp_path / "opt.yaml", opt_dict))


@pytest.mark.parametrize(
    ("choices", "condition", "message"),
    [
        ([0, 1], True, r"the condition model.layers: true never holds for model.layers's values"),
        ([0, 1], {"in": [True]}, r"the condition model.layers: \{in: \[true\]\} never holds"),
        (
            [1, 2],
            {"in": [True, 2]},
            r"model.layers: true is not one of model.layers's values \(one of 1, 2\)",
        ),
        (
            [1, 2],
            {"ne": True},
            r"\{ne: true\} holds in every trial: true is not one of model.layers's values",
        ),
    ],
)
def test_a_boolean_condition_on_a_numeric_choice_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict, choices: list[int], condition: Any, message: str
) -> None:
    """`when: {model.layers: true}` held where the trial drew layers 1 (Python's True == 1), so the parameter
    was set in trials its author meant it off; a boolean is now a value a numeric choice never takes."""
    opt_dict["search_space"] = {
        "model.layers": {"type": "categorical", "choices": choices},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"model.layers": condition}},
    }
    said, _, _ = _refused(tmp_path, run_dict, opt_dict)
    assert re.search(message, said), said


def _refused(tmp_path: Path, run_dict: dict, opt_dict: dict) -> tuple[str, Path, Path]:
    """The configs written to r.yaml and o.yaml: the line prepare_study refuses them with, and the two files."""
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    with pytest.raises(HpoError) as info:
        prepare_study(run_path, opt_path)
    return str(info.value), run_path, opt_path


def _refused_list_condition(
    tmp_path: Path, run_dict: dict, opt_dict: dict, searched: dict[str, Any]
) -> tuple[str, Path, Path]:
    """The space `searched`, then optimizer.weight_decay `when: {optimizer.name: [adam, rmsprop]}` (a list
    written for "either"): the line prepare_study refuses it with, and the run and optimize config files."""
    opt_dict["search_space"] = {
        **searched,
        "optimizer.weight_decay": {
            "type": "float",
            "low": 1e-5,
            "high": 1e-3,
            "when": {"optimizer.name": ["adam", "rmsprop"]},
        },
    }
    return _refused(tmp_path, run_dict, opt_dict)


def test_a_condition_written_as_a_list_of_values_points_to_in(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`when: {optimizer.name: [adam, rmsprop]}` (meaning "either") was refused as a condition that never
    holds, with no word that a list is one value and `{in: [...]}` means any of several."""
    searched = {"optimizer.name": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]}}
    message, run_path, opt_path = _refused_list_condition(tmp_path, run_dict, opt_dict, searched)
    assert message == (
        f"{opt_path}: search_space.optimizer.weight_decay: the condition optimizer.name: [adam, rmsprop] never "
        f"holds for optimizer.name's values, so it would never be set; a list is one value (a list choice): for "
        f"any of several, write {{in: [adam, rmsprop]}}"
    )
    opt_dict["search_space"]["optimizer.weight_decay"]["when"] = {
        "optimizer.name": {"in": ["adam", "rmsprop"]}
    }
    prepare_study(run_path, write_yaml(opt_path, opt_dict))


def test_a_list_condition_on_a_fixed_value_points_to_in(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """With optimizer.name fixed at adam, `when: {optimizer.name: [adam, rmsprop]}` told the user to "set it
    to [adam, rmsprop] in the run config", a value no optimizer has."""
    run_dict["optimizer"]["name"] = "adam"
    message, _, opt_path = _refused_list_condition(tmp_path, run_dict, opt_dict, {})
    assert message == (
        f"{opt_path}: search_space.optimizer.weight_decay: the condition optimizer.name: [adam, rmsprop] never "
        f"holds: optimizer.name is not searched and the run config sets it to adam, so optimizer.weight_decay "
        f"would never be set; a list is one value (a list choice): for any of several, write {{in: [adam, "
        f"rmsprop]}}, or change or drop the condition"
    )


def test_a_width_searched_beyond_some_trials_layers_is_noted_with_the_condition_to_add(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """model.hidden.2 searched without a `when:` beside model.layers from 1 to 3: trials of 1 or 2 layers drew
    and stored a third width the MLP never built, and the sampler learned from it, without a word."""
    run_dict["model"] = {"name": "mlp", "hidden": [16, 16, 16], "layers": 3, "dropout": 0.0}
    opt_dict["search_space"] = {
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
        "model.hidden.1": {
            "type": "int",
            "low": 8,
            "high": 32,
            "step": 8,
            "when": {"model.layers": {"ge": 2}},
        },
        "model.hidden.2": {
            "type": "int",
            "low": 8,
            "high": 32,
            "step": 8,
            "when": {"model.layers": {"ge": 2}},
        },
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    assert prepare_study(run_path, opt_path).notes == (
        f"{opt_path}: search_space.model.hidden.2 is drawn in trials of model.layers 2, whose MLP has fewer "
        "than 3 hidden layers and never uses it; add when: {model.layers: {ge: 3}} to it, so those trials neither "
        "store nor learn from a width they did not train",
    )
    del opt_dict["search_space"]["model.hidden.1"]["when"]
    opt_dict["search_space"]["model.hidden.2"]["when"] = {"model.layers": 3}
    assert prepare_study(run_path, write_yaml(opt_path, opt_dict)).notes == (
        f"{opt_path}: search_space.model.hidden.1 is drawn in trials of model.layers 1, whose MLP has fewer "
        "than 2 hidden layers and never uses it; add when: {model.layers: {ge: 2}} to it, so those trials neither "
        "store nor learn from a width they did not train",
    )
    opt_dict["search_space"]["model.hidden.1"]["when"] = {"model.layers": {"gt": 1}}
    assert prepare_study(run_path, write_yaml(opt_path, opt_dict)).notes == ()


def test_brute_force_over_a_chained_condition_runs_each_configuration_once(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """optimizer.nesterov under a condition on optimizer.momentum, itself under optimizer.name: sgd. An adam
    trial, whose momentum (so nesterov) was never set, counted as not having drawn its values, so brute force
    did not count its point run: it ran adam again until n_trials (10 trials, 7 of them adam) instead of ending after
    its 4 configurations."""
    from hpotool.study_run import run_study

    opt_dict["sampler"] = {"name": "bruteforce"}
    opt_dict["n_trials"] = 10
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "categorical",
            "choices": [0.0, 0.9],
            "when": {"optimizer.name": "sgd"},
        },
        "optimizer.nesterov": {
            "type": "categorical",
            "choices": [False, True],
            "when": {"optimizer.momentum": 0.9},
        },
    }
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    run_study(prepare_study(run_path, write_yaml(tmp_path / "opt.yaml", opt_dict)))
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert sorted(str(sorted(t.params.items())) for t in trials) == sorted(
        str(sorted(p.items()))
        for p in (
            {"optimizer.name": "adam"},
            {"optimizer.name": "sgd", "optimizer.momentum": 0.0},
            {"optimizer.name": "sgd", "optimizer.momentum": 0.9, "optimizer.nesterov": False},
            {"optimizer.name": "sgd", "optimizer.momentum": 0.9, "optimizer.nesterov": True},
        )
    )


def test_brute_force_over_a_condition_that_a_list_choice_does_not_hold_runs_each_configuration_once(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """model.dropout under `{ne: [16, 8]}` on a list choice: a trial of [16, 8] stores the label "[16, 8]",
    which the condition read as holding, so brute force took that trial for one that had not drawn its
    dropout and ran [16, 8] again until n_trials (8 trials, 6 of them [16, 8]) instead of ending after 3."""
    from hpotool.study_run import run_study

    opt_dict["sampler"] = {"name": "bruteforce"}
    opt_dict["n_trials"] = 8
    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": [[8], [16, 8]]},
        "model.dropout": {
            "type": "categorical",
            "choices": [0.0, 0.2],
            "when": {"model.hidden": {"ne": [16, 8]}},
        },
    }
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    run_study(prepare_study(run_path, write_yaml(tmp_path / "opt.yaml", opt_dict)))
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert sorted(str(sorted(t.params.items())) for t in trials) == sorted(
        str(sorted(p.items()))
        for p in (
            {"model.hidden": "[8]", "model.dropout": 0.0},
            {"model.hidden": "[8]", "model.dropout": 0.2},
            {"model.hidden": "[16, 8]"},
        )
    )


def test_a_queued_stepped_float_meets_a_condition_on_the_value_the_yaml_writes(tmp_path: Path) -> None:
    """A refined stage queues its best trial's values as Optuna drew them (0.30000000000000004 on step
    0.1); `when: {model.dropout: 0.3}` reads it as 0.3, as in the trial that drew it. Before: the stage was
    refused ("enqueue.0: optimizer.momentum=0.9 would not be used: its condition ... does not hold")."""
    from hpotool.config import OptimizeConfig
    from hpotool.config_errors import validate_config

    opt = validate_config(
        OptimizeConfig,
        {
            "study_name": "s",
            "search_space": {
                "model.dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.1},
                "optimizer.momentum": {
                    "type": "float",
                    "low": 0.5,
                    "high": 0.9,
                    "when": {"model.dropout": 0.3},
                },
            },
            "enqueue": [{"model.dropout": 0.1 * 3, "optimizer.momentum": 0.9}],
        },
        "optimize.yaml",
    )
    assert opt.enqueue[0]["model.dropout"] == 0.30000000000000004


def test_a_queued_set_a_grid_refuses_reads_a_stepped_float_as_the_trial_does() -> None:
    """A queued dropout of 0.30000000000000004 (0.3 on step 0.1) switches on momentum under `when:
    {model.dropout: 0.3}` in its trial, so a set without momentum leaves the grid sampler a parameter to pick,
    which it fails; before, the check read the raw float and let it through."""
    from hpotool.config import OptimizeConfig
    from hpotool.sampler_and_pruner import unset_by

    opt = OptimizeConfig.model_validate(
        {
            "study_name": "s",
            "search_space": {
                "model.dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.1},
                "optimizer.momentum": {
                    "type": "float",
                    "low": 0.5,
                    "high": 0.9,
                    "when": {"model.dropout": 0.3},
                },
            },
        }
    )
    assert unset_by({"model.dropout": 0.1 * 3}, opt, {}) == ["optimizer.momentum"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (  # it said the condition "never holds for batch_size's values (its choices: [32, 64])"
            "64",
            'the condition batch_size: "64" never holds for batch_size\'s values, so it would never be set; "64" '
            "is text (in quotes), where batch_size's values are numbers; write 64 without quotes",
        ),
        (
            {"in": ["64"]},
            'never be set; "64" is text (in quotes), where batch_size\'s values are numbers; write 64 without '
            "quotes",
        ),
        (  # it said "64" "is not one of batch_size's values"
            {"ne": "64"},
            'when.batch_size: "64" is text (in quotes), where batch_size\'s values are numbers; write 64 without '
            "quotes",
        ),
        ({"in": ["64", 32]}, "where batch_size's values are numbers; write 64 without quotes"),
    ],
)
def test_a_condition_on_a_number_written_in_quotes_says_to_drop_the_quotes(
    tmp_path: Path, run_dict: dict, opt_dict: dict, condition: Any, message: str
) -> None:
    opt_dict["search_space"] = {
        "batch_size": {"type": "categorical", "choices": [32, 64]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"batch_size": condition}},
    }
    said, _, _ = _refused(tmp_path, run_dict, opt_dict)
    assert said.endswith(message), said


def test_a_condition_on_a_run_config_number_written_in_quotes_says_to_drop_the_quotes(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # it said: "... the run config sets it to 32 ...; search batch_size (above model.dropout), set it to "32"
    # in the run config, or ...": text, which batch_size never holds
    run_dict["batch_size"] = 32
    opt_dict["search_space"] = {
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"batch_size": "32"}},
    }
    said, _, _ = _refused(tmp_path, run_dict, opt_dict)
    assert said.endswith(
        'search_space.model.dropout: the condition batch_size: "32" never holds: "32" is text (in quotes), where '
        "the run config sets batch_size to the number 32; write 32 without quotes"
    ), said


def test_a_condition_on_a_run_config_whole_number_written_as_float_text_says_to_write_the_whole_number(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # it said 'write 1.0 without quotes' for epochs: 1, a float where the key takes whole numbers
    run_dict["epochs"] = 1
    opt_dict["search_space"] = {
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"epochs": {"in": ["1.0", 2.0]}}},
    }
    said, _, _ = _refused(tmp_path, run_dict, opt_dict)
    assert said.endswith("the run config sets epochs to the number 1; write 1 without quotes"), said


def _searched(search_space: dict[str, Any]) -> dict[str, Any]:
    return validate_config(
        OptimizeConfig, {"study_name": "s", "search_space": search_space}, "o.yaml"
    ).search_space


def test_a_conditional_space_counts_the_configurations_its_conditions_reach() -> None:
    # A note said "at most 192 configurations" of a space whose conditions reached 84: each parameter was
    # counted as if its conditions always held
    space = _searched(
        {
            "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd", "adamw"]},
            "optimizer.momentum": {
                "type": "categorical",
                "choices": [0.0, 0.9],
                "when": {"optimizer.name": "sgd"},
            },
            "optimizer.nesterov": {
                "type": "categorical",
                "choices": [True, False],
                "when": {"optimizer.momentum": {"gt": 0}},
            },
            "model.dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "model.hidden.0": {
                "type": "int",
                "low": 8,
                "high": 16,
                "step": 8,
                "when": {"model.dropout": 0.3},
            },
        }
    )
    assert configuration_count(space) == 3 * 2 * 2 * 4 * 2
    # adam, adamw, sgd with momentum 0.0, sgd with 0.9 and either nesterov: 5; three dropouts alone, and 0.3
    # (Optuna's 0.30000000000000004, as the condition reads it) with either width: 5
    assert configurations_text(space, {}) == "25 configurations"
    assert configurations_text(space) == "at most 96 configurations"  # without the base config's values


def test_a_condition_on_a_key_not_searched_is_counted_with_the_base_config_s_value() -> None:
    space = _searched(
        {
            "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
            "optimizer.momentum": {
                "type": "categorical",
                "choices": [0.5, 0.9],
                "when": {"optimizer.name": "sgd"},
            },
        }
    )
    assert configurations_text(space, {"optimizer.name": "adam"}) == "2 configurations"
    assert configurations_text(space, {"optimizer.name": "sgd"}) == "4 configurations"


def test_a_large_conditional_space_is_not_counted_one_by_one() -> None:
    # 200 x 60 points, past the 10,000 counted one by one: the product bounds the 259 its condition reaches
    space = _searched(
        {
            "model.hidden.0": {"type": "int", "low": 1, "high": 200},
            "batch_size": {"type": "int", "low": 1, "high": 60, "when": {"model.hidden.0": 1}},
        }
    )
    assert configurations_text(space, {}) == "at most 12,000 configurations"


@pytest.mark.parametrize(
    ("condition", "line"),
    [
        (  # it said "; change or drop the condition, or widen model.hidden.0's range to meet it"
            12,
            "search_space.optimizer.lr: the condition model.hidden.0: 12 never holds for model.hidden.0's values "
            "([8, 32], step 8), so it would never be set; 12 is not on the step 8 from 8: write 8 or 16",
        ),
        (  # both at once: it named 12 alone, then 20
            {"in": [12, 20]},
            "search_space.optimizer.lr: the condition model.hidden.0: {in: [12, 20]} never holds for "
            "model.hidden.0's values ([8, 32], step 8), so it would never be set; 12 is not on the step 8 from "
            "8: write 8 or 16; 20 is not on the step 8 from 8: write 16 or 24",
        ),
        (  # it said "drop it from in:, or widen model.hidden.0's range"
            {"in": [8, 12]},
            "search_space.optimizer.lr.when.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16",
        ),
        (
            {"ne": 12},
            "search_space.optimizer.lr.when.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16",
        ),
        (  # beyond the range: widen it, as before
            {"gt": 32},
            "search_space.optimizer.lr: the condition model.hidden.0: {gt: 32} never holds for model.hidden.0's "
            "values ([8, 32], step 8), so it would never be set; change or drop the condition, or widen "
            "model.hidden.0's range to meet it",
        ),
    ],
)
def test_a_condition_on_a_value_between_two_steps_names_the_step_and_the_values_on_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict, condition: Any, line: str
) -> None:
    """`when: {model.hidden.0: 12}` over [8, 32], step 8 was told to widen the range, which holds 12 between
    8 and 16: the step and the two values on it, as enqueue says them."""
    opt_dict["search_space"] = {
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "when": {"model.hidden.0": condition}},
    }
    said, _, opt_path = _refused(tmp_path, run_dict, opt_dict)
    assert said == f"{opt_path}: {line}"
