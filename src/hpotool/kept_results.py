"""The result of a trial that another process ended as this one ran it (a stale check that took this
live worker for a dead one): kept in the retry queued for its values, or as a new trial, so the study
counts it once."""

from __future__ import annotations

import logging
import math
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.claims import RETRIED, claim
from hpotool.owners import ran_elsewhere
from hpotool.resume import REQUEUED, was_interrupted

_log = logging.getLogger("hpotool")


def keep_result(
    study: optuna.Study,
    trial: optuna.Trial,
    stored: FrozenTrial,
    value: float | list[float] | None,
    state: TrialState | None,
) -> int | None:
    """`trial`, which this process ran, was ended by another process as it ran (a stale check that took
    this live worker for a dead one: its heartbeat went unseen for the grace period): say so, and record
    the result it has, if any (COMPLETE, PRUNED), carrying `result_of`, in the retry the other process
    queued for its values (`_fill`), so the study counts them once; as a new trial where none was
    queued, or where every retry of them failed, once this process claims their next run (`_keep`); returns
    its id.

    Where another worker has taken the retry up (it runs them, or has run them), the result is not kept
    and that worker's stands: kept too, the values counted twice, one trial over `n_trials` (before). This
    process cannot take over a trial another one runs (its reports and attributes would mix with that
    one's), and stopping that run in favour of this result would leave a moment where neither counts or
    both do; the retry runs to its end, and this process's run of the values is spent."""
    cached = trial._cached_frozen_trial  # what the trial holds here: a report not yet written too
    curve = {**stored.intermediate_values, **cached.intermediate_values}
    state, values = _result(study, curve, value, state)
    how = f"{stored.state.name} ({stored.user_attrs.get('fail_reason', 'no reason given')})"
    if state not in (TrialState.COMPLETE, TrialState.PRUNED) or (state == TrialState.COMPLETE and not values):
        _log.warning(
            "warning: trial #%d was ended as %s by another process while this one ran it; its values are "
            "queued again where that process queued them",
            trial.number,
            how,
        )
        return None
    result = _result_trial(trial.number, stored, cached, state, values, curve)
    kept = _keep(
        study, trial.number, result, f"was ended as {how} by another process while this one ran it to"
    )
    if kept is None:
        return None
    _log.warning(
        "warning: trial #%d was ended as %s by another process while this one ran it to %s: its result is "
        "kept as trial #%d (result_of: %d)",
        trial.number,
        how,
        state.name,
        study._storage.get_trial(kept).number,
        trial.number,
    )
    return kept


def _result(
    study: optuna.Study,
    curve: dict[int, float],
    value: float | list[float] | None,
    state: TrialState | None,
) -> tuple[TrialState | None, list[float] | None]:
    """The state and values of the result this process has: COMPLETE with the value(s) its objective
    returned (none where infeasible), or PRUNED with its last reported value (one objective, finite)."""
    from optuna.study._tell import _check_values_are_feasible

    values: list[float] | None = None
    if state is None and value is not None:
        values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
        if _check_values_are_feasible(study, values) is not None:
            values = None
        state = TrialState.COMPLETE
    elif state == TrialState.PRUNED and curve and len(study.directions) == 1:
        last = curve[max(curve)]
        values = [last] if math.isfinite(last) else None
    return state, values


def _result_trial(
    number: int,
    stored: FrozenTrial,
    cached: FrozenTrial,
    state: TrialState,
    values: list[float] | None,
    curve: dict[int, float],
) -> FrozenTrial:
    """The trial that holds the result of trial `number`: what the storage and this process hold of it,
    marked `result_of`, without its `fail_reason` or the mark of a queued warm start (`QUEUED_BY`)."""
    from hpotool.owners import QUEUED_BY

    user_attrs = {k: v for k, v in {**stored.user_attrs, **cached.user_attrs}.items() if k != "fail_reason"}
    system_attrs = {k: v for k, v in {**stored.system_attrs, **cached.system_attrs}.items() if k != QUEUED_BY}
    return optuna.trial.create_trial(
        state=state,
        values=values,
        params={**stored.params, **cached.params},
        distributions={**stored.distributions, **cached.distributions},
        user_attrs={**user_attrs, "result_of": number},
        system_attrs=system_attrs,
        intermediate_values=curve,
    )


# How long a result waits for the trial of its values that another process claimed to queue (`_keep`):
# that process queues it right after its claim.
RETRY_WAIT_S = 10.0


def _keep(study: optuna.Study, number: int, result: FrozenTrial, ended: str) -> int | None:
    """Keep `result`, trial `number`'s: in a retry of its values that waits (`_fill`), or as a new
    trial where every retry of them failed (or none was queued); returns its id, None where it is not kept
    (said in a warning: trial #`number` `ended` its state).

    A new trial only where this process claims the values' next retry (`_next_retry_claim`), as the
    process that queues it does, so that of the two one holds the values. Before, a stale check whose FAIL
    landed as this process told the result queued its retry just after this process kept the result as a
    new trial, and the values ran twice (so did a resume's, after an interrupted retry). Where the other
    process claimed it first, its retry is filled once it is there, within `RETRY_WAIT_S`; where it is not
    (that process ended in between), the result is not kept, and nothing runs the values again.

    Exactly once on every storage: the claim is an insert one process makes on SQLite, PostgreSQL and MySQL,
    a key `SET NX` makes on Redis, a file `O_EXCL` makes beside a journal file (`claims.claim`). Before, on
    the journal storages every caller claimed it: a result told just as `fail-stale --all-running` failed
    its trial was kept as a new trial, and that command's retry ran the values again."""
    lost: str | None = None  # the claim another process made first: it queues the values again
    waited = time.monotonic() + RETRY_WAIT_S
    while True:
        retries = _retries_of(study.get_trials(deepcopy=False), number)
        retry = _take_up(study, [t for t in retries if t.state == TrialState.WAITING])
        if retry is not None:
            return _fill(study, retry, result, number, ended)
        taken = [study._storage.get_trial(t._trial_id) for t in retries]
        holder = next((t for t in taken if t.state != TrialState.FAIL), None)
        if holder is not None:
            where = ran_elsewhere(holder) or "another worker"
            runs = "runs them" if holder.state == TrialState.RUNNING else f"ran them to {holder.state.name}"
            _log.warning(
                "warning: trial #%d %s %s: its result is not kept, as trial #%d, queued to run its values "
                "again, %s (%s), and that run counts",
                number,
                ended,
                result.state.name,
                holder.number,
                runs,
                where,
            )
            return None
        if lost is None:
            key = _next_retry_claim(number, retries)
            if claim(study, key):
                return study._storage.create_new_trial(study._study_id, template_trial=result)
            lost = key
        elif time.monotonic() > waited:
            _log.warning(
                "warning: trial #%d %s %s: its result is not kept, as another process claimed to queue its "
                "values again (%s), and their trial was not there after %g s",
                number,
                ended,
                result.state.name,
                lost,
                RETRY_WAIT_S,
            )
            return None
        time.sleep(0.1)


def _next_retry_claim(number: int, retries: list[FrozenTrial]) -> str:
    """The claim (`claims.claim`) of the next retry of trial `number`'s values, whose `retries` all failed:
    a resume's (`REQUEUED`) where the last was interrupted, else the one of the process that failed the
    last of them (or trial `number`), as stale or as its worker's died (`RETRIED`)."""
    last = retries[-1] if retries else None
    if last is not None and was_interrupted(last):
        return f"{REQUEUED}{last.number}"
    return f"{RETRIED}{last.number if last is not None else number}"


def _retries_of(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """The trials of `trials` queued to run trial `number`'s values again, whatever their state: its retries
    (Optuna's `retry_history`, hpotool's `retry_of`) and theirs, where a retry's worker died in turn."""
    chain, found = {number}, []
    for t in sorted(trials, key=lambda t: t.number):
        history = t.system_attrs.get("retry_history") or []
        if t.number > number and (t.user_attrs.get("retry_of") in chain or any(n in chain for n in history)):
            found.append(t)
            chain.add(t.number)
    return found


def _take_up(study: optuna.Study, waiting: list[FrozenTrial]) -> FrozenTrial | None:
    """Take up one of the WAITING retries `waiting` to fill it with a result (`_fill`); None where another
    worker took each one up first. Taken up as a worker takes up a queued trial (WAITING to RUNNING, which
    one process alone does), so a worker that took it first runs it; before, the retry ran the values a
    second time, one trial over `n_trials`."""
    for t in waiting:
        if study._storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
            return t
    return None  # other workers took them up: they run the values


def _fill(
    study: optuna.Study, retry: FrozenTrial, result: FrozenTrial, number: int, ended: str
) -> int | None:
    """Finish `retry`, which this process took up (`_take_up`), with `result`, trial `number`'s; returns its
    id, or None where another process ended the retry too as this one filled it (`fail-stale --all-running`
    fails every RUNNING trial): said in a warning (trial #`number` `ended` its state), and the values run
    again where that process queued them. Before, the refused write (`UpdateFinishedTrialError`) left the
    run as a traceback."""
    from optuna.exceptions import UpdateFinishedTrialError

    storage, trial_id = study._storage, retry._trial_id
    try:
        for key, value in result.user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        for key, value in result.system_attrs.items():
            if key not in retry.system_attrs:  # the retry's count (`failed_trial`, `retry_history`) stays
                storage.set_trial_system_attr(trial_id, key, value)
        for name, value in result.params.items():
            if name not in retry.params:
                dist = result.distributions[name]
                storage.set_trial_param(trial_id, name, dist.to_internal_repr(value), dist)
        for step, value in result.intermediate_values.items():
            storage.set_trial_intermediate_value(trial_id, step, value)
        storage.set_trial_state_values(trial_id, result.state, result.values)
    except UpdateFinishedTrialError:
        stored = storage.get_trial(trial_id)
        _log.warning(
            "warning: trial #%d %s %s: its result is not kept, as another process ended trial #%d, the retry "
            "queued for its values, as %s (%s) too as this one kept it there; its values run again where that "
            "process queued them",
            number,
            ended,
            result.state.name,
            retry.number,
            stored.state.name,
            stored.user_attrs.get("fail_reason", "no reason given"),
        )
        return None
    return trial_id
