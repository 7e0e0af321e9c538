"""A dataset that moves the study's SQLite file away when a worker process loads it: the storage gone
between the main process's open and the workers' (`hpotool optimize --workers`)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .helpers import digits_samples

MOVE = "HPOTOOL_TEST_MOVE_STUDY"  # the file to move away


def digits_that_move_the_study(n: int = 300) -> Any:
    if multiprocessing.current_process().name.startswith("hpotool-worker"):
        path = Path(os.environ[MOVE])
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(path.name + ".moved"))
    return digits_samples(n)


DELETE = "HPOTOOL_TEST_DELETE_STUDY"  # "NAME URL": the study to delete as a trial builds its model


class DeletesTheStudy(nn.Module):
    """A model whose constructor deletes the study (once it exists: not in the checks before trial 0), as
    `optuna delete-study` run beside a study would."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        name, url = os.environ[DELETE].split(" ", 1)
        if Path(url.removeprefix("sqlite:///")).exists():
            import optuna

            with contextlib.suppress(KeyError):  # several workers delete it at once
                optuna.delete_study(study_name=name, storage=url)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


LOCK = (
    "HPOTOOL_TEST_LOCK_STUDY"  # "PATH SECONDS": the SQLite file to lock as a trial builds its model, how long
)


class LocksTheStudy(nn.Module):
    """A model whose constructor, in the first trial that builds it (not in the checks before trial 0: no
    trial runs then), has another connection take a write lock on the study's SQLite file for SECONDS, as a
    sqlite3 shell's `BEGIN EXCLUSIVE;` does, while the trial goes on to train and write its attributes."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        path, seconds = os.environ[LOCK].rsplit(" ", 1)
        running = 0
        if Path(path).exists():  # the checks before trial 0 build the model before the study exists
            with contextlib.closing(sqlite3.connect(path)) as look:
                running = look.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0]
        if running and _first(f"{path}.locked"):
            lock = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            lock.execute("BEGIN EXCLUSIVE")
            threading.Timer(float(seconds), lock.close).start()  # closed, its transaction rolls back
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def _first(marker: str) -> bool:
    """Whether this is the first call for `marker` (a file it creates)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True
