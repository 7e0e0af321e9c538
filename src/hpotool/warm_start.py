"""Another study's trial as a warm start for this search space: which of its parameters carry over, and why
the others do not (`hpotool optimize --enqueue-from`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from hpotool.formatting import format_choice
from hpotool.search_space import CategoricalParam, Param, equal_in_value, taken_as
from hpotool.sections import SECTIONS, as_section


def carried_params(
    ran: Mapping[str, Any], space: Mapping[str, Param], trained: Callable[[], Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of `space` a trial that ran with `ran` gives, and why each other parameter is left out.

    A value carries over where this space can take one equal to it (1 == 1.0, in lists too), spelt as this
    space spells it; a whole section, where a choice gives the same section (`_section_taken`). A parameter
    this space searches as a whole list or section where the trial set its items (`model.hidden` for
    `model.hidden.0`), or item by item where it set the whole list, takes the value the trial trained there:
    `trained()`, every path of the trial's run config (`leaf_values`) and each section whole, read only then.

    Returns:
        `({path: value}, {parameter: why it is left out})`, a parameter named as the trial or this space
        names it.
    """
    params: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for name, value in ran.items():
        if name in space:
            taken = _taken(name, value, space)
            if taken:
                params[name] = taken[0]
            else:
                left_out[name] = f"{format_choice(value)} lies outside this space"
    values: Mapping[str, Any] | None = None
    for path in space:
        related = [name for name in ran if _nested(name, path)]
        if path in ran or not related:
            continue
        values = trained() if values is None else values
        taken = _taken(path, values[path], space) if path in values else []
        if taken:
            params[path] = taken[0]
        else:
            left_out[path] = (
                f"the trial's {', '.join(related)} gave it {format_choice(values[path])}, which lies outside "
                f"this space"
                if path in values
                else f"the trial has {', '.join(related)}, and no stored run config to read it from"
            )
    for name in ran:
        if name not in space and not any(_nested(name, path) for path in space):
            left_out[name] = "not searched here"
    return params, left_out


def _taken(path: str, value: Any, space: Mapping[str, Param]) -> list[Any]:
    """`value` as the parameter `path` of `space` spells it (`taken_as`), a section by `_section_taken`."""
    p = space[path]
    if path in SECTIONS and isinstance(p, CategoricalParam) and isinstance(value, dict):
        return _section_taken(path, value, p, space)
    return taken_as(p, value)


def _section_taken(
    path: str, value: dict[str, Any], p: CategoricalParam, space: Mapping[str, Param]
) -> list[Any]:
    """The choice of the section `path` that gives the section `value` does, in a one-item list: equal once
    each has the section's defaults (`{name: adam}` is `{name: adam, lr: 0.001}`), apart from the keys this
    space searches below it (`optimizer.lr`), which apply after the choice."""
    below = {name.split(".")[1] for name in space if name.startswith(f"{path}.")}

    def key(section: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in as_section(path, section).items() if k not in below}

    try:
        theirs = key(value)
    except ValidationError:
        return []
    return [c for c in p.choices if isinstance(c, dict) and equal_in_value(key(c), theirs)][:1]


def _nested(a: str, b: str) -> bool:
    """Whether one path lies inside the other: `model.hidden` and `model.hidden.0`."""
    return a.startswith(f"{b}.") or b.startswith(f"{a}.")


def left_out_note(source: str, left_out: Mapping[str, list[str]], n_trials: int) -> str | None:
    """One line naming the parameters of `source`'s `n_trials` best trials that did not carry over, with the
    first reason each was left out (`left_out`: the reasons, one per trial that left it out)."""
    if not left_out:
        return None
    parts = []
    for name, reasons in left_out.items():
        times = "" if len(reasons) == n_trials else f"; in {len(reasons)} of {n_trials} trials"
        parts.append(f"{name} ({reasons[0]}{times})")
    return (
        f"--enqueue-from {source}: left out of its best trials (the sampler picks them instead): "
        f"{', '.join(parts)}"
    )
