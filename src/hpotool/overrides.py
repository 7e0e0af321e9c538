"""Apply `{dotted path: value}` to a RunConfig, giving a new, validated RunConfig.

Paths follow the YAML: `optimizer.lr`, `model.dropout`, and list items by index (`model.hidden.1`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, cast

from hpotool.components import MANAGED, Kind, component_default, component_kwargs
from hpotool.config import RunConfig
from hpotool.config_errors import error_lines
from hpotool.config_fields import CHECK_COMPONENTS
from hpotool.errors import HpoError
from hpotool.formatting import format_params
from hpotool.near_names import closest

_SECTIONS: tuple[Kind, ...] = ("data", "model", "optimizer", "scheduler", "loss")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a copy of `value` at dotted `path` inside nested dicts and lists, creating missing dict keys (a
    copy: a later item path such as `model.hidden.0` must not rewrite the caller's list, a search space's
    choice)."""
    value = copy.deepcopy(value)
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                listed = ".".join(parts[:i])
                raise KeyError(
                    f"no list item {part!r} in {listed} (the list has {len(node)}); give {listed} "
                    f"more items in the run config, or search its items in order ({listed}.{len(node)} adds one)"
                )
            index = int(part)
            if index == len(node):
                node.append(copy.deepcopy(node[-1]) if node and not last else None)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):  # a list item starts a list
                    node[part] = [] if parts[i + 1].isdigit() else {}
                node = node[part]
        else:
            raise KeyError(f"{'.'.join(parts[:i])} is a value, not a section")


def apply_overrides(run: RunConfig, params: Mapping[str, Any], *, check_components: bool = True) -> RunConfig:
    """A new RunConfig: `run` with each dotted path set to its value, validated again
    (`check_components` as for `config_errors.validate_config`).

    Raises:
        HpoError: when a value does not fit the RunConfig, naming the path.
    """
    data = run.model_dump(mode="python", exclude_unset=False)
    # A path before the paths inside it, whatever the order given: a list choice model.hidden, then its
    # item model.hidden.0 (the other way round, the whole list would undo the item).
    for path, value in sorted(params.items(), key=lambda item: item[0].count(".")):
        _start_from_default(data, path)
        try:
            set_path(data, path, value)
        except KeyError as exc:
            raise HpoError(f"search_space.{path}: {exc.args[0]}") from None
    try:
        return RunConfig.model_validate(data, context={CHECK_COMPONENTS: check_components})
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        shown = format_params(params)
        raise HpoError(f"with {shown}: " + "; ".join(error_lines(exc, RunConfig))) from None


def _start_from_default(data: dict[str, Any], path: str) -> None:
    """`model.hidden.1` where the config leaves `hidden` at the component's default `(128,)`: start from a
    copy of that default list, so the items not searched keep their default values."""
    section, _, rest = path.partition(".")
    arg, _, item = rest.partition(".")
    node = data.get(section)
    if section not in _SECTIONS or not item.partition(".")[0].isdigit() or not isinstance(node, dict):
        return
    if arg not in node:
        default = component_default(section, str(node.get("name")), arg)
        if isinstance(default, list | tuple):
            node[arg] = list(default)


def _leaf_paths(value: Any, prefix: str) -> Iterable[str]:
    """Every key's path, and each list's and (below a section) each mapping's own, which a whole list or
    mapping choice sets (`model.hidden`, `trainer.opts`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_paths(v, f"{prefix}{k}.")
        if value and prefix.count(".") < 2:  # a section (model, trainer) is set key by key
            return
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaf_paths(v, f"{prefix}{i}.")
    yield prefix.rstrip(".")


def leaf_values(run: RunConfig) -> dict[str, Any]:
    """Every leaf of the config by dotted path (`{"optimizer.name": "adam", "model.hidden.0": 64, ...}`), and
    each list and (below a section) each mapping as a whole (`model.hidden`, `trainer.opts`)."""
    return leaves(run.model_dump(mode="python"))


def leaves(config: Mapping[str, Any]) -> dict[str, Any]:
    """`leaf_values` of a run config given as its data (a study's stored `run_config`)."""
    out: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            if value and prefix.count(".") >= 2:  # a mapping below a section: a value, as a list is
                out[prefix.rstrip(".")] = value
            for k, v in value.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(value, list):
            out[prefix.rstrip(".")] = value
            for i, v in enumerate(value):
                walk(v, f"{prefix}{i}.")
        else:
            out[prefix.rstrip(".")] = value

    walk(dict(config), "")
    return out


def config_paths(
    run: RunConfig, section_names: Mapping[str, Iterable[str]] | None = None, wanted: Iterable[str] = ()
) -> set[str]:
    """Every dotted path a search space may set.

    That is every key of the config (lists item by item), and every argument of each section's component,
    including the components a search may switch to (`section_names`: `{"optimizer": ["adam", "sgd"]}`).
    With a user's training function, when the config's keys hold every path in `wanted` the components are
    not imported to read their arguments (the built-in ones import torch, which the function may not use).
    """
    data = run.model_dump(mode="python")
    paths = set(_leaf_paths(data, ""))
    for section in _SECTIONS:  # a field a dump leaves out at its default (scheduler.monitor) is one too
        paths.update(f"{section}.{key}" for key in type(getattr(run, section)).model_fields)
    wanted = list(wanted)
    if run.trainer is not None and wanted and all(path in paths for path in wanted):
        return paths
    for section in _SECTIONS:
        names = {getattr(run, section).name, *((section_names or {}).get(section, ()))}
        for name in names:
            try:
                paths.update(f"{section}.{arg}" for arg in component_kwargs(section, str(name)))
            except HpoError:
                continue
    return paths


def check_path(path: str, valid: set[str]) -> None:
    """Raise `HpoError` unless `path` is settable, naming the closest valid paths."""
    if path in valid:
        return
    section, _, key = path.partition(".")
    managed = MANAGED.get(cast("Kind", section), {}).get(key)
    if managed is not None:  # a schedule's last_epoch: "no such path", though the schedule takes it
        raise HpoError(f"search_space.{path}: {section} argument {key!r} {managed}; remove it")
    parent, _, last = path.rpartition(".")
    if last.isdigit() and parent in valid:  # a new list item: model.hidden.2 when hidden has two items
        return
    same_key = sorted(v for v in valid if v.endswith(f".{path}"))  # `lr` for `optimizer.lr`
    near = list(dict.fromkeys([*same_key, *closest(path, sorted(valid), n=3)]))[:3]
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    if parent == "trainer" and "trainer.function" in valid and not near:
        # a training function reads its keys from config["trainer"]: none is known until the config sets it
        hint = (
            f"; a training function's keys are those the run config's trainer: section sets: add {last}: "
            f"<its default> under trainer:"
        )
    if parent == "trainer" and "trainer.function" not in valid:
        hint = _no_trainer_hint(last, valid)
    raise HpoError(f"search_space.{path}: the run config has no such key{hint}")


def _no_trainer_hint(key: str, valid: set[str]) -> str:
    """Why `trainer.KEY` is no path where the run config sets no `trainer:` section: a top-level key of
    hpotool's Trainer (`trainer.epochs`, as Lightning names its Trainer's settings), or a training function's
    key with no function; "did you mean 'trainer'?" pointed at the one key that cannot be searched so."""
    if key in valid:
        return f"; did you mean {key!r}? (hpotool's Trainer takes it at the top of the run config)"
    return (
        "; the run config has no trainer: section, whose keys are a training function's of yours (trainer: "
        "{function: mypkg.train:fit, alpha: 0.1}); hpotool's own Trainer takes its settings at the top of the "
        "run config (epochs, batch_size, grad_clip)"
    )
