"""The search space checked against the run config before trial 0: every path exists, every value (and
every pair of values that only work together) gives a config that validates, and, with the data at hand,
components that build and train one step. Each refusal names the optimize config's key and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hpotool.components import (
    AUTO_LOSS_FIX,
    Kind,
    auto_loss,
    component_default,
    component_kwargs,
    taken_by_others_marker,
)
from hpotool.conditions import all_hold, holds, satisfying_value
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_fields import CHECK_COMPONENTS
from hpotool.data import PreparedData, check_batch_size, data_failure, load_data, one_logit
from hpotool.device import device_name
from hpotool.errors import HpoError, RunCheckError
from hpotool.formatting import format_choice, format_params
from hpotool.overrides import apply_overrides, check_path, config_paths, leaf_values
from hpotool.resolve import ARGUMENT_SYNONYMS, closest
from hpotool.run_sections import DataConfig
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    Param,
    boundary_values,
    contains,
    same_value,
    values_text,
)
from hpotool.sections import SECTIONS, check_section_param, section_choices, switchable

if TYPE_CHECKING:
    pass


COMPONENT_SECTIONS: tuple[Kind, ...] = ("model", "optimizer", "scheduler", "loss")


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
            elif isinstance(ref, CategoricalParam) and _boolean_for_number(condition, ref.choices):
                # `when: {model.layers: true}` over the choices [0, 1]: Python's True == 1, YAML's true is no 1
                hint = (
                    f" (a boolean matches only true or false, and a number only numbers; its choices: "
                    f"{format_choice(ref.choices)})"
                )
            elif isinstance(ref, CategoricalParam) and isinstance(condition, str):
                words = [c for c in ref.choices if isinstance(c, str)]
                near = closest(condition, words, n=1)
                if near:  # a misspelt choice: `when: {optimizer.name: sdg}`
                    hint = f" (did you mean {near[0]}? its choices: {format_choice(ref.choices)})"
            values = (
                "" if isinstance(ref, CategoricalParam) else f" ({values_text(ref)})"
            )  # choices: in the hint
            raise HpoError(
                f"the condition {path}: {format_choice(condition)} never holds for {path}'s values{values}, so it "
                f"would never be set{hint}"
            )
        # a conditional parameter has a value only where its own conditions hold (sgd for momentum)
        out.update({**_condition_values(ref, opt, fixed, path), path: value})
    return out


def _boolean_for_number(condition: Any, choices: list[Any]) -> bool:
    """Whether `condition` (a value or `{in: [...]}`) names a boolean for a number among `choices`, or a
    number for a boolean, which Python's == would match and a condition does not."""
    values = condition.get("in", []) if isinstance(condition, dict) else [condition]
    return any(
        isinstance(v, bool) != isinstance(c, bool) and v == c
        for v in values
        for c in choices
        if isinstance(v, int | float) and isinstance(c, int | float)
    )


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


def _check_component_takes(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
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
    if not takes or key in takes:  # **kwargs: anything goes
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
    """Each value a condition on a searched parameter lists (`in`, `ne`) is one it takes; a section, one of
    the choices of a section searched whole (the config named each that builds a choice's section so): one it
    never takes would never match, its condition quietly narrower (or, with ne, wider) than written."""
    for on, condition in (param.when or {}).items():
        ref = opt.search_space.get(on)
        if ref is None or not isinstance(condition, dict):
            continue
        ((test, operand),) = condition.items()
        operands = operand if test == "in" else [operand] if test == "ne" else []
        if on in SECTIONS and isinstance(ref, CategoricalParam):
            stray = next((v for v in operands if isinstance(v, dict) and not contains(ref, v)), _NONE)
            if stray is not _NONE:
                raise HpoError(
                    f"search_space.{path}.when.{on}: {format_choice(stray)} is none of {on}'s choices and gives "
                    f"none of their sections, so no trial matches it; name one of: "
                    f"{', '.join(map(format_choice, ref.choices))}"
                )
            continue
        # a plain parameter: a value it never takes (a misspelt or dropped choice, a number off its range)
        stray = next((v for v in operands if not contains(ref, v)), _NONE)
        if stray is _NONE or (test == "in" and not any(contains(ref, v) for v in operands)):
            continue  # an `in` none of whose values it takes never holds: that check names the condition
        values = f"{on}'s values ({values_text(ref)})"
        if test == "ne":
            words = (
                [c for c in ref.choices if isinstance(c, str)] if isinstance(ref, CategoricalParam) else []
            )
            near = closest(stray, words, n=1) if isinstance(stray, str) else []
            fix = f"did you mean {near[0]}?" if near else "name one of its values, or drop the condition"
            raise HpoError(
                f"search_space.{path}.when.{on}: {format_choice(condition)} holds in every trial: "
                f"{format_choice(stray)} is not one of {values}; {fix}"
            )
        add = f"add it to {on}'s choices" if isinstance(ref, CategoricalParam) else f"widen {on}'s range"
        raise HpoError(
            f"search_space.{path}.when.{on}: {format_choice(stray)} is not one of {values}, so no trial matches "
            f"it; drop it from in:, or {add}"
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


_TAKES = {"valid integer": "whole numbers", "valid number": "numbers", "valid string": "text"}


def _null_choice_fix(path: str, choices: list[Any], message: str) -> str:
    """What to write for a categorical `path` one of whose `choices` is null, which `path` does not take
    (pydantic's `message` says so): the choices without it, a whole-number key's 128.0 written 128."""
    takes = next((what for words, what in _TAKES.items() if words in message), None)
    kept: list[Any] = []
    for c in choices:
        if takes == "whole numbers" and isinstance(c, float) and c.is_integer():
            c = int(c)
        if c is not None and c not in kept:
            kept.append(c)
    wrong = f"{path} takes {takes}, not null" if takes else f"{path} does not take null"
    return f"{wrong}: write choices: {format_choice(kept)}" if kept else f"{wrong}: give it other choices"


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


def auto_task(run: RunConfig, opt: OptimizeConfig, data: PreparedData | None) -> str | None:
    """The task of the data a trial drawing the loss `auto` trains on, where the search switches no dataset
    (searches `data` or a data key other than how much of it a trial trains on); None where it may. The run
    config's task, but where its loss reads float targets as classes (bce_with_logits' 0/1 targets as two
    classes or labels, cross-entropy's one-hot rows or class probabilities): auto reads them as no loss
    does, so its trials load those targets as the regression they are (auto is mse there)."""
    searched = [p.partition(".")[2] for p in opt.search_space if p.partition(".")[0] == "data"]
    if data is None or not all(key == "subset_fraction" for key in searched):
        return None
    # bce_with_logits' two classes or labels, cross-entropy's one-hot rows or class probabilities: auto
    # loads them as the regression they are (the data loaded with no loss says)
    return load_data(run.data).task if data.task != "regression" else data.task


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
    conditions = [cond for param in opt.search_space.values() for cond in param.when or {}]
    valid = config_paths(run, switchable(opt.search_space), wanted=[*opt.search_space, *conditions])
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
                check_section_param(path, param, run, auto_task(run, opt, data), opt.search_space)
            else:
                if (
                    path not in valid
                ):  # an argument of the component only a condition that never holds asks for
                    _check_condition_paths(path, param, opt, valid)
                    _condition_values(param, opt, fixed, path)
                    _check_component_takes(path, run, opt)
                check_path(path, valid)
            if path == "loss.name" and run.trainer is None:
                _check_auto_loss_name(param, run, opt, auto_task(run, opt, data))
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
            smallest = _smallest_batch(values) if path == "batch_size" else None
            searched = _Searched(run, opt, data, path, param, contexts, fixed)
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
                    try:
                        _check_in_context(searched, value, {**extra, **context})
                    except HpoError as exc:
                        if _fails_alone(run, {**context, **extra}):
                            continue  # the paired value fails whatever `path` is: its own check says so
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
        except HpoError as exc:
            message = str(exc)
            if not message.startswith("search_space."):
                message = f"search_space.{path}: {message}"
            raise HpoError(f"{source}: {message}") from None


@dataclass(frozen=True)
class _Searched:
    """One searched parameter as `check_space` tries its values: the configs, the data a step trains on
    (None: none loaded), the component contexts it is tried in and the run config's own values."""

    run: RunConfig
    opt: OptimizeConfig
    data: PreparedData | None
    path: str
    param: Param
    contexts: list[dict[str, Any]]
    fixed: Mapping[str, Any]


def _check_in_context(s: _Searched, value: Any, context: dict[str, Any]) -> None:
    """`_check_value`, or where that fails, again with the parameters a trial picking `value` sets too."""
    try:
        _check_value(s, value, context)
    except HpoError as exc:
        # A trial that picks `value` also sets the parameters conditioned on it (scheduler.mode
        # when: {scheduler.monitor: val_accuracy}): the value is fine where they make it so.
        later = _conditioned_on(s.path, value, context, s.opt, s.fixed)
        if not later:
            raise
        try:
            _check_value(s, value, {**context, **later})
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


def _check_value(s: _Searched, value: Any, context: dict[str, Any]) -> None:
    """`s.path` at `value`, with the other searched values `context`, gives a config that validates, and
    (with `s.data`) whose components build and train a step."""
    run, opt, data, path, param, contexts, fixed = s.run, s.opt, s.data, s.path, s.param, s.contexts, s.fixed
    try:
        config = apply_overrides(run, {**context, path: value})
    except HpoError as exc:
        if isinstance(param, CategoricalParam) and value is None and str(exc).endswith(", got null"):
            raise HpoError(f"{exc}; {_null_choice_fix(path, param.choices, str(exc))}") from None
        if isinstance(param, FloatParam) and "valid integer" in str(exc):
            raise HpoError(f"{exc}; {path} takes whole numbers: use type: int") from None
        if not isinstance(param, CategoricalParam) and "valid string" in str(exc):  # activation: 0.0
            raise HpoError(f"{exc}; {path} takes text: use type: categorical, with its choices") from None
        if "takes no argument" in str(exc) and len(contexts) > 1 and (hint := _taken_by_hint(path, contexts)):
            # the searched names that take it, in place of the built-ins that do (one hint, not two)
            message = str(exc).partition(taken_by_others_marker(path.partition(".")[2].partition(".")[0]))[0]
            raise HpoError(f"{message}{hint}") from None
        raise
    if path == "device":  # a device this machine lacks would fail every trial given it
        try:
            device_name(config.device)
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
        from hpotool.preflight import dry_run  # torch: a user's training function has no data here

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
    from hpotool.schedulers import HIGHER_IS_BETTER

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
