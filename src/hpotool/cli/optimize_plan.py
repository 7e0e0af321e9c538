"""The plan `hpotool optimize` runs: made from its config files or from the configs a study stores, with the
warm start --enqueue-from asks for, and its storage checked before anything is written. Imported by the
command, not at start-up (`hpotool --help`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.cli.optimize_options import TOP_DEFAULT, check_config_options, check_warm_start_options
from hpotool.cli.terminal import print_note
from hpotool.errors import HpoError

if TYPE_CHECKING:
    from hpotool.plan import StudyPlan


@dataclass(frozen=True)
class OptimizeArgs:
    """The options `optimize` was given, as one value its steps share."""

    run_config: Path | None
    optimize_config: Path | None
    study_name: str | None
    storage: str | None
    n_trials: int | None
    timeout: float | None
    device: str | None
    seed: int | None
    max_failures: int
    quiet: bool
    as_json: bool
    report: bool
    workers: int
    enqueue_from: str | None
    enqueue_from_storage: str | None
    top: int | None
    allow_changed_config: bool
    dry_run: bool


def checked_plan(args: OptimizeArgs) -> tuple[StudyPlan, str | None]:
    """The plan of the run `args` ask for, its storage checked; and the note that a resumed study draws new
    values where --enqueue-from names a study it would sample as (None otherwise)."""
    check_config_options(args.run_config, args.optimize_config, args.study_name)
    check_warm_start_options(args.enqueue_from, args.enqueue_from_storage, args.top)
    if args.workers > 1 and not args.dry_run:
        from hpotool.forkserver import start_worker_server

        # imports torch there while this process checks the configs (`workers` starts it again where the
        # checks find the run needs other preloads)
        start_worker_server(_may_train_with_torch(args.run_config))
    plan = _plan(args)
    redraws: str | None = None  # --enqueue-from a study this one would sample as
    if args.enqueue_from is not None:
        top = TOP_DEFAULT if args.top is None else args.top
        plan, redraws = _with_warm_start(
            plan, args.enqueue_from, args.enqueue_from_storage, top, top_given=args.top is not None
        )
    from hpotool.storage import check_storage
    from hpotool.storage_url import storage_origin

    # A storage the run refuses (a folder, no URL, a file of another kind) is the one line printed: the
    # notes came first, then the error. Checked without connecting to a server or writing anything.
    with storage_origin(plan.storage_url, plan.storage_origin):
        check_storage(plan.storage_url)
    return plan, redraws


def _plan(args: OptimizeArgs) -> StudyPlan:
    """The checked plan of the config files, or of the configs stored on the study to join."""
    from hpotool.plan import Overrides, prepare_study

    overrides = Overrides(
        args.study_name,
        args.storage,
        args.n_trials,
        args.timeout,
        args.device,
        args.seed,
        args.allow_changed_config,
    )
    if args.run_config is None or args.optimize_config is None:
        from hpotool.plan import prepare_stored_study

        assert args.study_name is not None  # check_config_options
        from contextlib import nullcontext

        from hpotool.import_hints import imports_for
        from hpotool.storage_url import storage_file

        # a module of the study's project, not found from here, is looked for above the study's file
        file = storage_file(args.storage) if args.storage else None
        with imports_for(file) if file is not None else nullcontext():
            return prepare_stored_study(args.study_name, args.storage, overrides, on_wait=print_note)
    return prepare_study(args.run_config, args.optimize_config, overrides)


def _with_warm_start(
    plan: StudyPlan, enqueue_from: str, enqueue_from_storage: str | None, top: int, top_given: bool
) -> tuple[StudyPlan, str | None]:
    """`plan` with the `top` best trials of study `enqueue_from` queued first, and the note that the study
    draws new values where it would sample as that one (None otherwise). `top_given`: the user gave --top."""
    from hpotool.enqueue_from import with_warm_start
    from hpotool.study_lookup import find_study

    _refuse_itself(plan, enqueue_from, enqueue_from_storage)
    try:
        source = find_study(
            enqueue_from,
            enqueue_from_storage,
            storage_option="--enqueue-from-storage",
            name_option="--enqueue-from",
        )
    except HpoError as exc:
        if str(exc).startswith(("--enqueue-from-storage: ", "--enqueue-from: ")):  # that option named
            raise
        raise HpoError(f"--enqueue-from: {exc}") from None
    plan = with_warm_start(plan, source, top)
    short = _short_of_top(plan, source, top, top_given)
    if short:
        plan = replace(plan, notes=(*plan.notes, short))
    from hpotool.fingerprint import stored_config
    from hpotool.warm_start import same_draws_note

    redraws = same_draws_note(
        plan.opt.model_dump(mode="json"),
        source.study_name,
        stored_config(source.user_attrs, "optimize_config"),
    )
    return plan, redraws


def _refuse_itself(plan: StudyPlan, enqueue_from: str, enqueue_from_storage: str | None) -> None:
    """Refuse `--enqueue-from` naming the study this run runs, in its storage: each point is in the study
    already and none was run again, while the note said "queued 3 of the best trials"."""
    from hpotool.storage_url import default_storage_url, storage_file

    source_url = enqueue_from_storage or default_storage_url(enqueue_from)
    source_file, own_file = storage_file(source_url), storage_file(plan.storage_url)
    same = (
        source_file.resolve() == own_file.resolve()
        if source_file is not None and own_file is not None
        else source_url == plan.storage_url
    )
    if enqueue_from == plan.opt.study_name and same:
        raise HpoError(
            f"--enqueue-from {enqueue_from}: is the study this run runs, in the same storage: its best trials "
            f"are in it already, and a warm start queues another study's; give another study's name, or drop "
            f"--enqueue-from"
        )


def _short_of_top(plan: Any, source: Any, top: int, top_given: bool) -> str | None:
    """The note saying why --enqueue-from queued fewer than --top points, or None."""
    from optuna.trial import TrialState

    from hpotool.ranking import ranked_trials
    from hpotool.warm_start import short_of_top_note

    queued = len(plan.opt.enqueue) - (plan.config_enqueue or 0)
    complete = len(source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return short_of_top_note(source.study_name, top, queued, len(ranked_trials(source)), complete, top_given)


def _may_train_with_torch(run_config: Path | None) -> bool:
    """Whether the worker server, started before the configs are checked, imports torch: not where the run
    config file names a training function (`trainer:`) and this process has no torch yet; whether that
    function needs torch is known once the checks have imported its module. The file is read as YAML
    alone: the checks say what is wrong with it."""
    if run_config is None or "torch" in sys.modules:
        return True
    import yaml

    try:
        raw = yaml.safe_load(run_config.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True
    return not (isinstance(raw, dict) and raw.get("trainer") is not None)
