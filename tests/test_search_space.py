from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param, grid_choices, suggest

PARAM = TypeAdapter(Param)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "float", "low": 0.1, "high": 1.0}, FloatParam(type="float", low=0.1, high=1.0)),
        (
            {"type": "float", "min": 1e-4, "max": 1e-1, "log": True},
            FloatParam(type="float", low=1e-4, high=0.1, log=True),
        ),
        (
            {"type": "float", "low": 0, "high": 1, "step": 0.25},
            FloatParam(type="float", low=0, high=1, step=0.25),
        ),
        ({"type": "int", "low": 1, "high": 9, "step": 2}, IntParam(type="int", low=1, high=9, step=2)),
        (
            {"type": "int", "min": 1, "max": 1024, "log": True},
            IntParam(type="int", low=1, high=1024, log=True),
        ),
        (
            {"type": "categorical", "choices": ["a", 1, None]},
            CategoricalParam(type="categorical", choices=["a", 1, None]),
        ),
    ],
)
def test_valid_params(spec: dict[str, Any], expected: Param) -> None:
    assert PARAM.validate_python(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1, "high": 0}, "low must be <= high"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "low must be > 0 when log is true"),
        (
            {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1},
            "step and log cannot be used together",
        ),
        ({"type": "float", "low": 0, "high": 1, "step": 0.3}, "does not divide the range"),
        ({"type": "float", "low": 0, "high": 1, "step": -1}, "step must be > 0"),
        ({"type": "int", "low": 0, "high": 8, "log": True}, "low must be >= 1 when log is true"),
        (
            {"type": "int", "low": 1, "high": 8, "log": True, "step": 2},
            "step and log cannot be used together",
        ),
        ({"type": "int", "low": 0, "high": 10, "step": 3}, "does not divide the range"),
        ({"type": "categorical", "choices": []}, "at least 1 item"),
        ({"type": "categorical", "choices": [1, 1]}, "choices must be distinct"),
        (
            {"type": "categorical", "choices": [1, True]},
            "choices 1 and True are equal to Optuna, which would store True as 1; keep one",
        ),
        ({"type": "categorical", "choices": [0.0, False, 0]}, "choices 0.0 and False are equal to Optuna"),
        (  # a quoted number among numbers: a study would hold 16 and '32', which look the same everywhere
            {"type": "categorical", "choices": [16, "32", 64]},
            "choices mix numbers and the text '32'; write it as a number, 32, without quotes in the YAML",
        ),
        (
            {"type": "categorical", "choices": [[1, 2]]},
            r"choices must be null, booleans, numbers or strings, got \[1, 2\]",
        ),
        ({"type": "float", "low": 0, "high": 1, "min": 0}, "give either 'low' or 'min'"),
        ({"type": "float", "low": 0, "hi": 1}, "Extra inputs are not permitted"),
        ({"type": "string", "choices": [1]}, "does not match any of the expected tags"),
    ],
)
def test_invalid_params(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        PARAM.validate_python(spec)


def test_grid_choices_include_both_ends() -> None:
    # Hydra's sweeper drops `high` for int ranges; this pins the fix.
    assert grid_choices(IntParam(type="int", low=16, high=64, step=16)) == [16, 32, 48, 64]
    assert grid_choices(FloatParam(type="float", low=0.0, high=0.3, step=0.1)) == [0, 0.1, 0.2, 0.3]
    assert grid_choices(FloatParam(type="float", low=0.1, high=0.4, step=0.1)) == [
        0.1,
        0.2,
        0.3,
        0.4,
    ]  # exact
    with pytest.raises(ValueError, match="has no grid"):
        grid_choices(FloatParam(type="float", low=0, high=1))


def test_suggest_uses_dotted_names_in_declaration_order() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space: dict[str, Param] = {
        "optimizer.lr": FloatParam(type="float", low=1e-4, high=1e-1, log=True),
        "model.hidden.0": IntParam(type="int", low=8, high=64, step=8),
        "model.activation": CategoricalParam(type="categorical", choices=["relu", "gelu"]),
    }
    trial = study.ask()
    params = suggest(trial, space)
    assert list(params) == list(space) == list(trial.params)
    assert params["model.hidden.0"] % 8 == 0


# --------------------------------------------------------------------------- properties


@st.composite
def params(draw: st.DrawFn) -> Param:
    kind = draw(st.sampled_from(["float", "int", "categorical"]))
    if kind == "categorical":
        choices = draw(
            st.lists(
                # text without digits: a quoted number among numbers is refused (test_invalid_params)
                st.one_of(
                    st.integers(),
                    st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=5),
                    st.booleans(),
                ),
                min_size=1,
                max_size=5,
                unique_by=lambda c: c,  # 1 and True are one choice to Optuna (test_invalid_params)
            )
        )
        return CategoricalParam(type="categorical", choices=choices)
    log = draw(st.booleans())
    if kind == "int":
        low = draw(st.integers(1 if log else -1000, 1000))
        step = 1 if log else draw(st.integers(1, 20))
        high = low + step * draw(st.integers(0, 50))
        return IntParam(type="int", low=low, high=high, step=step, log=log)
    if not log and draw(st.booleans()):
        low = draw(st.integers(-4000, 4000)) / 4  # exact in binary, as a step grid needs
        step = draw(st.sampled_from([0.5, 0.25, 0.1, 2.0]))
        high = float(Decimal(str(low)) + Decimal(str(step)) * draw(st.integers(0, 20)))  # as written in YAML
        return FloatParam(type="float", low=low, high=high, step=step)
    low = draw(st.floats(1e-6 if log else -1e3, 1e3))
    high = low + draw(st.floats(0, 1e3))
    return FloatParam(type="float", low=low, high=high, log=log)


@settings(max_examples=60, deadline=None)
@given(space=st.lists(params(), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_suggested_values_lie_in_their_space(space: list[Param], seed: int) -> None:
    named = {f"p{i}": p for i, p in enumerate(space)}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(3):
        values = suggest(study.ask(), named)
        for name, p in named.items():
            v = values[name]
            if isinstance(p, CategoricalParam):
                assert v in p.choices
            else:
                assert p.low <= v <= p.high
                if isinstance(p, IntParam):
                    assert (v - p.low) % p.step == 0
                elif p.step is not None:
                    k = (v - p.low) / p.step
                    assert math.isclose(k, round(k), abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(p=params())
def test_grid_covers_both_ends(p: Param) -> None:
    try:
        grid = grid_choices(p)
    except ValueError:
        assert isinstance(p, FloatParam | IntParam) and (p.log or getattr(p, "step", 1) is None)
        return
    if isinstance(p, CategoricalParam):
        assert grid == p.choices
    else:
        assert grid[0] == p.low and math.isclose(grid[-1], p.high, rel_tol=1e-9, abs_tol=1e-9)
