from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.config_files import load_optimize_config
from hpotool.errors import HpoError
from tests.cli_run import shipped_run

REPO = Path(__file__).resolve().parents[1]
SPACE = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}


def test_multi_objective_study_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    runner = CliRunner()
    args = [
        "optimize",
        "-r",
        str(shipped_run(tmp_path, epochs=2)),  # the trials' values and front, not how good they are
        "-o",
        "examples/multi_objective.yaml",
        "--storage",
        storage,
        "--n-trials",
        "5",
        "--json",
    ]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metric"] == "val_loss, n_params" and summary["extra"]["pareto"]
    study = optuna.load_study(study_name="digits_small_and_good", storage=storage)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    for t in study.trials:
        assert t.values == [t.user_attrs["metrics"]["val_loss"], t.user_attrs["metrics"]["n_params"]]
        assert not t.intermediate_values  # nothing reported: multi-objective studies do not prune
    out = tmp_path / "export"
    exported = runner.invoke(
        app,
        ["export-best", "--study-name", "digits_small_and_good", "--storage", storage, "--out", str(out)],
        catch_exceptions=False,
    )
    assert exported.exit_code == 0, exported.output
    best = json.loads((out / "best_params.json").read_text())
    assert {t["trial_number"] for t in best["pareto_trials"]} == {t.number for t in study.best_trials}
    assert study.metric_names == ["val_loss", "n_params"] and best["metrics"] == ["val_loss", "n_params"]
    assert (
        (out / "trials.csv")
        .read_text()
        .splitlines()[0]
        .startswith("number,state,values_val_loss,values_n_params,")
    )
    # The example had no final: section, nor the train-from-best --trial command its header now names.
    header = [
        line for line in (REPO / "examples/multi_objective.yaml").read_text().splitlines() if "#" in line
    ]
    assert any(
        "hpotool train-from-best --study-name digits_small_and_good --trial N" in line for line in header
    )
    monkeypatch.chdir(tmp_path)  # train-from-best exports the front to studies/<name>/ here
    picked = min(t.number for t in study.best_trials)
    train = ["train-from-best", "--study-name", "digits_small_and_good", "--storage", storage]
    trained = runner.invoke(
        app, [*train, "--trial", str(picked), "--epochs", "1", "--out", "final"], catch_exceptions=False
    )
    assert trained.exit_code == 0, trained.output
    final = json.loads((tmp_path / "final" / "summary.json").read_text())
    assert final["final"] == {"epochs": 30, "seeds": 2, "overrides": {}}  # the example's final: section
    assert final["seeds"] == 2 and final["epochs"] == 1  # its seeds; --epochs 1 keeps this test short
    assert [c["trial_number"] for c in final["candidates"]] == [picked]
    assert sorted(p.name for p in (tmp_path / "final").iterdir()) == [
        "summary.json",
        f"trial{picked}-seed0",
        f"trial{picked}-seed1",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": ["val_loss", "n_params"]}, "metrics and directions go together"),
        ({"metrics": ["val_loss", "n_params"], "directions": ["minimize"]}, "need the same length"),
        (  # the study, its exports and its Pareto front held one metric as two objectives
            {"metrics": ["val_loss", "val_loss"], "directions": ["minimize", "minimize"]},
            "metrics: val_loss is given twice; each objective needs its own metric",
        ),
        (
            {
                "metrics": ["val_loss", "n_params"],
                "directions": ["minimize", "minimize"],
                "metric": "val_loss",
            },
            "not both",
        ),
        (
            {
                "metrics": ["val_loss", "n_params"],
                "directions": ["minimize", "minimize"],
                "pruner": {"name": "median"},
            },
            "pruner: 'median' cannot be used with several metrics",
        ),
    ],
)
def test_multi_objective_config_errors(change: dict, message: str, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump({"study_name": "s", "search_space": SPACE, **change}))
    with pytest.raises(HpoError, match=message):
        load_optimize_config(path)


def test_a_sampler_that_cannot_sample_several_objectives_is_refused_before_trial_0(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """CmaEsSampler raises in every trial of a multi-objective study: refused once, nothing written."""
    from hpotool.plan import prepare_study

    from .conftest import write_yaml

    opt_dict.update(
        metrics=["val_loss", "n_params"], directions=["minimize", "minimize"], sampler={"name": "cmaes"}
    )
    for key in ("metric", "direction", "pruner"):
        opt_dict.pop(key)
    run_path, opt_path = (
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "o.yaml", opt_dict),
    )
    with pytest.raises(
        HpoError, match=r"sampler: 'cmaes' cannot sample this study \(2 objectives\): ValueError: "
    ):
        prepare_study(run_path, opt_path)
    assert not (tmp_path / "studies").exists()
    opt_dict["sampler"] = {"name": "nsga2"}
    prepare_study(run_path, write_yaml(opt_path, opt_dict))


def test_only_the_refusal_of_several_objectives_gets_the_hint_of_samplers_that_take_them(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """Any error a built-in sampler raised in a multi-objective study ended in "for several objectives use
    tpe, ...": tpe's own error (n_ei_candidates: 0) was told to use tpe. CmaEsSampler's refusal keeps it."""
    from hpotool.plan import prepare_study

    from .conftest import write_yaml

    opt_dict.update(metrics=["val_loss", "n_params"], directions=["minimize", "minimize"])
    for key in ("metric", "direction", "pruner"):
        opt_dict.pop(key)
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    hint = "; for several objectives use tpe, nsga2, nsga3, gp, random or qmc"
    opt_dict["sampler"] = {"name": "tpe", "kwargs": {"n_startup_trials": 0, "n_ei_candidates": 0}}
    with pytest.raises(HpoError) as caught:
        prepare_study(run_path, write_yaml(tmp_path / "o.yaml", opt_dict))
    assert str(caught.value) == f"{tmp_path / 'o.yaml'}: " + (
        "sampler: 'tpe' cannot sample this study (2 objectives): "
        "ValueError: The size of `samples` must be positive, but got 0."
    )
    opt_dict["sampler"] = {"name": "cmaes"}
    with pytest.raises(HpoError) as caught:
        prepare_study(run_path, write_yaml(tmp_path / "o.yaml", opt_dict))
    assert str(caught.value).endswith("CmaEsSampler cannot be used" + hint)


def test_kwargs_of_the_nop_pruner_are_checked_with_several_objectives(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """They were dropped unchecked; with one objective the same kwargs are refused."""
    from hpotool.plan import prepare_study

    from .conftest import write_yaml

    opt_dict.update(
        metrics=["val_loss", "n_params"],
        directions=["minimize", "minimize"],
        pruner={"name": "nop", "kwargs": {"n_startup_trials": 3}},
    )
    for key in ("metric", "direction"):
        opt_dict.pop(key)
    run_path, opt_path = (
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "o.yaml", opt_dict),
    )
    with pytest.raises(HpoError, match=r"pruner\.kwargs: pruner 'nop' takes no argument 'n_startup_trials'"):
        prepare_study(run_path, opt_path)


@pytest.mark.parametrize("name", ["nop", "optuna.pruners.NopPruner", "optuna.pruners:NopPruner"])
def test_the_nop_pruner_by_its_import_path_is_accepted_with_several_objectives(
    tmp_path: Path, run_dict: dict, opt_dict: dict, name: str
) -> None:
    """`pruner: optuna.pruners.NopPruner` was refused ("cannot be used with several metrics") where `nop`
    was accepted; both are no pruning."""
    from hpotool.plan import prepare_study

    from .conftest import write_yaml

    opt_dict.update(metrics=["val_loss", "n_params"], directions=["minimize", "minimize"], pruner=name)
    for key in ("metric", "direction"):
        opt_dict.pop(key)
    path = write_yaml(tmp_path / "o.yaml", opt_dict)
    assert load_optimize_config(path).pruner.is_nop
    plan = prepare_study(write_yaml(tmp_path / "run.yaml", run_dict), path)
    assert isinstance(plan.pruner, optuna.pruners.NopPruner)


def test_the_report_of_a_study_run_with_the_nop_pruner_by_path_says_no_pruning(tmp_path: Path) -> None:
    from hpotool.report_info import report_info
    from hpotool.report_page import _header_rows

    study = optuna.create_study(study_name="s")
    study.set_user_attr("run_config", {"epochs": 3})
    study.set_user_attr(
        "optimize_config", {"metric": "val_loss", "pruner": {"name": "optuna.pruners.NopPruner"}}
    )
    for value in (0.5, 0.4):
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
        trial.set_user_attr("epochs_run", 3)
        study.tell(trial, value)
    assert dict(_header_rows(report_info(study, "x")))["epochs"] == "6 run (no pruning)"


def test_the_report_of_a_multi_objective_study_draws_its_learning_curves_from_the_history(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """The report of examples/multi_objective.yaml's study said 'no trial reported intermediate values' in
    place of the learning curves, as if the trials had recorded no epoch: they all did, in their history,
    which Optuna's Trial.report (one objective) cannot take. The report now draws the first objective's
    curve of every trial from its history."""
    from hpotool.report_drawing import make_figures
    from hpotool.report_info import report_info

    from .tiny_study import run_tiny_study

    opt_dict.update(metrics=["val_loss", "n_params"], directions=["minimize", "minimize"])
    for key in ("metric", "direction", "pruner"):
        opt_dict.pop(key, None)
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    assert all(t.user_attrs["history"] and not t.intermediate_values for t in study.trials)
    info = report_info(study, opt_dict["storage"])
    (curves,) = [f for f in info.figures if f.kind == "intermediate"]
    assert curves.reason is None
    assert (
        curves.title
        == "Learning curves (val_loss, the first objective, per epoch, from each trial's history)"
    )
    drawn = make_figures(study, info)[curves.key]
    lines = {trace.name: list(trace.y) for trace in drawn.data}
    assert lines == {
        f"Trial{t.number}": [row["val_loss"] for row in t.user_attrs["history"]] for t in study.trials
    }


@pytest.mark.parametrize(("front", "said"), [(1, "1 trial"), (2, "2 trials")])
def test_the_summary_counts_the_pareto_front_in_words(
    front: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "1 trial(s)"; the rest of the tool says "1 trial" and "2 trials"."""
    from hpotool.cli.study_view import print_summary
    from hpotool.summary import StudySummary

    pareto = [{"number": n, "values": [0.5, 10.0], "params": {"optimizer.lr": 0.01}} for n in range(front)]
    summary = StudySummary(
        "mo", "sqlite:///mo.db", "val_loss, n_params", "minimize, minimize", 2, {"complete": 2}, 2, 1.0, None
    )
    summary.extra["pareto"] = pareto
    print_summary(summary)
    row = next(line for line in capsys.readouterr().out.splitlines() if "Pareto front" in line)
    assert row.split("│")[2].strip() == said, row


def test_the_export_table_shows_a_text_choice_yaml_reads_as_a_list_apart_from_the_list_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_dict: dict, opt_dict: dict
) -> None:
    """The Pareto trials' parameters under export-best showed the choice "[1,2]" (text) and the choice
    [1, 2] (a list, stored as its label) both bare, undecoded: the text is quoted now, as trials shows it."""
    from tests.conftest import write_configs

    (tmp_path / "tagged_net.py").write_text(
        "from typing import Any\n\nimport torch.nn as nn\n\n\nclass Tagged(nn.Linear):\n"
        "    def __init__(self, in_features: int, out_features: int, tag: Any = None) -> None:\n"
        "        super().__init__(in_features, out_features)\n\n"
        "    def forward(self, x):\n        return super().forward(x.flatten(1))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dict["model"] = {"name": "tagged_net:Tagged"}
    del opt_dict["metric"], opt_dict["direction"]
    opt_dict |= {
        "metrics": ["val_loss", "val_accuracy"],
        "directions": ["minimize", "maximize"],
        "n_trials": 2,
    }
    opt_dict["search_space"] = {"model.tag": {"type": "categorical", "choices": ["[1,2]", [1, 2]]}}
    opt_dict["enqueue"] = [{"model.tag": "[1,2]"}, {"model.tag": [1, 2]}]  # the same model: both on the front
    run, opt = write_configs(tmp_path, run_dict, opt_dict)
    runner = CliRunner()
    ran = runner.invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "-q"], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    args = [
        "export-best",
        "--study-name",
        "tiny",
        "--storage",
        opt_dict["storage"],
        "--out",
        str(tmp_path / "x"),
    ]
    exported = runner.invoke(app, args, catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    shown = [
        [cell.strip() for cell in line.split("│") if cell.strip()]
        for line in exported.output.splitlines()
        if "model.tag" in line
    ]
    assert shown == [["model.tag", '"[1,2]"'], ["model.tag", "[1, 2]"]], exported.output
