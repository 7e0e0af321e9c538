"""Claims (`claims.claim`) on Optuna's journal storages, which apply every write in the journal's order and
hold no conditional write of their own: one process of any number claiming the same key wins.

On Redis, the claim is a key set with `SET NX` (one command, which the server runs for one client at a time)
on the journal's own server, under the journal's key prefix: `PREFIX:hpotool:claims:STUDY:KEY`. On a journal
file, it is a file created with `O_CREAT | O_EXCL` (which the file system lets one process create) in a
hidden folder beside the journal, named after it: `studies/.NAME.log.claims/STUDY/KEY-HASH`.

STUDY is the study's id and the journal's first record, hashed: a journal gives no id twice, even after
a study is deleted, but a journal deleted and made again (its file removed, its Redis keys deleted) starts
over at id 0, and its first record (which names the process that wrote it, by a random id) is another.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend


def claim_on_redis(backend: JournalRedisBackend, study_id: int, key: str) -> bool:
    """Whether this process is the first to claim `key` in study `study_id` of the Redis journal `backend`."""
    first = backend._redis.get(f"{backend._prefix}:log:0")
    name = f"{backend._prefix}:hpotool:claims:{_study_tag(study_id, first)}:{key}"
    return bool(backend._redis.set(name, _claimant(), nx=True))


def claim_on_file(backend: JournalFileBackend, study_id: int, key: str) -> bool:
    """Whether this process is the first to claim `key` in study `study_id` of the journal file `backend`."""
    journal = Path(backend._file_path)
    with open(journal, "rb") as log:
        first = log.readline()
    folder = claims_folder(journal) / _study_tag(study_id, first)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / _hashed(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(_claimant())
    return True


def claims_folder(journal: Path) -> Path:
    """The hidden folder beside `journal` that holds its claims."""
    return journal.parent / f".{journal.name}.claims"


def _study_tag(study_id: int, first_record: bytes | str | None) -> str:
    """The study's id, and the journal's first record hashed: a study of a journal made again is another."""
    record = first_record.encode() if isinstance(first_record, str) else first_record or b""
    return f"{study_id}-{hashlib.sha256(record).hexdigest()[:16]}"


def _hashed(key: str) -> str:
    """`key` as a file name (a warm start's key is long; keys hold colons): its start, and its hash."""
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:40]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _claimant() -> bytes:
    """What a claim holds: who made it and when (for a person looking; only its existence counts)."""
    from hpotool.owners import owner

    return json.dumps({**owner(), "time": time.time()}).encode()
