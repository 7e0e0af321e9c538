"""Several `hpotool optimize` commands sharing one study on a database server, as several machines do."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpotool.storage import make_storage

from .conftest import write_yaml
from .test_workers import _server_url

SRC = Path(__file__).resolve().parents[1] / "src"

# A user's training function whose second epoch ends as the database server drops the connection that
# writes its report: the server (a restart, a failover) ends that backend in the middle of the write, as
# `pg_terminate_backend` does. Only the backends of this test's study (its `application_name`) are ended.
CUT_FIT = """
import threading
import time
from pathlib import Path

import psycopg


def fit(config, report):
    options = config["trainer"]
    metrics = {}
    for epoch in range(config["epochs"]):
        if epoch == 1 and not Path("cut.done").exists():  # once: the server answers the next command
            Path("cut.done").touch()
            _cut(options["app"])
        metrics = {"val_loss": options["x"] + epoch}
        report(epoch, metrics)
    return metrics


def _cut(app):
    lock = psycopg.connect("host=127.0.0.1 user=postgres dbname=test")
    lock.execute("LOCK TABLE trial_intermediate_values IN ACCESS EXCLUSIVE MODE")

    def end_the_blocked_write():
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as admin:
            for _ in range(200):
                blocked = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND %s = ANY(pg_blocking_pids(pid))",
                    (app, lock.info.backend_pid),
                ).fetchall()
                if blocked:
                    break
                time.sleep(0.05)
            for (pid,) in blocked:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        lock.rollback()
        lock.close()

    threading.Thread(target=end_the_blocked_write).start()
    time.sleep(1.1)  # an epoch longer than the storage's flush interval: its report is written at once
"""


def _optimize(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{cwd}", "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "hpotool", "optimize", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_connection_the_server_drops_during_a_report_ends_the_run_and_the_trial_runs_again(
    tmp_path: Path,
) -> None:
    # The server dropped the connection writing a trial's report (`trial.report` in the user's epoch):
    # the trial was marked FAIL with Optuna's "StorageInternalError: ... invalid data in the commit, e.g.
    # exceeding max length. (at cut.py:... in fit)", blaming the user's code, its values never ran again,
    # and the command went on to its next trial and exited 0. Now the command ends with the one line
    # `optimize` gives for a server that stopped answering, exit code 2, the trial stays RUNNING, and the
    # same command marks it FAIL ("worker died") and runs its values again.
    server = _server_url("postgres")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    url = f"{server}?application_name={name}"
    (tmp_path / "cut.py").write_text(CUT_FIT)
    run = {
        "project": "cut",
        "seed": 0,
        "epochs": 3,
        "trainer": {"function": "cut:fit", "x": 0.5, "app": name},
    }
    opt = {
        "study_name": name,
        "n_trials": 2,
        "seed": 0,
        "metric": "val_loss",
        "direction": "minimize",
        "storage": url,
        "search_space": {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    write_yaml(tmp_path / "run.yaml", run)
    write_yaml(tmp_path / "optimize.yaml", opt)
    try:
        cut = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
        assert cut.returncode == 2, cut.stdout + cut.stderr
        assert "Traceback" not in cut.stderr
        assert f"error: storage {url!r} stopped answering during the study" in cut.stderr
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        [trial] = study.get_trials()
        assert trial.state == TrialState.RUNNING, trial.user_attrs.get("fail_reason")

        # The server answers again: the same command resumes the study.
        resumed = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        trials = study.get_trials()
        assert trials[0].state == TrialState.FAIL
        assert trials[0].user_attrs["fail_reason"].startswith("worker died")
        retries = [t for t in trials if t.user_attrs.get("retry_of") == 0]
        assert [t.state for t in retries] == [TrialState.COMPLETE]
        assert retries[0].params == trials[0].params
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(server))


# A worker's training function that, in the first trial to reach its second epoch, has the server drop the
# connection of its command's main process (the one that shows the trials) in the middle of a query.
CUT_MAIN_FIT = '''
import multiprocessing
import os
import threading
import time

import psycopg

DSN = "host=127.0.0.1 user=postgres dbname=test"


def fit(config, report):
    metrics = {}
    for epoch in range(config["epochs"]):
        if epoch == 1 and _first():
            _cut_main(config["trainer"]["app"])
        metrics = {"val_loss": config["trainer"]["x"] + epoch}
        report(epoch, metrics)
        time.sleep(0.2)
    return metrics


def _first():
    try:
        os.close(os.open("cut.done", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def _ports(pid):
    """The local TCP ports of process `pid`'s sockets."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cut_main(app):
    main = multiprocessing.parent_process().pid  # the command's main process (a forkserver started this one)
    lock = psycopg.connect(DSN)
    lock.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
    ended = []

    def end_the_blocked_query():
        with psycopg.connect(DSN, autocommit=True) as admin:
            for _ in range(400):
                blocked = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND client_port = ANY(%s) "
                    "AND %s = ANY(pg_blocking_pids(pid))",
                    (app, _ports(main), lock.info.backend_pid),
                ).fetchall()
                if blocked:
                    break
                time.sleep(0.05)
            for (pid,) in blocked:
                ended.append(admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])
        lock.rollback()
        lock.close()

    thread = threading.Thread(target=end_the_blocked_query)
    thread.start()
    thread.join()
    assert ended == [True], ended
'''


def test_a_connection_the_server_drops_under_the_main_process_of_workers_stops_no_worker(
    tmp_path: Path,
) -> None:
    # The server dropped the connection of `--workers`' main process in the middle of its look for newly
    # finished trials (a restart, a failover): the main process stopped every worker, which ended its trial
    # as FAIL ("interrupted", never run again), and the command ended with "storage ... stopped answering
    # ... those that were running stay RUNNING there", exit code 2, while the server answered again at
    # once (the workers wrote their FAIL). Now the main process's next look reconnects, the workers go on,
    # and the study ends with its trials.
    server = _server_url("postgres")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    url = f"{server}?application_name={name}"
    (tmp_path / "cutmain.py").write_text(CUT_MAIN_FIT)
    run = {
        "project": "cut",
        "seed": 0,
        "epochs": 3,
        "trainer": {"function": "cutmain:fit", "x": 0.5, "app": name},
    }
    opt = {
        "study_name": name,
        "n_trials": 4,
        "seed": 0,
        "metric": "val_loss",
        "direction": "minimize",
        "storage": url,
        "search_space": {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    write_yaml(tmp_path / "run.yaml", run)
    write_yaml(tmp_path / "optimize.yaml", opt)
    try:
        ran = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q", "--workers", "2")
        assert (tmp_path / "cut.done").exists()
        assert ran.returncode == 0, ran.stdout + ran.stderr
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        ended = [(t.state, t.user_attrs.get("fail_reason")) for t in study.get_trials()]
        assert ended == [(TrialState.COMPLETE, None)] * 4
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(server))
