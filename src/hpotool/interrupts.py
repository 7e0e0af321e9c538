"""Ctrl-C and SIGTERM end the current trial as FAIL ("interrupted"), never leave it RUNNING.

SIGINT already raises KeyboardInterrupt in the main thread; SIGTERM is made to do the same for as long as
a study runs, so both take the one path Optuna handles (it marks the trial FAIL and re-raises), and the
CLI exits with the shell's code for the signal (130, 143).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Interrupted(KeyboardInterrupt):
    """A study stopped by a signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """The exit code a shell reports for a process ended by `signum` (SIGINT 130, SIGTERM 143)."""
    return 128 + signum


# The signal of the interrupt being raised. Raised inside a finalizer (the garbage collector runs SQLAlchemy's
# weakref callbacks at any moment), an exception is printed as 'Exception ignored' and dropped: the study
# ran on, and a worker, which ignores a second signal, could not be stopped until its trial ended.
_raised: list[int] = []
# Every signal raised as an interrupt in this process, in order (see `unswallowed`).
_ever_raised: list[int] = []


def record(signum: int) -> None:
    """Note that `signum` is being raised as an interrupt (see `raise_dropped`, `unswallowed`)."""
    _raised[:] = [signum]
    _ever_raised.append(signum)


def raise_dropped() -> None:
    """Raise again the interrupt of a signal a finalizer dropped; nothing when there is none.

    Raises:
        Interrupted: a signal's interrupt was raised and has not ended the study.
    """
    if _raised:
        raise Interrupted(_raised[0])


@contextmanager
def unswallowed() -> Iterator[None]:
    """Raise the interrupt of a signal that arrived inside, where the code inside caught it and went on.

    An import swallows one: torch's C code runs the imports it needs (numpy's, as `import torch` runs) and
    catches every error they raise, Ctrl-C's KeyboardInterrupt too. The import then went on as if no key had
    been pressed (the whole study ran), or failed later with an error of its own, from a module the interrupt
    left half made ('cannot import name 'RpcBackendOptions' from 'torch._C._distributed_rpc'', exit 2 for a
    Ctrl-C). Either way, inside a `signals_interrupt` block, the interrupt that was raised is raised again,
    the error it caused (if any) as its context.

    Raises:
        Interrupted: a signal's interrupt was raised inside and did not leave it.
    """
    before = len(_ever_raised)
    try:
        yield
    except Exception:
        if len(_ever_raised) > before:
            raise Interrupted(_ever_raised[before])  # noqa: B904 (what it caused is its context)
        raise
    if len(_ever_raised) > before:
        raise Interrupted(_ever_raised[before])


def _raise(signum: int, frame: Any) -> None:
    if _ending:
        _held[:] = _held or [signum]  # the run is ending already: raised once its summary is out (`ended`)
        return
    record(signum)
    raise Interrupted(signum)


# Set once the run has caught its interrupt and is ending (`ending`): the signals that arrive from then on,
# held (the first), until `ended` or the outermost `signals_interrupt` block ends; and how many such blocks
# are open, innermost included.
_ending: list[bool] = []
_held: list[int] = []
_open_blocks: list[int] = [0]


def ending() -> None:
    """The run has caught its interrupt and now ends: its trials are failed or being stopped, and what is left
    is to read its summary and print it. Until `ended` (or the outermost `signals_interrupt` block ends),
    Ctrl-C and SIGTERM are held, not raised: Ctrl-C pressed again (or a scheduler's SIGTERM after the
    terminal's SIGINT) cut the summary's reads short, and the command printed no summary but 'no trial was
    running', though trials had just ended as interrupted. Outside any `signals_interrupt` block (a library
    caller's) the signals are the caller's, and nothing is held."""
    if _open_blocks[0]:
        _ending[:] = [True]


def ended() -> None:
    """The ending run's summary is out: stop holding signals, and raise the first one held, if any.

    Raises:
        Interrupted: a signal arrived since `ending`.
    """
    held = list(_held)
    _ending.clear()
    _held.clear()
    if held:
        _raise(held[0], None)


@contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[dict[signal.Signals, Any] | None]:
    """While inside, `handler` takes SIGINT and SIGTERM in the main thread; yields the handlers it
    replaced (None off the main thread, where nothing is installed), restored on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield previous
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise `Interrupted` in the main thread; handlers restored after.

    Inside another (a study's trials, inside the command's), the outer block's interrupt a finalizer dropped
    is kept for `raise_dropped`: cleared on entry, it was forgotten, and a Ctrl-C as the study opened let the
    whole study run."""
    if not _open_blocks[0]:
        _raised.clear()
    hook = sys.unraisablehook
    sys.unraisablehook = quiet_dropped(hook)
    _open_blocks[0] += 1
    try:
        with _handling(_raise):
            yield
    finally:
        sys.unraisablehook = hook
        _raised.clear()  # the interrupt has ended what it stopped
        _open_blocks[0] -= 1
        if not _open_blocks[0]:  # the command is over: what an ending run held goes with it
            _ending.clear()
            _held.clear()


def quiet_dropped(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`hook` (sys.unraisablehook), silent on an interrupt a finalizer dropped: `raise_dropped` raises it
    again, and Python's 'Exception ignored ... KeyboardInterrupt' traceback is no news to the user."""

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    return quiet


@contextmanager
def signals_ignored() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM are ignored in the main thread (a second Ctrl-C while the workers
    end their trials must not leave them orphaned); handlers restored after."""
    with _handling(lambda signum, frame: None):
        yield


# The signals each `deferred` block open now holds, innermost last (see `interrupt_pending`).
_deferrals: list[list[int]] = []


def interrupt_pending() -> bool:
    """Whether a signal arrived inside a `deferred` block still open: a wait inside one (a grid trial
    waiting in `study.ask()` for the points of trials asked before it) stops waiting, so that Ctrl-C ends
    the trial at once rather than when the wait is over."""
    return any(_deferrals)


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside are handed to their handlers on leaving, so a storage write
    (`study.ask()` creating a trial it has not returned yet, `study.tell()`) is never cut in half and no
    trial is left RUNNING by a well-timed Ctrl-C. Code that waits inside polls `interrupt_pending`."""
    pending: list[int] = []
    previous: dict[signal.Signals, Any] | None = None
    _deferrals.append(pending)
    try:
        with _handling(lambda signum, frame: pending.append(signum)) as previous:
            yield
    finally:
        _deferrals.remove(pending)
        if pending and previous is not None:
            handler = previous.get(signal.Signals(pending[0]), _raise)  # SIGPIPE: see `interrupt`
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(pending[0])


def interrupt(signum: int) -> None:
    """Stop as the signal `signum` would, where no signal came: hpotool's output went into a closed pipe
    (`pipes`), which Python reports as an error of the write, not as SIGPIPE. In the main thread it raises
    `Interrupted` now, or, inside a `deferred` block, as the block ends (a storage write is not cut in
    half); in another thread the main thread raises it at its next `raise_dropped`.

    Raises:
        Interrupted: in the main thread, outside any `deferred` block.
    """
    if threading.current_thread() is not threading.main_thread():
        record(signum)
    elif _deferrals:
        _deferrals[-1].append(signum)
    else:
        _raise(signum, None)


def interrupting() -> bool:
    """Whether Ctrl-C or SIGTERM is being handled: raised and not yet done with (`signals_interrupt`), or
    held by a `deferred` block still open or by a run that is ending (`ending`). Safe to call from any thread."""
    return bool(_raised) or any(_deferrals) or bool(_held)


def let_go(exc: BaseException) -> None:
    """Free what the calls that interrupt `exc` cut short still held, before this process writes again.

    The frames an exception passed through live on in its traceback with their locals (those of the errors
    it was raised from or during, too), and one of them can be a database cursor halfway through its rows: a
    SQLite read statement left open holds its snapshot of the file (WAL), so this process's next write
    through that connection, the interrupted trial's FAIL, failed at once with 'database is locked' once
    another process had written since (a `--workers` run stopped by a closed pipe or Ctrl-C: the worker exited
    on the error, and its trial ended 'worker died'). The tracebacks keep their lines; the frames lose their
    locals, and what only a reference cycle still holds is collected."""
    import gc
    import traceback

    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        link = chain.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        traceback.clear_frames(link.__traceback__)
        chain += [link.__cause__, link.__context__]
    gc.collect()


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal behind an interrupt (a plain KeyboardInterrupt is SIGINT)."""
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The interrupt (Ctrl-C, SIGTERM) that was being handled when `exc` was raised, following its causes and
    contexts; None where none was. A driver cancelling its query on Ctrl-C may end in an error of its own
    (SQLAlchemy's connection check on the cancelled connection: "can't change 'autocommit' now"), which
    takes the interrupt's place unless it is raised again."""
    from hpotool.errors import chain

    return next((link for link in chain(exc) if isinstance(link, KeyboardInterrupt)), None)
