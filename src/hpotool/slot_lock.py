"""The lock the processes of one machine take, one at a time, to count a study's free slots of `n_trials` and
ask a trial in one (`slot_lock`), so no process of the machine asks a trial beyond the target.

Without it, two processes that each counted one slot free asked a trial each; the later one's trial was
beyond the target, went back to the queue untrained (`trial_setup.has_slot`), and the run ended with a
WAITING trial nobody asked for (`--workers 2`, 8 trials: in about 1 run of 6). The lock is an OS file lock
(`fcntl.flock`) on a file named by the storage's location and the study, in a folder of the temp dir: the
workers of `--workers N` and separate commands in other shells take the same one. The OS lets it go when
its holder exits or dies, and it is held only from the count to the end of `ask`, never while a trial
trains. Processes of other machines cannot share it: for them, the check after `ask` still sends a trial
beyond the target back. Where no lock can be made (no `fcntl`, a temp dir not writable), a process asks
as it did before, with that check alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hpotool.storage_url import location, storage_file

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the check after `ask` alone
    fcntl = None  # type: ignore[assignment]


def slot_lock_path(url: str, study_name: str) -> Path | None:
    """The lock file of study `study_name` in storage `url`, the same for every process of this machine (a
    SQLite or journal file by its real path, wherever the command runs; a server by its URL as shown, the
    password hidden); None where this machine has no file locks."""
    if fcntl is None:  # pragma: no cover
        return None
    where = os.path.realpath(location(url)) if storage_file(url) is not None else location(url)
    key = hashlib.sha256(f"{where}\0{study_name}".encode()).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / f"hpotool-slots-{os.getuid()}" / f"{key}.lock"


# The descriptor of the slot lock this process holds now (`slot_lock`), for `let_go_of_slot_lock`.
_held: list[int] = []


@contextlib.contextmanager
def slot_lock(path: Path | None) -> Iterator[None]:
    """Hold the lock file `path` (`slot_lock_path`) while inside (or until `let_go_of_slot_lock`), waiting
    for the process of this machine that holds it; without a lock where `path` is None or the lock cannot
    be made (the check after `ask` alone). A signal ends the wait as it would any other."""
    fd = _open(path)
    if fd is None:
        yield
        return
    _held.append(fd)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: the check after `ask` alone
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        let_go_of_slot_lock()


def let_go_of_slot_lock() -> None:
    """Let go of the slot lock this process holds, if any, before its `slot_lock` block ends: a trial that
    waits inside `ask` for trials of other processes (a grid trial, for the point of a trial asked before
    it: `waiting.wait_for_earlier_trials`) holds its slot already, being RUNNING, and the other processes
    of the machine need not wait with it (with the lock held, a trial of another machine that never picked
    kept every local worker but one from asking, each in turn, for up to 10 s)."""
    while _held:
        os.close(_held.pop())  # closing the descriptor lets the lock go


def _open(path: Path | None) -> int | None:
    """A descriptor of the lock file `path`, made if need be; None where it cannot be opened."""
    if path is None:
        return None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
