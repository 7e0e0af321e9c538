"""Your own training code: `trainer: {function: mypkg.train:fit}` in the RunConfig.

hpotool calls `fit` with the keyword arguments its signature asks for: `config` (the resolved RunConfig as a
plain dict), `run_config` (the pydantic model) and `report` (call `report(epoch, {"val_loss": ...})` after
each epoch; it records the history and lets the pruner stop the trial by raising). `fit` returns its final
metrics as a dict. Pruning, storage, exports and reports work as for the built-in Trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from hpotool.config import RunConfig
from hpotool.resolve import import_object, pick_kwargs
from hpotool.trainer import EpochResult, NonFiniteLossError


def run_user_trainer(
    cfg: RunConfig, on_epoch_end: Callable[[EpochResult], None], rows: list[dict[str, float]]
) -> dict[str, float]:
    """Call the user's function; returns its final metrics (with `epoch_time`, the mean over reports)."""
    assert cfg.trainer is not None
    fn = import_object(cfg.trainer.function)
    last = time.perf_counter()

    def report(epoch: int, metrics: dict[str, float]) -> None:
        nonlocal last
        now = time.perf_counter()
        values = {k: float(v) for k, v in metrics.items()}
        for k, v in values.items():
            if not math.isfinite(v):
                raise (
                    NonFiniteLossError(epoch, v, k)
                    if "loss" in k
                    else ValueError(f"{k} is {v} in epoch {epoch + 1}")
                )
        result = EpochResult(int(epoch), values, now - last)
        last = now
        rows.append(result.as_row())
        on_epoch_end(result)

    offered: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "run_config": cfg, "report": report}
    metrics = fn(**pick_kwargs(fn, offered))
    if not isinstance(metrics, dict):
        raise TypeError(
            f"{cfg.trainer.function} returned {type(metrics).__name__}; it must return a dict of final metrics"
        )
    final = {k: float(v) for k, v in metrics.items()}
    if rows and "epoch_time" not in final:
        final["epoch_time"] = sum(r["epoch_time"] for r in rows) / len(rows)
    return final
