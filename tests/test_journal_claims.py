"""Claims (`claims.claim`) on Optuna's journal storages: a Redis key set with SET NX, a file made with O_EXCL.

Before, every caller claimed a key there, so two processes failing one stale trial could both queue its
retry (or one queue it while its live worker kept the result), and two resumes both queue one point."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from hpotool.claims import RETRIED, claim
from hpotool.heartbeat import retry_stale_trial
from hpotool.journal_claims import claims_folder
from hpotool.storage import make_storage
from tests.redis_keys import delete_redis_keys

# Threads racing per round, rounds per race: each round claims a new key, all of them at once.
RACERS = 4
ROUNDS = 25


def _race(url: str, name: str, act: Callable[[optuna.Study], object]) -> list[object]:
    """What `act(study)` returned in each of RACERS threads, run at once, each with its own storage (as
    processes have)."""
    studies = [optuna.load_study(study_name=name, storage=make_storage(url)) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)
    results: list[object] = [None] * RACERS

    def run(i: int) -> None:
        start.wait()
        results[i] = act(studies[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_one_of_the_processes_claiming_a_key_at_once_wins_it(journal_url: str) -> None:
    # Before: every one of them did (True four times a round).
    optuna.create_study(study_name="s", storage=make_storage(journal_url))
    for round_ in range(ROUNDS):
        won = _race(journal_url, "s", partial(claim, key=f"{RETRIED}{round_}"))
        assert won.count(True) == 1, f"round {round_}: {won}"


def _claim_keys(url: str, start: Any, won: Any) -> None:
    """A process claiming `ROUNDS` keys in a row in study "s" once `start` is set, putting those it won
    into `won`, then None: it is done."""
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    start.wait()
    for round_ in range(ROUNDS):
        if claim(study, f"{RETRIED}{round_}"):
            won.put(round_)
    won.put(None)


def test_two_processes_claiming_the_same_keys_win_each_once(journal_url: str) -> None:
    import multiprocessing

    optuna.create_study(study_name="s", storage=make_storage(journal_url))
    context = multiprocessing.get_context("spawn")
    start, won = context.Event(), context.Queue()
    processes = [context.Process(target=_claim_keys, args=(journal_url, start, won)) for _ in range(2)]
    for p in processes:
        p.start()
    start.set()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    # every key each process won, read until both said they were done (before: until the queue stayed
    # empty for a second); all were sent before they exited, the bound is a hang guard
    rounds: list[int] = []
    done = 0
    while done < 2:
        got = won.get(timeout=120)
        done += got is None
        rounds += [] if got is None else [got]
    assert sorted(rounds) == list(range(ROUNDS))  # before: each key twice


def test_a_key_claimed_in_one_study_is_free_in_another(journal_url: str) -> None:
    storage = make_storage(journal_url)
    first = optuna.create_study(study_name="first", storage=storage)
    second = optuna.create_study(study_name="second", storage=storage)
    assert claim(first, f"{RETRIED}0")
    assert not claim(first, f"{RETRIED}0")
    assert claim(second, f"{RETRIED}0")
    assert claim(first, f"{RETRIED}1")


def test_a_study_deleted_and_made_again_claims_afresh(journal_url: str) -> None:
    storage = make_storage(journal_url)
    old = optuna.create_study(study_name="s", storage=storage)
    assert claim(old, f"{RETRIED}0")
    optuna.delete_study(study_name="s", storage=storage)
    new = optuna.create_study(study_name="s", storage=storage)  # another id: a journal gives none twice
    assert claim(new, f"{RETRIED}0")


def test_a_journal_file_made_again_holds_none_of_the_old_ones_claims(tmp_path: Path) -> None:
    # Its study ids start again at 0; the claims folder beside it stays.
    journal = tmp_path / "studies" / "j.log"
    old = optuna.create_study(study_name="s", storage=make_storage(f"journal:{journal}"))
    assert claim(old, f"{RETRIED}0")
    journal.unlink()
    new = optuna.create_study(study_name="s", storage=make_storage(f"journal:{journal}"))
    assert new._study_id == old._study_id
    assert claim(new, f"{RETRIED}0")
    assert not claim(new, f"{RETRIED}0")
    assert sorted(p.name for p in journal.parent.iterdir()) == [".j.log.claims", "j.log"]
    assert claims_folder(journal).is_dir()


@pytest.mark.server
def test_a_redis_journal_made_again_holds_none_of_the_old_ones_claims() -> None:
    # Its study ids start again at 0 once its keys are deleted (all but hpotool's claims).
    import redis

    from tests.test_workers import _server_url

    server = _server_url("redis")
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(server)
    try:
        old = optuna.create_study(study_name="s", storage=make_storage(f"{server}?prefix={prefix}"))
        assert claim(old, f"{RETRIED}0")
        delete_redis_keys(client, f"{prefix}:*", keep=lambda key: b":hpotool:claims:" in key)
        new = optuna.create_study(study_name="s", storage=make_storage(f"{server}?prefix={prefix}"))
        assert new._study_id == old._study_id
        assert claim(new, f"{RETRIED}0")
        assert not claim(new, f"{RETRIED}0")
    finally:
        delete_redis_keys(client, f"{prefix}:*")


def test_processes_failing_one_stale_trial_at_once_queue_one_retry(journal_url: str) -> None:
    # `fail-stale --all-running` on two machines (or twice) at the same moment: before, each queued the
    # trial's values again, and they ran twice more.
    study = optuna.create_study(study_name="s", storage=make_storage(journal_url))
    x = optuna.distributions.FloatDistribution(0.0, 1.0)
    for round_ in range(ROUNDS):
        study.add_trial(
            create_trial(state=TrialState.FAIL, params={"x": round_ / ROUNDS}, distributions={"x": x})
        )
        failed = study.trials[-1]
        _race(journal_url, "s", partial(retry_stale_trial, trial=failed))
        retries = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == failed.number]
        assert len(retries) == 1, f"trial #{failed.number}: {len(retries)} retries"
