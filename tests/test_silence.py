"""hpotool.silence on real servers; a server that stops answering mid-study: tests/test_machines.py."""

from __future__ import annotations

import sqlalchemy

from hpotool import silence
from hpotool.storage import server_connect_kwargs

from .test_workers import _server_url


def test_a_connection_hpotool_did_not_open_is_not_watched() -> None:
    # The watcher listened on every SQLAlchemy pool of the process: a user's training's own PostgreSQL
    # connections were watched too (and shut under Ctrl-C if their server was slow to open another).
    url = _server_url("postgres")
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
