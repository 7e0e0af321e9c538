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


# Optuna's append (`JournalRedisBackend.append_logs`), all of the logs in one script (ARGV: the prefix, the last
# log this process has seen, the logs), refused where the journal's count is below that log, or gone while
# the process had seen one: the journal was emptied (a Redis server restarted without its data, FLUSHDB, its
# keys deleted) while the process ran. Optuna's set the count to -1 and appended on, from
# log 0: a new journal of the records that followed, which no reader can replay, and the process's own reader
# waited for its old count to come round (`optimize` went on running trials no storage kept, then hung).
_APPEND_SEEN = (
    "local count = string.format('%s:log_number', ARGV[1]) "
    "local raw = redis.call('get', count) "
    "local n = tonumber(raw or '-1') "
    "if n == nil or n < tonumber(ARGV[2]) then return redis.error_reply('HPOTOOL_JOURNAL_BEHIND') end "
    "if not raw then redis.call('set', count, n) end "  # a new journal's first log is number 0
    "for i = 3, #ARGV do n = redis.call('incr', count) "
    "redis.call('set', string.format('%s:log:%d', ARGV[1], n), ARGV[i]) end"
)


def _shown(value: bytes) -> str:
    """The start of a key's value, as a line can show it."""
    text = value[:40].decode("utf-8", "replace")
    return repr(text + ("..." if len(value) > 40 else ""))


# What `optimize` says of the trials that were running when it found its journal damaged during the study, and
# what it does once the damage is put right (`JournalFault.in_study`).
_STOPPED = (
    "this run stopped, and the trials that were running stay RUNNING in the journal (nothing could be written "
    "to end them)"
)
_RESUME = (
    "then run the same command to resume: it marks the trials left RUNNING FAIL ('worker died') and runs their "
    "parameters again"
)


class RedisJournal(JournalRedisBackend):
    """Optuna's journal backend on the Redis server of `base` under `prefix`; `url`, the URL given (its
    password hidden in the messages), names the storage in a `JournalFault`."""

    def __init__(self, url: str, base: str, prefix: str) -> None:
        super().__init__(base, False, prefix)
        self.shown = shown_url(url)
        self.seen = -1  # the last log this process has read: the journal holds it, and the count is no lower

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        last = self._last_number()
        self.seen = max(self.seen, log_number_from - 1)  # read before: from the journal, or its snapshot
        if last < self.seen:
            raise self._gone(f"{self._prefix}:log:{self.seen}", self.seen)
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
            self.seen = max(self.seen, number)
            yield record

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append `logs` as Optuna does, refused where the journal went away since this process read it
        (`_APPEND_SEEN`), or its count is no number: a `JournalFault` naming what happened, nothing written."""
        try:
            self._redis.eval(_APPEND_SEEN, 0, self._prefix, self.seen, *(json.dumps(log) for log in logs))
        except redis.exceptions.ResponseError as exc:
            fault = self.refusal(exc)
            if fault is None:
                raise
            raise fault from None

    def append_script(self) -> tuple[str, int]:
        """The script appending logs (`_APPEND_SEEN`), and the last log this process has seen, its first
        argument after the prefix: for appends queued on a pipeline (`journal_writes`)."""
        return _APPEND_SEEN, self.seen

    def refusal(self, exc: Exception) -> JournalFault | None:
        """The `JournalFault` behind a refused append (`_APPEND_SEEN`), or None for another error."""
        said = str(exc)
        if "HPOTOOL_JOURNAL_BEHIND" not in said and "WRONGTYPE" not in said:
            return None
        self._last_number()  # a count written over says so (raises)
        return self._gone(f"{self._prefix}:log:{self.seen}", self.seen)

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
        said = f"storage {self.shown!r}: its journal's key {key!r} {holds}: another program wrote over it"
        keep = f"Keep other programs' keys out of the journal's ({self._prefix}:*)"
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
            past = "the study cannot be read past it: restore the server's data from a backup"
            return JournalFault(
                f"{said}; {past}, or run the study again under a new ?prefix=. {keep}",
                f"{said}, during the study; {_STOPPED}; {past}, {_RESUME}; or run the study again under a new "
                f"?prefix=. {keep}",
            )
        return JournalFault(
            f"{said}; {fix}. {keep}", f"{said}, during the study; {_STOPPED}; {fix}, {_RESUME}. {keep}"
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
            gone = (
                f"{key} and its count {self._prefix}:log_number are gone: the Redis server restarted without its "
                f"data, or the journal's keys were deleted"
            )
            return JournalFault(
                f"storage {self.shown!r}: its journal went away while this command read it ({gone}); run the same "
                f"command to read what it holds now (hpotool studies --storage {quote(self.shown)} lists its "
                f"studies)",
                f"storage {self.shown!r}: its journal went away during the study ({gone}); the study went with it, "
                f"its finished trials and those that were running alike, and this run stopped, writing nothing "
                f"more there: restore the server's data from a backup, then run the same command to resume, or "
                f"run it as it is to start the study again",
            )
        said = (
            f"storage {self.shown!r}: its journal's key {key!r} is gone, though {self._prefix}:log_number counts "
            f"{now + 1} logs (deleted, or evicted: a maxmemory-policy other than noeviction evicts keys)"
        )
        keep = f"keep it from evicting the journal ({redis_cli(self._url)} CONFIG SET maxmemory-policy noeviction)"
        return JournalFault(
            f"{said}; the study cannot be read past it: restore the server's data from a backup, and {keep}",
            f"{said}, during the study; {_STOPPED}; restore the server's data from a backup, and {keep}, "
            f"{_RESUME}",
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
