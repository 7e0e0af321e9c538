"""Users' own training functions (`trainer: {function: tests.trainers:NAME}`), each with one mistake or
edge case that hpotool must handle."""

from __future__ import annotations

from collections.abc import Callable

Report = Callable[[int, dict[str, float]], None]


def diverges_at_the_end(report: Report) -> dict[str, float]:
    """Reports finite losses, then returns NaN as its final metric."""
    report(0, {"val_loss": 1.0})
    return {"val_loss": float("nan")}


def diverges_in_validation(report: Report) -> dict[str, float]:
    report(0, {"val_loss": float("nan")})
    return {"val_loss": 1.0}
