"""Where studies live: SQLite under studies/ by default, or any Optuna storage URL.

The default SQLite file is opened in WAL mode with a busy timeout, so several local workers can share it
and readers (Optuna's CLI, optuna-dashboard) do not block writers. RDB storages (SQLite, PostgreSQL,
MySQL) are wrapped in `rdb.BufferedRDBStorage`, which batches a trial's reports and answers pruners'
queries from a snapshot. `redis://` URLs use Optuna's journal
storage on Redis; `journal:PATH` uses the journal file storage; anything else goes to SQLAlchemy.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import os
import re
import sqlite3
import sys
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna

SQLITE_BUSY_TIMEOUT_S = 60  # how long a write waits for another process's lock on a SQLite file


def sqlite_busy_timeout() -> int:
    """Seconds a SQLite write waits for another process's lock (`SQLITE_BUSY_TIMEOUT_S`); the environment
    variable HPOTOOL_SQLITE_BUSY_TIMEOUT overrides it (tests, or a run that should give up sooner)."""
    return _seconds_from_env("HPOTOOL_SQLITE_BUSY_TIMEOUT", SQLITE_BUSY_TIMEOUT_S)


# A PostgreSQL or MySQL server that keeps a connection open and has not answered a statement on it for this many
# seconds is asked whether it still answers (a new connection, which must open as fast); one that does not
# ends the command with the usual line (`silence`). A slow statement on a server that answers goes on.
SERVER_SILENCE_S = 60


def server_silence() -> int:
    """Seconds a statement waits before its PostgreSQL or MySQL server is asked whether it still answers
    (`SERVER_SILENCE_S`); the environment variable HPOTOOL_SERVER_SILENCE overrides it."""
    return _seconds_from_env("HPOTOOL_SERVER_SILENCE", SERVER_SILENCE_S)


# Heartbeat (RDB storages: SQLite, PostgreSQL, MySQL): a running trial writes a heartbeat every
# HEARTBEAT_INTERVAL_S; one silent for HEARTBEAT_GRACE_S belongs to a dead worker and is marked FAIL by
# the next worker that starts a trial, and re-run (at most MAX_RETRY times) with the same parameters.
# Optuna 5's journal storages (Redis, journal files) have no heartbeat: `hpotool fail-stale` cleans up.
# The environment variables exist for tests and for clusters whose preemption is faster than a minute.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
MAX_RETRY = 2


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace) in seconds; HPOTOOL_HEARTBEAT_INTERVAL / HPOTOOL_HEARTBEAT_GRACE override them."""
    return _seconds_from_env("HPOTOOL_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S), _seconds_from_env(
        "HPOTOOL_HEARTBEAT_GRACE", HEARTBEAT_GRACE_S
    )


def _seconds_from_env(name: str, default: int) -> int:
    """A whole number of seconds >= 1 from the environment variable `name` (Optuna's heartbeat takes
    positive integers); a value that is not one was reported as the storage failing to open."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise HpoError(
            f"environment variable {name}={raw!r}: give a whole number of seconds, 1 or more "
            f"(default {default}), or unset it"
        )
    return value


def _redis_prefix(url: str) -> tuple[str, bool, str]:
    """`redis://host:6379/0?prefix=NAME` keeps a journal under its own keys (Optuna's default is "")."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = "".join(v for k, v in query if k == "prefix")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    base = urlunsplit(parts._replace(query=rest))
    if not parts.netloc:  # `redis:///0`, the local server to redis-py: urlunsplit made it `redis:/0`, refused
        base = base.replace(":", "://", 1)
    return base, False, prefix


def _refuse_a_redis_name(url: str) -> None:
    """`redis://host:6379/hpo`, a database name after the port as a PostgreSQL URL has one: Redis numbers its
    databases, and its client ignored the name, so the study went into database 0 beside every other
    unprefixed journal there, without a word. A `unix://` URL's path is its socket.

    Raises:
        HpoError: naming the URL to write, with the name as its `?prefix=`.
    """
    from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

    if url.startswith("unix://"):
        return
    parts = urlsplit(url)
    name = unquote(parts.path).strip("/")
    if not name or name.isdigit():
        return
    query = parse_qsl(parts.query)
    named = any(k == "prefix" for k, _ in query)
    fixed = urlunsplit(
        parts._replace(path="", query=urlencode(query if named else [*query, ("prefix", name)]))
    )
    fix = "write" if named else "to keep this study's journal apart write"
    raise HpoError(
        f"storage {shown_url(url)!r}: a Redis URL's path is a database number (0, 1, ...), not a name; "
        f"{fix} {shown_url(fixed)}"
    )


def shown_url(url: str) -> str:
    """`url` as hpotool prints it and writes it into exports and reports: a password in it as `***`
    (`postgresql+psycopg://user:***@host/db`), as SQLAlchemy shows URLs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


class StorageFault(HpoError):
    """A storage that failed at its work (locked by another process, read-only, a server gone away): not its
    URL's fault, so `storage_origin` leaves the message as it is."""


# The origin of the storage a config without `storage:` and a command without --storage use:
# studies/<name>.db (`default_storage_url`), named so in its refusals.
DEFAULT_ORIGIN = "default"


def storage_named(url: str, origin: str | None) -> str:
    """How a message names storage `url`, given where it came from (`storage_origin`): `optimize.yaml:
    storage: 'URL'`, `--storage: 'URL'`, `the default storage studies/<name>.db` (`DEFAULT_ORIGIN`), or
    `storage 'URL'` where that is not known."""
    if origin is None:
        return f"storage {shown_url(url)!r}"
    if origin == DEFAULT_ORIGIN:
        return f"the default storage {storage_file(url) or shown_url(url)}"
    return f"{origin}: {shown_url(url)!r}"


@contextlib.contextmanager
def storage_origin(url: str | None, origin: str | None) -> Iterator[None]:
    """A refusal of storage `url` (`storage 'URL': ...`) raised inside names where the URL was given, so the
    user knows what to edit: `optimize.yaml: storage: 'URL': ...` for an optimize config's `storage:` key,
    `--storage: 'URL': ...` for the option, `the default storage studies/<name>.db: ...` for the default
    (`DEFAULT_ORIGIN`). Other errors, a `StorageFault`, and any where `origin` is None pass unchanged.

    Raises:
        HpoError: the refusal, its origin named.
    """
    try:
        yield
    except HpoError as exc:
        if origin is None or url is None or isinstance(exc, StorageFault):
            raise
        head = f"storage {shown_url(url)!r}"
        if not str(exc).startswith(head):
            raise
        raise HpoError(f"{storage_named(url, origin)}{str(exc)[len(head) :]}") from None


def default_storage_url(study_name: str) -> str:
    return f"sqlite:///studies/{study_name}.db"


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal URL names (relative: to the folder the command runs in); None for a server."""
    return (
        Path(url.removeprefix("journal:")).expanduser() if url.startswith("journal:") else _sqlite_path(url)
    )


def with_file(url: str, path: Path) -> str:
    """`url`, a SQLite or journal URL, naming `path` instead (its query kept)."""
    if url.startswith("journal:"):
        return f"journal:{path}"
    query = url.partition("?")[2]
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


def location(url: str) -> str:
    """Where a study in `url` is kept, as a user looks for it: a SQLite or journal file's absolute path (a
    relative one is read from the folder the command runs in), else the URL as shown."""
    path = storage_file(url)
    return os.path.abspath(path) if path is not None else shown_url(url)


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    from urllib.parse import unquote

    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    # `~` as the shell reads it: SQLite takes it as a folder named ~ under the current one
    written = Path(path).expanduser()
    # `%20` as SQLAlchemy reads it, so Optuna's CLI and optuna-dashboard given the same URL open this file;
    # a file an older hpotool made under the name as written is still found there
    decoded = Path(unquote(path)).expanduser()
    return written if decoded != written and written.exists() and not decoded.exists() else decoded


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


# Set while a command may read storages and must write nothing (`optimize --dry-run`): `make_storage` then
# opens a SQLite file read-only (`read_only_uri`), and makes no file or folder. Opened as a run opens it, a
# dry run turned a plain Optuna database to WAL mode (rewriting its header) and made -wal and -shm files
# beside an hpotool one.
_READ_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("hpotool_read_only", default=False)


@contextlib.contextmanager
def reading_only() -> Iterator[None]:
    """Within it, every storage `make_storage` opens is read, never written (see `_READ_ONLY`)."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def read_only_query(url: str) -> str | None:
    """`mode=ro` (or `immutable=1`) where a SQLite URL asks SQLite to open its file read-only, else None.
    hpotool opened its file read-write whatever the query said, so `optimize --storage 'sqlite:///x.db?mode=ro'`
    wrote its trials there."""
    if _sqlite_path(url) is None:
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


def _connect_sqlite_read_only(path: str) -> sqlite3.Connection:
    uri = read_only_uri(Path(path))
    return sqlite3.connect(uri, uri=True, timeout=sqlite_busy_timeout(), check_same_thread=False)


def _connect_sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=sqlite_busy_timeout(), check_same_thread=False)
    # WAL: readers never block the writer; NORMAL sync is durable against a crashed process (the
    # trade-off: the last commits may be lost on a power cut or OS crash, never corrupted).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


# The drivers the extras install, for URLs that name none (SQLAlchemy then wants its own default driver).
_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "mysql"),
}


def make_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`.

    Args:
        url: `sqlite:///path.db`, `postgresql+psycopg://...`, `mysql+pymysql://...`, `redis://...`,
            `journal:path.log`, or any URL SQLAlchemy understands.
        create: make the SQLite file's folder when missing; when false, a missing file is an error.
    """
    storage = _make_storage(url, create=create)
    assert storage is not None
    return storage


_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379, "rediss": 6379}


def _url_example(scheme: str) -> str:
    """A well-formed URL of `scheme` (`postgresql+psycopg`, `mysql`, `redis`), to copy."""
    base = scheme.partition("+")[0]
    if base in ("redis", "rediss"):
        return f"{scheme}://:password@host:6379/0"
    if scheme in _DRIVERS:  # the bare scheme: the driver hpotool's extras install
        scheme = _DRIVERS[scheme][0]
    return f"{scheme}://user:password@host:{_PORTS.get(base, 'PORT')}/db"


def _refuse_a_malformed_url(url: str) -> None:
    """A server URL whose host and port cannot be read (`postgresql+psycopg://[::1`, `mysql+pymysql://u@host:
    port/db`): SQLAlchemy said "cannot open it: invalid literal for int() with base 10: 'port'", redis-py
    "Port could not be cast to integer value", naming neither the part nor the form to write.

    Raises:
        HpoError: naming what is malformed and a URL of the right form.
    """
    from urllib.parse import urlsplit

    scheme = url.partition("://")[0]
    example = _url_example(scheme)
    host_port = url.partition("://")[2].partition("/")[0].partition("?")[0].rpartition("@")[2]
    after_host = host_port.rpartition("]")[2]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
        if not after_host.endswith(":"):
            return
    except ValueError:
        pass
    if after_host.endswith(":"):  # `host:/db`: urllib reads no port, SQLAlchemy int('')
        what = f"{host_port!r} has a ':' and no port after it"
    elif host_port.count("[") != host_port.count("]"):
        what = f"the IPv6 address in {host_port!r} lacks its closing ]"
        example = example.replace("host", "[::1]")
    else:
        port = after_host.rpartition(":")[2]
        what = (
            f"its port {port!r} is not a number"
            if not port.isdigit()
            else f"its port {port} is out of range (0 to 65535)"
        )
    raise HpoError(f"storage {shown_url(url)!r} is malformed: {what}; write it as {example}")


def _url_of_path(value: str) -> str:
    """`for the SQLite file x.db, write sqlite:///x.db` where a storage that is not a URL is the path of a
    SQLite file or journal (`storage: studies/x.db`, a new user's first guess), else ''. A `file:` URI's path
    (`file:studies/x.db`, `file:///abs/x.db`, as SQLite's own URIs name a file) is the file's: the advice was
    `sqlite:///file:studies/x.db`, a file named so."""
    if value.startswith("file:"):
        value = value.removeprefix("file:")
        value = "/" + value.lstrip("/") if value.startswith("//") else value
    value, _, query = value.partition("?")
    suffix = Path(value).suffix.lower()
    if suffix in (".db", ".sqlite", ".sqlite3"):
        return f"for the SQLite file {value}, write sqlite:///{value}" + (f"?{query}" if query else "")
    if suffix == ".log":
        return f"for the journal file {value}, write journal:{value}"
    return ""


def check_storage(url: str) -> None:
    """What a run refuses in `url`, found without connecting to a server or writing anything (`optimize
    --dry-run`): not a URL, an unknown scheme or a missing driver, an in-memory SQLite database, a folder,
    an existing file that is not a SQLite database (or is a damaged one, or holds another program's tables)
    or not an Optuna journal. A dry run passed all of those, and the run then refused them.

    Raises:
        HpoError: the line the run would print.
    """
    _make_storage(url, create=True, check_only=True)


def _make_storage(url: str, *, create: bool, check_only: bool = False) -> optuna.storages.BaseStorage | None:
    import optuna

    heartbeat_settings()  # a bad setting fails here, before a journal (which has no heartbeat) is written
    sqlite_busy_timeout()
    server_silence()
    read_only = _READ_ONLY.get()
    create = (create and not read_only) or check_only
    try:
        if url.startswith(("redis://", "rediss://")):
            _refuse_a_malformed_url(url)
        if url.startswith(("redis://", "rediss://", "unix://")):
            _refuse_a_redis_name(url)
            if check_only:
                return None
            import warnings

            from optuna.storages.journal import JournalRedisBackend

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                backend = JournalRedisBackend(*_redis_prefix(url))
            backend._redis.ping()  # fail now, with a clear message, not at the first trial
            _OPENED_SERVERS.append(url)
            return optuna.storages.JournalStorage(backend)
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            journal = Path(url.removeprefix("journal:")).expanduser()
            _refuse_a_long_name(url, journal)
            refuse_a_folder(url, journal)
            if not create and not journal.exists():
                raise HpoError(
                    f"storage {shown_url(url)!r}: no such journal file {os.path.abspath(journal)!r}"
                )
            if not is_optuna_journal(journal):
                raise HpoError(
                    f"storage {shown_url(url)!r}: {str(journal)!r} is not an Optuna journal file (its first line is not a "
                    f"journal record); give the journal hpotool optimize wrote to, or a new file name (nothing "
                    f"was written to this one)"
                )
            unwritable = _file_hint(url) if create else ""  # reading a journal writes nothing
            if unwritable:
                raise HpoError(f"storage {shown_url(url)!r}: cannot run a study in it{unwritable}")
            if check_only:
                return None
            journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        path = _sqlite_path(url)
        if path is None and url.startswith("sqlite:"):
            written = url.removeprefix("sqlite:").lstrip("/")
            if written.split("?", 1)[0] not in ("", ":memory:"):  # sqlite://studies/x.db: a slash short
                raise HpoError(
                    f"storage {shown_url(url)!r} is not a SQLite file URL: write three slashes before a relative "
                    f"path (sqlite:///{written}) or four before an absolute one (sqlite:////{written})"
                )
            raise HpoError(
                f"storage {shown_url(url)!r} is an in-memory SQLite database: a study there ends with the command, and its "
                f"heartbeat and workers could not see it; give a file, sqlite:///studies/NAME.db (or no storage: "
                f"that default)"
            )
        if path is not None:
            _refuse_a_long_name(url, path)
            refuse_a_folder(url, path)
            if not create and not path.exists():
                raise HpoError(f"storage {shown_url(url)!r}: no such SQLite file {os.path.abspath(path)!r}")
            if not create and not is_optuna_sqlite(path):
                damage = sqlite_damage(path)
                raise damaged_error(url, path, damage) if damage else _not_optuna(url)
            if create and path.exists():
                _refuse_foreign_sqlite(url, path)
            if create:
                refuse_read_only(url, None, "a study run writes its trials")
            if check_only:
                return None
            if read_only or read_only_query(url) is not None:
                creator = functools.partial(_connect_sqlite_read_only, str(path))
                return _rdb_storage(url.partition("?")[0], {"creator": creator})  # its query is ours to read
            path.parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs: dict[str, Any] = {"creator": functools.partial(_connect_sqlite, str(path))}
            storage = _created_rdb_storage(url, engine_kwargs)
            _OPEN_SQLITE.add(storage._backend.engine)  # type: ignore[attr-defined]
            return storage
        if "://" not in url or url.startswith("file:"):
            raise HpoError(
                f"storage {shown_url(url)!r} is not a storage URL; "
                + (
                    _url_of_path(url)
                    or "use sqlite:///path.db, postgresql+psycopg://..., mysql+pymysql://..., redis://host:6379 or "
                    "journal:path.log"
                )
            )
        _refuse_a_malformed_url(url)
        if check_only:  # the dialect and its driver, as the engine loads them; no connection
            import sqlalchemy

            sqlalchemy.engine.make_url(url).get_dialect()
            return None
        from hpotool import silence

        silence.watch(server_silence())  # the connections server_connect_kwargs has watched
        if not create and not _has_optuna_tables(url):
            raise _not_optuna(url)
        opened = _created_rdb_storage(url, {"pool_pre_ping": True, **server_connect_kwargs(url)})
        _OPENED_SERVERS.append(url)
        return opened
    except HpoError:
        raise
    except ImportError as exc:
        scheme = url.partition("://")[0]
        if scheme in _DRIVERS:  # SQLAlchemy's default driver for the bare scheme, not the one we install
            fix = f"name the driver hpotool[{_DRIVERS[scheme][1]}] installs: {_DRIVERS[scheme][0]}://..."
        else:
            fix = "install hpotool[postgres], [mysql] or [redis]"
        raise HpoError(f"storage {shown_url(url)!r}: a driver is missing ({exc}); {fix}") from None
    except Exception as exc:  # SQLAlchemy/redis errors: unreachable server, bad URL, wrong password
        if type(exc).__name__ == "NoSuchModuleError":  # SQLAlchemy knows no such database or driver
            raise HpoError(f"storage {shown_url(url)!r}: {_unknown_scheme(url)}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = _file_hint(url) or _open_hint(url, str(exc))
        first = first.rstrip(".") if hint else first
        raise HpoError(f"storage {shown_url(url)!r}: cannot open it: {first}{hint}") from None


def _refuse_a_long_name(url: str, path: Path) -> None:
    """A SQLite or journal file whose path holds a name too long for a file: every stat of it raised
    `OSError: [Errno 36] File name too long` as a traceback.

    Raises:
        HpoError: naming the long part, its length and the limit.
    """
    from hpotool.atomic import long_name

    too_long = long_name(path)
    if too_long is not None:
        raise HpoError(f"storage {shown_url(url)!r}: in its path, {too_long}; give a shorter path")


def refuse_a_folder(url: str, path: Path) -> None:
    """A storage URL naming a folder (`--storage sqlite:///studies`, for the folder the studies go in) was
    read as a file: 'is not a SQLite database; hpotool would add Optuna's tables to it', or 'is not an
    Optuna storage (it has no Optuna tables)' for a read, or '[Errno 21] Is a directory' for a journal.

    Raises:
        HpoError: `path` is a folder, naming a file in it to give instead.
    """
    if path.is_dir():
        journal = url.startswith("journal:")
        kind, scheme, suffix = ("journal", "journal:", ".log") if journal else ("SQLite", "sqlite:///", ".db")
        raise HpoError(
            f"storage {shown_url(url)!r}: {str(path)!r} is a folder, not a {kind} file; give a file in it, "
            f"{scheme}{(path / 'NAME').as_posix()}{suffix} (NAME: the study's name)"
        )


def _file_hint(url: str) -> str:
    """What to do about a SQLite or journal file this process cannot write, or whose folder it cannot write
    (a read-only mount, another user's file): a study run writes to both (SQLite's -wal and -shm files, the
    journal's lock file, beside the file), and SQLite writes beside a file even to read it; "" otherwise."""
    journal = url.startswith("journal:")
    path = Path(url.removeprefix("journal:")).expanduser() if journal else _sqlite_path(url)
    if path is None:
        return ""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    blocked = next((p for p in (folder, path) if p.exists() and not os.access(p, os.W_OK)), None)
    if blocked is None:
        return ""
    blocked = Path(os.path.abspath(blocked))  # a relative URL's: `ls -l` it from anywhere
    if not path.exists():
        return f"; this process cannot write to {str(blocked)!r}: give a path in a folder you can write to"
    if blocked == path:
        what = "a study run writes to the file"
    elif journal:
        what = "a study run writes beside the file (its lock file)"
    else:
        what = "SQLite writes beside the file (its -wal and -shm files) even to read a study"
    return (
        f"; this process cannot write to {str(blocked)!r}, and {what}: copy it to a folder you can write to "
        f"and give that path"
    )


def _open_hint(url: str, error: str) -> str:
    """What to do about a server storage that refused to open, from its error text ("" when unknown)."""
    import re
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        host, port, user = parts.hostname or "localhost", parts.port, unquote(parts.username or "")
    except ValueError:
        return ""
    database = unquote(parts.path.lstrip("/"))
    missing = re.search(r"database \"([^\"]+)\" does not exist|Unknown database '([^']+)'", error)
    if missing:
        name = missing.group(1) or missing.group(2) or database
        if url.startswith("postgres"):
            command = (
                f"createdb -h {host}{f' -p {port}' if port else ''}{f' -U {user}' if user else ''} {name}"
            )
        else:
            command = (
                f"mysql -h {host}{f' -P {port}' if port else ''}{f' -u {user}' if user else ''} "
                f"-e 'CREATE DATABASE {name}'"
            )
        return f"; create the database first: {command}"
    lowered = error.lower()
    if any(word in lowered for word in ("password", "access denied", "role ", "authentication", "auth ")):
        where = " (or in ~/.pgpass, PGPASSWORD)" if url.startswith("postgres") else ""
        return f"; check the user name and password in the URL{where}"
    where = f"{host}{f':{port}' if port else ''}"
    if url.startswith("rediss://") and any(
        word in lowered for word in ("timed out", "timeout", "ssl", "tls")
    ):
        # A TLS handshake with a Redis that speaks plain text waits for a reply that never comes.
        return (
            f"; rediss:// connects with TLS: if the Redis on {where} does not take TLS connections, use "
            f"redis://{where}; otherwise is the server running there? check the host and port in the URL"
        )
    if any(word in lowered for word in ("refused", "resolve", "not known", "timed out", "timeout")):
        return f"; is the server running on {where}? check the host and port in the URL"
    if "db index is out of range" in lowered:
        return "; Redis numbers its databases from 0 (16 of them unless configured): redis://host:6379/0"
    return ""


def lost_connection(exc: BaseException) -> BaseException | None:
    """The database or Redis error behind `exc` when the storage stopped answering (its server went away,
    the connection dropped, a write timed out), or None for any other error. Looks through the exceptions
    that raised it (Optuna wraps a failed commit in `StorageInternalError`)."""
    sa = sys.modules.get("sqlalchemy.exc")
    rd = sys.modules.get("redis.exceptions")
    kinds: tuple[type[BaseException], ...] = ()
    if sa is not None:
        kinds += (sa.OperationalError, sa.InterfaceError)
    if rd is not None:
        kinds += (rd.ConnectionError, rd.TimeoutError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# The server storages (database, Redis) this process opened: a command that loses one after opening it says
# so in one line (`server_lost`). SQLite's OperationalError ("database is locked") is not a server going away.
_OPENED_SERVERS: list[str] = []


def forget_opened_servers() -> None:
    """Start a command afresh: a server an earlier command of this process opened (the tests, a notebook
    driving the CLI) is not the one a later command's error is about."""
    _OPENED_SERVERS.clear()
    silence = sys.modules.get("hpotool.silence")
    if silence is not None:
        silence.forget()


def _found_silent() -> str | None:
    """What `silence` found, where it found the server of this process's storage silent: the cause to say
    in place of the driver's error (the shut connection's "Lost connection", or a timed-out reconnection)."""
    silence = sys.modules.get("hpotool.silence")
    said = silence.found_silent() if silence is not None else None
    if said is None:
        return None
    return f"{said}: check the server, or a proxy in front of it; hpotool --debug shows the driver's error"


def server_lost(exc: BaseException) -> HpoError | None:
    """What a command says when the storage server it opened stopped answering while it read or wrote
    (`lost_connection(exc)`), or None for any other error."""
    cause = lost_connection(exc)
    if cause is None or not _OPENED_SERVERS:
        return None
    first = lost_cause(cause)
    return StorageFault(
        f"storage {shown_url(_OPENED_SERVERS[-1])!r} stopped answering ({first}); the study it holds is kept: "
        f"once the server answers again, run the same command"
    )


def cannot_write(url: str, exc: BaseException) -> HpoError | None:
    """What a command that writes to a study (`fail-stale`) says when the write failed because this process
    cannot write the SQLite or journal file or its folder (`_file_hint`); None for any other error."""
    hint = _file_hint(url)
    first = lost_cause(exc)  # not Optuna's "invalid data in the commit, e.g. exceeding max length"
    if not hint:
        # another process keeps the SQLite file locked (it printed a traceback)
        return _locked(url, first, "then run the same command again") if lost_connection(exc) else None
    return StorageFault(f"storage {shown_url(url)!r} cannot be written ({first}){hint}")


def _locked(url: str, first: str, then: str) -> HpoError | None:
    """What a command says when another process kept the SQLite file of `url` locked past the busy timeout
    (`first`, the error, says "database is locked"); None for any other error or storage."""
    path = storage_file(url)
    if "database is locked" not in first or path is None:
        return None
    # A sqlite3 shell or a database browser inside a transaction: the server is not gone, and waiting
    # longer is no fix. `optimize` said the storage "stopped answering ... once it answers again", naming
    # neither the file nor the lock; `fail-stale` printed a traceback.
    from shlex import quote

    where = os.path.abspath(path)
    return StorageFault(
        f"storage {shown_url(url)!r}: another process kept {where!r} locked for over {sqlite_busy_timeout()} s, "
        f"so this command could not write to it ({first}). End that process or its open transaction (a sqlite3 "
        f"shell, a database browser; fuser {quote(where)} lists the processes that have the file open), {then}"
    )


def study_deleted(study_name: str, url: str, exc: BaseException) -> HpoError | None:
    """What a command running study `study_name` says when the study vanished from its storage under it
    (another process deleted it, `optuna delete-study`, or its tables were emptied): Optuna's storages then
    raise KeyError('Record does not exist.'), which printed a traceback; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyError) and current.args == ("Record does not exist.",):
            return HpoError(
                f"study {study_name!r} in {shown_url(url)} was deleted while this command ran it (by another "
                f"process: optuna delete-study, a script); its trials went with it. Run the same command to "
                f"start the study again"
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def storage_url_of(study: optuna.Study) -> str | None:
    """The URL `load_study` opened `study` from, or None."""
    return _LOADED_FROM.get(study._storage)


def refuse_a_read_only_study(study: optuna.Study) -> None:
    """`refuse_read_only` for a study `load_study` opened from --storage (`fail-stale`, the one command that
    reads a study by name and then writes to it): its SQLite file read-only, the write ended in Optuna's
    StorageInternalError traceback."""
    url = storage_url_of(study)
    if url is not None:
        refuse_read_only(url, "--storage", "fail-stale writes the trials it marks failed")


def lost_cause(exc: BaseException) -> str:
    """The error behind `exc` (`lost_connection`) in one line, its type and first line: what a worker that
    lost the storage passes on to its main process, which says it (`storage_lost`)."""
    lost = lost_connection(exc)
    silent = _found_silent() if lost is not None else None
    if silent is not None:
        return silent
    cause = lost or exc
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


def storage_lost(url: str, exc: BaseException | str, *, left_running: bool = True) -> HpoError:
    """What `optimize` says when its storage stopped answering during the study (`lost_connection(exc)`);
    `exc` is the error, or the workers' `lost_cause`s of it. `left_running`: whether trials of the run may
    be left RUNNING (False where the main process of `--workers`, which still reaches the storage, has
    marked its lost workers' trials FAIL and queued their values again)."""
    first = exc if isinstance(exc, str) else lost_cause(exc)
    # SQLite opened a file it cannot write read-only: it answers, and will not write
    if "readonly database" in first:
        hint = _file_hint(url) or (
            "; make the file and its folder writable, or copy it to a folder you can write to and give that path"
        )
        return StorageFault(f"storage {shown_url(url)!r} cannot be written ({first}){hint}")
    if left_running:
        resume = "it marks any trial left RUNNING FAIL ('worker died') and runs its parameters again"
    else:
        resume = "the trials that were running are marked FAIL ('worker died'), their parameters queued again"
    locked = _locked(url, first, f"then run the same command to resume: {resume}")
    if locked is not None:
        return locked
    if not left_running:
        return StorageFault(
            f"storage {shown_url(url)!r} stopped answering during the study ({first}); the trials it holds are "
            f"kept, and {resume}. Once it answers again, run the same command to resume"
        )
    return StorageFault(
        f"storage {shown_url(url)!r} stopped answering during the study ({first}); the trials it holds are "
        f"kept, and those that were running stay RUNNING there. Once it answers again, run the same command to "
        f"resume: it marks them FAIL ('worker died') and runs their parameters again"
    )


_URL_FORMS = ("sqlite", "postgresql+psycopg", "mysql+pymysql", "mariadb+pymysql", "redis")


def _unknown_scheme(url: str) -> str:
    """What to write instead of a URL scheme SQLAlchemy has no dialect or driver for (`postgres`, which
    SQLAlchemy 1.4 dropped, `sqllite`, `postgresql+psycopg3`)."""
    scheme = url.partition("://")[0]
    near = "postgresql+psycopg" if scheme.partition("+")[0] == "postgres" else None
    if near is None:
        from hpotool.resolve import closest

        found = closest(scheme, _URL_FORMS, n=1)
        near = found[0] if found else None
    hint = f" (did you mean {near!r}?)" if near else ""
    return (
        f"no database or driver {scheme!r}{hint}; use sqlite:///path.db, postgresql+psycopg://..., "
        f"mysql+pymysql://..., redis://host:6379 or journal:path.log"
    )


def is_optuna_sqlite(path: Path) -> bool:
    """Whether `path` is a SQLite file holding Optuna's tables, checked read-only (opening any other file
    with Optuna would add its tables to it)."""
    tables = sqlite_tables(path)
    return tables is not None and tables >= _OPTUNA_TABLES


def _refuse_foreign_sqlite(url: str, path: Path) -> None:
    """An `HpoError` when `path` exists and is not a SQLite file a study can go in (empty, or Optuna's): a
    mistyped path to some other database would get Optuna's tables added to it."""
    tables = sqlite_tables(path)
    damage = sqlite_damage(path) if tables is None else None
    if damage:
        raise damaged_error(url, path, damage)
    if tables is None:
        what = "is not a SQLite database"
    elif tables and not tables >= _OPTUNA_TABLES and not tables <= _ALL_OPTUNA_TABLES:  # some: being created
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
    uri = path.resolve().as_uri()
    if not Path(f"{path}-wal").exists() and _wal_mode(path):
        return f"{uri}?immutable=1"
    return f"{uri}?mode=ro"


def _wal_mode(path: Path) -> bool:
    """Whether the SQLite file `path` is in WAL mode (its header's read and write versions are 2)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == b"\x02\x02"


def sqlite_tables(path: Path) -> set[str] | None:
    """The tables of the SQLite file `path`, read-only (an empty file has none); None when it is not one."""
    uri = path.resolve().as_uri()
    try:
        with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True)) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.OperationalError:
        # A WAL database in a folder this process cannot write (a read-only mount, another user's folder)
        # cannot be opened read-only without its -shm file: read the file as it is
        try:
            with contextlib.closing(sqlite3.connect(f"{uri}?immutable=1", uri=True)) as conn:
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
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)) as conn:
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


_OPTUNA_TABLES = {"studies", "trials", "version_info"}
# Every table Optuna's RDB storage makes, which another process may be creating one by one right now.
_ALL_OPTUNA_TABLES = _OPTUNA_TABLES | {
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


def is_optuna_journal(path: Path) -> bool:
    """Whether `path` is missing, empty or an Optuna journal file: its first line a JSON record with an
    op_code (Optuna's reader skips lines it cannot parse, so any text file would read as "no studies", and
    a study written to it would be appended to the user's file)."""
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable: opening it says why
    if not first.strip():
        return path.stat().st_size == len(first)  # empty, or nothing but this blank line
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def _has_optuna_tables(url: str) -> bool:
    """Whether the database at a SQLAlchemy `url` holds Optuna's tables (read without writing)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **server_connect_kwargs(url))
    try:
        with engine.connect() as conn:
            return set(sqlalchemy.inspect(conn).get_table_names()) >= _OPTUNA_TABLES
    finally:
        engine.dispose()


# A PostgreSQL or MySQL URL naming a host and port that take the connection and never answer (another
# service on that port, a stuck server or proxy) hung the command for good: psycopg waits for the server's
# reply, and PyMySQL for its greeting, without a limit. Opening a connection now gives up after this many
# seconds, and the command ends with the usual line ("...; is the server running on HOST:PORT?").
CONNECT_TIMEOUT_S = 10


def server_connect_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine arguments that bound how long opening a connection to `url`'s server waits (none
    where the URL, or PGCONNECT_TIMEOUT, sets its own limit), and, for the drivers hpotool installs (psycopg,
    PyMySQL), have `silence` watch the connections for a server that stops answering."""
    import sqlalchemy

    from hpotool import silence

    parsed = sqlalchemy.engine.make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql":
        own_limit = "connect_timeout" in parsed.query or os.environ.get("PGCONNECT_TIMEOUT")
        limit = {} if own_limit else {"connect_timeout": CONNECT_TIMEOUT_S}
        if driver != "psycopg":  # psycopg2, pg8000...: not watched
            return {"connect_args": limit} if limit else {}
        cargs, cparams = _connect_args(parsed)
        return {"creator": functools.partial(silence.psycopg_connection, cargs, {**limit, **cparams})}
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        cargs, cparams = _connect_args(parsed)
        return {"creator": functools.partial(_connect_pymysql, cargs, cparams)}
    return {}


def _connect_args(parsed: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments SQLAlchemy's dialect would pass to its driver's `connect` for the URL `parsed`."""
    import sqlalchemy

    cargs, cparams = sqlalchemy.create_engine(parsed).dialect.create_connect_args(parsed)
    return tuple(cargs), dict(cparams)


def _connect_pymysql(cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
    from hpotool import silence

    if "read_timeout" in cparams:  # the URL's own
        return silence.pymysql_connection(cargs, cparams)
    # PyMySQL's connect_timeout (10 s) covers the TCP connection alone; its greeting is read with the read
    # timeout, which must not stay on the connection: a query may wait longer for a lock (`silence` watches).
    # The URL's connect_timeout bounds the greeting too: the whole opening, as on PostgreSQL.
    greeting = cparams.get("connect_timeout", CONNECT_TIMEOUT_S)
    return silence.pymysql_connection(cargs, cparams, greeting_timeout=greeting)


def _not_optuna(url: str) -> HpoError:
    return HpoError(
        f"storage {shown_url(url)!r} is not an Optuna storage (it has no Optuna tables), so it holds no study; "
        f"give the storage URL hpotool optimize wrote to (nothing was written to this one)"
    )


# Processes started together on a new database (a new SQLite file, or a PostgreSQL or MySQL database just
# made) each create Optuna's tables, and all but one lose that race ("table already exists"; PostgreSQL: a
# duplicate key in pg_type; then a duplicate version row; SQLite: "database is locked" while another
# process turns the new file to WAL, which does not wait for the busy timeout). A loser tries again: by then the tables are
# there, and creating them is skipped.
CREATE_ATTEMPTS = 6


def _created_rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    import random
    import time

    import sqlalchemy.exc

    for attempt in range(CREATE_ATTEMPTS):
        try:
            return _rdb_storage(url, engine_kwargs)
        except sqlalchemy.exc.DBAPIError as exc:
            text = str(exc)
            lost_race = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in text
            lost_race |= "database is locked" in text  # SQLite: another process turning the new file to WAL
            if not lost_race or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def _rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    import warnings

    import optuna

    from hpotool.rdb import BufferedRDBStorage, FastReadRDBStorage

    interval, grace = heartbeat_settings()
    with warnings.catch_warnings():  # heartbeat and its retry callback are "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = FastReadRDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=retry_stale_trial,
        )
    return BufferedRDBStorage(backend)


# What a run writes about itself on its trial: a stale trial's retry is a new run and must not show them
# (a COMPLETE retry that says "fail_reason: stale" or names the dead worker's pid).
RUN_ATTRS = (
    "worker",
    "fail_reason",
    "prune_reason",
    "diverged_at",
    "history",
    "epochs_run",
    "metrics",
    "constraints",
    "feasible",
)


def retry_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a stale trial's parameters again (at most MAX_RETRY times), as Optuna's
    RetryHeartbeatStaleTrialCallback does (its `failed_trial` and `retry_history` system attributes), with
    the user attributes the trial had before it ran, not those of its dead run (and its system attributes,
    a queued trial's values among them: a warm start taken before it drew them runs). A trial that drew no
    value and was not queued is not queued: it ran nothing, and an empty queued trial fails under the grid
    sampler ("All parameters must be specified"); the next trial draws its values as usual.

    Queued only by the process that claims it (`stale.RETRIED`): the trial's live worker (a stale check that
    took it for dead) claims it to keep its result as a new trial where it finds no retry (`kept_results`).
    Before, a worker that told its result just as this FAIL landed kept it as a new trial before the retry
    was there, and the retry ran the values a second time."""
    if not trial.params and "fixed_params" not in trial.system_attrs:
        return
    import copy
    import warnings

    import optuna

    from hpotool.stale import RETRIED, claim

    if len(trial.system_attrs.get("retry_history", [])) + 1 > MAX_RETRY:
        return  # as Optuna's callback does, before the claim: a claim nobody acts on would keep no result
    if not claim(study, f"{RETRIED}{trial.number}"):
        return  # the trial's worker keeps its result in their place

    with warnings.catch_warnings():  # "experimental since 2.8"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    before = copy.copy(trial)
    before.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS}
    retry(study, before)


def has_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def fail_stale_trials(study: optuna.Study, *, every_running: bool = False) -> list[int]:
    """Mark RUNNING trials of dead workers FAIL and queue their retries; returns their numbers.

    With a heartbeat (RDB storages) a trial is stale when its heartbeat is older than the grace period.
    `every_running` marks every RUNNING trial FAIL: for storages without a heartbeat (Redis, journal
    files), to be used only when no worker of the study is running.
    """
    import optuna
    from optuna.trial import TrialState

    from hpotool.stale import fail_trial

    refuse_a_read_only_study(study)
    running = {t._trial_id: t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    import warnings

    if every_running:
        failed = []
        for trial_id, number in running.items():
            if fail_trial(study._storage, trial_id, "stale: marked failed by fail-stale"):
                failed.append(number)
                retry_stale_trial(study, study._storage.get_trial(trial_id))
        return sorted(failed)
    if not has_heartbeat(study._storage):
        return []
    # As optuna.storages.fail_stale_trials does, with the reason recorded in the FAIL's transaction
    # (`fail_trial`: a finished trial takes no attribute, and `hpotool trials` showed the trial failed
    # without one).
    storage = study._storage
    reason = f"stale: no heartbeat for {heartbeat_settings()[1]} s (its worker died, or lost the storage)"
    failed = []
    assert isinstance(storage, optuna.storages._heartbeat.BaseHeartbeat)  # has_heartbeat says so
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        if fail_trial(storage, trial_id, reason):  # False: another process failed it first
            failed.append(trial_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for trial_id in failed:
            retry_stale_trial(study, storage.get_trial(trial_id))
    return sorted(running[i] if i in running else storage.get_trial(i).number for i in failed)


_NUMBER = re.compile(r"\d+")
# A trailing number or date, with the separator and version letter before it: _2, -v3, -2026-12-05, .1
_TRAILING_NUMBER = re.compile(r"[-_.]*[vV]?\d[\d\-_.:]*$")


def same_series(a: str, b: str) -> bool:
    """Whether two study names differ only in their numbers (run-12-01 and run-12-02, exp1 and exp10) or in
    a trailing number or date (exp and exp2, digits_mlp and digits_mlp_v2): a series named on purpose,
    where a did-you-mean on each new one is noise; a typo (digits_mpl, digts_mlp) is not one."""
    return _NUMBER.sub("#", a) == _NUMBER.sub("#", b) or _TRAILING_NUMBER.sub("", a) == _TRAILING_NUMBER.sub(
        "", b
    )


def near_study(study_name: str, names: Iterable[str]) -> str:
    """` (did you mean 'NAME'?)` for a study of a name close to `study_name`, leaving out the names of its
    series (`same_series`: `ws_pg` is no typo of `ws_pg3`, a new study named on purpose); "" when none is."""
    from hpotool.resolve import did_you_mean

    return did_you_mean(study_name, [n for n in names if not same_series(study_name, n)])


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies `storage` holds, oldest first. On a database, the names alone:
    `get_all_studies` reads every study's attributes too (hpotool's configs and fingerprint, ~2 KB a
    study), 3.5 s for 2,000 studies on PostgreSQL where the names take 27 ms."""
    from optuna.storages import RDBStorage

    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        return [s.study_name for s in storage.get_all_studies()]
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        query = session.query(models.StudyModel.study_name).order_by(models.StudyModel.study_id)
        return [name for (name,) in query.all()]


# The URL of each storage `load_study` opened a study from (keyed by the study's storage object, which a
# StudySnapshot of the study shares), for the commands a message points to.
_LOADED_FROM: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def study_options(study: optuna.Study) -> str:
    """`--study-name NAME` for a command a message points to, with `--storage URL` (its password as
    `***`) where `load_study` opened the study from another storage than the default one."""
    from shlex import quote

    options = f"--study-name {quote(study.study_name)}"
    url = _LOADED_FROM.get(study._storage)
    if url is not None and url != default_storage_url(study.study_name):
        options += f" --storage {quote(shown_url(url))}"
    return options


def load_study(study_name: str, storage_url: str | None) -> optuna.Study:
    """Open an existing study; a missing one is an `HpoError` listing the studies that exist."""
    import optuna

    url = storage_url or default_storage_url(study_name)
    storage = make_storage(url, create=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        _LOADED_FROM[study._storage] = url
        return study
    except KeyError:
        from shlex import quote

        names = study_names(storage)
        listed = ", ".join(names) if names else "none"
        elsewhere = redis_prefixes_holding(url, study_name)
        hint = (
            f"; it is under another prefix: give --storage {quote(shown_url(elsewhere[0]))}"
            if elsewhere
            else ""
        )
        raise HpoError(
            f"no study {study_name!r} in {shown_url(url)}{near_study(study_name, names)}; studies there: {listed}{hint}"
        ) from None


_PREFIXES_LOOKED_AT = 50


def redis_prefixes_holding(url: str, study_name: str) -> list[str]:
    """The URLs of the other journals on `url`'s Redis server (other `?prefix=`es, at most
    `_PREFIXES_LOOKED_AT` of them) that hold a study named `study_name`: a prefix left out or misspelt
    otherwise reads as an empty server."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    base, _, prefix = _redis_prefix(url)
    client = make_storage(url, create=False)._backend._redis  # type: ignore[attr-defined]
    keys = sorted(key.decode() for key in client.scan_iter(match="*:log_number", count=1000))
    found = []
    for other in (key.removesuffix(":log_number") for key in keys[:_PREFIXES_LOOKED_AT]):
        if other == prefix:
            continue
        parts = urlsplit(base)
        query = [*parse_qsl(parts.query), *([("prefix", other)] if other else [])]  # "": Optuna's default
        candidate = urlunsplit(parts._replace(query=urlencode(query)))
        if study_name in study_names(make_storage(candidate, create=False)):
            found.append(candidate)
    return found
