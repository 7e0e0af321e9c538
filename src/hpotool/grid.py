"""`grid`: Optuna's grid sampler, counting a queued trial (a warm start) on the grid point it runs.

Optuna's `GridSampler` gives a queued trial no grid point (its values are fixed), so the point a warm start
ran stays unvisited and a later trial runs it again; and it gives trial number k the k-th point of its
shuffled grid without looking whether that point has run. This sampler marks a queued trial whose values
are a grid point with that point, as Optuna marks its own trials, and gives a new trial its number's point
only while that point is still unvisited (else an unvisited one, as Optuna picks them): every grid point
runs once, the warm start's included, and a study without a queue runs in Optuna's order. A trial that
Ctrl-C or SIGTERM interrupted, or whose worker died before it drew its values, leaves its point unvisited,
so the resumed run trains it; the retry of one whose worker died while it drew them runs its point.

Workers pick points in the order of their trials' numbers: a trial picks once every running trial asked
before it has recorded its point (each storage numbers a trial after every trial created before it, so
those are all there to read), among the points no other trial holds. Optuna's grid let two workers asking
at the same moment read the trials before either had recorded a point, and pick the same one. A trial
sent back to the queue untrained (no slot of `n_trials` was left) picks again when it is taken from it:
it kept the point it was given, which another trial may have run meanwhile; its point is void while it
waits there. Having recorded its point, a trial checks that no other trial runs or ran it (`holds_alone`),
else it goes back to the queue untrained (the loop does this): the grid had no point left once it could
pick (Optuna's grid then runs a running point again), or it was taken from the queue as a trial asked
after it picked, and neither waited for the other. Without a heartbeat (Redis, journal files), a point that
only a trial of another machine runs may be a dead worker's that nothing ends: once every other point has
started, a trial here picks it and runs it again, as Optuna's grid does; the workers of this machine hold
it then, and wait for it as for any point they run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from hpotool.resume import was_interrupted

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, point: Any) -> bool:
    if _number(value) and _number(point):  # Optuna's skip_if_exists tolerance
        return math.isclose(value, point, rel_tol=1e-5)
    return type(value) is type(point) and bool(value == point)


# The search space a trial sent back to the queue records in place of its point's (`void_point`): others
# read it as holding no point until it picks one again.
_VOID: dict[str, Any] = {}


class GridSampler(optuna.samplers.GridSampler):
    """`optuna.samplers.GridSampler` that runs a queued grid point once (see the module docstring)."""

    def _grid_id_of(self, params: Mapping[str, Any]) -> int | None:
        """The id of the grid point `params` sets, or None when they set none (a value off the grid)."""
        if set(params) != set(self._param_names):
            return None
        for grid_id, point in enumerate(self._all_grids):
            if all(_same(params[name], value) for name, value in zip(self._param_names, point, strict=True)):
                return grid_id
        return None

    def _point(self, trial: FrozenTrial) -> int | None:
        """The grid point `trial` holds: the one recorded, or a running queued trial's values' until it
        records it."""
        attrs = trial.system_attrs
        if "grid_id" in attrs and "search_space" in attrs:  # recorded in this order: both, or no point
            return int(attrs["grid_id"]) if self._same_search_space(attrs["search_space"]) else None
        if trial.state == TrialState.RUNNING and "fixed_params" in attrs:
            return self._grid_id_of(attrs["fixed_params"])
        return None

    def _visits(self, study: Study, but: int | None = None) -> tuple[set[int], set[int], set[int]]:
        """The points finished, held and running elsewhere (by trials other than number `but`), where a
        trial Ctrl-C or SIGTERM interrupted (FAIL, "interrupted"), or one that ended before it drew its
        values (its worker died), has not visited its point: resuming runs it. A running trial holds its
        point unless it may be a dead worker's that nothing would ever end (`may_be_lost`): Optuna's grid
        runs such a point again once every point has started, rather than wait for it for ever; one trial
        of this machine does, not every worker."""
        from hpotool.heartbeat import has_heartbeat
        from hpotool.owners import may_be_lost

        beating = has_heartbeat(study._storage)
        visited: set[int] = set()
        held: set[int] = set()
        elsewhere: set[int] = set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            point = self._point(t)
            if point is None or t.number == but:
                continue
            if t.state.is_finished() and t.params and not was_interrupted(t):
                visited.add(point)
            elif t.state == TrialState.RUNNING:
                (elsewhere if may_be_lost(t, beating) else held).add(point)
        return visited, held, elsewhere

    def _get_unvisited_grid_ids(self, study: Study, but: int | None = None) -> list[int]:
        """Optuna's unvisited points: neither finished nor running; else (all started) those only a trial
        that may be lost runs (`may_be_lost`), for one trial here to run again; else not finished."""
        visited, held, elsewhere = self._visits(study, but)
        every = set(range(self._n_min_trials))
        return list(every - visited - held - elsewhere or every - visited - held or every - visited)

    def _retried_point(self, study: Study, trial: FrozenTrial) -> int | None:
        """The grid point of the trial a dead worker's retry re-runs (`retry_of`): one killed while it drew
        its values queued only those it had, which are no grid point. Without it the retry failed ('All
        parameters must be specified') and the point, counted as run, never ran."""
        number = trial.user_attrs.get("retry_of")
        if not isinstance(number, int):
            return None
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if t.number == number and "grid_id" in t.system_attrs:
                same = self._same_search_space(t.system_attrs["search_space"])
                return int(t.system_attrs["grid_id"]) if same else None
        return None

    def all_started(self, study: Study) -> bool:
        """Whether every point has finished or is held by a running trial: a new trial would run a running
        point again (Optuna's choice, so that a study never stops before its last points finish). A point
        only a trial that may be lost runs (`may_be_lost`) is not: one trial here runs it again."""
        visited, held, _ = self._visits(study)
        return not set(range(self._n_min_trials)) - visited - held

    def _wait_for_earlier_points(self, study: Study, number: int) -> None:
        """Wait until every running trial asked before trial `number` has recorded its point (at most
        `DRAW_WAIT_S`, and once for a trial: a process of another machine that died while it asked never
        will; one of this machine that died is not waited for), or until Ctrl-C or SIGTERM: this runs
        inside `study.ask()`, where a signal waits for `ask` to return (`deferred`), and the trial it ends
        runs no point."""
        from hpotool.interrupts import interrupt_pending
        from hpotool.loop import POLL_S
        from hpotool.trial_setup import DRAW_WAIT_S
        from hpotool.waiting import wait_for_earlier_trials

        wait_for_earlier_trials(
            study, number, _picked, poll=POLL_S, limit_s=DRAW_WAIT_S, interrupted=interrupt_pending
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        attrs = trial.system_attrs
        if "grid_id" in attrs and ("failed_trial" in attrs or "fixed_params" in attrs):
            return  # a retried trial keeps its point
        if "fixed_params" in attrs:  # queued: it runs its own values; count them on their grid point
            grid_id = self._grid_id_of(attrs["fixed_params"])
            if grid_id is None:
                grid_id = self._retried_point(study, trial)
            if grid_id is not None:
                study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
                study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)
            return
        self._wait_for_earlier_points(study, trial.number)
        unvisited = self._get_unvisited_grid_ids(study, but=trial.number) or list(range(self._n_min_trials))
        # Optuna's order (point k for trial k), else a random unvisited point (all visited: any point)
        grid_id = trial.number if trial.number in unvisited else int(self._rng.rng.choice(unvisited))
        # The point, then the search space that makes it count: a reader never takes the point a trial sent
        # back to the queue held (`void_point`) for the one it picks now.
        study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)
        study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)

    def holds_alone(self, study: Study, trial_id: int) -> bool:
        """Whether the trial `trial_id`, which picked a point in `before_trial`, holds one no other trial has
        run or holds (a queued or retried trial runs its own values: always). Two trials pick the same point
        when none was left (Optuna's grid then runs a running point again), or when one taken from the queue
        picks as another trial asked after it picks too (it waited only for the trials asked before it, and
        the other trial did not wait for it, in the queue as it began); each records its point before it
        checks, so at least one of the two sees the other. A point that only a trial that may be lost
        runs (`may_be_lost`) is free to run again, by one trial: two here that picked it both check."""
        trial = study._storage.get_trial(trial_id)
        attrs = trial.system_attrs
        point = self._point(trial)
        if "fixed_params" in attrs or "failed_trial" in attrs or point is None:
            return True
        visited, held, _ = self._visits(study, but=trial.number)
        return point not in visited | held

    @staticmethod
    def void_point(study: Study, trial_id: int) -> None:
        """Mark the point of the trial `trial_id` void, as it goes back to the queue untrained: until it picks
        again, when it is taken from it, it holds none (others neither avoid nor wait for that point). A
        queued or retried trial keeps its values, and its point."""
        attrs = study._storage.get_trial_system_attrs(trial_id)
        if "grid_id" in attrs and "fixed_params" not in attrs and "failed_trial" not in attrs:
            study._storage.set_trial_system_attr(trial_id, "search_space", _VOID)


def _picked(trial: FrozenTrial) -> bool:
    """Whether running `trial` has its point: picked since it was last taken from the queue, or queued."""
    attrs = trial.system_attrs
    if "fixed_params" in attrs:
        return True
    return "grid_id" in attrs and attrs.get("search_space", _VOID) != _VOID
