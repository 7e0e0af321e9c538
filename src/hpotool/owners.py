"""The owners of trials: the process that runs each (`worker`: host, pid, PID namespace, in a worker its
command's main process), whether it is of this host, another host or has died, and in words where it ran.

A queued warm start records its queuer too (`QUEUED_BY`: host, pid, and when), so a process that finds it
can tell whether another process is still working on the study (`in_use`).
"""

from __future__ import annotations

import os
import socket
import time
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


# The system attr of a queued warm start naming the process that queued it (`owner()`) and when (`time`).
QUEUED_BY = "hpotool:queued_by"


def owner() -> dict[str, Any]:
    """This process, as recorded on the trials it runs; in a worker, also its command's main process
    (`main`), which tells the trials of one run of several workers (`of_run`)."""
    import multiprocessing

    who: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    namespace = pid_namespace()
    if namespace is not None:
        who["pidns"] = namespace
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        who["main"] = parent.pid
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


def on_another_host(trial: FrozenTrial) -> bool:
    """Whether `trial` is run by a process of another host or PID namespace, as recorded (`worker`); False
    for a trial whose owner is not recorded yet (a live process records itself milliseconds after `ask`)."""
    who = trial.user_attrs.get("worker")
    return isinstance(who, dict) and not _here(who)


def may_be_lost(trial: FrozenTrial, beating: bool) -> bool:
    """Whether RUNNING `trial` may be a dead worker's that nothing would ever end: without a heartbeat
    (`beating`: Redis, journal files), a trial another machine runs (the dead processes of this machine are
    found, and their trials failed)."""
    from optuna.trial import TrialState

    return not beating and trial.state == TrialState.RUNNING and on_another_host(trial)


def run_by(trial: FrozenTrial, pids: Collection[int]) -> bool:
    """Whether `trial` was run by one of the processes `pids` of this host (its `worker` attribute)."""
    who = trial.user_attrs.get("worker")
    return isinstance(who, dict) and _here(who) and who.get("pid") in pids


def ran_elsewhere(trial: FrozenTrial) -> str | None:
    """Where `trial` ran when not in this process or one of its workers (another command on this machine,
    another machine), in words for the trial's line; None for this run's own trials and unrecorded ones."""
    who = trial.user_attrs.get("worker")
    if not isinstance(who, dict):
        return None
    if _here(who):
        if os.getpid() in (who.get("pid"), who.get("main")):
            return None
        return f"another command, pid {who.get('pid')}"
    return f"{who.get('host')}, pid {who.get('pid')}"


def of_run(trial: FrozenTrial, main: int) -> bool:
    """Whether `trial` was run by a worker of the command whose main process, on this host, is `main`."""
    who = trial.user_attrs.get("worker")
    return isinstance(who, dict) and _here(who) and who.get("main") == main


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


def enqueue_owned(study: optuna.Study, params: dict[str, Any], user_attrs: dict[str, Any]) -> None:
    """Queue `params` as `study.enqueue_trial` does, recording this process and the time as the queuer."""
    from optuna.trial import TrialState, create_trial

    queued_by = {**owner(), "time": time.time()}
    system_attrs = {"fixed_params": params, QUEUED_BY: queued_by}
    study.add_trial(create_trial(state=TrialState.WAITING, system_attrs=system_attrs, user_attrs=user_attrs))


def in_use(study: optuna.Study, trials: list[FrozenTrial], grace_s: float) -> str | None:
    """What shows that another process works on `study` now, in words, or None when nothing does.

    A RUNNING trial does, unless its process of this host is gone or its heartbeat is older than `grace_s`
    (one of another host without a heartbeat, on a journal storage, cannot be told from a live one); so
    does a queued warm start (`QUEUED_BY`) whose queuer is a live process of this host, or one of another
    host that queued it under `grace_s` ago: its workers may still be starting, before their first trial.
    This process's own trials and queue are not another's.
    """
    from optuna.trial import TrialState

    stale: set[int] = set()
    if any(t.state == TrialState.RUNNING for t in trials):
        from hpotool.heartbeat import has_heartbeat

        storage = study._storage
        if has_heartbeat(storage):
            from optuna.storages._heartbeat import BaseHeartbeat

            assert isinstance(storage, BaseHeartbeat)  # has_heartbeat says so
            stale = set(storage._get_stale_trial_ids(study._study_id))
    for t in trials:
        if t.state != TrialState.RUNNING or died_here(t) or t._trial_id in stale:
            continue
        who = t.user_attrs.get("worker")
        if isinstance(who, dict) and _here(who) and who.get("pid") == os.getpid():
            continue
        return f"trial #{t.number} is running"
    for t in trials:
        who = t.system_attrs.get(QUEUED_BY)
        if t.state != TrialState.WAITING or not isinstance(who, dict) or not isinstance(who.get("pid"), int):
            continue
        if _here(who):
            if who["pid"] != os.getpid() and _alive(who["pid"]):
                return f"process {who['pid']} of this host, which queued trial #{t.number}, is running"
            continue
        age = time.time() - float(who.get("time", 0))
        if age < grace_s:
            return f"{who.get('host')} (pid {who['pid']}) queued trial #{t.number} {max(age, 0):.0f} s ago"
    return None


# The study system attr naming the process that created the study (`owner()`) and when (`time`).
CREATED_BY = "hpotool:created_by"


def record_creator(study: optuna.Study) -> None:
    """Record this process, and the time, as the creator of `study` (before its fingerprint, which a process
    joining it waits for): a process joining it before its first trial tells a live creator's study, still
    loading its workers' data, from one an earlier run left without a trial (`at_work_elsewhere`)."""
    study._storage.set_study_system_attr(study._study_id, CREATED_BY, {**owner(), "time": time.time()})


def at_work_elsewhere(study: optuna.Study, trials: list[FrozenTrial], grace_s: float) -> bool:
    """Whether another process works on `study` now, though none of its trials may be running: one that
    works on it as `in_use` says, its creator (`CREATED_BY`) or the process of one of its finished trials
    where that is a live process of this host (still starting, or between two trials), or a process of another
    host that created it or finished a trial under `grace_s` ago (its liveness cannot be seen from here)."""
    if in_use(study, trials, grace_s) is not None:
        return True
    from hpotool.durations import SECONDS_ATTR, STARTED_ATTR

    creator = study._storage.get_study_system_attrs(study._study_id).get(CREATED_BY)
    seen: list[tuple[dict[str, Any], float]] = []  # each process, and when it was last seen at work
    if isinstance(creator, dict):
        seen.append((creator, _number(creator.get("time"))))
    for t in trials:
        who = t.user_attrs.get("worker")
        if isinstance(who, dict):
            ended = _number(t.system_attrs.get(STARTED_ATTR)) + _number(t.system_attrs.get(SECONDS_ATTR))
            seen.append((who, ended))
    now = time.time()
    for who, when in seen:
        if not isinstance(who.get("pid"), int):
            continue
        if _here(who):
            pids = [who["pid"]] + ([who["main"]] if isinstance(who.get("main"), int) else [])
            if os.getpid() not in pids and any(_alive(pid) for pid in pids):
                return True
        elif now - when < grace_s:
            return True
    return False


def _number(value: object) -> float:
    """`value` where it is a number, else 0 (a record written by hand, or by another version)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
