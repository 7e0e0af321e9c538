"""A PostgreSQL server that keeps its connections open and no longer answers ends the wait on it.

psycopg waits for the answer to a statement without a limit: a stuck server, or a stuck proxy in front
of it (the operating system still acknowledges what is sent), hung `hpotool optimize` for good, SIGTERM
included. TCP keepalives and `tcp_user_timeout` cannot tell: the kernel at the other end still answers
them. Nor can a limit on statements: a long read of a big study is legitimately slow.

So a thread looks, every second, at this process's psycopg connections. One that has been waiting for an
answer for `silence` seconds (or at all, once Ctrl-C or SIGTERM is being handled) has its server asked
whether it still answers: a new connection to it, which must open within `PROBE_TIMEOUT_S` seconds (or
`silence`, when shorter; at least 2, libpq's least). A server busy with a slow query opens it, and the wait goes on; one that does not has the
waiting connections' sockets shut, so each waiting statement raises psycopg's OperationalError ("server
closed the connection unexpectedly"), which the command reports as the storage having stopped answering.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

from hpotool import interrupts

PROBE_TIMEOUT_S = 10  # as long as opening a connection may take (storage.CONNECT_TIMEOUT_S)

# The connections to watch (psycopg.Connection objects), each with when it was first seen waiting.
_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_waiting_since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
_silence = [60.0]
_lock = threading.Lock()
_thread: list[threading.Thread] = []
_pid: list[int] = []


def watch(silence_s: float) -> None:
    """Watch every psycopg connection SQLAlchemy opens in this process from now on, giving up on a server
    silent for `silence_s` seconds. psycopg's own warnings about the queries it could not cancel on such a
    server ("query cancellation failed: ...") are not printed: the command says what happened in one line."""
    import sqlalchemy.event
    import sqlalchemy.pool

    _silence[0] = silence_s
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    if not sqlalchemy.event.contains(sqlalchemy.pool.Pool, "connect", _opened):
        sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", _opened)


def _opened(dbapi_connection: Any, record: Any) -> None:
    if type(dbapi_connection).__module__.split(".")[0] != "psycopg":
        return
    with _lock:
        _connections.add(dbapi_connection)
        if _pid != [os.getpid()] or not _thread[0].is_alive():  # none yet, or a forked child's copy
            thread = threading.Thread(target=_look, name="hpotool-server-silence", daemon=True)
            _thread[:], _pid[:] = [thread], [os.getpid()]
            thread.start()


def _look() -> None:
    while True:
        time.sleep(min(1.0, _silence[0] / 4))
        try:
            _end_silent_waits()
        except Exception:  # a connection closed under the look: the next one sees it gone
            continue


def _end_silent_waits() -> None:
    from psycopg.pq import TransactionStatus

    now = time.monotonic()
    limit = 0.0 if interrupts.interrupting() else _silence[0]
    stuck: dict[tuple[str, str], list[Any]] = {}
    with _lock:
        connections = list(_connections)
    for conn in connections:
        if conn.closed or conn.pgconn.transaction_status != TransactionStatus.ACTIVE:
            _waiting_since.pop(conn, None)
            continue
        since = _waiting_since.setdefault(conn, now)
        if now - since >= limit:
            stuck.setdefault((conn.info.dsn, conn.info.password), []).append(conn)
    for (dsn, password), waiting in stuck.items():
        if _answers(dsn, password):
            for conn in waiting:  # a slow statement: look again after another `silence`
                _waiting_since[conn] = time.monotonic()
            continue
        for conn in waiting:
            if not conn.closed and conn.pgconn.transaction_status == TransactionStatus.ACTIVE:
                _shut(conn.pgconn.socket)


def _answers(dsn: str, password: str) -> bool:
    """Whether the server of `dsn` opens a new connection within `PROBE_TIMEOUT_S` (or the silence limit)."""
    import psycopg

    try:
        timeout = max(2, min(PROBE_TIMEOUT_S, round(_silence[0])))
        psycopg.connect(dsn, password=password or None, connect_timeout=timeout).close()
    except Exception:
        return False
    return True


def _shut(fd: int) -> None:
    """Shut the TCP connection on `fd` (psycopg's socket, left open for psycopg to close): a read waiting on
    it returns at once."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
