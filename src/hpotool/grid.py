"""`grid`: Optuna's grid sampler, counting a queued trial (a warm start) on the grid point it runs.

Optuna's `GridSampler` gives a queued trial no grid point (its values are fixed), so the point a warm start
ran stays unvisited and a later trial runs it again; and it gives trial number k the k-th point of its
shuffled grid without looking whether that point has run. This sampler marks a queued trial whose values
are a grid point with that point, as Optuna marks its own trials, and gives a new trial its number's point
only while that point is still unvisited (else an unvisited one, as Optuna picks them): every grid point
runs once, the warm start's included, and a study without a queue runs in Optuna's order. A trial that
Ctrl-C or SIGTERM interrupted, or whose worker died before it drew its values, leaves its point unvisited,
so the resumed run trains it; the retry of one whose worker died while it drew them runs its point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, point: Any) -> bool:
    if _number(value) and _number(point):  # Optuna's skip_if_exists tolerance
        return math.isclose(value, point, rel_tol=1e-5)
    return type(value) is type(point) and bool(value == point)


def _interrupted(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") == "interrupted"


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

    def _visits(self, study: Study) -> tuple[set[int], set[int]]:
        """The points finished and running, where a trial Ctrl-C or SIGTERM interrupted (FAIL,
        "interrupted"), or one that ended before it drew its values (its worker died), has not visited its
        point: resuming runs it."""
        visited, running = set(), set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if "grid_id" not in t.system_attrs or not self._same_search_space(t.system_attrs["search_space"]):
                continue
            if t.state.is_finished() and t.params and not _interrupted(t):
                visited.add(t.system_attrs["grid_id"])
            elif t.state == TrialState.RUNNING:
                running.add(t.system_attrs["grid_id"])
        return visited, running

    def _get_unvisited_grid_ids(self, study: Study) -> list[int]:
        """Optuna's unvisited points: neither finished nor running, else (all started) not finished."""
        visited, running = self._visits(study)
        every = set(range(self._n_min_trials))
        return list(every - visited - running or every - visited)

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
        """Whether every point has finished or is running: a new trial would run a running point again
        (Optuna's choice, so that a study never stops before its last points finish)."""
        visited, running = self._visits(study)
        return not set(range(self._n_min_trials)) - visited - running

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        attrs = trial.system_attrs
        if "grid_id" in attrs:  # a retried trial keeps its point
            return
        if "fixed_params" in attrs:  # queued: it runs its own values; count them on their grid point
            grid_id = self._grid_id_of(attrs["fixed_params"])
            if grid_id is None:
                grid_id = self._retried_point(study, trial)
            if grid_id is not None:
                study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
                study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)
            return
        unvisited = self._get_unvisited_grid_ids(study)
        if not unvisited or trial.number in unvisited:
            super().before_trial(study, trial)  # Optuna's order (point k for trial k), or its re-evaluation
            return
        study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
        study._storage.set_trial_system_attr(trial._trial_id, "grid_id", int(self._rng.rng.choice(unvisited)))
