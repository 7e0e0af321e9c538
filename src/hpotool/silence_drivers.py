"""What the silence watcher (`hpotool.silence`) asks of a connection of each database driver: whether it
waits for an answer, which server it talks to, whether that server still opens a new connection, its socket.

A psycopg connection waits for an answer while its transaction status is ACTIVE (counted from the first
look that saw it so); a PyMySQL connection, which has no such flag, while it reads a packet from the server
(of a statement's answer, a commit's, a ping's), which its class here notes: a long answer whose rows keep
coming is no silence.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from typing import Any, Protocol


class Driver(Protocol):
    """What the watcher asks of a connection of one driver: `PsycopgDriver` and `PyMySQLDriver`, the classes
    themselves, whose static methods these are."""

    def waiting(self, conn: Any) -> Hashable | None:
        """A token of the answer `conn` waits for now (the same until it comes), or None."""

    def server(self, conn: Any) -> Hashable:
        """The server `conn` talks to: one probe asks it for all its waiting connections."""

    def answers(self, conn: Any, timeout: int) -> None:
        """Open (and close) a new connection to the server of `conn` within `timeout` seconds, or raise."""

    def socket(self, conn: Any) -> int:
        """The file descriptor of the socket of `conn` (-1 once closed)."""

    def address(self, conn: Any) -> str:
        """Where the server of `conn` listens, for the user: "host:port", or a Unix socket's path."""


class PsycopgDriver:
    @staticmethod
    def waiting(conn: Any) -> Hashable | None:
        from psycopg.pq import TransactionStatus

        # one token for every statement: a connection seen busy at every look is counted from the first
        return None if conn.closed or conn.pgconn.transaction_status != TransactionStatus.ACTIVE else True

    @staticmethod
    def server(conn: Any) -> Hashable:
        return (conn.info.dsn, conn.info.password)

    @staticmethod
    def answers(conn: Any, timeout: int) -> None:
        import psycopg

        psycopg.connect(conn.info.dsn, password=conn.info.password or None, connect_timeout=timeout).close()

    @staticmethod
    def socket(conn: Any) -> int:
        return -1 if conn.closed else int(conn.pgconn.socket)

    @staticmethod
    def address(conn: Any) -> str:
        host = conn.info.host
        return f"{host}:{conn.info.port}" if not host.startswith("/") else f"{host}/.s.PGSQL.{conn.info.port}"


_reads = itertools.count()
_classes: list[type[Any]] = []


class PyMySQLDriver:
    @staticmethod
    def connection_class() -> type[Any] | None:
        """A pymysql.connections.Connection whose `_hpotool_read` is a number while it reads a packet (each
        read its own number), None otherwise (about 0.3 µs a packet: 3 ms of a 60 ms read of 10,000 rows);
        None where PyMySQL's Connection reads none through `_read_packet`."""
        if not _classes:
            import pymysql.connections

            found = getattr(
                pymysql.connections.Connection, "_read_packet", None
            )  # every read from the server
            if not callable(found):
                return None
            read_packet: Callable[..., Any] = found

            class WatchedConnection(pymysql.connections.Connection):
                _hpotool_read: int | None = None

                def _read_packet(self, *args: Any) -> Any:
                    self._hpotool_read = next(_reads)
                    try:
                        return read_packet(self, *args)
                    finally:
                        self._hpotool_read = None

            _classes.append(WatchedConnection)
        return _classes[0]

    @staticmethod
    def waiting(conn: Any) -> Hashable | None:
        return conn._hpotool_read

    @staticmethod
    def server(conn: Any) -> Hashable:
        return (conn.host, conn.port, conn.unix_socket, conn.user, conn.db)

    @staticmethod
    def answers(conn: Any, timeout: int) -> None:
        import pymysql

        cargs, cparams = conn._hpotool_args
        limits = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
        pymysql.connect(*cargs, **{**cparams, **limits}).close()

    @staticmethod
    def socket(conn: Any) -> int:
        sock = conn._sock
        return -1 if sock is None else int(sock.fileno())

    @staticmethod
    def address(conn: Any) -> str:
        return str(conn.unix_socket or f"{conn.host}:{conn.port}")
