"""A config's argument values checked against the types a component's signature annotates: converted for
Optuna's samplers and pruners (`coerce_scalars`: `seed: 1e3` is 1000), checked strictly for hpotool's own
components (`check_types`), and a boolean refused where a number is expected."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from hpotool.formatting import (
    format_choice,
    quoted_collection_hint,
    quoted_text,
    refused_with_value,
    yaml_bool_hint,
)


@functools.cache
def _hints(obj: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(getattr(obj, "__init__") if isinstance(obj, type) else obj)  # noqa: B009
    except Exception:  # an annotation that does not evaluate: nothing to check against
        return {}


@functools.cache
def _adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


# The plain annotations of Optuna's samplers and pruners (`seed: int | None`, `n_startup_trials: int`), as
# their source spells them: a string under `from __future__ import annotations`, which a TYPE_CHECKING import
# elsewhere in the signature keeps typing.get_type_hints from evaluating.
_SCALARS: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


@functools.cache
def _scalar_hints(obj: Callable[..., Any]) -> dict[str, Any]:
    """The arguments of `obj` annotated with scalars alone (`int`, `float | None`, `str | int`), by name; for
    a class, its bases' too (hpotool's `RungTPESampler(**kwargs)` passes them on to Optuna's TPESampler)."""
    import operator

    functions = (
        [getattr(c, "__init__") for c in obj.__mro__ if "__init__" in vars(c)]  # noqa: B009
        if isinstance(obj, type)
        else [obj]
    )
    hints: dict[str, Any] = {}
    for function in reversed(functions):  # a subclass's annotation wins over its base's
        try:
            params = inspect.signature(inspect.unwrap(function)).parameters
        except (TypeError, ValueError):
            continue
        for name, param in params.items():
            ann = param.annotation
            parts = [part.strip() for part in ann.split("|")] if isinstance(ann, str) else [ann]
            types = [_SCALARS.get(part) if isinstance(part, str) else part for part in parts]
            if types and all(t in _SCALARS.values() for t in types):
                hints[name] = functools.reduce(operator.or_, types)
            else:
                hints.pop(name, None)
    return hints


def coerce_scalars(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`kwargs` with each scalar argument of an Optuna sampler or pruner (or hpotool's, built on them)
    converted to the type its signature annotates, as pydantic converts a config's fields (`seed: 1e3`, read
    as 1000.0, is 1000; `n_warmup_steps: 2.0` is 2): `seed: 1.5` or `n_startup_trials: ten` failed inside
    numpy ("Cannot cast scalar from dtype('float64') to dtype('int64')") or at the first trial, naming no
    argument. Other classes check their own arguments and get `kwargs` as they are.

    Raises:
        ValueError: a value that is not of its argument's type, naming the argument.
    """
    from pydantic import ValidationError

    if not str(getattr(obj, "__module__", "")).startswith(("optuna.", "hpotool.")):
        return dict(kwargs)
    hints = _scalar_hints(obj)
    converted = dict(kwargs)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is None:
            continue
        quoted = _quoted_number(hint, value)
        if quoted is not None:
            raise ValueError(
                f"{what} argument {key!r} is the text {quoted_text(value)}: write {quoted} without quotes, a number"
            )
        if isinstance(value, bool) and bool not in (typing.get_args(hint) or (hint,)):  # read as 1 otherwise
            raise ValueError(
                f"{what} argument {key!r}: expected {_hint_text(hint)}, got {format_choice(value)}"
            )
        try:
            converted[key] = _adapter(hint).validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{what} argument {key!r}: {refused_with_value(exc.errors()[0])}") from None
    return converted


_NUMBER_ERRORS = frozenset({"float_type", "int_type", "float_parsing", "int_parsing"})
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _quoted_number(hint: Any, value: Any) -> str | None:
    """The number a text spells (`"1"`) given to an argument that takes a number or a text (successive
    halving's `min_resource: int | str`, whose text is 'auto'), which pydantic keeps as the text: Optuna
    then refused it with "The value of `min_resource` is 1, but must be either `min_resource` >= 1 or
    'auto'". None for any other value or argument (an `int` argument converts `"7"` to 7)."""
    args = typing.get_args(hint) or (hint,)
    takes_number = int in args or float in args
    if isinstance(value, str) and str in args and takes_number and _NUMBER.fullmatch(value.strip()):
        return value.strip()
    return None


def _hint_text(hint: Any) -> str:
    """`int | None` as a reader writes it."""
    args = typing.get_args(hint) or (hint,)
    return " | ".join("null" if a is type(None) else a.__name__ for a in args)


def check_types(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Raise `ValueError` when a value in `kwargs` does not have the type `obj`'s signature annotates
    (strictly: `"0.1"` is not a float), so `dropout: "0.1"` fails at load time naming the argument, not
    with a TypeError from inside the component. Only for hpotool's own components, whose annotations are
    exact; other code checks its own arguments."""
    from pydantic import ValidationError

    _refuse_booleans_for_numbers(obj, kwargs, what)
    if not str(getattr(obj, "__module__", "")).startswith("hpotool."):
        return
    hints = _hints(obj)
    for key, value in kwargs.items():
        if key not in hints:
            continue
        try:
            _adapter(hints[key]).validate_python(value, strict=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            hint = yaml_bool_hint(value, error["type"]) or quoted_collection_hint(value)
            if (
                isinstance(value, str)
                and _NUMBER.fullmatch(value.strip())
                and error["type"] in _NUMBER_ERRORS
            ):
                hint = f"; write {value.strip()} without quotes, a number"  # `dropout: "0.1"`: said neither
            elif not hint and isinstance(value, str) and error["type"] in ("int_type", "float_type"):
                hint = (
                    "; write a whole number" if error["type"] == "int_type" else "; write a number"
                )  # `abc`
            raise ValueError(f"{what} argument {key!r}: {refused_with_value(error)}{hint}") from None


def _refuse_booleans_for_numbers(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Raise `ValueError` for true or false given to an argument whose default is a number (torch's
    `Adam(lr=0.001)`, a user's `width=16`): Python takes it as 1 or 0, so `lr: yes` trained at lr 1.0 and
    `width: on` built a layer of width 1, where annotations (torch's `lr: float | Tensor`) check nothing."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    for key, value in kwargs.items():
        default = params[key].default if key in params else None
        if isinstance(value, bool) and isinstance(default, int | float) and not isinstance(default, bool):
            raise ValueError(
                f"{what} argument {key!r}: expected a number (its default is {format_choice(default)}), got "
                f"{format_choice(value)}; YAML reads an unquoted yes, no, on, off, true or false as a boolean: "
                f"write a number"
            )
