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

# The step before which a pruner prunes nothing, whatever the pruner class: Optuna's median, percentile and
# threshold pruners, hpotool's pfl. (Wilcoxon's n_startup_steps counts values, not a step: `_check_wilcoxon`.)
_WARM_UP_KEY = "n_warmup_steps"


def most_epochs(run_epochs: int, space: Mapping[str, Param]) -> int:
    """The most epochs a trial trains: the run config's, or the top of a searched `epochs`."""
    p = space.get("epochs")
    if isinstance(p, IntParam | FloatParam):
        return int(p.high)
    if isinstance(p, CategoricalParam):
        numbers = [int(c) for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool)]
        return max(numbers, default=run_epochs)
    return run_epochs


def never_asked_note(pruner_name: str, epochs: int, opt_path: str) -> str | None:
    """A note where the pruner the optimize config names is never asked: trials of at most 1 epoch complete
    at their only epoch, so `pruner: {name: median}` ran a study of 1-epoch trials unpruned, without a word
    (a step its kwargs write past the last is refused by `check_pruner_reach`)."""
    if epochs > 1:
        return None
    return (
        f"{opt_path}: pruner: {pruner_name!r} never prunes here: trials train at most 1 epoch, and a pruner is "
        f"asked after every epoch but the last, whose trial completes; train 2 epochs or more to prune, or "
        f"write pruner: null"
    )


def check_pruner_reach(
    pruner: Any, kwargs: Mapping[str, Any], epochs: int, key: str = "pruner", epochs_searched: bool = False
) -> None:
    """Refuse a step the pruner `pruner` (built from `kwargs`, set at `key`) would never reach in trials of at
    most `epochs` epochs (`epochs_searched`: the top of a searched `epochs`). `patient`'s wrapped pruner is
    checked under its own key."""
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
            check_pruner_reach(
                pruner._wrapped_pruner, inner_kwargs, epochs, f"{key}.kwargs.wrapped_pruner", epochs_searched
            )
    if not epochs_searched:  # a searched `epochs` is each trial's horizon, whatever pfl's max_epochs says
        _check_pfl_horizon(pruner, kwargs, epochs, key)
    value = _written(pruner, kwargs, _WARM_UP_KEY)
    if value is not None and value > last:
        raise HpoError(
            f"{key}.kwargs.{_WARM_UP_KEY}: {value} leaves no step to prune at: {trains}, and {asked}, the last "
            f"epoch's trial completing; "
            + (f"give {_WARM_UP_KEY} at most {last}, or {more}" if last >= 0 else more)
        )
    if isinstance(pruner, optuna.pruners.WilcoxonPruner):
        _check_wilcoxon(pruner, kwargs, epochs, key, f"{trains}, and {asked}", more)
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
            if (
                not idle
            ):  # the same brackets as max_resource: epochs makes (Optuna reads it for their number only)
                return
            fitting = _idle_brackets(low, epochs, factor, last)
            idle_ones = "has its first rung" if idle == 1 else "have their first rung"
            prune = "prunes" if idle == 1 else "prune"
            raise HpoError(
                f"{key}.kwargs.max_resource: {high} is more than the {epochs} epochs a trial trains: hyperband "
                f"splits the trials into {brackets} brackets by it, {idle} of which {idle_ones} past "
                f"the last step the pruner is asked at ({last}) and {prune} nothing ({fitting[0]} of {fitting[1]} "
                f"with max_resource: {epochs}); give max_resource: {epochs}, or auto (the steps of the first "
                f"complete trial)"
            )


def _check_pfl_horizon(pruner: Any, kwargs: Mapping[str, Any], epochs: int, key: str) -> None:
    """Refuse a `pfl` whose `max_epochs` (an Optuna script's, or one left from another run config) is not the
    epochs the trials train: pfl predicts each trial's value at step max_epochs - 1 and prunes nothing from
    that step on, so `max_epochs: 2` over 4-epoch trials, with a warm-up of 1, ran the study unpruned without
    a word, and `max_epochs: 100` judged each trial by a value extrapolated 96 epochs past its end. Left out,
    pfl reads the epochs from the study's run config."""
    from hpotool.pruners import PFLPruner

    written = _written(pruner, kwargs, "max_epochs") if isinstance(pruner, PFLPruner) else None
    if written is None or written == epochs:
        return
    wrong = (
        f"past the trials' last step, {epochs - 1}"
        if written > epochs
        else f"and prune nothing from that step on, where trials train to step {epochs - 1}"
    )
    raise HpoError(
        f"{key}.kwargs.max_epochs: {written} is not the {epochs} epochs the trials train: pfl would predict each "
        f"trial's value at step {written - 1}, {wrong}; drop max_epochs (pfl reads the epochs from the run "
        f"config), or write max_epochs: {epochs}"
    )


def _check_wilcoxon(
    pruner: Any, kwargs: Mapping[str, Any], epochs: int, key: str, said: str, more: str
) -> None:
    """Refuse a Wilcoxon pruner that cannot prune trials of at most `epochs` epochs. At step k it tests the
    trial's k + 1 values against the best trial's, once it has `n_startup_steps` of them (2 at least), and
    its one-sided signed-rank test gives p = 0.5 ** n at the least on n values (each worse than the best
    trial's): p < `p_threshold` needs as many. Asked at steps 0 to epochs - 2, it sees epochs - 1 values at
    most: with the default p_threshold 0.1 (4 values), a run of 4 epochs or fewer ran unpruned, saying
    nothing; an `n_startup_steps` of 4 on 5 epochs, which prunes at step 3, was refused as past the last."""
    most = epochs - 1  # the values it sees at the last step it is asked at
    threshold = float(pruner._p_threshold)
    if most < 1 or threshold <= 0:
        return  # never asked, as any pruner; or told never to prune
    startup = max(2, int(pruner._n_startup_steps))
    tested = 1  # the fewest values whose least p is below the threshold
    while 0.5**tested >= threshold and tested < 64:
        tested += 1
    if max(startup, tested) <= most:
        return
    if "n_startup_steps" in kwargs and tested <= most:  # its n_startup_steps alone is past the last step
        fix = f"give n_startup_steps at most {most}, or {more}" if most >= 2 else more
        raise HpoError(
            f"{key}.kwargs.n_startup_steps: {startup} leaves no step to prune at: {said}, the last epoch's trial "
            f"completing, so a trial has {most} value{'s' if most != 1 else ''} at most where it tests "
            f"{startup}; {fix}"
        )
    least = 0.5**most
    raise HpoError(
        f"{key}: 'wilcoxon' prunes nothing here: {said}, the last epoch's trial completing, so it tests "
        f"{most} value{'s' if most != 1 else ''} at most, and its signed-rank test on {most} gives p = "
        f"{least:g} at the least (each worse than the best trial's), not below p_threshold {threshold:g}; "
        f"train {max(startup, tested) + 1} epochs or more, or give p_threshold above {least:g}, or use median"
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
