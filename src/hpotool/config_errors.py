"""A pydantic `ValidationError` of a config, worded for its author: `error_lines` (one `location: message`
line per error, with how to fix it) and `validate_config` (validate, or one `HpoError` naming the source)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from hpotool.config import RunConfig
from hpotool.config_fields import BUDGET_GIVEN, CHECK_COMPONENTS, Frozen
from hpotool.errors import HpoError
from hpotool.formatting import format_choice, quoted_text, refused_with_value, yaml_bool_hint
from hpotool.key_hints import key_suggestion, misplaced_key_hint, misspelt_missing_key, valid_keys
from hpotool.near_names import did_you_mean
from hpotool.nested_space import PARAM_KEYS
from hpotool.search_space import PARAM_TYPES

# Parameter types as Optuna's old suggest_* names, hyperopt, Ray Tune and W&B sweeps spell them.
_OTHER_TYPES = {
    **dict.fromkeys(("uniform", "real", "double", "number"), "write type: float"),
    **dict.fromkeys(
        ("loguniform", "log_uniform", "log_uniform_values", "reciprocal"), "write type: float, log: true"
    ),
    **dict.fromkeys(("discrete_uniform", "quniform"), "write type: float, with step: ..."),
    "qloguniform": "write type: float, log: true (a log scale takes no step)",
    **dict.fromkeys(("randint", "int_uniform", "qrandint"), "write type: int (step: for a stride)"),
    **dict.fromkeys(
        ("choice", "choices", "category", "enum", "grid_search"),
        "write type: categorical, with choices: [...]",
    ),
    **dict.fromkeys(("bool", "boolean"), "write type: categorical, with choices: [true, false]"),
}


def _display_loc(loc: tuple[str | int, ...]) -> str:
    parts = [str(p) for p in loc]
    # Pydantic puts the discriminator's tag in the location (search_space.x.float.low): drop it.
    if len(parts) >= 3 and parts[0] == "search_space" and parts[2] in PARAM_TYPES:
        del parts[2]
    return ".".join(parts)


_MAPPING_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})


def _under_indented(errors: list[Any], root: type[BaseModel]) -> tuple[list[str], list[Any]]:
    """A section (or a search-space parameter) left empty with its keys one level out, beside it:

        data:               search_space:
        name: digits          optimizer.lr:
                              type: float

    One line per such section, naming the keys to indent, instead of "expected a mapping, got null" and a
    line per stray key ("unknown key 'name'", "search_space.type: expected a mapping"). Returns those lines
    and the errors they leave to report."""
    top = valid_keys(root, ())
    lines: list[str] = []
    for prefix in ((), ("search_space",)):
        empty = [
            e
            for e in errors
            if e["type"] in _MAPPING_ERRORS
            and e["input"] is None
            and len(e["loc"]) == len(prefix) + 1
            and tuple(e["loc"][:-1]) == prefix
        ]
        if len(empty) != 1:
            continue
        if prefix:
            strays = [
                e
                for e in errors
                if e["type"] in _MAPPING_ERRORS
                and e["input"] is not None
                and len(e["loc"]) == 2
                and tuple(e["loc"][:-1]) == prefix
                and e["loc"][-1] in PARAM_KEYS
            ]
        else:
            strays = [
                e
                for e in errors
                if e["type"] == "extra_forbidden"
                and len(e["loc"]) == 1
                and not did_you_mean(str(e["loc"][0]), top)
            ]
        if not strays:
            continue
        section = str(empty[0]["loc"][-1])
        keys = ", ".join(str(e["loc"][-1]) for e in strays)
        lines.append(
            f"{_display_loc(tuple(empty[0]['loc']))}: is empty, and {keys} after it "
            f"{'sits' if len(strays) == 1 else 'sit'} at its level; indent {'it' if len(strays) == 1 else 'them'} "
            f"under {section}: (further right than {section})"
        )
        errors = [e for e in errors if e is not empty[0] and not any(e is x for x in strays)]
    return lines, errors


def _null_section_hint(section: str) -> str:
    """How to write a run config section left null (`scheduler: null`, meant as no schedule): its default
    by leaving it out, or a name."""
    field = RunConfig.model_fields.get(section)
    default = getattr(field.get_default(call_default_factory=True), "name", None) if field else None
    if default is None:
        return ""
    if section == "scheduler":
        return "; for no schedule leave scheduler out, or write scheduler: {name: none}"
    return f"; leave {section} out for its default ({{name: {default}}}), or write {section}: {{name: ...}}"


def keep_validator_context(exc: ValidationError) -> None:
    """Chain to `exc` the exception a validator raised for its first error that was raised while handling
    another (`import_object`'s, for a user's module that failed to import), so `--debug`'s traceback
    (`errors.unsuppress_context`) reaches the user's own frames: pydantic keeps a validator's error only as
    its message, and `hpotool --debug optimize` on a `trainer.function`, model or dataset whose module raised
    at import showed hpotool's frames and pydantic's alone."""
    for error in exc.errors(include_url=False):
        raised = (error.get("ctx") or {}).get("error")
        if isinstance(raised, BaseException) and (raised.__cause__ or raised.__context__) is not None:
            if exc.__context__ is None:
                exc.__context__ = raised
            return


def error_lines(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One `location: message` line per validation error, worded for a config author."""
    errors = exc.errors(include_url=False)
    lines, errors = _under_indented(errors, root)
    lines += [_error_line(err, root) for err in _without_misspelt_missing(errors, root)]
    return _one_line_per_missing_package(lines)


def _without_misspelt_missing(errors: list[Any], root: type[BaseModel]) -> list[Any]:
    """`errors` less the "missing" key a misspelt key stands for: a misspelt key also makes its correct
    spelling "missing", and the misspelling is reported alone."""
    misspelt = {
        (tuple(e["loc"][:-1]), key_suggestion(str(e["loc"][-1]), valid_keys(root, tuple(e["loc"][:-1]))))
        for e in errors
        if e["type"] == "extra_forbidden"
    }
    # a range written as one key, `range: [1.0e-4, 0.1]`, stands for low and high: its line says so alone
    ranged = {tuple(e["loc"][:-1]) for e in errors if _range_key(e)}
    return [
        e
        for e in errors
        if not (
            e["type"] == "missing"
            and (
                (tuple(e["loc"][:-1]), f" (did you mean {e['loc'][-1]!r}?)") in misspelt
                or (tuple(e["loc"][:-1]) in ranged and e["loc"][-1] in ("low", "high"))
            )
        )
    ]


_RANGE_KEYS = ("range", "bounds", "domain", "interval", "limits")


def _range_key(err: Any) -> bool:
    """Whether `err` is an unknown key of a parameter that gives its range as a pair, `range: [1, 4]` (as
    other tools write it), where hpotool takes low and high."""
    value = err.get("input")
    return (
        err["type"] == "extra_forbidden"
        and len(err["loc"]) >= 3
        and err["loc"][0] == "search_space"
        and err["loc"][-1] in _RANGE_KEYS
        and isinstance(value, list)
        and len(value) == 2
    )


def _error_line(err: Any, root: type[BaseModel]) -> str:
    """`location: message` for one error (an unknown key is located at the mapping that holds it)."""
    loc = tuple(err["loc"])
    if err["type"] == "invalid_key" or loc[-1:] == ("[key]",):  # `3: x`, `true: x`, `null: x`
        key_at = -1 if err["type"] == "invalid_key" else -2  # a dict[str, ...]'s key: (..., key, "[key]")
        where = _display_loc(loc[:key_at])
        msg = _not_a_name(err["input"])
        return f"{where}: {msg}" if where else msg
    msg = _message(err, loc, root)
    where = _display_loc(loc[:-1] if err["type"] == "extra_forbidden" else loc)
    return f"{where}: {msg}" if where else msg


def _message(err: Any, loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    """One error's message, worded for a config author, by the kind of error."""
    kind = err["type"]
    if kind == "extra_forbidden" and _range_key(err):
        low, high = err["input"]
        return f"unknown key {loc[-1]!r}; write low: {format_choice(low)}, high: {format_choice(high)}"
    if kind == "extra_forbidden":
        return _unknown_key(loc, root)
    if kind == "missing":
        hint = misspelt_missing_key(err) or (
            f"; add search_space: with the parameters to search under it, {_A_PARAMETER}"
            if loc == ("search_space",)
            else ""
        )
        return f"required key is missing{hint}"
    if kind == "union_tag_invalid":
        given = err.get("input")
        return _unknown_type(
            given["type"] if isinstance(given, dict) and "type" in given else err["ctx"]["tag"]
        )
    if kind == "union_tag_not_found":
        return f"a parameter needs a 'type' ({', '.join(PARAM_TYPES)})"
    if kind in _MAPPING_ERRORS:
        return _not_a_mapping(err["input"], loc, root)
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if "input" in err and not kind.startswith("value_error") and kind != "assertion_error":
        return _with_input(err)
    return msg


def _unknown_key(loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    """An unknown key: its likely spelling, and where it belongs or the keys valid where it is."""
    key = str(loc[-1])
    valid = valid_keys(root, loc[:-1])
    msg = f"unknown key {key!r}{key_suggestion(key, valid)}"
    misplaced = misplaced_key_hint(root, key) if not loc[:-1] else ""
    if misplaced:
        msg += misplaced
    elif valid:
        msg += f"; valid keys: {', '.join(valid)}"
    return msg


_A_PARAMETER = "such as optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}"


def _not_a_name(key: Any) -> str:
    """A key YAML reads as a number, a boolean or null, where keys are names: pydantic said "1: Keys should be
    strings, got true" (the key true shown as 1, null as None) and how to fix it nowhere."""
    shown = format_choice(key)
    if key is None:
        return "a key is null (written null or ~), where keys are names; write the name"
    read = (
        "a boolean (YAML reads yes, no, on, off, true and false so)" if isinstance(key, bool) else "a number"
    )
    return f"the key {shown} is read as {read}, where keys are names; quote it ('{shown}': ...) or write the name"


def _unknown_type(tag: Any) -> str:
    """An unknown parameter type: a near spelling, the type another tool's name for it means, or the types."""
    if not isinstance(tag, str):  # `type: .inf` said "unknown type 'inf' (did you mean 'int'?)"; {a: 1} too
        return f"unknown type {format_choice(tag)}, not a name; choose one of: {', '.join(PARAM_TYPES)}"
    # Optuna's method names, as a script being ported spells them: suggest_float is type: float
    bare = str(tag).lower().removeprefix("trial.").removeprefix("suggest_")
    if bare != str(tag).lower() and bare in PARAM_TYPES:
        return f"unknown type {tag!r}; write type: {bare} (Optuna's suggest_{bare})"
    if bare != str(tag).lower() and bare in _OTHER_TYPES:
        return f"unknown type {tag!r}; {_OTHER_TYPES[bare]}"
    hint = did_you_mean(str(tag), PARAM_TYPES)
    if not hint and str(tag).lower() in _OTHER_TYPES:
        return f"unknown type {tag!r}; {_OTHER_TYPES[str(tag).lower()]}"
    return f"unknown type {tag!r}{hint}; choose one of: {', '.join(PARAM_TYPES)}"


def _not_a_mapping(value: Any, loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    """A section or parameter given as something else than a mapping, with how to write it."""
    msg = f"expected a mapping, got {format_choice(value)}"
    if loc == ("search_space",) and value is None:
        # Every parameter commented out (YAML reads what is left as null), as `search_space: {}` is refused.
        return (
            "the search space is empty (nothing under search_space:, or every line commented out); add at "
            f"least one parameter, {_A_PARAMETER}"
        )
    if len(loc) == 2 and loc[0] == "search_space":
        msg += _param_hint(str(loc[1]), value)
    elif len(loc) == 1 and isinstance(value, str) and value.strip() and root is RunConfig:  # not {name: }
        key = "function" if loc[0] == "trainer" else "name"
        msg += f"; write {loc[0]}: {{{key}: {value}}}"
    elif len(loc) == 1 and value is None and root is RunConfig:  # scheduler: null for none
        msg += _null_section_hint(str(loc[0]))
    elif loc == ("sampler",) and value is None:  # pruner: null is no pruning; no sampling has no meaning
        msg += "; leave sampler out for its default ({name: tpe}), or write sampler: {name: ...}"
    elif loc == ("pruner",) and value is False:  # pruner: off (YAML reads off and no as false)
        msg += "; for no pruning write pruner: null, or pruner: {name: nop}"
    return msg


def _with_input(err: Any) -> str:
    """Pydantic's message with the value it refused, spelt as YAML (and a hint for a quoted list)."""
    kind = err["type"]
    words = None
    if kind == "literal_error":  # pydantic quotes the allowed words as Python does: spell them as YAML
        words = f"Input should be {err['ctx']['expected'].replace(chr(39), '')}"
    msg = refused_with_value(err, words)
    shown = format_choice(err["input"])
    shown = shown if len(shown) < 60 else shown[:57] + "..."
    if kind == "literal_error" and isinstance(err["input"], str):
        msg += _word_meant(err["input"], re.findall(r"'([^']*)'", err["ctx"]["expected"]))
    msg += yaml_bool_hint(err["input"], kind)
    if kind == "list_type" and isinstance(err["input"], str) and err["input"].lstrip().startswith("["):
        msg = msg.replace(f"got {shown}", f"got the text {quoted_text(err['input'])}")
        msg += "; drop the quotes around the list"
    return msg


def _word_meant(given: str, words: list[str]) -> str:
    """ " (did you mean 'maximize'?)" for a word of a fixed set misspelt (minimise, British, for minimize), or
    the start of one alone (max, as Ray Tune's mode spells it), which is too short to look alike; else ""."""
    near = did_you_mean(given, words, ignore_case=True)
    starts = [w for w in words if given and w.casefold().startswith(given.casefold())]
    return near or (f" (did you mean {starts[0]!r}?)" if len(starts) == 1 else "")


def _one_line_per_missing_package(lines: list[str]) -> list[str]:
    """Sections whose components come from one package that does not import (hpotool run from the wrong
    folder, or in another environment than the package's; its editable install moved) share one line: the
    first, naming the other sections."""
    first: dict[str, int] = {}
    also: dict[int, list[str]] = {}
    out: list[str] = []
    for line in lines:
        # the path's own package not found (a hint where it may be, or of its install), not one it imports
        missing = re.search(r"cannot import '[^']*': No module named '([^']+)';", line)
        if missing is None:
            out.append(line)
        elif missing.group(1) in first:
            also[first[missing.group(1)]].append(line.partition(":")[0])
        else:
            first[missing.group(1)] = len(out)
            also[len(out)] = []
            out.append(line)
    for i, sections in also.items():
        if sections:
            out[i] += f" ({', '.join(sections)} {'needs' if len(sections) == 1 else 'need'} it too)"
    return out


def _param_hint(path: str, value: Any) -> str:
    """How to write a search-space entry given as a bare list or value."""
    if value is None:
        return (
            f"; give what to search on its line ({path}: {{type: float, low: ..., high: ...}}) or indented "
            f"under it, or drop it"
        )
    if isinstance(value, list):
        return f"; write a list of choices as {{type: categorical, choices: {format_choice(value)}}}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        search = "{type: categorical, choices: [...]}"
    else:
        search = f"{{type: {type(value).__name__}, low: ..., high: ...}}"
    return f"; a fixed value belongs in the run config ({path}: {format_choice(value)}); to search it, give {search}"


_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def validate_config(
    cls: type[Frozen],
    data: dict[str, Any],
    source: str,
    *,
    check_components: bool = True,
    budget_given: bool = False,
) -> Any:
    """Validate `data` as `cls`; errors become one `HpoError` naming `source` and each key.

    `check_components=False` skips importing each component to check its arguments: for configs a
    study has already trained (export), where the check would only import torch. `budget_given`: the
    command line gives n_trials or timeout, so a file that leaves both null is complete.
    """
    try:
        return cls.model_validate(
            data, context={CHECK_COMPONENTS: check_components, BUDGET_GIVEN: budget_given}
        )
    except ValidationError as exc:
        # a key such as "\r" would break its line in two: each line stays one, the break written as YAML does
        lines = [line.translate(_LINE_BREAKS) for line in error_lines(exc, cls)]
        keep_validator_context(exc)
        raise HpoError(f"{source}: " + f"\n{source}: ".join(lines)) from None
