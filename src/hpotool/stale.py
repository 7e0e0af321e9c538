"""Trials left RUNNING by a process of this machine that no longer exists (`kill -9`, an OOM kill).

Each trial records its owner (`worker`: host and pid) when it starts. On resume, a RUNNING trial whose
owner ran on this host and is gone is marked FAIL, and its parameters are queued once more so the
configuration is not lost. RUNNING trials of live processes, or of other hosts, are left alone: those are
the heartbeat's job (`storage.fail_stale_trials`, `hpotool fail-stale`).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection

    import optuna
    from optuna.trial import FrozenTrial


def pid_namespace() -> int | None:
    """This process's PID namespace (Linux; None elsewhere). Containers that share their machine's host
    name (`docker run --network host`) each have their own, and their pids mean nothing to one another."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def owner() -> dict[str, Any]:
    """This process, as recorded on the trials it runs."""
    who: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    namespace = pid_namespace()
    if namespace is not None:
        who["pidns"] = namespace
    return who


def _here(who: dict[str, Any]) -> bool:
    """Whether a recorded owner ran on this host and in this PID namespace (a record without one, written
    before hpotool kept it, by its host alone)."""
    if who.get("host") != socket.gethostname():
        return False
    return "pidns" not in who or who["pidns"] == pid_namespace()


def on_this_host(trial: FrozenTrial) -> bool:
    """Whether `trial` is run by a process of this host and PID namespace (its `worker` attribute)."""
    who = trial.user_attrs.get("worker")
    return isinstance(who, dict) and _here(who)


def run_by(trial: FrozenTrial, pids: Collection[int]) -> bool:
    """Whether `trial` was run by one of the processes `pids` of this host (its `worker` attribute)."""
    who = trial.user_attrs.get("worker")
    return isinstance(who, dict) and _here(who) and who.get("pid") in pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def died_here(trial: FrozenTrial) -> bool:
    """Whether `trial`'s owner ran on this host and PID namespace (not this process) and no longer exists."""
    who = trial.user_attrs.get("worker")
    if not isinstance(who, dict) or not _here(who) or not isinstance(who.get("pid"), int):
        return False
    return who["pid"] != os.getpid() and not _alive(who["pid"])


def fail_dead_local_trials(study: optuna.Study, *, silent_only: bool = False) -> list[int]:
    """Mark FAIL the RUNNING trials whose owner process on this host has died, and queue each one's values
    (those it drew, and a queued trial's, such as a warm start taken before it drew them) once more;
    returns their numbers. `silent_only` leaves out those with a heartbeat record: the heartbeat's
    staleness check fails them."""
    from optuna.trial import TrialState

    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not died_here(trial) or (silent_only and _beating(storage, trial._trial_id)):
            continue
        who = trial.user_attrs["worker"]
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"worker died (pid {who['pid']})")
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            continue  # another process got there first
        failed.append(trial.number)
        values = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # a queued point's too
        if values and "retry_of" not in trial.user_attrs:  # re-run it once, not forever; one that drew
            # nothing and was not queued ran nothing (and queued empty, it fails under the grid sampler)
            study.enqueue_trial(values, user_attrs={"retry_of": trial.number})
    return failed


def fail_ownerless_trials(study: optuna.Study, grace_s: float) -> list[int]:
    """Mark FAIL the RUNNING trials that started over `grace_s` ago and never recorded an owner or drew a
    parameter; returns their numbers.

    hpotool records the owner right after `ask`: a process that died (or whose storage stopped answering)
    in between left a trial no heartbeat or owner check could end, and it held one of the study's
    `n_trials` slots for good, so every later run waited forever for it. A trial taken from the queue is
    queued again with its fixed parameters.
    """
    from datetime import datetime

    from optuna.trial import TrialState

    storage = study._storage
    now = datetime.now()  # Optuna's datetime_start is local time, as here
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if "worker" in trial.user_attrs or trial.params or started is None:
            continue
        if (now - started).total_seconds() < grace_s:
            continue  # its process may be about to record itself
        if _beating(storage, trial._trial_id):
            continue  # another program's trial (hpotool records the owner before the first heartbeat)
        reason = "abandoned: its process ended before the trial started (no owner recorded)"
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            continue  # another process got there first
        failed.append(trial.number)
        fixed = trial.system_attrs.get("fixed_params")
        if fixed and "retry_of" not in trial.user_attrs:
            study.enqueue_trial(fixed, user_attrs={"retry_of": trial.number})
    return failed


def _beating(storage: Any, trial_id: int) -> bool:
    """Whether `trial_id` has a heartbeat record (RDB storages; False on storages without a heartbeat)."""
    from optuna.storages import RDBStorage

    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or backend.heartbeat_interval is None:
        return False
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        return models.TrialHeartbeatModel.where_trial_id(trial_id, session) is not None
