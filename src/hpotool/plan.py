"""A study's plan from two configs (or the configs a stored study holds), checked before anything is
stored: `prepare_study` validates the whole plan (paths, values, data, metric, components, sampler,
pruner, storage) and writes nothing; `enqueue_from.with_warm_start` queues another study's best points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.config_files import load_optimize_config, load_run_config, optimize_config_of
from hpotool.constraints import unsteered_note
from hpotool.data import PreparedData, check_batch_size, data_notes, load_checked
from hpotool.device import device_name, resolve_device
from hpotool.errors import HpoError, RunCheckError
from hpotool.final_rules import check_final
from hpotool.metric_checks import check_constraints, check_objectives
from hpotool.optimize_sections import PrunerConfig
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.param_values import boundary_values
from hpotool.pruner_reach import most_epochs, never_asked_note
from hpotool.sampler_and_pruner import sampler_and_pruner
from hpotool.sections import section_choices
from hpotool.space_checks import check_space
from hpotool.space_mistakes import with_other_keys
from hpotool.space_notes import (
    final_override_notes,
    grid_notes,
    repeat_notes,
    seed_notes,
    single_choice_notes,
    speed_notes,
    width_notes,
)
from hpotool.storage_url import DEFAULT_ORIGIN, shown_url

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler


# The user attr of a queued warm start: "enqueue" (the config's list) or "--enqueue-from".
WARM_START = "warm_start"


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
    storage_from: str | None = None  # the optimize config file the storage URL came from (its own, or the
    # default), not --storage: a relative path in it is read from the folder the command runs in
    # Where the storage URL was given, for its refusals (`storage_url.storage_origin`): "--storage", or
    # "optimize.yaml: storage" for the config's key, storage_url.DEFAULT_ORIGIN for the default studies/<name>.db
    storage_origin: str | None = None
    run_from: str | None = None  # the run config file, named by a failure it causes mid-study (None: joined)
    opt_from: str | None = None  # the optimize config file, named by a refusal of its tracking (None: joined)
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
    # A file that leaves n_trials and timeout null takes its budget from the flags: the flags before
    # --timeout (--study-name, --storage) were refused as "timeout is null too" before it was applied.
    budget_given = o.n_trials is not None or o.timeout is not None
    for key, value in changes.items():  # one at a time, so a refusal names its flag
        try:
            opt = validate_config(
                OptimizeConfig, {**opt.model_dump(), key: value}, "command line", budget_given=budget_given
            )
        except HpoError as exc:
            raise HpoError(
                str(exc).replace(f"command line: {key}: ", f"--{key.replace('_', '-')}: ")
            ) from None
    return run, opt


def prepare_study(run_path: Path, opt_path: Path, overrides: Overrides = Overrides()) -> StudyPlan:
    """Load and check both configs, the data, the components, the sampler and the pruner.

    Writes nothing: every mistake a user can make in the configs is an `HpoError` here, before trial 0.
    """
    if overrides.storage == "":  # `--storage "${VAR:-}"`, VAR unset: no flag, the config's storage (every
        overrides = replace(overrides, storage=None)  # command takes '' so); it ran in studies/<name>.db
    budget_given = overrides.n_trials is not None or overrides.timeout is not None
    run = load_run_config(run_path)
    try:
        opt = load_optimize_config(opt_path, budget_given=budget_given)
    except HpoError as exc:  # a key's refused range beside another key's misspelt path: both told at once
        raise with_other_keys(
            exc,
            opt_path,
            partial(optimize_config_of, path=opt_path, budget_given=budget_given),
            lambda checked: _prepare(run, checked, str(run_path), str(opt_path), overrides),
        ) from None
    plan = _prepare(run, opt, str(run_path), str(opt_path), overrides)
    if overrides.storage is not None:
        return replace(plan, storage_origin="--storage", run_from=str(run_path), opt_from=str(opt_path))
    origin = f"{opt_path}: storage" if opt.storage is not None else DEFAULT_ORIGIN
    return replace(
        plan,
        storage_from=str(opt_path),
        storage_origin=origin,
        run_from=str(run_path),
        opt_from=str(opt_path),
    )


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
    from hpotool.joining import await_study, join_wait
    from hpotool.storage_url import default_storage_url
    from hpotool.study_lookup import check_study_name, find_study

    storage = storage or None  # '': the default storage, not one to wait for a study in
    check_study_name(study_name, storage)  # not waited for: no study of that name can appear
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
            device_name(run.device)
        except HpoError as exc:
            detail = str(exc).partition("; use device:")[0]
            raise HpoError(
                f"{run_src}: {detail}; the device is not part of the experiment: give --device auto (or cpu) to "
                f"train this machine's trials here"
            ) from None
    # The storage the study was found in, not the creator's URL (another host name, a relative SQLite path).
    plan = _prepare(run, opt, run_src, opt_src, replace(overrides, study_name=study_name, storage=url))
    return replace(plan, storage_origin="--storage" if storage is not None else DEFAULT_ORIGIN)


def _prepare(
    run: RunConfig, opt: OptimizeConfig, run_path: str, opt_path: str, overrides: Overrides
) -> StudyPlan:
    """The checked plan of two loaded configs with the command line's overrides applied."""
    pruner_chosen = "pruner" in opt.model_fields_set  # before the overrides, which set every field
    _check_seed_flag(opt, opt_path, overrides)
    run, opt = _with_overrides(run, opt, overrides)
    device_src = "--device" if overrides.device is not None else run_path
    if run.trainer is not None:  # the user's own training code: it owns data, model and metrics
        return _prepare_user_trainer(
            run, opt, run_path, opt_path, overrides, pruner_chosen=pruner_chosen, device_src=device_src
        )
    resolve_device(run.device, device_src)
    data = load_checked(run, run_path)
    check_objectives(run, opt, data, opt_path)
    check_constraints(opt, data, opt_path)
    _check_base_run(run, data, run_path)
    check_space(run, opt, data, opt_path)  # every searched batch_size is a valid one after this
    _check_batch_sizes(run, opt, data, run_path, opt_path)
    plan = _plan(run, opt, data, opt_path, overrides)
    extra = data_notes(data, run)
    if pruner_chosen and not opt.multi_objective and not opt.pruner.is_nop:  # a pruner the config names
        idle = never_asked_note(opt.pruner.name, most_epochs(run.epochs, opt.search_space), opt_path)
        extra += (idle,) if idle else ()  # in trials of 1 epoch
    return replace(plan, notes=(*plan.notes, *extra)) if extra else plan


def _check_seed_flag(opt: OptimizeConfig, opt_path: str, overrides: Overrides) -> None:
    """Refuse --seed where the sampler's kwargs fix its seed, which would leave the flag unused."""
    if overrides.seed is not None and "seed" in opt.sampler.kwargs:
        raise HpoError(
            f"{opt_path}: sampler.kwargs.seed fixes the sampler's seed, so --seed would be ignored; move it to "
            f"the top-level seed: (which --seed overrides) or drop --seed"
        )


def _prepare_user_trainer(
    run: RunConfig,
    opt: OptimizeConfig,
    run_path: str,
    opt_path: str,
    overrides: Overrides,
    *,
    pruner_chosen: bool,
    device_src: str,
) -> StudyPlan:
    """The checked plan of a run trained by the user's own function, which owns data, model and metrics:
    without a pruner where a function takes no `report` argument, so a pruner could never stop it."""
    from hpotool.user_trainer_checks import schedule_note

    device_name(run.device, device_src)  # the function is handed it: one this machine lacks fails now
    pruning = not opt.multi_objective and not opt.pruner.is_nop
    no_report = _trainers_without_report(run, opt, run_path, opt_path, pruning=pruning and pruner_chosen)
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


def _trainers_without_report(
    run: RunConfig, opt: OptimizeConfig, run_path: str, opt_path: str, *, pruning: bool
) -> list[str]:
    """The training functions, the run config's and each searched one, that take no `report` argument; each
    one checked, and the search space checked after the run config's own."""
    from hpotool.user_trainer_checks import check_user_trainer

    assert run.trainer is not None
    try:
        takes_report = check_user_trainer(
            run, pruning=pruning, opt_source=opt_path, objectives=opt.objectives
        )
    except HpoError as exc:
        raise HpoError(f"{run_path}: {exc}") from None
    check_space(run, opt, None, opt_path)
    no_report = [] if takes_report else [run.trainer.function]
    for i, choice in enumerate(section_choices(opt.search_space).get("trainer", [])):
        chosen = apply_overrides(run, {"trainer": choice})
        assert chosen.trainer is not None
        try:
            if not check_user_trainer(
                chosen, pruning=pruning, opt_source=opt_path, objectives=opt.objectives
            ):
                no_report.append(chosen.trainer.function)
        except HpoError as exc:
            raise HpoError(f"{opt_path}: search_space.trainer.choices.{i}: {exc}") from None
    return no_report


def _check_base_run(run: RunConfig, data: PreparedData, run_path: str) -> None:
    """Build the base run and train it one step, so a mistake fails now and not in every trial."""
    from hpotool.preflight import dry_run  # torch: imported here, where hpotool's Trainer will train

    try:
        dry_run(run, data)
    except RunCheckError as exc:
        raise HpoError(f"{run_path}: {exc}") from None


def _check_batch_sizes(
    run: RunConfig, opt: OptimizeConfig, data: PreparedData, run_path: str, opt_path: str
) -> None:
    """The run config's batch_size and the largest searched one fit the training split."""
    batch_param = opt.search_space.get("batch_size")
    searched = (
        [apply_overrides(run, {"batch_size": v}).batch_size for v in boundary_values(batch_param)]
        if batch_param
        else []
    )
    check_batch_size(run.batch_size, data, f"{run_path}: batch_size")
    check_batch_size(max(searched, default=0), data, f"{opt_path}: search_space.batch_size")


def _plan(
    run: RunConfig, opt: OptimizeConfig, data: PreparedData | None, opt_path: str, overrides: Overrides
) -> StudyPlan:
    """The plan itself, once the final run, the tracking, the sampler and the pruner check, with the notes
    the checks leave for the user."""
    check_final(run, opt, opt_path, data)
    if opt.tracking is not None and opt.tracking.mlflow is not None:
        from hpotool.tracking import check_mlflow

        try:
            check_mlflow()
        except HpoError as exc:
            raise HpoError(f"{opt_path}: {exc}") from None
    try:
        sampler, pruner, deprecated = sampler_and_pruner(run, opt)
    except HpoError as exc:
        raise HpoError(f"{opt_path}: {exc}") from None
    notes = (
        *grid_notes(opt, sampler),
        *repeat_notes(opt, sampler, opt_path, leaf_values(run)),
        *(f"{opt_path}: {note}" for note in [unsteered_note(opt.constraints, sampler)] if note),
        *(f"{opt_path}: {note}" for note in dict.fromkeys(deprecated)),
        *single_choice_notes(opt, opt_path),
        *seed_notes(run, opt, opt_path),
        *speed_notes(run, opt, opt_path),
        *width_notes(run, opt, opt_path),
        *final_override_notes(opt, opt_path),
    )
    return StudyPlan(
        run, opt, data, sampler, pruner, opt.storage_url, overrides.allow_changed_config, notes=notes
    )
