"""hpotool.silence on real servers; a server that stops answering mid-study: tests/test_machines.py."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy

from hpotool import silence
from hpotool.storage import server_connect_kwargs

from .test_workers import _server_url

SLEEP = {"postgres": "SELECT pg_sleep(4)", "mysql": "SELECT SLEEP(4)"}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_slow_statement_on_a_server_that_answers_goes_on(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A statement that waits longer than the silence limit (a lock, a big read) has its server asked
    # whether it still answers; it does, and the statement is left to finish.
    url = _server_url(kind)
    monkeypatch.setattr(silence, "_silence", [1.0])
    asked: list[Any] = []
    answers = silence._answers

    def counted(driver: Any, conn: Any, timeout: int) -> bool:
        asked.append(conn)
        return answers(driver, conn, timeout)

    monkeypatch.setattr(silence, "_answers", counted)
    engine = sqlalchemy.create_engine(url, **server_connect_kwargs(url))
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(SLEEP[kind])).all()
            assert conn.connection.dbapi_connection in asked  # the server was asked, and it answered
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_connection_hpotool_did_not_open_is_not_watched(kind: str) -> None:
    # The watcher listened on every SQLAlchemy pool of the process: a user's training's own PostgreSQL
    # connections were watched too (and shut under Ctrl-C if their server was slow to open another).
    url = _server_url(kind)
    silence.watch(60)
    ours = sqlalchemy.create_engine(url, **server_connect_kwargs(url))
    theirs = sqlalchemy.create_engine(url)
    try:
        with ours.connect() as mine, theirs.connect() as other:
            assert mine.connection.dbapi_connection in silence._connections
            assert other.connection.dbapi_connection not in silence._connections
    finally:
        ours.dispose()
        theirs.dispose()


def _pymysql_without(name: str) -> type[Any]:
    """PyMySQL's Connection, working as before, where `name` (a method or an attribute the watcher uses)
    is kept under another name, as a later PyMySQL may rename it."""
    from pymysql.connections import Connection

    renamed = f"{name}_renamed"
    namespace = {k: v for k, v in vars(Connection).items() if k not in ("__dict__", "__weakref__", name)}
    if name in vars(Connection):
        namespace[renamed] = vars(Connection)[name]

    def __getattr__(self: Any, attr: str) -> Any:  # PyMySQL's own uses of `name` still work
        if attr == name:
            return getattr(self, renamed)
        raise AttributeError(attr)

    def __setattr__(self: Any, attr: str, value: Any) -> None:
        object.__setattr__(self, renamed if attr == name else attr, value)

    return type(
        "Connection",
        Connection.__bases__,
        {**namespace, "__getattr__": __getattr__, "__setattr__": __setattr__},
    )


@pytest.mark.parametrize("name", ["_read_packet", "_sock", "_read_timeout"])
def test_a_pymysql_without_the_parts_the_watcher_uses_leaves_its_connections_unwatched(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # silence reads PyMySQL's internals (PyMySQL 1.2.4 here). A PyMySQL without `_read_packet` made every
    # MySQL storage fail to open (AttributeError); one without `_sock` or `_read_timeout` had its
    # connections watched (the watcher failing on them at every look) or its read timeout left set. Now
    # such a PyMySQL's connections work, unwatched, with no read timeout.
    import pymysql.connections

    url = _server_url("mysql")
    monkeypatch.setattr(pymysql.connections, "Connection", _pymysql_without(name))
    monkeypatch.setattr(silence, "_classes", [])
    engine = sqlalchemy.create_engine(url, **server_connect_kwargs(url))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
            dbapi = conn.connection.dbapi_connection
            assert dbapi not in silence._connections
            assert dbapi._read_timeout is None
    finally:
        engine.dispose()
