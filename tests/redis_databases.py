"""Databases of a test's own on the shared Redis server (`own_databases`), for the tests whose subject is a
whole database (the journals it holds) or the server's other databases.

Tests used databases 11, 12 and 13 by number, after checking that they held no journal: two test runs at
once on one server (two checkouts, or two xdist processes) could both find one empty and share it, and one
test's journals showed in the other's "other journals". A database is now claimed with SET NX on a key in
it, which one client alone can set, and used only where that key is all it holds. Database 0 is never
claimed: anyone's default."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CLAIM_KEY = "hpotool-test-claim"  # no journal's key: those end in :log_number, :log:N
CLAIM_S = 900  # a claim outlives its test (pytest-timeout: 300 s), and lapses after a run killed mid-test
WAIT_S = 120  # a hang guard: claims last a test's time, and 15 databases are seldom all claimed
POOL = range(1, 16)  # Redis's default 16 databases, 0 left out
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@contextmanager
def own_databases(server: str, count: int) -> Iterator[list[int]]:
    """The numbers of `count` databases of `server` (a `redis://host:port` URL) that this test alone uses
    while inside: each empty when claimed, its claim let go on the way out. The test deletes
    the keys it made, as before; a database it left keys in is not claimed again until they are gone."""
    import redis

    token = uuid.uuid4().hex
    claimed: list[int] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while len(claimed) < count:
            for db in POOL:
                if db in claimed or len(claimed) == count:
                    continue
                with redis.Redis.from_url(f"{server}/{db}") as client:
                    if _claim(client, token):
                        claimed.append(db)
            if len(claimed) < count:
                assert time.monotonic() < deadline, f"no free Redis database on {server} in {WAIT_S} s"
                time.sleep(0.5)
        yield list(claimed)
    finally:
        for db in claimed:
            with redis.Redis.from_url(f"{server}/{db}") as client:
                client.eval(_RELEASE, 1, CLAIM_KEY, token)


def _claim(client: Any, token: str) -> bool:
    """Whether `client`'s database is now this test's: its claim key set here, and nothing else in it."""
    if not client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_S):
        return False  # another test's
    if client.dbsize() == 1:
        return True
    client.eval(_RELEASE, 1, CLAIM_KEY, token)  # someone's keys there: not ours to use or clear
    return False
