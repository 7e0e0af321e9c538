from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpotool import kept_writes


def _ended_elsewhere(tmp_path: Path) -> tuple[optuna.Study, optuna.Trial]:
    """A running trial that another process told FAIL (a stale check), as its run goes on here (SQLite: an
    in-memory storage hands the trial its own stored object, which the kept write would change too)."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'kept.db'}")
    trial = study.ask()
    study.tell(trial.number, state=TrialState.FAIL)
    return study, trial


def test_a_refused_constraint_is_kept_as_the_storage_would_hold_it(tmp_path: Path) -> None:
    """Kept by the copy's `FrozenTrial.set_constraint`, not under Optuna's private key: a float, as
    `Trial.set_constraint` writes it (an int was kept as the int), read back by the public `constraints`."""
    study, trial = _ended_elsewhere(tmp_path)
    kept_writes.set_constraint(trial, "val_loss <= 1", 2)
    kept = trial._cached_frozen_trial.constraints
    assert kept == {"val_loss <= 1": 2.0}
    assert isinstance(kept["val_loss <= 1"], float)
    assert study.trials[0].constraints == {}  # the storage took none: the trial had ended


def test_a_constraint_the_storage_takes_is_not_kept_twice() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    kept_writes.set_constraint(trial, "c", 0.5)
    assert study.trials[0].constraints == {"c": 0.5}
