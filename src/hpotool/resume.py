"""Preparing a study's resume: dead local trials failed, queued points the config no longer holds
dropped, the warm start and the chosen values of interrupted trials queued (once, however many processes
resume at the same moment)."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.claims import claim
from hpotool.dead_trials import fail_dead_local_trials, fail_ownerless_trials
from hpotool.failed_trials import fail_trial
from hpotool.formatting import counted, format_choice, format_value
from hpotool.interrupts import deferred
from hpotool.owners import enqueue_owned, in_use
from hpotool.param_values import contains
from hpotool.plan import WARM_START, StudyPlan
from hpotool.sampler_hooks import failed_before_trial
from hpotool.search_space import FloatParam, IntParam, encode_params
from hpotool.storage_settings import heartbeat_settings
from hpotool.study import FINISHED

_log = logging.getLogger("hpotool")


def prepare_resume(study: optuna.Study, plan: StudyPlan) -> int:
    """Clean up after dead local processes and enqueue the warm start; returns the finished count."""
    fail_dead_local_trials(study)
    fail_ownerless_trials(study, heartbeat_settings()[1])
    trials = study.get_trials(deepcopy=False)
    _drop_retries_outside_the_space(study, plan, trials)
    _drop_unlisted_warm_starts(study, plan, trials)
    queue_interrupted(study, plan)
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def queue_interrupted(study: optuna.Study, plan: StudyPlan) -> None:
    """Queue the warm start's points the study has not run (all of them in a new study; a point whose trial
    was interrupted never ran) and the other chosen values of interrupted trials (`_queue_interrupted_points`).
    A resume does, and so does the main process of `--workers` once a worker alone was stopped by a signal:
    the others run its point, rather than finish the study without it."""
    trials = study.get_trials(deepcopy=False)
    for i, params in enumerate(plan.opt.enqueue):  # warm start: known-good configurations run first
        params = encode_params(params)  # as Optuna stores them: a list choice as its label
        if any(_tried(trial, params) for trial in trials):
            continue
        with deferred():  # claimed, then queued: a signal between the two would lose the point
            if claim(study, _warm_start_key(params, trials)):  # not another process queueing it now
                enqueue_owned(study, params, plan.warm_start_attrs(i))
    if _queue_interrupted_points(study):
        _drop_retries_outside_the_space(study, plan, study.get_trials(deepcopy=False))


def _queue_interrupted_points(study: optuna.Study) -> bool:
    """Queue once more, once, the values of each trial that never ran them (`never_ran`: Ctrl-C or SIGTERM
    interrupted it, or its sampler's `before_trial` failed) that were chosen rather than drawn freely: a queued point's (a warm start of `--enqueue-from` or an earlier run, whatever this
    command's flags; the optimize config's `enqueue` list queues its own), a dead trial's retry's (`retry_of`,
    or Optuna's heartbeat retry: `failed_trial`), and under brute force or QMC every point, which the search
    counts as run once its trial has ended (brute force ended without it; QMC's sequence skipped it). The
    new trial carries `retry_of`; a later trial that holds or ran the values (the enqueue list's, an earlier
    resume's) queues none, nor does a resume that another, at the same moment, beat to claim the trial
    (`claim`). Returns whether it queued any."""
    sequence = isinstance(study.sampler, optuna.samplers.BruteForceSampler | optuna.samplers.QMCSampler)
    trials = study.get_trials(deepcopy=False)
    later: list[tuple[int, FrozenTrial | dict[str, Any]]] = [(t.number, t) for t in trials]
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = False
    for t in trials:
        if not never_ran(t) or t.number in retried:
            continue
        fixed = t.system_attrs.get("fixed_params", {})
        if "retry_of" in t.user_attrs or "failed_trial" in t.system_attrs or sequence:
            values = {**fixed, **t.params}
        elif t.user_attrs.get(WARM_START) == "enqueue":
            continue  # the config rules: queued above while the list holds it
        else:
            values = dict(fixed)
        if not values:
            continue  # drew nothing of its own: the sampler draws anew
        if any(n > t.number and _holds(q, v) for n, q in later for v in (fixed, values) if v):
            continue
        with deferred():  # claimed, then queued: a signal between the two would lose the point
            if not claim(study, f"{REQUEUED}{t.number}"):
                continue  # another process resuming at the same moment queued them
            _enqueue_again(study, values, t)
        later.append((sys.maxsize, values))
        queued = True
    return queued


# The study system attr that one process claims (`claim`) to queue an interrupted trial's values again.
REQUEUED = "hpotool:requeued:"


# ... and to queue a point of the enqueue list (`_warm_start_key`).
WARM_QUEUED = "hpotool:warm-start:"


def _warm_start_key(params: Mapping[str, Any], trials: list[FrozenTrial]) -> str:
    """The claim (`claim`) to queue the warm-start point `params` once more, of all the processes that see
    `trials`: the point (hashed: a key holds 512 characters) and how many trials have held it, so two
    resumes at the same moment queue it once (before: each checked, then queued, and it ran twice), and a
    resume after its trial was interrupted queues it again."""
    import hashlib
    import json

    point = hashlib.sha256(json.dumps(params, sort_keys=True, default=repr).encode()).hexdigest()[:32]
    return f"{WARM_QUEUED}{point}:{sum(_held(t, params) for t in trials)}"


# Optuna's RetryHeartbeatStaleTrialCallback counts a stale trial's retries in these system attributes.
RETRY_COUNT = ("failed_trial", "retry_history")


def _enqueue_again(study: optuna.Study, values: dict[str, Any], interrupted: FrozenTrial) -> None:
    """Queue `values` as `study.enqueue_trial` does, carrying `retry_of` and the interrupted trial's retry
    count (`RETRY_COUNT`), so a stale retry's values count their deaths on after an interrupt rather than
    afresh; the interrupt itself is no death and is not counted."""
    count = {k: interrupted.system_attrs[k] for k in RETRY_COUNT if k in interrupted.system_attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": values, **count},
            user_attrs={"retry_of": interrupted.number},
        )
    )


def _holds(trial: FrozenTrial | dict[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether `trial` ran or holds `params` (`_tried`); a dict: values queued just now."""
    if isinstance(trial, dict):
        return trial.keys() == params.keys() and all(_same(v, trial[k]) for k, v in params.items())
    return _tried(trial, params)


def _drop_retries_outside_the_space(study: optuna.Study, plan: StudyPlan, trials: list[FrozenTrial]) -> None:
    """A dead (or interrupted) trial's retry (`retry_of`, or Optuna's heartbeat retry: `failed_trial`) still
    waiting with a value the search space no longer holds (a range or step changed with --allow-changed-config
    since its worker died, or Ctrl-C stopped it) is marked FAIL ('dropped: ...'): it would run that value,
    outside the space, in the new experiment, with only Optuna's warning (none for a heartbeat retry, which
    carries its old params)."""
    for t in trials:
        if t.state != TrialState.WAITING:
            continue
        if "retry_of" not in t.user_attrs and "failed_trial" not in t.system_attrs:
            continue
        values = {**t.system_attrs.get("fixed_params", {}), **t.params}
        outside = [
            f"{name}={format_value(values[name])} (the space: {_range(p)})"
            for name, p in plan.opt.search_space.items()
            if name in values and isinstance(p, IntParam | FloatParam) and not contains(p, values[name])
        ]
        if not outside:
            continue
        reason = f"dropped: {', '.join(outside)} lies outside the search space"
        if fail_trial(study._storage, t._trial_id, reason, waiting=True):  # not one a worker took up now
            failed = t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial"))
            how = "interrupted" if any(was_interrupted(f) for f in trials if f.number == failed) else "dead"
            _log.warning(
                "warning: trial #%d, queued to run %s trial #%s's values again, is not run: %s now (marked "
                "FAIL)",
                t.number,
                how,
                failed,
                reason.removeprefix("dropped: "),
            )


def _range(p: IntParam | FloatParam) -> str:
    """`p`'s values in words: `0.001 to 0.005`, `8 to 32 step 16`."""
    step = p.step not in (None, 1) or (isinstance(p, FloatParam) and p.step is not None)
    return f"{format_value(p.low)} to {format_value(p.high)}" + (
        f" step {format_value(p.step)}" if step else ""
    )


def _drop_unlisted_warm_starts(study: optuna.Study, plan: StudyPlan, trials: list[FrozenTrial]) -> None:
    """The config rules: a point an earlier run queued from the optimize config's enqueue list, still
    waiting, that the list no longer holds, is marked FAIL ('dropped: ...') so it does not run (Optuna
    cannot delete a trial; a FAIL trial takes no slot of n_trials). Studies of earlier hpotool versions
    carry no mark: there a waiting point the stored config's enqueue list held counts as one.

    Only on an idle study: while another process works on it (`in_use`: a machine that created it with its
    own enqueue list and is starting its workers, say), its queued points are its work, and stay queued."""
    stored = [encode_params(p) for p in study.user_attrs.get("optimize_config", {}).get("enqueue") or []]
    listed = [encode_params(p) for p in plan.opt.enqueue]
    unlisted = []
    for t in trials:
        if t.state != TrialState.WAITING or "retry_of" in t.user_attrs:
            continue
        queued = t.user_attrs.get(WARM_START) == "enqueue" or (
            not t.user_attrs and any(_tried(t, params) for params in stored)  # an older hpotool's: unmarked
        )
        if queued and not any(_tried(t, params) for params in listed):
            unlisted.append(t)
    if not unlisted:
        return

    def shown(points: list[FrozenTrial]) -> str:
        return "; ".join(
            ", ".join(f"{k}={format_choice(v)}" for k, v in t.system_attrs.get("fixed_params", {}).items())
            for t in points
        )

    busy = in_use(study, trials, heartbeat_settings()[1])
    if busy is not None:
        _log.warning(
            "note: study %r is in use (%s): %s queued from an enqueue list that this optimize config does not "
            "hold %s left queued, and will run: %s",
            study.study_name,
            busy,
            counted(len(unlisted), "point"),
            "is" if len(unlisted) == 1 else "are",
            shown(unlisted),
        )
        return
    reason = "dropped: no longer in the optimize config's enqueue list"
    # one a worker took up as this process looked (a machine starting at this moment) runs: it is not failed
    dropped = [t for t in unlisted if fail_trial(study._storage, t._trial_id, reason, waiting=True)]
    if dropped:
        _log.warning(
            "warning: %s an earlier run queued from the optimize config's enqueue list %s no longer listed "
            "there and will not run (marked FAIL, 'dropped'): %s",
            counted(len(dropped), "point"),
            "is" if len(dropped) == 1 else "are",
            shown(dropped),
        )


def was_interrupted(trial: FrozenTrial) -> bool:
    """Whether Ctrl-C or SIGTERM ended `trial` (FAIL, "interrupted"): it never finished its run."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") == "interrupted"


def never_ran(trial: FrozenTrial) -> bool:
    """Whether `trial` ended before it ran its values: interrupted (`was_interrupted`), or failed by its
    sampler's `before_trial` (before, its queued point was taken for tried, and never run)."""
    return was_interrupted(trial) or failed_before_trial(trial)


def _tried(trial: FrozenTrial, params: Mapping[str, Any]) -> bool:
    """Whether `trial` ran `params`, or holds them in the queue, as Optuna's `skip_if_exists` tells: a
    warm-start point whose trial never ran (interrupted, or failed in the sampler's `before_trial`) is
    queued again."""
    return not never_ran(trial) and _held(trial, params)


def _held(trial: FrozenTrial, params: Mapping[str, Any]) -> bool:
    """Whether `trial` holds `params` (queued, or drawn), whatever its state."""
    ran = trial.system_attrs.get("fixed_params", trial.params)
    if ran.keys() != params.keys():
        return False
    return all(_same(value, ran[name]) for name, value in params.items())


def _same(value: Any, other: Any) -> bool:
    if isinstance(value, float) and isinstance(other, float):  # as Optuna's np.isclose(atol=0)
        return math.isclose(value, other, rel_tol=1e-5)
    return bool(value == other)
