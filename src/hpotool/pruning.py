"""Why each pruned trial stopped: the epoch, the value, and the threshold it missed.

The threshold is recomputed from the study the way the pruner computed it, from the trials that had
finished before the pruned trial stopped (exact for a study run by one worker; with several workers, trials
that were still running then are not counted).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.formatting import counted

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

NOT_EXPOSED = "not exposed by this pruner"


@dataclass(frozen=True)
class PrunedRow:
    """One pruned trial: where it stopped and the bar it did not clear."""

    number: int
    epoch: int | None  # the last reported step (Optuna's step: epochs count from 0)
    epochs_run: int | None
    value: float | None  # the metric at that epoch
    threshold: float | None
    threshold_note: str  # how the threshold was computed, or why there is none
    reason: str  # the trial's prune_reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pruner_class(name: str) -> type | None:
    from hpotool.factories import PRUNERS
    from hpotool.import_paths import import_object

    try:
        cls = import_object(PRUNERS.get(name, name))
    except Exception:  # a user's pruner that no longer imports: we only lose the threshold
        return None
    return cls if isinstance(cls, type) else None


def _finished_before(trials: Sequence[FrozenTrial], trial: FrozenTrial) -> list[FrozenTrial]:
    stop = trial.datetime_complete
    return [
        t
        for t in trials
        if t.number != trial.number
        and t.datetime_complete is not None
        and (stop is None or t.datetime_complete < stop)
    ]


def _count(step: int | None) -> str:
    """Optuna's step (an epoch index from 0) as the epochs run by then: step 1 is "2 epochs"."""
    return "?" if step is None else f"{step + 1} epoch{'s' if step else ''}"


def _percentile_threshold(
    trial: FrozenTrial, earlier: list[FrozenTrial], maximize: bool, percentile: float, n_min_trials: int
) -> tuple[float | None, str]:
    step = trial.last_step
    complete = [t for t in earlier if t.state == TrialState.COMPLETE and step in t.intermediate_values]
    if step is None or len(complete) < max(n_min_trials, 1):
        return None, f"fewer than {counted(max(n_min_trials, 1), 'complete trial')} had run {_count(step)}"
    values = np.array([t.intermediate_values[step] for t in complete], dtype=float)
    q = 100 - percentile if maximize else percentile
    label = "median" if percentile == 50 else f"{percentile:g}th percentile"
    best = "highest" if maximize else "lowest"
    return (
        float(np.nanpercentile(values, q)),
        f"{label} of {counted(len(complete), 'complete trial')} after {_count(step)}; the trial's {best} value so "
        "far had to "
        f"{'reach' if maximize else 'stay below'} it",
    )


def _rung_threshold(
    trial: FrozenTrial, earlier: list[FrozenTrial], maximize: bool, reduction_factor: int, bootstrap: int
) -> tuple[float | None, str]:
    rungs = sorted(int(k.rsplit("_", 1)[1]) for k in trial.system_attrs if k.startswith("completed_rung_"))
    if not rungs:
        return None, "the trial reached no rung"
    key = f"completed_rung_{rungs[-1]}"
    competing = sorted(
        [t.system_attrs[key] for t in earlier if key in t.system_attrs] + [trial.system_attrs[key]]
    )
    if len(competing) <= bootstrap:
        return (
            None,
            f"rung {rungs[-1]} had {counted(len(competing), 'trial')}, not more than bootstrap_count={bootstrap}",
        )
    idx = max(len(competing) // reduction_factor - 1, 0)
    cutoff = competing[-(idx + 1)] if maximize else competing[idx]
    return (
        float(cutoff),
        f"cut-off of rung {rungs[-1]}: the top {idx + 1} of {counted(len(competing), 'trial')} there "
        f"(reduction factor {reduction_factor}) went on",
    )


def _threshold(
    trial: FrozenTrial,
    value: float,
    trials: Sequence[FrozenTrial],
    maximize: bool,
    pruner: Mapping[str, Any] | None,
) -> tuple[float | None, str]:
    if pruner is None:
        return None, "the study does not record its pruner"
    cls = _pruner_class(str(pruner.get("name", "")))
    kwargs = dict(pruner.get("kwargs") or {})
    earlier = _finished_before(trials, trial)
    if cls is optuna.pruners.MedianPruner:
        return _percentile_threshold(trial, earlier, maximize, 50.0, int(kwargs.get("n_min_trials", 1)))
    if cls is optuna.pruners.PercentilePruner:
        return _percentile_threshold(
            trial, earlier, maximize, float(kwargs["percentile"]), int(kwargs.get("n_min_trials", 1))
        )
    if cls is optuna.pruners.SuccessiveHalvingPruner:
        return _rung_threshold(
            trial,
            earlier,
            maximize,
            int(kwargs.get("reduction_factor", 4)),
            int(kwargs.get("bootstrap_count", 0)),
        )
    if cls is optuna.pruners.ThresholdPruner:
        lower, upper = kwargs.get("lower"), kwargs.get("upper")
        if lower is not None and value < float(lower):
            return float(lower), "the pruner's lower bound"
        if upper is not None and value > float(upper):
            return float(upper), "the pruner's upper bound"
    return None, NOT_EXPOSED


def _diverged_note(diverged: Mapping[str, Any]) -> str:
    """Why a trial that diverged has no threshold: `diverged` is its `diverged_at` attr."""
    metric, value, epoch = diverged.get("metric"), diverged.get("value"), diverged.get("epoch")
    when = f" after {_count(epoch)}" if isinstance(epoch, int) else ""
    return f"none: the trial diverged (its {metric} was {value}{when}); the pruner did not stop it"


def pruned_rows(study: optuna.Study, pruner: Mapping[str, Any] | None) -> list[PrunedRow]:
    """A row per pruned trial of a study, in trial order. No pruner judges a study of several objectives, but
    hpotool prunes its trials that diverge (a NaN loss or objective): those are its rows.

    Args:
        pruner: the optimize config's `pruner` section (`{name, kwargs}`), or None when unknown. A trial
            that ran before `--allow-changed-config` changed the pruner is judged by the one it ran under.
    """
    from hpotool.fingerprint import CHANGES_ATTR, config_of
    from hpotool.trial_table import epochs_count

    attrs = study.user_attrs
    changed = bool(attrs.get(CHANGES_ATTR))

    def pruner_of(number: int) -> Mapping[str, Any] | None:
        own = config_of(attrs, number, "optimize_config") if changed else None
        return own.get("pruner") if isinstance(own, dict) else pruner

    trials = study.get_trials(deepcopy=False)
    # Study.direction raises for several objectives, whose pruned trials reported no value to judge by
    maximize = len(study.directions) == 1 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows = []
    for t in trials:
        if t.state != TrialState.PRUNED:
            continue
        step = t.last_step
        value = t.intermediate_values.get(step) if step is not None else None
        if value is not None and not math.isfinite(value):
            value = None
        diverged = t.user_attrs.get("diverged_at")
        if isinstance(diverged, dict):
            # hpotool pruned it, not the pruner: a threshold recomputed at its last finite epoch named a bar it
            # may well have cleared
            threshold, note = None, _diverged_note(diverged)
        elif step is None or value is None:
            threshold, note = None, "stopped before reporting a finite value"
        else:
            threshold, note = _threshold(t, value, trials, maximize, pruner_of(t.number))
        rows.append(
            PrunedRow(
                number=t.number,
                epoch=step,
                epochs_run=epochs_count(t.user_attrs.get("epochs_run")),
                value=value,
                threshold=threshold,
                threshold_note=note,
                reason=str(t.user_attrs.get("prune_reason", "")),
            )
        )
    return rows
