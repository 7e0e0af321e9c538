"""Output into a closed pipe (`hpotool trials | head -n 3`, `hpotool optimize ... |& head`): stop as SIGPIPE
would stop a Unix tool, quietly, with its exit code 141.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises BrokenPipeError instead. Uncaught,
it printed a traceback, or rich's console ended the command with exit code 1 wherever it was printing: in
`optimize`, between two trials of a study (its worker processes left to run on alone). `guard_streams` puts
`sys.stdout` and `sys.stderr` behind a stream that turns the error into the interrupt of a signal (Ctrl-C's
path, `interrupts.interrupt`): a trial cut off ends as FAIL ("interrupted"), a storage write is finished
first, workers are stopped, and the CLI exits 141. The stream's file descriptor is pointed at /dev/null
first (the signal module's "Note on SIGPIPE"), so what is still printed on the way out, and the flush at
exit, go nowhere rather than failing again.

`stdout_to_stderr` keeps stdout for the JSON a command prints there (`optimize --json`): what the user's
code prints meanwhile goes to stderr.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# The file descriptors found closed, in the order found.
_closed: list[int] = []

# A longer text is written in slices of this many characters, each flushed: at most 4 KiB in UTF-8, within
# the buffer of a stream on a pipe, whose flush writes until all is out or the reader is gone. A text larger
# than that buffer went out in one write(), and a reader that left partway (`report --out - | head -c 100`,
# 5 MB) made it return a partial count, which Python's text stream dropped: no BrokenPipeError, exit 0.
_SLICE = 1024


def pipe_closed() -> bool:
    """Whether hpotool's stdout or stderr has gone into a closed pipe in this process."""
    return bool(_closed)


def stderr_closed() -> bool:
    """Whether hpotool's stderr, where its notes go, has gone into a closed pipe in this process."""
    try:
        return sys.stderr.fileno() in _closed
    except (AttributeError, OSError, ValueError):
        return False


class _Guarded:
    """`stream` (sys.stdout, sys.stderr), whose write into a closed pipe interrupts the command (`stop`), or
    only goes nowhere from then on (a worker process: its main process stops it)."""

    def __init__(self, stream: TextIO, stop: bool = True) -> None:
        self._stream = stream
        self._stop = stop

    def write(self, text: str) -> int:
        try:
            if len(text) <= _SLICE:
                return self._stream.write(text)
            self._stream.flush()
            for start in range(0, len(text), _SLICE):
                self._stream.write(text[start : start + _SLICE])
                self._stream.flush()
            return len(text)
        except BrokenPipeError:
            _reader_gone(self._stream, self._stop)
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _reader_gone(self._stream, self._stop)

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer...: the stream's own
        return getattr(self._stream, name)


def _reader_gone(stream: TextIO, stop: bool) -> None:
    """Point `stream`'s file descriptor at /dev/null, and (`stop`) interrupt the command as SIGPIPE would."""
    from hpotool.interrupts import interrupt

    fd = stream.fileno()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    _closed.append(fd)
    if stop:
        interrupt(signal.SIGPIPE)


def look_for_a_gone_reader() -> None:
    """Stop as a write into the closed pipe would, where stderr is a pipe whose reader has gone: the main
    process of `optimize --workers N |& head -n 1` writes only when a trial ends, and its workers ran on
    until one did (a long trial: for as long as it took; short ones: the whole study, between two looks);
    so did `optimize` without workers, whose trials look at each epoch's end now.
    Linux reports the write end of a pipe with no reader as POLLERR, found without writing to it; where
    it is not reported, the next trial line finds the pipe closed, as before."""
    stream = sys.stderr
    if not isinstance(stream, _Guarded) or not hasattr(select, "poll"):
        return
    try:
        fd = stream.fileno()
        if fd in _closed or not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return
    if gone:
        _reader_gone(stream._stream, stream._stop)


def guard_streams(stop: bool = True) -> None:
    """Put `sys.stdout` and `sys.stderr` behind `_Guarded` (once; a stream without a file descriptor, as a
    test's captured output, is left as it is). `stop=False` in a worker process, which shares the command's
    streams: a warning or a training function's print there into a closed pipe failed its trial with
    BrokenPipeError; now it goes nowhere, and the main process, whose next line finds the pipe closed too,
    stops the workers (SIGTERM: their trials end "interrupted")."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, _Guarded):
            continue
        try:
            stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        setattr(sys, name, _Guarded(stream, stop))


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send to stderr what is printed to stdout in this block: `sys.stdout`, and file descriptor 1 too, for
    the worker processes started in it (they inherit it) and what C code or a subprocess writes there. A
    training function's or dataset's print() came before `optimize --json`'s JSON on stdout, and `| jq`
    failed on its first line."""
    sys.stdout.flush()
    stream = sys.stdout
    try:
        saved: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 or 2 to point (closed): the Python streams alone
        saved = None
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = stream
        if saved is not None:
            if 1 not in _closed:  # else stderr's reader went: fd 1 points at /dev/null (`_reader_gone`)
                os.dup2(saved, 1)
            os.close(saved)
