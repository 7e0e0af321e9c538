from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.constraints import INFEASIBLE, Constraint, parse_constraint
from hpotool.errors import HpoError
from hpotool.ranking import best_trials, ranked_trials
from tests.cli_run import optimize, shipped_run

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "metrics", "value"),
    [
        ("n_params <= 200000", {"n_params": 150000.0}, -50000.0),
        ("n_params<=1e5", {"n_params": 150000.0}, 50000.0),
        ("val_accuracy >= 0.9", {"val_accuracy": 0.95}, pytest.approx(-0.05)),
        ("epoch_time < 0.5", {"epoch_time": 0.5}, INFEASIBLE),
    ],
)
def test_constraint_values(text: str, metrics: dict, value: float) -> None:
    assert parse_constraint(text).value(metrics) == value


def test_bad_constraint_text() -> None:
    with pytest.raises(ValueError, match="is not a constraint; write METRIC <= NUMBER"):
        parse_constraint("n_params is small")
    assert str(Constraint("n_params", "<=", 2e5)) == "n_params <= 200000"


@pytest.mark.parametrize(
    ("second", "said"),
    [
        ("n_params <= 20000", "'n_params <= 20000' is given twice"),
        ("n_params<=2e4", "'n_params <= 20000' and 'n_params<=2e4' are both 'n_params <= 20000'"),
    ],
)
def test_a_constraint_given_twice_is_refused(tmp_path: Path, second: str, said: str) -> None:
    """It ran: Optuna warned at trial 0 that "the constraint value is ignored because this constraint ... is
    already set" (a warning line in the middle of the trials), and the exports listed its value twice."""
    from hpotool.config_files import load_optimize_config

    from .conftest import OPTIMIZE, write_yaml

    path = write_yaml(tmp_path / "optimize.yaml", {**OPTIMIZE, "constraints": ["n_params <= 20000", second]})
    with pytest.raises(HpoError) as err:
        load_optimize_config(path)
    assert str(err.value) == f"{path}: constraints: {said}; give each constraint once"
    write_yaml(path, {**OPTIMIZE, "constraints": ["n_params <= 20000", "n_params <= 20001"]})
    assert load_optimize_config(path).constraints == ["n_params <= 20000", "n_params <= 20001"]


def test_a_constraint_keeps_the_user_s_number_exact(tmp_path: Path) -> None:
    """Six significant digits: `n_params <= 1234567` was recorded and shown as `n_params <= 1.23457e+06`,
    and two close bounds were refused as one constraint given twice. A number `:g` writes exactly keeps the
    name earlier studies recorded (`1e+06`)."""
    from hpotool.config_files import load_optimize_config

    from .conftest import OPTIMIZE, write_yaml

    assert str(parse_constraint("n_params <= 1234567")) == "n_params <= 1234567"
    assert str(parse_constraint("val_accuracy >= 0.1234567")) == "val_accuracy >= 0.1234567"
    assert str(parse_constraint("n_params <= 1e6")) == "n_params <= 1e+06"
    assert str(parse_constraint("epoch_time < 1e-5")) == "epoch_time < 1e-05"
    assert str(parse_constraint("n_params <= 1e20")) == "n_params <= 1e+20"
    close = ["n_params <= 1234567", "n_params <= 1234568"]
    path = write_yaml(tmp_path / "optimize.yaml", {**OPTIMIZE, "constraints": close})
    assert load_optimize_config(path).constraints == close


def test_the_best_trial_is_the_best_that_meets_the_constraints_as_optuna_judges_it() -> None:
    study = optuna.create_study(direction="maximize")
    for value, constraint in [(0.9, 5.0), (0.8, -1.0), (0.7, 0.0)]:
        trial = study.ask()
        trial.set_constraint("n_params <= 10", constraint)
        study.tell(trial, value)
    assert [t.number for t in ranked_trials(study)] == [1, 2]
    assert best_trials(study)[0].number == study.best_trial.number == 1


def test_a_study_where_no_complete_trial_meets_the_constraints_has_no_best() -> None:
    study = optuna.create_study(study_name="tight", direction="maximize")
    trial = study.ask()
    trial.set_constraint("n_params <= 10", 1.0)
    study.tell(trial, 0.9)
    assert ranked_trials(study) == []
    with pytest.raises(
        HpoError,
        match=re.escape("'tight' has no complete trial that meets its constraints (complete 1); every"),
    ) as plain:
        best_trials(study)
    # a plain Optuna study was told to "loosen the optimize config's constraints", which it has none of
    assert "optimize" not in str(plain.value)
    study.set_user_attr("optimize_config", {"constraints": ["n_params <= 10"]})
    with pytest.raises(
        HpoError,
        match=re.escape(
            "(complete 1); the nearest to n_params <= 10 measured n_params 11 (trial 0); loosen the "
        ),
    ):
        best_trials(study)


def test_no_trial_meets_the_constraints_names_how_near_each_unmet_one_came() -> None:
    """export-best and train-from-best said only that no complete trial met the constraints, and "loosen the
    optimize config's constraints": which one, and by how much, took reading every trial. The line names each
    constraint no trial met and the nearest value measured (from the trial's metrics where it has them); one
    that some trial met is left out, and where each is met by some trial, it says none meets them all."""
    study = optuna.create_study(study_name="two", direction="maximize")
    study.set_user_attr("optimize_config", {"constraints": ["n_params <= 100", "val_accuracy > 0.9"]})
    for gaps, metrics in [
        ({"n_params <= 100": 900.0, "val_accuracy > 0.9": 0.2}, {"n_params": 1000.0, "val_accuracy": 0.7}),
        ({"n_params <= 100": 150.0, "val_accuracy > 0.9": 0.05}, {}),  # the nearest, its metrics not kept
        ({"n_params <= 100": 400.0, "val_accuracy > 0.9": 0.1}, {"n_params": 500.0, "val_accuracy": 0.8}),
        ({"n_params <= 100": -50.0, "other": 0.5}, {}),  # a key no hpotool constraint has: its value alone
    ]:
        trial = study.ask()
        trial.set_user_attr("metrics", metrics)
        for key, gap in gaps.items():
            trial.set_constraint(key, gap)
        study.tell(trial, 0.5)
    with pytest.raises(HpoError) as caught:
        best_trials(study)
    assert str(caught.value) == (
        "study 'two' has no complete trial that meets its constraints (complete 4); the nearest to val_accuracy "
        "> 0.9 measured val_accuracy 0.85 (trial 1); constraint 'other' is 0.5 at the lowest (trial 3); loosen "
        "the optimize config's constraints or narrow the search space towards them, and run hpotool optimize "
        "again"
    )  # n_params <= 100 is met by trial 3, so it is not named
    each = optuna.create_study(study_name="each")
    for gaps in [{"a <= 1": 1.0, "b <= 1": -1.0}, {"a <= 1": -1.0, "b <= 1": 1.0}]:
        trial = each.ask()
        for key, gap in gaps.items():
            trial.set_constraint(key, gap)
        each.tell(trial, 0.5)
    with pytest.raises(
        HpoError, match=re.escape("reported a constraint value above 0; each constraint is met ")
    ):
        best_trials(each)


def test_constraint_values_are_stored_and_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 2 epochs: a trial's n_params, and so its constraint value, do not depend on how long it trains
        optimize(shipped_run(tmp_path, epochs=2), "examples/constrained_optimize.yaml", storage, 8)
    assert not [
        w for w in caught if issubclass(w.category, FutureWarning)
    ]  # Optuna 5's API, not constraints_func
    study = optuna.load_study(study_name="digits_small_models", storage=storage)
    for t in study.trials:
        (value,) = t.user_attrs["constraints"]
        assert value == t.user_attrs["metrics"]["n_params"] - 20000
        assert t.user_attrs["feasible"] == (value <= 0)
        assert t.constraints == {"n_params <= 20000": value}  # what Optuna's samplers and best_trial read
    assert {t.user_attrs["feasible"] for t in study.trials} == {True, False}
    assert study.best_trial.user_attrs["feasible"]


def test_when_no_trial_meets_the_constraints_optimize_says_so_and_export_best_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    opt = tmp_path / "o.yaml"
    opt.write_text((REPO / "examples/constrained_optimize.yaml").read_text().replace("<= 20000", "<= 10"))
    result = optimize(shipped_run(tmp_path, epochs=2), opt, storage, 2)
    assert "no complete trial meets the constraints" in result.stdout
    trials = optuna.load_study(study_name="digits_small_models", storage=storage).trials
    nearest, near = min((int(t.user_attrs["metrics"]["n_params"]), t.number) for t in trials)
    export = CliRunner().invoke(
        app,
        [
            "export-best",
            "--study-name",
            "digits_small_models",
            "--storage",
            storage,
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert export.exit_code == 2
    assert export.stderr == (
        "error: study 'digits_small_models' has no complete trial that meets its constraints (complete 2); the "
        f"nearest to n_params <= 10 measured n_params {nearest} (trial {near}); loosen the optimize config's "
        "constraints or narrow the search space towards them, and run hpotool optimize again\n"
    )
    assert not (tmp_path / "x").exists()
    final = CliRunner().invoke(
        app,
        [
            "train-from-best",
            "--study-name",
            "digits_small_models",
            "--storage",
            storage,
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert final.exit_code == 2 and final.stderr == export.stderr
    # --trial N: "lists those that do first", where none does; now the same line, naming --trial
    args = [
        "train-from-best",
        "--study-name",
        "digits_small_models",
        "--storage",
        storage,
        "--trial",
        str(near),
    ]
    picked = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "y")])
    assert picked.exit_code == 2 and picked.stderr == export.stderr.replace(
        "error: ", f"error: --trial {near}: "
    )
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    ("constraint", "range_said"),
    [
        ("epoch_time < 0", "epoch_time is 0 or more"),
        ("val_accuracy > 1", "val_accuracy lies in [0, 1]"),
        ("val_accuracy < 0", "val_accuracy lies in [0, 1]"),
        ("n_params <= -5", "n_params is 0 or more"),
    ],
)
def test_a_constraint_no_value_can_meet_is_refused_before_trial_0(
    tmp_path: Path, constraint: str, range_said: str
) -> None:
    """It ran the whole study, no trial feasible."""
    from .conftest import OPTIMIZE, RUN, write_yaml

    run = write_yaml(tmp_path / "run.yaml", RUN)
    opt = write_yaml(
        tmp_path / "optimize.yaml", {**OPTIMIZE, "constraints": ["n_params <= 20000", constraint]}
    )
    result = optimize(run, opt, f"sqlite:///{tmp_path / 'c.db'}", 1, exit_code=2)
    assert result.stderr == (
        f"error: {opt}: constraints: {constraint!r} can never be met: {range_said}, so no trial would be "
        "feasible; give a bound inside that range, or drop the constraint\n"
    )
    assert not (tmp_path / "c.db").exists()


def test_a_misspelt_constraint_names_the_value_meant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`val_acuracy >= 0.5` listed the values measured with no "did you mean", as a misspelt metric has; and
    a training function's constraint misspelt (`val_los`, beside the val_loss it returns) stopped the study
    with no hint either."""
    from .conftest import OPTIMIZE, RUN, write_yaml

    run = write_yaml(tmp_path / "run.yaml", RUN)
    opt = write_yaml(tmp_path / "optimize.yaml", {**OPTIMIZE, "constraints": ["val_acuracy >= 0.5"]})
    result = optimize(run, opt, f"sqlite:///{tmp_path / 'c.db'}", 1, exit_code=2)
    assert result.stderr == (
        f"error: {opt}: constraints: 'val_acuracy >= 0.5' names a value this classification task does not measure "
        "(did you mean 'val_accuracy'?); choose from: train_loss, val_loss, val_accuracy, n_params, epoch_time\n"
    )
    monkeypatch.chdir(REPO)
    loop = tmp_path / "loop.yaml"
    loop.write_text(
        (REPO / "examples/torch_loop_optimize.yaml").read_text() + 'constraints: ["val_los <= 1"]\n'
    )
    result = optimize("examples/torch_loop_run.yaml", loop, f"sqlite:///{tmp_path / 'l.db'}", 1, exit_code=2)
    assert (
        "examples.torch_loop_trainer:fit returned {val_loss}, without val_los, which constraints: val_los <= 1 "
        "reads (did you mean 'val_loss', which it returned?); return it from fit"
    ) in " ".join(result.stderr.split())


def test_a_constraint_a_prefix_away_from_a_returned_value_names_it(tmp_path: Path) -> None:
    """`loss <= 1` beside the val_loss a training function returns: the study metric's line finds a name a
    prefix away (f1 for val_f1), the constraint's line found only a typo, so it gave no hint."""
    from hpotool.trainer_contract import unmeasured_constraint

    error = unmeasured_constraint("m:fit", {"val_loss": 0.3, "epoch_time": 1.0}, "loss <= 1", "loss", True)
    assert str(error) == (
        "m:fit returned {val_loss}, without loss, which constraints: loss <= 1 reads (did you mean 'val_loss', "
        "which it returned?); return it from fit, such as {'loss': 0.5}, or drop the constraint"
    )


def test_a_constraint_at_the_edge_of_its_value_s_range_runs(tmp_path: Path) -> None:
    """`val_accuracy >= 1` and `epoch_time <= 0` can be met (by a perfect model, a clock that did not move):
    they run."""
    from .conftest import OPTIMIZE, RUN, write_yaml

    run = write_yaml(tmp_path / "run.yaml", RUN)
    constraints = ["val_accuracy >= 1", "epoch_time <= 0", "n_params >= 0", "val_accuracy <= 1"]
    opt = write_yaml(tmp_path / "optimize.yaml", {**OPTIMIZE, "constraints": constraints})
    optimize(run, opt, f"sqlite:///{tmp_path / 'c.db'}", 1)


@pytest.mark.parametrize(
    ("sampler", "name"),
    [
        ({"name": "random"}, "RandomSampler"),
        ({"name": "qmc"}, "QMCSampler"),
        ({"name": "grid"}, "GridSampler"),
        ({"name": "bruteforce"}, "BruteForceSampler"),
        (
            {
                "name": "optuna.samplers:PartialFixedSampler",
                "kwargs": {"fixed_params": {"batch_size": 16}, "base_sampler": "random"},
            },
            "RandomSampler",
        ),
        ({"name": "tpe"}, None),
        (
            {
                "name": "optuna.samplers:PartialFixedSampler",
                "kwargs": {"fixed_params": {"batch_size": 16}, "base_sampler": "tpe"},
            },
            None,
        ),
        ({"name": "gp"}, None),
        ({"name": "cmaes"}, None),  # Optuna warns of it itself, after each trial
    ],
)
def test_a_sampler_that_ignores_the_constraints_is_noted_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict, sampler: dict, name: str | None
) -> None:
    """Random, QMC, grid and brute force never read the constraints, which a run did not say: the user took
    the trials that broke them for the sampler's search."""
    from hpotool.plan import prepare_study
    from tests.conftest import write_yaml

    opt_dict["sampler"] = sampler
    opt_dict["constraints"] = ["n_params <= 1000"]
    opt_dict["search_space"] = {
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.01, "step": 0.001},
    }
    run_path, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    notes = [n for n in prepare_study(run_path, opt_path).notes if "constraints" in n]
    if name is None:
        assert notes == []
        return
    assert notes == [
        f"{opt_path}: constraints: Optuna's {name} does not steer its trials towards the constraints, so trials "
        "that break them take their share of the budget; the best trial is still chosen among those that meet "
        "them (the tpe, gp, nsga2 and nsga3 samplers steer towards them)"
    ]
    opt_dict.pop("constraints")
    assert not [
        n for n in prepare_study(run_path, write_yaml(opt_path, opt_dict)).notes if "constraints" in n
    ]
