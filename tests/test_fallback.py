from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import optuna
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.fallback import IndependentSampling, independent_sampling
from tests.conftest import write_yaml


class _Records(logging.Handler):
    """Every record that reaches Optuna's loggers' handlers (what Optuna's own handler writes to stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_cmaes_study_over_a_categorical_says_once_what_it_sampled_independently(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Optuna logs "The parameter `model.activation` in Trial#N is sampled independently ..." once per trial,
    # through the progress display; the run keeps the facts and its summary states them once.
    # In this process (no interpreter of its own to start): Optuna's handler writes to the stderr it found at
    # import, not CliRunner's, so a handler beside it on Optuna's logger sees what would reach stderr.
    opt_dict["n_trials"] = 4
    opt_dict["sampler"] = {"name": "cmaes", "kwargs": {"n_startup_trials": 1}}
    opt_dict["search_space"]["model.activation"] = {"type": "categorical", "choices": ["relu", "gelu"]}
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "optimize.yaml", opt_dict)
    args = ["optimize", "-r", str(run_path), "-o", str(opt_path)]
    records, optuna_logger = _Records(), logging.getLogger("optuna")
    assert optuna_logger.isEnabledFor(logging.WARNING), "Optuna logs no warning here: none could be seen"
    optuna_logger.addHandler(records)
    try:
        done = CliRunner().invoke(app, args, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        assert "sampled independently" not in done.stderr and "is sampled independently" not in done.stdout
        note = " ".join(done.stderr.split("note: ", 1)[1].split())
        assert note == (
            "CmaEsSampler sampled model.activation independently (RandomSampler) in 3 trials from trial 1 "
            "on, since dynamic search space and CategoricalDistribution are not supported by CmaEsSampler: its "
            "model does not cover them"
        )
        assert done.stderr.count("note: ") == 1
        # --json carries the facts
        more = CliRunner().invoke(app, [*args, "--n-trials", "6", "--json"], catch_exceptions=False)
        assert more.exit_code == 0, more.output
        facts = json.loads(more.stdout)["extra"]["independent_sampling"]
        assert facts["trials"] == {"model.activation": [4, 5]} and facts["sampler"] == "CmaEsSampler"
        assert "sampled independently" not in more.stderr
    finally:
        optuna_logger.removeHandler(records)
    assert not [m for m in records.messages if "sampled independently" in m], records.messages


def test_the_check_before_trial_0_logs_no_independent_sampling_of_its_own(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """GP with n_startup_trials: 0 samples trial 0 independently: the check that the sampler can sample (one
    trial of a study in memory) logged Optuna's raw warning above the plan ("[W 2026-12-06 23:08:54,723] The
    parameter `optimizer.lr` in Trial#0 is sampled independently ..."), before the study's own trial 0 made
    it the run's note."""
    opt_dict["n_trials"] = 1
    opt_dict["sampler"] = {"name": "gp", "kwargs": {"n_startup_trials": 0}}
    opt_dict["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "optimize.yaml", opt_dict)
    records, optuna_logger = _Records(), logging.getLogger("optuna")
    assert optuna_logger.isEnabledFor(logging.WARNING), "Optuna logs no warning here: none could be seen"
    optuna_logger.addHandler(records)
    try:
        done = CliRunner().invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path)])
    finally:
        optuna_logger.removeHandler(records)
    assert done.exit_code == 0, done.output
    assert not [m for m in records.messages if "sampled independently" in m], records.messages
    assert (
        "note: GPSampler sampled optimizer.lr independently (RandomSampler) in 1 trial from trial 0 on"
        in (" ".join(done.stderr.split()))
    )


def test_other_records_of_the_samplers_loggers_pass_and_the_filter_goes_away() -> None:
    sampler = optuna.samplers.CmaEsSampler()
    logger = logging.getLogger("optuna.samplers._cmaes")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    trial = optuna.trial.create_trial(value=1.0)
    trial.number = 7
    try:
        with independent_sampling(sampler) as gathered:
            sampler._log_independent_sampling(trial, "x")
            logger.warning("something else")
        assert isinstance(gathered, IndependentSampling)
        assert seen == ["something else"] and gathered.trials == {"x": {7}}
        sampler._log_independent_sampling(trial, "x")  # after the block: shown
        assert len(seen) == 2 and seen[1].startswith("The parameter `x` in Trial#7 is sampled independently")
    finally:
        logger.removeHandler(handler)


def test_multivariate_tpe_samples_a_conditional_parameter_without_a_word_unless_asked() -> None:
    """README: `tpe` (multivariate by default with one objective) gives no independent-sampling note since
    Optuna 4.9 turned its warning off by default; the README said it did, as cmaes does."""
    import warnings

    def objective(trial: optuna.Trial) -> float:
        layers = trial.suggest_int("model.layers", 1, 3)
        width = trial.suggest_int("model.hidden.2", 16, 64) if layers >= 2 else 0
        return layers + width / 100

    noted = []
    for kwargs in ({}, {"warn_independent_sampling": True}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the argument is deprecated
            sampler = optuna.samplers.TPESampler(n_startup_trials=2, seed=0, **kwargs)
        study = optuna.create_study(sampler=sampler)
        with independent_sampling(sampler) as gathered:
            study.optimize(objective, n_trials=8)
        noted.append(sorted(gathered.trials))
    assert noted == [[], ["model.hidden.2"]]
