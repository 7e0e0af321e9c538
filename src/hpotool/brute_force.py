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

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from hpotool.search_space import drawn

if TYPE_CHECKING:
    from optuna.samplers._brute_force import _TreeNode
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

    from hpotool.search_space import Param


class BruteForceSampler(optuna.samplers.BruteForceSampler):
    """`optuna.samplers.BruteForceSampler` that ignores finished trials without a whole point (module
    docstring)."""

    _draws: tuple[Mapping[str, Param], Mapping[str, Any]] | None = None

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
        optuna.samplers.BruteForceSampler._populate_tree(tree, drew, params)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        if self._drew(trial):  # one without a whole point tried none: it cannot have been the last one
            super().after_trial(study, trial, state, values)
