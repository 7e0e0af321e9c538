"""The main process of `optimize --workers N` following the study: each newly finished trial shown, and a
wait for other machines' trials said once."""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.objective import StudyObserver
from hpotool.owners import run_by
from hpotool.storage_faults import lost_connection
from hpotool.study import FINISHED
from hpotool.wait_notes import OwnerlessNote, WaitNote
from hpotool.waiting import FULL_LOOK_S, study_version


class Monitor:
    """Follows the study in the storage and tells the observer about each newly finished trial.

    A look reads the study's trials only when `study_version` has changed since the last read (a trial
    added, or one whose state changed: each finished trial is one), at least every `FULL_LOOK_S`, and when
    `wake_for` asks (a note due): before, every look (twice a second, the whole run) read them all."""

    def __init__(self, study: optuna.Study, observer: StudyObserver | None) -> None:
        self.study, self.observer = study, observer
        self.version = study_version(study)  # before the trials: a change in between is read next look
        self.trials = study.get_trials(deepcopy=False)  # as the last look found them
        self.read_at = time.monotonic()
        self.read_by: float | None = None  # when a note wants the trials read again, changed or not
        self.seen = {t.number for t in self.trials if t.state.is_finished()}

    def wake_for(self, seconds: float | None) -> None:
        """Read the trials again at the first look `seconds` from now (None: no such need)."""
        self.read_by = None if seconds is None else time.monotonic() + seconds

    def poll(self, *, read: bool = False) -> None:
        """Show the newly finished trials (`read`: read the trials whether or not the study changed). A
        connection the server dropped (a restart, a failover) is only a look missed: the next one
        reconnects. Before, this process stopped every worker (their trials ended FAIL, "interrupted",
        never run again) while the server answered them; one gone for good, the workers meet at their next
        write, and end the run (`LOST_STORAGE_EXIT`)."""
        try:
            self._poll(read=read)
        except Exception as exc:
            if lost_connection(exc) is None:
                raise

    def _poll(self, *, read: bool = False) -> None:
        version = study_version(self.study)
        now = time.monotonic()
        due = now >= self.read_at + FULL_LOOK_S or (self.read_by is not None and now >= self.read_by)
        if version == self.version and not (read or due):
            return
        self.version, self.read_at, self.read_by = version, now, None
        self.trials = self.study.get_trials(deepcopy=False)
        new = [t for t in self.trials if t.state.is_finished() and t.number not in self.seen]
        for t in sorted(new, key=lambda t: (t.datetime_complete or t.datetime_start, t.number)):
            self.seen.add(t.number)
            if self.observer is not None:
                self.observer.trial_finished(self.study, t)


def look_for_a_wait(
    note: WaitNote | None,
    ownerless: OwnerlessNote,
    study: optuna.Study,
    trials: list[FrozenTrial],
    target: int,
    procs: list[Any],
) -> None:
    """Whether a worker waits for a slot, every one taken by the study's finished and running trials, and
    fewer of them run by the live workers than there are: `note` says once that the run waits for the
    other machines' (each worker would say it; a single process says it itself, `loop.run_trials`), and
    `ownerless` that it waits for a trial with no owner recorded."""
    taken = [t for t in trials if t.state in FINISHED or t.state == TrialState.RUNNING]
    alive = {p.pid for p in procs if p.pid is not None and p.is_alive()}
    busy = sum(t.state == TrialState.RUNNING and run_by(t, alive) for t in taken)
    finished = sum(t.state in FINISHED for t in taken)
    waiting = len(taken) >= target > finished and busy < len(alive)
    if note is not None:
        note.look(taken, waiting, time.monotonic())
    if waiting:
        ownerless.look(study, taken, say=True)
    else:
        ownerless.note_in = None  # none to say while the run does not wait


def note_due(note: WaitNote | None, ownerless: OwnerlessNote) -> float | None:
    """Seconds until one of the notes on a wait may be due (None: neither), when `look_for_a_wait` must
    see the trials as they are then, not as the last change left them: a trial's owner, recorded after
    its `ask`, changes no state."""
    due = [s for s in (ownerless.note_in, note.due_in(time.monotonic()) if note else None) if s is not None]
    return min(due) if due else None
