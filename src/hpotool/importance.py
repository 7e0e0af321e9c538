"""Parameter importances of a study, with the evaluator named, shared by reports and audits."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

EVALUATOR = "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator: top 10% of trials vs all, local)"


def import_without_sklearn() -> None:
    """Import `optuna.importance` (and so `optuna.visualization`) without importing scikit-learn.

    For the CLI's own processes (`report`, `audit`, `refine`, `optimize --report`); library callers keep
    Optuna's import as it is. `optuna.importance` imports every evaluator, and fANOVA's module imports
    `sklearn.ensemble` as it loads: 1.3-2 s, most of an `hpotool audit` and a fifth of a 10,000-trial
    `report`, for an evaluator hpotool never uses (PED-ANOVA needs numpy only). While it loads, sklearn
    reads as absent (None in `sys.modules`, Python's own "this import fails"), which Optuna's
    `try_import` records for fANOVA and mean-decrease-impurity alone: in this process those two
    evaluators raise Optuna's ImportError when made. sklearn itself imports normally afterwards.
    Does nothing when sklearn or `optuna.importance` is already imported.
    """
    import sys

    if "sklearn" in sys.modules or "optuna.importance" in sys.modules:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    try:
        import optuna.importance  # noqa: F401
    finally:
        if sys.modules.get("sklearn", False) is None:  # still our marker
            del sys.modules["sklearn"]


def make_evaluator() -> optuna.importance.PedAnovaImportanceEvaluator:
    """The evaluator behind every importance hpotool shows.

    PED-ANOVA asks which parameters set the top 10% of trials apart, which is the question a tuner has,
    and it is deterministic and fast: 0.01 s on 1,000 trials where fANOVA's 64 trees took 22 s (16 trees
    2.5 s), so reports and audits of large studies stay interactive.
    """
    import optuna

    return optuna.importance.PedAnovaImportanceEvaluator(
        target_quantile=0.1, region_quantile=1.0, evaluate_on_local=True
    )


def feasible_view(study: optuna.Study) -> optuna.Study:
    """`study` without its complete trials that break its constraints, or `study` itself when none does.

    Importances answer "what sets the best trials apart", and a trial that broke a constraint is not
    among them however well it scored: a big model that tops the accuracy while over its `n_params`
    limit would make the width look important for the wrong reason. Optuna's evaluators read every
    complete trial, so they are handed this view.
    """
    from optuna.trial import TrialState

    from hpotool.export import is_feasible
    from hpotool.snapshot import StudySnapshot

    trials = study.get_trials(deepcopy=False)
    kept = [t for t in trials if t.state != TrialState.COMPLETE or is_feasible(t)]
    if len(kept) == len(trials):
        return study
    return StudySnapshot(study, kept)


def param_importances(
    study: optuna.Study, target: Callable[[FrozenTrial], float] | None = None
) -> dict[str, float]:
    """Importance of each parameter, summing to 1, most important first.

    Uses the complete trials that meet the study's constraints (all of them in a study without any) and
    the parameters all of them share.

    Raises:
        ValueError: with a one-line reason when importances cannot be computed (fewer than two complete
            trials, no parameter varies, or a multi-objective study without `target`).
    """
    import optuna
    from optuna.trial import TrialState

    view = feasible_view(study)
    complete = view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        kind = "complete trials" if view is study else "complete trials that meet the constraints"
        raise ValueError(f"needs at least 2 {kind}, the study has {len(complete)}")
    if len(study.directions) > 1 and target is None:
        raise ValueError("a multi-objective study needs a target objective")
    try:
        with warnings.catch_warnings():  # "lower target values are better": the caller's target is so
            warnings.filterwarnings(
                "ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning
            )
            result = optuna.importance.get_param_importances(view, evaluator=make_evaluator(), target=target)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not result:
        raise ValueError("no parameter is shared by all complete trials")
    return {name: float(value) for name, value in result.items()}
