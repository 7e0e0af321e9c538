"""A trial's FAIL and its reason as one write on Optuna's journal storages (`failed_trials.fail_trial`).

A journal storage applies its records in the journal's order, each one on its own: a trial's reason, then
its FAIL, written one after the other, could have another process's record between them (the trial's
worker telling its result), and the reason stayed on a trial that process ended. Appended together, with
nothing between them, the records meet the trial in one state: running, all of them land; ended, every
one is refused. On a journal file, Optuna's backend writes the records it is given in one write under its
lock; on Redis, they are appended in one MULTI/EXEC transaction with the script Optuna's backend runs for
each record (which the server runs for one client at a time).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.storages import JournalStorage

# What Optuna's `JournalRedisBackend.append_logs` runs for each record: the next number, and the record.
_APPEND = (
    "local i = redis.call('incr', string.format('%s:log_number', ARGV[1])) "
    "redis.call('set', string.format('%s:log:%d', ARGV[1], i), ARGV[2])"
)


def fail_in_one_write(
    storage: JournalStorage, trial_id: int, user_attrs: dict[str, Any], system_attrs: dict[str, Any]
) -> bool:
    """Mark the trial FAIL with `user_attrs` and `system_attrs`, all of them or none: whether they landed
    (False where another process ended the trial first)."""
    from optuna.storages.journal._storage import JournalOperation
    from optuna.trial import TrialState

    done = datetime.now(tz=timezone.utc).isoformat(timespec="microseconds")
    records: list[tuple[int, dict[str, Any]]] = [
        (JournalOperation.SET_TRIAL_USER_ATTR, {"user_attr": user_attrs})
    ]
    if system_attrs:
        records.append((JournalOperation.SET_TRIAL_SYSTEM_ATTR, {"system_attr": system_attrs}))
    state = {"state": TrialState.FAIL, "values": None, "datetime_complete": done}
    records.append((JournalOperation.SET_TRIAL_STATE_VALUES, state))
    with storage._thread_lock:
        worker = storage._replay_result.worker_id  # as Optuna's own writes name this process and thread
        logs = [
            {"op_code": op, "worker_id": worker, "trial_id": trial_id, **fields} for op, fields in records
        ]
        _append_together(storage, logs)
        return _read_back(storage)


def _append_together(storage: JournalStorage, logs: list[dict[str, Any]]) -> None:
    """Append `logs` to the journal with no other process's record between them."""
    from optuna.storages.journal import JournalRedisBackend

    backend = storage._backend
    if not isinstance(backend, JournalRedisBackend):
        backend.append_logs(logs)  # a journal file's: one write, under the journal's lock
        return
    pipe = backend._redis.pipeline(transaction=True)
    pipe.setnx(f"{backend._prefix}:log_number", -1)  # as Optuna's does: a journal's first record is number 0
    for log in logs:
        pipe.eval(_APPEND, 0, backend._prefix, json.dumps(log))
    pipe.execute()


def _read_back(storage: JournalStorage) -> bool:
    """Read the journal past the records this process just appended: whether they landed. Optuna's replay
    stops at each record of this process that it refuses (the trial ended), raising
    `UpdateFinishedTrialError`, and goes on from the next one when read again; appended together, the
    records land all or none."""
    from optuna.exceptions import UpdateFinishedTrialError

    refused = 0
    while True:
        try:
            storage._sync_with_backend()
        except UpdateFinishedTrialError:
            refused += 1  # one record of this process read, and refused
            continue
        return refused == 0
