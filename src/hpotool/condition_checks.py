"""A searched parameter's `when:` conditions checked before trial 0: each reads a searched parameter or a
RunConfig path, lists values that parameter takes, and holds for some value of it (or the run config's own),
so the parameter is set in some trial; and the values a trial sets where a condition holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpotool.conditions import all_hold, holds, satisfying_value
from hpotool.config import (
    OptimizeConfig,
)
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.near_names import closest
from hpotool.param_values import boundary_values, contains, number_slip, off_step, same_value, values_text
from hpotool.search_space import CategoricalParam, Param, is_number_text, number_of_text
from hpotool.sections import SECTIONS, section_choices

_NONE = object()


def condition_values(
    param: Param, opt: OptimizeConfig, fixed: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """Values of the searched paths that make `param`'s conditions hold: of each referenced parameter's
    choices, or its bounds, middle and the value the condition implies, the first it can take that holds.

    Raises:
        HpoError: a condition that no value of its parameter, or the run config's fixed value (`fixed`, by
            path), satisfies: parameter `name` would never be set.
    """
    out = {}
    for path, condition in (param.when or {}).items():
        ref = opt.search_space.get(path)
        if ref is None:  # a fixed RunConfig value: the condition reads it as it is
            _check_fixed_condition(path, condition, fixed, name)
            continue
        candidates = _candidates(ref, condition)
        value = next((c for c in candidates if contains(ref, c) and holds(condition, c)), _NONE)
        if value is _NONE:
            raise HpoError(_never_holds(path, condition, ref))
        # a conditional parameter has a value only where its own conditions hold (sgd for momentum)
        out.update({**condition_values(ref, opt, fixed, path), path: value})
    return out


def _check_fixed_condition(path: str, condition: Any, fixed: Mapping[str, Any], name: str) -> None:
    """A condition on the run config's own value of `path`, which no trial changes, holds.

    Raises:
        HpoError: it never holds, so parameter `name` would never be set; naming what to change.
    """
    if holds(condition, fixed.get(path)):
        return
    unset = fixed.get(path) is None
    says = (
        "does not set it (a condition reads no default)"
        if unset
        else f"sets it to {format_choice(fixed[path])}"
    )
    wanted = satisfying_value(condition)
    fix = (
        f"set {path} in the run config, search it (above {name})"
        if unset
        else f"search {path} (above {name})"
        + (f", set it to {format_choice(wanted)} in the run config" if holds(condition, wanted) else "")
    )
    if isinstance(condition, list) and not unset and any(same_value(fixed[path], c) for c in condition):
        fix = f"a list is one value (a list choice): for any of several, write {{in: {format_choice(condition)}}}"
    quoted = next((o for o in _operands(condition) if _quotes(o, fixed.get(path))), None)
    if quoted is not None:  # `{batch_size: "64"}` beside batch_size: 64 said to set it to "64", text
        number = number_of_text(quoted)
        if type(fixed[path]) is int and isinstance(number, float) and number.is_integer():
            number = int(number)  # "1.0" beside epochs: 1: "write 1", as the key spells it
        raise HpoError(
            f"the condition {path}: {format_choice(condition)} never holds: {format_choice(quoted)} is text (in "
            f"quotes), where the run config sets {path} to the number {format_choice(fixed[path])}; write "
            f"{format_choice(number)} without quotes"
        )
    raise HpoError(
        f"the condition {path}: {format_choice(condition)} never holds: {path} is not searched and the run config "
        f"{says}, so {name} would never be set; {fix}, or change or drop the condition"
    )


def _operands(condition: Any) -> list[Any]:
    """The values a condition compares with: itself, or its test's operand (each of an `in` list)."""
    if not isinstance(condition, dict):
        return [condition]
    return [o for v in condition.values() for o in (v if isinstance(v, list) else [v])]


def _quotes(operand: Any, value: Any) -> bool:
    """Whether `operand` is `value`, a number, written in quotes ("64" for 64)."""
    if not isinstance(operand, str) or not is_number_text(operand) or isinstance(value, bool):
        return False
    return isinstance(value, int | float) and number_of_text(operand) == value


def can_hold(condition: Any, ref: Param) -> bool:
    """Whether `condition` holds for a value the searched parameter `ref` takes, as checked before trial 0
    (`condition_values`): a choice, or a bound, the middle or the value the condition implies."""
    return any(contains(ref, c) and holds(condition, c) for c in _candidates(ref, condition))


def _candidates(ref: Param, condition: Any) -> list[Any]:
    """The values of the searched parameter `ref` to try a condition on: its choices, or its bounds, middle
    and the value the condition implies."""
    if isinstance(ref, CategoricalParam):
        return list(ref.choices)
    middle = (ref.low + ref.high) / 2
    candidates = [ref.low, ref.high, round(middle) if isinstance(ref.low, int) else middle]
    candidates.append(satisfying_value(condition))
    return candidates


def _never_holds(path: str, condition: Any, ref: Param) -> str:
    """Why a condition on the searched parameter `path` (`ref`) holds for none of its values, with a hint
    for the likely slip: a list for any of several, a boolean for a number, a misspelt choice."""
    hint = ""
    # every operand's at once: `{in: [12, 20]}` named 12, then 20
    slip = "; ".join(s for o in _operands(condition) if (s := number_slip(path, ref, o) or off_step(ref, o)))
    # `when: {batch_size: "64"}` over the choices [32, 64]; `{model.hidden.0: 12}` over [8, 32], step 8 (it
    # said to widen the range, which holds 12 between two steps)
    if slip:
        hint = f"; {slip}"
    elif isinstance(condition, list) and any(contains(ref, c) for c in condition):
        # `when: {model.name: [rf, svc]}` reads as the one list value [rf, svc], not "any of them"
        hint = f"; a list is one value (a list choice): for any of several, write {{in: {format_choice(condition)}}}"
    elif isinstance(ref, CategoricalParam) and _boolean_for_number(condition, ref.choices):
        # `when: {model.layers: true}` over the choices [0, 1]: Python's True == 1, YAML's true is no 1
        hint = (
            f" (a boolean matches only true or false, and a number only numbers; its choices: "
            f"{format_choice(ref.choices)})"
        )
    elif isinstance(ref, CategoricalParam) and isinstance(condition, str):
        words = [c for c in ref.choices if isinstance(c, str)]
        near = closest(condition, words, n=1)
        if near:  # a misspelt choice: `when: {optimizer.name: sdg}`
            hint = f" (did you mean {near[0]}? its choices: {format_choice(ref.choices)})"
    if not hint and isinstance(ref, CategoricalParam):  # no slip to name: what to change
        hint = f" (its choices: {format_choice(ref.choices)}); change or drop the condition"
    elif not hint:  # a test past a range's end: `{ge: 4}` over model.layers [1, 3]
        hint = f"; change or drop the condition, or widen {path}'s range to meet it"
    values = "" if isinstance(ref, CategoricalParam) else f" ({values_text(ref)})"  # choices: in the hint
    return (
        f"the condition {path}: {format_choice(condition)} never holds for {path}'s values{values}, so it "
        f"would never be set{hint}"
    )


def _boolean_for_number(condition: Any, choices: list[Any]) -> bool:
    """Whether `condition` (a value or `{in: [...]}`) names a boolean for a number among `choices`, or a
    number for a boolean, which Python's == would match and a condition does not."""
    values = condition.get("in", []) if isinstance(condition, dict) else [condition]
    return any(
        isinstance(v, bool) != isinstance(c, bool) and v == c
        for v in values
        for c in choices
        if isinstance(v, int | float) and isinstance(c, int | float)
    )


def check_condition_paths(path: str, param: Param, opt: OptimizeConfig, valid: set[str]) -> None:
    """Each `when:` path is a searched parameter or a RunConfig path: a typo would switch `path` off."""
    for cond in param.when or {}:
        section = cond.partition(".")[0]
        if cond != section and cond not in opt.search_space and section in section_choices(opt.search_space):
            raise HpoError(
                f"search_space.{path}.when: {cond!r} is inside {section}, which the search chooses whole, so the "
                f"condition would read the run config's {cond}, not the chosen section's; condition on the "
                f"section itself (when: {{{section}: {{in: [...]}}}}, the choices written whole), or search {cond} "
                f"too"
            )
        if cond not in opt.search_space and cond not in valid:
            near = closest(cond, sorted({*opt.search_space, *valid}), n=3)
            hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise HpoError(
                f"search_space.{path}.when: {cond!r} is neither a searched parameter nor a run config key{hint}"
            )


def check_section_operands(path: str, param: Param, opt: OptimizeConfig) -> None:
    """Each value a condition on a searched parameter lists (`in`, `ne`) is one it takes; a section, one of
    the choices of a section searched whole (the config named each that builds a choice's section so): one it
    never takes would never match, its condition quietly narrower (or, with ne, wider) than written."""
    for on, condition in (param.when or {}).items():
        ref = opt.search_space.get(on)
        if ref is None or not isinstance(condition, dict):
            continue
        ((test, operand),) = condition.items()
        operands = operand if test == "in" else [operand] if test == "ne" else []
        if on in SECTIONS and isinstance(ref, CategoricalParam):
            stray = next((v for v in operands if isinstance(v, dict) and not contains(ref, v)), _NONE)
            if stray is not _NONE:
                raise HpoError(
                    f"search_space.{path}.when.{on}: {format_choice(stray)} is none of {on}'s choices and gives "
                    f"none of their sections, so no trial matches it; name one of: "
                    f"{', '.join(map(format_choice, ref.choices))}"
                )
            continue
        # a plain parameter: a value it never takes (a misspelt or dropped choice, a number off its range)
        stray = next((v for v in operands if not contains(ref, v)), _NONE)
        if stray is _NONE or (test == "in" and not any(contains(ref, v) for v in operands)):
            continue  # an `in` none of whose values it takes never holds: that check names the condition
        values = f"{on}'s values ({values_text(ref)})"
        # {ne: "64"}, {in: ["64", 32]}: the quotes, not the value; {in: [8, 12]} over [8, 32], step 8: the step
        # (it said "widen model.hidden.0's range", which holds 12 between two steps)
        if slip := number_slip(on, ref, stray) or off_step(ref, stray):
            raise HpoError(f"search_space.{path}.when.{on}: {slip}")
        if test == "ne":
            words = (
                [c for c in ref.choices if isinstance(c, str)] if isinstance(ref, CategoricalParam) else []
            )
            near = closest(stray, words, n=1) if isinstance(stray, str) else []
            fix = f"did you mean {near[0]}?" if near else "name one of its values, or drop the condition"
            raise HpoError(
                f"search_space.{path}.when.{on}: {format_choice(condition)} holds in every trial: "
                f"{format_choice(stray)} is not one of {values}; {fix}"
            )
        add = f"add it to {on}'s choices" if isinstance(ref, CategoricalParam) else f"widen {on}'s range"
        raise HpoError(
            f"search_space.{path}.when.{on}: {format_choice(stray)} is not one of {values}, so no trial matches "
            f"it; drop it from in:, or {add}"
        )


def conditioned_on(
    path: str, value: Any, context: Mapping[str, Any], opt: OptimizeConfig, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """The other parameters whose conditions read `path` or a value of `context` and hold with them, each at
    its first value: the ones a trial picking `value` where `context` holds sets too (mse beside the
    regression dataset, both when: {model.activation: gelu})."""
    values: dict[str, Any] = {**fixed, **context, path: value}
    out: dict[str, Any] = {}
    for name, param in opt.search_space.items():
        if name == path or name in context or not param.when or not ({path, *context} & set(param.when)):
            continue
        if all_hold(param.when, {**values, **out}):
            out[name] = boundary_values(param)[0]
    return out
