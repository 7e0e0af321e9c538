"""Parameter importances of a study, with the evaluator named, shared by reports and audits."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Basis:
    """The trials a study's lessons (importances, top trials) rest on, and how they are valued.

    `study` is a view whose complete trials are `trials`: the complete trials that meet the constraints,
    valued by their objective, or, in a pruned study with too few of those (`step` set), every trial
    that reported `step`, valued by what it reported there.
    """

    study: optuna.Study
    trials: list[FrozenTrial]
    step: int | None  # None: the complete trials themselves
    complete: int  # complete trials that meet the constraints
    constrained: bool  # the study has complete trials that break its constraints
    min_trials: int  # the number of parameters plus one

    def describe(self, metric: str) -> str:
        """What the lessons rest on, as a phrase: "20 trials' val_accuracy after 2 epochs (...)"."""
        meet = " that meet the constraints" if self.constrained else ""
        if self.step is None:
            return f"{len(self.trials)} complete trials{meet}"
        return (
            f"{len(self.trials)} trials' {metric} after {self.step + 1} epochs, the deepest epoch "
            f"{self.min_trials} or more of them reached (only {self.complete} complete trials{meet})"
        )


def basis(study: optuna.Study) -> Basis:
    """The trials `study`'s importances and top trials should rest on.

    A pruned study may finish only a few trials: under successive halving the demo's 20-trial study
    completes two. Importances or a "top 10%" of two trials are noise, and fixing or narrowing
    parameters from them misleads the next stage. So when fewer complete trials than parameters plus one
    meet the constraints, a single-objective study is valued as of the deepest epoch that at least that
    many trials reported, by what they reported there: BOHB's rule for the budget its model uses, and what
    the `rung_tpe` sampler shows TPE (see `hpotool.samplers`).
    """
    from optuna.trial import TrialState

    from hpotool.samplers import as_of_step, rung_step
    from hpotool.snapshot import StudySnapshot

    view = feasible_view(study)
    trials = view.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    min_trials = max((len(t.distributions) for t in finished), default=0) + 1
    plain = Basis(view, complete, None, len(complete), view is not study, min_trials)
    if len(study.directions) > 1 or len(complete) >= min_trials:
        return plain
    step = rung_step(finished, min_trials)
    if step is None:
        return plain
    rung = as_of_step(trials, step)
    valued = [t for t in rung if t.state == TrialState.COMPLETE]
    if len(valued) <= len(complete):
        return plain
    return Basis(StudySnapshot(study, rung), valued, step, len(complete), view is not study, min_trials)


def param_importances(
    study: optuna.Study,
    target: Callable[[FrozenTrial], float] | None = None,
    *,
    on: Basis | None = None,
) -> dict[str, float]:
    """Importance of each parameter, summing to 1, most important first.

    Uses the trials of `on` (by default `basis(study)`: the complete trials that meet the study's
    constraints, or in a pruned study with too few of those, the trials as of the deepest epoch enough of
    them reached) and the parameters all of them share.

    Raises:
        ValueError: with a one-line reason when importances cannot be computed (fewer than two complete
            trials, no parameter varies, or a multi-objective study without `target`).
    """
    import optuna

    on = on or basis(study)
    if len(on.trials) < 2:
        kind = "complete trials that meet the constraints" if on.constrained else "complete trials"
        raise ValueError(f"needs at least 2 {kind}, the study has {len(on.trials)}")
    if len(study.directions) > 1 and target is None:
        raise ValueError("a multi-objective study needs a target objective")
    try:
        with warnings.catch_warnings():  # "lower target values are better": the caller's target is so
            warnings.filterwarnings(
                "ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning
            )
            result = optuna.importance.get_param_importances(
                on.study, evaluator=make_evaluator(), target=target
            )
    except (RuntimeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not result:
        raise ValueError("no parameter is shared by all complete trials")
    return {name: float(value) for name, value in result.items()}
