"""The values a search-space parameter takes: containment, its grid, how many there are, how the YAML
spells them, its extremes, and another study's value as this parameter spells it."""

from __future__ import annotations

import math
from typing import Any

from hpotool.conditions import equal_in_value, is_number
from hpotool.formatting import format_choice
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param, is_number_text, number_of_text


def same_value(a: Any, b: Any) -> bool:
    """`a == b` with the same types throughout: the choice 5.0 is not 5, nor [1, 2] the list [1.0, 2.0]."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_value, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(v, b[k]) for k, v in a.items())
    return bool(a == b)


def taken_as(p: Param, value: Any) -> list[Any]:
    """`value` as `p` spells it, in a one-item list (`[]` when `p` cannot take it): the choice equal to it in
    value (another study's [1, 3] is this one's choice [1.0, 3.0]), a whole number for an int (32.0 as 32)."""
    match p:
        case CategoricalParam():
            return [c for c in p.choices if equal_in_value(c, value)][:1]
        case IntParam():
            whole = int(value) if is_number(value) and float(value).is_integer() else None
            return [whole] if whole is not None and contains(p, whole) else []
        case FloatParam():
            return [value] if contains(p, value) else []
    raise TypeError(f"unsupported parameter {p!r}")  # pragma: no cover


def value_count(p: Param) -> int | None:
    """How many values `p` takes (its choices, or the steps of its range), counted without listing them;
    None for a float without step."""
    match p:
        case CategoricalParam():
            return len(p.choices)
        case IntParam():
            return (p.high - p.low) // p.step + 1
        case FloatParam():
            return None if p.step is None else round((p.high - p.low) / p.step) + 1
    raise TypeError(f"unsupported parameter {p!r}")  # pragma: no cover


def grid_size(p: Param) -> int:
    """How many values `grid_choices(p)` lists, counted without listing them (a log-scaled int: each integer
    from low to high, as its step is 1; before, grid refused it, though its grid is finite).

    Raises:
        ValueError: for a continuous float (no `step`), which has no finite grid.
    """
    n = value_count(p)
    if n is None:
        if isinstance(p, FloatParam) and p.log:
            raise ValueError(
                f"a log-scaled float has no grid, {LOG_FLOAT_VALUES_FIX.format(choices=log_points(p))}"
            )
        raise ValueError("a float without step has no grid; give it a step")
    return n


# A log-scaled float takes no step (Optuna refuses step with log), so "give it a step" led to the next error.
LOG_FLOAT_VALUES_FIX = (
    "and takes no step with log: true; search it as a categorical of the values to try: type: categorical, "
    "choices: {choices}"
)


def log_points(p: FloatParam) -> str:
    """Three values spread evenly on the log scale of `p`'s range, both ends included, as YAML spells them."""
    mid = float(f"{math.sqrt(p.low * p.high):.2g}")
    return format_choice([p.low, mid, p.high])


def grid_choices(p: Param) -> list[Any]:
    """Every value a grid search visits for `p`, both ends included, as Optuna stores it (a list choice
    as its label).

    Raises:
        ValueError: for a continuous float (no `step`), which has no finite grid.
    """
    n = grid_size(p) - 1
    match p:
        case CategoricalParam():
            return p.labels
        case IntParam():
            return list(range(p.low, p.high + 1, p.step))
        case FloatParam():
            step = p.step or 0.0  # grid_size refused a float without step
            # round(.., 12): 0.1 + 2 * 0.1 is 0.30000000000000004, which would reach training and the study
            return [round(p.low + i * step, 12) if i < n else p.high for i in range(n + 1)]
    raise TypeError(f"unsupported parameter {p!r}")  # pragma: no cover


def contains(p: Param, value: Any) -> bool:
    """Whether `value` is one `p` can take: a choice, or a number within bounds on the step grid."""
    match p:
        case CategoricalParam():
            return any(same_value(value, c) for c in p.choices)
        case IntParam():
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and p.low <= value <= p.high
                and (value - p.low) % p.step == 0
            )
        case FloatParam():
            if isinstance(value, bool) or not isinstance(value, int | float) or not p.low <= value <= p.high:
                return False
            return p.step is None or math.isclose(
                (value - p.low) / p.step, round((value - p.low) / p.step), abs_tol=1e-9
            )
    raise TypeError(f"unsupported parameter {p!r}")  # pragma: no cover


def values_text(p: Param) -> str:
    """What a parameter takes, as its YAML spells it: `one of relu, tanh`, `[0.001, 0.1], log`,
    `[8, 32], step 8` (an enqueued or fixed value outside them is refused naming them)."""
    if isinstance(p, CategoricalParam):
        return "one of " + ", ".join(map(format_choice, p.choices))
    step = f", step {format_choice(p.step)}" if p.step is not None and p.step != 1 else ""
    return f"[{format_choice(p.low)}, {format_choice(p.high)}]" + (", log" if p.log else "") + step


def boundary_values(p: Param) -> list[Any]:
    """The extreme values of `p`: what validation of an overridden config must accept."""
    match p:
        case CategoricalParam():
            return list(p.choices)
        case IntParam() | FloatParam():
            return [p.low, p.high]
    raise TypeError(f"unsupported parameter {p!r}")  # pragma: no cover


def off_step(p: Param, value: Any) -> str:
    """Why `value`, a number within `p`'s range but between two of its steps, is not one of its values, and
    the two nearest on the step to write: `0.15 is not on the step 0.1 from 0.0: write 0.1 or 0.2`. "" for a
    value `p` takes, one outside its range, and a categorical's: `enqueue:` said 0.15 "lies outside its search
    space" of [0.0, 0.5], step 0.1, which holds 0.1 and 0.2 on either side of it."""
    near = step_neighbours(p, value)
    if near is None or isinstance(p, CategoricalParam):
        return ""
    return (
        f"{format_choice(value)} is not on the step {format_choice(p.step or 1)} from {format_choice(p.low)}: "
        f"write {format_choice(near[0])} or {format_choice(near[1])}"
    )


def step_neighbours(p: Param, value: Any) -> tuple[Any, Any] | None:
    """The two values of `p` on either side of `value`, a number within its range but between two of its
    steps (`off_step`); None for a value `p` takes, one outside its range, one on the step of another type
    (16.0 for an int, which `number_slip` names), and a categorical's."""
    if (
        isinstance(p, CategoricalParam)
        or isinstance(value, bool)
        or not isinstance(value, int | float)
        or not p.low <= value <= p.high
        or contains(p, value)
    ):
        return None
    step = p.step or 1  # a float without step holds every number of its range: contains() took it
    steps = (value - p.low) / step
    if math.isclose(steps, round(steps), abs_tol=1e-9):  # on the step, of another type: 16.0 for an int
        return None  # ("write 16 or 24"; number_slip says what to write)
    # high lies on the step (the search space checks it), and value below it, off the step: so k + 1 <= the last
    k = math.floor(steps)
    # round(.., 12) as grid_choices spells them: 0.1 + 0.1 is 0.2, not 0.20000000000000001
    below, above = (
        p.low + i * step if isinstance(p, IntParam) else round(p.low + i * step, 12) for i in (k, k + 1)
    )
    return below, above


def number_slip(path: str, p: Param, value: Any) -> str:
    """Why `value`, which `p` (searched at `path`) does not contain, is likely meant as one of its values, and
    what to write: a number in quotes (`"1e-3"`, `"64"`, text to Optuna) or a whole float (`32.0`) for an int
    range. "" for neither: `enqueue:` said `"1e-3"` "lies outside its search space", a condition that it
    "never holds for" choices that held 64."""
    number = number_of_text(value) if isinstance(value, str) and is_number_text(value) else None
    if isinstance(p, IntParam) and isinstance(number, float) and number.is_integer():
        number = int(number)  # "32.0" for an int: "write 32", where it said "32.0" lies outside [32, 256]
    if number is not None and contains(p, number):
        return (
            f"{format_choice(value)} is text (in quotes), where {path}'s values are numbers; write "
            f"{format_choice(number)} without quotes"
        )
    if (
        isinstance(p, IntParam)
        and isinstance(value, float)
        and value.is_integer()
        and contains(p, int(value))
    ):
        return f"{format_choice(value)} is a float, where {path} takes whole numbers; write {int(value)}"
    return ""
