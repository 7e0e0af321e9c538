"""Worker processes start from a warm server: torch and optuna are imported there once, in advance.

A spawned worker would import torch (~2 s) itself, each time. With the forkserver start method, the server
imports it once and forks each worker from there, for a run that trains with torch (`TORCH_PRELOAD`): the
workers of a training function that never imports torch import none of it, as one process does.
torch._dynamo (~1.7 s) is not preloaded: training through `hpotool.lean_step` never imports it, and a
worker whose optimizer does (any `optimizer.step()`) pays it once, in parallel with the other workers.
Starting the server before the main process checks the configs overlaps its imports with that work; where
the checks find the run needs other preloads than it was started with, it is started again. Stdlib only at
module level: the CLI calls `start_worker_server` before importing anything heavy.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.context import BaseContext

START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
PRELOAD = [
    "hpotool.server_signals",
    "torch",
    "optuna",
    "hpotool.runner",
    "hpotool.parts",
    "hpotool.objective",
    "hpotool.plan",
    "hpotool.study",
    "hpotool.workers",
]
# Preloaded only for a run that trains with torch: hpotool's Trainer, or a training function that imports it.
TORCH_PRELOAD = ("torch", "hpotool.parts")
_running: list[str] | None = None  # the preloads of the server this process started, while it runs


def preloads(uses_torch: bool) -> list[str]:
    """The modules the worker server imports: `PRELOAD`, less `TORCH_PRELOAD` where the run trains without
    torch."""
    return [name for name in PRELOAD if uses_torch or name not in TORCH_PRELOAD]


def worker_context(uses_torch: bool = True) -> BaseContext:
    """The multiprocessing context workers start in (forkserver with `preloads(uses_torch)`; spawn where
    unavailable)."""
    ctx = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        ctx.set_forkserver_preload(preloads(uses_torch))
    return ctx


def start_worker_server(uses_torch: bool = True) -> None:
    """Start the forkserver now, so its imports run while the main process does other work (a no-op when it
    runs already with `preloads(uses_torch)`; one this process started with other preloads is replaced: with
    torch where the run turned out to need it, without where it did not).

    The server ignores SIGTERM, as it ignores SIGINT (`hpotool.server_signals`, its first preload): a
    SIGTERM to the whole process group (a scheduler stopping the job) must not take it down before the
    workers it forked have ended their trials, or the main process could no longer wait for them. It still
    ends when the main process does: at once, by `_stop_server` (it would otherwise end only once its imports
    are done, seconds after a Ctrl-C in the first instant or a config error, on a loaded machine).
    """
    global _running
    worker_context(uses_torch)
    if START_METHOD == "forkserver":
        import atexit
        import signal
        import sys
        import threading
        from multiprocessing import forkserver

        if _running is not None and _running != preloads(uses_torch):
            _replace_server()
        _running = preloads(uses_torch)
        atexit.unregister(_stop_server)  # once, however often it is called
        atexit.register(_stop_server)
        if threading.current_thread() is not threading.main_thread():
            forkserver.ensure_running()
            return
        from multiprocessing import resource_tracker

        # Its own start unblocks SIGINT in this process (it blocks it while it spawns): start it first.
        # A main process killed outright (kill -9, the OOM killer) leaves the semaphores of its queues to
        # the tracker, which frees them, and warned "UserWarning: resource_tracker: There appear to be 21
        # leaked semaphore objects to clean up at shutdown" on the user's terminal; it starts with that
        # warning off (the -W options it is given are this process's `sys.warnoptions`).
        sys.warnoptions.append(_LEAK_WARNING_OFF)
        try:
            resource_tracker.ensure_running()
        finally:
            sys.warnoptions.remove(_LEAK_WARNING_OFF)
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited through fork and exec
        # SIGINT is blocked until the server ignores it (`hpotool.server_signals`, its first preload): a
        # Ctrl-C to the process group while Python started up there killed it with a traceback. Blocked,
        # not ignored here: a Ctrl-C in this process meanwhile waits, and is handled once unblocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # last: a pending Ctrl-C raises here


_LEAK_WARNING_OFF = "ignore::UserWarning:multiprocessing.resource_tracker"


def _replace_server() -> None:
    """Kill the worker server this process started and forget it, so that the next start starts another:
    its preloads are imported when it starts, and cannot change after. multiprocessing has no public pid or
    stop for the server: tests/test_library_internals.py guards the private ones read here and below."""
    import os
    import signal
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # CPython's, as ensure_running keeps it
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    # CPython's own (its tests'): reaps it, closes its pipe, forgets its address; ensure_running starts anew
    forkserver._forkserver._stop()  # type: ignore[attr-defined]


def _stop_server() -> None:
    """At exit: kill the worker server if it still runs. It ignores SIGINT and SIGTERM and ends by itself
    when this process's end closes its pipe, but only once its preloads are imported; the workers it forked
    have ended by now (the main process waits for them) and are not its to take down anyway. Left alone, it
    also held the command's output open (`hpotool ... | tee log` waited for it)."""
    import os
    import signal
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # CPython's, as ensure_running keeps it
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):  # ended already, or reaped
        pass
