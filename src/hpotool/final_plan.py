"""What `train-from-best` will train: the trials it picks (the best, the top K, or the one --trial
names), each with its final RunConfig and the number of seeds, checked before anything trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpotool.config import RunConfig
from hpotool.config_fields import TORCH_SEEDS
from hpotool.errors import HpoError
from hpotool.final_rules import final_config, final_rules
from hpotool.optimize_sections import FinalConfig

if TYPE_CHECKING:
    import optuna

    from hpotool.run_folders import SavedRun


@dataclass
class Candidate:
    """One trial retrained over seeds."""

    trial_number: int
    trial_value: float
    params: dict[str, Any]
    config: RunConfig
    runs: list[SavedRun] = field(default_factory=list)
    epochs_without_flag: int | None = None  # what `config.epochs` would be without --epochs (None: no flag)

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs]


@dataclass
class FinalPlan:
    """What `train_from_best` will train, checked before the first epoch."""

    study_name: str
    metric: str
    direction: str
    rules: FinalConfig
    seeds: int
    candidates: list[Candidate]
    requested_top_k: int
    notes: list[str] = field(default_factory=list)  # the final overrides left out, one line each


def plan_final(
    study: optuna.Study,
    *,
    epochs: int | None = None,
    seeds: int | None = None,
    top_k: int = 1,
    device: str | None = None,
    trial: int | None = None,
) -> FinalPlan:
    """Pick the `top_k` best complete trials that meet the study's constraints (or the one `trial` names,
    of a study of one objective or several) and build each one's final RunConfig (nothing is trained).
    With several objectives the plan ranks and shows the first metric (every metric's mean is in
    summary.json).

    Raises:
        HpoError: a study of several objectives without `trial` (it has no one best trial), or `trial`
            naming no trial, one not complete, or one that does not meet the study's constraints.
    """
    from hpotool.ranking import direction_names, objective_names
    from hpotool.stored_run import not_hpotool_error

    if top_k < 1 or (seeds is not None and seeds < 1) or (epochs is not None and epochs < 1):
        raise HpoError("--top-k, --seeds and --epochs must be at least 1")
    if not isinstance(study.user_attrs.get("run_config"), dict):  # before the multi-objective advice, which
        raise not_hpotool_error(study)  # points to --trial for trials such a study has no run config of
    rules = final_rules(study)
    ranked = _ranked(study, trial)
    candidates, notes = _candidates(study, ranked[:top_k], rules, epochs, device, picked=trial is not None)
    n_seeds = seeds if seeds is not None else rules.seeds or 1
    _check_last_seeds(candidates, n_seeds, "--seeds" if seeds is not None else "final.seeds:")
    return FinalPlan(
        study_name=study.study_name,
        metric=objective_names(study)[0],
        direction=direction_names(study)[0],
        rules=rules,
        seeds=n_seeds,
        candidates=candidates,
        requested_top_k=top_k,
        notes=notes,
    )


def _ranked(study: optuna.Study, trial: int | None) -> list[optuna.trial.FrozenTrial]:
    """The trial `--trial` names, else the study's complete trials that meet its constraints, best first."""
    from hpotool.ranking import no_best_error, ranked_trials

    if trial is not None:
        ranked = [picked_trial(study, trial)]
    elif len(study.directions) > 1:
        raise _several_objectives_error(study)
    else:
        ranked = ranked_trials(study)
    if not ranked:
        raise no_best_error(study)
    return ranked


def _candidates(
    study: optuna.Study,
    trials: list[optuna.trial.FrozenTrial],
    rules: FinalConfig,
    epochs: int | None,
    device: str | None,
    *,
    picked: bool,
) -> tuple[list[Candidate], list[str]]:
    """Each of `trials` with its final RunConfig (`picked`: named by --trial, not the best), and a note for
    each final override left out of one."""
    from hpotool.stored_run import trial_run_config
    from hpotool.trial_table import trial_params

    where = f"study {study.study_name!r}"
    candidates, attrs, notes = [], study.user_attrs, []
    for i, t in enumerate(trials):
        whose = "the best trial's" if i == 0 and not picked else f"trial {t.number}'s"
        cfg, left_out = final_config(
            trial_run_config(study, t), rules, epochs=epochs, device=device, where=where, whose=whose
        )
        notes += left_out
        params = trial_params(attrs, t)
        unflagged = None if epochs is None else rules.epochs or trial_run_config(study, t).epochs
        value = float(t.values[0]) if t.values else 0.0  # the first objective's, as the plan ranks by it
        candidates.append(Candidate(t.number, value, params, cfg, [], unflagged))
    return candidates, notes


def _check_last_seeds(candidates: list[Candidate], n_seeds: int, given: str) -> None:
    """Each candidate's runs take seeds seed, seed+1, ...: the last one torch must take too (`given`: the
    flag or the rule that set the number of seeds)."""
    for c in candidates:
        if (last := c.config.seed + n_seeds - 1) > TORCH_SEEDS[1]:
            raise HpoError(
                f"{given} {n_seeds}: trial {c.trial_number}'s runs would take seeds {c.config.seed} to {last}, past "
                f"{TORCH_SEEDS[1]}, the largest torch.manual_seed takes; give {given} "
                f"{TORCH_SEEDS[1] - c.config.seed + 1} at most"
            )


def _several_objectives_error(study: optuna.Study) -> HpoError:
    """A study of several objectives has a Pareto front, no one best trial: name the front and --trial."""
    from hpotool.ranking import no_best_error
    from hpotool.storage import study_options

    front = sorted(t.number for t in study.best_trials)
    if not front:
        return no_best_error(study)
    them = "it" if len(front) == 1 else "them"
    return HpoError(
        f"study {study.study_name!r} has {len(study.directions)} objectives, so no one best trial to train: "
        f"give --trial N with the trial you pick from its Pareto front (trial{'s' * (len(front) > 1)} "
        f"{', '.join(map(str, front))}; hpotool trials {study_options(study)} lists {them} first)"
    )


def picked_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """The trial `--trial` names, which must be complete and meet the study's constraints.

    Raises:
        HpoError: one line, naming --trial: no such trial, a trial not complete, or one that violates the
            study's constraints.
    """
    from optuna.trial import TrialState

    from hpotool.ranking import is_feasible, no_best_error
    from hpotool.storage import study_options

    trials = study.get_trials(deepcopy=False)
    listed = f"hpotool trials {study_options(study)}"
    found = [t for t in trials if t.number == number]
    if not found:
        numbers = sorted(t.number for t in trials)
        span = (
            "it has no trials"
            if not numbers
            else f"its only trial is {numbers[0]}"
            if len(numbers) == 1
            else f"its trials are numbered {numbers[0]} to {numbers[-1]}"
        )
        raise HpoError(
            f"--trial {number}: study {study.study_name!r} has no trial {number} ({span}); {listed} --state "
            f"complete lists those it can train"
        )
    (t,) = found
    if t.state != TrialState.COMPLETE:
        raise HpoError(
            f"--trial {number}: trial {number} of study {study.study_name!r} is {t.state.name.lower()}, not "
            f"complete: only a complete trial can be trained as it ran; {listed} --state complete lists those "
            f"it can train"
        )
    if not is_feasible(t):
        if not any(is_feasible(c) for c in trials if c.state == TrialState.COMPLETE):
            raise HpoError(f"--trial {number}: {no_best_error(study)}")  # "lists those that do first": none
        broken = ", ".join(name for name, v in t.constraints.items() if v > 0)
        raise HpoError(
            f"--trial {number}: trial {number} of study {study.study_name!r} does not meet the study's "
            f"constraints ({broken}); {listed} lists those that do first"
        )
    return t
