"""Should you trust the pruner? Two measurements from stored studies.

1. How far the PFL prediction made at epoch k was from the final value, over the complete trials
   (recomputed from each stored curve's first k+1 points with the same fit the pruner uses).
2. Given a study of the same space run without pruning, how many of this study's pruned trials would have
   finished among the top-k: each pruned trial is matched to the no-pruning trial with the same
   parameters, or else the nearest one (parameters scaled to [0, 1], log ranges in log space).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.fingerprint import stored_config
from hpotool.optimize_sections import is_nop_pruner
from hpotool.param_findings import position
from hpotool.pruners import predict_final
from hpotool.storage import study_options
from hpotool.stored_space import stored_space

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


@dataclass(frozen=True)
class EpochError:
    """Prediction error of predictions made at one epoch, over complete trials. `epoch` is the step of the
    last value a prediction saw, counted from 0 as `report(epoch, ...)` and the pruners' steps count;
    `epochs_seen` is that count of epochs (`epoch` + 1), the number the table shows."""

    epoch: int
    trials: int
    median_abs_error: float
    max_abs_error: float
    epochs_seen: int


@dataclass(frozen=True)
class MissedWinners:
    """How many pruned trials would have made the top-k, judged by a no-pruning study."""

    pruned: int
    matched_exactly: int
    matched_nearest: int
    would_have_made_top_k: int
    top_k: int  # as asked (--top-k)
    bar: float
    examples: list[dict[str, Any]]
    # The rank of the trial that sets the bar: top_k, or, when fewer complete trials meet the constraints
    # (successive halving lets few finish), their number. A top-k with free places has no bar of its own:
    # any finished trial would make it, so the figure is taken at the top-`bar_rank` instead and says so.
    bar_rank: int = 0


def _window(study: optuna.Study) -> int:
    pruner = stored_config(study.user_attrs, "optimize_config").get("pruner") or {}
    if not isinstance(pruner, dict):
        return 3
    return int(pruner.get("kwargs", {}).get("window", 3)) if pruner.get("name") == "pfl" else 3


def prediction_errors(study: optuna.Study, min_points: int = 3) -> list[EpochError]:
    """Per epoch k, the error of predicting each complete trial's final value from its first k+1 points."""
    from optuna.trial import TrialState

    window = _window(study)
    errors: dict[int, list[float]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        curve = sorted(t.intermediate_values.items())
        if len(curve) < min_points + 1 or not all(math.isfinite(v) for _, v in curve):
            continue
        steps, values = [s for s, _ in curve], [v for _, v in curve]
        final = values[-1]
        for k in range(min_points - 1, len(curve) - 1):
            predicted = predict_final(steps[: k + 1], values[: k + 1], steps[-1], window)
            errors.setdefault(steps[k], []).append(abs(predicted - final))
    return [EpochError(k, len(e), statistics.median(e), max(e), k + 1) for k, e in sorted(errors.items())]


def _distance(space: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> float:
    total = 0.0
    for name, p in space.items():
        if name not in a or name not in b:
            total += 1.0
            continue
        pa, pb = position(p, a[name]), position(p, b[name])
        total += (pa - pb) ** 2 if pa is not None and pb is not None else float(a[name] != b[name])
    return math.sqrt(total)


def _same_study(a: optuna.Study, b: optuna.Study) -> bool:
    """Whether `a` and `b` are one study, loaded twice (the same name and trials, started at the same times:
    the storage URLs may differ in spelling)."""

    def trials(s: optuna.Study) -> list[tuple[int, Any]]:
        return [(t.number, t.datetime_start) for t in s.get_trials(deepcopy=False)]

    return a.study_name == b.study_name and trials(a) == trials(b)


def _goal(direction: str, metric: str | None) -> str:
    """`minimizes val_loss` (a study without a stored metric: `minimizes its objective`)."""
    return f"{direction[:-1]}es {metric or 'its objective'}"


def missed_winners(study: optuna.Study, baseline: optuna.Study, top_k: int = 5) -> MissedWinners:
    """Match this study's pruned trials to `baseline` (no pruning) and count those that beat the top-k bar."""
    from optuna.trial import TrialState

    from hpotool.ranking import is_feasible
    from hpotool.trial_table import trial_params

    _check_baseline(study, baseline)
    space = _check_same_question(study, baseline)
    bar, bar_rank = _top_k_bar(study, top_k)
    reference = [t for t in baseline.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not reference:
        raise HpoError(f"--against {baseline.study_name!r} has no complete trial to compare with")
    maximize = study.direction.name == "MAXIMIZE"
    exact = nearest = wins = 0
    examples = []
    # Compared as values, a list choice as the list: [1, 3] here is the baseline's [1.0, 3.0] (the space
    # check above says so), though Optuna stores them as the labels each study's YAML spells.
    theirs_params = [(r, trial_params(baseline.user_attrs, r)) for r in reference]
    for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
        match, identical = _twin(space, trial_params(study.user_attrs, t), theirs_params)
        if identical:
            exact += 1
        else:
            nearest += 1
        value = float(match.value)  # type: ignore[arg-type]
        if is_feasible(match) and ((value > bar) if maximize else (value < bar)):
            wins += 1
            examples.append(
                {"trial": t.number, "matched": match.number, "value": value, "pruned_at": t.last_step}
            )
    return MissedWinners(exact + nearest, exact, nearest, wins, top_k, bar, examples, bar_rank)


def _check_baseline(study: optuna.Study, baseline: optuna.Study) -> None:
    """Raise HpoError unless `baseline` is another single-objective study run without pruning."""
    if len(baseline.directions) > 1:
        raise HpoError(
            f"--against {baseline.study_name!r} has {len(baseline.directions)} objectives; compare with a "
            f"single-objective study of the same search space run without pruning"
        )
    if _same_study(study, baseline):
        raise HpoError(
            f"--against names study {study.study_name!r} itself; compare with a study of the same search space "
            f"run without pruning"
        )
    pruner = stored_config(baseline.user_attrs, "optimize_config").get("pruner") or {}
    if isinstance(pruner.get("name"), str) and not is_nop_pruner(pruner["name"]):
        # Its complete trials are those its pruner let finish: the twins of our pruned trials would be the
        # nearest survivors, which are better than the trials themselves would have been
        raise HpoError(
            f"--against {baseline.study_name!r} was run with the {pruner['name']} pruner, which stops trials "
            f"early; compare with a study of the same search space run without pruning (pruner: {{name: nop}})"
        )


def _check_same_question(study: optuna.Study, baseline: optuna.Study) -> dict[str, Any]:
    """The search space both studies share; HpoError where their metric, direction or space differ."""
    ours, theirs = (
        (s.direction.name.lower(), stored_config(s.user_attrs, "optimize_config").get("metric"))
        for s in (study, baseline)
    )
    # val_loss against val_rmse, or the same metric minimized and maximized: the values do not compare
    if ours[0] != theirs[0] or (ours[1] and theirs[1] and ours[1] != theirs[1]):
        raise HpoError(
            f"{study.study_name!r} {_goal(*ours)} and --against {baseline.study_name!r} {_goal(*theirs)}; "
            f"compare with a study of the same metric and direction run without pruning"
        )
    space = stored_space(study)
    other = stored_space(baseline)
    if other != space:
        changed = sorted(set(space) ^ set(other)) or sorted(n for n in space if space[n] != other[n])
        raise HpoError(
            f"{study.study_name!r} and {baseline.study_name!r} search different spaces ({', '.join(changed)}); "
            f"compare with a study of the same search space run without pruning"
        )
    return space


def _top_k_bar(study: optuna.Study, top_k: int) -> tuple[float, int]:
    """The value to beat and its rank: the top_k-th best complete trial that meets the constraints, or the
    last of them where fewer finished."""
    from optuna.trial import TrialState

    from hpotool.ranking import is_feasible

    # The bar is the k-th best trial that meets the constraints ("best" as export-best has it); a pruned
    # trial whose twin broke them would not have made the top-k either.
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    if not complete:
        raise HpoError(
            f"study {study.study_name!r} has no complete trial that meets its constraints, so no top-{top_k} bar"
        )
    maximize = study.direction.name == "MAXIMIZE"
    finals = sorted((float(t.value) for t in complete), reverse=maximize)  # type: ignore[arg-type]
    bar_rank = min(top_k, len(finals))
    return finals[bar_rank - 1], bar_rank


def _twin(
    space: dict[str, Any], params: dict[str, Any], theirs: list[tuple[FrozenTrial, dict[str, Any]]]
) -> tuple[FrozenTrial, bool]:
    """The baseline trial with the same parameters (True), else the nearest one (False)."""
    match = next((r for r, rp in theirs if rp == params), None)
    if match is not None:
        return match, True
    return min(theirs, key=lambda rp: _distance(space, params, rp[1]))[0], False


_SHOWN = 5  # trial numbers named in a line, then "..."


def _stopped_for_nan(study: optuna.Study) -> str:
    """What stopped the PRUNED trials of a multi-objective study, which no pruner judges: hpotool, where a
    metric went NaN or infinite (`diverged_at`, as `objective` records it); "" where it stopped none."""
    from optuna.trial import TrialState

    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    diverged = [t for t in pruned if isinstance(t.user_attrs.get("diverged_at"), dict)]
    if not diverged:
        return ""
    numbers = ", ".join(f"#{t.number}" for t in diverged[:_SHOWN]) + (
        ", ..." if len(diverged) > _SHOWN else ""
    )
    metrics = dict.fromkeys(
        f"{t.user_attrs['diverged_at'].get('metric')} {t.user_attrs['diverged_at'].get('value')}"
        for t in diverged
    )
    verb = "were" if len(diverged) > 1 else "was"
    if len(pruned) > len(diverged):  # the others: PRUNED by the training code (raising optuna.TrialPruned)
        which = f"{len(diverged)} of its {len(pruned)} PRUNED trials ({numbers}) {verb}"
    else:
        which = (
            f"its PRUNED trials ({numbers}) were" if len(diverged) > 1 else f"its PRUNED trial {numbers} was"
        )
    return f"{which} stopped by hpotool because a metric was not finite ({', '.join(metrics)})"


def audit_pruning(
    study: optuna.Study, baseline: optuna.Study | None = None, top_k: int = 5
) -> dict[str, Any]:
    """Both measurements as plain data.

    Raises:
        HpoError: `study` has several objectives (such studies do not prune), or the two studies differ.
    """
    if len(study.directions) > 1:  # said only that: what to look at instead, and why, were left to guess
        stopped = _stopped_for_nan(study)
        if stopped:  # "do not prune" of a study that shows PRUNED trials read as a contradiction
            raise HpoError(
                f"study {study.study_name!r} has {len(study.directions)} objectives, so no pruner judges its "
                f"trials (Optuna's Trial.report takes one objective) and there is none to audit: {stopped}; "
                f"hpotool trials {study_options(study)} lists why each ended"
            )
        raise HpoError(
            f"study {study.study_name!r} has {len(study.directions)} objectives, and multi-objective studies "
            f"do not prune (Optuna's Trial.report takes one objective): there is no pruner to audit; "
            f"hpotool report {study_options(study)} shows each trial's learning curve and the Pareto front"
        )
    return {
        "study_name": study.study_name,  # as every other --json names it
        "prediction_errors": [asdict(e) for e in prediction_errors(study)],
        "missed_winners": asdict(missed_winners(study, baseline, top_k)) if baseline is not None else None,
    }
