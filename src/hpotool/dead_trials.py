"""Trials left RUNNING by a process of this machine that no longer exists (`kill -9`, an OOM kill), and
trials whose process ended before it recorded its owner (or, of another machine, before its first heartbeat).

Each trial records its owner (`worker`: host and pid, `owners.owner`) when it starts. On resume, a RUNNING
trial whose owner ran on this host and is gone is marked FAIL, and its parameters are queued once more so
the configuration is not lost. RUNNING trials of live processes, or of other hosts, are left alone: those
are the heartbeat's job (`heartbeat.fail_stale_trials`, `hpotool fail-stale`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpotool.claims import RETRIED, claim
from hpotool.failed_trials import fail_trial
from hpotool.interrupts import deferred
from hpotool.owners import died_here, on_another_host

if TYPE_CHECKING:
    from collections.abc import Collection

    import optuna
    from optuna.trial import FrozenTrial


def fail_dead_local_trials(
    study: optuna.Study, *, silent_only: bool = False, pids: Collection[int] | None = None
) -> list[int]:
    """Mark FAIL the RUNNING trials whose owner process on this host has died, and queue each one's values
    (those it drew, and a queued trial's, such as a warm start taken before it drew them) once more;
    returns their numbers. `silent_only` leaves out those with a heartbeat record: the heartbeat's
    staleness check fails them. `pids`: only the trials of these processes, heartbeat or not (the workers
    a main process saw exit: it need not wait out the heartbeat's grace period to know they are gone)."""
    from optuna.trial import TrialState

    from hpotool.sqlite_files import refuse_a_read_only_study

    refuse_a_read_only_study(study)
    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not died_here(trial):
            continue
        if pids is not None:
            if trial.user_attrs["worker"]["pid"] not in pids:
                continue
        elif silent_only and _beating(storage, trial._trial_id):
            continue
        if _fail_and_retry(study, trial, f"worker died (pid {trial.user_attrs['worker']['pid']})"):
            failed.append(trial.number)
    return failed


def _fail_and_retry(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark the RUNNING `trial` FAIL for `reason` and queue its values once more; False where another
    process (a worker's look, the main process, another look at the same moment) failed it first: that one
    queued the retry."""
    with deferred():  # failed with its retry queued, or left RUNNING: a Ctrl-C between lost the retry
        if not fail_trial(study._storage, trial._trial_id, reason):
            return False
        values = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # a queued point's too
        if values and not _retries_a_death(study, trial):  # re-run it once, not forever; one that drew
            # nothing and was not queued ran nothing (and queued empty, it fails under the grid sampler)
            _queue_retry(study, trial, values)
    return True


def _queue_retry(study: optuna.Study, dead: FrozenTrial, values: dict[str, Any]) -> None:
    """Queue `values` of the `dead` trial once more, as `study.enqueue_trial` does, carrying `retry_of` and
    Optuna's retry count on (`failed_trial`, `retry_history`, as a stale trial's retry does), so deaths of
    both kinds count together: before, a stale retry whose worker died here was queued with a count begun
    afresh, and a point whose workers died by turns stale and here was queued again and again. None past
    `MAX_RETRY` retries, nor where another process claimed them first (`RETRIED`)."""
    from optuna.trial import TrialState, create_trial

    from hpotool.storage_settings import MAX_RETRY

    history = [*dead.system_attrs.get("retry_history", []), dead.number]
    if len(history) > MAX_RETRY or not claim(study, f"{RETRIED}{dead.number}"):
        return  # past the count, or the trial's live worker keeps its result in their place (`RETRIED`)
    count = {"failed_trial": dead.system_attrs.get("failed_trial", dead.number), "retry_history": history}
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": values, **count},
            user_attrs={"retry_of": dead.number},
        )
    )


def _retries_a_death(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether `trial` is the retry of one whose process died (`retry_of`): a dead trial's values run once
    more, not forever. The values of one Ctrl-C or SIGTERM interrupted, queued again by a resume (also
    `retry_of`), have not died yet: killed in turn, they run once more."""
    number = trial.user_attrs.get("retry_of")
    if number is None:
        return False
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number == number:
            return t.user_attrs.get("fail_reason") != "interrupted"
    return True


def fail_ownerless_trials(study: optuna.Study, grace_s: float) -> list[int]:
    """Mark FAIL the RUNNING trials that started over `grace_s` ago and never recorded an owner or drew a
    parameter, and, on storages with a heartbeat, those of another machine that never wrote a heartbeat;
    returns their numbers.

    hpotool records the owner right after `ask`: a process that died (or whose storage stopped answering)
    in between left a trial no heartbeat or owner check could end, and it held one of the study's
    `n_trials` slots for good, so every later run waited forever for it. So did a process of another machine
    (or PID namespace) that died after recording itself and before its trial's first heartbeat: the owner
    check leaves other machines' trials alone, and the heartbeat's finds no heartbeat to be stale; the
    trial held its slot until the run's timeout. A live process beats milliseconds after recording itself
    (up to `trial_setup.DRAW_WAIT_S` later, where a brute-force trial waits for earlier draws). A trial
    taken from the queue, or one that drew values, is queued again with them.
    """
    from datetime import datetime

    from optuna.trial import TrialState

    from hpotool.heartbeat import has_heartbeat

    storage = study._storage
    heartbeat = has_heartbeat(storage)
    now = datetime.now()  # Optuna's datetime_start is local time, as here
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if started is None:
            continue
        ownerless = "worker" not in trial.user_attrs and not trial.params
        if not ownerless and not (heartbeat and on_another_host(trial)):
            continue
        if (now - started).total_seconds() < grace_s:
            # Its process may be about to record itself: a live one waits up to its busy timeout (60 s) for
            # a SQLite lock, without bound for a server, so a shorter grace would fail a live trial under it
            # (its owner write then raises). Only the process whose owner write failed knows the owner is
            # missing, and it cannot say so: the storage just refused it. It failed after its busy timeout,
            # so with the defaults its trial is past the grace when the same command resumes.
            continue
        if _beating(storage, trial._trial_id):
            continue  # another program's trial (hpotool records the owner before the first heartbeat)
        if ownerless:
            reason = "abandoned: its process ended before the trial started (no owner recorded)"
        else:
            who = trial.user_attrs["worker"]
            reason = (
                f"abandoned: its process ({who.get('host')}, pid {who.get('pid')}) ended before the "
                f"trial's first heartbeat"
            )
        if _fail_and_retry(study, trial, reason):
            failed.append(trial.number)
    return failed


def ownerless_left(trials: Collection[FrozenTrial], grace_s: float, storage: Any) -> dict[int, float]:
    """The seconds left before `fail_ownerless_trials` fails each RUNNING trial of `trials` that has no
    owner recorded and drew no parameter yet, by trial number (0 for one past the grace already)."""
    from datetime import datetime

    from optuna.trial import TrialState

    now = datetime.now()  # Optuna's datetime_start is local time, as here
    return {
        t.number: max(grace_s - (now - t.datetime_start).total_seconds(), 0.0)
        for t in trials
        if t.state == TrialState.RUNNING
        and "worker" not in t.user_attrs
        and not t.params
        and t.datetime_start is not None
        and not _beating(storage, t._trial_id)
    }


def _beating(storage: Any, trial_id: int) -> bool:
    """Whether `trial_id` has a heartbeat record (RDB storages; False on storages without a heartbeat)."""
    from optuna.storages import RDBStorage

    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or backend.heartbeat_interval is None:
        return False
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        return models.TrialHeartbeatModel.where_trial_id(trial_id, session) is not None


def heartbeat_ages(study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial of `study` that has one, by trial number, as
    the database's clock tells it (Optuna's staleness check compares the same two); empty on storages
    without a heartbeat."""
    from optuna.storages import RDBStorage

    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or backend.heartbeat_interval is None:
        return {}
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    with _create_scoped_session(backend.scoped_session) as session:
        now = session.execute(sqlalchemy.func.now()).scalar()
        assert now is not None
        now = now.replace(tzinfo=None)  # PostgreSQL's is timezone-aware, the stored heartbeats are not
        rows = (
            session.query(models.TrialModel.number, models.TrialHeartbeatModel.heartbeat)
            .join(
                models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id
            )
            .filter(models.TrialModel.study_id == study._study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .all()
        )
    return {number: max((now - beat).total_seconds(), 0.0) for number, beat in rows}
