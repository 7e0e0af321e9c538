"""`tests.redis_databases`: the databases a test claims on the shared Redis server are its own."""

from __future__ import annotations

import threading

import pytest

from tests.redis_databases import CLAIM_KEY, own_databases
from tests.redis_keys import delete_redis_keys
from tests.test_workers import _server_url

pytestmark = pytest.mark.server


def test_a_database_claimed_is_no_other_claims_and_is_let_go_after() -> None:
    # Tests checked that database 12 held no journal, then used it: a second test (another run, another
    # xdist process) checking in between found it as empty, and both used it.
    import redis

    server = _server_url("redis")
    with own_databases(server, 2) as mine, own_databases(server, 1) as theirs:
        assert len({*mine, *theirs}) == 3 and 0 not in {*mine, *theirs}, (mine, theirs)
        held = {db: redis.Redis.from_url(f"{server}/{db}").get(CLAIM_KEY) for db in (*mine, *theirs)}
        assert None not in held.values() and len(set(held.values())) == 2, held  # one claim, one token
    for db, token in held.items():  # let go: the key gone, or another test's claim since
        assert redis.Redis.from_url(f"{server}/{db}").get(CLAIM_KEY) != token, db


def test_tests_claiming_at_once_get_databases_of_their_own() -> None:
    server = _server_url("redis")
    start, got = threading.Barrier(4), []
    holding = threading.Barrier(4, timeout=120)  # each holds its claim until all have one

    def claim() -> None:
        start.wait(timeout=120)
        with own_databases(server, 1) as [db]:
            got.append(db)
            holding.wait()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(got) == 4 and len(set(got)) == 4, got


def test_a_tests_redis_cleanup_deletes_each_journals_count_before_its_logs() -> None:
    # Cleanups deleted keys in SCAN order: `p:log:0` could go before `p:log_number`, and a reader in between
    # (Optuna's reads the count first) found a journal missing a log. The claim key is `own_databases`'s.
    import optuna
    import redis

    from hpotool.storage import make_storage, peeked_study_names

    server = _server_url("redis")
    with own_databases(server, 1) as [db]:
        database = f"{server}/{db}"
        client = redis.Redis.from_url(database)
        try:
            for prefix in ("a", "b"):
                study = optuna.create_study(
                    study_name=prefix, storage=make_storage(f"{database}?prefix={prefix}")
                )
                study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
            counted = delete_redis_keys(client, "a:*", keep=lambda key: key.startswith(b"a:log:"))
            assert counted == [
                b"a:log_number"
            ]  # the count alone: the journal now reads as empty, not as broken
            assert peeked_study_names(f"{database}?prefix=a") == []
            gone = delete_redis_keys(client, "*")
            assert gone[0] == b"b:log_number" and len(gone) > 2, gone
            assert not any(key.endswith(b":log_number") for key in gone[1:]), gone
            assert client.keys("*") == [CLAIM_KEY.encode()]  # all but the claim
        finally:
            delete_redis_keys(client, "*")
