"""A database server that keeps its connections open and no longer answers ends the wait on it.

psycopg (PostgreSQL) waits for the answer to a statement without a limit, and so does PyMySQL (MySQL,
MariaDB) once connected (`pymysql_connection` clears its read timeout: a statement may wait long for a
lock). A stuck server, or a stuck proxy in front of it (the operating system still acknowledges what is
sent), hung `hpotool optimize` for good, SIGTERM included. TCP keepalives and `tcp_user_timeout` cannot
tell: the kernel at the other end still answers them. Nor can a limit on statements: a long read of a big study is
legitimately slow.

So a thread looks, every second, at the connections hpotool's storages opened (`psycopg_connection`,
`pymysql_connection`: rdb_storage.server_connect_kwargs picks one from the URL's database and driver; the
connections a user's training opens are not watched). One that has been waiting for an answer for
`silence` seconds (or at all, once Ctrl-C or SIGTERM is being handled) has its server asked whether it
still answers: a new connection to it, which must open within `PROBE_TIMEOUT_S` seconds (or `silence`, when
shorter; at least 2, libpq's least). A server busy with a slow statement opens it, and the wait goes on;
one that does not has the waiting connections' sockets shut, so each waiting statement raises the driver's
OperationalError (psycopg: "server closed the connection unexpectedly"; PyMySQL: "Lost connection to MySQL
server during query"), which the command reports as the storage having stopped answering.

How a connection of each driver is seen waiting for an answer, and its server asked: `silence_drivers`.

A server found silent is taken as silent for the next `silence` seconds (at least `PROBE_TIMEOUT_S`), time
for the command to end: a new connection to it (SQLAlchemy's pool reconnecting after the shut) raises the
driver's OperationalError at once, saying so (`found_silent`), where it waited for the server's greeting
(10 s, rdb_storage.CONNECT_TIMEOUT_S, each time) and the command's line quoted that wait's "timed out"; a
connection to it that waits again is shut at the next look. After that, it is asked again: a program that
runs another study once the server answers again connects to it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Hashable
from typing import Any, NamedTuple

from hpotool import interrupts
from hpotool.silence_drivers import Driver, PsycopgDriver, PyMySQLDriver

PROBE_TIMEOUT_S = 10  # as long as opening a connection may take (rdb_storage.CONNECT_TIMEOUT_S)


class _Watched(NamedTuple):
    driver: Driver  # `PsycopgDriver`, `PyMySQLDriver`
    opener: str  # the arguments it was opened with: connections opened so reach the same server
    address: str  # the server's, for the user: "host:port", or a socket's path


# The connections to watch, and the wait each was last seen in: (the driver's token for that wait, since
# when it is counted).
_connections: weakref.WeakKeyDictionary[Any, _Watched] = weakref.WeakKeyDictionary()
_seen: weakref.WeakKeyDictionary[Any, tuple[Hashable, float]] = weakref.WeakKeyDictionary()
# The servers found silent in this process (`_pid`), by the arguments their connections were opened with:
# what happened, in words, and when (time.monotonic()).
_silent: dict[str, tuple[str, float]] = {}
_silence = [60.0]
_lock = threading.Lock()
_thread: list[threading.Thread] = []
_pid: list[int] = []


def watch(silence_s: float) -> None:
    """Give up on a server silent for `silence_s` seconds (the connections opened by `psycopg_connection`
    and `pymysql_connection`, from now on and before)."""
    _silence[0] = silence_s


def psycopg_connection(cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
    """`psycopg.connect(*cargs, **cparams)`, watched. psycopg's own warnings about the queries it could not
    cancel on a silent server ("query cancellation failed: ...") are not printed: the command says what
    happened in one line."""
    import psycopg

    logging.getLogger("psycopg").setLevel(logging.ERROR)
    opener = _opener(cargs, cparams)
    _refuse_silent(opener, psycopg.OperationalError)
    conn = psycopg.connect(*cargs, **cparams)
    _add(conn, PsycopgDriver, opener)
    return conn


def pymysql_connection(
    cargs: tuple[Any, ...], cparams: dict[str, Any], greeting_timeout: float | None = None
) -> Any:
    """`pymysql.connect(*cargs, **cparams)`, watched: a `pymysql.connections.Connection` that notes when it
    reads from its socket. `greeting_timeout`: the read timeout while the connection opens, cleared once
    it is open (PyMySQL has no public setter). A PyMySQL whose internals differ from those the watcher
    uses (`_read_packet`, `_sock`, `_read_timeout`: PyMySQL 1.x) opens a connection it leaves unwatched,
    and without that limit."""
    import pymysql.connections

    opener = _opener(cargs, cparams)
    _refuse_silent(opener, pymysql.err.OperationalError)
    watched = PyMySQLDriver.connection_class()
    if watched is None:
        return pymysql.connections.Connection(*cargs, **cparams)
    limit = {} if greeting_timeout is None else {"read_timeout": greeting_timeout}
    conn = watched(*cargs, **{**cparams, **limit})
    if not {"_sock", "_read_timeout"} <= vars(conn).keys():  # its socket, its read timeout: not where read
        if not limit:
            return conn
        conn.close()  # its read timeout stays: a statement waiting longer for a lock would fail
        return pymysql.connections.Connection(*cargs, **cparams)
    if limit:
        conn._read_timeout = None  # PyMySQL's default once connected
    conn._hpotool_args = (cargs, cparams)  # for the probe
    _add(conn, PyMySQLDriver, opener)
    return conn


def found_silent() -> str | None:
    """What happened to the server this process last found silent, while it is taken as silent (`silence`
    seconds, at least `PROBE_TIMEOUT_S`: `_still_silent`), ("the server at 127.0.0.1:5432 stopped answering
    for 62 s and opened no new connection within 10 s"), or None: a connection lost after that, once the
    server answered again, was lost for another reason, which the driver's error says."""
    silent = _still_silent()
    with _lock:
        found = [(at, said) for opener, (said, at) in _silent.items() if opener in silent]
    return max(found)[1] if found else None


def forget() -> None:
    """Start a command afresh: a server found silent before (by an earlier command of this process: the
    tests, a notebook driving the CLI) is asked again."""
    with _lock:
        _silent.clear()


def _opener(cargs: tuple[Any, ...], cparams: dict[str, Any]) -> str:
    return repr((cargs, sorted(cparams.items())))


def _refuse_silent(opener: str, error: type[Exception]) -> None:
    """Raise `error` saying what happened where the server `opener` connects to was found silent."""
    said = _silent.get(opener) if opener in _still_silent() else None
    if said is not None:
        raise error(f"{said[0]}; hpotool opens no new connection to it for now")


def _still_silent() -> set[str]:
    """The servers (their connections' openers) found silent in the last `silence` seconds (at least
    `PROBE_TIMEOUT_S`)."""
    now = time.monotonic()
    with _lock:
        if _pid != [os.getpid()]:
            return set()
        return {opener for opener, (_, at) in _silent.items() if now - at < max(_silence[0], PROBE_TIMEOUT_S)}


def _add(conn: Any, driver: Driver, opener: str) -> None:
    with _lock:
        if _pid != [os.getpid()] or not _thread[0].is_alive():  # none yet, or a forked child's copy
            _connections.clear()  # a forked child's copies of its parent's: their sockets are the parent's
            _seen.clear()
            _silent.clear()
            thread = threading.Thread(target=_look, name="hpotool-server-silence", daemon=True)
            _thread[:], _pid[:] = [thread], [os.getpid()]
            thread.start()
        _connections[conn] = _Watched(driver, opener, driver.address(conn))


def _look() -> None:
    while True:
        time.sleep(min(1.0, _silence[0] / 4))
        try:
            _end_silent_waits()
        except Exception:  # a connection closed under the look: the next one sees it gone
            continue


def _end_silent_waits() -> None:
    now = time.monotonic()
    limit = 0.0 if interrupts.interrupting() else _silence[0]
    stuck: dict[tuple[Driver, Hashable], list[tuple[Any, _Watched, Hashable, float]]] = {}
    silent = _still_silent()
    with _lock:
        connections = list(_connections.items())
    for conn, watched in connections:
        token = watched.driver.waiting(conn)
        if token is None:
            _seen.pop(conn, None)
            continue
        seen, since = _seen.get(conn, (None, now))
        if seen != token:  # another wait than the one last seen
            since = now
        _seen[conn] = (token, since)
        if now - since >= (0.0 if watched.opener in silent else limit):
            stuck.setdefault((watched.driver, watched.driver.server(conn)), []).append(
                (conn, watched, token, since)
            )
    probe = max(2, min(PROBE_TIMEOUT_S, round(_silence[0])))  # at least 2: libpq's least
    for (driver, _server), waiting in stuck.items():
        known = [watched.opener in silent for _, watched, _, _ in waiting]
        if not any(known) and _answers(driver, waiting[0][0], probe):
            for conn, _, token, _ in waiting:  # a slow statement: look again after another `silence`
                _seen[conn] = (token, time.monotonic())
            continue
        if not all(known):
            waited = round(time.monotonic() - min(since for *_, since in waiting))
            said = f"the server at {waiting[0][1].address} stopped answering for {waited} s"
            said += f" and opened no new connection within {probe} s"
            with _lock:
                for _, watched, _, _ in waiting:
                    _silent[watched.opener] = (said, time.monotonic())
        for conn, _, token, _ in waiting:
            if driver.waiting(conn) == token:  # still the same wait
                _shut(driver.socket(conn))


def _answers(driver: Driver, conn: Any, timeout: int) -> bool:
    """Whether the server of `conn` opens a new connection within `timeout` seconds."""
    try:
        driver.answers(conn, timeout)
    except Exception:
        return False
    return True


def _shut(fd: int) -> None:
    """Shut the TCP connection on `fd` (the driver's socket, left open for the driver to close): a read
    waiting on it returns at once."""
    if fd < 0:
        return
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
