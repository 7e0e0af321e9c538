"""A study's journal file (`JournalFile`), found emptied, cut short or deleted while a command uses it: said in
one line (`JournalFileFault`), nothing more written to it.

Optuna's backend reads on from the byte it had read to, and appends at the end: a journal emptied (`: > f`),
cut short, or deleted and made again under a run read as holding nothing new, the run's next records began
a new journal of records no reader can replay, and it read them back from its old offset once the file grew
past it: `optimize` printed Optuna's 'reported value is ignored' warnings by the dozen, then, with
`--workers`, a JSONDecodeError traceback for each worker (exit code 1). Imports optuna: import it where a
journal file storage is opened."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

from optuna.storages.journal import JournalFileBackend

from hpotool.storage_url import StorageFault, shown_url


class JournalFileFault(StorageFault):
    """A journal file that lost records this process had read: emptied, cut short, deleted or replaced."""


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend for `url` (`journal:PATH`), which refuses to read or append where the
    file holds fewer bytes than it had read (`check`)."""

    def __init__(self, url: str, file_path: str) -> None:
        super().__init__(file_path)
        self.shown = shown_url(url)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        self.check()
        yield from super().read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        from hpotool.journal_writes import write_under_lock

        self._lock.acquire()  # Optuna's takes it too: checked and written with no other process's write between
        try:
            write_under_lock(self, logs)  # checks first (`check`), then writes as Optuna does
        finally:
            self._lock.release()

    def check(self) -> None:
        """Raise a `JournalFileFault` where the file is gone or holds fewer bytes than this process read of it.

        Raises:
            JournalFileFault: the file lost records this process had read.
        """
        # the offset of the last record read: Optuna adds each log number's once, in order, so the last added is
        # the largest (max() over them all cost milliseconds a sync in a journal of 10,000 trials)
        read = next(reversed(self._log_number_offset.values()))
        if read == 0:
            return
        try:
            size = os.stat(self._file_path).st_size
        except FileNotFoundError:
            size = None
        if size is not None and size >= read:
            return
        path = repr(os.path.abspath(self._file_path))
        what = (
            f"is gone (deleted, or moved), after this process had read {read} bytes of it"
            if size is None
            else f"holds {size} bytes, fewer than the {read} this process had read of it (emptied, cut short, or "
            f"written over by another program)"
        )
        said = f"storage {self.shown!r}: its journal file {path} {what}"
        raise JournalFileFault(
            f"{said}; run the same command to read what it holds now",
            f"{said}, during the study; this run stopped, writing nothing more to it, and the trials that were "
            f"running stay RUNNING in what is left of it, where it holds them: put the journal back from a "
            f"backup, then run the same command to resume: it marks the trials left RUNNING FAIL ('worker died') "
            f"and runs their parameters again; or move it aside, and run the same command to start the study "
            f"again",
        )
