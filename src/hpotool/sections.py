"""A whole RunConfig section as a categorical choice: `optimizer: {type: categorical, choices: [{name: sgd,
lr: 0.1, momentum: 0.9}, {name: adam}]}`, or among whole `trainer: {function: ...}` sections.

A choice replaces the section, as if the run config spelled it so: keys the choice leaves out take the
section's defaults, not the run config's values. Searched keys below the section (`optimizer.lr`) apply
after it (`apply_overrides` sets the shallowest path first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from hpotool.components import auto_loss, component_default
from hpotool.conditions import all_hold, equal_in_value
from hpotool.config import RunConfig
from hpotool.config_errors import error_lines, keep_validator_context
from hpotool.config_fields import CHECK_COMPONENTS
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.param_values import contains
from hpotool.run_sections import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainerConfig,
)
from hpotool.search_space import CategoricalParam, Param

SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "scheduler": SchedulerConfig,
    "loss": LossConfig,
    "trainer": TrainerConfig,
}


def section_choices(space: Mapping[str, Param]) -> dict[str, list[dict[str, Any]]]:
    """The sections `space` searches whole, with their choices (`{"optimizer": [{name: sgd, ...}, ...]}`)."""
    return {
        path: [c for c in p.choices if isinstance(c, dict)]
        for path, p in space.items()
        if path in SECTIONS and isinstance(p, CategoricalParam)
    }


def switchable(space: Mapping[str, Param]) -> dict[str, list[str]]:
    """The components each section's search may switch to: a searched `optimizer.name`'s choices, and the
    names of the whole `optimizer` sections it may choose."""
    out: dict[str, list[str]] = {
        path.partition(".")[0]: [str(c) for c in p.choices]
        for path, p in space.items()
        if isinstance(p, CategoricalParam) and path.count(".") == 1 and path.endswith(".name")
    }
    for section, choices in section_choices(space).items():
        if "name" not in SECTIONS[section].model_fields:  # trainer: a function, no component
            continue
        default = SECTIONS[section].model_fields["name"].default
        out[section] = [*out.get(section, []), *(str(c.get("name", default)) for c in choices)]
    return out


def as_section(path: str, choice: Mapping[str, Any]) -> dict[str, Any]:
    """The section a choice of `path` gives: its keys, and the section's defaults for those it leaves out."""
    return SECTIONS[path].model_validate(choice).model_dump()


def section_values(run: RunConfig) -> dict[str, dict[str, Any]]:
    """Each section of `run` as a whole (`{"optimizer": {name: adam, lr: 0.001, ...}, ...}`)."""
    return {path: section.model_dump() for path in SECTIONS if (section := getattr(run, path)) is not None}


def check_section_param(
    path: str,
    param: Param,
    run: RunConfig,
    task: str | None = None,
    space: Mapping[str, Param] | None = None,
) -> None:
    """Raise `HpoError` unless `param` searches the section `path` as whole sections, each a mapping that
    validates as that section (its component resolves and takes its arguments), no two alike: building one
    section, once the keys `space` searches below it in every trial that draws them replace theirs, or
    (`task`: every trial's data is of that task) one loss there (`auto` and `cross_entropy` on
    classification).

    Raises:
        HpoError: `search_space.optimizer.choices.1: ...`, naming the choice and its bad key.
    """
    if path == "trainer" and run.trainer is None:
        raise HpoError(
            f"search_space.{path}: the run config sets no trainer, so its trials train with hpotool's Trainer; "
            f"to choose among your training functions, set trainer: {{function: ...}} in the run config too"
        )
    if not isinstance(param, CategoricalParam):
        section = getattr(run, path).model_dump()
        keys = [f"{path}.{k}" for k in section if k not in ("name", "function")][:3] or [f"{path}.name"]
        raise HpoError(
            f"search_space.{path}: {path} is a section; search one of its keys ({', '.join(keys)}, ...) or give "
            f"whole sections as categorical choices ({{type: categorical, choices: [{format_choice(section)}, "
            f"...]}})"
        )
    model = SECTIONS[path]
    sections: list[dict[str, Any]] = []  # each choice as the section it gives, its defaults filled in
    for i, choice in enumerate(param.choices):
        where = f"search_space.{path}.choices.{i}"
        if not isinstance(choice, dict):
            key = "name" if "name" in model.model_fields else "function"
            example = format_choice({key: choice if isinstance(choice, str) else "..."})
            raise HpoError(
                f"{where}: {format_choice(choice)} is not a mapping: each choice of {path} is a whole section, "
                f"such as {example}; to choose only its {key}, search {path}.{key}"
            )
        try:
            model.model_validate(choice, context={CHECK_COMPONENTS: True})
        except ValidationError as exc:
            locs = {".".join(map(str, e["loc"])) for e in exc.errors() if e["loc"]}
            lines = [
                f"{where}.{line}" if line.partition(": ")[0] in locs else f"{where}: {line}"
                for line in error_lines(exc, model)
            ]
            keep_validator_context(exc)
            raise HpoError("; ".join(lines)) from None
        built = as_trained(path, configured_section(path, choice), task)
        sections.append({**built, **dict.fromkeys(_replaced(path, choice, space or {}), _SEARCHED)})
        _check_distinct(path, where, param.choices, sections, task)


_SEARCHED = object()  # a key of a chosen section that a key searched below it replaces


def _replaced(path: str, choice: dict[str, Any], space: Mapping[str, Param]) -> list[str]:
    """The keys of the section `path` that a key `space` searches below it (`optimizer.lr`) replaces in
    every trial that draws `choice`: one without a condition, or with one on the section alone that
    `choice` meets."""
    out = []
    for name, p in space.items():
        section, _, key = name.partition(".")
        when = p.when or {}
        if (
            section == path
            and key
            and "." not in key
            and set(when) <= {path}
            and all_hold(when, {path: choice})
        ):
            out.append(key)
    return out


def configured_section(path: str, choice: Mapping[str, Any]) -> dict[str, Any]:
    """The section a choice (or a run config's section) gives (`as_section`), without the arguments it sets
    to its component's default (`momentum: 0.0` for sgd): two that build one component are equal."""
    section = as_section(path, choice)
    model = SECTIONS[path]
    kind = getattr(model, "kind", None)
    if kind is None:  # trainer: a function hpotool calls with the section as it is
        return section
    name = str(section["name"])

    def is_default(arg: str, value: Any) -> bool:
        default = component_default(kind, name, arg)
        default = list(default) if isinstance(default, tuple) else default
        return default is not None and equal_in_value(value, default)

    return {k: v for k, v in section.items() if k in model.model_fields or not is_default(k, v)}


def choice_named(
    path: str,
    param: Param,
    value: Any,
    given: Mapping[str, Any] | None = None,
    space: Mapping[str, Param] | None = None,
) -> Any:
    """`value` of the parameter `path` as the choice it names: where `path` is a section searched whole and
    no choice is `value` itself, the choice that builds the same section (`configured_section`, as the check
    of alike choices compares them: `{name: adam, lr: 0.001, weight_decay: 0.0}` is the choice
    `{name: adam}`); `value` as it is where no choice builds its section.

    `given`: the other values of an enqueued set, and `space` the search space: a key the set gives below
    the section (`optimizer.lr: 0.05`, searched, its condition holding under the choice) replaces the
    choice's own, so the choice `{name: sgd, lr: 0.1, momentum: 0.9}` is the one the section `{name: sgd,
    lr: 0.05, momentum: 0.9}` names there (where the section leaves lr out or says 0.05 too)."""
    if not (path in SECTIONS and isinstance(param, CategoricalParam) and isinstance(value, dict)):
        return value
    if contains(param, value):
        return value
    built = _built(path, value)
    if built is None:
        return value
    below = {
        name.partition(".")[2]: v
        for name, v in (given or {}).items()
        if name.startswith(f"{path}.") and "." not in name.partition(".")[2] and name in (space or {})
    }
    below = {k: v for k, v in below.items() if k not in value or equal_in_value(value[k], v)}
    choices = [
        (c, theirs) for c in param.choices if isinstance(c, dict) and (theirs := _built(path, c)) is not None
    ]
    same = next((c for c, theirs in choices if equal_in_value(theirs, built)), None)
    if same is not None or not below:
        return value if same is None else same
    for c, theirs in choices:
        replaced = [
            k for k in below if all_hold((space or {})[f"{path}.{k}"].when or {}, {**(given or {}), path: c})
        ]
        if equal_in_value(_without(theirs, replaced), _without(built, replaced)):
            return c
    return value


def _without(section: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in keys}


def _built(path: str, section: Mapping[str, Any]) -> dict[str, Any] | None:
    """`configured_section`, or None for a mapping that is no valid section (an unknown component)."""
    try:
        return configured_section(path, section)
    except (ValidationError, HpoError):
        return None


def as_trained(path: str, section: dict[str, Any], task: str | None) -> dict[str, Any]:
    """`section` as a trial on data of `task` trains it: the loss `auto` as the loss it stands for there."""
    if path == "loss" and task is not None and section.get("name") == "auto":
        return {**section, "name": auto_loss(task)}
    return section


def _check_distinct(
    path: str, where: str, choices: list[Any], sections: list[dict[str, Any]], task: str | None
) -> None:
    """Raise `HpoError` if the last of `sections` is an earlier one: two choices that differ only in keys
    one leaves at their default (`{name: adam}` and `{name: adam, lr: 0.001}`, `{name: sgd}` and
    `{name: sgd, momentum: 0.0}`), in keys a searched key below the section replaces (`lr` beside a searched
    `optimizer.lr`), or in a loss `auto` stands for on data of `task` (`{name: auto}` and `{name: cross_entropy}`
    on classification)."""
    i = len(sections) - 1
    same = next((j for j, section in enumerate(sections[:i]) if equal_in_value(section, sections[i])), None)
    if same is None:
        return
    a, b = choices[same], choices[i]
    searched = [k for k, v in sections[i].items() if v is _SEARCHED]
    name = SECTIONS[path].model_fields["name"].default if "name" in SECTIONS[path].model_fields else None
    # equal as trained with another name: one is the loss auto, the other the loss it stands for
    auto = path == "loss" and "name" not in searched and a.get("name", name) != b.get("name", name)
    replaced = [k for k in searched if not equal_in_value(a.get(k, _SEARCHED), b.get(k, _SEARCHED))]
    defaults = {
        k: (a if k in a else b)[k]
        for k in [*a, *b]
        if (k in a) != (k in b) and k not in searched and not (auto and k == "name")
    }
    head = f"{where}: {format_choice(b)} is the section choices.{same} gives ({format_choice(a)})"
    if replaced:
        keys = " and ".join(replaced)
        paths = " and ".join(f"{path}.{k}" for k in replaced)
        head += f" but for {keys}, which {paths}, searched in every trial of both, replace{'s' * (len(replaced) == 1)}"
    why = (
        [f"{'and ' if replaced else 'which '}leaves {format_choice(defaults)} at its default"]
        if defaults
        else []
    )
    if auto and task is not None:
        why.append(
            f"{'and ' if why or replaced else 'since '}the loss auto is {auto_loss(task)} on this {task} task"
        )
    raise HpoError(
        f"{', '.join([head, *why])}: one configuration under two labels, which a study would train as two; keep one"
    )
