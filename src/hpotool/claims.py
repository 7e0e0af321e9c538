"""One process's claim on a key of a study (`claim`), however many claim it at once, and the key a retry
of a trial's values is claimed by (`RETRIED`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna


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
