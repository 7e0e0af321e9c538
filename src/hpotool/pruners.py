"""PFL ("predicted final loss"): prune a trial whose learning curve, extrapolated to the last epoch, ends
worse than the worst of the best `top_k` complete trials.

The curve is smoothed (centred running median) and fitted with L(t) = a·e^(−b·t) + c: for each b on a
log grid, a and c are a linear least-squares fit, and the b with the smallest error wins. That is
deterministic, needs no optimizer, and costs microseconds per call.

Unlike the version people copy from pytorch_template, all state lives in the study: the pruner reads the
COMPLETE trials' values and the trial's own reported values from storage on every call, so it survives a
resume and gives the same answer in every worker process. It honours the study's direction, and a NaN or
infinite value prunes at once instead of silently disabling pruning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

_RATES = np.geomspace(1e-3, 5.0, 48)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Centred running median over `window` points (narrower near the ends; 1 = no smoothing).

    A median removes the spikes of a noisy epoch yet leaves a monotone curve exactly as it is; a moving
    average would bend it (an exponential one lags), and a bent curve extrapolates far too optimistically.
    """
    y = np.asarray(values, dtype=float)
    n, half = len(y), window // 2
    spans = (min(half, i, n - 1 - i) for i in range(n))  # symmetric, so the ends stay as measured
    return np.array([np.median(y[i - h : i + h + 1]) for i, h in enumerate(spans)])


def fit_curve(steps: Sequence[float], values: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit of a·e^(−b·t) + c; returns (a, b, c)."""
    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    best = (0.0, 0.0, float(y[-1]), math.inf)
    for b in _RATES:
        basis = np.column_stack([np.exp(-b * t), np.ones_like(t)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        err = float(np.sum((basis @ coef - y) ** 2))
        if err < best[3]:
            best = (float(coef[0]), float(b), float(coef[1]), err)
    return best[0], best[1], best[2]


def predict_final(steps: Sequence[int], values: Sequence[float], last_step: int, window: int = 3) -> float:
    """The value the curve `values` (at `steps`) is predicted to reach at `last_step`."""
    if len(values) < 3:
        return float(values[-1])
    a, b, c = fit_curve(steps, smooth(values, window))
    return a * math.exp(-b * last_step) + c


class PFLPruner(BasePruner):
    """Prune when the predicted final value is worse than the worst of the top-k complete trials.

    Args:
        n_startup_trials: prune nothing until this many trials are COMPLETE.
        n_warmup_steps: never prune a trial before this step (steps count from 0).
        top_k: how many of the best complete trials set the bar.
        max_epochs: the step count a trial runs to (its last step is `max_epochs - 1`); by default the
            trial's own `epochs` parameter, else the study's stored RunConfig epochs, else the longest
            complete trial.
        window: points in the centred running median that smooths the curve (1 = no smoothing).
    """

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 3,
        top_k: int = 5,
        max_epochs: int | None = None,
        window: int = 3,
    ) -> None:
        if n_startup_trials < 0 or n_warmup_steps < 0:
            raise ValueError(
                f"n_startup_trials and n_warmup_steps cannot be negative, got {n_startup_trials} and {n_warmup_steps}"
            )
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.top_k = top_k
        self.max_epochs = max_epochs
        self.window = window

    def horizon(self, study: optuna.Study, trial: FrozenTrial, complete: list[FrozenTrial]) -> int:
        """The last step `trial` would reach if not pruned."""
        epochs = trial.params.get("epochs", self.max_epochs)
        if epochs is None:
            epochs = study.user_attrs.get("run_config", {}).get("epochs")
        if epochs is None:
            epochs = max((t.last_step or 0) + 1 for t in complete) if complete else 1
        return int(epochs) - 1

    def threshold(self, study: optuna.Study, complete: list[FrozenTrial]) -> float | None:
        """The worst final value among the best `top_k` complete trials (None before the start-up)."""
        finals = [float(t.value) for t in complete if t.value is not None and math.isfinite(t.value)]
        if len(finals) < max(1, self.n_startup_trials):
            return None
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = sorted(finals, reverse=maximize)[: self.top_k]
        return best[-1]

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        curve = sorted(trial.intermediate_values.items())
        if any(not math.isfinite(v) for _, v in curve):
            return True  # a NaN never disables pruning: it prunes
        if step < self.n_warmup_steps:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        bar = self.threshold(study, complete)
        if bar is None:
            return False
        last = self.horizon(study, trial, complete)
        if step >= last:
            return False  # the last epoch: let the trial finish and be judged by its value
        predicted = predict_final([s for s, _ in curve], [v for _, v in curve], last, self.window)
        if study.direction == StudyDirection.MAXIMIZE:
            return predicted < bar
        return predicted > bar
