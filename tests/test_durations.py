"""How long a trial took, as every place shows it: MySQL keeps Optuna's datetimes in whole seconds."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.durations import SECONDS_ATTR, record_seconds, trial_seconds
from hpotool.progress import RichObserver
from tests.cli_run import optimize
from tests.conftest import ask_with_heartbeat, write_configs
from tests.test_workers import _server_url


def test_a_trial_hpotool_did_not_run_takes_optunas_duration() -> None:
    study = optuna.create_study()
    trial = study.ask()
    assert trial_seconds(study.trials[0]) is None  # running: no duration yet
    study.tell(trial, 1.0)
    done = study.trials[0]
    assert done.duration is not None and trial_seconds(done) == done.duration.total_seconds()


@pytest.mark.parametrize(
    ("recorded", "measured"), [(0.37, True), (True, False), ("0.4", False), (float("nan"), False)]
)
def test_only_a_recorded_number_of_seconds_is_taken(recorded: object, measured: bool) -> None:
    study = optuna.create_study()
    trial = study.ask()
    study._storage.set_trial_system_attr(trial._trial_id, SECONDS_ATTR, recorded)
    study.tell(trial, 1.0)
    done = study.trials[0]
    assert done.duration is not None
    assert trial_seconds(done) == (0.37 if measured else done.duration.total_seconds())


def test_a_trial_starts_when_hpotool_asked_it_else_at_optunas_datetime() -> None:
    from hpotool.durations import STARTED_ATTR, trial_end, trial_start

    study = optuna.create_study()
    old, new = study.ask(), study.ask()
    study._storage.set_trial_system_attr(old._trial_id, SECONDS_ATTR, 0.37)  # before hpotool kept the start
    record_seconds(new, 0.37)
    for trial in (old, new):
        study.tell(trial, 1.0)
    old_done, new_done = study.trials
    assert trial_start(old_done) == old_done.datetime_start.timestamp()
    assert trial_end(old_done) == old_done.datetime_complete.timestamp()
    started = new_done.system_attrs[STARTED_ATTR]
    assert (trial_start(new_done), trial_end(new_done)) == (started, started + 0.37)
    study.ask()
    assert trial_start(study.trials[-1]) is not None and trial_end(study.trials[-1]) is None  # running


def test_the_timeline_s_trial_copies_span_the_times_hpotool_measured() -> None:
    """`measured_trial` gives Optuna's timeline the start hpotool recorded and that start plus the seconds
    it measured; a trial that recorded the seconds alone (an older study's) keeps Optuna's start, one that
    recorded nothing or is still running keeps Optuna's end, and the stored trial is left as it was."""
    from datetime import datetime, timedelta

    from hpotool.durations import STARTED_ATTR, measured_trial

    study = optuna.create_study()
    new, old, plain = study.ask(), study.ask(), study.ask()
    record_seconds(new, 0.37)
    study._storage.set_trial_system_attr(old._trial_id, SECONDS_ATTR, 0.25)
    for trial in (new, old, plain):
        study.tell(trial, 1.0)
    study.ask()
    new_done, old_done, plain_done, running = study.trials
    started = datetime.fromtimestamp(new_done.system_attrs[STARTED_ATTR])
    measured = measured_trial(new_done)
    assert (measured.datetime_start, measured.datetime_complete) == (
        started,
        started + timedelta(seconds=0.37),
    )
    assert new_done.datetime_start != started  # the stored trial is not changed
    measured = measured_trial(old_done)
    assert measured.datetime_start == old_done.datetime_start
    assert measured.datetime_complete == old_done.datetime_start + timedelta(seconds=0.25)
    assert measured_trial(plain_done) is plain_done and measured_trial(running) is running
    assert (measured.number, measured.params, measured.values) == (1, old_done.params, old_done.values)


@pytest.fixture
def mysql_study() -> Iterator[tuple[str, str]]:
    url = _server_url("mysql")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    yield url, name
    with contextlib.suppress(KeyError):  # the test made none
        optuna.delete_study(study_name=name, storage=url)


@pytest.mark.server
def test_on_mysql_each_place_shows_the_seconds_a_trial_took(
    tmp_path: Path, configs: tuple[Path, Path], mysql_study: tuple[str, str]
) -> None:
    """On MySQL `trial.duration` is whole seconds: `hpotool trials`, the exports, the report and the summary
    showed 0 for every tiny trial. hpotool's own trials show the wall time it measured."""
    url, name = mysql_study
    run, opt = configs
    summary = json.loads(optimize(run, opt, url, 2, "--study-name", name, "--json").stdout)
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    # The premise: MySQL drops the fraction of Optuna's datetimes.
    assert all(t.datetime_start.microsecond == 0 == t.datetime_complete.microsecond for t in trials)
    seconds = [t.system_attrs[SECONDS_ATTR] for t in trials]
    assert all(isinstance(s, float) and s > 0 and not s.is_integer() for s in seconds)
    assert [trial_seconds(t) for t in trials] == seconds

    runner = CliRunner()
    listed = json.loads(
        runner.invoke(app, ["trials", "--study-name", name, "--storage", url, "--json"]).stdout
    )
    assert {r["number"]: r["duration_s"] for r in listed} == dict(enumerate(seconds))
    table = runner.invoke(app, ["trials", "--study-name", name, "--storage", url]).stdout
    for number, s in enumerate(seconds):
        row = next(line for line in table.splitlines() if line.startswith(f"│ {number} "))
        assert row.rstrip(" │").endswith(f"│ {s:.3g}"), row

    out = tmp_path / "export"
    result = runner.invoke(app, ["export-best", "--study-name", name, "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out / "trials.csv", newline="") as fh:
        assert {int(r["number"]): float(r["duration_s"]) for r in csv.DictReader(fh)} == dict(
            enumerate(seconds)
        )
    records = json.loads((out / "trials.json").read_text())
    assert [r["duration_s"] for r in records] == seconds

    report = json.loads(runner.invoke(app, ["report", "--study-name", name, "--storage", url, "--out", "-",
                                            "--format", "json"]).stdout)  # fmt: skip
    assert report["time"]["trials_total_s"] == pytest.approx(sum(seconds))
    assert summary["best"]["duration_s"] == seconds[summary["best"]["number"]]


@pytest.mark.server
def test_on_mysql_another_workers_trial_shows_its_seconds_in_the_live_line(
    mysql_study: tuple[str, str],
) -> None:
    """With --workers the main process shows the trials its workers ran from the storage: on MySQL each
    showed 0.00s (or 1.0s)."""
    url, name = mysql_study
    study = optuna.create_study(study_name=name, storage=url)
    trial = study.ask()
    record_seconds(trial, 0.37)  # as the worker that ran it records it
    study.tell(trial, 1.0)
    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=200, color_system=None), "value")
    observer.study_started(study, 1, 0)
    observer.trial_finished(study, study.trials[0])
    observer.progress.stop()
    assert "  0.37s" in out.getvalue()


@pytest.mark.server
def test_on_mysql_the_report_s_wall_time_and_mlflow_s_runs_start_when_the_trials_did(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], mysql_study: tuple[str, str]
) -> None:
    """MySQL keeps Optuna's datetimes in whole seconds: the report's wall time (first start to last finish)
    was whole seconds (0 s or 1 s for two tiny trials), and each MLflow run started at its trial's whole
    second. hpotool's trials record when they started too (an old study's, where it is not recorded, take
    Optuna's datetimes)."""
    mlflow = pytest.importorskip("mlflow")
    from hpotool.durations import STARTED_ATTR

    url, name = mysql_study
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opt = {**opt_dict, "storage": url, "study_name": name, "n_trials": 2}
    opt["tracking"] = {"mlflow": {"tracking_uri": tracking, "experiment": name}}
    run_path, opt_path = write_configs(tmp_path, run_dict, opt)
    runner = CliRunner()
    result = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"])
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name=name, storage=url).trials
    starts = [t.system_attrs[STARTED_ATTR] for t in trials]
    ends = [s + t.system_attrs[SECONDS_ATTR] for s, t in zip(starts, trials, strict=True)]
    assert all(t.datetime_start.microsecond == 0 for t in trials)  # the premise
    args = ["report", "--study-name", name, "--storage", url, "--out", "-", "--format", "json"]
    report = json.loads(runner.invoke(app, args).stdout)
    assert report["time"]["wall_s"] == pytest.approx(max(ends) - min(starts))
    client = mlflow.MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(name)
    runs = {r.data.tags["hpotool.trial"]: r for r in client.search_runs([experiment.experiment_id])}
    for t, start, end in zip(trials, starts, ends, strict=True):
        info = runs[str(t.number)].info
        assert (info.start_time, info.end_time) == (round(start * 1000), round(end * 1000))


@pytest.mark.server
def test_on_mysql_the_report_s_timeline_bars_span_the_seconds_the_trials_took(
    configs: tuple[Path, Path], mysql_study: tuple[str, str]
) -> None:
    """On MySQL, Optuna's datetimes are whole seconds: the report's timeline drew each short trial as a bar
    of 0 s or 1 s, starting at a whole second. Its bars start when hpotool asked each trial and last the
    seconds it measured, as the report's times and the trial tables do."""
    from datetime import datetime

    from hpotool.durations import STARTED_ATTR
    from hpotool.report_drawing import make_figures
    from hpotool.report_info import report_info

    url, name = mysql_study
    run, opt = configs
    optimize(run, opt, url, 2, "--study-name", name)
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.trials
    assert all(t.datetime_start.microsecond == 0 for t in trials)  # the premise
    (bars,) = [trace for trace in make_figures(study, report_info(study, url))["timeline"].data]
    assert bars.name == "COMPLETE" and list(bars.y) == [0, 1]
    assert list(bars.x) == pytest.approx(
        [t.system_attrs[SECONDS_ATTR] * 1000 for t in trials], abs=0.01
    )  # µs
    assert list(bars.base) == [
        datetime.fromtimestamp(t.system_attrs[STARTED_ATTR]).isoformat() for t in trials
    ]


def _study_with_a_dead_worker_s_trials(path: Path) -> tuple[str, optuna.Study]:
    """A study whose trials all started at one moment and were ended 637 s later (the dead, 900 s): one
    hpotool ran and measured (1.5 s), two whose worker died unobserved and were failed by a stale check and
    by the dead-worker check, one a stale check failed whose live worker still recorded its seconds (2.5 s),
    and one whose own run failed without recording them (Optuna's 637 s stand)."""
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution
    from optuna.trial import FrozenTrial

    url = f"sqlite:///{path / 'dead.db'}"
    study = optuna.create_study(study_name="dead", storage=url)
    start = datetime(2026, 12, 7, 8, 0, 0)
    cases: list[tuple[TrialState, dict[str, Any], dict[str, Any]]] = [
        (TrialState.COMPLETE, {}, {SECONDS_ATTR: 1.5}),
        (TrialState.FAIL, {"fail_reason": "stale: no heartbeat for 60 s (its worker died, or lost the storage)"}, {}),
        (TrialState.FAIL, {"fail_reason": "worker died (pid 4242)"}, {}),
        (TrialState.FAIL, {"fail_reason": "stale: marked failed by fail-stale"}, {SECONDS_ATTR: 2.5}),
        (TrialState.FAIL, {"fail_reason": "CUDA out of memory"}, {}),
    ]  # fmt: skip
    for number, (state, user_attrs, system_attrs) in enumerate(cases):
        trial = FrozenTrial(
            number=number,
            state=state,
            value=0.5 if state == TrialState.COMPLETE else None,
            datetime_start=start,
            datetime_complete=start + timedelta(seconds=900 if number in (1, 2) else 637),  # found dead later
            params={"lr": 0.01},
            distributions={"lr": FloatDistribution(1e-4, 1.0, log=True)},
            user_attrs=user_attrs,
            system_attrs=system_attrs,
            intermediate_values={},
            trial_id=number,
        )
        study._storage.create_new_trial(study._study_id, template_trial=trial)
    return url, optuna.load_study(study_name="dead", storage=url)


def test_a_trial_whose_worker_died_unobserved_shows_no_seconds_everywhere(tmp_path: Path) -> None:
    """A trial failed by a stale check or the dead-worker check showed as its seconds the time from its start
    until it was found dead (637 s for one killed after 1.5 s), read as training time: `hpotool trials`,
    its --json, trials.csv and trials.json leave them blank, and the report counts it in no time figure and
    says so. A measured trial's seconds stand, and so do Optuna's for a failure its own process wrote."""
    from hpotool.report_info import report_info
    from hpotool.report_page import _header_rows
    from hpotool.trial_table import trial_records, trials_csv

    url, study = _study_with_a_dead_worker_s_trials(tmp_path)
    expected = {0: 1.5, 1: None, 2: None, 3: 2.5, 4: 637.0}
    assert {t.number: trial_seconds(t) for t in study.trials} == expected

    runner = CliRunner()
    result = runner.invoke(app, ["trials", "--study-name", "dead", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    assert {r["number"]: r["duration_s"] for r in json.loads(result.stdout)} == expected
    table = runner.invoke(app, ["trials", "--study-name", "dead", "--storage", url]).stdout
    seconds_column = {
        int(cells[0]): cells[5]
        for line in table.splitlines()
        if line.startswith("│ ") and (cells := [c.strip() for c in line.strip("│ ").split("│")])[0].isdigit()
    }
    assert seconds_column == {0: "1.5", 1: "-", 2: "-", 3: "2.5", 4: "637"}, table

    assert {r["number"]: r["duration_s"] for r in trial_records(study)} == expected
    rows = csv.DictReader(io.StringIO(trials_csv(study)))
    assert {int(r["number"]): r["duration_s"] for r in rows} == {0: "1.5", 1: "", 2: "", 3: "2.5", 4: "637.0"}

    info = report_info(study, url)
    assert info.time["trials_total_s"] == pytest.approx(1.5 + 2.5 + 637.0)
    assert info.time["unobserved"] == 2
    assert info.time["wall_s"] == 637.0  # to the last finish seen, not to when the dead were found
    time_row = dict(_header_rows(info))["time"]
    assert time_row.endswith("(2 trials whose worker died unobserved not counted: seconds unknown)"), time_row


def test_the_live_line_of_a_trial_whose_worker_died_unobserved_says_its_seconds_are_unknown(
    tmp_path: Path,
) -> None:
    """The main process shows the trials a stale check failed: such a trial read 0.00s, as if it had run
    for no time at all."""
    _, study = _study_with_a_dead_worker_s_trials(tmp_path)
    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=300, color_system=None), "value")
    observer.study_started(study, 5, 0)
    for trial in study.trials:
        observer.trial_finished(study, trial)
    observer.progress.stop()
    lines = {int(line.split()[1]): line for line in out.getvalue().splitlines() if line.startswith("trial ")}
    assert [n for n, line in lines.items() if "seconds unknown" in line] == [1, 2], out.getvalue()
    assert "1.5s" in lines[0] and "2.5s" in lines[3] and "637.0s" in lines[4]


def test_the_report_s_timeline_leaves_out_the_trials_whose_worker_died_unobserved_and_says_so(
    tmp_path: Path,
) -> None:
    """The timeline drew a trial failed by a stale check or the dead-worker check as a bar from its start to
    when it was found dead (900 s), which the report's times and tables leave out: nothing recorded when it
    died. Its bar is left out, and the figure's note says so; every other trial's bar stands."""
    from hpotool.report_drawing import make_figures
    from hpotool.report_figures import _timeline_figure
    from hpotool.report_info import report_info

    url, study = _study_with_a_dead_worker_s_trials(tmp_path)
    figure = make_figures(study, report_info(study, url))["timeline"]
    drawn = {y: x for trace in figure.data for y, x in zip(trace.y, trace.x, strict=True)}
    assert sorted(drawn) == [0, 3, 4]
    assert max(drawn.values()) == pytest.approx(637_000)  # no bar runs to when the dead were found
    info = _timeline_figure(study.trials)
    assert info.reason is None
    assert info.note == "2 trials whose worker died unobserved left out: nothing recorded when it died"
    assert _timeline_figure([study.trials[1]]).reason is not None


def test_a_trial_failed_as_abandoned_ended_unobserved_and_shows_no_seconds(tmp_path: Path) -> None:
    """A trial whose process ended before it recorded its owner is failed 'abandoned: ...' by whoever finds it
    (`fail_ownerless_trials`, a grace later): as for a stale check's or the dead-worker check's, nothing
    recorded when it ended, and Optuna's duration ran on to when it was found (a grace of 300 s and more),
    which read as its training time."""
    from hpotool.dead_trials import fail_ownerless_trials
    from hpotool.durations import ended_unobserved
    from hpotool.storage import make_storage

    study = optuna.create_study(
        study_name="abandoned", storage=make_storage(f"sqlite:///{tmp_path / 'a.db'}")
    )
    ask_with_heartbeat(study)  # its process ends here, before it records itself
    assert fail_ownerless_trials(study, grace_s=0) == [0]
    (trial,) = study.get_trials(states=(TrialState.FAIL,))
    assert trial.user_attrs["fail_reason"].startswith("abandoned: ")
    assert trial.duration is not None  # Optuna's, from its start to when it was found
    assert ended_unobserved(trial) and trial_seconds(trial) is None
