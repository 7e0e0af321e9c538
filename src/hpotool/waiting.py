"""How a run waits while other processes' trials hold every slot: a cheap look at the storage each poll,
the study's trials read again only once something changed.

A run whose slots are all taken (the last trials of a study several workers or machines share) used to read
the study's trials every 0.1 s: on PostgreSQL 7 statements a look (Optuna's cached storage reads every
unfinished trial with its params, values, attributes and curve), 62 statements and 4% of a core a second
for each process waiting. A look here is one statement (the count of the study's trials in each state), or
on a journal storage (Redis, a journal file) the journal's length, read as each read of the trials begins;
it changes whenever a trial is added or changes state, the only things that free a slot or end the study.
So a freed slot is noticed at the same next poll as before, and the trials are read once per change, and
at least every `FULL_LOOK_S` for what a state count does not show (a grid point a running trial records).

A grid or brute-force trial also waits, as it starts, for the trials asked before it to draw their values
(`wait_for_earlier_trials`): a few milliseconds, a poll or two; up to `DRAW_WAIT_S` (10 s) where one of them
never will (its process, on another machine, died between asking and drawing), which read the running
trials every 0.1 s (59 statements a second on PostgreSQL). After its first second it looks every
`SLOW_LOOK_S`. (A count does not serve here: a trial that picks a grid point again, taken back from the
queue, rewrites the attributes it had.) The first trial that a wait ran out on is not waited for again by this
process (`_given_up`): every later trial waited the whole 10 s for it, until the heartbeat failed it, and
for ever on a storage without one (Redis, journal files).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import time
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from hpotool.interrupts import raise_dropped
from hpotool.slot_lock import let_go_of_slot_lock

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.synchronize import Event

    import optuna
    from optuna.trial import FrozenTrial

_log = logging.getLogger("hpotool")

# The longest a waiting run goes without reading the study's trials again, changed or not.
FULL_LOOK_S = 2.0
# A start wait (`wait_for_earlier_trials`) looks every poll for its first QUICK_LOOKS_S (with --workers 2 on
# PostgreSQL the longest of 80 lasted 0.8 s, most none), then every SLOW_LOOK_S.
QUICK_LOOKS_S = 1.0
SLOW_LOOK_S = 1.0
# The numbers of the trials a start wait of this process ran out on, by study: undrawn for a whole wait, their
# process died (another machine's: one of this machine is `owners.died_here`), and later waits skip them.
# Per process (each --workers worker waits once for such a trial); only a run's own thread waits.
_given_up: weakref.WeakKeyDictionary[optuna.Study, set[int]] = weakref.WeakKeyDictionary()


def study_version(study: optuna.Study) -> Hashable:
    """A value that changes whenever a trial of `study` is created or changes state (it may change more
    often: a journal's grows with every write to any of its studies)."""
    from optuna.storages import JournalStorage, RDBStorage

    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # Optuna's cached storage, and hpotool's, wrap an RDB
    if isinstance(backend, RDBStorage):
        with backend.engine.connect() as connection:
            rows = connection.execute(_count_by_state(), {"study_id": study._study_id})
            return frozenset((str(state), n) for state, n in rows)
    if isinstance(storage, JournalStorage):
        with storage._thread_lock:
            storage._sync_with_backend()  # reads only the records written since the last read
            return storage._replay_result.log_number_read
    counts: dict[str, int] = {}  # another storage (in memory, a plugin's): its trials, counted by state
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return frozenset(counts.items())


@functools.cache
def _count_by_state() -> Any:
    """The statement counting a study's trials in each state (one, built once: a look costs its round trip)."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    return (
        sa.select(trials.c.state, sa.func.count())
        .where(trials.c.study_id == sa.bindparam("study_id"))
        .group_by(trials.c.state)
    )


def wait_for_change(
    study: optuna.Study, version: Hashable, poll: float, until: float, stop: Event | None = None
) -> Hashable:
    """Sleep `poll` at a time until `study_version` differs from `version`, `FULL_LOOK_S` or the monotonic
    time `until` has passed (the run's next look for stale trials, its timeout, a note due), or `stop` is set;
    returns the version last seen, for the next wait to start from.

    Raises:
        Interrupted: a signal a finalizer dropped (`interrupts.raise_dropped`).
    """
    until = min(until, time.monotonic() + FULL_LOOK_S)
    while True:
        time.sleep(poll)  # a whole poll, as before, even where `until` is near: never a busy loop
        raise_dropped()
        if (stop is not None and stop.is_set()) or time.monotonic() >= until:
            return version
        seen = study_version(study)
        if seen != version:
            return seen


def wait_for_earlier_trials(
    study: optuna.Study,
    number: int,
    ready: Callable[[FrozenTrial], bool],
    *,
    poll: float,
    limit_s: float,
    interrupted: Callable[[], bool] = lambda: False,
) -> None:
    """Wait until every running trial asked before trial `number` is `ready` (has drawn its values, picked its
    grid point) or was run by a process of this machine that died, at most `limit_s` (a process of another
    machine that died before it drew never will), or until `interrupted()`, which is asked every `poll`.

    The first trial still not ready when `limit_s` runs out is not waited for again in this process (a run
    of one process says so, once): a later wait, this one included, waits for the others alone, as long
    again (trials asked just after it may be waiting for it themselves, and pick as they give up)."""
    from optuna.trial import TrialState

    from hpotool.owners import died_here

    skip = _given_up.setdefault(study, set())
    while True:
        pending: list[FrozenTrial] = []
        begin = time.monotonic()
        while time.monotonic() - begin < limit_s and not interrupted():
            running = study._storage.get_all_trials(
                study._study_id, deepcopy=False, states=(TrialState.RUNNING,)
            )
            pending = [
                t
                for t in running
                if t.number < number and t.number not in skip and not ready(t) and not died_here(t)
            ]
            if not pending:
                return
            let_go_of_slot_lock()  # this trial holds its slot: the machine's other processes may ask
            quick = time.monotonic() - begin < QUICK_LOOKS_S
            for _ in range(1 if quick else max(1, round(SLOW_LOOK_S / poll))):
                time.sleep(poll)
                if interrupted() or time.monotonic() - begin >= limit_s:
                    break
        if interrupted() or not pending:
            return
        first = min(pending, key=lambda t: t.number)
        skip.add(first.number)
        if multiprocessing.parent_process() is None:  # with --workers, each worker would say it
            _log.warning(
                "note: trial #%d, asked by another process, has not drawn its values in %g s (that process "
                "may have died); this run does not wait for it again",
                first.number,
                limit_s,
            )
