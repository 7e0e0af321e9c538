from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import optuna
import pytest

from hpotool.importance import make_evaluator, param_importances


def test_the_parameter_that_matters_ranks_first() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        lambda t: 10 * t.suggest_float("big", 0, 1) + 0.01 * t.suggest_float("small", 0, 1), n_trials=30
    )
    imp = param_importances(study)
    assert list(imp) == ["big", "small"]
    assert imp["big"] > 0.9 and sum(imp.values()) == pytest.approx(1.0)


def test_too_few_trials_is_a_reason_not_a_crash() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ValueError, match="needs at least 2 complete trials, the study has 1"):
        param_importances(study)


def test_pruned_trials_that_reported_nothing_are_no_ranking_to_rest_on() -> None:
    """Every trial diverged before it reported a value (pruned with a NaN loss in epoch 0): the ranking was
    by trial number alone, and the report drew importances from it (lr 0.71, width 0.29)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-1, log=True), trial.suggest_int("width", 4, 32)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    with pytest.raises(
        ValueError, match="needs at least 2 finished trials that reported a finite value, the study has 0"
    ):
        param_importances(study)
    trial = study.ask()
    trial.suggest_float("lr", 1e-3, 1e-1, log=True), trial.suggest_int("width", 4, 32)
    trial.report(0.5, 0)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    with pytest.raises(ValueError, match=r"the study has 1$"):
        param_importances(study)


def _study_where_infeasible_trials_score_best() -> optuna.Study:
    """`width` decides the constraint and (above it) the score; among the trials that meet the constraint
    only `lr` matters."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        width, lr = trial.suggest_float("width", 0, 1), trial.suggest_float("lr", 0, 1)
        trial.set_constraint("n_params <= 10", 1.0 if width > 0.5 else -1.0)
        study.tell(trial, (10.0 + width if width > 0.5 else 0.0) + lr)
    return study


def test_trials_that_break_the_constraints_do_not_count() -> None:
    study = _study_where_infeasible_trials_score_best()
    imp = param_importances(study)
    assert list(imp) == ["lr", "width"] and imp["lr"] > 0.8
    # Optuna's own evaluator, reading every complete trial, has it the other way round.
    everything = optuna.importance.get_param_importances(study, evaluator=make_evaluator())
    assert list(everything) == ["width", "lr"]


def test_too_few_trials_that_meet_the_constraints_is_the_reason() -> None:
    study = optuna.create_study()
    for constraint in (1.0, 1.0, -1.0):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_constraint("n_params <= 10", constraint)
        study.tell(trial, 0.5)
    with pytest.raises(
        ValueError, match="needs at least 2 complete trials that meet the constraints, the study has 1"
    ):
        param_importances(study)


_LEAN_IMPORT = """
import sys
import warnings
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from hpotool.importance import import_without_sklearn, param_importances
if sys.argv[1] == "lean":
    import_without_sklearn()
import optuna.visualization
study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
study.optimize(lambda t: 10 * t.suggest_float("big", 0, 1) + t.suggest_float("small", 0, 1), n_trials=30)
importances = param_importances(study)
figure = optuna.visualization.plot_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
loaded = "sklearn" in sys.modules
import sklearn.ensemble  # still importable afterwards
print(loaded, importances, figure.data[0].x)
"""


def test_importances_without_importing_sklearn_are_the_same() -> None:
    # Fresh interpreters: this test process may have imported sklearn already.
    def run(mode: str) -> str:
        args = [sys.executable, "-c", _LEAN_IMPORT, mode]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()

    plain, lean = run("plain"), run("lean")
    assert plain.startswith("True ") and lean.startswith("False ")
    assert lean.removeprefix("False ") == plain.removeprefix("True ")


def test_import_without_sklearn_leaves_an_earlier_sklearn_import_alone() -> None:
    code = (
        "import sys, sklearn\n"
        "from hpotool.importance import import_without_sklearn\n"
        "import_without_sklearn()\n"
        "import optuna.importance\n"
        "optuna.importance.FanovaImportanceEvaluator(n_trees=2)\n"
        "print(sys.modules['sklearn'] is sklearn)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_trials_that_all_tie_are_a_reason_not_a_warning() -> None:
    """Three complete trials of one value: Optuna warned "Target and region quantiles select the same set
    of trials" (a report printed it twice, once more for its figure) and gave equal importances, which the
    report drew as a finding."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: 0.0 * t.suggest_float("x", 0, 1) + 0.0 * t.suggest_int("y", 0, 9), n_trials=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        with pytest.raises(
            ValueError,
            match="the 3 complete trials all have the same value, so no parameter sets the best apart",
        ):
            param_importances(study)


def test_a_conditional_parameter_is_scored_without_optunas_regime_warning() -> None:
    """`momentum` drawn only where `name` is sgd: the report and audit printed Optuna's "Some regimes for
    parameter `momentum` have less than 2 trials" (the inactive regime of one trial), which names nothing
    to change."""

    def objective(t: optuna.Trial) -> float:
        name = t.suggest_categorical("name", ["sgd", "adam"])
        momentum = t.suggest_float("momentum", 0, 1) if name == "sgd" else 0.0
        return t.suggest_float("lr", 0, 1) + momentum

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"name": "adam"})
    study.optimize(objective, n_trials=1)
    study.sampler = optuna.samplers.RandomSampler(seed=1)
    for _ in range(12):
        study.enqueue_trial({"name": "sgd"})
    study.optimize(objective, n_trials=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imp = param_importances(study)
    assert set(imp) == {"name", "momentum", "lr"}


_TIED_IMPORTANCES = """
import json
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
from hpotool.importance import import_without_sklearn, param_importances
import_without_sklearn()  # as `hpotool report` does: sklearn (1.5-3 s a run) is no part of the order
from hpotool.report_drawing import make_figures
from hpotool.report_info import report_info

def objective(t: optuna.Trial) -> float:
    fixed = [t.suggest_float(name, 1.0, 1.0) for name in ("zeta", "delta", "alpha", "omega", "beta")]
    return 10 * t.suggest_float("lr", 0, 1) + t.suggest_float("width", 0, 1) + sum(fixed)

study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
study.optimize(objective, n_trials=30)
figure = make_figures(study, report_info(study, "memory"))["importances"]
print(json.dumps([list(param_importances(study)), list(reversed(figure.data[0].y))]))
"""


def test_parameters_tied_in_importance_keep_one_order_from_run_to_run() -> None:
    """Five parameters tied at zero importance came in the order of a set of their names, which the string
    hash seed changes: the report's importances and its figure put them differently from run to run. Ties
    now go by name, the figure (read top down) as the importances."""

    def run(seed: int) -> list[list[str]]:
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        args = [sys.executable, "-c", _TIED_IMPORTANCES]
        return json.loads(subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout)

    tied = ["alpha", "beta", "delta", "omega", "zeta"]
    for seed in (0, 1, 2, 3):
        importances, figure = run(seed)
        assert importances == figure == ["lr", "width", *tied], f"PYTHONHASHSEED={seed}"


def test_importances_for_a_target_keep_optunas_lower_is_better_note_out() -> None:
    """Optuna notes, whenever a target is given, that "<evaluator class> computes the importances of params
    to achieve low `target` values"; the targets hpotool gives are so, and the note names nothing to change.
    Its filter named Optuna's class, and missed the evaluator that orders ties by name."""
    from hpotool.report_drawing import make_figures
    from hpotool.report_info import report_info

    study = optuna.create_study(
        directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=20)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*computes the importances of params")
        info = report_info(study, "memory")
        figures = make_figures(study, info)
    assert all(info.importances) and {"importances.0", "importances.1"} <= set(figures)
