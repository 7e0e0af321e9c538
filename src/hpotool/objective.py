"""A study from two configs: check everything before trial 0, then suggest -> override -> train -> report.

`prepare_study` validates the whole plan (paths, values, data, metric, components, sampler, pruner,
storage) and writes nothing; `run_study` opens the study and runs it, telling an observer what happens so
the CLI can draw it. Pruning happens here, not in the Trainer.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import warnings
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool import __version__, fingerprint
from hpotool.components import AUTO_LOSS_FIX, Kind, auto_loss, component_default, component_kwargs
from hpotool.conditions import all_hold, holds, satisfying_value
from hpotool.config import (
    CHECK_COMPONENTS,
    DataConfig,
    OptimizeConfig,
    PrunerConfig,
    RunConfig,
    load_optimize_config,
    load_run_config,
    validate_config,
)
from hpotool.errors import HpoError
from hpotool.factories import make_pruner, make_sampler
from hpotool.final import check_final
from hpotool.formatting import format_choice, format_params
from hpotool.interrupts import deferred, raise_dropped
from hpotool.overrides import apply_overrides, check_path, config_paths, leaf_values
from hpotool.resolve import closest, did_you_mean
from hpotool.runner import (
    MEASURES,
    PreparedData,
    RunCheckError,
    check_batch_size,
    data_failure,
    described,
    dry_run,
    load_checked,
    load_data,
    one_logit,
    resolve_device,
    train_run,
    unused_classes_note,
)
from hpotool.schedulers import HIGHER_IS_BETTER
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    Param,
    boundary_values,
    contains,
    decode_params,
    encode_params,
    same_value,
    suggest,
)
from hpotool.sections import SECTIONS, check_section_param, section_choices, section_values, switchable
from hpotool.stale import enqueue_owned
from hpotool.storage import make_storage, shown_url
from hpotool.trainer import EpochResult, NonFiniteLossError
from hpotool.warm_start import carried_params, left_out_note

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The user attr of a queued warm start: "enqueue" (the config's list) or "--enqueue-from".
WARM_START = "warm_start"
COMPONENT_SECTIONS: tuple[Kind, ...] = ("model", "optimizer", "scheduler", "loss")


class StudyObserver(Protocol):
    """What a display needs to follow a study. Every method must return quickly."""

    def study_started(self, study: optuna.Study, target: int | None, already_done: int) -> None: ...
    def trial_started(self, number: int, params: Mapping[str, Any], epochs: int) -> None: ...
    def epoch_ended(self, number: int, result: EpochResult) -> None: ...
    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


@dataclass(frozen=True)
class Overrides:
    """Command-line flags that override the configs; None leaves the config's value."""

    study_name: str | None = None
    storage: str | None = None
    n_trials: int | None = None
    timeout: float | None = None
    device: str | None = None
    seed: int | None = None
    allow_changed_config: bool = False


@dataclass
class StudyPlan:
    """Everything `run_study` needs, checked."""

    run: RunConfig
    opt: OptimizeConfig
    data: PreparedData | None  # None for a user's own training function
    sampler: BaseSampler
    pruner: BasePruner
    storage_url: str
    allow_changed_config: bool = False
    notes: tuple[str, ...] = ()  # what the checks decided for the user, printed before trial 0
    config_enqueue: int | None = None  # how many of opt.enqueue the config lists (None: all; the rest came
    # from --enqueue-from): a resume drops only the config's, so one without the flag keeps the others

    def warm_start_attrs(self, index: int) -> dict[str, Any]:
        """The user attrs of the trial queued for `opt.enqueue[index]`: where the point came from."""
        listed = self.config_enqueue is None or index < self.config_enqueue
        return {WARM_START: "enqueue" if listed else "--enqueue-from"}


def _with_overrides(run: RunConfig, opt: OptimizeConfig, o: Overrides) -> tuple[RunConfig, OptimizeConfig]:
    if o.device is not None:
        try:
            run = validate_config(RunConfig, {**run.model_dump(), "device": o.device}, "--device")
        except HpoError as exc:  # "--device: device: must be ...": the flag names the key
            raise HpoError(str(exc).replace("--device: device: ", "--device: ")) from None
    changes = {
        k: v
        for k, v in {
            "study_name": o.study_name,
            "storage": o.storage,
            "n_trials": o.n_trials,
            "timeout": o.timeout,
            "seed": o.seed,
        }.items()
        if v is not None
    }
    for key, value in changes.items():  # one at a time, so a refusal names its flag
        try:
            opt = validate_config(OptimizeConfig, {**opt.model_dump(), key: value}, "command line")
        except HpoError as exc:
            raise HpoError(
                str(exc).replace(f"command line: {key}: ", f"--{key.replace('_', '-')}: ")
            ) from None
    return run, opt


_NONE = object()


def _condition_values(
    param: Param, opt: OptimizeConfig, fixed: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """Values of the searched paths that make `param`'s conditions hold: of each referenced parameter's
    choices, or its bounds, middle and the value the condition implies, the first it can take that holds.

    Raises:
        HpoError: a condition that no value of its parameter, or the run config's fixed value (`fixed`, by
            path), satisfies: parameter `name` would never be set.
    """
    out = {}
    for path, condition in (param.when or {}).items():
        ref = opt.search_space.get(path)
        if ref is None:  # a fixed RunConfig value: the condition reads it as it is
            if not holds(condition, fixed.get(path)):
                unset = fixed.get(path) is None
                says = (
                    "does not set it (a condition reads no default)"
                    if unset
                    else f"sets it to {format_choice(fixed[path])}"
                )
                wanted = satisfying_value(condition)
                fix = (
                    f"set {path} in the run config, search it (above {name})"
                    if unset
                    else f"search {path} (above {name})"
                    + (
                        f", set it to {format_choice(wanted)} in the run config"
                        if holds(condition, wanted)
                        else ""
                    )
                )
                if (
                    isinstance(condition, list)
                    and not unset
                    and any(same_value(fixed[path], c) for c in condition)
                ):
                    fix = f"a list is one value (a list choice): for any of several, write {{in: {format_choice(condition)}}}"
                raise HpoError(
                    f"the condition {path}: {format_choice(condition)} never holds: {path} is not searched and the run config "
                    f"{says}, so {name} would never be set; {fix}, or change or drop the condition"
                )
            continue
        if isinstance(ref, CategoricalParam):
            candidates = list(ref.choices)
        else:
            middle = (ref.low + ref.high) / 2
            candidates = [ref.low, ref.high, round(middle) if isinstance(ref.low, int) else middle]
            candidates.append(satisfying_value(condition))
        value = next((c for c in candidates if contains(ref, c) and holds(condition, c)), _NONE)
        if value is _NONE:
            hint = ""
            if isinstance(condition, list) and any(contains(ref, c) for c in condition):
                # `when: {model.name: [rf, svc]}` reads as the one list value [rf, svc], not "any of them"
                hint = f"; a list is one value (a list choice): for any of several, write {{in: {format_choice(condition)}}}"
            raise HpoError(
                f"the condition {path}: {format_choice(condition)} never holds for {path}'s values, so it would never be set{hint}"
            )
        # a conditional parameter has a value only where its own conditions hold (sgd for momentum)
        out.update({**_condition_values(ref, opt, fixed, path), path: value})
    return out


def _whole_number_hint(path: str, param: Param, run: RunConfig, fixed: Mapping[str, Any]) -> str:
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


def _check_width_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """The built-in MLP uses the first `layers` widths of `hidden`: a searched width beyond them would be
    suggested, stored and never trained."""
    section, _, rest = path.partition(".")
    key, _, index = rest.partition(".")
    if section != "model" or key != "hidden" or not index.isdigit() or run.model.name != "mlp":
        return
    searched = opt.search_space.get("model.layers")
    layers = max(boundary_values(searched)) if searched is not None else run.model.kwargs.get("layers")
    if isinstance(layers, int) and int(index) >= layers:
        raise HpoError(
            f"search_space.{path}: has no effect: model.layers is at most {layers}, so the MLP uses "
            f"model.hidden.0 to model.hidden.{layers - 1}; search model.layers up to {int(index) + 1} too, or "
            f"drop {path}"
        )


_PER_HIDDEN_LAYER = ("model.dropout", "model.activation", "model.norm")  # the MLP's, applied after each


def _check_layer_option_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """An MLP with no hidden layer (hidden: [] or layers: 0) is one linear layer: a searched dropout,
    activation or norm, which apply after each hidden layer, would be suggested, stored and never trained."""
    if path not in _PER_HIDDEN_LAYER or run.model.name != "mlp":
        return
    if any(
        p in ("model", "model.name", "model.layers") or p.startswith("model.hidden") for p in opt.search_space
    ):
        return  # some trials may have hidden layers
    from hpotool.models import layer_widths

    args = run.model.kwargs
    try:
        widths = layer_widths(args.get("hidden", (128,)), args.get("layers"))
    except (TypeError, ValueError):
        return  # the model's own check says what is wrong
    if widths:
        return
    if args.get("layers") == 0:
        given, fix = "model.layers: 0", "set model.layers to 1 or more, or search it"
    else:
        given, fix = "model.hidden: []", "give it a hidden layer (model.hidden: [64]), or search model.hidden"
    raise HpoError(
        f"search_space.{path}: has no effect: the MLP has no hidden layer ({given}), and {path.partition('.')[2]} "
        f"applies after each hidden layer, so every trial would train the same model; {fix}, or drop {path}"
    )


def _check_lr_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """The built-in one-cycle schedule given `max_lr` sets every lr of the run from it (max_lr / div_factor up
    to max_lr and down), so a searched optimizer.lr would be suggested, stored and never trained: every
    trial the same run."""
    if path != "optimizer.lr" or run.scheduler.name != "onecycle" or run.trainer is not None:
        return
    if {"scheduler", "scheduler.name"} & opt.search_space.keys():
        return  # a trial may draw another schedule, which reads the lr
    searched = "scheduler.max_lr" in opt.search_space
    max_lr = (run.scheduler.model_extra or {}).get("max_lr")
    if max_lr is None and not searched:
        return  # the cycle peaks at optimizer.lr
    if searched:
        given, fix = "searches scheduler.max_lr", "drop optimizer.lr from the search space"
    else:
        given = f"sets max_lr: {format_choice(max_lr)}"
        fix = (
            "search scheduler.max_lr instead, or drop max_lr from the scheduler section (the cycle then peaks "
            "at optimizer.lr)"
        )
    raise HpoError(
        f"search_space.optimizer.lr: has no effect: the 'onecycle' schedule {given}, and runs every trial's lr "
        f"from max_lr / div_factor up to max_lr and down whatever optimizer.lr is; {fix}"
    )


def _check_data(run: RunConfig, opt: OptimizeConfig, where: str) -> None:
    """The data `run` names loads, measures every objective (a searched dataset may be another task) and
    holds a batch (a searched subset_fraction may leave fewer training samples than batch_size)."""
    try:
        data = load_data(run.data, run.loss.name)
    except Exception as exc:
        raise HpoError(f"{where}: {data_failure(run.data, exc)}") from None
    missing = [m for m in opt.objectives if m not in data.metrics]
    if missing:
        why = ""
        if one_logit(run, data) and load_data(run.data).task == "regression":
            shown, name = ", ".join(missing), run.loss.name
            fix = (
                f"drop {name} from its choices to compare regression losses by {shown}, or compare "
                f"classification losses by val_accuracy"
                if where.startswith("with loss.name=")
                else f"use a regression loss (mse) for {shown}, or measure val_accuracy"
            )
            why = (
                f" ({name!r} reads the 0/1 float targets as two classes, a classification task, where other "
                f"losses make them a regression that measures {shown}; {fix})"
            )
        raise HpoError(
            f"{where}: this {data.task} task does not measure {', '.join(missing)}; it measures: "
            f"{', '.join(data.metrics)}{why}"
        )
    check_batch_size(run.batch_size, data, f"{where}: batch_size")


def _check_list_item(path: str, fixed: Mapping[str, Any]) -> None:
    """`model.hidden.0` needs `model.hidden` to be a list (set_path would turn a number into a mapping)."""
    parent, _, last = path.rpartition(".")
    if last.isdigit() and parent in fixed and not isinstance(fixed[parent], list):
        raise HpoError(
            f"search_space.{path}: {parent} is {format_choice(fixed[parent])}, not a list; search {parent} itself, "
            f"or write it as a list ({format_choice([fixed[parent]])}) in the run config"
        )


def _check_condition_paths(path: str, param: Param, opt: OptimizeConfig, valid: set[str]) -> None:
    """Each `when:` path is a searched parameter or a RunConfig path: a typo would switch `path` off."""
    for cond in param.when or {}:
        section = cond.partition(".")[0]
        if cond != section and cond not in opt.search_space and section in section_choices(opt.search_space):
            raise HpoError(
                f"search_space.{path}.when: {cond!r} is inside {section}, which the search chooses whole, so the "
                f"condition would read the run config's {cond}, not the chosen section's; condition on the "
                f"section itself (when: {{{section}: {{in: [...]}}}}, the choices written whole), or search {cond} "
                f"too"
            )
        if cond not in opt.search_space and cond not in valid:
            near = closest(cond, sorted({*opt.search_space, *valid}), n=3)
            hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise HpoError(
                f"search_space.{path}.when: {cond!r} is neither a searched parameter nor a RunConfig path{hint}"
            )


def _check_section_operands(path: str, param: Param, opt: OptimizeConfig) -> None:
    """Each section a condition on a section searched whole lists (`in`, `ne`) is one of its choices (the
    config named each that builds a choice's section so): one that builds none would never match, its
    condition quietly narrower (or, with ne, wider) than written."""
    for on, condition in (param.when or {}).items():
        ref = opt.search_space.get(on)
        if on not in SECTIONS or not isinstance(ref, CategoricalParam) or not isinstance(condition, dict):
            continue
        ((test, operand),) = condition.items()
        operands = operand if test == "in" else [operand] if test == "ne" else []
        stray = next((v for v in operands if isinstance(v, dict) and not contains(ref, v)), None)
        if stray is not None:
            raise HpoError(
                f"search_space.{path}.when.{on}: {format_choice(stray)} is none of {on}'s choices and gives none "
                f"of their sections, so no trial matches it; name one of: {', '.join(map(format_choice, ref.choices))}"
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


def _component_choices(
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


def _taken_by_hint(path: str, contexts: list[dict[str, Any]]) -> str:
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


# Keys that size what the components see: their values train a step as the components' do.
_SIZES = ("batch_size", "epochs")

# Keys that choose the validation split: searched, every trial is measured on other samples.
_SPLIT_PATHS = {
    path: f"every trial would be measured on another validation split, so their {{metrics}} would not compare "
    f"(the sampler would favour the easiest split); set {path} in the run config instead" + hint
    for path, hint in (
        ("data.val_fraction", " (to train trials on less data, search data.subset_fraction)"),
        ("data.split_seed", ""),
    )
}


def _check_one_split(param: Param, opt: OptimizeConfig) -> None:
    """Whole data sections as choices that split the data differently would measure trials on different
    validation splits, as searching `data.val_fraction` would (`check_section_param` has validated them)."""
    sections = [
        DataConfig.model_validate(c, context={CHECK_COMPONENTS: False}) for c in boundary_values(param)
    ]
    for key in ("val_fraction", "split_seed"):
        values = list(dict.fromkeys(getattr(s, key) for s in sections))
        if len(values) > 1:
            metrics = " and ".join(opt.objectives)
            raise HpoError(
                f"its choices give {key} {' and '.join(map(str, values))} (a choice that leaves it out has "
                f"the default), so every trial would be measured on another validation split and their "
                f"{metrics} would not compare (the sampler would favour the easiest split); give every choice "
                f"the same {key}"
            )


def _auto_task(run: RunConfig, opt: OptimizeConfig, data: PreparedData | None) -> str | None:
    """The task of the data a trial drawing the loss `auto` trains on, where the search switches no dataset
    (searches `data` or a data key other than how much of it a trial trains on); None where it may. The run
    config's task, but where its loss is bce_with_logits reading 0/1 float targets as two classes: auto is
    no one-logit loss, so its trials load those targets as the regression they are (auto is mse there)."""
    searched = [p.partition(".")[2] for p in opt.search_space if p.partition(".")[0] == "data"]
    if data is None or not all(key == "subset_fraction" for key in searched):
        return None
    return load_data(run.data).task if one_logit(run, data) or data.task == "multilabel" else data.task


def _check_auto_loss_name(param: Param, run: RunConfig, opt: OptimizeConfig, task: str | None) -> None:
    """Searched loss names `auto` and the loss it stands for on `task` (every trial's) train one loss where
    each trains bare: the run config's loss sets no arguments (auto takes none) and no other loss key is
    searched."""
    if task is None or not isinstance(param, CategoricalParam) or run.loss.kwargs:
        return
    if any(p == "loss" or (p.startswith("loss.") and p != "loss.name") for p in opt.search_space):
        return
    same = auto_loss(task)
    if "auto" in param.choices and same in param.choices:
        raise HpoError(
            f"choices auto and {same} are one loss on this {task} task (auto is {same} there): one "
            f"configuration under two labels, which a study would train as two; keep one"
        )


def check_space(run: RunConfig, opt: OptimizeConfig, data: PreparedData | None, source: str) -> None:
    """Before any trial runs: every path exists, and every bound or choice gives a RunConfig that
    validates and whose components build."""
    valid = config_paths(run, switchable(opt.search_space))
    fixed = leaf_values(run)
    for path, param in opt.search_space.items():
        try:
            _check_list_item(path, fixed)
            if path.startswith("loss.") and path not in valid and run.loss.name == "auto":
                raise HpoError(
                    f"loss 'auto' takes no arguments; {AUTO_LOSS_FIX.format(arg=path.partition('.')[2])} in "
                    f"the run config"
                )
            if path in SECTIONS:
                check_section_param(path, param, run, _auto_task(run, opt, data), opt.search_space)
            else:
                if (
                    path not in valid
                ):  # an argument of the component only a condition that never holds asks for
                    _check_condition_paths(path, param, opt, valid)
                    _condition_values(param, opt, fixed, path)
                check_path(path, valid)
            if path == "loss.name" and run.trainer is None:
                _check_auto_loss_name(param, run, opt, _auto_task(run, opt, data))
            if path in _SPLIT_PATHS and run.trainer is None:
                raise HpoError(_SPLIT_PATHS[path].format(metrics=" and ".join(opt.objectives)))
            if path == "data" and run.trainer is None:
                _check_one_split(param, opt)
            _check_condition_paths(path, param, opt, valid)
            _check_section_operands(path, param, opt)
            _check_width_is_used(path, run, opt)
            _check_lr_is_used(path, run, opt)
            _check_layer_option_is_used(path, run, opt)
            # a conditional parameter is checked where it applies, a list item with the items before it
            context = {**_earlier_items(path, opt), **_condition_values(param, opt, fixed, path)}
            values = boundary_values(param)
            if isinstance(param, FloatParam) and param.step is None:  # an integer field takes 32.0, not 41.3
                inside = float(f"{param.low + (param.high - param.low) * 0.382:.3g}")
                values.append(min(max(inside, param.low), param.high))
            contexts = _component_choices(path, param, opt, context)
            trains = data is not None and (
                path.partition(".")[0] in (*COMPONENT_SECTIONS, "data") or path in _SIZES
            )
            for context, value in [(c, v) for c in contexts for v in values]:
                datasets, always = (
                    _data_contexts(path, param, value, context, opt, fixed) if trains else ([], False)
                )
                try:
                    _check_in_context(run, opt, data, path, param, value, context, contexts, fixed)
                except HpoError:
                    if not always:  # the run config's data meets this value in some trial
                        raise
                for label, extra in datasets:  # and so does each searched dataset a trial may pair it with
                    try:
                        _check_in_context(
                            run, opt, data, path, param, value, {**extra, **context}, contexts, fixed
                        )
                    except HpoError as exc:
                        message = str(exc).removeprefix(f"with {format_params({path: value})}: ")
                        hint = (
                            _pair_hint(path, label.partition("=")[0], opt)
                            if path not in ("data.name", "data")
                            else ""
                        )
                        raise HpoError(
                            f"with {label}, {format_params({path: value})}: {message}{hint}"
                        ) from None
        except HpoError as exc:
            message = str(exc)
            if not message.startswith("search_space."):
                message = f"search_space.{path}: {message}"
            raise HpoError(f"{source}: {message}") from None


def _check_in_context(
    run: RunConfig,
    opt: OptimizeConfig,
    data: PreparedData | None,
    path: str,
    param: Param,
    value: Any,
    context: dict[str, Any],
    contexts: list[dict[str, Any]],
    fixed: Mapping[str, Any],
) -> None:
    """`_check_value`, or where that fails, again with the parameters a trial picking `value` sets too."""
    try:
        _check_value(run, opt, data, path, param, value, context, contexts, fixed)
    except HpoError as exc:
        # A trial that picks `value` also sets the parameters conditioned on it (scheduler.mode
        # when: {scheduler.monitor: val_accuracy}): the value is fine where they make it so.
        later = _conditioned_on(path, value, context, opt, fixed)
        if not later:
            raise
        try:
            _check_value(run, opt, data, path, param, value, {**context, **later}, contexts, fixed)
        except HpoError:
            raise exc from None


def _data_contexts(
    path: str,
    param: Param,
    value: Any,
    context: Mapping[str, Any],
    opt: OptimizeConfig,
    fixed: Mapping[str, Any],
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The searched data a trial with `path` at `value` (and `context`) may train on, as (label, values)
    pairs: each value of each other searched data.* parameter that can apply there, with the values its
    condition reads. And whether one of them always applies there, so the run config's data never meets
    `value` (mse beside a regression dataset under the same condition)."""
    out: list[tuple[str, dict[str, Any]]] = []
    always = False
    for other, p in opt.search_space.items():
        if other == path or other.partition(".")[0] != "data" or other in context:
            continue
        try:
            needs = _condition_values(p, opt, fixed, other)
        except HpoError:  # a condition that never holds: its own check says so
            continue
        if path in needs:  # its own check pairs it with `value` (and _conditioned_on pairs `value` with it)
            continue
        where = {**fixed, **needs, **context, path: value}
        if not all_hold(p.when or {}, where) or not all_hold(param.when or {}, where):
            continue  # `context` reads what its condition reads otherwise: not in the same trial
        always = always or all_hold(p.when or {}, {**fixed, **context, path: value})
        shown = {k: v for k, v in needs.items() if k not in context}
        when = f" (when {format_params(shown)})" if shown else ""
        out += [(f"{format_params({other: v})}{when}", {**needs, other: v}) for v in boundary_values(p)]
    return out, always


def _pair_hint(path: str, other: str, opt: OptimizeConfig) -> str:
    """How to search `path` only with the datasets it fits, when `other` is the searched dataset (its name
    or the whole data section)."""
    if other not in ("data.name", "data"):
        return ""
    names = list(opt.search_space)
    before = names.index(path) < names.index(other)  # a condition reads earlier parameters only
    fix = f"put it below {other} with a when: on {other}" if before else f"give it a when: on {other}"
    return (
        f" (a trial may pair any {path} value with any dataset: to search it only with those it fits, {fix})"
    )


def _check_value(
    run: RunConfig,
    opt: OptimizeConfig,
    data: PreparedData | None,
    path: str,
    param: Param,
    value: Any,
    context: dict[str, Any],
    contexts: list[dict[str, Any]],
    fixed: Mapping[str, Any],
) -> None:
    """`path` at `value`, with the other searched values `context`, gives a config that validates, and
    (with `data`) whose components build and train a step. `contexts` are all the contexts tried."""
    try:
        config = apply_overrides(run, {**context, path: value})
    except HpoError as exc:
        if isinstance(param, FloatParam) and "valid integer" in str(exc):
            raise HpoError(f"{exc}; {path} takes whole numbers: use type: int") from None
        if "takes no argument" in str(exc) and len(contexts) > 1:
            raise HpoError(f"{exc}{_taken_by_hint(path, contexts)}") from None
        raise
    if path == "device":  # a device this machine lacks would fail every trial given it
        try:
            resolve_device(config.device)
        except HpoError as exc:
            raise HpoError(f"with {format_params({path: value})}: {exc}") from None
    section = path.partition(".")[0]
    other_data = section == "data" or config.data != run.data  # a searched dataset in `context` too
    # Another dataset, maybe another task: its metrics, then (below) a step.
    if data is not None and other_data:
        _check_data(config, opt, f"with {format_params({path: value})}")
    base_task = data.task if data is not None else None
    if data is not None and (section == "loss" or other_data):  # bce reads 0/1 float labels as two classes
        data = load_data(config.data, config.loss.name)
    # batch_size and epochs size what the components see (batch norm on one sample, a one-cycle schedule's
    # total_steps), so their values train one step too, as does another dataset (a monitor or class weights
    # that fit one task and not the other)
    if data is not None and (section in (*COMPONENT_SECTIONS, "data") or path in _SIZES):
        try:  # an optimizer's values fail as it is built; a model's, loss's, schedule's may not
            dry_run(config, data, step=section != "optimizer")
        except RunCheckError as exc:
            detail, hint = exc.detail, _whole_number_hint(path, param, config, fixed)
            search_mode = _monitor_mode_hint(path, param, run, opt)
            if search_mode and "its mode is" in detail:  # its 'set mode: max' would break the other choices
                detail = f"{detail.rpartition('; ')[0]}; {search_mode}"
            if section == "data":  # the run config's section that does not fit this data
                detail = str(exc)
                if data.task != base_task:
                    hint = (
                        f" (the run config's {exc.where} is for its {base_task} data; "
                        f"search {path} over datasets of one task)"
                    )
            raise HpoError(f"with {format_params({path: value})}: {detail}{hint}") from None
    if data is not None and section == "loss":  # another task: its metrics
        _check_data(config, opt, f"with {format_params({path: value})}")


def _conditioned_on(
    path: str, value: Any, context: Mapping[str, Any], opt: OptimizeConfig, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """The other parameters whose conditions read `path` or a value of `context` and hold with them, each at
    its first value: the ones a trial picking `value` where `context` holds sets too (mse beside the
    regression dataset, both when: {model.activation: gelu})."""
    values: dict[str, Any] = {**fixed, **context, path: value}
    out: dict[str, Any] = {}
    for name, param in opt.search_space.items():
        if name == path or name in context or not param.when or not ({path, *context} & set(param.when)):
            continue
        if all_hold(param.when, {**values, **out}):
            out[name] = boundary_values(param)[0]
    return out


def _monitor_mode_hint(path: str, param: Param, run: RunConfig, opt: OptimizeConfig) -> str:
    """For searched `scheduler.monitor` choices read different ways round (val_accuracy is better higher,
    a loss or an error lower) under one fixed mode: how to search the mode with them, as YAML."""
    searched = "scheduler.mode" in opt.search_space
    if path != "scheduler.monitor" or not isinstance(param, CategoricalParam) or searched:
        return ""
    wants = {str(c): "max" if c in HIGHER_IS_BETTER else "min" for c in param.choices}
    if len(set(wants.values())) < 2:
        return ""  # one mode fits every choice: the message says which
    mode = run.scheduler.kwargs.get("mode", "min")
    other = [c for c, want in wants.items() if want != mode]
    need = "max" if mode == "min" else "min"
    condition = other[0] if len(other) == 1 else f"{{in: [{', '.join(other)}]}}"
    return (
        f"no one mode fits the choices {', '.join(wants)}: search the mode with the monitor, adding below "
        f"scheduler.monitor in search_space: scheduler.mode: {{type: categorical, choices: [{need}], when: "
        f"{{scheduler.monitor: {condition}}}}} (the run config's mode, {mode}, serves the other choices)"
    )


def prepare_study(run_path: Path, opt_path: Path, overrides: Overrides = Overrides()) -> StudyPlan:
    """Load and check both configs, the data, the components, the sampler and the pruner.

    Writes nothing: every mistake a user can make in the configs is an `HpoError` here, before trial 0.
    """
    budget_given = overrides.n_trials is not None or overrides.timeout is not None
    run, opt = load_run_config(run_path), load_optimize_config(opt_path, budget_given=budget_given)
    return _prepare(run, opt, str(run_path), str(opt_path), overrides)


def prepare_stored_study(
    study_name: str,
    storage: str | None,
    overrides: Overrides = Overrides(),
    on_wait: Callable[[str], None] | None = None,
) -> StudyPlan:
    """Join an existing study with the configs stored on it (the same command on another machine, without
    copies of the configs): checked as `prepare_study` checks files. The study is looked up, not changed;
    one not there yet in the `storage` given is waited for a while (`joining.await_study`, which calls
    `on_wait` with a note first).

    Raises:
        HpoError: no such study, one not made by `hpotool optimize`, or configs that do not check here (a
            user's module this folder cannot import, a device this machine lacks).
    """
    from hpotool.browse import find_study
    from hpotool.joining import await_study, join_wait
    from hpotool.storage import default_storage_url

    url = storage or default_storage_url(study_name)
    wait = join_wait() if storage is not None else 0.0
    try:
        study = await_study(study_name, storage, partial(find_study, study_name, storage), wait, on_wait)
    except HpoError as exc:
        raise HpoError(f"{exc}; to start a study, give --run-config and --optimize-config") from None
    attrs = study.user_attrs
    if not isinstance(attrs.get("run_config"), dict) or not isinstance(attrs.get("optimize_config"), dict):
        raise HpoError(
            f"study {study_name!r} in {shown_url(url)} has no stored configs (user attrs 'run_config' and "
            f"'optimize_config'): it was not created by hpotool optimize; give --run-config and --optimize-config"
        )
    run_src, opt_src = f"study {study_name!r}: run_config", f"study {study_name!r}: optimize_config"
    run: RunConfig = validate_config(RunConfig, attrs["run_config"], run_src)
    opt: OptimizeConfig = validate_config(
        OptimizeConfig, attrs["optimize_config"], opt_src, budget_given=True
    )
    if overrides.device is None:  # the creator's device: another machine may lack it
        try:
            resolve_device(run.device)
        except HpoError as exc:
            detail = str(exc).partition("; use device:")[0]
            raise HpoError(
                f"{run_src}: {detail}; the device is not part of the experiment: give --device auto (or cpu) to "
                f"train this machine's trials here"
            ) from None
    # The storage the study was found in, not the creator's URL (another host name, a relative SQLite path).
    return _prepare(run, opt, run_src, opt_src, replace(overrides, study_name=study_name, storage=url))


def _prepare(
    run: RunConfig, opt: OptimizeConfig, run_path: str, opt_path: str, overrides: Overrides
) -> StudyPlan:
    pruner_chosen = "pruner" in opt.model_fields_set  # before the overrides, which set every field
    if overrides.seed is not None and "seed" in opt.sampler.kwargs:
        raise HpoError(
            f"{opt_path}: sampler.kwargs.seed fixes the sampler's seed, so --seed would be ignored; move it to "
            f"the top-level seed: (which --seed overrides) or drop --seed"
        )
    run, opt = _with_overrides(run, opt, overrides)
    device_src = "--device" if overrides.device is not None else run_path
    if run.trainer is not None:  # the user's own training code: it owns data, model and metrics
        from hpotool.user_trainer import check_user_trainer, schedule_note

        resolve_device(run.device, device_src)  # the function is handed it: one this machine lacks fails now
        pruning = not opt.multi_objective and not opt.pruner.is_nop
        try:
            takes_report = check_user_trainer(run, pruning=pruning and pruner_chosen, opt_source=opt_path)
        except HpoError as exc:
            raise HpoError(f"{run_path}: {exc}") from None
        check_space(run, opt, None, opt_path)
        no_report = [] if takes_report else [run.trainer.function]
        for i, choice in enumerate(section_choices(opt.search_space).get("trainer", [])):
            chosen = apply_overrides(run, {"trainer": choice})
            assert chosen.trainer is not None
            try:
                if not check_user_trainer(chosen, pruning=pruning and pruner_chosen, opt_source=opt_path):
                    no_report.append(chosen.trainer.function)
            except HpoError as exc:
                raise HpoError(f"{opt_path}: search_space.trainer.choices.{i}: {exc}") from None
        schedule = schedule_note(run)
        notes: tuple[str, ...] = (schedule,) if schedule else ()
        if pruning and no_report:  # the default pruner could never stop it: run without one
            opt = opt.model_copy(update={"pruner": PrunerConfig(name="nop")})
            notes += (
                f"no pruning: trainer.function {' and '.join(dict.fromkeys(no_report))} takes no 'report' "
                f"argument, so a pruner could never stop a trial ({opt_path} sets no pruner; add report to prune)",
            )
        plan = _plan(run, opt, None, opt_path, overrides)
        return replace(plan, notes=plan.notes + notes)
    resolve_device(run.device, device_src)
    data = load_checked(run, run_path)
    for metric in opt.objectives:
        if metric not in data.metrics:
            key = "metrics" if opt.multi_objective else "metric"
            from hpotool.components import REGISTRIES
            from hpotool.config import CLASSIFICATION_METRICS, REGRESSION_METRICS

            binary = (
                ", or set loss: {name: bce_with_logits} for these 0/1 labels" if data.zero_one_floats else ""
            )
            hint = (
                f" (the targets of {run.data.name!r} are floating-point numbers, which make a regression task: "
                f"give class labels as integers for classification{binary})"
                if data.task == "regression" and metric in CLASSIFICATION_METRICS
                else ""
            )
            if (  # a user's numbers stored as integers (ages, counts): read as class labels
                data.task == "classification"
                and metric in REGRESSION_METRICS
                and run.data.name not in REGISTRIES["data"]
            ):
                hint = (
                    f" (the targets of {run.data.name!r} are integers, which make a classification task of "
                    f"{data.out_features} classes: to predict them as numbers give y as floats for regression, "
                    f"y.float() or y.astype('float32'))"
                )
            if one_logit(run, data) and load_data(run.data).task == "regression":
                hint = (
                    f" ({run.loss.name!r} reads the 0/1 float targets of {run.data.name!r} as two classes, a "
                    f"classification task, where other losses make them a regression that measures {metric}: "
                    f"set loss: {{name: mse}} for {metric}, or measure val_accuracy)"
                )
            # a misspelling (val_acuracy) gets the closest name; another task's metric the hint above
            near = (
                ""
                if metric in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
                else did_you_mean(metric, data.metrics)
            )
            raise HpoError(
                f"{opt_path}: {key}: {metric!r} is not produced for this {data.task} task{near}; "
                f"choose one of: {', '.join(data.metrics)}{hint}"
            )
    for text in opt.constraints:
        from hpotool.constraints import parse_constraint

        if parse_constraint(text).metric not in data.metrics:
            raise HpoError(
                f"{opt_path}: constraints: {text!r} names a value this {data.task} task does not measure; "
                f"choose from: {', '.join(data.metrics)}"
            )
    try:  # build the base run and train it one step, so a mistake fails now and not in every trial
        dry_run(run, data)
    except RunCheckError as exc:
        raise HpoError(f"{run_path}: {exc}") from None
    check_space(run, opt, data, opt_path)  # every searched batch_size is a valid one after this
    batch_param = opt.search_space.get("batch_size")
    searched = (
        [apply_overrides(run, {"batch_size": v}).batch_size for v in boundary_values(batch_param)]
        if batch_param
        else []
    )
    check_batch_size(run.batch_size, data, f"{run_path}: batch_size")
    check_batch_size(max(searched, default=0), data, f"{opt_path}: search_space.batch_size")
    plan = _plan(run, opt, data, opt_path, overrides)
    unused = unused_classes_note(data, run.data.name)
    return replace(plan, notes=(*plan.notes, unused)) if unused else plan


def _plan(
    run: RunConfig, opt: OptimizeConfig, data: PreparedData | None, opt_path: str, overrides: Overrides
) -> StudyPlan:
    check_final(run, opt, opt_path, data)
    if opt.tracking is not None and opt.tracking.mlflow is not None:
        from hpotool.tracking import check_mlflow

        try:
            check_mlflow()
        except HpoError as exc:
            raise HpoError(f"{opt_path}: {exc}") from None
    try:
        sampler = study_sampler(opt, fixed=leaf_values(run))
        _check_sampler_samples(opt, leaf_values(run))
        if isinstance(sampler, optuna.samplers.GridSampler):
            for i, params in enumerate(opt.enqueue):
                missing = _unset_by(params, opt, leaf_values(run))
                if missing:
                    raise HpoError(
                        f"enqueue.{i}: the grid sampler fails a queued set that leaves out a searched parameter; "
                        f"add {', '.join(missing)} to it, or drop it"
                    )
        pruner = make_pruner(  # several objectives: the pruner the file sets is nop (load_optimize_config)
            "nop" if opt.multi_objective else opt.pruner.name,
            opt.pruner.kwargs if not opt.multi_objective or opt.pruner.is_nop else {},
        )
    except HpoError as exc:
        raise HpoError(f"{opt_path}: {exc}") from None
    conditional = [path for path, p in opt.search_space.items() if p.when]
    notes = (
        (
            f"the grid sampler runs every value of {', '.join(conditional)} also where its condition does not "
            f"hold, so those trials repeat one configuration; bruteforce runs each configuration once",
        )
        if isinstance(sampler, optuna.samplers.GridSampler) and conditional
        else ()
    )
    return StudyPlan(
        run, opt, data, sampler, pruner, opt.storage_url, overrides.allow_changed_config, notes=notes
    )


def _unset_by(params: Mapping[str, Any], opt: OptimizeConfig, fixed: Mapping[str, Any]) -> list[str]:
    """The searched parameters a trial enqueued with `params` would still ask the sampler for (those whose
    conditions hold), which Optuna's grid sampler refuses in a queued trial."""
    missing: list[str] = []
    values = {**fixed, **params}
    for path, p in opt.search_space.items():
        if path not in params and (not p.when or all_hold(p.when, values)):
            missing.append(path)
            values[path] = boundary_values(p)[0]  # a later condition may read it
    return missing


def with_warm_start(plan: StudyPlan, source: optuna.Study, top: int) -> StudyPlan:
    """`plan` with the `top` best complete trials of `source` that meet its constraints enqueued (params
    in this space, within it)."""
    from hpotool.export import ranked_trials, trial_params

    if len(source.directions) > 1:
        raise HpoError(
            f"--enqueue-from: {source.study_name!r} is multi-objective; give a single-objective study"
        )
    ranked = ranked_trials(source)
    if not ranked:
        counts: dict[str, int] = {}
        for t in source.get_trials(deepcopy=False):
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no trials"
        what = "meets its constraints" if counts.get("complete") else "to start from"
        raise HpoError(f"--enqueue-from: {source.study_name!r} has no complete trial that {what} ({shown})")
    space = plan.opt.search_space
    grid, fixed = isinstance(plan.sampler, optuna.samplers.GridSampler), leaf_values(plan.run)
    picks: list[dict[str, Any]] = list(plan.opt.enqueue)
    inside, attrs, read = 0, source.user_attrs, 0
    left_out: dict[str, list[str]] = {}
    for t in ranked:
        if len(picks) - len(plan.opt.enqueue) >= top:
            break
        ran = trial_params(attrs, t)  # a list choice as the list, by the space the trial ran under
        params, missed = carried_params(
            ran,
            space,
            partial(_trained, source, t),
            partial(_values, plan.run),
            _auto_task(plan.run, plan.opt, plan.data),
        )
        read += 1
        for name, reason in missed.items():
            left_out.setdefault(name, []).append(reason)
        if grid and _unset_by(params, plan.opt, fixed):  # the grid sampler would fail its trial
            params = {}
        inside += bool(params)
        if params and params not in picks:
            picks.append(params)
    if len(picks) == len(plan.opt.enqueue):
        theirs = list(dict.fromkeys(k for t in ranked for k in t.params))
        shared = [k for k in theirs if k in space]
        why = (
            f"its values of {', '.join(shared)} lie outside this space's ranges"
            if shared
            else f"it searched {', '.join(theirs) or 'no parameters'}, this space searches {', '.join(space)}"
        )
        if inside:
            why = "those inside it are in the optimize config's enqueue list already"
        elif grid and shared:
            lacking = [k for k in space if k not in shared]
            why = (
                f"the grid sampler runs only sets that give every searched parameter, and its trials have no "
                f"{', '.join(lacking)}"
            )
        raise HpoError(
            f"--enqueue-from: no complete trial of {source.study_name!r} has parameters inside this space: {why}"
        )
    opt = validate_config(OptimizeConfig, {**plan.opt.model_dump(), "enqueue": picks}, "--enqueue-from")
    note = left_out_note(source.study_name, left_out, read)
    notes = (*plan.notes, note) if note else plan.notes
    return replace(plan, opt=opt, config_enqueue=len(plan.opt.enqueue), notes=notes)


def _trained(source: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """Every path of the run config `trial` of `source` trained, and each section whole ({} for a study
    hpotool did not create)."""
    from hpotool.export import trial_run_config

    try:
        return _paths(trial_run_config(source, trial, check_components=False))
    except HpoError:
        return {}


def _values(run: RunConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every path of the run config this study trains with `params`, and each section whole ({} where they
    do not give a valid config: the queued trial fails with the reason)."""
    try:
        return _paths(apply_overrides(run, params, check_components=False))
    except HpoError:
        return {}


def _paths(config: RunConfig) -> dict[str, Any]:
    """Every path of `config` (`leaf_values`), and each section whole."""
    return {**leaf_values(config), **section_values(config)}


def versions() -> dict[str, str]:
    import torch

    return {"hpotool": __version__, "optuna": optuna.__version__, "torch": torch.__version__}


def _check_sampler_samples(opt: OptimizeConfig, fixed: Mapping[str, Any]) -> None:
    """A fresh sampler as configured proposes one trial of an in-memory study with the study's directions:
    one that cannot handle them or the space (CmaEsSampler with several objectives) fails here, once,
    instead of failing every trial."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = optuna.create_study(
                directions=opt.study_directions, sampler=study_sampler(opt, fixed=fixed)
            )
            suggest(probe.ask(), opt.search_space, fixed)
    except (ValueError, TypeError, NotImplementedError) as exc:
        objectives = f"{len(opt.objectives)} objectives" if opt.multi_objective else "one objective"
        raise HpoError(
            f"sampler: {opt.sampler.name!r} cannot sample this study ({objectives}): {type(exc).__name__}: {exc}"
        ) from None
    finally:
        optuna.logging.set_verbosity(verbosity)


def study_sampler(
    opt: OptimizeConfig,
    *,
    fixed: Mapping[str, Any] | None = None,
    worker: int = 0,
    existing: int = 0,
    salt: tuple[int, ...] = (),
) -> optuna.samplers.BaseSampler:
    """The sampler of worker `worker` in a run that finds `existing` trials in the study; `fixed`: the run
    config's values (`leaf_values`), which brute force reads to tell a point drawn in part.

    A new study's first worker samples with the config's seed, worker i with seed + i. A run that resumes
    a study derives its seeds from the seed, the worker and the count: with the same seed, a resumed
    sampler would propose its first trials' values again. A process that joins a study other processes
    are sampling (`salt`: `process_salt()`) mixes in its host and process id, as the same command started
    on several machines would otherwise propose the same values. Optuna's grid sampler keeps the config's
    seed everywhere, as its seed orders the grid points that every run and worker number alike.
    """
    from hpotool.factories import is_subclass, sampler_class

    grid = is_subclass(sampler_class(opt.sampler.name), optuna.samplers.GridSampler)

    def derive(seed: int | None) -> int | None:
        if seed is None or grid:
            return seed
        if existing == 0 and not salt:
            return (seed + worker) % 2**32  # a sampler takes seeds below 2**32
        return int(np.random.SeedSequence([seed, worker, existing, *salt]).generate_state(1)[0])

    kwargs: dict[str, Any] = dict(opt.sampler.kwargs)
    if isinstance(kwargs.get("seed"), int):
        kwargs["seed"] = derive(kwargs["seed"])
    return make_sampler(opt.sampler.name, kwargs, seed=derive(opt.seed), space=opt.search_space, fixed=fixed)


def process_salt() -> tuple[int, ...]:
    """This process's host, PID namespace and id, which make its seeds its own among processes sampling one
    study (containers sharing a host name each have their own namespace, and often the same pids)."""
    from hpotool.stale import pid_namespace

    return (zlib.crc32(socket.gethostname().encode()), pid_namespace() or 0, os.getpid())


def _refuse_a_second_study_beside_a_journal(plan: StudyPlan) -> None:
    """A study run with `--storage journal:studies/NAME.log` and resumed without it would start over in a
    new studies/NAME.db, silently: refused, naming the journal, before the SQLite file is made.

    Raises:
        HpoError: the default SQLite file does not exist and studies/NAME.log holds a study of this name.
    """
    from hpotool.storage import is_optuna_journal

    name = plan.opt.study_name
    default, journal = Path("studies") / f"{name}.db", Path("studies") / f"{name}.log"
    if plan.storage_url != f"sqlite:///{default}" or default.exists() or not journal.is_file():
        return
    if not journal.stat().st_size or not is_optuna_journal(journal):
        return
    url = f"journal:{journal}"
    names = [s.study_name for s in make_storage(url, create=False).get_all_studies()]
    if name in names:
        raise HpoError(
            f"study {name!r} is in {url}, and without --storage a new one would start in {shown_url(plan.storage_url)}; "
            f"give --storage {url} (or storage: in the config) to resume it, or another study_name"
        )


def _refuse_a_second_study_under_another_prefix(plan: StudyPlan) -> None:
    """A machine whose `--storage redis://...` left out (or misspelt) the `?prefix=` the others give would
    start a study of its own, silently, instead of joining theirs: refused, naming the URL that holds it.

    Raises:
        HpoError: another journal on the Redis server holds a study of this name.
    """
    from hpotool.storage import redis_prefixes_holding

    elsewhere = redis_prefixes_holding(plan.storage_url, plan.opt.study_name)
    if elsewhere:
        raise HpoError(
            f"study {plan.opt.study_name!r} is not in {shown_url(plan.storage_url)} but under another prefix, "
            f"and a new one would start here; give --storage {shown_url(elsewhere[0])} to join it, or another "
            f"study_name"
        )


def open_study(plan: StudyPlan) -> tuple[optuna.Study, tuple[int, ...]]:
    """Create the study, or load it and check it is the same experiment (metric, direction).

    Returns:
        The study, with this process's sampler, and the salt of its seeds: `process_salt()` where other
        processes may be sampling the study (a trial is running, or another process created it and it has
        no trial yet), else () (see `study_sampler`).
    """
    opt = plan.opt
    _refuse_a_second_study_beside_a_journal(plan)
    storage = make_storage(plan.storage_url)
    try:
        existing = optuna.load_study(study_name=opt.study_name, storage=storage)
    except KeyError:
        existing = None
    joined = False
    if existing is None:
        _refuse_a_second_study_under_another_prefix(plan)
        try:
            return _create_study(plan, storage), ()
        except optuna.exceptions.DuplicatedStudyError:  # another process created it a moment ago
            existing = optuna.load_study(study_name=opt.study_name, storage=storage)
            joined = True
    _wait_for_creator(existing, joined=joined)
    stored = existing.user_attrs.get("optimize_config", {})
    stored_directions = [d.name.lower() for d in existing.directions]
    if stored_directions != opt.study_directions:
        # Each direction with its metric: a metric changed alone (val_accuracy to val_loss, its direction
        # left out) is what the user wrote, not a direction
        names = stored.get("metrics") or ([stored["metric"]] if stored.get("metric") else None)
        was = (
            ", ".join(f"{d} {m}" for d, m in zip(stored_directions, names, strict=True))
            if isinstance(names, list) and len(names) == len(stored_directions)
            else f"{', '.join(stored_directions)} its metric"
        )
        now = ", ".join(f"{d} {m}" for d, m in zip(opt.study_directions, opt.objectives, strict=True))
        raise HpoError(
            f"study {opt.study_name!r} in {shown_url(plan.storage_url)} was created to {was}, and the config says "
            f"{now}; use another study_name or storage"
        )
    if not opt.multi_objective and stored.get("metric", opt.metric) != opt.metric:
        raise HpoError(
            f"study {opt.study_name!r} in {shown_url(plan.storage_url)} optimizes {stored['metric']!r}, and the config "
            f"says {opt.metric!r}; use another study_name or storage"
        )
    # Several objectives: each trial's values are the stored metrics in their order, which Optuna compares
    # position by position (another metric, or the same ones reordered, would rank n_params against val_loss).
    stored_metrics = stored.get("metrics")
    if opt.multi_objective and isinstance(stored_metrics, list) and stored_metrics != opt.objectives:
        raise HpoError(
            f"study {opt.study_name!r} in {shown_url(plan.storage_url)} optimizes metrics [{', '.join(map(str, stored_metrics))}], and the "
            f"config says [{', '.join(opt.objectives)}]; its trials' values are those metrics in that order, so not even "
            f"--allow-changed-config can change them: use another study_name or storage"
        )
    trials = existing.get_trials(deepcopy=False)
    if fingerprint.ATTR not in existing.user_attrs and all(t.state == TrialState.WAITING for t in trials):
        # Nothing has run in it and it was never described: its creator died in between (kill -9, an OOM
        # kill), or plain Optuna code made it. Left so, it was used unchecked for good, and exported without
        # a run config. The queue is left as it is: prepare_resume queues the warm starts it lacks.
        describe_study(existing, plan)
    fingerprint.check(existing, plan.run, opt, allow_changed=plan.allow_changed_config)
    _record_budget(existing, opt)
    # Others may be sampling it: a process created it a moment ago (it is empty, or we lost the race to
    # create it) or has a trial running. A resume of an idle study keeps reproducible seeds.
    others = joined or not trials or any(t.state == TrialState.RUNNING for t in trials)
    salt = process_salt() if others else ()
    fixed = leaf_values(plan.run)
    existing.sampler = (
        study_sampler(opt, fixed=fixed, existing=len(trials), salt=salt) if trials or salt else plan.sampler
    )
    existing.pruner = plan.pruner
    return existing, salt


def _record_budget(study: optuna.Study, opt: OptimizeConfig) -> None:
    """Keep the stored optimize config's n_trials and timeout at this run's: a machine joining the study by
    its name alone (`prepare_stored_study`) aims for the target the latest run gave (`--n-trials 40` on a
    study created with 20), not the one it was created with."""
    stored = study.user_attrs.get("optimize_config")
    budget = {"n_trials": opt.n_trials, "timeout": opt.timeout}
    if isinstance(stored, dict) and any(stored.get(key) != value for key, value in budget.items()):
        study.set_user_attr("optimize_config", {**stored, **budget})


# A study exists from Optuna's create_study on, and its warm start, configs and fingerprint are written after
# that, one by one: a process joining it in that moment (the same command started twice at once) would find
# nothing to check against and mix its experiment into the creator's. It waits for the fingerprint, written
# last, while nothing has run in the study: this long where it lost the race to create the study or sees the
# creator's writes begin (a warm start queued, a config stored), and `QUIET_WAIT_S` where it found the study
# empty and silent, as one made by plain Optuna code is (open_study then describes it: nothing ran in it).
CREATOR_WAIT_S = 10.0
QUIET_WAIT_S = 2.0
_CREATOR_ATTRS = ("run_config", "optimize_config", "versions")


def _wait_for_creator(study: optuna.Study, *, joined: bool) -> None:
    import time

    start = time.monotonic()
    while True:
        try:
            attrs = study.user_attrs
        except KeyError:  # its creator failed part-way and deleted it (`_create_study`)
            raise HpoError(
                f"study {study.study_name!r}: the process creating it failed before it was ready, and deleted "
                f"it; run the same command again to create it"
            ) from None
        if fingerprint.ATTR in attrs:
            return
        trials = study.get_trials(deepcopy=False)
        if any(t.state != TrialState.WAITING for t in trials):
            return  # trials have run in it: it is in use as it is
        described = bool(trials) or any(key in attrs for key in _CREATOR_ATTRS)
        limit = CREATOR_WAIT_S if joined or described else QUIET_WAIT_S
        if time.monotonic() - start > limit:
            return
        time.sleep(0.05)


def _create_study(plan: StudyPlan, storage: Any) -> optuna.Study:
    """Create the study and describe it as one step: a signal meanwhile waits until it is described, and a
    failure (the storage going away) deletes it, so no study is left without its configs and fingerprint
    (the next run would wait for a creator that is gone, then run it unchecked)."""
    opt = plan.opt
    with deferred():
        study = optuna.create_study(
            study_name=opt.study_name,
            storage=storage,
            sampler=plan.sampler,
            pruner=plan.pruner,
            directions=opt.study_directions,
        )
        try:
            describe_new_study(study, plan)
        except Exception:
            with contextlib.suppress(Exception):  # a storage that stopped answering cannot delete it either
                optuna.delete_study(study_name=opt.study_name, storage=storage)
            raise
    return study


def describe_new_study(study: optuna.Study, plan: StudyPlan) -> None:
    """Store the configs and versions on a study just made, queue its warm start, and last (others wait
    for it) its fingerprint: a process joining it then finds the warm start queued and does not queue the
    same points again (each would run twice)."""
    for i, params in enumerate(plan.opt.enqueue):
        enqueue_owned(study, encode_params(params), plan.warm_start_attrs(i))
    describe_study(study, plan)


def describe_study(study: optuna.Study, plan: StudyPlan) -> None:
    """Store the configs and versions on a study, and last its fingerprint."""
    opt = plan.opt
    study.set_user_attr("run_config", plan.run.model_dump(mode="json"))
    study.set_user_attr("optimize_config", fingerprint.stored_optimize_config(opt))
    study.set_user_attr("versions", versions())
    if opt.multi_objective:  # Optuna's own tools and trials_dataframe name the objectives too
        with warnings.catch_warnings():  # "experimental since 3.2"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(opt.objectives)
    fingerprint.record(study, plan.run, opt)


def make_objective(
    plan: StudyPlan, observer: StudyObserver | None = None
) -> Callable[[optuna.Trial], float | list[float]]:
    """The function Optuna calls per trial: suggest, override, train, report each epoch, prune."""
    opt = plan.opt
    report_metric = not opt.multi_objective and opt.metric not in MEASURES  # Trial.report: one objective only

    fixed = leaf_values(plan.run)  # what conditions on non-searched paths read
    from hpotool.constraints import INFEASIBLE, constraint_values, parse_constraint

    limits = [parse_constraint(text) for text in opt.constraints]
    watched = tuple(dict.fromkeys(("val_loss", *opt.objectives)))  # NaN in these: the run diverged

    def objective(trial: optuna.Trial) -> float | list[float]:
        try:
            # A signal waits for the whole point: a trial that ends with part of one (its values are stored
            # one by one) reads to brute force as a whole point, and its retry fails ('param_name mismatch').
            with deferred():
                params = suggest(trial, opt.search_space, fixed)
            config = apply_overrides(plan.run, params)
        except Exception as exc:  # a sampler that cannot sample (bad kwargs), a value the config refuses
            trial.set_user_attr("fail_reason", fail_reason(exc, plan.run))
            raise
        if observer is not None:
            observer.trial_started(trial.number, params, config.epochs)
        history: list[dict[str, float]] = []

        def on_epoch_end(result: EpochResult) -> None:
            if observer is not None:
                observer.epoch_ended(trial.number, result)
            raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed while this epoch trained
            for name in watched:  # pruned before Optuna sees a NaN it would report or store as a value
                value = result.metrics.get(name)
                if value is not None and not math.isfinite(value):
                    raise NonFiniteLossError(result.epoch, value, name)
            if report_metric and opt.metric in result.metrics:
                value = result.metrics[opt.metric]
                trial.report(value, step=result.epoch)
                # After the last epoch the training is spent: the trial completes, whatever a pruner says
                # (successive halving with a rung there, the median pruner, marked every such trial PRUNED).
                last = config.trainer is None and result.epoch + 1 >= config.epochs
                if not last and trial.should_prune():
                    raise optuna.TrialPruned(
                        f"pruned after {result.epoch + 1} of {config.epochs} epochs ({opt.metric}={value:.4g})"
                    )

        attrs: dict[str, Any] = {}
        try:
            result = train_run(config, on_epoch_end=on_epoch_end, history=history)
        except optuna.TrialPruned as exc:
            attrs["prune_reason"] = str(exc)
            raise
        except NonFiniteLossError as exc:
            attrs["prune_reason"] = str(exc)
            raise optuna.TrialPruned(str(exc)) from None
        except (Exception, KeyboardInterrupt) as exc:
            attrs["fail_reason"] = fail_reason(exc, config)
            if limits and attrs["fail_reason"].startswith("out of memory"):
                attrs["constraints"] = [INFEASIBLE] * len(
                    limits
                )  # marked in exports; samplers skip FAIL trials
                attrs["feasible"] = False
            raise
        finally:
            attrs["history"] = history
            attrs["epochs_run"] = len(history)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            _free_device_memory(config.device)
        trial.set_user_attr("metrics", result.metrics)
        unmeasured = [c for c in limits if c.metric not in result.metrics]
        if unmeasured:  # a user's training function returns what it likes: say which value is missing
            error = _unmeasured_error(
                config, result.metrics, str(unmeasured[0]), unmeasured[0].metric, bool(history)
            )
            trial.set_user_attr("fail_reason", described(error))
            raise error
        if limits:
            values = constraint_values(limits, result.metrics)
            for limit, value in zip(limits, values, strict=True):
                trial.set_constraint(str(limit), value)  # what Optuna's samplers and best_trial read
            trial.set_user_attr("constraints", values)
            trial.set_user_attr("feasible", all(v <= 0 for v in values))
        missing = [m for m in opt.objectives if m not in result.metrics]
        if missing:
            error = _missing_metric_error(config, result.metrics, missing, bool(history))
            trial.set_user_attr("fail_reason", described(error))
            raise error
        diverged = [
            f"{m} is {result.metrics[m]}" for m in opt.objectives if not math.isfinite(result.metrics[m])
        ]
        if diverged:  # Optuna would fail the trial with no reason recorded
            reason = f"{', '.join(diverged)} at the end of the run"
            trial.set_user_attr("prune_reason", reason)
            raise optuna.TrialPruned(reason)
        if opt.multi_objective:
            return [result.metrics[m] for m in opt.objectives]
        return result.metrics[opt.metric]

    return objective


def _missing_metric_error(
    config: RunConfig, metrics: dict[str, float], missing: list[str], reported: bool
) -> Exception:
    """A run that produced no value for the study's metric(s): a user's training function that returns
    none breaks hpotool's contract (the study stops at once: every trial would fail alike)."""
    if config.trainer is not None:
        from hpotool.user_trainer import missing_metric

        return missing_metric(config.trainer.function, metrics, missing, reported)
    return ValueError(f"the run produced no {', '.join(missing)}; it produced: {', '.join(metrics)}")


def _unmeasured_error(
    config: RunConfig, metrics: dict[str, float], constraint: str, metric: str, reported: bool
) -> Exception:
    """A run that produced no value for a constraint's metric: from a user's training function, a broken
    contract (the study stops at once: every trial would fail alike)."""
    if config.trainer is not None:
        from hpotool.user_trainer import unmeasured_constraint

        return unmeasured_constraint(config.trainer.function, metrics, constraint, metric, reported)
    return ValueError(
        f"constraints: {constraint!r} reads {metric}, which the run did not produce; it produced: "
        f"{', '.join(metrics)}"
    )


def fail_reason(exc: BaseException, config: RunConfig) -> str:
    """The one line a failed trial records: the error (the first line of its message), where in the user's
    own code it was raised, or a hint where hpotool has one."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        _free_device_memory(config.device)
        return (
            f"out of memory ({type(exc).__name__}: {first}); try a smaller batch_size than {config.batch_size} "
            f"or a smaller model"
        )
    return described(exc)


def _free_device_memory(device: str) -> None:
    if device != "cpu":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass
class FailureGuard:
    """Stops the study after `limit` consecutive failed trials, keeping the first error."""

    limit: int
    streak: int = 0
    first_error: str | None = None
    tripped: bool = False
    exhausted: bool = False  # not a failure: the sampler stopped the study (grid, brute force: all tried)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.streak = 0
            return
        self.streak += 1
        if self.first_error is None:
            self.first_error = str(trial.user_attrs.get("fail_reason", "unknown error"))
        if self.limit and self.streak >= self.limit:
            self.tripped = True  # the trial loop stops on it


@dataclass
class StudySummary:
    """The outcome of `run_study`, for the summary table and `--json`."""

    study_name: str
    storage: str
    metric: str
    direction: str
    target: int | None  # None: n_trials null, the timeout ends the study
    counts: dict[str, int]
    ran_now: int
    wall_time: float
    best: dict[str, Any] | None
    stopped: str | None = None
    first_error: str | None = None
    interrupted: int | None = None  # the signal that stopped the run (SIGINT 2, SIGTERM 15)
    failed: bool = False  # stopped by --max-failures failed trials in a row (exit code 1)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def summarize(study: optuna.Study, plan: StudyPlan, ran_now: int, wall_time: float) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    best, pareto, space = None, [], plan.opt.search_space
    if counts["complete"] and plan.opt.multi_objective:
        pareto = [_trial_summary(t, space) for t in sorted(study.best_trials, key=lambda t: t.number)]
    elif counts["complete"]:
        from hpotool.export import ranked_trials

        ranked = ranked_trials(study)  # constraints respected, as Optuna's best_trial does
        best = _trial_summary(ranked[0], space) if ranked else None
    summary = StudySummary(
        study_name=plan.opt.study_name,
        storage=plan.storage_url,
        metric=", ".join(plan.opt.objectives),
        direction=", ".join(plan.opt.study_directions),
        target=plan.opt.n_trials,
        counts={k: v for k, v in counts.items() if v},
        ran_now=ran_now,
        wall_time=wall_time,
        best=best,
    )
    if pareto:
        summary.extra["pareto"] = pareto
    blind = _unpruneable(trials, plan)
    if blind:
        summary.extra["note"] = blind
    failures = _failures(trials, plan)
    if failures:
        summary.extra["failures"] = failures
    return summary


def _failures(trials: list[FrozenTrial], plan: StudyPlan) -> str | None:
    """How many trials failed, why the last one did, and the command that lists them: the summary's
    states say only `fail N`."""
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if not failed:
        return None
    from hpotool.storage import shown_url

    last = failed[-1]
    reason = last.user_attrs.get("fail_reason", "unknown error")
    where = f"--study-name {quote(plan.opt.study_name)} --storage {quote(shown_url(plan.storage_url))}"
    return (
        f"{len(failed)} trial{'s' if len(failed) > 1 else ''} failed; the last, #{last.number}: {reason}; "
        f"hpotool trials {where} --state fail lists them"
    )


def _unpruneable(trials: list[FrozenTrial], plan: StudyPlan) -> str | None:
    """With a pruner, complete trials that reported no value of the metric to it could not have been
    stopped: a training function that never calls `report` (or reports other names) makes the pruner idle."""
    opt = plan.opt
    if opt.multi_objective or opt.pruner.is_nop:
        return None
    blind = [t for t in trials if t.state == TrialState.COMPLETE and not t.intermediate_values]
    if not blind:
        return None
    how = (
        f"; {plan.run.trainer.function} must call report(epoch, {{{opt.metric!r}: value}}) after each epoch"
        if plan.run.trainer is not None
        else ""
    )
    return (
        f"the pruner saw no {opt.metric} from {len(blind)} complete trial(s), so it could not stop them{how}"
    )


def _trial_summary(t: FrozenTrial, space: Mapping[str, Param]) -> dict[str, Any]:
    return {
        "number": t.number,
        "value": t.value if len(t.values or []) == 1 else None,
        "values": t.values,
        "params": decode_params(t.params, space),
        "metrics": t.user_attrs.get("metrics", {}),
        "duration": t.duration.total_seconds() if t.duration else None,
    }
