"""The settings a study's OptimizeConfig carries into its next stage, changed where the stage needs: the
sampler's seed one on, a grid, fixed_params and CMA-ES's x0 kept to the new space, the storage's password,
the final overrides."""

from __future__ import annotations

import math
from typing import Any

from hpotool.config import RunConfig
from hpotool.final_rules import component_arg, unfit_overrides
from hpotool.param_values import contains, taken_as
from hpotool.sampler_checks import cmaes_sampled
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param
from hpotool.sections import switchable
from hpotool.stage_ranges import range_text, value_text


def carry_settings(
    opt: dict[str, Any],
    stage_run: RunConfig,
    space: dict[str, Param],
    changes: list[str],
    study_space: dict[str, Param],
) -> None:
    """Make the study's OptimizeConfig `opt` the stage's (in place): a grid, fixed_params and CMA-ES's x0 its
    sampler's kwargs give kept to the stage's `space` (a range a fixed value lies outside reaching it, in
    `space`; `study_space`: the study's own), the sampler seeded one on, the final overrides fitted to the
    stage. Each change is added to `changes`."""
    sampler: dict[str, Any] = opt.get("sampler") or {}
    kwargs = dict(sampler.get("kwargs") or {})  # each fitted in place
    _fit_grid(kwargs, space, changes)
    _fit_fixed_params(kwargs, space, changes, study_space)
    _fit_cmaes_x0(kwargs, space, changes)
    if kwargs != (sampler.get("kwargs") or {}):
        opt["sampler"] = {**sampler, "kwargs": kwargs}
    _next_seed(opt, changes)
    if opt.get("final"):
        opt["final"] = _stage_final(opt["final"], stage_run, space, changes)


def _fit_grid(kwargs: dict[str, Any], space: dict[str, Param], changes: list[str]) -> None:
    """A grid given as values in the sampler's `kwargs` kept to the stage's `space` (in place): the stage
    refuses values outside its ranges. Its change is added to `changes`."""
    grid = kwargs.get("search_space")
    if not isinstance(grid, dict):
        return
    kwargs["search_space"] = stage_grid = _stage_grid(grid, space)
    if stage_grid != {k: v for k, v in grid.items() if k in space}:
        changes.append(
            "sampler.kwargs.search_space: the grid keeps its values inside the new ranges, and each widened "
            "range's new end"
        )


def _fit_fixed_params(
    kwargs: dict[str, Any], space: dict[str, Param], changes: list[str], study_space: dict[str, Param]
) -> None:
    """The sampler's `fixed_params` (PartialFixedSampler's) kept to the parameters the stage still searches (in
    place, in its `kwargs`): one the stage fixes in its run config (every trial drew the sampler's one value,
    so it barely mattered) left a fixed_params key outside the search space, which optimize refused. A range
    narrowed around top trials that ran other values (enqueued ones, or trials before fixed_params was set)
    is made to reach the value fixed, in `space` (before, optimize refused the stage: "0.002 lies outside
    search_space.optimizer.lr"): the user fixed it, and the sampler draws no other value for it. Each change
    is added to `changes`."""
    fixed = kwargs.get("fixed_params")
    if not isinstance(fixed, dict):
        return
    for path, value in fixed.items():
        if path in space and not contains(space[path], value):
            _reach_fixed(path, value, space, changes, study_space)
    gone = [k for k in fixed if k not in space]
    if not gone:
        return
    kwargs["fixed_params"] = {k: v for k, v in fixed.items() if k in space}
    changes.append(
        f"sampler.kwargs.fixed_params: dropped {', '.join(gone)}, no longer searched (the run config fixes "
        f"{'it' if len(gone) == 1 else 'them'})"
    )


def _reach_fixed(
    path: str, value: Any, space: dict[str, Param], changes: list[str], study_space: dict[str, Param]
) -> None:
    """The stage's range of `path` made to reach `value`, which fixed_params fixes and the range left out: a
    range stretched to it, a choice of the study's added back in its place. Its change is added to
    `changes`."""
    p = space[path]
    if isinstance(p, CategoricalParam):
        old = study_space.get(path)
        choice = taken_as(old, value) if isinstance(old, CategoricalParam) else []
        if not isinstance(old, CategoricalParam) or not choice:  # optimize names what is wrong with it
            return
        choices = [c for c in old.choices if c is choice[0] or c in p.choices]  # in the study's order
        reached: Param = CategoricalParam.model_validate(p.model_dump() | {"choices": choices})
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ends = {"low": min(p.low, value), "high": max(p.high, value)}
        reached = type(p).model_validate(p.model_dump() | ends)
    else:
        return
    if not contains(reached, value):  # off the step grid: optimize names it
        return
    space[path] = reached
    changes.append(
        f"{path}: {range_text(p)} -> {range_text(reached)}, to reach {value_text(p, value)}, which "
        f"sampler.kwargs.fixed_params fixes (the sampler draws no other value for it)"
    )


def _fit_cmaes_x0(kwargs: dict[str, Any], space: dict[str, Param], changes: list[str]) -> None:
    """CMA-ES's start point `x0` kept to the stage (in place, in the sampler's `kwargs`): a value outside a
    narrowed range moved to its nearer end, where the stage refused it (before: CMA-ES failed every trial after
    the first, 'invalid bounds'); one of a parameter no longer searched dropped. Its change is added to
    `changes`."""
    x0 = kwargs.get("x0")
    if not isinstance(x0, dict):
        return
    kept: dict[str, Any] = {}
    said: list[str] = []
    for path, value in x0.items():
        p = space.get(path)
        if p is None:
            said.append(f"dropped {path}, no longer searched")
        elif isinstance(p, CategoricalParam) or contains(p, value) or not isinstance(value, int | float):
            kept[path] = value
        else:
            kept[path] = p.low if value < p.low else p.high
            said.append(f"{path} {value:g} -> {kept[path]:g}, the nearer end of its new range")
    for path in cmaes_sampled(space):  # searched under a `when:` the stage dropped, or a range of one value
        if path not in kept:  # widened: optimize refused the stage ("x0: gives no value for ...")
            numeric = space[path]
            assert not isinstance(numeric, CategoricalParam)  # cmaes_sampled: int and float ones only
            kept[path] = _middle(numeric)
            said.append(f"added {path}: {kept[path]:g}, the middle of its range, which CMA-ES now samples")
    if said:
        kwargs["x0"] = kept
        changes.append(f"sampler.kwargs.x0 (CMA-ES's start point): {'; '.join(said)}")


def _middle(p: IntParam | FloatParam) -> int | float:
    """The middle of `p`'s range (on its log scale with log: true) on its step grid: where CMA-ES starts a
    parameter its x0 gives no value for."""
    middle = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
    if p.step is not None:
        middle = min(p.low + round((middle - p.low) / p.step) * p.step, p.high)
    return (
        round(middle) if isinstance(p, IntParam) else float(f"{middle:.12g}")
    )  # 0.3, not 0.30000000000000004


def _next_seed(opt: dict[str, Any], changes: list[str]) -> None:
    """Seed the stage's sampler one past the study's (in place, in `opt`): with the study's own seed, a sampler
    draws the points it drew there again wherever a range is kept (a random sampler, TPE's startup trials),
    so the stage would re-run the first stage's trials. Each change is added to `changes`."""
    for where, holder in (
        ("seed", opt),
        ("sampler.kwargs.seed", (opt.get("sampler") or {}).get("kwargs") or {}),
    ):
        seed = holder.get("seed")
        if isinstance(seed, float) and seed.is_integer():  # 1e3, read as 1000.0, seeds the sampler as 1000
            seed = int(seed)
        if isinstance(seed, int) and not isinstance(seed, bool):
            new = (seed + 1) % 2**32
            if holder is not opt:
                opt["sampler"] = {**opt["sampler"], "kwargs": {**holder, "seed": new}}
            else:
                opt["seed"] = new
            changes.append(f"{where}: {seed} -> {new}, so the sampler does not draw the study's trials again")


def stage_storage(stored: str | None, read_from: str | None) -> str | None:
    """The study's storage for its next stage: a study stores its URL with the password as `***`
    (`fingerprint.stored_optimize_config`), so the URL refine read it from (or PGPASSWORD) reaches it."""
    if stored and read_from and ":***@" in stored:
        return read_from
    return stored


def _stage_final(
    final: dict[str, Any], stage_run: RunConfig, space: dict[str, Param], changes: list[str]
) -> dict[str, Any]:
    """The study's `final:` rules without the overrides of a component argument that no component the stage
    may pick takes (`optimizer.momentum` where it fixes adam), which `optimize` would refuse; each removal
    is added to `changes`."""
    kept = dict(final.get("overrides") or {})
    searched = switchable(space)
    for path in unfit_overrides(stage_run, space, kept):
        if (part := component_arg(path)) is None:
            continue
        section, arg = part
        del kept[path]
        why = (
            f"none of the stage's {section} choices takes {arg}"
            if section in searched
            else f"the stage fixes {section} at {getattr(stage_run, section).name}, which takes no {arg}"
        )
        changes.append(f"final.overrides.{path}: removed; {why}")
    return {**final, "overrides": kept}


def _stage_grid(grid: dict[str, Any], space: dict[str, Param]) -> dict[str, list[Any]]:
    """The grid of the stage's searched parameters: the values of `grid` inside their new ranges, plus the
    new end of a widened range (an end beyond every old value), or the range's ends when none is left."""
    out: dict[str, list[Any]] = {}
    for name, p in space.items():
        old = list(grid.get(name, []))
        values = [v for v in old if contains(p, v)]
        if isinstance(p, CategoricalParam):
            out[name] = values or list(p.choices)
            continue
        numbers = [v for v in old if isinstance(v, int | float) and not isinstance(v, bool)]
        for end in (p.low, p.high):
            if end not in values and (not numbers or end < min(numbers) or end > max(numbers)):
                values.append(end)
        out[name] = sorted(values)
    return out
