"""From a RunConfig to a trained model: check it, load data, resolve the device, build the parts, run the
Trainer, or call the user's own training function.

Used by both `optimize` (one call per trial) and `train`. Knows nothing about Optuna. Imports no torch at
module level: a study whose training function never uses torch does not import it (hpotool's Trainer's
parts are imported as the first run builds them).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpotool.config import RunConfig
from hpotool.config_fields import CHECK_COMPONENTS
from hpotool.device import device_name
from hpotool.epoch import EpochResult
from hpotool.errors import HpoError, RunCheckError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from hpotool.data import PreparedData
    from hpotool.datasets import TensorData


@dataclass
class RunResult:
    """What one training run produced."""

    metrics: dict[str, float]
    history: list[dict[str, float]]
    model: nn.Module | None  # None: a user's training function keeps its own model
    seconds: float
    device: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


_DEVICE_CACHE: dict[tuple[str, str], tuple[TensorData, TensorData]] = {}


def _on_device(data: PreparedData, device: torch.device) -> tuple[TensorData, TensorData]:
    """The splits on `device`, copied there once per process."""
    key = (str(id(data)), str(device))
    if key not in _DEVICE_CACHE:
        _DEVICE_CACHE[key] = (data.train.to(device), data.val.to(device))
        # forgotten with `data` (a dataset `load_data` loaded again in its place), whose id may be another's then
        weakref.finalize(data, _DEVICE_CACHE.pop, key, None)
    return _DEVICE_CACHE[key]


def _noop(_: EpochResult) -> None:
    return None


def _device_picked(cfg: RunConfig) -> RunConfig:
    """`cfg` with device `auto` replaced by the device it picks, for a user's training function: given
    'auto', which torch.device() refuses, every trial of the default config failed."""
    if cfg.device != "auto":
        return cfg
    data = {**cfg.model_dump(mode="python"), "device": device_name("auto")}
    return RunConfig.model_validate(data, context={CHECK_COMPONENTS: False})


def check_run(cfg: RunConfig, source: str) -> tuple[str, ...]:
    """What `train` checks before it trains: the device, the data, the batch size (as `optimize` does) and
    `dry_run`, each failure an `HpoError` naming `source`. A user's own training function is checked only
    for the device and whether hpotool can call it.

    Returns:
        The notes `optimize` prints before trial 0 on the data (`data_notes`).
    """
    device_name(cfg.device, source)  # a user's training function is handed the device too
    if cfg.trainer is not None:
        from hpotool.user_trainer_checks import check_user_trainer

        try:
            check_user_trainer(cfg, pruning=False)
        except HpoError as exc:
            raise HpoError(f"{source}: {exc}") from None
        return ()
    from hpotool.data import check_batch_size, data_notes, load_checked
    from hpotool.preflight import dry_run

    data = load_checked(cfg, source)
    try:
        dry_run(cfg, data)
    except RunCheckError as exc:
        raise HpoError(f"{source}: {exc}") from None
    check_batch_size(cfg.batch_size, data, f"{source}: batch_size")  # after the step, as optimize does
    return data_notes(data, cfg)


def train_run(
    cfg: RunConfig,
    *,
    on_epoch_end: Callable[[EpochResult], None] = _noop,
    history: list[dict[str, float]] | None = None,
    objectives: Sequence[str] = (),
) -> RunResult:
    """Train `cfg` from scratch and return its final metrics.

    Args:
        cfg: the run.
        on_epoch_end: called after each epoch; raise from it to stop training.
        history: filled with one row per epoch as training goes, so a caller still has the rows when
            training stops with an exception.
        objectives: the metrics a study optimizes (none outside one), which the line of a user's training
            function that breaks its contract shows in its examples, as the study's stop line does.
    """
    start = time.perf_counter()
    if cfg.torch_threads is not None:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    rows = history if history is not None else []
    if cfg.trainer is not None:  # the user's own training function
        from hpotool.device import seed_everything
        from hpotool.import_paths import import_object
        from hpotool.user_trainer import run_user_trainer

        import_object(cfg.trainer.function)  # first: its module's imports decide whether torch is seeded
        seed_everything(cfg.seed)
        metrics = run_user_trainer(_device_picked(cfg), on_epoch_end, rows, objectives)
        return RunResult(metrics, rows, None, time.perf_counter() - start, "user code")
    from hpotool.user_code import refusing_exit

    with refusing_exit():  # the user's dataset, model, loss or schedule, in a trial too
        return _train_builtin(cfg, on_epoch_end, rows, start)


def _train_builtin(
    cfg: RunConfig, on_epoch_end: Callable[[EpochResult], None], rows: list[dict[str, float]], start: float
) -> RunResult:
    """`train_run` with hpotool's Trainer."""
    from hpotool.data import batch_size_problem, load_data
    from hpotool.device import resolve_device, seed_everything, to_device
    from hpotool.parts import build_model, build_trainer

    device = resolve_device(cfg.device)
    data = load_data(cfg.data, cfg.loss.name)
    # A trial's batch_size and data that fail together only inside the searched ranges, or with three or
    # more searched keys (the check before trial 0 tries ends, in pairs), trained on one smaller batch an
    # epoch while the study recorded the batch_size it was given.
    problem = batch_size_problem(cfg.batch_size, data)
    if problem:
        raise RunCheckError("batch_size", problem)
    train, val = _on_device(data, device)
    seed_everything(cfg.seed)
    model = to_device(build_model(cfg, data), device)
    trainer = build_trainer(cfg, data, model)

    def record(result: EpochResult) -> None:
        rows.append(result.as_row())
        on_epoch_end(result)

    last = trainer.fit(train, val, epochs=cfg.epochs, on_epoch_end=record)
    metrics = {
        **last.metrics,
        "n_params": float(sum(p.numel() for p in model.parameters())),
        "epoch_time": sum(r["epoch_time"] for r in rows) / max(1, len(rows)),
    }
    return RunResult(metrics, rows, model, time.perf_counter() - start, str(device))
