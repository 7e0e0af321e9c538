"""Trials left RUNNING by a process of this machine that no longer exists (`kill -9`, an OOM kill).

Each trial records its owner (`worker`: host and pid) when it starts. On resume, a RUNNING trial whose
owner ran on this host and is gone is marked FAIL, and its parameters are queued once more so the
configuration is not lost. RUNNING trials of live processes, or of other hosts, are left alone: those are
the heartbeat's job (`heartbeat.fail_stale_trials`, `hpotool fail-stale`).

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


def claim(study: optuna.Study, key: str) -> bool:
    """Whether this process is the only one to claim `key` in `study`, however many claim it at once: on
    SQLite, PostgreSQL and MySQL by an insert the database lets one process make (`FastReadRDBStorage.claim`);
    on Optuna's journal storages, which hold no conditional write, by a key set with `SET NX` on the
    journal's Redis server, or by a file created with `O_EXCL` beside the journal file (`journal_claims`;
    before, every caller claimed it there, and two resumes at the same moment could both queue a point).
    Other storages (Optuna's in-memory one: one process) let every caller claim it."""
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    from hpotool.journal_claims import claim_on_file, claim_on_redis
    from hpotool.rdb import FastReadRDBStorage

    backend = getattr(study._storage, "_backend", study._storage)
    if isinstance(backend, FastReadRDBStorage):
        return backend.claim(study._study_id, key)
    if isinstance(backend, JournalRedisBackend):
        return claim_on_redis(backend, study._study_id, key)
    if isinstance(backend, JournalFileBackend):
        return claim_on_file(backend, study._study_id, key)
    return True


# The study system attr that one process claims (`claim`) to queue trial N's values again once it failed it
# as stale or as its worker's died (`storage.retry_stale_trial`, `_queue_retry`), and that the live worker of
# a trial so failed claims to keep its result as a new trial (`kept_results`): of the two, one holds them.
RETRIED = "hpotool:retried:"


# The system attr of a trial that its own process told FAIL as its run failed (its training, a missing
# metric, a failed draw: `trial_run.run_trial`), what `--max-failures` counts (`failed_in_run`). A FAIL another
# process wrote (a stale check that took its live worker for dead, a dead worker's, `fail-stale`) or an
# interrupt carries none: its training did not fail.
RUN_FAILED = "hpotool:run_failed"


def failed_in_run(trial: FrozenTrial) -> bool:
    """Whether `trial` is FAIL because its run failed, as its own process told it (`RUN_FAILED`)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and RUN_FAILED in trial.system_attrs


def fail_trial(
    storage: Any, trial_id: int, reason: str, *, waiting: bool = False, run_failed: bool = False
) -> bool:
    """Mark a trial FAIL with `reason` as its `fail_reason`; whether this process did (False where another
    process ended it first). The reason lands with the state or not at all: on SQLite, PostgreSQL and MySQL
    in one transaction, on the journal storages (Redis, journal files) as records appended together, which
    the journal applies all or none of (`journal_writes`). Written first, on its own, it stayed on a trial
    its owner completed in between (on the journal storages until now). `waiting`: a queued trial, failed
    only while it is still WAITING (False where a worker took it up first: before, its run was failed under
    it); on the journal storages it is read first, and a worker taking it up in between is not seen.
    `run_failed`: its own process fails it as its run failed, marked `RUN_FAILED` with the reason.

    Optuna says "another process ended it first" with `UpdateFinishedTrialError` (its row lock on PostgreSQL
    and MySQL, the conditional write on SQLite); it is False here, for every caller: the ownerless-trial
    look and `fail-stale`'s look at every running trial let it out of the command as a traceback when two
    processes looked at once."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import JournalStorage
    from optuna.trial import TrialState

    from hpotool.journal_writes import fail_in_one_write
    from hpotool.rdb import BufferedRDBStorage, FastReadRDBStorage

    expected = TrialState.WAITING if waiting else None
    marks = {RUN_FAILED: True} if run_failed else {}
    try:
        if isinstance(getattr(storage, "_backend", storage), FastReadRDBStorage):
            assert isinstance(storage, BufferedRDBStorage | FastReadRDBStorage)
            return storage.set_trial_state_values(
                trial_id, TrialState.FAIL, reason=reason, from_state=expected, marks=marks
            )
        if expected is not None and storage.get_trial(trial_id).state != expected:
            return False
        if isinstance(storage, JournalStorage):
            return fail_in_one_write(storage, trial_id, {"fail_reason": reason}, marks)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        for key, value in marks.items():
            storage.set_trial_system_attr(trial_id, key, value)
        return bool(storage.set_trial_state_values(trial_id, TrialState.FAIL))
    except UpdateFinishedTrialError:
        return False  # another process ended it first


def fail_dead_local_trials(
    study: optuna.Study, *, silent_only: bool = False, pids: Collection[int] | None = None
) -> list[int]:
    """Mark FAIL the RUNNING trials whose owner process on this host has died, and queue each one's values
    (those it drew, and a queued trial's, such as a warm start taken before it drew them) once more;
    returns their numbers. `silent_only` leaves out those with a heartbeat record: the heartbeat's
    staleness check fails them. `pids`: only the trials of these processes, heartbeat or not (the workers
    a main process saw exit: it need not wait out the heartbeat's grace period to know they are gone)."""
    from optuna.trial import TrialState

    from hpotool.sqlite_files import refuse_a_read_only_study

    refuse_a_read_only_study(study)
    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not died_here(trial):
            continue
        if pids is not None:
            if trial.user_attrs["worker"]["pid"] not in pids:
                continue
        elif silent_only and _beating(storage, trial._trial_id):
            continue
        who = trial.user_attrs["worker"]
        if not fail_trial(storage, trial._trial_id, f"worker died (pid {who['pid']})"):
            continue  # another process (a worker's look, the main process) failed it first: it queued the retry
        failed.append(trial.number)
        values = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # a queued point's too
        if values and not _retries_a_death(study, trial):  # re-run it once, not forever; one that drew
            # nothing and was not queued ran nothing (and queued empty, it fails under the grid sampler)
            _queue_retry(study, trial, values)
    return failed


def _queue_retry(study: optuna.Study, dead: FrozenTrial, values: dict[str, Any]) -> None:
    """Queue `values` of the `dead` trial once more, as `study.enqueue_trial` does, carrying `retry_of` and
    Optuna's retry count on (`failed_trial`, `retry_history`, as a stale trial's retry does), so deaths of
    both kinds count together: before, a stale retry whose worker died here was queued with a count begun
    afresh, and a point whose workers died by turns stale and here was queued again and again. None past
    `MAX_RETRY` retries, nor where another process claimed them first (`RETRIED`)."""
    from optuna.trial import TrialState, create_trial

    from hpotool.storage_settings import MAX_RETRY

    history = [*dead.system_attrs.get("retry_history", []), dead.number]
    if len(history) > MAX_RETRY or not claim(study, f"{RETRIED}{dead.number}"):
        return  # past the count, or the trial's live worker keeps its result in their place (`RETRIED`)
    count = {"failed_trial": dead.system_attrs.get("failed_trial", dead.number), "retry_history": history}
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": values, **count},
            user_attrs={"retry_of": dead.number},
        )
    )


def _retries_a_death(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether `trial` is the retry of one whose process died (`retry_of`): a dead trial's values run once
    more, not forever. The values of one Ctrl-C or SIGTERM interrupted, queued again by a resume (also
    `retry_of`), have not died yet: killed in turn, they run once more."""
    number = trial.user_attrs.get("retry_of")
    if number is None:
        return False
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number == number:
            return t.user_attrs.get("fail_reason") != "interrupted"
    return True


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
            # Its process may be about to record itself: a live one waits up to its busy timeout (60 s) for
            # a SQLite lock, without bound for a server, so a shorter grace would fail a live trial under it
            # (its owner write then raises). Only the process whose owner write failed knows the owner is
            # missing, and it cannot say so: the storage just refused it. It failed after its busy timeout,
            # so with the defaults its trial is past the grace when the same command resumes.
            continue
        if _beating(storage, trial._trial_id):
            continue  # another program's trial (hpotool records the owner before the first heartbeat)
        reason = "abandoned: its process ended before the trial started (no owner recorded)"
        if not fail_trial(storage, trial._trial_id, reason):
            continue  # another process (another look, at the same moment) failed it first: it queued the retry
        failed.append(trial.number)
        fixed = trial.system_attrs.get("fixed_params")
        if fixed and not _retries_a_death(study, trial):
            _queue_retry(study, trial, fixed)
    return failed


def ownerless_left(trials: Collection[FrozenTrial], grace_s: float, storage: Any) -> dict[int, float]:
    """The seconds left before `fail_ownerless_trials` fails each RUNNING trial of `trials` that has no
    owner recorded and drew no parameter yet, by trial number (0 for one past the grace already)."""
    from datetime import datetime

    from optuna.trial import TrialState

    now = datetime.now()  # Optuna's datetime_start is local time, as here
    return {
        t.number: max(grace_s - (now - t.datetime_start).total_seconds(), 0.0)
        for t in trials
        if t.state == TrialState.RUNNING
        and "worker" not in t.user_attrs
        and not t.params
        and t.datetime_start is not None
        and not _beating(storage, t._trial_id)
    }


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


def heartbeat_ages(study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial of `study` that has one, by trial number, as
    the database's clock tells it (Optuna's staleness check compares the same two); empty on storages
    without a heartbeat."""
    from optuna.storages import RDBStorage

    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or backend.heartbeat_interval is None:
        return {}
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    with _create_scoped_session(backend.scoped_session) as session:
        now = session.execute(sqlalchemy.func.now()).scalar()
        assert now is not None
        now = now.replace(tzinfo=None)  # PostgreSQL's is timezone-aware, the stored heartbeats are not
        rows = (
            session.query(models.TrialModel.number, models.TrialHeartbeatModel.heartbeat)
            .join(
                models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id
            )
            .filter(models.TrialModel.study_id == study._study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .all()
        )
    return {number: max((now - beat).total_seconds(), 0.0) for number, beat in rows}
