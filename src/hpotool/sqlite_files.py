"""SQLite files: their connections (WAL and busy timeout, or read-only), read-only URLs and URIs, and the
files refused (damaged, or holding another program's tables)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from hpotool.errors import HpoError
from hpotool.storage_settings import sqlite_busy_timeout
from hpotool.storage_url import shown_url, sqlite_path, storage_named, storage_url_of

if TYPE_CHECKING:
    import optuna


def read_only_query(url: str) -> str | None:
    """`mode=ro` (or `immutable=1`) where a SQLite URL asks SQLite to open its file read-only, else None.
    hpotool opened its file read-write whatever the query said, so `optimize --storage 'sqlite:///x.db?mode=ro'`
    wrote its trials there."""
    if sqlite_path(url) is None:
        return None
    from urllib.parse import parse_qsl

    query = parse_qsl(url.partition("?")[2])
    if ("mode", "ro") in query:
        return "mode=ro"
    if any(k == "immutable" and v not in ("", "0") for k, v in query):
        return "immutable=1"
    return None


def refuse_read_only(url: str, origin: str | None, what: str) -> None:
    """A command that writes to a study (`what`: "optimize writes its trials") refuses a SQLite URL that asks
    for read-only access (`read_only_query`), naming where the URL was given.

    Raises:
        HpoError: naming the query to drop.
    """
    query = read_only_query(url)
    if query is not None:
        raise HpoError(
            f"{storage_named(url, origin)} asks for read-only access (?{query}), and {what} to it; drop "
            f"?{query} (commands that only read a study, such as trials, report and export-best, take it as it is)"
        )


def connect_sqlite_read_only(path: str) -> sqlite3.Connection:
    uri = read_only_uri(Path(path))
    return sqlite3.connect(uri, uri=True, timeout=sqlite_busy_timeout(), check_same_thread=False)


def connect_sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=sqlite_busy_timeout(), check_same_thread=False)
    # WAL: readers never block the writer; NORMAL sync is durable against a crashed process (the
    # trade-off: the last commits may be lost on a power cut or OS crash, never corrupted).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def refuse_a_read_only_study(study: optuna.Study) -> None:
    """`refuse_read_only` for a study `load_study` opened from --storage (`fail-stale`, the one command that
    reads a study by name and then writes to it): its SQLite file read-only, the write ended in Optuna's
    StorageInternalError traceback."""
    url = storage_url_of(study)
    if url is not None:
        refuse_read_only(url, "--storage", "fail-stale writes the trials it marks failed")


def is_optuna_sqlite(path: Path) -> bool:
    """Whether `path` is a SQLite file holding Optuna's tables, checked read-only (opening any other file
    with Optuna would add its tables to it)."""
    tables = sqlite_tables(path)
    return tables is not None and tables >= OPTUNA_TABLES


def refuse_foreign_sqlite(url: str, path: Path) -> None:
    """An `HpoError` when `path` exists and is not a SQLite file a study can go in (empty, or Optuna's): a
    mistyped path to some other database would get Optuna's tables added to it."""
    tables = sqlite_tables(path)
    damage = sqlite_damage(path) if tables is None else None
    if damage:
        raise damaged_error(url, path, damage)
    if tables is None:
        what = "is not a SQLite database"
    elif tables and not tables >= OPTUNA_TABLES and not tables <= _ALL_OPTUNA_TABLES:  # some: being created
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        what = f"holds other tables ({shown}) and no Optuna study"
    else:
        return
    raise HpoError(
        f"storage {shown_url(url)!r}: {str(path)!r} {what}; hpotool would add Optuna's tables to it, so give a new file "
        f"or one hpotool wrote (nothing was written to this one)"
    )


def read_only_uri(path: Path) -> str:
    """A URI that opens the SQLite file `path` for reading without writing anything, beside it either. A
    WAL database with no -wal file beside it (no process has it open: everything is in the file) is read as
    immutable: SQLite's read-only mode would create its -wal and -shm files, and leave them there (a reader
    may not delete them). With a -wal file there (a study running now), read-only mode reads its commits."""
    if not Path(f"{path}-wal").exists() and _wal_mode(path):
        return _immutable_uri(path)
    return f"{path.resolve().as_uri()}?mode=ro"


def _immutable_uri(path: Path) -> str:
    """A URI that reads the SQLite file `path` as it is, with no lock, -wal or -shm file; read-only too:
    without mode=ro a file not there (deleted since it was listed) was made, empty."""
    return f"{path.resolve().as_uri()}?mode=ro&immutable=1"


def _wal_mode(path: Path) -> bool:
    """Whether the SQLite file `path` is in WAL mode (its header's read and write versions are 2)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == b"\x02\x02"


# How long the read-only look at a SQLite file's tables waits for another process's lock: a commit's lock
# lasts milliseconds, and a lock held longer (a sqlite3 shell's `locking_mode=EXCLUSIVE`) is read past, from
# the file as it is. With sqlite3's default 5 s, each of a command's looks at a locked file waited 5 s before
# the busy timeout's own wait and its one-line error.
_TABLES_WAIT_S = 1.0


def sqlite_tables(path: Path) -> set[str] | None:
    """The tables of the SQLite file `path`, read-only (an empty file has none); None when it is not one."""
    wait = min(float(sqlite_busy_timeout()), _TABLES_WAIT_S)
    try:
        with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True, timeout=wait)) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.OperationalError:
        # A WAL database in a folder this process cannot write (a read-only mount, another user's folder)
        # cannot be opened read-only without its -shm file: read the file as it is
        try:
            with contextlib.closing(sqlite3.connect(_immutable_uri(path), uri=True)) as conn:
                return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError:
            return None
    except sqlite3.DatabaseError:
        return None


def sqlite_damage(path: Path) -> str | None:
    """Why the file `path`, which starts as a SQLite database does, cannot be read as one (a copy cut
    short, a disk that filled: "database disk image is malformed"); None for a readable file or any other."""
    try:
        with path.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return None
    except OSError:
        return None
    if sqlite_tables(path) is not None:
        return None
    try:
        with contextlib.closing(sqlite3.connect(_immutable_uri(path), uri=True)) as conn:
            conn.execute("SELECT name FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc) or type(exc).__name__
    return None


def damaged_error(url: str, path: Path, damage: str) -> HpoError:
    """A SQLite file that cannot be read: named, and not called 'not an Optuna storage'."""
    return HpoError(
        f"storage {shown_url(url)!r}: {str(path)!r} is a damaged SQLite file ({damage}): restore it from a "
        f"backup, or copy it again whole (a copy cut short reads so); nothing was written to it"
    )


OPTUNA_TABLES = {"studies", "trials", "version_info"}
# Every table Optuna's RDB storage makes, which another process may be creating one by one right now.
_ALL_OPTUNA_TABLES = OPTUNA_TABLES | {
    "alembic_version",
    "study_directions",
    "study_system_attributes",
    "study_user_attributes",
    "trial_heartbeats",
    "trial_intermediate_values",
    "trial_params",
    "trial_system_attributes",
    "trial_user_attributes",
    "trial_values",
}
