"""Where studies live: SQLite under studies/ by default, or any Optuna storage URL.

The default SQLite file is opened in WAL mode with a busy timeout, so several local workers can share it
and readers (Optuna's CLI, optuna-dashboard) do not block writers. RDB storages (SQLite, PostgreSQL,
MySQL) are wrapped in `rdb.BufferedRDBStorage`, which batches a trial's reports and answers pruners'
queries from a snapshot. `redis://` URLs use Optuna's journal
storage on Redis; `journal:PATH` uses the journal file storage; anything else goes to SQLAlchemy.

`make_storage` ties together what the modules beside it check and build: `url_checks` (a URL refused
before anything opens), `storage_files` and `sqlite_files` (the file of a SQLite or journal storage),
`sqlite_storage` (a SQLite file's storage, checkpointed at exit), `rdb_storage` (an RDB storage and a
server's connect arguments); `load_study` opens a study by name.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.rdb_storage import (
    connect_timeout_words,
    created_rdb_storage,
    has_optuna_tables,
    not_optuna,
    server_connect_kwargs,
)
from hpotool.sqlite_storage import no_sqlite_file, sqlite_storage
from hpotool.storage_faults import OPENED_SERVERS, driver_words, locked, server_lost
from hpotool.storage_files import file_hint, is_optuna_journal, refuse_a_folder, refuse_a_long_name
from hpotool.storage_settings import heartbeat_settings, server_silence, sqlite_busy_timeout
from hpotool.storage_url import (
    LOADED_FROM,
    default_storage_url,
    redis_prefix,
    redis_url_with_db,
    shown_url,
    sqlite_path,
)
from hpotool.study_names import listed_names, near_study, study_names
from hpotool.url_checks import (
    DRIVERS,
    open_hint,
    ping_redis,
    refuse_a_malformed_url,
    refuse_a_redis_name,
    unknown_scheme,
    url_of_path,
)

if TYPE_CHECKING:
    import optuna


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
    """The storage for `url`, opened by its kind (None with `check_only`: checked, nothing opened); any
    failure to open it is one `HpoError` naming the URL."""
    heartbeat_settings()  # a bad setting fails here, before a journal (which has no heartbeat) is written
    sqlite_busy_timeout()
    server_silence()
    read_only = _READ_ONLY.get()
    create = (create and not read_only) or check_only
    try:
        if url.startswith(("redis://", "rediss://")):
            refuse_a_malformed_url(url)
        if url.startswith(("redis://", "rediss://", "unix://")):
            return _redis_storage(url, check_only=check_only)
        if url.startswith("journal:"):
            return _journal_storage(url, create=create, check_only=check_only)
        path = sqlite_path(url)
        if path is None and url.startswith("sqlite:"):
            raise no_sqlite_file(url)
        if path is not None:
            return sqlite_storage(url, path, create=create, check_only=check_only, read_only=read_only)
        return _server_storage(url, create=create, check_only=check_only)
    except HpoError:
        raise
    except ImportError as exc:
        raise _missing_driver(url, exc) from None
    except Exception as exc:  # SQLAlchemy/redis errors: unreachable server, bad URL, wrong password
        raise _cannot_open(url, exc) from None


# What redis-py 8 sets by default, in seconds: before 8 a client waited for ever on a server that took the
# connection and never answered (`rediss://` to a Redis without TLS hung in the TLS handshake).
REDIS_TIMEOUT_S = 5.0


def redis_timeouts(client: Any) -> Any:
    """`client` (a redis-py client) with redis-py 8's connect and read timeouts where it has none (redis-py
    before 8, and no `?socket_timeout=` or `?socket_connect_timeout=` in the URL)."""
    pool = getattr(client, "connection_pool", None)  # a cluster client has none
    if pool is not None:
        for key in ("socket_connect_timeout", "socket_timeout"):
            if pool.connection_kwargs.get(key) is None:
                pool.connection_kwargs[key] = REDIS_TIMEOUT_S
    return client


def _redis_storage(url: str, *, check_only: bool) -> optuna.storages.BaseStorage | None:
    """Optuna's journal storage on the Redis server of `url`, which must answer a ping."""
    import optuna

    refuse_a_redis_name(url)
    if check_only:
        return None
    import warnings

    from hpotool.redis_journal import RedisJournal

    base, _, prefix = redis_prefix(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = RedisJournal(url, base, prefix)
    ping_redis(url, redis_timeouts(backend._redis))  # fail now, with a clear message, not at the first trial
    OPENED_SERVERS.append(url)
    try:
        return optuna.storages.JournalStorage(backend)  # reads the whole journal
    except Exception as exc:
        # The server went away or froze as the journal was read, after it answered the ping: "cannot open it:
        # Connection closed by server; is the server ... a Redis server?" sent users the wrong way.
        lost = server_lost(exc)
        if lost is None:
            raise
        raise lost from exc


def _journal_storage(url: str, *, create: bool, check_only: bool) -> optuna.storages.BaseStorage | None:
    """Optuna's journal file storage of a `journal:PATH` URL: a new file, or one holding Optuna's journal."""
    import optuna

    from hpotool.journal_file import JournalFile

    journal = Path(url.removeprefix("journal:")).expanduser()
    refuse_a_long_name(url, journal)
    refuse_a_folder(url, journal)
    if not create and not journal.exists():
        raise HpoError(f"storage {shown_url(url)!r}: no such journal file {os.path.abspath(journal)!r}")
    if not is_optuna_journal(journal):
        raise HpoError(
            f"storage {shown_url(url)!r}: {str(journal)!r} is not an Optuna journal file (its first line is not a "
            f"journal record); give the journal hpotool optimize wrote to, or a new file name (nothing "
            f"was written to this one)"
        )
    unwritable = file_hint(url) if create else ""  # reading a journal writes nothing
    if unwritable:
        raise HpoError(f"storage {shown_url(url)!r}: cannot run a study in it{unwritable}")
    if check_only:
        return None
    journal.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFile(url, str(journal)))


def _server_storage(url: str, *, create: bool, check_only: bool) -> optuna.storages.BaseStorage | None:
    """The RDB storage on the database server of `url` (PostgreSQL, MySQL, any SQLAlchemy URL); with
    `check_only`, its dialect and driver loaded, no connection made."""
    if "://" not in url or url.startswith("file:"):
        raise HpoError(
            f"storage {shown_url(url)!r} is not a storage URL; "
            + (
                url_of_path(url)
                or "use sqlite:///path.db, postgresql+psycopg://..., mysql+pymysql://..., redis://host:6379 or "
                "journal:path.log"
            )
        )
    refuse_a_malformed_url(url)
    if check_only:  # the dialect and its driver, as the engine loads them; no connection
        import sqlalchemy

        sqlalchemy.engine.make_url(url).get_dialect()
        return None
    from hpotool import silence

    silence.watch(server_silence())  # the connections server_connect_kwargs has watched
    if not create and not has_optuna_tables(url):
        raise not_optuna(url)
    opened = created_rdb_storage(url, {"pool_pre_ping": True, **server_connect_kwargs(url)})
    OPENED_SERVERS.append(url)
    return opened


def _missing_driver(url: str, exc: ImportError) -> HpoError:
    """What a storage whose database driver is not installed says, naming the driver to install."""
    scheme = url.partition("://")[0]
    if scheme in DRIVERS:  # SQLAlchemy's default driver for the bare scheme, not the one we install
        fix = f"name the driver hpotool[{DRIVERS[scheme][1]}] installs: {DRIVERS[scheme][0]}://..."
    else:
        fix = "install hpotool[postgres], [mysql] or [redis]"
    return HpoError(f"storage {shown_url(url)!r}: a driver is missing ({exc}); {fix}")


def _cannot_open(url: str, exc: Exception) -> HpoError:
    """What a storage that failed to open says: an unknown scheme, or the error's first line and a hint."""
    if type(exc).__name__ == "NoSuchModuleError":  # SQLAlchemy knows no such database or driver
        return HpoError(f"storage {shown_url(url)!r}: {unknown_scheme(url)}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    held = locked(url, first, "then run the same command again", doing="open it")
    if held is not None:  # a sqlite3 shell's `PRAGMA locking_mode=EXCLUSIVE`: no one reads it meanwhile
        return held
    hint = file_hint(url) or open_hint(url, str(exc))
    first = connect_timeout_words(url, str(exc)) or driver_words(first.rstrip(".") if hint else first)
    return HpoError(f"storage {shown_url(url)!r}: cannot open it: {first}{hint}")


def study_options(study: optuna.Study) -> str:
    """`--study-name NAME` for a command a message points to, with `--storage URL` (its password as
    `***`) where `load_study` opened the study from another storage than the default one."""
    from shlex import quote

    options = f"--study-name {quote(study.study_name)}"
    url = LOADED_FROM.get(study._storage)
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
        LOADED_FROM[study._storage] = url
        return study
    except KeyError:
        from shlex import quote

        names = study_names(storage)
        listed = listed_names(names, f"hpotool studies --storage {quote(shown_url(url))}")
        elsewhere = redis_prefixes_holding(url, study_name)
        other_db = [] if elsewhere else redis_databases_holding(url, study_name)
        hint = (
            f"; it is under another prefix: give --storage {quote(shown_url(elsewhere[0]))}"
            if elsewhere
            else f"; it is in another database of the server: give --storage {quote(shown_url(other_db[0]))}"
            if other_db
            else ""
        )
        raise HpoError(
            f"no study {study_name!r} in {shown_url(url)}{near_study(study_name, names)}; studies there: {listed}{hint}"
        ) from None


_PREFIXES_LOOKED_AT = 50


def redis_prefixes_holding(url: str, study_name: str) -> list[str]:
    """The URLs of the other journals on `url`'s Redis server (`other_redis_journals`) that hold a study
    named `study_name`: a prefix left out or misspelt otherwise reads as an empty server."""
    return [other for other in other_redis_journals(url) if study_name in peeked_study_names(other)]


def peeked_study_names(url: str) -> list[str]:
    """The names of the studies in the Redis journal at `url`, another than the one hpotool opens, read
    without waiting for a log that is not there (`RedisJournal`): one being deleted key by key (`redis-cli
    --scan --pattern 'p:*' | xargs redis-cli del`, which can take `p:log:0` before `p:log_number`). Optuna's
    reader waits for such a log for ever, and a look at the server's other journals, to say where a study
    is, hung every command opening a Redis study (a test's cleanup beside it hung one in CI). [] for such a
    journal, or one whose keys another program wrote over: a journal going away holds no study to name."""
    import warnings

    import optuna

    from hpotool.redis_journal import JournalFault, RedisJournal

    base, _, prefix = redis_prefix(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = RedisJournal(url, base, prefix)
    client = redis_timeouts(backend._redis)
    try:
        with contextlib.closing(client):
            return study_names(optuna.storages.JournalStorage(backend))
    except JournalFault:
        return []


_REDIS_DATABASES = 16  # Redis's default `databases`, where the server will not say (CONFIG refused)


def redis_databases_holding(url: str, study_name: str) -> list[str]:
    """`url` with each other database number of its Redis server whose journal under the same `?prefix=`
    holds a study named `study_name`, in the order of the numbers: a URL with the right prefix but another
    database (`redis://host:6379/5?prefix=p` for a study in database 0) read as an empty server. The number
    is read and replaced where redis-py reads it (`redis_url_with_db`): the path, a `?db=`, or a `unix://`
    socket's `?db=`. Only the databases holding that journal are read; [] for a URL of no Redis server."""
    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        return []
    import redis

    base, _, prefix = redis_prefix(url)
    client = make_storage(url, create=False)._backend._redis  # type: ignore[attr-defined]
    here = int(client.connection_pool.connection_kwargs.get("db") or 0)
    try:
        count = int(client.config_get("databases").get("databases", _REDIS_DATABASES))
    except (redis.RedisError, ValueError):
        count = _REDIS_DATABASES
    found = []
    for db in range(count):
        if db == here:
            continue
        with redis_timeouts(redis.Redis.from_url(redis_url_with_db(base, db))) as other:
            if not other.exists(f"{prefix}:log_number"):
                continue
        there = redis_url_with_db(url, db)
        if study_name in peeked_study_names(there):
            found.append(there)
    return found


def other_redis_journals(url: str) -> list[str]:
    """The URLs of the other journals on `url`'s Redis server (its database): each other `?prefix=`, or none
    for Optuna's default journal, at most `_PREFIXES_LOOKED_AT` of them, in the order of their prefixes; []
    for a URL of no Redis server."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    base, _, prefix = redis_prefix(url)
    client = make_storage(url, create=False)._backend._redis  # type: ignore[attr-defined]
    keys = sorted(key.decode() for key in client.scan_iter(match="*:log_number", count=1000))
    others = [other for other in (key.removesuffix(":log_number") for key in keys) if other != prefix]
    parts = urlsplit(base)
    return [
        urlunsplit(
            parts._replace(query=urlencode([*parse_qsl(parts.query), *([("prefix", o)] if o else [])]))
        )
        for o in others[:_PREFIXES_LOOKED_AT]  # "": Optuna's default journal
    ]
