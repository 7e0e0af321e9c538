"""A trial marked FAIL with its reason in one write (`fail_trial`), and whether a FAIL trial's own run
failed (`RUN_FAILED`, `failed_in_run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


# The system attr of a trial that its own process told FAIL as its run failed (its training, a missing
# metric, a failed draw: `trial_run.run_trial`), what `--max-failures` counts (`failed_in_run`). A FAIL another
# process wrote (a stale check that took its live worker for dead, a dead worker's, `fail-stale`) or an
# interrupt carries none: its training did not fail.
RUN_FAILED = "hpotool:run_failed"


def failed_in_run(trial: FrozenTrial) -> bool:
    """Whether `trial` is FAIL because its run failed, as its own process told it (`RUN_FAILED`)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and RUN_FAILED in trial.system_attrs


def fail_trial(
    storage: Any,
    trial_id: int,
    reason: str,
    *,
    waiting: bool = False,
    run_failed: bool = False,
    mark: str | None = None,
) -> bool:
    """Mark a trial FAIL with `reason` as its `fail_reason`; whether this process did (False where another
    process ended it first). The reason lands with the state or not at all: on SQLite, PostgreSQL and MySQL
    in one transaction, on the journal storages (Redis, journal files) as records appended together, which
    the journal applies all or none of (`journal_writes`). Written first, on its own, it stayed on a trial
    its owner completed in between (on the journal storages until now). `waiting`: a queued trial, failed
    only while it is still WAITING (False where a worker took it up first: before, its run was failed under
    it); on the journal storages too, whose look and write have no other process's record between them (a
    worker that took it up between the two, before, ran a trial failed under it).
    `run_failed`: its own process fails it as its run failed, marked `RUN_FAILED` with the reason. `mark`: a
    further system attr set True in the same write, which tells why it failed (`sampler_hooks.BEFORE_TRIAL`).

    Optuna says "another process ended it first" with `UpdateFinishedTrialError` (its row lock on PostgreSQL
    and MySQL, the conditional write on SQLite); it is False here, for every caller: the ownerless-trial
    look and `fail-stale`'s look at every running trial let it out of the command as a traceback when two
    processes looked at once."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import JournalStorage
    from optuna.trial import TrialState

    from hpotool.journal_writes import fail_in_one_write
    from hpotool.rdb import BufferedRDBStorage, FastReadRDBStorage

    expected = TrialState.WAITING if waiting else None
    marks = {RUN_FAILED: True} if run_failed else {}
    if mark is not None:
        marks[mark] = True
    try:
        if isinstance(getattr(storage, "_backend", storage), FastReadRDBStorage):
            assert isinstance(storage, BufferedRDBStorage | FastReadRDBStorage)
            return storage.set_trial_state_values(
                trial_id, TrialState.FAIL, reason=reason, from_state=expected, marks=marks
            )
        if isinstance(storage, JournalStorage):
            return fail_in_one_write(storage, trial_id, {"fail_reason": reason}, marks, waiting=waiting)
        if expected is not None and storage.get_trial(trial_id).state != expected:
            return False
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        for key, value in marks.items():
            storage.set_trial_system_attr(trial_id, key, value)
        return bool(storage.set_trial_state_values(trial_id, TrialState.FAIL))
    except UpdateFinishedTrialError:
        return False  # another process ended it first
