"""One searched value checked in one context (the other values a trial sets beside it): the config validates,
its device exists, its data measures every objective and holds a batch, and its components build and train
a step; each failure with the fix for that key (type: int, the choices without null, the monitor's mode)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpotool.argument_checks import COMPONENT_SECTIONS, taken_by_hint, whole_number_hint
from hpotool.component_checks import (
    taken_by_others_marker,
)
from hpotool.config import (
    OptimizeConfig,
    RunConfig,
)
from hpotool.data import PreparedData, check_batch_size, data_failure, load_data, one_logit
from hpotool.device import device_name
from hpotool.errors import HpoError, RunCheckError
from hpotool.formatting import WHOLE_NUMBER_FIX, format_choice, format_params
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    Param,
    is_number_text,
    number_of_text,
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
        shown = ", ".join(missing)
        why = (  # another dataset, of another task
            f"; search only datasets that measure {shown}, or optimize a metric every task measures, such as "
            "val_loss"
        )
        if one_logit(run, data) and load_data(run.data).task == "regression":
            name = run.loss.name
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
            f"{where}: this {data.task} task does not measure {shown}; it measures: "
            f"{', '.join(data.metrics)}{why}"
        )
    check_batch_size(run.batch_size, data, f"{where}: batch_size")


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


# Keys that size what the components see: their values train a step as the components' do.
SIZES = ("batch_size", "epochs")


@dataclass(frozen=True)
class Searched:
    """One searched parameter as `check_space` tries its values: the configs, the data a step trains on
    (None: none loaded), the component contexts it is tried in and the run config's own values."""

    run: RunConfig
    opt: OptimizeConfig
    data: PreparedData | None
    path: str
    param: Param
    contexts: list[dict[str, Any]]
    fixed: Mapping[str, Any]


def check_value(s: Searched, value: Any, context: dict[str, Any]) -> None:
    """`s.path` at `value`, with the other searched values `context`, gives a config that validates, and
    (with `s.data`) whose components build and train a step."""
    run, opt, data, path, param, contexts, fixed = s.run, s.opt, s.data, s.path, s.param, s.contexts, s.fixed
    if isinstance(param, CategoricalParam) and isinstance(value, str) and is_number_text(value):
        _check_quoted_number(s, value, context)
    if isinstance(param, CategoricalParam) and _whole_float(value):
        _check_whole_float(s, value, context)
    try:
        config = apply_overrides(run, {**context, path: value})
    except HpoError as exc:
        if isinstance(param, CategoricalParam) and value is None and str(exc).endswith(", got null"):
            raise HpoError(f"{exc}; {_null_choice_fix(path, param.choices, str(exc))}") from None
        if isinstance(param, CategoricalParam) and _whole_float(value) and "valid integer" in str(exc):
            # model.layers: [1, 2.0] said "Input should be a valid integer, got 2.0", no fix
            whole = [_as_whole(c) for c in param.choices]
            raise HpoError(
                f"{exc}; {path} takes whole numbers: write choices: {format_choice(whole)}"
            ) from None
        fractions = [c for c in _choices(param) if isinstance(c, float) and not c.is_integer()]
        if value in fractions and len(fractions) > 1 and "valid integer" in str(exc):
            # [32.5, 64.5] for batch_size: each choice refused in its own run, 32.5 then 64.5
            raise HpoError(
                f"{str(exc).removesuffix(WHOLE_NUMBER_FIX)}; {path} takes whole numbers, and the choices "
                f"{', '.join(map(format_choice, fractions))} are not: write whole numbers for them"
            ) from None
        if isinstance(param, FloatParam) and "valid integer" in str(exc):
            # the type's fix, not the value's ("write a whole number": the sampler writes it)
            raise HpoError(
                f"{str(exc).removesuffix(WHOLE_NUMBER_FIX)}; {path} takes whole numbers: use type: int"
            ) from None
        if not isinstance(param, CategoricalParam) and "valid string" in str(exc):  # activation: 0.0
            raise HpoError(f"{exc}; {path} takes text: use type: categorical, with its choices") from None
        if "takes no argument" in str(exc) and len(contexts) > 1 and (hint := taken_by_hint(path, contexts)):
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
    if data is not None and (section in (*COMPONENT_SECTIONS, "data") or path in SIZES):
        from hpotool.preflight import dry_run  # torch: a user's training function has no data here

        try:  # an optimizer's values fail as it is built; a model's, loss's, schedule's may not
            dry_run(config, data, step=section != "optimizer")
        except RunCheckError as exc:
            detail, hint = exc.detail, whole_number_hint(path, param, config, fixed)
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


def _whole_float(value: Any) -> bool:
    """Whether `value` is a float with no fractional part (2.0), which an integer key may refuse."""
    return isinstance(value, float) and value.is_integer()


def _as_whole(value: Any) -> Any:
    """`value` with a whole float written as the integer (2.0 as 2), any other value as it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _choices(param: Param) -> list[Any]:
    return param.choices if isinstance(param, CategoricalParam) else []


def _check_quoted_number(s: Searched, value: str, context: dict[str, Any]) -> None:
    """A choice written as a number in quotes (`"32"`, `"1e-3"`) where `s.path` takes a number: refused,
    naming the choices to write. The RunConfig reads `"1e-3"` as 0.001 (or, as a list item of the mlp's
    `hidden`, refuses it), but Optuna would store, show and export the text, and a study searching the
    numbers themselves would not match it (`--enqueue-from`). A key that takes text keeps it as text."""
    number = number_of_text(value)
    try:
        config = apply_overrides(s.run, {**context, s.path: value})
    except HpoError:
        try:  # the text fails where the number fits: the key takes numbers
            taken = leaf_values(apply_overrides(s.run, {**context, s.path: number})).get(s.path)
        except HpoError:
            return  # neither fits: the text's own error says why
    else:
        taken = leaf_values(config).get(s.path)
        if isinstance(taken, bool) or not isinstance(taken, int | float):
            return  # a key that takes text (or a number or text) keeps it
    numbers = [
        number_of_text(c) if isinstance(c, str) and is_number_text(c) else c for c in _choices(s.param)
    ]
    if isinstance(taken, int) and not isinstance(taken, bool):  # a whole-number key: 32.0 as 32 too
        numbers = [_as_whole(c) for c in numbers]  # (["16", "32.0"] said "write [16, 32.0]", refused next)
    raise HpoError(
        f"the choice {format_choice(value)} is text (in quotes), which the study would store and export as "
        f"text, while {s.path} takes the number {format_choice(number)}; write choices: {format_choice(numbers)}, "
        f"without quotes"
    )


def _check_whole_float(s: Searched, value: float, context: dict[str, Any]) -> None:
    """A choice such as 32.0 where `s.path` takes whole numbers (`batch_size: [16, 32.0, 64]`): refused,
    naming the choices to write, as the RunConfig reads it as 32 while Optuna stores and exports 32.0 (a key
    that refuses 2.0 outright, `model.layers`, is named by check_value's own line)."""
    try:
        config = apply_overrides(s.run, {**context, s.path: value})
        if None in _choices(s.param):  # a null the key refuses: its line names the choices, 128.0 as 128
            apply_overrides(s.run, {**context, s.path: None})
    except HpoError:
        return
    taken = leaf_values(config).get(s.path)
    if isinstance(taken, bool) or not isinstance(taken, int):
        return  # a key that takes floats keeps it
    whole = [_as_whole(c) for c in _choices(s.param)]
    raise HpoError(
        f"the choice {format_choice(value)} is a float, which the study would store and export as "
        f"{format_choice(value)}, while {s.path} takes whole numbers; write choices: {format_choice(whole)}"
    )


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
