"""`bruteforce`: Optuna's brute-force sampler, undisturbed by finished trials that drew part of a point.

Optuna's `BruteForceSampler` reads every finished trial as a point of the search: one that ended before
drawing a value (interrupted while it waited for a slot or for earlier draws, or failed because its worker
died first) reads as the empty point, and one whose worker was killed between two of its draws as a point
with fewer values, which it cannot place beside the real ones. Every later `ask` then raised
`ValueError: param_name mismatch`, so the study could not be resumed, and the retry of a point drawn in part
failed so; telling such a trial also stopped the study as if every point had run (2 of 4 points run). This
sampler leaves those trials out: they ran nothing. It knows a point drawn in part by the search space and
the run config's values its conditions read (`knows`); without them, it leaves out the trials that drew
no value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from hpotool.suggestion import drawn

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.samplers._brute_force import _TreeNode
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

    from hpotool.search_space import Param


class BruteForceSampler(optuna.samplers.BruteForceSampler):
    """`optuna.samplers.BruteForceSampler` that ignores finished trials without a whole point (module
    docstring), and, made with `avoid_premature_stop`, draws no point a live process of this machine runs,
    nor another machine's running point while a point is free.

    Optuna's strict search draws a running point once no point is free (the trial running it may never
    end: without a heartbeat, another machine's may be a dead worker's), picking among the running points
    at random: with --workers, one this machine's other worker was running, which then ran twice here. With
    several parameters it drew one sooner (`_as_run`)."""

    _draws: tuple[Mapping[str, Param], Mapping[str, Any]] | None = None
    _drawing = False  # in `sample_independent`: the points this machine runs, or every running one while a
    # point is free, count as run

    def knows(self, space: Mapping[str, Param], fixed: Mapping[str, Any]) -> None:
        """Tell it the search space and the run config's values (`leaf_values`) its conditions read."""
        self._draws = (space, fixed)

    def _drew(self, trial: FrozenTrial) -> bool:
        """Whether `trial` drew its whole point (as far as this sampler knows the search space)."""
        return bool(trial.params) and (self._draws is None or drawn(trial.params, *self._draws))

    def _populate_tree(  # type: ignore[override]
        self, tree: _TreeNode, trials: list[FrozenTrial], params: dict[str, Any]
    ) -> None:
        drew = [t for t in trials if not t.state.is_finished() or self._drew(t)]
        if self._drawing and self._avoid_premature_stop:
            drew = self._as_run(drew, self._free(tree, drew, params))
        optuna.samplers.BruteForceSampler._populate_tree(tree, drew, params)

    def _free(self, tree: _TreeNode, trials: list[FrozenTrial], params: dict[str, Any]) -> bool:
        """Whether a point below `params` (the values drawn so far) is neither finished nor drawn by a
        running trial, in a tree like `tree` (only its root expanded) of `trials`."""
        from optuna.samplers._brute_force import _TreeNode

        probe = _TreeNode()
        if tree.param_name is not None and tree.choices_args is not None:
            probe.expand(tree.param_name, tree.choices_args)
        optuna.samplers.BruteForceSampler._populate_tree(probe, trials, params)
        return probe.is_any_expandable(exclude_running=True)

    def run_here_as_run(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """`trials`, each RUNNING one that a process of this machine runs with its whole point drawn told
        COMPLETE (a copy): a point this machine runs is no point to draw (its dead processes' trials are
        failed before a trial is asked, `fail_dead_local_trials`)."""
        return self._as_run(trials, False)

    def _as_run(self, trials: list[FrozenTrial], every: bool) -> list[FrozenTrial]:
        """`trials`, each RUNNING one with its whole point drawn told COMPLETE (a copy) where it is this
        machine's (`run_here_as_run`) or, with `every`, any machine's: while a point is free, Optuna's strict
        search draws no running one at the last parameter, but at an earlier one it weighs the branches by
        their points running or free, and drew one where only another machine's live trial's point was left,
        which then ran twice beside a free point."""
        from optuna.trial import TrialState

        from hpotool.owners import on_this_host

        def as_run(t: FrozenTrial) -> FrozenTrial:
            if t.state != TrialState.RUNNING or not (every or on_this_host(t)) or not self._drew(t):
                return t
            done = copy.copy(t)
            done.state = TrialState.COMPLETE
            return done

        return [as_run(t) for t in trials]

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        self._drawing = True
        try:
            return super().sample_independent(study, trial, param_name, param_distribution)
        finally:
            self._drawing = False

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        if self._drew(trial):  # one without a whole point tried none: it cannot have been the last one
            super().after_trial(study, trial, state, values)
