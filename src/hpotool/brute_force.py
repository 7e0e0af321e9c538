"""`bruteforce`: Optuna's brute-force sampler, undisturbed by finished trials that drew no value.

Optuna's `BruteForceSampler` reads every finished trial as a point of the search: one that ended before
drawing a value (interrupted while it waited for a slot or for earlier draws, or failed because its worker
died first) reads as the empty point, which it cannot place beside the real ones. Every later `ask` then
raised `ValueError: param_name mismatch`, so the study could not be resumed; telling such a trial also
stopped the study as if every point had run. This sampler leaves those trials out: they ran nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from optuna.samplers._brute_force import _TreeNode
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState


class BruteForceSampler(optuna.samplers.BruteForceSampler):
    """`optuna.samplers.BruteForceSampler` that ignores finished trials without values (module docstring)."""

    @staticmethod
    def _populate_tree(tree: _TreeNode, trials: list[FrozenTrial], params: dict[str, Any]) -> None:
        drew = [t for t in trials if t.params or not t.state.is_finished()]
        optuna.samplers.BruteForceSampler._populate_tree(tree, drew, params)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        if trial.params:  # one without values tried no point: it cannot have been the last one
            super().after_trial(study, trial, state, values)
