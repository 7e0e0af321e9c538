from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.config import OptimizeConfig
from hpotool.config_files import load_run_config
from hpotool.errors import HpoError
from hpotool.final_plan import plan_final
from hpotool.optimize_sections import FinalConfig

from .conftest import write_configs, write_yaml
from .helpers import LockedOnOddSeeds
from .tiny_study import run_tiny_study

runner = CliRunner()


def _train_from_best(storage: str, *args: str) -> Any:
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", storage, "--out", "final", *args]
    return runner.invoke(app, cmd, catch_exceptions=False)


def test_train_from_best_with_two_seeds(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    best = study.best_trial
    result = _train_from_best(opt_dict["storage"], "--seeds", "2")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "final"
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert runs == [f"trial{best.number}-seed0", f"trial{best.number}-seed1"]
    assert (tmp_path / "studies" / "tiny" / "best_run.yaml").exists()  # export-best ran first
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["folder"] == "final" and summary["export"] == "studies/tiny"
    (candidate,) = summary["candidates"]
    values = [r["metrics"]["val_accuracy"] for r in candidate["runs"]]
    assert [r["seed"] for r in candidate["runs"]] == [0, 1]
    # Seed 0 with the trial's epochs is the trial itself, retrained.
    assert values[0] == best.value
    assert candidate["mean"] == pytest.approx(statistics.fmean(values))
    assert candidate["std"] == pytest.approx(statistics.stdev(values))
    for r in candidate["runs"]:
        saved = json.loads((Path(r["folder"]) / "metrics.json").read_text())
        assert saved["metrics"] == r["metrics"] and saved["trial_number"] == best.number
    assert load_run_config(folder / f"trial{best.number}-seed1" / "config.yaml").seed == 1
    assert "ranked by mean val_accuracy (maximize)" in result.stdout


def test_the_final_runs_title_counts_one_epoch_in_the_singular(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # "final runs (1 epochs)": the one count formatting.counted did not spell yet
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = _train_from_best(opt_dict["storage"], "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "final runs (1 epoch)" in result.stdout and "1 epochs" not in result.stdout


def test_train_from_best_trains_as_the_latest_run_of_optimize_says(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`final:` edited in the optimize config and the study run again (nothing left to run, or more trials)
    was accepted and ignored: train-from-best trained as the config that created the study said."""
    best = run_tiny_study(tmp_path, run_dict, {**opt_dict, "final": {"epochs": 3}}).best_trial.number
    run_tiny_study(tmp_path, run_dict, {**opt_dict, "final": {"epochs": 1, "seeds": 2}})
    result = _train_from_best(opt_dict["storage"])
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "final" / "summary.json").read_text())["candidates"][0]["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert load_run_config(tmp_path / "final" / f"trial{best}-seed0" / "config.yaml").epochs == 1


def test_train_from_best_again_trains_only_the_runs_not_saved_completely(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    assert _train_from_best(opt_dict["storage"], "--seeds", "2").exit_code == 0
    folder = tmp_path / "final"
    first = json.loads((folder / "summary.json").read_text())["candidates"][0]["runs"][0]
    (folder / f"trial{best}-seed1" / "config.yaml").unlink()  # killed while it saved: config.yaml is last
    (folder / "summary.json").unlink()
    again = _train_from_best(opt_dict["storage"], "--seeds", "2")
    assert again.exit_code == 0, again.output
    assert f"note: already saved in final, not trained again: trial{best}-seed0\n" in again.stderr
    assert f"trial {best} seed 0:" not in again.stderr and f"trial {best} seed 1:" in again.stderr
    (candidate,) = json.loads((folder / "summary.json").read_text())["candidates"]
    assert candidate["runs"][0] == first and len(candidate["runs"]) == 2
    assert load_run_config(folder / f"trial{best}-seed1" / "config.yaml").seed == 1
    shutil.rmtree(tmp_path / "studies" / "tiny")
    other = _train_from_best(opt_dict["storage"], "--seeds", "2", "--epochs", "1")  # other flags: refused
    assert other.exit_code == 2
    assert other.stderr.startswith(
        f"error: final/trial{best}-seed0: already holds a saved run of another config (epochs: "
    )
    assert other.stderr.endswith(" saved, 1 now); choose another --out\n")
    assert not (tmp_path / "studies" / "tiny").exists()  # before the export was written


def test_an_out_folder_below_a_file_is_refused_before_the_export(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_tiny_study(tmp_path, run_dict, opt_dict)
    (tmp_path / "afile").write_text("mine\n")
    cmd = [
        "train-from-best",
        "--study-name",
        "tiny",
        "--storage",
        opt_dict["storage"],
        "--out",
        "afile/final",
    ]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2
    assert "afile is a file, not a folder; choose another --out" in result.stderr
    assert not (tmp_path / "studies" / "tiny").exists()  # nothing exported, nothing trained


def test_a_run_that_cannot_start_is_refused_before_the_export_and_the_run_folder(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run_tiny_study(tmp_path, run_dict, opt_dict)
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--device", "cuda"]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2
    # the flag is named, and so is the fix: "use device: auto or cpu" sent users to a config the flag overrides
    assert result.stderr == "error: --device cuda: CUDA is not available here; give --device auto or cpu\n"
    assert not (tmp_path / "studies" / "tiny").exists() and not (tmp_path / "runs").exists()
    # the study's own device (it ran on a GPU machine): the trial, and the flag that picks another
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    study.set_user_attr("run_config", {**study.user_attrs["run_config"], "device": "cuda"})
    result = runner.invoke(app, cmd[:-2])
    assert result.exit_code == 2 and result.stderr == (
        f"error: tiny trial {study.best_trial.number}: device: cuda was asked for but CUDA is not available "
        "here; give --device auto (or cpu) to train it here\n"
    )
    assert not (tmp_path / "studies" / "tiny").exists() and not (tmp_path / "runs").exists()


def test_a_study_trained_on_a_device_this_machine_lacks_is_retrained_here_with_device(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A study run on a GPU machine, retrained on one without: the refusal said 'use device: auto or cpu',
    naming neither the study nor a file to edit (the config is stored in the study); the fix is --device."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    study.set_user_attr("run_config", {**study.user_attrs["run_config"], "device": "cuda"})
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2
    best = study.best_trial.number
    assert result.stderr == (
        f"error: tiny trial {best}: device: cuda was asked for but CUDA is not available here; give --device auto "
        f"(or cpu) to train it here\n"
    )
    assert runner.invoke(app, [*cmd, "--device", "auto"]).exit_code == 0


def test_a_first_run_that_fails_leaves_no_empty_run_folder(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    run_tiny_study(tmp_path, run_dict, opt_dict)
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    opt = dict(study.user_attrs["optimize_config"]) | {"final": {"overrides": {"optimizer.lr": 1e30}}}
    study.set_user_attr("optimize_config", opt)  # a final lr that diverges
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2 and "training diverged" in result.stderr
    assert not (tmp_path / "runs").exists()  # runs/tiny/<timestamp>, and runs/tiny and runs it made, are gone


def test_a_run_whose_save_fails_is_not_left_half_written_and_summary_json_not_written(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that failed part-way (here the second seed's model, which torch.save cannot pickle) left that
    run's folder behind, with a traceback. Now nothing of that run is written, the run saved before stays
    whole, summary.json is not written, and the same command with a model that saves trains the rest."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # tests.helpers: a user's model
    run_dict["model"] = {"name": "tests.helpers:LockedOnOddSeeds"}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    result = runner.invoke(app, [*cmd, "--seeds", "2"])
    first = tmp_path / "final" / f"trial{best}-seed0"
    assert sorted(os.listdir(tmp_path / "final")) == [first.name]  # no trial-seed1, no summary.json
    assert sorted(os.listdir(first)) == ["config.yaml", "history.csv", "metrics.json", "model.pt"]
    assert result.exit_code == 2, result.output
    assert result.stderr.endswith(
        f"\nerror: tiny trial {best} seed 1: final/trial{best}-seed1/model.pt: cannot save the model: "
        "TypeError: cannot pickle '_thread.lock' object; the run was not saved: make "
        "tests.helpers:LockedOnOddSeeds's state_dict() hold only tensors and values pickle can save; 1 of 2 "
        "runs saved in final (summary.json not written); the same command trains only the rest\n"
    )
    default = runner.invoke(app, [*cmd[:-2], "--seeds", "2"])  # no --out: runs/tiny/<timestamp>
    assert default.exit_code == 2, default.output
    (made,) = (tmp_path / "runs" / "tiny").iterdir()
    assert os.listdir(made) == [first.name]
    assert default.stderr.endswith(
        f"; 1 of 2 runs saved in runs/tiny/{made.name} (summary.json not written); the same command with "
        f"--out runs/tiny/{made.name} trains only the rest\n"
    )
    # the user fixes the model's code (same name, same config): the same command trains the rest
    monkeypatch.setattr(LockedOnOddSeeds, "get_extra_state", lambda self: None)
    again = _train_from_best(opt_dict["storage"], "--seeds", "2")
    assert again.exit_code == 0, again.output
    assert f"not trained again: trial{best}-seed0\n" in again.stderr
    runs = json.loads((tmp_path / "final" / "summary.json").read_text())["candidates"][0]["runs"]
    assert [r["seed"] for r in runs] == [0, 1]


def test_a_folder_named_as_a_run_file_is_refused_before_anything_is_trained(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A folder named metrics.json in a run folder was found only when that run was saved, after training
    (and left model.pt beside it); now it is refused before the export and the first run."""
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    second = tmp_path / "final" / f"trial{best}-seed1"
    (second / "metrics.json").mkdir(parents=True)
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", "final"]
    result = runner.invoke(app, [*cmd, "--seeds", "2"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: final/trial{best}-seed1/metrics.json: is a folder, not the file a run saves there; move it "
        "away, or choose another --out\n"
    )
    assert os.listdir(tmp_path / "final") == [second.name] and os.listdir(second) == ["metrics.json"]
    assert not (tmp_path / "studies" / "tiny").exists()  # before the export


def test_a_plain_multi_objective_study_is_refused_as_plain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[1.0, 2.0]))
    result = runner.invoke(app, ["train-from-best", "--study-name", "mo", "--storage", url])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: study 'mo' has no stored run config (user attr 'run_config')")
    assert "best_run_<trial>.yaml" not in result.stderr  # export-best writes none for it


def test_final_rules_from_the_study_and_flags_over_them(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["final"] = {"epochs": 3, "seeds": 2, "overrides": {"data": {"subset_fraction": 0.2}}}
    opt_dict["n_trials"] = 2
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    plan = plan_final(study)
    assert plan.seeds == 2 and plan.rules == FinalConfig(
        epochs=3, seeds=2, overrides={"data.subset_fraction": 0.2}
    )
    (candidate,) = plan.candidates
    assert candidate.config.epochs == 3 and candidate.config.data.subset_fraction == 0.2
    assert candidate.config.optimizer.lr == study.best_trial.params["optimizer.lr"]

    result = _train_from_best(opt_dict["storage"], "--epochs", "1", "--seeds", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "final" / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["seeds"] == 1
    (run,) = summary["candidates"][0]["runs"]
    config = load_run_config(Path(run["folder"]) / "config.yaml")
    assert config.epochs == 1 and config.data.subset_fraction == 0.2


def test_an_epochs_flag_the_trials_warm_up_does_not_fit_names_the_flag_not_final(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`--epochs 1` on a study with a one-epoch warm-up said `study 'tiny': final: with epochs=1: ...`, as
    if the study's final: section were wrong; the study has none here, and final.epochs: 3 is fine."""
    run_dict["scheduler"] = {"name": "cosine", "warmup_epochs": 1}
    opt_dict["n_trials"] = 1
    opt_dict["final"] = {"epochs": 3}
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    warm_up = (
        "scheduler.warmup_epochs: 1 is not shorter than the run (epochs: 1), so the 'cosine' schedule would never "
        "start; use at most 0, or more epochs"
    )
    result = runner.invoke(
        app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--epochs", "1"]
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: study 'tiny': --epochs 1: {warm_up}\n"
    with pytest.raises(HpoError) as err:
        plan_final(study, epochs=1, device="cpu")
    assert str(err.value) == f"study 'tiny': --epochs 1 --device cpu: {warm_up}"
    assert plan_final(study, epochs=2).candidates[0].config.epochs == 2


def test_a_device_flag_out_of_its_choices_names_the_flag_once(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`train-from-best --device gpu` said `--device gpu: device: must be ...`, the key after the flag."""
    opt_dict["n_trials"] = 1
    run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(
        app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--device", "gpu"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'tiny': --device gpu: must be auto, cpu, cuda, cuda:N or mps, got gpu\n"
    )


def test_top_k_retrains_and_ranks_by_mean(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    result = _train_from_best(opt_dict["storage"], "--top-k", "2", "--seeds", "2", "--epochs", "3")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "final" / "summary.json").read_text())
    ranked = summary["candidates"]
    assert [c["rank"] for c in ranked] == [1, 2]
    assert ranked[0]["mean"] >= ranked[1]["mean"]  # maximize: best mean first
    top_two = sorted(study.trials, key=lambda t: -t.value)[:2]
    assert {c["trial_number"] for c in ranked} == {t.number for t in top_two}
    assert all(len(c["runs"]) == 2 for c in ranked)
    assert len([p for p in (tmp_path / "final").iterdir() if p.is_dir()]) == 4


def _plan(tmp_path: Path, run_dict: dict, opt_dict: dict, **settings: Any) -> Any:
    """prepare_study on run_dict and opt_dict with `settings` (final:, search_space:) set."""
    from hpotool.plan import prepare_study

    return prepare_study(*write_configs(tmp_path, run_dict, {**opt_dict, **settings}))


def _refusal(tmp_path: Path, run_dict: dict, opt_dict: dict, **settings: Any) -> str:
    """What prepare_study says, refusing opt_dict with `settings` set."""
    with pytest.raises(HpoError) as err:
        _plan(tmp_path, run_dict, opt_dict, **settings)
    return str(err.value)


def test_bad_final_overrides_fail_before_the_study_starts(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    cases = [
        (
            {"overrides": {"data.subset_fractoin": 1.0}},
            "final.overrides.data.subset_fractoin: the run config has no such key; did you mean 'data.subset_fraction'",
        ),
        (
            {"overrides": {"data.subset_fraction": 2.0}},
            "final.overrides: with data.subset_fraction=2.0: data.subset_fraction: must be 1 or less",
        ),
        (
            {"epochs": 3, "overrides": {"epochs": 5}},
            "final: epochs is given both as final.epochs and in final.overrides",
        ),
        ({"seeds": 0}, "final.seeds: must be 1 or more"),
        (  # a value the model refuses as it is built: found now, not by train-from-best after the study
            {"overrides": {"model.dropout": 1.5}},
            "final.overrides: with model.dropout=1.5: dropout must be from 0 up to but not including 1, got 1.5; give a value such as 0.1 (0: no dropout)",
        ),
        (
            {"overrides": {"optimizer.lr": 0.01, "optimizer.betas": [0.9, 1.5]}},
            "final.overrides: with optimizer.lr=0.01, optimizer.betas=[0.9, 1.5]: ValueError: Invalid beta "
            "parameter at index 1: 1.5",
        ),
        (
            {"epoch": 3},
            "final: unknown key 'epoch' (did you mean 'epochs'?); valid keys: epochs, seeds, overrides",
        ),
        (  # train-from-best trained it, as train did, one short batch per epoch
            {"overrides": {"batch_size": 4096}},
            "optimize.yaml: final.overrides.batch_size: 4096 is larger than the 144 training samples",
        ),
        (  # against the data the final runs train on, not the study's: train-from-best alone refused it
            {"overrides": {"data.subset_fraction": 0.02}},
            "optimize.yaml: final.overrides: with data.subset_fraction=0.02: batch_size: 32 is larger than the "
            "29 training samples",
        ),
        (
            {"overrides": {"batch_size": 64, "data.subset_fraction": 0.03}},
            "optimize.yaml: final.overrides: with data.subset_fraction=0.03: batch_size: 64 is larger than the "
            "43 training samples",
        ),
        (  # the arguments of a component the overrides switch to: left out here, refused by train-from-best
            {"overrides": {"scheduler.name": "step", "scheduler.step_size": 0}},
            "optimize.yaml: final.overrides: with scheduler.name=step, scheduler.step_size=0: "
            "step_size must be at least 1 (the epochs between decays), got 0",
        ),
        (
            {"overrides": {"optimizer.name": "sgd", "optimizer.momentum": -1}},
            "optimize.yaml: final.overrides: with optimizer.name=sgd, optimizer.momentum=-1: ValueError: Invalid "
            "momentum value: -1",
        ),
    ]
    for final, message in cases:
        said = _refusal(tmp_path, run_dict, opt_dict, final=final)
        assert message in said, said
    assert not (tmp_path / "studies").exists()


def test_an_epochs_flag_a_step_schedule_cannot_span_names_the_flag(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`--epochs 2` under a step schedule of step_size 3 read `tiny trial 0: scheduler: ValueError: ...`,
    as if the trial were broken; the trial's own 4 epochs are fine, so the error names the flag."""
    run_dict.update(epochs=4, scheduler={"name": "step", "step_size": 3})
    opt_dict["n_trials"] = 1
    run_tiny_study(tmp_path, run_dict, opt_dict)
    args = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    result = runner.invoke(app, [*args, "--epochs", "2", "--out", str(tmp_path / "final")])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: tiny trial 0: --epochs 2: scheduler: step_size 3 is not shorter than the 2 epochs "
        "the schedule runs, so the lr would never decay; use at most 1, or more epochs\n"
    )
    assert not (tmp_path / "final").exists()


def test_final_epochs_a_schedule_cannot_span_fail_before_the_study_starts(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """final.epochs: 2 under a step schedule of step_size 3: the study ran, and train-from-best refused the
    final runs afterwards (the check before trial 0 built the schedule only for final.overrides)."""
    run_dict.update(epochs=4, scheduler={"name": "step", "step_size": 3})
    assert _refusal(tmp_path, run_dict, opt_dict, final={"epochs": 2}) == (
        f"{tmp_path / 'optimize.yaml'}: final: with epochs=2: step_size 3 is not shorter than "
        "the 2 epochs the schedule runs, so the lr would never decay; use at most 1, or more epochs"
    )
    _plan(tmp_path, run_dict, opt_dict, final={"epochs": 8})


def test_final_epochs_the_warm_up_does_not_fit_fail_before_the_study_starts(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """final.epochs: 1 with a one-epoch warm-up: optimize ran the whole study, and train-from-best refused it
    afterwards (`final: with epochs=1: scheduler.warmup_epochs: 1 is not shorter than the run`)."""
    run_dict["scheduler"] = {"name": "cosine", "warmup_epochs": 1}
    assert _refusal(tmp_path, run_dict, opt_dict, final={"epochs": 1}) == (
        f"{tmp_path / 'optimize.yaml'}: final: with epochs=1: scheduler.warmup_epochs: 1 is not shorter than "
        "the run (epochs: 1), so the 'cosine' schedule would never start; use at most 0, or more epochs"
    )
    _plan(tmp_path, run_dict, opt_dict, final={"epochs": 2})
    # the trials' warm-up is their own, which the base's does not tell: each is checked by train-from-best
    space = {**opt_dict["search_space"], "scheduler.warmup_epochs": {"type": "categorical", "choices": [0]}}
    _plan(tmp_path, run_dict, opt_dict, search_space=space, final={"epochs": 1})
    # whole schedules as choices replace the base's, warm-up and all (it refused this too)
    space = {"scheduler": {"type": "categorical", "choices": [{"name": "none"}, {"name": "cosine"}]}}
    _plan(tmp_path, run_dict, opt_dict, search_space=space, final={"epochs": 1})
    assert not (tmp_path / "studies").exists()


def test_both_override_spellings_mean_the_same() -> None:
    nested = FinalConfig.model_validate(
        {"overrides": {"data": {"subset_fraction": 1.0}, "model.hidden.0": 64}}
    )
    dotted = FinalConfig.model_validate({"overrides": {"data.subset_fraction": 1.0, "model.hidden.0": 64}})
    assert nested == dotted
    assert (
        OptimizeConfig.model_validate(
            {"study_name": "s", "search_space": {"optimizer.lr": {"type": "float", "low": 0.1, "high": 1}}}
        ).final
        == FinalConfig()
    )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_train_from_best_refuses_multi_objective_and_missing_studies(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'multi.db'}"
    study = optuna.create_study(study_name="tiny", storage=storage, directions=["minimize", "maximize"])
    study.set_user_attr("run_config", {})  # made by hpotool optimize: its Pareto trials have run configs
    study.add_trial(
        optuna.trial.create_trial(values=[0.5, 0.9])
    )  # a front to pick from (none: no_best_error)
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", "--storage", storage])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'tiny' has 2 objectives, so no one best trial to train: give --trial N with the trial "
        f"you pick from its Pareto front (trial 0; hpotool trials --study-name tiny --storage {storage} "
        "lists it first)\n"
    )
    result = runner.invoke(app, ["train-from-best", "--study-name", "other", "--storage", storage])
    assert result.exit_code == 2
    assert result.stderr == f"error: no study 'other' in {storage}; studies there: tiny\n"
    assert not (tmp_path / "studies").exists() and not (tmp_path / "runs").exists()


def test_top_k_beyond_the_trials_that_meet_the_constraints_says_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["constraints"] = ["n_params <= 1000"]  # hidden 8: 610 parameters; 24 and 32: over 1000
    opt_dict["enqueue"] = [{"optimizer.lr": 0.01, "model.hidden.0": h} for h in (8, 32, 24)]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    assert [t.user_attrs["feasible"] for t in study.trials] == [True, False, False]
    result = _train_from_best(opt_dict["storage"], "--top-k", "3", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert (
        "note: the study has only 1 complete trial that meets its constraints (of 3); retraining it"
        in result.stderr
    )
    # Its line showed the run's val_* metrics: here val_loss and val_accuracy, the study's metric
    assert re.search(r"^trial 0 seed 0: val_loss=\S+ val_accuracy=\S+ ", result.stderr, re.M), result.stderr


def test_a_final_runs_line_shows_the_studys_own_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training function's own metric (`top@5`, no val_ prefix): each final run's line showed the val_*
    metrics only, so not the metric the runs are ranked by."""
    import yaml

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # tests.trainers imports from the repository
    run = {"project": "u", "epochs": 2, "trainer": {"function": "tests.trainers:names_metrics_freely"}}
    storage = f"sqlite:///{tmp_path / 'own.db'}"
    opt = {
        "study_name": "tiny",
        "storage": storage,
        "n_trials": 1,
        "metric": "top@5",
        "direction": "maximize",
        "search_space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    result = runner.invoke(
        app, ["optimize", "-r", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "opt.yaml")]
    )
    assert result.exit_code == 0, result.output
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", storage, "--out", str(tmp_path / "final")]
    result = runner.invoke(app, cmd, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"^trial 0 seed 0: val_loss=0\.5 top@5=0\.7 ", result.stderr, re.M), result.stderr


@pytest.mark.parametrize(
    "searched",
    [
        {"optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]}},
        {
            "optimizer": {
                "type": "categorical",
                "choices": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam", "lr": 0.001}],
            }
        },
    ],
    ids=["name", "section"],
)
def test_a_final_override_the_best_trials_component_takes_not_is_left_out_with_a_note(
    tmp_path: Path, run_dict: dict, opt_dict: dict, searched: dict
) -> None:
    adam = (
        {"optimizer.name": "adam"}
        if "optimizer.name" in searched
        else {"optimizer": {"name": "adam", "lr": 0.001}}
    )
    opt_dict.update(search_space=searched, n_trials=1, enqueue=[adam])
    opt_dict["final"] = {"epochs": 1, "overrides": {"optimizer.momentum": 0.5, "batch_size": 16}}
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    plan = plan_final(study)
    (candidate,) = plan.candidates
    assert candidate.config.optimizer.name == "adam" and candidate.config.batch_size == 16
    assert plan.notes == [
        "final.overrides.optimizer.momentum left out: the best trial's optimizer adam takes no momentum"
    ]
    result = _train_from_best(opt_dict["storage"])
    assert result.exit_code == 0, result.output
    assert (
        "note: final.overrides.optimizer.momentum left out: the best trial's optimizer adam takes no momentum"
        in result.output
    )


def test_a_final_override_of_the_component_takes_its_arguments_with_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """final.overrides {optimizer.name: sgd, optimizer.momentum: 0.5} trains sgd at momentum 0.5 whichever
    optimizer the best trial chose (the momentum is sgd's, not adam's)."""
    opt_dict["search_space"] = {"optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]}}
    opt_dict.update(n_trials=1, enqueue=[{"optimizer.name": "adam"}])
    opt_dict["final"] = {"overrides": {"optimizer.name": "sgd", "optimizer.momentum": 0.5}}
    plan = plan_final(run_tiny_study(tmp_path, run_dict, opt_dict))
    (candidate,) = plan.candidates
    assert candidate.config.optimizer.name == "sgd" and candidate.config.optimizer.model_extra == {
        "momentum": 0.5
    }
    assert plan.notes == []


def test_a_final_override_no_choice_takes_is_refused_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    from hpotool.plan import prepare_study

    opt_dict["search_space"] = {"optimizer.name": {"type": "categorical", "choices": ["adam", "adamw"]}}
    opt_dict["final"] = {"overrides": {"optimizer.momentum": 0.5}}
    rp, op = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    with pytest.raises(
        HpoError, match=r"final\.overrides\.optimizer\.momentum: the run config has no such key"
    ):
        prepare_study(rp, op)


def test_final_overrides_that_switch_the_component_may_set_its_arguments(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """optimize refused final.overrides {optimizer.name: sgd, optimizer.momentum: 0.5} over a run config of
    adam, where the search leaves the optimizer alone ('final.overrides.optimizer.momentum: the RunConfig has
    no such path'), though the final run trains sgd."""
    opt_dict.update(n_trials=1)
    opt_dict["final"] = {"overrides": {"optimizer.name": "sgd", "optimizer.momentum": 0.5}}
    (candidate,) = plan_final(run_tiny_study(tmp_path, run_dict, opt_dict)).candidates
    assert candidate.config.optimizer.name == "sgd"
    assert candidate.config.optimizer.model_extra == {"momentum": 0.5}


def test_train_from_best_out_with_a_name_too_long_is_one_line(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    out = "f" * 300
    cmd = ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--out", out]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == (
        f"error: {out}/trial{best}-seed0: cannot be made: File name too long; choose another --out\n"
    )


def test_a_full_disk_without_out_tells_to_give_one(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that filled while train-from-best saved a run in runs/<project>/<timestamp> (no --out typed)
    said "choose another --out on another disk"; now it tells to give --out a folder on another disk."""
    import hpotool.saved

    from .helpers import FullDisk

    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    monkeypatch.setattr(hpotool.saved, "os", FullDisk())  # a run's files, once written, do not fit
    result = runner.invoke(app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip("\n").splitlines()[-1]
    assert line.startswith(f"error: tiny trial {best} seed 0: runs/tiny/") and line.endswith(
        f"/trial{best}-seed0/model.pt: cannot write: No space left on device; the run was not saved: free some "
        "space, or give --out a folder on another disk"
    ), line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("seeds", "said"), [(1, "it"), (3, "all 3")])
def test_stopped_before_a_run_was_saved_says_the_same_command_trains_them(
    tmp_path: Path, run_dict: dict, opt_dict: dict, capsys: pytest.CaptureFixture[str], seeds: int, said: str
) -> None:
    """Ctrl-C in train-from-best before any run was saved said only "interrupted: no run was saved", without
    the advice it gives once one is (test_interrupts stops a real command so)."""
    from hpotool.cli.train import _say_final_interrupted

    plan = plan_final(run_tiny_study(tmp_path, run_dict, opt_dict), seeds=seeds)
    _say_final_interrupted([(plan, tmp_path / "final")], None)
    assert capsys.readouterr().err == f"interrupted: no run was saved; the same command trains {said}\n"


def _two_objectives(opt_dict: dict, **more: Any) -> dict:
    """The tiny study's optimize config with the two objectives of a newcomer's walk: accuracy and size."""
    opt = {k: v for k, v in opt_dict.items() if k not in ("metric", "direction")}
    return {**opt, "metrics": ["val_accuracy", "n_params"], "directions": ["maximize", "minimize"], **more}


def test_train_from_best_trains_the_pareto_trial_given_by_trial_under_the_final_rules(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A study of several metrics: train-from-best refused it and optimize refused its final: section, so
    the trial a user picked from the Pareto front could only be trained by hand, without the final rules."""
    final = {"epochs": 1, "seeds": 2, "overrides": {"data.subset_fraction": 0.2}}
    opt = _two_objectives(opt_dict, final=final)
    study = run_tiny_study(tmp_path, run_dict, opt)
    front = sorted(t.number for t in study.best_trials)
    refused = _train_from_best(opt["storage"])
    assert refused.exit_code == 2
    assert "give --trial N with the trial you pick from its Pareto front (trial" in refused.stderr
    assert f"{', '.join(map(str, front))};" in refused.stderr
    picked = study.trials[front[-1]]
    result = _train_from_best(opt["storage"], "--trial", str(picked.number))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "final"
    names = [f"trial{picked.number}-seed0", f"trial{picked.number}-seed1"]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == names
    config = load_run_config(folder / names[1] / "config.yaml")
    assert (config.epochs, config.seed, config.data.subset_fraction) == (1, 1, 0.2)
    assert config.model.hidden[0] == picked.params["model.hidden.0"]
    assert config.optimizer.lr == picked.params["optimizer.lr"]
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["metric"], summary["direction"]) == ("val_accuracy", "maximize")
    (candidate,) = summary["candidates"]
    assert candidate["trial_number"] == picked.number and candidate["trial_value"] == picked.values[0]
    assert set(candidate["metrics"]) >= {"val_accuracy", "n_params"}  # every metric's mean, not the first's
    assert "ranked by mean val_accuracy (maximize)" in result.stdout
    assert (tmp_path / "studies" / "tiny" / f"best_run_{picked.number}.yaml").exists()  # export-best ran


def test_train_from_best_trains_the_trial_given_by_trial_rather_than_the_best(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    other = next(t for t in study.trials if t.number != study.best_trial.number)
    result = _train_from_best(opt_dict["storage"], "--trial", str(other.number))
    assert result.exit_code == 0, result.output
    (candidate,) = json.loads((tmp_path / "final" / "summary.json").read_text())["candidates"]
    assert candidate["trial_number"] == other.number and candidate["trial_value"] == other.value
    # seed 0 with the trial's epochs is that trial, retrained
    assert candidate["runs"][0]["metrics"]["val_accuracy"] == other.value


def test_a_trial_that_cannot_be_trained_is_refused_with_one_line(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict["constraints"] = ["n_params <= 1000"]  # hidden 8: 610 parameters; 32 and 24: over 1000
    opt_dict["enqueue"] = [{"optimizer.lr": 0.01, "model.hidden.0": h} for h in (8, 32, 24)]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    first = study.trials[0]
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED, params=first.params, distributions=first.distributions
        )
    )
    storage = opt_dict["storage"]
    listed = f"hpotool trials --study-name tiny --storage {storage}"
    refusals = {
        (
            "--trial",
            "9",
        ): f"--trial 9: study 'tiny' has no trial 9 (its trials are numbered 0 to 3); {listed} "
        "--state complete lists those it can train",
        (
            "--trial",
            "3",
        ): f"--trial 3: trial 3 of study 'tiny' is pruned, not complete: only a complete trial "
        f"can be trained as it ran; {listed} --state complete lists those it can train",
        ("--trial", "1"): "--trial 1: trial 1 of study 'tiny' does not meet the study's constraints "
        f"(n_params <= 1000); {listed} lists those that do first",
        ("--trial", "0", "--top-k", "2"): "--top-k 2 --trial 0: --trial trains the one trial it names, "
        "--top-k the K best: give one of them",
    }
    for args, message in refusals.items():
        result = _train_from_best(storage, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {message}\n"
    assert not (tmp_path / "final").exists() and not (tmp_path / "studies" / "tiny").exists()


def test_train_from_best_at_80_columns_names_its_folders_each_whole(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `exported the best trial to FOLDER` and `summary: PATH` with a path longer than the line (a log file,
    # a narrow terminal): rich broke it mid-name over two lines, and it pasted (and grepped) as two. Now each
    # is one line, as the run lines are, for the terminal to wrap.
    import hpotool.cli.terminal

    opt_dict["study_name"] = "tiny_study_with_a_rather_long_name_" + "x" * 50
    opt_dict["storage"] = f"sqlite:///{tmp_path / 'studies' / 'long.db'}"
    run_tiny_study(tmp_path, run_dict, opt_dict)
    for console in (hpotool.cli.terminal.out_console(), hpotool.cli.terminal.err_console()):
        monkeypatch.setattr(console, "width", 80)
    out = tmp_path / ("final_runs_of_the_best_trial_in_a_rather_long_folder_name_" + "x" * 30)
    cmd = ["train-from-best", "--study-name", opt_dict["study_name"], "--storage", opt_dict["storage"]]
    result = runner.invoke(app, [*cmd, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    exported = next(line for line in result.stderr.splitlines() if line.startswith("exported the best trial"))
    assert len(exported) > 80 and exported.endswith(opt_dict["study_name"]), result.stderr
    assert f"summary: {out / 'summary.json'}" in result.stdout.splitlines(), result.stdout


def test_train_from_best_over_very_many_seeds_starts_training_at_once(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # `--seeds 10**18` built the list of all its runs (and checked each) before the first trained: silent,
    # and deaf to Ctrl-C, until killed. Now each run is built when it is reached. (A subprocess, so the old
    # code's endless build fails the test at the guard instead of hanging it.)
    import subprocess

    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    code = """
import sys
from pathlib import Path
from hpotool.study_lookup import find_study
from hpotool.final import final_jobs, train_from_best
from hpotool.final_plan import plan_final

class Stop(Exception):
    pass

class FirstRunOnly:
    def run_started(self, label, cfg): print("started", label, flush=True)
    def epoch_ended(self, result): pass
    def run_finished(self, label, run): raise Stop(label)

plan = plan_final(find_study("tiny", sys.argv[1]), seeds=10**18)
print("jobs", len(final_jobs(plan, Path("final"))), flush=True)
try:
    train_from_best(plan, Path("final"), FirstRunOnly())
except Stop as stop:
    print("saved", stop)
"""
    done = subprocess.run(
        [sys.executable, "-c", code, opt_dict["storage"]], capture_output=True, text=True, timeout=600
    )
    n = study.best_trial.number
    assert done.stdout.splitlines() == [
        f"jobs {10**18}",
        f"started trial {n} seed 0",
        f"saved trial {n} seed 0",
    ]
    assert [p.name for p in (tmp_path / "final").iterdir()] == [f"trial{n}-seed0"]


def test_train_from_best_stopped_over_very_many_seeds_counts_only_the_runs_there(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # After a Ctrl-C, `train-from-best --seeds 10**18` counted its saved runs by looking up every job's
    # folder: the "interrupted: ..." line never came, and the command did not return. Now it counts the
    # folders there are. (A subprocess, so the old code's endless count fails at the guard.)
    import subprocess

    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    n = study.best_trial.number
    (tmp_path / "final" / f"trial{n}-seed0").mkdir(parents=True)
    (tmp_path / "final" / f"trial{n}-seed0" / "config.yaml").write_text("seed: 0\n")
    code = """
import sys
from pathlib import Path
from hpotool.study_lookup import find_study
from hpotool.cli.train import _final_saved
from hpotool.final_plan import plan_final

plan = plan_final(find_study("tiny", sys.argv[1]), seeds=10**18)
print(_final_saved([(plan, Path("final"))], Path("final")))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, opt_dict["storage"]], capture_output=True, text=True, timeout=120
    )
    assert done.stdout == (
        f"1 of {10**18} runs saved in final (summary.json not written); the same command trains only the rest\n"
    ), done.stderr


def test_train_from_best_refuses_seeds_past_what_torch_takes(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # Seeds seed, seed+1, ... past 2**64 - 1: the run whose seed passed it was refused by its config's
    # check, naming `seed` (which the user did not write), after the runs before it were built.
    run_dict["seed"] = 2**64 - 2
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    result = runner.invoke(
        app, ["train-from-best", "--study-name", "tiny", "--storage", opt_dict["storage"], "--seeds", "3"]
    )
    assert result.exit_code == 2, result.output
    n = study.best_trial.number
    assert result.stderr == (
        f"error: --seeds 3: trial {n}'s runs would take seeds {2**64 - 2} to {2**64}, past {2**64 - 1}, the "
        f"largest torch.manual_seed takes; give --seeds 2 at most\n"
    )


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        # YAML's own many-line error: "error:   in "<unicode string>", line 26, ..." on three lines
        ("config.yaml", "epochs: [\n", "config.yaml: line 2, column 1: expected the node content"),
        ("metrics.json", "[]\n", "metrics.json: not the object a run saves"),  # AttributeError, a traceback
        ("metrics.json", '{"metrics": 1}\n', "metrics.json: not the object a run saves"),
    ],
)
def test_a_saved_run_edited_so_it_cannot_be_read_is_refused_in_one_line(
    tmp_path: Path, run_dict: dict, opt_dict: dict, name: str, text: str, why: str
) -> None:
    """A run folder of train-from-best whose config.yaml or metrics.json was edited by hand (a YAML syntax
    error, a metrics.json that is not an object) ended the same command run again in a many-line message or
    a traceback."""
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    assert _train_from_best(opt_dict["storage"]).exit_code == 0
    run_dir = tmp_path / "final" / f"trial{best}-seed0"
    (run_dir / name).write_text(text)
    result = _train_from_best(opt_dict["storage"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"error: final/trial{best}-seed0: holds a saved run that cannot be read ({why}"
    ), result.stderr
    assert result.stderr.endswith("); move it away, or choose another --out\n"), result.stderr


@pytest.mark.parametrize(
    ("key", "typo", "shown"),
    [
        ("batch_size:", "batchsize:", "'batchsize' (did you mean 'batch_size'?)"),
        ("  val_fraction:", "  val_fration:", "'data.val_fration' (did you mean 'data.val_fraction'?)"),
    ],
)
def test_a_saved_run_whose_config_yaml_has_a_misspelt_key_names_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict, key: str, typo: str, shown: str
) -> None:
    """A key of a run folder's config.yaml misspelt by hand (`batchsize:`) made the same train-from-best run
    again say the folder held a run of another config "(batch_size: null saved, 32 now)", not which key was
    wrong. Corrected, the run is found again, not trained again."""
    best = run_tiny_study(tmp_path, run_dict, opt_dict).best_trial.number
    assert _train_from_best(opt_dict["storage"]).exit_code == 0
    config = tmp_path / "final" / f"trial{best}-seed0" / "config.yaml"
    text = config.read_text()
    assert text.count(f"\n{key}") == 1, text
    config.write_text(text.replace(f"\n{key}", f"\n{typo}"))
    result = _train_from_best(opt_dict["storage"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {Path('final') / f'trial{best}-seed0' / 'config.yaml'}: unknown key {shown}; correct it, or "
        "choose another --out\n"
    )
    config.write_text(text)
    again = _train_from_best(opt_dict["storage"])
    assert again.exit_code == 0, again.output
    assert f"note: already saved in final, not trained again: trial{best}-seed0\n" in again.stderr


RENAMED_ARGUMENT = """
from torch import nn


class Net(nn.Module):
    def __init__(self, in_features, out_features, hidden=8, hidden_size=None):
        super().__init__()
        width = hidden_size or hidden
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.net(x)
"""


def test_a_saved_run_whose_model_took_another_argument_is_another_config_not_a_misspelt_key(
    tmp_path: Path, run_dict: dict
) -> None:
    """A component's own arguments are the user's to name: a saved run whose model took `hidden` where this
    config's takes `hidden_size` (renamed in the user's code) was said to have a misspelt key in its
    config.yaml, "unknown key 'model.hidden' (did you mean 'model.hidden_size'?); correct it", the record of
    a run to edit by hand. It is a run of another config."""
    from hpotool.config import RunConfig
    from hpotool.run_folders import saved_run_of
    from hpotool.saved import train_and_save

    (tmp_path / "renamed.py").write_text(RENAMED_ARGUMENT)
    info = {"study_name": "tiny", "trial_number": 0}
    run_dict.update(epochs=1, model={"name": "renamed:Net", "hidden": 8})
    train_and_save(RunConfig.model_validate(run_dict), tmp_path / "run", info=info)
    now = RunConfig.model_validate({**run_dict, "model": {"name": "renamed:Net", "hidden_size": 8}})
    with pytest.raises(HpoError) as refused:
        saved_run_of(tmp_path / "run", now, info)
    assert str(refused.value) == (
        f"{tmp_path / 'run'}: already holds a saved run of another config (model.hidden_size: null saved, 8 "
        "now); choose another --out"
    )


_PROJECT_NET = """import torch


class Net(torch.nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.f = torch.nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)
"""


def test_train_from_best_of_a_study_in_another_folder_names_its_project_folder(tmp_path: Path) -> None:
    """`train-from-best --storage sqlite:////abs/proj/studies/tiny.db` run from a folder beside the project
    that ran the study: the line said only "run hpotool from the folder that holds walka_proj_nets/", and,
    given PYTHONPATH, only the dataset function's "data/points.csv not found", naming no folder, though the
    study's file sits in the project. Now both name the project, the folder above the study's file, as do
    refine and optimize joining the study. (Real processes: the study's module must not linger in this one's
    sys.modules.)"""
    import subprocess

    import hpotool

    repo, src = Path(__file__).resolve().parents[1], Path(hpotool.__file__).resolve().parents[1]
    proj, other = tmp_path / "proj", tmp_path / "other"
    (proj / "data").mkdir(parents=True)
    other.mkdir()
    (proj / "walka_proj_nets.py").write_text(_PROJECT_NET)
    (proj / "data" / "points.csv").write_text("".join(f"{i},{i % 3},{i / 10}\n" for i in range(40)))
    run = {
        "device": "cpu",
        "torch_threads": 1,
        "data": {"name": "tests.helpers:read_csv", "path": "data/points.csv"},
        "model": {"name": "walka_proj_nets:Net"},
        "epochs": 1,
        "batch_size": 8,
    }
    lr = {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
    opt = {"study_name": "tiny", "n_trials": 1, "seed": 0, "search_space": {"optimizer.lr": lr}}
    write_configs(proj, run, opt)

    def hpotool(cwd: Path, *args: str, path: str = "") -> subprocess.CompletedProcess[str]:
        python_path = os.pathsep.join(p for p in (str(src), str(repo), path) if p)
        env = {**os.environ, "PYTHONPATH": python_path}
        cmd = [sys.executable, "-m", "hpotool", *args]
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)

    made = hpotool(proj, "optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q")
    assert made.returncode == 0, made.stderr
    final = ("train-from-best", "--study-name", "tiny", "--storage", f"sqlite:///{proj}/studies/tiny.db")
    done = hpotool(other, *final)
    assert (done.returncode, done.stderr) == (
        2,
        "error: study 'tiny': run_config: model: cannot import 'walka_proj_nets:Net': No module named "
        f"'walka_proj_nets'; imports resolve from the current folder and PYTHONPATH, and {proj} holds "
        "walka_proj_nets: run hpotool from there (cd ../proj), add that folder to PYTHONPATH, or install your "
        f"project in the Python hpotool runs in ({sys.executable} -m pip install -e YOUR_PROJECT)\n",
    )
    done = hpotool(other, *final, path=str(proj))
    assert done.returncode == 2
    assert done.stderr.endswith(
        f"; data.path: a relative path is read from the folder hpotool runs in, and {proj} holds "
        f"data/points.csv: run hpotool from there (cd ../proj), or write path: {proj}/data/points.csv\n"
    ), done.stderr
    assert hpotool(proj, *final).returncode == 0  # as said: from the project, it trains
    # refine, and optimize joining the study by name, import its components too, and say the same
    hint = f"{proj} holds walka_proj_nets: run hpotool from there (cd ../proj)"
    for command in (["refine", "--out", "stage2.yaml"], ["optimize", "--n-trials", "2", "--dry-run"]):
        done = hpotool(other, *command, *final[1:])
        assert done.returncode == 2 and hint in done.stderr, (command, done.stderr)
