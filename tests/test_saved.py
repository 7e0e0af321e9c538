from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.config_files import load_run_config
from hpotool.data import load_data
from hpotool.errors import HpoError
from hpotool.export import export_best
from hpotool.parts import build_trainer
from hpotool.saved import load_model

from .conftest import write_yaml
from .tiny_study import run_tiny_study

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def test_training_best_run_yaml_reproduces_the_best_trial(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    export_best(study, opt_dict["storage"])
    best = study.best_trial
    # A fresh process: nothing cached from the study, as when a user trains the export later.
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    cmd = [sys.executable, "-m", "hpotool", "train", "-r", "studies/tiny/best_run.yaml", "--out", "run"]
    cmd += ["--epochs", str(run_dict["epochs"]), "--seed", str(run_dict["seed"])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"]["val_accuracy"] == best.value
    assert saved["metrics"]["val_loss"] == pytest.approx(best.user_attrs["metrics"]["val_loss"], rel=1e-12)
    assert "val_accuracy" in done.stdout and "model.pt, metrics.json" in done.stdout


def test_train_saves_a_run_folder_that_loads_back(tmp_path: Path, run_dict: dict) -> None:
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--epochs", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs" / "tiny").iterdir()
    assert sorted(os.listdir(folder)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["epochs_run"] == 3 and saved["seed"] == 0 and saved["device"] == "cpu"
    # the wall time as every other line spells a duration: a run under a second said 0.0s
    (wall,) = re.findall(r"wall time\s+│\s+(\S+)", result.stdout)
    seconds = saved["seconds"]
    assert wall == (f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"), (wall, seconds)
    with open(folder / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in history] == [0, 1, 2]
    assert float(history[-1]["val_loss"]) == saved["metrics"]["val_loss"]
    config = load_run_config(folder / "config.yaml")
    assert config.epochs == 3 and config.model_dump() == {
        **load_run_config(run_path).model_dump(),
        "epochs": 3,
    }

    model, cfg, metrics = load_model(folder / "model.pt")
    assert cfg == config and metrics == saved["metrics"] and not model.training
    data = load_data(cfg.data)
    evaluated = build_trainer(cfg, data, model).evaluate(data.val)
    assert evaluated["val_accuracy"] == saved["metrics"]["val_accuracy"]
    assert evaluated["val_loss"] == pytest.approx(saved["metrics"]["val_loss"], rel=1e-6)


def test_run_folders_are_unique_and_never_overwritten(tmp_path: Path, run_dict: dict) -> None:
    run_dict["epochs"] = 1
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    for _ in range(2):
        assert runner.invoke(app, ["train", "-r", str(run_path)]).exit_code == 0
    assert len(list((tmp_path / "runs" / "tiny").iterdir())) == 2
    assert runner.invoke(app, ["train", "-r", str(run_path), "--out", "mine"]).exit_code == 0
    again = runner.invoke(app, ["train", "-r", str(run_path), "--out", "mine"])
    assert again.exit_code == 2
    assert again.stderr == "error: mine: already holds a saved run (model.pt); choose another --out\n"


def test_a_run_of_a_users_training_function_is_never_overwritten_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a run saves no model.pt, and `train --out` looked only for model.pt: a second `train` into the
    folder replaced its metrics.json, history.csv and config.yaml without a word (README: an --out folder
    that already holds a run is refused)."""
    monkeypatch.chdir(REPO)  # tests.trainers is imported from the repository root
    run = write_yaml(
        tmp_path / "run.yaml",
        {"project": "u", "epochs": 2, "trainer": {"function": "tests.trainers:takes_its_lr"}},
    )
    out = tmp_path / "mine"
    assert runner.invoke(app, ["train", "-r", str(run), "--out", str(out)]).exit_code == 0
    saved = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(saved) == ["config.yaml", "history.csv", "metrics.json"]
    again = runner.invoke(app, ["train", "-r", str(run), "--out", str(out), "--seed", "1"])
    assert again.exit_code == 2
    assert again.stderr == f"error: {out}: already holds a saved run (metrics.json); choose another --out\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == saved


def test_a_save_that_fails_leaves_no_run_folder_and_says_so_in_one_line(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model torch.save cannot pickle failed the save after training with a traceback, and left the run
    folder behind (empty, or with the files written before the failure): now one line, exit 2, and neither
    the --out folder nor runs/<project>/<timestamp> (nor runs/ itself, made by this command) is there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(REPO))  # tests.helpers, as a user's own model
    run_dict["model"] = {"name": "tests.helpers:KeepsALock"}
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    for out in (["--out", "deep/mine"], []):
        result = runner.invoke(app, ["train", "-r", str(run_path), *out])
        assert result.exit_code == 2, result.output
        line = result.stderr.strip("\n")  # after the progress display's blank line
        assert line.startswith(f"error: {'deep/mine' if out else 'runs/tiny/'}"), result.stderr
        assert line.endswith(
            "/model.pt: cannot save the model: TypeError: cannot pickle '_thread.lock' object; the run was "
            "not saved: make tests.helpers:KeepsALock's state_dict() hold only tensors and values pickle can "
            "save"
        )
        assert "\n" not in line and "Traceback" not in result.output
        assert sorted(os.listdir(tmp_path)) == ["run.yaml"]  # no deep/, no runs/, nothing hidden


def test_a_save_into_an_out_folder_holding_other_files_keeps_them(tmp_path: Path, run_dict: dict) -> None:
    run_dict["epochs"] = 1
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    out = tmp_path / "mine"
    out.mkdir(mode=0o750)
    (out / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = ["config.yaml", "history.csv", "metrics.json", "model.pt", "notes.txt"]
    assert sorted(os.listdir(out)) == names and (out / "notes.txt").read_text() == "mine\n"
    assert (out.stat().st_mode & 0o777) == 0o750  # the user's folder, kept
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o750)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(empty)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(empty)) == names[:4] and (empty.stat().st_mode & 0o777) == 0o750
    assert sorted(os.listdir(tmp_path)) == ["empty", "mine", "run.yaml"]  # no staging folder left


def test_an_out_folder_below_a_file_is_refused_before_training(tmp_path: Path, run_dict: dict) -> None:
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    (tmp_path / "afile").write_text("mine\n")
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "afile/run"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: afile/run: cannot be made: afile is a file, not a folder; choose another --out\n"
    )
    assert "train_loss" not in result.stdout  # refused before training, not when saving


def test_an_out_folder_with_a_name_too_long_is_refused_before_training(
    tmp_path: Path, run_dict: dict
) -> None:
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    out = "r" * 300
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", out])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == f"error: {out}: cannot be made: File name too long; choose another --out\n"
    assert "train_loss" not in result.stdout


def test_train_flag_errors_are_one_line(tmp_path: Path, run_dict: dict) -> None:
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--device", "gpu"])
    assert result.exit_code == 2
    assert result.stderr == "error: --device: must be auto, cpu, cuda, cuda:N or mps, got gpu\n"
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e30}
    write_yaml(run_path, run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path)])
    assert result.exit_code == 2
    assert "error: training diverged: train_loss is" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing saved for a failed run


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model": {"name": "mlp", "dropout": 1.5}},
            "model: dropout must be from 0 up to but not including 1, got 1.5; give a value such as 0.1 (0: no dropout)",
        ),
        (
            {"loss": {"name": "mse"}},
            "loss: 'mse' compares numbers, but y holds class labels (a classification task of 10 classes); use "
            "cross_entropy (or auto), or give y as floating-point numbers for regression",
        ),
        (
            {"data": {"name": "regression", "n_samples": 4, "val_fraction": 0.1}},
            "data: val_fraction: 0.1 of the dataset's 4 samples leaves no validation sample; raise it to at "
            "least 0.5, or give more data",
        ),
        (  # it said 'loading 'digits' failed: ValueError: the dataset has 1797 samples: too few for ...'
            {"data": {"name": "digits", "subset_fraction": 0.0001}},
            "data: subset_fraction: 0.0001 of the 1438 training samples leaves none; raise it to at least 0.000695",
        ),
        (
            {"data": {"name": "regression", "n_samples": 4, "val_fraction": 0.9}},
            "data: val_fraction: 0.9 of the dataset's 4 samples leaves no training sample; lower it, or give more "
            "data",
        ),
        (  # it trained one batch of 144 per epoch where optimize refused it
            {"batch_size": 4096},
            "batch_size: 4096 is larger than the 144 training samples; use a smaller batch_size or more data "
            "(data.subset_fraction, data.val_fraction)",
        ),
    ],
)
def test_train_checks_the_run_before_training_as_optimize_does(
    tmp_path: Path, run_dict: dict, change: dict, message: str
) -> None:
    run_path = write_yaml(tmp_path / "run.yaml", {**run_dict, **change})
    result = runner.invoke(app, ["train", "-r", str(run_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {run_path}: {message}") and result.stderr.count("\n") == 1


def test_load_model_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(HpoError, match="no such file"):
        load_model(tmp_path / "none.pt")
    for name, text in (("x.pt", b"not a checkpoint"), ("config.yaml", b"project: tiny\n")):
        (tmp_path / name).write_bytes(text)
        # was torch's page of a message, advising weights_only=False, after "not a model saved by hpotool"
        with pytest.raises(HpoError) as refused:
            load_model(tmp_path / name)
        assert str(refused.value) == (
            f"{tmp_path / name}: not a model saved by hpotool (not a PyTorch checkpoint); give the model.pt of "
            f"a run folder, or the folder, as hpotool train and train-from-best print it"
        )
    import torch

    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(HpoError, match="expected format 'hpotool-model/1'"):
        load_model(tmp_path / "plain.pt")


def test_unsafe_project_names_need_out(tmp_path: Path, run_dict: dict) -> None:
    run_dict["project"] = "../escape"
    run_path = tmp_path / "run.yaml"
    run_path.write_text(yaml.safe_dump(run_dict))
    result = runner.invoke(app, ["train", "-r", str(run_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {run_path}: project: '../escape' cannot name a folder under runs/"
    )


@pytest.mark.gpu
def test_a_model_trained_on_cuda_loads_on_the_cpu(tmp_path: Path, run_dict: dict) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--device", "cuda", "--out", "gpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    assert saved["device"].startswith("cuda")
    model, cfg, metrics = load_model(tmp_path / "gpu" / "model.pt")
    assert next(model.parameters()).device.type == "cpu" and metrics == saved["metrics"]
    data = load_data(cfg.data)
    evaluated = build_trainer(cfg, data, model).evaluate(data.val)
    assert evaluated["val_loss"] == pytest.approx(saved["metrics"]["val_loss"], rel=1e-4)


def test_a_saved_model_loads_without_its_dataset_module(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model is rebuilt from the shapes saved beside its weights: the data's code need not be there."""
    import importlib

    module = tmp_path / "lab_data_gone.py"
    module.write_text(
        "import torch\n\ndef points():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    return torch.randn(64, 3, generator=g), torch.arange(64) % 2\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dict["data"] = {"name": "lab_data_gone:points"}
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    module.unlink()  # the model goes to a machine without the training data's code
    monkeypatch.delitem(sys.modules, "lab_data_gone")
    importlib.invalidate_caches()
    model, cfg, _ = load_model(tmp_path / "out" / "model.pt")
    assert cfg.data.name == "lab_data_gone:points" and model(torch.zeros(2, 3)).shape == (2, 2)


def test_loading_onto_a_device_this_machine_lacks_says_so(tmp_path: Path, run_dict: dict) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    with pytest.raises(HpoError) as refused:
        load_model(tmp_path / "run" / "model.pt", device="cuda")  # was: "not a model saved by hpotool"
    # it said "use device: auto or cpu", a config's spelling, to a Python call
    assert (
        str(refused.value) == "device='cuda': CUDA is not available here; give device='auto' or device='cpu'"
    )


def test_train_into_an_out_folder_holding_a_folder_named_as_a_run_file_names_that_folder(
    tmp_path: Path, run_dict: dict
) -> None:
    """`train --out mine` where mine/metrics.json is a folder said 'mine: already holds a saved run
    (metrics.json)', which it does not: the line names the folder in the way, as train-from-best's does."""
    run_path = write_yaml(tmp_path / "run.yaml", {**run_dict, "epochs": 1})
    (tmp_path / "mine" / "metrics.json").mkdir(parents=True)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "mine"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: mine/metrics.json: is a folder, not the file a run saves there; move it away, or choose another "
        "--out\n"
    )


def _staging_folders(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith(".hpotool-"))


def test_a_save_killed_midway_leaves_its_staging_folder_only_until_the_next_save(
    tmp_path: Path, run_dict: dict
) -> None:
    """`train --out` killed (SIGKILL) while it saved left its hidden staging folder `.hpotool-*.tmp` there
    for good; now the next save into the same place removes it, and never while its process lives."""
    import signal
    import time

    run_dict["epochs"] = 1
    saving = tmp_path / "saving"
    stalls = write_yaml(
        tmp_path / "stalls.yaml",
        {**run_dict, "model": {"name": "tests.helpers:StallsWhileSaved", "saving": str(saving)}},
    )
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    cmd = [sys.executable, "-m", "hpotool", "train", "-r", str(stalls), "--out", "out"]
    killed = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not saving.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert saving.exists(), "the run never reached its save"
        (left,) = _staging_folders(tmp_path)
        # its process lives: a save beside it leaves its staging folder alone
        other = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(tmp_path / "other")])
        assert other.exit_code == 0, other.output
        assert _staging_folders(tmp_path) == [left]
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL and _staging_folders(tmp_path) == [left]
    again = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    assert sorted(os.listdir(tmp_path)) == ["other", "out", "run.yaml", "saving", "stalls.yaml"]
    assert sorted(os.listdir(tmp_path / "out")) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]


@pytest.mark.parametrize("runs_exists", [False, True], ids=["no-runs-folder", "runs-project-folder"])
def test_a_run_killed_while_it_trains_leaves_no_empty_run_folder(
    tmp_path: Path, run_dict: dict, opt_dict: dict, runs_exists: bool
) -> None:
    """`train-from-best` killed outright (kill -9, the OOM killer) while it trained left an empty
    runs/<project>/<timestamp>/ (and runs/, runs/<project>), made before its first run trained; a `train`
    killed while it saved, an empty runs/<project>/<timestamp>/ beside its staging folder. Now the folder
    appears with its first run in it, in one rename; a kill leaves only a tagged staging folder, which the
    next save beside it removes."""

    training = tmp_path / "training"
    run_dict["model"] = {"name": "tests.helpers:SignalsTraining", "training": str(training)}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    opt_dict["n_trials"] = 1
    run_path, opt_path = (
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "o.yaml", opt_dict),
    )
    made = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"])
    assert made.exit_code == 0, made.output
    if runs_exists:
        (tmp_path / "runs" / "tiny").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    storage = opt_dict["storage"]
    cmd = [sys.executable, "-m", "hpotool", "train-from-best", "--study-name", "tiny", "--storage", storage]
    _kill_once_it_made([*cmd, "--epochs", "1000000"], tmp_path, env, training, "the run never trained")
    runs = tmp_path / "runs"
    left = sorted(str(p.relative_to(tmp_path)) for p in runs.rglob("*")) if runs.exists() else []
    assert left == (["runs/tiny"] if runs_exists else []), left
    # the same command trains and saves as before, its folder whole (in this process, whose cwd is tmp_path:
    # only the kill needs its own)
    again = runner.invoke(app, [*cmd[3:], "--epochs", "1"])
    assert again.exit_code == 0, again.output
    (folder,) = (runs / "tiny").iterdir()
    assert sorted(os.listdir(folder)) == ["summary.json", "trial0-seed0"]
    assert sorted(os.listdir(folder / "trial0-seed0")) == [
        "config.yaml",
        "history.csv",
        "metrics.json",
        "model.pt",
    ]


@pytest.mark.parametrize(
    ("there", "made_since"),
    [("", ""), ("", "runs"), ("", "runs/tiny"), ("runs", "runs/tiny")],
    ids=["nothing", "runs-made-since", "runs-tiny-made-since", "runs-then-runs-tiny"],
)
def test_train_killed_while_it_saves_leaves_no_empty_run_folder(
    tmp_path: Path, run_dict: dict, there: str, made_since: str
) -> None:
    """`train` (no --out) killed while it saved its run left an empty runs/tiny/<timestamp>/; now only the
    tagged staging folder is left, beside the outermost folder missing (`there`: the folders there were),
    and the next `train` removes it. It did only while that folder was still missing: once runs/ (or
    runs/tiny) was made since (by hand, or by a save that began before the kill), the next save looked
    only beside and inside the folders it staged, and the staging folder stayed for good."""

    run_dict["epochs"] = 1
    saving = tmp_path / "saving"
    stalls = write_yaml(
        tmp_path / "stalls.yaml",
        {**run_dict, "model": {"name": "tests.helpers:StallsWhileSaved", "saving": str(saving)}},
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    cmd = [sys.executable, "-m", "hpotool", "train", "-r", str(stalls)]
    if there:
        (tmp_path / there).mkdir(parents=True)
    _kill_once_it_made(cmd, tmp_path, env, saving, "the run never reached its save")
    assert not (tmp_path / "runs" / "tiny").exists()
    beside = tmp_path / there  # runs/ (or runs/tiny) staged whole, beside where it goes
    assert len(_staging_folders(beside)) == 1
    if made_since:
        (tmp_path / made_since).mkdir(parents=True, exist_ok=True)
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    # the next train, in this process (cwd: tmp_path): only the kill needs its own
    again = runner.invoke(app, ["train", "-r", str(run_path)])
    assert again.exit_code == 0, again.output
    assert _staging_folders(beside) == []
    (folder,) = (tmp_path / "runs" / "tiny").iterdir()
    assert sorted(os.listdir(folder)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]


def test_a_full_disk_names_the_fix_for_what_the_user_typed(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that filled while a run was saved said "choose another --out on another disk" to a user who
    had typed no --out (the run went to runs/<project>/<timestamp>); now that user is told to give one."""
    import hpotool.saved

    from .helpers import FullDisk

    monkeypatch.chdir(tmp_path)
    run_dict["epochs"] = 1
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    monkeypatch.setattr(hpotool.saved, "os", FullDisk())  # a run's files, once written, do not fit
    given = runner.invoke(app, ["train", "-r", str(run_path), "--out", "mine"])
    assert given.exit_code == 2, given.output
    assert given.stderr.strip("\n") == (
        "error: mine/model.pt: cannot write: No space left on device; the run was not saved: free some space, "
        "or choose another --out on another disk"
    )
    default = runner.invoke(app, ["train", "-r", str(run_path)])
    assert default.exit_code == 2, default.output
    line = default.stderr.strip("\n")
    assert line.startswith("error: runs/tiny/") and line.endswith(
        "/model.pt: cannot write: No space left on device; the run was not saved: free some space, or give "
        "--out a folder on another disk"
    ), line
    assert sorted(os.listdir(tmp_path)) == ["run.yaml"]


def test_train_from_best_names_its_folder_when_it_saves(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once run folders were no longer made before training (so a kill leaves none empty), `train-from-best`
    still chose runs/<project>/<timestamp> as it started: another process saving into runs/<project> in the
    same second meanwhile (a script starting the final runs of several studies at once) got this run and its
    summary.json put into its folder. Now the name is chosen at the first run's save, the next free one."""
    monkeypatch.chdir(tmp_path)
    run_dict["model"] = {"name": "tests.helpers:TakesRunFolders", "runs": "runs/tiny"}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    opt_dict["n_trials"] = 1
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "o.yaml", opt_dict)
    made = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"])
    assert made.exit_code == 0, made.output
    storage = opt_dict["storage"]
    (tmp_path / "armed").touch()  # the trials above took no folder; the final run's training does
    final = runner.invoke(
        app, ["train-from-best", "--study-name", "tiny", "--storage", storage, "--epochs", "2"]
    )
    assert final.exit_code == 0, final.output
    folders = {p.name: sorted(os.listdir(p)) for p in (tmp_path / "runs" / "tiny").iterdir()}
    ours = [name for name, files in folders.items() if files != ["other-run"]]
    assert len(ours) == 1 and folders[ours[0]] == ["summary.json", "trial0-seed0"], folders
    summary = json.loads((tmp_path / "runs" / "tiny" / ours[0] / "summary.json").read_text())
    assert summary["folder"] == str(Path("runs") / "tiny" / ours[0])


def _kill_once_it_made(cmd: list[str], cwd: Path, env: dict[str, str], signal_file: Path, never: str) -> None:
    """Run `cmd` and kill it outright (SIGKILL) once it has made `signal_file`; `never`: the failure where it
    ends or 300 s pass first."""
    import signal
    import time

    killed = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not signal_file.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert signal_file.exists(), never
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL


def test_a_run_folder_name_another_run_takes_before_the_save_moves_the_save_to_the_next_name(
    tmp_path: Path, run_dict: dict
) -> None:
    """Two runs of a project saved in the same second: the name `new_run_dir` picked was a folder another run
    saved into before this save made it. The save moved its files into that folder, over the other run's
    (no RunDirTaken, no retry); now it takes the next name and leaves the other run as it was."""
    from hpotool.run_folders import new_run_dir
    from hpotool.saved import train_and_save

    run_dict["epochs"] = 1
    cfg = load_run_config(write_yaml(tmp_path / "run.yaml", run_dict))
    other = load_run_config(write_yaml(tmp_path / "other.yaml", {**run_dict, "seed": 7}))
    runs = tmp_path / "runs" / "tiny"
    picked: list[Path] = []

    def folder() -> Path:  # as `hpotool train` names it; another run saves there first, once
        name = new_run_dir(runs)
        if not picked:
            train_and_save(other, name)  # a real save of a whole run, as another process's
        picked.append(name)
        return name

    run = train_and_save(cfg, folder)
    taken = picked[0]
    theirs = {p.name: p.read_bytes() for p in taken.iterdir()}
    assert json.loads(theirs["metrics.json"])["seed"] == 7  # the other run's, whole
    assert yaml.safe_load(theirs["config.yaml"])["seed"] == 7
    assert len(picked) == 2 and run.folder == picked[1] != taken
    assert sorted(os.listdir(run.folder)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]
    assert yaml.safe_load((run.folder / "config.yaml").read_text())["seed"] == 0
    assert sorted(p.name for p in runs.iterdir()) == sorted([taken.name, run.folder.name])


@pytest.mark.parametrize("project_folder", [True, False], ids=["runs-tiny-there", "runs-tiny-missing"])
def test_a_run_folder_name_another_run_takes_during_the_save_moves_the_save_to_the_next_name(
    tmp_path: Path, run_dict: dict, project_folder: bool
) -> None:
    """Another run saved into the name this save picked while this one wrote its files (RunDirTaken as the
    staging folder, or the runs/<project> staged whole, is renamed into place): the save goes to the next
    name, the other run's folder as it saved it."""
    from hpotool.run_folders import new_run_dir
    from hpotool.saved import train_and_save
    from tests.helpers import CallsWhileSaved

    run_dict["epochs"] = 1
    model = {"name": "tests.helpers:CallsWhileSaved"}
    cfg = load_run_config(write_yaml(tmp_path / "run.yaml", {**run_dict, "model": model}))
    other = load_run_config(write_yaml(tmp_path / "other.yaml", {**run_dict, "seed": 7}))
    runs = tmp_path / "runs" / "tiny"
    if project_folder:
        runs.mkdir(parents=True)
    picked: list[Path] = []

    def folder() -> Path:  # as `hpotool train` names it
        picked.append(new_run_dir(runs))
        return picked[-1]

    def save_another() -> None:  # a real save of a whole run, as another process's, into the name picked
        assert not picked[0].exists()  # this save's files are in its staging folder yet
        train_and_save(other, picked[0])

    CallsWhileSaved.hook = save_another
    try:
        run = train_and_save(cfg, folder)
    finally:
        CallsWhileSaved.hook = None
    taken = picked[0]
    assert len(picked) == 2 and run.folder == picked[1] != taken
    assert yaml.safe_load((taken / "config.yaml").read_text())["seed"] == 7
    assert json.loads((taken / "metrics.json").read_text())["seed"] == 7
    assert yaml.safe_load((run.folder / "config.yaml").read_text())["seed"] == 0
    assert sorted(p.name for p in runs.iterdir()) == sorted([taken.name, run.folder.name])  # no staging left
    assert [p.name for p in runs.parent.iterdir()] == ["tiny"] and _staging_folders(tmp_path) == []
    for saved in (taken, run.folder):
        assert sorted(os.listdir(saved)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]


def test_a_new_folder_of_runs_another_study_saved_into_first_moves_the_save_to_the_next_name(
    tmp_path: Path, run_dict: dict
) -> None:
    """`train-from-best` saves its first run into `runs/<project>/<timestamp>/trial<N>-seed<S>`, the new
    folder named as it saves: where another study's train-from-best had saved its own first run there (in
    the same second), this run went into that study's folder beside it (only its own subfolder was checked),
    and so did its summary.json; now the save takes the next name."""
    from hpotool.run_folders import new_run_dir
    from hpotool.saved import train_and_save

    run_dict["epochs"] = 1
    cfg = load_run_config(write_yaml(tmp_path / "run.yaml", run_dict))
    other = load_run_config(write_yaml(tmp_path / "other.yaml", {**run_dict, "seed": 7}))
    runs = tmp_path / "runs" / "tiny"
    picked: list[Path] = []

    def folder() -> Path:  # the new folder, as train-from-best names it; another study saves there first
        name = new_run_dir(runs)
        if not picked:
            train_and_save(other, name / "trial3-seed7")
        picked.append(name)
        return name

    run = train_and_save(cfg, folder, inside="trial0-seed0")  # as train-from-best saves its first run
    taken = picked[0]
    assert os.listdir(taken) == ["trial3-seed7"]  # the other study's folder as it saved it
    assert run.folder.parent != taken and run.folder.name == "trial0-seed0"
    assert sorted(os.listdir(run.folder)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]


def test_a_run_folder_this_process_cannot_write_is_refused_before_training(
    tmp_path: Path,
    run_dict: dict,
    opt_dict: dict,
    lock_read_only: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`train --out` (and `train-from-best --out`) below a read-only folder trained the whole run (all of
    train-from-best's first seed, after exporting) and only then said 'cannot write: Read-only file system;
    the run was not saved'. Now the folder is checked with the others before anything is trained or exported;
    without --out, so is runs/<project> in a folder this process cannot write."""
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    storage = opt_dict["storage"]
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}  # training it fails: it must not start
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    lock_read_only(read_only)
    trained = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(read_only / "run")])
    assert trained.exit_code == 2, trained.output
    assert trained.stderr == (
        f"error: {read_only / 'run'}: cannot save a run there: this process cannot write to {read_only}; "
        f"choose another --out, one you can write\n"
    )
    final = runner.invoke(
        app,
        ["train-from-best", "--study-name", "tiny", "--storage", storage, "--out", str(read_only / "final")],
    )
    assert final.exit_code == 2, final.output
    assert final.stderr == (
        f"error: {read_only / 'final' / f'trial{study.best_trial.number}-seed0'}: cannot save a run there: this "
        f"process cannot write to {read_only}; choose another --out, one you can write\n"
    )
    assert not (tmp_path / "studies" / "tiny").exists()  # not exported either
    monkeypatch.chdir(read_only)  # the default runs/<project>, made by the save, would be here
    default = runner.invoke(app, ["train", "-r", str(run_path)])
    assert default.exit_code == 2, default.output
    assert default.stderr == (
        f"error: runs/{run_dict['project']}: cannot save a run there: this process cannot write to {read_only}; "
        f"give --out a folder you can write\n"
    )


def test_the_readme_s_model_loading_and_scoring_code_runs_on_a_saved_run(
    tmp_path: Path, run_dict: dict
) -> None:
    """README said the demo's model, reloaded, scores 0.98329 on the validation split, as its metrics say,
    but not how to get that split (a newcomer scoring it on all of digits, or on a split of their own, got
    another number). Its two code blocks, run here as written on a run `train` saved, give the run's
    val_accuracy exactly."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Load the model back**") : readme.index("**The final run.**")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, section
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    assert runner.invoke(app, ["train", "-r", str(run_path), "--out", "run"]).exit_code == 0
    code = re.sub(r'load_model\("[^"]+"\)', 'load_model("run/model.pt")', blocks[0]) + blocks[1]
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert scope["accuracy"] == saved["val_accuracy"] == scope["metrics"]["val_accuracy"]


@pytest.mark.parametrize(("script_in", "cd"), [(".", "proj"), ("notebooks", "../proj")])
def test_a_saved_model_whose_class_python_cannot_import_tells_a_python_caller_to_use_sys_path(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch, script_in: str, cd: str
) -> None:
    """load_model from a script run in the folder above the project ended with "run hpotool from there (cd
    proj)", odd for a Python call that no hpotool command makes; the command's own line is unchanged (the
    catalogue's import-package-in-a-subfolder case). From a folder beside the project (a notebooks/ folder),
    the folder above the run folder that holds the package is named too: the line said only "run your script
    from the folder that holds lab_nets/"."""
    import importlib

    proj = tmp_path / "proj"
    (proj / "lab_nets").mkdir(parents=True)
    (proj / "lab_nets" / "__init__.py").write_text("")
    (proj / "lab_nets" / "nets.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
        "        self.f = nn.Linear(in_features, out_features)\n\n"
        "    def forward(self, x):\n        return self.f(x.flatten(1))\n"
    )
    run_dict["model"] = {"name": "lab_nets.nets:Net"}
    monkeypatch.chdir(proj)
    monkeypatch.syspath_prepend(str(proj))
    run_path = write_yaml(proj / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert load_model(proj / "out")[0].f.in_features == 64  # from the project's folder, it loads
    (tmp_path / script_in).mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / script_in)  # the user's script one folder above, or beside the project
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in (str(proj), "", os.getcwd())])
    for name in ("lab_nets", "lab_nets.nets"):
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    with pytest.raises(HpoError) as info:
        load_model(proj / "out" / "model.pt")
    assert str(info.value).endswith(
        "cannot import 'lab_nets.nets:Net': No module named 'lab_nets'; imports resolve from the current folder "
        f"and sys.path, and {proj} holds lab_nets: run your script from there (cd {cd}), or add that folder to "
        f"sys.path first (sys.path.insert(0, {str(proj)!r}))"
    ), str(info.value)


LAB_NET = (
    "from torch import nn\n\n\nclass Net(nn.Module):\n"
    "    def __init__(self, in_features, out_features, width=8):\n        super().__init__()\n"
    "        self.g = nn.Linear(in_features, width)\n        self.f = HEAD\n\n"
    "    def forward(self, x):\n        return self.f(self.g(x.flatten(1)))\n"
)


@pytest.mark.parametrize(
    ("changed", "says"),
    [
        (  # an argument renamed: the constructor's own TypeError, with a traceback
            LAB_NET.replace("width", "wide").replace("HEAD", "nn.Linear(wide, out_features)"),
            "model 'lab_changed.nets:Net' takes no argument 'width'",
        ),
        (  # a layer added: torch's many-line "Error(s) in loading state_dict", with a traceback
            LAB_NET.replace("HEAD", "nn.Sequential(nn.Linear(width, width), nn.Linear(width, out_features))"),
            "the saved weights do not fit lab_changed.nets:Net as its code builds it now (Missing key(s) in "
            'state_dict: "f.0.weight"',
        ),
    ],
)
def test_a_saved_model_whose_class_changed_since_is_refused_in_one_line(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch, changed: str, says: str
) -> None:
    """A user's model class edited after the run was saved (an argument renamed, a layer added) made
    load_model end in the constructor's TypeError or torch's many-line state_dict error, both with a
    traceback and no word of the file or of what to do."""
    import importlib

    (tmp_path / "lab_changed").mkdir()
    (tmp_path / "lab_changed" / "__init__.py").write_text("")
    nets = tmp_path / "lab_changed" / "nets.py"
    nets.write_text(LAB_NET.replace("HEAD", "nn.Linear(width, out_features)"))
    run_dict["model"] = {"name": "lab_changed.nets:Net", "width": 4}
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "out")[0].f.in_features == 4
    nets.write_text(changed)
    for name in ("lab_changed", "lab_changed.nets"):
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    with pytest.raises(HpoError) as info:
        load_model(tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{tmp_path / 'out' / 'model.pt'}: "), message
    assert says in message, message
    assert message.endswith(
        "its code changed since the run was saved: restore the code that trained it, or train the run again "
        f"(hpotool train --run-config {tmp_path / 'out' / 'config.yaml'})"
    ), message


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        (  # its __init__ raises: a file it reads is gone, say
            LAB_NET.replace("HEAD", "nn.Linear(width, out_features)").replace(
                "super().__init__()", "super().__init__()\n        raise RuntimeError('vocab.txt is gone')"
            ),
            "cannot build model lab_broken.nets:Net: RuntimeError: vocab.txt is gone (at lab_broken/nets.py:7 "
            "in __init__)",
        ),
        (  # its layers moved into a plain list, which hpotool refuses as training does
            LAB_NET.replace("self.f = HEAD", "self.f = [nn.Linear(width, out_features)]").replace(
                "self.f(", "self.f[0]("
            ),
            "model: Net keeps its Linear layers in a plain list, self.f, which torch does not register",
        ),
    ],
)
def test_a_saved_model_whose_class_raises_as_it_is_built_is_refused_in_one_line(
    tmp_path: Path, run_dict: dict, monkeypatch: pytest.MonkeyPatch, broken: str, says: str
) -> None:
    """A user's model class whose __init__ raised as load_model built it (a file it reads gone), or that
    hpotool's checks refuse (its layers in a plain list), ended the caller's script in that exception's
    traceback, naming neither the run nor the class. The user's exception stays chained to the error, for
    Python's traceback to show."""
    import importlib

    (tmp_path / "lab_broken").mkdir()
    (tmp_path / "lab_broken" / "__init__.py").write_text("")
    nets = tmp_path / "lab_broken" / "nets.py"
    nets.write_text(LAB_NET.replace("HEAD", "nn.Linear(width, out_features)"))
    run_dict["model"] = {"name": "lab_broken.nets:Net", "width": 4}
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    nets.write_text(broken)
    for name in ("lab_broken", "lab_broken.nets"):
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    with pytest.raises(HpoError) as info:
        load_model("out")
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{Path('out') / 'model.pt'}: {says}"), message
    if "RuntimeError" in says:
        assert isinstance(info.value.__cause__, RuntimeError), info.value.__cause__
    else:
        assert message.endswith(
            "its code changed since the run was saved: restore the code that trained it, "
            "or train the run again (hpotool train --run-config out/config.yaml)"
        ), message


@pytest.mark.parametrize("keep", [0, 2000])
def test_a_model_file_cut_short_is_not_called_another_file(tmp_path: Path, run_dict: dict, keep: int) -> None:
    """A model.pt cut short (a copy stopped part-way, a full disk while copying) was "not a model saved by
    hpotool (OSError: [Errno 22] Invalid argument)", or "(EOFError)" where empty: as if the user had given the
    wrong file, though it is the right one, damaged."""
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    model_pt = tmp_path / "out" / "model.pt"
    model_pt.write_bytes(model_pt.read_bytes()[:keep])
    with pytest.raises(HpoError) as refused:
        load_model(tmp_path / "out")
    message = str(refused.value)
    assert "not a model saved by hpotool" not in message and "\n" not in message, message
    assert message.startswith(f"{model_pt}: cut short or damaged ("), message
    assert message.endswith(
        f"); copy the run folder again from where it was saved, or train the run again (hpotool train "
        f"--run-config {tmp_path / 'out' / 'config.yaml'})"
    ), message


@pytest.mark.parametrize(("device", "shown"), [("gpu", "gpu"), ("cpu:0", "cpu:0"), ("", '""')])
def test_load_model_refuses_a_device_hpotool_does_not_take_in_one_line(
    tmp_path: Path, run_dict: dict, device: str, shown: str
) -> None:
    """`load_model(path, device="gpu")` ended in torch's RuntimeError listing its 20 device types, and
    `device="cpu:0"` in one blamed on the file; train takes auto, cpu, cuda, cuda:N and mps, and so does it."""
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    result = runner.invoke(app, ["train", "-r", str(run_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with pytest.raises(HpoError) as refused:
        load_model(tmp_path / "out", device=device)
    assert str(refused.value) == f"device: must be auto, cpu, cuda, cuda:N or mps, got {shown}"


def test_load_model_of_a_train_from_best_folder_names_its_runs(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train-from-best prints `summary: final/summary.json`; load_model("final") said only "final/model.pt: no
    such file", not that the folder holds one run per trial and seed, each loadable."""
    monkeypatch.chdir(tmp_path)
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    result = runner.invoke(app, [*cmd, "--seeds", "2"])
    assert result.exit_code == 0, result.output
    with pytest.raises(HpoError) as refused:
        load_model("final")
    assert str(refused.value) == (
        f"final: holds the runs train-from-best saved (trial{best}-seed0, trial{best}-seed1), not one run; "
        f"give one of them: load_model('final/trial{best}-seed0') (trial {best} ranks first in summary.json)"
    )
    assert load_model(f"final/trial{best}-seed1")[2] is not None


def test_load_model_of_a_train_from_best_folder_names_its_runs_in_number_order(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs were sorted as strings: of 11 seeds, trial0-seed10 was named before trial0-seed2."""
    monkeypatch.chdir(tmp_path)
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    result = runner.invoke(app, [*cmd, "--seeds", "11", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    with pytest.raises(HpoError) as refused:
        load_model("final")
    shown = ", ".join(f"trial{best}-seed{s}" for s in range(4))
    assert str(refused.value) == (
        f"final: holds the runs train-from-best saved ({shown}, ...), not one run; "
        f"give one of them: load_model('final/trial{best}-seed0') (trial {best} ranks first in summary.json)"
    )


def test_load_model_of_a_train_from_best_folder_gives_the_run_of_the_trial_ranked_first(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of --top-k 3, load_model("final") gave the first run listed, of the lowest trial number, as the one to
    load: here the trial ranked last. It gives the first run of the trial summary.json ranks first; without
    a summary.json (the command stopped before it wrote one), the first listed."""
    monkeypatch.chdir(tmp_path)
    run_tiny_study(tmp_path, run_dict, opt_dict)
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    result = runner.invoke(app, [*cmd, "--top-k", "3"])
    assert result.exit_code == 0, result.output
    ranked = [c["trial_number"] for c in json.loads(Path("final/summary.json").read_text())["candidates"]]
    assert ranked[0] != min(ranked), ranked  # else the test would not tell the two apart
    listed = ", ".join(f"trial{n}-seed0" for n in sorted(ranked))
    with pytest.raises(HpoError) as refused:
        load_model("final")
    assert str(refused.value) == (
        f"final: holds the runs train-from-best saved ({listed}), not one run; give one of them: "
        f"load_model('final/trial{ranked[0]}-seed0') (trial {ranked[0]} ranks first in summary.json)"
    )
    Path("final/summary.json").unlink()
    with pytest.raises(HpoError) as refused:
        load_model("final")
    assert str(refused.value) == (
        f"final: holds the runs train-from-best saved ({listed}), not one run; give one of them: "
        f"load_model('final/trial{min(ranked)}-seed0')"
    )


def test_load_model_of_a_folder_of_runs_names_them_and_of_a_folder_without_one_says_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_model("runs/tiny"), the folder train prints its runs in, said the runs in it were "the runs
    train-from-best saved" (train's) and left out those of train-from-best's folders in it; load_model of the
    export folder studies/tiny said "studies/tiny/model.pt: no such file", as if a file were missing."""
    monkeypatch.chdir(tmp_path)
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    storage = ["--storage", opt_dict["storage"]]
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", *storage, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["train", "-r", "run.yaml", "--epochs", "1"]).exit_code == 0
    folders = list((tmp_path / "runs" / "tiny").iterdir())
    (single,) = [p.name for p in folders if (p / "model.pt").is_file()]
    (final,) = [p.name for p in folders if (p / "summary.json").is_file()]
    with pytest.raises(HpoError) as refused:
        load_model(Path("runs") / "tiny")
    found = re.fullmatch(
        rf"{re.escape(str(Path('runs') / 'tiny'))}: holds saved runs \((.*)\), not one run; give one of them: "
        r"load_model\('(.*)'\)",
        str(refused.value),
    )
    assert found is not None, str(refused.value)
    runs = found[1].split(", ")
    assert sorted(runs) == sorted([single, f"{final}/trial{best}-seed0"]), runs
    assert found[2] == str(Path("runs") / "tiny" / runs[0])
    assert load_model(found[2])[2] is not None
    with pytest.raises(HpoError) as refused:
        load_model(Path("studies") / "tiny")
    assert str(refused.value) == (
        f"{Path('studies') / 'tiny'}: holds no saved run, nor do the folders in it; give a run folder, or its "
        "model.pt, as hpotool train and train-from-best print it"
    )
