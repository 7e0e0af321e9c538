"""Whether a grid or brute-force search has run (or started) every point it can propose, so the loop
neither asks for a point again nor ends while a point is still to run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.dead_trials import fail_dead_local_trials
from hpotool.heartbeat import has_heartbeat
from hpotool.owners import may_be_lost, on_this_host

EXHAUSTED = "the sampler has tried everything it can propose (a grid or brute-force search is complete)"


def waits_for_running(study: optuna.Study) -> bool:
    """Whether a brute-force worker waits for the running trials' points rather than run one again: Optuna's
    brute force counts a running point as run, and the search ends without running it again; made with
    `avoid_premature_stop` it does not, and without a heartbeat a dead worker of another machine would keep
    its trial RUNNING for ever, so then a worker runs again a point that no process of this machine runs
    (hpotool's sampler draws no other: `BruteForceSampler.run_here_as_run`), and waits where there is none."""
    from hpotool.brute_force import BruteForceSampler

    sampler = study.sampler
    if not getattr(sampler, "_avoid_premature_stop", False) or has_heartbeat(study._storage):
        return True
    if not isinstance(sampler, BruteForceSampler):  # a subclass of Optuna's may draw any running point
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return all(on_this_host(t) for t in running)
    built = _brute_force_tree(study, sampler, sampler.run_here_as_run)
    return built is not None and built[0].children is not None and not built[0].is_any_expandable(False)


def own_values(system_attrs: Mapping[str, Any]) -> bool:
    """Whether a trial with these system attributes runs values of its own: queued (a warm start, the retry
    of a dead worker's trial) or a heartbeat's retry."""
    return "fixed_params" in system_attrs or "failed_trial" in system_attrs


def _spare(trial: FrozenTrial) -> bool:
    """Whether `trial` is waiting in the queue with no values of its own to run: sent back untrained (no
    slot of `n_trials` left, or no grid point), it runs whatever the sampler proposes when taken. Unlike a
    queued point (a warm start, a retry), it leaves a grid or brute-force search complete."""
    return trial.state == TrialState.WAITING and not trial.params and not own_values(trial.system_attrs)


def _queued(study: optuna.Study) -> list[FrozenTrial]:
    """The waiting trials that run values of their own (not `_spare`)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if not _spare(t)]


def still_exhausted(study: optuna.Study) -> bool:
    """Whether a grid or brute-force search that said it is complete still is once the running trials of
    dead workers of this machine are failed (heartbeat or not: their process is gone) and their points
    queued again: it is not while a point waits in the queue. Brute force counts a running or failed point
    as run, so a worker killed mid-trial ended the search: the command exited with its trial RUNNING, or
    its retry queued, and its point not run (the heartbeat fails such a trial only after its grace)."""
    if not isinstance(study.sampler, optuna.samplers.GridSampler | optuna.samplers.BruteForceSampler):
        return True  # another sampler's study.stop() is its own
    fail_dead_local_trials(study)
    study._stop_flag = sampler_exhausted(study)
    return study._stop_flag


def all_started(study: optuna.Study) -> bool:
    """Whether the study's grid or brute-force sampler has every point finished or running and nothing
    queued: asking now, either would run a running point again."""
    from hpotool.grid import GridSampler

    sampler = study.sampler
    if isinstance(sampler, GridSampler):  # a point only another machine's trial runs, without a heartbeat,
        # is not started: one trial here runs it again (`GridSampler.all_started`)
        return sampler.all_started(study) and not _queued(study)
    if isinstance(sampler, optuna.samplers.BruteForceSampler):
        return _brute_force_started(study, sampler) and not _queued(study) and waits_for_running(study)
    return False


def sampler_exhausted(study: optuna.Study, *, running_done: bool | None = None) -> bool:
    """Whether the study's grid or brute-force sampler has run every point already. Optuna's samplers say
    so only in `tell` (study.stop()); a resumed study's first `ask` would run a point again.

    A brute-force point that is running counts as run as its sampler counts it (unless it was made with
    `avoid_premature_stop`), or as `running_done` says: False for a worker waiting for the last points."""
    sampler = study.sampler
    if _queued(study):  # queued points: they run whatever it says
        return False
    if isinstance(sampler, optuna.samplers.GridSampler):
        return sampler.is_exhausted(study)
    if isinstance(sampler, optuna.samplers.BruteForceSampler):
        if running_done is None:
            running_done = not sampler._avoid_premature_stop
        return _brute_force_done(study, sampler, running_done=running_done)
    return False


def _brute_force_tree(
    study: optuna.Study,
    sampler: optuna.samplers.BruteForceSampler,
    seen: Callable[[list[FrozenTrial]], list[FrozenTrial]] = list,
) -> tuple[Any, list[FrozenTrial]] | None:
    """The brute-force sampler's tree of the study's points and the trials it holds, as its after_trial
    builds them with no params fixed, of the trials as `seen` gives them; None before any trial."""
    from optuna.samplers._brute_force import _TreeNode

    trials = seen([t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING])
    if not trials:
        return None
    tree = _TreeNode()
    sampler._populate_tree(tree, trials, {})
    return tree, trials


def _brute_force_done(
    study: optuna.Study, sampler: optuna.samplers.BruteForceSampler, *, running_done: bool
) -> bool:
    """Whether every point of the brute-force search has finished (or is running, with `running_done`).
    Where the search counts a running point as run (Optuna's default, not `avoid_premature_stop`), a worker
    waiting for the last points waits for none once every running trial is another machine's without a
    heartbeat (`may_be_lost`): such a trial may never end."""
    built = _brute_force_tree(study, sampler)
    if built is not None and not running_done and not sampler._avoid_premature_stop:
        beating = has_heartbeat(study._storage)
        running = [t for t in built[1] if t.state == TrialState.RUNNING]
        running_done = bool(running) and all(may_be_lost(t, beating) for t in running)
    # A tree with no values drawn yet (another worker's first trial, just asked) has every point to run.
    return (
        built is not None and built[0].children is not None and not built[0].is_any_expandable(running_done)
    )


def brute_force_point_left(study: optuna.Study, sampler: optuna.samplers.BruteForceSampler) -> bool:
    """Whether a point of the brute-force search is neither finished nor drawn by a running trial."""
    built = _brute_force_tree(study, sampler)
    return built is None or built[0].children is None or built[0].count_unexpanded(True) > 0


def _brute_force_started(study: optuna.Study, sampler: optuna.samplers.BruteForceSampler) -> bool:
    """Whether every point of the brute-force search has finished or is running, counting a running trial
    that has not suggested its values yet (another worker's, just asked) as taking one point left."""
    built = _brute_force_tree(study, sampler)
    if built is None or built[0].children is None:  # no point drawn yet: nothing to wait for
        return False
    tree, trials = built
    unsampled = sum(t.state == TrialState.RUNNING and not t.params for t in trials)
    return bool(tree.count_unexpanded(True) <= unsampled)
