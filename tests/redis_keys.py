"""Deleting a test's keys from the shared Redis server: each journal's count before its logs.

Optuna's journal reader reads `PREFIX:log_number` first, then each `PREFIX:log:N` up to that count. Cleanups
that deleted keys in SCAN order could take `PREFIX:log:0` before `PREFIX:log_number`, and a reader in
between (another test's look at the server's other journals) found a journal missing a log. With the counts
gone first, a journal being deleted reads as empty, never as missing a log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.redis_databases import CLAIM_KEY


def delete_redis_keys(
    client: Any, *patterns: str, keep: Callable[[bytes], bool] | None = None
) -> list[bytes]:
    """Delete the keys of `client`'s database matching any of `patterns` (SCAN patterns), but those `keep`
    holds and a database claim (`own_databases` lets that go): every `...:log_number` first, then the rest.
    Returns the keys deleted, in that order."""
    found = {key for pattern in patterns for key in client.scan_iter(match=pattern)}
    found = {key for key in found if key != CLAIM_KEY.encode() and not (keep and keep(key))}
    counts = sorted(key for key in found if key.endswith(b":log_number"))
    rest = sorted(found - set(counts))
    for batch in (counts, rest):
        if batch:
            client.delete(*batch)
    return [*counts, *rest]
