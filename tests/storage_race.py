"""What each process of tests/test_storage.py's race does: wait for its siblings, then open the storage.

A module of its own, importing only hpotool.storage, so the processes the test spawns start in about a second
each; spawned rather than forked (see the test)."""

from __future__ import annotations

from typing import Any


def open_after(barrier: Any, url: str, results: Any) -> None:
    """Once all the processes are at `barrier`, open `url` as hpotool does; put "ok" or the error's line."""
    from hpotool.storage import make_storage

    try:
        barrier.wait(timeout=120)  # a sibling that never got there (it died starting) breaks it, not for good
        make_storage(url)
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
