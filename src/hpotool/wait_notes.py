"""The notes a run waiting for a slot says once: it waits for other machines' trials on a storage
without heartbeat (`WaitNote`), or for a trial left RUNNING with no owner recorded (`OwnerlessNote`)."""

from __future__ import annotations

import logging
import math
from shlex import quote

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.dead_trials import ownerless_left
from hpotool.owners import on_this_host
from hpotool.plan import StudyPlan

_log = logging.getLogger("hpotool")


class WaitNote:
    """Says once (`_waiting_for_other_machines`) that a run has waited the heartbeat's grace period for the
    study's last trials, running on other machines, on a storage without heartbeat (Redis, journal files),
    where a machine gone for good would keep it waiting silently for ever. A single process looks before
    each trial; with --workers, their main process looks (each worker would say it)."""

    def __init__(self, plan: StudyPlan, grace: float) -> None:
        self.plan, self.grace = plan, grace
        self.since: float | None = None  # since when this wait has lasted; None while not waiting
        self.said = False

    def look(self, trials: list[FrozenTrial], waiting: bool, now: float) -> None:
        """`trials`: the study's finished and running trials; `waiting`: whether the run waits for a slot."""
        if self.said or not waiting:
            self.since = None  # a slot came free: a later wait counts from its own start
            return
        if self.since is None:
            self.since = now
        elif now - self.since >= self.grace:
            self.said = _waiting_for_other_machines(self.plan, trials)

    def due_in(self, now: float) -> float | None:
        """Seconds until the next `look` may say it; None where it has said it, the run does not wait, or
        the grace has passed (it says it at the look that first finds a trial of another machine running:
        that trial's start is a change to the study, which a waiting run reads the trials again for)."""
        if self.said or self.since is None or now - self.since >= self.grace:
            return None
        return self.since + self.grace - now


OWNERLESS_NOTE_AFTER_S = 5.0  # an ownerless trial this old is no owner write on its way (those take ms)


class OwnerlessNote:
    """Says once that a run waiting for a slot waits for a trial left RUNNING with no owner recorded, for
    how long at most, and what then (`dead_trials.fail_ownerless_trials`): a resumed run waited up to the grace
    period (60 s) without a word before it failed that trial. The grace is not shortened: the trial's
    process may be alive, waiting out a lock to record itself."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.said: set[int] = set()
        self.note_in: float | None = None  # seconds until a trial of the last look is old enough to say

    def look(self, study: optuna.Study, trials: list[FrozenTrial], *, say: bool) -> float | None:
        """Called while the run waits for a slot, every one taken by `trials`; returns the seconds until the
        first of their ownerless trials is past its grace (None where there is none), and says so where
        `say` (once for each such trial)."""
        self.note_in = None
        left = ownerless_left(trials, self.grace, study._storage)
        if not left:
            return None
        # A live process records its owner milliseconds after `ask`: one just asked (the last slot, which
        # this run waits for) is no wait to announce; one without an owner for seconds is.
        after = min(OWNERLESS_NOTE_AFTER_S, self.grace / 2)
        young = [
            s - (self.grace - after) for n, s in left.items() if n not in self.said and self.grace - s < after
        ]
        if say and young:  # the run looks again then, whether or not the study changed meanwhile
            self.note_in = max(min(young), 0.0)
        old = {n: s for n, s in left.items() if self.grace - s >= after}
        # one past it: failed next look
        if say and old and not old.keys() <= self.said and max(old.values()) > 0:
            self.said |= old.keys()
            one = len(old) == 1
            _log.warning(
                "note: waiting up to %d s for %s %s, RUNNING with no owner recorded (%s ended or lost the "
                "storage before recording itself, or is still waiting to); a trial still without one %d s "
                "after its start is marked FAIL, and this run takes its slot",
                math.ceil(max(old.values())),
                "trial" if one else "trials",
                ", ".join(f"#{n}" for n in sorted(old)),
                "the process that started it" if one else "the processes that started them",
                self.grace,
            )
        return min(left.values())


def _waiting_for_other_machines(plan: StudyPlan, trials: list[FrozenTrial]) -> bool:
    """Say that the run waits for the study's last trials, running on other machines (`WaitNote`); returns
    whether it said it (False where none runs elsewhere: other processes of this machine)."""
    elsewhere = [t for t in trials if t.state == TrialState.RUNNING and not on_this_host(t)]
    if not elsewhere:
        return False
    from hpotool.storage_url import shown_url

    def where(t: FrozenTrial) -> str:
        who = t.user_attrs.get("worker")
        return f" ({who.get('host')}, pid {who.get('pid')})" if isinstance(who, dict) else ""

    listed = ", ".join(f"#{t.number}{where(t)}" for t in elsewhere)
    _log.warning(
        "note: waiting for the study's last trials, running on other machines: %s. This storage has no "
        "heartbeat to tell a dead machine from a live one: if one is gone, stop every run of the study and "
        "run hpotool fail-stale --study-name %s --storage %s --all-running",
        listed,
        quote(plan.opt.study_name),
        quote(shown_url(plan.storage_url)),
    )
    return True
