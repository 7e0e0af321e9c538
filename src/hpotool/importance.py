"""Parameter importances of a study, with the evaluator named, shared by reports and audits."""

from __future__ import annotations

import copy
import functools
import math
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
    return _name_ordered_ped_anova()(target_quantile=0.1, region_quantile=1.0, evaluate_on_local=True)


@functools.cache
def _name_ordered_ped_anova() -> type[optuna.importance.PedAnovaImportanceEvaluator]:
    """PED-ANOVA whose importances tied at one value (several parameters at zero, typically) go by name.

    Optuna lists a study's parameters from a set of their names, so ties came in an order that the string
    hash seed changed from process to process: the report's importances and its figure (which orders its
    bars by the evaluator's result) put them differently from run to run. Sorting here, where both read,
    also makes the normalising sum add up in one order. Made on first use: Optuna loads only then.
    """
    import optuna

    class NameOrderedPedAnova(optuna.importance.PedAnovaImportanceEvaluator):
        def evaluate(
            self,
            study: optuna.Study,
            params: list[str] | None = None,
            *,
            target: Callable[[FrozenTrial], float] | None = None,
        ) -> dict[str, float]:
            found = super().evaluate(study, params, target=target)
            return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    return NameOrderedPedAnova


def feasible_view(study: optuna.Study) -> optuna.Study:
    """`study` without its complete trials that break its constraints, or `study` itself when none does.

    Importances answer "what sets the best trials apart", and a trial that broke a constraint is not
    among them however well it scored: a big model that tops the accuracy while over its `n_params`
    limit would make the width look important for the wrong reason. Optuna's evaluators read every
    complete trial, so they are handed this view.
    """
    from optuna.trial import TrialState

    from hpotool.ranking import is_feasible
    from hpotool.snapshot import StudySnapshot

    trials = study.get_trials(deepcopy=False)
    kept = [t for t in trials if t.state != TrialState.COMPLETE or is_feasible(t)]
    if len(kept) == len(trials):
        return study
    return StudySnapshot(study, kept)


@dataclass(frozen=True)
class Basis:
    """The trials a study's lessons (importances, top trials) rest on, best first.

    In a study without pruned trials (or with several objectives): its complete trials that meet the
    constraints and have finite values, valued by their objectives (`target` None). In a pruned single-objective study: every
    finished trial, ranked as successive halving ranks them (see `basis`); `target` gives each its rank
    (0 the best, lower better, as PED-ANOVA reads a target) and `study` is a view in which they all read
    as complete.
    """

    study: optuna.Study
    trials: list[FrozenTrial]  # best first when ranked; in the study's order otherwise
    target: Callable[[FrozenTrial], float] | None
    step: int | None  # where the ranked trials are compared by value (None: their objective)
    complete: int  # complete trials that meet the constraints
    constrained: bool  # the study has complete trials that break its constraints
    min_trials: int  # the number of parameters plus one

    @property
    def tied(self) -> bool:
        """Whether the trials all have the same value: none is better than another, so their "top" trials
        are the first ones by number, and neither a best value nor a range around the top says anything."""
        return self.target is None and len(self.trials) > 1 and len({t.value for t in self.trials}) == 1

    def top(self, direction: str, share: float) -> list[FrozenTrial]:
        """The best `share` of the trials, at least three (all of them when fewer)."""
        n = max(3, math.ceil(len(self.trials) * share))
        if self.target is not None:
            return self.trials[:n]
        sign = 1.0 if direction == "minimize" else -1.0
        return sorted(self.trials, key=lambda t: sign * float(t.value or 0.0))[:n]

    def describe(self, metric: str) -> str:
        """What the lessons rest on, as a phrase."""
        meet = " that meet the constraints" if self.constrained else ""
        if self.target is None:
            if len(self.trials) == 1:
                return "1 complete trial" + meet.replace("meet ", "meets ")
            return f"{len(self.trials)} complete trials{meet}"
        epochs = None if self.step is None else f"{self.step + 1} epoch{'' if self.step == 0 else 's'}"
        at = (
            f"by {metric}"
            if epochs is None
            else f"by {metric} after {epochs}, the deepest {self.min_trials} or more trials reached"
        )
        if self.complete == 1:  # it read "(1 complete that meet the constraints)"
            meet = meet.replace("meet ", "meets ")
        return (
            f"{len(self.trials)} finished trials ranked as successive halving ranks them: first those that got "
            f"furthest, compared {at} ({self.complete} complete{meet})"
        )


def basis(study: optuna.Study) -> Basis:
    """The trials `study`'s importances and top trials rest on.

    A pruned study finishes few trials: the demo's 20-trial study completes two, a 100-trial one five.
    Importances or a "top 10%" of those are noise, and the trials that complete under successive halving
    are partly the first ones, which pass every rung because they reach it alone. So a pruned
    single-objective study ranks every finished trial: first the trials that reached the deepest epoch at
    least parameters-plus-one trials reached (BOHB's rule, and what the `rung_tpe` sampler models; the
    complete trials themselves once there are that many of them), by their value there; then the others
    by how far they got and what they last reported, as Optuna ranks pruned trials. A trial that diverged
    (`diverged_at`: a NaN or infinite loss, or final metric) ranks last, with those that reported nothing:
    its finite values before it diverged ranked it among the best, and refine narrowed towards it. Complete
    trials that break the constraints are left out.
    """
    from optuna.trial import TrialState

    from hpotool.samplers import rung_step
    from hpotool.snapshot import StudySnapshot

    view = feasible_view(study)
    trials = view.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # Optuna's evaluators leave out a value that is inf or nan: such a trial neither counts nor ranks.
    finite = [t for t in complete if t.values is not None and all(map(math.isfinite, t.values))]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    min_trials = max((len(t.distributions) for t in finished), default=0) + 1
    constrained = view is not study
    if len(study.directions) > 1 or len(finished) == len(complete):
        return Basis(view, finite, None, None, len(complete), constrained, min_trials)
    sign = 1.0 if study.direction.name == "MINIMIZE" else -1.0
    step = None if len(complete) >= min_trials else rung_step(finished, min_trials)

    def key(t: FrozenTrial) -> tuple[int, int, float, int]:
        if t.state == TrialState.PRUNED and t.user_attrs.get("diverged_at") is not None:
            return (2, 0, 0.0, t.number)
        if step is None and t.state == TrialState.COMPLETE:
            return (0, 0, sign * float(t.value), t.number)  # type: ignore[arg-type]
        if step is not None and math.isfinite(v := t.intermediate_values.get(step, math.nan)):
            return (0, 0, sign * v, t.number)
        finite = [s for s, v in t.intermediate_values.items() if math.isfinite(v)]
        if not finite:
            return (2, 0, 0.0, t.number)
        last = max(finite)
        return (1, -last, sign * t.intermediate_values[last], t.number)

    ranked = sorted(finished, key=key)
    rank = {t.number: float(i) for i, t in enumerate(ranked)}
    as_complete = []
    for t in trials:  # every finished trial reads as complete to the evaluator; `target` ranks them
        if t.state == TrialState.PRUNED:
            t = copy.copy(t)
            t.state, t.value = TrialState.COMPLETE, rank[t.number]
        as_complete.append(t)
    return Basis(
        StudySnapshot(study, as_complete),
        ranked,
        lambda t: rank[t.number],
        step,
        len(complete),
        constrained,
        min_trials,
    )


def param_importances(
    study: optuna.Study,
    target: Callable[[FrozenTrial], float] | None = None,
    *,
    on: Basis | None = None,
) -> dict[str, float]:
    """Importance of each parameter, summing to 1, most important first (ties by name).

    Uses the trials of `on` (by default `basis(study)`: the complete trials that meet the study's
    constraints, or in a pruned study every finished trial, ranked as successive halving ranks them). A
    conditional parameter is scored over the trials that drew it (PED-ANOVA's regimes); Optuna's warning
    that a regime has fewer than two trials is left out: it names nothing a user can change but the
    number of trials, and a report or audit printed it per parameter.

    Raises:
        ValueError: with a one-line reason when importances cannot be computed (fewer than two complete
            trials, no parameter varies, or a multi-objective study without `target`).
    """
    import optuna

    on = on or basis(study)
    if len(on.trials) < 2:
        finite = " with a finite value" if on.target is None and len(on.trials) < on.complete else ""
        raise ValueError(f"needs at least 2 {_kind(on)}{finite}, the study has {len(on.trials)}")
    if on.target is not None and (told := sum(map(_reported, on.trials))) < 2:  # the rest tie, unranked
        raise ValueError(
            f"needs at least 2 finished trials that reported a finite value, the study has {told}"
        )
    if len(study.directions) > 1 and target is None:
        raise ValueError("a multi-objective study needs a target objective")
    try:
        with warnings.catch_warnings():  # "lower target values are better": the caller's target is so
            warnings.filterwarnings("ignore", message=LOW_TARGET_IS_BETTER, category=UserWarning)
            # The top 10% are every trial only when all of them tie: Optuna warns (once per call: a report
            # said it twice) and returns equal importances, which a figure would show as a finding.
            warnings.filterwarnings("error", message=_ALL_TIE, category=UserWarning)
            warnings.filterwarnings("ignore", message=FEW_IN_REGIME, category=UserWarning)
            result = optuna.importance.get_param_importances(
                on.study, evaluator=make_evaluator(), target=target or on.target
            )
    except UserWarning as exc:
        if _ALL_TIE not in str(exc):
            raise
        raise ValueError(
            f"the {len(on.trials)} {_kind(on)} all have the same value, so no parameter sets the best apart"
        ) from None
    except (RuntimeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not result:
        raise ValueError("no parameter is shared by all complete trials")
    return {name: float(value) for name, value in result.items()}


# Optuna's note, made whenever a target is given, that the evaluator reads low target values as better: the
# targets hpotool gives are so. It starts with the evaluator's class name.
LOW_TARGET_IS_BETTER = r"\w+ computes the importances of params to achieve low `target` values"
_ALL_TIE = "Target and region quantiles select the same set of trials"
# Optuna's warning that a conditional parameter's regime has fewer than two trials: left out wherever
# importances are computed (it names nothing to change but the number of trials).
FEW_IN_REGIME = "Some regimes for parameter"


def _kind(on: Basis) -> str:
    """The trials `on` holds, as a reason names them."""
    if on.target is not None:
        return "finished trials"
    return "complete trials that meet the constraints" if on.constrained else "complete trials"


def _reported(trial: FrozenTrial) -> bool:
    """Whether a ranked trial has a value to be ranked by (complete, or reported a finite value)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE or any(
        math.isfinite(v) for v in trial.intermediate_values.values()
    )
