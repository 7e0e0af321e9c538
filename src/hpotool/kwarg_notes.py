"""Optuna's FutureWarnings on the kwargs a config gives a sampler or pruner, collected as notes."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import warnings


_DEPRECATED = re.compile(
    r"^`(\w+)` has been deprecated in v([\d.]+)\. This feature will be removed in v([\d.]+)\."
)


# Where `instantiate` leaves its notes on deprecated kwargs, while `kwarg_notes()` collects them.
_notes: ContextVar[list[str] | None] = ContextVar("hpotool_kwarg_notes", default=None)


@contextlib.contextmanager
def kwarg_notes() -> Iterator[list[str]]:
    """Collects a note line per deprecated kwarg of the samplers and pruners built inside: one Optuna takes
    today and warns of (TPE's `prior_weight`). Outside, the same builds (a worker's, a resumed run's) say
    nothing: the check before trial 0 printed the note once."""
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


def add_note(line: str) -> None:
    """Add a note line for `kwarg_notes()` to collect; outside it, nothing."""
    notes = _notes.get()
    if notes is not None:
        notes.append(line)


def note_deprecated_kwargs(
    caught: list[warnings.WarningMessage], kwargs: Mapping[str, Any], key: str
) -> None:
    """Optuna's FutureWarnings on kwargs the config gives, as hpotool notes (`kwarg_notes`); other warnings
    are shown again."""
    import warnings

    import optuna

    notes = _notes.get()
    for w in caught:
        found = _DEPRECATED.match(str(w.message)) if issubclass(w.category, FutureWarning) else None
        if found is not None and found.group(1) in kwargs:
            arg, since, until = found.groups()
            if notes is not None:
                notes.append(
                    f"{key}.kwargs.{arg} is deprecated in Optuna {since} and goes in Optuna {until}; it still "
                    f"works with this Optuna ({optuna.__version__}), so the study uses it: drop it before "
                    f"upgrading Optuna"
                )
            continue
        # shown as before, each text once under the default filter (the registry of this line's module)
        warnings.warn(w.message, w.category, stacklevel=2)
