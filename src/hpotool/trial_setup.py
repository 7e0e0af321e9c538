"""Setting up a trial this process just asked for, before it trains: a slot of `n_trials`, its grid point,
this process's own seeds, the brute-force draws of the trials asked before it. A trial that may not run
goes back to the queue untrained (WAITING), for the next `ask` anywhere to take.

The slot makes `n_trials` exact however many processes share the study: a trial whose rank among the
finished and running trials is beyond the target goes back (Optuna counts only COMPLETE and PRUNED trials),
so processes racing at the end never overshoot the target.
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.exhaustion import brute_force_point_left, own_values, waits_for_running
from hpotool.interrupts import deferred
from hpotool.overrides import leaf_values
from hpotool.owners import owner
from hpotool.plan import StudyPlan
from hpotool.study import FINISHED
from hpotool.study_sampler import process_salt, study_sampler
from hpotool.suggestion import drawn
from hpotool.waiting import wait_for_earlier_trials

# How long a brute-force trial waits for the values of trials asked before it (see _wait_for_earlier_draws).
DRAW_WAIT_S = 10.0


class Unasked(NamedTuple):
    """The trials no process had asked for when this process opened the study, seeing no other process: those
    numbered `since` (the count it held) or more, and the queued ones numbered below (`queued`: a retry, a
    warm start), which a process resuming beside it may take first, drawing nothing (see `_own_seeds`)."""

    since: int
    queued: frozenset[int] = frozenset()


class TrialSetup:
    """Sets up the trials one process asks for (`__call__`); remembers whether its first is still to come."""

    def __init__(
        self, study: optuna.Study, plan: StudyPlan, target: int, poll: float, alone_since: Unasked | None
    ) -> None:
        """`alone_since`: see `loop.run_trials`; `poll`: how long a trial sent back waits, at least."""
        self.study, self.plan, self.target, self.poll = study, plan, target, poll
        self.alone_since = alone_since

    def __call__(self, trial: optuna.Trial) -> bool:
        """Whether `trial` may run: it holds a slot of the target and its point, is marked as this process's,
        and draws with this process's own seeds; else it went back to the queue untrained."""
        study = self.study
        if not has_slot(study, trial, self.target):  # another process asked at the same moment
            self._step_back(trial, self.poll)
            return False
        if not _holds_its_point(study, trial):  # the grid had no point left to pick, or another trial
            # picked the same one: wait for the last points (random: two that both stepped back do not meet
            # again)
            self._step_back(trial, self.poll * (1 + random.random()))
            return False
        trial.set_user_attr("worker", owner())
        if self.alone_since is not None:  # this process's first trial: see _own_seeds
            self._seed_apart(trial, self.alone_since)
            self.alone_since = None
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.BruteForceSampler) and not self._point_left(trial, sampler):
            self._step_back(trial, self.poll * (1 + random.random()))
            return False
        return True

    def _step_back(self, trial: optuna.Trial, pause: float) -> None:
        """Send `trial` back to the queue untrained (`_send_back`), then wait `pause` seconds."""
        _send_back(self.study, trial)
        time.sleep(pause)

    def _seed_apart(self, trial: optuna.Trial, alone_since: Unasked) -> None:
        """Give this process seeds of its own where another process asked a trial since it opened the study
        (`_own_seeds`). A grid or brute force picks its points apart by the trials' numbers already, and a
        new sampler's before_trial would pick this trial's grid point again."""
        coordinated = isinstance(
            self.study.sampler, (optuna.samplers.GridSampler, optuna.samplers.BruteForceSampler)
        )
        if not coordinated and _others_asked(self.study, alone_since, trial.number):
            _own_seeds(self.study, trial, self.plan, alone_since.since)

    def _point_left(self, trial: optuna.Trial, sampler: optuna.samplers.BruteForceSampler) -> bool:
        """Whether brute-force `trial` has a point to run, once the trials asked before it have drawn theirs:
        its own queued values, a point no trial ran or drew, or no running trial to wait for."""
        study = self.study
        _wait_for_earlier_draws(study, trial.number, self.plan, self.poll)
        # Every point run or drawn by the trials asked before it, which this process saw as free before it
        # asked: Optuna's brute force would run one again (a queued trial, such as a retry, runs its own
        # values).
        own = study._storage.get_trial_system_attrs(trial._trial_id)
        drawn_by_others = not brute_force_point_left(study, sampler)
        return not (not own_values(own) and drawn_by_others and waits_for_running(study))


def finished_and_running(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that hold a slot of the target: finished, or running."""
    return study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))


def has_slot(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether `trial` is within the target: finished trials plus running ones asked before it."""
    ahead = sum(t.state in FINISHED or t.number <= trial.number for t in finished_and_running(study))
    return ahead <= target


def _others_asked(study: optuna.Study, unasked: Unasked, mine: int) -> bool:
    """Whether another process has asked a trial since this one opened the study (a trial `unasked` names,
    other than this process's first, `mine`, was created, or was taken from the queue: started). A queued
    trial the resume marked FAIL as it waited ('dropped: ...', never started) was asked by no process: taken
    for another's, it seeded a process resuming alone apart, and the same resume drew other values each time."""
    asked = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False, states=asked)
    return any(
        t.number != mine
        and (t.number >= unasked.since or (t.number in unasked.queued and t.datetime_start is not None))
        for t in trials
    )


def _own_seeds(study: optuna.Study, trial: optuna.Trial, plan: StudyPlan, existing: int) -> None:
    """Give this process a sampler seeded with its host and process id, before `trial` draws a value.

    A process that resumes an idle study seeds its sampler from the seed and the trial count alone, so a
    rerun gives the same study; the same command resumed at one moment on several machines did so on each
    and they drew the same values (trials 1 and 2 identical). Optuna draws at the first suggest, after
    `ask`: the later of two processes to ask sees the other's trial here at the latest, and draws its own.
    Their first trials are the only ones to check: a process that opens the study later counts another
    number of trials, which seeds it apart. A queued trial (a retry) the other took first counts too: it
    drew nothing, and where only the trials numbered from the count on were checked, the later process
    missed it, kept the same seed, and the other's next trial drew the values its first had drawn.
    """
    study.sampler = study_sampler(
        plan.opt, fixed=leaf_values(plan.run), existing=existing, salt=process_salt()
    )
    study.sampler.before_trial(study, study._storage.get_trial(trial._trial_id))


def _send_back(study: optuna.Study, trial: optuna.Trial) -> None:
    """Put `trial` back in the queue untrained, for the next `ask` anywhere to take (its grid point void:
    taken, it picks one again). A signal waits until it is there."""
    from hpotool.grid import GridSampler

    with deferred():
        if isinstance(study.sampler, GridSampler):
            study.sampler.void_point(study, trial._trial_id)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)


def _holds_its_point(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether `trial` may run the grid point it picked: no other trial ran it or holds it (without a
    heartbeat, a trial of another machine may be a dead worker's, whose point one trial here runs again, as
    Optuna's grid does rather than wait for ever: `GridSampler.holds_alone`). True for other samplers."""
    from hpotool.grid import GridSampler

    sampler = study.sampler
    return not isinstance(sampler, GridSampler) or sampler.holds_alone(study, trial._trial_id)


def _wait_for_earlier_draws(study: optuna.Study, number: int, plan: StudyPlan, poll: float) -> None:
    """Wait until every running trial asked before trial `number` has drawn its values (at most
    `DRAW_WAIT_S`, and once for a trial: a process of another machine that died between asking and drawing
    never will; one of this machine that died is not waited for). Brute force draws a trial's values from
    the trials stored as it draws, so two workers that asked at the same moment drew the same point: a
    3-point search with --workers 2 ran each point twice."""
    space, fixed = plan.opt.search_space, leaf_values(plan.run)
    wait_for_earlier_trials(
        study, number, lambda t: drawn(t.params, space, fixed), poll=poll, limit_s=DRAW_WAIT_S
    )
