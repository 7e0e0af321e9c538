"""A study read once: every later `get_trials` answers from memory.

`optuna.visualization` asks the storage for all trials (deep-copied) in every figure, 21 times for one
report; on a 10,000-trial study that was 17 s of the report's time. Commands that only read a study
(report, audit) read it once and hand the plotting code this snapshot instead.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState


class StudySnapshot(optuna.Study):
    """`study` with its trials fixed to `trials` (all of them by default), read once. Read-only use."""

    def __init__(self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> None:
        self.__dict__.update(study.__dict__)  # same storage, id, sampler and pruner
        self._fixed_trials = list(study.get_trials(deepcopy=False) if trials is None else trials)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        # Never deep-copied: the callers (plots, importances, audits) read the trials and nothing else.
        if states is None:
            return list(self._fixed_trials)
        return [t for t in self._fixed_trials if t.state in states]
