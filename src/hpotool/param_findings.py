"""What the audit finds for one parameter: where the best trial's value sits in its range (`position`, an
edge), how the top trials spread over it, and what to do about it; a range as the config spells it
(`bounds_text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpotool.formatting import format_choice, format_param
from hpotool.param_values import same_value
from hpotool.search_space import CategoricalParam, IntParam, Param

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from hpotool.config import RunConfig

EDGE = 0.05  # a best value in the outer 5% of its range sits on an edge
WHOLE_RANGE = 0.9  # top trials spread over 90% of the range: the range does not discriminate


@dataclass(frozen=True)
class ParamFinding:
    """What the audit found for one parameter."""

    name: str
    importance: float | None
    best: Any
    bounds: str
    position: float | None  # 0 = low end, 1 = high end (log space for log ranges); None for choices
    edge: str | None  # "low", "high", or None
    negligible: bool
    top_span: float | None  # share of the range the top trials cover
    advice: str
    kind: str  # the search space's type: "float", "int" or "categorical"
    set_in_best: bool = True  # False: the best trial did not set it (a conditional parameter); `best` is None


def position(p: Param, value: Any) -> float | None:
    """Where `value` sits in the range of `p`: 0 at `low`, 1 at `high` (in log space when `log`)."""
    if isinstance(p, CategoricalParam):
        numeric = [c for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool)]
        if len(numeric) != len(p.choices) or len(numeric) < 2 or value not in numeric:
            return None
        low, high = min(numeric), max(numeric)
        return (value - low) / (high - low) if high > low else None
    low, high, v = float(p.low), float(p.high), float(value)
    if high == low:
        return None
    if p.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    return (v - low) / (high - low)


def _edge(p: Param, pos: float | None, value: Any) -> str | None:
    if pos is None:
        return None
    if isinstance(p, IntParam | CategoricalParam):  # discrete: only the end values themselves
        return "low" if pos == 0 else "high" if pos == 1 else None
    return "low" if pos <= EDGE else "high" if pos >= 1 - EDGE else None


def _can_widen(p: Param, edge: str, run: RunConfig | None, name: str) -> bool:
    """Whether `hpotool refine` finds a wider range past `edge` that the run config accepts (unknown
    without a run config: then it may)."""
    if run is None:
        return True
    from hpotool.stage_ranges import widen_range

    return widen_range(p, edge, run, name)[0] != p


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _fmt_value(p: Param, v: Any) -> str:
    """A value of `p`: a choice as the YAML spells it (5.0, null), a number to three digits."""
    return format_param(v, True) if isinstance(p, CategoricalParam) else _fmt(v)


def bounds_text(p: Param) -> str:
    """A range as the config spells it: `[0.001, 0.1, log]`, `[0, 0.5, step 0.05]`, `{relu, gelu}` (an int
    range's default step 1 left out)."""
    if isinstance(p, CategoricalParam):
        return "{" + ", ".join(map(format_choice, p.choices)) + "}"
    scale = ", log" if p.log else ""
    step = f", step {p.step:g}" if p.step is not None and p.step != 1 else ""
    return f"[{_fmt(p.low)}, {_fmt(p.high)}{scale}{step}]"


def _top_span(p: Param, name: str, top: list[FrozenTrial]) -> float | None:
    values = [t.params[name] for t in top if name in t.params]  # as stored: a list choice as its label
    if isinstance(p, CategoricalParam):
        return len(set(map(repr, values))) / len(p.choices) if values else None
    positions = [position(p, v) for v in values]
    known = [x for x in positions if x is not None]
    return max(known) - min(known) if len(known) >= 2 else None


def _chosen(p: CategoricalParam, value: Any) -> bool:
    return any(same_value(value, c) for c in p.choices)


def param_finding(
    name: str,
    p: Param,
    best: FrozenTrial,
    value: Any,
    imp: float | None,
    *,
    negligible: bool,
    tied: bool,
    top: list[FrozenTrial],
    run: RunConfig | None,
) -> ParamFinding:
    """What the audit finds for parameter `name`: where the best trial's `value` sits in the range `p`,
    how the top trials spread over it, and the advice (`tied`: the "best" is the first trial, no more)."""
    absent = name not in best.params  # a conditional parameter; None can also be a chosen value
    pos = None if absent else position(p, value)
    edge = None if tied else _edge(p, pos, value)
    span = _top_span(p, name, top)
    if absent:
        advice = _unset_advice(name, p, best.number)
    else:
        advice = _advice(
            name,
            p,
            value,
            best.number,
            pos=pos,
            edge=edge,
            negligible=negligible,
            imp=imp,
            span=span,
            run=run,
        )
    return ParamFinding(
        name, imp, value, bounds_text(p), pos, edge, negligible, span, advice, p.type, not absent
    )


def _unset_advice(name: str, p: Param, best_number: int) -> str:
    """What the audit says of a parameter the best trial (#`best_number`) did not set."""
    if p.when is None:  # only a change of the search space leaves it unset
        return (
            f"{name} is not set in the best trial: the search space was changed after the best trial "
            f"(#{best_number}) ran, adding {name}."
        )
    return f"{name} is not set in the best trial (a conditional parameter)."


def _advice(
    name: str,
    p: Param,
    value: Any,
    best_number: int,
    *,
    pos: float | None,
    edge: str | None,
    negligible: bool,
    imp: float | None,
    span: float | None,
    run: RunConfig | None,
) -> str:
    """What to do about a parameter the best trial set at `value`: put it back in its range, widen the
    range, fix the parameter, or nothing ("") where the range serves."""
    outside = pos is not None and not 0 <= pos <= 1
    if outside or (isinstance(p, CategoricalParam) and not _chosen(p, value)):
        return (
            f"{name} best at {_fmt_value(p, value)}, outside its current range {bounds_text(p)}: the search space "
            f"was changed after the best trial (#{best_number}) ran; put {_fmt_value(p, value)} back in the range."
        )
    if edge is not None:
        side = "top" if edge == "high" else "bottom"
        return f"{name} best at {_fmt_value(p, value)}, the {side} of {bounds_text(p)}" + (
            ": widen the range."
            if _can_widen(p, edge, run, name)
            else f", as {'low' if edge == 'low' else 'high'} as it can go: nothing to widen."
        )
    if negligible:
        return f"{name} barely matters (importance {imp:.2f}): fix {name} at {_fmt_value(p, value)}."
    if span is not None and span >= WHOLE_RANGE and not isinstance(p, CategoricalParam):
        return f"{name}: the top trials span {span:.0%} of {bounds_text(p)}; its range does not separate good from bad."
    return ""
