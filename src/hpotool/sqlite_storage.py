"""A SQLite file's storage: the file checked (a folder, a missing, damaged or foreign file), opened in WAL
mode, or read-only where a command writes nothing, and checkpointed into the one database file at exit."""

from __future__ import annotations

import atexit
import functools
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.rdb_storage import created_rdb_storage, not_optuna, rdb_storage
from hpotool.sqlite_files import (
    connect_sqlite,
    connect_sqlite_read_only,
    damaged_error,
    is_optuna_sqlite,
    read_only_query,
    refuse_foreign_sqlite,
    refuse_read_only,
    sqlite_damage,
)
from hpotool.storage_files import refuse_a_folder, refuse_a_long_name
from hpotool.storage_url import shown_url

if TYPE_CHECKING:
    import optuna


# The engines of the SQLite storages this process opened, checkpointed and closed at exit. Weakly held:
# an engine that is garbage-collected has closed its connections, which checkpoints too (the storage
# itself may be gone while its engine lives on in a reference cycle, hence the engines).
_OPEN_SQLITE: weakref.WeakSet[Any] = weakref.WeakSet()
CHECKPOINT_WAIT_MS = 2000


def _close_sqlite_storages() -> None:
    """Write each SQLite storage's WAL back into its database file and close its connections.

    Without this, everything a command wrote stays in `NAME.db-wal` (the CLI ends with `os._exit`, which
    never closes the engine), and a copy of the one file `NAME.db` has no trials. The checkpoint waits at
    most CHECKPOINT_WAIT_MS for other processes using the file, then copies what it can without blocking;
    the last connection to close anywhere completes it.
    """
    for engine in list(_OPEN_SQLITE):
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
        except Exception:  # the process is ending: a busy or vanished file must not turn that into an error
            pass


atexit.register(_close_sqlite_storages)


def no_sqlite_file(url: str) -> HpoError:
    """What a `sqlite:` URL that names no file says: a slash short, or an in-memory database."""
    written = url.removeprefix("sqlite:").lstrip("/")
    if written.split("?", 1)[0] not in ("", ":memory:"):  # sqlite://studies/x.db: a slash short
        return HpoError(
            f"storage {shown_url(url)!r} is not a SQLite file URL: write three slashes before a relative "
            f"path (sqlite:///{written}) or four before an absolute one (sqlite:////{written})"
        )
    return HpoError(
        f"storage {shown_url(url)!r} is an in-memory SQLite database: a study there ends with the command, and its "
        f"heartbeat and workers could not see it; give a file, sqlite:///studies/NAME.db (or no storage: "
        f"that default)"
    )


def sqlite_storage(
    url: str, path: Path, *, create: bool, check_only: bool, read_only: bool
) -> optuna.storages.BaseStorage | None:
    """The RDB storage of the SQLite file `path`: checked first (a folder, a missing, damaged or foreign
    file), then opened read-only where nothing may be written, else in WAL mode and checkpointed at exit."""
    refuse_a_long_name(url, path)
    refuse_a_folder(url, path)
    if not create and not path.exists():
        raise HpoError(f"storage {shown_url(url)!r}: no such SQLite file {os.path.abspath(path)!r}")
    if not create and not is_optuna_sqlite(path):
        damage = sqlite_damage(path)
        raise damaged_error(url, path, damage) if damage else not_optuna(url)
    if create and path.exists():
        refuse_foreign_sqlite(url, path)
    if create:
        refuse_read_only(url, None, "a study run writes its trials")
    if check_only:
        return None
    if read_only or read_only_query(url) is not None:
        creator = functools.partial(connect_sqlite_read_only, str(path))
        return rdb_storage(url.partition("?")[0], {"creator": creator})  # its query is ours to read
    path.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {"creator": functools.partial(connect_sqlite, str(path))}
    storage = created_rdb_storage(url, engine_kwargs)
    _OPEN_SQLITE.add(storage._backend.engine)  # type: ignore[attr-defined]
    return storage
