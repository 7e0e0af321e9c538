"""Turn a finished study into the next stage's configs: widen ranges whose best value sits on an edge,
narrow the others around the top trials, fix parameters that barely matter, and warm-start the next
study with the best trials so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpotool.audit import (
    MIN_EVIDENCE,
    AuditReport,
    ParamFinding,
    as_trained,
    audit_study,
    stored_space,
    trials_text,
)
from hpotool.config import OptimizeConfig
from hpotool.errors import HpoError
from hpotool.formatting import format_value
from hpotool.importance import basis
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.ranking import best_trials, is_feasible
from hpotool.search_space import Param, contains, decode_params
from hpotool.sections import SECTIONS
from hpotool.stage_conditions import (
    _drop_dead_conditions,
    _drop_unkept_sections,
    _pin_below_searched_sections,
)
from hpotool.stage_ranges import _narrow, _range, _spec, _value, _widen
from hpotool.stage_settings import _next_seed, _stage_final, _stage_grid, _stage_storage
from hpotool.stored_run import stored_run_config

if TYPE_CHECKING:
    import optuna


ENQUEUE_TOP = 3


@dataclass
class Refinement:
    """The next stage: an OptimizeConfig and a RunConfig (both as validated plain data) and why."""

    study_name: str
    optimize: dict[str, Any]
    run: dict[str, Any]
    changes: list[str] = field(default_factory=list)


def next_study_name(name: str) -> str:
    """`digits` -> `digits_stage2`, `digits_stage2` -> `digits_stage3`."""
    match = re.fullmatch(r"(.*)_stage(\d+)", name)
    return f"{match.group(1)}_stage{int(match.group(2)) + 1}" if match else f"{name}_stage2"


def refine_study(
    study: optuna.Study,
    keep_top: float = 0.25,
    report: AuditReport | None = None,
    storage_url: str | None = None,
) -> Refinement:
    """The next stage of `study`: see the module docstring.

    Args:
        study: a finished single-objective study created by hpotool.
        keep_top: share of the trials the audit ranks (`hpotool.importance.basis`) whose values the
            narrowed ranges cover.
        report: its audit, when already computed.
        storage_url: the URL `study` was read from: the stage's storage where the stored one had its
            password replaced by `***`.
    """
    from optuna.trial import TrialState

    if not 0 < keep_top <= 1:
        raise HpoError(f"--keep-top must be in (0, 1], got {keep_top}")
    report = report or audit_study(study)
    space = stored_space(study)
    run = stored_run_config(study)  # names a component that fails to import, or what else is wrong
    stored_opt = dict(study.user_attrs["optimize_config"])
    direction = study.direction.name.lower()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feasible = [t for t in complete if is_feasible(t)]
    on = basis(study)
    top = on.top(direction, keep_top)  # the trials the audit's importances rest on
    best = best_trials(study)[0]
    by_name: dict[str, ParamFinding] = {f.name: f for f in report.params}
    decoded = {t.number: decode_params(t.params, space) for t in [*top, *feasible]}  # list choices as lists
    new_space: dict[str, Param] = {}
    fixed: dict[str, Any] = {}
    changes: list[str] = []
    at_best = as_trained(run, decode_params(best.params, space)) or run  # where a widened range must train
    for name, p in space.items():
        finding = by_name[name]
        values = [decoded[t.number][name] for t in top if name in t.params]
        if finding.edge is not None:  # before importance, as the audit advises: the best may lie beyond
            new_space[name], change = _widen(p, finding.edge, at_best, name)
            if finding.position is not None and not 0 <= finding.position <= 1:  # the space changed
                side = "below" if finding.edge == "low" else "above"
                change = change.replace(f"best at the {finding.edge} edge", f"best {side} the current range")
            changes.append(change)
        elif finding.negligible and name in best.params:  # set in the best trial (None can be its value)
            fixed[name] = finding.best
            changes.append(
                f"{name}: importance {finding.importance:.2f}; removed from the search, "
                f"fixed at {_value(p, finding.best)}"
            )
        elif on.tied:  # the "top" trials would be the first ones by number: a range around them means nothing
            new_space[name] = p
            changes.append(
                f"{name}: kept {_range(p)}; the {trials_text(len(on.trials))} to rank all have the same value "
                f"({format_value(on.trials[0].value)}), so none is better to narrow around"
            )
        elif report.basis_trials < MIN_EVIDENCE:
            new_space[name] = p
            changes.append(
                f"{name}: kept {_range(p)}; {trials_text(report.basis_trials)} to rank, too few to narrow by "
                f"({MIN_EVIDENCE} needed)"
            )
        elif values:
            narrowed, value, change = _narrow(p, name, values)
            if narrowed is None:
                fixed[name] = value
            else:
                new_space[name] = narrowed
            changes.append(change)
        else:
            new_space[name] = p
            changes.append(f"{name}: no top trial sets it; kept {_range(p)}")
    if not new_space:
        raise HpoError(
            f"study {study.study_name!r}: every parameter would be fixed; nothing is left to search"
        )
    pinned = _pin_below_searched_sections(space, new_space, fixed, changes)
    stage_run = apply_overrides(run, fixed)
    settled = {**leaf_values(stage_run), **{k: v for k, v in fixed.items() if k in SECTIONS}}
    _drop_unkept_sections(new_space)
    for dropped in _drop_dead_conditions(new_space, settled):  # replaces its earlier change
        param = dropped.split(":", 1)[0]
        changes = [c for c in changes if not c.startswith(f"{param}: ")] + [dropped]
    if not new_space:
        raise HpoError(
            f"study {study.study_name!r}: every parameter would be fixed; nothing is left to search"
        )
    enqueue = []
    for t in _best_first(feasible, direction)[:ENQUEUE_TOP]:  # never a trial that broke the constraints
        params = {k: pinned.get(k, v) for k, v in decoded[t.number].items() if k in new_space}
        if params and all(contains(new_space[k], v) for k, v in params.items()) and params not in enqueue:
            enqueue.append(params)
    changes.append(f"enqueued the {len(enqueue)} best trial(s) that fit the new space as a warm start")
    sampler: dict[str, Any] = stored_opt.get("sampler") or {}
    kwargs: dict[str, Any] = sampler.get("kwargs") or {}
    grid = kwargs.get("search_space")
    if isinstance(grid, dict):  # a grid given as values: the stage refuses those outside its ranges
        stage_grid = _stage_grid(grid, new_space)
        stored_opt["sampler"] = {**sampler, "kwargs": {**kwargs, "search_space": stage_grid}}
        if stage_grid != {k: v for k, v in grid.items() if k in new_space}:
            changes.append(
                "sampler.kwargs.search_space: the grid keeps its values inside the new ranges, and each widened "
                "range's new end"
            )
    _next_seed(stored_opt, changes)
    if stored_opt.get("final"):
        stored_opt["final"] = _stage_final(stored_opt["final"], stage_run, new_space, changes)
    name = next_study_name(study.study_name)
    optimize = {
        **stored_opt,
        "study_name": name,
        "storage": _stage_storage(stored_opt.get("storage"), storage_url),
        "search_space": {k: _spec(p) for k, p in new_space.items()},
        "enqueue": enqueue,
    }
    validated = OptimizeConfig.model_validate(optimize)  # what `hpotool optimize` will load
    return Refinement(
        name,
        validated.model_dump(mode="json", exclude_defaults=False),
        stage_run.model_dump(mode="json"),
        changes,
    )


def _best_first(trials: list[Any], direction: str) -> list[Any]:
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(trials, key=lambda t: sign * float(t.value))
