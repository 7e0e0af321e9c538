"""A searched component argument (`optimizer.momentum`) checked against the components that take it: the run
config's, each searched name's or whole section's; the contexts (each component a trial may switch to) its
values are tried in, and the hints that say which component takes it or that it takes whole numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from hpotool.components import (
    Kind,
    component_default,
    component_kwargs,
)
from hpotool.conditions import holds
from hpotool.config import (
    OptimizeConfig,
    RunConfig,
)
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.near_names import closest
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    Param,
)
from hpotool.sections import SECTIONS
from hpotool.signatures import ARGUMENT_SYNONYMS

COMPONENT_SECTIONS: tuple[Kind, ...] = ("model", "optimizer", "scheduler", "loss")


def whole_number_hint(path: str, param: Param, run: RunConfig, fixed: Mapping[str, Any]) -> str:
    """For a float search of an argument the run config or the component's signature gives as an int (a
    user's model has no annotations hpotool checks): say to search it as an int."""
    if not isinstance(param, FloatParam):
        return ""
    if path in fixed:
        value, where = fixed[path], "in the run config"
    else:
        section, _, arg = path.partition(".")
        if section not in COMPONENT_SECTIONS or "." in arg:
            return ""
        value = component_default(section, str(getattr(run, section).name), arg)
        where = f"by default ({format_choice(value)})"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"; {path} is a whole number {where}: use type: int"
    return ""


def check_component_takes(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """Refuse `optimizer.momentum` where the run config's optimizer (adam) does not take it and the search
    picks no other: it said "the RunConfig has no such path; did you mean 'optimizer.name', 'optimizer.betas',
    'optimizer.maximize'?", names not close to it (maximize is refused), and not why or what takes it."""
    from hpotool.components import MANAGED, REGISTRIES

    section, _, key = path.partition(".")
    if section not in ("model", "optimizer", "scheduler", "loss") or not key or "." in key:
        return
    if key in MANAGED[cast("Kind", section)]:  # a schedule's last_epoch: check_path says why it is refused
        return
    if section in opt.search_space:
        return  # a search that switches the section: check_path's paths include each choice's arguments
    if f"{section}.name" in opt.search_space:
        _check_searched_names_take(path, opt.search_space[f"{section}.name"])
        return  # some searched name takes it: check_space tries it with each
    name = str(getattr(run, section).name)
    try:
        takes = component_kwargs(cast("Kind", section), name)
    except HpoError:
        return
    if key in takes:
        return
    if _takes_var_kwargs(cast("Kind", section), name):
        # it said "the run config has no such key; did you mean 'model.width', 'model.name'?": no fix
        from hpotool.near_names import edit_distance

        near = [t for t in closest(key, takes, n=1) if edit_distance(key, t) <= 2]  # not depth for width
        mean = f" (did you mean '{section}.{near[0]}'?)" if near else ""
        raise HpoError(
            f"search_space.{path}: {section} {name!r} takes **kwargs, whose keys hpotool cannot read from its "
            f"signature, and the run config's {section}: section sets no {key}{mean}; add {key}: <its default> "
            f"under {section}: in the run config, and the search may set it"
        )
    if not takes:  # no signature to read: the call itself checks
        return
    others = []
    for other in REGISTRIES[cast("Kind", section)]:
        try:
            if other != name and key in component_kwargs(cast("Kind", section), other):
                others.append(other)
        except HpoError:
            continue
    # A key another built-in takes is no typo (momentum is not a misspelt betas)
    synonym = ARGUMENT_SYNONYMS.get(key)
    if others:
        near = []
    elif synonym in takes:  # learning_rate for lr: closer in letters to amsgrad than to lr
        near = [f"{section}.{synonym}"]
    else:
        near = closest(path, [f"{section}.{t}" for t in takes], n=1)
    mean = f" (did you mean {near[0]!r}?)" if near else ""
    fix = (
        f"; {', '.join(others)} {'takes' if len(others) == 1 else 'take'} it: set {section}.name in the run "
        f"config, or search {section}.name with {path} under when: {{{section}.name: {others[0]}}}"
        if others
        else ""
    )
    raise HpoError(
        f"search_space.{path}: {section} {name!r} takes no argument {key!r}{mean}; it takes: {', '.join(takes)}{fix}"
    )


def _takes_var_kwargs(kind: Kind, name: str) -> bool:
    """Whether the component `name` takes `**kwargs` (a user's model passing its keys on to another)."""
    from hpotool.components import resolve_component
    from hpotool.signatures import accepted_kwargs

    try:
        return accepted_kwargs(resolve_component(kind, name))[1]
    except HpoError:
        return False


def _check_searched_names_take(path: str, names: Param) -> None:
    """Refuse `optimizer.momentum` where none of the searched `optimizer.name` choices (adam, adamw) takes
    it: check_path said "the RunConfig has no such path; did you mean 'optimizer.name', 'optimizer.betas',
    'optimizer.maximize'?", as if momentum were misspelt, not that sgd and rmsprop take it."""
    from hpotool.components import REGISTRIES

    section, _, key = path.partition(".")
    kind = cast("Kind", section)
    if not isinstance(names, CategoricalParam):
        return
    chosen = [str(c) for c in names.choices]
    for name in chosen:
        try:
            takes = component_kwargs(kind, name)
        except HpoError:
            return  # its own check says why
        if not takes or key in takes:  # **kwargs: anything goes
            return
    others = []
    for other in REGISTRIES[kind]:
        try:
            if other not in chosen and key in component_kwargs(kind, other):
                others.append(other)
        except HpoError:
            continue
    if not others:
        return  # no built-in takes it: check_path's "did you mean" for a typo
    listed, plural = ", ".join(chosen), f"{section}es" if section.endswith("s") else f"{section}s"
    raise HpoError(
        f"search_space.{path}: none of the searched {plural} ({section}.name: {listed}) takes {key!r}; "
        f"{', '.join(others)} {'takes' if len(others) == 1 else 'take'} it: add {others[0]} to "
        f"{section}.name's choices and search {path} under when: {{{section}.name: {others[0]}}}, or remove "
        f"{path}"
    )


def component_choices(
    path: str, param: Param, opt: OptimizeConfig, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """`context` once for each component a searched `section.name` may switch to, or else for each whole
    section a searched `section` may choose (those `param`'s condition on it allows): an argument checked
    with the base component alone failed, at run time, every trial that drew another (momentum with adam)."""
    section = path.partition(".")[0]
    name_path = f"{section}.name"
    names = opt.search_space.get(name_path)
    if section not in COMPONENT_SECTIONS or path == name_path or not isinstance(names, CategoricalParam):
        return _section_choices(path, param, opt, context)
    condition = (param.when or {}).get(name_path)
    if condition is None and name_path in context:  # set by the condition of a parameter `param` reads
        return [context]
    allowed = [c for c in names.choices if condition is None or holds(condition, c)]
    return [{**context, name_path: name} for name in allowed] or [context]


def _section_choices(
    path: str, param: Param, opt: OptimizeConfig, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """`context` once for each whole section a searched `section` may choose (those `param`'s condition on it
    allows): `optimizer.momentum` beside `optimizer: {choices: [{name: sgd}, {name: adam}]}` meets adam."""
    section = path.partition(".")[0]
    sections = opt.search_space.get(section)
    if path == section or section in context or not isinstance(sections, CategoricalParam):
        return [context]
    condition = (param.when or {}).get(section)
    allowed = [c for c in sections.choices if condition is None or holds(condition, c)]
    return [{**context, section: c} for c in allowed] or [context]


def taken_by_hint(path: str, contexts: list[dict[str, Any]]) -> str:
    """How to search an argument only with the searched components (or whole sections) that take it."""
    section, _, arg = path.partition(".")
    name_path = f"{section}.name"
    by_name = name_path in contexts[0]
    takers = []
    for context in contexts:
        chosen = context[name_path] if by_name else context[section]
        name = str(chosen if by_name else chosen.get("name", SECTIONS[section].model_fields["name"].default))
        try:
            kwargs = component_kwargs(cast("Kind", section), name)
        except HpoError:
            continue
        if not kwargs or arg.partition(".")[0] in kwargs:  # no names: it takes **kwargs
            takers.append(chosen)
    if not takers:
        return ""
    if not by_name:
        shown = ", ".join(map(format_choice, takers))
        return f"; search it only with the {section} sections that take it: when: {{{section}: {{in: [{shown}]}}}}"
    test = takers[0] if len(takers) == 1 else {"in": takers}
    shown = str(test).replace("'", "")  # YAML: {in: [sgd, rmsprop]}
    return f"; search it only with the {section}s that take it: when: {{{name_path}: {shown}}}"
