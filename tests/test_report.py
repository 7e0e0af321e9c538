from __future__ import annotations

import copy
import html
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.importance import EVALUATOR
from hpotool.plan import prepare_study
from hpotool.report import write_report
from hpotool.report_drawing import make_figures
from hpotool.report_info import report_info
from hpotool.report_page import _epochs_run, _header_rows, render_html
from hpotool.storage import load_study
from hpotool.study_run import run_study
from tests.conftest import OPTIMIZE, RUN, write_yaml
from tests.tiny_study import two_objective_study

runner = CliRunner()


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[optuna.Study, str]]:
    """A real hpotool study with COMPLETE, PRUNED (median pruner) and FAIL trials: run once for the module,
    as the tests only read it (its 8 trials cost each of six tests 2-3 s of set-up)."""
    tmp_path = tmp_path_factory.mktemp("mixed")
    run_dict, opt_dict = copy.deepcopy(RUN), copy.deepcopy(OPTIMIZE)
    opt_dict["storage"] = f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"
    run_dict["model"] = {"name": "tests.helpers:FragileModel", "width": 8}
    run_dict["epochs"] = 3
    opt_dict["n_trials"] = 8
    opt_dict["pruner"] = {"name": "median", "kwargs": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    opt_dict["search_space"] = {
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "model.width": {"type": "int", "low": 8, "high": 32, "step": 8},
    }
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "optimize.yaml", opt_dict)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # as the tests' own folder: nothing the run writes lands in the checkout
        run_study(prepare_study(run_path, opt_path), max_failures=0)
    yield load_study("tiny", opt_dict["storage"]), opt_dict["storage"]


def _states(study: optuna.Study) -> set[str]:
    return {t.state.name for t in study.trials}


def test_report_of_a_study_with_complete_pruned_and_failed_trials(
    mixed_study: tuple[optuna.Study, str],
) -> None:
    study, url = mixed_study
    assert _states(study) == {"COMPLETE", "PRUNED", "FAIL"}
    info = report_info(study, url)
    counts = {s: sum(t.state.name.lower() == s for t in study.trials) for s in ("complete", "pruned", "fail")}
    assert info.counts == counts
    assert info.objectives == [{"name": "val_accuracy", "direction": "maximize"}]
    assert info.best[0]["number"] == study.best_trial.number and info.best[0]["values"] == [study.best_value]
    lr = study.best_trial.params["optimizer.lr"]  # the tiny run has no schedule: each epoch the trial's lr
    assert info.best[0]["lr"] == [lr] * 3
    assert dict(_header_rows(info))["its lr by epoch"] == f"{lr:.4g}, {lr:.4g}, {lr:.4g} (epochs 0 to 2)"
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert info.epochs["planned"] == 3 * len(finished)
    assert info.epochs["run"] == sum(t.user_attrs["epochs_run"] for t in finished) < info.epochs["planned"]
    assert info.versions["optuna"] == optuna.__version__
    assert info.evaluator == EVALUATOR
    assert info.reproduce[0] == f"hpotool train-from-best --study-name tiny --storage {url}"
    assert {f.key: f.reason for f in info.figures} == {
        k: None
        for k in ("history", "importances", "parallel", "slice", "contour", "edf", "intermediate", "timeline")
    }
    assert sorted(info.figures[4].params or []) == ["model.width", "optimizer.lr"]
    # every pruned trial: where it stopped, and the median it missed, recomputed from the study
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert [r["number"] for r in info.pruned] == [t.number for t in pruned]
    for row, trial in zip(info.pruned, pruned, strict=True):
        assert row["epoch"] == trial.last_step and row["value"] == trial.intermediate_values[trial.last_step]
        assert row["reason"].startswith(f"pruned after {trial.last_step + 1} of ")
        assert _epochs_run(row) == trial.user_attrs["epochs_run"] == trial.last_step + 1
        assert row["threshold_note"].startswith("median of ")
        assert max(trial.intermediate_values.values()) < row["threshold"]  # it really missed it


def test_html_embeds_plotlyjs_once_and_draws_every_figure(mixed_study: tuple[optuna.Study, str]) -> None:
    study, url = mixed_study
    path = write_report(study, url, Path("out/report.html"))
    text = path.read_text()
    from plotly.offline import get_plotlyjs

    plotlyjs = get_plotlyjs()
    assert text.count(plotlyjs) == 1
    rest = text.replace(plotlyjs, "")  # plotly.js itself names map-tile servers the report never uses
    assert "http" not in rest.replace("http://www.w3.org", "") and "<script src" not in rest
    assert rest.count("Plotly.newPlot(") == 8
    assert "Study tiny" in text and EVALUATOR in text and "median of " in text
    assert not list(path.parent.glob(".*tmp"))  # the atomic write left no temporary file


def test_json_report_is_the_same_content_as_data(mixed_study: tuple[optuna.Study, str]) -> None:
    study, url = mixed_study
    result = runner.invoke(
        app, ["report", "--study-name", "tiny", "--storage", url, "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    data = json.loads(Path("studies/tiny/report.json").read_text())
    info = report_info(study, url).as_dict()
    assert data["counts"] == info["counts"] and data["pruned"] == info["pruned"]
    figs = {f["key"]: f for f in data["figures"]}
    assert figs["history"]["plotly"]["data"] and figs["history"]["reason"] is None
    import plotly.graph_objects as go

    assert go.Figure(figs["history"]["plotly"]).data  # as the README says to read it back


def test_learning_curves_of_failed_trials_alone_are_explained_not_drawn_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A study whose trials all failed after reporting epochs (hpotool optimize on a model that raises
    mid-training) drew an empty learning-curve figure, and `hpotool report` printed Optuna's '[W ...] Study
    instance does not contain trials.'"""

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        trial.report(0.5, step=0)
        raise RuntimeError("boom")

    study = optuna.create_study(study_name="failed", direction="maximize")
    study.optimize(objective, n_trials=2, catch=(RuntimeError,))
    info = report_info(study, "memory")
    reasons = {f.key: f.reason for f in info.figures}
    assert reasons["intermediate"] == (
        "only failed trials reported intermediate values (a failed trial's curve is not drawn)"
    )
    with caplog.at_level(logging.WARNING, logger="optuna"):
        figures = make_figures(study, info)
    assert "intermediate" not in figures
    assert "does not contain trials" not in caplog.text


def test_a_study_with_one_trial_explains_the_figures_it_cannot_draw() -> None:
    study = optuna.create_study(study_name="one", direction="minimize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    info = report_info(study, "memory")
    reasons = {f.key: f.reason for f in info.figures}
    assert (
        reasons["importances"]
        == "importances cannot be computed: needs at least 2 complete trials, the study has 1"
    )
    assert reasons["contour"] == "a contour needs two parameters, the study has 1"
    assert reasons["intermediate"] == "no trial reported intermediate values"
    assert reasons["history"] is None and reasons["slice"] is None
    assert info.epochs["run"] is None and info.reproduce == [] and info.pruned == []
    from plotly.offline import get_plotlyjs

    text = render_html(info, make_figures(study, info)).replace(get_plotlyjs(), "")
    assert "Not drawn: a contour needs two parameters, the study has 1." in text
    assert text.count("Plotly.newPlot(") == sum(r is None for r in reasons.values())


def test_an_empty_study_is_a_report_not_a_crash() -> None:
    study = optuna.create_study(study_name="empty")
    info = report_info(study, "memory")
    assert info.best == [] and all(f.reason for f in info.figures)
    assert "no complete trial yet" in render_html(info, make_figures(study, info))


@pytest.mark.parametrize("pruner", ["median", "nop"])
def test_the_report_of_a_study_whose_trials_all_failed_counts_no_epochs(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    pruner: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its header said "epochs: 0 run of 0 a study without pruning would have run": no trial ran to be
    counted, and there was nothing to compare."""
    monkeypatch.chdir(tmp_path)
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}
    opt_dict["pruner"] = {"name": pruner}
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    summary = run_study(
        prepare_study(
            write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
        ),
        max_failures=2,
    )
    assert summary.counts == {"fail": 2}
    storage = opt_dict["storage"]
    for out in ("r.html", "r.json"):
        result = runner.invoke(app, ["report", "--study-name", "tiny", "--storage", storage, "--out", out])
        assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "<th>epochs</th><td>none counted: no trial completed or was pruned</td>" in page
    # the data says the same: nothing ran, nothing to compare, nothing saved
    epochs = json.loads((tmp_path / "r.json").read_text())["epochs"]
    assert epochs == {"run": 0, "planned": 0, "saved_fraction": None, "not_recorded": None}


@pytest.mark.parametrize("optimize_config", ["oops", {"metric": "val_loss", "pruner": {"name": "median"}}])
def test_a_study_whose_stored_configs_are_no_mapping_is_read_as_a_plain_study(
    tmp_path: Path, optimize_config: Any
) -> None:
    """A study whose `run_config` user attr is a string (and whose trials store `epochs_run`/`history` as
    strings) crashed report with AttributeError: 'str' object has no attribute 'get', and so did export-best,
    studies, audit and prune-audit where `optimize_config` was one; now each reads it as a plain study."""
    from optuna.distributions import FloatDistribution

    storage = f"sqlite:///{tmp_path / 'odd.db'}"
    study = optuna.create_study(study_name="odd", storage=storage)
    study.set_user_attr("run_config", "oops")
    study.set_user_attr("optimize_config", optimize_config)
    for i in range(6):
        trial = study.ask({"x": FloatDistribution(0, 1)})
        trial.set_user_attr("epochs_run", "three")
        trial.set_user_attr("history", "garbage")
        trial.report(float(i), 0)
        study.tell(trial, float(i))
    info = report_info(study, storage)
    assert info.epochs["not_recorded"] == "not an hpotool study" and info.reproduce == []
    names = ["--study-name", "odd", "--storage", storage]
    for args in (
        ["report", *names, "--out", str(tmp_path / "r.html")],
        ["export-best", *names, "--out", str(tmp_path / "export")],
        ["studies", "--storage", storage],
        ["trials", *names],
        ["prune-audit", *names],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    for args in (
        ["audit", *names],
        ["refine", *names, "--out", str(tmp_path / "s.yaml")],
        ["train-from-best", *names],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "was not created by hpotool optimize" in result.stderr and len(result.stderr.splitlines()) == 1


def _multi_objective_study(storage: str) -> optuna.Study:
    study = optuna.create_study(
        study_name="mo",
        storage=storage,
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    with warnings.catch_warnings():  # set_metric_names is experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["loss", "accuracy"])
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1) - t.params["x"]), n_trials=12
    )
    return study


def test_multi_objective_report_has_a_pareto_front_and_per_objective_figures(tmp_path: Path) -> None:
    study = _multi_objective_study(f"sqlite:///{tmp_path / 'mo.db'}")
    info = report_info(study, "x")
    assert info.objectives == [
        {"name": "loss", "direction": "minimize"},
        {"name": "accuracy", "direction": "maximize"},
    ]
    assert {b["number"] for b in info.best} == {t.number for t in study.best_trials}
    keys = {f.key for f in info.figures if f.reason is None}
    assert {"pareto", "history.0", "history.1", "importances.0", "importances.1", "contour.1"} <= keys
    assert info.importances[0] and next(iter(info.importances[0])) == "x"  # objective 0 is x itself
    figures = make_figures(study, info)
    assert set(figures) == keys
    assert "Pareto front" in render_html(info, figures)
    assert info.reproduce == []  # a plain Optuna study: no run config to train


def test_a_multi_objective_reports_caveat_does_not_point_to_audit_and_refine(tmp_path: Path) -> None:
    """Its importances from 12 trials were said to be too few "(audit and refine need 30)", where audit and
    refine refuse a study of several objectives whatever its count."""
    info = report_info(_multi_objective_study(f"sqlite:///{tmp_path / 'mo.db'}"), "x")
    assert info.importances_caveat == (
        "these importances rest on 12 trials, too few to rank parameters by (30 or more): run more trials "
        "before reading them"
    )


def test_a_multi_objective_report_says_how_to_reproduce_a_pareto_optimal_trial(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    study, url = two_objective_study(tmp_path, run_dict)
    for lr, values in [(0.01, [0.5, 90]), (0.02, [0.4, 170]), (0.03, [0.6, 250])]:
        study.enqueue_trial({"optimizer.lr": lr})
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
        study.tell(trial, values)
    info = report_info(study, url)
    assert info.reproduce == [
        f"hpotool export-best --study-name mo --storage {url}",
        "(writes a run config for each Pareto-optimal trial, best_run_<trial>.yaml in studies/mo/; train the one "
        f"you pick with `hpotool train-from-best --study-name mo --storage {url} --trial <trial>`, under the "
        "study's final: rules, or `hpotool train --run-config studies/mo/best_run_<trial>.yaml`)",
    ]
    html = render_html(info, make_figures(study, info))
    assert "Reproduce a Pareto-optimal trial:" in html and "hpotool export-best --study-name mo" in html
    assert runner.invoke(app, shlex.split(info.reproduce[0])[1:]).exit_code == 0  # the command works
    assert sorted(p.name for p in Path("studies/mo").glob("best_run_*.yaml")) == sorted(
        f"best_run_{t.number}.yaml" for t in study.best_trials
    )


def test_a_multi_objective_report_lists_the_trials_that_diverged(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    """hpotool prunes a trial of several objectives whose loss or objective is NaN (no pruner does): the
    report's Pruning section said "No trial was pruned." beside counts of pruned trials, and its JSON listed
    none, as it read the pruned trials of single-objective studies only."""
    study = optuna.create_study(study_name="mo", directions=["minimize", "maximize"])
    study.set_user_attr("run_config", run_dict)
    study.set_user_attr("optimize_config", {"metrics": ["val_loss", "val_r2"], "pruner": {"name": "nop"}})
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
    study.tell(trial, [0.5, 0.7])
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
    trial.set_user_attr("prune_reason", "val_r2 is nan at the end of the run")
    trial.set_user_attr("diverged_at", {"epoch": 1, "metric": "val_r2", "value": "nan"})
    trial.set_user_attr("epochs_run", 2)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    info = report_info(study, "x")
    assert [(r["number"], r["threshold"], r["reason"]) for r in info.pruned] == [
        (1, None, "val_r2 is nan at the end of the run")
    ]
    assert info.pruned[0]["threshold_note"].startswith(
        "none: the trial diverged (its val_r2 was nan after 2 "
    )
    html = render_html(info, make_figures(study, info))
    assert "No trial was pruned." not in html and "val_r2 is nan at the end of the run" in html


def test_a_multi_objective_report_names_no_pruner(tmp_path: Path, run_dict: dict[str, Any]) -> None:
    # hpotool stores the default pruner section on every study; a multi-objective one never prunes
    study = optuna.create_study(study_name="mo", directions=["minimize", "minimize"])
    study.set_user_attr("run_config", run_dict)
    study.set_user_attr(
        "optimize_config", {"metrics": ["val_loss", "n_params"], "pruner": {"name": "median", "kwargs": {}}}
    )
    for values in ([0.5, 90], [0.4, 170]):
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
        trial.set_user_attr("epochs_run", run_dict["epochs"])
        study.tell(trial, values)
    info = report_info(study, "x")
    assert info.pruner is None and info.pruned == []
    assert "pruner" not in dict(_header_rows(info))
    # nor says that pruning saved 0% of the epochs, in the HTML or in the JSON
    assert dict(_header_rows(info))["epochs"] == f"{2 * run_dict['epochs']} run (no pruning)"
    assert info.epochs["saved_fraction"] is None


def test_report_command_errors_are_one_line() -> None:
    result = runner.invoke(app, ["report", "--study-name", "nope"])
    assert result.exit_code == 2
    assert "no study 'nope': studies/nope.db does not exist; studies under studies/: none" in result.stderr
    result = runner.invoke(app, ["report", "--study-name", "nope", "--format", "pdf"])
    assert result.exit_code == 2 and "--format: 'pdf' is not a report format" in result.stderr


def test_optimize_report_writes_the_default_report(configs: tuple[Path, Path]) -> None:
    run_path, opt_path = configs
    result = runner.invoke(
        app,
        ["optimize", "-r", str(run_path), "-o", str(opt_path), "--quiet", "--report"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "report written to studies/tiny/report.html" in result.stderr
    assert Path("studies/tiny/report.html").read_text().startswith("<!DOCTYPE html>")


# --- a real browser -------------------------------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("HPOTOOL_REQUIRE_BROWSER") == "1":
            pytest.fail("HPOTOOL_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH; install it (apt-get install chromium) to run the browser test")
    return path


def dump_dom(chromium: str, page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, in headless chromium with every network request refused."""
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",  # any fetch would fail
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


# What plotly draws for data: scatter and bar traces, their points and lines, contour levels.
DRAWN = re.compile(r'class="(trace [^"]*|point|js-line|contourlevel)"')


def drawn_figures(dom: str) -> dict[str, tuple[int, int]]:
    """For each figure section of a rendered report: (plotly <svg> roots, marks drawn from data)."""
    sections = re.split(r'<section class="figure" id="section-', dom)[1:]
    return {s.split('"', 1)[0]: (s.count('class="main-svg"'), len(DRAWN.findall(s))) for s in sections}


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["single", "multi"])
def test_every_figure_renders_offline_in_headless_chromium(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    chromium = _chromium()
    if kind == "single":
        study, url = request.getfixturevalue("mixed_study")
    else:
        url = f"sqlite:///{tmp_path / 'mo.db'}"
        study = _multi_objective_study(url)
    info = report_info(study, url)
    page = write_report(study, url, tmp_path / "report.html")
    drawn = drawn_figures(dump_dom(chromium, page, tmp_path / "profile"))
    expected = {f.key for f in info.figures if f.reason is None}
    assert set(drawn) == {f.key for f in info.figures} and len(expected) >= 8
    assert all(drawn[k][0] >= 1 and drawn[k][1] >= 1 for k in expected), drawn


@pytest.mark.browser
def test_the_browser_check_sees_a_report_without_plotlyjs_as_broken(
    mixed_study: tuple[optuna.Study, str], tmp_path: Path
) -> None:
    chromium = _chromium()
    study, url = mixed_study
    page = write_report(study, url, tmp_path / "report.html")
    from plotly.offline import get_plotlyjs

    page.write_text(page.read_text().replace(get_plotlyjs(), ""))
    drawn = drawn_figures(dump_dom(chromium, page, tmp_path / "profile"))
    assert drawn and all(v == (0, 0) for v in drawn.values())


def _long_named_study() -> optuna.Study:
    """A study of two parameters named with 300 characters each (and one short), whose names differ at the end."""
    long = "model." + "very_long_parameter_name_" * 12
    names = [f"{long}a", f"{long}b", "lr"]
    study = optuna.create_study(study_name="long", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        lambda t: sum(t.suggest_float(n, 0, 1) * (i + 1) for i, n in enumerate(names)), n_trials=16
    )
    return study


def test_the_importance_figure_shortens_long_names_and_hovers_them_whole() -> None:
    """Two 300-character parameter names took the importance figure's left margin, leaving its bars no room;
    their ticks are now at most 40 characters (head and tail, so the two still differ), the hover whole."""
    study = _long_named_study()
    figure = make_figures(study, report_info(study, "memory"))["importances"]
    (bar,) = figure.data
    ticks = dict(zip(figure.layout.yaxis.tickvals, figure.layout.yaxis.ticktext, strict=True))
    assert set(ticks) == set(bar.y) == set(study.best_params)
    assert all(len(text) <= 40 for text in ticks.values()) and len(set(ticks.values())) == 3
    assert ticks["lr"] == "lr"
    assert all(name in "".join(bar.hovertemplate) for name in bar.y)


@pytest.mark.browser
def test_the_header_table_of_long_parameter_names_fits_the_page(tmp_path: Path) -> None:
    """The best trial's row of two 300-character names ran past the page's right edge."""
    chromium = _chromium()
    study = _long_named_study()
    page = write_report(study, "memory", tmp_path / "report.html")
    measure = (
        "<script>addEventListener('load', () => setTimeout(() => {const e = document.documentElement;"
        "document.body.setAttribute('data-overflow', String(e.scrollWidth - e.clientWidth));}, 100));</script>"
    )
    page.write_text(page.read_text().replace("</body>", f"{measure}</body>"))
    dom = dump_dom(chromium, page, tmp_path / "profile")
    found = re.search(r'data-overflow="(-?\d+)"', dom)
    assert found is not None and int(found[1]) <= 0, found


def test_planned_epochs_follow_a_searched_epochs_parameter() -> None:
    study = optuna.create_study(study_name="ep", sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("run_config", {"epochs": 10})

    def objective(trial: optuna.Trial) -> float:
        epochs = trial.suggest_int("epochs", 2, 6)
        trial.set_user_attr("epochs_run", epochs - 1 if trial.number % 2 else epochs)
        if trial.number % 2:
            raise optuna.TrialPruned("pruned")
        return float(epochs)

    study.optimize(objective, n_trials=6)
    info = report_info(study, "memory")
    assert info.epochs["planned"] == sum(t.params["epochs"] for t in study.trials)
    assert info.epochs["run"] == info.epochs["planned"] - 3
    assert {r["threshold_note"] for r in info.pruned} == {"stopped before reporting a finite value"}


def test_browser_test_skips_without_chromium_but_fails_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder with no chromium in it
    monkeypatch.delenv("HPOTOOL_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium on PATH"):
        _chromium()
    monkeypatch.setenv("HPOTOOL_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="HPOTOOL_REQUIRE_BROWSER=1 but no chromium"):
        _chromium()


def _big_study(n: int) -> optuna.Study:
    """An in-memory study of `n` complete trials with two parameters and 5-step learning curves."""
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="maximize")
    dists = {"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)}
    trials = []
    for i in range(n):
        a, b = (i * 0.618) % 1, (i * 0.382) % 1
        value = a - (b - 0.5) ** 2
        curve = {s: value * (s + 1) / 5 for s in range(5)}
        trials.append(
            optuna.trial.create_trial(
                params={"a": a, "b": b}, distributions=dists, value=value, intermediate_values=curve
            )
        )
    study.add_trials(trials)
    return study


def test_big_studies_draw_per_trial_figures_from_the_best_and_an_even_sample() -> None:
    from hpotool.report_figures import SAMPLE_LIMITS, sample_trials

    study = _big_study(1200)
    trials = study.get_trials(deepcopy=False)
    drawn = sample_trials("contour", trials, study.directions)
    limit = SAMPLE_LIMITS["contour"]
    assert len(drawn) == limit and len({t.number for t in drawn}) == limit
    best = sorted(trials, key=lambda t: -t.value)[: limit // 10]
    assert {t.number for t in best} <= {t.number for t in drawn}
    assert [t.number for t in drawn] == sorted(t.number for t in drawn)
    assert max(t.number for t in drawn) > 1000  # the even sample spans the study, not its start
    assert sample_trials("history", trials, study.directions) == trials  # not a per-trial figure

    info = report_info(study, "memory")
    titles = {f.kind: f.title for f in info.figures}
    assert "(500 of 1,200 trials drawn: the best 50" in titles["intermediate"]
    assert "(300 of 1,200 trials drawn" in titles["contour"] and "(500 of 1,200" in titles["parallel"]
    assert "drawn" not in titles["slice"]
    figures = make_figures(study, info)
    curves = [t for t in figures["intermediate"].data if t.mode and "lines" in t.mode]
    assert len(curves) == SAMPLE_LIMITS["intermediate"]
    assert len(figures["slice"].data[0].x) == 1200  # every trial


def test_a_small_study_draws_every_trial() -> None:
    study = _big_study(40)
    info = report_info(study, "memory")
    assert not any("drawn" in f.title for f in info.figures)
    figures = make_figures(study, info)
    assert len([t for t in figures["intermediate"].data if t.mode and "lines" in t.mode]) == 40


def test_report_and_audit_commands_leave_sklearn_unimported(
    mixed_study: tuple[optuna.Study, str], tmp_path: Path
) -> None:
    # optuna.importance imports scikit-learn for fANOVA alone (1.3-2 s); hpotool's evaluator is PED-ANOVA.
    study, url = mixed_study
    code = (
        "import sys\n"
        "from hpotool.cli import app\n"
        "for args in (['report', '--out', sys.argv[3]], ['audit']):\n"
        "    try:\n"
        "        app([*args, '--study-name', sys.argv[1], '--storage', sys.argv[2]])\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('optuna.importance' in sys.modules, 'sklearn' in sys.modules, file=sys.stderr)"
    )
    out = tmp_path / "r.html"
    args = [sys.executable, "-c", code, study.study_name, url, str(out)]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "True False"
    assert "PED-ANOVA" in result.stdout and out.stat().st_size > 1_000_000


def test_importances_of_an_objective_to_maximize_look_at_its_high_values() -> None:
    from hpotool.report_info import report_info

    study = optuna.create_study(
        directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(t: optuna.Trial) -> tuple[float, float]:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        return y, 100 * max(x - 0.9, 0) - 0.01 * y  # x sets its highest values apart, y its lowest

    study.optimize(objective, n_trials=200)
    info = report_info(study, "sqlite:///memory")
    second = info.importances[1]
    assert second is not None and max(second, key=second.__getitem__) == "x"


def test_the_importance_figure_leaves_out_trials_that_break_the_constraints() -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        width, lr = trial.suggest_float("width", 0, 1), trial.suggest_float("lr", 0, 1)
        trial.set_constraint("n_params <= 10", 1.0 if width > 0.5 else -1.0)
        study.tell(trial, (10.0 + width if width > 0.5 else 0.0) + lr)  # over the limit scores best
    info = report_info(study, "sqlite:///memory")
    assert info.importances[0] is not None and next(iter(info.importances[0])) == "lr"
    bars = make_figures(study, info)["importances"].data[0]
    assert dict(zip(bars.y, bars.x, strict=True)) == pytest.approx(info.importances[0], abs=0.01)


def test_report_of_a_study_where_no_complete_trial_meets_the_constraints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tight.db'}"
    study = optuna.create_study(study_name="tight", storage=url, direction="maximize")
    study.set_user_attr("run_config", {"epochs": 2})
    for value in (0.5, 0.7, 0.6):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_constraint("n_params <= 10", 5.0)
        study.tell(trial, value)
    info = report_info(study, url)
    assert info.best == [] and info.reproduce == []  # train-from-best would refuse it: nothing to reproduce
    out = tmp_path / "r.html"
    result = runner.invoke(
        app, ["report", "--study-name", "tight", "--storage", url, "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<th>best</th><td>no complete trial meets the constraints</td>" in page
    assert "Reproduce the best trial" not in page


def test_report_format_follows_the_out_suffix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    base = ["report", "--study-name", "p", "--storage", url]
    for name, is_json in (("r.json", True), ("R.JSON", True), ("r.html", False), ("r.txt", False)):
        out = tmp_path / name
        result = runner.invoke(app, [*base, "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        text = out.read_text()
        if is_json:
            assert json.loads(text)["figures"]
        else:
            assert text.lstrip().lower().startswith("<!doctype html>")
    explicit = tmp_path / "explicit.json"
    result = runner.invoke(app, [*base, "--out", str(explicit), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(explicit.read_text())["figures"]
    upper = tmp_path / "upper.txt"  # --format JSON was refused ("not a report format") where R.JSON was read
    result = runner.invoke(app, [*base, "--out", str(upper), "--format", "JSON"], catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(upper.read_text())["figures"]


def test_a_format_that_contradicts_the_out_suffix_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    for fmt, other in (("html", "json"), ("json", "html")):
        out = tmp_path / f"r.{other}"
        result = runner.invoke(
            app, ["report", "--study-name", "p", "--storage", url, "--out", str(out), "--format", fmt]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr == (
            f"error: --format {fmt} does not match --out {out} (a .{other} file); "
            f"drop --format, or give --format {other} or an --out ending in .{fmt}\n"
        )
        assert not out.exists()


def test_report_out_a_folder_is_refused_naming_a_file_in_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    (tmp_path / "out").mkdir()
    result = runner.invoke(app, ["report", "--study-name", "p", "--storage", url, "--out", "out"])
    assert result.exit_code == 2
    assert result.stderr == "error: --out out: is a folder; give a file in it, e.g. --out out/report.html\n"
    assert list((tmp_path / "out").iterdir()) == []


def test_report_out_with_a_name_too_long_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    for out, name in (
        ("a" * 300 + ".json", "aaa.json"),
        ("a" * 300 + "/r.json", "aaaaaaaa"),
    ):  # a file's, a folder's
        result = runner.invoke(app, ["report", "--study-name", "p", "--storage", url, "--out", out])
        assert result.exit_code == 2 and "Traceback" not in result.output
        bytes_long = (
            305 if out.endswith("a.json") else 300
        )  # refused before the report is drawn, naming --out
        assert result.stderr == (
            f"error: --out {out[:40]}...{out[-8:]}: the name '{'a' * 24}...{name}' is {bytes_long} bytes long, "
            f"and a file or folder name holds at most 255; give a shorter --out\n"
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("a")]


def test_report_out_below_a_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    (tmp_path / "afile").write_text("")
    for fmt in ("html", "json"):
        out = tmp_path / "afile" / "sub" / f"r.{fmt}"
        result = runner.invoke(
            app, ["report", "--study-name", "p", "--storage", url, "--out", str(out), "--format", fmt]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr == (
            f"error: --out {out}: {tmp_path / 'afile'} is a file, not a folder; give a file, e.g. --out "
            f"p-report.{fmt}\n"
        )
    assert (tmp_path / "afile").read_text() == ""


def test_the_reproduce_commands_are_shell_quoted(tmp_path: Path) -> None:
    folder = tmp_path / "my studies"
    folder.mkdir()
    url = f"sqlite:///{folder / 'a b.db'}"
    study = optuna.create_study(study_name="it's", storage=url)
    study.set_user_attr("run_config", {"epochs": 2})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    info = report_info(study, url)
    assert shlex.split(info.reproduce[0]) == [
        "hpotool",
        "train-from-best",
        "--study-name",
        "it's",
        "--storage",
        url,
    ]
    export = info.reproduce[1].split("`")[1]
    assert shlex.split(export) == ["hpotool", "export-best", "--study-name", "it's", "--storage", url]


def test_the_html_shows_the_reproduce_notes_commands_as_code_not_markdown_backticks(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    single = optuna.create_study(study_name="it's", storage=url)
    single.set_user_attr("run_config", {"epochs": 2})
    single.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    multi, multi_url = two_objective_study(tmp_path, run_dict)
    trial = multi.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1)
    multi.tell(trial, [0.5, 90])
    for study, storage in [(single, url), (multi, multi_url)]:
        info = report_info(study, storage)
        page = render_html(info, make_figures(study, info))
        note = page.split("</code></pre><p>", 1)[1].split("</p>", 1)[0]
        assert "`" not in note, note  # the page showed `hpotool export-best ...` with its backticks
        commands = re.findall(r"<code>(.*?)</code>", note)
        assert commands and all(html.unescape(c).startswith("hpotool ") for c in commands), note
        assert [html.unescape(c) for c in commands] == info.reproduce[1].split("`")[1::2]


def test_a_multi_objective_study_without_a_feasible_trial_draws_no_pareto_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    for i in range(3):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_constraint("n_params <= 10", 1.0)
        study.tell(trial, [0.1 * i, 1.0 - 0.1 * i])
    info = report_info(study, url)
    pareto = next(f for f in info.figures if f.key == "pareto")
    assert info.best == [] and pareto.reason == "no complete trial meets the constraints"
    result = runner.invoke(
        app, ["report", "--study-name", "mo", "--storage", url, "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    assert "no complete trial meets the constraints" in (tmp_path / "r.html").read_text()


def test_report_out_dash_writes_the_report_to_stdout_and_no_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    base = ["report", "--study-name", "p", "--storage", url, "--out", "-"]
    html = runner.invoke(app, base, catch_exceptions=False)
    assert html.exit_code == 0, html.output
    assert html.stdout.lstrip().lower().startswith("<!doctype html>") and html.stdout.rstrip().endswith(
        "</html>"
    )
    as_json = runner.invoke(app, [*base, "--format", "json"], catch_exceptions=False)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["study_name"] == "p"
    assert not (tmp_path / "-").exists() and not (tmp_path / "studies").exists()


def test_the_contour_leaves_out_a_parameter_the_complete_trials_gave_one_value(tmp_path: Path) -> None:
    # It drew the two most important parameters even when one took a single value: an empty figure, and
    # Optuna's "Param y unique value length is less than 2." printed by hpotool report.
    study = optuna.create_study()
    dists = {
        "x": optuna.distributions.FloatDistribution(0, 1),
        "y": optuna.distributions.IntDistribution(8, 32),
        "z": optuna.distributions.FloatDistribution(0, 1),
    }
    for i in range(6):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": i / 10, "y": 16, "z": (i % 3) / 10}, distributions=dists, value=float(i)
            )
        )
    info = report_info(study, "sqlite:///memory")
    contour = next(f for f in info.figures if f.key == "contour")
    assert contour.reason is None and sorted(contour.params or []) == ["x", "z"]
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("optuna.visualization._contour")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # logged whatever Optuna's verbosity (ERROR would keep the warning back)
    try:
        make_figures(study, info)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert not [r for r in records if "unique value length" in r]
    one = optuna.create_study()
    for i in range(3):
        one.add_trial(
            optuna.trial.create_trial(
                params={"x": i / 10, "y": 16}, distributions={k: dists[k] for k in ("x", "y")}, value=float(i)
            )
        )
    reasons = {f.key: f.reason for f in report_info(one, "x").figures}
    assert reasons["contour"] == (
        "a contour needs two parameters with two values or more in the complete trials; y took one"
    )


def test_the_contour_of_a_big_study_with_inf_values_draws_its_finite_trials() -> None:
    # A plain Optuna study of 400 trials, most of them inf: the contour's sample of 300 was taken among
    # them all, left out the one finite trial with c = "y", and Optuna logged "Param c unique value length
    # is less than 2." into hpotool report's output (an empty contour). The inf trials are never drawn.
    dists = {
        "a": optuna.distributions.FloatDistribution(0, 1),
        "c": optuna.distributions.CategoricalDistribution(["x", "y"]),
    }

    def trial(a: float, c: str, value: float) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(params={"a": a, "c": c}, distributions=dists, value=value)

    study = optuna.create_study()
    study.add_trials([trial(i / 100, "x", i / 100) for i in range(30)])
    # the even sample of the rest (370 for 270 places) skips its fourth trial
    study.add_trials(
        [trial(0.9, "y", 5.0) if j == 3 else trial(0.5, "xy"[j % 2], math.inf) for j in range(370)]
    )
    info = report_info(study, "sqlite:///memory")
    contour = next(f for f in info.figures if f.key == "contour")
    assert contour.reason is None and sorted(contour.params or []) == ["a", "c"]
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("optuna.visualization._contour")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # logged whatever Optuna's verbosity (ERROR would keep the warning back)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the figures' own warning of the inf trials
            figures = make_figures(study, info)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert not [r for r in records if "unique value length" in r], records
    assert figures["contour"].data and "drawn" not in contour.title  # 31 finite trials: every one drawn


def test_trials_of_inf_value_are_named_once_not_logged_by_every_figure(tmp_path: Path) -> None:
    # Each figure logged "Trial 1 is omitted in visualization because its objective value is inf or nan."
    # for each such trial: 20 lines for two trials.
    study = optuna.create_study()
    dists = {
        "x": optuna.distributions.FloatDistribution(0, 1),
        "y": optuna.distributions.FloatDistribution(0, 1),
    }
    for i, value in enumerate((1.0, float("inf"), 0.5, float("nan"), 0.7)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": i / 5, "y": (i % 2) / 2},
                distributions=dists,
                value=None if math.isnan(value) else value,
                state=optuna.trial.TrialState.FAIL if math.isnan(value) else optuna.trial.TrialState.COMPLETE,
            )
        )
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    optuna.logging.get_logger("optuna").addHandler(handler)
    try:
        with pytest.warns(UserWarning) as caught:
            make_figures(study, report_info(study, "sqlite:///memory"))
    finally:
        optuna.logging.get_logger("optuna").removeHandler(handler)
    assert not [r for r in records if "omitted in visualization" in r]
    assert [str(w.message) for w in caught if "leave out" in str(w.message)] == [
        "the figures leave out trial #1: their value is inf or nan"
    ]


def test_report_gives_a_list_choice_of_the_best_trial_as_the_list(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """report.json's best trial holds a list choice as the list, as best_params.json, trials.json and
    optimize --json do (it held the label Optuna stores, the text "[8, 8]"); the HTML shows it as the YAML
    spells it."""
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {"model.hidden": {"type": "categorical", "choices": [[16], [8, 8]]}}
    opt_dict["enqueue"] = [{"model.hidden": [8, 8]}]
    run_study(
        prepare_study(write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict))
    )
    study = load_study("tiny", opt_dict["storage"])
    info = report_info(study, opt_dict["storage"])
    assert info.best[0]["params"] == {"model.hidden": [8, 8]}
    assert "(model.hidden=[8, 8])" in render_html(info, make_figures(study, info))


def test_the_best_trial_row_shows_choices_as_the_yaml_spells_them() -> None:
    """The best trial's row showed the choice null as `–`, the mark of a value not there, and the choice
    0.0 as 0 (the choice 0 is another); it reads as `hpotool trials` and the progress lines do."""
    study = optuna.create_study(study_name="choices")

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("loss.weight", [None, "[1.0, 2.0]"])
        trial.suggest_categorical("optimizer.momentum", [0.0, 0.9])
        trial.suggest_float("optimizer.lr", 0.0, 0.0)
        return 1.0

    study.enqueue_trial({"loss.weight": None, "optimizer.momentum": 0.0})
    study.optimize(objective, n_trials=1)
    row = dict(_header_rows(report_info(study, "memory")))["best trial #0"]
    assert row == "1  (loss.weight=null, optimizer.momentum=0.0, optimizer.lr=0)"


def test_a_study_whose_trials_tie_reports_why_it_has_no_importances_without_a_warning(
    tmp_path: Path, run_dict: dict[str, Any]
) -> None:
    """Three trials of one value: `hpotool report` printed Optuna's "Target and region quantiles select the
    same set of trials" twice and drew equal importances; it now names the reason in the report instead."""
    url = f"sqlite:///{tmp_path / 'tie.db'}"
    study = optuna.create_study(study_name="tie", storage=url, direction="maximize")
    study.set_user_attr("run_config", run_dict)
    study.set_user_attr("optimize_config", {"metric": "val_accuracy", "pruner": {"name": "nop"}})
    for _ in range(3):
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True), trial.suggest_int("model.hidden.0", 8, 32)
        trial.set_user_attr("epochs_run", run_dict["epochs"])
        study.tell(trial, 0.5)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--study-name", "tie", "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "quantiles" not in result.stderr, result.stderr
    assert (
        "the 3 complete trials all have the same value, so no parameter sets the best apart"
        in out.read_text()
    )


def test_the_figures_label_categorical_values_as_the_yaml_spells_them() -> None:
    """The slice labelled its categorical ticks with Python's quotes (`'relu'`, `'{lr: 0.001, name: adam}'`)
    and the parallel coordinates and contour wrote null as `None` and true as `True`, where every table and
    line spells a choice as the YAML does."""
    study = optuna.create_study(study_name="labels")
    dists = {
        "model.act": optuna.distributions.CategoricalDistribution(["relu", "tanh"]),
        "optimizer": optuna.distributions.CategoricalDistribution(["{lr: 0.001, name: adam}", "{name: sgd}"]),
        "loss.weight": optuna.distributions.CategoricalDistribution([None, "null"]),
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
    }
    space = {  # stored as hpotool stores it: a section choice's label reads back as the section
        "model.act": {"type": "categorical", "choices": ["relu", "tanh"]},
        "optimizer": {"type": "categorical", "choices": [{"name": "adam", "lr": 0.001}, {"name": "sgd"}]},
        "loss.weight": {"type": "categorical", "choices": [None, "null"]},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    study.set_user_attr("optimize_config", {"search_space": space})
    for i in range(8):
        params = {
            "model.act": ["relu", "tanh"][i % 2],
            "optimizer": ["{lr: 0.001, name: adam}", "{name: sgd}"][i // 2 % 2],
            "loss.weight": [None, "null"][i // 4],
            "optimizer.lr": 10 ** (-3 + i / 4),
        }
        value = float(i % 2) + float(i // 2 % 2) / 2 + params["optimizer.lr"]
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    info = report_info(study, "memory")
    figures = make_figures(study, info)
    expected = {
        "model.act": {"relu", "tanh"},
        "optimizer": {"{lr: 0.001, name: adam}", "{name: sgd}"},
        "loss.weight": {"null", '"null"'},
    }

    layout = figures["slice"].layout
    slice_axes = {
        layout[f"xaxis{i or ''}"].title.text: layout[f"xaxis{i or ''}"] for i in range(1 + len(dists))
    }
    for name, labels in expected.items():
        assert set(slice_axes[name].categoryarray) == labels, name
    slice_x = {v for trace in figures["slice"].data for v in trace.x if isinstance(v, str)}
    assert slice_x == set().union(*expected.values())

    parallel = figures["parallel"]
    names = dict(zip(parallel.layout.xaxis.tickvals, parallel.layout.xaxis.ticktext, strict=True))
    ticks: dict[str, set[str]] = {}
    for note in parallel.layout.annotations:
        ticks.setdefault(names[note.x], set()).add(note.text)
    assert {name: ticks[name] for name in expected} == expected

    contour = figures["contour"]
    pair = [contour.layout.xaxis.title.text, contour.layout.yaxis.title.text]
    assert set(pair) & set(expected), pair
    for axis, name in zip("xy", pair, strict=True):
        if name in expected:
            values = {v for trace in contour.data for v in (trace[axis] or ())}
            assert values == expected[name], name


def test_the_figures_tell_a_text_choice_from_the_list_choice_it_spells() -> None:
    """The figures labelled the text choice "[1,2]" `[1,2]`, bare, reading as the list choice [1, 2], where
    the progress lines, `hpotool trials` and the exports quote it (`format_param`)."""
    study = optuna.create_study(study_name="text-or-list")
    dists = {
        "model.hidden": optuna.distributions.CategoricalDistribution(["[1,2]", "[1, 2]"]),
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
    }
    space = {
        "model.hidden": {"type": "categorical", "choices": ["[1,2]", [1, 2]]},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    study.set_user_attr("optimize_config", {"search_space": space})
    for i in range(6):
        lr = 10 ** (-3 + i / 3)
        params = {"model.hidden": ["[1,2]", "[1, 2]"][i % 2], "optimizer.lr": lr}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=i % 2 + lr))
    figures = make_figures(study, report_info(study, "memory"))
    expected = {'"[1,2]"', "[1, 2]"}

    layout = figures["slice"].layout
    axis = next(layout[k] for k in ("xaxis", "xaxis2") if layout[k].title.text == "model.hidden")
    assert set(axis.categoryarray) == expected
    parallel = figures["parallel"]
    names = dict(zip(parallel.layout.xaxis.tickvals, parallel.layout.xaxis.ticktext, strict=True))
    assert {n.text for n in parallel.layout.annotations if names[n.x] == "model.hidden"} == expected
    contour = figures["contour"]
    axis_letter = "x" if contour.layout.xaxis.title.text == "model.hidden" else "y"
    assert {v for trace in contour.data for v in (trace[axis_letter] or ()) if isinstance(v, str)} == expected


def test_the_figures_label_each_trial_by_the_search_space_it_ran_under() -> None:
    """A study resumed after its choice, the text "[1, 2]", was made the list [1, 2]: both are stored as the
    text `[1, 2]`. The figures labelled every trial by the first trial's space, the list trials quoted as
    text; each trial is now labelled by its own space, the two apart."""
    study = optuna.create_study(study_name="changed-space")
    before = {
        "model.hidden": {"type": "categorical", "choices": ["[1, 2]", "[4]"]},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    after = {**before, "model.hidden": {"type": "categorical", "choices": [[1, 2], [4]]}}
    study.set_user_attr("optimize_config", {"search_space": after})
    previous = {"run_config": {}, "optimize_config": {"search_space": before}}
    study.set_user_attr("config_changes", [{"from_trial": 4, "changes": [], "previous": previous}])
    dists = {
        "model.hidden": optuna.distributions.CategoricalDistribution(["[1, 2]", "[4]"]),
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
    }
    for i in range(8):
        lr = 10 ** (-3 + i / 4)
        params = {"model.hidden": ["[1, 2]", "[4]"][i % 2], "optimizer.lr": lr}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=i + lr))
    figures = make_figures(study, report_info(study, "memory"))
    expected = {'"[1, 2]"', '"[4]"', "[1, 2]", "[4]"}

    layout = figures["slice"].layout
    axis = next(layout[k] for k in ("xaxis", "xaxis2") if layout[k].title.text == "model.hidden")
    assert set(axis.categoryarray) == expected
    points = [
        (x, y)
        for trace in figures["slice"].data
        if (trace.xaxis or "x") == axis.plotly_name.replace("axis", "")
        for x, y in zip(trace.x, trace.y, strict=True)
    ]
    # trials 0-3 ran under the text choices, 4-7 under the lists (their values are i + lr)
    assert sorted(x for x, y in points if y < 4) == ['"[1, 2]"', '"[1, 2]"', '"[4]"', '"[4]"']
    assert sorted(x for x, y in points if y >= 4) == ["[1, 2]", "[1, 2]", "[4]", "[4]"]
    parallel = figures["parallel"]
    names = dict(zip(parallel.layout.xaxis.tickvals, parallel.layout.xaxis.ticktext, strict=True))
    assert {n.text for n in parallel.layout.annotations if names[n.x] == "model.hidden"} == expected
    contour = figures["contour"]
    axis_letter = "x" if contour.layout.xaxis.title.text == "model.hidden" else "y"
    assert {v for trace in contour.data for v in (trace[axis_letter] or ()) if isinstance(v, str)} == expected


def test_trials_valued_inf_are_not_counted_as_the_importances_and_contour_basis() -> None:
    """Three of four complete trials valued inf: the report said "PED-ANOVA over 4 complete trials" and
    drew the importances Optuna computed from the one finite trial, after its warning "The number of
    trials is too small to compute importances. Parameter importances will be equal" (equal bars that read
    as a finding), and a contour of that one trial. Both now say why they are not drawn."""
    study = optuna.create_study(study_name="inf")
    dists = {n: optuna.distributions.FloatDistribution(0, 1) for n in ("x", "y")}
    for i, value in enumerate([math.inf, math.inf, 1.0, math.inf]):
        params = {"x": i / 4, "y": 1 - i / 4}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    info = report_info(study, "memory")
    assert info.importances == [None]
    reasons = {f.kind: f.reason for f in info.figures}
    assert reasons["importances"] == (
        "importances cannot be computed: needs at least 2 complete trials with a finite value, the study has 1"
    )
    assert (
        reasons["contour"]
        == "a contour needs at least 2 complete trials with a finite value, the study has 1"
    )
    titles = {f.kind: f.title for f in info.figures}
    assert titles["importances"] == "Parameter importances (PED-ANOVA over 1 complete trial)"


def test_the_importance_figure_of_a_conditional_parameter_draws_without_optunas_regime_warning() -> None:
    """The audit and the importance table left out Optuna's "Some regimes for parameter `momentum` have less
    than 2 trials" (the inactive regime of one trial; it names nothing to change), but the report's
    importance figure, computing the importances again, still printed it."""

    def objective(t: optuna.Trial) -> float:
        name = t.suggest_categorical("name", ["sgd", "adam"])
        momentum = t.suggest_float("momentum", 0, 1) if name == "sgd" else 0.0
        return t.suggest_float("lr", 0, 1) + momentum

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.enqueue_trial({"name": "adam"})
    for _ in range(12):
        study.enqueue_trial({"name": "sgd"})
    study.optimize(objective, n_trials=13)
    info = report_info(study, "memory")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = make_figures(study, info)
    assert "momentum" in {name for bar in figures["importances"].data for name in bar.y}


def test_the_parallel_coordinates_tell_a_null_choice_from_a_parameter_not_set() -> None:
    """Optuna ticks a conditional parameter's missing value `None` and a null choice beside it `None
    (value)`: the report relabelled the marker `null`, so trials that never drew the parameter read as
    trials that chose null, and the choice stayed `None (value)`. A parameter of 20 characters or more,
    whose axis Optuna shortens to 17 and `...`, kept Python's spelling (`True`, `None`)."""
    study = optuna.create_study(study_name="unset")
    kind = optuna.distributions.CategoricalDistribution(["a", "b"])
    weight = optuna.distributions.CategoricalDistribution([None, 1.5])
    flag = optuna.distributions.CategoricalDistribution([True, False])
    long = "model.use_batch_normalization"
    for i in range(8):
        params: dict[str, Any] = {"kind": "ab"[i % 2], long: i < 4}
        dists: dict[str, Any] = {"kind": kind, long: flag}
        if i % 2 == 0:  # only kind a draws loss.weight, and only trial 0 draws its null
            params["loss.weight"], dists["loss.weight"] = (None if i == 0 else 1.5), weight
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(i)))
    figures = make_figures(study, report_info(study, "memory"))

    parallel = figures["parallel"]
    names = dict(zip(parallel.layout.xaxis.tickvals, parallel.layout.xaxis.ticktext, strict=True))
    ticks: dict[str, list[str]] = {}
    for note in parallel.layout.annotations:
        ticks.setdefault(names[note.x], []).append(note.text)
    assert ticks["loss.weight"] == ["not set", "null", "1.5"]
    assert sorted(ticks["model.<br>use_batch_normalizat<br>ion"]) == ["false", "true"]
    # Each trial's line hovers its values as the axes tick them: it read `True`, `None` for `not set`, `None
    # (value)` for null, under Optuna's shortened name `model.use_batch...`
    hovers = {
        trace.customdata[0][1]: dict(trace.customdata[1:]) for trace in parallel.data if trace.customdata
    }
    assert hovers["0"] == {"kind": "a", "loss.weight": "null", long: "true"}
    assert hovers["1"] == {"kind": "b", "loss.weight": "not set", long: "true"}
    assert hovers["6"] == {"kind": "a", "loss.weight": "1.5", long: "false"}


def test_the_parallel_coordinates_name_each_long_parameter_whole() -> None:
    """Optuna shortens a dimension's name to 17 characters and `...` from 20 on: `model.hidden_sizes.0`
    and `.1` both read `model.hidden_size...`, and which axis was which could not be told."""
    study = optuna.create_study(study_name="long")
    width = optuna.distributions.IntDistribution(8, 64)
    dists = {
        "model.hidden_sizes.0": width,
        "model.hidden_sizes.1": width,
        "lr": optuna.distributions.FloatDistribution(0, 1),
    }
    for i in range(6):
        params = {"model.hidden_sizes.0": 8 + i, "model.hidden_sizes.1": 64 - i, "lr": i / 10}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(i)))
    parallel = make_figures(study, report_info(study, "memory"))["parallel"]
    assert list(parallel.layout.xaxis.ticktext) == [
        "objective 0",
        "lr",
        "model.hidden_sizes.0",
        "model.hidden_sizes.1",
    ]


@pytest.mark.parametrize("directions", [["minimize"], ["minimize", "maximize"]])
def test_the_hover_text_shows_each_trials_params_as_the_tables_do(directions: list[str]) -> None:
    """The timeline's and the Pareto front's hover text was Optuna's JSON dump of the trial, a choice in
    JSON's spelling (`"optimizer": "{lr: 0.001, name: adam}"`, `"model.act": "relu"`, `null` and `"null"`
    alike in quotes but one); it shows the params as the report's tables do."""
    study = optuna.create_study(study_name="hover", directions=directions)
    dists = {
        "model.act": optuna.distributions.CategoricalDistribution(["relu", "tanh"]),
        "optimizer": optuna.distributions.CategoricalDistribution(["{lr: 0.001, name: adam}", "{name: sgd}"]),
        "loss.weight": optuna.distributions.CategoricalDistribution([None, "null"]),
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
    }
    params = {"model.act": "relu", "optimizer": "{lr: 0.001, name: adam}", "loss.weight": None}
    space = {  # stored as hpotool stores it: a section choice's label reads back as the section
        "model.act": {"type": "categorical", "choices": ["relu", "tanh"]},
        "optimizer": {"type": "categorical", "choices": [{"name": "adam", "lr": 0.001}, {"name": "sgd"}]},
        "loss.weight": {"type": "categorical", "choices": [None, "null"]},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
    study.set_user_attr("optimize_config", {"search_space": space})
    study.add_trial(
        optuna.trial.create_trial(
            params={**params, "optimizer.lr": 0.0123456},
            distributions=dists,
            values=[0.5] * len(directions),
            user_attrs={"metrics": {"val_loss": 0.5}},
        )
    )
    info = report_info(study, "memory")
    figures = make_figures(study, info)
    for key in ("timeline", "pareto") if len(directions) > 1 else ("timeline",):
        texts = [t for trace in figures[key].data for t in (trace.text or ()) if "number" in t]
        assert texts, key
        assert texts[0] == "<br>".join(
            [
                "number: 0",
                f"values: [{', '.join(['0.5'] * len(directions))}]",
                "params:",
                "  model.act: relu",
                "  optimizer: {lr: 0.001, name: adam}",
                "  loss.weight: null",
                "  optimizer.lr: 0.01235",
                "user_attrs:",
                "  metrics: {val_loss: 0.5}",
            ]
        ), key


def test_a_running_trial_that_started_after_the_last_finish_gets_a_timeline_bar(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker killed during the study's last trial leaves it RUNNING, started after every finish: Optuna
    drew its timeline bar with negative length (nothing shown) and logged 'The start and end times for
    Trial 2 seem to be reversed' on the console; now the bar reaches the time of the report, unlogged."""
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution
    from optuna.trial import FrozenTrial, TrialState

    study = optuna.create_study()
    now = datetime.now()
    for number, (start, end, state) in enumerate(
        [
            (-300, -290, TrialState.COMPLETE),
            (-290, -280, TrialState.COMPLETE),
            (-100, None, TrialState.RUNNING),
        ]
    ):  # the last trial started 3 minutes after the last finish, and runs 10 times longer than any took
        study.add_trial(
            FrozenTrial(
                number=number,
                state=state,
                value=1.0 if end is not None else None,
                datetime_start=now + timedelta(seconds=start),
                datetime_complete=None if end is None else now + timedelta(seconds=end),
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
                trial_id=number,
            )
        )
    info = report_info(study, "memory")
    with caplog.at_level(logging.WARNING):
        figure = make_figures(study, info)["timeline"]
    (running,) = [trace for trace in figure.data if trace.name == "RUNNING"]
    assert list(running.y) == [2]
    assert running.x[0] >= 100_000  # ms: from its start to the report
    assert "reversed" not in caplog.text


def test_the_json_report_is_strict_json_when_a_value_is_infinite() -> None:
    """A trial valued -inf was written `-Infinity` into the JSON report, which jq and JSON.parse refuse
    (trials.json and `hpotool trials --json` write null); now the report writes "-Infinity", as they
    now do, which tells it from a missing value."""
    from hpotool.report import render_report

    values = [1.0, -math.inf, 2.0]
    study = optuna.create_study()
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), values[t.number])[1], n_trials=3)

    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the figures leave out trial #1
        data = json.loads(render_report(study, "memory", "json"), parse_constant=refuse)
    assert data["best"][0]["number"] == 1 and data["best"][0]["values"] == ["-Infinity"]


def test_a_study_whose_every_complete_value_is_infinite_says_so_instead_of_drawing_empty_figures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three complete trials valued inf: the report drew an empty history and EDF (Optuna logging "There
    are no complete trials."), said the parallel and slice plots were not drawn as "the trials have no
    parameters" (they have x) and that importances needed 2 complete trials where "the study has 0" (it
    has 3). Now each says the complete trials' values are all inf or nan."""
    study = optuna.create_study()
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), math.inf)[1], n_trials=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the figures leave out trials #0 to #2
        info = report_info(study, "memory")
        with caplog.at_level(logging.WARNING, logger="optuna"):
            make_figures(study, info)
    reasons = {f.key: f.reason for f in info.figures}
    none_finite = "no complete trial with a finite value (3 complete, each inf or nan)"
    assert {k: reasons[k] for k in ("history", "parallel", "slice", "contour", "edf")} == dict.fromkeys(
        ("history", "parallel", "slice", "contour", "edf"), none_finite
    )
    assert reasons["importances"] == (
        "importances cannot be computed: needs at least 2 complete trials with a finite value, the study has 0"
    )
    assert "There are no complete trials" not in caplog.text


@pytest.mark.parametrize("versions", ["1.2", ["optuna 4"], 3])
def test_a_plain_optuna_study_s_own_versions_attr_does_not_break_the_report(
    tmp_path: Path, versions: Any
) -> None:
    # A study plain Optuna code made may keep a user attr of the name hpotool stores its versions under: the
    # report failed with 'ValueError: dictionary update sequence element #0 ...', a traceback, exit code 1.
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name="plain", storage=url)
    study.set_user_attr("versions", versions)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["report", "--study-name", "plain", "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["versions"] == {}


def test_the_report_of_a_study_resumed_after_an_upgrade_names_the_versions_of_its_later_runs(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # The header's versions row showed the creator's versions alone, as the study's: after an upgrade, its
    # later trials had run with others (which `optimize` records on the study, as it says so once).
    opt_dict.update(n_trials=1, storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    paths = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    run_study(prepare_study(*paths))
    study = load_study("tiny", opt_dict["storage"])
    here = study.user_attrs["versions"]
    study.set_user_attr("versions", {**here, "optuna": "4.0.0", "torch": "2.5.1+cu121"})
    released = {k: v.split("+")[0] for k, v in here.items()}
    study.set_user_attr("versions_run", [released, {**released, "torch": "2.5.1"}])
    row = dict(_header_rows(report_info(study, opt_dict["storage"])))["versions"]
    assert row == (
        f"hpotool {here['hpotool']}, optuna 4.0.0, torch 2.5.1+cu121 (created with); later runs: "
        f"optuna {released['optuna']}, torch {released['torch']}; optuna {released['optuna']}"
    )
    study.set_user_attr("versions_run", "not a list")  # another tool's attr of that name: the creator's alone
    row = dict(_header_rows(report_info(study, opt_dict["storage"])))["versions"]
    assert row == f"hpotool {here['hpotool']}, optuna 4.0.0, torch 2.5.1+cu121 (created with)"


def test_refine_and_audit_of_a_study_whose_trials_all_tie_narrow_and_widen_nothing(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Every complete trial scored the same (a metric stuck at chance, a saturated accuracy): refine still
    # narrowed each range "around the top trials", the first ones by number, and the audit could advise
    # widening a range whose "best" was trial 0, while it said no parameter sets the best apart.
    import yaml
    from optuna.distributions import FloatDistribution, IntDistribution

    from hpotool.study import describe_study

    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    )
    (tmp_path / "studies").mkdir()
    study = optuna.create_study(study_name="tiny", storage=opt_dict["storage"], direction="maximize")
    describe_study(study, plan)
    lr, hidden = FloatDistribution(1e-3, 1e-1, log=True), IntDistribution(8, 32, step=8)
    for i in range(40):  # trial 0 at both ranges' top ends: the "best" of a tie
        params = {
            "optimizer.lr": 1e-1 if i == 0 else 1e-3 * 1.1**i,
            "model.hidden.0": 32 if i == 0 else 8 + 8 * (i % 3),
        }
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={"optimizer.lr": lr, "model.hidden.0": hidden},
                value=0.5,
                user_attrs={"epochs_run": 2, "metrics": {"val_accuracy": 0.5}},
            )
        )
    args = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    audit = runner.invoke(app, ["audit", *args, "--json"])
    assert audit.exit_code == 0, audit.output
    assert [p["edge"] for p in json.loads(audit.stdout)["params"]] == [None, None]
    assert not any("widen" in f for f in json.loads(audit.stdout)["findings"])
    out = tmp_path / "stage2.yaml"
    refined = runner.invoke(app, ["refine", *args, "--out", str(out)])
    assert refined.exit_code == 0, refined.output
    assert (
        "the 40 trials to rank all have the same value (0.5), so none is better to narrow around"
        in refined.stdout
    )
    stage = yaml.safe_load(out.read_text())["search_space"]
    assert {k: (v["low"], v["high"]) for k, v in stage.items()} == {
        "optimizer.lr": (1e-3, 1e-1),
        "model.hidden.0": (8, 32),
    }


def test_a_file_where_the_default_report_folder_goes_is_refused_naming_out(tmp_path: Path) -> None:
    """A file named studies/p, where the report goes by default, said "studies/p/report.html: cannot write:
    studies/p is a file, not a folder; choose another path", not which flag gives one; a report under
    /dev/null said the same of it."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "p").write_text("notes\n")
    result = runner.invoke(app, ["report", "--study-name", "p", "--storage", url])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {Path('studies') / 'p'}: is a file, not a folder, and report writes "
        f"{Path('studies') / 'p' / 'report.html'} by default; give another file with --out PATH, e.g. --out "
        "p-report.html, or move that file away\n"
    )
    assert (tmp_path / "studies" / "p").read_text() == "notes\n"
    result = runner.invoke(
        app, ["report", "--study-name", "p", "--storage", url, "--out", "/dev/null/r.json"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --out /dev/null/r.json: /dev/null is a device, not a folder; give a file, e.g. --out p-report.json\n"
    )
    shown = runner.invoke(app, ["report", "--study-name", "p", "--storage", url, "--out", "/dev/null"])
    assert shown.exit_code == 0, shown.output  # a report into /dev/null is written into it, as asked


@pytest.mark.parametrize("n_trials", [8, 30])
def test_importances_from_too_few_trials_carry_audits_caveat(n_trials: int) -> None:
    """With 8 trials the report ranked a parameter first that was noise, without a word; `hpotool audit`
    already said the importances rest on too few trials. The report now says so beside the figure and in
    report.json, below audit's threshold (30) and not at it."""
    from hpotool.audit import MIN_EVIDENCE
    from hpotool.report import render_report

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0.1 * t.suggest_float("y", 0, 1), n_trials=n_trials)
    info = report_info(study, "sqlite:///memory")
    assert info.importances[0] is not None
    caveat = (
        f"these importances rest on {n_trials} trials, too few to rank parameters by (audit and refine "
        f"need {MIN_EVIDENCE}): run more trials before reading them"
    )
    few = n_trials < MIN_EVIDENCE
    assert info.importances_caveat == (caveat if few else None)
    data = json.loads(render_report(study, "sqlite:///memory", "json"))
    assert data["importances_caveat"] == (caveat if few else None)
    page = render_report(study, "sqlite:///memory")
    section = page[page.index("id='section-importances'") :]
    section = section[: section.index("</section>")]
    assert (f"<p class='note'>{caveat.capitalize()}.</p>" in section) is few
    assert "too few to rank" not in page.replace(section, "")  # said once, beside the figure
