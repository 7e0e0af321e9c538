from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from hpotool.formatting import format_choice, sorted_keys
from hpotool.param_values import contains, grid_choices, same_value, taken_as
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    choice_label,
    decode_params,
    encode_params,
)
from hpotool.suggestion import suggest
from hpotool.yamlfile import parse_yaml

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
        (  # whole lists and mappings, of different lengths, with null
            {"type": "categorical", "choices": [[64], [128, 64], None, {"name": "sgd", "lr": 0.1}]},
            CategoricalParam(type="categorical", choices=[[64], [128, 64], None, {"name": "sgd", "lr": 0.1}]),
        ),
    ],
)
def test_valid_params(spec: dict[str, Any], expected: Param) -> None:
    assert PARAM.validate_python(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1, "high": 0}, "low must be at most high"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "low must be above 0 with log: true"),
        (
            {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1},
            "step and log cannot be used together",
        ),
        ({"type": "float", "low": 0, "high": 1, "step": 0.3}, "does not divide the range"),
        (
            {"type": "float", "low": 0, "high": 1, "step": -1},
            "step must be above 0, got -1.0; give a positive step, or leave step out",
        ),
        (  # a decimal.InvalidOperation traceback, from the check Optuna's FloatDistribution makes too
            {"type": "float", "low": 0, "high": 1e30, "step": 1e-5},
            r"step 1e-05 is too fine for the range \[0.0, 1e\+30\]: 10\^28 steps or more, more than Optuna's check of a "
            r"step can count; use a larger step, or leave step out",
        ),
        ({"type": "int", "low": 0, "high": 8, "log": True}, "low must be 1 or more with log: true"),
        (
            {"type": "int", "low": 0, "high": 8, "step": 0},
            "step must be 1 or more, got 0; give a larger one, or leave step",
        ),
        ({"type": "int", "low": 8, "high": 0}, "low must be at most high, got low: 8, high: 0; swap them"),
        (
            {"type": "int", "low": 1, "high": 8, "log": True, "step": 2},
            "step and log cannot be used together",
        ),
        ({"type": "int", "low": 0, "high": 10, "step": 3}, "does not divide the range"),
        ({"type": "categorical", "choices": []}, "at least 1 item"),
        ({"type": "categorical", "choices": [1, 1]}, "choices must be distinct"),
        (
            {"type": "categorical", "choices": [1, True]},
            "choices 1 and true are equal to Optuna, which would store true as 1; keep one",
        ),
        ({"type": "categorical", "choices": [0.0, False, 0]}, "choices 0.0 and false are equal to Optuna"),
        (  # a quoted number among numbers: a study would hold 16 and '32', which look the same everywhere
            {"type": "categorical", "choices": [16, "32", 64]},
            r'choices mix numbers and the text "32"; write choices: \[16, 32, 64\], without quotes',
        ),
        (
            {"type": "categorical", "choices": [[1, 2], {1: 2}]},
            "choices must be null, booleans, numbers, strings, or lists and mappings .with string keys. of them, "
            "got {1: 2}",
        ),
        ({"type": "categorical", "choices": [[64], [128], [64]]}, r"choices must be distinct, got \[\[64\]"),
        (
            {"type": "categorical", "choices": [[1, 2], [1.0, 2.0]]},
            r"choices \[1, 2\] and \[1.0, 2.0\] are equal in value .1 == 1.0 == true.; keep one",
        ),
        (
            {"type": "categorical", "choices": [[64], "[64]"]},
            r"choices \[64\] and '\[64\]' read alike .\[64\]., so a study could not tell them apart; keep one",
        ),
        ({"type": "float", "low": 0, "high": 1, "min": 0}, "give either 'low' or 'min'"),
        ({"type": "float", "low": 0, "hi": 1}, "Extra inputs are not permitted"),
        ({"type": "string", "choices": [1]}, "does not match any of the expected tags"),
        (  # log: 1 was read as true and log: 0 as false, where a number setting refuses true and false
            {"type": "float", "low": 0.1, "high": 1, "log": 1},
            "log\n.*Input should be true or false, got 1 .a number.; write true, as earlier hpotool read it .a "
            "study created with it stored true, and resumes with it.",
        ),
        ({"type": "int", "low": 1, "high": 8, "log": 0}, "got 0 .a number.; write false, as earlier hpotool"),
        (
            {"type": "int", "low": 1, "high": 8, "log": "yes"},
            "got .yes. .a text.; write true, as earlier hpotool",
        ),
        ({"type": "int", "low": 1, "high": 8, "log": 2}, "got 2 .a number.; write true or false"),
        (  # a condition deleted from its braces: it held in every trial, silently
            {"type": "float", "low": 0, "high": 1, "when": {}},
            "when\n.*is empty .{}., which holds in every trial; give the condition",
        ),
        # a list's brackets left out: the fix names the list, an empty place left out (it said `[relu, , gelu]`)
        (
            {"type": "categorical", "choices": "relu,, gelu"},
            'got the text "relu,, gelu"; write choices: .relu, gelu.',
        ),
        # blank: the fix said `choices: []`, which is refused in turn (at least 1 item)
        (
            {"type": "categorical", "choices": " "},
            'got the text " "; write the values to choose from as a list',
        ),
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


def test_list_choices_go_to_optuna_as_labels_and_come_back_as_values(tmp_path: Any) -> None:
    """Optuna stores a scalar per choice: the label of a list or mapping; suggest, decode_params (with the
    parameters or their stored JSON dump) and a warm start's encode_params go between the two."""
    hidden = CategoricalParam(type="categorical", choices=[[64], [128, 64], None, {"a": 1}])
    space: dict[str, Param] = {"model.hidden": hidden}
    assert hidden.labels == ["[64]", "[128, 64]", None, "{a: 1}"]
    from hpotool.grid import GridSampler  # counts a warm start on its grid point

    grid = GridSampler({"model.hidden": grid_choices(hidden)}, seed=0)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", sampler=grid)
    study.enqueue_trial(encode_params({"model.hidden": [128, 64]}))
    drawn = []

    def objective(trial: optuna.Trial) -> float:
        drawn.append(suggest(trial, space)["model.hidden"])
        return 0.0

    study.optimize(objective, n_trials=10)  # the grid stops the study after its 4 points
    assert len(drawn) == len(study.trials) == 4
    for value, trial in zip(drawn, study.trials, strict=True):
        assert trial.params == {"model.hidden": choice_label(value)}
        assert decode_params(trial.params, space) == {"model.hidden": value}
        dumped = {"model.hidden": hidden.model_dump(mode="json")}  # as the study stores its search space
        assert decode_params(trial.params, dumped) == {"model.hidden": value}
    assert drawn[0] == [128, 64]  # the warm start
    assert sorted(map(repr, drawn[1:4])) == sorted(
        map(repr, [[64], None, {"a": 1}])
    )  # the grid's other points


def test_decoding_reads_the_space_not_the_text() -> None:
    """A string choice that looks like a list stays a string; a parameter outside the space stays as stored."""
    space: dict[str, Param] = {"tag": CategoricalParam(type="categorical", choices=["[64]", "x"])}
    assert decode_params({"tag": "[64]", "other": "[1]"}, space) == {"tag": "[64]", "other": "[1]"}
    assert encode_params({"tag": "[64]", "n": 3, "w": [1.0, None]}) == {
        "tag": "[64]",
        "n": 3,
        "w": "[1.0, null]",
    }


def test_a_list_choice_is_contained_only_as_written() -> None:
    p = CategoricalParam(type="categorical", choices=[[128, 64], [1.5, 2.0]])
    assert contains(p, [128, 64]) and contains(p, [1.5, 2.0])
    assert not contains(p, [128.0, 64]) and not contains(p, [1.5, 2]) and not contains(p, "[128, 64]")


# --------------------------------------------------------------------------- properties


def _list_choice_key(c: Any) -> Any:
    """What makes two generated choices one: equal scalars (1 and True), or the same label."""
    return choice_label(c) if isinstance(c, list | dict) else c


_plain_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(a=_plain_data, b=_plain_data)
def test_labels_read_back_as_their_values_and_tell_values_apart(a: Any, b: Any) -> None:
    """A list or mapping's label is YAML flow text that reads back as the value, so two values that differ
    (1 from 1.0, "1" from 1, null from "null") never share a label."""
    for v in (a, b):
        if isinstance(v, list | dict):
            assert same_value(yaml.safe_load(choice_label(v)), v)
    if isinstance(a, list | dict) and isinstance(b, list | dict) and not same_value(a, b):
        assert choice_label(a) != choice_label(b)


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
                    # whole lists and mappings (a label holds a digit, so no text above reads like one)
                    st.lists(st.integers(1, 512), min_size=1, max_size=3),
                    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), min_size=1),
                ),
                min_size=1,
                max_size=5,
                unique_by=_list_choice_key,  # 1 and True are one choice to Optuna (test_invalid_params)
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
                assert v in p.choices and contains(p, v)
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
        assert grid == p.labels and [p.value_of(label) for label in grid] == p.choices
    else:
        assert grid[0] == p.low and math.isclose(grid[-1], p.high, rel_tol=1e-9, abs_tol=1e-9)


def test_a_mapping_choice_has_one_label_however_its_keys_are_ordered() -> None:
    """{alpha: 1.0e-5, eta0: 0.05} and {eta0: 0.05, alpha: 1.0e-5} are one value: reordering the keys in the
    YAML is the same experiment, so Optuna gets the same label and a study resumes (it was refused as a change
    of choices), and each space gets its own spelling of the choice back."""
    written = CategoricalParam(
        type="categorical", choices=[{"eta0": 0.05, "alpha": 1e-5, "opts": {"b": 1, "a": 2}}]
    )
    reordered = CategoricalParam(
        type="categorical", choices=[{"alpha": 1e-5, "opts": {"a": 2, "b": 1}, "eta0": 0.05}]
    )
    assert written.labels == reordered.labels == ["{alpha: 1.0e-05, eta0: 0.05, opts: {a: 2, b: 1}}"]
    assert list(reordered.value_of(written.labels[0])) == ["alpha", "opts", "eta0"]
    assert encode_params({"trainer.sgd": written.choices[0]}) == {"trainer.sgd": written.labels[0]}


@pytest.mark.parametrize(
    ("spec", "value", "taken"),
    [  # another study's value as this space spells it: equal in value, never a boolean for a number
        ({"type": "categorical", "choices": [[16], [1.0, 3.0]]}, [1, 3], [[1.0, 3.0]]),
        ({"type": "categorical", "choices": [{"a": 1}]}, {"a": 1.0}, [{"a": 1}]),
        ({"type": "categorical", "choices": [5.0, None]}, 5, [5.0]),
        ({"type": "categorical", "choices": [None, 0]}, None, [None]),
        ({"type": "categorical", "choices": [1, 2]}, True, []),
        ({"type": "categorical", "choices": [[1, 2]]}, [1, 2, 3], []),
        ({"type": "int", "low": 8, "high": 32, "step": 8}, 16.0, [16]),
        ({"type": "int", "low": 8, "high": 32, "step": 8}, 16.5, []),
        ({"type": "int", "low": 8, "high": 32, "step": 8}, 12, []),
        ({"type": "float", "low": 0.0, "high": 1.0}, 1, [1]),
        ({"type": "float", "low": 0.0, "high": 1.0}, "0.5", []),
    ],
)
def test_taken_as(spec: dict[str, Any], value: Any, taken: list[Any]) -> None:
    result = taken_as(PARAM.validate_python(spec), value)
    assert result == taken and all(same_value(a, b) for a, b in zip(result, taken, strict=True))


# --------------------------------------------------------------------------- conditional spaces


def _values_of(p: Param, draw: st.DrawFn) -> list[Any]:
    """Values a condition on `p` may name: its choices, or its ends, a middle and a point it never takes."""
    if isinstance(p, CategoricalParam):
        return list(p.choices)
    middle = (p.low + p.high) / 2
    middle = round(middle) if isinstance(p, IntParam) else middle
    return [p.low, p.high, middle, draw(st.sampled_from([p.low - 1, p.high + 1]))]


@st.composite
def conditional_spaces(
    draw: st.DrawFn, param_strategy: st.SearchStrategy[Param] | None = None
) -> dict[str, Param]:
    """p0, p1, ... each maybe under a `when:` on one or two earlier parameters (conditional ones too, so a
    condition may read a parameter some trials never set): a value, or one test of in, ne, ge, gt, le, lt."""
    space: dict[str, Param] = {}
    for i in range(draw(st.integers(1, 5))):
        p = draw(params() if param_strategy is None else param_strategy)
        when: dict[str, Any] = {}
        for on in draw(st.lists(st.sampled_from(list(space)), max_size=2, unique=True)) if space else []:
            ref = space[on]
            values = _values_of(ref, draw)
            numeric = not isinstance(ref, CategoricalParam)
            test = draw(
                st.sampled_from(["value", "in", "ne", *(("ge", "gt", "le", "lt") if numeric else ())])
            )
            if test == "value":
                value = draw(st.sampled_from(values))  # a mapping choice is named in `in` (a test otherwise)
                when[on] = {"in": [value]} if isinstance(value, dict) else value
            elif test == "in":
                when[on] = {"in": draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))}
            else:
                when[on] = {test: draw(st.sampled_from(values))}
        space[f"p{i}"] = type(p).model_validate(p.model_dump() | {"when": when or None})
    return space


def _expected_to_hold(condition: Any, value: Any, p: Param) -> bool:
    """What a condition means, written apart from `conditions.holds`: a parameter no trial value was set for
    meets only `ne`; a choice is named by the value itself (the choice [1, 2] is not [1.0, 2.0], true is not
    1); a range compares as numbers."""
    test, operand = next(iter(condition.items())) if isinstance(condition, dict) else ("value", condition)
    if value is None:
        return test == "ne"
    if isinstance(p, CategoricalParam):
        named = [operand] if test in ("value", "ne") else operand
        found = any(same_value(value, v) for v in named)
        return not found if test == "ne" else found
    compare = {
        "value": value.__eq__,
        "ne": value.__ne__,
        "ge": value.__ge__,
        "gt": value.__gt__,
        "le": value.__le__,
        "lt": value.__lt__,
    }
    if test == "in":
        return any(value == v for v in operand)
    return bool(compare[test](operand))


@settings(max_examples=150, deadline=None)
@given(space=conditional_spaces(), seed=st.integers(0, 2**16))
def test_a_conditional_parameter_is_set_exactly_where_its_conditions_hold(
    space: dict[str, Param], seed: int
) -> None:
    """Over generated conditional spaces (conditions on conditional parameters, list and mapping choices,
    values a range never takes): each trial sets a parameter exactly where all its conditions hold on the
    values set before it, stores in Optuna exactly the parameters it sets, each within its space, and counts
    as having drawn all its values (`drawn`, which resumes and the grid read) only once every one is set."""
    from hpotool.suggestion import drawn

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(4):
        trial = study.ask()
        values = suggest(trial, space)
        for name, p in space.items():
            expected = all(
                _expected_to_hold(c, values.get(on), space[on]) for on, c in (p.when or {}).items()
            )
            assert (name in values) == expected, (name, p.when, values)
            if name in values:
                assert contains(p, values[name])
        assert set(trial.params) == set(values)
        assert drawn(values, space, {})
        for name in values:  # a trial stopped before it drew `name` has not drawn all its values
            before = dict(list(values.items())[: list(values).index(name)])
            assert not drawn(before, space, {})
        study.tell(trial, 0.0)


# Text YAML reads as something else when written bare: a number, a list, a mapping, a date, nothing.
_tricky_text = st.sampled_from(
    [
        "1e-3",
        "1_000",
        "0x10",
        "0o17",
        "1:30",
        "2024-01-01",
        "[1,2]",
        "[1, 2]",
        "{a: 1}",
        "a: b",
        "- x",
        "#x",
        "&a",
        "*a",
        "!t",
        "|",
        "null",
        "~",
        "yes",
        "Off",
        "",
        " a",
        "@x",
        "`x",
        "%x",
        "[1,",
        "a: b: c",
        "1e3x",
    ]
)


@settings(max_examples=200, deadline=None)
@given(value=_plain_data | _tricky_text)
def test_a_choice_as_tables_and_notes_spell_it_reads_back_as_that_choice(value: Any) -> None:
    """`hpotool trials`, the summary and the notes spell a choice as YAML (a note names the run config line
    to write for a one-choice categorical); the string "0x10" or "1:30" must not read as the number 16 or 90
    (before: shown bare). Text spelt as a list or mapping is left out: it is how the progress lines show a
    list choice's stored label, bare."""
    assume(not isinstance(value, float) or math.isfinite(value))
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        return
    back = parse_yaml(f"x: {format_choice(value)}", "f.yaml")["x"]
    assert same_value(back, value)


@pytest.mark.parametrize("value", [1e-05, -1e-05, 1e20, 5e-324, [1e-05]])
def test_a_float_choice_in_exponent_form_reads_back_as_that_float(value: Any) -> None:
    """A top-level float choice 1e-05 was shown `1e-05`, which PyYAML reads back as the text "1e-05" (its
    float needs a point: `1.0e-05`), as was already done inside a list. hpotool's own loader reads both;
    the shown text goes to other tools too, read by plain PyYAML."""
    import yaml

    back = yaml.safe_load(f"x: {format_choice(value)}")["x"]
    assert same_value(back, value)


@st.composite
def _discrete_params(draw: st.DrawFn) -> Param:
    """`params()` with few values each, as brute force lists them: a float range stepped, an int range short."""
    p = draw(params())
    if isinstance(p, FloatParam) and (p.step is None or (p.high - p.low) / p.step > 6):
        low = draw(st.integers(-20, 20)) / 4
        return FloatParam(type="float", low=low, high=low + 0.25 * draw(st.integers(0, 4)), step=0.25)
    if isinstance(p, IntParam) and (p.high - p.low) // p.step > 5:
        return IntParam(
            type="int", low=p.low, high=p.low + p.step * draw(st.integers(0, 5)), step=p.step, log=p.log
        )
    return p


def _values(p: Param) -> list[Any]:
    if isinstance(p, CategoricalParam):
        return list(p.choices)
    if isinstance(p, IntParam):
        return list(range(p.low, p.high + 1, p.step))
    return grid_choices(p)


def _configurations(
    space: dict[str, Param], names: list[str], values: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every configuration of `space`, each parameter set exactly where its conditions hold (as
    `_expected_to_hold` reads them), enumerated apart from Optuna and hpotool."""
    if not names:
        return [values]
    name, *rest = names
    p = space[name]
    if not all(_expected_to_hold(c, values.get(on), space[on]) for on, c in (p.when or {}).items()):
        return _configurations(space, rest, values)
    return [c for v in _values(p) for c in _configurations(space, rest, {**values, name: v})]


@settings(max_examples=60, deadline=None)
@given(space=conditional_spaces(_discrete_params()), seed=st.integers(0, 2**16))
def test_brute_force_over_a_conditional_space_runs_each_configuration_once(
    space: dict[str, Param], seed: int
) -> None:
    """hpotool's `bruteforce`, made as `optimize` makes it, over generated conditional spaces: the study ends
    after exactly as many trials as the space has configurations (a parameter counted only where its
    conditions hold), each trial a different one, none missed."""
    from hpotool.factories import make_sampler

    expected = _configurations(space, list(space), {})
    assume(len(expected) <= 150)
    sampler = make_sampler("bruteforce", {}, seed=seed, space=space, fixed={})
    study = optuna.create_study(sampler=sampler)
    seen: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(format_choice(sorted_keys(suggest(trial, space))))
        return 0.0

    study.optimize(objective, n_trials=len(expected) + 5)
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == {format_choice(sorted_keys(c)) for c in expected}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # QMCSampler's
@settings(max_examples=40, deadline=None)
@given(
    low=st.integers(-40, 40).map(lambda k: k / 10),
    step=st.sampled_from([0.1, 0.2, 0.3, 0.05, 0.07]),
    count=st.integers(1, 8),
    at=st.integers(0, 8),
    sampler=st.sampled_from(["random", "tpe", "qmc"]),
)
def test_a_condition_on_a_stepped_float_holds_at_the_value_the_yaml_writes(
    low: float, step: float, count: int, at: int, sampler: str
) -> None:
    """`q` under `when: {p: v}`, v a value on p's steps as the YAML writes it (0.3 of [0, 0.6] step 0.1): set
    in every trial whose p is v. Optuna draws low + 3 * 0.1 as 0.30000000000000004, so q was never set."""
    high = float(Decimal(str(low)) + count * Decimal(str(step)))
    target = float(Decimal(str(low)) + min(at, count) * Decimal(str(step)))
    space: dict[str, Param] = {
        "p": FloatParam(type="float", low=low, high=high, step=step),
        "q": CategoricalParam(type="categorical", choices=[1, 2], when={"p": target}),
    }
    made = {
        "random": optuna.samplers.RandomSampler(seed=0),
        "tpe": optuna.samplers.TPESampler(seed=0),
        "qmc": optuna.samplers.QMCSampler(seed=0, warn_independent_sampling=False),
    }
    study = optuna.create_study(sampler=made[sampler])
    for _ in range(3 * (count + 1)):
        trial = study.ask()
        values = suggest(trial, space)
        assert values["p"] == trial.params["p"]  # the trial trains and stores Optuna's value
        on_target = math.isclose(values["p"], target, abs_tol=step / 1000)
        assert ("q" in values) == on_target, (values, target)
        study.tell(trial, 0.0)


@pytest.mark.parametrize(
    ("path", "choices", "written"),
    [
        ("batch_size", ["32", "64"], "[32, 64]"),  # the RunConfig read "32" as 32: Optuna stored the text
        ("optimizer.lr", ["1e-3", "1e-2"], "[0.001, 0.01]"),
        ("model.hidden.0", ["32", "64"], "[32, 64]"),  # a list item: pydantic's bare line, no fix
        ("grad_clip", [None, "1.5"], "[null, 1.5]"),
    ],
)
def test_a_choice_written_as_a_number_in_quotes_for_a_number_key_is_refused_naming_the_choices_to_write(
    path: str, choices: list[Any], written: str
) -> None:
    # A porting user who quotes numbers (as YAML 1.1 configs quote 1e-3) got a study whose params were the
    # text "32": shown in quotes, exported as text to best_params.json, and no match for a study of the numbers.
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.errors import HpoError
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu", "model": {"name": "mlp", "hidden": [64]}})
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "search_space": {path: {"type": "categorical", "choices": choices}}}
    )
    quoted = next(c for c in choices if isinstance(c, str))
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "optimize.yaml")
    assert str(info.value).startswith(
        f'optimize.yaml: search_space.{path}: the choice "{quoted}" is text (in quotes)'
    )
    assert str(info.value).endswith(f"; write choices: {written}, without quotes")
    numbers = [yaml.safe_load(c) if isinstance(c, str) else c for c in choices]
    numbers = [float(c) if isinstance(c, str) else c for c in numbers]  # PyYAML reads 1e-3 as text
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "search_space": {path: {"type": "categorical", "choices": numbers}}}
    )
    check_space(run, opt, None, "optimize.yaml")  # the numbers themselves pass


def test_a_number_in_quotes_for_a_key_that_takes_text_stays_a_choice() -> None:
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate(
        {"data": {"name": "digits"}, "trainer": {"function": "examples.sklearn_trainer:fit", "tag": "a"}}
    )
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "search_space": {"trainer.tag": {"type": "categorical", "choices": ["1", "2"]}}}
    )
    check_space(run, opt, None, "optimize.yaml")  # the function gets the text as written


@pytest.mark.parametrize(
    ("path", "choices", "line"),
    [
        (  # the RunConfig read 32.0 as 32: Optuna stored and exported 32.0
            "batch_size",
            [16, 32.0, 64],
            "the choice 32.0 is a float, which the study would store and export as 32.0, while batch_size "
            "takes whole numbers; write choices: [16, 32, 64]",
        ),
        (
            "epochs",
            [1.0, 2.0],
            "the choice 1.0 is a float, which the study would store and export as 1.0, while epochs takes whole "
            "numbers; write choices: [1, 2]",
        ),
        (  # the mlp refused 2.0 with pydantic's bare line
            "model.layers",
            [1, 2.0],
            "with model.layers=2.0: model: model 'mlp' argument 'layers': Input should be a valid integer, got "
            "2.0; model.layers takes whole numbers: write choices: [1, 2]",
        ),
    ],
)
def test_a_whole_float_choice_for_a_whole_number_key_is_refused_naming_the_choices_to_write(
    path: str, choices: list[Any], line: str
) -> None:
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.errors import HpoError
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu"})
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "search_space": {path: {"type": "categorical", "choices": choices}}}
    )
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "optimize.yaml")
    assert str(info.value) == f"optimize.yaml: search_space.{path}: {line}"


def test_a_whole_float_choice_for_a_key_that_takes_floats_stays() -> None:
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu"})
    opt = OptimizeConfig.model_validate(
        {
            "study_name": "s",
            "search_space": {"grad_clip": {"type": "categorical", "choices": [None, 1.0, 2.0]}},
        }
    )
    check_space(run, opt, None, "optimize.yaml")


def test_an_int_step_of_null_is_the_step_left_out() -> None:
    # a float's `step: null` is no step; an int's said "Input should be a valid integer, got null"
    adapter: TypeAdapter[Param] = TypeAdapter(Param)
    written = adapter.validate_python({"type": "int", "low": 16, "high": 64, "step": None})
    assert written == adapter.validate_python({"type": "int", "low": 16, "high": 64})
    assert isinstance(written, IntParam) and written.step == 1


@pytest.mark.parametrize(
    ("path", "choices", "line", "written"),
    [
        (  # it said "write choices: [1.0, 2]", then "the choice 1.0 is a float ...; write choices: [1, 2]"
            "batch_size",
            [1.0, "2"],
            'choices mix numbers and the text "2", and 1.0 is a float among whole numbers; write choices: '
            "[1, 2], without quotes",
            [1, 2],
        ),
        (
            "epochs",
            ["2", 1.0, 3],
            'choices mix numbers and the text "2", and 1.0 is a float among whole numbers; write choices: '
            "[2, 1, 3], without quotes",
            [2, 1, 3],
        ),
        (  # a key of floats takes the ints as well: one fix serves either kind of key
            "grad_clip",
            [1.0, "2"],
            'choices mix numbers and the text "2", and 1.0 is a float among whole numbers; write choices: '
            "[1, 2], without quotes",
            [1, 2],
        ),
        (  # a fraction: the key takes floats, whose 1.0 stays
            "grad_clip",
            [1.0, "2.5"],
            'choices mix numbers and the text "2.5"; write choices: [1.0, 2.5], without quotes',
            [1.0, 2.5],
        ),
        (  # no int among them: it said "write choices: [1.0, 2.0]", then "the choice 1.0 is a float ..."
            "batch_size",
            ["1.0", 2.0],
            'choices mix numbers and the text "1.0"; write choices: [1, 2], without quotes (whole numbers: a key '
            "of whole numbers needs them, and one of floats takes them too)",
            [1, 2],
        ),
        (  # the same fix serves a key of floats
            "grad_clip",
            [1.0, "2.0"],
            'choices mix numbers and the text "2.0"; write choices: [1, 2], without quotes (whole numbers: a key '
            "of whole numbers needs them, and one of floats takes them too)",
            [1, 2],
        ),
        (  # all in quotes: it said "write choices: [16, 32.0]", then "the choice 32.0 is a float ..."
            "batch_size",
            ["16", "32.0"],
            'the choice "16" is text (in quotes), which the study would store and export as text, while '
            "batch_size takes the number 16; write choices: [16, 32], without quotes",
            [16, 32],
        ),
    ],
)
def test_choices_with_a_number_in_quotes_and_a_whole_float_are_fixed_by_one_refusal(
    path: str, choices: list[Any], line: str, written: list[Any]
) -> None:
    """`[1.0, "2"]` for batch_size took two refusals: the quotes, then the float 1.0. One line now names the
    choices that fix both, and those choices pass."""
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.config_errors import validate_config
    from hpotool.errors import HpoError
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu"})

    def checked(values: list[Any]) -> None:
        space = {path: {"type": "categorical", "choices": values}}
        opt = validate_config(OptimizeConfig, {"study_name": "s", "search_space": space}, "optimize.yaml")
        check_space(run, opt, None, "optimize.yaml")

    with pytest.raises(HpoError) as info:
        checked(choices)
    assert str(info.value) == f"optimize.yaml: search_space.{path}: {line}"
    assert yaml.safe_load(line.rpartition("write choices: ")[2].partition(", without quotes")[0]) == written
    checked(written)  # the fix passes: no second refusal


def test_every_fractional_choice_of_a_whole_number_key_is_named_in_one_refusal() -> None:
    """`batch_size: [32.5, 64, 64.5]` was refused for 32.5, then, once it was fixed, for 64.5: a run per value."""
    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.config_errors import validate_config
    from hpotool.errors import HpoError
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu"})
    space = {"batch_size": {"type": "categorical", "choices": [32.5, 64, 64.5]}}
    opt = validate_config(OptimizeConfig, {"study_name": "s", "search_space": space}, "optimize.yaml")
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "optimize.yaml")
    assert str(info.value) == (
        "optimize.yaml: search_space.batch_size: with batch_size=32.5: batch_size: Input should be a valid integer, "
        "got a number with a fractional part (32.5); batch_size takes whole numbers, and the choices 32.5, 64.5 "
        "are not: write whole numbers for them"
    )
