from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.sqlite_storage import _close_sqlite_storages

from .conftest import write_configs, write_yaml

runner = CliRunner()


def _optimize_args(tmp_path: Path, run_dict: dict, opt_dict: dict) -> list[str]:
    """`optimize -r run.yaml -o optimize.yaml`, the configs written to tmp_path as the test has set them."""
    run_path, opt_path = write_configs(tmp_path, run_dict, opt_dict)
    return ["optimize", "-r", str(run_path), "-o", str(opt_path)]


def _ok(*args: str) -> Any:
    """`hpotool ARGS`, which succeeds."""
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _optimize(tmp_path: Path, run_dict: dict, opt_dict: dict, *args: str) -> Any:
    """`hpotool optimize` on these configs, which succeeds."""
    return _ok(*_optimize_args(tmp_path, run_dict, opt_dict), *args)


def test_help_lists_commands_each_with_a_whole_summary_at_80_columns() -> None:
    result = runner.invoke(app, ["--help"], catch_exceptions=False, terminal_width=80)
    assert result.exit_code == 0 and "optimize" in result.output
    commands = result.output.split("Commands:\n")[1].splitlines()
    assert len(commands) == 11 and all(len(line) <= 80 for line in commands), commands
    assert not [line for line in commands if line.endswith("...")], commands  # click cut the docstring


def test_help_lists_the_commands_in_the_order_of_a_study() -> None:
    """The commands register as hpotool.cli imports its modules: an import that ran one module's decorators
    early (optimize importing outputs at its top) listed report and export-best above optimize."""
    result = runner.invoke(app, ["--help"], catch_exceptions=False, terminal_width=80)
    listed = [line.split()[0] for line in result.output.split("Commands:\n")[1].splitlines() if line.strip()]
    assert listed == [
        "optimize",
        "report",
        "export-best",
        "train",
        "train-from-best",
        "studies",
        "trials",
        "fail-stale",
        "audit",
        "refine",
        "prune-audit",
    ], listed


def test_trials_help_and_the_readme_name_every_state_it_takes() -> None:
    """`--state waiting` (queued trials) works, but --help and the README named only four states."""
    import re

    from hpotool.browse import STATES

    result = runner.invoke(app, ["trials", "--help"], catch_exceptions=False, terminal_width=200)
    assert f"Only trials in this state: {', '.join(STATES)}" in result.output
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = re.findall(r"--state\s+([a-z|]+)\]", readme)
    assert shown and all(s == "|".join(STATES) for s in shown), shown


def test_train_from_best_help_says_its_epochs_override_final_epochs() -> None:
    """`--epochs` said only "Override the epochs.", though on train-from-best it is what wins over the
    study's final.epochs."""
    result = runner.invoke(app, ["train-from-best", "--help"], catch_exceptions=False, terminal_width=200)
    assert (
        "Train for N epochs, overriding final.epochs (default: final.epochs, else the trial's epochs)."
        in (" ".join(result.output.split()))
    )


def test_optimize_help_says_the_config_files_go_together() -> None:
    """--help said each of -r and -o, left out beside the other, was "the study's stored one"; optimize
    refuses either alone (both files, or neither with --study-name to join a study on its stored configs)."""
    result = runner.invoke(app, ["optimize", "--help"], catch_exceptions=False, terminal_width=200)
    text = " ".join(result.output.split())
    assert "left out with -o" not in text and "left out with -r" not in text, text
    assert (
        "RunConfig YAML: one training run (with -o; without both, --study-name joins a study on its stored configs)."
        in text
    )
    assert (
        "OptimizeConfig YAML: the study (with -r; without both, --study-name joins a study on its stored configs)."
        in text
    )
    refused = runner.invoke(app, ["optimize", "-o", "optimize.yaml", "--study-name", "tiny"])
    assert refused.exit_code == 2 and "--optimize-config needs --run-config too" in refused.stderr


def test_allow_changed_config_help_says_the_metric_cannot_change(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """--help said the flag resumes a study whose metric changed; the flag refuses that, as the README says."""
    result = runner.invoke(app, ["optimize", "--help"], catch_exceptions=False, terminal_width=200)
    text = " ".join(result.output.split())
    assert "its metric and direction cannot change." in text, text
    assert "search space, metric," not in text
    _optimize(tmp_path, run_dict, opt_dict)
    args = _optimize_args(tmp_path, run_dict, {**opt_dict, "metric": "val_loss", "direction": "minimize"})
    refused = runner.invoke(app, [*args, "--allow-changed-config"])
    assert refused.exit_code == 2 and "was created to maximize val_accuracy" in refused.stderr


def test_optimize_end_to_end_on_sqlite(configs: tuple[Path, Path], opt_dict: dict) -> None:
    run_path, opt_path = configs
    result = _ok("optimize", "--run-config", str(run_path), "--optimize-config", str(opt_path))
    assert "best val_accuracy" in result.stdout
    assert "trial   0 COMPLETE" in result.stderr
    # Read back with plain Optuna: parameters are named by their dotted paths.
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    assert len(study.trials) == 3
    assert set(study.best_trial.params) == {"optimizer.lr", "model.hidden.0"}


def test_a_categorical_of_one_choice_is_noted_unless_a_condition_or_a_searched_section_needs_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`{type: categorical, choices: [relu]}` searched nothing and ran without a word."""
    opt_dict["search_space"] = {
        "model.activation": {"type": "categorical", "choices": ["relu"]},
        "model.dropout": {"type": "categorical", "choices": [0.1], "when": {"model.activation": "relu"}},
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}, {"name": "adam"}]},
        "optimizer.weight_decay": {"type": "categorical", "choices": [0.0001]},
    }
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    notes = [line for line in result.stderr.splitlines() if "one choice" in line]
    assert notes == [
        f"note: {tmp_path / 'optimize.yaml'}: search_space.model.activation has one choice, relu: every trial uses it and nothing "
        f"is searched; set model.activation: relu in the run config, or list more choices"
    ], result.stderr


def test_a_deprecated_sampler_kwarg_optuna_still_uses_is_one_note(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """TPE's `prior_weight` printed Optuna's raw FutureWarning with a URL (and again in every worker); now
    one note line names the key, says it still works and what to do."""
    opt_dict["sampler"] = {"name": "tpe", "kwargs": {"prior_weight": 2.0}}
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert "FutureWarning" not in result.stderr and "github.com/optuna" not in result.stderr, result.stderr
    notes = [line for line in result.stderr.splitlines() if "prior_weight" in line]
    assert notes == [
        f"note: {tmp_path / 'optimize.yaml'}: sampler.kwargs.prior_weight is deprecated in Optuna 4.9.0 and goes "
        f"in Optuna 6.0.0; it still works with this Optuna ({optuna.__version__}), so the study uses it: drop it "
        f"before upgrading Optuna"
    ], result.stderr


def test_tpe_group_with_several_objectives_is_one_note_before_trial_0_not_optuna_s_warning(
    tmp_path: Path, run_dict: dict, opt_dict: dict, recwarn: pytest.WarningsRecorder
) -> None:
    """`sampler: {name: tpe, kwargs: {group: true}}` with two objectives printed Optuna's raw "multivariate
    defaults to False for multi-objective optimization, but it is treated as True ..." at sample time; now
    hpotool passes multivariate: true, as Optuna treats it, and says so in one note before trial 0."""
    opt_dict.pop("metric"), opt_dict.pop("direction")
    opt_dict["metrics"], opt_dict["directions"] = ["val_loss", "val_accuracy"], ["minimize", "maximize"]
    opt_dict["sampler"] = {"name": "tpe", "kwargs": {"group": True, "n_startup_trials": 1}}
    opt_dict["n_trials"] = 3
    run_dict["epochs"] = 1
    result = _optimize(tmp_path, run_dict, opt_dict)
    raw = [str(w.message) for w in recwarn if "treated as True" in str(w.message)]
    assert not raw and "treated as True" not in result.stderr, (raw, result.stderr)
    notes = [line for line in result.stderr.splitlines() if "sampler.kwargs.group" in line]
    assert notes == [
        f"note: {tmp_path / 'optimize.yaml'}: sampler.kwargs.group: true needs the multivariate TPE, which Optuna "
        f"leaves off by default with several objectives but turns on for group; hpotool passes multivariate: "
        f"true, as Optuna would (write multivariate: true to silence this note)"
    ], result.stderr
    study = optuna.load_study(study_name=opt_dict["study_name"], storage=opt_dict["storage"])
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    opt_dict["sampler"]["kwargs"]["multivariate"] = True  # said explicitly: no note
    opt_dict["study_name"] = "tiny2"
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert "sampler.kwargs.group" not in result.stderr and "treated as True" not in result.stderr, (
        result.stderr
    )


def test_the_dry_run_plan_shows_the_constraints(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """The plan listed storage, trials, objective, sampler, pruner, run and every parameter, but not the
    constraints: the one setting that decides which trial is best (a trial that breaks them never is) went
    unshown before the study ran."""
    opt_dict["constraints"] = ["n_params <= 5000", "epoch_time < 1"]
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "constraints" in line]
    assert len(rows) == 1 and "n_params <= 5000, epoch_time < 1" in rows[0], result.stdout
    opt_dict.pop("constraints")
    assert "constraints" not in _optimize(tmp_path, run_dict, opt_dict, "--dry-run").stdout


def test_a_searched_seed_is_noted(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """`seed: {type: int, ...}` in the search space ran without a word, though each trial then trains with
    another seed and the best trial may be the luckiest one. Searched on purpose it still runs: a note, not a
    refusal."""
    opt_dict["search_space"] = {
        **opt_dict["search_space"],
        "seed": {"type": "int", "low": 0, "high": 1000},
    }
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert result.exit_code == 0, result.output
    opt_path = tmp_path / "optimize.yaml"
    notes = [line for line in result.stderr.splitlines() if "seed" in line]
    assert notes == [
        f"note: {opt_path}: search_space.seed searches the seed: each trial trains with another one, so trials "
        f"differ by luck as well as by their values, and the best may be the luckiest; drop it to compare values "
        f"fairly (every trial then trains with the run config's seed, 0); train-from-best --seeds N shows how "
        f"much the seed moves the best trial's metric"
    ], result.stderr


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("torch_threads", {"type": "int", "low": 1, "high": 2}),
        ("device", {"type": "categorical", "choices": ["cpu", "auto"]}),
    ],
)
def test_a_searched_device_or_thread_count_is_noted_unless_speed_is_measured(
    tmp_path: Path, run_dict: dict, opt_dict: dict, path: str, spec: dict
) -> None:
    """A searched `torch_threads` or `device` ran without a word, though it changes how fast a trial trains,
    not what it learns: trials of the same other values measure the same val_accuracy. Searched for speed
    (`epoch_time` optimized or constrained) it is meant: no note then."""
    opt_dict["search_space"] = {**opt_dict["search_space"], path: spec}
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert result.exit_code == 0, result.output
    opt_path = tmp_path / "optimize.yaml"
    notes = [line for line in result.stderr.splitlines() if f"search_space.{path}" in line]
    assert notes == [
        f"note: {opt_path}: search_space.{path} changes how fast a trial trains, not what it learns: trials alike "
        f"in their other values measure the same val_accuracy, so the sampler learns nothing from it; set {path} "
        f"in the run config and drop it from the search (or optimize epoch_time to search for speed)"
    ], result.stderr
    opt_dict["constraints"] = ["epoch_time < 10"]
    opt_dict["sampler"] = {"name": "tpe"}  # random would be noted for ignoring the constraints
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "note" not in result.stderr, result.stderr


def test_a_final_override_of_a_searched_parameter_is_noted(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`final: {overrides: {optimizer.lr: 0.5}}` beside a searched `optimizer.lr` trained every final run at lr
    0.5, not at the lr that made the trial best, without a word (its val_accuracy fell from 0.92 to 0.11).
    Overriding a searched fidelity (`data.subset_fraction: 1.0`) is meant, so it runs: a note."""
    opt_dict["search_space"]["data.subset_fraction"] = {"type": "float", "low": 0.1, "high": 0.2}
    opt_dict["final"] = {"overrides": {"optimizer.lr": 0.5, "data.subset_fraction": 0.2}}
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    opt_path = tmp_path / "optimize.yaml"
    notes = [line for line in result.stderr.splitlines() if "final.overrides" in line]
    assert notes == [
        f"note: {opt_path}: final.overrides.optimizer.lr: 0.5 replaces the searched optimizer.lr: train-from-best "
        f"trains each trial with it, not with the value the trial ran (and won) with; drop it from "
        f"final.overrides to train the best trial as it ran"
    ], result.stderr


@pytest.mark.parametrize("storage", ["studies", "sqlite:///studies"])
def test_a_storage_mistake_is_the_one_line_printed_without_the_plans_notes(
    tmp_path: Path, run_dict: dict, opt_dict: dict, storage: str
) -> None:
    # the note of the one-choice parameter came first, then the storage error
    opt_dict["search_space"] = {
        **opt_dict["search_space"],
        "model.activation": {"type": "categorical", "choices": ["relu"]},
    }
    (tmp_path / "studies").mkdir()
    result = runner.invoke(app, [*_optimize_args(tmp_path, run_dict, opt_dict), "--storage", storage])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"error: --storage: {storage!r}")
    assert list((tmp_path / "studies").iterdir()) == []
    ok = _optimize(tmp_path, run_dict, opt_dict, "--storage", "sqlite:///studies/ok.db", "--n-trials", "1")
    assert "note: " in ok.stderr and "one choice, relu" in ok.stderr  # a correct run still notes it


@pytest.mark.parametrize(
    ("storage", "workers", "error"),
    [
        (
            "sqlite:///studies/tiny.db",
            "1",
            "error: study 'tiny' in sqlite:///studies/tiny.db was created to ",
        ),
        (
            "sqlite:///studies/tiny.db",
            "2",
            "error: study 'tiny' in sqlite:///studies/tiny.db was created to ",
        ),
        ("redis://127.0.0.1:1", "1", "error: --storage: 'redis://127.0.0.1:1': cannot open it: "),
        (
            "postgresql+psycopg://u@127.0.0.1:1/test",
            "1",
            "error: --storage: 'postgresql+psycopg://u@127.0.0.1:1/test'",
        ),
    ],
)
def test_a_study_that_will_not_open_is_the_one_line_printed_without_the_plans_notes(
    tmp_path: Path, run_dict: dict, opt_dict: dict, storage: str, workers: str, error: str
) -> None:
    # The plan's notes (a one-choice parameter) were printed, then the refusal to open the study (another
    # direction than the existing study's, a server refusing the connection): notes about a run that would
    # not happen, read before the reason why.
    _optimize(tmp_path, run_dict, opt_dict, "--n-trials", "1", "-q")  # the study, to maximize
    opt_dict["direction"] = "minimize"
    opt_dict["search_space"] = {
        **opt_dict["search_space"],
        "model.activation": {"type": "categorical", "choices": ["relu"]},
    }
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "--storage", storage, "--workers", workers]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(error), result.stderr


def test_a_range_whose_low_is_its_high_is_noted_as_a_categorical_of_one_choice_is(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`{type: float, low: 0.1, high: 0.1}` (a typo for 0.5, say) searched nothing and ran without a word,
    where a categorical of one choice got a note."""
    opt_dict["search_space"] = {
        "model.dropout": {"type": "float", "low": 0.1, "high": 0.1},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "batch_size": {"type": "int", "low": 16, "high": 16},
        "optimizer.weight_decay": {"type": "float", "low": 0.0, "high": 0.0, "when": {"batch_size": 16}},
    }
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    notes = [line for line in result.stderr.splitlines() if "nothing is searched" in line]
    opt_path = tmp_path / "optimize.yaml"
    assert notes == [
        f"note: {opt_path}: search_space.model.dropout has low = high = 0.1: every trial uses it and nothing "
        f"is searched; set model.dropout: 0.1 in the run config, or widen the range",
        f"note: {opt_path}: search_space.batch_size has low = high = 16: every trial uses it and nothing is "
        f"searched; set batch_size: 16 in the run config, or widen the range",
    ], result.stderr


def test_dry_run_checks_everything_prints_the_plan_and_writes_nothing(
    configs: tuple[Path, Path], tmp_path: Path, opt_dict: dict
) -> None:
    run_path, opt_path = configs
    result = _ok("optimize", "-r", str(run_path), "-o", str(opt_path), "--dry-run")
    assert "plan of study tiny (dry run)" in result.stdout
    for path in opt_dict["search_space"]:
        assert f"  {path}" in result.stdout
    assert "sampler" in result.stdout and "random" in result.stdout and "device cpu" in result.stdout
    assert "nothing written, no trial run" in " ".join(result.stderr.split())
    assert not (tmp_path / "studies").exists()  # the storage is not even created
    as_json = runner.invoke(
        app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "--dry-run", "--json"]
    )
    plan = json.loads(as_json.stdout)
    assert plan["storage"] == opt_dict["storage"]
    assert plan["optimize_config"]["search_space"].keys() == opt_dict["search_space"].keys()
    assert plan["run_config"]["project"] == "tiny" and not (tmp_path / "studies").exists()
    assert (plan["finished_trials"], plan["trials_to_run"]) == (0, opt_dict["n_trials"])
    # A mistake fails the dry run as it fails the study: one line, exit 2.
    bad = runner.invoke(
        app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "--dry-run", "--device", "tpu"]
    )
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ")


def test_the_dry_run_json_shows_a_storage_password_as_stars(configs: tuple[Path, Path]) -> None:
    """--dry-run --json masked the top-level storage but printed the optimize config's own storage with
    the password in it; the dry run opens nothing, so the unreachable server is never asked."""
    run_path, opt_path = configs
    opt = yaml.safe_load(opt_path.read_text())
    opt_path.write_text(yaml.safe_dump({**opt, "storage": "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"}))
    for args in ([], ["--storage", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"]):
        cmd = ["optimize", "-r", str(run_path), "-o", str(opt_path), "--dry-run", "--json", *args]
        result = _ok(*cmd)
        plan = json.loads(result.stdout)
        assert plan["optimize_config"]["storage"] == "postgresql+psycopg://u:***@127.0.0.1:1/x"
        assert plan["finished_trials"] is None and plan["trials_to_run"] is None  # the server: not asked
        assert "s3cret" not in result.output


def test_the_dry_run_plan_spells_a_condition_as_the_yaml_does(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # It printed `when optimizer.name={'in': ['sgd']}`, Python's spelling of the YAML's {in: [sgd]}.
    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.0,
            "high": 0.9,
            "when": {"optimizer.name": {"in": ["sgd"]}},
        },
    }
    result = _optimize(tmp_path, run_dict, opt_dict, "--dry-run")
    assert "float [0, 0.9] when optimizer.name={in: [sgd]}" in result.stdout, result.stdout


def test_n_trials_null_runs_trials_until_the_timeout_and_resumes_the_same_way(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    opt_dict.update(n_trials=None, timeout=1.5)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "--json"]
    first = json.loads(runner.invoke(app, args, catch_exceptions=False).stdout)
    # The timeout, not a count, ended it, after as many trials as 1.5 s allow: 2 to 4 at load 13, and 1 once
    # a loaded machine's trial outlasts the 1.5 s (`>= 2` failed then)
    assert first["target"] is None and first["ran_now"] >= 1
    assert first["stopped"] == "the timeout (1.5 s) ended the run"
    second = runner.invoke(app, [*args[:-1], "--quiet"], catch_exceptions=False)
    assert second.exit_code == 0
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert len(trials) > first["ran_now"]  # a second run goes on until its own timeout
    assert f"{len(trials)} finished, {len(trials) - first['ran_now']} run now" in second.stdout


def test_a_run_the_timeout_ends_short_of_n_trials_says_so(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # The summary read "25/200 finished" with no word of why the run stopped.
    opt_dict.update(n_trials=500, timeout=1)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "--quiet"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0
    finished = len(optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials)
    assert (
        f"note: the timeout (1 s) ended the run with {500 - finished} of 500 trials to go; run the same command "
        f"to continue"
    ) in " ".join(result.stderr.split())


def test_a_file_leaving_the_budget_to_the_command_line_runs_with_timeout_or_n_trials(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # n_trials: null and timeout: null in the file, the budget given as a flag: the file was refused
    # ("timeout is null too") before --timeout or --n-trials were applied.
    opt_dict.update(n_trials=None, timeout=None)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "--json"]
    by_timeout = _ok(*args, "--timeout", "1")
    ran = json.loads(by_timeout.stdout)["ran_now"]
    assert ran >= 1
    by_count = _ok(*args, "--n-trials", str(ran + 2))
    assert json.loads(by_count.stdout)["ran_now"] == 2
    neither = runner.invoke(app, args)
    assert neither.exit_code == 2
    assert neither.stderr == (
        f"error: {tmp_path / 'optimize.yaml'}: n_trials: null runs trials until the timeout, and timeout is null "
        f"too; give n_trials a number, or timeout: SECONDS\n"
    )


def test_a_file_leaving_the_budget_to_the_command_line_takes_it_beside_other_flags(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The README's `n_trials: null` with `--timeout S`, given beside --study-name or --storage (applied one
    flag at a time, before --timeout), was refused as "error: command line: n_trials: null runs trials until
    the timeout, and timeout is null too", naming neither the file nor the flag that gave the timeout."""
    opt_dict.update(n_trials=None, timeout=None)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "--dry-run", "--json"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    for flags in (["--study-name", "tiny2"], ["--storage", other], ["--seed", "3"]):
        for budget, planned in ((["--timeout", "7"], ("timeout", 7)), (["--n-trials", "4"], ("n_trials", 4))):
            result = runner.invoke(app, [*args, *flags, *budget])
            assert result.exit_code == 0, (flags, budget, result.output)
            key, value = planned
            assert json.loads(result.stdout)["optimize_config"][key] == value, result.stdout
    neither = runner.invoke(app, [*args, "--study-name", "tiny2"])
    assert (
        neither.exit_code == 2
        and "optimize.yaml: n_trials: null runs trials until the timeout" in neither.stderr
    )


def test_an_endless_timeout_is_refused_naming_the_key_or_flag(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`timeout: .inf` with `n_trials: null` passed the "both null" check: the run never ended, and
    --dry-run planned trials "until the timeout, infs"."""
    opt_path = tmp_path / "optimize.yaml"
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    write_yaml(opt_path, {**opt_dict, "n_trials": None, "timeout": 1})
    opt_path.write_text(opt_path.read_text().replace("timeout: 1", "timeout: .inf"))
    args = ["optimize", "-r", str(run_path), "-o", str(opt_path), "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {opt_path}: timeout: must be a finite number of seconds, got inf; give e.g. timeout: 3600, "
        f"or timeout: null for no time limit (with n_trials set)\n"
    )
    write_yaml(opt_path, {**opt_dict, "n_trials": None, "timeout": 1})
    flag = runner.invoke(app, [*args, "--timeout", "inf"])
    assert flag.exit_code == 2, flag.output
    assert flag.stderr.startswith("error: --timeout: must be a finite number of seconds, got inf;")
    assert "infs" not in flag.stdout


def test_json_summary_and_overrides(configs: tuple[Path, Path], tmp_path: Path) -> None:
    run_path, opt_path = configs
    storage = f"sqlite:///{tmp_path / 'other.db'}"
    args = [
        "optimize",
        "-r",
        str(run_path),
        "-o",
        str(opt_path),
        "--json",
        "--study-name",
        "renamed",
        "--storage",
        storage,
        "--n-trials",
        "2",
        "--device",
        "cpu",
        "--seed",
        "3",
    ]
    result = _ok(*args)
    summary = json.loads(result.stdout)
    assert summary["study_name"] == "renamed" and summary["counts"] == {"complete": 2}
    assert summary["best"]["params"].keys() == {"optimizer.lr", "model.hidden.0"}
    assert optuna.load_study(study_name="renamed", storage=storage).user_attrs["optimize_config"]["seed"] == 3


def test_quiet_prints_only_the_summary(configs: tuple[Path, Path]) -> None:
    run_path, opt_path = configs
    result = runner.invoke(
        app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "--quiet"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "trial   0" not in result.output and "best val_accuracy" in result.stdout


def test_user_error_is_one_line_exit_2_no_traceback(configs: tuple[Path, Path], tmp_path: Path) -> None:
    run_path, opt_path = configs
    opt_path.write_text(opt_path.read_text().replace("type: float", "type: flaot"))
    result = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {opt_path}: search_space.optimizer.lr: unknown type 'flaot' (did you mean 'float'?); "
        "choose one of: float, int, categorical\n"
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "studies").exists()


def test_debug_shows_the_traceback(configs: tuple[Path, Path]) -> None:
    run_path, opt_path = configs
    opt_path.write_text(opt_path.read_text().replace("type: float", "type: flaot"))
    result = runner.invoke(app, ["--debug", "optimize", "-r", str(run_path), "-o", str(opt_path)])
    assert result.exit_code != 0 and result.exc_info is not None
    assert type(result.exception).__name__ == "HpoError"


def test_a_librarys_warning_is_one_line_without_its_path_and_shown_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    import hpotool.study_lookup  # noqa: F401 (imported unpatched: it binds study_rows as it is imported)
    from hpotool import browse

    rows = browse.study_rows

    def warn_twice(*args: object, **kwargs: object) -> object:
        for _ in range(2):  # as a report computing importances for its figure and its table
            warnings.warn(
                "Some regimes for parameter `x` have less than 2 trials.", UserWarning, stacklevel=1
            )
        return rows(*args, **kwargs)

    monkeypatch.setattr(browse, "study_rows", warn_twice)
    monkeypatch.chdir(tmp_path)
    before = warnings.showwarning
    result = _ok("studies")
    assert result.stderr.splitlines()[0] == "warning: Some regimes for parameter `x` have less than 2 trials."
    assert result.stderr.count("Some regimes") == 1 and "site-packages" not in result.stderr
    assert warnings.showwarning is before  # the command's printer ends with the command
    with pytest.warns(UserWarning, match="Some regimes"):  # --debug: Python's own warning, left alone
        debug = runner.invoke(app, ["--debug", "studies"])
    assert "warning:" not in debug.stderr


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["optimize", "-r", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "x.yaml")]
    )
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / 'nope.yaml'}: no such file; check the path\n")


def test_optunas_own_cli_reads_the_study(configs: tuple[Path, Path], opt_dict: dict) -> None:
    import subprocess
    import sys

    run_path, opt_path = configs
    assert runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"]).exit_code == 0
    optuna_cli = Path(sys.executable).parent / "optuna"
    out = subprocess.run(
        [str(optuna_cli), "trials", "--study-name", "tiny", "--storage", opt_dict["storage"], "-f", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    trials = json.loads(out)
    assert len(trials) == 3
    assert set(trials[0]["params"]) == {"optimizer.lr", "model.hidden.0"}


def test_the_console_script_flushes_its_output_and_keeps_its_exit_code(
    configs: tuple[Path, Path], tmp_path: Path
) -> None:
    """`main` skips the interpreter's teardown: output and exit codes are intact."""
    import subprocess
    import sys

    run_path, opt_path = configs
    script = Path(sys.executable).parent / "hpotool"
    done = subprocess.run(
        [str(script), "optimize", "-r", str(run_path), "-o", str(opt_path), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"complete": 3}
    again = subprocess.run(
        [str(script), "optimize", "-r", str(run_path), "-o", str(opt_path), "--n-trials", "2", "--json"],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert "already holds 3 finished trials" in json.loads(again.stdout)["stopped"]
    missing = subprocess.run(
        [
            str(script),
            "export-best",
            "--study-name",
            "nope",
            "--storage",
            f"sqlite:///{tmp_path / 'none.db'}",
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: --storage: "), missing.stderr


_CAUGHT_CTRL_C = """
import os, signal, sys, time
from hpotool.cli import root

def app():  # the command, caught a Ctrl-C in its last exec() of a string (a dataclass being created, say)
    try:
        command()
    finally:
        try:
            exec("os.kill(os.getpid(), signal.SIGINT)\\nwhile True: time.sleep(0.01)")
        except KeyboardInterrupt:
            pass

command, root.app = root.app, app  # where main looks it up
sys.argv = ["hpotool", "--version"]
root.main()
"""


def test_python_m_hpotool_exits_with_the_commands_code_after_a_caught_ctrl_c(tmp_path: Path) -> None:
    # Under `python -m`, CPython ended such a process by SIGINT (returncode -2) whatever the command's exit
    # code: the Ctrl-C test of `--workers` saw -2 instead of 130 when the interrupt hit a dataclass's creation.
    import subprocess
    import sys

    package = tmp_path / "caught_ctrl_c"
    package.mkdir()
    (package / "__main__.py").write_text(_CAUGHT_CTRL_C)
    src = Path(__file__).resolve().parents[1] / "src"
    done = subprocess.run(
        [sys.executable, "-m", "caught_ctrl_c"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{src}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hpotool "), done.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["optimise"], "error: No such command 'optimise'. Did you mean 'optimize'? (see hpotool --help)"),
        (
            ["trials", "--study-name", "x", "--top", "0"],
            "error: --top: must be 1 or more, got 0",
        ),
        (
            ["optimize", "-r", "run.yaml"],
            "error: --run-config needs --optimize-config too; or give neither, with --study-name (and --storage), "
            "to join a study with the configs stored on it",
        ),
        (["studies", "--bogus"], "error: No such option: --bogus (see hpotool studies --help)"),
        # an option with nothing after it: was "(see hpotool --help)", the root's help, without the option
        (
            ["optimize", "--run-config"],
            "error: Option '--run-config' requires an argument (see hpotool optimize --help)",
        ),
        (
            ["trials", "--storage"],
            "error: Option '--storage' requires an argument (see hpotool trials --help)",
        ),
        (
            ["trials", "--study-name", "x", "--state"],
            "error: Option '--state' requires an argument (see hpotool trials --help)",
        ),
        # was "No such option: --bogus (Possible options: --out)": click's match, found in the `--`
        (["report", "--bogus"], "error: No such option: --bogus (see hpotool report --help)"),
        (
            # was "(Possible options: --state, --storage, --study-name)"
            ["trials", "--stuy-name", "x"],
            "error: No such option: --stuy-name. Did you mean --study-name? (see hpotool trials --help)",
        ),
        (
            ["optimize", "--run_config", "run.yaml"],
            "error: No such option: --run_config. Did you mean --run-config? (see hpotool optimize --help)",
        ),
        (["--debg", "studies"], "error: No such option: --debg. Did you mean --debug? (see hpotool --help)"),
        (
            # was "No such option: --debug (see hpotool optimize --help)", a help without it
            ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "--debug"],
            "error: --debug is an option of hpotool itself: give it before the command (hpotool --debug optimize ...)",
        ),
        (
            # -1 ("never", as the help's 0 is) stopped the study at its first failed trial
            ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "--max-failures", "-1"],
            "error: --max-failures: must be 0 or more, got -1",
        ),
        (
            # read "Invalid value for '--workers': ..." without the value, unlike --n-trials 0 (got 0)
            ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "--workers", "0"],
            "error: --workers: must be 1 or more, got 0",
        ),
        (
            ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "--timeout", "1h"],
            "error: --timeout: '1h' is not a number of seconds; give --timeout 3600 (1h in seconds)",
        ),
    ],
)
def test_a_mistake_on_the_command_line_is_one_line(args: list[str], line: str) -> None:
    # click printed four lines: usage, a hint, a blank line, the error
    result = runner.invoke(app, args, prog_name="hpotool")
    assert result.exit_code == 2 and result.stderr == line + "\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["export-best", "--study-name", "s"],
            "--out -: this command writes several files into a folder, not to stdout; "
            "give a folder, e.g. --out exports/s",
        ),
        (
            ["train-from-best", "--study-name", "s"],
            "--out -: this command writes run folders and summary.json, not to stdout; "
            "give a folder, e.g. --out runs/final",
        ),
        (
            ["refine", "--study-name", "s"],
            "--out -: this command writes two files (the stage's config and its .run.yaml), not to stdout; "
            "give a file, e.g. --out stage2.yaml",
        ),
    ],
)
def test_out_dash_where_a_command_writes_files_is_refused(tmp_path: Path, args: list[str], line: str) -> None:
    # refused before the study is looked up (there is none): no folder or file named '-' is made
    result = runner.invoke(app, [*args, "--out", "-"])
    assert result.exit_code == 2 and result.stderr == f"error: {line}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "example"),
    [
        (["export-best", "--study-name", "s"], "a folder, e.g. --out exports/best"),
        (["train-from-best", "--study-name", "s"], "a folder, e.g. --out runs/final"),
        (["train", "--run-config", "run.yaml"], "a folder, e.g. --out runs/mine"),
        (["report", "--study-name", "s"], "a file, e.g. --out report.html"),
        (["refine", "--study-name", "s"], "a file, e.g. --out stage2.yaml"),
    ],
)
def test_an_empty_out_is_refused_by_every_command(tmp_path: Path, args: list[str], example: str) -> None:
    # typer read --out '' as `.`: export-best wrote its files into the current folder, report said "--out .:
    # is a folder"
    result = runner.invoke(app, [*args, "--out", ""])
    assert result.exit_code == 2 and result.stderr == f"error: --out: is empty; give {example}\n"
    assert list(tmp_path.iterdir()) == []


def test_train_out_dash_is_refused(configs: tuple[Path, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--run-config", str(configs[0]), "--out", "-"])
    assert result.exit_code == 2 and result.stderr == (
        "error: --out -: this command writes a run folder (model.pt, metrics.json, ...), not to stdout; "
        "give a folder, e.g. --out runs/mine\n"
    )
    assert not (tmp_path / "-").exists() and not (tmp_path / "runs").exists()


def test_list_choices_run_export_and_train_as_lists(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """Whole lists as categorical choices (Ray Tune's tune.choice([[64], [128, 64]])): Optuna stores each as
    its label, and every command that makes a run config of a trial turns it back into the list. They were
    refused: "choices must be null, booleans, numbers or strings"."""
    import csv

    import yaml

    from hpotool.config_files import load_run_config

    choices = [[16], [32, 16], [8, 8, 8]]
    opt_dict["search_space"] = {
        "model.hidden": {"type": "categorical", "choices": choices},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    opt_dict["enqueue"] = [{"model.hidden": [8, 8, 8], "optimizer.lr": 0.01}]  # a warm start, as written
    result = _optimize(tmp_path, run_dict, opt_dict)
    assert (
        "trial   0 COMPLETE" in result.stderr and "model.hidden=[8, 8, 8] optimizer.lr=0.01" in result.stderr
    )
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    assert study.trials[0].params["model.hidden"] == "[8, 8, 8]"  # what Optuna stores: the label
    assert {t.params["model.hidden"] for t in study.trials} <= {"[16]", "[32, 16]", "[8, 8, 8]"}
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    rows = json.loads(runner.invoke(app, ["trials", *storage, "--json"], catch_exceptions=False).stdout)
    assert {r["number"]: r["params"]["model.hidden"] for r in rows}[0] == [8, 8, 8]
    assert all(r["params"]["model.hidden"] in choices for r in rows)
    assert "[8, 8, 8]" in runner.invoke(app, ["trials", *storage], catch_exceptions=False).stdout

    _ok("export-best", *storage, "--out", "exp")
    best = study.best_trial
    hidden = yaml.safe_load(best.params["model.hidden"])
    assert load_run_config(tmp_path / "exp" / "best_run.yaml").model.kwargs["hidden"] == hidden
    assert json.loads((tmp_path / "exp" / "best_params.json").read_text())["params"]["model.hidden"] == hidden
    records = json.loads((tmp_path / "exp" / "trials.json").read_text())
    assert [r["params"]["model.hidden"] for r in records] == [
        yaml.safe_load(t.params["model.hidden"]) for t in study.trials
    ]
    with open(tmp_path / "exp" / "trials.csv", newline="") as fh:
        assert [r["model.hidden"] for r in csv.DictReader(fh)] == [
            t.params["model.hidden"] for t in study.trials
        ]

    _ok("train", "--run-config", str(tmp_path / "exp" / "best_run.yaml"), "--out", "mine")
    assert load_run_config(tmp_path / "mine" / "config.yaml").model.kwargs["hidden"] == hidden
    _ok("train-from-best", *storage, "--out", "final")
    (candidate,) = json.loads((tmp_path / "final" / "summary.json").read_text())["candidates"]
    assert (
        candidate["params"]["model.hidden"] == hidden
        and candidate["runs"][0]["metrics"]["val_accuracy"] == best.value
    )


def test_summary_and_export_best_show_a_choice_as_the_yaml_spells_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The summary after a study and export-best's table show the best trial's choices as `hpotool trials`
    and the progress lines do: the README's loss.weight choice null as null, a float choice 0.0 as 0.0.
    They showed Python's None, and 0 (the choice 0 is another one)."""
    run_dict["loss"] = {"name": "cross_entropy"}
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "loss.weight": {"type": "categorical", "choices": [None, [1.0] * 9 + [3.0]]},
        "model.dropout": {"type": "categorical", "choices": [0.0, 0.25]},
    }
    opt_dict["enqueue"] = [{"loss.weight": None, "model.dropout": 0.0}]
    result = _optimize(tmp_path, run_dict, opt_dict, "--quiet")
    rows = {tuple(cell.strip() for cell in line.split("│")[1:3]) for line in result.stdout.splitlines()}
    assert {("loss.weight", "null"), ("model.dropout", "0.0")} <= rows, result.stdout
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    exported = _ok("export-best", *storage, "--out", "exp")
    rows = {tuple(cell.strip() for cell in line.split("│")[1:3]) for line in exported.stdout.splitlines()}
    assert {("loss.weight", "null"), ("model.dropout", "0.0")} <= rows, exported.stdout


def test_a_mapping_choice_has_one_spelling_in_the_live_line_the_summary_and_trials(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A whole-section choice the YAML writes {name: sgd, lr: 0.1} is {lr: 0.1, name: sgd} in the live line
    (its label, the keys sorted, so reordering them is the same experiment); the summary and `hpotool
    trials` showed it {name: sgd, lr: 0.1}, as the YAML happened to order it."""
    run_dict["epochs"] = 1
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {"optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}]}}
    result = _optimize(tmp_path, run_dict, opt_dict)
    assert "optimizer={lr: 0.1, name: sgd}" in result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "│   optimizer " in line]
    assert row.split("│")[2].strip() == "{lr: 0.1, name: sgd}", result.stdout
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    table = runner.invoke(app, ["trials", *storage], catch_exceptions=False).stdout
    assert "{lr: 0.1, name: sgd}" in table and "{name: sgd" not in table, table


def test_trials_shows_the_values_a_waiting_trial_is_queued_with(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`hpotool trials --state waiting` lists a warm start not yet run with the values it will run (a list or
    a whole section as the value); it showed the trial without any parameters."""
    run_dict["epochs"] = 1
    adam = {"name": "adam", "lr": 0.001}
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}, adam]},
        "model.hidden": {"type": "categorical", "choices": [[16], [8, 8]]},
    }
    opt_dict["enqueue"] = [{"model.hidden": [16]}, {"optimizer": adam, "model.hidden": [8, 8]}]
    _optimize(tmp_path, run_dict, opt_dict, "-q")
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    listed = runner.invoke(app, ["trials", *storage, "--state", "waiting", "--json"], catch_exceptions=False)
    assert [r["params"] for r in json.loads(listed.stdout)] == [{"optimizer": adam, "model.hidden": [8, 8]}]
    table = runner.invoke(app, ["trials", *storage, "--state", "waiting"], catch_exceptions=False).stdout
    (row,) = [line.split("│") for line in table.splitlines() if "waiting" in line]
    assert [cell.strip() for cell in row[4:6]] == ["{lr: 0.001, name: adam}", "[8, 8]"], table


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_trials_says_a_running_trial_whose_process_died_runs_no_more(tmp_path: Path) -> None:
    """After a kill -9, `hpotool trials` showed the dead process's trial as running, like a live one."""
    import socket
    import subprocess
    import sys

    from hpotool.storage import make_storage

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    gone = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )
    dead, live = study.ask(), study.ask()
    dead.suggest_float("x", 0, 1)
    dead.set_user_attr("worker", {"host": socket.gethostname(), "pid": gone})
    live.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    table = runner.invoke(
        app, ["trials", "--study-name", "s", "--storage", url], catch_exceptions=False
    ).stdout
    rows = {
        line.split("│")[1].strip(): line.split("│")[-2].strip()
        for line in table.splitlines()
        if "running" in line
    }
    assert rows == {
        "0": f"its process (pid {gone}) is gone: the next optimize marks it FAIL and runs its values again",
        "1": "",
    }, table


def test_a_whole_section_is_a_categorical_choice(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """`optimizer: {type: categorical, choices: [{name: sgd, ...}, {name: adam, ...}]}` chooses the whole
    section: the choice replaces it (keys it leaves out at the section's defaults, not the run config's), a
    key searched below it applies after it, and export-best, train-from-best and `hpotool trials` give the
    chosen section back. It was refused: "search_space.optimizer: the run config has no such key"."""
    import yaml

    from hpotool.config_files import load_run_config

    run_dict["epochs"] = 1
    run_dict["optimizer"] = {"name": "adam", "lr": 0.01, "weight_decay": 0.001}
    sgd, adam = {"name": "sgd", "momentum": 0.9}, {"name": "adam", "lr": 0.001}
    opt_dict["n_trials"] = 2
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [sgd, adam]},
        "optimizer.nesterov": {
            "type": "categorical",
            "choices": [True, False],
            "when": {"optimizer": {"in": [sgd]}},
        },
    }
    opt_dict["enqueue"] = [{"optimizer": sgd, "optimizer.nesterov": True}, {"optimizer": adam}]
    result = _optimize(tmp_path, run_dict, opt_dict)
    assert "optimizer={momentum: 0.9, name: sgd} optimizer.nesterov=true" in result.stderr
    (adam_line,) = [line for line in result.stderr.splitlines() if line.startswith("trial   1 ")]
    assert (
        "optimizer={lr: 0.001, name: adam}" in adam_line and "nesterov" not in adam_line
    )  # its condition fails
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    assert [t.params["optimizer"] for t in study.trials] == [
        "{momentum: 0.9, name: sgd}",
        "{lr: 0.001, name: adam}",
    ]
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    rows = json.loads(runner.invoke(app, ["trials", *storage, "--json"], catch_exceptions=False).stdout)
    assert sorted(r["number"] for r in rows if r["params"]["optimizer"] == sgd) == [0]

    _ok("export-best", *storage, "--out", "exp")
    best = study.best_trial
    chosen = yaml.safe_load(best.params["optimizer"])
    written = load_run_config(tmp_path / "exp" / "best_run.yaml")  # validates
    expected = {"lr": 0.001, "weight_decay": 0.0, **chosen}  # the section's defaults, not the run config's
    if chosen == sgd:
        expected["nesterov"] = True
    assert written.optimizer.model_dump() == expected
    _ok("train-from-best", *storage, "--out", "final")
    (candidate,) = json.loads((tmp_path / "final" / "summary.json").read_text())["candidates"]
    assert (
        candidate["params"]["optimizer"] == chosen
        and candidate["runs"][0]["metrics"]["val_accuracy"] == best.value
    )


def test_a_machine_joining_by_name_aims_for_the_latest_run_s_target(configs: tuple[Path, Path]) -> None:
    # The study kept the n_trials it was created with: after `--n-trials 3` raised the target, a machine
    # joining with `--study-name` alone found "already 3 finished trials (target 2)" and ran nothing.
    run, opt = configs
    storage = yaml.safe_load(opt.read_text())["storage"]
    for n in ("2", "3"):
        _ok("optimize", "-r", str(run), "-o", str(opt), "--n-trials", n, "-q")
    join = ["optimize", "--study-name", "tiny", "--storage", storage]
    planned = _ok(*join, "--dry-run", "--json")
    assert json.loads(planned.stdout)["optimize_config"]["n_trials"] == 3


def test_the_dry_run_of_a_study_holding_its_n_trials_says_nothing_would_run(
    configs: tuple[Path, Path],
) -> None:
    # It read "2 in all", while the run itself says the study holds its trials and runs nothing.
    run, opt = configs
    storage = yaml.safe_load(opt.read_text())["storage"]
    _ok("optimize", "-r", str(run), "-o", str(opt), "--n-trials", "2", "-q")
    dry = ["optimize", "-r", str(run), "-o", str(opt), "--n-trials", "2", "--dry-run"]
    planned = _ok(*dry)
    assert (
        "2 in all; the study already holds 2 finished trials (n_trials: 2): nothing to run; --n-trials 12, say, "
        "runs 10 more" in " ".join(planned.stdout.replace("│", " ").split())
    )
    as_json = json.loads(runner.invoke(app, [*dry, "--json"], catch_exceptions=False).stdout)
    assert (as_json["finished_trials"], as_json["trials_to_run"]) == (2, 0)
    more = json.loads(runner.invoke(app, [*dry[:-3], "--n-trials", "5", "--dry-run", "--json"]).stdout)
    assert (more["finished_trials"], more["trials_to_run"]) == (2, 3)
    joined = ["optimize", "--study-name", "tiny", "--storage", storage, "--dry-run", "--json"]
    assert json.loads(runner.invoke(app, joined, catch_exceptions=False).stdout)["trials_to_run"] == 0


def test_train_notes_labels_that_skip_class_ids_as_optimize_does(tmp_path: Path, run_dict: dict) -> None:
    """Labels 1 and 2: optimize notes before trial 0 that the model gets an output for class 0, which no
    sample has; `train` on the same run config trained that 3-class model without a word."""
    run = write_yaml(tmp_path / "r.yaml", {**run_dict, "data": {"name": "tests.helpers:labels_from_one"}})
    result = _ok("train", "--run-config", str(run), "--out", str(tmp_path / "run"))
    assert (
        "note: data: the labels of tests.helpers:labels_from_one run up to 2, so the model has 3 outputs, but 1 "
        "of those classes has no sample (0); number the classes 0..1 in the dataset function "
        "(np.unique(y, return_inverse=True)[1]), or give y as floats if it holds amounts (regression)"
        in " ".join(result.stderr.split())
    )
    digits = write_yaml(tmp_path / "d.yaml", run_dict)
    assert "note:" not in _ok("train", "--run-config", str(digits), "--out", str(tmp_path / "d")).stderr


def test_class_labels_stored_as_floats_are_noted_before_they_train_as_a_regression(
    tmp_path: Path, run_dict: dict
) -> None:
    """0/1 labels stored as floats (np.loadtxt's, pandas' beside NaN) with loss auto trained as a regression,
    reporting val_rmse, without a word; bce_with_logits reads them as two classes, and is not noted."""
    data = {"name": "tests.helpers:labels_read_as_floats"}
    run = write_yaml(tmp_path / "r.yaml", {**run_dict, "data": data})
    result = _ok("train", "--run-config", str(run), "--out", str(tmp_path / "run"))
    assert (
        "note: data: y of tests.helpers:labels_read_as_floats holds only the whole numbers 0..1 as floats, which "
        "make a regression task (val_rmse, val_mae); if they are class labels, give y as integers "
        "(y.astype(np.int64), a tensor's y.long()) for a classification" in " ".join(result.stderr.split())
    )
    binary = write_yaml(tmp_path / "b.yaml", {**run_dict, "data": data, "loss": {"name": "bce_with_logits"}})
    assert "note:" not in _ok("train", "--run-config", str(binary), "--out", str(tmp_path / "b")).stderr
    regression = write_yaml(
        tmp_path / "g.yaml", {**run_dict, "data": {"name": "regression", "n_samples": 200}}
    )
    assert "note:" not in _ok("train", "--run-config", str(regression), "--out", str(tmp_path / "g")).stderr


def test_the_dry_run_of_a_complete_grid_says_nothing_would_run(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A grid study that had run its 2 points (of n_trials 5) dry-ran as '2 finished already, 3 to run',
    while the run itself runs nothing and says the search is complete."""
    opt = {
        **opt_dict,
        "n_trials": 5,
        "sampler": {"name": "grid"},
        "search_space": {"model.hidden.0": {"type": "categorical", "choices": [8, 16]}},
    }
    args = _optimize_args(tmp_path, run_dict, opt)
    assert json.loads(_ok(*args, "--json").stdout)["counts"] == {"complete": 2}
    planned = json.loads(_ok(*args, "--dry-run", "--json").stdout)
    assert (planned["finished_trials"], planned["trials_to_run"]) == (2, 0)
    text = " ".join(_ok(*args, "--dry-run").stdout.replace("│", " ").split())
    assert "5 in all; 2 finished already, and the sampler has tried everything it can propose" in text, text


def test_running_a_finished_study_again_says_so_once(configs: tuple[Path, Path]) -> None:
    """Run again, the demo's command printed 'study digits_mlp already holds 20 finished trials (n_trials:
    20): nothing to run; --n-trials 30, say, runs 10 more' and, under the summary, 'note: the study already
    has 20 finished trials (target 20); raise --n-trials to run more': one fact, twice, in two wordings."""
    run, opt = configs
    args = ["optimize", "-r", str(run), "-o", str(opt)]
    _ok(*args, "-q")
    for extra in ([], ["-q"]):
        again = _ok(*args, *extra)
        assert "3/3 finished, 0 run now" in again.stdout
        said = " ".join(again.stderr.split())
        line = (
            "note: the study already holds 3 finished trials (n_trials: 3): nothing to run; --n-trials 13, say, "
            "runs 10 more"
        )
        assert line in said and said.count("finished trials") == 1, again.stderr


def test_a_finished_study_of_one_trial_says_one_finished_trial(configs: tuple[Path, Path]) -> None:
    """`--n-trials 1` run again said 'the study already holds 1 finished trials'."""
    run, opt = configs
    args = ["optimize", "-r", str(run), "-o", str(opt), "--n-trials", "1", "-q"]
    _ok(*args)
    said = " ".join(_ok(*args).stderr.split())
    assert "note: the study already holds 1 finished trial (n_trials: 1): nothing to run;" in said, said


def test_the_dry_run_of_a_resume_refuses_what_the_run_refuses(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A dry run of a study resumed with a changed run config or direction printed '1 to run' and exited 0,
    where the run itself refuses the resume: now it refuses with the run's line, and writes nothing."""
    storage_file = tmp_path / "studies" / "tiny.db"
    _optimize(tmp_path, run_dict, {**opt_dict, "n_trials": 1}, "-q")
    _close_sqlite_storages()  # as the CLI does at exit: the run's WAL goes back into tiny.db
    before = storage_file.read_bytes()
    for run, opt, line in (
        (
            {**run_dict, "epochs": 3},
            opt_dict,
            f"error: study 'tiny' was created with another experiment: {tmp_path / 'run.yaml'}: epochs: 2 -> 3. "
            "Resuming or joining it with these configs would mix two experiments: use a new study_name, or pass "
            "--allow-changed-config to go on with it anyway",
        ),
        (
            run_dict,
            {**opt_dict, "direction": "minimize"},
            f"error: {tmp_path / 'optimize.yaml'}: study 'tiny' in {opt_dict['storage']} was created to maximize "
            "val_accuracy, and this config "
            f"says minimize val_accuracy; use another study_name or storage",
        ),
    ):
        args = _optimize_args(tmp_path, run, opt)
        for command in ([*args, "--n-trials", "2"], [*args, "--n-trials", "2", "--dry-run"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, result.output
            assert result.stderr.strip() == line, result.stderr
    # The flag the line offers makes the dry run go on, still writing nothing.
    args = _optimize_args(tmp_path, {**run_dict, "epochs": 3}, opt_dict)
    planned = _ok(*args, "--n-trials", "2", "--dry-run", "--allow-changed-config", "--json")
    assert (json.loads(planned.stdout)["finished_trials"], json.loads(planned.stdout)["trials_to_run"]) == (
        1,
        1,
    )
    _close_sqlite_storages()  # anything the refused commands wrote to the WAL lands in tiny.db
    assert storage_file.read_bytes() == before


def test_the_dry_run_refuses_a_second_study_beside_a_journal_as_the_run_does(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A study kept in journal:studies/tiny.log, dry-run again without --storage, printed '3 in all' and
    exit 0, while the run refuses to start a second study in studies/tiny.db."""
    opt = {k: v for k, v in opt_dict.items() if k != "storage"}
    args = _optimize_args(tmp_path, run_dict, opt)
    _ok(*args, "--storage", "journal:studies/tiny.log", "-q")
    line = (
        "error: study 'tiny' is in journal:studies/tiny.log, and without --storage a new one would start in "
        "sqlite:///studies/tiny.db; give --storage journal:studies/tiny.log (or storage: in the config) to resume "
        "it, or another study_name"
    )
    for extra in ([], ["--dry-run"]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2 and result.stderr.strip() == line, result.output
    assert not (tmp_path / "studies" / "tiny.db").exists()


@pytest.mark.parametrize("run_from", ["configs", "sub"])
def test_a_journal_study_resumed_from_another_folder_without_storage_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch, run_from: str
) -> None:
    """A study run with `--storage journal:studies/tiny.log` from the project's root, run again without
    --storage from configs/ (or a subfolder) started a new study in configs/studies/tiny.db, silently: only
    a journal in the folder the command runs in was looked for, where a SQLite file was looked for beside the
    config and in the folders above too."""
    del opt_dict["storage"]  # the default: studies/tiny.db, from the folder the command runs in
    opt_dict["n_trials"] = 1
    (tmp_path / "configs").mkdir()
    write_configs(tmp_path / "configs", run_dict, opt_dict)
    first = ["optimize", "-r", "configs/run.yaml", "-o", "configs/optimize.yaml", "-q"]
    assert runner.invoke(app, [*first, "--storage", "journal:studies/tiny.log"]).exit_code == 0
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / run_from)
    at = "" if run_from == "configs" else "../configs/"
    args = ["optimize", "-r", f"{at}run.yaml", "-o", f"{at}optimize.yaml", "-q", "--n-trials", "2"]
    journal = tmp_path / "studies" / "tiny.log"
    line = (
        f"error: study 'tiny' is in journal:{journal}, in a folder above ({tmp_path}), and without --storage a "
        f"new one would start in sqlite:///studies/tiny.db ({tmp_path / run_from / 'studies' / 'tiny.db'}); give "
        f"--storage journal:{journal} to resume it, or another study_name\n"
    )
    for extra in ([], ["--dry-run"]):
        refused = runner.invoke(app, [*args, *extra], catch_exceptions=False)
        assert refused.exit_code == 2 and refused.output == line, refused.output
    assert not (tmp_path / run_from / "studies").exists()
    resumed = runner.invoke(app, [*args, "--storage", f"journal:{journal}"], catch_exceptions=False)
    assert resumed.exit_code == 0 and "2/2 finished, 1 run now" in resumed.output, resumed.output


@pytest.mark.parametrize("where", ["option", "config"])
def test_a_sqlite_storage_given_beside_a_journal_starts_the_study_there(
    tmp_path: Path, run_dict: dict, opt_dict: dict, where: str
) -> None:
    """A study kept in journal:studies/tiny.log, run again with `--storage sqlite:///studies/tiny.db` (or that
    storage: in the config) given on purpose, was refused as if no storage were given: "without --storage a
    new one would start in sqlite:///studies/tiny.db", --storage in the command. A storage given is the one
    asked for, as a relative --storage read from another folder is; only the default is refused there."""
    opt = {k: v for k, v in opt_dict.items() if k != "storage"}
    _ok(*_optimize_args(tmp_path, run_dict, opt), "--storage", "journal:studies/tiny.log", "-q")
    url = "sqlite:///studies/tiny.db"
    if where == "option":
        result = _ok(*_optimize_args(tmp_path, run_dict, opt), "--storage", url, "-q")
    else:
        result = _ok(*_optimize_args(tmp_path, run_dict, {**opt, "storage": url}), "-q")
    assert f"new study 'tiny' in {tmp_path / 'studies' / 'tiny.db'}" in result.stderr, result.output
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == opt_dict["n_trials"]


def test_a_command_joining_a_study_another_created_says_which_before_any_trial_finished(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The second machine of README's "Several machines", started as the first created the study (or a resume
    whose trials all failed), said nothing of the study it joined: no `new study` line (it did not create
    it) and no `resuming` line (no trial had finished); then `resuming study NAME: 0/N trials done`, of a study
    its creator works on. Now it says `joining study NAME: 0/N trials done, none running yet`."""
    import time

    from hpotool.owners import CREATED_BY
    from hpotool.plan import prepare_study
    from hpotool.study import open_study

    args = _optimize_args(tmp_path, run_dict, opt_dict)
    machine_a, _ = open_study(prepare_study(Path(args[2]), Path(args[4])))  # the study, no trial yet
    creator = {"host": "machine-a.example", "pid": 4242, "time": time.time()}
    machine_a._storage.set_study_system_attr(machine_a._study_id, CREATED_BY, creator)
    result = _ok(*args)
    lines = result.stderr.splitlines()
    assert lines[0] == f"joining study tiny: 0/{opt_dict['n_trials']} trials done, none running yet", (
        result.stderr
    )


def test_a_machine_joining_by_name_without_the_creator_s_gpu_is_told_to_give_device(
    configs: tuple[Path, Path],
) -> None:
    # The creator's run config said device: cuda; a CPU machine joining by name alone was told to "use
    # device: auto or cpu" in a config it does not have.
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run, opt = configs
    storage = yaml.safe_load(opt.read_text())["storage"]
    _ok("optimize", "-r", str(run), "-o", str(opt), "--n-trials", "1", "-q")
    study = optuna.load_study(study_name="tiny", storage=storage)
    study.set_user_attr("run_config", {**study.user_attrs["run_config"], "device": "cuda"})  # a GPU machine's
    join = ["optimize", "--study-name", "tiny", "--storage", storage, "--n-trials", "2", "-q"]
    result = runner.invoke(app, join)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'tiny': run_config: device: cuda was asked for but CUDA is not available here; the device "
        "is not part of the experiment: give --device auto (or cpu) to train this machine's trials here\n"
    )
    result = runner.invoke(app, [*join, "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0 and "2/2 finished" in result.stdout, result.output


def test_the_readme_commands_block_names_every_command_and_option_as_help_has_them() -> None:
    """README's "## Commands" synopsis against the CLI itself: every command, and for each the options its
    --help lists (by their long or short name), no more and no fewer, so a renamed or added flag cannot
    leave it behind."""
    import re

    import typer.main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Commands\n\n```\n", 1)[1].split("```", 1)[0]
    shown: dict[str, set[str]] = {}
    command = ""
    for line in block.splitlines():
        if line.startswith("hpotool "):
            command = line.split()[1]
        shown.setdefault(command, set()).update(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", line))
    group: Any = typer.main.get_command(app)
    assert set(shown) == set(group.commands), set(shown) ^ set(group.commands)
    for name, cmd in group.commands.items():
        params = [set(p.opts) for p in cmd.params if "--help" not in p.opts]
        assert not [p for p in params if not p & shown[name]], (name, "not in the README")
        assert not [o for o in shown[name] if not any(o in p for p in params)], (name, "not an option")
    # hpotool's own options (--debug, --version) come in a line under the block: --version was in no line
    below = readme.split("## Commands\n\n```\n", 1)[1].split("```", 1)[1].split("\n\n", 2)[1]
    root = [o for p in group.params for o in p.opts if o.startswith("--") and o != "--help"]
    assert root and all(f"`hpotool {o}" in below for o in root), (root, below)


def test_optimize_help_says_its_storage_overrides_the_optimize_configs() -> None:
    """optimize's --storage said only "(default: SQLite under studies/)", where --n-trials, --timeout and
    --seed say what they override: it wins over the optimize config's `storage:`, whose default it is not."""
    result = runner.invoke(app, ["optimize", "--help"], catch_exceptions=False, terminal_width=200)
    text = " ".join(result.output.split())
    # The metavar is typer's: <str> (0.26 on), TEXT before.
    assert re.search(
        r"--storage \S+ Override storage \(default: the optimize config's storage:, else "
        r"sqlite:///studies/<study-name>\.db\)\.",
        text,
    ), text


def test_every_help_names_a_studys_own_folder_as_export_best_does() -> None:
    """export-best's --out said studies/<study-name>/, report's --out and optimize's --report studies/<name>/
    for the same folder: the --study-name given."""
    import typer.main

    group: Any = typer.main.get_command(app)
    for name in group.commands:
        result = runner.invoke(app, [name, "--help"], catch_exceptions=False, terminal_width=200)
        assert "studies/<name>/" not in result.output, (name, result.output)
    result = runner.invoke(app, ["report", "--help"], catch_exceptions=False, terminal_width=200)
    assert "studies/<study-name>/report.<format>" in result.output


def test_a_device_this_machine_lacks_names_the_flag_or_the_file_that_asked_for_it(
    configs: tuple[Path, Path], tmp_path: Path
) -> None:
    """ "error: device: cuda was asked for ...; use device: auto or cpu" named neither; given by --device,
    editing the config it pointed to changed nothing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run_path, opt_path = configs
    for cmd in (["train", "-r", str(run_path)], ["optimize", "-r", str(run_path), "-o", str(opt_path)]):
        result = runner.invoke(app, [*cmd, "--device", "cuda"])
        assert result.exit_code == 2, result.output
        assert (
            result.stderr == "error: --device cuda: CUDA is not available here; give --device auto or cpu\n"
        )
    run_path.write_text(run_path.read_text().replace("device: cpu", "device: cuda"))
    result = runner.invoke(app, ["train", "-r", str(run_path)])
    assert result.exit_code == 2 and result.stderr == (
        f"error: {run_path}: device: cuda was asked for but CUDA is not available here; use device: auto or cpu\n"
    )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "studies").exists()


def test_a_bad_heartbeat_setting_writes_no_journal(configs: tuple[Path, Path], tmp_path: Path) -> None:
    """Journal storages have no heartbeat, so the setting was first read after the journal had been
    created with the study in it; it is now refused before anything is written, as on SQLite."""
    run_path, opt_path = configs
    journal = tmp_path / "tiny.log"
    cmd = ["optimize", "-r", str(run_path), "-o", str(opt_path), "--storage", f"journal:{journal}", "-q"]
    result = runner.invoke(app, cmd, env={"HPOTOOL_HEARTBEAT_GRACE": "0"})
    assert result.exit_code == 2 and result.stderr == (
        "error: environment variable HPOTOOL_HEARTBEAT_GRACE='0': give a whole number of seconds, 1 or more "
        "(default 60), or unset it\n"
    )
    assert not journal.exists()


def test_optimize_says_when_it_creates_a_study_and_where_and_not_when_it_resumes(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A relative storage run from another folder made a new, empty study in another file without a word
    (only the summary's "3 run now" hinted at it): a user who meant to resume lost track of the study."""
    opt_dict.update(storage="sqlite:///studies/tiny.db", n_trials=1)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "-q"]
    created = _ok(*args)
    assert created.stderr.splitlines()[0] == f"new study 'tiny' in {tmp_path / 'studies' / 'tiny.db'}"
    resumed = runner.invoke(app, [*args, "--n-trials", "2"], catch_exceptions=False)
    assert resumed.exit_code == 0 and "new study" not in resumed.output, resumed.output
    as_json = runner.invoke(app, [*args, "--json", "--storage", "journal:j.log"], catch_exceptions=False)
    assert as_json.stderr == f"new study 'tiny' in {tmp_path / 'j.log'}\n"
    assert json.loads(as_json.stdout)["study_name"] == "tiny"  # stdout stays machine-readable


@pytest.mark.parametrize("storage", ["sqlite:///studies/tiny.db", "journal:studies/tiny.log", None])
def test_a_relative_storage_run_from_another_folder_is_refused_where_the_config_holds_the_study(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch, storage: str | None
) -> None:
    """The config's `storage: sqlite:///studies/x.db` (or the default) is read from the folder the command
    runs in: `hpotool optimize -o ../optimize.yaml` from a subfolder started a new study in sub/studies/,
    silently, while the study to resume sat beside the config."""
    opt_dict["n_trials"] = 1
    if storage is None:
        del opt_dict["storage"]
    else:
        opt_dict["storage"] = storage
    write_configs(tmp_path, run_dict, opt_dict)
    assert runner.invoke(app, ["optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q"]).exit_code == 0
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    args = ["optimize", "-r", "../run.yaml", "-o", "../optimize.yaml", "-q", "--n-trials", "2"]
    refused = runner.invoke(app, args, catch_exceptions=False)
    url = storage or "sqlite:///studies/tiny.db"
    file = url.partition(":")[2].lstrip("/")
    beside = url.replace(file, str(tmp_path / file))
    assert refused.exit_code == 2 and refused.output == (
        f"error: study 'tiny' is in {tmp_path / file}, beside ../optimize.yaml, but the relative storage {url} "
        f"is read from the folder the command runs in, where a new study would start ({tmp_path / 'sub' / file}); "
        f"run from {tmp_path}, or give --storage {beside}, to resume it (--storage {url} starts a new one here)\n"
    )
    assert not (tmp_path / "sub" / "studies").exists()
    resumed = runner.invoke(app, [*args, "--storage", beside], catch_exceptions=False)
    assert resumed.exit_code == 0 and "new study" not in resumed.output, resumed.output
    assert "2/2 finished, 1 run now" in resumed.output
    new = runner.invoke(app, [*args, "--storage", url], catch_exceptions=False)  # on purpose: a new one
    assert new.exit_code == 0 and f"new study 'tiny' in {tmp_path / 'sub' / file}" in new.output


@pytest.mark.parametrize("run_from", ["configs", "sub"])
def test_a_default_storage_run_from_the_configs_folder_is_refused_where_the_project_holds_the_study(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch, run_from: str
) -> None:
    """The README's layout: configs/ and studies/ side by side. `cd configs` and `-o optimize.yaml`, or
    `-o ../configs/optimize.yaml` from a subfolder, started a new study in configs/studies/ (sub/studies/),
    silently retraining the study from trial 0, while `hpotool trials` run there named the study above."""
    del opt_dict["storage"]  # the default: studies/tiny.db, from the folder the command runs in
    opt_dict["n_trials"] = 1
    (tmp_path / "configs").mkdir()
    write_configs(tmp_path / "configs", run_dict, opt_dict)
    first = ["optimize", "-r", "configs/run.yaml", "-o", "configs/optimize.yaml", "-q"]
    assert runner.invoke(app, first, catch_exceptions=False).exit_code == 0
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / run_from)
    at = "" if run_from == "configs" else "../configs/"
    args = ["optimize", "-r", f"{at}run.yaml", "-o", f"{at}optimize.yaml", "-q", "--n-trials", "2"]
    refused = runner.invoke(app, args, catch_exceptions=False)
    study = tmp_path / "studies" / "tiny.db"
    assert refused.exit_code == 2 and refused.output == (
        f"error: study 'tiny' is in {study}, in a folder above ({tmp_path}), but the relative storage "
        f"sqlite:///studies/tiny.db is read from the folder the command runs in, where a new study would start "
        f"({tmp_path / run_from / 'studies' / 'tiny.db'}); run from {tmp_path}, or give --storage "
        f"sqlite:///{study}, to resume it (--storage sqlite:///studies/tiny.db starts a new one here)\n"
    )
    assert not (tmp_path / run_from / "studies").exists()
    dry = runner.invoke(app, [*args, "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 2 and dry.output == refused.output
    resumed = runner.invoke(app, [*args, "--storage", f"sqlite:///{study}"], catch_exceptions=False)
    assert resumed.exit_code == 0 and "2/2 finished, 1 run now" in resumed.output, resumed.output


def test_a_new_study_of_a_name_close_to_a_stored_one_says_which_it_may_have_meant(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A misspelt --study-name (or study_name) started a new study, silently, instead of resuming the one
    meant: the read commands say "did you mean", optimize said nothing."""
    del opt_dict["storage"]  # the default: studies/<name>.db, one file per study
    opt_dict.update(study_name="digits_mlp", n_trials=1)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "-q"]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    typo = runner.invoke(app, [*args, "--study-name", "digts_mlp"], catch_exceptions=False)
    assert typo.stderr.splitlines()[0] == (
        f"new study 'digts_mlp' in {tmp_path / 'studies' / 'digts_mlp.db'} (did you mean 'digits_mlp', in "
        f"{tmp_path / 'studies' / 'digits_mlp.db'}?)"
    )
    shared = ["--storage", "sqlite:///studies/digits_mlp.db"]  # one storage holding several studies
    typo = runner.invoke(app, [*args, *shared, "--study-name", "digits_mpl"], catch_exceptions=False)
    assert typo.stderr.splitlines()[0] == (
        f"new study 'digits_mpl' in {tmp_path / 'studies' / 'digits_mlp.db'} (did you mean 'digits_mlp', in "
        f"{tmp_path / 'studies' / 'digits_mlp.db'}?)"
    )
    other = runner.invoke(app, [*args, *shared, "--study-name", "resnet"], catch_exceptions=False)
    assert other.stderr.splitlines()[0] == f"new study 'resnet' in {tmp_path / 'studies' / 'digits_mlp.db'}"


def test_a_dry_run_of_a_new_study_of_a_name_close_to_a_stored_one_says_which_it_may_have_meant(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`--dry-run`, the way to check configs before a run, printed "20 in all" for a misspelt study_name, the
    run then creating a second study beside the one meant; it says now, in the note the new study's line
    carries, and still writes nothing (its own file, or the file of the study meant)."""
    del opt_dict["storage"]  # the default: studies/<name>.db, one file per study
    opt_dict.update(study_name="digits_mlp", n_trials=1)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "-q"]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    meant = tmp_path / "studies" / "digits_mlp.db"
    before = sorted((p.name, p.read_bytes()) for p in meant.parent.iterdir())
    dry = runner.invoke(app, [*args, "--study-name", "digts_mlp", "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert dry.stderr.splitlines()[0] == (
        f"note: no study 'digts_mlp' in sqlite:///studies/digts_mlp.db yet: the run would create it (did you "
        f"mean 'digits_mlp', in {meant}?)"
    ), dry.stderr
    shared = ["--storage", "sqlite:///studies/digits_mlp.db"]  # one storage holding several studies
    dry = runner.invoke(app, [*args, *shared, "--study-name", "digits_mpl", "--dry-run", "--json"])
    assert dry.exit_code == 0 and json.loads(dry.stdout)["finished_trials"] == 0, dry.output
    assert dry.stderr.splitlines()[0] == (
        f"note: no study 'digits_mpl' in sqlite:///studies/digits_mlp.db yet: the run would create it (did you "
        f"mean 'digits_mlp', in {meant}?)"
    ), dry.stderr
    assert sorted((p.name, p.read_bytes()) for p in meant.parent.iterdir()) == before
    for name in ("digits_mlp", "resnet"):  # the study itself, and a name near none: no note
        dry = runner.invoke(app, [*args, *shared, "--study-name", name, "--dry-run"], catch_exceptions=False)
        assert dry.exit_code == 0 and "note: no study" not in dry.stderr, dry.stderr


def test_a_typo_is_told_the_name_it_swapped_letters_of_not_another_as_close_to_difflib(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Beside the README's digits_mlp and digits_pfl (examples/pfl_optimize.yaml), `digits_mpl` (two letters
    of digits_mlp swapped) was asked "did you mean 'digits_pfl'": difflib rates both alike and, at a tie,
    puts the name that sorts last first. The one fewer edits away comes first now, in every did-you-mean."""
    import optuna

    (tmp_path / "studies").mkdir()
    for name in ("digits_mlp", "digits_pfl"):
        optuna.create_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies' / name}.db")
    read = runner.invoke(app, ["trials", "--study-name", "digits_mpl"])
    assert read.exit_code == 2 and "(did you mean 'digits_mlp'?)" in read.stderr, read.stderr
    del opt_dict["storage"]  # the default: studies/<name>.db, one file per study
    opt_dict.update(study_name="digits_mpl", n_trials=1)
    new = runner.invoke(app, [*_optimize_args(tmp_path, run_dict, opt_dict), "-q"], catch_exceptions=False)
    assert new.stderr.splitlines()[0] == (
        f"new study 'digits_mpl' in {tmp_path / 'studies' / 'digits_mpl.db'} (did you mean 'digits_mlp', in "
        f"{tmp_path / 'studies' / 'digits_mlp.db'}?)"
    )


def test_a_new_study_in_a_series_gets_no_did_you_mean_and_a_typo_still_does(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Studies named in a series (run-12-01, run-12-02; exp1, exp10; digits_mlp, digits_mlp_v2) are one
    character apart: each new one was told '(did you mean' the one before. A typo still is."""
    import optuna

    url = opt_dict["storage"]
    (tmp_path / "studies").mkdir()
    for name in ("run-12-01", "exp1", "digits_mlp"):
        optuna.create_study(study_name=name, storage=url)
    opt_dict.update(n_trials=1)
    args = [*_optimize_args(tmp_path, run_dict, opt_dict), "-q", "--study-name"]
    where = tmp_path / "studies" / "tiny.db"
    for name in ("run-12-02", "exp10", "digits_mlp_v2"):
        new = runner.invoke(app, [*args, name], catch_exceptions=False)
        assert new.stderr.splitlines()[0] == f"new study {name!r} in {where}"
    typo = runner.invoke(app, [*args, "digits_mpl"], catch_exceptions=False)
    assert (
        typo.stderr.splitlines()[0]
        == f"new study 'digits_mpl' in {where} (did you mean 'digits_mlp', in {where}?)"
    )


def test_a_new_study_named_apart_on_purpose_gets_no_did_you_mean(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Run in the README's order, 6 of its 10 studies after the demo's digits_mlp were told '(did you mean' a
    study they were not meant to be: refine's digits_mlp_stage2 (the name hpotool gave it), digits_small_models,
    digits_small_and_good ('did you mean digits_small_models'), digits_pfl, digits_warm and digits_tracked
    ('did you mean digits_mlp_stage2'). A name a typo or two from another one still is."""
    import optuna

    from .conftest import write_yaml

    url = opt_dict["storage"]
    (tmp_path / "studies").mkdir()
    optuna.create_study(study_name="digits_mlp", storage=url)
    opt_dict.update(n_trials=1)
    rp, op = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    args = ["optimize", "-r", str(rp), "-o", str(op), "-q", "--study-name"]
    where = tmp_path / "studies" / "tiny.db"
    studies = (
        "digits_mlp_stage2",
        "digits_small_models",
        "digits_small_and_good",
        "digits_pfl",
        "digits_warm",
    )
    for name in (*studies, "digits_tracked"):
        new = runner.invoke(app, [*args, name], catch_exceptions=False)
        assert new.stderr.splitlines()[0] == f"new study {name!r} in {where}"
    for typo in ("digits-mlp", "digitsmlp", "digts_mpl"):
        told = runner.invoke(app, [*args, typo], catch_exceptions=False)
        assert (
            told.stderr.splitlines()[0]
            == f"new study {typo!r} in {where} (did you mean 'digits_mlp', in {where}?)"
        )


@pytest.mark.parametrize("width", [80, 50])
def test_the_summary_at_80_or_50_columns_keeps_the_storage_url_and_the_names_whole(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    # `hpotool optimize ... > summary.txt` (80 columns) with a storage path longer than its cell folded the URL
    # mid-path over two lines, and it pasted as two; on a terminal 50 wide, "optimizer.weight_decay" folded
    # too ("  optimizer.weight_dec" over "ay"). Now the names are whole and the URL goes under the table whole.
    import hpotool.cli.terminal

    from .cli_run import optimize

    opt_dict["search_space"]["optimizer.weight_decay"] = {
        "type": "float",
        "low": 1e-6,
        "high": 1e-2,
        "log": True,
    }
    run, opt = write_configs(tmp_path, run_dict, opt_dict)
    storage = f"sqlite:///{tmp_path / 'experiments_of_the_team' / 'a_project_with_a_longer_name' / 'tiny.db'}"
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", width)
    lines = optimize(run, opt, storage, 2).stdout.splitlines()
    table = lines[: lines.index(f"storage: {storage}")]  # the URL under the table, one line however long
    assert table[0].startswith("study tiny") and max(len(line) for line in table) <= width, lines
    assert not any("│ storage" in line for line in table), lines
    assert any(line.startswith("│   optimizer.weight_decay ") for line in lines), lines


def test_train_names_its_run_folder_whole_however_long(
    tmp_path: Path, run_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `hpotool train -r run.yaml --out FOLDER`: the folder was the table's title, which rich wraps at the
    # table's width (its cells', 67 columns here), so a folder longer than that folded mid-name over two
    # lines however wide the terminal (200 here), and pasted as two. Now it is a line of its own.
    import hpotool.cli.terminal

    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 200)
    out = tmp_path / ("a_run_folder_with_a_rather_long_name_to_keep_the_model_in_" + "x" * 40)
    result = runner.invoke(
        app, ["train", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"run {out}" and lines[1].startswith("┌"), result.stdout


def test_the_dry_run_s_plan_at_80_columns_keeps_the_storage_url_whole(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `hpotool optimize ... --dry-run > plan.txt` (80 columns) with a storage path longer than its cell folded
    # the URL mid-path over two lines, as the summary did: it goes under the table, whole, as there.
    import hpotool.cli.terminal

    run, opt = write_configs(tmp_path, run_dict, opt_dict)
    storage = f"sqlite:///{tmp_path / 'experiments_of_the_team' / 'a_project_with_a_longer_name' / 'tiny.db'}"
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", storage, "--dry-run"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("plan of study tiny (dry run)") and lines[-1] == f"storage: {storage}", lines
    assert max(len(line) for line in lines[:-1]) <= 80 and not any("│ storage" in line for line in lines), (
        lines
    )


def test_summary_and_audit_say_which_trials_repeated_a_configuration_already_run(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Four trials of a random sampler over a space of two configurations: at least two of them train a
    configuration already run again, for the same result; the summary and audit said nothing of it."""
    run_dict["epochs"] = 1
    opt_dict["n_trials"] = 4
    opt_dict["sampler"] = {"name": "random", "kwargs": {"seed": 0}}
    opt_dict["search_space"] = {"model.dropout": {"type": "categorical", "choices": [0.0, 0.25]}}
    result = _optimize(tmp_path, run_dict, opt_dict, "--quiet")
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    first: dict[float, int] = {}
    pairs = []
    for t in study.trials:
        d = t.params["model.dropout"]
        if d in first:
            pairs.append(f"#{t.number} = #{first[d]}")
        else:
            first[d] = t.number
    assert len(pairs) >= 2
    line = (
        f"{len(pairs)} trials repeated a configuration already run ({', '.join(pairs)}), training it again for "
        "the same result; the space holds 2 configurations, and sampler grid or bruteforce runs each of them once"
    )
    assert line in " ".join(result.stderr.split()), result.stderr
    audit = _ok("audit", "--study-name", "tiny", "--storage", opt_dict["storage"])
    assert line + "." in " ".join(audit.stdout.split()), audit.stdout


def test_a_grid_over_a_conditional_space_names_bruteforce_for_its_repeats(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A grid runs the points where a condition fails as one configuration, once per point: the repeats'
    line names bruteforce, not the grid the study already uses."""
    run_dict["epochs"] = 1
    opt_dict["n_trials"] = 4
    opt_dict["sampler"] = {"name": "grid"}
    opt_dict["search_space"] = {
        "model.dropout": {"type": "categorical", "choices": [0.0, 0.25]},
        "model.hidden": {"type": "categorical", "choices": [8, 16], "when": {"model.dropout": 0.25}},
    }
    result = _optimize(tmp_path, run_dict, opt_dict, "--quiet")
    shown = " ".join(result.stderr.split())
    assert "1 trial repeated a configuration already run (#" in shown, shown
    assert (
        # it said "at most 4": dropout 0.0 without hidden, 0.25 with either of its two, are 3
        "the space holds 3 configurations, and sampler bruteforce runs each of them once" in shown
    ), shown


def _template_with(tmp_path: Path, *edits: tuple[str, str]) -> list[str]:
    """`optimize --dry-run` on the shipped run template and the optimize template with `edits` made to its
    text (old, new)."""
    configs = Path(__file__).resolve().parents[1] / "configs"
    text = (configs / "optimize_template.yaml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "bad.yaml").write_text(text)
    return [
        "optimize",
        "-r",
        str(configs / "run_template.yaml"),
        "-o",
        str(tmp_path / "bad.yaml"),
        "--dry-run",
    ]


_LRR = ("optimizer.lr: ", "optimizer.lrr:")
_DROPOT = (
    "model.dropout:      {type: float, low: 0.0, high: 0.5}",
    "model.dropot: {type: float, low: 0.5, high: 0.0}",
)


def test_a_search_space_with_two_mistakes_is_told_both_in_one_run(tmp_path: Path) -> None:
    # it told model.dropot's range alone, and optimizer.lrr on the next run
    result = runner.invoke(app, _template_with(tmp_path, _LRR, _DROPOT))
    assert result.exit_code == 2, result.output
    bad = tmp_path / "bad.yaml"
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        f"error: {bad}: search_space.optimizer.lrr: optimizer 'adam' takes no argument 'lrr' (did you mean "
        f"'optimizer.lr'?)"
    )
    assert lines[1] == (
        f"error: {bad}: search_space.model.dropot: low must be at most high, got low: 0.5, high: 0.0; swap "
        f"them (low: 0.0, high: 0.5)"
    )
    assert "Traceback" not in result.output


def test_a_search_space_with_three_mistakes_is_told_each_once(tmp_path: Path) -> None:
    # the misspelt activation is told under its key alone, not again under batch_size, whose smallest
    # batch is tried beside it
    tanhh = ("choices: [relu, gelu, tanh]", "choices: [relu, gelu, tanhh]")
    result = runner.invoke(app, _template_with(tmp_path, _LRR, _DROPOT, tanhh))
    assert result.exit_code == 2, result.output
    keys = [line.split(": ")[2].partition(":")[0] for line in result.stderr.splitlines()]
    assert keys == [
        "search_space.optimizer.lrr",
        "search_space.model.dropot",
        "search_space.model.activation",
    ]
    assert "unknown activation 'tanhh' (did you mean 'tanh'?)" in result.stderr.splitlines()[2]
