"""A sampler failing in a method Optuna calls: its hooks `before_trial` and `after_trial`, as a trial is asked
for (`study.ask()`) and told (`study.tell()`), outside the trial's objective, and the methods a trial draws
its values with (`sampling_method`): an error there (a `sys.exit()` made one by `user_code.refusing_exit`)
told apart from the storage's and the config's, in one line naming the sampler and the method.

Before, a user's sampler raising in a hook ended hpotool with a traceback, and one calling `sys.exit()` ended
it with no word and the exit code it gave, in `before_trial` the trial left RUNNING; an error as it sampled
(TPE given n_ei_candidates: 0 fails after its start-up trials) failed each trial with Optuna's words alone,
"ValueError: The size of `samples` must be positive, but got 0.", naming no sampler."""

from __future__ import annotations

import re
from types import TracebackType
from typing import TYPE_CHECKING

from hpotool.errors import HpoError
from hpotool.storage_faults import lost_connection
from hpotool.user_code import described

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


class AfterTrialFailed(Exception):
    """The sampler's `after_trial` raised `error` as trial `number` was told `state` (its name): the trial's
    state stands, as Optuna writes it whatever `after_trial` does (`after_trial_stop` says so)."""

    def __init__(self, number: int, state: str, error: BaseException) -> None:
        super().__init__(f"trial {number} told {state}: {described(error)}")
        self.number, self.state, self.error = number, state, error


def failed_hook(exc: BaseException, hook: str) -> bool:
    """Whether `exc` was raised in a sampler's or pruner's `hook` (a frame of a function of that name in its
    traceback), not by the storage as the trial was created, told or reported to (its server gone)."""
    return lost_connection(exc) is None and any(tb.tb_frame.f_code.co_name == hook for tb in _frames(exc))


# The methods Optuna calls on the sampler as a trial draws its values (at its first suggest)
_SAMPLING = ("infer_relative_search_space", "sample_relative", "sample_independent")


def sampling_method(exc: BaseException) -> str | None:
    """The sampler's method that raised `exc` as a trial drew its values (the outermost: the one Optuna
    called, where a sampler wraps another), or None where it came from elsewhere (a value the run config
    refuses) or from the storage."""
    if lost_connection(exc) is not None:
        return None
    return next(
        (tb.tb_frame.f_code.co_name for tb in _frames(exc) if tb.tb_frame.f_code.co_name in _SAMPLING), None
    )


def created_trial(exc: BaseException) -> int | None:
    """The id of the trial `study.ask()` created before the sampler's `before_trial` raised `exc` in it (read
    from the frame of `optuna.Trial.__init__`, which calls it); None where `exc` was raised elsewhere.

    Read from the traceback, as nothing else names that trial: `ask` returns no trial where it raises, and
    nothing marks the trial before `before_trial` runs (hpotool writes on it only once `ask` returns). The
    study's RUNNING trials compared before and after `ask` would take another worker's trial created
    meanwhile for this one, and tell it FAIL; a storage recording the trials it creates covers only
    hpotool's RDB storages (not journals) and leans on `ask`'s own steps (a queued trial is taken, not
    created); a `before_trial` of hpotool's set on the user's sampler for the length of `ask` changes the
    user's object (a copy of it made there keeps it). The frame leans on `Trial(study, trial_id)`, the
    constructor's signature, calling `before_trial`, which its documentation says it does."""
    import optuna

    if not failed_hook(exc, "before_trial"):
        return None
    init = optuna.Trial.__init__.__code__
    for tb in _frames(exc):
        if tb.tb_frame.f_code is init:
            trial_id = tb.tb_frame.f_locals.get("trial_id")
            return trial_id if isinstance(trial_id, int) else None
    return None


def hook_reason(sampler: str, hook: str, exc: BaseException) -> str:
    """The one line that says the sampler named `sampler` failed in `hook` with `exc`."""
    return f"sampler {sampler!r} failed in its {hook}(): {described(exc)}"


# The system attr of a trial failed as its sampler's `before_trial` failed (`loop.Loop._fail_hooked`), written
# with the FAIL. Before, such a trial was known by its reason's text alone, which a training error's reason
# could read as too (one saying "sampler 'x' failed in its before_trial(): ..."): its point was run again.
BEFORE_TRIAL = "hpotool:before_trial_failed"


def failed_before_trial(trial: FrozenTrial) -> bool:
    """Whether `trial` is FAIL as its sampler's `before_trial` failed: it never drew nor ran its values. Marked
    `BEFORE_TRIAL`; one an earlier hpotool failed so carries its reason alone (`hook_reason`), and no drawn
    values (a trial that trained drew them all first)."""
    if trial.state.name != "FAIL":
        return False
    if BEFORE_TRIAL in trial.system_attrs:
        return True
    reason = trial.user_attrs.get("fail_reason")
    return (
        not trial.params
        and isinstance(reason, str)
        and re.match(r"sampler '[^']*' failed in its before_trial\(\): ", reason) is not None
    )


def after_trial_stop(sampler: str, failed: AfterTrialFailed) -> HpoError:
    """What optimize says where the sampler named `sampler` failed in `after_trial`: the study stops, as the
    sampler would fail so as every trial ends (a trial's FAIL cannot count it, its result stands)."""
    return HpoError(
        f"sampler {sampler!r} failed in its after_trial() as trial {failed.number} was told {failed.state} "
        f"(its result stands): {described(failed.error)}; every trial would end so, so the study stopped: "
        f"fix the sampler and run the same command"
    )


def _frames(exc: BaseException) -> list[TracebackType]:
    """The traceback entries of `exc`, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames
