from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpotool.atomic
from hpotool.cli import app
from hpotool.config import RunConfig
from hpotool.config_files import load_run_config
from hpotool.durations import SECONDS_ATTR
from hpotool.errors import HpoError
from hpotool.export import export_best
from hpotool.overrides import apply_overrides
from hpotool.ranking import ranked_trials

from .conftest import write_yaml
from .tiny_study import run_tiny_study, two_objective_study

runner = CliRunner()


def test_export_best_end_to_end(configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path) -> None:
    run_path, opt_path = configs
    result = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "studies" / "tiny"
    assert sorted(os.listdir(folder)) == ["best_params.json", "best_run.yaml", "trials.csv", "trials.json"]
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    best = study.best_trial

    info = json.loads((folder / "best_params.json").read_text())
    assert info["study_name"] == "tiny" and info["metric"] == "val_accuracy"
    assert info["direction"] == "maximize"
    assert info["trial_number"] == best.number and info["best_value"] == best.value
    assert info["params"] == best.params
    assert info["history"] == best.user_attrs["history"] and len(info["history"]) == 2
    assert set(info["versions"]) >= {"hpotool", "optuna", "torch", "study"}
    assert info["exported_at"].endswith("+00:00")

    config = load_run_config(folder / "best_run.yaml")
    assert isinstance(config, RunConfig)
    assert config.optimizer.lr == best.params["optimizer.lr"]
    assert config.model.kwargs["hidden"] == [best.params["model.hidden.0"]]
    assert config == apply_overrides(RunConfig.model_validate(study.user_attrs["run_config"]), best.params)

    with open(folder / "trials.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:5] == ["number", "state", "value", "optimizer.lr", "model.hidden.0"]  # suggestion order

    text = (folder / "trials.json").read_text()
    records = json.loads(text)
    assert [r["number"] for r in records] == [0, 1, 2]
    assert [json.loads(line.rstrip(",")) for line in text.splitlines()[1:-1]] == records  # a trial a line
    assert records[best.number]["params"] == best.params
    assert records[0]["history"] == study.trials[0].user_attrs["history"]
    for record in records:  # each epoch's lr; the tiny run has no schedule, so the trial's own
        assert [row["lr"] for row in record["history"]] == [record["params"]["optimizer.lr"]] * 2
    assert "best_run.yaml" in result.stdout and f"trial {best.number}" in result.stdout


def test_trials_csv_has_one_row_per_trial_and_one_column_per_param(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # One trial of each ending: FAIL (width 32 raises), COMPLETE, PRUNED (a tiny lr stays under 0.12).
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.12}}
    opt_dict["n_trials"] = 2
    run_dict["model"] = {"name": "tests.helpers:FragileModel", "width": 8}
    opt_dict["search_space"] = {
        "model.width": {"type": "categorical", "choices": [8, 16, 32]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
    opt_dict["enqueue"] = [
        {"model.width": 32, "optimizer.lr": 0.03},
        {"model.width": 8, "optimizer.lr": 0.03},
        {"model.width": 16, "optimizer.lr": 1e-4},
    ]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.PRUNED]
    export_best(study, opt_dict["storage"])
    with open(tmp_path / "studies" / "tiny" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    assert len(rows) == len(study.trials)
    assert [h for h in header if h in ("model.width", "optimizer.lr")] == ["model.width", "optimizer.lr"]
    assert not [h for h in header if h.startswith("params_")]
    for row, trial in zip(rows, study.trials, strict=True):
        assert int(row["number"]) == trial.number and row["state"] == trial.state.name
        assert int(row["model.width"]) == trial.params["model.width"]
        assert float(row["optimizer.lr"]) == trial.params["optimizer.lr"]
        assert float(row["duration_s"]) == trial.system_attrs[SECONDS_ATTR]  # as hpotool measured it
        assert json.loads(row["history"]) == trial.user_attrs["history"]
        if trial.state == TrialState.COMPLETE:
            assert float(row["value"]) == trial.value
            assert float(row["metrics_val_loss"]) == trial.user_attrs["metrics"]["val_loss"]
            assert row["epochs_run"] == "2"
        if trial.state == TrialState.FAIL:
            assert row["value"] == "" and row["fail_reason"].startswith(
                "ValueError: width 32 is too wide (at "
            )
        if trial.state == TrialState.PRUNED:
            assert row["prune_reason"].startswith("pruned after 1 of ")


def test_no_complete_trial_is_an_error_and_writes_nothing(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.999}}
    opt_dict["n_trials"] = 1
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(app, ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2
    # It said "run hpotool optimize until one completes": the same pruner would prune the next trials alike.
    assert result.stderr == (
        "error: study 'tiny' has no complete trial yet (pruned 1); its pruner (threshold) pruned it before the "
        "last epoch (trial 0: pruned after 1 of 2 epochs (val_accuracy=0.2256)): loosen the optimize config's "
        "pruner (or pruner: {name: nop}) and run hpotool optimize again\n"
    )
    assert not (tmp_path / "studies" / "tiny").exists()


def test_a_study_whose_trials_all_diverged_says_so_and_what_to_change(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # It said "run hpotool optimize until one completes": more trials of the same learning rates diverge too.
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e5}
    run_dict["model"]["hidden"] = [128, 128]  # one layer of 16 stays finite at any lr: its units die
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 1e5, "high": 1e6, "log": True}}
    opt_dict["n_trials"] = 2
    run_tiny_study(tmp_path, run_dict, opt_dict)
    for command in ("export-best", "train-from-best", "audit"):
        result = runner.invoke(app, [command, "--study-name", "tiny", "--storage", opt_dict["storage"]])
        assert result.exit_code == 2
        assert result.stderr == (
            "error: study 'tiny' has no complete trial yet (pruned 2); its 2 pruned trials all diverged (trial 0: "
            "train_loss is nan in epoch 1): lower optimizer.lr (its range in the search space) or set grad_clip "
            "in the run config, and run hpotool optimize again\n"
        ), command
    assert not (tmp_path / "studies" / "tiny").exists()


def test_a_study_whose_trials_all_diverged_at_the_run_configs_lr_points_there(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # It said "lower optimizer.lr (its range in the search space)" for a space that searched no lr: the lr
    # that diverged is the run config's.
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e5}
    run_dict["model"]["hidden"] = [128, 128]
    opt_dict["search_space"] = {"model.hidden.0": {"type": "int", "low": 128, "high": 160}}
    opt_dict["n_trials"] = 2
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(app, ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'tiny' has no complete trial yet (pruned 2); its 2 pruned trials all diverged (trial 0: "
        "train_loss is nan in epoch 1): lower optimizer.lr (in the run config) or set grad_clip in the run "
        "config, and run hpotool optimize again\n"
    )


def test_a_study_whose_trials_all_diverged_searching_another_optimizer_argument_points_at_the_run_configs_lr(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # With optimizer.weight_decay searched and the lr the run config's, train-from-best said "lower
    # optimizer.lr (its range in the search space)": a range the space does not have.
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e5}
    run_dict["model"]["hidden"] = [128, 128]
    opt_dict["search_space"] = {"optimizer.weight_decay": {"type": "float", "low": 0.0, "high": 0.1}}
    opt_dict["n_trials"] = 2
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2
    assert "lower optimizer.lr (in the run config) or set grad_clip" in result.stderr, result.stderr


def test_a_study_whose_trials_all_failed_points_at_their_errors(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # It said "run hpotool optimize until one completes", as for pruned trials: the same trials would fail
    # again; what the user needs first is why they failed. Every command that needs a best trial says so.
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    opt_dict["n_trials"] = 2
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    assert {t.state for t in study.trials} == {TrialState.FAIL}
    n, url = len(study.trials), opt_dict["storage"]
    args = ["--study-name", "tiny", "--storage", url]
    for command in (
        ["export-best", *args, "--out", str(tmp_path / "export")],
        ["train-from-best", *args, "--out", str(tmp_path / "final")],
        ["audit", *args],
        ["refine", *args, "--out", str(tmp_path / "next.yaml")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: study 'tiny' has no complete trial yet (fail {n}); hpotool trials --study-name tiny "
            f"--storage {url} --state fail shows why they failed: fix that and run hpotool optimize until one "
            f"completes\n"
        ), command
    listed = runner.invoke(app, ["trials", *args, "--state", "fail"])
    assert listed.exit_code == 0 and listed.stdout.count("RuntimeError") == n  # the command it names works
    assert not (tmp_path / "export").exists() and not (tmp_path / "final").exists()


def test_a_study_whose_only_trial_was_interrupted_says_to_resume_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Ctrl-C in a study's first trial, then export-best: it said to see why the trial failed and "fix that",
    as for an error in training; an interrupted trial has nothing to fix: the line says to resume the study."""
    run_dict["model"] = {"name": "tests.helpers:CtrlCInTraining"}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "opt.yaml", opt_dict)
    ran = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"])
    assert ran.exit_code == 130, ran.output
    url = opt_dict["storage"]
    study = optuna.load_study(study_name="tiny", storage=url)
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in study.trials] == [
        (TrialState.FAIL, "interrupted")
    ]
    for command in (
        ["export-best", "--study-name", "tiny", "--storage", url, "--out", str(tmp_path / "export")],
        ["train-from-best", "--study-name", "tiny", "--storage", url, "--out", str(tmp_path / "final")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: study 'tiny' has no complete trial yet (fail 1); its trial was interrupted (Ctrl-C or "
            f"SIGTERM): run the same hpotool optimize command again, or hpotool optimize --study-name tiny "
            f"--storage {url} (its stored configs), to resume it\n"
        ), command
    assert not (tmp_path / "export").exists() and not (tmp_path / "final").exists()


def test_an_export_that_fails_or_is_interrupted_leaves_the_former_set_whole(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt_dict["n_trials"] = 1
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    folder = tmp_path / "out"
    names = ["best_params.json", "best_run.yaml", "trials.csv", "trials.json"]
    folder.mkdir()
    for name in names:
        (folder / name).write_text("previous export")
    real_fsync, real_replace = os.fsync, os.replace
    fsyncs: list[int] = []

    def third_fsync_fails(fd: int) -> None:
        fsyncs.append(fd)
        if len(fsyncs) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(hpotool.atomic.os, "fsync", third_fsync_fails)
    with pytest.raises(HpoError, match=r"out/best_run\.yaml: cannot write: No space left on device"):
        export_best(study, opt_dict["storage"], folder)
    assert sorted(os.listdir(folder)) == names  # no temporary file left beside them
    assert all((folder / n).read_text() == "previous export" for n in names)

    fsyncs.clear()

    def third_fsync_interrupted(fd: int) -> None:  # Ctrl-C while the third file is written
        fsyncs.append(fd)
        if len(fsyncs) == 3:
            signal.raise_signal(signal.SIGINT)
        real_fsync(fd)

    monkeypatch.setattr(hpotool.atomic.os, "fsync", third_fsync_interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_best(study, opt_dict["storage"], folder)
    assert sorted(os.listdir(folder)) == names
    assert all((folder / n).read_text() == "previous export" for n in names)
    monkeypatch.setattr(hpotool.atomic.os, "fsync", real_fsync)

    replaced: list[str] = []

    def interrupted_after_two(
        src: Any, dst: Any
    ) -> None:  # Ctrl-C between two renames: it waits for the rest
        replaced.append(str(dst))
        if len(replaced) == 3:
            signal.raise_signal(signal.SIGINT)
        real_replace(src, dst)

    monkeypatch.setattr(hpotool.atomic.os, "replace", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        export_best(study, opt_dict["storage"], folder)
    assert sorted(os.listdir(folder)) == names and len(replaced) == 4
    assert not any((folder / n).read_text() == "previous export" for n in names)
    assert load_run_config(folder / "best_run.yaml").optimizer.lr == study.best_params["optimizer.lr"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_export_best_at_80_columns_folds_the_paths_it_names_rather_than_cutting_them(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns a multi-objective study with a long-ish name had its export table end the command it
    gives in "studies/digits_accuracy_vs_size_pareto/best_run_<trial>.…" (rich's ellipsis, on a word wider
    than its column); every table folds such a word onto the next line now, cutting nothing."""
    import hpotool.cli.terminal

    monkeypatch.chdir(tmp_path)
    name = "digits_accuracy_vs_size_pareto"
    storage = f"sqlite:///{tmp_path / 'multi.db'}"
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    study.set_metric_names(["val_accuracy", "n_params"])
    study.set_user_attr("run_config", RunConfig.model_validate(run_dict).model_dump(mode="json"))
    for lr, values in [(0.01, [0.5, 90]), (0.02, [0.6, 170])]:
        study.enqueue_trial({"optimizer.lr": lr})
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
        study.tell(trial, values)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["export-best", "--study-name", name, "--storage", storage])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout, result.stdout
    cells = "".join(line.split("│")[2] for line in lines if line.count("│") == 3)
    said = "".join(cells.split())
    for whole in (
        f"--study-name{name}",
        f"--run-configstudies/{name}/best_run_<trial>.yaml",
        "best_run_1.yaml",
    ):
        assert whole in said, result.stdout


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_multi_objective_study_exports_the_pareto_front(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"sqlite:///{tmp_path / 'multi.db'}"
    study = optuna.create_study(
        study_name="multi",
        storage=storage,
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_metric_names(["val_loss", "n_params"])
    study.set_user_attr("run_config", RunConfig.model_validate(run_dict).model_dump(mode="json"))
    for lr, width, values in [(0.01, 8, [0.5, 90]), (0.02, 16, [0.4, 170]), (0.03, 24, [0.6, 250])]:
        study.enqueue_trial({"optimizer.lr": lr, "model.hidden.0": width})
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
        trial.suggest_int("model.hidden.0", 8, 32)
        study.tell(trial, values)
    result = runner.invoke(app, ["export-best", "--study-name", "multi", "--storage", storage])
    assert result.exit_code == 0, result.output
    # The table listed trial 0 and trial 1 without saying why two, nor which file to train.
    said = " ".join(re.sub(r"[│\s]+", " ", result.stdout).split())
    assert (
        "Pareto front 2 trials that no other trial beats on every objective: train the one you pick with hpotool "
        f"train-from-best --study-name multi --storage {storage} --trial <trial> (under the study's final: rules), "
        "or hpotool train --run-config studies/multi/best_run_<trial>.yaml" in said
    ), result.stdout
    folder = tmp_path / "studies" / "multi"
    assert sorted(os.listdir(folder)) == [
        "best_params.json",
        "best_run_0.yaml",
        "best_run_1.yaml",
        "trials.csv",
        "trials.json",
    ]
    info = json.loads((folder / "best_params.json").read_text())
    assert info["metrics"] == ["val_loss", "n_params"] and info["directions"] == ["minimize", "minimize"]
    assert [t["trial_number"] for t in info["pareto_trials"]] == [0, 1]
    assert info["pareto_trials"][1]["values"] == [0.4, 170]
    assert info["pareto_trials"][1]["run_config"] == "best_run_1.yaml"
    assert load_run_config(folder / "best_run_1.yaml").optimizer.lr == 0.02
    with open(folder / "trials.csv", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert header[:5] == ["number", "state", "values_val_loss", "values_n_params", "pareto"]
    # Which trials make the front, beside each trial's values (it was in best_params.json alone).
    assert [r[4] for r in rows] == ["True", "True", "False"]
    assert [t["pareto"] for t in json.loads((folder / "trials.json").read_text())] == [True, True, False]
    study.enqueue_trial({"optimizer.lr": 0.04, "model.hidden.0": 32})  # dominates both: the front moves
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
    trial.suggest_int("model.hidden.0", 8, 32)
    study.tell(trial, [0.3, 80])
    # The user's own files beside the export: a copy they keep, and a hand-written config of a Pareto-like name.
    (folder / "best_run_mine.yaml").write_text((folder / "best_run_1.yaml").read_text())
    (folder / "best_run_9.yaml").write_text("project: mine\n")
    assert runner.invoke(app, ["export-best", "--study-name", "multi", "--storage", storage]).exit_code == 0
    assert sorted(f.name for f in folder.glob("best_run*")) == [
        "best_run_3.yaml",  # the front now; its former members are gone
        "best_run_9.yaml",
        "best_run_mine.yaml",
    ]
    study.enqueue_trial({"optimizer.lr": 0.05, "model.hidden.0": 32})  # joins the front: two members now
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
    trial.suggest_int("model.hidden.0", 8, 32)
    study.tell(trial, [0.2, 500])
    study.set_user_attr("run_config", {**study.user_attrs["run_config"], "old_field": 1})
    result = runner.invoke(app, ["export-best", "--study-name", "multi", "--storage", storage])
    assert result.exit_code == 2
    assert (
        result.stderr.startswith(  # one line for the two files the one reason keeps from being made
            "error: studies/multi/best_run_3.yaml, studies/multi/best_run_4.yaml not written (the other "
            "exports were): study 'multi': run_config: unknown key 'old_field'; "
        )
        and result.stderr.count("\n") == 1
    )
    assert result.stderr.endswith("; set best_params.json's params in a run config this version accepts\n")
    assert sorted(f.name for f in folder.glob("best_run*")) == ["best_run_9.yaml", "best_run_mine.yaml"]
    info = json.loads((folder / "best_params.json").read_text())
    assert [(t["trial_number"], t["run_config"]) for t in info["pareto_trials"]] == [(3, None), (4, None)]


def test_a_study_not_made_by_hpotool_exports_its_trials_and_is_not_trained(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'plain.db'}"

    def objective(t: optuna.Trial) -> float:
        t.set_user_attr("metrics", [0.1, 0.2])  # its own use of the name hpotool uses for a dict
        return t.suggest_float("x", 0, 1)

    study = optuna.create_study(study_name="plain", storage=storage)
    study.optimize(objective, n_trials=3)
    result = runner.invoke(app, ["train-from-best", "--study-name", "plain", "--storage", storage])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'plain' has no stored run config (user attr 'run_config'): it was not created by hpotool "
        "optimize, so there is no RunConfig to merge its parameters into; hpotool trials --study-name plain "
        f"--storage {storage} --json lists its trials and parameters\n"
    )
    pointed = shlex.split(result.stderr.split("; hpotool ")[1].split(" lists")[0])
    listed = runner.invoke(app, pointed)  # as written: without the storage it looked for studies/plain.db
    assert listed.exit_code == 0, listed.output
    assert sorted(t["number"] for t in json.loads(listed.stdout)) == [0, 1, 2]
    assert not (tmp_path / "studies").exists()  # refused before the export
    result = runner.invoke(app, ["export-best", "--study-name", "plain", "--storage", storage])
    assert result.exit_code == 0, result.output
    assert " ".join(result.stderr.split()) == (
        "note: no best_run.yaml: study 'plain' was not created by hpotool optimize, so there is no run config "
        "to merge its parameters into (best_params.json has them)"
    )
    folder = tmp_path / "studies" / "plain"
    assert sorted(os.listdir(folder)) == ["best_params.json", "trials.csv", "trials.json"]
    info = json.loads((folder / "best_params.json").read_text())
    assert info["trial_number"] == study.best_trial.number and info["params"] == study.best_trial.params
    assert info["run_config"] is None and info["trials"] == {"complete": 3}
    assert [r["number"] for r in json.loads((folder / "trials.json").read_text())] == [0, 1, 2]


def test_a_plain_multi_objective_study_is_not_told_to_train_files_it_has_not(tmp_path: Path) -> None:
    # Its Pareto row said "train the one you pick with hpotool train-from-best ... --trial <trial>, or hpotool
    # train --run-config studies/plainmo/best_run_<trial>.yaml": train-from-best refuses such a study, and no
    # best_run_<trial>.yaml was written.
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name="plainmo", storage=storage, directions=["minimize", "maximize"])
    for x, y in [(0.1, 0.5), (0.2, 0.9), (0.3, 0.4)]:
        study.enqueue_trial({"x": x, "y": y})
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=3)
    result = runner.invoke(app, ["export-best", "--study-name", "plainmo", "--storage", storage])
    assert result.exit_code == 0, result.output
    said = " ".join(re.sub(r"[│\s]+", " ", result.stdout).split())
    assert (
        "Pareto front 2 trials that no other trial beats on every objective (best_params.json lists them under "
        "pareto_trials)" in said
    ), result.stdout
    assert "train" not in said, result.stdout
    folder = tmp_path / "studies" / "plainmo"
    assert sorted(os.listdir(folder)) == ["best_params.json", "trials.csv", "trials.json"]
    info = json.loads((folder / "best_params.json").read_text())
    assert [t["trial_number"] for t in info["pareto_trials"]] == [0, 1]


def test_a_stored_run_config_an_older_hpotool_wrote_still_exports_the_trials(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["n_trials"] = 2
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    args = ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    assert runner.invoke(app, args).exit_code == 0
    folder = tmp_path / "studies" / "tiny"
    (folder / "trials.json").write_text("previous export")
    # A study an older hpotool made: its run config has a key this version no longer has.
    study.set_user_attr("run_config", {**study.user_attrs["run_config"], "old_field": 1})
    study.set_user_attr("versions", {**study.user_attrs["versions"], "hpotool": "0.0.9"})
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: studies/tiny/best_run.yaml not written (the other exports were): study 'tiny': run_config: "
        "unknown key 'old_field'; "
        "valid keys: project, "
    )
    assert result.stderr.endswith(
        "; the study was made by hpotool 0.0.9, this is 0.1.0: use that version for it (pip install "
        "'hpotool==0.0.9'); or set best_params.json's params in a run config this version accepts\n"
    )
    assert "Traceback" not in result.output and "wrote" in result.stdout
    # The exports that need no run config are new; the former best_run.yaml, no longer the export's, is gone.
    assert sorted(os.listdir(folder)) == ["best_params.json", "trials.csv", "trials.json"]
    assert [r["number"] for r in json.loads((folder / "trials.json").read_text())] == [0, 1]
    info = json.loads((folder / "best_params.json").read_text())
    assert info["run_config"] is None and info["trial_number"] == study.best_trial.number
    trained = runner.invoke(app, ["train-from-best", *args[1:]])  # refused, with the same way out
    assert trained.exit_code == 2 and trained.stderr.endswith(
        "; the study was made by hpotool 0.0.9, this is 0.1.0: use that version for it (pip install "
        "'hpotool==0.0.9')\n"
    )


def test_a_built_in_models_argument_an_older_hpotool_took_is_not_exported_to_a_best_run_train_refuses(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # export-best trusted the components the trials trained with, also for a study another version made:
    # it wrote a best_run.yaml with an MLP argument this version's mlp no longer takes (exit 0), which
    # `hpotool train --run-config` then refused.
    opt_dict["n_trials"] = 1
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    stored = study.user_attrs["run_config"]
    study.set_user_attr("run_config", {**stored, "model": {**stored["model"], "old_width": 8}})
    study.set_user_attr("versions", {**study.user_attrs["versions"], "hpotool": "0.0.9"})
    args = ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: studies/tiny/best_run.yaml not written (the other exports were): study 'tiny': run_config: "
        "model: model 'mlp' takes no argument 'old_width'; "
    ) and result.stderr.endswith(
        "the study was made by hpotool 0.0.9, this is 0.1.0: use that version for it (pip install "
        "'hpotool==0.0.9'); or set best_params.json's params in a run config this version accepts\n"
    )
    assert sorted(os.listdir(tmp_path / "studies" / "tiny")) == [
        "best_params.json",
        "trials.csv",
        "trials.json",
    ]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_trials_csv_of_a_plain_optuna_study_keeps_every_value_and_attr() -> None:
    from hpotool.trial_table import trials_frame

    # A parameter named like a column of the table, and a user attr named like hpotool's metrics dict.
    study = optuna.create_study(study_name="plain")
    for v in (0.25, 0.5):
        trial = study.ask()
        trial.suggest_float("value", 0, 1)
        trial.set_user_attr("metrics", [v, 2 * v])
        study.tell(trial, 10 * v)
    frame = trials_frame(study)
    assert list(frame["value"]) == [2.5, 5.0]  # the objective's, not the parameter's
    assert list(frame["params_value"]) == [t.params["value"] for t in study.trials]
    assert list(frame["user_attrs_metrics"]) == ["[0.25, 0.5]", "[0.5, 1.0]"]
    # Two objectives of the same name (Optuna's own trials_dataframe keeps one), and unnamed ones.
    named = optuna.create_study(directions=["minimize", "maximize"])
    named.set_metric_names(["loss", "loss"])
    unnamed = optuna.create_study(directions=["minimize", "maximize"])
    for study in (named, unnamed):
        study.add_trial(optuna.trial.create_trial(values=[1.0, 2.0]))
        assert trials_frame(study)[["values_0", "values_1"]].values.tolist() == [[1.0, 2.0]]


def test_missing_study_lists_the_ones_that_exist(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    opt_dict["n_trials"] = 1
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(app, ["export-best", "--study-name", "tinny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: no study 'tinny' in {opt_dict['storage']} (did you mean 'tiny'?); studies there: tiny\n"
    )
    # Without --storage: the default file is missing, so the studies under studies/ are listed.
    result = runner.invoke(app, ["export-best", "--study-name", "tinny"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no study 'tinny': studies/tinny.db does not exist (did you mean 'tiny'?); studies under studies/: "
        "tiny (sqlite:///studies/tiny.db) (give --storage URL for a study stored elsewhere)\n"
    )
    # The study's file given for its name (it made studies/tiny.db.db in the optimize config): name it.
    for name in ("tiny.db", "studies/tiny.db"):
        result = runner.invoke(app, ["export-best", "--study-name", name])
        assert result.exit_code == 2 and result.stderr == (
            f"error: no study {name!r}: --study-name takes the study's name, not its file; give --study-name tiny\n"
        )


def test_export_best_trusts_the_trained_components_and_never_imports_torch(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # Checking each component's arguments again would import torch (~2 s) for a file-writing command.
    run_tiny_study(tmp_path, run_dict, opt_dict)
    code = (
        "import sys\n"
        "from hpotool.cli import app\n"
        "try:\n"
        f"    app(['export-best', '--study-name', 'tiny', '--storage', {opt_dict['storage']!r}, '--out', 'exp'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert result.stderr.strip().splitlines()[-1] == "False"
    assert (tmp_path / "exp" / "best_run.yaml").exists()


def test_trials_csv_keeps_a_float_choice_a_float_and_tells_a_null_choice_from_an_unset_parameter(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # grad_clip's choices are whole floats and null; momentum is set only for sgd. The CSV wrote 5.0 as 5
    # and left both a null grad_clip and adam's unset momentum empty.
    opt_dict["n_trials"] = 3
    opt_dict["search_space"] = {
        "grad_clip": {"type": "categorical", "choices": [None, 1.0, 5.0]},
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "categorical",
            "choices": [0.0, 0.9],
            "when": {"optimizer.name": "sgd"},
        },
        "model.hidden.0": {"type": "int", "low": 8, "high": 16, "step": 8},
    }
    opt_dict["enqueue"] = [
        {"grad_clip": None, "optimizer.name": "adam", "model.hidden.0": 8},
        {"grad_clip": 5.0, "optimizer.name": "sgd", "optimizer.momentum": 0.0, "model.hidden.0": 16},
        {"grad_clip": 1.0, "optimizer.name": "sgd", "optimizer.momentum": 0.9, "model.hidden.0": 8},
    ]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    export_best(study, opt_dict["storage"])
    with open(tmp_path / "studies" / "tiny" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [
        (r["grad_clip"], r["optimizer.name"], r["optimizer.momentum"], r["model.hidden.0"]) for r in rows
    ]
    assert cells == [("null", "adam", "", "8"), ("5.0", "sgd", "0.0", "16"), ("1.0", "sgd", "0.9", "8")]
    assert all(r["value"] == repr(t.value) for r, t in zip(rows, study.trials, strict=True))
    # trials.json keeps every type as the trial holds it
    records = json.loads((tmp_path / "studies" / "tiny" / "trials.json").read_text())
    assert [r["params"] for r in records] == [t.params for t in study.trials]
    assert "optimizer.momentum" not in records[0]["params"] and records[0]["params"]["grad_clip"] is None


def test_trials_csv_shows_a_queued_trials_values_as_trials_and_trials_json_do() -> None:
    """A waiting trial's cells were empty in trials.csv, while `hpotool trials` and trials.json showed the
    values it was queued with (`enqueue_trial`); a parameter only a queued trial sets had no column."""
    from hpotool.trial_table import trial_records, trials_csv

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 9), n_trials=1)
    study.enqueue_trial({"x": 0.5, "n": 3, "act": "relu"})
    rows = list(csv.DictReader(trials_csv(study).splitlines()))
    assert [r["state"] for r in rows] == ["COMPLETE", "WAITING"]
    assert (rows[1]["x"], rows[1]["n"], rows[1]["act"]) == ("0.5", "3", "relu")
    assert rows[0]["act"] == ""  # the complete trial never set it
    assert trial_records(study)[1]["params"] == {"x": 0.5, "n": 3, "act": "relu"}


def test_the_exports_write_a_stepped_float_as_its_step_means(tmp_path: Path) -> None:
    """Random, qmc and cmaes store a stepped float as Optuna computes it (0.30000000000000004 for 3 steps of
    0.1 from 0, 0.0009000000000000001 for 8 of 0.0001 from 0.0001), grid and brute force as 0.3: trials.csv,
    trials.json and best_params.json wrote the long number, the trial lines the step's value."""
    from hpotool.trial_table import trial_records, trials_csv

    study = optuna.create_study()
    dists = {
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.9, step=0.1),
        "lr": optuna.distributions.FloatDistribution(0.0001, 0.001, step=0.0001),
        "wd": optuna.distributions.FloatDistribution(0.0, 1.0),  # no step: as stored
    }
    params = {"dropout": 3 * 0.1, "lr": 0.0001 + 8 * 0.0001, "wd": 3 * 0.1}
    assert params["dropout"] == 0.30000000000000004 and params["lr"] == 0.0009000000000000001
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=1.0))
    assert study.trials[0].params == params  # what Optuna stores is left alone
    clean = {"dropout": 0.3, "lr": 0.0009, "wd": 0.30000000000000004}
    row = next(csv.DictReader(trials_csv(study).splitlines()))
    assert (row["dropout"], row["lr"], row["wd"]) == ("0.3", "0.0009", "0.30000000000000004")
    assert trial_records(study)[0]["params"] == clean
    export_best(study, "memory", tmp_path)
    assert json.loads((tmp_path / "best_params.json").read_text())["params"] == clean
    assert json.loads((tmp_path / "trials.json").read_text())[0]["params"] == clean


def test_a_plain_studys_reported_values_are_its_exported_history(tmp_path: Path) -> None:
    # Optuna code that reports intermediate values: trials.csv, trials.json and best_params.json showed an
    # empty history (hpotool's history attr is what they read), so the curves were in no export.
    storage = f"sqlite:///{tmp_path / 'plain.db'}"

    def objective(t: optuna.Trial) -> float:
        x = t.suggest_float("x", 0, 1)
        for step in range(3):
            t.report(x * step, step)
        return x

    optuna.create_study(study_name="plain", storage=storage).optimize(objective, n_trials=2)
    result = runner.invoke(
        app, ["export-best", "--study-name", "plain", "--storage", storage, "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    trials = json.loads((tmp_path / "e" / "trials.json").read_text())
    x = trials[0]["params"]["x"]
    assert trials[0]["history"] == [
        {"step": 0, "value": 0.0},
        {"step": 1, "value": x},
        {"step": 2, "value": 2 * x},
    ]
    best = json.loads((tmp_path / "e" / "best_params.json").read_text())
    assert [row["step"] for row in best["history"]] == [0, 1, 2]
    with open(tmp_path / "e" / "trials.csv", newline="") as f:
        assert json.loads(next(csv.DictReader(f))["history"])[2]["step"] == 2


def test_infinite_and_nan_values_read_back_from_every_export_as_they_were(tmp_path: Path) -> None:
    # trials.json, best_params.json and the CSV's JSON cells wrote NaN, +inf and -inf all as null, the
    # spelling of a missing value, and trials.csv wrote a NaN metric as an empty cell, as one never stored:
    # a -inf objective or an undefined F1 could not be told from no value. Now JSON spells them "NaN",
    # "Infinity" and "-Infinity" (strict JSON still; pandas' read_json reads them as floats), the CSV NaN.
    import math

    import pandas as pd

    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    values = [1.0, -math.inf, math.inf, 2.0]
    metrics = [math.nan, 0.5, -math.inf, None]

    def objective(t: optuna.Trial) -> float:
        t.suggest_float("x", 0, 1)
        t.report(values[t.number], 0)
        t.report(math.nan, 1)
        if metrics[t.number] is not None:
            t.set_user_attr("metrics", {"f1": metrics[t.number]})
        return values[t.number]

    study = optuna.create_study(study_name="plain", storage=storage, direction="maximize")
    study.optimize(objective, n_trials=4)
    result = runner.invoke(
        app, ["export-best", "--study-name", "plain", "--storage", storage, "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    trials = json.loads((tmp_path / "e" / "trials.json").read_text(), parse_constant=refuse)
    assert [t["value"] for t in trials] == [1.0, "-Infinity", "Infinity", 2.0]
    assert [t["metrics"] for t in trials] == [{"f1": "NaN"}, {"f1": 0.5}, {"f1": "-Infinity"}, {}]
    assert [[h["value"] for h in t["history"]] for t in trials] == [
        [1.0, "NaN"],
        ["-Infinity", "NaN"],
        ["Infinity", "NaN"],
        [2.0, "NaN"],
    ]
    read = pd.read_json(tmp_path / "e" / "trials.json")
    assert read["value"].tolist() == [1.0, -math.inf, math.inf, 2.0]
    best = json.loads((tmp_path / "e" / "best_params.json").read_text(), parse_constant=refuse)
    assert best["best_value"] == "Infinity" and best["trial_number"] == 2
    assert best["metrics"] == {"f1": "-Infinity"}
    with open(tmp_path / "e" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["value"] for r in rows] == ["1.0", "-inf", "inf", "2.0"]
    assert [r["metrics_f1"] for r in rows] == ["NaN", "0.5", "-inf", ""]
    assert [h["value"] for h in json.loads(rows[1]["history"])] == ["-Infinity", "NaN"]
    frame = pd.read_csv(tmp_path / "e" / "trials.csv")
    assert frame["value"].tolist() == [1.0, -math.inf, math.inf, 2.0]
    listed = runner.invoke(app, ["trials", "--study-name", "plain", "--storage", storage, "--json"])
    assert listed.exit_code == 0, listed.output
    shown = {t["number"]: t["value"] for t in json.loads(listed.stdout, parse_constant=refuse)}
    assert shown == {0: 1.0, 1: "-Infinity", 2: "Infinity", 3: 2.0}


def test_a_plain_study_without_a_complete_trial_is_not_told_to_run_hpotool_optimize(tmp_path: Path) -> None:
    # A study plain Optuna code ran, its trials all pruned: export-best said "run hpotool optimize until one
    # completes", which has no optimize config to run it with. It now says to run more of its trials.
    storage = f"sqlite:///{tmp_path / 'plain.db'}"

    def objective(t: optuna.Trial) -> float:
        t.report(t.suggest_float("x", 0, 1), 0)
        raise optuna.TrialPruned()

    optuna.create_study(study_name="plain", storage=storage).optimize(objective, n_trials=2)
    result = runner.invoke(app, ["export-best", "--study-name", "plain", "--storage", storage])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'plain' has no complete trial yet (pruned 2); it was not created by hpotool optimize: "
        "run more of its trials (with the Optuna code that made it) until one completes\n"
    )
    assert not (tmp_path / "studies").exists()


def test_a_plain_study_whose_trials_all_failed_says_where_to_read_why(tmp_path: Path) -> None:
    # Its line was the one for pruned trials, "run more of its trials until one completes", while an hpotool
    # study's points at `hpotool trials --state fail`. Optuna stores no reason (it logs one), so the line says
    # where the reason is: the log, or hpotool trials where the code stored a fail_reason.
    storage = f"sqlite:///{tmp_path / 'plain.db'}"

    def failed(name: str, n: int, stored_reason: str | None) -> tuple[list[str], str]:
        """A plain study of `n` failed trials (their fail_reason attr `stored_reason`, where not None): its
        options, and what export-best says of it."""

        def objective(t: optuna.Trial) -> float:
            t.suggest_float("x", 0, 1)
            if stored_reason is not None:
                t.set_user_attr("fail_reason", stored_reason)
            raise RuntimeError("boom")

        optuna.create_study(study_name=name, storage=storage).optimize(
            objective, n_trials=n, catch=RuntimeError
        )
        args = ["--study-name", name, "--storage", storage]
        result = runner.invoke(app, ["export-best", *args, "--out", str(tmp_path / "e")])
        assert result.exit_code == 2
        return args, result.stderr

    args, said = failed("plain", 2, None)
    assert said == (
        "error: study 'plain' has no complete trial yet (fail 2); it was not created by hpotool optimize, and "
        'Optuna keeps no reason a trial failed: the log of the Optuna code that ran them says why ("Trial 0 '
        'failed with parameters: ... because of the following error: ..."), and hpotool trials --study-name '
        f"plain --storage {storage} --state fail lists their parameters: fix that and run more of its trials "
        "(with the Optuna code that made it) until one completes\n"
    )
    listed = runner.invoke(app, ["trials", *args, "--state", "fail", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 2  # the command it names works
    kept, said = failed("kept", 1, "RuntimeError: boom")
    assert said == (
        "error: study 'kept' has no complete trial yet (fail 1); it was not created by hpotool optimize, and "
        f"hpotool trials --study-name kept --storage {storage} --state fail shows why it failed: fix that and "
        "run more of its trials (with the Optuna code that made it) until one completes\n"
    )
    listed = runner.invoke(app, ["trials", *kept, "--state", "fail"])
    assert listed.exit_code == 0 and "RuntimeError: boom" in listed.stdout
    assert not (tmp_path / "e").exists()


def test_an_export_into_a_folder_holding_another_studys_export_is_refused_and_writes_nothing(
    configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path
) -> None:
    """`export-best --out exp` of a plain Optuna study (no best_run.yaml) into the folder of another study's
    export left that study's best_run.yaml beside the new best_params.json: two studies' files in one
    folder, the run config of one beside the parameters of the other."""
    run_path, opt_path = configs
    assert runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"]).exit_code == 0
    plain = optuna.create_study(study_name="plain", storage=opt_dict["storage"], direction="maximize")
    plain.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=2)
    storage = ["--storage", opt_dict["storage"]]
    assert (
        runner.invoke(app, ["export-best", "--study-name", "tiny", *storage, "--out", "exp"]).exit_code == 0
    )
    before = {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir()}
    refused = runner.invoke(app, ["export-best", "--study-name", "plain", *storage, "--out", "exp"])
    assert refused.exit_code == 2 and refused.stderr == (
        "error: exp: holds the export of study 'tiny' (best_params.json, best_run.yaml), and an export of study "
        "'plain' there would mix the two studies' files; give another --out, e.g. --out plain, or move those "
        "files away\n"
    )
    assert {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir()} == before
    again = runner.invoke(app, ["export-best", "--study-name", "tiny", *storage, "--out", "exp"])
    assert again.exit_code == 0, again.output  # the same study's export is replaced, as before
    mine = runner.invoke(app, ["export-best", "--study-name", "plain", *storage, "--out", "plain"])
    assert mine.exit_code == 0 and sorted(os.listdir("plain")) == [
        "best_params.json",
        "trials.csv",
        "trials.json",
    ]
    # train-from-best exports into studies/<name>/: another study's export put there is refused too
    (tmp_path / "studies" / "plain").mkdir()
    (tmp_path / "studies" / "plain" / "best_run.yaml").write_bytes(before["best_run.yaml"])
    refused = runner.invoke(app, ["export-best", "--study-name", "plain", *storage])
    assert refused.exit_code == 2 and refused.stderr == (
        f"error: {Path('studies') / 'plain'}: holds the export of study 'tiny' (best_run.yaml), and an export of "
        "study 'plain' there would mix the two studies' files; move those files away\n"
    )


def test_studies_leaves_another_program_s_wal_database_untouched(tmp_path: Path) -> None:
    # `hpotool studies` skips a database that holds no study "untouched", and left -wal and -shm files beside
    # it: SQLite's read-only mode makes them for a WAL database, and a reader may not delete them.
    import sqlite3

    folder = tmp_path / "studies"
    folder.mkdir()
    with sqlite3.connect(folder / "notes.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    result = runner.invoke(app, ["studies"])
    assert result.exit_code == 0, result.output
    assert "studies/notes.db: not an Optuna database, skipped" in result.stderr
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_train_from_best_of_a_multi_objective_study_none_of_whose_trials_meets_its_constraints(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    # It said 'run hpotool export-best, pick one of the Pareto-optimal best_run_<trial>.yaml files', and
    # export-best then refused the study: no trial meets its constraints, so there is no Pareto front.
    study, url = two_objective_study(tmp_path, run_dict)
    for i in range(3):
        trial = optuna.trial.create_trial(values=[0.5 + i, 1000.0 - i])
        trial.set_constraint("n_params <= 10", 990.0 - i)
        study.add_trial(trial)
    args = ["--study-name", "mo", "--storage", url]
    exported = runner.invoke(app, ["export-best", *args, "--out", str(tmp_path / "export")])
    trained = runner.invoke(app, ["train-from-best", *args, "--out", str(tmp_path / "final")])
    for result in (exported, trained):
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(
            "error: study 'mo' has no complete trial that meets its constraints"
        ), result.stderr
    assert "best_run_" not in trained.stderr
    assert not (tmp_path / "final").exists() and not (tmp_path / "export").exists()


def test_ranking_a_multi_objective_study_names_train_from_best_trial() -> None:
    # It said only 'pick one of the Pareto-optimal best_run_<trial>.yaml files and train it with hpotool
    # train', which skips the study's final: rules; train-from-best --trial trains a Pareto trial under them.
    study = optuna.create_study(study_name="mo", directions=["minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.5, 1000.0]))
    with pytest.raises(HpoError) as raised:
        ranked_trials(study)
    assert str(raised.value) == (
        "study 'mo' has 2 objectives, so its trials have no single ranking; train the Pareto-optimal trial you "
        "pick with hpotool train-from-best --study-name mo --trial N (under the study's final: rules), or run "
        "hpotool export-best and train its best_run_<trial>.yaml with hpotool train --run-config"
    )


def test_a_damaged_study_file_is_called_damaged_not_a_database_without_optuna_s_tables(
    tmp_path: Path,
) -> None:
    # A study file cut short (a copy interrupted, a full disk) read as "is not an Optuna storage (it has no
    # Optuna tables)", and `studies` skipped it as "not an Optuna database": both untrue, and no hint.
    folder = tmp_path / "studies"
    folder.mkdir()
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'whole.db'}")
    study = optuna.create_study(study_name="cut", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    storage.engine.dispose()
    whole = (folder / "whole.db").read_bytes()
    (folder / "whole.db").unlink()
    (folder / "cut.db").write_bytes(whole[: len(whole) // 2])
    result = runner.invoke(app, ["trials", "--study-name", "cut"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: storage 'sqlite:///studies/cut.db': 'studies/cut.db' is a damaged SQLite file (database disk image "
        "is malformed): restore it from a backup, or copy it again whole (a copy cut short reads so); nothing was "
        "written to it\n"
    )
    listed = runner.invoke(app, ["studies"])
    assert (
        "note: studies/cut.db: a damaged SQLite file (database disk image is malformed), skipped"
        in listed.stderr
    )
    assert (folder / "cut.db").read_bytes() == whole[: len(whole) // 2]


def test_a_study_whose_only_trial_is_running_says_to_wait_for_it(tmp_path: Path) -> None:
    # export-best (audit, refine, train-from-best) of a study another process is running, none of whose
    # trials has completed yet, said "run hpotool optimize until one completes": one is running it now.
    from hpotool.owners import owner

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    study = optuna.create_study(study_name="busy", storage=url)
    study.set_user_attr("optimize_config", {"metric": "val_loss"})
    trial = study.ask()  # running, in a live process (this one)
    args = ["--study-name", "busy", "--storage", url]
    result = runner.invoke(app, ["export-best", *args, "--out", str(tmp_path / "export")])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: study 'busy' has no complete trial yet (running 1); its running trial may complete one: wait for it "
        f"to finish (hpotool trials --study-name busy --storage {url} shows it), or run hpotool optimize until one "
        f"completes\n"
    )
    # A trial whose process of this machine is gone completes nothing: the advice is to run optimize.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    study._storage.set_trial_user_attr(trial._trial_id, "worker", {**owner(), "pid": int(dead.stdout)})
    result = runner.invoke(app, ["export-best", *args, "--out", str(tmp_path / "export")])
    assert result.stderr == (
        "error: study 'busy' has no complete trial yet (running 1); run hpotool optimize until one completes\n"
    )


def test_refine_out_dev_null_is_refused_and_writes_no_run_yaml_beside_it(tmp_path: Path) -> None:
    """`refine --out /dev/null --force` wrote the stage into /dev/null and its RunConfig to
    /dev/null.run.yaml, a file in /dev (without --force: "/dev/null already exists; ... pass --force"). A
    device or pipe is refused now, before the study is read, with or without --force."""
    os.mkfifo(tmp_path / "pipe.yaml")
    for out, kind in (("/dev/null", "a device"), (str(tmp_path / "pipe.yaml"), "a named pipe")):
        for force in ([], ["--force"]):
            result = runner.invoke(app, ["refine", "--study-name", "nope", "--out", out, *force])
            assert result.exit_code == 2, result.output
            assert result.stderr == (
                f"error: --out: {out} is {kind}, not a file; refine writes two files, the stage's config and "
                "its .run.yaml beside it: give a file, e.g. --out stage2.yaml\n"
            )
    assert not os.path.exists("/dev/null.run.yaml") and not (tmp_path / "pipe.run.yaml").exists()


def test_a_file_where_the_export_folder_goes_names_the_flag_that_gives_another(
    configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path
) -> None:
    """A file named studies/tiny, where export-best writes by default and train-from-best always exports,
    said "studies/tiny/trials.csv: cannot write: studies/tiny is a file, not a folder; choose another path",
    and export-best --out /dev/null said so of /dev/null: now each line says which flag (if any) to give."""
    run_path, opt_path = configs
    assert runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"]).exit_code == 0
    storage = ["--storage", opt_dict["storage"]]
    (tmp_path / "studies" / "tiny").write_text("notes\n")
    folder = Path("studies") / "tiny"
    result = runner.invoke(app, ["export-best", "--study-name", "tiny", *storage])
    assert result.exit_code == 2 and result.stderr == (
        f"error: {folder}: is a file, not a folder, and export-best writes into {folder}/ by default; give a "
        f"folder with --out PATH, e.g. --out {Path('exports') / 'tiny'}, or move that file away\n"
    )
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", *storage])
    assert result.exit_code == 2 and result.stderr == (
        f"error: {folder}: is a file, not a folder, and train-from-best exports the best trial into {folder}/ "
        "(no flag changes that folder); move or rename that file\n"
    )
    assert not (tmp_path / "runs").exists() and (tmp_path / "studies" / "tiny").read_text() == "notes\n"
    for out, said in (("/dev/null", "is a device"), ("/dev/null/tiny", "/dev/null is a device")):
        result = runner.invoke(app, ["export-best", "--study-name", "tiny", *storage, "--out", out])
        assert result.exit_code == 2 and result.stderr == (
            f"error: --out {out}: {said}, not a folder; export-best writes several files into a folder: give "
            f"one, e.g. --out {Path('exports') / 'tiny'}\n"
        )
    exported = runner.invoke(app, ["export-best", "--study-name", "tiny", *storage, "--out", "exp"])
    assert exported.exit_code == 0, exported.output


def test_train_from_best_out_dev_null_calls_it_a_device(
    configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path
) -> None:
    """train-from-best --out /dev/null said "/dev/null/trial0-seed0: cannot be made: /dev/null is a file, not
    a folder": a device, which the user can see is no file they made."""
    run_path, opt_path = configs
    assert runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"]).exit_code == 0
    best = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).best_trial.number
    result = runner.invoke(
        app,
        ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "/dev/null"],
    )
    assert result.exit_code == 2 and result.stderr == (
        f"error: /dev/null/trial{best}-seed0: cannot be made: /dev/null is a device, not a folder; choose "
        "another --out\n"
    )


_STALLS_WHILE_WRITING = """
import pathlib, sys, time
import hpotool.atomic
from hpotool.cli import main

sealed = hpotool.atomic._seal

def stall(fh, tmp, kind):  # the first file is written and on disk, not yet renamed into place
    sealed(fh, tmp, kind)
    pathlib.Path("writing").touch()
    time.sleep(600)

hpotool.atomic._seal = stall
sys.argv[0] = "hpotool"
main()
"""


def test_an_export_killed_midway_leaves_its_temporary_file_only_until_the_next_write(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export-best killed (SIGKILL) while it wrote left a hidden temporary file
    (studies/tiny/.best_params.json.*.tmp) there for good; now the next write into that folder removes it."""
    import time

    monkeypatch.chdir(tmp_path)
    run_tiny_study(tmp_path, run_dict, opt_dict)
    folder = tmp_path / "studies" / "tiny"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    cmd = [sys.executable, "-c", _STALLS_WHILE_WRITING, "export-best", "--study-name", "tiny"]
    killed = subprocess.Popen([*cmd, "--storage", opt_dict["storage"]], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "writing").exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "writing").exists(), "the export never wrote"
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    (left,) = [name for name in os.listdir(folder) if name.endswith(".tmp")]
    assert left.startswith(".")
    again = runner.invoke(app, ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert again.exit_code == 0, again.output
    assert sorted(os.listdir(folder)) == ["best_params.json", "best_run.yaml", "trials.csv", "trials.json"]


def test_export_report_and_refine_into_a_folder_this_process_cannot_write_say_what_to_do(
    tmp_path: Path,
    run_dict: dict,
    opt_dict: dict,
    lock_read_only: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`export-best --out ro/exp` below a read-only folder said 'ro/exp/trials.csv: cannot write: Read-only
    file system', naming a file in a folder that was never made and no way out (report and refine alike,
    once the report was drawn or the stage worked out). Now each is refused before the study is read, naming
    the folder it cannot write and the flag to give."""
    run_tiny_study(tmp_path, run_dict, opt_dict)
    url = opt_dict["storage"]
    read_only = tmp_path / "ro"
    read_only.mkdir()
    lock_read_only(read_only)
    study = ["--study-name", "tiny", "--storage", url]
    for command, out in (
        ("export-best", read_only / "exp"),
        ("export-best", read_only),
        ("report", read_only / "deep" / "r.html"),
        ("refine", read_only / "stage2.yaml"),
    ):
        result = runner.invoke(app, [command, *study, "--out", str(out)])
        assert result.exit_code == 2, result.output
        where = "it" if out == read_only else str(read_only)
        assert result.stderr == (
            f"error: {out}: this process cannot write to {where}; choose another --out, one you can write\n"
        ), command
    monkeypatch.chdir(read_only)  # the default studies/tiny/ is below it
    for command, path, what, give in (
        ("export-best", "studies/tiny", "export-best writes the export", "a folder"),
        ("report", "studies/tiny/report.html", "report writes the report", "a file"),
    ):
        result = runner.invoke(app, [command, *study])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: {path}: {what} there by default, and this process cannot write to {read_only}; give --out "
            f"{give} you can write\n"
        ), command
    result = runner.invoke(app, ["train-from-best", *study])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: studies/tiny: train-from-best exports the best trial there (no flag changes that folder), and "
        f"this process cannot write to {read_only}; make it writable, or run from another folder\n"
    )
    assert runner.invoke(app, ["report", *study, "--out", os.devnull]).exit_code == 0  # written into


def test_an_export_of_a_study_still_running_says_it_is_the_best_so_far(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """export-best (and train-from-best) while `optimize` still ran the study wrote the best trial so far
    without a word, as if the study were done: a later trial may beat it. Now a note says so."""
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    finished = len(study.trials)
    running = study.ask()  # another process's trial, running now
    args = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    note = (
        f"note: study 'tiny' is still running (a trial running now): this is the best of its {finished} finished "
        f"trials so far; run the command again once the study ends\n"
    )
    exported = runner.invoke(app, ["export-best", *args], catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    assert exported.stderr == note
    final = runner.invoke(
        app, ["train-from-best", *args, "--out", "final", "--seeds", "1"], catch_exceptions=False
    )
    assert final.exit_code == 0, final.output
    assert note in final.stderr
    study.tell(running, state=TrialState.FAIL)  # the study ended
    again = runner.invoke(app, ["export-best", *args], catch_exceptions=False)
    assert again.exit_code == 0 and again.stderr == "", again.output


def test_trials_json_and_csv_read_back_with_pandas_as_the_readme_says(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """README said trials.json 'holds one trial a line' with 'one column per parameter': `read_json(path,
    lines=True)` fails (it is a JSON array), the parameters and metrics are objects, and plain
    `pandas.read_json` rounds floats to 15 digits, so no learning rate it read was the trial's. README now
    gives the calls that read every value back exactly; this runs them."""
    import pandas as pd

    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    export_best(study, opt_dict["storage"], tmp_path / "e")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert (
        "pandas.read_json(path, precise_float=True)" in readme
        and "pandas.json_normalize(json.load(f))" in readme
    )
    params = {t.number: t.params for t in study.trials}
    metrics = {
        t.number: t.user_attrs["metrics"]["val_loss"] for t in study.trials if "metrics" in t.user_attrs
    }
    read = pd.read_json(tmp_path / "e" / "trials.json", precise_float=True)
    assert {n: p for n, p in zip(read["number"], read["params"], strict=True)} == params
    with open(tmp_path / "e" / "trials.json") as f:
        flat = pd.json_normalize(json.load(f))
    for name in study.trials[0].params:
        assert dict(zip(flat["number"], flat[f"params.{name}"], strict=True)) == {
            n: p[name] for n, p in params.items()
        }
    assert {
        n: v for n, v in zip(flat["number"], flat["metrics.val_loss"], strict=True) if n in metrics
    } == metrics
    # Plain read_csv read optimizer.lr's last digits otherwise on pandas 2 (0.0125206538149994 for
    # 0.012520653814999465): its default float parser is not round-trip before pandas 3.
    assert "Read the CSV with `pandas.read_csv(path)`; before pandas 3" in readme
    assert 'pandas.read_csv(path, float_precision="round_trip")`\n  (pandas 3 reads them exactly' in readme
    # pandas 3 reads floats round-trip by default and warns that float_precision is deprecated.
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    frame = pd.read_csv(tmp_path / "e" / "trials.csv", **exact)
    assert dict(zip(frame["number"], frame["optimizer.lr"], strict=True)) == {
        n: p["optimizer.lr"] for n, p in params.items()
    }
    assert {
        n: v for n, v in zip(frame["number"], frame["metrics_val_loss"], strict=True) if n in metrics
    } == metrics


def test_the_exports_give_the_parameters_in_the_search_spaces_order(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """trials.csv ordered its parameter columns as the first trial suggested them (a conditional one its
    condition switched off there came last), and trials.json a queued trial's as its enqueue call listed
    them; `hpotool trials` already follows the search space's order."""
    opt_dict["n_trials"] = 2
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer.name": "sgd"}},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    opt_dict["enqueue"] = [{"optimizer.name": "adam"}, {"optimizer.name": "sgd"}]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    study.enqueue_trial({"optimizer.lr": 0.01, "optimizer.name": "adam"})  # waiting, keys out of order
    export_best(study, opt_dict["storage"])
    order = ["optimizer.name", "optimizer.momentum", "optimizer.lr"]
    with (tmp_path / "studies" / "tiny" / "trials.csv").open() as f:
        header = next(csv.reader(f))
    assert [c for c in header if c.startswith("optimizer.")] == order
    records = json.loads((tmp_path / "studies" / "tiny" / "trials.json").read_text())
    assert [list(r["params"]) for r in records] == [
        ["optimizer.name", "optimizer.lr"],
        order,
        ["optimizer.name", "optimizer.lr"],
    ]


def test_best_run_yaml_lists_the_widths_its_searched_layers_train(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """With model.layers searched, a trial that drew layers 1 was exported with the base's whole
    `hidden: [16, 32, 32]` (layers cuts it, so one layer of 16 trained, but the file read as three). The
    file now lists the widths that train; the model it builds is the trial's, weight for weight."""
    from hpotool.parts import make_model
    from hpotool.stored_run import trial_run_config

    run_dict["model"] = {"name": "mlp", "hidden": [16, 32, 32]}
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {"model.layers": {"type": "categorical", "choices": [1, 3]}}
    opt_dict["enqueue"] = [{"model.layers": 1}]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    export_best(study, opt_dict["storage"])
    exported = load_run_config(tmp_path / "studies" / "tiny" / "best_run.yaml")
    assert exported.model.kwargs["hidden"] == [16] and exported.model.kwargs["layers"] == 1
    trial = trial_run_config(study, study.best_trial)
    assert trial.model.kwargs["hidden"] == [16, 32, 32]  # the study's own record keeps the base
    ours, theirs = make_model(exported, (64,), 10), make_model(trial, (64,), 10)
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert shapes["net.1.weight"] == (16, 64)


def test_export_best_at_80_columns_names_the_folder_it_wrote_whole(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `hpotool export-best ... --out FOLDER > log` (80 columns): the table's `wrote` cell folded a folder
    # longer than the cell mid-path ("...with_a_rathe" / "r_long_name/: trials.csv"), which pasted as two.
    # Now the row goes under the table, one line however long, where it would fold; the table fits.
    import hpotool.cli.terminal

    run_tiny_study(tmp_path, run_dict, opt_dict)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    out = tmp_path / ("exports_of_the_best_trial_in_a_rather_long_folder_name_" + "x" * 30)
    args = ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", str(out)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    wrote = f"wrote {out}/: trials.csv, trials.json, best_run.yaml, best_params.json"
    assert lines[-1] == wrote and max(len(line) for line in lines[:-1]) <= 80, result.stdout


@pytest.mark.parametrize(
    ("command", "name", "where"),
    [("export-best", "..", "the current folder"), ("report", "../out", "out"), ("report", "a/..", "studies")],
)
def test_a_study_name_leading_out_of_studies_writes_nothing_by_default(
    tmp_path: Path, command: str, name: str, where: str
) -> None:
    """A study Optuna code named '..' (a name Optuna takes) had its default folder studies/../: export-best
    wrote trials.csv and the rest into the current folder, report wrote out/report.html for '../out'."""
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name=name, storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)

    result = runner.invoke(app, [command, "--study-name", name, "--storage", storage])

    assert result.exit_code == 2, result.output
    assert f"its name makes that {where}; give " in result.output and "with --out" in result.output
    assert [p for p in os.listdir(tmp_path) if not p.startswith("plain.db")] == []  # its -wal, -shm kept
    given = runner.invoke(app, [command, "--study-name", name, "--storage", storage, "--out", "mine"])
    assert given.exit_code == 0, given.output  # --out writes where it says


def test_another_studys_pareto_export_is_named_in_trial_number_order(
    run_dict: dict, opt_dict: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best_run files of another study's export were sorted as strings: best_run_10.yaml before
    best_run_2.yaml."""
    monkeypatch.chdir(tmp_path)
    run_tiny_study(tmp_path, run_dict, opt_dict)
    (tmp_path / "exp").mkdir()
    for trial in (2, 10, 1):
        (tmp_path / "exp" / f"best_run_{trial}.yaml").write_text(
            f"# Best run of study 'other': trial {trial} (val_accuracy=0.5).\n"
        )
    refused = runner.invoke(
        app, ["export-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "exp"]
    )
    assert refused.exit_code == 2 and refused.stderr == (
        "error: exp: holds the export of study 'other' (best_run_1.yaml, best_run_2.yaml, best_run_10.yaml), and "
        "an export of study 'tiny' there would mix the two studies' files; give another --out, e.g. --out tiny, "
        "or move those files away\n"
    )
