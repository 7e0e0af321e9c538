"""A searched parameter's range in the next stage: widened past the edge its best value sits on, or
narrowed around the top trials; and how the stage's change lines and YAML show a range or a value."""

from __future__ import annotations

import itertools
import math
from typing import Any

from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.formatting import format_param
from hpotool.overrides import apply_overrides
from hpotool.param_values import same_value
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param


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


def widen_range(p: Param, edge: str, run: RunConfig, name: str) -> tuple[Param, str]:
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
        return (
            widened,
            f"{name}: best at the {edge} edge; range widened {range_text(p)} -> {range_text(widened)}",
        )
    return (
        p,
        f"{name}: best at the {edge} edge, but no wider range is valid for the RunConfig; kept {range_text(p)}",
    )


def _extend_choices(p: CategoricalParam, edge: str, run: RunConfig, name: str) -> tuple[Param, str]:
    """Add the next value of a numeric progression (32, 64, 128 -> 256) beyond the edge."""
    numbers = sorted(c for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool))
    if len(numbers) < 2:
        return p, f"{name}: best at an edge of {choice_text(p.choices)}; add choices beyond it by hand"
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
        return p, f"{name}: best at an edge of {choice_text(p.choices)}; no valid choice beyond it"
    choices = [*p.choices, new] if edge == "high" else [new, *p.choices]
    widened = CategoricalParam.model_validate(p.model_dump() | {"choices": choices})  # keeps its `when`
    return widened, f"{name}: best at the {edge} edge; added choice {new}"


def choice_text(value: Any) -> str:
    """A categorical choice, or a list of them, as every table and line shows it (`format_param`): a section
    as the label the study stores, its keys sorted (`{lr: 0.001, name: adam}`)."""
    return format_param(value, categorical=True)


def range_text(p: Param) -> str:
    """A range as the change lines show it: `[0.0001, 0.03] log`, `[32, 256] step 32` (an int's step 1 left
    out, as the audit's table leaves it)."""
    if isinstance(p, CategoricalParam):
        return choice_text(p.choices)
    step = f" step {p.step:g}" if p.step is not None and p.step != 1 else ""
    return f"[{p.low:g}, {p.high:g}]" + (" log" if p.log else "") + step


def value_text(p: Param, value: Any) -> str:
    """A fixed value as the change lines show it: a float of a numeric range to 4 significant digits, as
    the ranges read (the configs keep it exact); a categorical choice as it is listed."""
    if isinstance(value, float) and not isinstance(p, CategoricalParam):
        return f"{value:.4g}"
    return choice_text(value)


def narrow_range(p: Param, name: str, values: list[Any]) -> tuple[Param | None, Any, str]:
    """Narrow `p` around the top trials' values. Returns (param or None when fixed, fixed value, change)."""
    if isinstance(p, CategoricalParam):
        kept = [c for c in p.choices if any(same_value(v, c) for v in values)]
        if len(kept) == 1:
            return (
                None,
                kept[0],
                f"{name}: every top trial chose {choice_text(kept[0])}; fixed at {choice_text(kept[0])}",
            )
        if len(kept) == len(p.choices) or not kept:
            return p, None, f"{name}: top trials use every choice; kept {choice_text(p.choices)}"
        return (
            CategoricalParam.model_validate(p.model_dump() | {"choices": kept}),  # keeps its `when`
            None,
            f"{name}: choices {choice_text(p.choices)} -> {choice_text(kept)}",
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
        # The steps counted to 9 digits and the bounds kept inside the range: (0.4 - 0.1) / 0.1 is
        # 3.0000000000000004, whose ceiling took a range's top a step past it ([0.1, 0.4] to [0.2, 0.5]).
        new_low = round(p.low + math.floor(round((lo - p.low) / p.step, 9)) * p.step, 12)
        new_high = round(p.low + math.ceil(round((hi - p.low) / p.step, 9)) * p.step, 12)
        new_low, new_high = max(float(p.low), new_low), min(float(p.high), new_high)
    else:
        new_low = max(float(p.low), _round_out(lo, down=True))
        new_high = min(float(p.high), _round_out(hi, down=False))
    if (new_low, new_high) == (p.low, p.high):
        return p, None, f"{name}: top trials span the whole range; kept {range_text(p)}"
    narrowed = type(p).model_validate(p.model_dump() | {"low": new_low, "high": new_high})
    return narrowed, None, f"{name}: narrowed {range_text(p)} -> {range_text(narrowed)} around the top trials"


def yaml_spec(p: Param) -> dict[str, Any]:
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
