"""Search-space parameters as validated models, and how a trial stores their values.

A space is an ordered mapping from a dotted RunConfig path (`optimizer.lr`) to a parameter. The path is
also the Optuna parameter name, so the study, its CSV columns and its plots speak the config's language.
Suggesting them on a trial is `suggestion`; the values a parameter takes (grid, containment) `param_values`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpotool.conditions import check_condition, text_condition_hint
from hpotool.config_fields import Boolean, Integer, Number, no_boolean_or_nan
from hpotool.formatting import format_choice, quoted_text, sorted_keys

Scalar = None | bool | int | float | str
Choice = Scalar | list[Any] | dict[str, Any]

_BOUND_ALIASES = {"min": "low", "max": "high"}


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, Any] | None = Field(
        None, description="Suggest only when these conditions hold (earlier parameters or RunConfig values)."
    )

    @field_validator("when", mode="before")
    @classmethod
    def _when_is_a_mapping(cls, when: Any) -> Any:
        if isinstance(when, str):
            raise ValueError(f'expected a mapping, got the text "{when}"; {text_condition_hint(when)}')
        if isinstance(when, dict) and not when:  # its condition deleted: it would hold in every trial
            raise ValueError(
                "is empty ({}), which holds in every trial; give the condition (when: {optimizer.name: sgd}), "
                "or remove when: to search the parameter in every trial"
            )
        return when

    @model_validator(mode="after")
    def _check_when(self) -> _Param:
        for path, condition in (self.when or {}).items():
            check_condition(path, condition)
        return self

    @model_validator(mode="before")
    @classmethod
    def _accept_min_max(cls, data: Any) -> Any:
        """Accept the `min`/`max` spelling of existing configs as Optuna's `low`/`high`."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for alias, name in _BOUND_ALIASES.items():
            if alias in out:
                if name in out:
                    raise ValueError(f"give either {name!r} or {alias!r}, not both")
                out[name] = out.pop(alias)
        return out

    @model_validator(mode="before")
    @classmethod
    def _range_or_choices(cls, data: Any) -> Any:
        """`{type: int, choices: [16, 32]}` or `{type: categorical, low: 1, high: 5}`: one line naming the type
        that takes those keys, instead of three (low missing, high missing, unknown key 'choices')."""
        if not isinstance(data, dict):
            return data
        kind = data.get("type")
        bounds = [k for k in ("low", "min", "high", "max") if k in data]
        if kind in ("int", "float") and "choices" in data and not bounds:
            article = "an" if kind == "int" else "a"
            raise ValueError(
                f"choices are for type: categorical; write {{type: categorical, choices: "
                f"{format_choice(data['choices'])}}}, or give low and high for {article} {kind} range"
            )
        if kind == "categorical" and "choices" not in data and bounds:
            given = [k for k in ("low", "min", "high", "max", "step", "log") if k in data]
            numbers = [data[k] for k in bounds]
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in numbers)
            spelt = ", ".join(f"{k}: {format_choice(data[k])}" for k in given)
            raise ValueError(
                f"{' and '.join(bounds)} are for a range; write {{type: {'int' if whole else 'float'}, {spelt}}}, "
                f"or list the values to choose from as choices: [...]"
            )
        return data


def _check_step_divides(low: float, high: float, step: float) -> None:
    """`step` divides `high - low`, as Optuna requires of a stepped range. A float range in Decimal arithmetic
    on the written numbers, as Optuna checks it (0.3 - 0.0 is not 3 * 0.1 in floats); an int range exactly."""
    if isinstance(step, float):
        try:
            rest = (Decimal(str(high)) - Decimal(str(low))) % Decimal(str(step))
        except InvalidOperation:  # Decimal's 28 digits cannot hold the count of steps; Optuna's fails so
            raise ValueError(
                f"step {step} is too fine for the range [{low}, {high}]: 10^28 steps or more, more than Optuna's "
                f"check of a step can count; use a larger step, or leave step out"
            ) from None
    else:
        rest = (high - low) % step
    if rest != 0:
        raise ValueError(
            f"step {step} does not divide the range [{low}, {high}]; make high - low a multiple of step"
        )


class FloatParam(_Param):
    """`trial.suggest_float(name, low, high, step=step, log=log)`."""

    type: Literal["float"]
    low: Number = Field(description="Lower bound, inclusive.")
    high: Number = Field(description="Upper bound, inclusive.")
    step: Annotated[float | None, no_boolean_or_nan(float)] = Field(
        None, description="Discretization step; not with log."
    )
    log: Boolean = Field(False, description="Sample on a log scale; needs low > 0.")

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite numbers, got [{self.low}, {self.high}]")
        if self.low > self.high:
            raise ValueError(_swapped(self.low, self.high))
        if not math.isfinite(self.high - self.low):  # Optuna's samplers failed on it ("OverflowError: Range
            # exceeds valid bounds"), a line that named neither the parameter nor what to change
            raise ValueError(
                f"the range [{self.low}, {self.high}] is wider than a float can hold (high - low overflows), so "
                f"no sampler can draw from it; narrow it"
            )
        if self.log and self.low <= 0:
            raise ValueError(
                f"low must be above 0 with log: true (a log scale has no 0), got {self.low}; give a low above 0, "
                "such as 1.0e-5, or drop log: true"
            )
        if self.step is not None:
            if self.log:
                raise ValueError("step and log cannot be used together; drop one of them")
            if self.step <= 0:
                raise ValueError(
                    f"step must be above 0, got {self.step}; give a positive step, or leave step out"
                )
            _check_step_divides(self.low, self.high, self.step)
        return self


def _swapped(low: float, high: float) -> str:
    """A range written the wrong way round, with the one meant."""
    lo, hi = format_choice(low), format_choice(high)
    return f"low must be at most high, got low: {lo}, high: {hi}; swap them (low: {hi}, high: {lo})"


class IntParam(_Param):
    """`trial.suggest_int(name, low, high, step=step, log=log)`."""

    type: Literal["int"]
    low: Integer = Field(description="Lower bound, inclusive.")
    high: Integer = Field(description="Upper bound, inclusive.")
    step: Integer = Field(1, description="Step between values; must be 1 with log.")
    log: Boolean = Field(False, description="Sample on a log scale; needs low >= 1.")

    @field_validator("step", mode="before")
    @classmethod
    def _null_step(cls, step: Any) -> Any:
        """`step: null` is the step left out, 1, as a float's null is none: it said "Input should be a valid
        integer, got null"."""
        return 1 if step is None else step

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(_swapped(self.low, self.high))
        if self.log and self.low < 1:
            raise ValueError(
                f"low must be 1 or more with log: true (a log scale has no 0), got {self.low}; give low: 1, or "
                "drop log: true"
            )
        if self.step < 1:
            raise ValueError(
                f"step must be 1 or more, got {self.step}; give a larger one, or leave step out (1: every integer)"
            )
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be used together; drop one of them")
        _check_step_divides(self.low, self.high, self.step)
        return self


class CategoricalParam(_Param):
    """`trial.suggest_categorical(name, labels)`: Optuna stores scalars, so a list or mapping choice goes to
    it as its label, the text the YAML spells it with (`[128, 64]`), and `value_of` turns it back."""

    type: Literal["categorical"]
    choices: list[Choice] = Field(
        min_length=1,
        description="Values to choose from: null, bool, number, string, or a whole list or mapping ([128, 64]).",
    )

    @field_validator("choices", mode="before")
    @classmethod
    def _plain_data(cls, choices: Any) -> Any:
        """One line for a choice YAML can hold but a config cannot (a date, a mapping with number keys), and
        for one value or a bare `relu, gelu` where the list goes ("Input should be a valid list" said neither
        what to write)."""
        if isinstance(choices, str | int | float) and not str(choices).lstrip().startswith("["):
            # the text's places left empty (`relu,, gelu`, or blank) left out: `choices: []` is refused too
            items = (
                [c.strip() for c in choices.split(",") if c.strip()]
                if isinstance(choices, str)
                else [choices]
            )
            listed = ", ".join(c if isinstance(c, str) else format_choice(c) for c in items)
            given = f"the text {quoted_text(choices)}" if isinstance(choices, str) else format_choice(choices)
            fix = (
                f"write choices: [{listed}]" if items else "write the values to choose from as a list: [a, b]"
            )
            raise ValueError(f"expected a list, got {given}; {fix}")
        for c in choices if isinstance(choices, list) else []:
            if not _plain(c):
                raise ValueError(
                    f"choices must be null, booleans, numbers, strings, or lists and mappings (with string "
                    f"keys) of them, got {c!r}; quote in the YAML what it reads as something else "
                    f"('2024-01-01', {{'1': 2}})"
                )
        return choices

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices must be distinct, got {self.choices}")
        for i, a in enumerate(self.choices):  # Optuna stores a choice as the index of the first equal one
            for b in self.choices[i + 1 :]:
                if isinstance(a, list | dict) or isinstance(b, list | dict):
                    if a == b:
                        raise ValueError(
                            f"choices {format_choice(a)} and {format_choice(b)} are equal in value (1 == 1.0 == "
                            f"true); keep one"
                        )
                    if choice_label(a) == choice_label(b):
                        raise ValueError(
                            f"choices {a!r} and {b!r} read alike ({format_choice(a)}), so a study could not tell "
                            f"them apart; keep one"
                        )
                elif a == b:
                    raise ValueError(
                        f"choices {format_choice(a)} and {format_choice(b)} are equal to Optuna, which would store "
                        f"{format_choice(b)} as {format_choice(a)}; keep one"
                    )
        numbers = [c for c in self.choices if isinstance(c, int | float) and not isinstance(c, bool)]
        quoted = next((c for c in self.choices if isinstance(c, str) and is_number_text(c)), None)
        if numbers and quoted is not None:
            read = [
                number_of_text(c) if isinstance(c, str) and is_number_text(c) else c for c in self.choices
            ]
            # [1.0, "2"] for batch_size: "write [1.0, 2]" was refused next ("1.0 is a float ... write [1, 2]").
            # Whole numbers all, some written as floats: as ints, which a key of whole numbers needs and one of
            # floats reads as well; both fixes in one line. The floats named as written ("2.0" is text, named)
            # (["1.0", 2.0], no int among them: "write [1.0, 2.0]" too was refused next for batch_size; as ints)
            floats = [c for c in self.choices if _whole_float(c)]
            whole = all(_whole_float(r) or type(r) is int for r in read if _is_number(r))
            some_int = any(type(r) is int for r in read)
            if whole:
                read = [int(r) if isinstance(r, float) and r.is_integer() else r for r in read]
            if not (whole and some_int):
                floats = []
            written: list[Any] = []
            for c in read:  # each number once: [32, "32"] is one choice
                if not any(c == w and type(c) is type(w) for w in written):
                    written.append(c)
            among = f", and {format_choice(floats[0])} is a float among whole numbers" if floats else ""
            kinds = (
                " (whole numbers: a key of whole numbers needs them, and one of floats takes them too)"
                if whole and not some_int
                else ""
            )
            raise ValueError(
                f"choices mix numbers and the text {format_choice(quoted)}{among}; write choices: "
                f"{format_choice(written)}, without quotes{kinds}"
            )
        return self

    @property
    def labels(self) -> list[Scalar]:
        """The choices as Optuna stores them: scalars as they are, a list or mapping as its label."""
        return [choice_label(c) for c in self.choices]

    def value_of(self, label: Any) -> Any:
        """The choice a trial stored as `label` (a label no choice has stays as it is)."""
        return _value_of(label, self.choices)


def _value_of(label: Any, choices: list[Any]) -> Any:
    if isinstance(label, str):
        for c in choices:
            if isinstance(c, list | dict) and choice_label(c) == label:
                return c
    return label


def choice_label(value: Any) -> Any:
    """What Optuna stores for a categorical choice: a scalar itself, a list or mapping its flow text, a
    mapping's keys in sorted order (the YAML may order them either way: one value, one label)."""
    return format_choice(sorted_keys(value)) if isinstance(value, list | dict) else value


def _plain(value: Any) -> bool:
    """Whether `value` is plain YAML data a config can hold: scalars, lists, mappings with string keys."""
    if isinstance(value, list):
        return all(map(_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or isinstance(value, bool | int | float | str)


def is_number_text(text: str) -> bool:
    """Whether `text` reads as a finite number (`"32"`, `"1e-3"`), as a choice written in quotes may."""
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity")


def _is_number(value: Any) -> bool:
    """Whether `value` is an int or a float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole_float(value: Any) -> bool:
    """Whether `value` is a float with no fractional part (2.0)."""
    return isinstance(value, float) and value.is_integer()


def number_of_text(text: str) -> int | float:
    """The number a text `is_number_text` accepts reads as: `"32"` is 32, `"1e-3"` 0.001."""
    try:
        return int(text)
    except ValueError:
        return float(text)


Param = Annotated[IntParam | FloatParam | CategoricalParam, Field(discriminator="type")]
PARAM_TYPES = ("float", "int", "categorical")


def decode_params(params: Mapping[str, Any], space: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's stored `params` as values: each list or mapping choice's label turned back into the choice.

    `space` is the search space the trial ran under, as parameters or as stored on the study (the dump of
    its optimize config's `search_space`); a parameter it lacks keeps its stored value.
    """
    out = dict(params)
    for name, value in params.items():
        p = space.get(name)
        if isinstance(p, CategoricalParam):
            out[name] = p.value_of(value)
        elif isinstance(p, Mapping) and p.get("type") == "categorical" and isinstance(p.get("choices"), list):
            out[name] = _value_of(value, p["choices"])
    return out


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` as Optuna stores them (`enqueue_trial`): a list or mapping value as its label."""
    return {name: choice_label(value) for name, value in params.items()}
