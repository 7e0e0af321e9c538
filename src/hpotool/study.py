"""The stored study a plan runs in: opened or created (its configs, versions and budget recorded once, a
joining machine waiting for its creator), and described on the console."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hpotool import __version__, data_digest, fingerprint
from hpotool.config import OptimizeConfig
from hpotool.errors import HpoError
from hpotool.formatting import counted
from hpotool.interrupts import deferred
from hpotool.overrides import leaf_values
from hpotool.owners import enqueue_owned, record_creator
from hpotool.plan import StudyPlan
from hpotool.search_space import encode_params
from hpotool.second_study import (
    refuse_a_second_study_beside_a_journal,
    refuse_a_second_study_beside_the_config,
    refuse_a_second_study_under_another_prefix,
)
from hpotool.storage import make_storage
from hpotool.storage_url import location, shown_url, storage_file, storage_origin
from hpotool.study_names import same_series, study_names, typo_of
from hpotool.study_sampler import process_salt, study_sampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def versions() -> dict[str, str]:
    """hpotool's, Optuna's and torch's versions: torch's from the package's metadata where torch is not
    imported (a user's training function that never uses it), not by importing it (~2 s)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch_version = str(torch.__version__)
    else:
        from importlib.metadata import version

        torch_version = version("torch")
    return {"hpotool": __version__, "optuna": optuna.__version__, "torch": torch_version}


def open_study(
    plan: StudyPlan, on_new_study: Callable[[str], None] | None = None
) -> tuple[optuna.Study, tuple[int, ...]]:
    """Create the study, or load it and check it is the same experiment (metric, direction).

    `on_new_study` is told `new study 'NAME' in WHERE` (a file's absolute path, or the URL) when this
    process creates it: a relative path run from another folder makes a new file, which a resume did not mean.

    Returns:
        The study, with this process's sampler, and the salt of its seeds: `process_salt()` where other
        processes may be sampling the study (a trial is running, or another process created it and it has
        no trial yet), else () (see `study_sampler`).
    """
    opt = plan.opt
    refuse_a_second_study_beside_a_journal(plan)
    refuse_a_second_study_beside_the_config(plan)
    with storage_origin(plan.storage_url, plan.storage_origin):
        storage = make_storage(plan.storage_url)
    try:
        existing = optuna.load_study(study_name=opt.study_name, storage=storage)
    except KeyError:
        existing = None
    joined = False
    if existing is None:
        refuse_a_second_study_under_another_prefix(plan)
        try:
            created = _create_study(plan, storage)
        except optuna.exceptions.DuplicatedStudyError:  # another process created it a moment ago
            existing = optuna.load_study(study_name=opt.study_name, storage=storage)
            joined = True
        else:
            if on_new_study is not None:
                near = _near_study(plan, storage)
                on_new_study(f"new study {opt.study_name!r} in {location(plan.storage_url)}{near}")
            return created, ()
    _wait_for_creator(existing, joined=joined)
    check_objectives(existing, plan)
    trials = existing.get_trials(deepcopy=False)
    if fingerprint.ATTR not in existing.user_attrs and all(t.state == TrialState.WAITING for t in trials):
        # Nothing has run in it and it was never described: its creator died in between (kill -9, an OOM
        # kill), or plain Optuna code made it. Left so, it was used unchecked for good, and exported without
        # a run config. The queue is left as it is: prepare_resume queues the warm starts it lacks.
        describe_study(existing, plan)
    fingerprint.check(
        existing,
        plan.run,
        opt,
        allow_changed=plan.allow_changed_config,
        source=plan.storage_from,
        data=plan_data_digest(plan),
        data_source=data_source(plan),
        run_source=run_source(plan),
        opt_source=opt_source(plan),
    )
    _note_other_versions(existing)
    _record_run_settings(existing, opt)
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


def plan_data_digest(plan: StudyPlan) -> dict[str, Any] | None:
    """The digest of the data the plan trains on (`data_digest`); None for a user's own training function,
    which loads its data itself."""
    return None if plan.data is None else data_digest.digest_of(plan.data)


def run_source(plan: StudyPlan) -> str:
    """The run config file the plan's run config came from, as the user gave it, or the configs stored on
    the study, on a machine that joined by the study's name (`study 'NAME': run_config`)."""
    return plan.run_from or f"study {plan.opt.study_name!r}: run_config"


def opt_source(plan: StudyPlan) -> str:
    """The optimize config file the plan's optimize config came from (even with --storage, which
    `storage_from` leaves out), or the configs stored on the study (`study 'NAME': optimize_config`)."""
    return plan.opt_from or f"study {plan.opt.study_name!r}: optimize_config"


def data_source(plan: StudyPlan) -> str:
    """The run config's data section the plan's data comes from, for a refusal of its data: its file (or the
    configs stored on the study, on a machine that joined by the study's name), the key, the dataset and the
    files it reads (`run.yaml: data (mylab.data:load, path: data/train.csv)`)."""
    where = run_source(plan)
    section = plan.run.data
    named = [section.name] + [f"{k}: {v}" for k, v in section.kwargs.items() if isinstance(v, str)]
    return f"{where}: data ({', '.join(named)})"


def check_objectives(existing: optuna.Study, plan: StudyPlan) -> None:
    """Refuse to resume `existing` with another metric or direction (read only: its dry run checks it too).

    Raises:
        HpoError: naming what the study was created for and what the config says.
    """
    opt = plan.opt
    where = f"{plan.storage_from}: " if plan.storage_from else ""  # the optimize config to edit
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
            f"{where}study {opt.study_name!r} in {shown_url(plan.storage_url)} was created to {was}, and this config says "
            f"{now}; use another study_name or storage"
        )
    if not opt.multi_objective and stored.get("metric", opt.metric) != opt.metric:
        raise HpoError(
            f"{where}study {opt.study_name!r} in {shown_url(plan.storage_url)} optimizes {stored['metric']!r}, and this config "
            f"says {opt.metric!r}; use another study_name or storage"
        )
    # Several objectives: each trial's values are the stored metrics in their order, which Optuna compares
    # position by position (another metric, or the same ones reordered, would rank n_params against val_loss).
    stored_metrics = stored.get("metrics")
    if opt.multi_objective and isinstance(stored_metrics, list) and stored_metrics != opt.objectives:
        raise HpoError(
            f"{where}study {opt.study_name!r} in {shown_url(plan.storage_url)} optimizes metrics [{', '.join(map(str, stored_metrics))}], and this "
            f"config says [{', '.join(opt.objectives)}]; its trials' values are those metrics in that order, so not even "
            f"--allow-changed-config can change them: use another study_name or storage"
        )


def _near_study(plan: StudyPlan, storage: Any) -> str:
    """` (did you mean 'NAME', in WHERE?)` for a study of a name close to the one just created, in its storage
    (None: a file not there yet) or (default storage) in a studies/NAME.db beside its file: a misspelt
    study_name or --study-name started a new study instead of resuming that one; "" when there is none."""
    from hpotool.near_names import closest
    from hpotool.storage_url import default_storage_url

    name = plan.opt.study_name
    try:
        names = [] if storage is None else study_names(storage)
        here = {n: location(plan.storage_url) for n in names if n != name}
    except Exception:  # a hint only: a storage that stops answering now fails the run where it writes
        here = {}
    default = Path("studies") / f"{name}.db"
    if plan.storage_url == default_storage_url(name) and default.parent.is_dir():
        here |= {p.stem: location(f"sqlite:///{p}") for p in default.parent.glob("*.db") if p.stem != name}
    near = closest(name, [n for n in here if typo_of(name, n) and not same_series(name, n)], n=1)
    return f" (did you mean {near[0]!r}, in {here[near[0]]}?)" if near else ""


VERSIONS_RUN_ATTR = "versions_run"


def _note_other_versions(study: optuna.Study) -> None:
    """Say which of hpotool's, Optuna's and torch's versions differ from those the study was created with (a
    machine installed apart from the creator, or upgraded since): no other experiment, and not refused, but
    its trials may differ from the creator's in what the versions changed. A build's local tag (torch's
    `+cpu`, `+cu126`) is left out: the device is not part of the experiment either.

    Said on the first run with those versions only, which records them on the study (`VERSIONS_RUN_ATTR`):
    after an upgrade every later resume repeated it, and told the user to install the creator's versions
    again, which would mix a third set into the trials the upgraded ones had run."""
    stored = study.user_attrs.get("versions")
    if not isinstance(stored, dict):
        return
    here = versions()
    differ = [
        name
        for name in here
        if isinstance(stored.get(name), str) and stored[name].split("+")[0] != here[name].split("+")[0]
    ]
    if not differ:
        return
    released = {name: version.split("+")[0] for name, version in here.items()}
    seen = study.user_attrs.get(VERSIONS_RUN_ATTR)
    seen = seen if isinstance(seen, list) else []
    if released in seen:
        return
    study.set_user_attr(VERSIONS_RUN_ATTR, [*seen, released])
    logging.getLogger("hpotool").warning(
        "note: study %r was created with %s: the trials run with these versions may differ from those run "
        "with the study's in what the versions changed (said on the first run with them only); to keep them "
        "alike, install the study's (pip install %s)",
        study.study_name,
        "; ".join(f"{name} {stored[name]}, {here[name]} here" for name in differ),
        " ".join(f"{name}=={stored[name].split('+')[0]}" for name in differ),
    )


def _record_run_settings(study: optuna.Study, opt: OptimizeConfig) -> None:
    """Keep the stored optimize config's n_trials, timeout and `final:` rules at this run's: a machine joining
    the study by its name alone (`prepare_stored_study`) aims for the target the latest run gave (`--n-trials
    40` on a study created with 20), not the one it was created with; and `train-from-best` trains as the
    latest run's `final:` says (an edited `final: {epochs: 60}` was run again, accepted, and ignored)."""
    stored = study.user_attrs.get("optimize_config")
    latest = {"n_trials": opt.n_trials, "timeout": opt.timeout, "final": opt.model_dump(mode="json")["final"]}
    if isinstance(stored, dict) and any(stored.get(key) != value for key, value in latest.items()):
        study.set_user_attr("optimize_config", {**stored, **latest})


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
    """Record this process as its creator, store the configs and versions on a study, and last its
    fingerprint."""
    opt = plan.opt
    record_creator(study)  # before the fingerprint a joining process waits for
    study.set_user_attr("run_config", plan.run.model_dump(mode="json"))
    study.set_user_attr("optimize_config", fingerprint.stored_optimize_config(opt))
    study.set_user_attr("versions", versions())
    data_digest.record(study, plan_data_digest(plan))
    # Optuna's own tools name the objectives too: optuna-dashboard's axes, trials_dataframe's
    # value_<metric> column (values_<metric> for several; hpotool's trials.csv keeps its "value")
    with warnings.catch_warnings():  # "experimental since 3.2"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(opt.objectives)
    fingerprint.record(study, plan.run, opt)


def nothing_to_run(done: int, target: int) -> str:
    """What a run (and its dry run) says of a study that already holds `target` finished trials."""
    return (
        f"already holds {counted(done, 'finished trial')} (n_trials: {target}): nothing to run; "
        f"--n-trials {done + 10}, say, "
        f"runs 10 more"
    )


def new_study_note(plan: StudyPlan) -> str | None:
    """For `optimize --dry-run` of configs whose study is not in its SQLite or journal file (or the file is not
    there yet): the note that the run would create it, where a study of a near name is there (or, by default,
    in studies/), as the new study's line says it (`_near_study`); None otherwise. The dry run's plan said
    only "20 in all": a misspelt study_name went unseen until the run had created the study beside the one
    meant. Read only (the dry run's `storage.reading_only`); a server is not asked, as the dry run asks none."""
    url = plan.storage_url
    path = storage_file(url)
    if path is None:
        return None
    storage = None
    if path.exists():
        storage = make_storage(url, create=False)
        if plan.opt.study_name in study_names(storage):
            return None
    near = _near_study(plan, storage)
    if not near:
        return None
    return f"no study {plan.opt.study_name!r} in {shown_url(url)} yet: the run would create it{near}"


def finished_so_far(plan: StudyPlan, *, ask_server: bool) -> tuple[int | None, bool]:
    """How many finished trials the study holds in the plan's storage already (0: no such study yet), read
    without writing, for `optimize --dry-run`; None where it could not tell: a server not asked (`ask_server`
    false: a dry run of configs contacts none), or a storage that does not open. And whether its grid or
    brute-force search has run every point, so that the run would run nothing.

    Raises:
        HpoError: what the run would refuse in that storage (`storage.check_storage`), a second study beside
            one of its name, or of the study it holds: another metric or direction, another experiment
            (`fingerprint.check`).
    """
    from hpotool.storage import check_storage, load_study

    study_name, url = plan.opt.study_name, plan.storage_url
    check_storage(url)  # what the run would refuse, its dry run refuses
    # A study in journal:studies/NAME.log, or beside the config run from another folder: the run refuses to
    # start a second one in the default file (both read files only, opened read-only in a dry run).
    refuse_a_second_study_beside_a_journal(plan)
    refuse_a_second_study_beside_the_config(plan)
    path = storage_file(url)
    if path is None and not ask_server:
        return None, False
    if path is not None and not path.exists():
        return 0, False
    try:
        study = load_study(study_name, url)
    except HpoError as exc:
        return (0 if str(exc).startswith(f"no study {study_name!r} in ") else None), False
    check_objectives(study, plan)  # the run refuses to resume it with another experiment: so does its dry run
    fingerprint.check(
        study,
        plan.run,
        plan.opt,
        allow_changed=plan.allow_changed_config,
        record=False,
        source=plan.storage_from,
        data=plan_data_digest(plan),
        data_source=data_source(plan),
        run_source=run_source(plan),
        opt_source=opt_source(plan),
    )
    from hpotool.exhaustion import sampler_exhausted

    study.sampler = plan.sampler  # the grid the run would search (a loaded study has Optuna's default)
    return len(study.get_trials(deepcopy=False, states=FINISHED)), sampler_exhausted(study)
