from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.errors import HpoError
from hpotool.factories import PRUNERS, SAMPLERS, make_pruner, make_sampler
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param

SPACE: dict[str, Param] = {
    "optimizer.lr": FloatParam(type="float", low=0.001, high=0.003, step=0.001),
    "model.hidden.0": IntParam(type="int", low=8, high=16, step=8),
    "model.activation": CategoricalParam(type="categorical", choices=["relu", "gelu"]),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_short_name_builds_and_samples(name: str) -> None:
    sampler = make_sampler(name, {}, seed=1, space=SPACE)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(
        sampler=sampler, directions=["minimize", "minimize"] if name.startswith("nsga") else None
    )
    from hpotool.suggestion import suggest

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        p = suggest(trial, SPACE)
        return (p["optimizer.lr"], p["model.hidden.0"]) if name.startswith("nsga") else p["optimizer.lr"]

    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 3


def test_grid_sampler_gets_its_grid_from_the_space() -> None:
    sampler = make_sampler("grid", {}, seed=0, space=SPACE)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    assert sampler._search_space["model.hidden.0"] == [8, 16]


GRID = {"optimizer.lr": [0.001, 0.003], "model.hidden.0": [8], "model.activation": ["gelu"]}


def test_grid_sampler_takes_a_grid_within_the_space() -> None:
    sampler = make_sampler("grid", {"search_space": GRID}, seed=0, space=SPACE)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    assert sampler._search_space["model.activation"] == ["gelu"]


def test_a_grid_too_large_to_list_is_refused_before_it_is_listed() -> None:
    # Optuna's grid sampler lists every point in memory as it is built: a range of 10^10 integers ended in
    # a MemoryError traceback (or took the machine's memory) before trial 0.
    huge = {**SPACE, "seed": IntParam(type="int", low=1, high=10_000_000_000)}
    with pytest.raises(HpoError) as info:
        make_sampler("grid", {}, seed=0, space=huge)
    assert str(info.value) == (
        "sampler: the grid of search_space has 120,000,000,000 points (optimizer.lr: 3 x model.hidden.0: 2 x "
        "model.activation: 2 x seed: 10,000,000,000 values), and the grid sampler lists every point in memory: "
        "give a larger step or fewer choices, for at most 1,000,000 points, or use another sampler (tpe, random)"
    )
    wide = {"x": IntParam(type="int", low=0, high=1000), "y": IntParam(type="int", low=0, high=1000)}
    given = {"search_space": {"x": list(range(1001)), "y": list(range(1001))}}  # each list fine, not the two
    with pytest.raises(
        HpoError, match=r"^sampler: the grid of sampler.kwargs.search_space has 1,002,001 points"
    ):
        make_sampler("grid", given, seed=0, space=wide)
    wide["y"] = IntParam(type="int", low=0, high=998, step=2)  # 1,001 x 500 points: listed
    assert len(make_sampler("grid", {}, seed=0, space=wide)._all_grids) == 500_500


def test_brute_force_over_a_parameter_with_too_many_values_to_list_is_refused() -> None:
    # Optuna's brute-force sampler lists each parameter's values (not their product): seed over 10^10
    # integers was a MemoryError traceback in the first suggest of the checks before trial 0.
    huge = {**SPACE, "seed": IntParam(type="int", low=1, high=10_000_000_000, log=True)}
    with pytest.raises(HpoError) as info:
        make_sampler("bruteforce", {}, seed=0, space=huge)
    assert str(info.value) == (
        "sampler: the brute-force sampler lists every value of a parameter in memory: search_space.seed has "
        "10,000,000,000; narrow its range or give it a larger step, for at most 1,000,000 values, or use another "
        "sampler (tpe, random)"
    )
    wide = {
        "x": IntParam(type="int", low=1, high=1_000_000),
        "y": IntParam(type="int", low=1, high=1_000_000),
    }
    make_sampler("bruteforce", {}, seed=0, space=wide)  # 10^12 points, but each list is 10^6 values


def test_seed_is_passed_unless_kwargs_set_one() -> None:
    a = make_sampler("random", {}, seed=7, space=SPACE)
    b = make_sampler("random", {"seed": 7}, seed=99, space=SPACE)
    assert a._rng.rng.random() == b._rng.rng.random()


def test_dotted_path_verbatim() -> None:
    sampler = make_sampler("optuna.samplers.TPESampler", {"n_startup_trials": 3}, seed=0, space=SPACE)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert isinstance(
        make_sampler("optuna.samplers:RandomSampler", {}, seed=0, space=SPACE), optuna.samplers.RandomSampler
    )


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_pruner_short_name_builds(name: str) -> None:
    kwargs = {
        "threshold": {"lower": 0.0},
        "patient": {"patience": 2},
        "percentile": {"percentile": 25.0},
    }.get(name, {})
    assert isinstance(make_pruner(name, kwargs), optuna.pruners.BasePruner)


def test_patient_wraps_another_pruner() -> None:
    pruner = make_pruner(
        "patient", {"patience": 3, "wrapped_pruner": {"name": "median", "kwargs": {"n_startup_trials": 2}}}
    )
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.MedianPruner)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # it was asked "did you mean 'nsga2'?": NSGA-II for NSGA-III
        ("nsgaiii", "unknown sampler 'nsgaiii'; Optuna's NSGA-III sampler is nsga3 here: write name: nsga3"),
        ("NSGAIIISampler", "Optuna's NSGA-III sampler is nsga3 here: write name: nsga3"),
        ("nsga_ii", "unknown sampler 'nsga_ii'; Optuna's NSGA-II sampler is nsga2 here: write name: nsga2"),
        ("brute_force", "Optuna's brute-force sampler is bruteforce here: write name: bruteforce"),
        # it was told nothing of the import path that names it
        (
            "partial_fixed",
            "unknown sampler 'partial_fixed'; Optuna's PartialFixedSampler has no short name: write name: "
            "optuna.samplers.PartialFixedSampler, with kwargs: {fixed_params: {PATH: VALUE}, base_sampler: tpe}",
        ),
    ],
)
def test_optuna_spelling_of_a_sampler_names_hpotools(name: str, message: str) -> None:
    with pytest.raises(HpoError) as info:
        make_sampler(name, {}, seed=0, space=SPACE)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: make_sampler("tpee", {}, seed=0, space=SPACE),
            "sampler.name: unknown sampler 'tpee' (did you mean 'tpe'?); choose one of: tpe, rung_tpe, random",
        ),
        (
            lambda: make_sampler("tpe", {"n_startup": 3}, seed=0, space=SPACE),
            "sampler.kwargs: sampler 'tpe' takes no argument 'n_startup' (did you mean 'n_startup_trials'?)",
        ),
        (lambda: make_pruner("medain", {}), "pruner.name: unknown pruner 'medain' (did you mean 'median'?)"),
        # patient's inner pruner: the messages name the key inside pruner.kwargs that sets it
        (
            lambda: make_pruner("patient", {"patience": 3, "wrapped_pruner": {"name": "medain"}}),
            "pruner.kwargs.wrapped_pruner.name: unknown pruner 'medain' (did you mean 'median'?)",
        ),
        (
            lambda: make_pruner(
                "patient", {"patience": 3, "wrapped_pruner": {"name": "median", "kwargs": {"n": 1}}}
            ),
            "pruner.kwargs.wrapped_pruner.kwargs: pruner 'median' takes no argument 'n'",
        ),
        (
            lambda: make_pruner("median", {"warmup": 1}),
            "pruner.kwargs: pruner 'median' takes no argument 'warmup'",
        ),
        (lambda: make_pruner("threshold", {}), "pruner.kwargs: 'threshold' needs lower or upper (or both)"),
        (
            lambda: make_pruner("optuna.samplers:TPESampler", {}),
            "is not an optuna.pruners.BasePruner subclass",
        ),
        # a value listed twice: the grid ran each point holding it twice
        (
            lambda: make_sampler(
                "grid",
                {"search_space": {"x": [0.001, 0.01, 1.0e-3]}},
                seed=0,
                space={"x": FloatParam(type="float", low=1e-4, high=1e-1, log=True)},
            ),
            "sampler.kwargs.search_space.x: 0.001 is listed twice, so the grid would train each of its points with "
            "it twice; drop one",
        ),
        (
            lambda: make_sampler(
                "grid",
                {"search_space": {"c": [[8], None, [8]]}},
                seed=0,
                space={"c": CategoricalParam(type="categorical", choices=[[8], [16, 8], None])},
            ),
            "sampler.kwargs.search_space.c: [8] is listed twice",
        ),
        # a log-scaled float: "give it a step" led to "step and log cannot be used together"
        (
            lambda: make_sampler(
                "grid", {}, seed=0, space={"x": FloatParam(type="float", low=1e-4, high=1e-2, log=True)}
            ),
            "sampler: the grid sampler needs a finite grid: search_space.x: a log-scaled float has no grid, and takes "
            "no step with log: true; search it as a categorical of the values to try: type: categorical, choices: "
            "[0.0001, 0.001, 0.01]",
        ),
        (
            lambda: make_sampler(
                "bruteforce", {}, seed=0, space={"x": FloatParam(type="float", low=1e-5, high=0.3, log=True)}
            ),
            "sampler: the brute-force sampler needs a finite set of values: search_space.x: a log-scaled float has "
            "infinitely many, and takes no step with log: true; search it as a categorical of the values to try: "
            "type: categorical, choices: [1.0e-05, 0.0017, 0.3]; or use another sampler",
        ),
        (
            lambda: make_sampler("grid", {}, seed=0, space={"x": FloatParam(type="float", low=0, high=1)}),
            "sampler: the grid sampler needs a finite grid: search_space.x: a float without step has no grid; "
            "give it a step",
        ),
        (
            lambda: make_sampler(
                "bruteforce", {}, seed=0, space={"x": FloatParam(type="float", low=0, high=1)}
            ),
            "sampler: the brute-force sampler needs a finite set of values: search_space.x: a float without step "
            "has infinitely many; give it a step, or use another sampler",
        ),
        # several parameters without a finite set of values: naming only the first had the user rerun once each
        (
            lambda: make_sampler(
                "grid",
                {},
                seed=0,
                space={
                    "a": FloatParam(type="float", low=0, high=1),
                    "n": IntParam(type="int", low=1, high=3),
                    "b": FloatParam(type="float", low=1e-4, high=1e-2, log=True),
                },
            ),
            "sampler: the grid sampler needs a finite grid, and 2 searched parameters have none: search_space.a: a "
            "float without step: give it a step; search_space.b: a log-scaled float (it takes no step with log: "
            "true): search it as a categorical of the values to try: type: categorical, choices: "
            "[0.0001, 0.001, 0.01]",
        ),
        (
            lambda: make_sampler(
                "bruteforce",
                {},
                seed=0,
                space={
                    "a": FloatParam(type="float", low=0, high=1),
                    "b": FloatParam(type="float", low=1e-4, high=1e-2, log=True),
                    "c": FloatParam(type="float", low=2, high=3),
                },
            ),
            "sampler: the brute-force sampler needs a finite set of values, and 3 searched parameters have "
            "infinitely many: search_space.a: a float without step: give it a step; search_space.b: a log-scaled "
            "float (it takes no step with log: true): search it as a categorical of the values to try: type: "
            "categorical, choices: [0.0001, 0.001, 0.01]; search_space.c: a float without step: give it a step; "
            "or use another sampler",
        ),
        (
            lambda: make_sampler("grid", {"search_space": {"optimizer.lr": [0.001]}}, seed=0, space=SPACE),
            "sampler.kwargs.search_space: model.hidden.0, model.activation are searched but not in the grid; "
            "give them values too, or leave search_space out of the kwargs (the grid is then built from "
            "search_space)",
        ),
        (
            lambda: make_sampler(
                "grid", {"search_space": {**GRID, "optimizer.lr": [0.5]}}, seed=0, space=SPACE
            ),
            "sampler.kwargs.search_space.optimizer.lr: 0.5 lies outside search_space.optimizer.lr ([0.001, 0.003], "
            "step 0.001); give a value within it, widen search_space.optimizer.lr, or drop the value",
        ),
        (
            lambda: make_sampler(
                "grid", {"search_space": {**GRID, "optimizer.l": [0.001]}}, seed=0, space=SPACE
            ),
            "sampler.kwargs.search_space.optimizer.l: not in search_space (did you mean 'optimizer.lr'?)",
        ),
        (
            lambda: make_sampler(
                "grid", {"search_space": {**GRID, "optimizer.lr": 0.001}}, seed=0, space=SPACE
            ),
            "sampler.kwargs.search_space: give each searched parameter a list of values",
        ),
        (  # TPE calls gamma only after its start-up trials: every later trial failed
            lambda: make_sampler("tpe", {"gamma": 0.1}, seed=0, space=SPACE),
            "sampler.kwargs.gamma: sampler 'tpe' takes a function here, which a YAML value "
            "cannot be (got 0.1); drop gamma, or build the sampler in your own module",
        ),
        (
            lambda: make_sampler("cmaes", {"independent_sampler": 1}, seed=0, space=SPACE),
            "sampler.kwargs.independent_sampler: sampler 'cmaes' takes a BaseSampler here (got 1); give it as "
            "{name: tpe, kwargs: {...}}, which hpotool builds",
        ),
        # An Optuna argument of the wrong type failed inside numpy or in the first trial's sampling:
        # "Cannot cast scalar from dtype('float64') to dtype('int64') according to the rule 'safe'".
        (
            lambda: make_sampler("tpe", {"seed": 1.5}, seed=0, space=SPACE),
            "sampler.kwargs: sampler 'tpe' argument 'seed': Input should be a valid integer, got a number with a "
            "fractional part (1.5); write a whole number",
        ),
        (  # "'<' not supported between instances of 'int' and 'str'" once the study sampled
            lambda: make_sampler("tpe", {"n_startup_trials": "ten"}, seed=0, space=SPACE),
            "sampler.kwargs: sampler 'tpe' argument 'n_startup_trials': Input should be a valid integer, got ten; "
            "write a whole number",
        ),
        # A quoted number for an argument that also takes a text ('auto'): Optuna's own line read "The value
        # of `min_resource` is 1, but must be either `min_resource` >= 1 or 'auto'".
        (
            lambda: make_pruner("successive_halving", {"min_resource": "1"}),
            "pruner.kwargs: pruner 'successive_halving' argument 'min_resource' is the text \"1\": "
            "write 1 without quotes, a number",
        ),
        (
            lambda: make_pruner("hyperband", {"max_resource": " 20 "}),
            "pruner.kwargs: pruner 'hyperband' argument 'max_resource' is the text \" 20 \": write 20 "
            "without quotes, a number",
        ),
        (  # pydantic would read true as 1
            lambda: make_pruner("median", {"n_warmup_steps": True}),
            "pruner.kwargs: pruner 'median' argument 'n_warmup_steps': expected int, got true",
        ),
    ],
)
def test_factory_errors(call: object, message: str) -> None:
    with pytest.raises(HpoError) as err:
        call()  # type: ignore[operator]
    assert message in str(err.value)


def test_optuna_arguments_of_their_annotated_types_build() -> None:
    """The check of Optuna's scalar arguments lets through what their annotations take: an int for a float, a
    str or an int for successive halving's min_resource, None where it is optional; and converts a value
    written as another type to the one annotated."""
    tpe = make_sampler("tpe", {"seed": 3, "n_startup_trials": 4}, seed=0, space=SPACE)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    # an int for a float (without TPE's prior_weight, which Optuna 5 deprecates with a FutureWarning)
    assert make_pruner("percentile", {"percentile": 25})._percentile == 25.0  # type: ignore[attr-defined]
    # converted as pydantic converts a config's fields: `seed: 1e3` (1000.0) or "7" failed inside numpy
    for seed, same in ((1000.0, 1000), ("7", 7)):
        for name in ("tpe", "rung_tpe", "random"):  # rung_tpe passes its kwargs on to Optuna's TPESampler
            drawn = make_sampler(name, {"seed": seed}, seed=0, space=SPACE)
            assert drawn._rng.rng.randint(10**9) == make_sampler(
                name, {"seed": same}, seed=0, space=SPACE
            )._rng.rng.randint(10**9)
    assert make_pruner("median", {"n_warmup_steps": 2.0})._n_warmup_steps == 2  # type: ignore[attr-defined]
    for min_resource in ("auto", 2):
        assert isinstance(
            make_pruner("successive_halving", {"min_resource": min_resource}), optuna.pruners.BasePruner
        )
    assert isinstance(make_pruner("threshold", {"lower": 0, "upper": None}), optuna.pruners.ThresholdPruner)


def test_a_function_that_builds_the_sampler_or_pruner_is_used_as_a_class_is(
    configs: tuple[Path, Path], opt_dict: dict[str, Any]
) -> None:
    """`sampler: {name: mypkg.hpo:my_tpe}`, a function returning a TPESampler, crashed optimize with
    "TypeError: issubclass() arg 1 must be a class"; the line about a function argument (TPE's gamma) had told
    users to write one."""
    import yaml

    from tests.cli_run import optimize

    sampler = make_sampler("tests.helpers:my_tpe", {"n_startup_trials": 3}, seed=7, space=SPACE)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 3
    assert isinstance(make_pruner("tests.helpers:median_after", {"warmup": 2}), optuna.pruners.MedianPruner)
    run_path, opt_path = configs
    opt_dict["sampler"] = {"name": "tests.helpers:my_tpe", "kwargs": {"n_startup_trials": 1}}
    opt_dict["pruner"] = {"name": "tests.helpers:median_after"}
    opt_path.write_text(yaml.safe_dump(opt_dict))
    optimize(run_path, opt_path, opt_dict["storage"], 2)
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "tests.helpers:not_a_sampler",
            "sampler: 'tests.helpers:not_a_sampler' returned int, not an optuna.samplers.BaseSampler; return the "
            "sampler it builds",
        ),
        (
            "optuna.pruners:MedianPruner",
            "sampler: 'optuna.pruners:MedianPruner' is not an optuna.samplers.BaseSampler subclass (it is the "
            "class MedianPruner); name such a class, or a function that builds the sampler from the kwargs",
        ),
    ],
)
def test_a_sampler_function_or_class_that_builds_no_sampler_is_refused(name: str, message: str) -> None:
    with pytest.raises(HpoError) as info:
        make_sampler(name, {}, seed=1, space=SPACE)
    assert str(info.value) == message


@pytest.mark.parametrize("error", ["ValueError", "TypeError"])
def test_a_user_pruner_that_raises_for_its_own_reasons_is_not_said_to_reject_its_kwargs(
    tmp_path: Path, error: str
) -> None:
    """A ValueError or TypeError the user's class raised after taking its kwargs read "pruner: 'x' rejected
    its kwargs: licence key missing", sending the user to kwargs that were fine."""
    module = f"keyed_pruner_{error.lower()}"
    (tmp_path / f"{module}.py").write_text(
        "import optuna\n\n\nclass Pruner(optuna.pruners.NopPruner):\n"
        f"    def __init__(self, key_file='key.txt'):\n        raise {error}('licence key missing')\n"
    )
    with pytest.raises(HpoError) as info:
        make_pruner(f"{module}:Pruner", {"key_file": "k.txt"})
    assert str(info.value) == (
        f"pruner: building '{module}:Pruner' failed: {error}: licence key missing (at {module}.py:6 in __init__)"
    )


def test_a_user_class_or_function_under_an_optuna_decorator_that_raises_is_not_said_to_reject_its_kwargs(
    tmp_path: Path,
) -> None:
    """Optuna's `experimental_class` (and `experimental_func`) wrap the constructor in a function of
    optuna._experimental, whose frame stood first after the call: a user's sampler raising for its own
    reasons read "sampler: 'x' rejected its kwargs: licence key missing", though its kwargs were fine."""
    (tmp_path / "decorated_plugins.py").write_text(
        "import optuna\nfrom optuna._experimental import experimental_class, experimental_func\n\n\n"
        "@experimental_class('4.0.0')\nclass Sampler(optuna.samplers.RandomSampler):\n"
        "    def __init__(self, key_file='key.txt', seed=None):\n"
        "        raise ValueError('licence key missing')\n\n\n"
        "@experimental_func('4.0.0')\ndef pruner(level=1):\n    raise TypeError('licence key missing')\n\n\n"
        "@experimental_class('4.0.0')\nclass Strict(optuna.pruners.MedianPruner):\n    pass\n"
    )
    with pytest.raises(HpoError) as info:
        make_sampler("decorated_plugins:Sampler", {"key_file": "k.txt"}, seed=0, space=SPACE)
    assert str(info.value) == (
        "sampler: building 'decorated_plugins:Sampler' failed: ValueError: licence key missing "
        "(at decorated_plugins.py:8 in __init__)"
    )
    with pytest.raises(HpoError) as info:
        make_pruner("decorated_plugins:pruner", {"level": 2})
    assert str(info.value) == (
        "pruner: building 'decorated_plugins:pruner' failed: TypeError: licence key missing "
        "(at decorated_plugins.py:13 in pruner)"
    )
    # Optuna's own constructor under the decorator still checks the config's values
    with pytest.raises(
        HpoError, match=r"^pruner.kwargs.n_startup_trials: 'decorated_plugins:Strict' rejected -1: "
    ):
        make_pruner("decorated_plugins:Strict", {"n_startup_trials": -1})


def test_a_user_sampler_that_passes_a_bad_value_to_optuna_names_its_own_line(tmp_path: Path) -> None:
    """The user's class, not the config, gave Optuna the value it refused: the line in the user's code."""
    (tmp_path / "own_seed_sampler.py").write_text(
        "import optuna\n\n\nclass Sampler(optuna.samplers.RandomSampler):\n"
        "    def __init__(self, seed=None):\n        super().__init__(seed=-1)\n"
    )
    with pytest.raises(HpoError) as info:
        make_sampler("own_seed_sampler:Sampler", {}, seed=0, space=SPACE)
    assert str(info.value).startswith("sampler: building 'own_seed_sampler:Sampler' failed: ValueError: ")
    # the line in the user's code, not numpy's compiled frame ("at numpy/random/_mt19937.pyx:182 in ...")
    assert str(info.value).endswith("(at own_seed_sampler.py:6 in __init__)")


def test_a_user_pruner_or_sampler_missing_a_required_argument_says_what_to_add(tmp_path: Path) -> None:
    """It was "pruner: 'needy_pruner:Pruner' rejected its kwargs: Pruner.__init__() missing 1 required
    positional argument: 'level'"; models said what to add, samplers and pruners now say it too."""
    (tmp_path / "needy_pruner.py").write_text(
        "import optuna\n\n\nclass Pruner(optuna.pruners.NopPruner):\n"
        "    def __init__(self, level):\n        raise ValueError('never reached')\n"
    )
    with pytest.raises(HpoError) as info:
        make_pruner("needy_pruner:Pruner", {})
    assert str(info.value) == (
        "pruner.kwargs: pruner 'needy_pruner:Pruner' requires 'level', which the config does not set; add "
        "level: ... under pruner.kwargs:"
    )
    (tmp_path / "needy_sampler.py").write_text(
        "import optuna\n\n\nclass Sampler(optuna.samplers.RandomSampler):\n"
        "    def __init__(self, level, *, width, seed=None):\n        super().__init__(seed=seed)\n"
    )
    with pytest.raises(HpoError) as info:
        make_sampler("needy_sampler:Sampler", {"width": 2}, seed=0, space=SPACE)
    assert str(info.value) == (
        "sampler.kwargs: sampler 'needy_sampler:Sampler' requires 'level', which the config does not set; add "
        "level: ... under sampler.kwargs:"
    )
    with pytest.raises(HpoError) as info:  # patient's inner pruner: the key it is set at
        make_pruner("patient", {"patience": 1, "wrapped_pruner": {"name": "needy_pruner:Pruner"}})
    assert str(info.value).startswith(
        "pruner.kwargs.wrapped_pruner.kwargs: pruner 'needy_pruner:Pruner' requires"
    )


def test_a_negative_sampler_count_is_refused_naming_it() -> None:
    """TPE took n_startup_trials: -5 silently (as 0): Optuna's samplers do not check it."""
    with pytest.raises(HpoError) as info:
        make_sampler("tpe", {"n_startup_trials": -5}, seed=0, space=SPACE)
    assert str(info.value) == (
        "sampler.kwargs.n_startup_trials: is a count, so it cannot be negative, got -5; give 0 or more"
    )
    assert make_sampler("tpe", {"n_startup_trials": 0}, seed=0, space=SPACE) is not None
    with pytest.raises(
        HpoError, match=r"^sampler.kwargs.n_ei_candidates: is a count, so it cannot be negative"
    ):
        make_sampler("rung_tpe", {"n_ei_candidates": -1}, seed=0, space=SPACE)  # hpotool's, passed on to TPE


def test_a_value_optuna_refuses_names_its_key() -> None:
    """It was "pruner: 'median' rejected its kwargs: <Optuna's text>", naming no key."""
    with pytest.raises(HpoError) as info:
        make_pruner("median", {"n_startup_trials": -1})
    assert str(info.value) == (
        "pruner.kwargs.n_startup_trials: 'median' rejected -1: Number of startup trials cannot be negative, "
        "but got n_startup_trials=-1; give n_startup_trials a value it takes"
    )
    with pytest.raises(HpoError) as info:  # numpy's compiled code refuses it, in a frame of a .pyx
        make_sampler("random", {"seed": -1}, seed=None, space=SPACE)
    assert (
        str(info.value)
        == "sampler.kwargs.seed: 'random' rejected -1: Seed must be between 0 and 2**32 - 1; give seed a value it takes"
    )


@pytest.mark.parametrize(
    ("make", "line"),
    [
        (
            lambda: make_pruner("threshold", {}),
            "pruner.kwargs: 'threshold' needs lower or upper (or both): a trial is pruned once its metric falls "
            "below lower or rises above upper; e.g. lower: 0.5",
        ),
        (
            lambda: make_pruner("threshold", {"lower": 2, "upper": 1}),
            "pruner.kwargs: lower (2.0) must be below upper (1.0): a trial is pruned once its metric falls below "
            "lower or rises above upper; swap them, or drop one",
        ),
        (
            lambda: make_pruner("patient", {"patience": 1, "wrapped_pruner": {"name": "threshold"}}),
            "pruner.kwargs.wrapped_pruner.kwargs: 'threshold' needs lower or upper (or both): a trial is pruned "
            "once its metric falls below lower or rises above upper; e.g. lower: 0.5",
        ),
        (
            lambda: make_sampler("tpe", {"group": True, "multivariate": False}, seed=0, space=SPACE),
            "sampler.kwargs.group: group: true needs multivariate: true (it is false here); set multivariate: "
            "true, or drop group",
        ),
        (
            lambda: make_sampler(
                "cmaes", {"use_separable_cma": True, "with_margin": True}, seed=0, space=SPACE
            ),
            "sampler.kwargs: use_separable_cma and with_margin cannot both be true in 'cmaes'; drop one",
        ),
        (
            lambda: make_pruner("hyperband", {"bootstrap_count": 1}),
            "pruner.kwargs.bootstrap_count: bootstrap_count needs a number of epochs for min_resource (and "
            "max_resource), not auto; give them numbers, or drop bootstrap_count",
        ),
        (
            lambda: make_pruner("percentile", {"percentile": 150}),
            "pruner.kwargs.percentile: 'percentile' rejected 150.0: Percentile must be between 0 and 100 "
            "inclusive, but got percentile=150.0; give percentile a value it takes",
        ),
        (
            lambda: make_sampler("nsga2", {"population_size": 1}, seed=0, space=SPACE),
            "sampler.kwargs.population_size: 'nsga2' rejected 1: `population_size` must be greater than or "
            "equal to 2; give population_size a value it takes",
        ),
    ],
)
def test_optuna_refusing_its_kwargs_names_the_key_and_the_fix(make: Any, line: str) -> None:
    """It was "<key>: 'threshold' rejected its kwargs: Either lower or upper must be specified.", Optuna's
    text, which names neither the key nor what to write."""
    with pytest.raises(HpoError) as info:
        make()
    assert str(info.value) == line


def test_a_sampler_function_under_a_decorator_that_hides_its_signature_is_not_given_a_seed(
    tmp_path: Path,
) -> None:
    """A decorator without functools.wraps shows (*args, **kwargs), so the study's seed was passed to a
    function that takes none: "sampler: building 'x:my_tpe' failed: TypeError: my_tpe() got an unexpected
    keyword argument 'seed'". It is left out, as for a function whose signature shows no seed."""
    (tmp_path / "logged_sampler.py").write_text(
        "import optuna\n\n\ndef logged(fn):\n    def wrapper(*args, **kwargs):\n"
        "        return fn(*args, **kwargs)\n    return wrapper\n\n\n"
        "@logged\ndef my_tpe(n_startup=1):\n    return optuna.samplers.TPESampler(n_startup_trials=n_startup)\n"
    )
    sampler = make_sampler("logged_sampler:my_tpe", {"n_startup": 3}, seed=7, space=SPACE)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 3
    with pytest.raises(HpoError, match=r"my_tpe\(\) got an unexpected keyword argument 'seed'"):
        make_sampler("logged_sampler:my_tpe", {"seed": 3}, seed=7, space=SPACE)  # the config's own: refused


def test_a_scrambled_qmc_study_draws_one_sequence_across_resumes_and_workers() -> None:
    """Each resume and worker scrambled its own Sobol sequence (a derived seed) and drew it from its first
    point: Optuna counts the points drawn per seed, and the study held one count per run."""
    from hpotool.config import OptimizeConfig
    from hpotool.study_sampler import study_sampler
    from hpotool.suggestion import suggest

    space = {"optimizer.lr": FloatParam(type="float", low=0.001, high=0.1, log=True)}
    opt = OptimizeConfig.model_validate(
        {
            "study_name": "s",
            "seed": 3,
            "sampler": {"name": "qmc", "kwargs": {"scramble": True}},
            "search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        }
    )
    study = optuna.create_study()
    runs = [study_sampler(opt), study_sampler(opt, existing=2), study_sampler(opt, worker=1, existing=4)]
    for sampler in runs:
        study.sampler = sampler
        study.optimize(lambda t: suggest(t, space)["optimizer.lr"], n_trials=2)
    counts = {
        k: v
        for k, v in study._storage.get_study_system_attrs(study._study_id).items()
        if k.startswith("qmc:")
    }
    assert list(counts.values()) == [4]  # trial 0 by the random sampler, then points 0 to 4 of one sequence
    one = optuna.create_study(sampler=study_sampler(opt))
    one.optimize(lambda t: suggest(t, space)["optimizer.lr"], n_trials=6)
    assert [t.params for t in study.trials[1:]] == [t.params for t in one.trials[1:]]


def test_object_arguments_of_optuna_s_samplers_are_built_from_name_and_kwargs() -> None:
    """NSGA-II's crossover, PartialFixedSampler's base_sampler and CmaEs's independent_sampler were refused
    ("a YAML value cannot be"), leaving a module of one's own as the only way to give them."""
    nsga = make_sampler(
        "nsga2",
        {"crossover": {"name": "optuna.samplers.nsgaii.BLXAlphaCrossover", "kwargs": {"alpha": 0.3}}},
        seed=0,
        space=SPACE,
    )
    crossover = nsga._child_generation_strategy._crossover  # type: ignore[attr-defined]
    assert isinstance(crossover, optuna.samplers.nsgaii.BLXAlphaCrossover) and crossover._alpha == 0.3
    nsga = make_sampler(
        "nsga2",
        {"mutation": {"name": "optuna.samplers.nsgaii.PolynomialMutation", "kwargs": {"eta": 5}}},
        seed=0,
        space=SPACE,
    )
    mutation = nsga._child_generation_strategy._mutation  # type: ignore[attr-defined]
    assert isinstance(mutation, optuna.samplers.nsgaii.PolynomialMutation) and mutation._eta == 5
    fixed = make_sampler(
        "optuna.samplers.PartialFixedSampler",
        {"fixed_params": {"model.activation": "gelu"}, "base_sampler": {"name": "tpe"}},
        seed=7,
        space=SPACE,
    )
    from hpotool.suggestion import suggest

    study = optuna.create_study(sampler=fixed)
    study.optimize(lambda t: suggest(t, SPACE)["optimizer.lr"], n_trials=3)
    assert {t.params["model.activation"] for t in study.trials} == {"gelu"}
    again = make_sampler("cmaes", {"independent_sampler": "random"}, seed=7, space=SPACE)
    assert isinstance(again._independent_sampler, optuna.samplers.RandomSampler)  # type: ignore[attr-defined]


def test_a_grid_under_partial_fixed_sampler_runs_each_point_of_the_unfixed_parameters_once() -> None:
    """The base grid was built over the whole search space, the fixed parameter included: with
    model.hidden.0 (4 values) fixed, a grid over 3 learning rates ran 12 trials, each point 4 times, before the
    study ended."""
    from hpotool.suggestion import suggest

    space: dict[str, Param] = {
        "model.hidden.0": IntParam(type="int", low=8, high=32, step=8),
        "optimizer.lr": CategoricalParam(type="categorical", choices=[0.001, 0.01, 0.1]),
    }
    sampler = make_sampler(
        "optuna.samplers.PartialFixedSampler",
        {"fixed_params": {"model.hidden.0": 16}, "base_sampler": "grid"},
        seed=0,
        space=space,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: suggest(t, space)["optimizer.lr"], n_trials=20)
    assert sorted(t.params["optimizer.lr"] for t in study.trials) == [0.001, 0.01, 0.1]
    assert {t.params["model.hidden.0"] for t in study.trials} == {16}


@pytest.mark.parametrize(
    ("crossover", "said"),
    [
        ({"name": "blx"}, "sampler.kwargs.crossover.name: give the import path of a BaseCrossover class"),
        ({"name": "optuna.samplers.TPESampler"}, "built a TPESampler, not a BaseCrossover"),
        (
            {"name": "optuna.samplers.nsgaii.BLXAlphaCrossover", "kwargs": {"alpa": 0.3}},
            "sampler.kwargs.crossover.kwargs: crossover 'optuna.samplers.nsgaii.BLXAlphaCrossover' takes no "
            "argument 'alpa' (did you mean 'alpha'?)",
        ),
        (
            {"name": "optuna.samplers.nsgaii.BLXAlphaCrossover", "alpha": 0.3},
            "give it as {name: ..., kwargs:",
        ),
    ],
)
def test_an_object_argument_that_builds_nothing_right_names_its_key(
    crossover: dict[str, Any], said: str
) -> None:
    with pytest.raises(HpoError) as info:
        make_sampler("nsga2", {"crossover": crossover}, seed=0, space=SPACE)
    assert said in str(info.value)


def test_a_bare_name_of_a_sampler_or_its_crossover_the_project_defines_is_told_its_import_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sampler: {name: MySampler}` or a crossover's `name: MyCrossover`, defined in the current folder's
    hpo_lab/parts.py: the line said only "unknown sampler" or "give the import path", not which one."""
    (tmp_path / "hpo_lab").mkdir()
    (tmp_path / "hpo_lab" / "__init__.py").write_text("")
    (tmp_path / "hpo_lab" / "parts.py").write_text(
        "class MySampler:\n    pass\n\n\nclass MyCrossover:\n    pass\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HpoError) as info:
        make_sampler("nsga2", {"crossover": {"name": "MyCrossover"}}, seed=0, space=SPACE)
    assert str(info.value) == (
        "sampler.kwargs.crossover.name: give the import path of a BaseCrossover class (package.module:Name), "
        "got 'MyCrossover'; did you mean hpo_lab.parts:MyCrossover?"
    )
    with pytest.raises(HpoError) as info:
        make_sampler("MySampler", {}, seed=0, space=SPACE)
    assert str(info.value).startswith(
        "sampler.name: unknown sampler 'MySampler'; did you mean hpo_lab.parts:MySampler? (your own code "
    )


def test_an_unseeded_scrambled_qmc_study_shares_one_sequence_between_its_processes() -> None:
    """With no seed, each worker and resume scrambled a random sequence of its own, Optuna warning of it in
    each ("No seed is provided for `QMCSampler`"): two workers drew two sequences."""
    from hpotool.config import OptimizeConfig
    from hpotool.study_sampler import study_sampler

    opt = OptimizeConfig.model_validate(
        {
            "study_name": "s",
            "sampler": {"name": "qmc", "kwargs": {"scramble": True}},
            "search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        }
    )
    first, other = study_sampler(opt), study_sampler(opt, worker=1, existing=3, salt=(1, 2))
    assert first._seed == other._seed  # type: ignore[attr-defined]
    renamed = opt.model_copy(update={"study_name": "t"})
    assert study_sampler(renamed)._seed != first._seed  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "kwargs", "line"),
    [
        (
            "cmaes",
            {"restart_strategy": "ipop"},
            "sampler.kwargs.restart_strategy: Optuna's CmaEsSampler ignores it since Optuna 4.4 (it runs no "
            "restarts whatever restart_strategy says; restarts moved to OptunaHub): drop it",
        ),
        (
            "cmaes",
            {"inc_popsize": 2},
            "sampler.kwargs.inc_popsize: Optuna's CmaEsSampler ignores it since Optuna 4.4 (it served "
            "restart_strategy, which no longer restarts; to set the population give popsize instead): drop it",
        ),
        (
            "rung_tpe",
            {"consider_prior": False},
            "sampler.kwargs.consider_prior: Optuna's TPESampler ignores it since Optuna 4.3 (the prior is always "
            "considered; prior_weight sets its weight): drop it",
        ),
    ],
)
def test_a_kwarg_optuna_ignores_is_refused(name: str, kwargs: dict[str, Any], line: str) -> None:
    """`restart_strategy: ipop` printed Optuna's FutureWarning and the study ran without restarts."""
    with pytest.raises(HpoError) as info:
        make_sampler(name, kwargs, seed=0, space=SPACE)
    assert str(info.value) == line


def test_a_deprecated_kwarg_optuna_still_uses_is_a_note_and_no_warning() -> None:
    import warnings

    from hpotool.kwarg_notes import kwarg_notes

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's FutureWarning would raise here
        with kwarg_notes() as notes:
            sampler = make_sampler("cmaes", {"sigma0": 0.5}, seed=0, space=SPACE)
        make_sampler("cmaes", {"sigma0": 0.5}, seed=0, space=SPACE)  # a worker's build: silent
    assert sampler._sigma0 == 0.5  # it is used
    assert notes == [
        f"sampler.kwargs.sigma0 is deprecated in Optuna 4.9.0 and goes in Optuna 6.0.0; it still works with this "
        f"Optuna ({optuna.__version__}), so the study uses it: drop it before upgrading Optuna"
    ]


def test_a_warning_a_sampler_gives_of_its_own_is_still_shown(tmp_path: Path) -> None:
    """Building with Optuna's deprecation warnings turned into notes leaves a class's other warnings shown."""
    (tmp_path / "warning_sampler.py").write_text(
        "import warnings\n\nimport optuna\n\n\nclass Sampler(optuna.samplers.RandomSampler):\n"
        "    def __init__(self, seed=None):\n        warnings.warn('licence expires in 3 days')\n"
        "        super().__init__(seed=seed)\n"
    )
    with pytest.warns(UserWarning, match="licence expires in 3 days"):
        make_sampler("warning_sampler:Sampler", {}, seed=0, space=SPACE)


def test_a_grid_under_partial_fixed_sampler_names_its_own_key() -> None:
    """A grid given to the base sampler that lists the fixed parameter read "sampler.kwargs.search_space.
    model.hidden.0: not in search_space", a key the config does not have, about a parameter it searches."""
    space: dict[str, Param] = {
        "model.hidden.0": IntParam(type="int", low=8, high=32, step=8),
        "optimizer.lr": CategoricalParam(type="categorical", choices=[0.001, 0.01, 0.1]),
    }

    def base(grid: dict[str, list[Any]]) -> None:
        make_sampler(
            "optuna.samplers.PartialFixedSampler",
            {
                "fixed_params": {"model.hidden.0": 16},
                "base_sampler": {"name": "grid", "kwargs": {"search_space": grid}},
            },
            seed=0,
            space=space,
        )

    with pytest.raises(HpoError) as info:
        base({"model.hidden.0": [16], "optimizer.lr": [0.01]})
    assert str(info.value) == (
        "sampler.kwargs.base_sampler.kwargs.search_space.model.hidden.0: fixed_params fixes it, so the base "
        "sampler samples the other parameters alone: drop it from the grid"
    )
    with pytest.raises(HpoError) as info:
        base({"optimizer.lr": [0.5]})
    assert str(info.value) == (
        "sampler.kwargs.base_sampler.kwargs.search_space.optimizer.lr: 0.5 lies outside search_space.optimizer.lr "
        "(one of 0.001, 0.01, 0.1); give a value within it, widen search_space.optimizer.lr, or drop the value"
    )
    base({"optimizer.lr": [0.01]})


def test_partial_fixed_sampler_s_fixed_params_are_checked_against_the_search_space() -> None:
    """A misspelt key in fixed_params fixed nothing (the parameter was sampled as before) and a value outside
    the range or choices was trained as it was; both ran with no word."""
    space: dict[str, Param] = {
        "model.hidden.0": IntParam(type="int", low=8, high=32, step=8),
        "optimizer.lr": CategoricalParam(type="categorical", choices=[0.001, 0.01, 0.1]),
    }

    def fixing(fixed: dict[str, Any]) -> optuna.samplers.BaseSampler:
        return make_sampler(
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": fixed, "base_sampler": "random"},
            seed=0,
            space=space,
        )

    with pytest.raises(HpoError) as info:
        fixing({"optimizer.lt": 0.01})
    assert str(info.value) == (
        "sampler.kwargs.fixed_params.optimizer.lt: not in search_space (did you mean 'optimizer.lr'?); "
        "fixed_params fixes searched parameters only: correct the key or drop it"
    )
    with pytest.raises(HpoError) as info:
        fixing({"seed": 1})
    assert str(info.value) == (
        "sampler.kwargs.fixed_params.seed: not in search_space (it searches model.hidden.0, optimizer.lr); "
        "fixed_params fixes searched parameters only: correct the key or drop it"
    )
    with pytest.raises(HpoError) as info:
        fixing({"model.hidden.0": 40})
    assert str(info.value) == (
        "sampler.kwargs.fixed_params.model.hidden.0: 40 lies outside search_space.model.hidden.0 ([8, 32], "
        "step 8); give a value within it, or widen search_space.model.hidden.0"
    )
    with pytest.raises(HpoError) as info:
        fixing({"optimizer.lr": 0.5})
    assert str(info.value) == (
        "sampler.kwargs.fixed_params.optimizer.lr: 0.5 lies outside search_space.optimizer.lr (one of 0.001, "
        "0.01, 0.1); give a value within it, or widen search_space.optimizer.lr"
    )
    assert isinstance(
        fixing({"model.hidden.0": 24, "optimizer.lr": 0.01}), optuna.samplers.PartialFixedSampler
    )


def test_partial_fixed_sampler_fixes_a_list_or_section_choice_as_the_config_writes_it() -> None:
    """fixed_params names a whole list choice ([16, 8]) or section choice as the config writes it, as a grid
    or a condition does; Optuna stores the choice's label, which it was not given: every study was refused
    ("'[16, 8]' not in ('[8]', '[16, 8]')"). The trials now train the fixed choices."""
    from hpotool.suggestion import suggest

    space: dict[str, Param] = {
        "model.hidden": CategoricalParam(type="categorical", choices=[[8], [16, 8]]),
        "optimizer": CategoricalParam(
            type="categorical", choices=[{"name": "adam"}, {"name": "sgd", "lr": 0.1}]
        ),
        "optimizer.lr": FloatParam(type="float", low=1e-3, high=1e-1, log=True),
    }
    sampler = make_sampler(
        "optuna.samplers.PartialFixedSampler",
        {
            "fixed_params": {"model.hidden": [16, 8], "optimizer": {"lr": 0.1, "name": "sgd"}},
            "base_sampler": "random",
        },
        seed=0,
        space=space,
    )
    study = optuna.create_study(sampler=sampler)
    drawn = []
    study.optimize(lambda t: drawn.append(suggest(t, space)) or 0.0, n_trials=3)
    assert [(d["model.hidden"], d["optimizer"]) for d in drawn] == [([16, 8], {"name": "sgd", "lr": 0.1})] * 3


def test_fixed_params_name_the_whole_section_choice_that_builds_their_section(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """fixed_params giving the choice {name: adam} as the section written out, {name: adam, lr: 0.001}
    (adam's default lr: the same section), as enqueue, conditions and a grid may, was refused: "lies outside
    search_space.optimizer (one of ...)". The trials now train that choice; a section no choice builds is
    refused naming the choices."""
    from hpotool.plan import prepare_study
    from hpotool.study_run import run_study
    from tests.conftest import load_study, write_configs

    sgd, adam = {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam"}
    fixed = {"optimizer": {"name": "adam", "lr": 0.001}}
    opt_dict.update(
        n_trials=2,
        sampler={
            "name": "optuna.samplers.PartialFixedSampler",
            "kwargs": {"fixed_params": fixed, "base_sampler": "random"},
        },
    )
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [sgd, adam]},
        "model.hidden.0": {"type": "int", "low": 8, "high": 16, "step": 8},
    }
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert plan.opt.sampler.kwargs["fixed_params"] == {"optimizer": adam}
    run_study(plan)
    assert [t.params["optimizer"] for t in load_study(opt_dict).trials] == ["{name: adam}"] * 2

    # a key fixed below the section (searched there) stands in for the choice's own, as in enqueue
    opt_dict["search_space"]["optimizer.lr"] = {"type": "float", "low": 0.01, "high": 0.1, "log": True}
    fixed = {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "optimizer.lr": 0.05}
    opt_dict["sampler"]["kwargs"]["fixed_params"] = fixed
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert plan.opt.sampler.kwargs["fixed_params"] == {"optimizer": sgd, "optimizer.lr": 0.05}

    opt_dict["sampler"]["kwargs"]["fixed_params"] = {"optimizer": {"name": "adam", "lr": 0.01}}
    with pytest.raises(HpoError) as info:
        prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert str(info.value).endswith(
        "sampler.kwargs.fixed_params.optimizer: {name: adam, lr: 0.01} lies outside search_space.optimizer "
        "(one of {name: sgd, lr: 0.1, momentum: 0.9}, {name: adam}); give a value within it, or widen "
        "search_space.optimizer"
    )


def test_a_grid_value_equal_to_one_of_the_space_is_taken_as_the_space_spells_it() -> None:
    """16.0 for an int, or for the choice 16: refused as "16.0 lies outside search_space.h", where
    fixed_params and enqueue take it as 16."""
    space: dict[str, Param] = {
        "h": IntParam(type="int", low=4, high=32),
        "c": CategoricalParam(type="categorical", choices=[16, 32]),
    }
    sampler = make_sampler("grid", {"search_space": {"h": [16.0, 8], "c": [32.0]}}, seed=0, space=space)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    assert sorted(sampler._all_grids) == [(32, 8), (32, 16)]
    assert all(type(v) is int for point in sampler._all_grids for v in point)


def test_a_sampler_of_the_users_that_takes_no_seed_is_noted_where_the_config_sets_one(tmp_path: Path) -> None:
    """`seed: 42` with `sampler: {name: mine:my_random}`, a function that takes no seed, drew other values on
    every run without a word: the seed is passed only to a sampler that takes one. Noted once; not where the
    config sets no seed, where the function takes one, or where hpotool seeds the sampler it wraps
    (PartialFixedSampler's base_sampler)."""
    from hpotool.kwarg_notes import kwarg_notes

    (tmp_path / "mine.py").write_text(
        "import optuna\n\n\ndef my_random():\n    return optuna.samplers.RandomSampler()\n\n\n"
        "def my_seeded(seed=None):\n    return optuna.samplers.RandomSampler(seed=seed)\n"
    )
    with kwarg_notes() as notes:
        make_sampler("mine:my_random", {}, seed=42, space=SPACE)
    assert notes == [
        "sampler: 'mine:my_random' takes no seed argument, so the optimize config's seed does not reach it, "
        "and it draws other values on every run; give it a seed parameter (hpotool passes the seed to a "
        "sampler that takes one) and seed what it draws with it"
    ]
    with kwarg_notes() as notes:
        make_sampler("mine:my_random", {}, seed=None, space=SPACE)
        make_sampler("mine:my_seeded", {}, seed=42, space=SPACE)
        make_sampler(
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.activation": "gelu"}, "base_sampler": {"name": "tpe"}},
            seed=7,
            space=SPACE,
        )
    assert notes == []


def test_a_cmaes_start_point_without_a_parameter_it_samples_is_refused() -> None:
    """x0 without model.dropout passed trial 0 and failed every later trial in CMA-ES's sample_relative
    ('Parameter configuration must contain all distributions'), and one outside its range failed them too
    ('invalid bounds'); a categorical or conditional parameter, which its independent sampler draws, needs
    no value there."""
    space: dict[str, Param] = {
        "optimizer.lr": FloatParam(type="float", low=1e-3, high=1e-1, log=True),
        "model.dropout": FloatParam(type="float", low=0.0, high=0.5),
        "model.activation": CategoricalParam(type="categorical", choices=["relu", "tanh"]),
        "model.hidden.2": IntParam(type="int", low=8, high=32, when={"model.activation": "tanh"}),
    }
    with pytest.raises(
        HpoError, match=r"^sampler\.kwargs\.x0: gives no value for model\.dropout, which CMA-ES"
    ):
        make_sampler("cmaes", {"x0": {"optimizer.lr": 0.01}}, seed=0, space=space)
    with pytest.raises(HpoError) as info:
        make_sampler("cmaes", {"x0": {"optimizer.lr": 0.01, "model.dropout": 0.9}}, seed=0, space=space)
    assert str(info.value) == (
        "sampler.kwargs.x0.model.dropout: 0.9 lies outside search_space.model.dropout ([0.0, 0.5]), where "
        "CMA-ES starts; give a value within it, or widen search_space.model.dropout"
    )
    sampler = make_sampler("cmaes", {"x0": {"optimizer.lr": 0.01, "model.dropout": 0.1}}, seed=0, space=space)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    from hpotool.suggestion import suggest

    study.optimize(
        lambda t: suggest(t, space)["model.dropout"], n_trials=3
    )  # the start point it samples from
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_cmaes_start_point_needs_no_value_for_a_range_of_one_value() -> None:
    """CMA-ES leaves out of its model a parameter of one value (`low: 4, high: 4`, as a refined stage may
    narrow it to): its trials run without a start value for it. x0 was refused for lacking one, "every trial
    after the first would fail"."""
    from hpotool.suggestion import suggest

    space: dict[str, Param] = {
        "optimizer.lr": FloatParam(type="float", low=1e-3, high=1e-1, log=True),
        "model.layers": IntParam(type="int", low=4, high=4),
        "model.dropout": FloatParam(type="float", low=0.2, high=0.2),
    }
    sampler = make_sampler("cmaes", {"x0": {"optimizer.lr": 0.01}}, seed=0, space=space)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: suggest(t, space)["optimizer.lr"], n_trials=4)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert {(t.params["model.layers"], t.params["model.dropout"]) for t in study.trials} == {(4, 0.2)}


_STEPPED: dict[str, Param] = {
    "model.hidden.0": IntParam(type="int", low=8, high=32, step=8),
    "model.dropout": FloatParam(type="float", low=0.0, high=0.5, step=0.1),
}


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.hidden.0": 12}, "base_sampler": "random"},
            "sampler.kwargs.fixed_params.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16",
        ),
        (
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.dropout": 0.15}, "base_sampler": "random"},
            "sampler.kwargs.fixed_params.model.dropout: 0.15 is not on the step 0.1 from 0.0: write 0.1 or 0.2",
        ),
        (  # on the step, but a float where the int takes whole numbers: not "write 16 or 24"
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.hidden.0": 16.0}, "base_sampler": "random"},
            "sampler.kwargs.fixed_params.model.hidden.0: 16.0 is a float, where model.hidden.0 takes whole "
            "numbers; write 16",
        ),
        (
            "cmaes",
            {"x0": {"model.hidden.0": 20, "model.dropout": 0.1}},
            "sampler.kwargs.x0.model.hidden.0: 20 is not on the step 8 from 8: write 16 or 24",
        ),
        (
            "cmaes",
            {"x0": {"model.hidden.0": 16, "model.dropout": 0.25}},
            "sampler.kwargs.x0.model.dropout: 0.25 is not on the step 0.1 from 0.0: write 0.2 or 0.3",
        ),
        (
            "grid",
            {"search_space": {"model.hidden.0": [8, 12.0], "model.dropout": [0.1]}},
            "sampler.kwargs.search_space.model.hidden.0: 12.0 is not on the step 8 from 8: write 8 or 16",
        ),
        (
            "grid",
            {"search_space": {"model.hidden.0": [8], "model.dropout": [0.1, 0.45]}},
            "sampler.kwargs.search_space.model.dropout: 0.45 is not on the step 0.1 from 0.0: write 0.4 or 0.5",
        ),
        (  # beyond the range: 'lies outside' as before
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.hidden.0": 40}, "base_sampler": "random"},
            "sampler.kwargs.fixed_params.model.hidden.0: 40 lies outside search_space.model.hidden.0 ([8, 32], "
            "step 8); give a value within it, or widen search_space.model.hidden.0",
        ),
    ],
)
def test_a_sampler_value_within_a_stepped_range_but_off_its_step_names_the_step_and_the_values_on_it(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    """fixed_params, CMA-ES's x0 and a grid's values between two steps of their parameter's range said the
    value "lies outside search_space.model.hidden.0 ([8, 32], step 8)", which holds 8 and 16 on either side
    of 12: now the step and the two values on it to write, as `enqueue:` says it."""
    with pytest.raises(HpoError) as info:
        make_sampler(name, kwargs, seed=0, space=_STEPPED)
    assert str(info.value) == message


def test_a_grid_names_every_value_its_parameter_does_not_take_at_once() -> None:
    """A grid's list of values for one parameter was refused a value at a time: [12, 20, 40] for a range
    [8, 32], step 8 took three runs to fix. One line names each, with what to write."""
    grid = {"model.hidden.0": [12, 16, 20, 40, 48], "model.dropout": [0.1]}
    with pytest.raises(HpoError) as info:
        make_sampler("grid", {"search_space": grid}, seed=0, space=_STEPPED)
    assert str(info.value) == (
        "sampler.kwargs.search_space.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16; 20 is not on "
        "the step 8 from 8: write 16 or 24; 40, 48 lie outside search_space.model.hidden.0 ([8, 32], step 8); "
        "give values within it, widen search_space.model.hidden.0, or drop them"
    )
    grid = {"model.hidden.0": [8], "model.dropout": ["0.1", 0.15, 0.9]}
    with pytest.raises(HpoError) as info:
        make_sampler("grid", {"search_space": grid}, seed=0, space=_STEPPED)
    assert str(info.value) == (
        'sampler.kwargs.search_space.model.dropout: "0.1" is text (in quotes), where model.dropout\'s values are '
        "numbers; write 0.1 without quotes; 0.15 is not on the step 0.1 from 0.0: write 0.1 or 0.2; 0.9 lies "
        "outside search_space.model.dropout ([0.0, 0.5], step 0.1); give a value within it, widen "
        "search_space.model.dropout, or drop it"
    )


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "optuna.samplers.PartialFixedSampler",
            {"fixed_params": {"model.hidden.0": "16.0", "model.dropout": 0.15, "model.hiden.1": 8}},
            'sampler.kwargs.fixed_params.model.hidden.0: "16.0" is text (in quotes), where model.hidden.0\'s '
            "values are numbers; write 16 without quotes; sampler.kwargs.fixed_params.model.dropout: 0.15 is not "
            "on the step 0.1 from 0.0: write 0.1 or 0.2; sampler.kwargs.fixed_params.model.hiden.1: not in "
            "search_space (did you mean 'model.hidden.0'?); fixed_params fixes searched parameters only: correct "
            "the key or drop it",
        ),
        (
            "cmaes",
            {"x0": {"model.hidden.0": "16.0", "model.dropout": 0.9}},
            'sampler.kwargs.x0.model.hidden.0: "16.0" is text (in quotes), where model.hidden.0\'s values are '
            "numbers; write 16 without quotes; sampler.kwargs.x0.model.dropout: 0.9 lies outside "
            "search_space.model.dropout ([0.0, 0.5], step 0.1), where CMA-ES starts; give a value within it, or "
            "widen search_space.model.dropout",
        ),
        (
            "grid",
            {"search_space": {"model.hidden.0": ["16.0", 24.0], "model.dropout": [0.1, 0.15]}},
            'sampler.kwargs.search_space.model.hidden.0: "16.0" is text (in quotes), where model.hidden.0\'s '
            "values are numbers; write 16 without quotes; sampler.kwargs.search_space.model.dropout: 0.15 is not "
            "on the step 0.1 from 0.0: write 0.1 or 0.2",
        ),
    ],
)
def test_a_sampler_s_values_for_several_parameters_are_refused_in_one_line(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    """fixed_params, CMA-ES's x0 and a grid were refused a parameter at a time, so values wrong for two keys
    took two runs to fix; and "16.0" (text) for an int said it "lies outside search_space.model.hidden.0
    ([8, 32], step 8)", which holds 16, so "16.0" without quotes, or 16.0, was the next try. One line names
    each key's, the text with the whole number to write."""
    with pytest.raises(HpoError) as info:
        make_sampler(name, kwargs, seed=0, space=_STEPPED)
    assert str(info.value) == message
