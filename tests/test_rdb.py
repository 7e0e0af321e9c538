"""BufferedRDBStorage: batched reports and the finished-trials snapshot keep Optuna's semantics."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpotool.rdb import BufferedRDBStorage
from hpotool.storage import make_storage


def _other_process_view(url: str, name: str) -> optuna.Study:
    """A second, independent connection: what another worker or optuna-dashboard sees."""
    return optuna.load_study(study_name=name, storage=url)


def test_make_storage_wraps_every_rdb_url(tmp_path: Path) -> None:
    assert isinstance(make_storage(f"sqlite:///{tmp_path / 'a.db'}"), BufferedRDBStorage)
    assert not isinstance(make_storage(f"journal:{tmp_path / 'j.log'}"), BufferedRDBStorage)


def test_reports_of_a_fast_trial_are_written_together_and_before_it_finishes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    trial = study.ask()
    for step in range(5):
        trial.report(float(step), step)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {}  # still buffered
    assert trial.should_prune() is False  # the pruner sees them: they live on the trial
    study.tell(trial, 1.0)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {s: float(s) for s in range(5)}


def test_reports_are_written_at_once_when_epochs_are_slower_than_the_flush_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = make_storage(url)
    assert isinstance(storage, BufferedRDBStorage)
    storage.flush_s = 0.05
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    time.sleep(0.06)
    trial.report(0.5, 0)
    assert _other_process_view(url, "s").trials[0].intermediate_values == {0: 0.5}
    assert _other_process_view(url, "s").trials[0].state == TrialState.RUNNING


def test_reading_the_running_trial_back_writes_its_reports_first(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = study.ask()
    trial.report(3.0, 7)
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {7: 3.0}
    assert study.get_trials(states=(TrialState.RUNNING,))[0].intermediate_values == {7: 3.0}


def test_a_failed_trial_keeps_its_curve(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    trial = study.ask()
    trial.report(1.0, 0)
    trial.report(2.0, 1)
    study.tell(trial, state=TrialState.FAIL)
    stored = _other_process_view(url, "s").trials[0]
    assert stored.state == TrialState.FAIL and stored.intermediate_values == {0: 1.0, 1: 2.0}


def test_a_report_on_a_finished_trial_is_still_refused(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(RuntimeError):
        study._storage.set_trial_intermediate_value(trial._trial_id, 0, 1.0)


def test_another_worker_s_finished_trial_reaches_the_pruner_within_refresh_s(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = make_storage(url)
    assert isinstance(storage, BufferedRDBStorage)
    storage.refresh_s = 0.2
    study = optuna.create_study(study_name="s", storage=storage)
    mine = study.ask()
    done = (TrialState.COMPLETE,)
    assert study.get_trials(states=done) == []
    other = _other_process_view(url, "s")
    other.tell(other.ask(), 5.0)
    assert study.get_trials(states=done) == []  # the snapshot, taken while `mine` runs
    time.sleep(0.25)
    assert [t.value for t in study.get_trials(states=done)] == [5.0]
    assert [t.state for t in study.get_trials(states=None)] == [TrialState.RUNNING, TrialState.COMPLETE]
    study.tell(mine, 1.0)
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 5.0]


def test_with_no_trial_running_here_every_query_reads_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
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
