"""Say when another process keeps the study's SQLite file locked while a run waits for it.

A write to a SQLite study waits up to the busy timeout (`storage_settings.sqlite_busy_timeout`, 60 s) for another
connection's lock: a sqlite3 shell or a database browser left inside a transaction. The run went silent
meanwhile, a minute or two under `--workers` before the line saying what happened; now a thread beside the
run probes the file's write lock and says once, after a few seconds, what the run is waiting for.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from shlex import quote

from hpotool.storage_settings import sqlite_busy_timeout
from hpotool.storage_url import storage_file

NOTE_AFTER_S = 5.0  # a lock held this long is no write of the run's own (those take milliseconds)
PROBE_S = 1.0


def write_locked(path: Path) -> bool:
    """Whether another connection holds the write lock of the SQLite file `path` now: a write transaction
    begun without waiting (and rolled back at once) fails as 'database is locked'."""
    uri = f"{Path(os.path.abspath(path)).as_uri()}?mode=rw"  # a file not made yet is not made here
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)) as probe:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    return False


@contextmanager
def saying_lock_waits(url: str, say: Callable[[str], None]) -> Iterator[None]:
    """While inside, a thread probes the write lock of the SQLite file `url` names every `PROBE_S`; once it
    has found it locked for `NOTE_AFTER_S` in a row, `say` is told once (until the lock is let go) which file
    and what the run waits for. Nothing for other storages."""
    path = storage_file(url) if url.startswith("sqlite:") else None
    if path is None:
        yield
        return
    stop = threading.Event()
    where = os.path.abspath(path)

    def watch() -> None:
        since: float | None = None  # since when every probe found the file locked
        said = False
        while not stop.wait(PROBE_S):
            if not write_locked(path):
                since, said = None, False
                continue
            now = time.monotonic()
            since = now if since is None else since
            if not said and now - since >= NOTE_AFTER_S:
                said = True
                say(
                    f"another process has kept the study's SQLite file {where!r} locked for over "
                    f"{NOTE_AFTER_S:g} s; this run waits for it, up to {sqlite_busy_timeout()} s per write "
                    f"(HPOTOOL_SQLITE_BUSY_TIMEOUT), then stops. End that process or its open transaction (a "
                    f"sqlite3 shell, a database browser; fuser {quote(where)} lists the processes that have "
                    f"the file open)"
                )

    thread = threading.Thread(target=watch, name="hpotool-lock-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
