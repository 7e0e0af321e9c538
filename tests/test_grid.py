from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpotool.dead_trials import fail_dead_local_trials
from hpotool.exhaustion import EXHAUSTED
from hpotool.grid import GridSampler
from hpotool.plan import StudyPlan, prepare_study
from hpotool.study import open_study
from hpotool.study_run import run_study

from .conftest import load_study, write_configs

SPACE = {
    "optimizer.lr": {"type": "categorical", "choices": [0.01, 0.1]},
    "model.hidden.0": {"type": "int", "low": 8, "high": 16, "step": 8},
}
GRID = {  # SPACE's distributions, as hpotool suggests them
    "optimizer.lr": optuna.distributions.CategoricalDistribution([0.01, 0.1]),
    "model.hidden.0": optuna.distributions.IntDistribution(8, 16, step=8),
}
POINTS = [(0.01, 8), (0.01, 16), (0.1, 8), (0.1, 16)]  # SPACE's grid, sorted
ACTIVATIONS = {"model.activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]}}
ELSEWHERE = {"host": "elsewhere", "pid": 1}  # the worker of a trial another machine runs


def _ran(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[Any, Any]]:
    """The points of SPACE the complete trials ran, sorted."""
    complete = [t.params for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return sorted((p["optimizer.lr"], p["model.hidden.0"]) for p in complete)


def _opened(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: str, space: dict[str, Any]
) -> tuple[StudyPlan, optuna.Study]:
    """The plan and the opened study of a search of `space` by `sampler`, n_trials 10 (more than its points)."""
    opt_dict.update(n_trials=10, sampler={"name": sampler}, search_space=space)
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study, _ = open_study(plan)
    return plan, study


def _three_points_run(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], **options: Any
) -> tuple[Path, Path, optuna.Study]:
    """The configs of a grid search of SPACE (with `options`: timeout, storage) that has run 3 of its 4
    points, and its study, opened as a run of them opens it."""
    from hpotool.plan import Overrides

    opt_dict.update(n_trials=10, sampler={"name": "grid"}, search_space=SPACE, **options)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    run_study(prepare_study(run_path, opt_path, Overrides(n_trials=3)))
    study, _ = open_study(prepare_study(run_path, opt_path))
    return run_path, opt_path, study


def _asked_elsewhere(study: optuna.Study) -> int:
    """A trial another machine's worker has asked, its point not yet picked."""
    trial_id = study._storage.create_new_trial(study._study_id)
    study._storage.set_trial_user_attr(trial_id, "worker", ELSEWHERE)
    return trial_id


def _store_picked_point(study: optuna.Study, sampler: GridSampler, trial_id: int) -> None:
    """Stores the values of the grid point the trial picked (its grid_id), as its suggestions would."""
    point = sampler._all_grids[study._storage.get_trial(trial_id).system_attrs["grid_id"]]
    for name, value in zip(sampler._param_names, point, strict=True):
        study._storage.set_trial_param(trial_id, name, GRID[name].to_internal_repr(value), GRID[name])


@pytest.mark.parametrize("name", ["grid", "optuna.samplers.GridSampler"])
def test_a_warm_start_on_a_grid_point_runs_once_and_the_grid_ends_after_its_four_points(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], name: str
) -> None:
    # Optuna's GridSampler gave the queued trial no grid point: a later trial ran (0.1, 16) again, and the
    # study ran 5 trials for a 4-point grid.
    opt_dict.update(n_trials=10, sampler={"name": name}, search_space=SPACE)
    opt_dict["enqueue"] = [{"optimizer.lr": 0.1, "model.hidden.0": 16}]
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert isinstance(plan.sampler, GridSampler)
    summary = run_study(plan)
    study = load_study(opt_dict)
    points = [(t.params["optimizer.lr"], t.params["model.hidden.0"]) for t in study.trials]
    assert points[0] == (0.1, 16)
    assert sorted(points) == POINTS
    assert summary.stopped == EXHAUSTED


def test_without_a_queue_the_grid_runs_in_optunas_order() -> None:
    grid = {"x": [1, 2, 3], "y": ["a", "b"]}
    ours, theirs = (
        optuna.create_study(sampler=GridSampler(grid, seed=3)),
        optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=3)),
    )
    for study in (ours, theirs):
        study.optimize(lambda t: t.suggest_int("x", 1, 3) + len(t.suggest_categorical("y", ["a", "b"])))
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    assert len({tuple(t.params.items()) for t in ours.trials}) == 6


def test_a_queued_trial_off_the_grid_keeps_its_values_and_every_grid_point_still_runs() -> None:
    study = optuna.create_study(sampler=GridSampler({"x": [1.0, 2.0, 3.0]}))
    study.enqueue_trial({"x": 2.5})  # between the grid's points: counts on none
    study.optimize(lambda t: t.suggest_float("x", 1, 3))
    assert study.trials[0].params["x"] == 2.5
    assert sorted(t.params["x"] for t in study.trials[1:]) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("name", ["grid", "bruteforce"])
def test_resuming_a_complete_grid_runs_no_point_again(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], name: str
) -> None:
    # The same command again (or with more --n-trials) on a finished grid ran one of its points a second
    # time ("GridSampler is re-evaluating a configuration") before it stopped.
    opt_dict.update(n_trials=10, sampler={"name": name}, search_space=SPACE)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    again = run_study(prepare_study(run_path, opt_path))
    assert again.stopped == EXHAUSTED and again.ran_now == 0
    assert len(load_study(opt_dict).trials) == 4


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_a_point_whose_trial_was_interrupted_runs_on_resume(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: str
) -> None:
    # Ctrl-C ends the running trial as FAIL ("interrupted"), which Optuna's grid and brute-force samplers
    # count as that point run: the resumed run ended the search without ever training it.
    opt_dict.update(n_trials=10, sampler={"name": sampler}, search_space=SPACE)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    study, _ = open_study(prepare_study(run_path, opt_path))
    trial = study.ask()  # as run_trials ends a trial Ctrl-C stopped
    interrupted = (
        trial.suggest_categorical("optimizer.lr", [0.01, 0.1]),
        trial.suggest_int("model.hidden.0", 8, 16, step=8),
    )
    trial.set_user_attr("fail_reason", "interrupted")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    for _ in range(2):  # resumed, then run again: the point is queued once
        assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    ran = _ran(load_study(opt_dict).trials)
    assert interrupted in ran and ran == POINTS


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_a_point_whose_retry_was_interrupted_runs_on_resume_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: str
) -> None:
    # kill -9, then Ctrl-C during the dead trial's retry: the grid counted the dead trial (FAIL, with its
    # values) as its point run, and the resumed run ended the search without ever training it.
    opt_dict.update(n_trials=10, sampler={"name": sampler}, search_space=SPACE)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    study, _ = open_study(prepare_study(run_path, opt_path))
    for reason in ("worker died (pid 1)", "interrupted"):  # the dead trial, then its retry
        trial = study.ask()  # as run_trials ends a trial
        point = (
            trial.suggest_categorical("optimizer.lr", [0.01, 0.1]),
            trial.suggest_int("model.hidden.0", 8, 16, step=8),
        )
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if reason != "interrupted":
            study.enqueue_trial(
                dict(zip(("optimizer.lr", "model.hidden.0"), point, strict=True)), user_attrs={"retry_of": 0}
            )
    for _ in range(2):  # resumed, then run again: the point is queued once
        assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    assert _ran(load_study(opt_dict).trials) == POINTS


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_worker_waits_for_the_last_grid_point_another_runs_instead_of_running_it_again(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # With --workers, a worker asking while the other ran the grid's last point ran that point again
    # (Optuna's grid re-evaluates a running point once every point has started).
    run_path, opt_path, study = _three_points_run(tmp_path, run_dict, opt_dict, timeout=2)
    other = study.ask()  # the last point, running in another process
    other.set_user_attr("worker", ELSEWHERE)
    last = (
        other.suggest_categorical("optimizer.lr", [0.01, 0.1]),
        other.suggest_int("model.hidden.0", 8, 16, step=8),
    )
    summary = run_study(prepare_study(run_path, opt_path))
    assert summary.ran_now == 0 and "timeout" in (summary.stopped or "")
    trials = load_study(opt_dict).trials
    assert len(trials) == 4 and last not in [
        (t.params["optimizer.lr"], t.params["model.hidden.0"]) for t in trials[:3]
    ]
    load_study(opt_dict).tell(other.number, 0.5)  # it ends
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    assert len(load_study(opt_dict).trials) == 4


def test_without_a_heartbeat_a_worker_does_not_wait_for_another_machines_grid_point(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A journal file has no heartbeat: a dead worker of another machine would hold its point RUNNING for
    # ever, so the point runs again here, as Optuna's grid runs it, and the study ends.
    journal = f"journal:{tmp_path / 'g.log'}"
    run_path, opt_path, study = _three_points_run(tmp_path, run_dict, opt_dict, storage=journal)
    other = study.ask()
    other.set_user_attr("worker", ELSEWHERE)
    other.suggest_categorical("optimizer.lr", [0.01, 0.1])
    other.suggest_int("model.hidden.0", 8, 16, step=8)
    summary = run_study(prepare_study(run_path, opt_path))
    assert summary.ran_now == 1 and summary.stopped == EXHAUSTED


LISTS = {
    "model.hidden": {"type": "categorical", "choices": [[8], [16, 8]]},
    "optimizer.lr": {"type": "categorical", "choices": [0.01, 0.1]},
}


@pytest.mark.parametrize(
    ("sampler", "points"),
    [
        ({"name": "grid"}, 4),
        ({"name": "bruteforce"}, 4),
        (
            {
                "name": "grid",
                "kwargs": {"search_space": {"model.hidden": [[16, 8]], "optimizer.lr": [0.01, 0.1]}},
            },
            2,
        ),
    ],
)
def test_a_grid_of_list_choices_runs_each_point_once_with_its_warm_start(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: dict[str, Any], points: int
) -> None:
    # Optuna's grid holds scalars: a list choice is a grid point by its label, the label a warm start is
    # queued with, so the queued point counts on the grid and the grid ends after its points.
    opt_dict.update(n_trials=10, sampler=sampler, search_space=LISTS)
    opt_dict["enqueue"] = [{"model.hidden": [16, 8], "optimizer.lr": 0.1}]
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    study = load_study(opt_dict)
    ran = [(t.params["model.hidden"], t.params["optimizer.lr"]) for t in study.trials]
    assert ran[0] == ("[16, 8]", 0.1) and len(ran) == len(set(ran)) == points
    again = run_study(prepare_study(run_path, opt_path))  # a finished grid runs no point again
    assert again.stopped == EXHAUSTED and again.ran_now == 0


def test_a_grid_value_names_the_whole_section_choice_that_builds_its_section(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A grid giving the choice {name: adam} as {name: adam, lr: 0.001} (adam's default lr, the same section)
    # was refused: "sampler.kwargs.search_space.optimizer: {name: adam, lr: 0.001} lies outside
    # search_space.optimizer". It runs that choice, each point once.
    sgd, adam = {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam"}
    grid = {"optimizer": [sgd, {"name": "adam", "lr": 0.001}]}
    opt_dict.update(n_trials=5, sampler={"name": "grid", "kwargs": {"search_space": grid}})
    opt_dict["search_space"] = {"optimizer": {"type": "categorical", "choices": [sgd, adam]}}
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert plan.opt.sampler.kwargs["search_space"] == {"optimizer": [sgd, adam]}
    assert run_study(plan).stopped == EXHAUSTED
    study = load_study(opt_dict)
    assert sorted(t.params["optimizer"] for t in study.trials) == [
        "{lr: 0.1, momentum: 0.9, name: sgd}",
        "{name: adam}",
    ]


class _OtherWorker:
    """An observer that, once this process's first trial has finished, starts another worker's running
    trial (`worker`: by default another machine's, whose trial has a heartbeat) on the study's last
    unstarted point of optimizer.lr's `choices`: `suggested`, or just asked, its value not yet drawn."""

    def __init__(
        self, suggested: bool, worker: dict[str, Any] | None = None, choices: tuple[float, ...] = (0.01, 0.1)
    ) -> None:
        self.suggested = suggested
        self.worker = worker or ELSEWHERE
        self.choices = list(choices)
        self.other: optuna.Trial | None = None

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None:
        pass

    def trial_started(self, number: int, params: Any, epochs: int) -> None:
        pass

    def epoch_ended(self, number: int, result: Any) -> None:
        pass

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.other is None:
            self.other = study.ask()
            self.other.set_user_attr("worker", self.worker)
            if self.suggested:
                self.other.suggest_categorical("optimizer.lr", self.choices)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("suggested", [True, False])
def test_a_worker_waits_for_the_last_brute_force_point_another_runs_instead_of_running_it_again(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], suggested: bool
) -> None:
    # With --workers, a worker asking while the other ran brute force's last point ran a point again
    # (Optuna's brute force picks any point once every point has started): 3 trials for 2 values. So did
    # one asking just before the other's trial drew the last point, taking it first.
    opt_dict.update(
        n_trials=10,
        timeout=2,
        sampler={"name": "bruteforce"},
        search_space={"optimizer.lr": {"type": "categorical", "choices": [0.01, 0.1]}},
    )
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    worker = _OtherWorker(suggested)
    summary = run_study(prepare_study(run_path, opt_path), worker)
    assert summary.ran_now == 1 and "timeout" in (summary.stopped or "")
    assert worker.other is not None
    if not suggested:  # it draws its value now: the point left
        worker.other.suggest_categorical("optimizer.lr", [0.01, 0.1])
    trials = load_study(opt_dict).trials
    assert sorted(t.params["optimizer.lr"] for t in trials) == [0.01, 0.1]
    load_study(opt_dict).tell(worker.other.number, 0.5)
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    assert len(load_study(opt_dict).trials) == 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_brute_force_trial_draws_its_values_after_the_trial_another_worker_asked_before_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers asking at the same moment both drew from the trials stored before either had drawn: with
    # --workers 2 a 3-point brute force ran 6 trials, each point twice. Here the other worker's trial is
    # asked first and draws only later, from what was stored before this process's trial drew (the same
    # point), unless this process waited for it to draw first.
    import threading
    import time

    import hpotool.trial_setup

    # The run waits for the other trial to draw (the thread below draws it, a second after this process has
    # asked): up to DRAW_WAIT_S, 10 s, which a thread starved that long on a loaded machine outlasts (the
    # run then draws first, and the thread copies its point). An hour here: the thread always draws within
    # its own bounds, 61 s.
    monkeypatch.setattr(hpotool.trial_setup, "DRAW_WAIT_S", 3600.0)
    plan, study = _opened(tmp_path, run_dict, opt_dict, "bruteforce", ACTIVATIONS)
    other = study.ask()  # asked before this process's first trial, its value not yet drawn
    other.set_user_attr("worker", ELSEWHERE)
    storage = study._storage

    def draw_late() -> None:
        deadline = time.monotonic() + 60
        while len(storage.get_all_trials(study._study_id, deepcopy=False)) < 2:  # this process asked
            if time.monotonic() > deadline:  # it ended without asking: say so instead of hanging
                study.tell(other, 0.5)
                return
            time.sleep(0.01)
        mine = storage.get_all_trials(study._study_id, deepcopy=False)[1]
        deadline = time.monotonic() + 1.0
        while not mine.params and time.monotonic() < deadline:
            time.sleep(0.01)
            mine = storage.get_trial(mine._trial_id)
        if mine.params:  # drawn while the other worker was drawing: the same point
            distribution = mine.distributions["model.activation"]
            value = distribution.to_internal_repr(mine.params["model.activation"])
            storage.set_trial_param(other._trial_id, "model.activation", value, distribution)
        else:
            other.suggest_categorical("model.activation", ["relu", "gelu", "tanh"])
        study.tell(other, 0.5)

    worker = threading.Thread(target=draw_late)
    worker.start()
    run_study(plan)
    worker.join()
    trials = load_study(opt_dict).trials
    assert sorted(t.params["model.activation"] for t in trials) == ["gelu", "relu", "tanh"]


def _ask_as_a_dead_local_worker(study: optuna.Study) -> optuna.Trial:
    """A trial asked by a process of this machine that died before it drew its values."""
    import subprocess
    import sys

    from hpotool.owners import owner

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = study.ask()
    trial.set_user_attr("worker", {**owner(), "pid": dead.pid})
    return trial


class _DyingWorker(_OtherWorker):
    """An observer that, once this process's first trial has finished, asks a trial as a worker of this
    machine that then died before drawing its values."""

    def __init__(self) -> None:
        super().__init__(suggested=False)

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.other is None:
            self.other = _ask_as_a_dead_local_worker(study)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_brute_force_trial_does_not_wait_for_an_earlier_trial_whose_local_worker_died_before_drawing(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker of this machine killed between asking and drawing left a RUNNING trial without values, and
    # each later brute-force trial waited DRAW_WAIT_S (10 s) for it to draw until the heartbeat check
    # failed it. Its process is gone: the trials after it draw at once. (The wait is made an hour long
    # here, so the old behaviour shows as a run that does not end.)
    import threading

    import hpotool.trial_setup

    monkeypatch.setattr(hpotool.trial_setup, "DRAW_WAIT_S", 3600.0)
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_INTERVAL", "1")  # how often the loop looks for dead workers
    opt_dict.update(n_trials=4, sampler={"name": "bruteforce"}, search_space=ACTIVATIONS)
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    runner = threading.Thread(target=run_study, args=(plan, _DyingWorker()), daemon=True)
    runner.start()
    runner.join(timeout=120)
    assert not runner.is_alive(), "the trials waited for the dead worker's trial to draw"
    trials = load_study(opt_dict).trials
    assert sorted(t.params["model.activation"] for t in trials if t.params) == ["gelu", "relu", "tanh"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("sampler", ["grid", "bruteforce", "optuna.samplers.BruteForceSampler"])
def test_a_resumed_study_runs_every_point_when_a_worker_died_before_drawing_its_trials_values(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: str
) -> None:
    # The dead worker's trial is failed on resume, drew no value. Before: its retry was queued with no
    # values, which the grid sampler fails ("All parameters must be specified"), and the grid counted its
    # point as visited, so one point never ran; brute force read it as an empty point and every later
    # trial raised "param_name mismatch" (a traceback, the study could not be resumed).
    choices = ["relu", "gelu", "tanh"]
    space = {"model.activation": {"type": "categorical", "choices": choices}}
    plan, study = _opened(tmp_path, run_dict, opt_dict, sampler, space)
    _ask_as_a_dead_local_worker(study)
    summary = run_study(plan)
    trials = load_study(opt_dict).trials
    assert sorted(t.params["model.activation"] for t in trials if t.params) == sorted(choices)
    states = [(t.state, t.user_attrs.get("fail_reason", "")[:11]) for t in trials]
    assert states.count((optuna.trial.TrialState.FAIL, "worker died")) == 1
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3 == len(trials) - 1
    assert summary.stopped == EXHAUSTED


class _KilledMidTrial(_OtherWorker):
    """An observer that, once this process's first trial has finished, leaves a trial of a worker of this
    machine killed while training: it drew its values and wrote a heartbeat, then died."""

    def __init__(self) -> None:
        super().__init__(suggested=True)

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.other is None:
            self.other = _ask_as_a_dead_local_worker(study)
            self.other.suggest_categorical("model.activation", ["relu", "gelu", "tanh"])
            study._storage.record_heartbeat(self.other._trial_id)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_brute_force_runs_the_point_of_a_worker_killed_mid_trial_before_it_says_the_search_is_complete(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Brute force counts a running point as run, so the worker that finished the last other point ended the
    # search ('complete') and the command exited 0 with the killed worker's trial RUNNING and its point
    # never run, as long as the heartbeat had not yet failed it (60 s). That worker's process is gone.
    opt_dict.update(n_trials=10, sampler={"name": "bruteforce"}, search_space=ACTIVATIONS)
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    summary = run_study(plan, _KilledMidTrial())
    trials = load_study(opt_dict).trials
    complete = [t.params["model.activation"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(complete) == ["gelu", "relu", "tanh"]
    assert [t.user_attrs.get("fail_reason", "")[:11] for t in trials if t.state.name == "FAIL"] == [
        "worker died"
    ]
    assert summary.stopped == EXHAUSTED


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_the_retry_of_a_grid_trial_whose_worker_died_while_drawing_runs_its_point(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A worker killed between two of its trial's suggestions: the retry was queued with the one value
    # drawn, which is no grid point, so it failed ('All parameters must be specified'), and the grid
    # counted the dead trial's point as run: the search ended 'complete' with that point never run.
    plan, study = _opened(tmp_path, run_dict, opt_dict, "grid", SPACE)
    dead = _ask_as_a_dead_local_worker(study)
    dead.suggest_categorical("optimizer.lr", SPACE["optimizer.lr"]["choices"])  # killed after this one
    assert run_study(plan).stopped == EXHAUSTED
    trials = load_study(opt_dict).trials
    assert _ran(trials) == POINTS
    assert [t.user_attrs["fail_reason"][:11] for t in trials if t.state.name == "FAIL"] == ["worker died"]


class _FailedMidTrial(_OtherWorker):
    """An observer that, while this process's first trial trains, leaves the study's other point to a
    worker of this machine that is killed mid-trial and found dead (as the periodic look finds it): its
    trial failed, its point queued again."""

    def __init__(self) -> None:
        super().__init__(suggested=True)
        self.study: optuna.Study | None = None

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None:
        self.study = study

    def trial_started(self, number: int, params: Any, epochs: int) -> None:
        if self.other is None and self.study is not None:
            self.other = _ask_as_a_dead_local_worker(self.study)
            self.other.suggest_categorical("model.activation", ["relu", "gelu"])  # the point left
            fail_dead_local_trials(self.study)

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        pass


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_brute_force_runs_a_dead_worker_s_queued_retry_before_it_says_the_search_is_complete(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Brute force counts a failed point as run: the trial told after a dead worker's retry was queued ended
    # the search ('complete'), and the retry was left waiting, its point never run in this command.
    opt_dict.update(
        n_trials=10,
        sampler={"name": "bruteforce"},
        search_space={"model.activation": {"type": "categorical", "choices": ["relu", "gelu"]}},
    )
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    summary = run_study(plan, _FailedMidTrial())
    trials = load_study(opt_dict).trials
    complete = [t.params["model.activation"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(complete) == ["gelu", "relu"] and summary.stopped == EXHAUSTED
    assert not [t for t in trials if t.state == optuna.trial.TrialState.WAITING]


@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_ctrl_c_between_two_of_a_trial_s_draws_waits_for_the_point_and_the_resume_runs_every_point(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    sampler: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C between two of a trial's suggestions left a FAIL trial with part of a point: brute force read
    # it as a whole one, so on resume its retry (queued with that part) failed ('param_name mismatch') and
    # the search ended 'complete' with two of its four points never run. The draw now ends first.
    import signal

    opt_dict.update(n_trials=10, sampler={"name": sampler}, search_space=SPACE)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    plan = prepare_study(run_path, opt_path)  # its checks suggest on a probe study: patched after them
    real_suggest = optuna.Trial.suggest_categorical

    def suggest_then_ctrl_c(self: optuna.Trial, name: str, choices: Any) -> Any:
        value = real_suggest(self, name, choices)
        if name == "optimizer.lr":  # the first of the two
            signal.raise_signal(signal.SIGINT)
        return value

    monkeypatch.setattr(optuna.Trial, "suggest_categorical", suggest_then_ctrl_c)
    assert run_study(plan).interrupted == signal.SIGINT
    monkeypatch.undo()
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED
    trials = load_study(opt_dict).trials
    assert _ran(trials) == POINTS
    assert [t.user_attrs["fail_reason"] for t in trials if t.state.name == "FAIL"] == ["interrupted"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_grid_trial_picks_its_point_after_the_trial_another_worker_asked_before_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Two workers asking at the same moment both picked from the trials stored before either had recorded
    # its point: the same one, which ran twice (3 workers, a 6-point grid). Here the other worker's trial
    # is asked first and records its point only later, picked from what was stored before this process's
    # trial recorded its own (the same point), unless this process waited for it to pick first.
    import threading
    import time

    plan, study = _opened(tmp_path, run_dict, opt_dict, "grid", SPACE)
    storage, sampler = study._storage, study.sampler
    assert isinstance(sampler, GridSampler)
    other = _asked_elsewhere(study)

    def pick_late() -> None:
        deadline = time.monotonic() + 60
        while len(storage.get_all_trials(study._study_id, deepcopy=False)) < 2:  # this process asked
            if deadline < time.monotonic():
                break
            time.sleep(0.01)
        mine = storage.get_all_trials(study._study_id, deepcopy=False)[-1]
        deadline = time.monotonic() + 1.0
        while "grid_id" not in mine.system_attrs and time.monotonic() < deadline:
            time.sleep(0.01)
            mine = storage.get_trial(mine._trial_id)
        if "grid_id" in mine.system_attrs:  # recorded while the other worker was picking: the same point
            for key in ("search_space", "grid_id"):
                storage.set_trial_system_attr(other, key, mine.system_attrs[key])
        else:
            sampler.before_trial(study, storage.get_trial(other))
        _store_picked_point(study, sampler, other)
        study.tell(0, 0.5)

    worker = threading.Thread(target=pick_late)
    worker.start()
    assert run_study(plan).stopped == EXHAUSTED
    worker.join()
    assert _ran(load_study(opt_dict).trials) == POINTS


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_grid_trial_sent_back_to_the_queue_picks_its_point_again_when_it_is_taken_from_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A trial that found no slot of n_trials left (another worker asked at the same moment) went back to
    # the queue with the point it was given; taken from it later, it ran that point though another trial
    # had run it meanwhile (3 workers: a point ran twice, and the study reached n_trials with one never run).
    plan, study = _opened(tmp_path, run_dict, opt_dict, "grid", SPACE)
    first = study.ask()  # point 0, run by another worker
    for name, distribution in GRID.items():
        first._suggest(name, distribution)
    sent_back = study.ask()  # given point 0 too (picked as the first trial picked it), then no slot
    study._storage.set_trial_system_attr(sent_back._trial_id, "grid_id", 0)
    study._storage.set_trial_state_values(sent_back._trial_id, optuna.trial.TrialState.WAITING)
    study.tell(first, 0.5)
    assert run_study(plan).stopped == EXHAUSTED
    assert _ran(load_study(opt_dict).trials) == POINTS


LR = {"type": "categorical", "choices": [0.01, 0.1]}
OPTIMIZERS = {
    "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
    "optimizer.momentum": {"type": "categorical", "choices": [0.0, 0.9], "when": {"optimizer.name": "sgd"}},
}
ON_THE_RUN_CONFIG = {  # the condition reads the run config's model.name (mlp): it holds
    "optimizer.lr": LR,
    "model.dropout": {"type": "categorical", "choices": [0.0, 0.1], "when": {"model.name": "mlp"}},
}


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize(
    ("space", "drew", "points"),
    [
        ({"optimizer.lr": LR, "model.dropout": {"type": "categorical", "choices": [0.0, 0.1]}}, 0.1, 4),
        (OPTIMIZERS, "sgd", 3),
        (ON_THE_RUN_CONFIG, 0.1, 4),
    ],
)
def test_brute_force_runs_every_point_when_a_worker_died_between_two_of_a_trial_s_draws(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    space: dict[str, Any],
    drew: Any,
    points: int,
) -> None:
    # Brute force read the dead worker's trial (FAIL, its first value drawn) as a whole point with fewer
    # values: the retry queued with that value failed ('param_name mismatch') and the search said it was
    # complete with 2 of its 4 points run. (A trial that drew every value its conditions switch on, on
    # searched values or the run config's, is a whole point.)
    plan, study = _opened(tmp_path, run_dict, opt_dict, "bruteforce", space)
    dead = _ask_as_a_dead_local_worker(study)
    first, spec = next(iter(space.items()))
    study._storage.set_trial_param(  # the value it drew, killed before the next draw
        dead._trial_id,
        first,
        spec["choices"].index(drew),
        optuna.distributions.CategoricalDistribution(spec["choices"]),
    )
    assert run_study(plan).stopped == EXHAUSTED
    trials = load_study(opt_dict).trials
    complete = [tuple(t.params.items()) for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == points
    assert [t.user_attrs["fail_reason"][:11] for t in trials if t.state.name == "FAIL"] == ["worker died"]
    assert not [t for t in trials if t.state == optuna.trial.TrialState.WAITING]


@pytest.mark.parametrize(
    ("sampler", "how", "workers"),
    [
        ("grid", signal.SIGINT, 1),
        ("grid", signal.SIGTERM, 1),
        ("grid", signal.SIGINT, 2),
        ("bruteforce", signal.SIGINT, 1),
    ],
)
def test_a_signal_while_a_trial_waits_for_an_earlier_trial_s_point_stops_the_command_at_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], sampler: str, how: int, workers: int
) -> None:
    # A grid trial waited inside `ask` (where signals wait for it to return) for the point of a trial
    # another machine asked first, up to DRAW_WAIT_S (10 s): Ctrl-C or SIGTERM took effect only then.
    # Here the wait is an hour, in every process of the command (a sitecustomize sets it as each Python
    # starts: the forkserver's workers never see a patch the main process makes), so a command that ends
    # at all within the test's time ended by the signal, however slow the machine: no clock is read.
    import os
    import subprocess

    from hpotool.storage import make_storage

    from .test_workers import REPO, _hpotool, _kill_session, _wait_for

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import hpotool.trial_setup\nhpotool.trial_setup.DRAW_WAIT_S = 3600.0\n"
    )
    opt_dict.update(n_trials=10, sampler={"name": sampler}, search_space=SPACE)
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    study, _ = open_study(prepare_study(run_path, opt_path))
    other = _asked_elsewhere(study)  # it never picks a point
    args = ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q", "--workers", str(workers)]
    path = os.pathsep.join(str(p) for p in (site, REPO / "src", REPO))
    proc = _hpotool(args, tmp_path, PYTHONPATH=path)
    try:
        storage = make_storage(opt_dict["storage"])
        _wait_for(lambda: len(storage.get_all_trials(study._study_id, deepcopy=False)) > workers)
        proc.send_signal(how)
        try:  # the old code ended it only once the hour's wait was over
            output, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail("the command went on waiting after the signal")
    finally:
        _kill_session(proc)
    assert proc.returncode == 128 + how, output
    assert "Traceback" not in output
    trials = storage.get_all_trials(study._study_id, deepcopy=False)
    mine = [t for t in trials if t._trial_id != other]
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in mine] == [
        (TrialState.FAIL, "interrupted")
    ] * workers
    assert not [t for t in mine if t.params]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_that_finds_every_grid_point_taken_once_it_may_pick_goes_back_to_the_queue_untrained(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that asked while the grid's last point was free, and waited for the trial another worker
    # asked just before to pick it, then ran that point again (Optuna's grid re-runs a running point once
    # all have started): with --workers 3 the last point of a 12-point grid ran 2-3 times in most runs.
    import threading
    import time

    import hpotool.trial_setup

    # The run waits for the other trial to pick its point (the thread below picks it): up to DRAW_WAIT_S,
    # 10 s, which ran out in a CI run on a loaded machine before the thread got to pick, and the run then
    # trained the point itself. An hour here: the thread always picks within its own 60 s.
    monkeypatch.setattr(hpotool.trial_setup, "DRAW_WAIT_S", 3600.0)
    run_path, opt_path, study = _three_points_run(tmp_path, run_dict, opt_dict, timeout=3)
    storage, sampler = study._storage, study.sampler
    assert isinstance(sampler, GridSampler)
    other = _asked_elsewhere(study)  # its point (the last) not yet picked

    def pick_late() -> None:
        deadline = time.monotonic() + 60
        while len(storage.get_all_trials(study._study_id, deepcopy=False)) < 5 < deadline - time.monotonic():
            time.sleep(0.01)  # until this process asked, while the last point was free
        sampler.before_trial(study, storage.get_trial(other))
        _store_picked_point(study, sampler, other)

    worker = threading.Thread(target=pick_late)
    worker.start()
    summary = run_study(prepare_study(run_path, opt_path))
    worker.join()
    assert summary.ran_now == 0 and "timeout" in (summary.stopped or "")
    mine = storage.get_all_trials(study._study_id, deepcopy=False)[-1]
    assert mine.state == TrialState.WAITING and not mine.params  # untrained, for a later ask to take
    load_study(opt_dict).tell(storage.get_trial(other).number, 0.5)
    assert run_study(prepare_study(run_path, opt_path)).stopped == EXHAUSTED  # waiting: it runs nothing
    assert _ran(load_study(opt_dict).trials) == POINTS


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_brute_force_beside_another_machine_s_trial_waits_for_a_local_one_then_ends(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A journal file has no heartbeat: another machine's running trial may be a dead worker's, and brute
    # force counts its point as run, as Optuna's does. Once another command of this machine drew the last
    # point, the run ran a point again (a random one: a finished one too) rather than wait for it; now it
    # waits for that command's trial alone, and ends once it has.
    import subprocess
    import sys
    import threading

    from hpotool.owners import owner
    from hpotool.storage import make_storage

    url = f"journal:{tmp_path / 'b.log'}"
    lrs = [0.001, 0.01, 0.1]
    opt_dict.update(
        n_trials=10,
        timeout=20,
        sampler={"name": "bruteforce"},
        search_space={"optimizer.lr": {"type": "categorical", "choices": lrs}},
        storage=url,
    )
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    study, _ = open_study(prepare_study(run_path, opt_path))
    theirs = study.ask()
    theirs.set_user_attr("worker", ELSEWHERE)
    theirs.suggest_categorical("optimizer.lr", lrs)
    command = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # alive, here
    stored = optuna.load_study(study_name=opt_dict["study_name"], storage=make_storage(url))
    other = _OtherWorker(True, {**owner(), "pid": command.pid}, tuple(lrs))

    def end_theirs() -> None:  # the other command's trial ends a second after it drew the last point
        import time

        deadline = time.monotonic() + 60
        while other.other is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        if other.other is not None:
            stored.tell(other.other.number, 0.5)

    ends = threading.Thread(target=end_theirs)
    ends.start()
    try:
        summary = run_study(prepare_study(run_path, opt_path), other)
    finally:
        ends.join()
        command.kill()
        command.wait()
    assert summary.ran_now == 1 and summary.stopped == EXHAUSTED
    trials = stored.get_trials(deepcopy=False)
    assert sorted(t.params["optimizer.lr"] for t in trials) == lrs


def _draw(trial: optuna.Trial) -> tuple[Any, Any]:
    """The point of SPACE `trial` draws."""
    return trial.suggest_categorical("optimizer.lr", [0.01, 0.1]), trial.suggest_int(
        "model.hidden.0", 8, 16, step=8
    )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # BruteForceSampler's
@pytest.mark.parametrize("seed", range(12))
def test_strict_brute_force_draws_no_point_another_machine_runs_while_one_is_free(seed: int) -> None:
    # Optuna's strict search (`avoid_premature_stop`) skips running points only at the last parameter's
    # level: with several parameters, the first one's value was drawn among branches holding only another
    # machine's running point (alive: it runs it now), and the second then drew that point, as the branch
    # had no other. 27 of 40 seeds ran a point twice beside a free one; now a free point is drawn first.
    from hpotool.brute_force import BruteForceSampler

    study = optuna.create_study(sampler=BruteForceSampler(seed=seed, avoid_premature_stop=True))
    theirs = study.ask()
    theirs.set_user_attr("worker", ELSEWHERE)
    lr, hidden = point = _draw(theirs)
    other = {"optimizer.lr": lr, "model.hidden.0": 24 - hidden}  # the other point of its branch has run
    study.add_trial(optuna.trial.create_trial(params=other, distributions=GRID, value=0.5))
    mine = [study.ask() for _ in range(2)]
    assert sorted(_draw(t) for t in mine) == [p for p in POINTS if p[0] != lr], point
    for t in mine:  # once every point has started, the strict search runs the one it may never end again
        study.tell(t, 0.5)
    assert _draw(study.ask()) == point


def test_a_log_scaled_int_range_is_searched_over_every_integer_of_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A log-scaled int has step 1, so a finite grid (every integer from low to high): grid refused it
    # ("a log-scaled int has no grid; use step instead of log").
    space = {"model.hidden.0": {"type": "int", "low": 6, "high": 9, "log": True}}
    plan, _ = _opened(tmp_path, run_dict, opt_dict, "grid", space)
    summary = run_study(plan)
    assert summary.stopped == EXHAUSTED
    assert sorted(t.params["model.hidden.0"] for t in load_study(opt_dict).trials) == [6, 7, 8, 9]
