"""The search space checked against the run config before trial 0: every path exists, every value (and
every pair of values that only work together) gives a config that validates, and, with the data at hand,
components that build and train one step. Each refusal names the optimize config's key and the fix.

`check_space` runs each searched parameter's checks (`condition_checks`, `argument_checks`, `space_effects`)
and tries each of its values in each context a trial may give it (`value_checks`): the components it may
meet, and the searched datasets (or models, for the smallest batch) it may be paired with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpotool.argument_checks import COMPONENT_SECTIONS, check_component_takes, component_choices
from hpotool.components import (
    AUTO_LOSS_FIX,
)
from hpotool.condition_checks import (
    check_condition_paths,
    check_section_operands,
    condition_values,
    conditioned_on,
)
from hpotool.conditions import all_hold
from hpotool.config import (
    OptimizeConfig,
    RunConfig,
)
from hpotool.data import PreparedData
from hpotool.errors import HpoError
from hpotool.formatting import format_choice, format_params
from hpotool.overrides import apply_overrides, check_path, config_paths, leaf_values
from hpotool.param_values import boundary_values
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param
from hpotool.sections import SECTIONS, check_section_param, switchable
from hpotool.space_effects import (
    SPLIT_PATHS,
    auto_task,
    check_auto_loss_name,
    check_layer_option_is_used,
    check_lr_is_used,
    check_one_split,
    check_project_is_used,
    check_width_is_used,
)
from hpotool.value_checks import SIZES, Searched, check_value


def _check_list_item(path: str, fixed: Mapping[str, Any]) -> None:
    """`model.hidden.0` needs `model.hidden` to be a list (set_path would turn a number into a mapping)."""
    parent, _, last = path.rpartition(".")
    if last.isdigit() and parent in fixed and not isinstance(fixed[parent], list):
        raise HpoError(
            f"search_space.{path}: {parent} is {format_choice(fixed[parent])}, not a list; search {parent} itself, "
            f"or write it as a list ({format_choice([fixed[parent]])}) in the run config"
        )


def _check_item_order(path: str, opt: OptimizeConfig, fixed: Mapping[str, Any]) -> None:
    """`model.hidden.2` past the end of the run config's list needs the items before it set first, as a
    trial sets them in the order written: one searched below it is named, to move above it (it said "search
    its items in order (model.hidden.1 adds one)" where model.hidden.1 was searched, a line below)."""
    parent, _, last = path.rpartition(".")
    if not last.isdigit() or not isinstance(fixed.get(parent), list) or int(last) <= len(fixed[parent]):
        return
    names = list(opt.search_space)
    below = names[names.index(path) + 1 :]
    later = next(
        (f"{parent}.{i}" for i in range(len(fixed[parent]), int(last)) if f"{parent}.{i}" in below), None
    )
    if later is not None:
        raise HpoError(
            f"search_space.{path}: {later} is searched below it, but a trial sets {parent}'s items in the order "
            f"written, and the run config's list has {len(fixed[parent])}; move {later} above {path}"
        )


def _earlier_items(path: str, opt: OptimizeConfig) -> dict[str, Any]:
    """For a list item, the searched items of the same list suggested before it (at their first value):
    model.hidden.3 exists only once model.hidden.2 does."""
    parent, _, last = path.rpartition(".")
    out: dict[str, Any] = {}
    if not last.isdigit():
        return out
    for other, earlier in opt.search_space.items():
        if other == path:
            break
        other_parent, _, other_last = other.rpartition(".")
        if other_parent == parent and other_last.isdigit():
            out[other] = boundary_values(earlier)[0]
    return out


def check_space(run: RunConfig, opt: OptimizeConfig, data: PreparedData | None, source: str) -> None:
    """Before any trial runs: every path exists, and every bound or choice gives a RunConfig that
    validates and whose components build.

    Raises:
        HpoError: one line per searched key that fails, in the order of the keys (a key's first failing
            check: the checks after it read what it refused); the checks across keys only where none did.
    """
    conditions = [cond for param in opt.search_space.values() for cond in param.when or {}]
    valid = config_paths(run, switchable(opt.search_space), wanted=[*opt.search_space, *conditions])
    fixed = leaf_values(run)
    failed: dict[str, str] = {}
    raised: dict[str, HpoError] = {}
    for path, param in opt.search_space.items():
        try:
            _check_param(run, opt, data, path, param, valid, fixed)
            _check_values(run, opt, data, path, param, fixed)
        except HpoError as exc:  # the key's later checks read what failed: the next key's are still told
            message = str(exc)
            if not message.startswith("search_space."):
                message = f"search_space.{path}: {message}"
            failed[path], raised[path] = message, exc
    told = [path for path in failed if not _told_by_another(path, failed)]
    if told:  # every key's mistake in one run, a line each, as pydantic's errors of a config are told
        error = HpoError("\n".join(f"{source}: {failed[path]}" for path in told))
        # --debug's traceback shows the first key's error (a user's module that raised at import in it)
        error.__context__, error.__suppress_context__ = raised[told[0]], True
        raise error
    _check_warmup_in_shortest_run(run, opt, source)


def _named_with(message: str) -> list[str]:
    """The searched values a key's refusal was tried beside (`with model.activation=tanhh, batch_size=32: `),
    as the text before each `=`."""
    message = message.partition(": ")[2] if message.startswith("search_space.") else message
    if not message.startswith("with ") or ": " not in message:
        return []
    return [part.partition("=")[0].strip() for part in message[5:].partition(": ")[0].split(", ")]


def _told_by_another(path: str, failed: Mapping[str, str]) -> bool:
    """Whether `path`'s refusal came from another failing key's value it was tried beside (batch_size beside
    model.activation=tanhh): that key's own line tells it, with its fix, and the pair's would repeat it
    under a key that has no mistake. Two keys refused as the same pair (data.name beside data.noise, and
    data.noise beside data.name) are told once, by the first; a line of a failing key's own check, which
    another key met, is told under that key alone."""
    keys = list(failed)
    if any(failed[path].startswith(f"search_space.{other}:") for other in keys if other != path):
        return True  # a check of another key's, which failed on its own (model.hidden.2 above model.hidden.1)
    return any(
        other != path
        and other in failed
        and (path not in _named_with(failed[other]) or keys.index(other) < keys.index(path))
        for other in _named_with(failed[path])
    )


def _extremes(param: Param | None) -> tuple[int, int] | None:
    """The least and the most of an int parameter (a range, or a categorical's whole-number choices)."""
    if isinstance(param, IntParam):
        return param.low, param.high
    if isinstance(param, CategoricalParam):
        whole = [c for c in param.choices if isinstance(c, int) and not isinstance(c, bool)]
        return (min(whole), max(whole)) if whole else None
    return None


def _check_warmup_in_shortest_run(run: RunConfig, opt: OptimizeConfig, source: str) -> None:
    """A searched `scheduler.warmup_epochs` beside a searched `epochs`: each is tried beside the other's run
    config value, so a warm-up of 1 epoch and a run of 1 epoch, each fine alone (the run config's 2 epochs,
    its warm-up of 0), failed every trial that drew both ("warmup_epochs: 1 is not shorter than the run"),
    trial 0 among them. Left alone where a condition may keep the two apart."""
    warmup, epochs = opt.search_space.get("scheduler.warmup_epochs"), opt.search_space.get("epochs")
    warmups, runs = _extremes(warmup), _extremes(epochs)  # (least, most) of each
    if warmup is None or epochs is None or warmup.when or epochs.when or warmups is None or runs is None:
        return
    most, least = warmups[1], runs[0]  # the longest warm-up, the shortest run
    try:
        apply_overrides(run, {"epochs": least, "scheduler.warmup_epochs": most})
    except HpoError:
        if _fails_alone(run, {"epochs": least}) or _fails_alone(run, {"scheduler.warmup_epochs": most}):
            return  # its own check says so
        raise HpoError(
            f"{source}: search_space.scheduler.warmup_epochs: reaches {most} where search_space.epochs goes down "
            f"to {least}: a trial drawing both would fail, its warm-up not shorter than the run; search "
            f"warmup_epochs up to {least - 1}, or epochs from {most + 1}"
        ) from None


def _check_param(
    run: RunConfig,
    opt: OptimizeConfig,
    data: PreparedData | None,
    path: str,
    param: Param,
    valid: set[str],
    fixed: Mapping[str, Any],
) -> None:
    """The checks of the parameter `path` itself: its path exists, its conditions read what they can, and
    the search can learn from it."""
    _check_list_item(path, fixed)
    _check_item_order(path, opt, fixed)
    if path.startswith("loss.") and path not in valid and run.loss.name == "auto":
        raise HpoError(
            f"loss 'auto' takes no arguments; {AUTO_LOSS_FIX.format(arg=path.partition('.')[2])} in "
            f"the run config"
        )
    if path in SECTIONS:
        check_section_param(path, param, run, auto_task(run, opt, data), opt.search_space)
    else:
        if path not in valid:  # an argument of the component only a condition that never holds asks for
            check_condition_paths(path, param, opt, valid)
            condition_values(param, opt, fixed, path)
            check_component_takes(path, run, opt)
        check_path(path, valid)
    if path == "loss.name" and run.trainer is None:
        check_auto_loss_name(param, run, opt, auto_task(run, opt, data))
    if path in SPLIT_PATHS and run.trainer is None:
        raise HpoError(SPLIT_PATHS[path].format(metrics=" and ".join(opt.objectives)))
    if path == "data" and run.trainer is None:
        check_one_split(param, opt)
    check_condition_paths(path, param, opt, valid)
    check_section_operands(path, param, opt)
    check_width_is_used(path, run, opt)
    check_lr_is_used(path, run, opt)
    check_project_is_used(path, run)
    check_layer_option_is_used(path, run, opt)


def _check_values(
    run: RunConfig,
    opt: OptimizeConfig,
    data: PreparedData | None,
    path: str,
    param: Param,
    fixed: Mapping[str, Any],
) -> None:
    """Each value of `path` tried in each context a trial may give it, and beside each searched dataset (or
    model) a trial may pair it with."""
    # a conditional parameter is checked where it applies, a list item with the items before it
    context = {**_earlier_items(path, opt), **condition_values(param, opt, fixed, path)}
    values = _values_to_try(param)
    contexts = component_choices(path, param, opt, context)
    trains = data is not None and (path.partition(".")[0] in (*COMPONENT_SECTIONS, "data") or path in SIZES)
    smallest = _smallest_batch(values) if path == "batch_size" else None
    searched = Searched(run, opt, data, path, param, contexts, fixed)
    for context, value in [(c, v) for c in contexts for v in values]:
        # the smallest batch meets every searched model too: batch norm trains on no batch of one
        paired = ("data", "model") if smallest is not None and value == smallest else ("data",)
        datasets, always = (
            _data_contexts(path, param, value, context, opt, fixed, paired) if trains else ([], False)
        )
        try:
            _check_in_context(searched, value, context)
        except HpoError:
            if not always:  # the run config's data meets this value in some trial
                raise
        for label, extra in datasets:  # and so does each searched dataset a trial may pair it with
            _check_paired(searched, value, context, label, extra)


def _values_to_try(param: Param) -> list[Any]:
    """A parameter's bounds or choices, and for a float range a value inside it: an integer field takes
    32.0, not 41.3."""
    values = boundary_values(param)
    if isinstance(param, FloatParam) and param.step is None:
        inside = float(f"{param.low + (param.high - param.low) * 0.382:.3g}")
        values.append(min(max(inside, param.low), param.high))
    return values


def _check_paired(
    s: Searched, value: Any, context: dict[str, Any], label: str, extra: dict[str, Any]
) -> None:
    """`s.path` at `value` beside the searched value `extra` (named `label`) a trial may pair it with.

    Raises:
        HpoError: naming the pair once, with how to search the two apart; not where the paired value fails
            whatever `s.path` is, which its own check reports.
    """
    path, opt = s.path, s.opt
    try:
        _check_in_context(s, value, {**extra, **context})
    except HpoError as exc:
        if _fails_alone(s.run, {**context, **extra}):
            return  # the paired value fails whatever `path` is: its own check says so
        # The line names the pair once: apply_overrides names every value it was given (a
        # combination that fails only together, data.noise beside data.name=digits: "with
        # data.noise=0.1, data.name=digits: "), the other checks `path`'s alone.
        message, shown = str(exc), {path: value}
        together = f"with {format_params({**extra, **context, path: value})}: "
        if message.startswith(together):
            message, shown = message.removeprefix(together), {**context, path: value}
        message = message.removeprefix(f"with {format_params({path: value})}: ")
        other = label.partition("=")[0]
        # data.name checked first (above data.noise, say): the fix is the other's, a when on it
        hint = (
            _pair_hint(other, path, opt, message, named=True)
            if path in ("data.name", "data")
            else _pair_hint(path, other, opt, message)
        )
        raise HpoError(f"with {label}, {format_params(shown)}: {message}{hint}") from None


def _check_in_context(s: Searched, value: Any, context: dict[str, Any]) -> None:
    """`check_value`, or where that fails, again with the parameters a trial picking `value` sets too."""
    try:
        check_value(s, value, context)
    except HpoError as exc:
        # A trial that picks `value` also sets the parameters conditioned on it (scheduler.mode
        # when: {scheduler.monitor: val_accuracy}): the value is fine where they make it so.
        later = conditioned_on(s.path, value, context, s.opt, s.fixed)
        if not later:
            raise
        try:
            check_value(s, value, {**context, **later})
        except HpoError:
            raise exc from None


def _fails_alone(run: RunConfig, params: dict[str, Any]) -> bool:
    """Whether the other searched values a value is paired with give a RunConfig that does not validate
    without it (model.dropout=null beside batch_size=32): the fault is theirs, which their own check reports
    under their key, with its fix; batch_size's said "search_space.batch_size: with model.dropout=null,
    batch_size=32: with model.dropout=null, batch_size=32: model: ...", no fix."""
    try:
        apply_overrides(run, params)
    except HpoError:
        return True
    return False


def _smallest_batch(values: list[Any]) -> Any:
    """The smallest of a searched batch_size's values (a categorical's may be strings, "32"), or None."""
    sizes = [v for v in values if str(v).isdigit()]
    return min(sizes, key=int) if sizes else None


def _data_contexts(
    path: str,
    param: Param,
    value: Any,
    context: Mapping[str, Any],
    opt: OptimizeConfig,
    fixed: Mapping[str, Any],
    sections: tuple[str, ...] = ("data",),
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The searched data a trial with `path` at `value` (and `context`) may train on, as (label, values)
    pairs: each value of each other searched data.* parameter that can apply there, with the values its
    condition reads. And whether one of them always applies there, so the run config's data never meets
    `value` (mse beside a regression dataset under the same condition). `sections` ("data", "model") pairs
    it with the searched model keys too (the smallest batch_size: batch norm cannot train on one sample)."""
    out: list[tuple[str, dict[str, Any]]] = []
    always = False
    for other, p in opt.search_space.items():
        if other == path or other.partition(".")[0] not in sections or other in context:
            continue
        try:
            needs = condition_values(p, opt, fixed, other)
        except HpoError:  # a condition that never holds: its own check says so
            continue
        if path in needs:  # its own check pairs it with `value` (and conditioned_on pairs `value` with it)
            continue
        where = {**fixed, **needs, **context, path: value}
        if not all_hold(p.when or {}, where) or not all_hold(param.when or {}, where):
            continue  # `context` reads what its condition reads otherwise: not in the same trial
        always = always or all_hold(p.when or {}, {**fixed, **context, path: value})
        shown = {k: v for k, v in needs.items() if k not in context}
        when = f" (when {format_params(shown)})" if shown else ""
        out += [(f"{format_params({other: v})}{when}", {**needs, other: v}) for v in boundary_values(p)]
    return out, always


def _pair_hint(path: str, other: str, opt: OptimizeConfig, message: str = "", *, named: bool = False) -> str:
    """How to search `path` only with the datasets it fits, when `other` is the searched dataset (its name
    or the whole data section); or, for a batch of one that a searched model's batch norm cannot train on
    (`message` says so), how to search the two apart. `named`: the line is `other`'s (listed above
    `path`, it was checked first), so the fix names `path` rather than saying "it"."""
    if path == "batch_size" and other.partition(".")[0] == "model" and "batch norm" in message:
        return (
            f" (a trial may pair any batch_size with any {other}: search batch_size from 2, or search {other} "
            f"below batch_size with when: {{batch_size: {{ge: 2}}}})"
        )
    if other not in ("data.name", "data"):
        return ""
    names = list(opt.search_space)
    before = names.index(path) < names.index(other)  # a condition reads earlier parameters only
    it = path if named else "it"
    fix = f"put {it} below {other} with a when: on {other}" if before else f"give {it} a when: on {other}"
    return (
        f" (a trial may pair any {path} value with any dataset: to search it only with those it fits, {fix})"
    )
