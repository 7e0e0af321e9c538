"""How long a trial took: the wall time hpotool measured as it ran the trial, else Optuna's datetimes.

Optuna's RDB schema keeps `datetime_start` and `datetime_complete` without fractional seconds on
MySQL/MariaDB, so `trial.duration` there is whole seconds (a 0.3 s trial took 0 s, or 1 s). hpotool's own
trials record the seconds they took, from `ask` to `tell`, and when they were asked (seconds since the
epoch), as system attrs: every storage keeps a float.
"""

from __future__ import annotations

import copy
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no heavy import: the tracking and the CLI's tables use it
    import optuna
    from optuna.trial import FrozenTrial

# The start of the `fail_reason` another process gives a trial whose worker it found dead: the heartbeat's
# stale check and `fail-stale` (`heartbeat.fail_stale_trials`), the dead-worker check and the check for trials
# whose process ended before it recorded itself or beat (`dead_trials`: "abandoned").
# Optuna's datetimes then span from its start to that mark: 637 s for a trial killed after 1.5 s.
_FOUND_DEAD = ("stale:", "worker died", "abandoned:")
# The trial's system attrs holding its measured wall time, in seconds, and when it was asked, in seconds
# since the epoch (`time.time()`).
SECONDS_ATTR = "hpotool:seconds"
STARTED_ATTR = "hpotool:started"


def record_seconds(trial: optuna.Trial, seconds: float) -> None:
    """Store the wall time this process measured for `trial`, which it asked `seconds` ago, and when that
    was (before it is told: a finished trial's attrs cannot change); kept on the trial here where another
    process ended it first (`kept_writes`), so a result kept for it carries them."""
    from hpotool.kept_writes import set_system_attr

    set_system_attr(trial, STARTED_ATTR, time.time() - seconds)
    set_system_attr(trial, SECONDS_ATTR, seconds)


def _recorded(trial: FrozenTrial, key: str) -> float | None:
    """The finite number `trial` recorded as system attr `key`, or None."""
    value = trial.system_attrs.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def trial_seconds(trial: FrozenTrial) -> float | None:
    """The seconds `trial` took: hpotool's measured wall time where it ran the trial, else Optuna's
    `duration` (a plain Optuna script's trials, or an interrupted `ask`); None while it has not finished,
    and for one that ended unobserved (`ended_unobserved`): nobody measured how long it ran."""
    seconds = _recorded(trial, SECONDS_ATTR)
    if seconds is not None:
        return max(seconds, 0.0)
    if ended_unobserved(trial):
        return None
    return trial.duration.total_seconds() if trial.duration is not None else None


def ended_unobserved(trial: FrozenTrial) -> bool:
    """Whether `trial` is FAIL because another process found its worker dead (`_FOUND_DEAD`), or failed it
    without a reason (plain Optuna's heartbeat check: `silent_fails`), and its own process recorded no
    seconds: it died at some moment after its start that nothing recorded, and Optuna's `duration` runs on to
    when it was found, minutes later, which read as training time."""
    from optuna.trial import TrialState

    from hpotool.silent_fails import failed_without_reason

    reason = trial.user_attrs.get("fail_reason")
    return (
        trial.state == TrialState.FAIL
        and _recorded(trial, SECONDS_ATTR) is None
        and ((isinstance(reason, str) and reason.startswith(_FOUND_DEAD)) or failed_without_reason(trial))
    )


def trial_start(trial: FrozenTrial) -> float | None:
    """When `trial` started, in seconds since the epoch: when hpotool asked it where it recorded that, else
    Optuna's `datetime_start` (naive local time, as Optuna stores it; whole seconds on MySQL)."""
    started = _recorded(trial, STARTED_ATTR)
    if started is not None:
        return started
    return trial.datetime_start.timestamp() if trial.datetime_start is not None else None


def trial_end(trial: FrozenTrial) -> float | None:
    """When `trial` finished, in seconds since the epoch: its recorded start plus the seconds it took where
    hpotool recorded both, else Optuna's `datetime_complete`; None while it runs."""
    started, seconds = _recorded(trial, STARTED_ATTR), _recorded(trial, SECONDS_ATTR)
    if started is not None and seconds is not None:
        return started + max(seconds, 0.0)
    return trial.datetime_complete.timestamp() if trial.datetime_complete is not None else None


def measured_trial(trial: FrozenTrial) -> FrozenTrial:
    """`trial`, or a copy whose `datetime_start` and `datetime_complete` are when hpotool measured it start
    and finish, as naive local time (as Optuna stores them), for code that reads Optuna's datetimes (its
    timeline plot): on MySQL those are whole seconds, so a 0.3 s trial spanned 0 s or 1 s.

    The start is hpotool's `STARTED_ATTR` where recorded, else Optuna's; a finished trial's end is that
    start plus the seconds hpotool measured where it recorded them (an older study's trials recorded the
    seconds but not the start), else Optuna's. A trial with neither recorded is returned as it is."""
    started, seconds = _recorded(trial, STARTED_ATTR), _recorded(trial, SECONDS_ATTR)
    finished = trial.datetime_complete is not None
    if started is None and not (finished and seconds is not None):
        return trial
    measured = copy.copy(trial)
    if started is not None:
        measured.datetime_start = datetime.fromtimestamp(started)
    start = measured.datetime_start
    if finished and seconds is not None and start is not None:
        measured.datetime_complete = start + timedelta(seconds=max(seconds, 0.0))
    return measured
