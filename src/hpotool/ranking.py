"""A study's objectives and its trials ranked: the best trial (or every Pareto-optimal one), the complete
trials that meet the constraints best first, and, where there is no best trial yet, why and what to do."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpotool.errors import HpoError
from hpotool.fingerprint import stored_config
from hpotool.formatting import format_choice
from hpotool.storage import study_options


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def objective_names(study: optuna.Study) -> list[str]:
    """The name of each objective: Optuna's metric names, else the hpotool config's metric(s)."""
    if study.metric_names:
        return list(study.metric_names)
    opt = stored_config(study.user_attrs, "optimize_config")
    if not is_multi_objective(study):
        return [str(opt.get("metric", "value"))]
    metrics = opt.get("metrics")  # a study made before hpotool named its objectives in Optuna
    if isinstance(metrics, list) and len(metrics) == len(study.directions):
        return [str(m) for m in metrics]
    return [f"values_{i}" for i in range(len(study.directions))]


def direction_names(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether `trial` meets its study's constraints (every value <= 0; a trial without any does), as
    Optuna's `Study.best_trial` and its constraint-aware samplers judge it."""
    return all(v <= 0 for v in trial.constraints.values())


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials of a single-objective study that meet its constraints, best first."""
    if is_multi_objective(study):
        if not study.best_trials:  # export-best, which the advice below names, would refuse it for this
            raise no_best_error(study)
        raise HpoError(
            f"study {study.study_name!r} has {len(study.directions)} objectives, so its trials have no single "
            f"ranking; train the Pareto-optimal trial you pick with hpotool train-from-best --study-name "
            f"{study.study_name} --trial N (under the study's final: rules), or run hpotool export-best and "
            f"train its best_run_<trial>.yaml with hpotool train --run-config"
        )
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or for a multi-objective study every Pareto-optimal one; never empty."""
    trials = study.best_trials if is_multi_objective(study) else ranked_trials(study)[:1]
    if not trials:
        raise no_best_error(study)
    return sorted(trials, key=lambda t: t.number)


def no_best_error(study: optuna.Study) -> HpoError:
    """Why `study` has no best trial yet: no complete trial, or none that meets its constraints."""
    counts = state_counts(study.get_trials(deepcopy=False))
    shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no trials"
    if counts.get("complete") and not stored_config(study.user_attrs, "optimize_config"):
        return HpoError(  # a plain Optuna study: no optimize config, no hpotool optimize to run again
            f"study {study.study_name!r} has no complete trial that meets its constraints ({shown}); every "
            f"complete trial reported a constraint value above 0{nearest_misses(study)}: loosen the constraints "
            f"it was run with, or run more trials that meet them"
        )
    if counts.get("complete"):
        return HpoError(
            f"study {study.study_name!r} has no complete trial that meets its constraints ({shown})"
            f"{nearest_misses(study)}; loosen the optimize config's constraints or narrow the search space "
            f"towards them, and run hpotool optimize again"
        )
    if not stored_config(study.user_attrs, "optimize_config"):  # no hpotool optimize to run again
        if counts.get("fail") and not counts.get("pruned"):
            return _all_failed_plain_error(study, counts["fail"], shown)
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); it was not created by hpotool "
            f"optimize: run more of its trials (with the Optuna code that made it) until one completes"
        )
    from hpotool.owners import died_here

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    live = [t for t in running if not died_here(t)]
    if live:  # a process runs the study now: another optimize is not what it takes
        which = "its running trial" if len(live) == 1 else f"its {len(live)} running trials"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); {which} may complete one: wait for "
            f"it to finish (hpotool trials {study_options(study)} shows it), or run hpotool optimize until one "
            f"completes"
        )
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if (
        failed
        and not counts.get("pruned")
        and all(t.user_attrs.get("fail_reason") == "interrupted" for t in failed)
    ):
        # Ctrl-C or SIGTERM ended them: nothing to fix, the study resumes where it stopped
        they = "its trial was" if len(failed) == 1 else f"its {len(failed)} trials were"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); {they} interrupted (Ctrl-C or "
            f"SIGTERM): run the same hpotool optimize command again, or hpotool optimize {study_options(study)} "
            f"(its stored configs), to resume it"
        )
    if counts.get("fail") and not counts.get("pruned"):  # the next step is to see why, not to run more alike
        they = "it" if counts["fail"] == 1 else "they"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); hpotool trials "
            f"{study_options(study)} --state fail shows why {they} failed: fix that and run hpotool optimize "
            f"until one completes"
        )
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if pruned:  # more trials alike would end alike: say what stopped them
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); {why_pruned(study, pruned)}"
        )
    return HpoError(
        f"study {study.study_name!r} has no complete trial yet ({shown}); run hpotool optimize until one completes"
    )


def why_pruned(study: optuna.Study, pruned: list[FrozenTrial], *, rule: bool = False) -> str:
    """What stopped the pruned trials of a study none of whose trials completed, and what to change: trials
    that diverged (a NaN or infinite loss) need a smaller learning rate, a pruner that stops every trial
    a looser pruner. "Run hpotool optimize until one completes" would only have run more trials alike.
    `rule`: the pruner named with its kwargs (`threshold: lower=0.9`), the rule to loosen."""
    diverged = [t for t in pruned if t.user_attrs.get("diverged_at") is not None]
    first = diverged[0] if diverged else pruned[0]
    reason = first.user_attrs.get("prune_reason")
    example = f" (trial {first.number}: {reason})" if reason else ""
    pruner = stored_config(study.user_attrs, "optimize_config").get("pruner")
    name = pruner.get("name") if isinstance(pruner, dict) else None
    kwargs = pruner.get("kwargs") if isinstance(pruner, dict) else None
    if rule and name and isinstance(kwargs, dict) and kwargs:
        name += ": " + ", ".join(f"{k}={format_choice(v)}" for k, v in kwargs.items())
    smaller_lr = _divergence_fix(study)
    if len(diverged) == len(pruned):
        which = "its pruned trial" if len(pruned) == 1 else f"its {len(pruned)} pruned trials all"
        return f"{which} diverged{example}: {smaller_lr}, and run hpotool optimize again"
    if not diverged:
        them = "it" if len(pruned) == 1 else "them all"
        return (
            f"its pruner{f' ({name})' if name else ''} pruned {them} before the last epoch{example}: "
            f"loosen the optimize config's pruner (or pruner: {{name: nop}}) and run hpotool optimize again"
        )
    return (
        f"{len(diverged)} of its {len(pruned)} pruned trials diverged{example}: {smaller_lr}, and loosen "
        f"the optimize config's pruner, which pruned the others (hpotool trials {study_options(study)} --state "
        f"pruned shows each one's reason); then run hpotool optimize again"
    )


def _divergence_fix(study: optuna.Study) -> str:
    """What to change where a study's trials all diverged: hpotool's Trainer trains at the run config's
    lr (or the searched one's range) and clips at its grad_clip; a training function of the user's reads
    neither unless it wants to, and its NaN may be a metric of its own left undefined (an R-squared of
    constant targets) beside a finite loss, which no learning rate cures: the advice named optimizer.lr
    "(its range in the search space)" and grad_clip for such a study too, and for an lr the space did not
    search."""
    run = stored_config(study.user_attrs, "run_config")
    trainer = run.get("trainer")
    function = trainer.get("function") if isinstance(trainer, dict) else None
    if isinstance(function, str):
        return (
            f"see why your training function {function} returns or reports that NaN or infinite value (a "
            f"metric undefined on the validation split, or a loss that diverged: train it at a lower learning "
            f"rate) and fix it there"
        )
    space = stored_config(study.user_attrs, "optimize_config").get("search_space")
    # the lr itself, or whole optimizer sections that each set one: another optimizer argument searched
    # (optimizer.weight_decay) left the lr the run config's
    searched = isinstance(space, dict) and any(
        k == "optimizer" or (k.startswith("optimizer.") and k.endswith(".lr")) for k in space
    )
    where = "its range in the search space" if searched else "in the run config"
    return f"lower optimizer.lr ({where}) or set grad_clip in the run config"


def nearest_misses(study: optuna.Study) -> str:
    """How close the complete trials of `study` came to the constraints none of them meets: `; the nearest
    to n_params <= 10 measured n_params 1810 (trial 1)` for each constraint no trial met (`; each constraint
    is met by some trial, but none meets them all` where each is), empty where no trial recorded any. The
    line said only that no trial met them, leaving how far to loosen which one to `hpotool trials`."""
    from hpotool.constraints import parse_constraint
    from hpotool.formatting import format_value

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    keys = list(dict.fromkeys(k for t in complete for k in t.constraints))
    misses = []
    for key in keys:
        recorded = [(v, t) for t in complete if math.isfinite(v := t.constraints.get(key, math.nan))]
        if not recorded:
            continue
        gap, trial = min(recorded, key=lambda vt: (vt[0], vt[1].number))
        if gap <= 0:
            continue
        try:
            limit = parse_constraint(key)
        except ValueError:  # a plain Optuna study's own constraint: its value alone
            misses.append(f"constraint {key!r} is {format_value(gap)} at the lowest (trial {trial.number})")
            continue
        metrics = trial.user_attrs.get("metrics")
        measured = metrics.get(limit.metric) if isinstance(metrics, dict) else None
        if not isinstance(measured, int | float) or isinstance(measured, bool):
            measured = limit.bound + gap if limit.op in ("<=", "<") else limit.bound - gap
        shown = format_value(float(measured))
        misses.append(f"the nearest to {limit} measured {limit.metric} {shown} (trial {trial.number})")
    if misses:
        return "; " + "; ".join(misses)
    return "; each constraint is met by some trial, but none meets them all" if keys else ""


def _all_failed_plain_error(study: optuna.Study, failed: int, shown: str) -> HpoError:
    """A study plain Optuna code ran, whose trials all failed: where to read why. Optuna keeps no reason
    (it logs it), so `hpotool trials` shows one only where the code (or fail-stale) stored a fail_reason."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    them, their = ("it", "its") if failed == 1 else ("them", "their")
    listed = f"hpotool trials {study_options(study)} --state fail"
    if any(t.user_attrs.get("fail_reason") is not None for t in trials):
        why = f"{listed} shows why {'it' if failed == 1 else 'they'} failed"
    else:
        why = (
            f"Optuna keeps no reason a trial failed: the log of the Optuna code that ran {them} says why "
            f'("Trial {trials[0].number} failed with parameters: ... because of the following error: ..."), '
            f"and {listed} lists {their} parameters"
        )
    return HpoError(
        f"study {study.study_name!r} has no complete trial yet ({shown}); it was not created by hpotool "
        f"optimize, and {why}: fix that and run more of its trials (with the Optuna code that made it) until "
        f"one completes"
    )


def state_counts(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """How many of `trials` are in each state ("complete", "pruned", ...), the states in Optuna's order
    (running, complete, pruned, fail, waiting), as the report and the run summary give them (in the order
    of each state's first trial, `studies` gave "fail 3, complete 4" and "complete 4, fail 3")."""
    by_state = Counter(t.state for t in trials)
    return {s.name.lower(): by_state[s] for s in TrialState if by_state[s]}
