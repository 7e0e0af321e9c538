"""How long storages wait, each overridable by an environment variable: a SQLite write for another
process's lock, a statement for a silent server, a trial's heartbeat (and how often a stale trial is retried)."""

from __future__ import annotations

import os

from hpotool.errors import HpoError

SQLITE_BUSY_TIMEOUT_S = 60  # how long a write waits for another process's lock on a SQLite file


def sqlite_busy_timeout() -> int:
    """Seconds a SQLite write waits for another process's lock (`SQLITE_BUSY_TIMEOUT_S`); the environment
    variable HPOTOOL_SQLITE_BUSY_TIMEOUT overrides it (tests, or a run that should give up sooner)."""
    return _seconds_from_env("HPOTOOL_SQLITE_BUSY_TIMEOUT", SQLITE_BUSY_TIMEOUT_S)


# A PostgreSQL or MySQL server that keeps a connection open and has not answered a statement on it for this many
# seconds is asked whether it still answers (a new connection, which must open as fast); one that does not
# ends the command with the usual line (`silence`). A slow statement on a server that answers goes on.
SERVER_SILENCE_S = 60


def server_silence() -> int:
    """Seconds a statement waits before its PostgreSQL or MySQL server is asked whether it still answers
    (`SERVER_SILENCE_S`); the environment variable HPOTOOL_SERVER_SILENCE overrides it."""
    return _seconds_from_env("HPOTOOL_SERVER_SILENCE", SERVER_SILENCE_S)


# Heartbeat (RDB storages: SQLite, PostgreSQL, MySQL): a running trial writes a heartbeat every
# HEARTBEAT_INTERVAL_S; one silent for HEARTBEAT_GRACE_S belongs to a dead worker and is marked FAIL by
# the next worker that starts a trial, and re-run (at most MAX_RETRY times) with the same parameters.
# Optuna 5's journal storages (Redis, journal files) have no heartbeat: `hpotool fail-stale` cleans up.
# The environment variables exist for tests and for clusters whose preemption is faster than a minute.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
MAX_RETRY = 2


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace) in seconds; HPOTOOL_HEARTBEAT_INTERVAL / HPOTOOL_HEARTBEAT_GRACE override them."""
    return _seconds_from_env("HPOTOOL_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S), _seconds_from_env(
        "HPOTOOL_HEARTBEAT_GRACE", HEARTBEAT_GRACE_S
    )


def _seconds_from_env(name: str, default: int) -> int:
    """A whole number of seconds >= 1 from the environment variable `name` (Optuna's heartbeat takes
    positive integers); a value that is not one was reported as the storage failing to open."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise HpoError(
            f"environment variable {name}={raw!r}: give a whole number of seconds, 1 or more "
            f"(default {default}), or unset it"
        )
    return value
