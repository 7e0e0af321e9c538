"""The writes of a trial's run that the storage refuses because another process ended the trial as this
one ran it (a stale check that took this live worker for dead): kept on the trial's copy in this process
(`_cached_frozen_trial`), which the result kept for it (`kept_results.keep_result`) carries.

Before, such a refused write was taken for a failure of the training: a run that had its final value
(another process's FAIL landing during its last epoch, or after it, before the tell) ended FAIL, and the
retry that process queued ran the values a second time."""

from __future__ import annotations

import contextlib

import optuna
from optuna.exceptions import UpdateFinishedTrialError


def report(trial: optuna.Trial, value: float, step: int, *, final: bool) -> None:
    """`trial.report(value, step)`. Where the storage refuses it (another process ended the trial), at the
    run's `final` epoch the value is kept here and the run goes on to its result; before it, the run stops
    at Optuna's error (`UpdateFinishedTrialError`): its values run again in the retry that process queued.

    Reports are written at most every second (`rdb.BufferedRDBStorage`), so a run of short epochs may learn
    of the FAIL only after its last one, and keep its result then."""
    try:
        trial.report(value, step)
    except UpdateFinishedTrialError:
        if not final:
            raise
        trial._cached_frozen_trial.intermediate_values[step] = value


def set_user_attr(trial: optuna.Trial, key: str, value: object) -> None:
    """`trial.set_user_attr(key, value)`, kept here where another process ended the trial."""
    try:
        trial.set_user_attr(key, value)
    except UpdateFinishedTrialError:
        trial._cached_frozen_trial.user_attrs[key] = value


def set_constraint(trial: optuna.Trial, key: str, value: float) -> None:
    """`trial.set_constraint(key, value)`, kept here where another process ended the trial: by the copy's own
    `FrozenTrial.set_constraint`, which stores it as the storage would (a float, under Optuna's key)."""
    try:
        trial.set_constraint(key, value)
    except UpdateFinishedTrialError:
        trial._cached_frozen_trial.set_constraint(key, value)


def set_system_attr(trial: optuna.Trial, key: str, value: float) -> None:
    """The system attr `key` of `trial` set to `value` in its storage, and kept here where another process
    ended the trial."""
    with contextlib.suppress(UpdateFinishedTrialError):
        trial.storage.set_trial_system_attr(trial._trial_id, key, value)
    trial._cached_frozen_trial.system_attrs[key] = value


def record_seconds_of_failed(trial: optuna.Trial) -> None:
    """The seconds this process measured for `trial` (`durations.record_seconds`), and when it was asked,
    written on it where another process failed it as this one ran it (a stale check that took this live
    worker for dead) and its result is kept nowhere (`kept_results.keep_result`): before, the trial showed no
    seconds, as if its worker had died unobserved, though this one measured them. Only on SQLite,
    PostgreSQL and MySQL (`rdb.FastReadRDBStorage.add_to_failed_trial`): the journal storages (Redis,
    journal files) skip every record on a finished trial as they replay the log. Where the result is kept
    (in a retry, or a new trial), that trial carries them: written here too, they would be counted twice."""
    from hpotool.durations import SECONDS_ATTR, STARTED_ATTR
    from hpotool.rdb import FastReadRDBStorage

    backend = getattr(trial.storage, "_backend", trial.storage)
    measured = trial._cached_frozen_trial.system_attrs
    attrs = {key: measured[key] for key in (STARTED_ATTR, SECONDS_ATTR) if key in measured}
    if isinstance(backend, FastReadRDBStorage) and len(attrs) == 2:
        backend.add_to_failed_trial(trial._trial_id, attrs)
