"""Fuzz the config loaders (bounded): random YAML documents and random mutations of the shipped
configs either load as a valid config or raise HpoError, never a raw exception. Plus property tests:
suggested values for generated valid spaces override the RunConfig into a valid one; generated
invalid specs raise HpoError."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.config_files import load_optimize_config, load_run_config
from hpotool.errors import HpoError
from hpotool.overrides import apply_overrides
from hpotool.param_values import contains
from hpotool.sections import SECTIONS
from hpotool.suggestion import suggest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "run": [ROOT / "configs/run_template.yaml", ROOT / "examples/custom_run.yaml"],
    "optimize": [ROOT / "configs/optimize_template.yaml", ROOT / "examples/custom_optimize.yaml"],
}
LOADERS = {"run": load_run_config, "optimize": load_optimize_config}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _load(kind: str, text: str, tmp: Path) -> None:
    path = tmp / f"{kind}.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(HpoError):
        LOADERS[kind](path)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize("kind", ["run", "optimize"])
@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_loads_or_raises_hpo_error(
    kind: str, text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _load(kind, text, tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("kind", ["run", "optimize"])
@FUZZ
@given(doc=values)
def test_random_documents_load_or_raise_hpo_error(
    kind: str, doc: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _load(kind, yaml.safe_dump(doc), tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("kind", ["run", "optimize"])
@FUZZ
@given(data=st.data())
def test_mutated_shipped_configs_load_or_raise_hpo_error(
    kind: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = data.draw(st.sampled_from(SHIPPED[kind]))
    doc = yaml.safe_load(source.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        *parents, last = data.draw(st.sampled_from(paths))
        target = doc
        for key in parents:
            target = target[key]
        if data.draw(st.booleans()) and isinstance(target, dict):
            del target[last]
        else:
            target[last] = data.draw(values)
    text = yaml.safe_dump(doc, sort_keys=False)
    if data.draw(st.booleans()):  # and sometimes break the text itself
        cut = data.draw(st.integers(0, len(text)))
        text = (
            text[:cut]
            + data.draw(st.sampled_from(["", ":", "[", "- ", "\t", "!!python/object:os.system\n", "&a *a"]))
            + text[cut:]
        )
    _load(kind, text, tmp_path_factory.mktemp("fuzz"))


RUN_BASE = {
    "device": "cpu",
    "data": {"name": "digits"},
    "model": {"name": "mlp", "hidden": [16, 8], "dropout": 0.0},
    "optimizer": {"name": "adam", "lr": 1e-3},
}
# dotted path -> strategy for a valid spec on it
VALID_SPECS = {
    "optimizer.lr": st.tuples(st.floats(1e-6, 1e-2), st.floats(1.0, 100.0), st.booleans()).map(
        lambda t: {"type": "float", "low": t[0], "high": t[0] * t[1], "log": t[2]}
    ),
    "model.dropout": st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 0.49)).map(
        lambda t: {"type": "float", "low": min(t), "high": max(t)}
    ),
    "model.hidden.0": st.tuples(st.integers(1, 64), st.integers(0, 64), st.integers(1, 4)).map(
        lambda t: {"type": "int", "low": t[0], "high": t[0] + t[1] * t[2], "step": t[2]}
    ),
    "epochs": st.tuples(st.integers(1, 5), st.integers(0, 5)).map(
        lambda t: {"type": "int", "low": t[0], "high": t[0] + t[1]}
    ),
    "batch_size": st.lists(st.integers(1, 256), min_size=1, max_size=4, unique=True).map(
        lambda c: {"type": "categorical", "choices": c}
    ),
    "model.activation": st.just({"type": "categorical", "choices": ["relu", "tanh", "gelu"]}),
    # whole lists of widths, of different lengths: Optuna stores each as its label, suggest gives the list
    "model.hidden": st.lists(
        st.lists(st.integers(1, 64), min_size=1, max_size=3), min_size=1, max_size=4, unique_by=tuple
    ).map(lambda c: {"type": "categorical", "choices": c}),
    # whole optimizer sections: each choice replaces the section, optimizer.lr (when searched) applies after
    "optimizer": st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["adam", "sgd", "rmsprop"])},
            optional={"lr": st.floats(1e-4, 1e-1), "weight_decay": st.floats(0.0, 1e-2)},
        ),
        min_size=1,
        max_size=3,
        # equal in value whatever their keys' order ({lr, weight_decay} and {weight_decay, lr}): a choice
        # written twice, which the config refuses
        unique_by=lambda c: tuple(sorted(c.items())),
    ).map(lambda c: {"type": "categorical", "choices": c}),
}


@settings(max_examples=100, deadline=None)
@given(
    specs=st.fixed_dictionaries({}, optional=VALID_SPECS).filter(
        lambda s: bool(s) and not {"model.hidden", "model.hidden.0"} <= s.keys()  # one or the other
    ),
    seed=st.integers(0, 2**16),
)
def test_suggested_values_override_into_a_valid_run_config(specs: dict[str, Any], seed: int) -> None:
    run = validate_config(RunConfig, copy.deepcopy(RUN_BASE), "run.yaml")
    opt = validate_config(
        OptimizeConfig, {"study_name": "p", "search_space": specs, "metric": "val_loss"}, "optimize.yaml"
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(3):
        trial = study.ask()
        params = suggest(trial, opt.search_space)
        assert all(contains(opt.search_space[k], v) for k, v in params.items())
        config = apply_overrides(run, params)  # validates again
        dumped = config.model_dump()
        for path, value in params.items():
            node: Any = dumped
            for part in path.split("."):
                node = node[int(part)] if isinstance(node, list) else node[part]
            if (
                path in SECTIONS
            ):  # the choice, its other keys at the section's defaults, then the keys below it
                below = {k.partition(".")[2]: v for k, v in params.items() if k.startswith(f"{path}.")}
                value = SECTIONS[path].model_validate({**value, **below}).model_dump()
            assert node == value
        study.tell(trial, 0.0)


bad_numbers = st.one_of(
    st.none(), st.text(max_size=4), st.floats(), st.integers(-5, 5), st.lists(st.integers(), max_size=2)
)


@settings(max_examples=200, deadline=None)
@given(
    spec=st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["float", "int", "categorical", "uniform", "", None, 3]),
            "low": bad_numbers,
            "high": bad_numbers,
            "step": bad_numbers,
            "log": st.one_of(st.booleans(), st.text(max_size=3), st.integers()),
            "choices": st.one_of(st.lists(values, max_size=3), values),
            "extra": values,
        },
    )
)
def test_generated_specs_load_or_raise_hpo_error(spec: dict[str, Any]) -> None:
    try:
        validate_config(
            OptimizeConfig, {"study_name": "p", "search_space": {"optimizer.lr": spec}}, "optimize.yaml"
        )
    except HpoError as exc:
        assert str(exc).startswith("optimize.yaml: ")


keys = st.one_of(st.text(max_size=8), st.none(), st.booleans(), st.integers(-3, 3))
keyed_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("kind", ["run", "optimize"])
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_refusals_of_mutated_configs_are_lines_naming_the_file(
    kind: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each line of a refusal starts with the file and reads as the config is written: a key YAML reads as
    a number, boolean or null (`3:`, `yes:`, `~:`) was pydantic's "1: Keys should be strings, got true"."""
    doc = yaml.safe_load(data.draw(st.sampled_from(SHIPPED[kind])).read_text())
    *parents, last = data.draw(st.sampled_from(_paths(doc)))
    target = doc
    for key in parents:
        target = target[key]
    if isinstance(target, dict) and data.draw(st.booleans()):
        target[data.draw(keys)] = data.draw(keyed_values)  # a key added beside it
    else:
        target[last] = data.draw(keyed_values)
    path = tmp_path_factory.mktemp("fuzz") / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    try:
        LOADERS[kind](path)
    except HpoError as exc:
        for line in str(exc).splitlines():
            assert line.startswith(f"{path}: "), line
            assert "Keys should be strings" not in line and "[key]" not in line, line


# A number as a YAML config may write a choice: itself, as a whole float (32.0), or in quotes ("32", "1e-3").
_NUMBER_KEYS = {
    "batch_size": int,
    "epochs": int,
    "model.layers": int,
    "model.hidden.0": int,
    "optimizer.lr": float,
}


def _written(number: float, how: str) -> Any:
    return {"plain": number, "float": float(number), "quoted": str(number)}[how]


@settings(max_examples=60, deadline=None)
@given(
    path=st.sampled_from(sorted(_NUMBER_KEYS)),
    numbers=st.lists(st.integers(1, 64), min_size=1, max_size=3, unique=True),
    hows=st.lists(st.sampled_from(["plain", "float", "quoted"]), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_a_number_choice_is_stored_as_the_run_trains_it_or_refused_naming_the_choices_to_write(
    path: str, numbers: list[int], hows: list[str], seed: int
) -> None:
    """Whatever way a choice is written, the value the study stores (and shows and exports) is the value the
    run config trains, of its type; or the space is refused before trial 0 in one line naming the file and
    the key, whose `write choices: [...]` passes. `"32"` and `32.0` for batch_size ran, stored as text and
    as a float, while the run trained 32."""
    from hpotool.overrides import leaf_values
    from hpotool.space_checks import check_space

    kind = _NUMBER_KEYS[path]
    choices = [
        _written(kind(n) if kind is int else n / 1000, how) for n, how in zip(numbers, hows, strict=False)
    ]
    run = validate_config(RunConfig, copy.deepcopy(RUN_BASE), "run.yaml")
    spec = {"type": "categorical", "choices": choices}
    # Each refusal names choices to write; a load-time one ([1.0, "2"]: the quotes) cannot know the key takes
    # whole numbers, which the space check's line then says: two lines at most, and what they name passes.
    for _ in range(3):
        try:
            opt = validate_config(
                OptimizeConfig, {"study_name": "p", "search_space": {path: spec}}, "optimize.yaml"
            )
            check_space(run, opt, None, "optimize.yaml")
            break
        except HpoError as exc:
            line = str(exc)
            assert "\n" not in line and line.startswith(f"optimize.yaml: search_space.{path}"), line
            written = line.rpartition("write choices: ")[2].removesuffix(", without quotes")
            assert written != line, line  # the line names the choices to write
            assert repr(yaml.safe_load(written)) != repr(spec["choices"]), line
            spec = {"type": "categorical", "choices": yaml.safe_load(written)}
    else:
        raise AssertionError(f"still refused after two fixes: {spec}")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(3):
        trial = study.ask()
        stored = suggest(trial, opt.search_space)[path]
        trained = leaf_values(apply_overrides(run, {path: stored}))[path]
        assert type(stored) is type(trained) and stored == trained, (stored, trained)
        study.tell(trial, 0.0)
