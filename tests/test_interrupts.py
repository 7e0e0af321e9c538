"""Ctrl-C, SIGTERM and kill -9 on a real SQLite study in a real `hpotool optimize` process."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpotool.errors import HpoError
from hpotool.interrupts import Interrupted, deferred, signals_interrupt
from hpotool.pipes import _Guarded
from hpotool.plan import Overrides, prepare_study
from hpotool.storage import make_storage
from hpotool.study_run import run_study

from .conftest import SharedStudy, ask_with_heartbeat, load_study, write_configs, write_yaml
from .test_workers import (
    _error_line,
    _hpotool,
    _in_this_process,
    _kill_session,
    _optimize_args,
    _running_with_epochs,
    _study_of,
    _study_or_none,
    _wait_for,
)
from .tiny_study import run_tiny_study


def _signal_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Patches owner.name (a function, or a method of a class) so that a Ctrl-C reaches this process as each
    call returns."""
    real = getattr(owner, name)

    def then_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(owner, name, then_ctrl_c)


def _configs(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], n: int, hold: Path | None = None
) -> list[str]:
    model = {"name": "tests.helpers:SlowModel", "sleep": 0.05, **({"hold": str(hold)} if hold else {})}
    run = {**run_dict, "epochs": 4, "model": model}
    opt = {**opt_dict, "n_trials": n, "search_space": {"model.width": {"type": "int", "low": 4, "high": 64}}}
    paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)
    return ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "-q"]


def _interrupt_mid_trial(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], how: signal.Signals
) -> tuple[list[str], int, str, optuna.Study]:
    """`optimize` of 3 trials in a process of its own, `how` sent to it while its first trial trains (held
    in a forward pass: a trial found RUNNING in the storage could be ending, its signal then coming between
    trials under load); the args, its exit code, what it printed, and the study. The hold is let go after."""
    hold = tmp_path / "hold"
    hold.touch()
    args = _configs(tmp_path, run_dict, opt_dict, 3, hold)
    proc = _hpotool(args, tmp_path)
    try:
        _wait_for(lambda: proc.poll() is not None or Path(f"{hold}.held").exists(), timeout=300)
        assert proc.poll() is None, proc.communicate()[0]
        os.kill(proc.pid, how)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        hold.unlink()
    return args, proc.returncode, output, _study_of(opt_dict["storage"])


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_trial_as_interrupted_and_the_study_resumes(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], how: signal.Signals, code: int
) -> None:
    args, returncode, output, study = _interrupt_mid_trial(tmp_path, run_dict, opt_dict, how)
    assert returncode == code, output
    assert "interrupted: the running trial ended as FAIL" in output and "Traceback" not in output
    # 'run now' counts the interrupted trial too: '0/3 finished, 1 run now' read as one trial running
    assert re.search(r"finished, \d+ run now \((complete \d+, )?(pruned \d+, )?fail 1\)", output), output
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL] == ["interrupted"]
    _in_this_process(args)  # the resume: no signal to send it, so no process of its own
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_after_kill_9_the_dead_trial_is_failed_and_rerun(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    args, returncode, _, study = _interrupt_mid_trial(tmp_path, run_dict, opt_dict, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    (stuck,) = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    _in_this_process(args)  # the resume: no signal to send it, so no process of its own
    trials = study.get_trials(deepcopy=False)
    dead = trials[stuck.number]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"].startswith("worker died (pid ")
    retried = [t for t in trials if t.user_attrs.get("retry_of") == stuck.number]
    assert len(retried) == 1 and retried[0].params == stuck.params
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGPIPE])
def test_a_signal_inside_deferred_waits_for_the_end_of_the_block(how: signal.Signals) -> None:
    done = []
    read, write = os.pipe()
    os.close(read)  # SIGPIPE: output into a pipe whose reader has gone, which Python raises on the write
    with open(write, "w") as closed_pipe, signals_interrupt(), pytest.raises(Interrupted) as caught:
        with deferred():
            if how == signal.SIGPIPE:
                guarded = _Guarded(closed_pipe)
                guarded.write("a line for head\n")
                guarded.flush()
            else:
                signal.raise_signal(how)
            done.append("the rest of the block ran")
        done.append("not reached")
    assert done == ["the rest of the block ran"] and caught.value.signum == how


def test_a_signal_as_ask_creates_the_trial_leaves_it_failed_not_running(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C landing inside `study.ask()`, after the trial's row exists: it must not stay RUNNING.
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    _signal_after(monkeypatch, optuna.Study, "ask")  # prepare_study's check asks a probe study: after it
    summary = run_study(plan)
    assert summary.interrupted == signal.SIGINT
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, "interrupted")]


def test_a_warm_start_point_whose_trial_was_interrupted_runs_on_resume(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C during the first warm-start trial: the resumed run skipped the point as "already in the
    # study" (Optuna's skip_if_exists counts the interrupted FAIL), so it was never evaluated.
    point = {"optimizer.lr": 0.0123, "model.hidden.0": 16}
    opt_dict = {**opt_dict, "n_trials": 2, "enqueue": [point]}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    plan = prepare_study(rp, op)
    _signal_after(monkeypatch, optuna.Study, "ask")  # prepare_study's check asks a probe study: after it
    assert run_study(plan).interrupted == signal.SIGINT
    monkeypatch.undo()
    run_study(prepare_study(rp, op))
    run_study(prepare_study(rp, op, Overrides(n_trials=3)))  # queued once, not on every resume
    trials = load_study(opt_dict).trials
    ran = [
        (t.system_attrs.get("fixed_params", t.params), t.state, t.user_attrs.get("fail_reason"))
        for t in trials
    ]
    at_point = [(state, reason) for params, state, reason in ran if params == point]
    assert at_point == [(TrialState.FAIL, "interrupted"), (TrialState.COMPLETE, None)]
    assert len(trials) == 4


def _queue_chosen_point(study: optuna.Study, kind: str, point: dict[str, Any]) -> None:
    """Queue `point` as hpotool does for `kind`: a dead local worker's retry (`retry_of`), Optuna's heartbeat
    retry of a stale trial (`failed_trial`), or a warm start of `--enqueue-from`."""
    from hpotool.heartbeat import retry_stale_trial
    from hpotool.owners import enqueue_owned

    if kind == "--enqueue-from":
        enqueue_owned(study, point, {"warm_start": "--enqueue-from"})
        return
    study.enqueue_trial(point)
    dead = study.ask(  # the trial whose worker died with these values
        {
            "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
            "model.hidden.0": optuna.distributions.IntDistribution(8, 32, step=8),
        }
    )
    reason = "worker died (pid 1)" if kind == "retry_of" else "stale: no heartbeat for 60 s"
    dead.set_user_attr("fail_reason", reason)
    study.tell(dead, state=TrialState.FAIL)
    if kind == "retry_of":
        study.enqueue_trial(point, user_attrs={"retry_of": dead.number})
    else:
        retry_stale_trial(study, study._storage.get_trial(dead._trial_id))


@pytest.mark.parametrize("point", [{"optimizer.lr": 0.0123, "model.hidden.0": 16}, None])
def test_a_resume_s_summary_says_a_trial_interrupted_before_it_failed_before_it_and_where_its_values_ran(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    point: dict[str, Any] | None,
) -> None:
    # A resume that ran cleanly ended on "note: 1 trial failed; the last, #0: interrupted": the trial
    # interrupted in the earlier run, which read as a failure of this one (the note counts the study's).
    from hpotool.storage_url import shown_url

    opt_dict = {**opt_dict, "n_trials": 2, "enqueue": [point] if point else []}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    plan = prepare_study(rp, op)
    _signal_after(monkeypatch, optuna.Study, "ask")  # prepare_study's check asks a probe study: after it
    assert run_study(plan).interrupted == signal.SIGINT
    monkeypatch.undo()
    summary = run_study(prepare_study(rp, op))
    assert summary.interrupted is None and summary.counts == {"complete": 2, "fail": 1}
    trials = load_study(opt_dict).trials
    again = [t.number for t in trials[1:] if point and t.system_attrs.get("fixed_params") == point]
    where = f"--study-name tiny --storage {shown_url(plan.storage_url)}"
    ran = f" (its values ran again in #{again[0]})" if point else ""
    assert summary.extra["failures"] == (
        f"1 trial failed before this run, none in it; the last, #0: interrupted{ran}; "
        f"hpotool trials {where} --state fail lists them"
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("kind", ["retry_of", "failed_trial", "--enqueue-from"])
def test_an_interrupted_trial_of_queued_values_runs_them_on_resume_once(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    # Ctrl-C during a dead worker's retry (retry_of, or Optuna's heartbeat retry: failed_trial), or during a
    # warm start of --enqueue-from resumed without the flag: the values were never run again, the sampler
    # drew new ones. Now the resume queues them once (not again on the next resume).
    from hpotool.study import open_study

    point = {"optimizer.lr": 0.0123, "model.hidden.0": 16}
    opt_dict = {**opt_dict, "n_trials": 2}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    plan = prepare_study(rp, op)
    study, _ = open_study(plan)
    _queue_chosen_point(study, kind, point)
    _signal_after(monkeypatch, optuna.Study, "ask")  # prepare_study's check asks a probe study: after it
    assert run_study(plan).interrupted == signal.SIGINT
    monkeypatch.undo()
    run_study(prepare_study(rp, op))
    run_study(prepare_study(rp, op, Overrides(n_trials=3)))  # queued once, not on every resume
    trials = load_study(opt_dict).trials
    ran = [
        (t.state, t.user_attrs.get("fail_reason"))
        for t in trials
        if {**t.system_attrs.get("fixed_params", {}), **t.params} == point
    ]
    assert ran[-2:] == [(TrialState.FAIL, "interrupted"), (TrialState.COMPLETE, None)], ran
    assert (TrialState.COMPLETE, None) not in ran[:-1], ran
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_an_interrupted_qmc_point_runs_on_resume_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # QMC's sequence moved on past a point whose trial Ctrl-C interrupted: the study never ran it, and its
    # points were no longer the sequence's first ones. Now the resume queues it once, as brute force does.
    from hpotool.study import open_study

    opt_dict = {**opt_dict, "n_trials": 2, "sampler": {"name": "qmc", "kwargs": {"qmc_type": "sobol"}}}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    run_study(prepare_study(rp, op))
    study, _ = open_study(prepare_study(rp, op))
    trial = study.ask()  # the sequence's next point, as run_trials ends a trial Ctrl-C stopped
    point = {
        "optimizer.lr": trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True),
        "model.hidden.0": trial.suggest_int("model.hidden.0", 8, 32, step=8),
    }
    trial.set_user_attr("fail_reason", "interrupted")
    study.tell(trial, state=TrialState.FAIL)
    for n in (4, 5):  # resumed, then run again: the point is queued once
        run_study(prepare_study(rp, op, Overrides(n_trials=n)))
    trials = load_study(opt_dict).trials
    assert [t.state for t in trials if t.params == point] == [TrialState.FAIL, TrialState.COMPLETE]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 5


def test_a_signal_as_a_trial_ends_its_heartbeat_leaves_it_told_not_running(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C after the training, while the trial's heartbeat thread is joined (it may be writing a beat)
    # and before the tell: the trial stayed RUNNING, though the summary said it ended. It trained to its
    # end: it is told so, and the run stops.
    from optuna.storages._heartbeat import HeartbeatThread

    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    _signal_after(monkeypatch, HeartbeatThread, "join")
    assert run_study(plan).interrupted == signal.SIGINT
    trials = load_study(opt_dict).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] and trials[0].value is not None


class _CtrlCInAFinalizer:
    """An observer that, at the end of the first epoch, takes a Ctrl-C inside a finalizer (as the garbage
    collector runs SQLAlchemy's weakref callbacks at any moment), where Python prints the interrupt as
    'Exception ignored' and goes on."""

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None:
        pass

    def trial_started(self, number: int, params: Any, epochs: int) -> None:
        pass

    def epoch_ended(self, number: int, result: Any) -> None:
        if number == 0 and result.epoch == 0:
            _Finalized()

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        pass


class _Finalized:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def test_a_signal_whose_interrupt_a_finalizer_swallowed_still_ends_the_trial(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    # The interrupt was lost: the study ran on to its end (in a worker, which ignores a second signal, the
    # trial could not be stopped at all), after a traceback of the 'Exception ignored' kind.
    run_dict["epochs"] = 3
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert run_study(plan, _CtrlCInAFinalizer()).interrupted == signal.SIGINT
    assert "Exception ignored" not in capfd.readouterr().err
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason"), t.user_attrs["epochs_run"]) for t in trials] == [
        (TrialState.FAIL, "interrupted", 1)
    ]
    assert run_study(prepare_study(tmp_path / "run.yaml", tmp_path / "optimize.yaml")).interrupted is None


def test_a_signal_while_a_trial_draws_its_parameters_records_interrupted(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C after `ask`, while the trial suggests its values (TPE takes a while there) and before training:
    # the trial ended FAIL with no fail_reason (a worker test flaked on it under load).
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    _signal_after(
        monkeypatch, optuna.Trial, "suggest_float"
    )  # its checks suggest on a probe study: after them
    assert run_study(plan).interrupted == signal.SIGINT
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, "interrupted")]


def test_a_signal_while_the_study_is_created_waits_until_it_is_described(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C between Optuna's create_study and the configs and fingerprint hpotool stores next (several
    # round trips on a database server) left a study without them: the next run waited for a creator that
    # was gone, then ran it with no resume check, and export-best could not rebuild its configs.
    from hpotool import study as study_module
    from hpotool.fingerprint import ATTR

    real_versions = study_module.versions

    def versions_then_ctrl_c() -> dict[str, str]:
        signal.raise_signal(signal.SIGINT)
        return real_versions()

    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    monkeypatch.setattr(study_module, "versions", versions_then_ctrl_c)
    with signals_interrupt(), pytest.raises(Interrupted):
        study_module.open_study(plan)
    study = load_study(opt_dict)
    assert {"run_config", "optimize_config", "versions", ATTR} <= study.user_attrs.keys()


def test_a_study_whose_creator_died_before_describing_it_is_described_by_the_next_run(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A creator killed (kill -9, an OOM kill) between Optuna's create_study and the fingerprint, with its
    # warm start queued: every later run waited for it, then used the study unchecked for good, and
    # export-best wrote no best_run.yaml ('not created by hpotool optimize').
    from hpotool import study as study_module
    from hpotool.fingerprint import ATTR

    monkeypatch.setattr(study_module, "CREATOR_WAIT_S", 0.5)
    point = {"optimizer.lr": 0.0123, "model.hidden.0": 16}
    opt_dict.update(n_trials=2, enqueue=[point])
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    dead = optuna.create_study(
        study_name="tiny", storage=make_storage(opt_dict["storage"]), direction="maximize"
    )
    dead.enqueue_trial(point, user_attrs=plan.warm_start_attrs(0))  # as describe_new_study begins
    run_study(plan)
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    assert {"run_config", "optimize_config", "versions", ATTR} <= study.user_attrs.keys()
    assert [t.params for t in study.trials].count(point) == 1 and len(study.trials) == 2
    opt_dict["search_space"]["optimizer.lr"]["high"] = 0.5  # a changed experiment is refused now
    with pytest.raises(HpoError, match="changed"):
        run_study(prepare_study(*write_configs(tmp_path, run_dict, opt_dict)))


def test_a_trial_left_running_before_it_recorded_its_owner_is_failed_and_frees_its_slot(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that died, or whose storage server went away, between `ask` and recording its owner left a
    # RUNNING trial that neither the heartbeat nor the dead-process check could end: it held one of the
    # n_trials slots for good, and every later run waited for it (here until its timeout).
    import time

    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "1")
    rp = write_yaml(tmp_path / "run.yaml", run_dict)
    op = write_yaml(tmp_path / "optimize.yaml", {**opt_dict, "n_trials": 3, "timeout": 20})
    run_study(prepare_study(rp, op, Overrides(n_trials=1)))
    study = load_study(opt_dict)
    orphan = study.ask()  # RUNNING, with no owner: its process is gone
    time.sleep(1.5)
    summary = run_study(prepare_study(rp, op))
    assert summary.stopped is None, summary.stopped
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    assert trials[orphan.number].user_attrs["fail_reason"].startswith("abandoned")
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one-process", "workers"])
def test_a_run_waiting_for_a_trial_with_no_owner_says_for_which_and_how_long_at_most(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    workers: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A resumed run whose last slot a trial held, left RUNNING with no owner by a process whose owner write
    # failed (a lock between `ask` and the write, a server gone), waited out the grace period (60 s) without
    # a word before it failed that trial. Now it says at once which trial it waits for and how long at most.
    args = _optimize_args(tmp_path, run_dict, {**opt_dict, "n_trials": 2}, *workers)
    _in_this_process([*args, "--n-trials", "1"])
    study = load_study(opt_dict)
    orphan = study.ask()  # RUNNING, with no owner: its process is gone, or still waiting to record itself
    if workers:
        # A process of its own, its output read line by line while the run waits (the workers now take the
        # grace from the command's environment, as a run in this process would give it), whose start (imports, the worker server) took over 20 s at load
        # 13: past the grace, the run failed the trial at once, with no wait to announce. Its grace is two
        # minutes, and the wait ends once the note is read: the trial's process, which was still waiting to
        # record itself, ends it, and the run takes its slot.
        grace = 120
        proc = _hpotool(args, tmp_path, HPOTOOL_HEARTBEAT_GRACE=str(grace))
        assert proc.stdout is not None
        try:
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("note: waiting up to"):
                    study.tell(orphan, state=TrialState.FAIL)
                    break
            output = "".join(lines) + proc.communicate(timeout=180)[0]
        finally:
            _kill_session(proc)
        assert proc.returncode == 0, output
    else:  # the run waits the grace out, so it runs in this one, with no imports to wait for (a start
        # of 2-3 s at load 13); its notes, logged, are caught here before they reach the CLI's stream
        grace = 8
        monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", str(grace))
        with caplog.at_level("WARNING", logger="hpotool"):
            _in_this_process(args)
        output = "\n".join(r.getMessage() for r in caplog.records if r.name == "hpotool")
    [note] = [line for line in output.splitlines() if line.startswith("note: waiting up to")]
    said = re.fullmatch(
        rf"note: waiting up to (\d+) s for trial #{orphan.number}, RUNNING with no owner recorded \(the process "
        r"that started it ended or lost the storage before recording itself, or is still waiting to\); a "
        rf"trial still without one {grace} s after its start is marked FAIL, and this run takes its slot",
        note,
    )
    assert said is not None, output
    assert 0 < int(said[1]) <= grace, note
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    if not workers:  # failed by the run once its grace ended
        assert trials[orphan.number].user_attrs["fail_reason"].startswith("abandoned")
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 2


def test_a_trial_that_has_not_recorded_its_owner_yet_is_no_wait_to_announce(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A live process records its trial's owner milliseconds after `ask`: a run that polls in between (it
    waits for the last slot, which that process has just taken) said 'waiting up to 60 s for trial #0, RUNNING
    with no owner recorded', a false alarm. Only a trial that has gone without an owner for seconds is one."""
    import copy
    from datetime import timedelta

    from hpotool.wait_notes import OwnerlessNote

    study = optuna.create_study()
    fresh = study.ask()
    [trial] = study.get_trials(deepcopy=False)
    note = OwnerlessNote(60)
    with caplog.at_level("WARNING", logger="hpotool"):
        assert 59 < note.look(study, [trial], say=True) <= 60  # its grace still runs: the run wakes for it
        assert not [r for r in caplog.records if r.name == "hpotool"]
        old = copy.deepcopy(trial)
        old.datetime_start = trial.datetime_start - timedelta(seconds=10)  # 10 s without an owner
        assert 49 < note.look(study, [old], say=True) <= 50
    [said] = [r.getMessage() for r in caplog.records if r.name == "hpotool"]
    assert said.startswith(f"note: waiting up to 50 s for trial #{fresh.number}, RUNNING with no owner"), said


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_the_first_trial_exits_as_a_later_one_does(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    how: signal.Signals,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A SIGTERM in the first seconds (torch and optuna imported, the configs checked, the study created)
    # killed the process (-15 to its parent) with nothing said; a Ctrl-C exited 130 without a word.
    model = tmp_path / "early_signal.py"
    model.write_text(
        "import os, signal, time\n"
        f"os.kill(os.getpid(), {int(how)})\n"
        "time.sleep(30)  # the signal ends this import at once\n"
        "from tests.helpers import SlowModel as Net\n"
    )
    args = _configs(tmp_path, {**run_dict}, opt_dict, 2)
    run = tmp_path / "run.yaml"
    run.write_text(run.read_text().replace("tests.helpers:SlowModel", "early_signal:Net"))
    proc = _hpotool(args, tmp_path)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, output
    # It said "no trial was running; run the same command to resume", with nothing there to resume.
    assert output.strip() == "interrupted before the study started; nothing was written"
    assert not (tmp_path / "studies").exists()
    model.write_text("from tests.helpers import SlowModel as Net\n")
    # The same command, run again: in this process (nothing signals it), from the folder that holds the model.
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "early_signal", raising=False)  # another case's, if imported here
    _in_this_process(args)


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize(
    ("where", "said"),
    [
        # The storage file and its folder are written, the study not yet created.
        (
            "hpotool.study.make_storage",
            "interrupted while opening the study in {url}, before any trial ran; run "
            "the same command to go on",
        ),
        # The study exists; its resume is being prepared.
        (
            "hpotool.study_run.prepare_resume",
            "interrupted: no trial was running; run the same command to resume",
        ),
    ],
)
def test_a_signal_while_the_study_opens_says_how_far_it_got(
    configs: tuple[Path, Path],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    how: signal.Signals,
    code: int,
    where: str,
    said: str,
) -> None:
    import importlib

    from .cli_run import optimize

    module, name = where.rsplit(".", 1)
    real = getattr(importlib.import_module(module), name)

    def then_signal(*args: Any, **kwargs: Any) -> Any:
        value = real(*args, **kwargs)
        signal.raise_signal(how)
        return value

    def killed(signum: int, frame: Any) -> None:  # SIGTERM's default would end pytest
        raise AssertionError("the SIGTERM reached the default action: the process would be killed")

    monkeypatch.setattr(where, then_signal)
    previous = signal.signal(signal.SIGTERM, killed)
    try:
        result = optimize(*configs, opt_dict["storage"], 1, exit_code=code)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.stderr.splitlines()[-1] == said.format(url=opt_dict["storage"])
    study = _study_or_none(make_storage(opt_dict["storage"]))
    if where.endswith("prepare_resume"):
        assert study is not None and study.get_trials(deepcopy=False) == []
    else:
        assert study is None


def test_a_signal_while_optimize_writes_its_report_says_it_was_not_written(
    tmp_path: Path, configs: tuple[Path, Path], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGTERM while `optimize --report` drew its figures (seconds, after the summary) killed the process
    # (-15) with nothing said, and a Ctrl-C exited 130 in silence: no word that the report was missing.
    from hpotool import report

    from .cli_run import optimize

    real_write = report.write_report

    def sigterm_then_write(*args: Any, **kwargs: Any) -> Path:
        signal.raise_signal(signal.SIGTERM)
        return real_write(*args, **kwargs)

    def killed(signum: int, frame: Any) -> None:  # SIGTERM's default would end pytest
        raise AssertionError("the SIGTERM reached the default action: the process would be killed")

    monkeypatch.setattr(report, "write_report", sigterm_then_write)
    previous = signal.signal(signal.SIGTERM, killed)
    try:
        result = optimize(*configs, opt_dict["storage"], 1, "--report", exit_code=143)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.stderr.splitlines()[-1] == (
        f"interrupted: the report was not written; hpotool report --study-name tiny --storage "
        f"{opt_dict['storage']} writes it"
    )
    assert not (tmp_path / "studies" / "tiny" / "report.html").exists()


def test_a_signal_as_a_trial_s_heartbeat_starts_stops_the_heartbeat_and_fails_the_trial(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal just after Optuna started a trial's heartbeat thread, before its `with` block was entered,
    # skipped the thread's stop: it beat on for good, and a worker waited for it at exit, so the main
    # process of `--workers 2` hung in its wait for that worker after a SIGTERM (until kill -9).
    import threading

    from optuna.storages._heartbeat import HeartbeatThread

    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    _signal_after(monkeypatch, HeartbeatThread, "start")
    assert run_study(plan).interrupted == signal.SIGINT
    beating = [t for t in threading.enumerate() if "_record_heartbeat" in t.name]
    assert beating == []
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, "interrupted")]


def test_a_second_signal_as_optimize_prints_its_summary_waits_for_it(
    configs: tuple[Path, Path], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C twice: the second, as the summary of the first was printed, cut it short or left nothing at
    # all on the screen (exit 130, not a word).
    import hpotool.cli.optimize

    from .cli_run import optimize

    real_print = hpotool.cli.optimize.print_summary

    def ctrl_c_then_print(*args: Any) -> None:
        signal.raise_signal(signal.SIGINT)
        real_print(*args)

    monkeypatch.setattr(
        hpotool.cli.optimize, "print_summary", ctrl_c_then_print
    )  # where optimize looks it up
    result = optimize(*configs, opt_dict["storage"], 1, exit_code=130)
    assert "study tiny" in result.stdout and "best trial" in result.stdout


def _ctrl_c_before(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Patches owner.name so that a Ctrl-C reaches this process as each call starts."""
    real = getattr(owner, name)

    def ctrl_c_then(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, ctrl_c_then)


def test_ctrl_c_again_as_an_interrupted_run_sums_up_waits_for_its_summary(
    configs: tuple[Path, Path], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C pressed several times (a user in a hurry): one arriving as the interrupted run read its summary
    # from the study cut the read short, and the command printed no summary but 'interrupted: no trial was
    # running', though its trial had just ended as interrupted.
    import hpotool.study_run

    from .cli_run import optimize

    _signal_after(monkeypatch, optuna.Trial, "report")  # the first, as the first epoch is reported
    _ctrl_c_before(monkeypatch, hpotool.study_run, "ran_now_states")  # the next, as the summary is read
    result = optimize(*configs, opt_dict["storage"], 2, exit_code=130)
    assert "no trial was running" not in result.output, result.output
    assert "interrupted: the running trial ended as FAIL" in result.output, result.output
    assert "study tiny" in result.stdout and "fail 1" in result.stdout, result.output
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, "interrupted")]


def test_ctrl_c_again_as_interrupted_workers_sum_up_waits_for_the_summary(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same with --workers: a Ctrl-C once the workers had ended their trials, as the main process read the
    # study for its summary, left no summary and 'no trial was running'.
    import hpotool.workers

    from .test_workers import _in_this_process

    args = _configs(tmp_path, run_dict, opt_dict, 4)
    study: list[optuna.Study] = []

    def ctrl_c_once_a_trial_runs(*args: Any, **kwargs: Any) -> Any:
        if not study:
            study.append(_study_of(opt_dict["storage"]))
        if _running_with_epochs(study[0]):
            signal.raise_signal(signal.SIGINT)  # the first: to the main process, which stops the workers
        return real_wait(*args, **kwargs)

    real_wait = hpotool.workers.wait
    monkeypatch.setattr(hpotool.workers, "wait", ctrl_c_once_a_trial_runs)
    _ctrl_c_before(monkeypatch, hpotool.workers, "sum_up")  # the next, as the summary is read
    result = _in_this_process([*args, "--workers", "2"], exit_code=130)
    assert "no trial was running" not in result.output, result.output
    # one worker may be between its trials as the signal lands: its note counts the trials ended
    assert re.search(r"interrupted: (every worker|1 of 2 workers) ended its trial as FAIL", result.output), (
        result.output
    )
    assert "study tiny" in result.stdout, result.output
    trials = load_study(opt_dict).trials
    assert trials and all(t.state != TrialState.RUNNING for t in trials), trials
    assert any(t.user_attrs.get("fail_reason") == "interrupted" for t in trials), trials


def test_a_second_signal_as_an_interrupted_trial_is_told_waits_for_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C twice as a trial was set up (asked, its place checked): the second, as the first failed the
    # trial, left it RUNNING, for the next run's dead-process check to find.
    from hpotool import trial_setup

    real_holds, real_set = trial_setup._holds_its_point, optuna.Trial.set_user_attr

    def holds_then_ctrl_c(*args: Any) -> bool:
        real_holds(*args)
        signal.raise_signal(signal.SIGINT)
        return True

    def ctrl_c_again(self: optuna.Trial, key: str, value: Any) -> None:
        if key == "worker":  # the interrupted trial's first write as it is told
            signal.raise_signal(signal.SIGINT)
        real_set(self, key, value)

    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    monkeypatch.setattr(trial_setup, "_holds_its_point", holds_then_ctrl_c)
    monkeypatch.setattr(optuna.Trial, "set_user_attr", ctrl_c_again)
    assert run_study(plan).interrupted == signal.SIGINT
    trials = load_study(opt_dict).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, "interrupted")]


def _folder_state(folder: Path) -> dict[str, Any]:
    """Every file under `folder` with its bytes and modification time, and the folder's own time: what a
    command that writes nothing leaves as it was."""
    files = {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")}
    return {"files": files, "folder": folder.stat().st_mtime_ns}


def test_a_dry_run_writes_nothing_to_the_storage_nor_beside_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A dry run opened an existing SQLite study as a run does: a plain Optuna database (rollback journal) was
    # switched to WAL mode, its header rewritten, and an hpotool one (WAL) got -wal and -shm files beside it.
    import sqlite3

    from optuna.storages.journal import JournalFileBackend
    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.study import describe_study

    from .cli_run import optimize

    run_path, opt_path = (
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "optimize.yaml", opt_dict),
    )
    plan = prepare_study(run_path, opt_path)
    folder = tmp_path / "studies"
    folder.mkdir()
    journal = optuna.storages.JournalStorage(JournalFileBackend(str(folder / "tiny.log")))
    rdb = optuna.storages.RDBStorage(f"sqlite:///{folder / 'plain.db'}")
    for storage in (rdb, journal):
        study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
        describe_study(study, plan)  # joinable by name, as hpotool optimize leaves it
        for value in (0.5, 0.6):
            study.add_trial(optuna.trial.create_trial(value=value))
    rdb.engine.dispose()
    with sqlite3.connect(folder / "wal.db") as wal, sqlite3.connect(folder / "plain.db") as plain:
        plain.backup(wal)
        wal.execute("PRAGMA journal_mode=WAL")
    wal.close()
    plain.close()
    assert sorted(p.name for p in folder.iterdir()) == ["plain.db", "tiny.log", "wal.db"]
    urls = [
        f"sqlite:///{folder / 'plain.db'}",
        f"sqlite:///{folder / 'wal.db'}",
        f"journal:{folder / 'tiny.log'}",
    ]
    before = _folder_state(folder)
    for url in urls:
        for how in (["-r", str(run_path), "-o", str(opt_path)], ["--study-name", "tiny"]):
            result = CliRunner().invoke(
                app, ["optimize", *how, "--storage", url, "--n-trials", "5", "--dry-run"]
            )
            assert result.exit_code == 0, result.output
            assert "2 finished already, 3 to run" in result.stdout, result.output
            assert _folder_state(folder) == before, (url, how)
    # A storage that does not exist yet: neither it nor its folder is made.
    optimize(run_path, opt_path, "sqlite:///new/x.db", 5, "--dry-run")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("default", [False, True], ids=["config-storage", "default-storage"])
def test_a_study_the_workers_cannot_open_is_one_line_naming_the_storage(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], default: bool
) -> None:
    # The study's file moved away between the main process's open and the workers' (a real dataset that
    # moves it as a worker loads it): each worker printed make_storage's HpoError as a traceback, and the
    # command said '2 of 2 workers died (...); run again to resume', exit code 1. The line then began
    # "storage 'URL'", where the main process's errors name where the storage came from (the config's
    # storage: key, or the default studies/tiny.db).
    from .moving_storage import MOVE

    run = {
        **run_dict,
        "data": {"name": "tests.moving_storage:digits_that_move_the_study", "val_fraction": 0.2},
    }
    opt = {**opt_dict, "storage": None} if default else opt_dict
    paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)
    db = tmp_path / "studies" / "tiny.db"
    proc = _hpotool(
        ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "--workers", "2", "-q"],
        tmp_path,
        **{MOVE: str(db)},
    )
    try:
        output, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()
    line = _error_line(proc, output)
    assert "workers died" not in output, output
    named = (
        "the default storage studies/tiny.db" if default else f"{paths[1]}: storage: {opt_dict['storage']!r}"
    )
    assert re.fullmatch(
        rf"error: hpotool-worker-[01]: {re.escape(named)}: no such SQLite file "
        rf"'{re.escape(str(db))}'; this command opened the study a moment before, and its workers could not "
        rf"\(the file moved or deleted\?\): put it back where the storage names it, run the same command to resume",
        line,
    ), line
    assert (db.parent / "tiny.db.moved").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_study_deleted_while_it_runs_is_one_line(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    workers: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process deleted the study mid-run (optuna delete-study): Optuna's storage raised
    # KeyError('Record does not exist.'), a traceback in the command (and in each worker), exit code 1.
    from .moving_storage import DELETE

    run = {**run_dict, "model": {"name": "tests.moving_storage:DeletesTheStudy"}}
    opt = {
        **opt_dict,
        "search_space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)
    args = ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "--workers", str(workers), "-q"]
    if workers == 1:  # the trial runs in the command's own process: this one (no signal to send it)
        monkeypatch.setenv(DELETE, f"tiny {opt_dict['storage']}")
        output = _in_this_process(args, exit_code=2).output
        assert "Traceback" not in output, output
        (line,) = [line for line in output.splitlines() if line.startswith("error:")]
    else:  # workers take the environment of a process of their own (this one's warm server has its own)
        proc = _hpotool(args, tmp_path, **{DELETE: f"tiny {opt_dict['storage']}"})
        try:
            output, _ = proc.communicate(timeout=240)
        finally:
            proc.kill()
        line = _error_line(proc, output)
    assert line == (
        f"error: study 'tiny' in {opt_dict['storage']} was deleted while this command ran it (by another process: "
        f"optuna delete-study, a script); its trials went with it. Run the same command to start the study again"
    )


def _slow_run(run_dict: dict[str, Any], epochs: int) -> dict[str, Any]:
    return {**run_dict, "epochs": epochs, "model": {"name": "tests.helpers:SlowModel", "sleep": 0.05}}


def _ctrl_c_when(proc: Any, ready: Any) -> str:
    """Ctrl-C to `proc` once `ready()` is true; its output once it has exited."""
    try:
        _wait_for(ready)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return str(output)


def test_ctrl_c_in_train_says_nothing_was_saved_and_exits_130(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    # The command ended with exit code 130 and printed nothing: the user could not tell whether the run
    # folder had been written.
    # Ctrl-C once training has begun, not 3 s after the start: a loaded machine was still importing then.
    training = tmp_path / "training"  # made once the run has trained 20 batches
    model = {"name": "tests.helpers:SignalsTraining", "training": str(training)}
    path = write_yaml(tmp_path / "run.yaml", {**run_dict, "epochs": 100000, "model": model})
    proc = _hpotool(["train", "-r", str(path), "--out", "mine"], tmp_path)
    output = _ctrl_c_when(proc, training.exists)
    assert proc.returncode == 130, output
    assert output.strip().splitlines()[-1] == (
        "interrupted: training stopped before its end; nothing was saved (mine was not written)"
    ), output
    assert "Traceback" not in output and not (tmp_path / "mine").exists()


def test_ctrl_c_in_train_from_best_says_which_runs_were_saved_and_exits_130(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # As in train: exit code 130 and not a word, though the first seed's run was saved and the same command
    # with the same --out trains only the rest.
    opt = {**opt_dict, "n_trials": 1, "search_space": {"model.width": {"type": "int", "low": 4, "high": 8}}}
    best = run_tiny_study(tmp_path, _slow_run(run_dict, 1), opt).best_trial.number
    args = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    # 15 epochs of 0.05 s forward passes: ~4 s a run, seconds for the Ctrl-C to land in the second seed's
    proc = _hpotool([*args, "--seeds", "2", "--epochs", "15"], tmp_path)
    first = tmp_path / "final" / f"trial{best}-seed0" / "config.yaml"  # written last
    output = _ctrl_c_when(proc, first.exists)
    assert proc.returncode == 130, output
    assert output.strip().splitlines()[-1] == (
        "interrupted: 1 of 2 runs saved in final (summary.json not written); the same command trains only "
        "the rest"
    ), output
    assert "Traceback" not in output and not (tmp_path / "final" / f"trial{best}-seed1").exists()


@pytest.mark.parametrize("there", ["", "runs", "runs/tiny"], ids=["nothing", "runs", "runs-tiny"])
def test_ctrl_c_in_train_from_best_leaves_no_default_folder_and_keeps_the_others(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], there: str
) -> None:
    # Stopped before its first run was saved, train-from-best removed its empty runs/tiny/<timestamp> but
    # left the empty runs/tiny (and runs) it had made for it. Now none of them is made before the first
    # run's save; a folder that was there before the command stays.
    training = tmp_path / "training"  # made once the first run has trained 20 batches
    run = {
        **run_dict,
        "epochs": 1,
        "model": {"name": "tests.helpers:SignalsTraining", "training": str(training)},
    }
    opt = {
        **opt_dict,
        "n_trials": 1,
        "search_space": {"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1}},
    }
    run_tiny_study(tmp_path, run, opt)
    if there:
        (tmp_path / there).mkdir(parents=True)

    def folders() -> list[str]:  # runs/ and the folders under it, as they are now
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("runs/**"))

    before = folders()
    args = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--epochs", "100000"]
    proc = _hpotool(args, tmp_path)
    output = _ctrl_c_when(proc, training.exists)
    assert proc.returncode == 130, output
    assert output.strip().splitlines()[-1] == "interrupted: no run was saved; the same command trains it", (
        output
    )
    assert folders() == before


def test_an_interrupted_retry_s_values_queued_again_keep_its_retry_count(tmp_path: Path) -> None:
    # A stale trial's retry carries Optuna's `failed_trial` and `retry_history`, which cap its retries at
    # MAX_RETRY; the values of such a retry that Ctrl-C interrupted were queued again with `retry_of` alone,
    # so the count started afresh: each interrupt bought the point MAX_RETRY more deaths. Now the queued
    # trial carries the interrupted one's count on, and an interrupt is no death of its own.

    from hpotool.heartbeat import retry_stale_trial
    from hpotool.resume import _queue_interrupted_points
    from hpotool.storage import make_storage
    from hpotool.storage_settings import MAX_RETRY

    study = optuna.create_study(study_name="s", storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"))

    def run(state_reason: str) -> optuna.trial.FrozenTrial:
        """Take the next queued trial (or a new one), draw x, and end it FAIL for `state_reason`."""
        trial = ask_with_heartbeat(study)
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("fail_reason", state_reason)
        study.tell(trial, state=TrialState.FAIL)
        return study._storage.get_trial(trial._trial_id)

    retry_stale_trial(study, run("stale"))  # #0 dies; #1 is its retry
    assert _queue_interrupted_points(study) is False
    run("interrupted")  # #1, Ctrl-C
    assert _queue_interrupted_points(study) is True  # #2: #1's values again
    queued = study.get_trials(states=(TrialState.WAITING,))[-1]
    assert queued.user_attrs == {"retry_of": 1}
    assert queued.system_attrs["failed_trial"] == 0 and queued.system_attrs["retry_history"] == [0]
    deaths = 1
    while study.get_trials(states=(TrialState.WAITING,)):
        retry_stale_trial(study, run("stale"))
        deaths += 1
    assert deaths == MAX_RETRY + 1  # before: 1 + MAX_RETRY + 1, the count started again after the interrupt
    values = {t.params["x"] for t in study.trials}
    assert len(values) == 1


def test_an_interrupted_point_two_resumes_queue_at_once_is_queued_once(shared_study: SharedStudy) -> None:
    # Two machines resuming at the same moment both queued the interrupted trial's values: each looked for
    # a later trial holding them, found none, then queued them (check, then queue), and the point ran twice.
    # Now a resume queues them only where it is the first to claim the interrupted trial, by one insert
    # the database lets one process make (a study system attribute, unique per study and key).

    import sqlalchemy

    from hpotool.resume import _queue_interrupted_points

    study, mine = shared_study.study, shared_study.mine
    study.enqueue_trial({"x": 0.5})  # a warm start, interrupted
    trial = ask_with_heartbeat(study)
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("fail_reason", "interrupted")
    study.tell(trial, state=TrialState.FAIL)
    resumed: list[bool] = []

    def the_other_resumes_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT") and not resumed:  # this resume's first write
            resumed.append(_queue_interrupted_points(shared_study.seen_by_other()))

    engine = mine._backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", the_other_resumes_first)
    queued = _queue_interrupted_points(study)
    sqlalchemy.event.remove(engine, "before_cursor_execute", the_other_resumes_first)
    assert resumed == [True]
    assert queued is False  # before: True, a second trial of the same values
    waiting = shared_study.stored().get_trials(states=(TrialState.WAITING,))
    assert [(t.user_attrs, t.system_attrs["fixed_params"]) for t in waiting] == [
        ({"retry_of": 0}, {"x": 0.5})
    ]
    assert _queue_interrupted_points(study) is False  # nor later: a trial holds them


def test_a_warm_start_two_resumes_queue_at_once_is_queued_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], shared_study: SharedStudy
) -> None:
    # Two machines starting (or resuming) the same study at the same moment each looked for a trial of an
    # enqueue-list point, found none, then queued it (check, then queue): the point ran twice. Now a process
    # queues it only where it is the first to claim it (`_claim`), and a resume after its trial was
    # interrupted queues it again.

    import sqlalchemy

    from hpotool.resume import queue_interrupted

    study, mine = shared_study.study, shared_study.mine
    point = {"optimizer.lr": 0.01, "model.hidden.0": 16}
    opt_dict.update(study_name=shared_study.name, storage=shared_study.url, enqueue=[point])
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    started: list[int] = []

    def the_other_starts_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT") and not started:  # this process's first write
            started.append(1)
            queue_interrupted(shared_study.seen_by_other(), plan)

    engine = mine._backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", the_other_starts_first)
    queue_interrupted(study, plan)
    sqlalchemy.event.remove(engine, "before_cursor_execute", the_other_starts_first)
    assert started
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1  # before: 2, the same point
    trial = ask_with_heartbeat(study)
    trial.set_user_attr("fail_reason", "interrupted")
    study.tell(trial, state=TrialState.FAIL)
    queue_interrupted(study, plan)  # the interrupted point never ran: queued again, once
    queue_interrupted(study, plan)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [point]


class _OtherEndsItAsTheReasonIsWritten:
    """Another process (a stale check that took this live owner for dead) ends `shared_study`'s running trial
    FAIL with its own reason at the moment this process writes its reason for it (one that says `mine`): in a
    thread of its own, waited for up to 2 s (a server's row lock, or SQLite's, keeps it waiting for this
    process's write)."""

    REASON = "stale: no heartbeat for 60 s"

    def __init__(self, shared_study: SharedStudy, mine: str = "interrupted") -> None:
        import threading

        self.shared_study = shared_study
        self.mine = mine
        self.ended: list[bool] = []  # whether the other process ended it
        self.thread = threading.Thread(target=self._end_it)

    def _end_it(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        from hpotool.failed_trials import fail_trial

        other = self.shared_study.other
        [running] = self.shared_study.seen_by_other().get_trials(states=(TrialState.RUNNING,))
        try:
            self.ended.append(fail_trial(other, running._trial_id, self.REASON))
        except UpdateFinishedTrialError:  # this process ended it first
            self.ended.append(False)

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if (
            statement.startswith("INSERT INTO trial_user_attributes")
            and self.mine in str(parameters)
            and not self.thread.ident
        ):
            self.thread.start()
            self.thread.join(2.0)

    def reason_stands(self) -> None:
        """The trial ended FAIL with the reason of the process that ended it: the other's, or this one's."""
        self.thread.join()
        # the first: where the other process ended it, its FAIL is no failure of this run's (--max-failures),
        # and the run goes on to a trial of its own
        trial = self.shared_study.stored().trials[0]
        assert self.ended, "the other process never ran"
        reason = str(trial.user_attrs.get("fail_reason"))
        # before: this process's reason where the other process ended it (or the FAIL raised first)
        assert trial.state == TrialState.FAIL
        if self.ended == [True]:
            assert reason == self.REASON
        else:
            assert self.mine in reason and reason != self.REASON


def test_an_interrupted_trial_another_process_ends_at_once_keeps_the_reason_of_the_one_that_ended_it(
    shared_study: SharedStudy,
) -> None:
    # Ctrl-C in training: the trial's owner wrote "interrupted", then the FAIL. A stale check's FAIL landing
    # in between was told "interrupted" over its own reason (SQLite, PostgreSQL, MySQL alike), so a resume took
    # the point for one never run. Now the reason goes with the FAIL in one write: whichever process ends the
    # trial, its reason is the trial's (on SQLite the other process here, on the servers this one: the
    # other waits on the row lock this one's write holds).

    import sqlalchemy

    from hpotool.trial_run import run_trial

    other = _OtherEndsItAsTheReasonIsWritten(shared_study)
    trial = ask_with_heartbeat(shared_study.study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        raise KeyboardInterrupt

    engine = shared_study.mine._backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", other)
    with pytest.raises(KeyboardInterrupt):
        run_trial(shared_study.study, trial, objective)
    other.reason_stands()


def test_a_trial_interrupted_as_it_is_set_up_and_ended_at_once_by_another_process_ends_the_run_as_interrupted(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    shared_study: SharedStudy,
) -> None:
    # Ctrl-C as a trial was set up (asked, its slot and point checked): the owner wrote "interrupted", then
    # told FAIL. A stale check's FAIL landing in between got "interrupted" over its reason, and the tell
    # raised UpdateFinishedTrialError in place of the interrupt: a traceback, not exit 130. Now one write:
    # the run ends as interrupted, and the reason of the process that ended the trial stands.
    import sqlalchemy

    from hpotool import trial_setup

    opt_dict.update(
        study_name=shared_study.name,
        storage=shared_study.url,
        n_trials=1,
        metric="val_loss",
        direction="minimize",
    )
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    _signal_after(monkeypatch, trial_setup, "_holds_its_point")
    other = _OtherEndsItAsTheReasonIsWritten(shared_study)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", other)
    try:
        summary = run_study(plan)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", other)
    assert summary.interrupted == signal.SIGINT
    other.reason_stands()


def test_a_trial_whose_training_fails_as_another_process_ends_it_keeps_the_reason_of_the_one_that_ended_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], shared_study: SharedStudy
) -> None:
    # An error in training: the objective wrote the trial's fail_reason, then the loop told FAIL. A stale
    # check's FAIL landing in between (one that took this live owner for dead) kept the training's reason on
    # SQLite (the owner's reason write, checked before the FAIL, landed after it), so the trial said the
    # training failed where the stale check had failed it. Now the reason goes with the FAIL in one write.
    import sqlalchemy

    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}  # fails from its second training batch
    plan = prepare_study(*shared_study.one_trial_configs(tmp_path, run_dict, opt_dict))
    other = _OtherEndsItAsTheReasonIsWritten(shared_study, mine="boom from user code")
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", other)
    try:
        run_study(plan, max_failures=1)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", other)
    other.reason_stands()


@pytest.mark.parametrize("look", ["ownerless", "fail-stale"])
def test_a_trial_two_processes_fail_at_once_is_failed_and_queued_again_once(
    shared_study: SharedStudy, monkeypatch: pytest.MonkeyPatch, look: str
) -> None:
    # Two processes looking at the same moment (two workers' looks for a trial left with no owner, a resume
    # beside a running command, two `hpotool fail-stale`) both read the trial RUNNING. The second's FAIL was
    # refused, by Optuna's row lock on PostgreSQL and MySQL and by the conditional write on SQLite, with
    # UpdateFinishedTrialError, which fail_ownerless_trials and fail-stale's look at every running trial let
    # out of the command as a traceback. Now the second is told another process got there first: it fails
    # nothing and queues nothing, and the trial's values are queued again once.

    from hpotool import dead_trials, failed_trials
    from hpotool.heartbeat import fail_stale_trials

    def look_at(study: optuna.Study) -> list[int]:
        if look == "ownerless":
            return dead_trials.fail_ownerless_trials(study, 0.0)
        return fail_stale_trials(study, every_running=True)

    study = shared_study.study
    study.enqueue_trial({"x": 0.5})
    ask_with_heartbeat(study)  # takes the queued trial up; its process dies before it records itself
    real_fail, theirs = failed_trials.fail_trial, []

    def the_other_looks_first(*args: Any) -> bool:
        if not theirs:  # between this process's read of the running trials and its FAIL
            theirs.append(None)
            theirs[0] = look_at(shared_study.seen_by_other())
        return real_fail(*args)

    # where each look finds it: the ownerless look imports it once, fail-stale at each call
    caller = dead_trials if look == "ownerless" else failed_trials
    monkeypatch.setattr(caller, "fail_trial", the_other_looks_first)
    assert look_at(study) == []  # before: UpdateFinishedTrialError
    assert theirs == [[0]]
    trials = shared_study.stored().trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].system_attrs["fixed_params"] == {"x": 0.5}


def test_a_queued_retry_a_resume_drops_as_a_worker_takes_it_up_is_run_not_failed(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], shared_study: SharedStudy
) -> None:
    # A resume drops a queued retry whose values a changed range leaves outside the search space: it wrote
    # the reason, then the FAIL, reading nothing in between. A worker (another machine's) that took the
    # retry up at that moment had its running trial failed under it ("dropped: ..."), its run then lost.
    # Now the FAIL and its reason are one write, made only while the trial is still WAITING: a worker that
    # took it first runs it; else it is dropped, as before.
    import threading

    import sqlalchemy
    from optuna.exceptions import UpdateFinishedTrialError

    from hpotool.resume import _drop_retries_outside_the_space

    opt_dict.update(
        study_name=shared_study.name, storage=shared_study.url, metric="val_loss", direction="minimize"
    )
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study = shared_study.study
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": {"optimizer.lr": 0.5, "model.hidden.0": 16}},  # lr: 1e-3 to 1e-1
            user_attrs={"retry_of": 0},
        )
    )
    [retry] = study.get_trials(states=(TrialState.WAITING,))
    taken: list[bool] = []

    def take_it_up() -> None:  # as Optuna's ask takes up a queued trial (Study._pop_waiting_trial_id)
        try:
            taken.append(shared_study.other.set_trial_state_values(retry._trial_id, TrialState.RUNNING))
        except UpdateFinishedTrialError:  # dropped first
            taken.append(False)

    worker = threading.Thread(target=take_it_up)

    def a_worker_takes_it_up(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        dropping = statement.startswith("INSERT INTO trial_user_attributes") and "dropped" in str(parameters)
        if dropping and not worker.ident:
            worker.start()
            worker.join(2.0)  # a server's row lock keeps it waiting for this process's write

    engine = shared_study.mine._backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", a_worker_takes_it_up)
    _drop_retries_outside_the_space(study, plan, study.get_trials(deepcopy=False))
    worker.join()
    [stored] = shared_study.stored().trials
    assert len(taken) == 1
    if taken == [True]:  # before: FAIL, "dropped: ...", under the worker that runs it
        assert (stored.state, stored.user_attrs.get("fail_reason")) == (TrialState.RUNNING, None)
    else:
        assert stored.state == TrialState.FAIL and stored.user_attrs["fail_reason"].startswith("dropped: ")


def test_a_signal_that_cuts_a_storage_read_short_still_ends_the_trial_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker of a `--workers` run stopped (a closed pipe, Ctrl-C) as its trial read the study: the interrupt
    # left SQLite's read statement open in the frames its traceback kept, holding a snapshot of the file, and
    # the trial's FAIL failed at once with 'database is locked' where another worker had written since: the
    # worker exited on that error, and its trial ended 'worker died (pid ...)' (test_pipes, once in ten runs
    # under load). Now the trial ends as interrupted.

    import sqlalchemy.orm.loading

    from hpotool.trial_run import run_trial

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=make_storage(url), study_name="s")
    other = optuna.load_study(storage=make_storage(url), study_name="s")
    real = sqlalchemy.orm.loading.instances

    def read_then_signal(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(sqlalchemy.orm.loading, "instances", real)  # once
        other.enqueue_trial({"x": 0.5})  # another process writes while this one's read is open
        signal.raise_signal(signal.SIGTERM)  # its handler raises here, the rows not read yet
        return real(*args, **kwargs)

    def objective(trial: optuna.Trial) -> float:
        monkeypatch.setattr(sqlalchemy.orm.loading, "instances", read_then_signal)
        trial.set_user_attr("epochs_run", 1)  # reads the trial, then writes
        return 1.0

    trial = ask_with_heartbeat(study)
    with signals_interrupt(), pytest.raises(Interrupted):
        run_trial(study, trial, objective, asked=time.perf_counter())  # its seconds written first
    stored = optuna.load_study(storage=url, study_name="s").trials[trial.number]
    assert (stored.state, stored.user_attrs.get("fail_reason")) == (TrialState.FAIL, "interrupted")


def test_a_signal_that_lands_in_a_pydantic_serializer_ends_the_trial_as_interrupted(tmp_path: Path) -> None:
    # pydantic's serializers turn an exception raised in a Python function they call into their own error:
    # a SIGTERM landing in a config section's serializer (`run_sections`) as a worker's trial dumped its
    # config ended the trial as a failed run, 'PydanticSerializationError: Error calling function
    # `_leave_out_quiet_defaults`: Interrupted: SIGTERM' (test_pipes, once in twenty runs under load).

    from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

    from hpotool.trial_run import run_trial

    class Section(BaseModel):
        name: str = "mlp"

        @model_serializer(mode="wrap")
        def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
            signal.raise_signal(signal.SIGTERM)  # its handler raises here, inside pydantic's call
            return dict(handler(self))

    def objective(trial: optuna.Trial) -> float:
        Section().model_dump()
        return 1.0

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=make_storage(url), study_name="s")
    trial = ask_with_heartbeat(study)
    with signals_interrupt(), pytest.raises(Interrupted):
        run_trial(study, trial, objective)
    stored = optuna.load_study(storage=url, study_name="s").trials[trial.number]
    assert (stored.state, stored.user_attrs.get("fail_reason")) == (TrialState.FAIL, "interrupted")


# A module whose import swallows a Ctrl-C, as torch's C code does with the imports it makes (numpy's, as
# `import torch` runs): the signal's KeyboardInterrupt is caught there, and the import goes on, or fails later
# with an error of its own ('cannot import name ...' from a module the interrupt left half made).
_SWALLOWING_IMPORT = (
    "import signal\n"
    "try:\n"
    "    signal.raise_signal(signal.{how})  # its handler raises here\n"
    "except KeyboardInterrupt:\n"
    "    pass\n"
    "{then}\n"
    "from tests.helpers import SlowModel as Net\n"
)
_THEN = {
    "fails": "raise ImportError(\"cannot import name 'RpcBackendOptions' from 'torch._C._distributed_rpc'\")",
    "goes_on": "",
}


@pytest.mark.parametrize("then", list(_THEN))
@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_an_import_swallows_stops_the_command_before_the_study(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    then: str,
    how: signal.Signals,
    code: int,
) -> None:
    # Ctrl-C ~4.5 s into `optimize --workers 2`, as torch imported, printed "cannot import
    # 'hpotool.schedulers:no_schedule': importing 'hpotool.schedulers' raised ImportError: cannot import name
    # 'RpcBackendOptions' ..." and exited 2; where the import went on, the Ctrl-C was forgotten and the whole
    # study ran.
    from .cli_run import optimize

    (tmp_path / "swallowing.py").write_text(_SWALLOWING_IMPORT.format(how=how.name, then=_THEN[then]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "swallowing", raising=False)
    _configs(tmp_path, run_dict, opt_dict, 2)
    run = tmp_path / "run.yaml"
    run.write_text(run.read_text().replace("tests.helpers:SlowModel", "swallowing:Net"))

    def killed(signum: int, frame: Any) -> None:  # SIGTERM's default would end pytest
        raise AssertionError("the SIGTERM reached the default action: the process would be killed")

    previous = signal.signal(signal.SIGTERM, killed)
    try:
        result = optimize(run, tmp_path / "optimize.yaml", opt_dict["storage"], 2, exit_code=None)
    finally:
        signal.signal(signal.SIGTERM, previous)
        monkeypatch.delitem(sys.modules, "swallowing", raising=False)
    assert (result.exit_code, result.stderr.strip()) == (
        code,
        "interrupted before the study started; nothing was written",
    ), result.output
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_as_export_best_writes_leaves_no_temporary_file(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], how: signal.Signals, code: int
) -> None:
    # A SIGTERM (a job scheduler's) while export-best wrote its files ended the process at once (os._exit):
    # its hidden temporary file (.trials.csv.<tag>.tmp) and the folder made for it stayed behind, which the
    # README promises of SIGKILL alone. Ctrl-C left nothing.
    run_tiny_study(tmp_path, run_dict, {**opt_dict, "n_trials": 1})
    out = tmp_path / "export"
    before = (
        "import os, signal\n"
        "import hpotool.atomic as atomic\n"
        "real = atomic._write_temporary\n"
        "def then_signal(*args):\n"
        "    real(*args)\n"
        f"    os.kill(os.getpid(), {int(how)})\n"
        "atomic._write_temporary = then_signal\n"
    )
    args = ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", str(out)]
    proc = _hpotool(args, tmp_path, before=before)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, output
    assert "Traceback" not in output
    assert not out.exists(), sorted(p.name for p in out.iterdir())


_FINALIZER_IN_THE_CHECKS = (
    "import signal\n"
    "from tests.helpers import SlowModel\n"
    "dropped = []\n"
    "class _Finalized:\n"
    "    def __del__(self):\n"
    "        signal.raise_signal(signal.SIGINT)\n"
    "class Net(SlowModel):\n"
    "    def __init__(self, in_features, out_features, width=8, sleep=0.02):\n"
    "        super().__init__(in_features, out_features, width, sleep)\n"
    "        if not dropped:  # the first model, the checks': Python prints 'Exception ignored' and goes on\n"
    "            dropped.append(_Finalized())\n"
    "            dropped.clear()\n"
    "            dropped.append(True)\n"
)


def test_a_signal_a_finalizer_swallows_in_the_checks_stops_the_command_before_the_study(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ctrl-C that a finalizer swallowed (the garbage collector runs weakref callbacks at any moment) while
    # the configs were checked was forgotten as the study started: the whole study ran, and exited 0.
    from .cli_run import optimize

    (tmp_path / "finalizing.py").write_text(_FINALIZER_IN_THE_CHECKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "finalizing", raising=False)
    _configs(tmp_path, run_dict, opt_dict, 2)
    run = tmp_path / "run.yaml"
    run.write_text(run.read_text().replace("tests.helpers:SlowModel", "finalizing:Net"))
    try:
        result = optimize(run, tmp_path / "optimize.yaml", opt_dict["storage"], 2, exit_code=None)
    finally:
        monkeypatch.delitem(sys.modules, "finalizing", raising=False)
    assert (result.exit_code, result.stderr.strip()) == (
        130,
        "interrupted before the study started; nothing was written",
    ), result.output
    assert not (tmp_path / "studies").exists()


def test_a_signal_a_finalizer_swallows_as_the_study_opens_stops_the_run_before_its_first_trial(
    configs: tuple[Path, Path], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ctrl-C a finalizer swallowed as the study opened (SQLAlchemy's weakref callbacks run at any moment)
    # was forgotten as the trials' own signal handling began (`signals_interrupt` inside the command's): the
    # whole study ran, and the command exited 0.
    from hpotool import study_run

    from .cli_run import optimize

    real = study_run.prepare_resume

    def prepared_then_swallowed(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        _Finalized()  # dropped at once: Python prints 'Exception ignored' and goes on
        return done

    monkeypatch.setattr(study_run, "prepare_resume", prepared_then_swallowed)
    result = optimize(*configs, opt_dict["storage"], 2, exit_code=130)
    assert result.stderr.splitlines()[-1] == (
        "note: interrupted between trials: none was running; run the same command to resume"
    )
    assert load_study(opt_dict).get_trials(deepcopy=False) == []


def test_a_signal_a_finalizer_swallows_as_train_runs_stops_it_and_saves_nothing(
    tmp_path: Path, run_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In train (and train-from-best) a Ctrl-C a finalizer swallowed was never raised again: training ran
    # to its end, the run was saved, and the command exited 0.
    from typer.testing import CliRunner

    from hpotool.cli import app

    (tmp_path / "finalizing.py").write_text(_FINALIZER_IN_THE_CHECKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "finalizing", raising=False)
    model = {"name": "finalizing:Net", "sleep": 0.0}
    path = write_yaml(tmp_path / "run.yaml", {**run_dict, "epochs": 3, "model": model})
    try:
        result = CliRunner().invoke(app, ["train", "-r", str(path), "--out", "mine"], catch_exceptions=False)
    finally:
        monkeypatch.delitem(sys.modules, "finalizing", raising=False)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "interrupted: training stopped before its end; nothing was saved (mine was not written)"
    )
    assert not (tmp_path / "mine").exists()
