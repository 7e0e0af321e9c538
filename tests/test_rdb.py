"""BufferedRDBStorage: batched reports and the finished-trials snapshot keep Optuna's semantics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpotool.rdb import BufferedRDBStorage
from hpotool.storage import make_storage
from tests.conftest import SharedStudy, unique_name

# These tests ask trials by hand (`study.ask()`) on hpotool's storage, whose heartbeat makes Optuna warn that
# it "is supposed to be used with Study.optimize"; hpotool's own loop asks with that warning off.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize:UserWarning"
)


def _buffered_study(tmp_path: Path, **settings: float) -> tuple[str, optuna.Study]:
    """The URL of tmp_path/s.db, and study 's' there through a BufferedRDBStorage with `settings` (flush_s,
    refresh_s)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = make_storage(url)
    assert isinstance(storage, BufferedRDBStorage)
    for name, value in settings.items():
        setattr(storage, name, value)
    return url, optuna.create_study(study_name="s", storage=storage)


def _other_process_view(url: str, name: str) -> optuna.Study:
    """A second, independent connection: what another worker or optuna-dashboard sees."""
    return optuna.load_study(study_name=name, storage=url)


def test_make_storage_wraps_every_rdb_url(tmp_path: Path) -> None:
    assert isinstance(make_storage(f"sqlite:///{tmp_path / 'a.db'}"), BufferedRDBStorage)
    assert not isinstance(make_storage(f"journal:{tmp_path / 'j.log'}"), BufferedRDBStorage)


def test_reports_of_a_fast_trial_are_written_together_and_before_it_finishes(tmp_path: Path) -> None:
    # "Fast": its reports all come within the flush interval, here an hour, so that a machine stalled for a
    # second (FLUSH_S, the default) between `ask` and the last report cannot write one early.
    url, study = _buffered_study(tmp_path, flush_s=3600.0)
    trial = study.ask()
    for step in range(5):
        trial.report(float(step), step)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {}  # still buffered
    assert trial.should_prune() is False  # the pruner sees them: they live on the trial
    study.tell(trial, 1.0)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {s: float(s) for s in range(5)}


def test_reports_are_written_at_once_when_epochs_are_slower_than_the_flush_interval(tmp_path: Path) -> None:
    url, study = _buffered_study(tmp_path, flush_s=0.05)
    trial = study.ask()
    time.sleep(0.06)
    trial.report(0.5, 0)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {0: 0.5}
    assert _other_process_view(url, "s").trials[0].state == TrialState.RUNNING


def test_reading_the_running_trial_back_writes_its_reports_first(tmp_path: Path) -> None:
    _, study = _buffered_study(tmp_path)
    trial = study.ask()
    trial.report(3.0, 7)
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {7: 3.0}
    assert study.get_trials(states=(TrialState.RUNNING,))[0].intermediate_values == {7: 3.0}


def test_a_failed_trial_keeps_its_curve(tmp_path: Path) -> None:
    url, study = _buffered_study(tmp_path)
    trial = study.ask()
    trial.report(1.0, 0)
    trial.report(2.0, 1)
    study.tell(trial, state=TrialState.FAIL)
    stored = _other_process_view(url, "s").trials[0]
    assert stored.state == TrialState.FAIL and stored.intermediate_values == {0: 1.0, 1: 2.0}


def test_a_report_on_a_finished_trial_is_still_refused(tmp_path: Path) -> None:
    _, study = _buffered_study(tmp_path)
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(RuntimeError):
        study._storage.set_trial_intermediate_value(trial._trial_id, 0, 1.0)


def test_a_read_of_a_trial_another_process_ended_drops_its_buffered_reports(
    shared_study: SharedStudy,
) -> None:
    # A trial this process runs, a report of it buffered, that another process failed (a stale check that took
    # this live process for dead): reading it back raised UpdateFinishedTrialError, the buffered report's
    # write refused, and the trial loop, reading it as it ended the trial, let that out of the command as a
    # traceback. Now a read returns the trial as stored; the trial's own next write is refused, as before.
    from optuna.exceptions import UpdateFinishedTrialError

    from hpotool.failed_trials import fail_trial

    study = shared_study.study
    shared_study.mine.flush_s = 3600.0  # buffered however long `ask` takes on a loaded server (FLUSH_S: 1 s)
    trial = study.ask()
    trial.report(0.5, 0)  # buffered
    assert fail_trial(shared_study.other, trial._trial_id, "stale: no heartbeat")
    stored = study._storage.get_trial(trial._trial_id)  # before: UpdateFinishedTrialError
    assert stored.state == TrialState.FAIL and stored.user_attrs["fail_reason"] == "stale: no heartbeat"
    assert stored.intermediate_values == {}
    trial.report(0.25, 1)
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # every trial read: the same
    with pytest.raises(UpdateFinishedTrialError):
        trial.set_user_attr("history", [])


class _Clock:
    """A monotonic clock the test moves by hand, so a slow machine cannot expire a snapshot early."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_another_worker_s_finished_trial_reaches_the_pruner_within_refresh_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr("hpotool.rdb.time", clock)
    url, study = _buffered_study(tmp_path, refresh_s=0.2)
    mine = study.ask()
    done = (TrialState.COMPLETE,)
    assert study.get_trials(states=done) == []
    other = _other_process_view(url, "s")
    other.tell(other.ask(), 5.0)
    clock.now += 0.19
    assert study.get_trials(states=done) == []  # the snapshot, taken while `mine` runs
    clock.now += 0.02
    assert [t.value for t in study.get_trials(states=done)] == [5.0]
    assert [t.state for t in study.get_trials(states=None)] == [TrialState.RUNNING, TrialState.COMPLETE]
    study.tell(mine, 1.0)
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 5.0]


def test_with_no_trial_running_here_every_query_reads_the_database(tmp_path: Path) -> None:
    url, study = _buffered_study(tmp_path)
    study.tell(study.ask(), 1.0)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 1
    other = _other_process_view(url, "s")
    other.tell(other.ask(), 2.0)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2  # no waiting for a refresh


def test_a_seeded_study_samples_the_same_trials_as_in_memory(tmp_path: Path) -> None:
    """The sampler and pruner see every trial this process finished at once, exactly as in memory."""

    def run(storage: optuna.storages.BaseStorage | None) -> list[tuple[float, TrialState]]:
        study = optuna.create_study(
            storage=storage,
            sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=3),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
        )
        for _ in range(12):
            trial = study.ask()
            x = trial.suggest_float("x", -3, 3)
            state = TrialState.COMPLETE
            for step in range(4):
                trial.report((x - 1) ** 2 + 1 / (step + 1), step)
                if trial.should_prune():
                    state = TrialState.PRUNED
                    break
            study.tell(trial, (x - 1) ** 2 if state == TrialState.COMPLETE else None, state=state)
        return [(t.params["x"], t.state) for t in study.trials]

    buffered = run(make_storage(f"sqlite:///{tmp_path / 's.db'}"))
    assert buffered == run(None)
    assert any(state == TrialState.PRUNED for _, state in buffered)  # the pruner took part


def _every_kind_of_trial(storage: optuna.storages.BaseStorage, prefix: str) -> list[int]:
    """Two studies in one storage holding every kind of value Optuna stores; returns their ids."""
    single = optuna.create_study(study_name=f"{prefix}single", storage=storage, direction="maximize")
    single.set_user_attr("note", "x")
    for i, (value, curve) in enumerate(
        [(1.5, {0: 0.5, 1: float("nan")}), (float("inf"), {0: float("-inf")}), (-2.0, {})]
    ):
        trial = single.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("width", 8, 64, step=8)
        trial.suggest_categorical("act", ["relu", None, 3])
        trial.set_user_attr("history", [{"epoch": 0, "loss": 0.1 * i}])
        trial.storage.set_trial_system_attr(trial._trial_id, "rung", {"a": [1, 2]})
        for step, v in curve.items():
            trial.report(v, step)
        single.tell(trial, value)
    failed = single.ask()
    failed.suggest_float("lr", 1e-4, 1e-1, log=True)
    single.tell(failed, state=TrialState.FAIL)
    pruned = single.ask()
    pruned.report(0.1, 0)
    single.tell(pruned, state=TrialState.PRUNED)
    single.ask()  # RUNNING
    single.enqueue_trial({"lr": 0.01})  # WAITING
    multi = optuna.create_study(
        study_name=f"{prefix}multi", storage=storage, directions=["minimize", "maximize"]
    )
    trial = multi.ask()
    trial.suggest_float("x", 0, 1)
    multi.tell(trial, [float("-inf"), 3.0])
    return [single._study_id, multi._study_id]


def _has_nan(trial: optuna.trial.FrozenTrial) -> bool:
    return any(v != v for v in trial.intermediate_values.values())


def test_the_fast_trial_read_returns_what_optunas_orm_read_returns(rdb_url: str) -> None:
    from hpotool.rdb import FastReadRDBStorage

    url, prefix = rdb_url, f"{unique_name()}-"
    ids = _every_kind_of_trial(make_storage(url), prefix)
    fast, orm = FastReadRDBStorage(url), optuna.storages.RDBStorage(url)
    first = min(t._trial_id for t in orm._get_trials(ids[0], None, set(), -1))
    try:
        _compare(fast, orm, ids, first)
    finally:
        for name in ("single", "multi"):
            optuna.delete_study(study_name=prefix + name, storage=url)


def _compare(
    fast: optuna.storages.RDBStorage, orm: optuna.storages.RDBStorage, ids: list[int], first: int
) -> None:
    for study_id in ids:
        for states, included, greater in [
            (None, set(), -1),
            ((TrialState.COMPLETE,), set(), -1),
            ((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL), set(), -1),
            ((TrialState.RUNNING, TrialState.WAITING), set(), -1),
            (None, {first, first + 1}, first + 2),
            (None, set(), first + 1),
            (None, {first + 1, first + 7}, first + 3),
        ]:
            theirs = orm._get_trials(study_id, states, included, greater)
            ours = fast._get_trials(study_id, states, included, greater)
            # repr: every field, floats exact, and a NaN equal to a NaN (== would say it is not)
            assert [sorted(vars(t).items()) for t in ours].__repr__() == repr(
                [sorted(vars(t).items()) for t in theirs]
            ), (study_id, states, included, greater)
            assert [t for t in ours if not _has_nan(t)] == [t for t in theirs if not _has_nan(t)]
            assert [t.datetime_start for t in ours] == [t.datetime_start for t in theirs]
            assert [list(t.intermediate_values) for t in ours] == [
                list(t.intermediate_values) for t in theirs
            ]
    assert len(fast._get_trials(ids[0], None, set(), -1)) == 7
    with pytest.raises(KeyError):
        fast._get_trials(max(ids) + 1000, None, set(), -1)


def test_a_trial_created_during_a_read_is_left_for_the_next_read(tmp_path: Path) -> None:
    """Another worker adds a trial between the read of the trial rows and the read of their values."""
    import sqlalchemy

    from hpotool.rdb import FastReadRDBStorage

    url, study = _buffered_study(tmp_path)
    study.tell(study.ask(), 1.0)
    fast, other = FastReadRDBStorage(url), optuna.load_study(study_name="s", storage=url)
    fired: list[str] = []

    def add_a_trial_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT trials.trial_id, trials.number") and not fired:
            fired.append(statement)
            trial = other.ask()
            trial.report(0.5, 0)
            trial.set_user_attr("k", 1)
            other.tell(trial, 2.0)

    sqlalchemy.event.listen(fast.engine, "after_cursor_execute", add_a_trial_once)
    assert [t.number for t in fast._get_trials(study._study_id, None, set(), -1)] == [0]
    assert fired
    again = fast._get_trials(study._study_id, None, set(), -1)
    assert [t.number for t in again] == [0, 1] and again[1].user_attrs == {"k": 1}


def test_a_queued_trial_two_processes_pick_up_at_once_is_picked_up_by_one(shared_study: SharedStudy) -> None:
    # On SQLite both took it: Optuna reads the WAITING row, then sets it RUNNING in a transaction begun
    # only at that write (its row lock, SELECT ... FOR UPDATE, is a no-op there), so a process that picked
    # the trial up between the two went unseen. Two workers of a resumed `--workers 10` trained one trial
    # left WAITING by the last run, and the one that finished second died with a traceback
    # ("UpdateFinishedTrialError: Trial#3 has already finished"). Now the state changes only where the row
    # is still WAITING, in one statement: the second process is told it lost the trial.
    import sqlalchemy

    study, mine, other = shared_study.study, shared_study.mine, shared_study.other
    study.enqueue_trial({})
    [queued] = study.get_trials(states=(TrialState.WAITING,))
    taken: list[bool] = []

    def other_takes_it_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE trials") and not taken:
            taken.append(other.set_trial_state_values(queued._trial_id, TrialState.RUNNING))

    assert isinstance(mine, BufferedRDBStorage)
    if shared_study.on_sqlite:  # the other process takes it as this one is about to
        engine = mine._backend.engine  # type: ignore[attr-defined]
        sqlalchemy.event.listen(engine, "before_cursor_execute", other_takes_it_first)
    else:  # the server's row lock (SELECT ... FOR UPDATE) would keep it waiting for this one: it goes first
        taken.append(other.set_trial_state_values(queued._trial_id, TrialState.RUNNING))
    picked = mine.set_trial_state_values(queued._trial_id, TrialState.RUNNING)
    assert taken == [True]
    assert picked is False  # before, on SQLite: True, as for the other process
    [trial] = shared_study.stored().trials
    assert trial.state == TrialState.RUNNING and trial.datetime_start is not None


@pytest.mark.parametrize("first", [TrialState.FAIL, TrialState.COMPLETE])
def test_a_trial_two_processes_finish_at_once_keeps_the_first_finish(
    shared_study: SharedStudy, first: TrialState
) -> None:
    # On SQLite the last write won: a stale check's FAIL landing as the owner told COMPLETE (or the other
    # way round) overwrote it, so a trial that completed ended FAIL (its retry queued too), or a FAIL whose
    # retry was queued ended COMPLETE (the point ran twice). Optuna reads the RUNNING row, then writes in a
    # transaction begun only at that write (SELECT ... FOR UPDATE is a no-op there). Now the finish
    # changes the row only while its state is the one read; the second process is told the trial has
    # finished (UpdateFinishedTrialError, as PostgreSQL's and MySQL's row lock make Optuna say).
    import sqlalchemy
    from optuna.exceptions import UpdateFinishedTrialError

    mine, other = shared_study.mine, shared_study.other
    second = TrialState.COMPLETE if first == TrialState.FAIL else TrialState.FAIL
    values = {TrialState.COMPLETE: [1.0], TrialState.FAIL: None}
    trial_id = shared_study.study.ask()._trial_id
    done: list[bool] = []

    def other_finishes_it_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("UPDATE trials", "INSERT INTO trial_values")) and not done:
            done.append(other.set_trial_state_values(trial_id, first, values[first]))

    assert isinstance(mine, BufferedRDBStorage)
    if shared_study.on_sqlite:  # the other process writes as this one is about to
        engine = mine._backend.engine  # type: ignore[attr-defined]
        sqlalchemy.event.listen(engine, "before_cursor_execute", other_finishes_it_first)
    else:  # the server's row lock would keep it waiting for this one: it goes first
        done.append(other.set_trial_state_values(trial_id, first, values[first]))
    with pytest.raises(UpdateFinishedTrialError):  # before, on SQLite: True, and its state stored
        mine.set_trial_state_values(trial_id, second, values[second])
    assert done == [True]
    [stored] = shared_study.stored().trials
    assert stored.state == first and stored.values == values[first]


def test_a_stale_checks_fail_reason_lands_with_its_fail_or_not_at_all(shared_study: SharedStudy) -> None:
    # A stale check wrote the trial's fail_reason, then its FAIL: an owner that completed the trial in
    # between kept its COMPLETE (the FAIL was refused) and the reason stayed, so `hpotool trials` showed a
    # COMPLETE trial that said "stale: no heartbeat". Now the reason is written in the FAIL's transaction:
    # the owner's finish waits for it (the trial ends FAIL, its reason with it) or lands first (no reason).
    import threading

    import sqlalchemy

    from hpotool.heartbeat import fail_stale_trials

    mine, other = shared_study.mine, shared_study.other
    trial = shared_study.study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    checker = other._backend  # type: ignore[attr-defined]
    checker.record_heartbeat(trial._trial_id)
    checker.grace_period = -1  # any beat is stale
    seen: list[str] = []
    owner_done: list[BaseException | bool] = []

    def finish() -> None:
        try:
            owner_done.append(mine.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.0]))
        except Exception as exc:  # the stale check's FAIL came first
            owner_done.append(exc)

    owner = threading.Thread(target=finish)

    def owner_completes_after_the_reason(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if seen and not owner.is_alive() and not owner_done:
            owner.start()  # the owner tells COMPLETE right after the reason is written
            owner.join(2.0)  # it waits where the reason's transaction holds the trial
        if statement.startswith("INSERT INTO trial_user_attributes"):
            seen.append(statement)

    sqlalchemy.event.listen(checker.engine, "before_cursor_execute", owner_completes_after_the_reason)
    fail_stale_trials(shared_study.seen_by_other())
    owner.join()
    assert seen and owner_done
    stored = shared_study.stored().trials[0]  # [1]: a FAIL's retry
    # before: COMPLETE, with "fail_reason: stale: no heartbeat ..."
    assert (stored.state == TrialState.FAIL) == ("fail_reason" in stored.user_attrs), stored
