"""Another study's trial as a warm start for this search space: which of its parameters carry over, and why
the others do not (`hpotool optimize --enqueue-from`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import ValidationError

from hpotool.conditions import equal_in_value
from hpotool.formatting import format_choice
from hpotool.param_values import step_neighbours, taken_as
from hpotool.search_space import CategoricalParam, Param
from hpotool.sections import SECTIONS, as_trained, configured_section


def carried_params(
    ran: Mapping[str, Any],
    space: Mapping[str, Param],
    trained: Callable[[], Mapping[str, Any]],
    ours: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    task: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of `space` a trial that ran with `ran` gives, and why each other parameter is left out.

    A value carries over where this space can take one equal to it (1 == 1.0, in lists too), spelt as this
    space spells it; a section searched whole, where a choice gives the section the trial trained
    (`_section_taken`). A parameter this space searches as a whole list or section where the trial set its
    items (`model.hidden` for `model.hidden.0`), or item by item where it set the whole list, takes the value
    the trial trained there: `trained()`, every path of the trial's run config (`leaf_values`) and each
    section whole. Where the trial trained this study's data and `task` is every trial's task here, a loss
    `auto` is the loss it stands for there (`{name: cross_entropy}` is the choice `{name: auto}`).
    Where the trial set a whole list or section of which this space searches only parts, the parts it does
    not search that `ours(params)` (the same paths of the config this study trains with them) gives otherwise
    are left out too (`optimizer.momentum` of a chosen {name: sgd, momentum: 0.9}); so are the keys below a
    section searched whole whose value is left out, which the sampler's choice of it may not take.

    Returns:
        `({path: value}, {parameter: why it is left out})`, a parameter named as the trial or this space
        names it.
    """
    trained = cache(trained)

    @cache
    def same_task() -> str | None:
        """`task`, where the trial trained this study's data (however much of it)."""

        def data(values: Mapping[str, Any]) -> Any:
            section = values.get("data")
            return {k: v for k, v in section.items() if k != "subset_fraction"} if section else None

        theirs = data(trained())
        return task if task is not None and theirs is not None and theirs == data(ours({})) else None

    def as_trained(path: str) -> bool:
        """Whether `path` is a section this space searches whole, compared as the trial trained it (its
        choice, and the keys its study searched below it)."""
        return path in SECTIONS and path in trained()

    params, left_out = _carried_as_set(ran, space, as_trained, same_task)
    more, missed = _carried_as_trained(ran, space, as_trained, trained, same_task)
    params.update(more)
    left_out.update(missed)
    for path in [p for p in params if _below_left_out(p, space, left_out)]:  # the sampler's section may not
        del params[path]  # take it (adam for optimizer.momentum)
        left_out[path] = f"left out with {path.partition('.')[0]}, which it lies in"
    left_out.update(_unsearched_left_out(ran, space, trained, ours, params))
    return params, left_out


def _carried_as_set(
    ran: Mapping[str, Any],
    space: Mapping[str, Param],
    as_trained: Callable[[str], bool],
    same_task: Callable[[], str | None],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values the trial set of the parameters this space searches as they are, and why each other of
    them is left out."""
    params: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for name, value in ran.items():
        if name in space and not as_trained(name):
            taken = _taken(name, value, space, same_task())
            if taken:
                params[name] = taken[0]
            else:
                left_out[name] = f"{format_choice(value)} {_outside(space[name], value)}"
    return params, left_out


def _outside(p: Param, value: Any) -> str:
    """Why a trial's `value` does not carry over to the parameter `p`, said of the value: it lies outside this
    space, or, within a stepped range, between two of its steps (it said 12 "lies outside this space" of
    [8, 32], step 8, which holds 8 and 16 on either side of it)."""
    near = step_neighbours(p, value)
    if near is None or isinstance(p, CategoricalParam):
        return "lies outside this space"
    return (
        f"is not on this space's step {format_choice(p.step or 1)} from {format_choice(p.low)}, between "
        f"{format_choice(near[0])} and {format_choice(near[1])}"
    )


def _carried_as_trained(
    ran: Mapping[str, Any],
    space: Mapping[str, Param],
    as_trained: Callable[[str], bool],
    trained: Callable[[], Mapping[str, Any]],
    same_task: Callable[[], str | None],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values the trial trained of the parameters this space searches as a whole where the trial set
    parts of them, or in parts where it set them whole (and sections compared as trained), and why each
    other of them is left out."""
    params: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for path in space:
        related = [name for name in ran if name == path or _nested(name, path)]
        if not related or (path in ran and not as_trained(path)):
            continue
        values = trained()
        taken = _taken(path, values[path], space, same_task()) if path in values else []
        if taken:
            params[path] = taken[0]
        elif path in values:
            left_out[path] = (
                f"the trial's {', '.join(related)} gave it {format_choice(values[path])}, which "
                f"{_outside(space[path], values[path])}"
            )
        elif values:  # read, without this path: an sgd-only key where the trial chose adam, say
            left_out[path] = f"the trial's {', '.join(related)} gave it no value"
        else:
            left_out[path] = f"the trial has {', '.join(related)}, and no stored run config to read it from"
    return params, left_out


def _unsearched_left_out(
    ran: Mapping[str, Any],
    space: Mapping[str, Param],
    trained: Callable[[], Mapping[str, Any]],
    ours: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    params: Mapping[str, Any],
) -> dict[str, str]:
    """Why each parameter of the trial this space does not search is left out, and each part of a list or
    section the trial set whole, of which this space searches only parts, that this study trains otherwise."""
    left_out: dict[str, str] = {}
    for name in ran:
        below = [path for path in space if path.startswith(f"{name}.")]
        if name not in space and not any(_nested(name, path) for path in space):
            left_out[name] = "not searched here"
        elif name not in space and below and name in trained():
            theirs, mine = trained()[name], ours(params).get(name, _NONE)
            if name in SECTIONS and isinstance(mine, dict):  # as built: an argument at its default is none
                theirs, mine = configured_section(name, theirs), configured_section(name, mine)
            left_out.update(_unsearched_parts(name, below, theirs, mine))
    return left_out


_NONE = object()  # a key or list item a value does not have


def _unsearched_parts(name: str, searched: list[str], theirs: Any, ours: Any) -> dict[str, str]:
    """The keys (or items) of the list or section `name` that the trial trained as `theirs` and this study,
    searching only `searched` inside it, trains otherwise (`ours`), each with why it is left out."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        keys: list[Any] = [*theirs, *(k for k in ours if k not in theirs)]
    elif isinstance(theirs, list) and isinstance(ours, list):
        keys = list(range(max(len(theirs), len(ours))))
    else:
        return {}
    out: dict[str, str] = {}
    for key in keys:
        path = f"{name}.{key}"
        a, b = _part(theirs, key), _part(ours, key)
        if any(path == s or _nested(path, s) for s in searched) or (
            a is not _NONE and b is not _NONE and equal_in_value(a, b)
        ):
            continue
        out[path] = f"the trial's {name} had {_shown(a)}, this study's has {_shown(b)}: not searched here"
    return out


def _part(value: dict[str, Any] | list[Any], key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key, _NONE)
    return value[key] if key < len(value) else _NONE


def _shown(value: Any) -> str:
    return "none" if value is _NONE else format_choice(value)


def _taken(path: str, value: Any, space: Mapping[str, Param], task: str | None) -> list[Any]:
    """`value` as the parameter `path` of `space` spells it (`taken_as`), a section by `_section_taken`."""
    p = space[path]
    if path in SECTIONS and isinstance(p, CategoricalParam) and isinstance(value, dict):
        return _section_taken(path, value, p, space, task)
    return taken_as(p, value)


def _section_taken(
    path: str, value: dict[str, Any], p: CategoricalParam, space: Mapping[str, Param], task: str | None
) -> list[Any]:
    """The choice of the section `path` that gives the section `value` does, in a one-item list: equal as
    `configured_section` gives them (`{name: adam}` is `{name: adam, lr: 0.001}`, `{name: sgd}` is
    `{name: sgd, momentum: 0.0}`, and on data of `task` a loss `auto` is the loss it stands for), apart from
    the keys this space searches below it (`optimizer.lr`), which apply after the choice."""
    below = {name.split(".")[1] for name in space if name.startswith(f"{path}.")}

    def key(section: Mapping[str, Any]) -> dict[str, Any]:
        built = as_trained(path, configured_section(path, section), task)
        return {k: v for k, v in built.items() if k not in below}

    try:
        theirs = key(value)
    except ValidationError:
        return []
    return [c for c in p.choices if isinstance(c, dict) and equal_in_value(key(c), theirs)][:1]


def _below_left_out(path: str, space: Mapping[str, Param], left_out: Mapping[str, str]) -> bool:
    """Whether `path` lies in a section this space searches whole and the trial's choice of it is left out."""
    section = path.partition(".")[0]
    return section != path and section in SECTIONS and section in space and section in left_out


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
        f"--enqueue-from {source}: left out of its best trials (the sampler picks those this study searches, "
        "its run config sets the rest): "
        f"{', '.join(parts)}"
    )


def short_of_top_note(
    source: str, top: int, queued: int, ranked: int, complete: int, top_given: bool
) -> str | None:
    """One line saying why `--top top` queued only `queued` points from study `source`, which has `complete`
    complete trials, `ranked` of them meeting its constraints (`with_warm_start` reads each of those when it
    queues fewer than `top`); None where it queued `top`. `top_given`: the user gave --top (else `top` is
    its default)."""
    if queued >= top:
        return None
    why = []
    if ranked < top:
        trials = f"{ranked} complete trial{'' if ranked == 1 else 's'}"
        meeting = f" that meet its constraints (of {complete} complete)" if ranked < complete else ""
        why.append(f"{source!r} has only {trials}{meeting}")
    if ranked > queued:
        n = ranked - queued
        why.append(
            f"{n} of {'them' if ranked < top else f'its {ranked} complete trials'} gave no point inside this "
            f"space, or one queued already"
        )
    if not top_given:  # the note named a "--top 5" the user never typed
        return f"--enqueue-from {source}: queued {queued} of its best trials, not {top} (--top's default): {'; '.join(why)}"
    return f"--top {top}: queued {queued} of the best trials of {source!r}, not {top}: {'; '.join(why)}"


def same_draws_note(ours: Mapping[str, Any], source: str, theirs: Mapping[str, Any]) -> str | None:
    """One line where a new study warm-started from study `source` samples as `source` did: the same
    sampler, seed and search space (`ours` and `theirs`: the two optimize configs, as JSON). Its sampler then
    draws `source`'s values again, in order, after the queued points (the first of them `source`'s first
    trials, which the warm start may have queued already); None otherwise, or when neither is seeded."""
    kwargs = ours.get("sampler", {}).get("kwargs", {})
    seed = kwargs.get("seed", ours.get("seed"))
    if not theirs or seed is None:
        return None
    if any(theirs.get(k) != ours.get(k) for k in ("seed", "sampler", "search_space")):
        return None
    fix = "set another sampler.kwargs.seed" if "seed" in kwargs else f"give --seed {seed + 1} (or another)"
    return (
        f"this study samples as {source!r} did (the same sampler, seed {seed} and search space), so after the "
        f"warm start it draws the trials of {source!r} again, in order: {fix} to draw new values"
    )
