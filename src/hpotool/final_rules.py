"""A study's `final:` rules (`final: {epochs, seeds, overrides}`): checked before trial 0, and applied to
a trial's config for its final run, with the flags of `train-from-best` over them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError
from hpotool.formatting import format_params
from hpotool.optimize_sections import FinalConfig
from hpotool.overrides import apply_overrides, check_path, config_paths
from hpotool.sections import switchable

if TYPE_CHECKING:
    import optuna

    from hpotool.data import PreparedData
    from hpotool.search_space import Param


_COMPONENTS = ("model", "optimizer", "scheduler", "loss")


def _path_error(path: str, valid: set[str]) -> str | None:
    try:
        check_path(path, valid)
    except HpoError as exc:
        return str(exc).removeprefix(f"search_space.{path}: ")
    return None


def unfit_overrides(
    run: RunConfig, space: Mapping[str, Param], overrides: Mapping[str, Any]
) -> dict[str, str]:
    """The paths of `overrides` that `run` has for no component a search of `space` may pick, each with why
    (`optimizer.momentum` where it picks adam or adamw)."""
    names = switchable(space)
    for section, name in _switched_to(overrides).items():
        names[section] = [*names.get(section, []), *name]
    valid = config_paths(run, names)
    return {path: problem for path in overrides if (problem := _path_error(path, valid))}


def _switched_to(overrides: Mapping[str, Any]) -> dict[str, list[str]]:
    """The component each section's `name` override switches to (`{"optimizer": ["sgd"]}`), whose arguments
    the overrides may set."""
    return {
        p.partition(".")[0]: [str(v)]
        for p, v in overrides.items()
        if p.endswith(".name") and component_arg(p)
    }


def component_arg(path: str) -> tuple[str, str] | None:
    """`(section, argument)` for a path to an argument of a component (`optimizer.momentum`), else None."""
    section, _, arg = path.partition(".")
    return (section, arg) if section in _COMPONENTS and arg and "." not in arg else None


def check_final(run: RunConfig, opt: OptimizeConfig, source: str, data: PreparedData | None = None) -> None:
    """Before trial 0: every `final.overrides` path exists (for some component the search may pick), and
    the overrides give a valid config on the base run, whose model, optimizer, schedule and loss (with
    `data`) build and train one step: a value only the component refuses would otherwise surface in
    `train-from-best`, after the study, stored on it. `final.epochs` is applied with them: a warm-up it
    leaves no run after is refused now too, unless the search sets the schedule (each trial's own)."""
    overrides = opt.final.overrides
    searched = any(path.partition(".")[0] == "scheduler" for path in opt.search_space)  # a key or all of it
    epochs = {} if opt.final.epochs is None or searched else {"epochs": opt.final.epochs}
    if not overrides and not epochs:
        return
    for path, problem in unfit_overrides(run, opt.search_space, overrides).items():
        raise HpoError(f"{source}: final.overrides.{path}: {problem}")
    # the base run's paths, and those of a component the overrides switch it to (scheduler.name: onecycle
    # with scheduler.max_lr: the argument was left out of this check, and failed in train-from-best instead)
    base = config_paths(run, _switched_to(overrides))
    on_base = {p: v for p, v in overrides.items() if _path_error(p, base) is None}
    try:
        config = apply_overrides(run, {**on_base, **epochs})
    except HpoError as exc:
        raise HpoError(f"{source}: {'final' if epochs else 'final.overrides'}: {exc}") from None
    other_data = any(p.startswith("data.") for p in on_base)
    if data is not None and other_data:  # the data the final runs train on: load it as train-from-best will
        from hpotool.data import data_failure, load_data

        try:
            data = load_data(config.data, config.loss.name)
        except Exception as exc:
            raise HpoError(f"{source}: final.overrides: {data_failure(config.data, exc)}") from None
    if data is not None and ("batch_size" in on_base or other_data):
        from hpotool.data import check_batch_size

        shown = format_params({k: v for k, v in on_base.items() if k.startswith("data.")})
        where = f"final.overrides: with {shown}: batch_size" if other_data else "final.overrides.batch_size"
        check_batch_size(config.batch_size, data, f"{source}: {where}")
    # final.epochs too: a schedule is built for the run's length (a step_size it leaves no decay after)
    if data is not None and (epochs or any(p.partition(".")[0] in _COMPONENTS for p in on_base)):
        from hpotool.errors import RunCheckError
        from hpotool.preflight import dry_run

        try:
            dry_run(config, data)
        except RunCheckError as exc:
            shown = format_params({**on_base, **epochs})
            raise HpoError(
                f"{source}: {'final' if epochs else 'final.overrides'}: with {shown}: {exc.detail}"
            ) from None


def _left_out_note(trial_config: RunConfig, path: str, whose: str) -> str | None:
    """The note for an override of a component argument (`optimizer.momentum`) the trial's component takes
    not; None for any other path."""
    part = component_arg(path)
    if part is None:
        return None
    section, arg = part
    name = getattr(trial_config, section).name
    return f"final.overrides.{path} left out: {whose} {section} {name} takes no {arg}"


def final_rules(study: optuna.Study) -> FinalConfig:
    """The `final:` section of the study's stored OptimizeConfig (empty when absent)."""
    from hpotool.fingerprint import stored_config

    data = stored_config(study.user_attrs, "optimize_config").get("final") or {}
    result: FinalConfig = validate_config(FinalConfig, data, f"study {study.study_name!r}: final")
    return result


def final_config(
    trial_config: RunConfig,
    rules: FinalConfig,
    *,
    epochs: int | None = None,
    device: str | None = None,
    where: str = "",
    whose: str = "the trial's",
) -> tuple[RunConfig, list[str]]:
    """The trial's config with the final overrides, then `final.epochs`, then the flags applied, and a note
    for each override left out: one for a component argument the trial's component (`whose`: "the best
    trial's") takes not, which `check_final` let through because another component the search may pick
    takes it (`optimizer.momentum` where the trial chose adam).

    Raises:
        HpoError: naming `where` (the study) and what the config does not accept: `final` (its overrides or
            epochs), or the flag (`--epochs 1`) where the final rules alone are accepted.
    """
    source = f"{where}: final" if where else "final"
    changes: dict[str, Any] = dict(rules.overrides)
    notes = []
    valid = config_paths(trial_config, _switched_to(rules.overrides))  # and the component they switch to
    for path in rules.overrides:
        problem = _path_error(path, valid)
        note = _left_out_note(trial_config, path, whose) if problem else None
        if problem and note is None:
            raise HpoError(f"{source}.overrides.{path}: {problem}")
        if note is not None:
            del changes[path]
            notes.append(note)
    if rules.epochs is not None:
        changes["epochs"] = rules.epochs
    flags = {k: v for k, v in (("epochs", epochs), ("device", device)) if v is not None}
    try:
        return apply_overrides(trial_config, {**changes, **flags}), notes
    except HpoError as exc:
        failure = exc
    if flags:  # a flag the user gave broke what the study's final rules accept: name the flag, not final
        try:
            apply_overrides(trial_config, changes)
        except HpoError:
            pass
        else:
            from shlex import quote

            given = " ".join(f"--{k} {quote(str(v))}" for k, v in flags.items())  # --device '', not --device
            shown = format_params({**changes, **flags})
            detail = str(failure).removeprefix(f"with {shown}: ")  # the flag names the values instead
            if len(flags) == 1:  # "--device gpu: device: must be ...": the flag names the key too
                detail = detail.removeprefix(f"{next(iter(flags))}: ")
            raise HpoError(f"{where}: {given}: {detail}" if where else f"{given}: {detail}") from None
    raise HpoError(f"{source}: {failure}") from None
