"""A machine joining a study by its name alone waits a while for the machine that creates it.

A cluster script starts every worker at once: `hpotool optimize -r RUN -o OPT --storage URL` on one machine and
`hpotool optimize --study-name NAME --storage URL` on the others. The creator spends seconds (imports, the
data, the checks before trial 0) before the study exists, and the joiners failed at once with 'no study'.
Now a joiner given a storage that answers and lacks the study says so in one note and looks again every
second, for `HPOTOOL_JOIN_WAIT` seconds (default `JOIN_WAIT_S`), then fails with the same line as before.
Without `--storage` (the default SQLite file of this folder) it fails at once: the creator is this machine.
A file storage not there yet is waited for too (the creator, on a folder the machines share, makes it), the
note naming the file, so that a mistyped path is seen at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna

JOIN_WAIT_S = 120.0
POLL_S = 1.0
DESCRIBE_WAIT_S = 10.0  # as `study.CREATOR_WAIT_S`: a study plain Optuna code made is never described


def join_wait() -> float:
    """How long a joiner waits for its study, in seconds: HPOTOOL_JOIN_WAIT, else `JOIN_WAIT_S`.

    Raises:
        HpoError: HPOTOOL_JOIN_WAIT is not a number of seconds.
    """
    text = os.environ.get("HPOTOOL_JOIN_WAIT")
    if text is None:
        return JOIN_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise HpoError(
            f"environment variable HPOTOOL_JOIN_WAIT={text!r}: give the seconds to wait for the study, e.g. 120 "
            "(0: no wait), or unset it"
        )
    return value


def await_study(
    study_name: str,
    storage_url: str | None,
    find: Callable[[], optuna.Study],
    limit: float,
    on_wait: Callable[[str], None] | None = None,
) -> optuna.Study:
    """`find()` the study; while the storage given answers and lacks it, or holds it made a moment ago and not
    yet described, try again every second for `limit` seconds from the note `on_wait` is called with once
    (the last look started to end by then, as long as the one before it took).

    Raises:
        HpoError: what `find` raises once the wait is over (or at once where no other machine can create it).
    """
    from hpotool.fingerprint import ATTR

    if storage_url is None:
        limit = 0.0
    deadline = time.monotonic() + limit
    noted_at: float | None = None  # when the note said the wait: `limit` seconds from then
    look_s = 0.0  # how long the last look at the storage took (find, and what the note reads)
    found_by: float | None = None  # found undescribed: its creator describes it within seconds, if at all
    while True:
        began, noted = time.monotonic(), noted_at is not None
        try:
            study = find()
        except HpoError as exc:
            # A wait is said before it ends, however long the first look took (a loaded machine's first
            # look outlasted HPOTOOL_JOIN_WAIT=0.5, and the command ended without a word of waiting), and the
            # study is looked for once more. A look that the last one's length says would end past the
            # deadline is not started (a look at a PostgreSQL server takes a second or more: "waiting up to
            # 2 s" waited 4).
            over = (noted or limit <= 0) and time.monotonic() + look_s > deadline
            if over or not _may_appear(study_name, storage_url):
                if noted_at is not None:
                    waited = time.monotonic() - noted_at
                    raise HpoError(f"{exc}; waited {waited:.0f} s for another machine to create it") from None
                raise
            missing = None if noted else _missing_file(storage_url)
            if missing is not None:
                reason, it = f"no {missing} yet", f"study {study_name!r} in it"
            else:
                reason, it = (
                    f"no study {study_name!r} there yet{'' if noted else _near(study_name, storage_url)}",
                    "it",
                )
        else:
            if found_by is None:
                found_by = min(deadline, time.monotonic() + DESCRIBE_WAIT_S)
            if time.monotonic() >= found_by or not _being_described(study, ATTR):
                return study
            reason, it = f"study {study_name!r} is being created", "it"
        if noted_at is None:
            if on_wait is not None:
                on_wait(
                    f"{reason}: waiting up to {limit:g} s for the machine that creates {it} (HPOTOOL_JOIN_WAIT "
                    f"sets how long)"
                )
            noted_at = time.monotonic()
            deadline = noted_at + limit
        look_s = time.monotonic() - began
        # then one last look, started to end by the deadline
        time.sleep(min(POLL_S, max(0.0, deadline - look_s - time.monotonic())))


def _missing_file(storage_url: str | None) -> str | None:
    """`SQLite file '/abs/path.db'` (or `journal file ...`) where the storage is a file not there yet, else
    None. The note then names the file, absolute, so a mistyped path shows at once and not after the wait:
    the wait itself is right, as the creator may be another machine on a folder they share (the journal
    file Optuna recommends there, or a SQLite file), which makes the file seconds after this one starts."""
    import os

    from hpotool.storage_url import storage_file

    path = storage_file(storage_url) if storage_url is not None else None
    if path is None or path.exists():
        return None
    kind = "journal" if storage_url is not None and storage_url.startswith("journal:") else "SQLite"
    return f"{kind} file {os.path.abspath(path)!r}"


def _near(study_name: str, storage_url: str | None) -> str:
    """` (did you mean 'NAME'?)` for a study of a close name the storage holds: a misspelt --study-name
    waited the whole HPOTOOL_JOIN_WAIT for a study no machine creates; "" when none is close."""
    from hpotool.storage import make_storage
    from hpotool.study_names import near_study, study_names

    if storage_url is None:
        return ""
    try:
        return near_study(study_name, study_names(make_storage(storage_url, create=False)))
    except Exception:  # a file not there yet, a server that stopped answering: nothing to suggest
        return ""


def _being_described(study: optuna.Study, attr: str) -> bool:
    """Whether `study` looks like one its creator is still describing: no fingerprint, no configs stored
    yet or some but not all, and nothing run in it."""
    from optuna.trial import TrialState

    attrs = study.user_attrs
    if attr in attrs:
        return False
    return all(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False))


def _may_appear(study_name: str, storage_url: str | None) -> bool:
    """Whether the storage answers and lacks the study, so that another machine may create it there: a
    file storage whose file is not there yet, or a server that holds no study of that name (and no
    other Redis prefix or database on it does: find()'s error names the URL that holds it, where the joiner
    waited the whole HPOTOOL_JOIN_WAIT for a study its machine's URL gave another database number of), or
    one that holds it now, made after find() looked (a joiner gave up with 'no study' then). A URL that is
    wrong or a server that does not answer: no."""
    if storage_url is None:
        return False
    from hpotool.storage import make_storage, redis_databases_holding, redis_prefixes_holding
    from hpotool.storage_url import sqlite_path
    from hpotool.study_names import study_names

    path = (
        Path(storage_url.removeprefix("journal:"))
        if storage_url.startswith("journal:")
        else sqlite_path(storage_url)
    )
    if path is not None and not path.exists():
        return True
    try:
        names = study_names(make_storage(storage_url, create=False))
        if study_name in names:  # made since find() looked (its creator is this fast): find it next time
            return True
        return not (
            redis_prefixes_holding(storage_url, study_name)
            or redis_databases_holding(storage_url, study_name)
        )
    except Exception:
        return False
