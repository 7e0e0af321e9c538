"""Trials of hpotool's workers that another process failed without a reason. hpotool gives every FAIL it
writes its `fail_reason` in the same write (`failed_trials.fail_trial`), so such a FAIL came from plain
Optuna sharing the study: its heartbeat check (`optuna.storages.fail_stale_trials`, which a plain worker's
`study.optimize` runs before each trial) or a `study.tell`/`optuna tell` of its own, none of which gives a
reason in Optuna 5. `hpotool trials` and the exports showed no reason for them, and their seconds ran on to
when they were failed; they say what the storage tells: that another process failed it, and, where it kept
the trial's heartbeat, since when it had none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # no heavy import: `durations` uses it
    from datetime import datetime

    import optuna
    from optuna.trial import FrozenTrial


def failed_without_reason(trial: FrozenTrial) -> bool:
    """Whether `trial`, which an hpotool worker ran (its `worker` attr), is FAIL without a `fail_reason`:
    another process failed it (see the module docstring)."""
    from optuna.trial import TrialState

    return (
        trial.state == TrialState.FAIL
        and "fail_reason" not in trial.user_attrs
        and isinstance(trial.user_attrs.get("worker"), dict)
    )


def silent_fail_reasons(study: optuna.Study, trials: list[FrozenTrial]) -> dict[int, str]:
    """The reason to show, by trial number, for each of `trials` another process failed without one
    (`failed_without_reason`): with its last heartbeat where the storage kept one (RDB storages)."""
    silent = [t for t in trials if failed_without_reason(t)]
    if not silent:
        return {}
    beats = _last_heartbeats(study, [t._trial_id for t in silent])
    reasons = {}
    for t in silent:
        beat = beats.get(t._trial_id)
        reasons[t.number] = (
            f"stale: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} (the storage's clock); failed by another process, "
            f"which gave no reason (Optuna's own heartbeat check gives none)"
            if beat is not None
            else "failed by another process, which gave no reason (plain Optuna gives none)"
        )
    return reasons


def _last_heartbeats(study: optuna.Study, trial_ids: list[int]) -> dict[int, datetime]:
    """The last heartbeat of each of `trial_ids` that has one, by trial id, as the database's clock wrote it;
    empty on storages without a heartbeat table (Redis, journal files)."""
    from optuna.storages import RDBStorage

    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        return {}
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        rows: list[Any] = (
            session.query(models.TrialHeartbeatModel.trial_id, models.TrialHeartbeatModel.heartbeat)
            .filter(models.TrialHeartbeatModel.trial_id.in_(trial_ids))
            .all()
        )
    return {trial_id: beat for trial_id, beat in rows}
