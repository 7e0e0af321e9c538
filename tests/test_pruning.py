from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.factories import make_pruner
from hpotool.pruning import NOT_EXPOSED, pruned_rows


def _study(name: str, kwargs: dict[str, Any], direction: str) -> optuna.Study:
    """A seeded study of learning curves `x * (1 + step) / 8` (or its negative when minimizing)."""
    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.RandomSampler(seed=1), pruner=make_pruner(name, kwargs)
    )
    sign = 1 if direction == "maximize" else -1

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(8):
            trial.report(sign * x * (1 + step) / 8, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {step + 1} epochs")
        return sign * x

    study.optimize(objective, n_trials=30)
    return study


def _missed(value: float, threshold: float, direction: str) -> bool:
    return value < threshold if direction == "maximize" else value > threshold


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize(
    ("name", "kwargs", "note"),
    [
        ("median", {"n_startup_trials": 3}, "median of "),
        ("percentile", {"percentile": 25.0, "n_startup_trials": 3}, "25th percentile of "),
        ("successive_halving", {"min_resource": 1, "reduction_factor": 2}, "cut-off of rung "),
    ],
)
def test_the_threshold_is_the_one_the_trial_missed(
    name: str, kwargs: dict[str, Any], note: str, direction: str
) -> None:
    study = _study(name, kwargs, direction)
    rows = pruned_rows(study, {"name": name, "kwargs": kwargs})
    assert len(rows) >= 3
    for row in rows:
        trial = study.trials[row.number]
        assert row.epoch == trial.last_step and row.value == trial.intermediate_values[row.epoch]
        assert row.threshold is not None and row.threshold_note.startswith(note), row
        if name != "successive_halving":  # the step it compares at, as the epochs run by then
            assert f"complete trials after {row.epoch + 1} epoch" in row.threshold_note, row
        if name == "successive_halving":  # the rung's own value is what competes
            rung = max(k for k in trial.system_attrs if k.startswith("completed_rung_"))
            compared = trial.system_attrs[rung]
        else:  # percentile pruners compare the trial's best value so far
            values = trial.intermediate_values.values()
            compared = max(values) if direction == "maximize" else min(values)
        assert _missed(compared, row.threshold, direction), row


def test_threshold_pruner_names_its_bound() -> None:
    study = _study("threshold", {"lower": 0.05}, "maximize")
    rows = pruned_rows(study, {"name": "threshold", "kwargs": {"lower": 0.05}})
    assert rows and all(r.threshold == 0.05 and r.threshold_note == "the pruner's lower bound" for r in rows)
    assert all(r.value is not None and r.value < 0.05 for r in rows)


def test_pruners_without_a_threshold_say_so() -> None:
    study = _study("hyperband", {"min_resource": 1, "max_resource": 8}, "maximize")
    rows = pruned_rows(study, {"name": "hyperband", "kwargs": {"min_resource": 1, "max_resource": 8}})
    assert rows and all(r.threshold is None and r.threshold_note == NOT_EXPOSED for r in rows)
    assert {r.threshold_note for r in pruned_rows(study, None)} == {"the study does not record its pruner"}


def test_each_pruned_trial_is_judged_by_the_pruner_it_ran_under() -> None:
    median = {"name": "median", "kwargs": {"n_startup_trials": 3}}
    threshold = {"name": "threshold", "kwargs": {"lower": 0.05}}
    study = _study("median", median["kwargs"], "maximize")
    first = len(study.trials)
    # `--allow-changed-config` from median to threshold, as fingerprint.check records it
    study.set_user_attr(
        "config_changes",
        [
            {
                "changes": ["pruner.name"],
                "from_trial": first,
                "previous": {"optimize_config": {"pruner": median}},
            }
        ],
    )
    study.set_user_attr("optimize_config", {"pruner": threshold})
    trial = study.ask()
    trial.report(0.01, 0)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    rows = pruned_rows(study, threshold)  # the report passes the current config's pruner
    before = [r for r in rows if r.number < first]
    assert before and all(r.threshold_note.startswith("median of ") for r in before)
    (after,) = [r for r in rows if r.number >= first]
    assert after.threshold == 0.05 and after.threshold_note == "the pruner's lower bound"


def test_a_threshold_over_one_complete_trial_counts_it_in_the_singular() -> None:
    # "median of 1 complete trials after 2 epochs"
    median = {"name": "median", "kwargs": {"n_startup_trials": 1}}
    study = optuna.create_study(direction="maximize", pruner=make_pruner(median["name"], median["kwargs"]))
    first = study.ask()
    for step in range(4):
        first.report(0.9, step)
    study.tell(first, 0.9)
    second = study.ask()
    second.report(0.1, 0)
    second.report(0.2, 1)
    assert second.should_prune()
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    (row,) = pruned_rows(study, median)
    assert row.threshold == 0.9 and row.threshold_note.startswith(
        "median of 1 complete trial after 2 epochs;"
    ), row


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_trial_that_diverged_missed_no_threshold(direction: str) -> None:
    # A trial pruned because its metric went NaN or infinite (`diverged_at`, in an epoch or at the end of
    # a user's training function) was given the pruner's threshold at its last finite epoch, as "the
    # threshold it missed", though its value there cleared it.
    median = {"name": "median", "kwargs": {"n_startup_trials": 1}}
    study = optuna.create_study(direction=direction, pruner=make_pruner(median["name"], median["kwargs"]))
    good, bad = (0.9, 0.1) if direction == "maximize" else (0.1, 0.9)
    first = study.ask()
    for step in range(3):
        first.report(bad, step)
    study.tell(first, bad)
    diverged = study.ask()
    for step in range(3):
        diverged.report(good, step)  # better than the median at every epoch
    diverged.set_user_attr("diverged_at", {"epoch": 2, "metric": "val_loss", "value": "nan"})
    diverged.set_user_attr("prune_reason", "val_loss is nan at the end of the run")
    study.tell(diverged, state=optuna.trial.TrialState.PRUNED)
    (row,) = pruned_rows(study, median)
    assert (row.number, row.epoch, row.value, row.threshold) == (1, 2, good, None), row
    assert row.threshold_note == (
        "none: the trial diverged (its val_loss was nan after 3 epochs); the pruner did not stop it"
    )


def test_optimize_where_the_pruner_pruned_every_trial_says_so_by_its_rule_and_what_to_change(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """The summary of a study whose threshold pruner pruned every trial showed `pruned 2` and `best: no
    complete trial yet`, nothing of why; export-best then said its pruner pruned them all. The summary now
    says so itself, with the pruner's rule and the fix."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_configs

    opt_dict.update(n_trials=2, pruner={"name": "threshold", "kwargs": {"lower": 0.999}})
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    result = CliRunner().invoke(app, ["optimize", "-r", str(rp), "-o", str(op)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "pruned 2" in result.stdout and "no complete trial yet" in result.stdout, result.stdout
    note = " ".join(result.stderr.split())
    assert re.search(
        r"note: every trial was pruned: its pruner \(threshold: lower=0\.999\) pruned them all before the "
        r"last epoch \(trial 0: pruned after 1 of 2 epochs \(val_accuracy=0\.\d+\)\): loosen the optimize "
        r"config's pruner \(or pruner: \{name: nop\}\) and run hpotool optimize again",
        note,
    ), result.stderr
    # --json carries it too
    opt_dict.update(study_name="tiny_json")
    rp, op = write_configs(tmp_path, run_dict, opt_dict)
    as_json = CliRunner().invoke(app, ["optimize", "-r", str(rp), "-o", str(op), "--json"])
    data = json.loads(as_json.stdout)
    assert data["extra"]["pruned"].startswith("every trial was pruned: "), as_json.stdout
