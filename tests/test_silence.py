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
