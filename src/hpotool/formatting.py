"""How numbers are shown in tables and progress lines (no heavy imports: the CLI uses it)."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun`, singular for one: "1 trial", "3 trials" (`plural` where adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def format_value(v: Any) -> str:
    """Four significant digits for a float, except a whole number up to 15 digits, shown whole (a model's
    53,420 parameters as 53420, not 5.342e+04); a list or mapping as `format_choice` spells it; anything
    else as str()."""
    if isinstance(v, list | dict):
        return format_choice(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.4g}"
    return str(v)


# pydantic's bound errors, and how hpotool words each bound: "must be 1 or more, got 0", which says what to
# give, where pydantic's "Input should be greater than or equal to 1" did not.
_BOUNDS = {
    "greater_than": ("gt", "above {}"),
    "greater_than_equal": ("ge", "{} or more"),
    "less_than": ("lt", "below {}"),
    "less_than_equal": ("le", "{} or less"),
}


def refused_value(error: Mapping[str, Any]) -> str:
    """Pydantic's message for a value it refused, in hpotool's words: `must be 1 or more` for a value past a
    bound (`epochs: 0`, `--workers 0`), which says what to give where pydantic's "Input should be greater
    than or equal to 1" did not; `must have at least 1 item` for a list too short (`choices: []`); else
    pydantic's message less its "unable to parse string as an integer", which the value shown after it says."""
    ctx = error.get("ctx") or {}
    if error.get("type") in _BOUNDS:
        key, words = _BOUNDS[error["type"]]
        return f"must be {words.format(format_value(ctx[key]))}"
    if error.get("type") == "too_short" and "min_length" in ctx:
        return f"must have at least {counted(ctx['min_length'], 'item')}"
    return str(error.get("msg", "")).partition(", unable to parse string")[0]


# What to write for a number pydantic could not read: `epochs: many`, `epochs: 1.5`, `lr: fast`.
WHOLE_NUMBER_FIX = "; write a whole number"
_NUMBER_FIXES = {
    "int_parsing": WHOLE_NUMBER_FIX,
    "int_from_float": WHOLE_NUMBER_FIX,
    "float_parsing": "; write a number",
}


def refused_with_value(error: Mapping[str, Any], message: str | None = None) -> str:
    """`refused_value` (or `message`) with the value refused, spelt as YAML ("must be 1 or more, got 0"),
    and for a number pydantic could not read what to write ("got 1.5; write a whole number")."""
    msg = message if message is not None else refused_value(error)
    shown = format_choice(error["input"])
    shown = shown if len(shown) < 60 else shown[:57] + "..."
    # "got a number with a fractional part": the value goes after it, not in a second "got"
    msg = f"{msg} ({shown})" if ", got " in msg else f"{msg}, got {shown}"
    if error.get("type") in _NUMBER_FIXES and not isinstance(error["input"], bool):  # a boolean: its own hint
        msg += _NUMBER_FIXES[error["type"]]
    return msg


# pydantic's error types for a value that should have been a word.
_WORD_ERRORS = frozenset({"string_type", "literal_error", "enum"})


def yaml_bool_hint(value: Any, error_type: str) -> str:
    """What to add to "should be a valid string, got false": YAML 1.1, which PyYAML reads, makes an
    unquoted yes, no, on, off, true or false a boolean (`norm: no`)."""
    if isinstance(value, bool) and error_type in _WORD_ERRORS:
        return "; YAML reads an unquoted yes, no, on, off, true or false as a boolean: put the word in quotes"
    return ""


def format_choice(v: Any) -> str:
    """A categorical choice, or any config value, as the YAML spells it: 5.0 stays 5.0 (it is not the choice
    5), None is null, True is true; a float in full (the user wrote 0.12345, not 0.1235) as YAML reads it
    back (`1.0e-05`, not `1e-05`, which PyYAML reads as text; `.inf`, `-.inf`, `.nan`); a list or mapping
    in flow style, `[128, 64]`, `{name: sgd, lr: 0.1}`; a string as it is (`sgd`), quoted where YAML would
    read it otherwise (`"null"`, `"0.1"`, `["1", null]`), so the text reads back as the value and two values
    never read alike."""
    if isinstance(v, str) and _misread(v):
        return _quoted(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(_flow_item, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flow_item(k)}: {_flow_item(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float_text(v)
    return str(v)


def format_param(value: Any, categorical: bool) -> str:
    """A trial's parameter as every table and line shows it: a categorical choice as `format_choice` spells
    it, a list or mapping as the label the study stores (`sorted_keys`: `{lr: 0.001, name: adam}` whichever
    order the YAML gave the keys in), a sampled number as `format_value` does. `value` is decoded (a list
    choice as the list, `search_space.decode_params`): a string choice YAML reads as a list or mapping
    (`"[1,2]"`) is quoted, to read apart from the list choice [1, 2] (before, every line showed both bare)."""
    if isinstance(value, list | dict):
        return format_choice(sorted_keys(value))
    if categorical and isinstance(value, str) and _collection_text(value):
        return _quoted(value)
    return (format_choice if categorical else format_value)(value)


def sorted_keys(value: Any) -> Any:
    """`value` with every mapping's keys in sorted order: one spelling for one value, however the YAML
    ordered them."""
    if isinstance(value, list):
        return [sorted_keys(v) for v in value]
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value)}
    return value


def natural_key(name: str) -> tuple[Any, ...]:
    """A sort key that orders the numbers in names as numbers: trial2-seed0 before trial10-seed0 (as strings,
    trial10 came first), best_run_2.yaml before best_run_10.yaml; names the same but for leading zeros keep
    one order."""
    parts = re.split(r"(\d+)", name)
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)


def format_params(params: Mapping[str, Any]) -> str:
    """`path=value, ...` with each value as `format_choice` spells it: `optimizer.name=sgd, model.hidden=[8]`."""
    return ", ".join(f"{path}={format_choice(v)}" for path, v in params.items())


def _misread(text: str) -> bool:
    """Whether YAML reads `text`, written bare, as something else: nothing, a number, null or a boolean, a
    hexadecimal or sexagesimal integer (`0x10`, `1:30`), a date, a comment (`#x`)."""
    if not text or text != text.strip() or text.lower() in _YAML_WORDS or text == "~":
        return True
    try:
        float(text)
    except ValueError:
        return _yaml_misreads(text)
    return True


def _yaml_misreads(text: str) -> bool:
    """Whether YAML reads `text` as a scalar other than itself, or cannot read it. Text in flow style (`[...]`,
    `{...}`) stays bare: that is how a list or mapping choice's label is spelt (`[128, 64]`); a trial's
    parameters, decoded, are shown by `format_param`, which quotes such text where it is a choice."""
    value = _read_bare(text)
    if value is _NOT_YAML:  # `[1,`, `a: b: c`: not YAML at all when bare
        return True
    if isinstance(value, list | dict):
        return text[0] not in "[{"  # `a: b` is no label
    return bool(value != text)


def quoted_collection_hint(value: Any) -> str:
    """What to add to "should be a valid integer, got [16, 8]" for a list or mapping written in quotes
    (`hidden: "[16, 8]"`): the text is shown as YAML spells a list, so the line read as if a list were
    refused."""
    if not isinstance(value, str) or not _collection_text(value.strip()):
        return ""
    kind = "a list" if isinstance(_read_bare(value.strip()), list) else "a mapping"
    return f"; that is the text {_quoted(value)}: write {value.strip()} without quotes, {kind}"


def _collection_text(text: str) -> bool:
    """Whether YAML reads `text`, written bare, as a list or mapping (`[1,2]`, `{a: 1}`)."""
    return text[:1] in ("[", "{") and isinstance(_read_bare(text), list | dict)


_NOT_YAML = object()  # what `_read_bare` gives for text YAML cannot read


@functools.lru_cache(maxsize=4096)
def _read_bare(text: str) -> Any:
    """What YAML reads `text`, written bare, as; `_NOT_YAML` where it cannot read it."""
    from hpotool.errors import HpoError
    from hpotool.yamlfile import parse_yaml  # here: the CLI's --help imports this module, not yaml

    try:
        return parse_yaml(text, "choice")
    except HpoError:
        return _NOT_YAML


# A string YAML reads back as itself inside a flow collection; any other is written quoted.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off"}


def _flow_item(v: Any) -> str:
    if isinstance(v, str) and (not _PLAIN.fullmatch(v) or v.lower() in _YAML_WORDS):
        return _quoted(v)
    return format_choice(v)


def _float_text(v: float) -> str:
    """A float in full as PyYAML reads it back as that float: `1e-05` as `1.0e-05` (PyYAML's float needs a
    point; without one it reads text), an infinite or NaN one as `.inf`, `-.inf`, `.nan` (YAML reads `inf`
    and `nan` as text: a choice shown so read back as another value)."""
    if not math.isfinite(v):
        return ".nan" if math.isnan(v) else ".inf" if v > 0 else "-.inf"
    text = repr(v)
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


def returned_kind(value: Any) -> str:
    """What a user's function returned where an object was due, by its type's name (`int`), None as a
    function without a return statement returns it: "returned int", "returned None (no return statement?)"."""
    return "None (no return statement?)" if value is None else type(value).__name__


def quoted_text(text: str) -> str:
    """A text value as every line shows one, "the text \"0.9\"": double-quoted as a config writes it."""
    return _quoted(text)


def _quoted(text: str) -> str:
    """`text` double-quoted as YAML reads it back: JSON's escapes, and a character YAML would not keep
    (a line separator, an emoji JSON writes as two surrogates) as its \\u or \\U escape."""
    return "".join(
        c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
        for c in json.dumps(text, ensure_ascii=False)
    )
