"""Turn a finished study into the next stage's configs: widen ranges whose best value sits on an edge,
narrow the others around the top trials, fix parameters that barely matter, and warm-start the next
study with the best trials so far.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from hpotool.audit import (
    MIN_EVIDENCE,
    AuditReport,
    as_trained,
    audit_study,
    trials_text,
)
from hpotool.conditions import holds
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.errors import HpoError
from hpotool.final import component_arg, unfit_overrides
from hpotool.formatting import format_param, format_value
from hpotool.importance import basis
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.param_findings import ParamFinding
from hpotool.ranking import best_trials, is_feasible
from hpotool.search_space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    contains,
    decode_params,
    same_value,
)
from hpotool.sections import SECTIONS, switchable
from hpotool.stored_run import stored_run_config
from hpotool.stored_space import stored_space

if TYPE_CHECKING:
    import optuna

ENQUEUE_TOP = 3
_PARAM: TypeAdapter[Param] = TypeAdapter(Param)


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


def _round_out(value: float, down: bool) -> float:
    """Round to 4 significant digits, away from the inside of the range, so kept values stay inside."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - 3
    digits = (math.floor if down else math.ceil)(value / 10**exponent)
    # round(): the float nearest the 4-digit decimal, which the YAML then writes as such (0.01198, not the
    # 0.011980000000000001 that 1198 * 1e-05 gives)
    return float(round(digits * 10**exponent, -exponent))


def _valid(run: RunConfig, name: str, value: Any) -> bool:
    try:
        apply_overrides(run, {name: value})
    except HpoError:
        return False
    return True


def _widen(p: Param, edge: str, run: RunConfig, name: str) -> tuple[Param, str]:
    """Extend `p` past the edge its best value sits on, as far as the RunConfig accepts."""
    if isinstance(p, CategoricalParam):
        return _extend_choices(p, edge, run, name)
    low, high = float(p.low), float(p.high)
    for shrink in (1.0, 0.5, 0.25, 0.125):
        if p.log:
            factor = (10.0 if isinstance(p, FloatParam) else 4.0) ** shrink
            bound = high * factor if edge == "high" else low / factor
        else:
            ext = (high - low) / 2 * shrink or 1.0
            bound = high + ext if edge == "high" else low - ext
            if edge == "low" and low >= 0 > bound:
                bound = 0.0  # a parameter that was never negative stays so (weight decay, dropout)
            if edge == "high" and low >= 0 and high <= 1 <= bound:
                bound = (high + 1) / 2  # a share stays below 1 (dropout, fractions)
        if isinstance(p, IntParam):
            steps = math.ceil(abs(bound - (high if edge == "high" else low)) / p.step) or 1
            bound = high + steps * p.step if edge == "high" else low - steps * p.step
            least = 1 if p.log or low >= 1 else -math.inf  # a count (width, layers, batch) stays >= 1
            if bound < least:  # as far down as the step allows
                bound = low - math.floor((low - least) / p.step) * p.step
            bound = int(bound)
        elif p.step is not None:
            steps = math.ceil(abs(bound - (high if edge == "high" else low)) / p.step) or 1
            bound = round(high + steps * p.step if edge == "high" else low - steps * p.step, 12)
            if edge == "low" and low >= 0 > bound:  # never negative: the lowest step at 0 or above
                bound = round(low - math.floor(round(low / p.step, 9)) * p.step, 12)
            if edge == "high" and low >= 0 and high < 1 <= bound:  # a share: the highest step below 1
                bound = round(high + (math.ceil(round((1 - high) / p.step, 9)) - 1) * p.step, 12)
        else:
            bound = _round_out(bound, down=edge == "low")
        if bound in (low, high) or not _valid(run, name, bound):
            continue
        new_low, new_high = (low, bound) if edge == "high" else (bound, high)
        spec = p.model_dump() | {"low": new_low, "high": new_high}
        widened = type(p).model_validate(spec)
        return widened, f"{name}: best at the {edge} edge; range widened {_range(p)} -> {_range(widened)}"
    return (
        p,
        f"{name}: best at the {edge} edge, but no wider range is valid for the RunConfig; kept {_range(p)}",
    )


def _extend_choices(p: CategoricalParam, edge: str, run: RunConfig, name: str) -> tuple[Param, str]:
    """Add the next value of a numeric progression (32, 64, 128 -> 256) beyond the edge."""
    numbers = sorted(c for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool))
    if len(numbers) < 2:
        return p, f"{name}: best at an edge of {_choice(p.choices)}; add choices beyond it by hand"
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(numbers)} if numbers[0] > 0 else set()
    if len(ratios) == 1:  # geometric: 32, 64, 128
        (ratio,) = ratios
        new = numbers[-1] * ratio if edge == "high" else numbers[0] / ratio
    else:  # arithmetic otherwise
        gap = numbers[-1] - numbers[-2] if edge == "high" else numbers[1] - numbers[0]
        new = numbers[-1] + gap if edge == "high" else numbers[0] - gap
    if all(isinstance(c, int) for c in numbers):
        new = round(new)
        if numbers[0] >= 1 > new:  # a count (width, layers, batch) stays >= 1, as a range's does
            new = 1
    else:  # the decimal the choices spell: 0.3 + 0.1 is 0.4, not 0.39999999999999997
        new = float(f"{new:.10g}")
        if numbers[0] >= 0 > new:  # never negative (weight decay, dropout), as a range's low end stays
            new = 0.0
        if numbers[0] >= 0 and numbers[-1] < 1 <= new:  # a share stays below 1 (dropout, fractions)
            new = float(f"{(numbers[-1] + 1) / 2:.10g}")
    if new in p.choices or not _valid(run, name, new):
        return p, f"{name}: best at an edge of {_choice(p.choices)}; no valid choice beyond it"
    choices = [*p.choices, new] if edge == "high" else [new, *p.choices]
    widened = CategoricalParam.model_validate(p.model_dump() | {"choices": choices})  # keeps its `when`
    return widened, f"{name}: best at the {edge} edge; added choice {new}"


def _choice(value: Any) -> str:
    """A categorical choice, or a list of them, as every table and line shows it (`format_param`): a section
    as the label the study stores, its keys sorted (`{lr: 0.001, name: adam}`)."""
    return format_param(value, categorical=True)


def _range(p: Param) -> str:
    """A range as the change lines show it: `[0.0001, 0.03] log`, `[32, 256] step 32` (an int's step 1 left
    out, as the audit's table leaves it)."""
    if isinstance(p, CategoricalParam):
        return _choice(p.choices)
    step = f" step {p.step:g}" if p.step is not None and p.step != 1 else ""
    return f"[{p.low:g}, {p.high:g}]" + (" log" if p.log else "") + step


def _value(p: Param, value: Any) -> str:
    """A fixed value as the change lines show it: a float of a numeric range to 4 significant digits, as
    the ranges read (the configs keep it exact); a categorical choice as it is listed."""
    if isinstance(value, float) and not isinstance(p, CategoricalParam):
        return f"{value:.4g}"
    return _choice(value)


def _narrow(p: Param, name: str, values: list[Any]) -> tuple[Param | None, Any, str]:
    """Narrow `p` around the top trials' values. Returns (param or None when fixed, fixed value, change)."""
    if isinstance(p, CategoricalParam):
        kept = [c for c in p.choices if any(same_value(v, c) for v in values)]
        if len(kept) == 1:
            return (
                None,
                kept[0],
                f"{name}: every top trial chose {_choice(kept[0])}; fixed at {_choice(kept[0])}",
            )
        if len(kept) == len(p.choices) or not kept:
            return p, None, f"{name}: top trials use every choice; kept {_choice(p.choices)}"
        return (
            CategoricalParam.model_validate(p.model_dump() | {"choices": kept}),  # keeps its `when`
            None,
            f"{name}: choices {_choice(p.choices)} -> {_choice(kept)}",
        )
    to = (lambda x: math.log(x)) if p.log else (lambda x: float(x))
    back = (lambda x: math.exp(x)) if p.log else (lambda x: x)
    lo_s, hi_s = to(p.low), to(p.high)
    pts = [to(v) for v in values]
    pad = 0.1 * ((max(pts) - min(pts)) or (hi_s - lo_s))
    lo, hi = back(max(lo_s, min(pts) - pad)), back(min(hi_s, max(pts) + pad))
    new_low: float
    new_high: float
    if isinstance(p, IntParam):
        new_low = p.low + math.floor((lo - p.low) / p.step) * p.step
        new_high = p.low + math.ceil((hi - p.low) / p.step) * p.step
        new_low, new_high = max(p.low, int(new_low)), min(p.high, int(new_high))
        if p.log:
            new_low = max(new_low, 1)
    elif p.step is not None:
        new_low = round(p.low + math.floor((lo - p.low) / p.step) * p.step, 12)
        new_high = round(p.low + math.ceil((hi - p.low) / p.step) * p.step, 12)
    else:
        new_low = max(float(p.low), _round_out(lo, down=True))
        new_high = min(float(p.high), _round_out(hi, down=False))
    if (new_low, new_high) == (p.low, p.high):
        return p, None, f"{name}: top trials span the whole range; kept {_range(p)}"
    narrowed = type(p).model_validate(p.model_dump() | {"low": new_low, "high": new_high})
    return narrowed, None, f"{name}: narrowed {_range(p)} -> {_range(narrowed)} around the top trials"


def _spec(p: Param) -> dict[str, Any]:
    """A parameter as it reads in YAML: only what differs from the defaults, its condition last."""
    data = p.model_dump(mode="json")
    when = data.pop("when", None)
    if isinstance(p, IntParam) and p.step == 1:
        data.pop("step")
    if isinstance(p, FloatParam) and p.step is None:
        data.pop("step")
    if not isinstance(p, CategoricalParam) and not p.log:
        data.pop("log")
    return data if when is None else {**data, "when": when}


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


def _stage_storage(stored: str | None, read_from: str | None) -> str | None:
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


def _pin_below_searched_sections(
    space: dict[str, Param], new_space: dict[str, Param], fixed: dict[str, Any], changes: list[str]
) -> dict[str, Any]:
    """Keep each fixed key below a section the stage still searches whole (`optimizer.lr` beside `optimizer`)
    in `new_space` as its one choice, where `space` had it: in the stage's run config, every trial's choice
    would replace the section, and the fixed value with it. Updates `fixed`, `new_space` and the key's change
    in `changes`; returns the keys pinned so, with their values."""
    pinned = {k: fixed.pop(k) for k in list(fixed) if "." in k and k.partition(".")[0] in new_space}
    for name, value in pinned.items():
        new_space[name] = CategoricalParam(type="categorical", choices=[value], when=space[name].when)
        i = next(i for i, c in enumerate(changes) if c.startswith(f"{name}: "))
        changes[i] = changes[i].replace("removed from the search, fixed at", "fixed at") + (
            f", as its one choice: {name.partition('.')[0]} is searched whole, and each choice replaces the "
            f"section in the run config"
        )
    in_order = {k: new_space[k] for k in space if k in new_space}
    new_space.clear()
    new_space.update(in_order)
    return pinned


def _drop_unkept_sections(space: dict[str, Param]) -> None:
    """In `space` (in place), drop from each condition on a parameter the stage still searches the values it
    no longer takes: `in: [{name: sgd}, {name: rmsprop}]` on a section searched whole where it keeps sgd and
    adam lists sgd alone, `in: [2, 3]` on `model.layers` narrowed to [1, 2] lists 2, and `ne: rmsprop` always
    holds, so goes (a condition naming a value its parameter never takes is refused before trial 0). An `in`
    left with none stays, for `_drop_dead_conditions` to remove its parameter."""
    for name, p in list(space.items()):
        when = dict(p.when or {})
        for on, condition in p.when.items() if p.when else []:
            ref = space.get(on)
            if ref is None or not isinstance(condition, dict):
                continue
            ((test, operand),) = condition.items()
            if test == "in" and any(contains(ref, v) for v in operand):
                when[on] = {"in": [v for v in operand if contains(ref, v)]}
            elif test == "ne" and not contains(ref, operand):
                del when[on]
        if when != (p.when or {}):
            space[name] = type(p).model_validate(p.model_dump() | {"when": when or None})


def _drop_dead_conditions(space: dict[str, Param], base: dict[str, Any]) -> list[str]:
    """Remove from `space` (in place, in order) each parameter whose `when` reads a value the stage no
    longer searches and that value fails it: its condition can never hold, so it would never be suggested
    (`optimizer.momentum` when `optimizer.name: sgd`, with `optimizer.name` fixed at adam), or a searched
    categorical none of whose choices meets it (narrowed to adam and rmsprop). A condition on a
    whole section the stage fixes, which holds, is dropped: the stage's run config holds the section, which a
    condition cannot read (only a searched section)."""
    changes = []
    for name, p in list(space.items()):
        fixed_paths = {path: cond for path, cond in (p.when or {}).items() if path not in space}
        failed = [path for path, cond in fixed_paths.items() if not holds(cond, base.get(path))]
        unmet = {  # a condition on a searched categorical none of whose (narrowed) choices meets it
            path: q.choices
            for path, cond in (p.when or {}).items()
            if isinstance(q := space.get(path), CategoricalParam)
            and not any(holds(cond, c) for c in q.choices)
        }
        if failed or unmet:
            del space[name]
            reasons = ", ".join(
                [f"{path} is fixed at {_choice(base.get(path))}" for path in failed]
                + [f"{path} is searched only over {', '.join(map(_choice, c))}" for path, c in unmet.items()]
            )
            changes.append(f"{name}: its condition can no longer hold ({reasons}); removed from the search")
        elif SECTIONS.keys() & fixed_paths:
            when = {path: cond for path, cond in (p.when or {}).items() if path not in SECTIONS} or None
            space[name] = type(p).model_validate(p.model_dump() | {"when": when})
    return changes


def _best_first(trials: list[Any], direction: str) -> list[Any]:
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(trials, key=lambda t: sign * float(t.value))


def stage_paths(out: Path) -> tuple[Path, Path]:
    """The files `refine --out OUT` writes: OUT (the OptimizeConfig) and `<OUT stem>.run.yaml` beside it
    (`.run.yml` for an OUT ending in `.yml`)."""
    suffix = ".yml" if out.suffix.lower() == ".yml" else ".yaml"
    return out, out.with_name(f"{out.stem}.run{suffix}")


def check_stage_paths(out: Path, force: bool = False) -> None:
    """Refuse to replace existing stage files (a next-stage config may have been edited by hand).

    Raises:
        HpoError: when OUT or its .run.yaml sibling exists and `force` is false, naming the file(s); when
            either is a folder, or no file at all (`--out /dev/null`: its .run.yaml would go into /dev); when
            OUT's suffix names another format than YAML (`--out s.json` got YAML and a partner s.run.yaml).
    """
    if out.suffix and out.suffix.lower() not in (".yaml", ".yml"):  # as report refuses HTML in a .json
        raise HpoError(
            f"--out {out}: refine writes YAML (the stage's config and its .run.yaml beside it), not "
            f"{out.suffix}; give a .yaml or .yml file, e.g. --out {quote(str(out.with_suffix('.yaml')))}"
        )
    from hpotool.atomic import abbreviated, long_name

    too_long = next((t for t in map(long_name, stage_paths(out)) if t is not None), None)
    if too_long is not None:  # every stat of it raised OSError: File name too long
        raise HpoError(f"--out {abbreviated(str(out), 40)}: {too_long}; give a shorter --out")
    special = next((p for p in stage_paths(out) if p.exists() and not p.is_dir() and not p.is_file()), None)
    if special is not None:  # /dev/null: written into, and its .run.yaml made beside it, in /dev
        from hpotool.atomic import kind_of

        raise HpoError(
            f"--out: {special} is {kind_of(special)}, not a file; refine writes two files, the stage's "
            f"config and its .run.yaml beside it: give a file, e.g. --out stage2.yaml"
        )
    folder = next((p for p in stage_paths(out) if p.is_dir()), None)
    if folder is not None:  # no --force replaces a folder; found before the study is read, not when writing
        raise HpoError(
            f"--out: {folder} is a folder; give a file, e.g. --out {quote(str(out / 'stage2.yaml'))}"
        )
    existing = [p for p in stage_paths(out) if p.exists() and not p.is_dir()]
    if existing and not force:
        names = " and ".join(str(p) for p in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise HpoError(f"--out: {names} already {verb}; choose another --out, or pass --force to overwrite")


def write_refinement(ref: Refinement, out: Path, source_study: str) -> tuple[Path, Path]:
    """Write the stage's OptimizeConfig to `out` and its RunConfig beside it (`<out stem>.run.yaml`),
    replacing them if they exist (`hpotool refine` calls `check_stage_paths` first), as one set: when either
    cannot be written, neither is replaced."""
    from hpotool.atomic import write_texts
    from hpotool.yamlfile import FlowMapping, dump_yaml

    out, run_path = stage_paths(out)
    optimize = dict(ref.optimize)
    # The data holds every field (`when: null, step: null, log: false`); the file only what differs from them
    optimize["search_space"] = {
        k: FlowMapping(_spec(_PARAM.validate_python(v))) for k, v in optimize["search_space"].items()
    }
    header = [
        f"# Stage refined from study {source_study!r} by `hpotool refine`.",
        f"# Run it: hpotool optimize --run-config {quote(str(run_path))} --optimize-config {quote(str(out))}",
        "# Changes:",
        *[f"#   - {c}" for c in ref.changes],
    ]
    run_header = f"# RunConfig for study {ref.study_name!r}: the base config of {source_study!r} with the fixed parameters applied.\n"
    write_texts(
        {out: "\n".join(header) + "\n" + dump_yaml(optimize), run_path: run_header + dump_yaml(ref.run)}
    )
    return out, run_path
