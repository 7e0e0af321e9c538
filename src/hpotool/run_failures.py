"""The failed trials of a run whose worker processes share the study, read from the storage: how many in a
row its workers ended last (`--max-failures`), and the error the summary names."""

from __future__ import annotations

from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.failed_trials import failed_in_run
from hpotool.owners import of_run
from hpotool.study import FINISHED


def run_streak(study: optuna.Study, main: int, since: datetime) -> int:
    """The failed trials in a row that the workers of one run (its main process `main`, on this host,
    started at `since`) ended last, in the order they ended, whichever workers ran them: `--max-failures`
    counts them, where each worker counted its own (two workers failing every trial in turn ran about
    twice as many failed trials as asked). Read from the storage, so no worker needs the others' pids.

    A FAIL trial whose run did not fail (`failed_trials.failed_in_run`: one another process failed, as stale, as it
    ran, one interrupted) is passed over: it neither counts nor ends the streak. Before, a trial whose
    result was not kept (another worker ran its retry) counted, once a failed trial followed it."""
    streak = 0
    for t in reversed(_ended_in_run(study, main, since)):
        if t.state != TrialState.FAIL:
            break
        streak += failed_in_run(t)
    return streak


def run_error(study: optuna.Study, main: int, since: datetime) -> str | None:
    """The `fail_reason` of the first trial whose run failed (`failed_trials.failed_in_run`) that the workers of one
    run ended (as `run_streak` takes them, in the order they ended): the error the summary names where
    `--max-failures` stopped the run, as one process names its first (`loop.FailureGuard`). Not the
    study's FAIL trial of the highest number, which could be one another process failed as stale as it
    ran, or another command's; nor the run's last, which one process would not name."""
    failed = [t for t in _ended_in_run(study, main, since) if failed_in_run(t)]
    return str(failed[0].user_attrs.get("fail_reason", "unknown error")) if failed else None


def _ended_in_run(study: optuna.Study, main: int, since: datetime) -> list[FrozenTrial]:
    """The trials that the workers of one run (its main process `main`, on this host, started at `since`)
    ended, in the order they ended."""
    ended = [
        t
        for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL))
        if t.datetime_complete is not None
        and t.datetime_start is not None
        and t.datetime_start >= since
        and of_run(t, main)
    ]
    ended.sort(key=lambda t: (t.datetime_complete, t.number))
    return ended
