"""Limits on measured values (`constraints: ["n_params <= 200000"]`), recorded the way Optuna reads
them: one number per constraint, feasible when <= 0.

Each complete trial records its values with Optuna's `Trial.set_constraint` (keyed by the constraint's
text), which Optuna's constraint-aware samplers (TPE, NSGA-II/III, GP) and `Study.best_trial`
read, and in the user attrs `constraints` and `feasible`, which the exports show. A trial that runs out of
memory fails and is marked infeasible in those user attrs (samplers never learn from failed trials).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpotool.formatting import quoted_text

_PATTERN = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|<|>=|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
INFEASIBLE = 1.0


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float

    def value(self, metrics: Mapping[str, float]) -> float:
        """<= 0 when the measured value satisfies the constraint (strict ones need a margin)."""
        x = metrics[self.metric]
        if not math.isfinite(x):
            return INFEASIBLE
        gap = x - self.bound if self.op in ("<=", "<") else self.bound - x
        if self.op in ("<", ">") and gap == 0:
            return INFEASIBLE  # equal is not strictly less or greater
        return gap

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {exact_number(self.bound)}"


def exact_number(x: float) -> str:
    """`x` as `:g` writes it where that is exact (the name earlier studies recorded: `1e+06`, `20000`), else
    all its digits: `:g` kept six, so `n_params <= 1234567` read `1.23457e+06`, and two close bounds one."""
    short = f"{x:g}"
    if float(short) == x:
        return short
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)


def parse_constraint(text: str) -> Constraint:
    """`"n_params <= 200000"` -> Constraint; a ValueError says what a constraint looks like."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a constraint; write METRIC <= NUMBER (or <, >=, >), e.g. 'n_params <= 200000'"
        )
    return Constraint(match.group(1), match.group(2), float(match.group(3)))


def constraint_values(constraints: Sequence[Constraint], metrics: Mapping[str, float]) -> list[float]:
    return [c.value(metrics) for c in constraints]


_SHAPE = "write each as the text METRIC <= NUMBER (or <, >=, >)"


def constraint_texts(v: Any) -> Any:
    """The `constraints:` list as its author meant it, before pydantic reads it as a list of texts: one
    bare text (`constraints: n_params <= 20000`) or a mapping (`- n_params: <= 20000`, YAML reading the
    colon) is refused naming the text to write, which pydantic's "a valid list"/"a valid string" do not."""
    from hpotool.formatting import format_choice

    if isinstance(v, str):
        raise ValueError(
            f"expected a list, got the text {quoted_text(v)}; write constraints: [{quoted_text(v)}], a list even of one"
        )
    for item in v if isinstance(v, list) else ():
        if isinstance(item, Mapping):
            raise ValueError(f"{format_choice(dict(item))} is not a constraint; {_SHAPE}{_as_text(item)}")
    return v


def _as_text(item: Mapping[Any, Any]) -> str:
    """`: 'n_params <= 20000'` for `{n_params: "<= 20000"}`, the one constraint such a mapping spells; else
    an example."""
    if len(item) == 1:
        ((metric, bound),) = item.items()
        text = f"{metric} {bound}"
        if isinstance(metric, str) and isinstance(bound, str) and _PATTERN.match(text):
            return f": {text!r}"
    return ", e.g. 'n_params <= 200000'"


def unsteered_note(constraints: Sequence[str], sampler: Any) -> str | None:
    """A note where the study has constraints and its sampler (or PartialFixedSampler's base sampler) is one
    of Optuna's that never read them (random, QMC, grid, brute force, or hpotool's own of these; CmaEsSampler
    warns so itself, after each trial): trials that break them take their share of the budget, yet the best
    trial is still one that meets them (`ranking.ranked_trials`, Optuna's `Study.best_trials`). Before, such a
    run said nothing, though TPE, GP and NSGA-II/III steer towards the constraints."""
    import optuna

    if isinstance(sampler, optuna.samplers.PartialFixedSampler):
        sampler = sampler._base_sampler
    unsteered = (
        optuna.samplers.RandomSampler,
        optuna.samplers.QMCSampler,
        optuna.samplers.GridSampler,
        optuna.samplers.BruteForceSampler,
    )
    kind = next((cls.__name__ for cls in unsteered if isinstance(sampler, cls)), None)
    if not constraints or kind is None:
        return None
    return (
        f"constraints: Optuna's {kind} does not steer its trials towards the constraints, so trials that break "
        f"them take their share of the budget; the best trial is still chosen among those that meet them (the "
        f"tpe, gp, nsga2 and nsga3 samplers steer towards them)"
    )
