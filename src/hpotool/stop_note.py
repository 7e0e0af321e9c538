"""Why a run stopped, kept on its study where the run could not say it: `hpotool optimize ... |& head`.

With stderr the closed pipe, the note saying why the run stopped ("interrupted between trials: ...") went
to /dev/null with the rest (`pipes`), and nothing read afterwards said why the study held 2 trials of 40:
the trial lines stop after a trial has ended, so no trial was cut off and none says "interrupted". The
note is kept on the study instead (a user attr), with where and when the run stopped; `hpotool studies`
and `hpotool trials` show it, and the next `optimize` of the study says it once and clears it.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timezone
from typing import Any

import optuna

ATTR = "unseen_stop"  # the study user attr; None once said
WHY = "its output went into a closed pipe (the reader, such as head, had exited)"

_log = logging.getLogger("hpotool")


def keep(study_name: str, storage_url: str, note: str) -> None:
    """Keep `note`, what the run that stopped on a closed pipe would have printed, on its study."""
    from hpotool.storage import load_study

    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kept = {"note": note, "host": socket.gethostname(), "pid": os.getpid(), "at": at}
    try:
        load_study(study_name, storage_url).set_user_attr(ATTR, kept)
    except Exception as exc:  # a storage gone now: the run stops as it would have, with 141
        _log.debug("the stop note was not kept on study %r: %s", study_name, exc, exc_info=exc)


def kept(user_attrs: dict[str, Any]) -> str | None:
    """The note a stopped run kept on the study (`keep`) in words, or None where none is kept."""
    stop = user_attrs.get(ATTR)
    if not isinstance(stop, dict) or not isinstance(stop.get("note"), str):
        return None
    where = f"pid {stop.get('pid')} on {stop.get('host')}, {stop.get('at')}"
    return f"a run ({where}) stopped because {WHY}, so this went unseen: {stop['note']}"


def say_and_clear(study: optuna.Study) -> None:
    """Say the note a run kept on `study` (as the `note:` lines of a run's start), once: cleared after."""
    text = kept(study.user_attrs)
    if text is None:
        return
    _log.warning("note: study %r: %s", study.study_name, text)
    study.set_user_attr(ATTR, None)
