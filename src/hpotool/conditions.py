"""Conditional parameters: `when: {optimizer.name: sgd}` suggests a parameter only when the condition holds.

A condition maps a dotted path to a value (equality) or to one test: `{in: [...]}`, `{ne: x}`, `{ge: x}`,
`{gt: x}`, `{le: x}`, `{lt: x}`. The path is an earlier parameter of the search space or a value of the base
RunConfig; all of a parameter's conditions must hold.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from hpotool.formatting import format_choice


def equal_in_value(a: Any, b: Any) -> bool:
    """`a == b` as numbers compare (1 == 1.0), through lists and mappings; a boolean equals only a boolean,
    as a choice true is not 1 to Optuna's storage."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(equal_in_value, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal_in_value(v, b[k]) for k, v in a.items())
    if is_number(a) and is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def is_number(v: Any) -> bool:
    """An int or float, not a bool (which Python counts as an int)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """`compare`, false where either side is a boolean: Python orders True as 1, YAML's true is no number."""
    return lambda v, x: not isinstance(v, bool) and not isinstance(x, bool) and compare(v, x)


# Equality as YAML means it (equal_in_value), not Python's ==, which made `when: {p: true}` hold for a choice 1.
TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "in": lambda v, x: any(equal_in_value(v, item) for item in x),
    "ne": lambda v, x: not equal_in_value(v, x),
    "ge": _ordered(operator.ge),
    "gt": _ordered(operator.gt),
    "le": _ordered(operator.le),
    "lt": _ordered(operator.lt),
}

# The test newcomers reach for beside ne/ge/gt, which a condition spells as the value alone.
_EQUALS = frozenset({"eq", "equals", "is", "=="})


def check_condition(path: str, condition: Any) -> None:
    """Raise ValueError when `condition` is not a value or a one-key test mapping."""
    if isinstance(condition, dict):
        if len(condition) == 1 and next(iter(condition)) in _EQUALS:
            ((test, operand),) = condition.items()
            raise ValueError(
                f"when.{path}: {format_choice(condition)} is the value itself: write when: {{{path}: "
                f"{format_choice(operand)}}} (the tests are {', '.join(TESTS)})"
            )
        if len(condition) != 1 or next(iter(condition)) not in TESTS:
            shown = format_choice(condition)
            raise ValueError(
                f"when.{path}: give a value, or one test of: {', '.join(TESTS)} (e.g. {{ge: 3}}), got {shown}; "
                f"to match a mapping choice, write {{in: [{shown}]}}"
            )
        ((test, operand),) = condition.items()
        if test == "in" and not isinstance(operand, list):
            raise ValueError(f"when.{path}.in: expected a list of values, got {format_choice(operand)}")


_OPERATORS = {"==": None, "=": None, "!=": "ne", ">=": "ge", ">": "gt", "<=": "le", "<": "lt"}
_EXPRESSION = re.compile(r"^\s*([\w.]+)\s*(==|!=|>=|<=|=|>|<)\s*(\S.*?)\s*$")


def text_condition_hint(text: str) -> str:
    """`when: "optimizer.name == sgd"` (an expression, which YAML reads as text): the mapping to write."""
    match = _EXPRESSION.match(text)
    if match is None:
        return (
            "write the condition as a mapping: when: {optimizer.name: sgd} or when: {model.layers: {ge: 3}}"
        )
    path, op, value = match.groups()
    test = _OPERATORS[op]
    return f"write it as a mapping: when: {{{path}: {value if test is None else f'{{{test}: {value}}}'}}}"


def holds(condition: Any, value: Any) -> bool:
    """Whether `value` satisfies `condition`; a missing value (None) satisfies nothing but `ne`."""
    if isinstance(condition, dict):
        ((test, operand),) = condition.items()
        if value is None and test != "ne":
            return False
        try:
            return bool(TESTS[test](value, operand))
        except TypeError:  # comparing a string with a number, say
            return False
    return equal_in_value(value, condition)


def all_hold(when: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    return all(holds(condition, values.get(path)) for path, condition in when.items())


def satisfying_value(condition: Any) -> Any:
    """A value that satisfies `condition`, for checking a conditional parameter before trial 0; None when
    no single value is implied (`ne`)."""
    if not isinstance(condition, dict):
        return condition
    ((test, operand),) = condition.items()
    if test == "in":
        return operand[0] if operand else None
    if test in ("ge", "le") and not isinstance(operand, bool):
        return operand
    if test in ("gt", "lt") and is_number(operand):
        step = 1 if isinstance(operand, int) else abs(operand) * 1e-6 or 1e-6
        return operand + step if test == "gt" else operand - step
    return None
