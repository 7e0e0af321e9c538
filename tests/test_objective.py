from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpotool.errors import HpoError
from hpotool.exhaustion import EXHAUSTED
from hpotool.failed_trials import fail_trial
from hpotool.plan import Overrides, prepare_study
from hpotool.resume import never_ran
from hpotool.sampler_hooks import BEFORE_TRIAL
from hpotool.search_space import decode_params
from hpotool.study import open_study
from hpotool.study_run import run_study
from hpotool.study_sampler import process_salt
from hpotool.suggestion import suggest
from hpotool.workers import run_workers

from .conftest import load_study, write_configs, write_yaml


def _run(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any], **kw: Any) -> Any:
    plan = prepare_study(*write_configs(tmp_path, run, opt), Overrides(**kw))
    return plan, run_study(plan)


def _run_refused(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any], **kw: Any) -> str:
    """What _run says, refusing these configs (on the study as it stands)."""
    with pytest.raises(HpoError) as err:
        _run(tmp_path, run, opt, **kw)
    return str(err.value)


def _plan_refused(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any]) -> str:
    """What prepare_study says, refusing these configs."""
    with pytest.raises(HpoError) as err:
        prepare_study(*write_configs(tmp_path, run, opt))
    return str(err.value)


def test_study_runs_and_stores_configs_and_history(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    _, summary = _run(tmp_path, run_dict, opt_dict)
    study = load_study(opt_dict)
    assert summary.counts == {"complete": 3} and summary.ran_now == 3
    assert study.user_attrs["run_config"]["model"]["hidden"] == [16]
    assert study.user_attrs["optimize_config"]["metric"] == "val_accuracy"
    assert set(study.user_attrs["versions"]) == {"hpotool", "optuna", "torch"}
    t = study.trials[0]
    assert set(t.params) == {"optimizer.lr", "model.hidden.0"}
    assert t.user_attrs["epochs_run"] == 2 and len(t.user_attrs["history"]) == 2
    assert t.user_attrs["metrics"]["val_accuracy"] == t.value
    assert list(t.intermediate_values) == [0, 1]


def test_threshold_pruner_gives_a_deterministic_pruned_trial(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.999}}
    opt_dict["n_trials"] = 1
    _, summary = _run(tmp_path, run_dict, opt_dict)
    (trial,) = load_study(opt_dict).trials
    assert trial.state == TrialState.PRUNED and summary.counts == {"pruned": 1}
    assert re.match(r"pruned after 1 of \d+ epochs \(val_accuracy=", trial.user_attrs["prune_reason"])
    assert trial.user_attrs["epochs_run"] == 1


def test_a_trial_that_ran_every_epoch_completes_whatever_the_pruner_says(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # With a rung on the last epoch (successive halving on 2 epochs) or a pruner that checks every epoch,
    # trials that had trained to the end were marked PRUNED: no compute saved, and export-best, the
    # samplers and train-from-best lost them.
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.999}}
    opt_dict["n_trials"] = 1
    run_dict["epochs"] = 1
    _, summary = _run(tmp_path, run_dict, opt_dict)
    (trial,) = load_study(opt_dict).trials
    assert trial.state == TrialState.COMPLETE and summary.counts == {"complete": 1}
    assert trial.user_attrs["epochs_run"] == 1 and list(trial.intermediate_values) == [0]


def test_non_finite_loss_prunes_with_the_reason(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e30}
    opt_dict["search_space"] = {"optimizer.momentum": {"type": "float", "low": 0.9, "high": 0.99}}
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    (trial,) = load_study(opt_dict).trials
    assert trial.state == TrialState.PRUNED
    assert "train_loss is" in trial.user_attrs["prune_reason"]


def test_a_model_whose_output_turns_nan_prunes_the_trial_saying_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_dict["model"] = {"name": "tests.helpers:NanLaterModel"}
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}
    opt_dict["n_trials"] = 1
    _, summary = _run(tmp_path, run_dict, opt_dict)
    (trial,) = load_study(opt_dict).trials
    assert trial.state == TrialState.PRUNED and summary.counts == {"pruned": 1}
    assert trial.user_attrs["prune_reason"] == "val_loss is nan in epoch 1"  # val_accuracy alone looks fine
    assert not trial.intermediate_values  # no NaN reported to the pruner


def test_a_model_whose_output_is_nan_from_the_start_is_refused_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_dict["model"] = {"name": "tests.helpers:NanModel"}
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}
    with pytest.raises(
        HpoError, match=r"run.yaml: model: its output for 8 samples holds NaN or infinite values"
    ):
        _run(tmp_path, run_dict, opt_dict)


def test_a_user_model_refusing_its_arguments_is_one_line_saying_where(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_dict["model"] = {"name": "tests.helpers:FussyModel", "width": 8}
    said = _run_refused(tmp_path, run_dict, opt_dict)
    assert "\n" not in said
    assert re.fullmatch(
        r".*run\.yaml: model: ValueError: width must be a multiple of 3, got 8 "
        r"\(at \S*tests/helpers\.py:\d+ in __init__\)",
        said,
    )


def test_user_code_failure_fails_the_trial_and_the_study_goes_on(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_dict["model"] = {"name": "tests.helpers:FragileModel", "width": 8}
    opt_dict["search_space"] = {"model.width": {"type": "categorical", "choices": [8, 32]}}
    opt_dict["n_trials"] = 4
    _, summary = _run(tmp_path, run_dict, opt_dict)
    trials = load_study(opt_dict).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["model.width"] == 32 for t in failed)
    # the first line of the message, and where in the user's code it was raised
    assert re.fullmatch(
        r"ValueError: width 32 is too wide \(at \S*tests/helpers\.py:\d+ in forward\)",
        failed[0].user_attrs["fail_reason"],
    )
    assert summary.counts["complete"] == 4  # failures do not count towards n_trials


@pytest.mark.parametrize(("extra", "columns"), [(2, 12), (-3, 7)])
def test_a_model_whose_width_is_wrong_inside_a_searched_range_fails_those_trials_saying_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict, extra: int, columns: int
) -> None:
    # More columns than classes trained without an error (the accuracy meaningless); fewer failed with
    # torch's "IndexError: Target 9 is out of bounds". Width 16 is inside the range, which the check before
    # trial 0 tries only the ends of.
    run_dict["model"] = {"name": "tests.helpers:SlippedHead", "width": 8, "extra": extra}
    opt_dict["search_space"] = {"model.width": {"type": "int", "low": 8, "high": 24, "step": 8}}
    opt_dict["sampler"] = {"name": "bruteforce"}
    _run(tmp_path, run_dict, opt_dict)
    trials = load_study(opt_dict).trials
    assert {t.params["model.width"]: t.state for t in trials} == {
        8: TrialState.COMPLETE,
        16: TrialState.FAIL,
        24: TrialState.COMPLETE,
    }
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.user_attrs["fail_reason"] == (
        f"model SlippedHead's output has {columns} columns for 10 classes; it needs one "
        f"logit per class, shape (batch, 10): give its last layer the out_features hpotool passes"
    )
    assert failed.user_attrs["epochs_run"] == 0


def test_one_failure_that_stops_the_study_says_one_failed_trial(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`--max-failures 1` said 'stopped after 1 failed trials in a row'."""
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    summary = run_study(prepare_study(rp, op), max_failures=1)
    assert summary.counts == {"fail": 1}
    assert summary.stopped == "stopped after 1 failed trial in a row"


def test_consecutive_failures_stop_the_study(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    summary = run_study(prepare_study(rp, op), max_failures=2)
    assert summary.counts == {"fail": 2}
    assert summary.stopped == "stopped after 2 failed trials in a row"
    assert summary.first_error is not None
    assert re.fullmatch(
        r"RuntimeError: boom from user code \(at \S*helpers\.py:\d+ in forward\)", summary.first_error
    )
    assert summary.failed  # the CLI exits 1


def test_a_sampler_that_cannot_sample_fails_the_trial_with_its_error(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # (TPE's n_startup_trials: "ten", compared with a count, did this; its type is checked at load time now)
    (tmp_path / "broken_sampler.py").write_text(
        "import optuna\n\n\nclass Broken(optuna.samplers.RandomSampler):\n"
        "    def sample_independent(self, study, trial, *args):\n"
        "        raise TypeError(\"'<' not supported between instances of 'int' and 'str'\")\n\n\n"
        "class Later(optuna.samplers.RandomSampler):\n"
        "    def sample_independent(self, study, trial, *args):\n"
        "        if trial.number >= 1:\n"
        "            raise TypeError(\"'<' not supported between instances of 'int' and 'str'\")\n"
        "        return super().sample_independent(study, trial, *args)\n"
    )
    opt_dict["sampler"] = {"name": "broken_sampler:Broken"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    with pytest.raises(
        HpoError,
        match=r"sampler: 'broken_sampler:Broken' cannot sample this study \(one objective\): TypeError: ",
    ):
        prepare_study(
            rp, op
        )  # refused before trial 0 when it fails at once; one failing later fails its trial,
    # its reason naming the sampler and the method (Optuna's own words named neither: TPE's n_ei_candidates: 0
    # failed each trial with "ValueError: The size of `samples` must be positive, but got 0.")
    opt_dict["sampler"] = {"name": "broken_sampler:Later"}
    summary = run_study(prepare_study(rp, write_yaml(op, opt_dict)), max_failures=2)
    assert summary.counts == {"complete": 1, "fail": 2}
    assert summary.first_error == (
        "sampler 'broken_sampler:Later' failed in its sample_independent(): TypeError: '<' not supported between "
        "instances of 'int' and 'str' (at broken_sampler.py:12 in sample_independent)"
    )
    failed = [t for t in load_study(opt_dict).trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["fail_reason"] == summary.first_error for t in failed)


def test_a_tpe_sampler_that_cannot_sample_after_its_startup_trials_is_named_in_the_reason(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["sampler"] = {"name": "tpe", "kwargs": {"n_startup_trials": 1, "n_ei_candidates": 0}}
    summary = _run(tmp_path, run_dict, opt_dict)[1]
    assert summary.counts == {"complete": 1, "fail": 5}  # --max-failures' default stopped it
    assert summary.first_error is not None
    # Optuna's words ("IndexError: index 0 is out of bounds for axis 0 with size 0") say nothing of TPE
    assert summary.first_error.startswith("sampler 'tpe' failed in its sample_relative(): "), (
        summary.first_error
    )


def test_a_sampler_that_calls_sys_exit_as_it_samples_fails_its_trial_not_the_process(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A user's sampler calling sys.exit() in a trial ended the process with exit code 0, saying nothing, the
    trial left RUNNING; it is the trial's failure now, saying where."""
    (tmp_path / "exiting_sampler.py").write_text(
        "import sys\n\nimport optuna\n\n\nclass Exiting(optuna.samplers.RandomSampler):\n"
        "    def sample_independent(self, study, trial, *args):\n"
        "        if trial.number >= 1:  # the check before trial 0 goes through\n"
        "            sys.exit(0)\n"
        "        return super().sample_independent(study, trial, *args)\n"
    )
    opt_dict["sampler"] = {"name": "exiting_sampler:Exiting"}
    _, summary = _run(tmp_path, run_dict, opt_dict)
    assert summary.counts == {"complete": 1, "fail": 5}  # --max-failures' default stopped it
    assert summary.first_error is not None
    assert re.fullmatch(
        r"sampler 'exiting_sampler:Exiting' failed in its sample_independent\(\): RuntimeError: sys\.exit\(0\) "
        r"was called, which would end hpotool .* \(at \S*exiting_sampler\.py:9 in sample_independent\)",
        summary.first_error,
    )


@pytest.mark.parametrize(
    ("module", "body", "error"),
    [
        ("prune_raising", "raise ValueError('no rung for this step')", "ValueError: no rung for this step"),
        (
            "prune_exiting",
            "sys.exit(0)",
            "RuntimeError: sys.exit(0) was called, which would end hpotool (argparse's parse_args() does so on "
            "hpotool's command line); raise an exception instead, or read the settings from the config",
        ),
    ],
)
def test_a_pruner_that_fails_in_prune_fails_the_trial_naming_the_pruner(
    tmp_path: Path, run_dict: dict, opt_dict: dict, module: str, body: str, error: str
) -> None:
    """A user's pruner raising in prune() failed each trial with its own words alone ("ValueError: no rung
    for this step"), which said neither that the pruner raised it nor which; named now as a sampler's is."""
    (tmp_path / f"{module}.py").write_text(
        "import sys\n\nimport optuna\n\n\nclass Broken(optuna.pruners.BasePruner):\n"
        f"    def prune(self, study, trial):\n        {body}\n"
    )
    opt_dict["pruner"] = {"name": f"{module}:Broken"}
    _, summary = _run(tmp_path, run_dict, opt_dict)
    assert summary.counts == {"fail": 5}  # --max-failures' default stopped it
    assert summary.first_error == (
        f"pruner '{module}:Broken' failed in its prune(): {error} (at {module}.py:8 in prune)"
    )


_HOOKED_SAMPLER = """import sys

import optuna


class Hooked(optuna.samplers.RandomSampler):
    def {hook}(self, study, trial, *args):
        if trial.number >= 1:  # trial 0, and the check before it, go through
            {act}
        return super().{hook}(study, trial, *args)
"""
_ACTS = {"exit": "sys.exit(3)", "raise": "raise KeyError('no such arm')"}
_SAID = {
    "exit": r"RuntimeError: sys\.exit\(3\) was called, which would end hpotool .*",
    "raise": r"KeyError: 'no such arm'",
}


def _hooked_sampler(tmp_path: Path, opt_dict: dict, hook: str, act: str) -> None:
    """A user's sampler by import path that raises or calls sys.exit() in `hook` from trial 1 on (a module
    of its own per case: this process keeps a module it imported)."""
    (tmp_path / f"{hook}_{act}.py").write_text(_HOOKED_SAMPLER.format(hook=hook, act=_ACTS[act]))
    opt_dict["sampler"] = {"name": f"{hook}_{act}:Hooked"}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("act", ["exit", "raise"])
def test_a_sampler_failing_in_before_trial_fails_its_trial_naming_the_sampler(
    tmp_path: Path, run_dict: dict, opt_dict: dict, act: str, workers: int
) -> None:
    """Optuna calls a sampler's before_trial in `study.ask()`, outside the objective: a sys.exit() there
    ended hpotool with exit code 3 and no word, a raise with a traceback, the trial left RUNNING either way.
    The trial fails now, its reason naming the sampler, and --max-failures stops the run as for any error."""
    _hooked_sampler(tmp_path, opt_dict, "before_trial", act)
    opt_dict["n_trials"] = 4
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    summary = run_study(plan, max_failures=2) if workers == 1 else run_workers(plan, workers, max_failures=2)
    assert summary.stopped == "stopped after 2 failed trials in a row"
    assert summary.first_error is not None
    said = rf"sampler 'before_trial_{act}:Hooked' failed in its before_trial\(\): " + _SAID[act]
    assert re.fullmatch(said + rf" \(at before_trial_{act}\.py:9 in before_trial\)", summary.first_error)
    states = [t.state for t in load_study(opt_dict).trials]
    assert states[0] == TrialState.COMPLETE and TrialState.RUNNING not in states
    failed = [t for t in load_study(opt_dict).trials if t.state == TrialState.FAIL]
    assert len(failed) >= 2 and all(t.user_attrs["fail_reason"] == summary.first_error for t in failed)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("act", ["exit", "raise"])
def test_a_sampler_failing_in_after_trial_stops_the_study_in_one_line(
    tmp_path: Path, run_dict: dict, opt_dict: dict, act: str, workers: int
) -> None:
    """Optuna calls a sampler's after_trial in `study.tell()`, after the objective, and writes the trial's
    state whatever it does: a sys.exit() there ended hpotool with exit code 3 and no word, a raise with a
    traceback (a ValueError was taken for another process's having ended the trial). The study stops, in
    one line naming the sampler and the trial, whose result stands."""
    _hooked_sampler(tmp_path, opt_dict, "after_trial", act)
    opt_dict["n_trials"] = 4
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    with pytest.raises(HpoError) as err:
        run_study(plan) if workers == 1 else run_workers(plan, workers)
    said = (
        rf"(hpotool-worker-\d+: )?sampler 'after_trial_{act}:Hooked' failed in its after_trial\(\) as trial "
        rf"\d+ was told COMPLETE \(its result stands\): {_SAID[act]} \(at after_trial_{act}\.py:9 in "
        r"after_trial\); every trial would end so, so the study stopped: fix the sampler and run the same "
        r"command"
    )
    assert re.fullmatch(said, str(err.value)), str(err.value)
    states = [t.state for t in load_study(opt_dict).trials]
    assert TrialState.RUNNING not in states and TrialState.FAIL not in states


def test_resume_runs_only_what_is_missing(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    opt_dict["n_trials"] = 2
    _, first = _run(tmp_path, run_dict, opt_dict)
    _, again = _run(tmp_path, run_dict, opt_dict)
    _, more = _run(tmp_path, run_dict, opt_dict, n_trials=3)
    assert (first.ran_now, again.ran_now, more.ran_now) == (2, 0, 1)
    assert "already holds 2 finished trials" in (again.stopped or "")
    assert len(load_study(opt_dict).trials) == 3


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_seeded_study_draws_new_values_and_stays_reproducible(
    sampler: str, tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["sampler"] = {"name": sampler}
    opt_dict["n_trials"] = 2
    _run(tmp_path, run_dict, opt_dict)
    _run(tmp_path, run_dict, opt_dict, n_trials=4)
    lrs = [t.params["optimizer.lr"] for t in load_study(opt_dict).trials]
    assert len(set(lrs)) == 4  # the resumed run did not propose trials 0 and 1 again
    again = {**opt_dict, "storage": f"sqlite:///{tmp_path / 'again.db'}"}
    (tmp_path / "a").mkdir()
    _run(tmp_path / "a", run_dict, again)
    _run(tmp_path / "a", run_dict, again, n_trials=4)
    assert [t.params["optimizer.lr"] for t in load_study(again).trials] == lrs


def test_a_resumed_study_seeded_1e3_in_the_sampler_kwargs_draws_new_values(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`sampler.kwargs.seed: 1e3`, read as 1000.0, failed inside numpy; built as 1000, it must also be
    derived per run as an int seed is, or a resumed run would propose the first trials' values again."""
    opt_dict["sampler"] = {"name": "random", "kwargs": {"seed": 1000.0}}
    opt_dict["n_trials"] = 2
    _run(tmp_path, run_dict, opt_dict)
    _run(tmp_path, run_dict, opt_dict, n_trials=4)
    lrs = [t.params["optimizer.lr"] for t in load_study(opt_dict).trials]
    assert len(set(lrs)) == 4, lrs
    again = {**opt_dict, "sampler": {"name": "random", "kwargs": {"seed": 1000}}}
    again["storage"] = f"sqlite:///{tmp_path / 'again.db'}"
    (tmp_path / "a").mkdir()
    _run(tmp_path / "a", run_dict, again)
    _run(tmp_path / "a", run_dict, again, n_trials=4)
    assert [t.params["optimizer.lr"] for t in load_study(again).trials] == lrs  # 1e3 is the seed 1000


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_processes_joining_a_study_others_sample_draw_their_own_values(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt_dict["sampler"] = {"name": "random"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    plan = prepare_study(rp, op)

    def first_lr(study: optuna.Study) -> float:
        trial = study.ask()
        lr = suggest(trial, plan.opt.search_space, {})["optimizer.lr"]
        study.tell(trial, state=TrialState.FAIL)  # as if that process's trial had failed
        return float(lr)

    creator, salt = open_study(plan)
    assert salt == ()  # it made the study: the config's seed, as always
    lrs = [first_lr(creator)]
    (tmp_path / "other").mkdir()
    # another process that lost the race to create the study (it looked a moment before it existed)
    monkeypatch.setattr(optuna, "load_study", _missing_once(optuna.load_study))
    joined, salt = open_study(plan)
    assert salt == process_salt()
    lrs.append(first_lr(joined))
    monkeypatch.undo()
    running = creator.ask()  # a trial of the creator's is running: a process joining now samples its own
    joined, salt = open_study(plan)
    assert salt == process_salt()
    lrs.append(first_lr(joined))
    assert len(set(lrs)) == 3
    creator.tell(running, state=TrialState.FAIL)
    _, salt = open_study(plan)  # an idle study with trials: a resume, with reproducible seeds
    assert salt == ()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
@pytest.mark.parametrize("other_state", [TrialState.COMPLETE, TrialState.FAIL])
def test_processes_resuming_an_idle_study_at_one_moment_draw_their_own_values(
    tmp_path: Path, run_dict: dict, opt_dict: dict, other_state: TrialState
) -> None:
    # The same command resumed on two machines at once: each found the study idle and seeded its sampler from
    # the seed and the trial count alone, so their first trials drew the same values (trials 1 and 2 equal).
    opt_dict["sampler"] = {"name": "random"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    assert run_study(prepare_study(rp, op, Overrides(n_trials=1))).counts == {"complete": 1}
    plan = prepare_study(rp, op, Overrides(n_trials=3))
    other: list[dict[str, Any]] = []

    class OtherMachine:  # asks and draws its trial once this process has opened the study, before its first ask
        def study_started(
            self, study: optuna.Study, n_trials: int | None, done: int, joined: bool = False
        ) -> None:
            joined, salt = open_study(plan)
            assert salt == ()  # it found the study idle too
            trial = joined.ask()
            other.append(suggest(trial, plan.opt.search_space, {}))
            joined.tell(trial, 0.5 if other_state == TrialState.COMPLETE else None, state=other_state)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    run_study(plan, OtherMachine())  # type: ignore[arg-type]
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert trials[1].params == other[0]  # the other machine's
    assert trials[1].state == other_state
    assert trials[2].params != other[0] and trials[2].state == TrialState.COMPLETE


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_process_that_took_a_queued_trial_first_is_seen_by_one_resuming_beside_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The same command resumed on two machines at once, on a study holding a queued trial (a retry that
    # fail-stale queued): the other machine took the queued trial, which draws nothing, and this process's
    # first trial, numbered after it, was the only one checked for another process's: neither saw the other,
    # both kept the seed of an idle study, and the other's next trial drew this one's values (#7 = #5).
    opt_dict["sampler"] = {"name": "random"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    assert run_study(prepare_study(rp, op, Overrides(n_trials=1))).counts == {"complete": 1}
    optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).enqueue_trial(
        load_study(opt_dict).trials[0].params
    )
    plan = prepare_study(rp, op, Overrides(n_trials=3))
    other: list[optuna.Study] = []

    class OtherMachine:  # takes the queued trial once this process has opened the study, before its first ask
        def study_started(
            self, study: optuna.Study, n_trials: int | None, done: int, joined: bool = False
        ) -> None:
            joined, salt = open_study(plan)
            assert salt == ()  # it found the study idle too
            queued = joined.ask()
            suggest(queued, plan.opt.search_space, {})  # its queued values: no draw
            joined.tell(queued, 0.5)
            other.append(joined)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    run_study(plan, OtherMachine())  # type: ignore[arg-type]
    trials = load_study(opt_dict).trials
    assert trials[1].params == trials[0].params and len(trials) == 3
    # the other machine's next trial draws with its own sampler
    drawn = suggest(other[0].ask(), plan.opt.search_space, {})
    assert drawn != trials[2].params


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_queued_retry_the_resume_drops_is_no_trial_another_process_asked(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process resuming a study alone keeps its sampler's reproducible seeds. A queued retry whose value the
    # space no longer holds is marked FAIL as the resume begins ('dropped: ...'): it left the queue, but no
    # process asked it (it never started), and the process took it for another's trial and seeded itself
    # apart, its pid in the salt: the same resume drew other values each time.
    from hpotool import trial_setup

    opt_dict["sampler"] = {"name": "random"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    assert run_study(prepare_study(rp, op, Overrides(n_trials=1))).counts == {"complete": 1}
    study = load_study(opt_dict)
    study.enqueue_trial({**study.trials[0].params, "optimizer.lr": 0.5}, user_attrs={"retry_of": 0})
    reseeded: list[int] = []
    real_own_seeds = trial_setup._own_seeds

    def own_seeds(study: optuna.Study, trial: optuna.Trial, *args: Any) -> None:
        reseeded.append(trial.number)
        real_own_seeds(study, trial, *args)

    monkeypatch.setattr(trial_setup, "_own_seeds", own_seeds)
    run_study(prepare_study(rp, op, Overrides(n_trials=3)))
    trials = load_study(opt_dict).trials
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["fail_reason"].startswith("dropped: ")
    assert trials[2].state == TrialState.COMPLETE
    assert reseeded == []


def _missing_once(load: Any) -> Any:
    calls = []

    def load_study(**kwargs: Any) -> optuna.Study:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError(kwargs["study_name"])
        return load(**kwargs)

    return load_study


def test_seed_on_the_command_line_cannot_be_overridden_by_sampler_kwargs(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["sampler"] = {"name": "random", "kwargs": {"seed": 3}}
    with pytest.raises(
        HpoError, match=r"optimize.yaml: sampler.kwargs.seed fixes the sampler's seed, so --seed"
    ):
        _run(tmp_path, run_dict, opt_dict, seed=1)


def test_reopening_with_another_direction_or_metric_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    with pytest.raises(
        HpoError, match="was created to maximize val_accuracy, and this config says minimize val_loss;"
    ):
        _run(tmp_path, run_dict, {**opt_dict, "direction": "minimize", "metric": "val_loss"})
    # The metric changed alone, its direction left out (a loss is minimized): the line named only directions,
    # "was created to maximize its metric, and the config says minimize".
    alone = {k: v for k, v in opt_dict.items() if k != "direction"}
    with pytest.raises(
        HpoError, match="was created to maximize val_accuracy, and this config says minimize val_loss;"
    ):
        _run(tmp_path, run_dict, {**alone, "metric": "val_loss"})
    with pytest.raises(HpoError, match="optimizes 'val_accuracy', and this config says 'n_params'"):
        _run(tmp_path, run_dict, {**opt_dict, "metric": "n_params"})  # the same direction, another metric


@pytest.mark.parametrize(
    ("run_change", "opt_change", "message"),
    [
        (
            {},
            {"metric": "val_rmse", "direction": "minimize"},
            "metric: 'val_rmse' is not measured for this classification task; choose one of: train_loss, val_loss, val_accuracy",
        ),
        (  # a misspelling gets the closest name; val_rmse above, the other task's metric, gets none
            {},
            {"metric": "val_acuracy", "direction": "maximize"},
            "metric: 'val_acuracy' is not measured for this classification task (did you mean 'val_accuracy'?); "
            "choose one of: train_loss, val_loss, val_accuracy",
        ),
        (
            {},
            {"search_space": {"optimizer.lrr": {"type": "float", "low": 0.1, "high": 1}}},
            "search_space.optimizer.lrr: optimizer 'adam' takes no argument 'lrr' (did you mean 'optimizer.lr'?)",
        ),
        (
            {},
            {"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": 1.5}}},
            "search_space.model.dropout: with model.dropout=1.5: dropout must be from 0 up to but not including 1, got 1.5; give a value such as 0.1 (0: no dropout)",
        ),
        (
            {},
            {"search_space": {"epochs": {"type": "int", "low": 0, "high": 3}}},
            "search_space.epochs: with epochs=0: epochs: must be 1 or more",
        ),
        ({"batch_size": 4096}, {}, "batch_size: 4096 is larger than the 144 training samples"),
        (  # every trial trained the same one-layer model (val_accuracy 0.3788 three times)
            {"model": {"name": "mlp", "hidden": []}},
            {"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}},
            "search_space.model.dropout: has no effect: the MLP has no hidden layer (model.hidden: []), and "
            "dropout applies after each hidden layer, so every trial would train the same model; give it a hidden "
            "layer (model.hidden: [64]), or search model.hidden, or drop model.dropout",
        ),
        (
            {"model": {"name": "mlp", "hidden": [16], "layers": 0}},
            {"search_space": {"model.activation": {"type": "categorical", "choices": ["relu", "tanh"]}}},
            "search_space.model.activation: has no effect: the MLP has no hidden layer (model.layers: 0), and "
            "activation applies after each hidden layer, so every trial would train the same model; set "
            "model.layers to 1 or more, or search it, or drop model.activation",
        ),
        (  # it said "the MLP uses model.hidden.0 to model.hidden.-1; search model.layers up to 1 too"
            {"model": {"name": "mlp", "hidden": [16, 16], "layers": 0}},
            {"search_space": {"model.hidden.0": {"type": "int", "low": 8, "high": 16}}},
            "search_space.model.hidden.0: has no effect: the run config's model.layers is 0, so the MLP has no "
            "hidden layer; set model.layers to 1 or more in the run config (or search it), or drop model.hidden.0",
        ),
        (
            {"model": {"name": "mlp", "hidden": [16, 16], "layers": 1}},
            {"search_space": {"model.hidden.1": {"type": "int", "low": 8, "high": 16}}},
            "search_space.model.hidden.1: has no effect: the run config's model.layers is 1, so the MLP uses "
            "model.hidden.0 alone; set model.layers to 2 or more in the run config (or search it), or drop "
            "model.hidden.1",
        ),
        (
            {"model": {"name": "mlp", "hidden": [16, 16, 16]}},
            {
                "search_space": {
                    "model.layers": {"type": "int", "low": 1, "high": 2},
                    "model.hidden.2": {"type": "int", "low": 8, "high": 16},
                }
            },
            "search_space.model.hidden.2: has no effect: model.layers is searched up to 2, so the MLP uses "
            "model.hidden.0 to model.hidden.1; search model.layers up to 3 too, or drop model.hidden.2",
        ),
        (  # each trial was measured on its own validation split
            {},
            {"search_space": {"data.val_fraction": {"type": "float", "low": 0.1, "high": 0.3}}},
            "optimize.yaml: search_space.data.val_fraction: every trial would be measured on another validation "
            "split, so their val_accuracy would not compare (the sampler would favour the easiest split); set "
            "data.val_fraction in the run config instead (to train trials on less data, search "
            "data.subset_fraction)",
        ),
        (
            {},
            {"search_space": {"data.split_seed": {"type": "int", "low": 0, "high": 9}}},
            "search_space.data.split_seed: every trial would be measured on another validation split, so their "
            "val_accuracy would not compare (the sampler would favour the easiest split); set data.split_seed in "
            "the run config instead",
        ),
        (  # trials drawing a small subset trained one short batch per epoch, where the base config is refused
            {},
            {"search_space": {"data.subset_fraction": {"type": "float", "low": 0.01, "high": 0.1}}},
            "search_space.data.subset_fraction: with data.subset_fraction=0.01: batch_size: 32 is larger than the "
            "14 training samples",
        ),
        (  # a user's model whose int argument gets 1.0: torch's error, then what to change
            {"model": {"name": "tests.helpers:DeepNet", "depth": 1}},
            {"search_space": {"model.depth": {"type": "float", "low": 1, "high": 3}}},
            "in __init__); model.depth is a whole number in the run config: use type: int",
        ),
        (  # the same for an argument left at its default in the signature
            {"model": {"name": "tests.helpers:SlowModel", "sleep": 0.0}},
            {"search_space": {"model.width": {"type": "float", "low": 8, "high": 64, "step": 8}}},
            "is 8.0, a float, where 8, its default, is an int: write 8; model.width is a whole number by default "
            "(8): use type: int",
        ),
        (  # a value as the YAML spells it, as the progress lines do; it read model.hidden=['a'] ... got ['a']
            {},
            {"search_space": {"model.hidden": {"type": "categorical", "choices": [[16], ["a"]]}}},
            "search_space.model.hidden: with model.hidden=[a]: model: model 'mlp' argument 'hidden': Input should "
            "be a valid integer, got [a]",
        ),
        ({"device": "cuda"}, {}, "device: cuda was asked for but CUDA is not available here"),
        (  # every trial given cuda failed, one by one
            {},
            {"search_space": {"device": {"type": "categorical", "choices": ["cpu", "cuda"]}}},
            "search_space.device: with device=cuda: device: cuda was asked for but CUDA is not available here",
        ),
        (
            {"model": {"name": "mlp", "activation": "rleu"}},
            {},
            "run.yaml: model: unknown activation 'rleu'",
        ),
        (
            {},
            {"sampler": {"name": "tpe", "kwargs": {"n_startup": 1}}},
            "sampler.kwargs: sampler 'tpe' takes no argument 'n_startup'",
        ),
    ],
)
def test_bad_plans_fail_before_anything_is_stored(
    tmp_path: Path, run_dict: dict, opt_dict: dict, run_change: dict, opt_change: dict, message: str
) -> None:
    if run_change.get("device") == "cuda" or "device" in opt_change.get("search_space", {}):
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    assert message in _run_refused(tmp_path, {**run_dict, **run_change}, {**opt_dict, **opt_change})
    assert not (tmp_path / "studies" / "tiny.db").exists()


def test_a_width_searched_beside_layers_that_may_be_null_is_planned(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # layers: null takes every width of hidden: max() of [None, 1] was a TypeError traceback
    run_dict["model"] = {"name": "mlp", "hidden": [16, 16]}
    opt_dict["search_space"] = {
        "model.layers": {"type": "categorical", "choices": [None, 1]},
        "model.hidden.1": {"type": "int", "low": 8, "high": 16},
    }
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert set(plan.opt.search_space) == {"model.layers", "model.hidden.1"}


def test_enqueued_trials_run_first_with_exactly_those_values(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["enqueue"] = [
        {"optimizer.lr": 0.01, "model.hidden.0": 24},
        {"optimizer.lr": 0.002, "model.hidden.0": 8},
    ]
    _run(tmp_path, run_dict, opt_dict)
    _run(tmp_path, run_dict, {**opt_dict, "n_trials": 4})  # resuming does not enqueue them again
    trials = load_study(opt_dict).trials
    assert [t.params for t in trials[:2]] == opt_dict["enqueue"]
    assert len(trials) == 4 and trials[2].params not in opt_dict["enqueue"][:1]


def test_warm_starts_dropped_from_the_config_do_not_run_on_resume(
    tmp_path: Path, run_dict: dict, opt_dict: dict, caplog: pytest.LogCaptureFixture
) -> None:
    # They ran first on resume, though the user had deleted them from the enqueue list.
    points = [{"optimizer.lr": lr, "model.hidden.0": 8} for lr in (0.05, 0.002, 0.003)]
    _run(tmp_path, run_dict, {**opt_dict, "enqueue": points, "n_trials": 1})
    kept = points[2:]  # the user keeps one of the two waiting points
    with caplog.at_level("WARNING", logger="hpotool"):
        _, summary = _run(tmp_path, run_dict, {**opt_dict, "enqueue": kept, "n_trials": 3})
    trials = load_study(opt_dict).trials
    dropped = [t for t in trials if t.user_attrs.get("fail_reason", "").startswith("dropped")]
    assert [t.system_attrs["fixed_params"] for t in dropped] == [points[1]]
    assert dropped[0].state == TrialState.FAIL
    ran = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(ran) == 3 and ran[0].params == points[0] and ran[1].params == points[2]
    assert not [t for t in ran[2:] if t.params["optimizer.lr"] == 0.002]
    assert summary.counts["complete"] == 3
    (line,) = [r.getMessage() for r in caplog.records if "enqueue list" in r.getMessage()]
    assert line == (
        # it said "1 point(s) ... are no longer listed"
        "warning: 1 point an earlier run queued from the optimize config's enqueue list is no longer listed "
        "there and will not run (marked FAIL, 'dropped'): optimizer.lr=0.002, model.hidden.0=8"
    )


def test_a_dropped_warm_start_is_named_as_the_yaml_spells_its_choices(
    tmp_path: Path, run_dict: dict, opt_dict: dict, caplog: pytest.LogCaptureFixture
) -> None:
    # The warning showed a list choice as the label Optuna stores, quoted: model.hidden='[8, 8]'.
    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": [[8], [8, 8]]},
        "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
    }
    points = [
        {"model.hidden": [8], "model.activation": "relu"},
        {"model.hidden": [8, 8], "model.activation": "tanh"},
    ]
    _run(tmp_path, run_dict, {**opt_dict, "enqueue": points, "n_trials": 1})
    with caplog.at_level("WARNING", logger="hpotool"):
        _run(tmp_path, run_dict, {**opt_dict, "enqueue": points[:1], "n_trials": 2})
    (line,) = [r.getMessage() for r in caplog.records if "enqueue list" in r.getMessage()]
    assert line.endswith("(marked FAIL, 'dropped'): model.hidden=[8, 8], model.activation=tanh"), line


def test_warm_starts_from_another_study_stay_queued_on_a_resume_without_the_flag(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # --enqueue-from is not the config's enqueue list: a resume without the flag does not drop its points.
    _run(tmp_path, run_dict, opt_dict)
    source = load_study(opt_dict)
    target = {**opt_dict, "study_name": "warm", "storage": f"sqlite:///{tmp_path / 'warm.db'}", "n_trials": 1}
    run_study(_enqueue_from(write_configs(tmp_path, run_dict, target), opt_dict["storage"], "tiny", 3))
    _, summary = _run(tmp_path, run_dict, {**target, "n_trials": 3})
    trials = load_study(target).trials
    assert summary.counts == {"complete": 3}  # nothing dropped
    assert [t.params for t in trials] == [
        t.params for t in sorted(source.trials, key=lambda t: -float(t.value or 0))
    ]


def test_list_choice_warm_starts_run_once_and_carry_to_another_study(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The enqueue list holds lists as the YAML writes them, the study their labels: a resume must match the
    # two (else it queues a point again, or drops a waiting one as no longer listed), and --enqueue-from
    # must decode another study's labels by the search space that study stored.
    opt_dict["search_space"] = {
        "model.hidden": {
            "type": "categorical",
            "choices": [[16], [8, 8], 12],
        },  # mixed: a width for every layer
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    points = [{"model.hidden": [8, 8], "optimizer.lr": 0.01}, {"model.hidden": 12, "optimizer.lr": 0.02}]
    _run(tmp_path, run_dict, {**opt_dict, "enqueue": points, "n_trials": 1})
    _, summary = _run(tmp_path, run_dict, {**opt_dict, "enqueue": points, "n_trials": 3})
    trials = load_study(opt_dict).trials
    assert summary.counts == {"complete": 3}  # the waiting point ran, not dropped
    assert [t.params for t in trials[:2]] == [{"model.hidden": "[8, 8]", "optimizer.lr": 0.01}, points[1]]
    assert [t.params["optimizer.lr"] for t in trials].count(0.01) == 1  # not queued again
    source = load_study(opt_dict)
    target = {**opt_dict, "study_name": "warm", "storage": f"sqlite:///{tmp_path / 'warm.db'}", "n_trials": 3}
    plan = _enqueue_from(write_configs(tmp_path, run_dict, target), opt_dict["storage"], "tiny", 3)
    ranked = sorted(source.trials, key=lambda t: (-float(t.value or 0), t.number))
    assert plan.opt.enqueue == [decode_params(t.params, plan.opt.search_space) for t in ranked]
    assert any(isinstance(p["model.hidden"], list) for p in plan.opt.enqueue)
    run_study(plan)
    assert [t.params for t in load_study(target).trials] == [t.params for t in ranked]


def test_enqueue_is_checked_against_the_space(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    with pytest.raises(
        HpoError,
        match=r"enqueue.0: 'optimizer.lrr' is not in the search space \(did you mean 'optimizer.lr'\?\)",
    ):
        _run(tmp_path, run_dict, {**opt_dict, "enqueue": [{"optimizer.lrr": 0.01}]})
    with pytest.raises(HpoError, match=r"enqueue.0: model.hidden.0=40 lies outside its search space"):
        _run(tmp_path, run_dict, {**opt_dict, "enqueue": [{"model.hidden.0": 40}]})
    # Within the range, between two steps: not "outside", the two values on the step either side of it
    with pytest.raises(
        HpoError, match=r"enqueue.0: model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16$"
    ):
        _run(tmp_path, run_dict, {**opt_dict, "enqueue": [{"model.hidden.0": 12}]})


def test_a_changed_pruner_is_named_before_the_kwargs_it_changes(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Another pruner changes every kwarg too; the refusal names the pruner first, not its kwargs' changes."""
    opt_dict["n_trials"] = 1
    run_dict = {**run_dict, "epochs": 3}  # a first rung and a warm-up at step 1, which 2 epochs never ask at
    opt_dict["pruner"] = {"name": "successive_halving", "kwargs": {"min_resource": 1, "reduction_factor": 4}}
    _run(tmp_path, run_dict, opt_dict)
    opt_dict["pruner"] = {"name": "median", "kwargs": {"n_startup_trials": 2, "n_warmup_steps": 1}}
    said = _run_refused(tmp_path, run_dict, opt_dict)
    opt = tmp_path / "optimize.yaml"
    assert said.startswith(
        f"study 'tiny' was created with another experiment: {opt}: pruner.name: \"successive_halving\" -> "
        f'"median"; {opt}: pruner.kwargs.min_resource: removed (was 1); '
    ), said


def test_resuming_with_a_changed_experiment_is_refused_naming_the_change(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    wider = {**opt_dict, "n_trials": 2}
    wider["search_space"] = {
        **opt_dict["search_space"],
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    }
    said = _run_refused(tmp_path, run_dict, wider)
    # Each change under the file to edit, as the user gave it (it named `run_config.epochs`, a path of the
    # study's fingerprint, and no file)
    assert (
        f"study 'tiny' was created with another experiment: {tmp_path / 'optimize.yaml'}: "
        "search_space.optimizer.lr.high: 0.1 -> 0.3." in said
    )
    assert "pass --allow-changed-config" in said
    with pytest.raises(HpoError, match=re.escape(f"experiment: {tmp_path / 'run.yaml'}: epochs: 2 -> 3.")):
        _run(tmp_path, {**run_dict, "epochs": 3}, opt_dict)
    # What only says how long or where to run is not part of the experiment.
    _run(
        tmp_path,
        {**run_dict, "device": "cpu", "torch_threads": 2},
        {**opt_dict, "n_trials": 2, "timeout": 600},
    )


def test_allow_changed_config_records_the_change(
    tmp_path: Path, run_dict: dict, opt_dict: dict, caplog: pytest.LogCaptureFixture
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    with caplog.at_level("WARNING", logger="hpotool"):
        _, summary = _run(
            tmp_path, {**run_dict, "epochs": 3}, {**opt_dict, "n_trials": 2}, allow_changed_config=True
        )
    # The flag changed the study silently: nothing said what it recorded, or from which trial.
    assert [r.getMessage() for r in caplog.records if "recorded the change" in r.getMessage()] == [
        f"note: study 'tiny': --allow-changed-config recorded the change ({tmp_path / 'run.yaml'}: epochs: 2 -> 3); "
        "trials #1 on "
        "run with these configs, and the earlier ones keep theirs (export-best and train-from-best rebuild each "
        "with its own)"
    ]
    assert summary.ran_now == 1
    changes = load_study(opt_dict).user_attrs["config_changes"]
    assert len(changes) == 1 and changes[0]["changes"] == ["run_config.epochs: 2 -> 3"]
    _run(
        tmp_path, {**run_dict, "epochs": 3}, {**opt_dict, "n_trials": 3}
    )  # the accepted config resumes freely
    study = load_study(opt_dict)
    assert study.user_attrs["run_config"]["epochs"] == 3  # what report, audit and refine read now
    from hpotool.stored_run import trial_run_config

    trials = study.trials
    assert [trial_run_config(study, t).epochs for t in trials] == [2, 3, 3]  # each with the base it ran
    assert [t.user_attrs["epochs_run"] for t in trials] == [2, 3, 3]
    # Going back to the configs it was created with is a change too, and the line says from when: it said
    # "was created with another experiment: run_config.epochs: 3 -> 2", and the study was created with 2.
    said = _run_refused(tmp_path, run_dict, {**opt_dict, "n_trials": 4})
    assert said.startswith(
        f"study 'tiny' has run another experiment since the change --allow-changed-config recorded on "
        f"{changes[0]['time']}: {tmp_path / 'run.yaml'}: epochs: 3 -> 2. Resuming or joining it with these configs would "
        "mix two experiments"
    ), said


@pytest.mark.parametrize(("high", "step", "here"), [(40, 8, "8 to 40 step 8"), (32, 4, "8 to 32 step 4")])
def test_a_brute_force_study_refuses_another_range_or_step_even_with_the_flag(
    tmp_path: Path, run_dict: dict, opt_dict: dict, high: int, step: int, here: str
) -> None:
    # Optuna's brute force failed every trial ("search_space mismatch in model.hidden.0: [8, 16, 24, 32,
    # 40] != (8, 16, 24, 32)"), and the study stopped after 5 failures, exit code 1.
    opt_dict.update(n_trials=1, sampler={"name": "bruteforce"})
    opt_dict["search_space"] = {"model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8}}
    _run(tmp_path, run_dict, opt_dict)
    opt_dict.update(
        n_trials=2, search_space={"model.hidden.0": {"type": "int", "low": 8, "high": high, "step": step}}
    )
    assert _run_refused(tmp_path, run_dict, opt_dict, allow_changed_config=True) == (
        f"{tmp_path / 'optimize.yaml'}: study 'tiny': search_space.model.hidden.0 takes other values than the study's trials drew it from (8 "
        f"to 32 step 8 there, {here} here), and Optuna's brute force fails every trial of such a study, not even "
        f"with --allow-changed-config: keep search_space.model.hidden.0 as it was, or use a new study_name"
    )
    assert len(load_study(opt_dict).trials) == 1
    # A parameter added (or left out) is one Optuna's brute force goes on with.
    opt_dict["search_space"] = {
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
        "model.dropout": {"type": "categorical", "choices": [0.0, 0.1]},
    }
    _, summary = _run(tmp_path, run_dict, opt_dict, allow_changed_config=True)
    assert summary.counts == {"complete": 2}


@pytest.mark.parametrize(
    ("param", "drawn"),
    [
        ({"type": "float", "low": 1e-3, "high": 1e-1, "log": False}, "float log"),  # log scale
        ({"type": "int", "low": 1, "high": 100, "log": True}, "float log"),  # kind
    ],
)
def test_allow_changed_config_refuses_a_parameter_optuna_cannot_change(
    tmp_path: Path, run_dict: dict, opt_dict: dict, param: dict, drawn: str
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    before = load_study(opt_dict).user_attrs
    changed = {**opt_dict, "n_trials": 2, "search_space": {**opt_dict["search_space"], "optimizer.lr": param}}
    with pytest.raises(HpoError, match=rf"but the study's trials drew it as {drawn}; Optuna cannot change"):
        _run(tmp_path, run_dict, changed, allow_changed_config=True)
    study = load_study(opt_dict)
    assert study.user_attrs == before and len(study.trials) == 1  # no change recorded, no trial failed


def test_changed_list_choices_are_refused_with_the_choices_as_the_yaml_spells_them(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """New class weights among a list choice's choices are refused as any other choice change is, even with
    --allow-changed-config, naming both choice lists as the YAML spells them (null, not Python's None)."""
    run_dict["loss"] = {"name": "cross_entropy"}
    opt_dict["n_trials"] = 1
    opt_dict["search_space"]["loss.weight"] = {"type": "categorical", "choices": [None, [1.0] * 9 + [3.0]]}
    _run(tmp_path, run_dict, opt_dict)
    changed = {**opt_dict, "n_trials": 2, "search_space": {**opt_dict["search_space"]}}
    changed["search_space"]["loss.weight"] = {"type": "categorical", "choices": [None, [1.0] * 9 + [2.0]]}
    ones = "1.0, " * 9
    assert _run_refused(tmp_path, run_dict, changed, allow_changed_config=True) == (
        f"{tmp_path / 'optimize.yaml'}: study 'tiny': search_space.loss.weight is categorical [null, [{ones}2.0]] in this config, but the "
        f"study's trials drew it as categorical [null, [{ones}3.0]]; Optuna cannot change a parameter's kind, "
        f"log scale or choices within one study (every trial would fail), not even with --allow-changed-config: "
        f"keep it as it was, or use a new study_name"
    )
    assert len(load_study(opt_dict).trials) == 1


def test_a_section_choice_respelt_to_build_the_same_section_is_named_with_the_stored_spelling(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A study made with the choice {name: adam} and resumed with {name: adam, lr: 0.001} (adam's default):
    one optimizer, but Optuna stores the choice by its spelling. It was refused as any change of choices,
    naming neither; now the line names the choice and the stored spelling to write."""
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}, {"name": "adam"}]}
    }
    _run(tmp_path, run_dict, opt_dict)
    respelt = copy.deepcopy(opt_dict)
    respelt["n_trials"] = 2
    respelt["search_space"]["optimizer"]["choices"][1] = {"name": "adam", "lr": 0.001}
    assert _run_refused(tmp_path, run_dict, respelt) == (
        f"{tmp_path / 'optimize.yaml'}: study 'tiny': search_space.optimizer.choices.1: {{name: adam, lr: 0.001}} "
        "builds the same optimizer as the "
        "choice {name: adam} the study's trials drew, but Optuna stores a choice as it is spelt, and every trial "
        "would fail: write it as stored, {name: adam}"
    )
    assert len(load_study(opt_dict).trials) == 1
    _, summary = _run(tmp_path, run_dict, {**opt_dict, "n_trials": 2})  # written as stored: it goes on
    assert summary.counts["complete"] == 2


@pytest.mark.parametrize("respell", [True, False])
def test_section_choices_reordered_are_named_with_the_stored_order_and_spelling(
    tmp_path: Path, run_dict: dict, opt_dict: dict, respell: bool
) -> None:
    """Choices resumed reordered (and one respelt): the respelling was named alone, and once fixed Optuna's
    line ('cannot change ... choices') followed, as it did for a reorder alone; now one line says both and
    gives the stored list to write."""
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}, {"name": "adam"}]}
    }
    _run(tmp_path, run_dict, opt_dict)
    changed = copy.deepcopy(opt_dict)
    changed["n_trials"] = 2
    adam = {"name": "adam", "lr": 0.001} if respell else {"name": "adam"}
    changed["search_space"]["optimizer"]["choices"] = [adam, {"name": "sgd", "lr": 0.1}]
    how = " and with {name: adam, lr: 0.001} stored as {name: adam} (the same optimizer)" if respell else ""
    assert _run_refused(tmp_path, run_dict, changed) == (
        f"{tmp_path / 'optimize.yaml'}: study 'tiny': search_space.optimizer: [{{name: adam{', lr: 0.001' if respell else ''}}}, {{name: sgd, "
        f"lr: 0.1}}] are the choices the study's trials drew, reordered{how}, but Optuna stores choices as they "
        f"are spelt, in their order, and every trial would fail: write them as stored, choices: [{{name: sgd, "
        f"lr: 0.1}}, {{name: adam}}]"
    )
    assert len(load_study(opt_dict).trials) == 1


def test_a_choice_list_an_older_allow_changed_config_recorded_is_named_and_undone_by_putting_it_back(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Older hpotool let --allow-changed-config record new categorical choices: every trial then failed
    # ("CategoricalDistribution does not support dynamic value space"), and putting the config back was
    # refused as another change, until the flag was given again.
    from hpotool import fingerprint
    from hpotool.config_files import load_optimize_config, load_run_config

    opt_dict["n_trials"] = 1
    opt_dict["search_space"]["model.activation"] = {"type": "categorical", "choices": ["relu", "gelu"]}
    _run(tmp_path, run_dict, opt_dict)
    damaged = {**opt_dict, "search_space": {**opt_dict["search_space"]}}
    damaged["search_space"]["model.activation"] = {"type": "categorical", "choices": ["relu", "gelu", "tanh"]}
    rp, op = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "damaged.yaml", damaged)
    with monkeypatch.context() as older:  # what the older hpotool did: no check of the drawn distributions
        older.setattr(fingerprint, "check_distributions", lambda *a, **k: None)
        fingerprint.check(
            load_study(opt_dict), load_run_config(rp), load_optimize_config(op), allow_changed=True
        )
    assert _run_refused(tmp_path, run_dict, {**damaged, "n_trials": 2}) == (
        f"{tmp_path / 'optimize.yaml'}: study 'tiny': search_space.model.activation is categorical [relu, gelu, tanh] in this config and in the "
        "study's stored configs, but its trials drew it as categorical [relu, gelu]: an --allow-changed-config of "
        "an older hpotool recorded a change Optuna cannot make, and every trial would fail; put "
        "search_space.model.activation back to categorical [relu, gelu] (the configs before that change) and run "
        "again, which undoes it while no trial has finished under it, or use a new study_name (--enqueue-from tiny "
        "starts it from this study's best trials)"
    )
    assert len(load_study(opt_dict).trials) == 1
    _, summary = _run(tmp_path, run_dict, {**opt_dict, "n_trials": 2})  # the config put back: no flag needed
    assert summary.ran_now == 1 and summary.counts["complete"] == 2
    study = load_study(opt_dict)
    assert study.user_attrs["optimize_config"]["search_space"]["model.activation"]["choices"] == [
        "relu",
        "gelu",
    ]
    assert [c["changes"] for c in study.user_attrs["config_changes"]] == [
        ['search_space.model.activation.choices: ["relu", "gelu"] -> ["relu", "gelu", "tanh"]'],
        ['search_space.model.activation.choices: ["relu", "gelu", "tanh"] -> ["relu", "gelu"]'],
    ]


def test_going_back_to_the_configs_before_a_change_trials_finished_under_needs_the_flag(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    _run(tmp_path, {**run_dict, "epochs": 3}, {**opt_dict, "n_trials": 2}, allow_changed_config=True)
    with pytest.raises(
        HpoError,
        match=r"has run another experiment since the change --allow-changed-config recorded on .*: "
        + re.escape(f"{tmp_path / 'run.yaml'}: epochs: 3 -> 2."),
    ):
        _run(tmp_path, run_dict, {**opt_dict, "n_trials": 3})  # trial 1 ran 3 epochs: going back mixes


def test_a_changed_experiment_names_each_change_under_its_own_config_file(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The refusal named fingerprint paths (`run_config.epochs`, `search_space...`), never the file to edit;
    # with a run config and an optimize config in other folders, each change names its own file.
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    (tmp_path / "configs").mkdir()
    (tmp_path / "exp").mkdir()
    run = write_yaml(tmp_path / "configs" / "run.yaml", {**run_dict, "epochs": 3})
    wider = {**opt_dict, "n_trials": 2, "search_space": {**opt_dict["search_space"]}}
    wider["search_space"]["optimizer.lr"] = {"type": "float", "low": 1e-3, "high": 0.3, "log": True}
    opt = write_yaml(tmp_path / "exp" / "optimize.yaml", wider)
    with pytest.raises(HpoError) as err:
        run_study(prepare_study(run, opt))
    assert str(err.value) == (
        f"study 'tiny' was created with another experiment: {run}: epochs: 2 -> 3; {opt}: "
        "search_space.optimizer.lr.high: 0.1 -> 0.3. Resuming or joining it with these configs would mix two "
        "experiments: use a new study_name, or pass --allow-changed-config to go on with it anyway"
    )
    # --storage given: the optimize config is still the file named (storage_from leaves it out)
    with pytest.raises(HpoError, match=re.escape(f"; {opt}: search_space.optimizer.lr.high: 0.1 -> 0.3.")):
        run_study(prepare_study(run, opt, Overrides(storage=opt_dict["storage"])))


def test_the_note_of_configs_that_undo_a_change_names_their_files(
    tmp_path: Path, run_dict: dict, opt_dict: dict, caplog: pytest.LogCaptureFixture
) -> None:
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    _, summary = _run(tmp_path, {**run_dict, "epochs": 3}, opt_dict, allow_changed_config=True)
    assert summary.ran_now == 0  # the change recorded, and no trial finished under it
    (change,) = load_study(opt_dict).user_attrs["config_changes"]
    with caplog.at_level("WARNING", logger="hpotool"):
        _run(tmp_path, run_dict, opt_dict)
    assert [r.getMessage() for r in caplog.records if "undo the change" in r.getMessage()] == [
        f"note: study 'tiny': these configs undo the change recorded on {change['time']} "
        f"({tmp_path / 'run.yaml'}: epochs: 3 -> 2), under which no trial finished, so the study resumes with them"
    ]


def test_a_changed_experiment_found_with_the_configs_stored_on_the_study_says_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # A machine joining by the study's name (no config files) runs the configs stored on the study; where
    # they are another experiment than its fingerprint (a newer hpotool's defaults, a field an older one
    # did not have), the line names the stored configs, as its other lines do, not a file.
    from hpotool import fingerprint
    from hpotool.plan import prepare_stored_study

    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    study = load_study(opt_dict)
    parts = copy.deepcopy(study.user_attrs[fingerprint.ATTR]["parts"])
    parts["run_config"]["epochs"] = 5  # the fingerprint as an older hpotool's defaults made it
    parts["search_space"]["optimizer.lr"]["high"] = 0.2
    study.set_user_attr(fingerprint.ATTR, {"hash": fingerprint.digest(parts), "parts": parts})
    with pytest.raises(HpoError) as err:
        open_study(prepare_stored_study("tiny", opt_dict["storage"]))
    assert str(err.value).startswith(
        "study 'tiny' was created with another experiment: study 'tiny': run_config: epochs: 5 -> 2; "
        "study 'tiny': optimize_config: search_space.optimizer.lr.high: 0.2 -> 0.1. Resuming or joining"
    ), err.value


def test_a_plain_optuna_study_whose_trials_drew_a_parameter_otherwise_is_refused_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # A study without hpotool's fingerprint was resumed unchecked: every trial failed ("Cannot set
    # different log configuration to the same parameter name") until --max-failures stopped the run.
    from hpotool.storage import make_storage

    study = optuna.create_study(
        study_name="tiny", storage=make_storage(opt_dict["storage"]), direction="maximize"
    )
    study.optimize(lambda t: t.suggest_float("optimizer.lr", 0.01, 0.1), n_trials=2)  # not log
    with pytest.raises(
        HpoError, match=r"search_space.optimizer.lr is float log in this config, but the study's "
    ):
        _run(tmp_path, run_dict, {**opt_dict, "n_trials": 4})
    assert len(load_study(opt_dict).trials) == 2


def test_allow_changed_config_is_refused_while_another_process_runs_the_study(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # Process A runs the study; process B changes its experiment with --allow-changed-config. A goes on
    # training with the old configs, and its next trials were exported and retrained with B's.
    import socket

    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    study = load_study(opt_dict)
    live = study.ask()  # A's trial, running now
    live.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getppid()})
    refused = _run_refused(  # (the timeout: a study that takes the change waits for A's trial)
        tmp_path, {**run_dict, "epochs": 3}, {**opt_dict, "n_trials": 2}, allow_changed_config=True, timeout=3
    )
    assert refused == (
        f"study 'tiny' has 1 running trial (#{live.number}): another hpotool optimize is running it with the "
        f"experiment --allow-changed-config would replace, and its next trials would be exported with the new "
        f"configs; stop it first (after a crash on another machine: hpotool fail-stale --all-running)"
    )
    assert "config_changes" not in load_study(opt_dict).user_attrs
    # A process of this machine that died (kill -9) is no obstacle: its trial is marked FAIL on resume.
    live.set_user_attr("worker", {"host": socket.gethostname(), "pid": _dead_pid()})
    _run(tmp_path, {**run_dict, "epochs": 3}, {**opt_dict, "n_trials": 2}, allow_changed_config=True)
    assert len(load_study(opt_dict).user_attrs["config_changes"]) == 1


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_out_of_memory_is_recorded_with_a_hint(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    import torch

    from hpotool.config import RunConfig
    from hpotool.objective import fail_reason

    config = RunConfig.model_validate(run_dict)
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert fail_reason(oom, config) == (
        "out of memory (OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB); "
        "try a smaller batch_size than 32 or a smaller model"
    )
    # a user's training function: hpotool's batch_size is not what its batches are
    own = RunConfig.model_validate({**run_dict, "trainer": {"function": "tests.trainers:takes_its_lr"}})
    assert fail_reason(MemoryError(), own) == (
        "out of memory (MemoryError); tests.trainers:takes_its_lr needs less memory (smaller batches or "
        "model, set under trainer:)"
    )
    assert fail_reason(KeyboardInterrupt(), config) == "interrupted"
    assert fail_reason(ValueError("bad\nsecond line"), config) == "ValueError: bad"


def test_enqueue_from_runs_another_studys_best_first(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    opt_dict["n_trials"] = 4
    _run(tmp_path, run_dict, opt_dict)
    source = load_study(opt_dict)
    best_two = sorted(source.trials, key=lambda t: -float(t.value or 0))[:2]
    target = {**opt_dict, "study_name": "warm", "storage": f"sqlite:///{tmp_path / 'warm.db'}", "n_trials": 3}
    rp, op = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", target)
    args = [
        "optimize",
        "-r",
        str(rp),
        "-o",
        str(op),
        "-q",
        "--enqueue-from",
        "tiny",
        "--enqueue-from-storage",
        opt_dict["storage"],
        "--top",
        "2",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    warm = optuna.load_study(study_name="warm", storage=target["storage"]).trials
    assert [t.params for t in warm[:2]] == [t.params for t in best_two]


@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_a_search_that_has_tried_everything_ends_the_study_with_a_note(
    sampler: str, tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["sampler"] = {"name": sampler}
    opt_dict["search_space"] = {"model.hidden.0": {"type": "categorical", "choices": [8, 16]}}
    opt_dict["n_trials"] = 5
    _, summary = _run(tmp_path, run_dict, opt_dict)
    assert summary.counts == {"complete": 2} and summary.stopped == EXHAUSTED
    assert sorted(t.params["model.hidden.0"] for t in load_study(opt_dict).trials) == [8, 16]


def test_grid_search_over_two_workers_ends_when_the_grid_is_done(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["sampler"] = {"name": "grid"}
    opt_dict["search_space"] = {"model.hidden.0": {"type": "categorical", "choices": [4, 8, 12, 16]}}
    opt_dict["n_trials"] = 10
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    summary = run_workers(prepare_study(rp, op), 2)
    assert summary.stopped == EXHAUSTED
    # each point once; a worker that found none left to pick left its trial untrained in the queue
    trials = load_study(opt_dict).trials
    assert sorted(t.params["model.hidden.0"] for t in trials if t.params) == [4, 8, 12, 16]
    assert all(t.state == TrialState.WAITING for t in trials if not t.params)


def test_a_list_can_grow_by_several_searched_items(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    opt_dict["search_space"] = {
        "model.hidden.1": {"type": "int", "low": 8, "high": 16},
        "model.hidden.2": {"type": "int", "low": 8, "high": 16},
    }
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)  # hidden.2 is checked with hidden.1 in place, as trials set them
    (trial,) = load_study(opt_dict).trials
    assert trial.state == TrialState.COMPLETE and set(trial.params) == {"model.hidden.1", "model.hidden.2"}


def _enqueue_from(configs: tuple[Path, Path], url: str, name: str, top: int) -> Any:
    """The plan for `configs`, with the best `top` trials of the study `name` at `url` queued as
    --enqueue-from queues them."""
    from hpotool.enqueue_from import with_warm_start

    return with_warm_start(prepare_study(*configs), optuna.load_study(study_name=name, storage=url), top)


def _finished_study(
    url: str, name: str, run: dict, space: dict, trials: list[tuple[dict, dict, float]]
) -> None:
    """A study as hpotool optimize leaves it: its configs stored, and `trials` as (params as Optuna stores
    them, their distributions, value)."""
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    study.set_user_attr("run_config", run)
    study.set_user_attr("optimize_config", {"search_space": space})
    for params, distributions, value in trials:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))


def test_whole_section_choices_that_differ_only_in_a_component_default_are_one_choice(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """{name: sgd} and {name: sgd, momentum: 0.0} build the same optimizer (torch's SGD defaults momentum to
    0): one configuration under two labels, refused as {name: adam} and {name: adam, lr: 0.001} are; it ran."""
    opt_dict["search_space"] = {
        "optimizer": {
            "type": "categorical",
            "choices": [{"name": "sgd"}, {"name": "adam"}, {"name": "sgd", "momentum": 0.0}],
        }
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.optimizer.choices.2: {name: sgd, momentum: 0.0} is the section choices.0 gives "
        "({name: sgd}), which leaves {momentum: 0.0} at its default: one configuration under two labels, which "
        "a study would train as two; keep one"
    )


def test_loss_choices_auto_and_the_loss_it_stands_for_on_the_task_are_one_choice(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """{name: auto} and {name: cross_entropy} train one loss on classification data (auto is cross_entropy
    there): a study ran both, spending trials on the same configuration. Refused as other alike choices are,
    only where every trial's data has that task (a searched dataset may make auto another loss)."""
    opt_dict["search_space"] = {
        "loss": {"type": "categorical", "choices": [{"name": "auto"}, {"name": "cross_entropy"}]},
        "data.subset_fraction": {"type": "float", "low": 0.1, "high": 0.2},
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.loss.choices.1: {name: cross_entropy} is the section choices.0 gives ({name: auto}), since "
        "the loss auto is cross_entropy on this classification task: one configuration under two labels, which "
        "a study would train as two; keep one"
    )
    run_dict["data"] = {"name": "regression"}
    opt_dict["metric"], opt_dict["direction"] = "val_loss", "minimize"
    opt_dict["search_space"] = {
        "loss": {"type": "categorical", "choices": [{"name": "mse"}, {"name": "l1"}, {"name": "auto"}]},
    }
    assert "choices.2: {name: auto} is the section choices.0 gives ({name: mse}), " in _plan_refused(
        tmp_path, run_dict, opt_dict
    )
    opt_dict["search_space"] = {  # on this data auto is mse: it is no other choice
        "loss": {"type": "categorical", "choices": [{"name": "l1"}, {"name": "auto"}]},
    }
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))


def test_loss_auto_beside_bce_on_zero_one_float_targets_is_mse_as_its_trials_train_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """0/1 float targets under the run config's bce_with_logits are two classes, so the alike check took auto
    as cross_entropy: {name: auto} and {name: mse} passed as two choices (a study trained both, the same
    val_loss), and loss.name [auto, cross_entropy] was refused as one. A trial drawing auto loads those
    targets as the regression they are and trains mse: the check now says so."""
    run_dict["data"] = {"name": "tests.helpers:labels_read_as_floats", "val_fraction": 0.2}
    run_dict["loss"] = {"name": "bce_with_logits"}
    opt_dict.update(metric="val_loss", direction="minimize", n_trials=2, sampler={"name": "bruteforce"})
    opt_dict["search_space"] = {
        "loss": {"type": "categorical", "choices": [{"name": "auto"}, {"name": "bce_with_logits"}]}
    }
    _run(tmp_path, run_dict, opt_dict)
    metrics = {t.params["loss"]: t.user_attrs["metrics"] for t in load_study(opt_dict).trials}
    assert "val_rmse" in metrics["{name: auto}"] and "val_accuracy" in metrics["{name: bce_with_logits}"]
    opt_dict["study_name"] = "other"
    opt_dict["search_space"] = {
        "loss": {"type": "categorical", "choices": [{"name": "auto"}, {"name": "mse"}]}
    }
    assert _run_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.loss.choices.1: {name: mse} is the section choices.0 gives ({name: auto}), since the loss "
        "auto is mse on this regression task: one configuration under two labels, which a study would train as "
        "two; keep one"
    )
    opt_dict["search_space"] = {"loss.name": {"type": "categorical", "choices": ["auto", "mse"]}}
    with pytest.raises(HpoError, match=r"choices auto and mse are one loss on this regression task"):
        _run(tmp_path, run_dict, opt_dict)


def test_searched_loss_names_auto_and_the_loss_it_stands_for_on_the_task_are_one_choice(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """loss.name choices [auto, cross_entropy] on classification data trained one loss under two labels;
    refused. With another loss key searched for cross_entropy alone, the two differ."""
    opt_dict["search_space"] = {
        "loss.name": {"type": "categorical", "choices": ["auto", "cross_entropy", "l1"]}
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.loss.name: choices auto and cross_entropy are one loss on this classification task (auto "
        "is cross_entropy there): one configuration under two labels, which a study would train as two; keep one"
    )
    opt_dict["search_space"] = {
        "loss.name": {"type": "categorical", "choices": ["auto", "cross_entropy"]},
        "loss.label_smoothing": {
            "type": "float",
            "low": 0.0,
            "high": 0.2,
            "when": {"loss.name": "cross_entropy"},
        },
    }
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))


def test_whole_section_choices_that_differ_only_in_a_key_searched_below_them_are_one_choice(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """{name: sgd, lr: 0.1, momentum: 0.9} and {name: sgd, lr: 0.01, momentum: 0.9} beside a searched
    optimizer.lr, which replaces the chosen lr in every trial, trained one configuration under two labels:
    the study ran both. Refused; where optimizer.lr is searched only with one of them, they differ."""
    fast, slow = {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "sgd", "lr": 0.01, "momentum": 0.9}
    lr = {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [fast, {"name": "adam"}, slow]},
        "optimizer.lr": lr,
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.optimizer.choices.2: {name: sgd, lr: 0.01, momentum: 0.9} is the section choices.0 gives "
        "({name: sgd, lr: 0.1, momentum: 0.9}) but for lr, which optimizer.lr, searched in every trial of both, "
        "replaces: one configuration under two labels, which a study would train as two; keep one"
    )
    opt_dict["search_space"]["optimizer.lr"] = {**lr, "when": {"optimizer": {"in": [fast]}}}
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))


def test_whole_section_choices_that_differ_only_in_a_searched_name_are_not_said_to_be_the_loss_auto(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Choices {name: sgd, lr: 0.1} and {name: adam, lr: 0.1} beside a searched optimizer.name (which replaces
    the chosen name) are alike; the refusal said "and the loss auto is cross_entropy on this classification
    task", a reason that is about losses alone."""
    opt_dict["search_space"] = {
        "optimizer": {
            "type": "categorical",
            "choices": [{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": 0.1}],
        },
        "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.optimizer.choices.1: {name: adam, lr: 0.1} is the section choices.0 gives ({name: sgd, lr: "
        "0.1}) but for name, which optimizer.name, searched in every trial of both, replaces: one configuration "
        "under two labels, which a study would train as two; keep one"
    )


def test_a_condition_naming_a_section_no_choice_gives_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """when: {optimizer: {in: [{name: sgd, lr: 0.1}, {name: adam, lr: 0.01}]}} beside the choices {name: sgd,
    lr: 0.1} and {name: adam} (adam at lr 0.001): the adam entry names no choice, so the parameter was searched
    with sgd alone, without a word. Refused, naming the choices."""
    sgd = {"name": "sgd", "lr": 0.1}
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [sgd, {"name": "adam"}]},
        "model.dropout": {
            "type": "float",
            "low": 0.0,
            "high": 0.5,
            "when": {"optimizer": {"in": [sgd, {"name": "adam", "lr": 0.01}]}},
        },
    }
    assert _plan_refused(tmp_path, run_dict, opt_dict).endswith(
        "search_space.model.dropout.when.optimizer: {name: adam, lr: 0.01} is none of optimizer's choices and "
        "gives none of their sections, so no trial matches it; name one of: {name: sgd, lr: 0.1}, {name: adam}"
    )


def test_enqueue_and_conditions_match_a_whole_section_by_the_section_it_builds(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """With the choice {name: adam}, `enqueue: [{optimizer: {name: adam, lr: 0.001, weight_decay: 0.0}}]`
    (adam at its defaults, the section the choice builds) was refused as outside the space, and a condition
    naming the choice so never held (refused before trial 0). Both now name the choice: the queued trial
    stores its label, and the condition holds where a trial draws it."""
    sgd, adam = {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam"}
    spelt = {"name": "adam", "lr": 0.001, "weight_decay": 0.0}
    opt_dict["n_trials"] = 2
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [sgd, adam]},
        "model.dropout": {"type": "float", "low": 0.1, "high": 0.5, "when": {"optimizer": {"in": [spelt]}}},
    }
    opt_dict["enqueue"] = [{"optimizer": spelt, "model.dropout": 0.2}, {"optimizer": {**sgd, "dampening": 0}}]
    plan, summary = _run(tmp_path, run_dict, opt_dict)
    assert plan.opt.enqueue == [{"optimizer": adam, "model.dropout": 0.2}, {"optimizer": sgd}]
    assert plan.opt.search_space["model.dropout"].when == {"optimizer": {"in": [adam]}}
    assert summary.counts == {"complete": 2}
    assert [t.params for t in load_study(opt_dict).trials] == [
        {"optimizer": "{name: adam}", "model.dropout": 0.2},
        {"optimizer": "{lr: 0.1, momentum: 0.9, name: sgd}"},
    ]
    opt_dict["enqueue"] = [{"optimizer": {"name": "adam", "lr": 0.01}}]  # another section: still refused
    with pytest.raises(
        HpoError, match=r"enqueue.0: optimizer=\{name: adam, lr: 0.01\} lies outside its search space"
    ):
        _run(tmp_path, run_dict, opt_dict)


def test_enqueue_from_carries_values_another_study_spells_otherwise(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """--enqueue-from dropped, without a word, a list choice the other study stored as [8.0, 8.0] where this
    space lists [8, 8], and the 16.0 its float search gave an int parameter here."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    lists = {"type": "categorical", "choices": [[8.0, 8.0]]}
    distributions = {
        "model.hidden": CategoricalDistribution(["[8.0, 8.0]"]),
        "batch_size": FloatDistribution(16, 32),
        "optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True),
    }
    params = {"model.hidden": "[8.0, 8.0]", "batch_size": 16.0, "optimizer.lr": 0.01}
    _finished_study(url, "src", run_dict, {"model.hidden": lists}, [(params, distributions, 0.5)])
    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": [[16], [8, 8]]},
        "batch_size": {"type": "int", "low": 16, "high": 32, "step": 16},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    plan = _enqueue_from(write_configs(tmp_path, run_dict, opt_dict), url, "src", 1)
    assert plan.opt.enqueue == [{"model.hidden": [8, 8], "batch_size": 16, "optimizer.lr": 0.01}]
    assert not any("--enqueue-from" in n for n in plan.notes)


def test_enqueue_from_translates_a_list_and_its_items_and_names_what_it_leaves_out(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A study that searched model.hidden.0 warm-starts one that searches model.hidden (the list its trial
    trained), and the other way round; what cannot carry over is named once for the study, not per trial
    (it was dropped silently)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"sqlite:///{tmp_path / 'src.db'}"
    width, dropout = IntDistribution(8, 32), FloatDistribution(0.0, 0.5)
    items = {"model.hidden.0": width, "model.dropout": dropout}
    _finished_study(
        url,
        "items",
        run_dict,  # model.hidden: [16]
        {},
        [
            ({"model.hidden.0": 32, "model.dropout": 0.1}, items, 0.9),
            ({"model.hidden.0": 24, "model.dropout": 0.2}, items, 0.8),
            ({"model.hidden.0": 16, "model.dropout": 0.3}, items, 0.7),
        ],
    )
    whole = {"type": "categorical", "choices": [[16], [24, 8]]}
    lists = {"model.hidden": CategoricalDistribution(["[16]", "[24, 8]"])}
    _finished_study(
        url, "whole", run_dict, {"model.hidden": whole}, [({"model.hidden": "[24, 8]"}, lists, 0.9)]
    )

    def warm(source: str, space: dict) -> tuple[str, list[dict]]:
        target = {**opt_dict, "search_space": space}
        rp, op = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", target)
        args = ["optimize", "-r", str(rp), "-o", str(op), "--dry-run", "--json", "--top", "3"]
        result = CliRunner().invoke(app, [*args, "--enqueue-from", source, "--enqueue-from-storage", url])
        assert result.exit_code == 0, result.output
        return result.stderr, json.loads(result.stdout)["optimize_config"]["enqueue"]

    stderr, enqueued = warm("items", {"model.hidden": {"type": "categorical", "choices": [[16], [32]]}})
    assert enqueued == [{"model.hidden": [32]}, {"model.hidden": [16]}]
    assert stderr.count("--enqueue-from") == 1, stderr
    assert (
        "note: --enqueue-from items: left out of its best trials (the sampler picks those this study searches, "
        "its run config sets the rest): model.dropout "
        "(not searched here), model.hidden (the trial's model.hidden.0 gave it [24], which lies outside this "
        "space; in 1 of 3 trials)\n"
    ) in stderr
    stderr, enqueued = warm("whole", opt_dict["search_space"])  # model.hidden.0 and optimizer.lr
    assert enqueued == [{"model.hidden.0": 24}]  # on this run config's [16]: [24], not the trial's [24, 8]
    assert (
        "model.hidden.1 (the trial's model.hidden had 8, this study's has none: not searched here)" in stderr
    )


def test_enqueue_from_carries_whole_sections_as_the_trial_trained_them(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A space that searches `optimizer` whole takes the section a trial trained where the other study searched
    optimizer.name and optimizer.lr (it left `optimizer` out, 'the trial has optimizer.name, optimizer.lr,
    and no stored run config to read it from', though the run config was stored), and a choice that gives the
    same section ({name: adam} is {name: adam, lr: 0.001} at adam's default lr: it 'lay outside this space'),
    an argument at its component's default too (sgd's momentum 0.0)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    split = {
        "optimizer.name": CategoricalDistribution(["adam", "sgd"]),
        "optimizer.lr": FloatDistribution(1e-3, 1),
    }
    _finished_study(
        url,
        "split",
        run_dict,  # optimizer: {name: adam, lr: 0.01}
        {},
        [
            ({"optimizer.name": "adam", "optimizer.lr": 0.001}, split, 0.9),
            ({"optimizer.name": "sgd", "optimizer.lr": 0.1}, split, 0.8),
            ({"optimizer.name": "sgd", "optimizer.lr": 0.5}, split, 0.7),
        ],
    )
    whole = {"type": "categorical", "choices": [{"name": "adam"}]}
    sections = {"optimizer": CategoricalDistribution(["{name: adam}"])}
    _finished_study(
        url, "whole", run_dict, {"optimizer": whole}, [({"optimizer": "{name: adam}"}, sections, 0.9)]
    )
    sgd, adam = {"name": "sgd", "lr": 0.1, "momentum": 0.0}, {"name": "adam", "lr": 0.001}  # torch's default
    opt_dict["search_space"] = {"optimizer": {"type": "categorical", "choices": [sgd, adam]}}
    configs = write_configs(tmp_path, run_dict, opt_dict)
    plan = _enqueue_from(configs, url, "split", 3)
    assert plan.opt.enqueue == [{"optimizer": adam}, {"optimizer": sgd}]
    assert plan.notes[-1].endswith(
        "optimizer (the trial's optimizer.name, optimizer.lr gave it {name: sgd, lr: 0.5, weight_decay: 0.0}, "
        "which lies outside this space; in 1 of 3 trials)"
    )
    plan = _enqueue_from(configs, url, "whole", 1)
    assert plan.opt.enqueue == [{"optimizer": adam}]


def test_enqueue_from_compares_a_whole_section_as_the_trial_trained_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial that chose {name: adam} and searched optimizer.lr below it trained adam at that lr: a space
    that searches optimizer whole without optimizer.lr takes its choice {name: adam} only where that lr is
    adam's default; it took it for every such trial, which then ran at lr 0.001, and said nothing."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    space = {
        "optimizer": {"type": "categorical", "choices": [{"name": "adam"}]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
    found = {
        "optimizer": CategoricalDistribution(["{name: adam}"]),
        "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    _finished_study(
        url,
        "below",
        run_dict,
        space,
        [
            ({"optimizer": "{name: adam}", "optimizer.lr": lr}, found, value)
            for lr, value in ((0.05, 0.9), (0.001, 0.8))
        ],
    )
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]}
    }
    plan = _enqueue_from(write_configs(tmp_path, run_dict, opt_dict), url, "below", 2)
    assert plan.opt.enqueue == [{"optimizer": {"name": "adam"}}]  # the trial at lr 0.001
    assert plan.notes[-1].endswith(
        "optimizer (the trial's optimizer, optimizer.lr gave it {name: adam, lr: 0.05, weight_decay: 0.0}, "
        "which lies outside this space; in 1 of 2 trials)"
    )


def test_enqueue_from_takes_a_loss_as_the_choice_auto_where_auto_stands_for_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial that trained {name: cross_entropy} on this study's digits data was left out of a space whose
    loss choices are {name: auto} (cross_entropy on this classification data) and a smoothed one: "lies outside
    this space". It carries over as {name: auto}; one trained on other data does not (auto may be mse there)."""
    from optuna.distributions import CategoricalDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    space = {"loss": {"type": "categorical", "choices": [{"name": "cross_entropy"}]}}
    found = {"loss": CategoricalDistribution(["{name: cross_entropy}"])}
    _finished_study(url, "ce", run_dict, space, [({"loss": "{name: cross_entropy}"}, found, 0.9)])
    smooth = {"name": "cross_entropy", "label_smoothing": 0.1}
    opt_dict["search_space"] = {"loss": {"type": "categorical", "choices": [smooth, {"name": "auto"}]}}
    configs = write_configs(tmp_path, run_dict, opt_dict)
    plan = _enqueue_from(configs, url, "ce", 1)
    assert plan.opt.enqueue == [{"loss": {"name": "auto"}}] and not plan.notes
    other = {**run_dict, "data": {"name": "digits", "val_fraction": 0.3}}
    _finished_study(url, "other", other, space, [({"loss": "{name: cross_entropy}"}, found, 0.9)])
    with pytest.raises(HpoError, match="no complete trial of 'other' has parameters inside this space"):
        _enqueue_from(configs, url, "other", 1)


def test_enqueue_from_names_the_keys_of_a_whole_section_it_leaves_out(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial that chose {name: sgd, lr: 0.1, momentum: 0.9} warm-starts a space that searches optimizer.name
    and optimizer.lr as sgd at lr 0.1 without momentum; the note names optimizer.momentum (it said nothing,
    as if the trial ran again as it was)."""
    from optuna.distributions import CategoricalDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    sgd = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0}  # dampening at torch's default
    whole = {"type": "categorical", "choices": [sgd, {"name": "adam"}]}
    label = "{dampening: 0.0, lr: 0.1, momentum: 0.9, name: sgd}"
    sections = {"optimizer": CategoricalDistribution([label, "{name: adam}"])}
    params = {"optimizer": label}
    _finished_study(url, "whole", run_dict, {"optimizer": whole}, [(params, sections, 0.9)])
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    plan = _enqueue_from(write_configs(tmp_path, run_dict, opt_dict), url, "whole", 1)
    assert plan.opt.enqueue == [{"optimizer.name": "sgd", "optimizer.lr": 0.1}]
    assert plan.notes[-1] == (
        "--enqueue-from whole: left out of its best trials (the sampler picks those this study searches, "
        "its run config sets the rest): optimizer.momentum "
        "(the trial's optimizer had 0.9, this study's has none: not searched here)"
    )


def test_enqueue_from_says_a_trial_gave_no_value_where_its_run_config_has_none(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial that chose {name: adam} trained no optimizer.momentum: the note says so; it said 'the trial has
    optimizer, and no stored run config to read it from', though the run config was read."""
    from optuna.distributions import CategoricalDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    labels = ["{momentum: 0.9, name: sgd}", "{name: adam}"]
    whole = {"type": "categorical", "choices": [{"name": "sgd", "momentum": 0.9}, {"name": "adam"}]}
    sections = {"optimizer": CategoricalDistribution(labels)}
    trials = [
        ({"optimizer": label}, sections, value) for label, value in zip(labels, (0.9, 0.8), strict=True)
    ]
    _finished_study(url, "whole", run_dict, {"optimizer": whole}, trials)
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.95, "when": {"optimizer.name": "sgd"}},
    }
    plan = _enqueue_from(write_configs(tmp_path, run_dict, opt_dict), url, "whole", 2)
    assert plan.opt.enqueue == [
        {"optimizer.name": "sgd", "optimizer.momentum": 0.9},
        {"optimizer.name": "adam"},
    ]
    assert plan.notes[-1].endswith(
        "optimizer.momentum (the trial's optimizer gave it no value; in 1 of 2 trials)"
    )


def test_enqueue_from_says_when_it_queues_fewer_than_top(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """--top 5 from a study of two complete trials (one infeasible, one pruned) queued two points without a
    word; a note now says how many it queued and why."""
    from optuna.distributions import FloatDistribution
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"sqlite:///{tmp_path / 'src.db'}"
    lr = {"optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True)}
    source = optuna.create_study(study_name="few", storage=url, direction="maximize")
    for value, constraint in ((0.5, -1.0), (0.6, -1.0), (0.7, 1.0)):
        trial = source.ask(lr)
        trial.set_constraint("n_params <= 10", constraint)
        source.tell(trial, value)
    source.tell(source.ask(lr), state=optuna.trial.TrialState.PRUNED)
    rp, op = write_configs(tmp_path, run_dict, opt_dict)

    def warm(top: str | None) -> tuple[str, list[dict]]:
        args = [
            "optimize",
            "-r",
            str(rp),
            "-o",
            str(op),
            "--dry-run",
            "--json",
            *(["--top", top] if top else []),
        ]
        result = CliRunner().invoke(app, [*args, "--enqueue-from", "few", "--enqueue-from-storage", url])
        assert result.exit_code == 0, result.output
        return result.stderr, json.loads(result.stdout)["optimize_config"]["enqueue"]

    stderr, enqueued = warm("5")
    assert len(enqueued) == 2
    assert stderr == (
        "note: --top 5: queued 2 of the best trials of 'few', not 5: 'few' has only 2 complete trials that meet "
        "its constraints (of 3 complete)\n"
    )
    stderr, enqueued = warm("2")
    assert len(enqueued) == 2 and stderr == ""
    # without --top, the note named a "--top 5" the user never gave: 5 is its default
    stderr, enqueued = warm(None)
    assert len(enqueued) == 2
    assert stderr == (
        "note: --enqueue-from few: queued 2 of its best trials, not 5 (--top's default): 'few' has only 2 "
        "complete trials that meet its constraints (of 3 complete)\n"
    )


def test_enqueue_from_failures_give_the_real_reason(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    from optuna.distributions import FloatDistribution
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"sqlite:///{tmp_path / 'src.db'}"
    tight = optuna.create_study(study_name="tight", storage=url, direction="maximize")
    trial = tight.ask({"optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True)})
    trial.set_constraint("n_params <= 10", 1.0)
    tight.tell(trial, 0.5)
    other = optuna.create_study(study_name="other", storage=url, direction="maximize")
    other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    wide = optuna.create_study(study_name="wide", storage=url, direction="maximize")
    wide.enqueue_trial({"optimizer.lr": 0.5})
    wide.optimize(lambda t: t.suggest_float("optimizer.lr", 1e-3, 1.0), n_trials=1)
    rp, op = write_configs(tmp_path, run_dict, opt_dict)

    def warm(source: str, storage: str = url) -> str:
        args = ["optimize", "-r", str(rp), "-o", str(op), "-q", "--enqueue-from", source]
        result = CliRunner().invoke(app, [*args, "--enqueue-from-storage", storage])
        assert result.exit_code == 2, result.output
        return result.stderr

    assert warm("tight") == (
        "error: --enqueue-from: 'tight' has no complete trial that meets its constraints (complete 1)\n"
    )
    assert warm("other") == (
        "error: --enqueue-from: no complete trial of 'other' has parameters inside this space: it searched x, "
        "this space searches optimizer.lr, model.hidden.0\n"
    )
    assert warm("wide") == (
        "error: --enqueue-from: no complete trial of 'wide' has parameters inside this space: its values of "
        "optimizer.lr lie outside this space's ranges\n"
    )
    missing = CliRunner().invoke(app, ["optimize", "-r", str(rp), "-o", str(op), "--enqueue-from", "nosuch"])
    assert missing.exit_code == 2
    assert missing.stderr.startswith(
        "error: --enqueue-from: no study 'nosuch': studies/nosuch.db does not exist"
    )
    assert missing.stderr.endswith("(give --enqueue-from-storage URL for a study stored elsewhere)\n")
    # A storage refused names the option it came from, once ("storage 'x'" did not say which option).
    gone = f"sqlite:///{tmp_path / 'gone.db'}"
    assert warm("tight", gone) == (
        f"error: --enqueue-from-storage: {gone!r}: no such SQLite file {str(tmp_path / 'gone.db')!r}; check "
        "the path\n"
    )
    assert not (tmp_path / "studies" / "tiny.db").exists()  # refused before the study was made


def _creator_joiner_and_new_study(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> tuple[Any, Any, optuna.Study]:
    """Two plans for one study that differ in their run config's epochs, and the study as the creator's
    create_study has just made it: nothing stored on it yet."""
    from hpotool.storage import make_storage

    creator = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    )
    joiner = prepare_study(
        write_yaml(tmp_path / "run2.yaml", {**run_dict, "epochs": run_dict["epochs"] + 1}),
        tmp_path / "optimize.yaml",
    )
    study = optuna.create_study(
        study_name=opt_dict["study_name"],
        storage=make_storage(opt_dict["storage"]),
        direction=opt_dict["direction"],
    )
    return creator, joiner, study


def _joiner_is_refused_while(joiner: Any, describe: Any, *args: Any) -> None:
    """`open_study(joiner)` refuses the creator's other experiment, which `describe(*args)` stores on the
    study half a second after the joiner began to wait for it."""
    import threading

    describing = threading.Timer(0.5, describe, args)
    describing.start()
    try:
        # the joiner's own run config named, the one it would edit (run2.yaml; the creator's is run.yaml)
        said = re.escape(f"created with another experiment: {joiner.run_from}: epochs: 2 -> 3.")
        with pytest.raises(HpoError, match=said):
            open_study(joiner)
    finally:
        describing.join()


def test_a_process_joining_a_study_while_its_creator_describes_it_checks_the_creators_experiment(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # Two `optimize` commands started at once with different run configs: the one that lost the race to
    # create the study found it without configs or fingerprint yet, checked nothing, and both ran their
    # trials into one study.
    from hpotool.study import describe_new_study

    creator, joiner, study = _creator_joiner_and_new_study(tmp_path, run_dict, opt_dict)
    _joiner_is_refused_while(joiner, describe_new_study, study, creator)
    assert study.get_trials() == []
    joined, _ = open_study(creator)  # the same experiment joins
    assert joined.user_attrs["fingerprint"] == study.user_attrs["fingerprint"]


def test_a_joiner_waits_for_the_fingerprint_past_the_creators_queued_warm_start(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The creator queues its warm start before it stores its configs and fingerprint; a process joining
    # in that moment took the queued trial for a study in use, checked nothing, and mixed its experiment in.
    from hpotool import fingerprint

    creator, joiner, study = _creator_joiner_and_new_study(tmp_path, run_dict, opt_dict)
    study.enqueue_trial({"optimizer.lr": 0.0123})  # the creator's warm start, queued first
    _joiner_is_refused_while(joiner, fingerprint.record, study, creator.run, creator.opt)


def test_an_empty_study_made_by_plain_optuna_is_used_after_a_short_wait(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Such a study never gets a fingerprint: the first optimize on it waited the creator's full 10 s.
    from hpotool import study as study_module
    from hpotool.storage import make_storage

    monkeypatch.setattr(study_module, "CREATOR_WAIT_S", 60.0)
    monkeypatch.setattr(study_module, "QUIET_WAIT_S", 0.2)
    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    )
    optuna.create_study(
        study_name=opt_dict["study_name"],
        storage=make_storage(opt_dict["storage"]),
        direction=opt_dict["direction"],
    )
    from .test_waiting import _fake_clock

    sleeps = _fake_clock(monkeypatch, lambda n: None)  # no clock read: the waits' own sleeps, counted
    study, _ = open_study(plan)
    monkeypatch.undo()
    assert sum(sleeps) == pytest.approx(0.2, abs=0.1)  # the quiet wait, not the creator's 60 s
    assert "fingerprint" in study.user_attrs  # nothing ran in it: it holds this run's experiment now


def test_a_new_study_has_its_warm_start_queued_before_its_fingerprint(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The same command with a warm start started on two machines at once: the joiner (which waits for the
    # fingerprint) checked the queue before the creator had filled it, and both queued the points, so
    # each ran twice.
    from hpotool.resume import prepare_resume
    from hpotool.storage import make_storage
    from hpotool.study import describe_new_study

    points = [{"optimizer.lr": 0.0123, "model.hidden.0": 16}, {"optimizer.lr": 0.0456, "model.hidden.0": 32}]
    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "optimize.yaml", {**opt_dict, "enqueue": points}),
    )
    study = optuna.create_study(
        study_name=opt_dict["study_name"],
        storage=make_storage(opt_dict["storage"]),
        direction=opt_dict["direction"],
    )
    describe_new_study(study, plan)
    assert "fingerprint" in study.user_attrs
    queued = [t.system_attrs["fixed_params"] for t in study.get_trials(states=(TrialState.WAITING,))]
    assert queued == points
    joiner, _ = open_study(plan)
    prepare_resume(joiner, plan)  # the joiner's and the creator's own: nothing more
    prepare_resume(study, plan)
    assert len(study.get_trials()) == 2


def test_a_grid_study_refuses_warm_starts_that_leave_out_a_parameter(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Optuna's grid sampler fails a queued trial that does not give every parameter: the warm start was
    trial 0, FAIL ("All parameters must be specified when using GridSampler with enqueue_trial")."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"sqlite:///{tmp_path / 'src.db'}"
    half = optuna.create_study(study_name="half", storage=url, direction="maximize")
    half.optimize(lambda t: t.suggest_categorical("optimizer.lr", [0.01, 0.1]), n_trials=1)
    opt_dict["sampler"] = {"name": "grid"}
    opt_dict["search_space"] = {
        "optimizer.lr": {"type": "categorical", "choices": [0.01, 0.1]},
        "model.hidden.0": {"type": "int", "low": 8, "high": 16, "step": 8},
    }
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    args = ["optimize", "-r", str(rp), "-o", str(op), "-q"]
    result = CliRunner().invoke(app, [*args, "--enqueue-from", "half", "--enqueue-from-storage", url])
    assert result.exit_code == 2 and result.stderr == (
        "error: --enqueue-from: no complete trial of 'half' has parameters inside this space: the grid sampler "
        "runs only sets that give every searched parameter, and its trials have no model.hidden.0\n"
    )
    opt_dict["enqueue"] = [{"optimizer.lr": 0.1}]
    write_yaml(op, opt_dict)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stderr == (
        f"error: {op}: enqueue.0: the grid sampler fails a queued set that leaves out a searched parameter; add "
        f"model.hidden.0 to it, or drop it\n"
    )
    assert not (tmp_path / "studies").exists()
    opt_dict["enqueue"] = [{"optimizer.lr": 0.1, "model.hidden.0": 16}]
    write_yaml(op, opt_dict)
    CliRunner().invoke(app, args, catch_exceptions=False)
    assert load_study(opt_dict).trials[0].params == {"optimizer.lr": 0.1, "model.hidden.0": 16}
    assert {t.state for t in load_study(opt_dict).trials} == {TrialState.COMPLETE}


def test_a_searched_batch_size_trains_one_step_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # batch_size 1 with batch norm passed the checks (only the components' values trained a step), and
    # every trial drawing it failed.
    run_dict["model"] = {"name": "mlp", "hidden": [16], "norm": "batch"}
    opt_dict["search_space"] = {"batch_size": {"type": "categorical", "choices": [32, 1]}}
    with pytest.raises(HpoError, match=r"with batch_size=1: .*set batch_size to 2 or more"):
        prepare_study(
            write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
        )


def test_batch_norm_searched_beside_a_batch_size_reaching_1_is_refused_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """model.norm [none, batch] and batch_size [1, 32] each passed the check at the run config's other value
    (norm none, batch 32), and every trial drawing both failed with torch's 'Expected more than 1 value per
    channel when training'. The smallest batch is now tried with each searched model value; searched apart
    (norm only where batch_size >= 2, as the hint says) the study runs."""
    run_dict["model"] = {"name": "mlp", "hidden": [16]}
    space = {
        "model.norm": {"type": "categorical", "choices": ["none", "batch"]},
        "batch_size": {"type": "categorical", "choices": [32, 1]},
    }
    opt_dict["search_space"] = space
    assert re.fullmatch(
        r".*optimize\.yaml: search_space\.batch_size: with model\.norm=batch, batch_size=1: one step on 1 sample "
        r"failed: ValueError: Expected more than 1 value per channel when training, .*; batch norm cannot "
        r"train on a batch of one sample: set batch_size to 2 or more \(a trial may pair any batch_size with "
        r"any model\.norm: search batch_size from 2, or search model\.norm below batch_size with when: "
        r"\{batch_size: \{ge: 2\}\}\)",
        _plan_refused(tmp_path, run_dict, opt_dict),
    )
    opt_dict["search_space"] = {
        "batch_size": {"type": "int", "low": 1, "high": 32},
        "model": {"type": "categorical", "choices": [{"name": "mlp", "hidden": [16], "norm": "batch"}]},
    }
    said = _plan_refused(tmp_path, run_dict, opt_dict)
    assert re.search(r"with model=\{name: mlp, hidden: \[16\], norm: batch\}, batch_size=1: ", said), said
    opt_dict["search_space"] = {
        "batch_size": space["batch_size"],
        "model.norm": {**space["model.norm"], "when": {"batch_size": {"ge": 2}}},
    }
    opt_dict["n_trials"] = 4
    opt_dict["sampler"] = {"name": "bruteforce"}
    _run(tmp_path, run_dict, opt_dict)
    trials = load_study(opt_dict).trials
    assert {t.state for t in trials} == {TrialState.COMPLETE} and len(trials) == 3


def test_a_searched_batch_size_beside_a_model_value_wrong_on_its_own_leaves_it_to_that_key(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """batch_size [32, 64] above model.dropout [0.1, null]: the smallest batch, tried with each searched model
    value, met dropout null and was blamed for it, twice prefixed and with no fix: "search_space.batch_size:
    with model.dropout=null, batch_size=32: with model.dropout=null, batch_size=32: model: ...". Now
    model.dropout's own line, as when it is searched alone."""
    opt_dict["search_space"] = {
        "batch_size": {"type": "categorical", "choices": [32, 64]},
        "model.dropout": {"type": "categorical", "choices": [0.1, None]},
    }
    said = _plan_refused(tmp_path, run_dict, opt_dict)
    alone = {"model.dropout": opt_dict["search_space"]["model.dropout"]}
    assert said == _plan_refused(tmp_path, run_dict, {**opt_dict, "search_space": alone})
    assert said.endswith(
        "optimize.yaml: search_space.model.dropout: with model.dropout=null: model: model 'mlp' argument "
        "'dropout': Input should be a valid number, got null; model.dropout takes numbers, not null: write "
        "choices: [0.1]"
    ), said
    opt_dict["search_space"]["model.dropout"]["choices"] = [0.1, 0.3]
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))


def test_a_searched_dataset_that_fails_only_beside_another_searched_value_names_the_pair_once(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """data.name [regression, digits] beside data.noise, an argument regression takes and digits does not:
    each value is fine alone, the pair fails. The line named the pair twice: "search_space.data.name: with
    data.noise=0.1, data.name=digits: with data.noise=0.1, data.name=digits: data: ...". With data.name
    listed first, the line ended with the run config's fix and no `when:` hint, which the other order gave."""
    run_dict["data"] = {"name": "regression", "val_fraction": 0.2}
    opt_dict |= {"metric": "val_loss", "direction": "minimize"}
    opt_dict["search_space"] = {
        "data.name": {"type": "categorical", "choices": ["regression", "digits"]},
        "data.noise": {"type": "float", "low": 0.1, "high": 0.2},
    }
    said = _plan_refused(tmp_path, run_dict, opt_dict)
    assert said.endswith(
        "optimize.yaml: search_space.data.name: with data.noise=0.1, data.name=digits: data: data 'digits' takes "
        "no argument 'noise'; it takes no arguments; noise is an argument of regression: write name: regression, "
        "or remove noise (a trial may pair any data.noise value with any dataset: to search it only with those it "
        "fits, give data.noise a when: on data.name)"
    ), said
    space = opt_dict["search_space"]
    noise_first = {"data.noise": space["data.noise"], "data.name": space["data.name"]}  # checked first, it
    said = _plan_refused(tmp_path, run_dict, {**opt_dict, "search_space": noise_first})  # is the one named
    assert said.endswith(
        "optimize.yaml: search_space.data.noise: with data.name=digits, data.noise=0.1: data: data 'digits' takes "
        "no argument 'noise'; it takes no arguments; noise is an argument of regression: write name: regression, "
        "or remove noise (a trial may pair any data.noise value with any dataset: to search it only with those it "
        "fits, put it below data.name with a when: on data.name)"
    ), said
    space["data.noise"]["when"] = {"data.name": "regression"}  # below data.name, searched only where it fits
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))


def test_a_batch_size_larger_than_a_trials_training_split_fails_that_trial_saying_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # batch_size 64 with 100 samples at subset_fraction 0.2 leaves 16 training samples: only the three
    # searched values together do, which the check before trial 0 (ends, in pairs) never builds. The trial
    # trained on one batch of 16 an epoch while the study recorded batch_size 64.
    run_dict["data"] = {"name": "tests.helpers:two_classes", "n": 600, "val_fraction": 0.2}
    run_dict["batch_size"] = 16
    opt_dict["search_space"] = {
        "batch_size": {"type": "int", "low": 16, "high": 64, "step": 48},
        "data.n": {"type": "int", "low": 100, "high": 1000, "step": 900},
        "data.subset_fraction": {"type": "float", "low": 0.2, "high": 1.0, "step": 0.8},
    }
    opt_dict["sampler"] = {"name": "bruteforce"}
    opt_dict["n_trials"] = 8
    _run(tmp_path, run_dict, opt_dict)
    trials = load_study(opt_dict).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.params for t in failed] == [{"batch_size": 64, "data.n": 100, "data.subset_fraction": 0.2}]
    assert failed[0].user_attrs["fail_reason"] == (
        "batch_size: 64 is larger than the 16 training samples; use a smaller batch_size or "
        "more data (data.subset_fraction, data.val_fraction)"
    )
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 7


def test_a_journal_study_resumed_without_its_storage_is_refused_instead_of_started_over(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # Run with --storage journal:studies/tiny.log, then the same command without it: a new study started
    # in studies/tiny.db, from trial 0, without a word.
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict, storage="journal:studies/tiny.log")
    del opt_dict["storage"]  # the default: sqlite:///studies/tiny.db
    assert _run_refused(tmp_path, run_dict, {**opt_dict, "n_trials": 2}) == (
        "study 'tiny' is in journal:studies/tiny.log, and without --storage a new one would start in "
        "sqlite:///studies/tiny.db; give --storage journal:studies/tiny.log (or storage: in the config) to "
        "resume it, or another study_name"
    )
    assert not (tmp_path / "studies" / "tiny.db").exists()
    _, summary = _run(tmp_path, run_dict, {**opt_dict, "n_trials": 2}, storage="journal:studies/tiny.log")
    assert summary.ran_now == 1


def test_a_list_choice_and_an_item_of_it_searched_together_run_every_trial(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """model.hidden chosen among whole lists, its first width searched too: every trial ran. Trial 1 on
    failed, as setting model.hidden.0 rewrote the choice ([32, 16] became [40, 16]) the next suggestion used."""
    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": [[16], [32, 16]]},
        "model.hidden.0": {"type": "int", "low": 8, "high": 64, "step": 8},
    }
    _, summary = _run(tmp_path, run_dict, opt_dict)
    assert summary.counts == {"complete": 3}
    assert {t.params["model.hidden"] for t in load_study(opt_dict).trials} <= {"[16]", "[32, 16]"}


def test_enqueue_from_leaves_out_the_keys_below_a_section_it_leaves_out(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial of optimizer.name sgd, optimizer.lr 0.05 and optimizer.momentum 0.83 warm-starts a space that
    searches optimizer whole (no choice at lr 0.05) and optimizer.momentum: it queued {optimizer.momentum:
    0.83} alone, so the sampler might pick adam for it and the momentum went unused."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    split = {
        "optimizer.name": CategoricalDistribution(["sgd", "adam"]),
        "optimizer.lr": FloatDistribution(1e-3, 1e-1),
        "optimizer.momentum": FloatDistribution(0.5, 0.95),
    }
    trials = [
        ({"optimizer.name": "sgd", "optimizer.lr": lr, "optimizer.momentum": m}, split, value)
        for lr, m, value in ((0.05, 0.83, 0.9), (0.01, 0.6, 0.8))
    ]
    _finished_study(url, "split", run_dict, {}, trials)
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.01}, {"name": "adam"}]},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.95,
            "when": {"optimizer": {"in": [{"name": "sgd", "lr": 0.01}]}},
        },
    }
    plan = _enqueue_from(write_configs(tmp_path, run_dict, opt_dict), url, "split", 2)
    assert plan.opt.enqueue == [{"optimizer": {"name": "sgd", "lr": 0.01}, "optimizer.momentum": 0.6}]
    assert plan.notes[-1] == (
        "--enqueue-from split: left out of its best trials (the sampler picks those this study searches, "
        "its run config sets the rest): optimizer (the "
        "trial's optimizer.name, optimizer.lr, optimizer.momentum gave it {name: sgd, lr: 0.05, weight_decay: "
        "0.0, momentum: 0.83}, which lies outside this space; in 1 of 2 trials), optimizer.momentum (left out "
        "with optimizer, which it lies in; in 1 of 2 trials)"
    )


def test_labels_that_skip_class_ids_are_noted_before_trial_0(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Labels 1 and 2 made a 3-class model, one output for a class no sample has, without a word (the
    same for counts read as class ids); labels 0..K-1 get no note."""
    run_dict["data"] = {"name": "tests.helpers:labels_from_one"}
    run_dict["model"] = {"name": "mlp", "hidden": [8]}
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    write_yaml(opt_path, opt_dict)
    assert prepare_study(run_path, opt_path).notes == (
        "data: the labels of tests.helpers:labels_from_one run up to 2, so the model has 3 outputs, but 1 of "
        "those classes has no sample (0); number the classes 0..1 in the dataset function "
        "(np.unique(y, return_inverse=True)[1]), or give y as floats if it holds amounts (regression)",
    )
    run_dict["data"] = {"name": "digits", "subset_fraction": 0.1}
    assert prepare_study(write_yaml(run_path, run_dict), opt_path).notes == ()


def test_searched_loss_names_auto_and_bce_on_label_columns_are_two_tasks(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """0/1 float label columns are a multilabel task with bce_with_logits, a regression with auto (mse):
    loss.name choices [auto, bce_with_logits] were refused as one loss ('auto is bce_with_logits there')."""
    run_dict["data"] = {"name": "tests.helpers:several_labels"}
    run_dict["loss"] = {"name": "bce_with_logits"}
    opt_dict["metric"], opt_dict["direction"] = "val_loss", "minimize"
    opt_dict["search_space"] = {"loss.name": {"type": "categorical", "choices": ["auto", "bce_with_logits"]}}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    prepare_study(rp, op)  # no error: two losses on two tasks
    opt_dict["metric"], opt_dict["direction"] = "val_accuracy", "maximize"
    with pytest.raises(
        HpoError, match=r"with loss.name=auto: this regression task does not measure val_accuracy"
    ):
        prepare_study(rp, write_yaml(op, opt_dict))


@pytest.mark.parametrize("data", ["one_hot_floats", "soft_labels"])
def test_searched_loss_names_auto_and_cross_entropy_on_class_rows_of_floats_are_two_tasks(
    tmp_path: Path, run_dict: dict, opt_dict: dict, data: str
) -> None:
    """One-hot float rows and rows of class probabilities are a classification with cross_entropy, a regression
    with auto (mse): loss.name choices [auto, cross_entropy] were refused as one loss ('auto is cross_entropy
    there'), though each trial drawing auto trained mse and reported val_rmse."""
    run_dict["data"] = {"name": f"tests.helpers:{data}"}
    run_dict["loss"] = {"name": "cross_entropy"}
    opt_dict.update(metric="val_loss", direction="minimize", n_trials=2, sampler={"name": "bruteforce"})
    opt_dict["search_space"] = {"loss.name": {"type": "categorical", "choices": ["auto", "cross_entropy"]}}
    _run(tmp_path, run_dict, opt_dict)
    metrics = {t.params["loss.name"]: t.user_attrs["metrics"] for t in load_study(opt_dict).trials}
    assert "val_rmse" in metrics["auto"] and "val_accuracy" in metrics["cross_entropy"]


def test_val_accuracy_on_label_columns_read_as_a_regression_names_bce_with_logits(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """0/1 float label columns with loss auto are a regression; asking for val_accuracy said only 'give class
    labels as integers', which for several labels per sample is refused too: bce_with_logits is the fix."""
    run_dict["data"] = {"name": "tests.helpers:several_labels"}
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    with pytest.raises(HpoError, match=r"or set loss: \{name: bce_with_logits\} for these 0/1 labels\)$"):
        prepare_study(rp, op)


def test_enqueue_from_a_study_this_one_samples_as_says_it_would_draw_its_trials_again(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A new study warm-started from another of the same sampler, seed and space (the same optimize config
    under another name) ran the queued best trial, then drew the other study's trials again, in order, as
    its first 'new' ones: a warm start that re-ran the trials it started from, without a word. A note now
    says so and gives the --seed that draws new values; with it, there is no note."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    opt_dict["n_trials"] = 3
    _run(tmp_path, run_dict, opt_dict)
    source = load_study(opt_dict).trials
    rp = write_yaml(tmp_path / "r.yaml", run_dict)
    note = (
        "note: this study samples as 'tiny' did (the same sampler, seed 0 and search space), so after the warm "
        "start it draws the trials of 'tiny' again, in order: give --seed 1 (or another) to draw new values\n"
    )
    for name, seed in (("warm", None), ("other", 1)):
        target = {**opt_dict, "study_name": name, "storage": f"sqlite:///{tmp_path / f'{name}.db'}"}
        args = ["optimize", "-r", str(rp), "-o", str(write_yaml(tmp_path / f"{name}.yaml", target)), "-q"]
        args += ["--enqueue-from", "tiny", "--enqueue-from-storage", opt_dict["storage"], "--top", "1"]
        args += ["--seed", str(seed)] if seed is not None else []
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        warm = optuna.load_study(study_name=name, storage=target["storage"]).trials
        drawn = [t.params for t in warm[1:]]
        if seed is None:
            assert note in result.stderr, result.stderr
            assert drawn == [t.params for t in source[: len(drawn)]]  # the note's claim
        else:
            assert "samples as" not in result.stderr, result.stderr
            assert not any(p == t.params for p in drawn for t in source)


def test_optuna_s_own_readers_name_a_single_objective_by_its_metric(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Only a multi-objective study named its objectives: Optuna's trials_dataframe had a bare "value"
    column and optuna-dashboard showed "Objective 0" for the val_accuracy a study optimizes."""
    from hpotool.trial_table import trials_frame

    _run(tmp_path, run_dict, opt_dict)
    study = load_study(opt_dict)
    assert study.metric_names == ["val_accuracy"]
    frame = study.trials_dataframe()
    assert {"value_val_accuracy", "params_optimizer.lr", "params_model.hidden.0"} <= set(frame.columns)
    assert list(trials_frame(study).columns[:3]) == [
        "number",
        "state",
        "value",
    ]  # trials.csv keeps its column


_RESEEDED_SAMPLER = """import sys

import optuna

SEEN = set()


class Reseeded(optuna.samplers.RandomSampler):
    def before_trial(self, study, trial):
        if trial.number >= 1 and trial.number in SEEN:  # a second call: the joining process's own sampler
            {act}
        SEEN.add(trial.number)
        return super().before_trial(study, trial)
"""


@pytest.mark.parametrize("act", ["exit", "raise"])
def test_a_sampler_failing_in_before_trial_of_a_joining_process_s_own_seeds_fails_its_trial(
    tmp_path: Path, run_dict: dict, opt_dict: dict, act: str
) -> None:
    """A process that opened a study seeing no other, which another process has asked a trial of since,
    builds a sampler seeded of its own for its first trial and calls its before_trial: a raise there ended
    the run with a traceback (a sys.exit() with no word), the trial left RUNNING. It fails the trial now,
    naming the sampler, as a before_trial in `study.ask()` does."""
    from hpotool.loop import run_trials
    from hpotool.study import open_study
    from hpotool.trial_setup import Unasked

    (tmp_path / f"reseeded_{act}.py").write_text(_RESEEDED_SAMPLER.format(act=_ACTS[act]))
    opt_dict["sampler"] = {"name": f"reseeded_{act}:Reseeded"}
    _run(tmp_path, run_dict, opt_dict, n_trials=1)
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict), Overrides(n_trials=2))
    study, _ = open_study(plan)
    # it opened the study as it held no trial; trial 0 was asked by another process since
    guard = run_trials(study, plan, max_failures=1, alone_since=Unasked(0))
    assert guard.tripped and guard.first_error is not None
    said = rf"sampler 'reseeded_{act}:Reseeded' failed in its before_trial\(\): " + _SAID[act]
    assert re.fullmatch(said + rf" \(at \S*reseeded_{act}\.py:\d+ in before_trial\)", guard.first_error)
    trials = load_study(opt_dict).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["fail_reason"] == guard.first_error


@pytest.mark.parametrize("act", ["exit", "raise"])
def test_a_sampler_failing_in_after_trial_as_an_interrupted_trial_ends_leaves_it_failed_saying_so(
    tmp_path: Path,
    opt_dict: dict,
    act: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trial Ctrl-C interrupted as it was set up is told FAIL, through the sampler's after_trial: a raise
    there replaced the interrupt with a traceback (a sys.exit() with its exit code). The trial stays FAIL
    ("interrupted"), a line names the sampler, and the interrupt goes on."""
    import time

    from hpotool.trial_run import end_interrupted

    _hooked_sampler(tmp_path, opt_dict, "after_trial", act)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(f"after_trial_{act}")
    storage = f"sqlite:///{tmp_path / 'interrupted.db'}"
    study = optuna.create_study(storage=storage, sampler=module.Hooked(seed=0))
    study.enqueue_trial({})
    study.ask()
    trial = study.ask()  # trial 1: its after_trial fails
    with caplog.at_level("WARNING", logger="hpotool"):
        end_interrupted(study, trial, time.perf_counter(), opt_dict["sampler"]["name"])
    frozen = study.trials[1]
    assert frozen.state == TrialState.FAIL and frozen.user_attrs["fail_reason"] == "interrupted"
    said = (
        rf"trial 1 was told FAIL \(interrupted\), its state stands: sampler 'after_trial_{act}:Hooked' failed "
        rf"in its after_trial\(\): {_SAID[act]} \(at \S*after_trial_{act}\.py:9 in after_trial\)"
    )
    assert [r.getMessage() for r in caplog.records if re.fullmatch(said, r.getMessage())], caplog.text


def test_a_warm_start_point_whose_trial_failed_in_before_trial_is_queued_again_on_resume(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A queued point whose trial the sampler's before_trial failed never ran, as one interrupted before
    drawing its values: it was taken for tried, and a resume ran the study without it."""
    _hooked_sampler(tmp_path, opt_dict, "before_trial", "raise")
    _run(tmp_path, run_dict, opt_dict, n_trials=1)  # trial 0 goes through
    point = {"optimizer.lr": 0.01, "model.hidden.0": 16}
    opt_dict["enqueue"] = [point]
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict), Overrides(n_trials=2))
    run_study(plan, max_failures=1)  # trial 1, the point's, fails in before_trial
    run_study(plan, max_failures=1)  # the resume queues it again: trial 2
    trials = load_study(opt_dict).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    assert [t.system_attrs.get("fixed_params") for t in trials[1:]] == [point, point]
    assert all(BEFORE_TRIAL in t.system_attrs for t in trials[1:])  # marked with the FAIL


@pytest.mark.parametrize(
    ("reason", "drawn"),
    [
        # a training error whose message reads as a before_trial failure: its trial drew its values first
        ("sampler 'tpe' failed in its before_trial(): boom", True),
        # a failed draw whose error quotes one: the pattern spanned both quoted names
        (
            "sampler 'tpe' failed in its sample_independent(): RuntimeError: sampler 'x' failed in its before_trial(): b",
            False,
        ),
    ],
)
def test_a_trial_whose_reason_only_reads_as_a_before_trial_failure_is_not_taken_for_one(
    tmp_path: Path, reason: str, drawn: bool
) -> None:
    """A queued point failed in the sampler's before_trial is queued again on resume; it was known by its
    reason's text alone, so a trial whose run failed with such words was taken for one never run, and its
    point run again. Such a failure is marked now; an unmarked trial is one only with nothing drawn."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    if drawn:
        trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
    assert fail_trial(study._storage, trial._trial_id, reason, run_failed=True)
    assert not never_ran(study.trials[0])


def test_a_before_trial_failure_s_two_marks_land_with_its_fail_on_the_journal_storages(
    journal_url: str,
) -> None:
    """Redis and journal files take the FAIL, its reason and its marks as records appended together: the
    marks went as one record, which the journal's replay refuses beyond one attr (an AssertionError, and
    every later read of the journal failed)."""
    from hpotool.storage import make_storage

    storage = make_storage(journal_url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    reason = "sampler 'tpe' failed in its before_trial(): RuntimeError: b"
    assert fail_trial(storage, trial._trial_id, reason, run_failed=True, mark=BEFORE_TRIAL)
    (frozen,) = optuna.load_study(study_name=study.study_name, storage=make_storage(journal_url)).trials
    assert frozen.state == TrialState.FAIL and frozen.user_attrs["fail_reason"] == reason
    assert frozen.system_attrs == {"hpotool:run_failed": True, BEFORE_TRIAL: True} and never_ran(frozen)


def test_a_before_trial_failure_an_earlier_hpotool_wrote_unmarked_still_counts_as_never_run(
    tmp_path: Path,
) -> None:
    """A study whose before_trial failure carries its reason alone (written before the mark) keeps its point
    queued again on resume."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    assert fail_trial(study._storage, trial._trial_id, "sampler 'tpe' failed in its before_trial(): E: b")
    assert BEFORE_TRIAL not in study.trials[0].system_attrs and never_ran(study.trials[0])


def test_a_study_created_with_log_1_is_told_the_log_it_stored_and_resumes_with_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # hpotool read `log: 1` as true until it refused a number there, and a study stores the validated config
    # (`log: true`): resuming with the config it was created with was told "write true or false", which left
    # the choice open, where `log: false` is another experiment.
    opt_dict["n_trials"] = 1
    _run(tmp_path, run_dict, opt_dict)
    assert load_study(opt_dict).user_attrs["optimize_config"]["search_space"]["optimizer.lr"]["log"] is True
    as_created = {**opt_dict, "n_trials": 2, "search_space": {**opt_dict["search_space"]}}
    as_created["search_space"]["optimizer.lr"] = {**opt_dict["search_space"]["optimizer.lr"], "log": 1}
    assert (
        "search_space.optimizer.lr.log: Input should be true or false, got 1 (a number); write true, as earlier "
        "hpotool read it (a study created with it stored true, and resumes with it)"
    ) in _run_refused(tmp_path, run_dict, as_created)
    as_created["search_space"]["optimizer.lr"]["log"] = True  # as told
    _, summary = _run(tmp_path, run_dict, as_created)
    assert summary.ran_now == 1 and summary.counts["complete"] == 2
    assert "config_changes" not in load_study(opt_dict).user_attrs  # the same experiment: no change recorded


def test_enqueue_from_names_a_value_between_two_steps_of_this_space_with_the_values_on_either_side(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A trial's model.hidden.0 of 12 left out of a space of [8, 32], step 8 was said to lie "outside this
    space", which holds 8 and 16 on either side of it: the step and those two, as a refusal of 12 names them.
    A value past the range still lies outside; one given whole (model.hidden: [20]) is named so too."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    url = f"sqlite:///{tmp_path / 'src.db'}"
    items = {"model.hidden.0": IntDistribution(8, 64), "model.dropout": FloatDistribution(0.0, 1.0)}
    _finished_study(
        url,
        "items",
        run_dict,
        {},
        [
            ({"model.hidden.0": 12, "model.dropout": 0.15}, items, 0.9),
            ({"model.hidden.0": 40, "model.dropout": 0.3}, items, 0.8),
            ({"model.hidden.0": 16, "model.dropout": 0.2}, items, 0.7),
        ],
    )
    lists = {"model.hidden": CategoricalDistribution(["[20]", "[16]"])}
    _finished_study(
        url,
        "whole",
        run_dict,
        {"model.hidden": {"type": "categorical", "choices": [[20], [16]]}},
        [({"model.hidden": "[20]"}, lists, 0.9), ({"model.hidden": "[16]"}, lists, 0.8)],
    )
    opt_dict["search_space"] = {
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
    }
    configs = write_configs(tmp_path, run_dict, opt_dict)
    plan = _enqueue_from(configs, url, "items", 3)
    assert plan.opt.enqueue == [{"model.dropout": 0.3}, {"model.hidden.0": 16, "model.dropout": 0.2}]
    assert plan.notes[-1].endswith(
        "model.hidden.0 (12 is not on this space's step 8 from 8, between 8 and 16; in 2 of 3 trials), "
        "model.dropout (0.15 is not on this space's step 0.1 from 0.0, between 0.1 and 0.2; in 1 of 3 trials)"
    )
    plan = _enqueue_from(configs, url, "whole", 2)
    assert plan.opt.enqueue == [{"model.hidden.0": 16}]
    assert plan.notes[-1].endswith(
        "model.hidden.0 (the trial's model.hidden gave it 20, which is not on this space's step 8 from 8, "
        "between 16 and 24; in 1 of 2 trials)"
    )
