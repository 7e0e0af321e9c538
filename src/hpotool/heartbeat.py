"""Stale trials: RUNNING trials of dead workers, found by their heartbeat (RDB storages) or all RUNNING ones
when no worker runs, marked FAIL and their parameters queued again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpotool.interrupts import deferred
from hpotool.sqlite_files import refuse_a_read_only_study
from hpotool.storage_settings import MAX_RETRY, heartbeat_settings

if TYPE_CHECKING:
    import optuna


# What a run writes about itself on its trial: a stale trial's retry is a new run and must not show them
# (a COMPLETE retry that says "fail_reason: stale" or names the dead worker's pid), nor another run's result
# kept on it (`result_of`), whose writes a second stale check cut short (`kept_results._fill`).
RUN_ATTRS = (
    "worker",
    "fail_reason",
    "prune_reason",
    "diverged_at",
    "history",
    "epochs_run",
    "metrics",
    "constraints",
    "feasible",
    "result_of",
)


def retry_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a stale trial's parameters again (at most MAX_RETRY times), as Optuna's
    RetryHeartbeatStaleTrialCallback does (its `failed_trial` and `retry_history` system attributes), with
    the user attributes the trial had before it ran, not those of its dead run (and its system attributes,
    a queued trial's values among them: a warm start taken before it drew them runs). A trial that drew no
    value and was not queued is not queued: it ran nothing, and an empty queued trial fails under the grid
    sampler ("All parameters must be specified"); the next trial draws its values as usual.

    Queued only by the process that claims it (`claims.RETRIED`): the trial's live worker (a stale check that
    took it for dead) claims it to keep its result as a new trial where it finds no retry (`kept_results`).
    Before, a worker that told its result just as this FAIL landed kept it as a new trial before the retry
    was there, and the retry ran the values a second time."""
    if not trial.params and "fixed_params" not in trial.system_attrs:
        return
    import copy
    import warnings

    import optuna

    from hpotool.claims import RETRIED, claim

    if len(trial.system_attrs.get("retry_history", [])) + 1 > MAX_RETRY:
        return  # as Optuna's callback does, before the claim: a claim nobody acts on would keep no result
    if not claim(study, f"{RETRIED}{trial.number}"):
        return  # the trial's worker keeps its result in their place

    with warnings.catch_warnings():  # "experimental since 2.8"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    before = copy.copy(trial)
    before.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS}
    retry(study, before)


def queued_again(study: optuna.Study, numbers: list[int]) -> list[int]:
    """Which of the trials `numbers`, just marked FAIL, had their values queued to run again: those a later
    trial's `retry_history` ends with (a stale trial's retry, or that of a trial whose process died here). A
    trial that drew no values, or whose values had their retries already, has none."""
    failed = set(numbers)
    return sorted(
        {
            history[-1]
            for t in study.get_trials(deepcopy=False)
            if (history := t.system_attrs.get("retry_history"))
            and history[-1] in failed
            and t.number > history[-1]
        }
    )


def has_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def fail_stale_trials(study: optuna.Study, *, every_running: bool = False) -> list[int]:
    """Mark RUNNING trials of dead workers FAIL and queue their retries; returns their numbers.

    With a heartbeat (RDB storages) a trial is stale when its heartbeat is older than the grace period.
    `every_running` marks every RUNNING trial FAIL: for storages without a heartbeat (Redis, journal
    files), to be used only when no worker of the study is running.
    """
    import optuna
    from optuna.trial import TrialState

    from hpotool.failed_trials import fail_trial

    refuse_a_read_only_study(study)
    running = {t._trial_id: t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    import warnings

    if every_running:
        failed = []
        for trial_id, number in running.items():
            with deferred():  # failed with its retry queued, or left RUNNING: never failed and not retried
                if fail_trial(study._storage, trial_id, "stale: marked failed by fail-stale"):
                    failed.append(number)
                    retry_stale_trial(study, study._storage.get_trial(trial_id))
        return sorted(failed)
    if not has_heartbeat(study._storage):
        return []
    # As optuna.storages.fail_stale_trials does, with the reason recorded in the FAIL's transaction
    # (`fail_trial`: a finished trial takes no attribute, and `hpotool trials` showed the trial failed
    # without one).
    storage = study._storage
    reason = f"stale: no heartbeat for {heartbeat_settings()[1]} s (its worker died, or lost the storage)"
    failed = []
    assert isinstance(storage, optuna.storages._heartbeat.BaseHeartbeat)  # has_heartbeat says so
    # Each trial failed with its retry queued, or left RUNNING (`deferred`): a Ctrl-C between the FAILs and
    # the retries, written one after the other, lost the retries of the trials failed before it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for trial_id in storage._get_stale_trial_ids(study._study_id):
            with deferred():
                if fail_trial(storage, trial_id, reason):  # False: another process failed it first
                    failed.append(trial_id)
                    retry_stale_trial(study, storage.get_trial(trial_id))
    return sorted(running[i] if i in running else storage.get_trial(i).number for i in failed)
