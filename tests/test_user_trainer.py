"""Users' own training functions, through the real CLI: a scikit-learn model and a wrapped PyTorch loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.errors import HpoError
from tests.cli_run import optimize

REPO = Path(__file__).resolve().parents[1]
LOSS_STUDY = {"study_name": "u", "metric": "val_loss", "direction": "minimize"}  # the tests' optimize configs


@pytest.mark.parametrize(
    ("run", "opt", "study", "params"),
    [
        ("sklearn_run", "sklearn_optimize", "sklearn_digits", {"trainer.alpha", "trainer.eta0"}),
        ("torch_loop_run", "torch_loop_optimize", "sine_loop", {"optimizer.lr", "trainer.width"}),
    ],
)
def test_own_training_function(
    run: str, opt: str, study: str, params: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    optimize(f"examples/{run}.yaml", f"examples/{opt}.yaml", storage, 6)
    s = optuna.load_study(study_name=study, storage=storage)
    finished = [t for t in s.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6 and not [t for t in s.trials if t.state == TrialState.FAIL]
    for t in finished:
        assert set(t.params) == params
        assert t.user_attrs["history"] and len(t.intermediate_values) == t.user_attrs["epochs_run"]


def test_a_trainer_that_misses_the_metric_stops_the_study_at_trial_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function whose returned dict lacks the study's metric fails every trial alike: it went on to
    `--max-failures` (exit 1); it now stops at trial 0 with one line naming the function, the keys it
    returned and the metric it must return (exit 2), as the other broken contracts do."""
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text(
        (REPO / "examples/torch_loop_optimize.yaml")
        .read_text()
        .replace("metric: val_loss", "metric: val_accuracy")
        .replace("direction: minimize", "direction: maximize")
    )
    result = optimize("examples/torch_loop_run.yaml", str(opt), storage, 3, exit_code=2)
    reason = (
        "examples.torch_loop_trainer:fit returned {val_loss}, without val_accuracy, the "
        "study's metric; return it from fit, such as {'val_accuracy': 0.5} (the values given to report() do "
        "not count), or optimize a metric it returns under a new study_name (this study is made for "
        "'val_accuracy')"
    )
    created, error = result.stderr.strip().split("\n")  # the study it made, then the one line
    assert created == f"new study 'sine_loop' in {tmp_path / 'u.db'}"
    assert error.startswith(
        f"error: examples/torch_loop_run.yaml: trainer.function: trial 0 failed: {reason}; this"
    )
    assert "Traceback" not in result.output
    (trial,) = optuna.load_study(study_name="sine_loop", storage=storage).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == reason


def test_a_misspelt_metric_a_trainer_does_not_return_names_the_one_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`metric: val_lss` for a fit returning val_loss was told only to return val_lss from fit; and once the
    user fixed the optimize config, the study made for val_lss refused it ("optimizes 'val_lss', and the
    config says 'val_loss'"). The line names the metric meant, and that the fix needs a new study_name."""
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text(
        (REPO / "examples/torch_loop_optimize.yaml")
        .read_text()
        .replace("metric: val_loss", "metric: val_lss")
    )
    result = optimize("examples/torch_loop_run.yaml", str(opt), storage, 3, exit_code=2)
    assert (
        "examples.torch_loop_trainer:fit returned {val_loss}, without val_lss, the study's metric (did you mean "
        "'val_loss', which it returned? then fix the optimize config's metric, with a new study_name: this study "
        "is made for 'val_lss'); return it from fit, such as {'val_lss': 0.5}"
    ) in result.stderr
    opt.write_text(opt.read_text().replace("metric: val_lss", "metric: val_loss"))
    refused = optimize("examples/torch_loop_run.yaml", str(opt), storage, 3, exit_code=2)
    assert "optimizes 'val_lss', and this config says 'val_loss'; use another study_name" in refused.stderr
    opt.write_text(opt.read_text().replace("study_name: sine_loop", "study_name: sine_loop2"))
    optimize("examples/torch_loop_run.yaml", str(opt), storage, 1, exit_code=0)


def test_a_metric_a_prefix_away_from_the_one_a_trainer_returns_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`metric: loss` for a fit returning val_loss (or `f1` for val_f1) is no typo a letter or two off, so the
    line told only to return `loss` from fit or optimize another metric, which the study made for `loss` then
    refused. It names val_loss, and that the fix needs a new study_name."""
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text(
        (REPO / "examples/torch_loop_optimize.yaml").read_text().replace("metric: val_loss", "metric: loss")
    )
    result = optimize("examples/torch_loop_run.yaml", str(opt), storage, 3, exit_code=2)
    assert (
        "examples.torch_loop_trainer:fit returned {val_loss}, without loss, the study's metric (did you mean "
        "'val_loss', which it returned? then fix the optimize config's metric, with a new study_name: this study "
        "is made for 'loss'); return it from fit"
    ) in result.stderr


def test_a_study_of_n_params_with_a_training_function_is_told_to_count_its_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`metrics: [val_loss, n_params]`, which the README's multi-objective example optimizes, for a training
    function: hpotool builds no model for it, so measures no n_params; the line asked for it from fit "such
    as {'n_params': 0.5}", as if it were a score, and did not say hpotool would not count it."""
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text(
        (REPO / "examples/torch_loop_optimize.yaml")
        .read_text()
        .replace("metric: val_loss", "metrics: [val_loss, n_params]")
        .replace("direction: minimize", "directions: [minimize, minimize]")
        .replace("pruner: {name: median, kwargs: {n_startup_trials: 3, n_warmup_steps: 3}}", "")
    )
    result = optimize("examples/torch_loop_run.yaml", str(opt), storage, 2, exit_code=2)
    assert (
        "examples.torch_loop_trainer:fit returned {val_loss}, without n_params, the study's metric (hpotool "
        "counts n_params only of the models it builds: return your model's, sum(p.numel() for p in "
        "model.parameters())); return it from fit"
    ) in " ".join(result.stderr.split())


def test_train_with_a_training_function_saves_no_model_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.errors import HpoError
    from hpotool.saved import load_model

    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "-r", "examples/torch_loop_run.yaml", "--epochs", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "metrics.json, history.csv, config.yaml" in result.stdout and "model.pt" not in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "history.csv", "metrics.json"]
    with pytest.raises(HpoError, match="trained by a user's training function"):
        load_model(out / "model.pt")
    with pytest.raises(HpoError, match="trained by a user's training function"):
        load_model(out)
    # the folder above it holds a run, without a model.pt: named, not "model.pt: no such file"
    with pytest.raises(HpoError) as refused:
        load_model(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}: holds saved runs (run), not one run; give one of them: load_model({str(out)!r})"
    )


def _write(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any]) -> list[str]:
    """`run` and `opt` written to tmp_path/run.yaml and opt.yaml, and the `-r RUN -o OPT` that name them."""
    import yaml

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    return ["-r", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "opt.yaml")]


def _study_with(
    function: str,
    tmp_path: Path,
    pruner: dict[str, Any] | None = None,
    n_trials: int = 2,
    *,
    pruner_given: bool = True,
    **run: Any,
) -> tuple[Any, list[optuna.trial.FrozenTrial]]:
    """Run `n_trials` trials of `tests.trainers:<function>` (from the repository root); the CLI's result
    and the trials. With `pruner_given` False the optimize config has no pruner section (the default's)."""
    import yaml

    tmp_path.mkdir(exist_ok=True)
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    trainer = {"function": f"tests.trainers:{function}", **run.pop("trainer", {})}
    run_path.write_text(yaml.safe_dump({"project": "u", "epochs": 3, "trainer": trainer, **run}))
    opt = {
        **LOSS_STUDY,
        "pruner": pruner or {"name": "nop"},
        "search_space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    if not pruner_given:
        del opt["pruner"]
    opt_path.write_text(yaml.safe_dump(opt))
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    result = optimize(run_path, opt_path, storage, n_trials, "--max-failures", "1", exit_code=None)
    if result.exit_code == 2 and not (tmp_path / "u.db").exists():  # refused before the study was made
        return result, []
    return result, optuna.load_study(study_name="u", storage=storage).trials


def _fail_reason_of_one_trial(function: str, tmp_path: Path) -> str:
    """The fail_reason of a one-trial study of `tests.trainers:<function>`, whose trial must FAIL."""
    _, trials = _study_with(function, tmp_path, n_trials=1)
    assert [t.state for t in trials] == [TrialState.FAIL]
    return str(trials[0].user_attrs["fail_reason"])


def test_a_nan_loss_or_final_metric_prunes_the_trial_saying_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    _, trials = _study_with("diverges_at_the_end", tmp_path / "a")
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert trials[0].user_attrs["prune_reason"] == "val_loss is nan at the end of the run"
    _, trials = _study_with("diverges_in_validation", tmp_path / "b")
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert trials[0].user_attrs["prune_reason"] == "val_loss is nan in epoch 1"  # not "train_loss"


def test_a_final_metric_that_diverged_is_told_apart_from_the_pruners_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN final metric pruned the trial with no `diverged_at`, as a divergence in an epoch has: export-best
    of such a study (its trials all pruned so, under `nop`) said 'its pruner (nop) pruned them all before the
    last epoch: loosen the optimize config's pruner', and the report gave each a pruner's threshold."""
    monkeypatch.chdir(REPO)
    _, trials = _study_with("diverges_at_the_end", tmp_path)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    # after its one reported epoch
    assert trials[0].user_attrs["diverged_at"] == {"epoch": 0, "metric": "val_loss", "value": "nan"}
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    result = CliRunner().invoke(
        app, ["export-best", "--study-name", "u", "--storage", storage, "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        "error: study 'u' has no complete trial yet (pruned 2); its 2 pruned trials all diverged (trial 0: "
        "val_loss is nan at the end of the run): see why your training function "
        "tests.trainers:diverges_at_the_end returns or reports that NaN or infinite value (a metric "
        "undefined on the validation split, or a loss that diverged: train it at a lower learning rate) and fix "
        "it there, and run hpotool optimize again"
    )


def test_metrics_given_as_tensors_of_the_graph_are_read_without_torchs_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loss reported as the tensor that still requires grad printed torch's two-line 'warning: Converting
    a tensor with requires_grad=True to a scalar may lead to unexpected behavior. Consider using
    tensor.detach() first. (Triggered internally at /__w/pytorch/...)' amid the trials: hpotool converts it,
    so hpotool detaches it, as it reads only its value."""
    monkeypatch.chdir(REPO)
    result, trials = _study_with("returns_tensors_still_in_the_graph", tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert trials[0].value == 0.25 and trials[0].user_attrs["history"][0]["val_loss"] == 0.5
    assert "requires_grad" not in result.stderr and "warning" not in result.stderr, result.stderr


def test_a_nan_in_a_metric_the_study_does_not_optimize_is_recorded_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An undefined val_f1 beside a finite val_loss (the study's metric) failed every trial (ValueError:
    val_f1 is nan), and the study stopped after five; the built-in Trainer looks only at the losses and
    the study's metrics too."""
    monkeypatch.chdir(REPO)
    _, trials = _study_with("reports_an_undefined_metric", tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    history = trials[0].user_attrs["history"]
    assert [row["val_loss"] for row in history] == [1.0, 0.5] and history[1]["val_f1"] == 0.7


def test_the_report_counts_no_epochs_a_function_never_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pruner nop and every trial NaN-pruned by a function that reports nothing, the JSON report had
    saved_fraction 1.0 (0 epochs run of 6 planned) while the HTML said "0 run (no pruning)": neither is
    true, as the function trained epochs hpotool never saw, and no pruner saved any."""
    import json

    from hpotool.report_info import report_info
    from hpotool.report_page import _header_rows

    monkeypatch.chdir(REPO)
    _, trials = _study_with("returns_nan_without_report", tmp_path)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["report", "--study-name", "u", "--storage", storage, "--out", str(out)])
    assert result.exit_code == 0, result.output
    why = "trainer.function reported no epochs, so hpotool cannot count them"
    assert json.loads(out.read_text())["epochs"] == {
        "run": None,
        "planned": None,
        "saved_fraction": None,
        "not_recorded": why,
    }
    info = report_info(optuna.load_study(study_name="u", storage=storage), storage)
    assert dict(_header_rows(info))["epochs"] == f"not recorded ({why})"


def test_a_function_hpotool_cannot_call_is_refused_before_trial_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result, _ = _study_with("needs_data_path", tmp_path / "a")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == (
        f"error: {tmp_path / 'a' / 'run.yaml'}: trainer.function: tests.trainers:needs_data_path requires "
        f"'data_path', which hpotool cannot pass: it passes config, run_config, report and the trainer: keys "
        f"the function names (by name); set 'data_path' under trainer: in the run config, or give it a default\n"
    )
    assert not (tmp_path / "a" / "u.db").exists()
    train = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "a" / "run.yaml")])
    assert train.exit_code == 2 and "requires 'data_path'" in train.stderr


def test_a_function_without_report_is_refused_when_a_pruner_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result, _ = _study_with("never_reports", tmp_path / "a", pruner={"name": "median"})
    assert result.exit_code == 2
    assert "takes no 'report' argument, so the pruner can never stop a trial" in result.stderr
    assert "or set pruner: {name: nop} in" in result.stderr
    result, trials = _study_with("never_reports", tmp_path / "b")  # no pruner: nothing to stop it for
    assert result.exit_code == 0 and [t.state for t in trials] == [TrialState.COMPLETE] * 2


def test_a_function_without_report_runs_unpruned_when_the_config_chose_no_pruner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result, trials = _study_with("never_reports", tmp_path, pruner_given=False)
    assert result.exit_code == 0 and [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert (
        "note: no pruning: trainer.function tests.trainers:never_reports takes no 'report' argument, so a "
        f"pruner could never stop a trial ({tmp_path / 'opt.yaml'} sets no pruner; add report to prune)"
    ) in " ".join(result.stderr.split())
    study = optuna.load_study(study_name="u", storage=f"sqlite:///{tmp_path / 'u.db'}")
    assert study.user_attrs["optimize_config"]["pruner"] == {"name": "nop", "kwargs": {}}
    assert "pruner saw no" not in result.stderr  # the end-of-study note for an idle pruner has no cause
    # A function that reports keeps the default pruner.
    _, reported = _study_with("diverges_at_the_end", tmp_path / "b", pruner_given=False)
    stored = optuna.load_study(study_name="u", storage=f"sqlite:///{tmp_path / 'b' / 'u.db'}")
    assert stored.user_attrs["optimize_config"]["pruner"]["name"] == "median" and reported


def test_an_epoch_reported_twice_fails_the_trial_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    reason = _fail_reason_of_one_trial("reports_an_epoch_twice", tmp_path)
    assert reason.startswith(
        "ValueError: report() was given epoch 0 twice; report each epoch once, in order, counting from 0 "
        "(at tests/trainers.py:"  # the second report call
    )
    assert reason.endswith(" in reports_an_epoch_twice)")


def test_a_prune_the_function_swallows_still_prunes_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    pruner = {"name": "threshold", "kwargs": {"upper": 5.0}}
    _, trials = _study_with("swallows_the_prune", tmp_path, pruner=pruner, n_trials=1)
    (trial,) = trials
    assert trial.state == TrialState.PRUNED and trial.user_attrs["epochs_run"] == 1
    assert trial.user_attrs["prune_reason"].startswith("pruned after 1 of 3 epochs (val_loss=10)")


def test_a_constraint_on_a_value_the_function_does_not_return_stops_the_study_at_trial_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trial failed alike, to `--max-failures` (exit 1, "ValueError: constraints: ... which the run
    did not produce"): a broken contract, as a missing metric is. The study stops at trial 0 (exit 2)."""
    import yaml

    monkeypatch.chdir(REPO)
    opt = yaml.safe_load((REPO / "examples/torch_loop_optimize.yaml").read_text())
    opt["constraints"] = ["n_params <= 1000"]  # the wrapped loop keeps its model: no n_params
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(opt))
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    result = optimize("examples/torch_loop_run.yaml", tmp_path / "o.yaml", storage, 3, exit_code=2)
    (trial,) = optuna.load_study(study_name="sine_loop", storage=storage).trials
    reason = (
        "examples.torch_loop_trainer:fit returned {val_loss}, without n_params, which "
        "constraints: n_params <= 1000 reads; return it from fit, such as {'n_params': 0.5}, or drop the "
        "constraint"
    )
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == reason
    created, error = result.stderr.strip().split("\n")  # the study it made, then the one line
    assert created == f"new study 'sine_loop' in {tmp_path / 'u.db'}"
    assert error.startswith(
        f"error: examples/torch_loop_run.yaml: trainer.function: trial 0 failed: {reason}; this"
    )
    assert "Traceback" not in result.output


def test_user_code_failing_in_train_or_train_from_best_is_one_line_saying_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    _, trials = _study_with("fails_on_long_runs", tmp_path, n_trials=1)
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    line = "training failed: RuntimeError: CUDA-like failure in the user's loop (raised at tests/trainers.py:"
    train = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "run.yaml"), "--epochs", "5"])
    assert train.exit_code == 2 and "Traceback" not in train.output
    assert train.stderr.strip().startswith(f"error: {line}") and train.stderr.strip().count("\n") == 0
    assert " in fails_on_long_runs; hpotool --debug shows the traceback)" in train.stderr
    final = CliRunner().invoke(
        app,
        [
            "train-from-best",
            "--study-name",
            "u",
            "--storage",
            f"sqlite:///{tmp_path / 'u.db'}",
            "--epochs",
            "5",
            "--out",
            str(tmp_path / "final"),
        ],
    )
    assert final.exit_code == 2 and "Traceback" not in final.output
    error = final.stderr.strip().splitlines()[-1]  # after the line that says the export was written
    assert error.startswith(f"error: u trial 0 seed 0: {line}") and "detail line" not in final.stderr
    debug = CliRunner().invoke(app, ["--debug", "train", "-r", str(tmp_path / "run.yaml"), "--epochs", "5"])
    assert isinstance(debug.exception, HpoError) and isinstance(debug.exception.__cause__, RuntimeError)


def test_cuda_without_cuda_is_refused_for_a_training_function_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.chdir(REPO)
    # the file that asked for it is named (the line named neither the file nor the flag)
    message = f"error: {tmp_path / 'run.yaml'}: device: cuda was asked for but CUDA is not available here; use device: auto or cpu\n"
    result, _ = _study_with("diverges_at_the_end", tmp_path, device="cuda")
    assert result.exit_code == 2 and result.stderr == message and not (tmp_path / "u.db").exists()
    train = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "r")])
    assert train.exit_code == 2 and train.stderr == message and not (tmp_path / "r").exists()


def test_a_failed_trial_records_the_first_line_of_a_long_message_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result, trials = _study_with("fails_with_a_long_message", tmp_path, n_trials=1)
    reason = trials[0].user_attrs["fail_reason"]
    assert reason.startswith("RuntimeError: shapes do not match (at tests/trainers.py:")
    assert reason.endswith(" in fails_with_a_long_message)") and "tensor" not in reason
    assert (
        "first error: RuntimeError: shapes do not match" in result.stderr and "tensor 1" not in result.stderr
    )


def test_a_pruner_that_never_saw_the_metric_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result, trials = _study_with("reports_other_names", tmp_path / "a", pruner={"name": "median"})
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert (
        "note: the pruner saw no val_loss from 2 complete trials, so it could not stop them; "
        "tests.trainers:reports_other_names must call report(epoch, {'val_loss': value}) after each epoch"
    ) in result.stderr
    result, _ = _study_with("diverges_in_validation", tmp_path / "b", pruner={"name": "median"})
    assert "the pruner saw no" not in result.stderr  # pruned trials reported what they had


def test_reporting_a_bare_number_fails_the_trial_saying_how_to_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert _fail_reason_of_one_trial("reports_a_bare_number", tmp_path).startswith(
        "TypeError: report(0, 0.25): give the metrics as a dict, such as report(0, {'val_loss': 0.25}) (at "
    )


@pytest.mark.parametrize(
    ("function", "line"),
    [
        (
            "forgets_to_return",
            "error: training failed: tests.trainers:forgets_to_return returned None (no return statement?) after "
            "reporting 1 epoch; it must return a dict of final metrics, such as its last report's, {'val_loss': 0.5} "
            "(the values given to report() do not count)",
        ),
        (  # before: shown {'val_loss': 0.5} to return, not the metric it measures
            "reports_its_metric_and_forgets_to_return",
            "error: training failed: tests.trainers:reports_its_metric_and_forgets_to_return returned None (no "
            "return statement?) after reporting 2 epochs; it must return a dict of final metrics, such as its last "
            "report's, {'val_r2': 0.3125, 'val_loss': 1.25} (the values given to report() do not count)",
        ),
        (  # no study, no metric of its own: the example is hpotool's val_loss, as a study's default metric
            "trains_and_forgets_to_return",
            "error: training failed: tests.trainers:trains_and_forgets_to_return returned None (no return "
            "statement?); it must return a dict of final metrics, such as {'val_loss': 0.5}",
        ),
        (
            "returns_text",
            "error: training failed: tests.trainers:returns_text returned 'note': 'converged', which is not a "
            "number; return numbers only",
        ),
        (
            "reports_an_array",
            "error: training failed: TypeError: report(0, ...): 'acc' is array([0.5]), not a number (raised "
            "at tests/trainers.py:",
        ),
        (  # before, with numpy 2.2 (the newest on Python 3.10): recorded as 0.5, with numpy's warning
            "returns_an_array",
            "error: training failed: tests.trainers:returns_an_array returned 'acc': array([0.5]), which is not "
            "a number; return numbers only",
        ),
        (  # before: stored as 1.0, a metric of the study
            "returns_a_bool",
            "error: training failed: tests.trainers:returns_a_bool returned 'converged': True, which is not a "
            "number; return numbers only",
        ),
        (
            "reports_a_bool",
            "error: training failed: TypeError: report(0, ...): 'improved' is np.True_, not a number (raised "
            "at tests/trainers.py:",
        ),
    ],
)
def test_hpotool_train_says_in_one_line_what_a_training_function_got_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, line: str
) -> None:
    """A training function that returns no dict, or a value that is not a number, is the user's mistake:
    one line and exit 2 from `train`, not a traceback (in a study the trial fails with the same reason)."""
    import yaml

    monkeypatch.chdir(REPO)
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({"project": "u", "trainer": {"function": f"tests.trainers:{function}"}}))
    result = CliRunner().invoke(app, ["train", "-r", str(run), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.strip().startswith(line), result.stderr
    assert not (tmp_path / "r").exists()
    reason = _fail_reason_of_one_trial(function, tmp_path / "study")
    assert line.removeprefix("error: training failed: ").split(" (raised at")[0] in reason


def test_a_dry_run_with_a_training_function_does_not_claim_a_training_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hpotool cannot run one step of a user's function: the dry run said it had checked "the data and one
    training step of the base run"."""
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(
        app,
        [
            "optimize",
            "-r",
            "examples/torch_loop_run.yaml",
            "-o",
            "examples/torch_loop_optimize.yaml",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "one training step" not in said
    assert said == (
        "checked: both configs, and that trainer.function imports and takes the arguments hpotool passes (the "
        "function itself runs only in the trials); nothing written, no trial run (drop --dry-run to run the "
        "study)"
    )


def test_a_scheduler_section_a_training_function_runs_without_is_noted_and_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trainer: set, scheduler.monitor was ignored without a word, while a warm-up as long as the run
    was refused, though hpotool builds no schedule for the function: neither is checked now, and a note says
    the section does nothing unless the function reads it."""
    monkeypatch.chdir(REPO)
    plateau = {"name": "plateau", "monitor": "val_accuracy", "mode": "max"}
    result, trials = _study_with("diverges_at_the_end", tmp_path / "a", scheduler=plateau)
    assert result.exit_code == 0 and len(trials) == 2
    assert (
        "note: trainer.function tests.trainers:diverges_at_the_end trains in its own loop, so hpotool builds no "
        "lr schedule from scheduler: {name: plateau, monitor: val_accuracy, mode: max}: it steps nothing and "
        "watches no monitor; fit uses the section only if it reads run_config.scheduler (otherwise drop it)"
    ) in " ".join(result.stderr.split())
    warm_up = {"name": "cosine", "warmup_epochs": 3}  # as long as the run's 3 epochs
    result, trials = _study_with("diverges_at_the_end", tmp_path / "b", scheduler=warm_up)
    assert result.exit_code == 0 and len(trials) == 2
    assert "scheduler: {name: cosine, warmup_epochs: 3}: it steps nothing" in " ".join(result.stderr.split())
    out = tmp_path / "run"
    trained = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "b" / "run.yaml"), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "hpotool builds no lr schedule from scheduler: {name: cosine" in " ".join(trained.stderr.split())
    _, trials = _study_with("fails_on_long_runs", tmp_path / "d", n_trials=1, scheduler=warm_up)
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    final = CliRunner().invoke(  # train-from-best on such a study said nothing of it
        app,
        [
            "train-from-best",
            "--study-name",
            "u",
            "--storage",
            f"sqlite:///{tmp_path / 'd' / 'u.db'}",
            "--out",
            str(tmp_path / "final"),
        ],
    )
    assert final.exit_code == 0, final.output
    said = " ".join(final.stderr.split())
    assert said.count("hpotool builds no lr schedule from scheduler: {name: cosine, warmup_epochs: 3}") == 1
    result, _ = _study_with("diverges_at_the_end", tmp_path / "c")  # the default schedule: no note
    assert result.exit_code == 0 and "lr schedule" not in result.stderr


def test_a_training_function_s_own_metric_may_be_the_scheduler_monitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trainer: set, scheduler: {name: plateau, monitor: val_f1} was refused ('val_f1' is not an epoch
    metric), though hpotool builds no schedule for the function, which may watch its own metric; without a
    trainer the name is still checked."""
    monkeypatch.chdir(REPO)
    plateau = {"name": "plateau", "monitor": "val_f1"}
    result, trials = _study_with("diverges_at_the_end", tmp_path / "a", scheduler=plateau)
    assert result.exit_code == 0, result.output
    assert len(trials) == 2
    out = tmp_path / "run"
    trained = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "a" / "run.yaml"), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    from hpotool.config import RunConfig

    with pytest.raises(ValueError, match=r"scheduler.monitor: 'val_f1' is not an epoch metric"):
        RunConfig.model_validate({"scheduler": plateau})


@pytest.mark.parametrize(
    ("function", "reason", "workers"),
    [
        (
            "returns_a_float",
            "tests.trainers:returns_a_float returned float after reporting 1 epoch; it must return a dict of "
            "final metrics, such as its last report's, {'val_loss': 0.5} (the values given to report() do not "
            "count)",
            "2",  # a worker process stops, and the main process says why
        ),
        (
            "returns_a_float",
            "tests.trainers:returns_a_float returned float after reporting 1 epoch; it must return a dict of "
            "final metrics, such as its last report's, {'val_loss': 0.5} (the values given to report() do not "
            "count)",
            "1",
        ),
        (
            "reports_a_bare_number",
            "TypeError: report(0, 0.25): give the metrics as a dict, such as report(0, {'val_loss': 0.25}) (at "
            "tests/trainers.py:",
            "1",
        ),
        (
            "reports_without_the_epoch",
            "TypeError: report({'val_loss': 0.5}): missing a required argument: 'metrics'; call "
            "report(epoch, {'val_loss': 0.5}), the epoch counting from 0 (at tests/trainers.py:",
            "1",
        ),
        (
            "reports_metrics_as_keywords",
            "TypeError: report(0, val_loss=0.5): missing a required argument: 'metrics'; call "
            "report(epoch, {'val_loss': 0.5}), the epoch counting from 0 (at tests/trainers.py:",
            "1",
        ),
        (
            "reports_no_epoch",
            "ValueError: report(epoch=None, ...): the epoch must be a whole number counting from 0 (at "
            "tests/trainers.py:",
            "1",
        ),
        (
            "reports_a_nan_epoch",
            "ValueError: report(epoch=nan, ...): the epoch must be a whole number counting from 0 (at "
            "tests/trainers.py:",
            "1",
        ),
        (
            "reports_the_samples_seen",
            "ValueError: report(epoch=3000000000, ...): the epoch must be below 2147483648, which Optuna's "
            "storages keep as a 32-bit integer; report the epoch (counting from 0), not a count of steps or "
            "samples (at tests/trainers.py:",
            "1",
        ),
        (  # the study's relative paths moved with it: exports and the next trials went into tests/
            "changes_the_working_folder",
            "tests.trainers:changes_the_working_folder called os.chdir('tests'), which moves every "
            "relative path hpotool reads and writes (the configs, studies/, runs/); build the paths it reads "
            "and writes from __file__ or an absolute folder instead (at tests/trainers.py:",
            "1",
        ),
        (
            "reports_a_number_as_text",
            "TypeError: report(0, ...): 'val_loss' is '0.5', not a number (at tests/trainers.py:",
            "1",
        ),
        (  # argparse exits on hpotool's command line: the process ended, the trial stayed RUNNING
            "parses_the_command_line",
            "RuntimeError: tests.trainers:parses_the_command_line called sys.exit(2) instead of returning its "
            "metrics (argparse's parse_args() does so on hpotool's command line); read the settings from "
            "config and return a dict of numbers (at tests/trainers.py:",
            "1",
        ),
        (
            "exits_when_done",
            "RuntimeError: tests.trainers:exits_when_done called sys.exit(0) instead of returning its metrics "
            "(argparse's parse_args() does so on hpotool's command line); read the settings from config and "
            "return a dict of numbers (at tests/trainers.py:",
            "2",
        ),
        # the plain dict read by attribute, the RunConfig by key: every trial failed alike with Python's line
        # alone, until 5 in a row stopped the study (exit code 1)
        (
            "reads_the_config_dict_by_attribute",
            "AttributeError: 'dict' object has no attribute 'optimizer'; config is the run config as a plain "
            "dict: read config['optimizer'], or take run_config, the RunConfig, and read run_config.optimizer "
            "(at tests/trainers.py:",
            "1",
        ),
        (
            "reads_a_section_of_the_config_dict_by_attribute",
            "AttributeError: 'dict' object has no attribute 'lr'; config is the run config as a plain dict: "
            "read config['optimizer']['lr'], or take run_config, the RunConfig, and read run_config.optimizer.lr "
            "(at tests/trainers.py:",
            "1",
        ),
        (
            "reads_the_run_config_by_key",
            "TypeError: 'RunConfig' object is not subscriptable; run_config is the RunConfig, read by attribute "
            "(run_config.optimizer.lr, run_config.trainer.width); config is the same run config as a plain "
            "dict, read by key (config['optimizer']['lr']) (at tests/trainers.py:",
            "1",
        ),
    ],
)
def test_a_training_function_that_breaks_the_contract_stops_the_study_at_the_first_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, reason: str, workers: str
) -> None:
    """Such a mistake fails every trial alike: one FAIL trial and one line (exit 2), not five FAIL trials
    and "stopped after 5 failed trials"."""
    import yaml

    monkeypatch.chdir(REPO)
    run = tmp_path / "run.yaml"
    run.write_text(
        yaml.safe_dump({"project": "u", "epochs": 2, "trainer": {"function": f"tests.trainers:{function}"}})
    )
    opt = tmp_path / "opt.yaml"
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    opt.write_text(yaml.safe_dump({"study_name": "u", "pruner": {"name": "nop"}, "search_space": space}))
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    args = [
        "optimize",
        "-r",
        str(run),
        "-o",
        str(opt),
        "--storage",
        storage,
        "--n-trials",
        "6",
        "-q",
        "--workers",
        workers,
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    trials = optuna.load_study(study_name="u", storage=storage).trials
    assert len(trials) <= int(workers)  # each worker's first trial at most
    assert {t.state for t in trials} == {TrialState.FAIL}
    assert str(trials[0].user_attrs["fail_reason"]).startswith(reason)
    created, _, line = result.stderr.strip().partition("\n")  # the study it made, then the one line
    assert created == f"new study 'u' in {tmp_path / 'u.db'}"
    if function == "parses_the_command_line":  # argparse's own usage and error lines come first
        usage, _, line = line.partition("\n")
        assert usage.startswith("usage: ") and "arguments are required: --data-dir" in line.split("\n")[0]
        line = line.partition("\n")[2]
    named = "" if function in reason else f" tests.trainers:{function}"  # the function named once
    assert "\n" not in line and line.startswith(
        f"error: {run}: trainer.function{named}: trial 0 failed: {reason}"
    )
    assert line.endswith(
        "; this mistake fails every trial, so the study stopped: fix the function (report(epoch, "
        "{'val_loss': 0.5}) after each epoch, return a dict of numbers) and run the same command"
    )


R2 = {"metric": "val_r2", "direction": "maximize"}
R2_AND_LOSS = {"metrics": ["val_r2", "val_loss"], "directions": ["maximize", "minimize"]}


@pytest.mark.parametrize(
    ("function", "objectives", "reason", "example", "workers"),
    [
        (
            "reports_its_metric_and_forgets_to_return",
            R2,
            "tests.trainers:reports_its_metric_and_forgets_to_return returned None (no return statement?) after "
            "reporting 2 epochs; it must return a dict of final metrics, such as its last report's, "
            "{'val_r2': 0.3125, 'val_loss': 1.25} (the values given to report() do not count)",
            "{'val_r2': 0.5}",
            "1",
        ),
        (
            "reports_its_metric_and_forgets_to_return",
            R2,
            "tests.trainers:reports_its_metric_and_forgets_to_return returned None (no return statement?) after "
            "reporting 2 epochs; it must return a dict of final metrics, such as its last report's, "
            "{'val_r2': 0.3125, 'val_loss': 1.25} (the values given to report() do not count)",
            "{'val_r2': 0.5}",
            "2",  # told by the main process
        ),
        (
            "reports_its_metric_and_forgets_to_return",
            R2_AND_LOSS,
            "tests.trainers:reports_its_metric_and_forgets_to_return returned None (no return statement?) after "
            "reporting 2 epochs; it must return a dict of final metrics, such as its last report's, "
            "{'val_r2': 0.3125, 'val_loss': 1.25} (the values given to report() do not count)",
            "{'val_r2': 0.5, 'val_loss': 0.5}",
            "1",
        ),
        # before: the training's own words, which knew no study, showed {'val_loss': 0.5} where the end of
        # the same line showed {'val_r2': 0.5}
        (
            "trains_and_forgets_to_return",
            R2,
            "tests.trainers:trains_and_forgets_to_return returned None (no return statement?); it must return a "
            "dict of final metrics, such as {'val_r2': 0.5}",
            "{'val_r2': 0.5}",
            "1",
        ),
        (
            "trains_and_forgets_to_return",
            R2,
            "tests.trainers:trains_and_forgets_to_return returned None (no return statement?); it must return a "
            "dict of final metrics, such as {'val_r2': 0.5}",
            "{'val_r2': 0.5}",
            "2",  # the reason written by a worker process, the line by the main one
        ),
        (
            "trains_and_forgets_to_return",
            R2_AND_LOSS,
            "tests.trainers:trains_and_forgets_to_return returned None (no return statement?); it must return a "
            "dict of final metrics, such as {'val_r2': 0.5, 'val_loss': 0.5}",
            "{'val_r2': 0.5, 'val_loss': 0.5}",
            "1",
        ),
        (
            "reports_a_bare_number",
            R2,
            "TypeError: report(0, 0.25): give the metrics as a dict, such as report(0, {'val_r2': 0.25}) (at "
            "tests/trainers.py:",
            "{'val_r2': 0.5}",
            "1",
        ),
        (
            "reports_a_bare_number",
            R2_AND_LOSS,
            "TypeError: report(0, 0.25): give the metrics as a dict, such as report(0, {'val_r2': 0.25, "
            "'val_loss': 0.5}) (at tests/trainers.py:",
            "{'val_r2': 0.5, 'val_loss': 0.5}",
            "2",
        ),
        (
            "reports_metrics_as_keywords",
            R2,
            "TypeError: report(0, val_loss=0.5): missing a required argument: 'metrics'; call "
            "report(epoch, {'val_r2': 0.5}), the epoch counting from 0 (at tests/trainers.py:",
            "{'val_r2': 0.5}",
            "1",
        ),
    ],
)
def test_the_line_of_a_broken_contract_shows_the_report_of_the_study_s_own_metrics(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    objectives: dict[str, Any],
    reason: str,
    example: str,
    workers: str,
) -> None:
    """A study of val_r2 whose function returned nothing was told to call report(epoch, {'val_loss': 0.5}),
    a metric it never measured and the study never reads; and, fixed there, the line still began with the
    training's own example, {'val_loss': 0.5}, for a function that had reported nothing (or called report()
    wrongly). Every example of the line is the study's own metric(s), in one process or with workers."""
    import yaml

    monkeypatch.chdir(REPO)
    run = tmp_path / "run.yaml"
    path = f"tests.trainers:{function}"
    run.write_text(yaml.safe_dump({"project": "u", "epochs": 2, "trainer": {"function": path}}))
    opt = tmp_path / "opt.yaml"
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    opt.write_text(
        yaml.safe_dump({"study_name": "u", "pruner": {"name": "nop"}, "search_space": space, **objectives})
    )
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", storage, "--n-trials", "3", "-q"]
    result = CliRunner().invoke(app, [*args, "--workers", workers])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    line = result.stderr.strip().splitlines()[-1]
    named = "" if path in reason else f" {path}"  # the function named once
    assert line.startswith(f"error: {run}: trainer.function{named}: trial 0 failed: {reason}"), line
    assert line.endswith(
        f"; this mistake fails every trial, so the study stopped: fix the function (report(epoch, {example}) "
        "after each epoch, return a dict of numbers) and run the same command"
    ), line


def test_a_mapping_of_the_run_config_is_searched_as_a_whole_choice(tmp_path: Path) -> None:
    """README: a categorical choice may be a whole mapping. trainer.opts, a mapping in the run config, was
    refused as a search-space path ("the run config has no such key; did you mean 'trainer.opts.a'")."""
    run = {
        "project": "u",
        "epochs": 1,
        "trainer": {"function": "tests.trainers:adds_its_options", "opts": {"a": 1.0, "b": 2.0}},
    }
    opt = {
        **LOSS_STUDY,
        "n_trials": 2,
        "pruner": {"name": "nop"},
        "search_space": {
            "trainer.opts": {"type": "categorical", "choices": [{"a": 1.0, "b": 2.0}, {"a": 0.5, "b": 0.0}]}
        },
        "enqueue": [{"trainer.opts": {"a": 0.5, "b": 0.0}}],
        "storage": f"sqlite:///{tmp_path / 'u.db'}",
    }
    result = CliRunner().invoke(app, ["optimize", *_write(tmp_path, run, opt), "-q"])
    assert result.exit_code == 0, result.output
    first = optuna.load_study(study_name="u", storage=opt["storage"]).trials[0]
    assert (first.params, first.value) == ({"trainer.opts": "{a: 0.5, b: 0.0}"}, 0.5)


def _one_of_three_trials_fails(tmp_path: Path) -> tuple[Any, str]:
    """`optimize -q` of a grid of three epochs, 2 to 4, whose function fails where epochs are too many, and
    the study's storage."""
    import yaml

    run, opt = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    run.write_text(
        yaml.safe_dump({"project": "u", "trainer": {"function": "tests.trainers:fails_on_long_runs"}})
    )
    space = {"epochs": {"type": "int", "low": 2, "high": 4}}
    opt.write_text(
        yaml.safe_dump(
            {"study_name": "u", "sampler": {"name": "grid"}, "pruner": {"name": "nop"}, "search_space": space}
        )
    )
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    return optimize(run, opt, storage, 3), storage


def test_the_summary_says_why_a_trial_failed_where_the_study_went_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One trial of three failed (its epochs were too many for the function): with -q the summary said
    only `states: complete 2, fail 1`, and nothing of why."""
    monkeypatch.chdir(REPO)
    result, storage = _one_of_three_trials_fails(tmp_path)
    (failed,) = [
        t for t in optuna.load_study(study_name="u", storage=storage).trials if t.state == TrialState.FAIL
    ]
    said = " ".join(result.stderr.split())
    assert (
        f"note: 1 trial failed; the last, #{failed.number}: RuntimeError: CUDA-like failure in the "
        "user's loop (at tests/trainers.py:"
    ) in said
    assert said.endswith(
        f"in fails_on_long_runs); hpotool trials --study-name u --storage {storage} --state fail lists them"
    )


def test_a_note_naming_a_command_keeps_it_on_one_line_on_a_narrow_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns the note broke its command over lines ("... --storage" / "sqlite:///...")."""
    import hpotool.cli.terminal

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(hpotool.cli.terminal.err_console(), "width", 80)
    result, storage = _one_of_three_trials_fails(tmp_path)
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note: 1 trial failed")]
    assert note.endswith(f"; hpotool trials --study-name u --storage {storage} --state fail lists them"), (
        result.stderr
    )


def test_whole_trainer_sections_are_a_categorical_choice(tmp_path: Path) -> None:
    """`trainer: {type: categorical, choices: [{function: ..., opts: ...}, ...]}` chooses the whole section,
    each choice's function checked as the run config's is (a pruner the file sets needs `report`; with the
    default one, a function without it runs the study unpruned, the note naming it). It was refused:
    "search_space.trainer: the run config has no such key"."""
    import yaml

    from hpotool.search_space import choice_label

    run = {
        "project": "u",
        "epochs": 1,
        "trainer": {"function": "tests.trainers:adds_its_options", "opts": {"a": 1.0, "b": 2.0}},
    }
    halves = {"function": "tests.trainers:adds_its_options", "opts": {"a": 0.5, "b": 0.0}}
    silent = {"function": "tests.trainers:never_reports"}
    opt: dict[str, Any] = {
        **LOSS_STUDY,
        "n_trials": 2,
        "search_space": {"trainer": {"type": "categorical", "choices": [halves, silent]}},
        "enqueue": [{"trainer": halves}],
        "storage": f"sqlite:///{tmp_path / 'u.db'}",
    }
    args = ["optimize", *_write(tmp_path, run, opt)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "no pruning: trainer.function tests.trainers:never_reports takes no 'report' argument"
        in result.stderr
    )
    first = optuna.load_study(study_name="u", storage=opt["storage"]).trials[0]
    assert (first.params, first.value) == ({"trainer": choice_label(halves)}, 0.5)

    opt["pruner"] = {"name": "median"}
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stderr.startswith(
        f"error: {tmp_path / 'opt.yaml'}: search_space.trainer.choices.1: trainer.function: "
        "tests.trainers:never_reports takes no 'report' argument, so the pruner can never stop a trial"
    ), result.output

    opt["search_space"] = {"trainer": {"type": "categorical", "choices": [halves, silent["function"]]}}
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt | {"enqueue": []}))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stderr == (
        f"error: {tmp_path / 'opt.yaml'}: search_space.trainer.choices.1: tests.trainers:never_reports is not a "
        'mapping: each choice of trainer is a whole section, such as {function: "tests.trainers:never_reports"}; '
        "to choose only its function, search trainer.function\n"
    ), result.output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_chosen_trainer_that_breaks_the_contract_is_named_when_the_study_stops(
    tmp_path: Path, workers: str
) -> None:
    """With whole trainer sections as choices, the line that stops the study names the function the trial
    ran, not the run config's (which reports as it should), in one process or with workers."""
    run = {
        "project": "u",
        "epochs": 1,
        "trainer": {"function": "tests.trainers:adds_its_options", "opts": {}},
    }
    bare = {"function": "tests.trainers:reports_a_bare_number"}
    opt = {
        **LOSS_STUDY,
        "n_trials": 2,
        "pruner": {"name": "nop"},
        "search_space": {"trainer": {"type": "categorical", "choices": [run["trainer"], bare]}},
        "enqueue": [{"trainer": bare}],
        "storage": f"sqlite:///{tmp_path / 'u.db'}",
    }
    args = ["optimize", *_write(tmp_path, run, opt), "-q"]
    result = CliRunner().invoke(app, [*args, "--workers", workers])
    assert result.exit_code == 2, result.output
    created, error = result.stderr.strip().split("\n")  # the study it made, then the one line
    assert created == f"new study 'u' in {tmp_path / 'u.db'}"
    assert error.startswith(
        f"error: {tmp_path / 'run.yaml'}: trainer.function tests.trainers:reports_a_bare_number: trial 0 failed: "
        "TypeError: report(0, 0.25)"
    ), result.output


def test_trainer_keys_the_function_names_as_parameters_are_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `def fit(report, lr=0.1)` with `trainer.lr` searched: hpotool passed only config, run_config and
    # report, so lr kept its default and every trial measured 0.1, without a word.
    import yaml

    monkeypatch.chdir(REPO)
    run = {"project": "u", "epochs": 1, "trainer": {"function": "tests.trainers:takes_its_lr", "lr": 0.5}}
    opt = {
        **LOSS_STUDY,
        "pruner": {"name": "nop"},
        "search_space": {"trainer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    args = [*_write(tmp_path, run, opt), "--storage", storage]
    result = CliRunner().invoke(app, ["optimize", *args, "--n-trials", "3", "-q"])
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="u", storage=storage).trials
    assert [t.value for t in trials] == [t.params["trainer.lr"] for t in trials]
    # a required parameter is satisfied by the trainer: key of its name
    run["trainer"] = {"function": "tests.trainers:needs_data_path", "data_path": "d"}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    train = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "r")])
    assert train.exit_code == 0, train.output


def test_optimize_json_is_strict_json_when_the_best_trial_has_an_undefined_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`optimize --json` wrote the best trial's undefined val_f1 as a bare NaN, which jq and JSON.parse
    refuse (every other JSON hpotool writes is strict); now it is "NaN", as in trials.json."""
    import json

    import yaml

    monkeypatch.chdir(REPO)
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    trainer = {"function": "tests.trainers:ends_with_an_undefined_metric"}
    run_path.write_text(yaml.safe_dump({"project": "u", "epochs": 1, "trainer": trainer}))
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    opt = {**LOSS_STUDY, "search_space": space}
    opt_path.write_text(yaml.safe_dump(opt))
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    args = ["optimize", "-r", str(run_path), "-o", str(opt_path), "--storage", storage, "--n-trials", "1"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    summary = json.loads(result.stdout, parse_constant=refuse)
    assert summary["best"]["metrics"]["val_f1"] == "NaN" and summary["best"]["value"] == 0.5


def test_a_training_functions_sections_are_its_own_to_read() -> None:
    # hpotool builds no data, model, optimizer, schedule or loss for a training function, yet checked those
    # sections against its own components: a scikit-learn fit reading `model: {name: ridge, alpha: 0.5}` was
    # refused ("unknown model 'ridge'"), and the default sections imported torch to be checked.
    from pydantic import ValidationError

    from hpotool.config import RunConfig

    model = {"name": "ridge", "alpha": 0.5}
    run = RunConfig.model_validate(
        {"trainer": {"function": "tests.trainers:diverges_at_the_end"}, "model": model}
    )
    assert (run.model.name, run.model.kwargs) == ("ridge", {"alpha": 0.5})
    with pytest.raises(ValidationError, match="ridge"):  # hpotool's Trainer builds the model: still checked
        RunConfig.model_validate({"model": model})


@pytest.mark.parametrize("workers", [1, 2])
def test_optimize_json_keeps_stdout_for_its_json_when_the_users_code_prints(
    tmp_path: Path, workers: int
) -> None:
    """A training function's print() (and a write to file descriptor 1, as C code or a subprocess makes) went
    to stdout before `optimize --json`'s JSON, so `hpotool optimize ... --json | jq` failed on the first line;
    they go to stderr now, beside hpotool's notes, in a worker process too."""
    import json
    import subprocess
    import sys

    import yaml

    (tmp_path / "noisy_fit.py").write_text(
        "import os\n\n\ndef fit(config, report):\n"
        "    print('epoch 0: the loop prints its progress')\n"
        "    os.write(1, b'a line written to file descriptor 1\\n')\n"
        "    report(0, {'val_loss': config['optimizer']['lr']})\n"
        "    return {'val_loss': config['optimizer']['lr']}\n"
    )
    (tmp_path / "run.yaml").write_text(
        yaml.safe_dump({"epochs": 1, "trainer": {"function": "noisy_fit:fit"}})
    )
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump({**LOSS_STUDY, "n_trials": 2, "search_space": space}))
    args = ["-r", "run.yaml", "-o", "opt.yaml", "--json", "--workers", str(workers)]
    done = subprocess.run(
        [sys.executable, "-m", "hpotool", "optimize", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)["counts"]  # stdout is the JSON alone
    # no WAITING trial asked in a race for the last slot (the workers ask one at a time: `slot_lock`)
    assert counts == {"complete": 2}, counts
    assert done.stderr.count("epoch 0: the loop prints its progress") == 2
    assert done.stderr.count("a line written to file descriptor 1") == 2


def test_a_run_stopped_by_max_failures_names_the_command_that_lists_the_failed_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--max-failures` stopped the run printing its first error, and not the `hpotool trials ... --state
    fail` the summary gives where the study went on (the README says the summary gives it)."""
    monkeypatch.chdir(REPO)
    result, trials = _study_with("fails_with_a_long_message", tmp_path, n_trials=3)
    assert result.exit_code == 1 and [t.state for t in trials] == [TrialState.FAIL]
    said = " ".join(result.stderr.split())
    assert "first error: RuntimeError: shapes do not match" in said
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    assert f"hpotool trials --study-name u --storage {storage} --state fail lists them" in said, result.stderr


def test_the_report_counts_the_epochs_of_a_function_whose_first_report_was_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function that reported NaN in its first epoch is pruned with no history, as one that reports nothing
    has none: the report said of such a study "trainer.function reported no epochs, so hpotool cannot count
    them", though it reported each, and its trials ran 0 of their 3 epochs each."""
    import json

    monkeypatch.chdir(REPO)
    _, trials = _study_with("diverges_in_validation", tmp_path)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["report", "--study-name", "u", "--storage", storage, "--out", str(out)])
    assert result.exit_code == 0, result.output
    epochs = json.loads(out.read_text())["epochs"]
    assert epochs == {"run": 0, "planned": 6, "saved_fraction": None, "not_recorded": None}
