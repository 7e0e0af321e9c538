"""How numbers are shown in tables and progress lines (no heavy imports: the CLI uses it)."""

from __future__ import annotations

from typing import Any


def format_value(v: Any) -> str:
    """Four significant digits for a float, except a whole number up to 15 digits, shown whole (a model's
    53,420 parameters as 53420, not 5.342e+04); anything else as str()."""
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.4g}"
    return str(v)


def format_choice(v: Any) -> str:
    """A categorical choice as the YAML spells it: 5.0 stays 5.0 (it is not the choice 5), None is null,
    True is true; a float in full (the user wrote 0.12345, not 0.1235)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)
