"""What a sampler is built with, checked against the search space: a grid sampler's grid (made from the
space, or given) fits in memory and covers the space, fixed parameters' values lie in it, CMA-ES's start
point gives every parameter it samples, and the brute-force sampler's values are finite."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.near_names import did_you_mean
from hpotool.param_values import (
    LOG_FLOAT_VALUES_FIX,
    contains,
    grid_choices,
    grid_size,
    log_points,
    number_slip,
    off_step,
    taken_as,
    value_count,
    values_text,
)
from hpotool.search_space import CategoricalParam, FloatParam, Param, choice_label

GRID_MAX_POINTS = 1_000_000


def _check_grid_size(sizes: Mapping[str, int], where: str, key: str = "sampler") -> None:
    """A grid of at most GRID_MAX_POINTS points: Optuna's grid sampler lists every point in memory as it is
    built, so a range of 10^10 integers ended in a MemoryError (or the machine's memory) before trial 0."""
    total = math.prod(sizes.values())
    if total > GRID_MAX_POINTS:
        counts = " x ".join(f"{path}: {n:,}" for path, n in sizes.items() if n > 1)
        raise HpoError(
            f"{key}: the grid of {where} has {total:,} points ({counts} values), and the grid sampler lists "
            f"every point in memory: give a larger step or fewer choices, for at most {GRID_MAX_POINTS:,} "
            f"points, or use another sampler (tpe, random)"
        )


def _outside(where: str, path: str, value: Any, p: Param, starts: str = "", drop: bool = False) -> HpoError:
    """The refusal of `value`, given at `where` for the searched parameter `path`, outside its range `p`: one
    wording for fixed_params, CMA-ES's x0 and a grid's values, with what is particular to each (`starts`, said
    after the range; `drop`, a grid's value may also be dropped). A value within the range but between two
    of its steps is told so, with the two values on the step to write, as `enqueue:` tells it (it said 12
    "lies outside search_space.model.hidden.0 ([8, 32], step 8)", which holds 8 and 16 on either side)."""
    if slip := number_slip(path, p, value) or off_step(p, value):  # 16.0 for an int: "write 16"
        return HpoError(f"{where}: {slip}")
    widen = f"widen search_space.{path}, or drop the value" if drop else f"or widen search_space.{path}"
    return HpoError(
        f"{where}: {format_choice(value)} lies outside search_space.{path} ({values_text(p)}){starts}; "
        f"give a value within it, {widen}"
    )


def _outside_all(path: str, values: list[Any], p: Param) -> str:
    """Why each of a grid's `values` for `path` is not one of `p`'s, in one line: those off the step (or a number
    in quotes, a whole float for an int) with what to write, then those beyond the range. One at a time, a
    grid of [12, 20, 40] for a range [8, 32], step 8 took three runs to fix."""
    said = [slip for v in values if (slip := number_slip(path, p, v) or off_step(p, v))]
    beyond = [format_choice(v) for v in values if not (number_slip(path, p, v) or off_step(p, v))]
    if beyond:
        lie, give, them = ("lies", "a value", "it") if len(beyond) == 1 else ("lie", "values", "them")
        said.append(
            f"{', '.join(beyond)} {lie} outside search_space.{path} ({values_text(p)}); give {give} within it, "
            f"widen search_space.{path}, or drop {them}"
        )
    return "; ".join(said)


def check_fixed_params(fixed: Mapping[str, Any], space: Mapping[str, Param], key: str = "sampler") -> None:
    """PartialFixedSampler's `fixed_params` name searched parameters, each with a value of its range: a
    misspelt key fixed nothing (the parameter was sampled as before), and a value outside the range was
    trained as it was (a choice not among the choices failed every trial)."""
    where = f"{key}.kwargs.fixed_params"
    refusals: list[HpoError] = []  # every key's in one line: one a run had the user rerun once per key
    for path, value in fixed.items():
        if path not in space:
            hint = did_you_mean(str(path), space) or f" (it searches {', '.join(space)})"
            refusals.append(
                HpoError(
                    f"{where}.{path}: not in search_space{hint}; fixed_params fixes searched parameters only: "
                    f"correct the key or drop it"
                )
            )
        elif not contains(space[path], value):
            refusals.append(_outside(f"{where}.{path}", path, value, space[path]))
    _refuse_all(refusals)


def _refuse_all(refusals: list[HpoError]) -> None:
    """Raise `refusals` (each naming its own key) as one line, if any."""
    if refusals:
        raise HpoError("; ".join(map(str, refusals)))


def cmaes_sampled(space: Mapping[str, Param]) -> list[str]:
    """The parameters of `space` CMA-ES samples from its start point `x0`: each int and float one without a
    `when:` whose range holds more than one value (see `check_cmaes_x0`)."""
    return [
        k for k, p in space.items() if not isinstance(p, CategoricalParam) and not p.when and p.low != p.high
    ]


def check_cmaes_x0(x0: Mapping[str, Any], space: Mapping[str, Param], key: str = "sampler") -> None:
    """CMA-ES's `x0` gives a value for every parameter its model samples: each int and float one without a
    `when:` (categorical and conditional ones it leaves to its independent sampler, and a range of one value,
    which it leaves out: Optuna's `distribution.single()`). One left out passed trial 0 and failed every later
    trial in its sample_relative ('Parameter configuration must contain all distributions'), the study
    stopping after five; one outside its range failed them too ('invalid bounds')."""
    sampled = cmaes_sampled(space)
    missing = [k for k in sampled if k not in x0]
    if missing:
        raise HpoError(
            f"{key}.kwargs.x0: gives no value for {', '.join(missing)}, which CMA-ES samples from its start "
            f"point (every int and float parameter without a when:), so every trial after the first would fail; "
            f"add {missing[0]}: VALUE to x0, or leave x0 out (CMA-ES then starts at the middle of each range)"
        )
    _refuse_all(  # CMA-ES failed every trial after the first: "invalid bounds"
        [
            _outside(f"{key}.kwargs.x0.{path}", path, x0[path], space[path], ", where CMA-ES starts")
            for path in sampled
            if not contains(space[path], x0[path])
        ]
    )


def fixed_labels(fixed: Mapping[str, Any], space: Mapping[str, Param]) -> dict[str, Any]:
    """PartialFixedSampler's `fixed_params` (checked by `check_fixed_params`) as Optuna stores them: each value
    as its parameter spells it (`taken_as`: 16.0 as 16, a section with its defaults spelt out as its choice),
    a list or mapping choice as its label. Given the list itself, Optuna refused every study ("'[16, 8]' not
    in ('[8]', '[16, 8]')")."""
    return {path: choice_label((taken_as(space[path], value) or [value])[0]) for path, value in fixed.items()}


def _check_grid(grid: Any, space: Mapping[str, Param], key: str = "sampler") -> None:
    """A grid given in the kwargs covers the searched parameters, and only with values of their ranges: a
    parameter it lacks failed every trial, and a value outside the range was trained as it was."""
    where = f"{key}.kwargs.search_space"
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise HpoError(
            f"{where}: give each searched parameter a list of values ({{optimizer.lr: [0.001, 0.01]}})"
        )
    refusals: list[HpoError] = []  # every key's in one line, as every value's of a key
    for path, values in grid.items():
        if path not in space:
            refusals.append(
                HpoError(
                    f"{where}.{path}: not in search_space{did_you_mean(str(path), space)}; the grid holds the "
                    f"searched parameters only"
                )
            )
            continue
        outside = [v for v in values if not taken_as(space[path], v)]  # 16.0: the int 16, as in fixed_params
        if len(outside) == 1:
            refusals.append(_outside(f"{where}.{path}", path, outside[0], space[path], drop=True))
        elif outside:
            refusals.append(HpoError(f"{where}.{path}: {_outside_all(path, outside, space[path])}"))
    _refuse_all(refusals)
    for path, values in grid.items():
        _check_grid_once(values, space[path], f"{where}.{path}")
    missing = [path for path in space if path not in grid]
    if missing:
        raise HpoError(
            f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} searched but not in the grid; "
            f"give {'it' if len(missing) == 1 else 'them'} values too, or leave search_space out of the kwargs "
            f"(the grid is then built from search_space)"
        )


def _check_grid_once(values: list[Any], p: Param, where: str) -> None:
    """A value listed once in a grid given in the kwargs: [0.001, 0.01, 0.001] ran each point holding 0.001
    twice, a trial apiece (Optuna's grid lists every combination of the lists as given)."""
    labels = [choice_label((taken_as(p, v) or [v])[0]) for v in values]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            first = values[labels.index(label)]
            also = (
                ""
                if format_choice(first) == format_choice(values[i])
                else f" (as {format_choice(first)} too)"
            )
            raise HpoError(
                f"{where}: {format_choice(values[i])} is listed twice{also}, so the grid would train each of its "
                f"points with it twice; drop one"
            )


def _endless(space: Mapping[str, Param]) -> list[tuple[str, FloatParam]]:
    """The searched parameters with no finite set of values (a float without step, a log-scaled float), all of
    them: naming only the first had the user fix and rerun once per parameter."""
    return [(path, p) for path, p in space.items() if isinstance(p, FloatParam) and p.step is None]


def _endless_fixes(endless: list[tuple[str, FloatParam]]) -> str:
    """Each of `endless` with its fix, as one clause apiece."""
    return "; ".join(
        f"search_space.{path}: a log-scaled float (it takes no step with log: true): search it as a categorical "
        f"of the values to try: type: categorical, choices: {log_points(p)}"
        if p.log
        else f"search_space.{path}: a float without step: give it a step"
        for path, p in endless
    )


def grid_search_space(args: Mapping[str, Any], space: Mapping[str, Param], key: str) -> dict[str, list[Any]]:
    """The grid sampler's `search_space`: the grid of the search space `space` where its kwargs `args` give
    none, else theirs, checked against `space`, with each list choice as its label (as Optuna stores it)."""
    if "search_space" not in args:
        endless = _endless(space)
        if len(endless) > 1:
            raise HpoError(
                f"{key}: the grid sampler needs a finite grid, and {len(endless)} searched parameters have none: "
                f"{_endless_fixes(endless)}"
            )
        sizes = {}
        for path, p in space.items():
            try:
                sizes[path] = grid_size(p)
            except ValueError as exc:
                raise HpoError(
                    f"{key}: the grid sampler needs a finite grid: search_space.{path}: {exc}"
                ) from None
        _check_grid_size(sizes, "search_space", key)
        return {path: grid_choices(p) for path, p in space.items()}
    _check_grid(args["search_space"], space, key)
    _check_grid_size({k: len(v) for k, v in args["search_space"].items()}, f"{key}.kwargs.search_space", key)
    return {  # each value as its parameter spells it (16.0 as 16), a list choice as its label
        path: [choice_label((taken_as(space[path], v) or [v])[0]) for v in values]
        for path, values in args["search_space"].items()
    }


def check_brute_force(space: Mapping[str, Param], key: str) -> None:
    """Every searched parameter has a finite set of values that fits in memory, as the brute-force sampler
    lists them: a continuous float failed trial 0, and a huge range a MemoryError in the first suggest."""
    endless = _endless(space)
    if len(endless) > 1:
        raise HpoError(
            f"{key}: the brute-force sampler needs a finite set of values, and {len(endless)} searched parameters "
            f"have infinitely many: {_endless_fixes(endless)}; or use another sampler"
        )
    for path, p in space.items():
        if isinstance(p, FloatParam) and p.step is None and p.log:
            raise HpoError(
                f"{key}: the brute-force sampler needs a finite set of values: search_space.{path}: a log-scaled "
                f"float has infinitely many, {LOG_FLOAT_VALUES_FIX.format(choices=log_points(p))}; or use "
                f"another sampler"
            )
        if isinstance(p, FloatParam) and p.step is None:
            raise HpoError(
                f"{key}: the brute-force sampler needs a finite set of values: search_space.{path}: a float "
                f"without step has infinitely many; give it a step, or use another sampler"
            )
        if (n := value_count(p) or 0) > GRID_MAX_POINTS:  # a MemoryError in the check's first suggest
            raise HpoError(
                f"{key}: the brute-force sampler lists every value of a parameter in memory: "
                f"search_space.{path} has {n:,}; narrow its range or give it a larger step, for at most "
                f"{GRID_MAX_POINTS:,} values, or use another sampler (tpe, random)"
            )
