"""Optuna's "sampled independently" warnings, gathered into one note for the run's summary.

CMA-ES, GP, QMC and multivariate TPE model only part of some spaces (categorical or conditional
parameters) and sample the rest with their independent sampler, logging one warning per parameter per
trial (TPE only with its deprecated `warn_independent_sampling=True`, off by default since Optuna 4.9):
a dozen lines between trials, printed through the progress display. The fact is the same every
time, so a run keeps the parameters, trials and reason, and its summary states them once. Other log
records pass untouched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hpotool.formatting import counted

# optuna.samplers._base._INDEPENDENT_SAMPLING_WARNING_TEMPLATE, as CmaEs/GP/QMC/TPESampler fill it in.
_WARNING = re.compile(
    r"The parameter `(?P<param>.+?)` in Trial#(?P<trial>-?\d+) is sampled independently using "
    r"`(?P<fallback>[\w.]+)` instead of `(?P<sampler>[\w.]+)`, potentially degrading the optimization "
    r"performance\. This fallback happened because (?P<reason>.+?)\. You can suppress",
    re.DOTALL,
)


@dataclass(eq=False)  # compared by identity: addFilter/removeFilter look it up in a list
class IndependentSampling(logging.Filter):
    """A logging filter that drops the sampler's "sampled independently" records and keeps their facts."""

    trials: dict[str, set[int]] = field(default_factory=dict)  # parameter -> trial numbers
    sampler: str = ""
    fallback: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        super().__init__()

    def filter(self, record: logging.LogRecord) -> bool:
        match = _WARNING.match(record.getMessage())
        if match is None:
            return True
        self.trials.setdefault(match["param"], set()).add(int(match["trial"]))
        self.sampler, self.fallback, self.reason = match["sampler"], match["fallback"], match["reason"]
        return False

    def merge(self, other: dict[str, Any]) -> None:
        """Add what another process (a worker) gathered, as `as_dict` gives it."""
        for param, numbers in other["trials"].items():
            self.trials.setdefault(param, set()).update(numbers)
        self.sampler = self.sampler or other["sampler"]
        self.fallback = self.fallback or other["fallback"]
        self.reason = self.reason or other["reason"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "trials": {p: sorted(n) for p, n in self.trials.items()},
            "sampler": self.sampler,
            "fallback": self.fallback,
            "reason": self.reason,
        }

    def note(self) -> str | None:
        """One line: which parameters, in how many trials, and why; None when nothing fell back."""
        if not self.trials:
            return None
        numbers = set().union(*self.trials.values())
        params = ", ".join(self.trials)
        reason = self.reason.replace("`", "")
        return (
            f"{self.sampler} sampled {params} independently ({self.fallback}) in {counted(len(numbers), 'trial')} "
            f"from trial {min(numbers)} on, since {reason}: its model does not cover them"
        )


def _logger_names(sampler: object) -> list[str]:
    """The loggers the sampler's classes log through (Optuna's `get_logger(__name__)` per module)."""
    names = [cls.__module__ for cls in type(sampler).__mro__ if cls.__module__ not in ("builtins", "abc")]
    return list(dict.fromkeys(names))


@contextmanager
def independent_sampling(
    sampler: object, into: IndependentSampling | None = None
) -> Iterator[IndependentSampling]:
    """Gather the "sampled independently" records `sampler` logs while the block runs (into `into`)."""
    gathered = into if into is not None else IndependentSampling()
    loggers = [logging.getLogger(name) for name in _logger_names(sampler)]
    for logger in loggers:
        logger.addFilter(gathered)
    try:
        yield gathered
    finally:
        for logger in loggers:
            logger.removeFilter(gathered)
