"""A study's journal on Redis (`RedisJournal`), read without waiting for a log that is gone, and a key of it
that holds what Optuna did not write there said in one line naming the key and what to do (`JournalFault`).

Optuna's reader waits for ever for each log its count says is there (a cluster client writes the count and
the log in two commands). hpotool writes both in one script (Optuna's own, `journal_writes._APPEND`), so a
log below the count that is not there is gone: its Redis server restarted without its data, the keys were
deleted or evicted. Such a journal hung `trials`, `report`, `export-best`, `studies` for good; a key another
program wrote over printed a traceback (a count that is no number) or "cannot open it: WRONGTYPE Operation
against a key holding the wrong kind of value", naming no key. Imports optuna and redis: import it where a
Redis storage is opened."""

from __future__ import annotations

import json
from collections.abc import Generator
from shlex import quote
from typing import Any

import redis
from optuna.storages.journal import JournalRedisBackend

from hpotool.storage_faults import redis_cli
from hpotool.storage_url import StorageFault, shown_url


class JournalFault(StorageFault):
    """A Redis journal that cannot be read: a log gone, or a key holding what Optuna did not write."""


def _shown(value: bytes) -> str:
    """The start of a key's value, as a line can show it."""
    text = value[:40].decode("utf-8", "replace")
    return repr(text + ("..." if len(value) > 40 else ""))


class RedisJournal(JournalRedisBackend):
    """Optuna's journal backend on the Redis server of `base` under `prefix`; `url`, the URL given (its
    password hidden in the messages), names the storage in a `JournalFault`."""

    def __init__(self, url: str, base: str, prefix: str) -> None:
        super().__init__(base, False, prefix)
        self.shown = shown_url(url)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        last = self._last_number()
        for number in range(log_number_from, last + 1):
            key = self._key_log_id(number)
            log = self._get(key)
            if log is None:
                raise self._gone(key, number)
            try:
                record = json.loads(log)
            except ValueError:  # not JSON, or not UTF-8
                if number == last:  # as Optuna reads it: the last log may be half written
                    return
                raise self._overwritten(key, f"holds {_shown(log)}, not a journal log") from None
            if not isinstance(record, dict) or "op_code" not in record:
                raise self._overwritten(key, f"holds {_shown(log)}, not a journal log")
            yield record

    def load_snapshot(self) -> bytes | None:
        return self._get(f"{self._prefix}:snapshot")

    def _last_number(self) -> int:
        """The number of the journal's last log (-1 for none), as its count key holds it."""
        key = f"{self._prefix}:log_number"
        count = self._get(key)
        if count is None:
            return -1
        try:
            return int(count)
        except ValueError:
            raise self._overwritten(key, f"holds {_shown(count)}, not the number of its last log") from None

    def _get(self, key: str) -> bytes | None:
        """The value of `key`; a `JournalFault` where it holds no string (a hash, a list: WRONGTYPE)."""
        try:
            value = self._redis.get(key)
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            kind = self._redis.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            raise self._overwritten(key, f"holds a {kind}, where the journal keeps a string") from None
        assert value is None or isinstance(value, bytes)  # the client decodes no responses
        return value

    def _overwritten(self, key: str, holds: str) -> JournalFault:
        """What a command says of the journal's `key`, which another program wrote over (`holds`)."""
        cli = redis_cli(self._url)
        if key == f"{self._prefix}:snapshot":  # a copy of the logs, which are read without it
            fix = f"delete it ({cli} DEL {key}): the journal's logs are read without it"
        elif key == f"{self._prefix}:log_number":
            last = self._last_log()
            fix = (
                f"set it back to the number of the journal's last log ({cli} SET {key} {last})"
                if last >= 0
                else f"delete it ({cli} DEL {key}): the journal holds no log"
            )
        else:
            fix = (
                "the study cannot be read past it: restore the server's data from a backup, or run the study "
                "again under a new ?prefix="
            )
        return JournalFault(
            f"storage {self.shown!r}: its journal's key {key!r} {holds}: another program wrote over it; {fix}. "
            f"Keep other programs' keys out of the journal's ({self._prefix}:*)"
        )

    def _gone(self, key: str, number: int) -> JournalFault:
        """What a command says of the journal's log `number` (`key`), which its count says is there, and is
        not: the journal went away while the command read it, or that one log did."""
        count = self._redis.get(f"{self._prefix}:log_number")
        try:
            now = int(count) if count is not None else -1
        except ValueError:  # written over since: `_last_number` says so at the next read
            now = -1
        if now < number:
            return JournalFault(
                f"storage {self.shown!r}: its journal went away while this command read it ({key} and its count "
                f"{self._prefix}:log_number are gone: the Redis server restarted without its data, or the "
                f"journal's keys were deleted); run the same command to read what it holds now (hpotool studies "
                f"--storage {quote(self.shown)} lists its studies)"
            )
        return JournalFault(
            f"storage {self.shown!r}: its journal's key {key!r} is gone, though {self._prefix}:log_number counts "
            f"{now + 1} logs (deleted, or evicted: a maxmemory-policy other than noeviction evicts "
            f"keys); the study cannot be read past it: restore the server's data from a backup, and keep it "
            f"from evicting the journal ({redis_cli(self._url)} CONFIG SET maxmemory-policy noeviction)"
        )

    def _last_log(self) -> int:
        """The number of the last log the journal holds, its logs numbered from 0 without a gap; -1 for none.
        Found in about 2 log2(n) EXISTS, not a SCAN of every key."""
        exists = lambda n: bool(self._redis.exists(self._key_log_id(n)))  # noqa: E731
        if not exists(0):
            return -1
        low, high = 0, 1
        while exists(high):
            low, high = high, high * 2
        while high - low > 1:  # exists(low), not exists(high)
            middle = (low + high) // 2
            low, high = (middle, high) if exists(middle) else (low, middle)
        return low
