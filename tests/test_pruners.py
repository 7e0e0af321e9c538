"""The PFL pruner on hand-made learning curves, on real SQLite storage."""

from __future__ import annotations

import json
import math
import multiprocessing
import re
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.factories import make_pruner
from hpotool.pruners import PFLPruner, predict_final
from hpotool.storage import make_storage

# These tests ask trials by hand (`study.ask()`) on hpotool's storage, whose heartbeat makes Optuna warn that
# it "is supposed to be used with Study.optimize"; hpotool's own loop asks with that warning off.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize:UserWarning"
)


def curve(start: float, end: float, rate: float, n: int) -> list[float]:
    return [end + (start - end) * math.exp(-rate * t) for t in range(n)]


def _study(url: str, direction: str = "minimize", n_complete: int = 4) -> optuna.Study:
    """A study with `n_complete` finished 20-epoch trials ending at 0.30, 0.32, 0.34, ... (minimize)."""
    study = optuna.create_study(study_name="pfl", storage=make_storage(url), direction=direction)
    study.set_user_attr("run_config", {"epochs": 20})
    sign = 1 if direction == "minimize" else -1
    for i in range(n_complete):
        trial = study.ask()
        values = [sign * v for v in curve(2.0, 0.30 + 0.02 * i, 0.4, 20)]
        for step, v in enumerate(values):
            trial.report(v, step)
        study.tell(trial, values[-1])
    return study


def _running(study: optuna.Study, values: list[float]) -> optuna.trial.FrozenTrial:
    trial = study.ask()
    for step, v in enumerate(values):
        trial.report(v, step)
    return study._storage.get_trial(trial._trial_id)  # type: ignore[attr-defined]


PRUNER = PFLPruner(n_startup_trials=3, n_warmup_steps=3, top_k=3)


def test_prunes_a_clearly_worse_curve_and_keeps_a_better_one(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 's.db'}")
    worse = _running(study, curve(2.0, 0.9, 0.4, 6))  # heading for 0.9; the bar is 0.34
    better = _running(study, curve(2.0, 0.2, 0.4, 6))  # heading for 0.2
    assert PRUNER.prune(study, worse)
    assert not PRUNER.prune(study, better)


def test_honours_maximize(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    assert PRUNER.prune(study, _running(study, [-v for v in curve(2.0, 0.9, 0.4, 6)]))
    assert not PRUNER.prune(study, _running(study, [-v for v in curve(2.0, 0.2, 0.4, 6)]))


def test_nan_prunes_at_once_even_during_warm_up_and_start_up(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 's.db'}", n_complete=0)
    assert PRUNER.prune(study, _running(study, [1.0, float("nan")]))


def test_warm_up_and_start_up_protect_trials(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 's.db'}", n_complete=2)  # fewer than n_startup_trials
    assert not PRUNER.prune(study, _running(study, curve(2.0, 5.0, 0.4, 8)))
    study = _study(f"sqlite:///{tmp_path / 't.db'}")
    assert not PRUNER.prune(study, _running(study, curve(2.0, 5.0, 0.4, 2)))  # step 1 < n_warmup_steps


def test_nan_final_values_do_not_disable_pruning(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 's.db'}")
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)  # FAIL trials never count
    assert PRUNER.prune(study, _running(study, curve(2.0, 0.9, 0.4, 6)))


def test_state_lives_in_storage_and_survives_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = _study(url)
    candidate = _running(study, curve(2.0, 0.9, 0.4, 6))
    # A new process would build new objects from the same file: same decision.
    reopened = optuna.load_study(study_name="pfl", storage=make_storage(url))
    fresh = make_pruner("pfl", {"n_startup_trials": 3, "n_warmup_steps": 3, "top_k": 3})
    assert fresh.prune(reopened, reopened._storage.get_trial(candidate._trial_id))  # type: ignore[attr-defined]


def _decide(url: str, trial_id: int) -> bool:
    study = optuna.load_study(study_name="pfl", storage=make_storage(url))
    return PRUNER.prune(study, study._storage.get_trial(trial_id))  # type: ignore[attr-defined]


def test_two_worker_processes_make_the_same_decisions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = _study(url)
    worse = _running(study, curve(2.0, 0.9, 0.4, 6))
    better = _running(study, curve(2.0, 0.2, 0.4, 6))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        decisions = pool.starmap(_decide, [(url, worse._trial_id), (url, better._trial_id)] * 2)
    assert decisions == [True, False, True, False]


def test_prediction_recovers_an_exponential_curve() -> None:
    values = curve(2.0, 0.3, 0.4, 8)
    assert predict_final(range(8), values, 19, window=1) == pytest.approx(
        0.3 + 1.7 * math.exp(-0.4 * 19), abs=0.01
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"window": 0}, "window must be >= 1"),
        ({"n_warmup_steps": -1}, "cannot be negative"),
    ],
)
def test_constructor_checks(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PFLPruner(**kwargs)


def _space_study(url: str, name: str, pruner: str = "pfl") -> optuna.Study:
    """A study of x in [0, 1], stored as run with `pruner`, no trial yet."""
    study = optuna.create_study(study_name=name, storage=make_storage(url))
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    study.set_user_attr("optimize_config", {"search_space": space, "pruner": {"name": pruner, "kwargs": {}}})
    return study


def _x_trial(x: float, **fields: Any) -> optuna.trial.FrozenTrial:
    """A finished trial of a _space_study at `x` (complete unless `fields` say otherwise)."""
    from optuna.distributions import FloatDistribution

    distributions = {"x": FloatDistribution(0.0, 1.0)}
    return optuna.trial.create_trial(params={"x": x}, distributions=distributions, **fields)


def _prune_audit(*args: str) -> Any:
    """`hpotool prune-audit ARGS`."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    return CliRunner().invoke(app, ["prune-audit", *args], catch_exceptions=False)


def test_prune_audit_counts_one_pruned_trial_and_one_complete_trial_in_the_singular(tmp_path: Path) -> None:
    # "0 of 1 pruned trials would have beaten ...", "has only 1 complete trials that meet its constraints"
    url = f"sqlite:///{tmp_path / 's.db'}"
    pruned, baseline = _space_study(url, "pruned"), _space_study(url, "baseline", pruner="nop")
    pruned.add_trial(_x_trial(0.1, value=0.3, intermediate_values=dict(enumerate(curve(2.0, 0.3, 0.4, 10)))))
    pruned.add_trial(
        _x_trial(0.9, state=optuna.trial.TrialState.PRUNED, intermediate_values={0: 2.0, 1: 1.8})
    )
    baseline.add_trial(_x_trial(0.9, value=0.9))
    args = ("--study-name", "pruned", "--storage", url, "--against", "baseline", "--against-storage", url)
    result = _prune_audit(*args, "--top-k", "2")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "0 of 1 pruned trial would have beaten pruned's top-1 bar (0.3)" in said, said
    assert "pruned has only 1 complete trial that meets its constraints, so its top-2 has no bar" in said, (
        said
    )


def test_prune_audit_measures_predictions_and_missed_winners(tmp_path: Path) -> None:
    from hpotool.prune_audit import missed_winners, prediction_errors

    url = f"sqlite:///{tmp_path / 's.db'}"
    pruned, baseline = _space_study(url, "pruned"), _space_study(url, "baseline", pruner="nop")
    for i, x in enumerate([0.1, 0.2, 0.3]):  # exact exponentials: predictions from epoch 2 on are exact
        values = curve(2.0, 0.3 + 0.1 * i, 0.4, 10)
        pruned.add_trial(_x_trial(x, value=0.3 + 0.1 * i, intermediate_values=dict(enumerate(values))))
    for x in (0.8, 0.9):
        pruned.add_trial(
            _x_trial(x, state=optuna.trial.TrialState.PRUNED, intermediate_values={0: 2.0, 1: 1.8})
        )
    for x, value in ((0.8, 0.25), (0.9, 0.9), (0.1, 0.3)):  # x=0.8 would have won; x=0.9 would not
        baseline.add_trial(_x_trial(x, value=value))
    errors = prediction_errors(pruned)
    assert [e.epoch for e in errors] == list(range(2, 9)) and all(e.trials == 3 for e in errors)
    assert max(e.max_abs_error for e in errors) < 0.02  # the fit's rate grid is the only error
    missed = missed_winners(pruned, baseline, top_k=2)
    assert (missed.pruned, missed.matched_exactly, missed.would_have_made_top_k, missed.bar) == (2, 2, 1, 0.4)
    result = _prune_audit(
        "--study-name",
        "pruned",
        "--storage",
        url,
        "--against",
        "baseline",
        "--against-storage",
        url,
        "--top-k",
        "2",
    )
    assert (
        result.exit_code == 0
        and "1 of 2 pruned trials would have beaten pruned's top-2 bar (0.4)" in result.stdout
    )
    other = _space_study(url, "other space")  # a baseline must search the same space
    other.set_user_attr(
        "optimize_config", {"search_space": {"y": {"type": "float", "low": 0.0, "high": 1.0}}}
    )
    with pytest.raises(HpoError, match=r"search different spaces \(x, y\)"):
        missed_winners(pruned, other, top_k=2)
    # the same space and direction, another metric: its values were compared with this study's bar
    pruned.set_user_attr("optimize_config", {**pruned.user_attrs["optimize_config"], "metric": "val_loss"})
    baseline.set_user_attr(
        "optimize_config", {**baseline.user_attrs["optimize_config"], "metric": "val_rmse"}
    )
    with pytest.raises(HpoError) as refused:
        missed_winners(pruned, baseline, top_k=2)
    assert str(refused.value) == (
        "'pruned' minimizes val_loss and --against 'baseline' minimizes val_rmse; compare with a study of the "
        "same metric and direction run without pruning"
    )
    # the same space, the other direction: the line named neither study nor either direction
    url2 = f"sqlite:///{tmp_path / 'up.db'}"
    up = optuna.create_study(study_name="up", storage=make_storage(url2), direction="maximize")
    up.set_user_attr("optimize_config", {**baseline.user_attrs["optimize_config"], "metric": "val_loss"})
    with pytest.raises(HpoError) as refused:
        missed_winners(pruned, up, top_k=2)
    assert str(refused.value) == (
        "'pruned' minimizes val_loss and --against 'up' maximizes val_loss; compare with a study of the "
        "same metric and direction run without pruning"
    )
    # the table counts the epochs a prediction had seen: steps 2-8 are after 3-9 epochs
    firsts = re.findall(r"^\W+(\d+)\W+3\W", result.stdout, flags=re.M)
    assert "predicted after epochs" in result.stdout and firsts == [str(k) for k in range(3, 10)], (
        result.stdout
    )
    # --json read 2 where the table read 3: it has the step (from 0, as report() counts) and the count
    as_json = _prune_audit("--study-name", "pruned", "--storage", url, "--json")
    rows = json.loads(as_json.stdout)["prediction_errors"]
    assert [(r["epoch"], str(r["epochs_seen"])) for r in rows] == list(zip(range(2, 9), firsts, strict=True))


def test_prune_audit_of_or_against_a_multi_objective_study_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _space_study(url, "single")
    optuna.create_study(study_name="two", storage=url, directions=["minimize", "minimize"])
    base = ["--storage", url, "--against-storage", url]
    against = _prune_audit(*base, "--study-name", "single", "--against", "two")
    assert against.exit_code == 2 and "Traceback" not in against.output
    assert against.stderr == (
        "error: --against 'two' has 2 objectives; compare with a single-objective study of the same "
        "search space run without pruning\n"
    )
    of = _prune_audit("--storage", url, "--study-name", "two")  # --against-storage goes with --against
    assert of.exit_code == 2
    assert of.stderr == (  # why, and what to run instead: it said only "there is no pruner to audit"
        "error: study 'two' has 2 objectives, and multi-objective studies do not prune (Optuna's Trial.report "
        f"takes one objective): there is no pruner to audit; hpotool report --study-name two --storage {url} "
        "shows each trial's learning curve and the Pareto front\n"
    )


def test_prune_audit_of_long_curves_prints_a_short_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = _space_study(url, "long")
    for i in range(3):
        values = curve(2.0, 0.3 + 0.1 * i, 0.1, 100)
        study.add_trial(_x_trial(0.1 * i, value=values[-1], intermediate_values=dict(enumerate(values))))
    result = _prune_audit("--study-name", "long", "--storage", url)
    assert result.exit_code == 0
    rows = re.findall(r"^\W+(\d+)\W+3\W", result.stdout, flags=re.M)
    assert rows[0] == "3" and rows[-1] == "99" and len(rows) == 12, result.stdout
    assert "(12 of 97 epochs shown, evenly spaced; --json has every one)" in result.stdout
    as_json = _prune_audit("--study-name", "long", "--storage", url, "--json")
    assert len(json.loads(as_json.stdout)["prediction_errors"]) == 97


def test_prune_audit_of_short_curves_says_there_is_nothing_to_measure(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _space_study(url, "short").add_trial(
        _x_trial(0.5, value=0.5, intermediate_values={0: 0.9, 1: 0.7, 2: 0.5})
    )
    result = _prune_audit("--study-name", "short", "--storage", url)
    assert result.exit_code == 0
    assert " ".join(result.stdout.split()) == (
        "no PFL predictions to measure: no complete trial of short reported 4 or more epochs (the fit needs 3 "
        "before the last)"
    )


def test_prune_audit_of_a_study_without_a_complete_trial_says_so(tmp_path: Path) -> None:
    """It read "no complete trial of s reported 4 or more epochs", as if trials had completed too short."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    reported = {0: 0.9, 1: 0.7, 2: 0.6, 3: 0.55, 4: 0.5}
    said = (
        "no PFL predictions to measure: {name} has no complete trial yet, and a prediction is measured against "
        "the final value a complete trial reached (a pruned trial has none); {run} until some trials complete, "
        "then run hpotool prune-audit again"  # it said "then audit again", which reads as `hpotool audit`
    )
    study = _space_study(url, "s")
    study.set_user_attr("run_config", RunConfig().model_dump(mode="json"))  # as hpotool optimize stores it
    # a plain Optuna study, not made by hpotool optimize, is not told to run it (it was)
    plain = optuna.create_study(study_name="plain", storage=make_storage(url))
    for name, s, run in (
        ("s", study, "run hpotool optimize on it"),
        ("plain", plain, "run the Optuna code that made it"),
    ):
        for _ in range(2):
            s.add_trial(_x_trial(0.5, state=optuna.trial.TrialState.PRUNED, intermediate_values=reported))
        result = _prune_audit("--study-name", name, "--storage", url)
        assert result.exit_code == 0
        assert " ".join(result.stdout.split()) == said.format(name=name, run=run)


def test_prune_audit_sets_the_bar_with_trials_that_meet_the_constraints(tmp_path: Path) -> None:
    from hpotool.prune_audit import missed_winners

    url = f"sqlite:///{tmp_path / 's.db'}"
    pruned, baseline = _space_study(url, "pruned"), _space_study(url, "baseline", pruner="nop")

    def add(study: optuna.Study, x: float, value: float | None, constraint: float = -1.0) -> None:
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
        constraints = {"constraints": [constraint]}
        study.add_trial(
            _x_trial(x, value=value, state=state, intermediate_values={0: 2.0}, system_attrs=constraints)
        )

    add(pruned, 0.1, 0.1, constraint=1.0)  # the lowest loss, but it breaks the constraints
    add(pruned, 0.2, 0.5)
    for x in (0.7, 0.8):
        add(pruned, x, None)
    add(baseline, 0.7, 0.3)  # beats the feasible bar 0.5
    add(baseline, 0.8, 0.2, constraint=1.0)  # beats it too, but breaks the constraints
    missed = missed_winners(pruned, baseline, top_k=1)
    assert missed.bar == 0.5 and missed.would_have_made_top_k == 1
    assert [e["trial"] for e in missed.examples] == [2]


def test_missed_winners_match_a_list_choice_by_value_not_by_its_label(tmp_path: Path) -> None:
    """A baseline that spells the same class weights [1.0, 3.0] where this study says [1, 3] searches the same
    space (the check compares values); its twin of a pruned trial is the exact match, not a nearest guess."""
    from optuna.distributions import CategoricalDistribution

    from hpotool.prune_audit import missed_winners

    url = f"sqlite:///{tmp_path / 's.db'}"
    studies = {}
    for name, weights in (("pruned", [1, 3]), ("baseline", [1.0, 3.0])):
        study = optuna.create_study(study_name=name, storage=make_storage(url))
        space = {"loss.weight": {"type": "categorical", "choices": [None, weights]}}
        pruner = "median" if name == "pruned" else "nop"
        study.set_user_attr("optimize_config", {"search_space": space, "pruner": {"name": pruner}})
        studies[name] = (
            study,
            CategoricalDistribution([None, "[1, 3]" if name == "pruned" else "[1.0, 3.0]"]),
        )
    (pruned, ours), (baseline, theirs) = studies["pruned"], studies["baseline"]
    pruned.add_trial(
        optuna.trial.create_trial(
            params={"loss.weight": None}, distributions={"loss.weight": ours}, value=0.5
        )
    )
    pruned.add_trial(
        optuna.trial.create_trial(
            params={"loss.weight": "[1, 3]"},
            distributions={"loss.weight": ours},
            state=optuna.trial.TrialState.PRUNED,
            intermediate_values={0: 2.0},
        )
    )
    for label, value in ((None, 0.5), ("[1.0, 3.0]", 0.1)):  # the weighted run would have won
        baseline.add_trial(
            optuna.trial.create_trial(
                params={"loss.weight": label}, distributions={"loss.weight": theirs}, value=value
            )
        )
    missed = missed_winners(pruned, baseline, top_k=1)
    assert (missed.matched_exactly, missed.matched_nearest, missed.would_have_made_top_k) == (1, 0, 1)


def test_prune_audit_against_itself_or_a_pruned_study_is_one_line(tmp_path: Path) -> None:
    """Either gave figures: against itself, each pruned trial "would have won" by its nearest complete
    neighbour there; against a pruned study, by the survivors of its pruner."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = _space_study(url, "pruned")
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    _space_study(url, "halved", pruner="successive_halving")
    base = ["--study-name", "pruned", "--storage", url, "--against-storage", url]
    itself = _prune_audit(*base, "--against", "pruned")
    assert itself.exit_code == 2 and itself.stderr == (
        "error: --against names study 'pruned' itself; compare with a study of the same search space run "
        "without pruning\n"
    )
    halved = _prune_audit(*base, "--against", "halved")
    assert halved.exit_code == 2 and halved.stderr == (
        "error: --against 'halved' was run with the successive_halving pruner, which stops trials early; "
        "compare with a study of the same search space run without pruning (pruner: {name: nop})\n"
    )


def test_prune_audit_with_fewer_complete_trials_than_top_k_says_its_top_k_has_no_bar(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sh, nop = _space_study(url, "sh"), _space_study(url, "nop", pruner="nop")
    # As successive halving leaves a small study: 2 complete trials, the rest pruned at the first rung.
    for x, value in ((0.1, 0.3), (0.2, 0.4), (0.7, None), (0.8, None), (0.9, None)):
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
        sh.add_trial(_x_trial(x, value=value, state=state, intermediate_values={0: 2.0}))
    for x, value in ((0.7, 0.35), (0.8, 0.9), (0.9, 1.0), (0.1, 0.3)):  # 0.7 lands among the top 2
        nop.add_trial(_x_trial(x, value=value))
    args = ["--study-name", "sh", "--storage", url, "--against", "nop", "--against-storage", url]
    result = _prune_audit(*args, "--top-k", "5")
    assert result.exit_code == 0, result.output
    # Every pruned trial "would have beaten the top-5 bar", the worst complete trial, when the top-5 has free
    # places: the figure is the top-2's, and says so.
    assert " ".join(result.stdout.split()).endswith(
        "1 of 3 pruned trials would have beaten sh's top-2 bar (0.4), going by what their twins reached in nop "
        "(3 matched by identical params, 0 by the nearest) sh has only 2 complete trials that meet its "
        "constraints, so its top-5 has no bar (any finished trial would make it): the bar above is its top-2's, "
        "its worst complete trial"
    ), result.stdout
    as_json = _prune_audit(*args, "--top-k", "5", "--json")
    missed = json.loads(as_json.stdout)["missed_winners"]
    assert (missed["top_k"], missed["bar_rank"], missed["bar"], missed["would_have_made_top_k"]) == (
        5,
        2,
        0.4,
        1,
    )
    exact = _prune_audit(*args, "--top-k", "2")
    assert "sh's top-2 bar (0.4)" in exact.stdout and "has no bar" not in exact.stdout


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("pfl", {"n_warmup_steps": 4}, "pruner.kwargs.n_warmup_steps: 4 leaves no step"),
        ("wilcoxon", {"n_startup_steps": 5}, "pruner.kwargs.n_startup_steps: 5 leaves no step"),
        (
            "wilcoxon",
            {"p_threshold": 0.05},
            "pruner: 'wilcoxon' prunes nothing here: .* p = 0.0625 at the least",
        ),
        ("threshold", {"lower": 0.1, "n_warmup_steps": 4}, "pruner.kwargs.n_warmup_steps: 4 leaves no step"),
        (
            "patient",
            {
                "patience": 1,
                "wrapped_pruner": {"name": "percentile", "kwargs": {"percentile": 25, "n_warmup_steps": 4}},
            },
            "pruner.kwargs.wrapped_pruner.kwargs.n_warmup_steps: 4 leaves no step",
        ),
        (
            "successive_halving",
            {"min_resource": 2, "min_early_stopping_rate": 1},
            "min_resource: 2 puts the first rung at step 8",
        ),
        ("hyperband", {"min_resource": 4}, "min_resource: 4 puts the first rung at step 4"),
        ("hyperband", {"max_resource": 9}, "max_resource: 9 is more than the 5 epochs"),
    ],
)
def test_a_pruner_step_past_the_last_one_asked_is_refused(
    name: str, kwargs: dict[str, Any], key: str
) -> None:
    """Each ran the study unpruned without a word: five epochs ask the pruner at steps 0 to 3."""
    from hpotool.pruner_reach import check_pruner_reach

    with pytest.raises(HpoError, match=key):
        check_pruner_reach(make_pruner(name, kwargs), kwargs, epochs=5)


@pytest.mark.parametrize("max_resource", [6, 8])
def test_a_hyperband_max_resource_past_the_epochs_that_idles_no_bracket_is_taken(max_resource: int) -> None:
    """max_resource 6 or 8 on 5 epochs makes hyperband's 2 brackets, as max_resource: 5 does (first rungs at
    steps 1 and 3, both asked): the study runs as with 5. It was refused saying "0 of which have their first
    rung past the last step ... and prune nothing", a reason that contradicted itself."""
    from hpotool.pruner_reach import check_pruner_reach

    kwargs = {"max_resource": max_resource}
    check_pruner_reach(make_pruner("hyperband", kwargs), kwargs, epochs=5)


def test_one_idle_hyperband_bracket_is_said_in_the_singular() -> None:
    """'1 of which have their first rung past the last step ... and prune nothing': the plural for one."""
    from hpotool.pruner_reach import check_pruner_reach

    kwargs = {"max_resource": 10}
    with pytest.raises(HpoError) as refused:
        check_pruner_reach(make_pruner("hyperband", kwargs), kwargs, epochs=5)
    assert (
        "3 brackets by it, 1 of which has its first rung past the last step the pruner is asked at (3) and "
        "prunes nothing (" in str(refused.value)
    ), refused.value


@pytest.mark.parametrize(
    ("max_epochs", "said"),
    [
        (
            3,
            "max_epochs: 3 is not the 5 epochs the trials train: pfl would predict each trial's value at step 2, "
            "and prune nothing from that step on, where trials train to step 4",
        ),
        (
            50,
            "max_epochs: 50 is not the 5 epochs the trials train: pfl would predict each trial's value at "
            "step 49, past the trials' last step, 4",
        ),
    ],
)
def test_a_pfl_max_epochs_other_than_the_epochs_is_refused(max_epochs: int, said: str) -> None:
    """pfl predicts at step max_epochs - 1 and prunes nothing from there on: `max_epochs: 3` over 5 epochs
    with its default warm-up of 3 left the study unpruned without a word; 50 judged trials by a value 45
    epochs past their end."""
    from hpotool.pruner_reach import check_pruner_reach

    kwargs = {"max_epochs": max_epochs}
    with pytest.raises(HpoError, match=re.escape(said)):
        check_pruner_reach(make_pruner("pfl", kwargs), kwargs, epochs=5)


def test_a_pfl_max_epochs_equal_to_the_epochs_or_under_a_searched_epochs_is_taken() -> None:
    """A searched `epochs` is each trial's horizon, which pfl reads before its max_epochs."""
    from hpotool.pruner_reach import check_pruner_reach

    check_pruner_reach(make_pruner("pfl", {"max_epochs": 5}), {"max_epochs": 5}, epochs=5)
    check_pruner_reach(
        make_pruner("pfl", {"max_epochs": 3}), {"max_epochs": 3}, epochs=5, epochs_searched=True
    )


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("pfl", {"n_warmup_steps": 3}),
        ("median", {}),  # defaults are left alone: median's n_warmup_steps 0 on any run
        ("wilcoxon", {}),  # 4 values at step 3 give p = 0.0625 at the least, below its 0.1
        ("wilcoxon", {"n_startup_steps": 4}),  # it tests steps 0 to 3 at step 3: refused before
        ("successive_halving", {"min_resource": 1, "min_early_stopping_rate": 1}),  # rung 4, asked up to 4
        ("successive_halving", {"min_resource": "auto"}),
        ("hyperband", {"min_resource": 1, "max_resource": 5}),
        ("hyperband", {"max_resource": "auto"}),
        ("patient", {"patience": 1, "wrapped_pruner": {"name": "median", "kwargs": {"n_warmup_steps": 3}}}),
    ],
)
def test_a_pruner_step_the_trials_reach_is_taken(name: str, kwargs: dict[str, Any]) -> None:
    from hpotool.pruner_reach import check_pruner_reach

    epochs = 6 if name == "successive_halving" else 5
    check_pruner_reach(make_pruner(name, kwargs), kwargs, epochs=epochs)


@pytest.mark.parametrize(
    ("metric", "direction", "kwargs", "said"),
    [
        (
            "val_accuracy",
            "maximize",
            {"upper": 0.3},
            "pruner.kwargs.upper: 0.3 prunes a trial once its val_accuracy rises above it, and the study "
            "maximizes val_accuracy: it would stop the best trials; write lower: 0.3 to stop those that stay "
            "below it",
        ),
        (
            "val_loss",
            "minimize",
            {"lower": 1.5, "upper": 10.0},
            "pruner.kwargs.lower: 1.5 prunes a trial once its val_loss falls below it, and the study minimizes "
            "val_loss: it would stop the best trials; write upper: 1.5 to stop those that stay above it",
        ),
    ],
)
def test_a_threshold_on_the_side_of_the_better_values_is_refused(
    tmp_path: Path, run_dict: dict, opt_dict: dict, metric: str, direction: str, kwargs: dict, said: str
) -> None:
    """Optuna's threshold pruner knows no direction: `upper: 0.3` on a maximized val_accuracy pruned the trials
    that rose above 0.3, the best ones, which as PRUNED could never be the study's best, without a word."""
    from hpotool.plan import prepare_study

    from .conftest import write_configs

    opt_dict.update(metric=metric, direction=direction, pruner={"name": "threshold", "kwargs": kwargs})
    with pytest.raises(HpoError) as err:
        prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert str(err.value) == f"{tmp_path / 'optimize.yaml'}: {said}"
    patient = {"name": "patient", "kwargs": {"patience": 1, "wrapped_pruner": opt_dict["pruner"]}}
    opt_dict["pruner"] = patient
    with pytest.raises(HpoError) as err:
        prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    assert (
        str(err.value)
        == f"{tmp_path / 'optimize.yaml'}: {said.replace('pruner.kwargs', 'pruner.kwargs.wrapped_pruner.kwargs')}"
    )
    right = {"lower": kwargs.get("upper")} if direction == "maximize" else {"upper": kwargs["lower"]}
    opt_dict["pruner"] = {"name": "threshold", "kwargs": right}
    prepare_study(*write_configs(tmp_path, run_dict, opt_dict))  # the side it was meant for


def _wilcoxon_prunes(kwargs: dict[str, Any], epochs: int) -> bool:
    """Whether Optuna's Wilcoxon pruner, asked after every epoch but the last, prunes a trial whose value is
    worse than the best trial's at every epoch (in a study of one complete trial, the best)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction="maximize", pruner=make_pruner("wilcoxon", kwargs))
        best = study.ask()
        for step in range(epochs):
            best.report(0.9, step)
        study.tell(best, 0.9)
        trial = study.ask()
        for step in range(epochs - 1):
            trial.report(0.1 + 0.01 * step, step)
            if trial.should_prune():
                return True
    return False


@pytest.mark.parametrize("epochs", [2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    "kwargs", [{}, {"p_threshold": 0.2}, {"p_threshold": 0.3}, {"n_startup_steps": 4}, {"n_startup_steps": 3}]
)
def test_a_wilcoxon_pruner_is_refused_exactly_where_it_could_never_prune(
    kwargs: dict[str, Any], epochs: int
) -> None:
    """Its signed-rank test on n values gives p = 0.5 ** n at the least: with the default p_threshold 0.1 a
    run of 4 epochs (3 values at the last step asked) ran unpruned without a word, and n_startup_steps: 4 on
    5 epochs, which prunes at step 3, was refused. Refused now where Optuna's pruner could never prune a
    trial worse than the best at every epoch, and there only."""
    from hpotool.pruner_reach import check_pruner_reach

    prunes = _wilcoxon_prunes(kwargs, epochs)
    if prunes:
        check_pruner_reach(make_pruner("wilcoxon", kwargs), kwargs, epochs=epochs)
    else:
        with pytest.raises(HpoError, match=r"(prunes nothing here|leaves no step to prune at)"):
            check_pruner_reach(make_pruner("wilcoxon", kwargs), kwargs, epochs=epochs)


def test_the_most_epochs_a_trial_trains_is_the_top_of_a_searched_epochs() -> None:
    from hpotool.pruner_reach import most_epochs
    from hpotool.search_space import CategoricalParam, IntParam

    assert most_epochs(3, {}) == 3
    assert most_epochs(3, {"epochs": IntParam(type="int", low=2, high=9)}) == 9
    assert most_epochs(3, {"epochs": CategoricalParam(type="categorical", choices=[2, 12])}) == 12


def test_a_pruner_named_for_trials_of_one_epoch_gets_a_note(tmp_path: Path) -> None:
    """A pruner is asked after every epoch but the last: `pruner: {name: median}` over 1-epoch trials ran the
    study unpruned without a word. The default pruner (no pruner section) and 2 epochs get no note."""
    import copy

    from hpotool.plan import prepare_study

    from .conftest import OPTIMIZE, RUN, write_configs

    run, opt = {**copy.deepcopy(RUN), "epochs": 1}, copy.deepcopy(OPTIMIZE)
    opt["pruner"] = {"name": "median"}
    notes = prepare_study(*write_configs(tmp_path, run, opt)).notes
    assert (
        f"{tmp_path / 'optimize.yaml'}: pruner: 'median' never prunes here: trials train at most 1 epoch"
        in (" ".join(notes))
    )
    del opt["pruner"]
    assert not [n for n in prepare_study(*write_configs(tmp_path, run, opt)).notes if "never prunes" in n]
    opt["pruner"] = {"name": "median"}
    run["epochs"] = 2
    assert not [n for n in prepare_study(*write_configs(tmp_path, run, opt)).notes if "never prunes" in n]


def test_prune_audit_of_a_multi_objective_study_with_trials_stopped_for_nan_says_why_they_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A multi-objective study whose runs went NaN shows PRUNED trials (hpotool stops such a run), and
    # prune-audit said only "multi-objective studies do not prune": true, and read as a contradiction.
    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_configs

    monkeypatch.chdir(tmp_path)
    run_dict["optimizer"] = {"name": "sgd", "lr": 1e-2}
    del opt_dict["metric"], opt_dict["direction"], opt_dict["pruner"]
    opt_dict |= {
        "study_name": "two",
        "n_trials": 2,
        "metrics": ["val_loss", "n_params"],
        "directions": ["minimize", "minimize"],
        "sampler": {"name": "grid"},
        "search_space": {"optimizer.lr": {"type": "categorical", "choices": [1e-2, 1e30]}},  # NaN at once
    }
    run, opt = write_configs(tmp_path, run_dict, opt_dict)
    ran = CliRunner().invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "-q"], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    study = optuna.load_study(study_name="two", storage=opt_dict["storage"])
    [nan] = [t for t in study.trials if t.params["optimizer.lr"] == 1e30]
    assert nan.state == optuna.trial.TrialState.PRUNED and not nan.intermediate_values  # no pruner's doing
    url = opt_dict["storage"]
    audit = _prune_audit("--study-name", "two", "--storage", url)
    assert audit.exit_code == 2
    assert audit.stderr == (
        "error: study 'two' has 2 objectives, so no pruner judges its trials (Optuna's Trial.report takes one "
        f"objective) and there is none to audit: its PRUNED trial #{nan.number} was stopped by hpotool because "
        f"a metric was not finite (train_loss nan); hpotool trials --study-name two --storage {url} lists why "
        "each ended\n"
    )
