"""Parameter importances of a study, with the evaluator named, shared by reports and audits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

EVALUATOR = "fANOVA (optuna.importance.FanovaImportanceEvaluator, 64 trees, seed 0)"


def make_evaluator() -> optuna.importance.FanovaImportanceEvaluator:
    """The evaluator behind every importance hpotool shows: fANOVA, seeded so reports are reproducible."""
    import optuna

    return optuna.importance.FanovaImportanceEvaluator(n_trees=64, seed=0)


def param_importances(
    study: optuna.Study, target: Callable[[FrozenTrial], float] | None = None
) -> dict[str, float]:
    """Importance of each parameter, summing to 1, most important first.

    Uses the complete trials and the parameters all of them share.

    Raises:
        ValueError: with a one-line reason when importances cannot be computed (fewer than two complete
            trials, no parameter varies, or a multi-objective study without `target`).
    """
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        raise ValueError(f"needs at least 2 complete trials, the study has {len(complete)}")
    if len(study.directions) > 1 and target is None:
        raise ValueError("a multi-objective study needs a target objective")
    try:
        result = optuna.importance.get_param_importances(study, evaluator=make_evaluator(), target=target)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not result:
        raise ValueError("no parameter is shared by all complete trials")
    return {name: float(value) for name, value in result.items()}
