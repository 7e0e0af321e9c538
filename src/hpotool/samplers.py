"""`rung_tpe`: Optuna's TPE that learns from pruned trials the way BOHB does.

Optuna's TPE ranks every complete trial above every pruned one when it picks the trials to imitate.
Under successive halving the complete trials of a small study are mostly its first ones, which pass every
rung because they reach it before anyone else: the sampler then imitates early random trials. BOHB
(Falkner et al., 2018) instead models the deepest budget that enough trials reached. `RungTPESampler`
does that with Optuna's own TPE: it shows TPE each finished trial as if it had ended at the deepest step
that at least `min_trials` finished trials reported (by default the number of parameters plus one, BOHB's
rule), valued by what it reported there; trials that stopped earlier rank below, deepest first, as Optuna
ranks pruned trials. Until some step has that many trials, or in a study without reports, it is TPE.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections import Counter
from collections.abc import Container
from typing import TYPE_CHECKING, Any

from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def rung_step(trials: list[FrozenTrial], min_trials: int | None = None) -> int | None:
    """The deepest step that at least `min_trials` of the finished `trials` reported (None: the number of
    parameters plus one), or None when no step has that many."""
    finished = [t for t in trials if t.state in _FINISHED]
    if not finished:
        return None
    if min_trials is None:
        min_trials = max(len(t.distributions) for t in finished) + 1
    counts = Counter(step for t in finished for step in t.intermediate_values)
    return max((step for step, n in counts.items() if n >= min_trials), default=None)


def as_of_step(trials: list[FrozenTrial], step: int) -> list[FrozenTrial]:
    """`trials` as TPE should rank them: each finished trial that reported a number at `step` as complete
    with that value, the other finished trials as pruned (TPE ranks those by their last report); running
    trials as they are. Copies; the study is untouched."""
    out = []
    for trial in trials:
        if trial.state in _FINISHED:
            trial = copy.copy(trial)
            value = trial.intermediate_values.get(step, math.nan)
            if math.isnan(value):  # not reported there, or NaN (ranked last, as Optuna ranks it)
                trial.state = TrialState.PRUNED
            else:
                trial.state = TrialState.COMPLETE
                trial.value = value
        out.append(trial)
    return out


class _RungView:
    """The study as `RungTPESampler` shows it to TPE: the same in all but its finished trials' states and
    values (see `as_of_step`)."""

    def __init__(self, study: Study, min_trials: int | None) -> None:
        self._rung_study = study
        self._rung_min_trials = min_trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rung_study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._rung_study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        step = rung_step(trials, self._rung_min_trials)
        return trials if step is None else as_of_step(trials, step)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)


class RungTPESampler(TPESampler):
    """TPE that models the deepest step enough trials reached (BOHB's rule) instead of ranking every
    complete trial above every pruned one. Takes TPESampler's arguments, plus:

    Args:
        min_trials: how many finished trials must have reported a step before TPE ranks trials by their
            value there; None: the number of parameters plus one.
    """

    def __init__(self, *, min_trials: int | None = None, **kwargs: Any) -> None:
        if min_trials is not None and min_trials < 1:
            raise ValueError(f"min_trials must be >= 1, got {min_trials}")
        super().__init__(**kwargs)
        self._min_trials = min_trials

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        view: Any = _RungView(study, self._min_trials)
        return super().sample_relative(view, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        view: Any = _RungView(study, self._min_trials)
        return super().sample_independent(view, trial, param_name, param_distribution)


# TPESampler's keyword arguments plus min_trials, so hpotool's config check names them all.
_tpe = inspect.signature(TPESampler.__init__)
RungTPESampler.__signature__ = _tpe.replace(  # type: ignore[attr-defined]
    parameters=[
        *(p for p in _tpe.parameters.values() if p.name != "self"),
        inspect.Parameter(
            "min_trials", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None"
        ),
    ]
)
