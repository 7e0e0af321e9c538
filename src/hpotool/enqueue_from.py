"""`hpotool optimize --enqueue-from STUDY`: a plan with another study's best points queued first, each
carried over as far as this search space takes it (`warm_start.carried_params`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.plan import StudyPlan
from hpotool.sampler_and_pruner import unset_by
from hpotool.sections import section_values
from hpotool.space_effects import auto_task
from hpotool.warm_start import carried_params, left_out_note


def with_warm_start(plan: StudyPlan, source: optuna.Study, top: int) -> StudyPlan:
    """`plan` with the `top` best complete trials of `source` that meet its constraints enqueued (params
    in this space, within it)."""
    from hpotool.ranking import ranked_trials

    if len(source.directions) > 1:
        raise HpoError(_several_objectives(source))
    ranked = ranked_trials(source)
    if not ranked:
        raise HpoError(_no_complete_trial(source))
    picks, inside, left_out, read = _picked_points(plan, source, ranked, top)
    if len(picks) == len(plan.opt.enqueue):
        raise HpoError(
            f"--enqueue-from: no complete trial of {source.study_name!r} has parameters inside this space: "
            f"{_why_none_inside(plan, ranked, inside)}"
        )
    opt = validate_config(OptimizeConfig, {**plan.opt.model_dump(), "enqueue": picks}, "--enqueue-from")
    note = left_out_note(source.study_name, left_out, read)
    notes = (*plan.notes, note) if note else plan.notes
    return replace(plan, opt=opt, config_enqueue=len(plan.opt.enqueue), notes=notes)


def _several_objectives(source: optuna.Study) -> str:
    """The refusal of a study of several objectives: it has a Pareto front, no one ranking to take the top
    of; the trials picked from it go in the enqueue list."""
    from hpotool.storage import study_options

    return (
        f"--enqueue-from: {source.study_name!r} has {len(source.directions)} objectives, so no one ranking to "
        "take its best trials from; put the Pareto-optimal trials you pick in the optimize config's enqueue: "
        f"list (hpotool trials {study_options(source)} lists the front first, with their parameters)"
    )


def _no_complete_trial(source: optuna.Study) -> str:
    """The refusal of a study with no complete trial to start from (or none that meets its constraints),
    with its trials counted by state."""
    from hpotool.ranking import state_counts

    counts = state_counts(source.get_trials(deepcopy=False))
    shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no trials"
    what = "meets its constraints" if counts.get("complete") else "to start from"
    return f"--enqueue-from: {source.study_name!r} has no complete trial that {what} ({shown})"


def _picked_points(
    plan: StudyPlan, source: optuna.Study, ranked: list[FrozenTrial], top: int
) -> tuple[list[dict[str, Any]], int, dict[str, list[str]], int]:
    """The config's enqueue list with the points of `source`'s best trials (`ranked`) added until `top` are,
    each as far as this space takes it; how many trials gave a point inside the space; why each parameter
    was left out, per trial; and how many trials were read."""
    from hpotool.trial_table import trial_params

    space = plan.opt.search_space
    grid, fixed = isinstance(plan.sampler, optuna.samplers.GridSampler), leaf_values(plan.run)
    picks: list[dict[str, Any]] = list(plan.opt.enqueue)
    inside, attrs, read = 0, source.user_attrs, 0
    left_out: dict[str, list[str]] = {}
    for t in ranked:
        if len(picks) - len(plan.opt.enqueue) >= top:
            break
        ran = trial_params(attrs, t)  # a list choice as the list, by the space the trial ran under
        params, missed = carried_params(
            ran,
            space,
            partial(_trained, source, t),
            partial(_values, plan.run),
            auto_task(plan.run, plan.opt, plan.data),
        )
        read += 1
        for name, reason in missed.items():
            left_out.setdefault(name, []).append(reason)
        if grid and unset_by(params, plan.opt, fixed):  # the grid sampler would fail its trial
            params = {}
        inside += bool(params)
        if params and params not in picks:
            picks.append(params)
    return picks, inside, left_out, read


def _why_none_inside(plan: StudyPlan, ranked: list[FrozenTrial], inside: int) -> str:
    """Why none of the best trials gave a new point inside this space (`inside`: how many gave one)."""
    space = plan.opt.search_space
    theirs = list(dict.fromkeys(k for t in ranked for k in t.params))
    shared = [k for k in theirs if k in space]
    why = (
        f"its values of {', '.join(shared)} lie outside this space's ranges"
        if shared
        else f"it searched {', '.join(theirs) or 'no parameters'}, this space searches {', '.join(space)}"
    )
    if inside:
        why = "those inside it are in the optimize config's enqueue list already"
    elif isinstance(plan.sampler, optuna.samplers.GridSampler) and shared:
        lacking = [k for k in space if k not in shared]
        why = (
            f"the grid sampler runs only sets that give every searched parameter, and its trials have no "
            f"{', '.join(lacking)}"
        )
    return why


def _trained(source: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """Every path of the run config `trial` of `source` trained, and each section whole ({} for a study
    hpotool did not create)."""
    from hpotool.stored_run import trial_run_config

    try:
        return _paths(trial_run_config(source, trial, check_components=False))
    except HpoError:
        return {}


def _values(run: RunConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every path of the run config this study trains with `params`, and each section whole ({} where they
    do not give a valid config: the queued trial fails with the reason)."""
    try:
        return _paths(apply_overrides(run, params, check_components=False))
    except HpoError:
        return {}


def _paths(config: RunConfig) -> dict[str, Any]:
    """Every path of `config` (`leaf_values`), and each section whole."""
    return {**leaf_values(config), **section_values(config)}
