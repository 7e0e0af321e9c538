"""How long a trial took: the wall time hpotool measured as it ran the trial, else Optuna's datetimes.

Optuna's RDB schema keeps `datetime_start` and `datetime_complete` without fractional seconds on
MySQL/MariaDB, so `trial.duration` there is whole seconds (a 0.3 s trial took 0 s, or 1 s). hpotool's own
trials record the seconds they took, from `ask` to `tell`, as a system attr: every storage keeps a float.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no heavy import: the tracking and the CLI's tables use it
    import optuna
    from optuna.trial import FrozenTrial

# The trial's system attr holding its measured wall time, in seconds.
SECONDS_ATTR = "hpotool:seconds"


def record_seconds(study: optuna.Study, trial: optuna.Trial, seconds: float) -> None:
    """Store the wall time this process measured for `trial` (before it is told: a finished trial's attrs
    cannot change)."""
    study._storage.set_trial_system_attr(trial._trial_id, SECONDS_ATTR, seconds)


def trial_seconds(trial: FrozenTrial) -> float | None:
    """The seconds `trial` took: hpotool's measured wall time where it ran the trial, else Optuna's
    `duration` (a plain Optuna script's trials, or an interrupted `ask`); None while it has not finished."""
    seconds = trial.system_attrs.get(SECONDS_ATTR)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and math.isfinite(seconds):
        return max(float(seconds), 0.0)
    return trial.duration.total_seconds() if trial.duration is not None else None
