"""A dataset that moves the study's SQLite file away when a worker process loads it: the storage gone
between the main process's open and the workers' (`hpotool optimize --workers`)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from pathlib import Path
from typing import Any

from .helpers import digits_samples

MOVE = "HPOTOOL_TEST_MOVE_STUDY"  # the file to move away


def digits_that_move_the_study(n: int = 300) -> Any:
    if multiprocessing.current_process().name.startswith("hpotool-worker"):
        path = Path(os.environ[MOVE])
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(path.name + ".moved"))
    return digits_samples(n)
