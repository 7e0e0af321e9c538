"""Opening an RDB storage (SQLite, PostgreSQL, MySQL): a server's connect arguments (a time limit to open,
`silence` watching), whether a database holds Optuna's tables, and the storage itself (heartbeat, buffered
writes), made again when processes race to create its tables."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.heartbeat import retry_stale_trial
from hpotool.sqlite_files import OPTUNA_TABLES
from hpotool.storage_settings import heartbeat_settings, sqlite_busy_timeout
from hpotool.storage_url import shown_url

if TYPE_CHECKING:
    import optuna


def has_optuna_tables(url: str) -> bool:
    """Whether the database at a SQLAlchemy `url` holds Optuna's tables (read without writing)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **server_connect_kwargs(url))
    try:
        with engine.connect() as conn:
            return set(sqlalchemy.inspect(conn).get_table_names()) >= OPTUNA_TABLES
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


def connect_timeout_words(url: str, error: str) -> str | None:
    """What a PostgreSQL storage that psycopg gave up opening (`error`, its whole text, says "connection
    timeout expired") waited: `no answer in 2 s (the URL's connect_timeout=2)`; None for any other error.
    libpq's connect_timeout, which psycopg follows, is a limit for each address it tries: a host name of
    two addresses (localhost as ::1 and 127.0.0.1, a name with an IPv4 and an IPv6 address) or a URL of
    two hosts waits twice as long, and the line says so, with the total (a user's connect_timeout=2 gave up
    after 4.2 s and read as a retry; on one address it is one try, the rest hpotool's start). 1 s is made
    2 s, as libpq does."""
    import re

    import sqlalchemy

    said = re.match(
        r"(\(psycopg\.errors\.ConnectionTimeout\) )?connection timeout expired$", error.strip(), re.M
    )
    if not url.startswith("postgres") or said is None:
        return None
    try:
        from psycopg.conninfo import timeout_from_conninfo

        given = sqlalchemy.engine.make_url(url).query.get("connect_timeout")
        if isinstance(given, tuple):  # given twice: the last one counts
            given = given[-1]
        env = os.environ.get("PGCONNECT_TIMEOUT")
        value = given if given is not None else env
        seconds = CONNECT_TIMEOUT_S if value is None else timeout_from_conninfo({"connect_timeout": value})
    except Exception:  # no psycopg, a value psycopg refuses: the driver's own words
        return None
    if value is None:
        source = "hpotool's limit; ?connect_timeout=N in the URL sets another"
    else:
        source = f"the URL's connect_timeout={given}" if given is not None else f"PGCONNECT_TIMEOUT={env}"
        if str(seconds) != str(value).strip():
            source += f", which libpq makes {seconds} s"
    tries = len(re.findall(r"^- host: .*: connection timeout expired$", error, flags=re.MULTILINE))
    if tries < 2:
        return f"no answer in {seconds} s ({source})"
    return (
        f"no answer in {seconds} s from any of the {tries} addresses tried, {seconds * tries} s in all ({source}, "
        f"which libpq gives each address of each host)"
    )


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


def not_optuna(url: str) -> HpoError:
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


def created_rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    import random
    import time

    import sqlalchemy.exc

    for attempt in range(CREATE_ATTEMPTS):
        started = time.monotonic()
        try:
            return rdb_storage(url, engine_kwargs)
        except sqlalchemy.exc.DBAPIError as exc:
            text = str(exc)
            lost_race = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in text
            # SQLite: another process turning the new file to WAL, which fails at once. A lock that outlasted
            # the busy timeout is a process holding the file (a sqlite3 shell's exclusive lock), said now:
            # each attempt waited the busy timeout, 60 s by default, six minutes before the line.
            held = time.monotonic() - started >= 0.9 * sqlite_busy_timeout()
            lost_race |= "database is locked" in text and not held
            if not lost_race or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    import warnings

    import optuna

    from hpotool.rdb import BufferedRDBStorage, FastReadRDBStorage

    _interrupts_go_through()
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


def _interrupts_go_through() -> None:
    """Have SQLAlchemy raise the interrupt (Ctrl-C, SIGTERM) behind a database error in that error's place,
    on every engine; once per process.

    psycopg cancels the query a Ctrl-C lands in, and the call it was in may then fail on the cancelled
    connection (SQLAlchemy's connection check: "can't change 'autocommit' now"), an error that took the
    interrupt's place: the run, which ends a trial it was setting up as FAIL ("interrupted") on an
    interrupt, stopped on that error instead, left the trial RUNNING and said 'interrupted: no trial was
    running'; elsewhere it was said as the storage's fault, or with a traceback."""
    import sqlalchemy

    if not sqlalchemy.event.contains(sqlalchemy.engine.Engine, "handle_error", _interrupt_in_place):
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", _statement_began)
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "handle_error", _time_lock_wait)
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "handle_error", _interrupt_in_place)


def _statement_began(conn: Any, *_: Any) -> None:
    """SQLAlchemy's `before_cursor_execute` event: when the statement (a SQLite write's wait for the lock
    included) began, for `_time_lock_wait`."""
    import time

    conn.info["hpotool_began"] = time.monotonic()


def _time_lock_wait(context: Any) -> None:
    """SQLAlchemy's `handle_error` event: a SQLite "database is locked" carries how long its statement ran
    (`storage_faults.LOCK_WAITED`). SQLite waits the busy timeout for a lock another connection holds, but
    refuses at once a write on a connection whose read of the file is older than another's write (a
    snapshot conflict, this process's own connections among them): the line said "another process kept it
    locked for over 60 s" of an error that came at once, in a process alone on the file (Ctrl-C)."""
    import contextlib
    import time

    from hpotool.storage_faults import LOCK_WAITED

    error, conn = context.original_exception, context.connection
    if "database is locked" not in str(error) or conn is None or conn.closed or conn.invalidated:
        return  # `info` of an invalidated connection would connect again
    began = conn.info.get("hpotool_began")
    if began is not None:
        with contextlib.suppress(AttributeError):  # a type that takes no attribute: said as before
            setattr(error, LOCK_WAITED, time.monotonic() - began)


def _interrupt_in_place(context: Any) -> BaseException | None:
    """SQLAlchemy's `handle_error` event: the interrupt behind the error, to be raised in its place. None for
    the interrupt itself, which SQLAlchemy raises as it is, and for a connection lost (a server that stopped
    answering, whose connections `silence` closed as the signal came): that error is said in its line, with
    the signal's exit code (`storage_faults.server_lost`)."""
    from hpotool.interrupts import interrupt_behind
    from hpotool.storage_faults import lost_connection

    error = context.original_exception
    if not isinstance(error, Exception) or lost_connection(context.sqlalchemy_exception or error) is not None:
        return None
    return interrupt_behind(error)
