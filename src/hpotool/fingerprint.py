"""What makes a study one experiment, so a resumed study never silently mixes two.

The fingerprint holds the base RunConfig and the parts of the OptimizeConfig that define the experiment:
search space, metric, direction, sampler and pruner. It leaves out what only says how long or where to
run: n_trials, timeout, workers, display options, storage, the device and torch threads, warm-start and
final-run settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hpotool import data_digest
from hpotool.drawn_space import check_brute_force_space, check_distributions
from hpotool.errors import HpoError
from hpotool.formatting import counted

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from hpotool.config import OptimizeConfig, RunConfig

_log = logging.getLogger("hpotool")
ATTR = "fingerprint"
CHANGES_ATTR = "config_changes"
_RUN_EXCLUDED = ("device", "torch_threads")
_OPT_INCLUDED = (
    "metric",
    "direction",
    "metrics",
    "directions",
    "constraints",
    "sampler",
    "pruner",
    "search_space",
)


def experiment(run: RunConfig, opt: OptimizeConfig) -> dict[str, Any]:
    """The experiment-defining parts of the two configs, as plain JSON data."""
    run_part = {k: v for k, v in run.model_dump(mode="json").items() if k not in _RUN_EXCLUDED}
    opt_part = {k: v for k, v in opt.model_dump(mode="json").items() if k in _OPT_INCLUDED}
    return {"run_config": run_part, **opt_part}


def digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def record(study: optuna.Study, run: RunConfig, opt: OptimizeConfig) -> None:
    """Store the fingerprint on a new study."""
    parts = experiment(run, opt)
    study.set_user_attr(ATTR, {"hash": digest(parts), "parts": parts})


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """`path: old -> new` for every leaf that differs, in a stable order: a section's `name` first, since a
    new sampler or pruner also changes each of its kwargs, which would otherwise hide it."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=lambda k: (k != "name", str(k))):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub}: added {json.dumps(new[key])}")
            elif key not in new:
                out.append(f"{sub}: removed (was {json.dumps(old[key])})")
            else:
                out.extend(differences(old[key], new[key], sub))
        return out
    if old != new:
        return [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def check(
    study: optuna.Study,
    run: RunConfig,
    opt: OptimizeConfig,
    *,
    allow_changed: bool,
    record: bool = True,
    source: str | None = None,
    data: dict[str, Any] | None = None,
    data_source: str = "run config",
    run_source: str = "run config",
    opt_source: str = "optimize config",
) -> None:
    """Refuse to resume `study` with another experiment unless `allow_changed`; then record the change
    (`record` false, for a dry run: refuse what the run would, and write nothing). `source`: the optimize
    config file the search space came from, which a search space Optuna cannot resume with names. `data`:
    the digest of the data this command trains on (`data_digest.digest_of`; None for a user's training
    function), checked against the study's, and `data_source` the run config that names it, for the line: a
    data section that differs only in where it reads the study's data from is no other experiment.
    `run_source` and `opt_source`: the run and optimize config files as the user gave them (or the configs
    stored on the study, for a command run with them), which the lines of a changed experiment name each
    change under (`named_changes`).

    Raises:
        HpoError: naming what changed and the two ways out.
    """
    attrs = study.user_attrs
    stored = attrs.get(ATTR)
    parts = experiment(run, opt)
    if not isinstance(stored, dict):  # made by plain Optuna code: used as it is, if Optuna can go on with it
        check_distributions(study, opt, source=source)
        return
    if stored.get("hash") == digest(parts):
        # Older hpotool let --allow-changed-config record a change Optuna cannot make (a categorical's
        # choices): the configs match, and every trial would fail.
        check_distributions(study, opt, recorded=True, source=source)
        data_digest.check(
            study, attrs, data, source=data_source, allow_changed=allow_changed, record_it=record
        )
        return
    changes = differences(stored.get("parts", {}), parts)
    if data is not None and data_digest.only_where_it_is_read(changes, attrs, data):
        # This machine's copy of the study's data, at another path: the same experiment
        if record:  # each change named under its run config file, as the refusals name them
            data_digest.note_same_data_elsewhere(study, named_changes(changes, run_source, opt_source), data)
        return
    if not allow_changed and data_digest.only_where_it_reads(changes):
        # Read from elsewhere, and other data: the data is what differs, not where it is read
        data_digest.check(study, attrs, data, source=data_source, allow_changed=False, record_it=False)
    check_distributions(study, opt, source=source)  # not even --allow-changed-config makes these work
    check_brute_force_space(study, opt, source)
    undone = _undone_change(study, parts)
    shown = named_changes(changes, run_source, opt_source)
    if undone is not None:  # the configs before the last change, and nothing finished under it: no mix
        _log.warning(
            "note: study %r: these configs undo the change recorded on %s (%s), under which no trial "
            "finished, so the study resumes with them",
            study.study_name,
            undone.get("time", "?"),
            "; ".join(shown[:3]) + ("; ..." if len(shown) > 3 else ""),
        )
    elif not allow_changed:
        _refuse_change(study, shown)
    _refuse_while_running(study)
    data_digest.check(study, attrs, data, source=data_source, allow_changed=allow_changed, record_it=record)
    if not record:
        return
    from_trial = _record_change(study, run, opt, parts, changes)
    if undone is None:  # the flag took effect: say what it changed, which the summary does not show
        _log.warning(
            "note: study %r: --allow-changed-config recorded the change (%s); trials #%d on run with these configs, "
            "and the earlier ones keep theirs (export-best and train-from-best rebuild each with its own)",
            study.study_name,
            "; ".join(shown[:3]) + ("; ..." if len(shown) > 3 else ""),
            from_trial,
        )


def named_changes(changes: list[str], run_source: str, opt_source: str) -> list[str]:
    """The `changes` of the configs (`differences`), each under the file the user edits to change it back:
    `run.yaml: epochs: 3 -> 5` for a run config key, `optimize.yaml: search_space.optimizer.lr.high: 0.1 ->
    0.3` for the optimize config's; `run_config.epochs` named a path of the fingerprint, not a file."""
    return [
        f"{run_source}: {change.removeprefix('run_config.')}"
        if change.startswith("run_config.")
        else f"{opt_source}: {change}"
        for change in changes
    ]


def _refuse_change(study: optuna.Study, changes: list[str]) -> None:
    """Refuse to go on with another experiment than the study's without --allow-changed-config. `changes`:
    each under the file it comes from (`named_changes`).

    Raises:
        HpoError: naming what changed and the two ways out.
    """
    shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
    history = study.user_attrs.get(CHANGES_ATTR)
    last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else None
    # After a recorded change the stored experiment is that change's, not the one the study was created with
    since = (
        f"has run another experiment since the change --allow-changed-config recorded on "
        f"{last.get('time', '?')}"
        if last is not None
        else "was created with another experiment"
    )
    raise HpoError(
        # Said "Resuming" also to a second machine joining, for the first time, a study another command
        # created: this process cannot tell the two apart, and both would mix the experiments.
        f"study {study.study_name!r} {since}: {shown}. Resuming or joining it with these configs would mix "
        f"two experiments: use a new study_name, or pass --allow-changed-config to go on with it anyway"
    )


def _refuse_while_running(study: optuna.Study) -> None:
    """Refuse to change the experiment while another process runs the study: it keeps training with the
    configs in force until now, and its next trials would be numbered past the change, so exported and
    retrained with the new base.

    Raises:
        HpoError: naming the running trials and how to stop them.
    """
    from optuna.trial import TrialState

    from hpotool.owners import died_here

    running = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not died_here(t)  # a process of this machine that died: its trial is marked FAIL on resume
    ]
    if running:
        shown = ", ".join(f"#{n}" for n in running[:5]) + (", ..." if len(running) > 5 else "")
        trials = counted(len(running), "running trial")
        raise HpoError(
            f"study {study.study_name!r} has {trials} ({shown}): another hpotool optimize is running it with the "
            f"experiment --allow-changed-config would replace, and its next trials would be exported with the "
            f"new configs; stop it first (after a crash on another machine: hpotool fail-stale --all-running)"
        )


def _record_change(
    study: optuna.Study, run: RunConfig, opt: OptimizeConfig, parts: dict[str, Any], changes: list[str]
) -> int:
    """Store the new experiment on the study, and the configs in force until now in its history with the
    first trial number they no longer cover, so every trial is exported and retrained with the base it ran
    (`config_of`). Returns that trial number."""
    history = list(study.user_attrs.get(CHANGES_ATTR, []))
    history.append(
        {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "changes": changes,
            "from_trial": len(study.get_trials(deepcopy=False)),
            "previous": {key: study.user_attrs.get(key) for key in ("run_config", "optimize_config")},
        }
    )
    study.set_user_attr(CHANGES_ATTR, history)
    study.set_user_attr(ATTR, {"hash": digest(parts), "parts": parts})
    study.set_user_attr("run_config", run.model_dump(mode="json"))
    study.set_user_attr("optimize_config", stored_optimize_config(opt))
    return int(history[-1]["from_trial"])


def stored_optimize_config(opt: OptimizeConfig) -> dict[str, Any]:
    """The optimize config as a study stores it: its storage URL's password as `***` (a study's attributes
    are read by everyone it is shared with: optuna-dashboard, a copy of the study, `hpotool trials`)."""
    from hpotool.storage_url import shown_url

    dump: dict[str, Any] = opt.model_dump(mode="json")
    if dump.get("storage"):
        dump["storage"] = shown_url(dump["storage"])
    return dump


def _undone_change(study: optuna.Study, parts: dict[str, Any]) -> dict[str, Any] | None:
    """The last recorded change when `parts` are the experiment it replaced and no trial finished
    (COMPLETE or PRUNED) since it: returning to those configs mixes nothing. None otherwise."""
    from optuna.trial import TrialState

    history = study.user_attrs.get(CHANGES_ATTR) or []
    last = history[-1] if isinstance(history, list) and history else None
    if not isinstance(last, dict) or not isinstance(last.get("previous"), dict):
        return None
    previous = last["previous"]
    if not isinstance(previous.get("run_config"), dict) or not isinstance(
        previous.get("optimize_config"), dict
    ):
        return None
    run_part = {k: v for k, v in previous["run_config"].items() if k not in _RUN_EXCLUDED}
    opt_part = {k: v for k, v in previous["optimize_config"].items() if k in _OPT_INCLUDED}
    if digest({"run_config": run_part, **opt_part}) != digest(parts):
        return None
    since = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    if any(t.number >= int(last.get("from_trial", 0)) for t in since):
        return None
    return last


def ran_under_current_base(study_attrs: Mapping[str, Any], trial_number: int) -> bool:
    """Whether trial `trial_number` ran under the study's current base run config, as far as what it trains
    goes (the device and torch threads aside): False for a trial started before an --allow-changed-config
    that changed it, which the current base would not reproduce (or one whose recorded base is lost). True
    in a study without a stored run config (a plain Optuna study): it has no base to change, and before,
    every one of its trials was said to have run under an earlier one."""
    current = study_attrs.get("run_config")
    if not isinstance(current, dict):
        return True
    ran = config_of(study_attrs, trial_number, "run_config")
    if ran is None:
        return False
    return {k: v for k, v in ran.items() if k not in _RUN_EXCLUDED} == {
        k: v for k, v in current.items() if k not in _RUN_EXCLUDED
    }


def earlier_base_trials(study_attrs: Mapping[str, Any], trials: Iterable[FrozenTrial]) -> list[int]:
    """The numbers of those of `trials` that did not run under the study's current base run config
    (`ran_under_current_base`): started before an --allow-changed-config that changed it. [] in a study
    without a stored run config (not created by hpotool optimize): it has no base to change."""
    return [t.number for t in trials if not ran_under_current_base(study_attrs, t.number)]


def stored_config(study_attrs: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The study's stored `run_config` or `optimize_config` user attr; {} where there is none, or where it is
    no mapping (a study hpotool did not make, or whose attr someone else set): read as a plain study."""
    value = study_attrs.get(key)
    return value if isinstance(value, dict) else {}


def config_of(study_attrs: Mapping[str, Any], trial_number: int, key: str) -> dict[str, Any] | None:
    """The stored `run_config` or `optimize_config` trial `trial_number` ran under, from the study's user
    attrs (read them once: each read of `study.user_attrs` queries the storage): the current one, or, for a
    trial started before an allowed change, the one recorded in that change; None where it is no mapping."""
    value = study_attrs.get(key)
    changes = study_attrs.get(CHANGES_ATTR)
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, dict) and trial_number < change.get("from_trial", -1):
            previous = change.get("previous")
            value = previous.get(key) if isinstance(previous, dict) else None
            break
    return value if isinstance(value, dict) else None
