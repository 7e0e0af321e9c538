"""MLflow tracking against a local SQLite-backed MLflow store (MLflow's file store is in maintenance mode)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.durations import SECONDS_ATTR, STARTED_ATTR

from .conftest import write_yaml
from .test_workers import _run_hpotool

REPO = Path(__file__).resolve().parents[1]
mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'hpotool[mlflow]')")


def test_every_trial_is_logged_to_mlflow(tmp_path: Path) -> None:
    opt = yaml.safe_load((REPO / "examples/mlflow_optimize.yaml").read_text())
    opt["tracking"]["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opt["storage"] = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(opt))
    run = yaml.safe_load((REPO / "configs/run_template.yaml").read_text()) | {"epochs": 4}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(run))
    result = CliRunner().invoke(
        app,
        ["optimize", "-r", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o.yaml"), "-q", "--n-trials", "3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="digits_tracked", storage=opt["storage"]).trials
    client = mlflow.MlflowClient(tracking_uri=opt["tracking"]["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name("digits_tracked")
    runs = {r.data.tags["hpotool.trial"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {str(t.number) for t in trials}
    for t in trials:
        r = runs[str(t.number)]
        assert r.data.tags["hpotool.state"] == t.state.name
        assert float(r.data.params["optimizer.lr"]) == pytest.approx(t.params["optimizer.lr"])
        history = client.get_metric_history(r.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(t.user_attrs["epochs_run"]))
        # MLflow's duration is the trial's: it was the time logging took, after the trial; and the start and
        # seconds hpotool measured, not Optuna's datetimes (whole seconds on MySQL: 0 for a tiny trial)
        start, seconds = t.system_attrs[STARTED_ATTR], t.system_attrs[SECONDS_ATTR]
        assert (r.info.start_time, r.info.end_time) == (round(start * 1000), round((start + seconds) * 1000))


def _tracked_configs(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], tracking_uri: str, n: int
) -> list[str]:
    opt = {**opt_dict, "n_trials": n, "tracking": {"mlflow": {"tracking_uri": tracking_uri}}}
    run, opt_path = write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt)
    return ["optimize", "-r", str(run), "-o", str(opt_path), "-q"]


def _tracked(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    uri: str,
    n: int,
    *extra: str,
    exit_code: int = 0,
) -> Result:
    """`optimize` of these configs in this process, `n` trials logged to MLflow at `uri`; it must exit
    `exit_code`."""
    result = CliRunner().invoke(
        app, [*_tracked_configs(tmp_path, run_dict, opt_dict, uri, n), *extra], catch_exceptions=False
    )
    assert result.exit_code == exit_code, result.output
    return result


def _logged_trials(tracking_uri: str, experiment: str) -> dict[str, Any]:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return {r.data.tags["hpotool.trial"]: r for r in client.search_runs([found.experiment_id])}


def _one_trial_of(
    function: str, tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> tuple[str, Any]:
    """One trial of training function `function`, minimizing its val_loss, logged to a new local MLflow
    store: the store's URI and the trial's MLflow run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dict["trainer"] = {"function": function}
    opt_dict |= {"metric": "val_loss", "direction": "minimize"}
    _tracked(tmp_path, run_dict, opt_dict, uri, 1)
    return uri, _logged_trials(uri, "tiny")["0"]


def _could_not_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings this process logged that MLflow could not log a trial."""
    return [r.getMessage() for r in caplog.records if "could not log" in r.getMessage()]


def test_workers_log_every_trial_to_a_fresh_tracking_db(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Both workers used to create the MLflow database (its migrations) and the experiment at once.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, output = _run_hpotool(
        [*_tracked_configs(tmp_path, run_dict, opt_dict, uri, 4), "--workers", "2"], tmp_path
    )
    assert code == 0, output
    assert "Traceback" not in output and "warning" not in output, output
    assert "INFO" not in output, output  # MLflow's "Creating initial MLflow database tables..."
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert set(_logged_trials(uri, "tiny")) == {str(t.number) for t in trials if t.state.is_finished()}


def test_a_deleted_experiment_is_one_line_before_trial_0(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """An experiment in MLflow's trash was taken as found: MLflow then refused every run in it, a warning
    after every trial (and no run logged) for a study that had said nothing before it started."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("tiny")
    client.delete_experiment(experiment_id)
    result = _tracked(tmp_path, run_dict, opt_dict, uri, 3, exit_code=2)
    assert result.stderr == (
        f"error: {tmp_path / 'o.yaml'}: tracking.mlflow: experiment 'tiny' at '{uri}' is deleted (in MLflow's "
        "trash); restore it "
        f"(MLFLOW_TRACKING_URI={uri} mlflow experiments restore -x {experiment_id}) or set "
        f"tracking.mlflow.experiment to another name\n"
    )
    assert not Path(opt_dict["storage"].removeprefix("sqlite:///")).exists()  # no study started


def test_a_tracking_store_mlflow_refuses_names_the_config_and_the_fix(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """A tracking_uri MLflow takes no store from (a scheme it lacks) ended the command with MLflow's exception
    alone: neither the optimize config that gave it, nor what to write instead."""
    result = _tracked(tmp_path, run_dict, opt_dict, "bogus://store", 1, exit_code=2)
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, result.stderr
    assert line.startswith(
        f"error: {tmp_path / 'o.yaml'}: tracking.mlflow: cannot use experiment 'tiny' at "
    ), line
    assert line.endswith(
        "; correct tracking.mlflow.tracking_uri: an MLflow tracking store, such as sqlite:///mlflow.db (a local "
        "file) or http://HOST:PORT (an MLflow server)"
    ), line
    assert not Path(opt_dict["storage"].removeprefix("sqlite:///")).exists()  # no study started


def test_metric_names_mlflow_refuses_are_logged_with_underscores(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """A training function's `top@5` or `f1(macro)` made MLflow refuse the trial: no metric of it was logged,
    and its run was left RUNNING."""
    uri, run = _one_trial_of("tests.trainers:names_metrics_freely", tmp_path, run_dict, opt_dict)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {
        "val_loss": 0.5, "top_5": 0.7, "final_val_loss": 0.5, "final_top_5": 0.7, "final_f1_macro_": 0.6,
    } | {k: v for k, v in run.data.metrics.items() if "epoch_time" in k}  # fmt: skip
    history = mlflow.MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "top_5")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.7)]


def _serve_mlflow(
    die_after_runs: int,
    runs: dict[str, dict[str, Any]] | None = None,
    unavailable: Callable[[str, dict[str, Any]], bool] = lambda path, request: False,
) -> tuple[str, list[str]]:
    """A local HTTP server answering the MLflow REST calls hpotool makes, which goes away (its port closed:
    connections refused) once `die_after_runs` runs have ended; returns its URI and the paths it was asked.
    `runs`: filled with the runs it holds, by id; it answers 503 (Service Unavailable) to each request for
    which `unavailable(path, request)` is true."""
    asked: list[str] = []
    runs = {} if runs is None else runs

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?")[0].removeprefix("/api/2.0/mlflow/")
            asked.append(path)
            if path == "experiments/get-by-name":
                self._answer(
                    {"experiment": {"experiment_id": "1", "name": "tiny", "lifecycle_stage": "active"}}
                )
            else:  # runs/get
                self._answer({"run": {"info": next(iter(runs.values())), "data": {}}})

        def do_POST(self) -> None:
            path = self.path.removeprefix("/api/2.0/mlflow/")
            asked.append(path)
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            if unavailable(path, request):
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "runs/create":
                run_id = f"r{len(runs)}"
                runs[run_id] = {"run_id": run_id, "run_uuid": run_id, "experiment_id": "1",
                                "run_name": request.get("run_name", ""), "status": "RUNNING",
                                "lifecycle_stage": "active"}  # fmt: skip
                self._answer({"run": {"info": runs[run_id], "data": {}}})
            elif path == "runs/update":
                runs[request["run_id"]]["status"] = request.get("status", "RUNNING")
                self._answer({"run_info": runs[request["run_id"]]})
                if asked.count("runs/update") == die_after_runs:
                    threading.Thread(target=lambda: (server.shutdown(), server.server_close())).start()
            else:
                self._answer({})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", asked


def test_a_tracking_server_that_goes_away_is_one_warning_and_tracking_stops(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tracking server that went away mid-study cost every later trial MLflow's retries (about four
    minutes each by default) and a warning; now the first failure is one warning and no later trial tries."""
    monkeypatch.setenv(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"
    )  # the old code's retries, out of the test's time
    uri, asked = _serve_mlflow(die_after_runs=1)
    result = _tracked(tmp_path, run_dict, opt_dict, uri, 4)
    assert "4/4 finished" in result.stdout and "Traceback" not in result.output
    warnings = _could_not_log(caplog)
    assert len(warnings) == 1, warnings
    assert "Connection refused" in warnings[0] and warnings[0].endswith(
        "tracking is off for the rest of this run, and the study goes on"
    )
    assert asked.count("runs/create") == 1


def test_a_tracking_server_that_goes_away_is_one_warning_for_all_workers(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Each worker printed its own 'tracking is off for the rest of this run' (two for two workers), and
    went on trying the dead server until its own first failure; now the main process prints it once."""
    uri, _ = _serve_mlflow(die_after_runs=1)
    args = [*_tracked_configs(tmp_path, run_dict, opt_dict, uri, 6), "--workers", "2"]
    code, output = _run_hpotool(args, tmp_path, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert code == 0, output
    assert "Traceback" not in output, output
    # a worker that opens its tracker after the server died says "cannot use experiment", one that was
    # logging "could not log trial #N": either way one line for the run
    warnings = [line for line in output.splitlines() if "tracking is off for the rest of this run" in line]
    assert len(warnings) == 1, output
    # the server dies after its first run: a worker's request finds it gone, cut off mid-answer or closed
    # without an answer (the reason's wording is urllib3's, and depends on the moment): one warning is the point
    assert warnings[0].startswith("warning: ") and warnings[0].endswith(
        "tracking is off for the rest of this run, and the study goes on"
    )


def test_an_http_tracking_server_prints_nothing_on_stdout(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """With an HTTP tracking server MLflow wrote two lines per trial on stdout ("View run tiny-trial-0 at:
    http://...", "View experiment at: ..."), between the progress lines and into `--json` output."""
    uri, asked = _serve_mlflow(die_after_runs=0)
    result = _tracked(tmp_path, run_dict, opt_dict, uri, 2, "--json")
    assert isinstance(json.loads(result.stdout), dict), result.stdout  # nothing but the summary
    assert asked.count("runs/update") == 2 and "runs/get" not in asked


def test_mlflow_logs_a_choice_as_the_yaml_spells_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """A categorical choice is logged as `hpotool trials` shows it: the README's loss.weight null as null
    (it was Python's None), a list choice or a whole section as its label."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dict["loss"] = {"name": "cross_entropy"}
    opt_dict["search_space"] = {
        "loss.weight": {"type": "categorical", "choices": [None, [1.0] * 9 + [3.0]]},
        "model.hidden": {"type": "categorical", "choices": [[16], [8, 8]]},
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam", "lr": 0.001}]},
    }
    opt_dict["enqueue"] = [
        {"loss.weight": None, "model.hidden": [8, 8], "optimizer": {"name": "adam", "lr": 0.001}}
    ]
    _tracked(tmp_path, run_dict, opt_dict, uri, 1)
    params = _logged_trials(uri, "tiny")["0"].data.params
    assert (params["loss.weight"], params["model.hidden"]) == ("null", "[8, 8]")
    assert params["optimizer"] == "{lr: 0.001, name: adam}"  # a whole section, as hpotool trials shows it


def test_mlflow_tags_whether_a_trial_meets_the_constraints(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """In a constrained study an infeasible trial was logged like any other: its MLflow run showed the best
    final metric with nothing saying the study could never pick it (hpotool trials says 'violates the
    constraints'). Each run is now tagged hpotool.feasible."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opt_dict["constraints"] = ["n_params <= 200"]
    opt_dict["search_space"] = {"model.hidden.0": {"type": "categorical", "choices": [2, 64]}}
    opt_dict["enqueue"] = [{"model.hidden.0": 2}, {"model.hidden.0": 64}]
    _tracked(tmp_path, run_dict, opt_dict, uri, 2)
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    runs = _logged_trials(uri, "tiny")
    tags = {t.params["model.hidden.0"]: runs[str(t.number)].data.tags["hpotool.feasible"] for t in trials}
    assert tags == {2: "true", 64: "false"}


def test_an_unreachable_tracking_server_is_one_line_within_seconds(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tracking_uri: http://...` with no server there hung before trial 0 for about four minutes (MLflow's
    7 retries with a growing backoff) before its one line; now the opening check retries once. The tries
    are counted, not timed: each is a connection urllib3 opens (refused), and the backoff comes between."""
    import socket

    import urllib3.util.connection

    with socket.socket() as s:  # a local port with nothing listening: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tries: list[tuple[str, int]] = []
    connect = urllib3.util.connection.create_connection

    def counted(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        tries.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    result = _tracked(tmp_path, run_dict, opt_dict, f"http://127.0.0.1:{port}", 1, exit_code=2)
    assert tries == [("127.0.0.1", port)] * 2, tries  # one request, retried once; before: 8 tries, ~4 min
    line = result.stderr.strip()
    # the optimize config that names the server, and what to do (before: neither, MLflow's exception alone)
    assert line.startswith(
        f"error: {tmp_path / 'o.yaml'}: tracking.mlflow: cannot use experiment 'tiny' at "
        f"'http://127.0.0.1:{port}': MlflowException:"
    ), line
    assert line.endswith(
        f"; is an MLflow server running at 127.0.0.1:{port}? start one (mlflow server --host 127.0.0.1 "
        f"--port {port}), or correct tracking.mlflow.tracking_uri"
    ), line


def test_a_tracking_server_that_never_answers_is_one_line_within_seconds(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes connections and never answers (hung) held the command 120 s per request (MLflow's
    timeout): 4 min 23 s before its one line, with one retry. Now a request gives up after 10 s, unless the
    user set MLFLOW_HTTP_REQUEST_TIMEOUT. The requests are counted, not timed: the time is the timeout's,
    which the message names."""
    import socket

    from hpotool import tracking

    held: list[socket.socket] = []

    def connections() -> int:
        """The connections made to `listener` since the last call, all of them: the kernel takes each one
        into the listener's backlog (a connect returns once it is there), so none is still on its way."""
        listener.setblocking(False)
        before = len(held)
        with contextlib.suppress(BlockingIOError):
            while True:
                held.append(listener.accept()[0])
        return len(held) - before

    # takes connections (the kernel does, into its backlog) and never answers: nothing accepts them
    listener = socket.create_server(("127.0.0.1", 0))
    uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # one request: the test's time
    assert tracking.REQUEST_TIMEOUT_S == 10
    monkeypatch.setattr(tracking, "REQUEST_TIMEOUT_S", 1)  # the same code, its 10 s not waited out
    try:
        result = _tracked(tmp_path, run_dict, opt_dict, uri, 1, exit_code=2)
        where = f"error: {tmp_path / 'o.yaml'}: tracking.mlflow"
        assert result.stderr.startswith(f"{where}: cannot use experiment 'tiny' at '{uri}'"), result.stderr
        assert "read timeout=1)" in result.stderr  # before: 120 s
        assert "is an MLflow server running at 127.0.0.1:" in result.stderr
        assert connections() == 1  # the one request the user's retries (0) allow, given up
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # the user's own is kept
        assert "read timeout=2)" in _tracked(tmp_path, run_dict, opt_dict, uri, 1, exit_code=2).stderr
        assert connections() == 1
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_run_whose_logging_was_cut_off_is_ended_failed_once_the_server_is_back(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that went away while a trial was being logged (after its run was created) left that MLflow
    run RUNNING for good. Now hpotool ends it FAILED, tagged hpotool.log_error: at once where the server
    answers, else as the command stops, where it is back by then."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = {"log-parameter": True, "update": True}

    def unavailable(path: str, request: dict[str, Any]) -> bool:
        if path == "runs/log-parameter" and down["log-parameter"]:
            down["log-parameter"] = False  # back for good after this one
            return True
        if path == "runs/update" and down["update"]:  # away still when hpotool ends the run at once
            down["update"] = False
            return True
        return False

    runs: dict[str, dict[str, Any]] = {}
    uri, asked = _serve_mlflow(die_after_runs=0, runs=runs, unavailable=unavailable)
    _tracked(tmp_path, run_dict, opt_dict, uri, 2)
    warnings = _could_not_log(caplog)
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow could not log trial #0"), warnings
    assert asked.count("runs/create") == 1  # tracking is off for the rest of the run, as before
    assert [r["status"] for r in runs.values()] == ["FAILED"]
    assert asked.count("runs/update") == 2  # refused at once, then as the command stopped
    assert asked[-1] == "runs/set-tag"  # hpotool.log_error: why


def test_a_resumed_study_ends_the_runs_a_dead_process_left_running_and_logs_no_trial_twice(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """A process that died while it logged a trial (killed, or its store away until it stopped) left the
    trial's MLflow run RUNNING for good. Resuming the study now ends it FAILED, tagged hpotool.log_error;
    each trial keeps one run (those logged before are not logged again)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, output = _run_hpotool(_tracked_configs(tmp_path, run_dict, opt_dict, uri, 2), tmp_path)
    assert code == 0, output
    client = mlflow.MlflowClient(tracking_uri=uri)
    cut_off = _logged_trials(uri, "tiny")["1"].info.run_id
    client.update_run(cut_off, status="RUNNING")  # as the dead process left it: logged up to its status
    _tracked(tmp_path, run_dict, opt_dict, uri, 3)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment])
    assert sorted(r.data.tags["hpotool.trial"] for r in runs) == ["0", "1", "2"]
    assert {r.data.tags["hpotool.trial"]: r.info.status for r in runs} == {
        "0": "FINISHED", "1": "FAILED", "2": "FINISHED"
    }  # fmt: skip
    tags = client.get_run(cut_off).data.tags
    assert tags["hpotool.log_error"] == "logging this trial was cut off: the process that logged it stopped"


def test_ctrl_c_while_a_trial_is_logged_ends_its_run_killed(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Ctrl-C while a trial was being logged left its MLflow run RUNNING for good; now it ends KILLED."""
    import os
    import signal

    sent = []

    def ctrl_c(path: str, request: dict[str, Any]) -> bool:
        if path == "runs/log-parameter" and not sent:  # once: a later one could land in the next test
            sent.append(path)
            os.kill(os.getpid(), signal.SIGINT)
        return False

    runs: dict[str, dict[str, Any]] = {}
    uri, asked = _serve_mlflow(die_after_runs=0, runs=runs, unavailable=ctrl_c)
    _tracked(tmp_path, run_dict, opt_dict, uri, 3, exit_code=130)
    assert [r["status"] for r in runs.values()] == ["KILLED"]
    assert asked.count("runs/create") == 1


def test_a_diverged_trial_logs_the_value_it_diverged_with(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """A trial pruned as diverged logged the epochs before, but not the NaN or infinite value that pruned it
    (one that diverged in its first epoch logged no metric at all): MLflow's chart now ends where it
    diverged. Its run ends KILLED, as every pruned trial's, tagged with the state and the reason."""
    import sys

    uri, run = _one_trial_of("tests.trainers:diverges_in_epoch_2", tmp_path, run_dict, opt_dict)
    assert run.info.status == "KILLED"
    assert run.data.tags["hpotool.state"] == "PRUNED"
    assert run.data.tags["hpotool.prune_reason"] == "val_loss is inf in epoch 2"
    history = mlflow.MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1]
    # a SQL store keeps infinity as the largest float
    assert [m.value for m in history] == [1.0, sys.float_info.max]


def test_a_failed_trial_ends_failed_with_its_reason_and_the_epochs_it_ran(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Each state's run: COMPLETE as FINISHED, FAIL as FAILED with hpotool.fail_reason and the epochs it
    ran, each tagged with its trial's number and state."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dict["trainer"] = {"function": "tests.trainers:fails_on_long_runs"}
    opt_dict |= {"metric": "val_loss", "direction": "minimize"}
    opt_dict["search_space"] = {"epochs": {"type": "categorical", "choices": [2, 5]}}
    opt_dict["enqueue"] = [{"epochs": 2}, {"epochs": 5}]
    _tracked(tmp_path, run_dict, opt_dict, uri, 2)
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    runs = _logged_trials(uri, "tiny")
    assert set(runs) == {str(t.number) for t in trials}
    statuses = {"COMPLETE": "FINISHED", "FAIL": "FAILED"}
    for t in trials:
        assert runs[str(t.number)].data.tags["hpotool.state"] == t.state.name
        assert runs[str(t.number)].info.status == statuses[t.state.name]
    failed = [runs[str(t.number)] for t in trials if t.state.name == "FAIL"]
    assert failed and len(failed) < len(trials)
    assert failed[0].data.tags["hpotool.fail_reason"].startswith("RuntimeError: CUDA-like failure")
    history = mlflow.MlflowClient(tracking_uri=uri).get_metric_history(failed[0].info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1, 2]


def test_the_clean_up_of_a_cut_off_run_makes_one_request_inside_the_logging_s_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ending a run whose logging was cut off is one request with no retry (the store's retries were just
    spent); it runs inside the logging's own settings, which took its retry count of 1 for the user's."""
    import os

    from hpotool.tracking import _quick_requests

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")  # the user's
    with _quick_requests():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
        with _quick_requests(retries=0):
            assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
            assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")  # the user's, kept inside both
    with _quick_requests(), _quick_requests(retries=0):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"


_TAGGED_NET = """from typing import Any

import torch.nn as nn


class Tagged(nn.Linear):
    def __init__(self, in_features: int, out_features: int, tag: Any = None) -> None:
        super().__init__(in_features, out_features)

    def forward(self, x):
        return super().forward(x.flatten(1))
"""


def test_mlflow_logs_a_text_choice_yaml_reads_as_a_list_apart_from_the_list_choice(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The choice "[1,2]" (text) and the choice [1, 2] (a list, stored as its label) were both logged bare,
    the stored labels undecoded: the text is quoted now, as `hpotool trials` shows it."""
    (tmp_path / "tagged_net.py").write_text(_TAGGED_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dict["model"] = {"name": "tagged_net:Tagged"}
    opt_dict["search_space"] = {"model.tag": {"type": "categorical", "choices": ["[1,2]", [1, 2]]}}
    opt_dict["enqueue"] = [{"model.tag": "[1,2]"}, {"model.tag": [1, 2]}]
    _tracked(tmp_path, run_dict, opt_dict, uri, 2)
    logged = _logged_trials(uri, "tiny")
    assert [logged[n].data.params["model.tag"] for n in ("0", "1")] == ['"[1,2]"', "[1, 2]"]


def test_a_trial_whose_worker_died_unobserved_logs_a_run_that_ends_as_it_started(tmp_path: Path) -> None:
    """A trial failed by a stale check or the dead-worker check, without seconds of its own, shows no seconds
    elsewhere; its MLflow run lasted from its start to when it was found dead (900 s), read as its training
    time. Its run, logged, or ended where its dead process left it RUNNING, ends as it started; the others'
    runs last the seconds they took."""
    import subprocess
    import sys
    from datetime import datetime, timedelta

    from optuna.trial import FrozenTrial, TrialState

    from hpotool.optimize_sections import MlflowConfig
    from hpotool.owners import owner
    from hpotool.tracking import MlflowTracker

    from .test_durations import _study_with_a_dead_worker_s_trials

    _, study = _study_with_a_dead_worker_s_trials(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    start = datetime(2026, 12, 7, 9, 0, 0)
    study.add_trial(  # its process died as it logged it, unobserved: the dead-worker check failed it
        FrozenTrial(
            number=5,
            state=TrialState.FAIL,
            value=None,
            datetime_start=start,
            datetime_complete=start + timedelta(seconds=900),
            params={},
            distributions={},
            user_attrs={
                "fail_reason": f"worker died (pid {dead.pid})",
                "worker": owner() | {"pid": dead.pid},
            },
            system_attrs={},
            intermediate_values={},
            trial_id=5,
        )
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(MlflowConfig(tracking_uri=uri), "dead")
    for trial in study.trials[:-1]:  # not the last, whose process died as it logged it
        tracker(study, trial)
    client = mlflow.MlflowClient(tracking_uri=uri)
    left = client.create_run(  # as the dead process left it
        tracker.experiment_id,
        start_time=round(start.timestamp() * 1000),
        tags={"hpotool.study": "dead", "hpotool.trial": "5"},
    )
    tracker.end_cut_off_runs(study)
    assert client.get_run(left.info.run_id).info.status == "FAILED"  # the premise: it was ended
    runs = client.search_runs([tracker.experiment_id])
    lasted = {int(r.data.tags["hpotool.trial"]): r.info.end_time - r.info.start_time for r in runs}
    assert lasted == {0: 1500, 1: 0, 2: 0, 3: 2500, 4: 637_000, 5: 0}
