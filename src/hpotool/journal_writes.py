"""A trial's FAIL and its reason as one write on Optuna's journal storages (`failed_trials.fail_trial`).

A journal storage applies its records in the journal's order, each one on its own: a trial's reason, then
its FAIL, written one after the other, could have another process's record between them (the trial's
worker telling its result), and the reason stayed on a trial that process ended. Appended together, with
nothing between them, the records meet the trial in one state: running, all of them land; ended, every
one is refused. On a journal file, Optuna's backend writes the records it is given in one write under its
lock; on Redis, they are appended in one MULTI/EXEC transaction with the script Optuna's backend runs for
each record (which the server runs for one client at a time).

A queued trial is failed only while it still waits, and the journal holds no conditional write: it applies
a FAIL to a trial a worker took up (its RUNNING record) as to a waiting one. So the look at its state and
the append have no other process's record between them either (`_append_if_waiting`): read, then written,
a worker taking the trial up in between ran a trial failed under it, and its result was refused.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend
    from redis.client import Pipeline

# What Optuna's `JournalRedisBackend.append_logs` runs for each record: the next number, and the record.
_APPEND = (
    "local i = redis.call('incr', string.format('%s:log_number', ARGV[1])) "
    "redis.call('set', string.format('%s:log:%d', ARGV[1], i), ARGV[2])"
)


def fail_in_one_write(
    storage: JournalStorage,
    trial_id: int,
    user_attrs: dict[str, Any],
    system_attrs: dict[str, Any],
    *,
    waiting: bool = False,
) -> bool:
    """Mark the trial FAIL with `user_attrs` and `system_attrs`, all of them or none: whether they landed
    (False where another process ended the trial first). `waiting`: only while the trial is still WAITING
    (False where a worker took it up first)."""
    from optuna.storages.journal._storage import JournalOperation
    from optuna.trial import TrialState

    done = datetime.now(tz=timezone.utc).isoformat(timespec="microseconds")
    # one record an attr: the journal's replay takes no more (an assert; two marks broke the journal)
    records: list[tuple[int, dict[str, Any]]] = [
        (JournalOperation.SET_TRIAL_USER_ATTR, {"user_attr": {key: value}})
        for key, value in user_attrs.items()
    ]
    records += [
        (JournalOperation.SET_TRIAL_SYSTEM_ATTR, {"system_attr": {key: value}})
        for key, value in system_attrs.items()
    ]
    state = {"state": TrialState.FAIL, "values": None, "datetime_complete": done}
    records.append((JournalOperation.SET_TRIAL_STATE_VALUES, state))
    with storage._thread_lock:
        worker = storage._replay_result.worker_id  # as Optuna's own writes name this process and thread
        logs = [
            {"op_code": op, "worker_id": worker, "trial_id": trial_id, **fields} for op, fields in records
        ]
        if not waiting:
            _append_together(storage, logs)
        elif not _append_if_waiting(storage, trial_id, logs):
            return False
        return _read_back(storage)


def _append_together(storage: JournalStorage, logs: list[dict[str, Any]]) -> None:
    """Append `logs` to the journal with no other process's record between them."""
    from optuna.storages.journal import JournalRedisBackend

    backend = storage._backend
    if not isinstance(backend, JournalRedisBackend):
        backend.append_logs(logs)  # a journal file's: one write, under the journal's lock
        return
    pipe = backend._redis.pipeline(transaction=True)
    _queue_appends(pipe, backend, logs)
    _execute(pipe, backend)


def _append_if_waiting(storage: JournalStorage, trial_id: int, logs: list[dict[str, Any]]) -> bool:
    """Append `logs` together only where the trial is WAITING as the journal stands, with no other
    process's record between that look and the append: whether it did. On a journal file, the look and the
    write are made under the journal's lock, which every append takes; on Redis, the append is a MULTI/EXEC
    that WATCHes the journal's record count, so one another process appended after the look aborts it, and
    the trial is looked at again. The journal is read up to now first, without the lock: what is left to
    read under it is the little written since."""
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    backend = storage._backend
    if not _waiting(storage, trial_id):
        return False
    if isinstance(backend, JournalRedisBackend):
        return _append_on_redis_if_waiting(storage, backend, trial_id, logs)
    if not isinstance(backend, JournalFileBackend):  # a backend hpotool does not make: no lock to hold
        backend.append_logs(logs)
        return True
    backend._lock.acquire()
    try:
        if not _waiting(storage, trial_id):
            return False
        write_under_lock(backend, logs)
        return True
    finally:
        backend._lock.release()


def _append_on_redis_if_waiting(
    storage: JournalStorage, backend: JournalRedisBackend, trial_id: int, logs: list[dict[str, Any]]
) -> bool:
    """`_append_if_waiting` on Redis: look, then append unless another process appended since."""
    from redis.exceptions import WatchError

    with backend._redis.pipeline(transaction=True) as pipe:
        while True:
            pipe.watch(f"{backend._prefix}:log_number")
            if not _waiting(storage, trial_id):
                return False
            pipe.multi()
            _queue_appends(pipe, backend, logs)
            try:
                _execute(pipe, backend)
                return True
            except WatchError:
                continue  # another process appended after the look: look again


def _execute(pipe: Pipeline, backend: JournalRedisBackend) -> None:
    """Run the appends queued on `pipe`: a journal that went away since this process read it, or whose count
    is written over, refuses them (`RedisJournal.append_script`), said as the `JournalFault` it is."""
    from redis.exceptions import ResponseError

    from hpotool.redis_journal import RedisJournal

    try:
        pipe.execute()
    except ResponseError as exc:
        fault = backend.refusal(exc) if isinstance(backend, RedisJournal) else None
        if fault is None:
            raise
        raise fault from None


def _queue_appends(pipe: Pipeline, backend: JournalRedisBackend, logs: list[dict[str, Any]]) -> None:
    """Queue on `pipe` the appends of `logs` as Optuna's backend makes them (hpotool's `RedisJournal`: in one
    script, refused where the journal went away since this process read it)."""
    from hpotool.redis_journal import RedisJournal

    if isinstance(backend, RedisJournal):
        script, seen = backend.append_script()
        pipe.eval(script, 0, backend._prefix, seen, *(json.dumps(log) for log in logs))
        return
    pipe.setnx(f"{backend._prefix}:log_number", -1)  # as Optuna's does: a journal's first record is number 0
    for log in logs:
        pipe.eval(_APPEND, 0, backend._prefix, json.dumps(log))


def write_under_lock(backend: JournalFileBackend, logs: list[dict[str, Any]]) -> None:
    """What Optuna's `JournalFileBackend.append_logs` writes, with the journal's lock the caller holds (it
    takes the lock itself, which is not reentrant)."""
    from hpotool.journal_file import JournalFile

    if isinstance(backend, JournalFile):
        backend.check()  # a file that lost what this process read gets nothing more
    lines = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
    with open(backend._file_path, "ab") as journal:
        journal.write(lines.encode("utf-8"))
        journal.flush()
        os.fsync(journal.fileno())


def _waiting(storage: JournalStorage, trial_id: int) -> bool:
    """Whether the trial is WAITING, the journal read up to now."""
    from optuna.trial import TrialState

    _read_all(storage)
    return bool(storage._replay_result.get_trial(trial_id).state == TrialState.WAITING)


def _read_back(storage: JournalStorage) -> bool:
    """Read the journal past the records this process just appended: whether they landed (appended
    together, they land all or none)."""
    return _read_all(storage) == 0


def _read_all(storage: JournalStorage) -> int:
    """Read the journal to its end: how many records of this process it refused. Optuna's replay stops at
    each record of this process that it refuses (the trial ended), raising `UpdateFinishedTrialError`, and
    goes on from the next one when read again."""
    from optuna.exceptions import UpdateFinishedTrialError

    refused = 0
    while True:
        try:
            storage._sync_with_backend()
        except UpdateFinishedTrialError:
            refused += 1  # one record of this process read, and refused
            continue
        return refused
