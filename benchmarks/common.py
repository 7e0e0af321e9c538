"""What every benchmark shares: the digits MLP task, timing helpers, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

PYTHON = sys.executable
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]

# The task: the shipped digits MLP, one torch thread, a fixed random search over two parameters.
RUN: dict[str, Any] = {
    "project": "bench",
    "seed": 0,
    "device": "cpu",
    "torch_threads": 1,
    "data": {"name": "digits", "val_fraction": 0.2},
    "model": {"name": "mlp", "hidden": [64], "dropout": 0.0},
    "optimizer": {"name": "adam", "lr": 1e-2},
    "epochs": 20,
    "batch_size": 32,
}
SPACE: dict[str, Any] = {
    "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden.0": {"type": "int", "low": 32, "high": 128, "step": 32},
}


def optimize_config(name: str, storage: str, n_trials: int, **extra: Any) -> dict[str, Any]:
    return {
        "study_name": name,
        "storage": storage,
        "n_trials": n_trials,
        "seed": 0,
        "metric": "val_accuracy",
        "direction": "maximize",
        "sampler": {"name": "random"},
        "pruner": {"name": "nop"},
        "search_space": SPACE,
        **extra,
    }


def write_configs(folder: Path, run: dict[str, Any], opt: dict[str, Any]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    run_path, opt_path = folder / "run.yaml", folder / "optimize.yaml"
    run_path.write_text(yaml.safe_dump(run, sort_keys=False))
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return run_path, opt_path


def wall(cmd: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Seconds a command takes; it must succeed."""
    start = time.perf_counter()
    subprocess.run(list(cmd), cwd=cwd, env={**os.environ, **(env or {})}, check=True, capture_output=True)
    return time.perf_counter() - start


def trials_span(db: Path, skip: int = 0) -> float:
    """Seconds from the start of trial number `skip` to the last trial's end, as an Optuna SQLite file
    records them (`skip=1` leaves out the first trial and the one-off work some processes do in it)."""
    import sqlite3
    from datetime import datetime

    with sqlite3.connect(db) as conn:
        first, last = conn.execute(
            "SELECT min(datetime_start), max(datetime_complete) FROM trials WHERE number >= ?", (skip,)
        ).fetchone()
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def alternate(items: list[T], round_: int) -> list[T]:
    """`items` in order in even rounds, reversed in odd ones: interleaved measurements in which none always
    runs first (the first of a round ran measurably slower on some VMs)."""
    return items if round_ % 2 == 0 else items[::-1]


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median (min–max)`."""
    return f"{fmt.format(med(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def goal(ok: bool) -> str:
    return "met" if ok else "**missed**"


def machine() -> str:
    import optuna
    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
        f"optuna {optuna.__version__}, load average {load:.2f} at the start"
    )
