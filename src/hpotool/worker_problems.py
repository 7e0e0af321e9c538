"""How a worker process tells the main process why it ended: its exit code, and what it put on a queue.

A worker that ends on a problem of its own (its storage lost, its configs failing there, the training
function breaking hpotool's contract) exits with one of these codes and puts the problem in words, its name
and its traceback on the run's problems queue; the main process gathers them (`Problems`) and says each in
one line, with the workers' tracebacks under `--debug` (`WorkerTracebacks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue


LOST_STORAGE_EXIT = 3  # a worker's exit code when the storage stopped answering
CONTRACT_EXIT = 4  # a worker's exit code when the training function broke hpotool's contract
SETUP_EXIT = 5  # a worker's exit code when its configs or data, checked in the main process, failed here
ERROR_EXIT = 6  # a worker's exit code when it met one of hpotool's own errors after set-up (its storage
# would not open), which the main process says in one line


class Problems:
    """What the workers put on `queue` (their exit code, the problem in words, their name, their traceback
    or "", and how long the statement that met "database is locked" waited, or None), gathered."""

    def __init__(self) -> None:
        self.queue: SimpleQueue | None = None  # made with the workers' context (`worker_run.Shared.make`)
        self.said: list[tuple[int, str, str, str, float | None]] = []

    def drain(self) -> None:
        while self.queue is not None and not self.queue.empty():
            self.said.append(self.queue.get())

    def first(self, code: int) -> str | None:
        """The first problem a worker that exited with `code` put."""
        return next((text for said, text, _, _, _ in self.said if said == code), None)

    def lost(self, procs: list[Any]) -> list[tuple[str, str]]:
        """(worker name, cause) of each worker that exited because it lost the storage."""
        gone = {p.name for p in procs if p.exitcode == LOST_STORAGE_EXIT}
        return [
            (name, text) for code, text, name, _, _ in self.said if code == LOST_STORAGE_EXIT and name in gone
        ]

    def lock_waited(self, procs: list[Any], *also: tuple[str, float | None]) -> float | None:
        """The longest wait (`storage_faults.lock_waited`) of the workers that lost the storage on "database is
        locked", and of `also` (the main process's (cause, seconds waited)): one that waited out the busy
        timeout met another process's lock, whatever the others met. None where none met it, or one's wait is
        not known. Their causes' text alone said nothing of it: a write SQLite refused a worker at once was
        said as another process's lock held for over the busy timeout."""
        gone = {p.name for p in procs if p.exitcode == LOST_STORAGE_EXIT}
        met = [
            (text, waited)
            for code, text, name, _, waited in self.said
            if code == LOST_STORAGE_EXIT and name in gone
        ]
        waits = [waited for text, waited in [*met, *also] if "database is locked" in text]
        return None if not waits or None in waits else max(w for w in waits if w is not None)

    def tracebacks(self, procs: list[Any]) -> WorkerTracebacks | None:
        """The tracebacks of the workers that exited because they lost the storage, for the error that says
        so to be raised from (`--debug` shows them); None where none sent one."""
        gone = {p.name for p in procs if p.exitcode == LOST_STORAGE_EXIT}
        said = [
            (name, trace)
            for code, _, name, trace, _ in self.said
            if code == LOST_STORAGE_EXIT and name in gone
        ]
        shown = [f"The traceback of {name}:\n{trace.rstrip()}" for name, trace in said if trace]
        return WorkerTracebacks("\n\n".join(shown)) if shown else None

    def first_traceback(self, code: int) -> WorkerTracebacks | None:
        """The traceback of the first worker that exited with `code` (whose problem `first` gives), for the
        error that says so to be raised from (`--debug` shows it); None where it sent none."""
        for said, _, name, trace, _ in self.said:
            if said == code:
                return WorkerTracebacks(f"The traceback of {name}:\n{trace.rstrip()}") if trace else None
        return None


class WorkerTracebacks(Exception):
    """The tracebacks of workers, as they sent them (text), that the main process's error is raised from:
    Python prints them above it where the error is not caught (`hpotool --debug`)."""

    def __str__(self) -> str:
        return "what the workers met, in their own process:\n\n" + str(self.args[0])


def lost_causes(causes: list[tuple[str, str]]) -> str:
    """Why the storage failed the processes `causes` names, in one line: each cause once, after the names of
    the processes that met it (`hpotool-worker-0, hpotool-worker-1: OperationalError: ...`)."""
    by_cause: dict[str, list[str]] = {}
    for name, cause in causes:
        names = by_cause.setdefault(cause, [])
        if name not in names:
            names.append(name)
    return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in by_cause.items())
