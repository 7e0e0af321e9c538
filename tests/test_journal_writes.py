"""A trial's FAIL and its reason as one write on Optuna's journal storages (`failed_trials.fail_trial`)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from hpotool.failed_trials import RUN_FAILED, fail_trial
from hpotool.storage import make_storage


def _ends_it(url: str, trial_id: int) -> None:
    """The trial's worker, another process, tells its result (refused where the trial ended already)."""
    with contextlib.suppress(UpdateFinishedTrialError):
        make_storage(url).set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])


@pytest.mark.parametrize("read", [0, 1, 2, 3])
def test_a_trial_failed_as_its_worker_ends_it_keeps_the_reason_only_with_the_fail(
    journal_url: str, read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its worker tells the result after `read` reads of the journal by the process failing it (0: before
    # it fails it). Before: the reason and the run-failed mark were written first, then the FAIL; the worker
    # telling the result after the first left a COMPLETE trial whose fail_reason said "stale" (and which
    # counted toward --max-failures). Now the three land together, or none does.
    storage = make_storage(journal_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial_id = study.ask()._trial_id
    reads = 0
    real_sync = storage._sync_with_backend  # type: ignore[attr-defined]

    def sync_then_maybe_end_it(*args: Any) -> None:
        nonlocal reads
        real_sync(*args)
        reads += 1
        if reads == read:
            _ends_it(journal_url, trial_id)

    if read == 0:
        _ends_it(journal_url, trial_id)
    monkeypatch.setattr(storage, "_sync_with_backend", sync_then_maybe_end_it)
    failed = fail_trial(storage, trial_id, "stale: marked failed by fail-stale", run_failed=True)
    monkeypatch.undo()
    if reads < read:
        _ends_it(journal_url, trial_id)  # after it, then
    trial = make_storage(journal_url).get_trial(trial_id)
    assert failed == (trial.state == TrialState.FAIL)
    assert ("fail_reason" in trial.user_attrs) == failed, (trial.state, trial.user_attrs)
    assert (RUN_FAILED in trial.system_attrs) == failed
    assert storage.get_trial(trial_id).state == trial.state  # this process reads the journal on
    assert failed == (read > 0)


def test_a_queued_trial_failed_on_a_journal_gets_its_reason(journal_url: str) -> None:
    storage = make_storage(journal_url)
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({"x": 0.5})
    trial_id = study.trials[0]._trial_id
    assert fail_trial(storage, trial_id, "dropped", waiting=True)
    trial = make_storage(journal_url).get_trial(trial_id)
    assert (trial.state, trial.user_attrs, RUN_FAILED in trial.system_attrs) == (
        TrialState.FAIL,
        {"fail_reason": "dropped"},
        False,
    )
    assert trial.datetime_complete is not None
    assert not fail_trial(storage, trial_id, "again")  # ended: refused, and the reason stays
    assert make_storage(journal_url).get_trial(trial_id).user_attrs == {"fail_reason": "dropped"}


def _at_once(*acts: Callable[[], object]) -> list[object]:
    """What each of `acts` returned, run at the same moment in threads of their own."""
    start = threading.Barrier(len(acts))
    results: list[object] = [None] * len(acts)

    def run(i: int) -> None:
        start.wait()
        results[i] = acts[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(acts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_trial_failed_while_its_worker_ends_it_at_the_same_moment_is_one_or_the_other(
    journal_url: str,
) -> None:
    # The two at once, each with its own storage, round after round: the trial is FAIL with the reason and
    # the mark, or its worker's COMPLETE with neither.
    storage = make_storage(journal_url)
    study = optuna.create_study(study_name="s", storage=storage)
    for round_ in range(25):
        trial_id = study.ask()._trial_id
        failed, _ = _at_once(
            partial(fail_trial, storage, trial_id, "stale", run_failed=True),
            partial(_ends_it, journal_url, trial_id),
        )
        trial = make_storage(journal_url).get_trial(trial_id)
        landed = (
            trial.state == TrialState.FAIL,
            "fail_reason" in trial.user_attrs,
            RUN_FAILED in trial.system_attrs,
        )
        assert landed == (failed,) * 3, f"round {round_}: {trial.state}, {trial.user_attrs}"


def _takes_it_up(url: str, trial_id: int) -> bool:
    """A worker of another process takes the queued trial up, as Optuna pops one: whether it runs it (it
    cannot where the trial ended, nor where another worker runs it)."""
    try:
        return make_storage(url).set_trial_state_values(trial_id, TrialState.RUNNING)
    except UpdateFinishedTrialError:
        return False


def _journal_locked(url: str) -> bool:
    """Whether a process holds the journal file's lock (Optuna's lock file beside it); never on Redis, whose
    journal takes no lock."""
    lock = getattr(make_storage(url)._backend, "_lock", None)  # type: ignore[attr-defined]
    return lock is not None and os.path.lexists(lock._lock_file)


@pytest.mark.parametrize("read", [0, 1, 2, 3])
def test_a_queued_trial_failed_as_a_worker_takes_it_up_is_failed_or_run_never_both(
    journal_url: str, read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker of another process takes the queued trial up after `read` reads of the journal by the process
    # failing it while it waits (0: before). Before, that process read the trial WAITING, then wrote its FAIL:
    # a worker taking it up in between ran a trial failed under it ("dropped"), its result refused. Now the
    # FAIL lands only on a trial still WAITING. A worker that finds the journal file locked takes it up once
    # the lock is free.
    storage = make_storage(journal_url)
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({"x": 0.5})
    trial_id = study.trials[0]._trial_id
    reads = 0
    taken: list[bool] = []
    real_sync = storage._sync_with_backend  # type: ignore[attr-defined]

    def sync_then_maybe_take_it_up(*args: Any) -> None:
        nonlocal reads
        real_sync(*args)
        reads += 1
        if reads == read and not _journal_locked(journal_url):
            taken.append(_takes_it_up(journal_url, trial_id))

    if read == 0:
        taken.append(_takes_it_up(journal_url, trial_id))
    monkeypatch.setattr(storage, "_sync_with_backend", sync_then_maybe_take_it_up)
    failed = fail_trial(storage, trial_id, "dropped", waiting=True)
    monkeypatch.undo()
    if not taken:
        taken.append(_takes_it_up(journal_url, trial_id))  # after it, or once the lock is free
    trial = make_storage(journal_url).get_trial(trial_id)
    assert failed != taken[0], f"failed: {failed}, taken up: {taken[0]}"
    assert trial.state == (TrialState.FAIL if failed else TrialState.RUNNING)
    assert ("fail_reason" in trial.user_attrs) == failed, (trial.state, trial.user_attrs)
