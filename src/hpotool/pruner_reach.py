"""Whether a pruner's steps fit the epochs the trials train.

hpotool reports the metric at steps 0 to epochs - 1 and asks the pruner after every epoch but the last. A
warm-up or first rung written past the last step it is asked at (an Optuna script's steps counted from 1, or
its epochs from another model) left the pruner with nothing to prune: the study ran unpruned, saying nothing.
Only values the optimize config writes are checked: a pruner's defaults fit any run of a few epochs or
leave it unpruned on purpose (the median pruner on a one-epoch run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpotool.errors import HpoError
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param

# Keys before which a pruner prunes nothing, whatever the pruner class: Optuna's median, percentile and
# threshold pruners, hpotool's pfl (n_warmup_steps), and Wilcoxon's (n_startup_steps).
_WARM_UP_KEYS = ("n_warmup_steps", "n_startup_steps")


def most_epochs(run_epochs: int, space: Mapping[str, Param]) -> int:
    """The most epochs a trial trains: the run config's, or the top of a searched `epochs`."""
    p = space.get("epochs")
    if isinstance(p, IntParam | FloatParam):
        return int(p.high)
    if isinstance(p, CategoricalParam):
        numbers = [int(c) for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool)]
        return max(numbers, default=run_epochs)
    return run_epochs


def check_pruner_reach(pruner: Any, kwargs: Mapping[str, Any], epochs: int, key: str = "pruner") -> None:
    """Refuse a step the pruner `pruner` (built from `kwargs`, set at `key`) would never reach in trials of at
    most `epochs` epochs. `patient`'s wrapped pruner is checked under its own key."""
    import optuna

    last = epochs - 2  # the last step the pruner is asked at
    trains = f"trials train at most {epochs} epoch{'s' if epochs != 1 else ''} (steps 0 to {epochs - 1})"
    asked = (
        f"the pruner is asked after steps 0 to {last}"
        if last > 0
        else ("the pruner is asked after step 0 only" if last == 0 else "the pruner is never asked")
    )
    more = "train more epochs" if last >= 0 else "train 2 epochs or more, or write pruner: null"
    if isinstance(pruner, optuna.pruners.PatientPruner):
        inner = kwargs.get("wrapped_pruner")
        inner_kwargs = inner.get("kwargs") or {} if isinstance(inner, Mapping) else {}
        if pruner._wrapped_pruner is not None:
            check_pruner_reach(pruner._wrapped_pruner, inner_kwargs, epochs, f"{key}.kwargs.wrapped_pruner")
    for name in _WARM_UP_KEYS:
        value = _written(pruner, kwargs, name)
        if value is not None and value > last:
            raise HpoError(
                f"{key}.kwargs.{name}: {value} leaves no step to prune at: {trains}, and {asked}, the last "
                f"epoch's trial completing; "
                + (f"give {name} at most {last}, or {more}" if last >= 0 else more)
            )
    if isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner | optuna.pruners.HyperbandPruner):
        low = _written(pruner, kwargs, "min_resource")
        if low is not None:
            rate = _written(pruner, kwargs, "min_early_stopping_rate") or 0
            factor = int(getattr(pruner, "_reduction_factor", 1))
            rung = low * factor**rate
            if rung > last:
                top = last // factor**rate
                fix = f"give min_resource at most {top}, or {more}" if top >= 1 else more
                raise HpoError(
                    f"{key}.kwargs.min_resource: {low} puts the first rung at step {rung}: {trains}, and {asked}, "
                    f"so no trial is ever pruned; {fix}"
                )
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        high = _written(pruner, kwargs, "max_resource")
        if high is not None and high > epochs:
            low, factor = int(pruner._min_resource), int(pruner._reduction_factor)
            idle, brackets = _idle_brackets(low, high, factor, last)
            fitting = _idle_brackets(low, epochs, factor, last)
            raise HpoError(
                f"{key}.kwargs.max_resource: {high} is more than the {epochs} epochs a trial trains: hyperband "
                f"splits the trials into {brackets} brackets by it, {idle} of which have their first rung past "
                f"the last step the pruner is asked at ({last}) and prune nothing ({fitting[0]} of {fitting[1]} "
                f"with max_resource: {epochs}); give max_resource: {epochs}, or auto (the steps of the first "
                f"complete trial)"
            )


def _idle_brackets(low: int, high: int, factor: int, last: int) -> tuple[int, int]:
    """Of the brackets Optuna's hyperband makes from `low`, `high` and `factor`: how many have their first
    rung past step `last` (bracket i's is at low * factor**i), and how many there are."""
    import math

    brackets = math.floor(math.log(high / low, factor)) + 1 if high >= low else 1
    return sum(1 for i in range(brackets) if low * factor**i > last), brackets


def _written(pruner: Any, kwargs: Mapping[str, Any], name: str) -> int | None:
    """The integer the pruner took for `name` where the config writes it (None for auto or left out)."""
    if name not in kwargs:
        return None
    value = getattr(pruner, f"_{name}", getattr(pruner, name, None))
    return value if isinstance(value, int) and not isinstance(value, bool) else None
