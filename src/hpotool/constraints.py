"""Limits on measured values (`constraints: ["n_params <= 200000"]`), recorded the way Optuna's
constraint-aware samplers read them: one number per constraint, feasible when <= 0.

Each trial stores its values in the user attr `constraints` and the verdict in `feasible`; samplers that
take a `constraints_func` (TPE, NSGA-II/III, GP) get one that reads them back, so they learn to avoid
infeasible regions. A trial that runs out of memory is recorded as infeasible the same way.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

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
        return f"{self.metric} {self.op} {self.bound:g}"


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


def make_constraints_func(n: int) -> Callable[[FrozenTrial], Sequence[float]]:
    """What samplers call after each trial: its stored values, or feasible (zeros) when it has none
    (a pruned or failed trial never reached the end where its values are measured)."""
    return functools.partial(_stored, n)  # picklable, so worker processes can build the same sampler


def _stored(n: int, trial: FrozenTrial) -> Sequence[float]:
    values = trial.user_attrs.get("constraints")
    return list(values) if isinstance(values, list) and len(values) == n else [0.0] * n
