"""Several `hpotool optimize` commands sharing one study on a database server, as several machines do."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from hpotool.storage import make_storage

from .conftest import SharedStudy, ask_with_heartbeat, write_configs, write_yaml
from .test_workers import _in_this_process, _server_url

SRC = Path(__file__).resolve().parents[1] / "src"

# A user's training function whose first trial to reach its second epoch has the database server drop one
# connection in the middle of a query, as a restart or a failover does (`pg_terminate_backend`): with `cut:
# report`, this process's own as it writes the epoch's report; with `cut: main`, that of the command's main
# process (`--workers`) as it looks for finished trials. Only the backends of this test's study (its
# `application_name`) and of that process (its sockets' ports) are ended.
CUT_FIT = """
import multiprocessing
import os
import threading
import time

import psycopg

DSN = "host=127.0.0.1 user=postgres dbname=test"


def fit(config, report):
    options = config["trainer"]
    metrics = {}
    for epoch in range(config["epochs"]):
        if epoch == 1 and _first():  # once: the server answers the next command
            if options["cut"] == "report":
                _cut(options["app"], os.getpid(), "trial_intermediate_values").start()
                time.sleep(1.1)  # longer than the storage's flush interval: the report is written at once
            else:
                cut = _cut(options["app"], multiprocessing.parent_process().pid, "trials")
                cut.start()
                cut.join()
        metrics = {"val_loss": options["x"] + epoch}
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
    \"\"\"The local TCP ports of process `pid`'s sockets.\"\"\"
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed since (the listing's own)
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cut(app, pid, table):
    \"\"\"A thread that ends the query of process `pid` that waits for `table`, locked until then.\"\"\"
    lock = psycopg.connect(DSN)
    lock.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def end_the_blocked_query():
        with psycopg.connect(DSN, autocommit=True) as admin:
            for _ in range(400):
                blocked = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND client_port = ANY(%s) "
                    "AND %s = ANY(pg_blocking_pids(pid))",
                    (app, _ports(pid), lock.info.backend_pid),
                ).fetchall()
                if blocked:
                    break
                time.sleep(0.05)
            ended = [admin.execute("SELECT pg_terminate_backend(%s)", row).fetchone()[0] for row in blocked]
        lock.rollback()
        lock.close()
        assert ended == [True], ended

    return threading.Thread(target=end_the_blocked_query)
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


def _optimize_in_this_process(cwd: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """`hpotool optimize ARGS` run to exit code 0 in this process, from `cwd` (whose training modules it
    imports, as `_optimize` does): the same command without a process of its own (no interpreter, torch
    and optuna imported again), for a run that is no signal's nor connection's target, only a step of the
    test. What it changes (the folder, sys.path, the modules of `cwd`) is put back after the test."""
    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(cwd))
    for module in [p.stem for p in cwd.glob("*.py")]:  # another test's module of the same name, if imported
        monkeypatch.delitem(sys.modules, module, raising=False)
    _in_this_process(["optimize", *args])


def _write_configs(folder: Path, run: dict[str, Any], study_name: str, n_trials: int, storage: str) -> None:
    """run.yaml (`run`, seed 0) and optimize.yaml in `folder`: a study of `n_trials` minimizing val_loss over
    trainer.x in [0, 1], which the training functions here report."""
    write_yaml(folder / "run.yaml", {"seed": 0, **run})
    opt = {
        "study_name": study_name,
        "n_trials": n_trials,
        "seed": 0,
        "metric": "val_loss",
        "direction": "minimize",
        "storage": storage,
        "search_space": {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    write_yaml(folder / "optimize.yaml", opt)


@contextlib.contextmanager
def _cut_study(
    tmp_path: Path, cut: str | None, n_trials: int, function: str = "cut:fit"
) -> Iterator[tuple[str, str]]:
    """(storage URL, study name) of a fresh PostgreSQL study of `function`'s trials (cut.py, `CUT_FIT`, is
    written beside the configs, run.yaml and optimize.yaml, in tmp_path); `cut` says whose connection
    CUT_FIT has the server drop. Deleted after."""
    server = _server_url("postgres")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    url = f"{server}?application_name={name}"
    (tmp_path / "cut.py").write_text(CUT_FIT)
    trainer = {"function": function, "x": 0.5, "app": name, **({"cut": cut} if cut else {})}
    _write_configs(tmp_path, {"project": "cut", "epochs": 3, "trainer": trainer}, name, n_trials, url)
    try:
        yield url, name
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(server))


def test_a_connection_the_server_drops_during_a_report_ends_the_run_and_the_trial_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server dropped the connection writing a trial's report (`trial.report` in the user's epoch):
    # the trial was marked FAIL with Optuna's "StorageInternalError: ... invalid data in the commit, e.g.
    # exceeding max length. (at cut.py:... in fit)", blaming the user's code, its values never ran again,
    # and the command went on to its next trial and exited 0. Now the command ends with the one line
    # `optimize` gives for a server that stopped answering, exit code 2, the trial stays RUNNING, and the
    # same command marks it FAIL ("worker died") and runs its values again.
    with _cut_study(tmp_path, "report", 2) as (url, name):
        cut = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
        assert cut.returncode == 2, cut.stdout + cut.stderr
        assert "Traceback" not in cut.stderr
        assert f"error: storage {url!r} stopped answering during the study" in cut.stderr
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        [trial] = study.get_trials()
        assert trial.state == TrialState.RUNNING, trial.user_attrs.get("fail_reason")

        # The server answers again: the same command resumes the study (to exit code 0; in this process, as
        # nothing is cut or signalled there).
        _optimize_in_this_process(tmp_path, monkeypatch, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
        trials = study.get_trials()
        assert trials[0].state == TrialState.FAIL
        assert trials[0].user_attrs["fail_reason"].startswith("worker died")
        retries = [t for t in trials if t.user_attrs.get("retry_of") == 0]
        assert [t.state for t in retries] == [TrialState.COMPLETE]
        assert retries[0].params == trials[0].params
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


def test_a_connection_the_server_drops_under_the_main_process_of_workers_stops_no_worker(
    tmp_path: Path,
) -> None:
    # The server dropped the connection of `--workers`' main process in the middle of its look for newly
    # finished trials (a restart, a failover): the main process stopped every worker, which ended its trial
    # as FAIL ("interrupted", never run again), and the command ended with "storage ... stopped answering
    # ... those that were running stay RUNNING there", exit code 2, while the server answered again at
    # once (the workers wrote their FAIL). Now the main process's next look reconnects, the workers go on,
    # and the study ends with its trials.
    with _cut_study(tmp_path, "main", 4) as (url, name):
        ran = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q", "--workers", "2")
        assert (tmp_path / "cut.done").exists()
        assert ran.returncode == 0, ran.stdout + ran.stderr
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        ended = [(t.state, t.user_attrs.get("fail_reason")) for t in study.get_trials()]
        assert ended == [(TrialState.COMPLETE, None)] * 4


def test_a_worker_whose_connection_the_server_drops_leaves_its_trial_to_the_others_and_the_study_ends_well(
    tmp_path: Path,
) -> None:
    # The server dropped one worker's connection as it wrote its trial's report: that worker ended, the
    # main process failed its trial ("worker died") and queued its values, and the other worker ran them
    # and finished the study; the command then ended with "error: storage ... stopped answering during the
    # study (ConnectionError: a worker lost its connection); ... those that were running stay RUNNING
    # there. Once it answers again, run the same command to resume", exit code 2, on a study with every
    # trial it asked for and nothing running. Now it exits 0 with a note naming the worker, as for a worker
    # that ended otherwise.
    with _cut_study(tmp_path, "report", 4) as (url, name):
        ran = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q", "--workers", "2")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        trials = study.get_trials()
        [cut] = [t for t in trials if t.state == TrialState.FAIL]
        assert cut.user_attrs["fail_reason"].startswith("worker died")
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
        [retry] = [t for t in trials if t.user_attrs.get("retry_of") == cut.number]
        assert retry.state == TrialState.COMPLETE and retry.params == cut.params
        pid = cut.user_attrs["worker"]["pid"]
        assert "error:" not in ran.stderr
        # The note names the error the worker met (it said only "lost its connection to the storage").
        assert (
            f"(pid {pid}) lost its connection to the storage (terminating connection due to administrator "
            f"command): its trial #{cut.number} ended as FAIL" in " ".join(ran.stderr.split())
        ), ran.stderr


CUT_EVERY_FIT = """
import os
import time

import cut


def fit(config, report):
    options = config["trainer"]
    metrics = {}
    for epoch in range(config["epochs"]):
        if epoch == 1:  # in every worker: the server drops its connection as it writes this report
            cut._cut(options["app"], os.getpid(), "trial_intermediate_values").start()
            time.sleep(1.1)
        metrics = {"val_loss": options["x"] + epoch}
        report(epoch, metrics)
    return metrics
"""


def test_workers_that_lose_the_storage_say_why_in_the_one_line(tmp_path: Path) -> None:
    # Every worker lost its connection (the main process's stayed): the command ended with "storage ...
    # stopped answering during the study (ConnectionError: a worker lost its connection)", the workers'
    # own error dropped, so a cause that has a hint of its own (a read-only SQLite file) never got it. Now
    # the line names the error a worker met, as a single process does.
    (tmp_path / "cut_every.py").write_text(CUT_EVERY_FIT)
    with _cut_study(tmp_path, None, 4, function="cut_every:fit") as (url, name):
        ran = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q", "--workers", "2")
        assert ran.returncode == 2, ran.stdout + ran.stderr
        (line,) = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
        # Each worker's cause, once for the workers that met the same one (it named the first worker's).
        cause = "terminating connection due to administrator command"  # the server's words, not the driver's
        assert re.match(
            rf"error: storage '{re.escape(url)}' stopped answering during the study "
            rf"\(hpotool-worker-[01], hpotool-worker-[01]: {re.escape(cause)}\); ",
            line,
        ), ran.stderr
        assert "a worker lost its connection" not in line and "Traceback" not in ran.stderr, ran.stderr
        # The main process, which still reached the server, failed their trials and queued them again: the
        # line said "those that were running stay RUNNING there".
        assert line.endswith(
            "; the trials it holds are kept, and the trials that were running are marked FAIL ('worker died'), "
            "their parameters queued again. Once it answers again, run the same command to resume"
        ), line
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        assert not study.get_trials(states=(TrialState.RUNNING,))


QUICK_FIT = """
def fit(config, report):
    metrics = {"val_loss": config["trainer"]["x"]}
    report(0, metrics)
    return metrics
"""


def _waiting_for_machine_b(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, on_b: int = 1, **env: str
) -> tuple[optuna.Study, optuna.Trial, subprocess.Popen[str]]:
    """A journal study of 2 finished trials (run in this process) and `on_b` more running on machine B (the
    first returned); `hpotool optimize --n-trials 2+on_b` (and `args`) started on it (this machine, a process
    of its own), which waits for B's trials, its first line read."""
    (tmp_path / "quick.py").write_text(QUICK_FIT)
    url = f"journal:{tmp_path / 'studies' / 'j.log'}"
    run = {"project": "quick", "epochs": 1, "trainer": {"function": "quick:fit", "x": 0.5}}
    _write_configs(tmp_path, run, "shared", 2, url)
    _optimize_in_this_process(tmp_path, monkeypatch, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
    study = optuna.load_study(study_name="shared", storage=make_storage(url))
    on_b_trials = [study.ask() for _ in range(on_b)]  # machine B's trials, running as long as B does
    for trial in on_b_trials:
        trial.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpotool",
            "optimize",
            "-r",
            "run.yaml",
            "-o",
            "optimize.yaml",
            "--n-trials",
            str(2 + on_b),
            *args,
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}", "COLUMNS": "300", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # it waits for a slot
    # B runs the study now: this command joins it, and resumes nothing (it said "resuming study shared")
    assert " ".join(line.split()) == f"joining study shared: 2/{2 + on_b} trials done, {on_b} running", line
    return study, on_b_trials[0], proc


def _interrupt(proc: subprocess.Popen[str]) -> str:
    import signal

    try:
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_while_the_last_trial_runs_on_another_machine_says_no_trial_of_this_one_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Machine A waited for the study's last trial, running on machine B (a Redis or journal study has no
    # heartbeat to tell a dead machine from a live one, so A waits as long as it runs). Ctrl-C on A said
    # "interrupted: the running trial ended as FAIL", where A ran no trial and B's went on RUNNING.
    study, on_b, proc = _waiting_for_machine_b(tmp_path, monkeypatch)
    time.sleep(1.0)
    output = _interrupt(proc)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert "the running trial ended as FAIL" not in output
    text = " ".join(output.split())
    assert f"interrupted while waiting for the trials that other processes run (#{on_b.number})" in text, (
        output
    )
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one-process", "workers"])
def test_a_run_waiting_for_another_machine_on_a_storage_without_heartbeat_says_so_and_what_to_do(
    tmp_path: Path, workers: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Machine A waited for the study's last trial, running on machine B, without a word: on a Redis or
    # journal study, a B gone for good (kill -9, power cut) kept A waiting silently for ever. Now, after
    # the heartbeat's grace period, A says once which trial it waits for, where it runs, and the command
    # that fails it should that machine be gone. With --workers it still waited silently (a worker does
    # not say it, each would); now their main process says it, once.
    _, on_b, proc = _waiting_for_machine_b(tmp_path, monkeypatch, *workers, HPOTOOL_HEARTBEAT_GRACE="1")
    assert proc.stdout is not None
    import select

    # before: nothing came, however long it waited. The bound only ends a hung test: when the note comes
    # (once the wait has lasted the grace period, not before) is checked on a clock of the test's own in
    # test_waiting.py, where nothing races.
    ready = select.select([proc.stdout], [], [], 240)[0]
    note = proc.stdout.readline() if ready else ""
    output = note + _interrupt(proc)
    url = f"journal:{tmp_path / 'studies' / 'j.log'}"
    assert " ".join(note.split()) == (
        f"note: waiting for the study's last trials, running on other machines: #{on_b.number} "
        f"(machine-b.example, pid 4242). This storage has no heartbeat to tell a dead machine from a live one: "
        f"if one is gone, stop every run of the study and run hpotool fail-stale --study-name shared "
        f"--storage {url} --all-running"
    ), output
    assert output.count("note: waiting for") == 1, output


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for `condition`, polling; fail after `timeout` s. 60 s by default: the waits here span another
    process's command noticing a slot and setting up and running a trial (imports included), and that kind
    of start-up took over 10 s on a loaded machine (load 15: two cores, three test processes and other test
    runs; test_workers' timeout test saw it); a longer bound costs nothing where the event comes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# A TCP forwarder in front of the database server, which the test freezes (SIGSTOP): its connections stay
# open, the kernel still acknowledges what is sent, and nothing answers, as a stuck server or proxy does.
PROXY = """
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main(host, port):
    async def serve(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

# A user's training function that freezes the proxy (its pid: trainer.proxy) as the first trial starts its
# second epoch, whose report then waits on the frozen proxy.
FREEZE_FIT = """
import os
import signal
import time


def fit(config, report):
    options = config["trainer"]
    metrics = {}
    for epoch in range(config["epochs"]):
        if epoch == 1:
            try:
                os.close(os.open("frozen", os.O_CREAT | os.O_EXCL))
                os.kill(options["proxy"], signal.SIGSTOP)
            except FileExistsError:
                pass
        metrics = {"val_loss": options["x"] + epoch}
        report(epoch, metrics)
        time.sleep(1.2)  # longer than the storage's flush interval: the report is written at once
    return metrics
"""


@contextlib.contextmanager
def _frozen_study(
    tmp_path: Path, kind: str = "postgres", query: str = "?connect_timeout=2"
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """(storage URL, proxy process) of a fresh study on the `kind` server (postgres, mysql) reached through
    a proxy (`PROXY`) that the first trial freezes (`FREEZE_FIT`); configs written in tmp_path; `query`
    ends the URL. The proxy is ended and the study deleted after."""
    server = _server_url(kind)
    (tmp_path / "proxy.py").write_text(PROXY)
    (tmp_path / "freeze.py").write_text(FREEZE_FIT)
    server_port = {"postgres": "5432", "mysql": "3306"}[kind]
    proxy = subprocess.Popen(
        [sys.executable, str(tmp_path / "proxy.py"), "127.0.0.1", server_port],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None
    port = int(proxy.stdout.readline())
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    url = server.replace(f":{server_port}/", f":{port}/") + query
    trainer = {"function": "freeze:fit", "x": 0.5, "proxy": proxy.pid}
    _write_configs(tmp_path, {"project": "freeze", "epochs": 3, "trainer": trainer}, name, 3, url)
    try:
        yield url, proxy
    finally:
        proxy.send_signal(signal.SIGCONT)
        proxy.kill()
        proxy.wait()
        proxy.stdout.close()  # else an unclosed file's ResourceWarning, in whatever test runs next
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=make_storage(server))


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_a_server_that_stops_answering_mid_study_ends_the_run_with_one_line(
    tmp_path: Path, workers: list[str], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server (here its proxy) that kept its connections open and no longer answered hung the command
    # for good: psycopg, and PyMySQL once connected, wait for an answer without a limit. Now a statement
    # that waited HPOTOOL_SERVER_SILENCE seconds has the server asked for a new connection; it opens none,
    # and the command ends with the line for a storage that stopped answering, exit code 2.
    monkeypatch.setenv("HPOTOOL_SERVER_SILENCE", "2")
    with _frozen_study(tmp_path, kind) as (url, _proxy):
        run = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q", *workers)
        assert (tmp_path / "frozen").exists()
        assert run.returncode == 2, run.stdout + run.stderr
        [line] = [line for line in run.stderr.splitlines() if not line.startswith("new study")]
        assert line.startswith(f"error: storage {url!r} stopped answering during the study ("), run.stderr


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_server_found_silent_is_not_connected_to_again_and_the_line_says_so(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a URL that sets no connect_timeout, the run ended 18.8 s after the freeze with a 2 s silence
    # limit: once the waiting connection was shut, SQLAlchemy's pool opened a new one to the silent server,
    # which waited its 10 s for the greeting, and the line quoted that wait ("(2013, 'Lost connection to
    # MySQL server during query (timed out)')", "connection timeout expired"). Now a server found silent
    # gets no new connection: the run ends within seconds of the probe, and the line says what happened.
    monkeypatch.setenv("HPOTOOL_SERVER_SILENCE", "2")
    with _frozen_study(tmp_path, kind, query="") as (url, _proxy):
        run = _optimize(tmp_path, "-r", "run.yaml", "-o", "optimize.yaml", "-q")
        assert run.returncode == 2, run.stdout + run.stderr
        [line] = [line for line in run.stderr.splitlines() if not line.startswith("new study")]
        port = url.rpartition(":")[2].partition("/")[0]
        assert line.startswith(
            f"error: storage {url!r} stopped answering during the study (the server at 127.0.0.1:{port} "
            f"stopped answering for "
        ), line
        assert (
            "s and opened no new connection within 2 s: check the server, or a proxy in front of it" in line
        )
        assert "timed out" not in line and "timeout expired" not in line, line
    # Measured, not asserted (no timed tests): 4.4 s from the freeze to the exit, 18.8 s before.


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_sigterm_ends_a_run_waiting_on_a_server_that_stopped_answering_with_143(
    tmp_path: Path, kind: str
) -> None:
    # SIGTERM sent to a run waiting on a frozen server (its proxy) did not end it (still running minutes
    # later; only kill -9 did); once it could end, it ended with the storage's line and exit code 2. Now it
    # ends with the storage's line and 143, SIGTERM's code, with the default silence limit (60 s): a signal
    # has the server asked at once. No raw psycopg line ("query cancellation failed: ...").
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}", "COLUMNS": "300"}
    env.pop("HPOTOOL_SERVER_SILENCE", None)
    with _frozen_study(tmp_path, kind) as (url, _proxy):
        run = subprocess.Popen(
            [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(600):
                if (tmp_path / "frozen").exists() or run.poll() is not None:
                    break
                time.sleep(0.1)
            assert (tmp_path / "frozen").exists()
            time.sleep(2)  # the report waits on the frozen proxy
            run.send_signal(signal.SIGTERM)
            stdout, stderr = run.communicate(timeout=120)
        finally:
            run.kill()
        assert run.returncode == 143, stdout + stderr
        assert "query cancellation" not in stderr and "Traceback" not in stderr, stderr
        [line] = [line for line in stderr.splitlines() if not line.startswith("new study")]
        assert line.startswith(f"error: storage {url!r} stopped answering"), stderr


def test_debug_shows_the_traceback_of_a_worker_that_lost_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With --workers, a worker that lost its storage sent the main process its cause in one line alone:
    # `hpotool --debug optimize ... --workers 2` showed the main process's traceback, never the worker's,
    # where the driver's error was met. Now --debug shows each such worker's own traceback too (the one line
    # without --debug is the test above's).
    monkeypatch.setenv("HPOTOOL_SERVER_SILENCE", "2")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}", "COLUMNS": "300"}
    with _frozen_study(tmp_path, "postgres") as (_url, _proxy):
        args = ["--debug", "optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q", "--workers", "2"]
        run = subprocess.run(
            [sys.executable, "-m", "hpotool", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert (tmp_path / "frozen").exists()
    assert run.returncode != 0, run.stdout + run.stderr
    assert "The traceback of hpotool-worker-" in run.stderr, run.stderr
    assert "in _run_worker_trials" in run.stderr, run.stderr  # a frame only a worker runs


def test_a_trial_another_machine_failed_as_stale_keeps_the_result_its_live_owner_finished(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A worker whose heartbeat went unseen for the grace period (a lock held that long, a machine paused)
    # found its trial failed by another machine's stale check as it told its result: the tell raised
    # ("Cannot tell a FAIL trial", or UpdateFinishedTrialError in a race), the worker died with a traceback
    # and the trial it completed was lost. Now it says so in one line and keeps the result, as a new trial.

    from hpotool.heartbeat import fail_stale_trials
    from hpotool.trial_run import run_trial

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    other = optuna.load_study(study_name="s", storage=make_storage(url))
    trial = ask_with_heartbeat(study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("history", [{"epoch": 0, "val_loss": 0.25}])
        backend = other._storage._backend  # type: ignore[attr-defined]
        backend.record_heartbeat(trial._trial_id)  # (its thread may not have beaten yet)
        backend.grace_period = -1  # the database's clock counts whole seconds: this makes any beat stale
        assert fail_stale_trials(other) == [0]
        return 0.25

    run_trial(study, trial, objective)
    first, kept = optuna.load_study(study_name="s", storage=url).trials  # in the retry queued for it
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"].startswith("stale")
    assert kept.state == TrialState.COMPLETE and kept.value == 0.25
    assert kept.params == first.params and kept.user_attrs["history"] == [{"epoch": 0, "val_loss": 0.25}]
    assert kept.user_attrs["result_of"] == 0 and "fail_reason" not in kept.user_attrs
    assert "trial #0 was ended as FAIL (stale: no heartbeat" in caplog.text
    assert "ran it to COMPLETE: its result is kept as trial #1 (result_of: 0)" in caplog.text


def test_a_trial_another_machine_failed_as_stale_keeps_the_seconds_its_live_owner_measured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A live worker (paused past the grace period) whose trial a stale check failed, and whose run then
    # failed too, so that no trial keeps its result: the trial showed no seconds, as if its worker had died
    # unobserved, though this one measured them. Now they are written on it; its state, reason and retry
    # stand as the stale check wrote them.
    import warnings

    from hpotool.durations import SECONDS_ATTR, STARTED_ATTR, trial_seconds
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.trial_run import run_trial

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    other = optuna.load_study(study_name="s", storage=make_storage(url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... supposed to be used with optimize"
        trial = study.ask()

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        backend = other._storage._backend  # type: ignore[attr-defined]
        backend.record_heartbeat(trial._trial_id)  # (its thread may not have beaten yet)
        backend.grace_period = -1  # the database's clock counts whole seconds: this makes any beat stale
        assert fail_stale_trials(other) == [0]
        raise RuntimeError("CUDA out of memory")

    run_trial(study, trial, objective, asked=time.perf_counter())  # as the loop gives it
    first, retry = optuna.load_study(study_name="s", storage=url).trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"].startswith(
        "stale: no heartbeat"
    )
    seconds = first.system_attrs[SECONDS_ATTR]
    assert seconds > 0 and trial_seconds(first) == seconds
    assert first.system_attrs[STARTED_ATTR] == pytest.approx(first.datetime_start.timestamp(), abs=2)
    assert retry.state == TrialState.WAITING and SECONDS_ATTR not in retry.system_attrs
    assert "trial #0 was ended as FAIL (stale: no heartbeat" in caplog.text


def test_seconds_are_written_on_no_trial_but_a_failed_one_and_never_over_its_own(tmp_path: Path) -> None:
    # The write the live owner of a failed trial makes: never on a trial of another state, never over
    # seconds the trial has (inserted, all or none).
    import warnings

    from hpotool.durations import SECONDS_ATTR, STARTED_ATTR

    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    backend = storage._backend  # type: ignore[attr-defined]
    study = optuna.create_study(storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... supposed to be used with optimize"
        done, failed = study.ask(), study.ask()
    study.tell(done, 1.0)
    study.tell(failed, state=TrialState.FAIL)
    attrs = {STARTED_ATTR: 100.0, SECONDS_ATTR: 2.5}
    assert not backend.add_to_failed_trial(done._trial_id, attrs)
    assert backend.add_to_failed_trial(failed._trial_id, attrs)
    assert not backend.add_to_failed_trial(failed._trial_id, {STARTED_ATTR: 1.0, SECONDS_ATTR: 9.0})
    assert not backend.add_to_failed_trial(failed._trial_id, {"other": 1.0, SECONDS_ATTR: 9.0})
    stored = optuna.load_study(study_name=study.study_name, storage=make_storage(backend.url)).trials
    assert SECONDS_ATTR not in stored[0].system_attrs
    assert {k: stored[1].system_attrs.get(k) for k in (*attrs, "other")} == {**attrs, "other": None}


def test_a_result_its_live_owner_keeps_takes_the_place_of_the_retry_queued_for_it(
    caplog: pytest.LogCaptureFixture, shared_study: SharedStudy
) -> None:
    # The live owner of a trial another machine failed as stale kept its result as a new trial, and the
    # retry the stale check had queued (WAITING) still ran the same values: the point ran twice and the
    # study one trial over n_trials. Now the owner takes up that retry itself and finishes it with its
    # result: one trial holds the point, none is left waiting.

    from hpotool.heartbeat import fail_stale_trials
    from hpotool.trial_run import run_trial

    study, other = shared_study.study, shared_study.seen_by_other()
    trial = ask_with_heartbeat(study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        trial.report(0.5, 0)
        backend = other._storage._backend  # type: ignore[attr-defined]
        backend.record_heartbeat(trial._trial_id)
        backend.grace_period = -1  # any beat is stale
        assert fail_stale_trials(other) == [0]
        return 0.25

    kept, _ = run_trial(study, trial, objective)
    first, retry = shared_study.stored().trials  # before: a third, kept trial
    assert first.state == TrialState.FAIL and retry.state == TrialState.COMPLETE and retry.value == 0.25
    assert kept == retry._trial_id and retry.user_attrs["result_of"] == 0
    assert retry.params == first.params and not study.get_trials(states=(TrialState.WAITING,))
    assert retry.intermediate_values == {0: 0.5} and retry.system_attrs["retry_history"] == [0]
    assert "its result is kept as trial #1 (result_of: 0)" in caplog.text


@pytest.mark.parametrize("retry", ["running", "finished", "died"])
def test_a_result_its_live_owner_keeps_counts_the_values_once_when_another_worker_took_their_retry(
    caplog: pytest.LogCaptureFixture, shared_study: SharedStudy, retry: str
) -> None:
    # The live owner of a trial another machine failed as stale kept its result as a new trial where another
    # worker had taken the retry queued for its values up (it ran them, or had run them) or where that retry
    # died in turn and its own retry waited: the values counted twice, one trial over n_trials. Now a retry
    # another worker runs or ran keeps the point (this result is not kept), and a waiting retry of a retry
    # takes the result, as the first retry would.

    from hpotool.heartbeat import fail_stale_trials
    from hpotool.trial_run import run_trial

    study, (other, backend) = shared_study.study, shared_study.seen_by_a_stale_check()
    trial = ask_with_heartbeat(study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        backend.record_heartbeat(trial._trial_id)
        assert fail_stale_trials(other) == [0]  # and queues #1 to run x again
        taken = ask_with_heartbeat(other)  # another worker takes #1 up
        assert taken.number == 1
        if retry == "finished":
            other.tell(taken, 0.5)
        elif retry == "died":  # its worker is taken for dead too: #2 is queued to run x again
            backend.record_heartbeat(taken._trial_id)
            assert fail_stale_trials(other) == [1]
        return 0.25

    kept, _ = run_trial(study, trial, objective)
    trials = shared_study.stored().trials
    assert all(t.params == trials[0].params for t in trials)  # one point throughout
    # before: one more trial, COMPLETE with 0.25 (result_of: 0)
    if retry == "running":
        assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING] and kept is None
        assert "its result is not kept, as trial #1, queued to run its values again, runs them" in caplog.text
    elif retry == "finished":
        assert [(t.state, t.value) for t in trials] == [(TrialState.FAIL, None), (TrialState.COMPLETE, 0.5)]
        assert (
            kept is None
            and "as trial #1, queued to run its values again, ran them to COMPLETE" in caplog.text
        )
    else:
        assert [(t.state, t.value) for t in trials] == [
            (TrialState.FAIL, None),
            (TrialState.FAIL, None),
            (TrialState.COMPLETE, 0.25),
        ]
        assert kept == trials[2]._trial_id and trials[2].user_attrs["result_of"] == 0
        assert trials[2].system_attrs["retry_history"] == [0, 1]  # the retry's count stays
        assert "its result is kept as trial #2 (result_of: 0)" in caplog.text


def test_a_result_not_kept_because_another_worker_ran_its_retry_is_no_failure_of_the_training(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    shared_study: SharedStudy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A live worker's trial, failed as stale by another process as it told its result, whose retry another
    # worker took up and ran: its result (COMPLETE) is not kept, and the trial it ran stays FAIL. Its failure streak
    # (--max-failures) counted that FAIL as a failure of the training, so --max-failures 1 stopped the run,
    # "stopped after 1 failed trials in a row", exit 1, though its training never failed. Now it does not.

    from hpotool import trial_run
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.plan import prepare_study
    from hpotool.study_run import run_study

    other, backend = shared_study.seen_by_a_stale_check()
    real_record_seconds = trial_run.record_seconds

    def taken_for_dead_as_it_is_told(trial: optuna.Trial, seconds: float) -> None:
        real_record_seconds(trial, seconds)  # the objective has returned: the trial is being told
        backend.record_heartbeat(trial._trial_id)
        assert fail_stale_trials(other) == [trial.number]  # and queues its values again
        taken = ask_with_heartbeat(other)  # another worker takes the retry up and runs it
        other.tell(taken, 0.5)

    monkeypatch.setattr(trial_run, "record_seconds", taken_for_dead_as_it_is_told)
    summary = run_study(
        prepare_study(*shared_study.one_trial_configs(tmp_path, run_dict, opt_dict)), max_failures=1
    )
    assert "its result is not kept, as trial #1" in caplog.text
    assert [t.state for t in shared_study.stored().trials] == [TrialState.FAIL, TrialState.COMPLETE]
    # before: "stopped after 1 failed trials in a row", and the command exited 1
    assert not summary.failed and summary.stopped is None  # n_trials reached: the retry holds the point


def test_a_result_not_kept_is_no_failure_in_the_streak_of_a_run_of_workers(shared_study: SharedStudy) -> None:
    # With --workers the failed trials in a row are read from the storage (`run_failures.run_streak`). A worker's
    # trial failed as stale by another process as it ran to its end, whose retry another worker runs: its
    # result is not kept and the trial stays FAIL. Its own process did not count it, but the storage's count
    # did once a failed trial followed: --max-failures 2 stopped the run after one failure of the training.
    # Now the streak counts the trials their own process told FAIL as their run failed.
    from datetime import datetime, timedelta
    from functools import partial

    from hpotool.heartbeat import fail_stale_trials
    from hpotool.loop import FailureGuard
    from hpotool.owners import owner
    from hpotool.run_failures import run_streak
    from hpotool.trial_run import run_trial

    study, (other, backend) = shared_study.study, shared_study.seen_by_a_stale_check()
    main = os.getpid()  # the run's main process, as its workers record it
    since = datetime.now() - timedelta(seconds=1)  # MySQL keeps Optuna's datetimes in whole seconds
    streak = partial(run_streak, main=main, since=since)
    guard = FailureGuard(2, streak_of=streak)

    def run(objective: Callable[[optuna.Trial], float]) -> None:
        """Run one trial of `objective` in a worker of the run, counted as `loop.run_trials` counts it."""
        trial = ask_with_heartbeat(study)
        trial.set_user_attr("worker", {**owner(), "main": main})
        ran = run_trial(study, trial, objective)
        frozen = study._storage.get_trial(trial._trial_id)
        guard(study, frozen, failed=frozen.state == TrialState.FAIL and ran.failed)

    def taken_for_dead(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        backend.record_heartbeat(trial._trial_id)
        assert fail_stale_trials(other) == [trial.number]  # and queues its values again
        # another worker takes the retry up, and runs it
        assert ask_with_heartbeat(other).number == trial.number + 1
        return 0.25

    def fails(trial: optuna.Trial) -> float:
        raise ValueError("boom")

    run(taken_for_dead)  # not kept: the retry runs its values
    assert [t.state for t in shared_study.stored().trials] == [TrialState.FAIL, TrialState.RUNNING]
    run(fails)
    assert streak(study) == 1 and not guard.tripped  # before: 2, and the run stopped
    run(fails)
    assert streak(study) == 2 and guard.tripped


def test_a_trial_failed_as_stale_as_it_trains_is_no_failure_of_the_training(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    shared_study: SharedStudy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A live worker whose trial another process failed as stale while it trained (its heartbeat late: a long
    # GC pause, a loaded machine) stops at its next write, which the storage refuses (a report before the last
    # epoch's). That refusal was counted as a failure of the training: --max-failures 1 stopped the run
    # ("stopped after 1 failed trials in a row", exit 1) before the retry of its values ran. Now only a FAIL
    # this process told counts.
    from typer.testing import CliRunner

    from hpotool import objective
    from hpotool.cli import app
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.plan import prepare_study
    from hpotool.rdb import FLUSH_S
    from hpotool.study_run import run_study

    run_dict["epochs"] = 3
    other, backend = shared_study.seen_by_a_stale_check()
    real_train_run = objective.train_run
    failed: list[int] = []
    epochs: list[int] = []  # each epoch trained, in each run

    def taken_for_dead_after_its_first_epoch(
        cfg: Any, *, on_epoch_end: Any, history: Any, **rest: Any
    ) -> Any:
        def ended(result: Any) -> None:
            epochs.append(result.epoch)
            on_epoch_end(result)
            if not failed:  # the first trial, between its first two epochs
                [running] = other.get_trials(states=(TrialState.RUNNING,))
                backend.record_heartbeat(running._trial_id)
                failed.extend(fail_stale_trials(other))  # and queues its values again
                time.sleep(FLUSH_S + 0.1)  # the next report is written at once, and refused

        return real_train_run(cfg, on_epoch_end=ended, history=history, **rest)

    monkeypatch.setattr(objective, "train_run", taken_for_dead_after_its_first_epoch)
    summary = run_study(
        prepare_study(*shared_study.one_trial_configs(tmp_path, run_dict, opt_dict)), max_failures=1
    )
    assert failed == [0] and "trial #0 was ended as FAIL (stale: no heartbeat" in caplog.text
    first, retry = shared_study.stored().trials
    assert first.state == TrialState.FAIL and epochs == [0, 1, 0, 1, 2]  # it stopped at its second report
    assert retry.state == TrialState.COMPLETE and "result_of" not in retry.user_attrs  # the retry's own run
    assert retry.params == first.params and retry.system_attrs["retry_history"] == [0]
    # before: "stopped after 1 failed trials in a row", exit 1, and the retry never ran
    assert not summary.failed and summary.stopped is None
    # the trial's line says why it is FAIL: the stale check's reason, not the refused write's
    shown = CliRunner().invoke(
        app, ["trials", "--study-name", shared_study.name, "--storage", shared_study.url]
    )
    assert shown.exit_code == 0, shown.output
    [line] = [row for row in shown.output.splitlines() if row.startswith("│ 0 │")]
    assert "│ fail " in line and line.endswith(
        "stale: no heartbeat for 60 s (its worker died, or lost the storage) │"
    )


@pytest.mark.parametrize("first", ["owner", "resume"])
def test_a_result_kept_as_a_resume_queues_its_interrupted_retry_again_holds_the_point_once(
    shared_study: SharedStudy, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    # The live owner of trial #0, failed as stale, finished it as another worker's retry of it (#1) was
    # interrupted: no retry left, it kept its result as a new trial. A resume at that moment read the trials
    # before the kept one was there and queued #1's values again: the point was held twice (the kept result,
    # and a retry that runs it again). Now the owner claims #1's requeue as the resume does (an insert the
    # database lets one process make): one of the two holds the point.

    from hpotool import kept_results
    from hpotool.failed_trials import fail_trial
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.resume import _queue_interrupted_points
    from hpotool.trial_run import run_trial

    study, (other, backend) = shared_study.study, shared_study.seen_by_a_stale_check()
    trial = ask_with_heartbeat(study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        backend.record_heartbeat(trial._trial_id)
        assert fail_stale_trials(other) == [0]  # and queues #1 to run x again
        taken = ask_with_heartbeat(other)  # another worker takes #1 up, and Ctrl-C interrupts it
        assert fail_trial(other._storage, taken._trial_id, "interrupted")
        return 0.25

    real_create, real_claim = study._storage.create_new_trial, kept_results.claim
    resumed: list[bool] = []

    def resume_as_it_keeps(study_id: int, template_trial: Any = None) -> int:
        if template_trial is not None and not resumed:  # the result, kept as a new trial
            resumed.append(_queue_interrupted_points(other))  # a resume, at that very moment
        return real_create(study_id, template_trial=template_trial)

    def resume_as_it_claims(study: optuna.Study, key: str) -> bool:
        if study is not other:  # the owner, about to claim #1's requeue: a resume claims it first, queues #2
            monkeypatch.setattr(kept_results, "claim", real_claim)
            resumed.append(_queue_interrupted_points(other))
        return real_claim(study, key)

    if first == "owner":
        monkeypatch.setattr(study._storage, "create_new_trial", resume_as_it_keeps)
    else:
        monkeypatch.setattr(kept_results, "claim", resume_as_it_claims)
    run_trial(study, trial, objective)
    trials = shared_study.stored().trials
    holders = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)]
    # before: two, the kept result (COMPLETE, result_of: 0) and #1's values queued again (WAITING)
    assert resumed == [first == "resume"] and len(holders) == 1
    assert holders[0].state == TrialState.COMPLETE and holders[0].user_attrs["result_of"] == 0
    if first == "resume":  # the owner's result fills the retry the resume queued
        assert holders[0].number == 2 and holders[0].user_attrs["retry_of"] == 1


def test_a_dead_local_worker_s_retry_counts_on_the_stale_retries_before_it(tmp_path: Path) -> None:
    # A trial failed as stale was queued again with Optuna's retry count (retry_history), but a retry whose
    # worker of this machine died was queued with `retry_of` alone: the count started afresh there, so a
    # point whose workers kept dying, by turns stale and local, was queued again and again. Now the local
    # retry carries the count on, and a point runs at most MAX_RETRY times more, deaths of both kinds.
    import socket
    import warnings

    from hpotool.dead_trials import fail_dead_local_trials
    from hpotool.heartbeat import retry_stale_trial
    from hpotool.storage_settings import MAX_RETRY

    assert MAX_RETRY == 2
    study = optuna.create_study(study_name="s", storage=make_storage(f"journal:{tmp_path / 's.log'}"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = study.ask()
        first.suggest_float("x", 0, 1)
        study.tell(first, state=TrialState.FAIL)  # as a stale check does
        retry_stale_trial(study, study.trials[0])
        stale_retry = study.ask()  # its first retry; its worker, of this machine, dies
        stale_retry.set_user_attr("worker", {"host": socket.gethostname(), "pid": int(gone.stdout)})
        assert fail_dead_local_trials(study) == [1]
        [local_retry] = study.get_trials(states=(TrialState.WAITING,))
        assert local_retry.user_attrs == {"retry_of": 1}
        assert local_retry.system_attrs["retry_history"] == [0, 1]  # before: none
        assert local_retry.system_attrs["failed_trial"] == 0
        last = study.ask()  # its second retry, failed as stale in turn
        study.tell(last, state=TrialState.FAIL)
        retry_stale_trial(study, study.trials[2])
    assert not study.get_trials(states=(TrialState.WAITING,))  # before: a third retry
    assert {t.system_attrs.get("fixed_params", t.params)["x"] for t in study.trials} == {first.params["x"]}


@pytest.mark.parametrize("learned_at", ["report", "history"])
def test_a_trial_failed_as_stale_during_its_last_epoch_keeps_its_result_in_the_retry(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    shared_study: SharedStudy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    learned_at: str,
) -> None:
    # A live worker's trial failed as stale by another process's look while it trained its last epoch: the
    # worker had its final value, but its next write the storage refused (the epoch's report, written at once
    # when a second has passed since the last one, or else its history) was taken for a failure of its
    # training, so the study kept the trial FAIL and ran its values a second time in the retry the look
    # queued. Now the worker finishes the run and its result fills that retry.
    from hpotool import objective
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.plan import prepare_study
    from hpotool.rdb import FLUSH_S
    from hpotool.study_run import run_study

    other, backend = shared_study.seen_by_a_stale_check()
    real_train_run = objective.train_run
    runs: list[list[float]] = []  # the val_loss of each epoch, per run of the values
    failed: list[int] = []

    def taken_for_dead_during_its_last_epoch(
        cfg: Any, *, on_epoch_end: Any, history: Any, **rest: Any
    ) -> Any:
        runs.append([])

        def ended(result: Any) -> None:
            if not failed and result.epoch + 1 == cfg.epochs:  # the last epoch trained, not yet reported
                [running] = other.get_trials(states=(TrialState.RUNNING,))
                backend.record_heartbeat(running._trial_id)
                failed.extend(fail_stale_trials(other))  # and queues its values again
                if learned_at == "report":
                    time.sleep(FLUSH_S + 0.1)  # the report is written at once, and refused
            runs[-1].append(result.metrics["val_loss"])
            on_epoch_end(result)

        return real_train_run(cfg, on_epoch_end=ended, history=history, **rest)

    monkeypatch.setattr(objective, "train_run", taken_for_dead_during_its_last_epoch)
    opt_dict["constraints"] = ["n_params <= 100000"]
    summary = run_study(
        prepare_study(*shared_study.one_trial_configs(tmp_path, run_dict, opt_dict)), max_failures=1
    )
    assert failed == [0] and "trial #0 was ended as FAIL (stale: no heartbeat" in caplog.text
    first, retry = shared_study.stored().trials
    assert first.state == TrialState.FAIL
    assert retry.system_attrs["constraints:n_params <= 100000"] < 0 and retry.user_attrs["feasible"]
    # before: the values ran twice, and the retry held the second run's value
    assert len(runs) == 1 and len(runs[0]) == run_dict["epochs"]
    assert retry.state == TrialState.COMPLETE and retry.value == runs[0][-1]
    assert retry.user_attrs["result_of"] == 0 and retry.params == first.params
    assert retry.intermediate_values == dict(enumerate(runs[0]))
    assert retry.user_attrs["epochs_run"] == run_dict["epochs"] and len(retry.user_attrs["history"]) == 2
    assert "hpotool:seconds" in retry.system_attrs
    assert "ran it to COMPLETE: its result is kept as trial #1 (result_of: 0)" in caplog.text
    assert not summary.failed and summary.stopped is None


# A user's training function whose last epoch's loss is NaN: the trial ends PRUNED at that epoch.
NAN_AT_THE_END_FIT = """
def fit(config, report):
    for epoch in range(config["epochs"]):
        last = epoch + 1 == config["epochs"]
        metrics = {"val_loss": float("nan") if last else config["trainer"]["x"] + 1}
        report(epoch, metrics)
    return metrics
"""


def test_a_trial_failed_as_stale_as_its_last_epoch_prunes_it_keeps_its_pruned_result_in_the_retry(
    tmp_path: Path,
    shared_study: SharedStudy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A live worker's trial failed as stale by another process's look while it trained its last epoch, whose
    # loss was NaN: the trial ended PRUNED here, but the write of its prune reason, refused, was taken for a
    # failure of its training, so the study kept it FAIL and its values ran again in the retry the look
    # queued. Now its PRUNED result (its last finite report) fills that retry.
    from hpotool import objective
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.plan import prepare_study
    from hpotool.study_run import run_study

    (tmp_path / "nan_at_the_end.py").write_text(NAN_AT_THE_END_FIT)
    run = {"project": "nan", "epochs": 2, "trainer": {"function": "nan_at_the_end:fit", "x": 0.5}}
    _write_configs(tmp_path, run, shared_study.name, 1, shared_study.url)
    other, backend = shared_study.seen_by_a_stale_check()
    real_train_run = objective.train_run
    runs: list[int] = []
    failed: list[int] = []

    def taken_for_dead_during_its_last_epoch(
        cfg: Any, *, on_epoch_end: Any, history: Any, **rest: Any
    ) -> Any:
        runs.append(len(runs))

        def ended(result: Any) -> None:
            on_epoch_end(result)
            if not failed and result.epoch + 2 == cfg.epochs:  # the last epoch starts (its NaN is no report)
                [running] = other.get_trials(states=(TrialState.RUNNING,))
                backend.record_heartbeat(running._trial_id)
                failed.extend(fail_stale_trials(other))  # and queues its values again

        return real_train_run(cfg, on_epoch_end=ended, history=history, **rest)

    monkeypatch.setattr(objective, "train_run", taken_for_dead_during_its_last_epoch)
    summary = run_study(prepare_study(tmp_path / "run.yaml", tmp_path / "optimize.yaml"), max_failures=1)
    assert failed == [0]
    first, retry = shared_study.stored().trials
    # before: the values ran twice, and the retry held the second run's result
    assert runs == [0] and first.state == TrialState.FAIL
    assert retry.state == TrialState.PRUNED and retry.user_attrs["result_of"] == 0
    assert retry.params == first.params and retry.intermediate_values == {0: first.params["trainer.x"] + 1}
    assert (
        retry.user_attrs["prune_reason"].startswith("val_loss") and "nan" in retry.user_attrs["prune_reason"]
    )
    assert "ran it to PRUNED: its result is kept as trial #1 (result_of: 0)" in caplog.text
    assert not summary.failed and summary.stopped is None


@pytest.mark.parametrize("first", ["owner", "stale check"])
def test_a_result_told_as_a_stale_check_fails_its_trial_holds_the_values_once(
    shared_study: SharedStudy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, first: str
) -> None:
    # A live worker told its result just as another process's stale check failed the trial, before that check
    # queued the values' retry: finding none, the worker kept its result as a new trial, then the check
    # queued the retry, which ran the values a second time (one trial over n_trials). Now the two claim the
    # values' next run (`hpotool:retried:0`): where the worker claims first, the check queues no retry; where
    # the check does, the worker waits for its retry and fills it.

    from hpotool import claims, heartbeat, kept_results, trial_run
    from hpotool.heartbeat import fail_stale_trials

    study, (other, backend) = shared_study.study, shared_study.seen_by_a_stale_check()
    trial = ask_with_heartbeat(study)
    failed, kept, looked = threading.Event(), threading.Event(), threading.Event()
    real_retry, real_keep, real_retries_of = (
        heartbeat.retry_stale_trial,
        trial_run.keep_result,
        kept_results._retries_of,
    )
    real_add = other.add_trial
    real_claim = claims.claim

    def retry_after_the_owner_kept(study: optuna.Study, trial: FrozenTrial) -> None:
        if first == "owner":
            failed.set()  # the FAIL has landed
            kept.wait(120)  # the owner keeps its result first (the bound a hang guard)
        real_retry(study, trial)

    def claim_then_let_the_owner_tell(study: optuna.Study, key: str) -> bool:  # the check claims first
        try:
            return real_claim(study, key)
        finally:
            failed.set()  # the FAIL has landed, and the check's claim

    def add_once_the_owner_looked(trial: FrozenTrial) -> None:  # after the check's claim, before its retry
        looked.wait(120)
        real_add(trial)

    def keep(*args: Any) -> int | None:
        try:
            return real_keep(*args)
        finally:
            kept.set()

    def retries_of(*args: Any) -> list[FrozenTrial]:
        if calls:
            looked.set()  # the owner lost the claim and looks for the retry again
        calls.append(1)
        return real_retries_of(*args)

    calls: list[int] = []
    monkeypatch.setattr(heartbeat, "retry_stale_trial", retry_after_the_owner_kept)
    monkeypatch.setattr(trial_run, "keep_result", keep)
    monkeypatch.setattr(kept_results, "_retries_of", retries_of)
    if first == "stale check":
        monkeypatch.setattr(other, "add_trial", add_once_the_owner_looked)
        monkeypatch.setattr(
            claims, "claim", claim_then_let_the_owner_tell
        )  # as `retry_stale_trial` imports it
    check = threading.Thread(target=lambda: fail_stale_trials(other))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        backend.record_heartbeat(trial._trial_id)
        check.start()
        assert failed.wait(120)  # its FAIL lands as the result is told
        return 0.25

    ran = trial_run.run_trial(study, trial, objective)
    check.join(60)
    trials = shared_study.stored().trials
    holders = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)]
    # before: two, the kept result (COMPLETE, result_of: 0) and the retry queued after it (WAITING)
    assert len(holders) == 1 and holders[0]._trial_id == ran.kept
    assert holders[0].state == TrialState.COMPLETE and holders[0].value == 0.25
    assert holders[0].user_attrs["result_of"] == 0 and holders[0].params == trials[0].params
    if first == "stale check":  # the retry the check queued holds the result
        assert holders[0].system_attrs["retry_history"] == [0]
    assert f"its result is kept as trial #{holders[0].number} (result_of: 0)" in caplog.text


# A user's training function whose last epoch waits for the file `go` (the test fails its trial meanwhile),
# and that notes each run of its values in runs.log as it starts.
WAITS_IN_ITS_LAST_EPOCH_FIT = """
import os
import time


def fit(config, report):
    with open("runs.log", "a") as f:
        f.write(f"{config['trainer']['x']}\\n")
    for epoch in range(config["epochs"]):
        if epoch + 1 == config["epochs"]:
            open("last_epoch", "w").close()
            for _ in range(1200):
                if os.path.exists("go"):
                    break
                time.sleep(0.05)
        metrics = {"val_loss": config["trainer"]["x"] + 1.0 / (epoch + 1)}
        report(epoch, metrics)
    return metrics
"""


def test_fail_stale_run_during_a_live_workers_last_epoch_leaves_its_values_run_once(tmp_path: Path) -> None:
    # Two processes: `hpotool optimize`, whose heartbeat goes unseen for longer than the grace period (a beat
    # every 60 s, a grace of 1 s), and `hpotool fail-stale` run during its trial's last epoch, which fails the
    # trial and queues its values again. The worker's last report was refused and taken for a failure of its
    # training: the trial stayed FAIL and the retry trained the values a second time. Now the worker keeps
    # its result in that retry, and the values are trained once.
    (tmp_path / "waits.py").write_text(WAITS_IN_ITS_LAST_EPOCH_FIT)
    url = f"sqlite:///{tmp_path / 's.db'}"
    _write_configs(
        tmp_path,
        {"project": "waits", "epochs": 2, "trainer": {"function": "waits:fit", "x": 0.5}},
        "s",
        1,
        url,
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}",
        "COLUMNS": "300",
        "HPOTOOL_HEARTBEAT_INTERVAL": "60",
        "HPOTOOL_HEARTBEAT_GRACE": "1",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(lambda: (tmp_path / "last_epoch").exists() or run.poll() is not None, timeout=120)
        assert run.poll() is None
        for _ in range(30):  # until its heartbeat, beaten as the trial started, is past the grace period
            stale = subprocess.run(
                [sys.executable, "-m", "hpotool", "fail-stale", "--study-name", "s", "--storage", url],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if "marked 1 stale trial FAIL: #0" in stale.stdout:
                break
            time.sleep(0.5)
        assert "marked 1 stale trial FAIL: #0" in stale.stdout, stale.stdout + stale.stderr
        (tmp_path / "go").touch()
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, stdout + stderr
    first, retry = optuna.load_study(study_name="s", storage=url).trials
    # before: two lines, the retry's run of the values after the first one's
    assert (tmp_path / "runs.log").read_text().splitlines() == [str(first.params["trainer.x"])]
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"].startswith(
        "stale: no heartbeat"
    )
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["result_of"] == 0
    assert retry.value == first.params["trainer.x"] + 0.5 and retry.intermediate_values == {
        0: first.params["trainer.x"] + 1.0,
        1: first.params["trainer.x"] + 0.5,
    }
    assert "its result is kept as trial #1 (result_of: 0)" in stderr
    # before: "note: 1 trial failed; the last, #0: stale: ...", and nothing of the result kept
    assert (
        "note: 1 trial failed; the last, #0: stale: no heartbeat for 1 s (its worker died, or lost the "
        "storage); its worker was alive and kept its result in #1; hpotool trials"
    ) in " ".join(stderr.split())


def test_a_result_whose_values_another_process_claimed_to_queue_but_never_did_is_not_kept_twice(
    shared_study: SharedStudy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The stale check that failed a live worker's trial claimed to queue its values again, then ended before
    # it queued them (killed, its storage gone). The worker, which lost that claim, waits for the retry to
    # fill it and, where none comes, keeps no trial of its own: the check may still queue it.

    from hpotool import kept_results
    from hpotool.claims import RETRIED, claim
    from hpotool.failed_trials import fail_trial
    from hpotool.trial_run import run_trial

    monkeypatch.setattr(kept_results, "RETRY_WAIT_S", 0.5)
    study, other = shared_study.study, shared_study.seen_by_other()
    trial = ask_with_heartbeat(study)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        assert fail_trial(other._storage, trial._trial_id, "stale: no heartbeat")
        assert claim(other, f"{RETRIED}0")  # and it ends before its retry is queued
        return 0.25

    ran = run_trial(study, trial, objective)
    assert ran.kept is None and [t.state for t in shared_study.stored().trials] == [TrialState.FAIL]
    assert (
        "its result is not kept, as another process claimed to queue its values again (hpotool:retried:0), "
        "and their trial was not there after 0.5 s" in caplog.text
    )


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_fail_stale_all_running_ending_the_retry_a_result_fills_leaves_its_values_queued_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # `hpotool fail-stale --all-running` (storages without a heartbeat) failed a live worker's trial, and
    # the worker filled the retry queued for its values with its result; a second look failed that retry
    # too, as it was RUNNING while the worker filled it. The worker's next write was refused and Optuna's
    # UpdateFinishedTrialError left the run as a traceback. Now the worker says in one line that its result
    # is not kept, the retry stays FAIL with the other process's reason, and its values run again in the
    # retry that process queued (which claims no result: `result_of` is a run's, not its values').

    from hpotool.heartbeat import fail_stale_trials
    from hpotool.trial_run import run_trial

    url = f"journal:{tmp_path / 's.log'}" if kind == "journal" else f"sqlite:///{tmp_path / 's.db'}"
    mine = make_storage(url)
    study = optuna.create_study(study_name="s", storage=mine)
    other = optuna.load_study(study_name="s", storage=make_storage(url))  # `fail-stale`'s process
    trial = ask_with_heartbeat(study)
    looks: list[list[int]] = []
    real_set_user_attr = mine.set_trial_user_attr

    def second_look_as_the_retry_is_filled(trial_id: int, key: str, value: Any) -> None:
        real_set_user_attr(trial_id, key, value)
        if trial_id != trial._trial_id and len(looks) == 1:  # the retry's first write lands first
            looks.append(fail_stale_trials(other, every_running=True))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        looks.append(fail_stale_trials(other, every_running=True))  # and queues its values again
        monkeypatch.setattr(mine, "set_trial_user_attr", second_look_as_the_retry_is_filled)
        return 0.25

    ran = run_trial(study, trial, objective)  # before: UpdateFinishedTrialError
    assert looks == [[0], [1]] and ran == (None, False)
    first, retry, again = optuna.load_study(study_name="s", storage=make_storage(url)).trials
    assert first.state == retry.state == TrialState.FAIL
    assert retry.user_attrs["fail_reason"] == "stale: marked failed by fail-stale"
    assert again.state == TrialState.WAITING and again.system_attrs["retry_history"] == [0, 1]
    assert again.params == first.params and "result_of" not in again.user_attrs
    warned = [r.getMessage() for r in caplog.records if "#0" in r.getMessage()]
    assert warned == [
        "warning: trial #0 was ended as FAIL (stale: marked failed by fail-stale) by another process while "
        "this one ran it to COMPLETE: its result is not kept, as another process ended trial #1, the retry "
        "queued for its values, as FAIL (stale: marked failed by fail-stale) too as this one kept it there; "
        "its values run again where that process queued them"
    ]


def test_the_summary_says_where_live_workers_kept_the_results_of_its_failed_trials(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A trial failed as stale whose live worker kept its result in another trial: the summary's note said
    # only "1 trial failed; the last, #0: stale ...", as if its values had failed, though they completed in
    # that trial. Now the note says where each such trial's result was kept.
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from hpotool.plan import prepare_study
    from hpotool.summary import summarize

    opt_dict["storage"] = f"sqlite:///{tmp_path / 's.db'}"
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study = optuna.create_study(study_name="tiny", storage=opt_dict["storage"], direction="maximize")
    lr = {"optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True)}

    def add(state: TrialState, user_attrs: dict[str, Any], value: float | None = None) -> None:
        study.add_trial(
            create_trial(
                state=state,
                params={"optimizer.lr": 0.01},
                distributions=lr,
                user_attrs=user_attrs,
                value=value,
            )
        )

    stale = "stale: no heartbeat for 60 s (its worker died, or lost the storage)"
    add(TrialState.FAIL, {"fail_reason": stale})  # 0
    add(TrialState.COMPLETE, {"result_of": 0}, 0.5)  # 1
    where = f"hpotool trials --study-name tiny --storage {opt_dict['storage']} --state fail lists them"
    assert summarize(study, plan, 2, 1.0).extra["failures"] == (
        f"1 trial failed; the last, #0: {stale}; its worker was alive and kept its result in #1; {where}"
    )
    add(TrialState.FAIL, {"fail_reason": "RuntimeError: out of memory"})  # 2
    add(TrialState.FAIL, {"fail_reason": "stale: marked failed by fail-stale"})  # 3
    add(TrialState.PRUNED, {"result_of": 3})  # 4
    add(TrialState.FAIL, {"fail_reason": "interrupted"})  # 5
    assert summarize(study, plan, 6, 1.0).extra["failures"] == (
        "4 trials failed (kept by live workers: #0's result in #1, #3's result in #4); the last, #5: "
        f"interrupted; {where}"
    )


# The start of an `hpotool optimize` run as if on another machine (`machine-b.example`), whose process is
# killed (SIGKILL, as a machine lost or an OOM kill) between recording its trial's owner and that trial's
# first heartbeat.
DIES_BEFORE_THE_FIRST_HEARTBEAT = """
import os, signal, socket
socket.gethostname = lambda: "machine-b.example"
import optuna.storages._heartbeat
optuna.storages._heartbeat.get_heartbeat_thread = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_trial_whose_process_on_another_machine_died_before_its_first_heartbeat_frees_its_slot(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    shared_study: SharedStudy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It stayed RUNNING for good: the owner check leaves another machine's trials alone, the heartbeat's
    # found no heartbeat to be stale, and the check for trials without an owner skipped it (it has one). It
    # held the study's one slot, and the next run waited for it until its timeout, its warm start never run.
    from .test_workers import _hpotool

    opt_dict.update(timeout=40, enqueue=[{"optimizer.lr": 0.05}])
    run, opt = shared_study.one_trial_configs(tmp_path, run_dict, opt_dict)
    args = ["optimize", "-r", str(run), "-o", str(opt), "-q"]
    dies = _hpotool(args, tmp_path, before=DIES_BEFORE_THE_FIRST_HEARTBEAT)
    output, _ = dies.communicate(timeout=120)
    assert dies.returncode == -signal.SIGKILL, output
    [dead] = shared_study.stored().trials
    assert dead.state == TrialState.RUNNING and dead.user_attrs["worker"]["host"] == "machine-b.example"
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "2")
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_INTERVAL", "1")
    _in_this_process(args)
    dead, retry = shared_study.stored().trials
    assert dead.state == TrialState.FAIL, dead.state
    assert dead.user_attrs["fail_reason"] == (
        f"abandoned: its process (machine-b.example, pid {dies.pid}) ended before the trial's first heartbeat"
    )
    assert retry.state == TrialState.COMPLETE and retry.params == {"optimizer.lr": 0.05}
    assert retry.user_attrs["retry_of"] == 0


# A user's dataset reading a CSV file its data section names (`path:`), as machines sharing a study read each
# their own copy of it.
ROWS_DATA = """
import numpy as np


def load(path):
    rows = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return rows[:, :-1], rows[:, -1].astype(np.int64)
"""


def _machine(tmp_path: Path, name: str, rows: str, data_path: str, storage: str) -> tuple[Path, list[str]]:
    """A machine's folder, tmp_path/NAME, with its own copy of the data (data/rows.csv holding `rows`) and of
    the configs, whose data section reads `data_path`; and the `optimize` arguments that run it there."""
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "rows.csv").write_text(rows)
    run = {
        "seed": 0,
        "device": "cpu",
        "torch_threads": 1,
        "data": {"name": "rows_data:load", "path": data_path},
        "model": {"name": "mlp", "hidden": [4]},
        "epochs": 1,
        "batch_size": 8,
    }
    opt = {
        "study_name": "rows",
        "seed": 0,
        "metric": "val_loss",
        "direction": "minimize",
        "storage": storage,
        "sampler": {"name": "random"},
        "search_space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    paths = write_configs(folder, run, opt)
    return folder, ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "--n-trials"]


def _rows(flip: int | None = None) -> str:
    """40 rows of 3 features and a class; `flip`: that row's class the other one (another version of the file)."""
    lines = []
    for i in range(40):
        label = i % 2 if i != flip else 1 - i % 2
        lines.append(f"{i / 40:.3f},{(i * 7 % 40) / 40:.3f},{label + 0.1 * (i % 3):.3f},{label}")
    return "\n".join(lines) + "\n"


def test_a_machine_whose_data_file_holds_other_rows_is_refused_naming_its_data_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Machines sharing a study compared their configs only: one whose file at the same path held other rows
    # (an older copy, another preprocessing) joined silently and mixed trials on other data into the study.
    (tmp_path / "rows_data.py").write_text(ROWS_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first, args = _machine(tmp_path, "m1", _rows(), "data/rows.csv", storage)
    other, other_args = _machine(tmp_path, "m2", _rows(flip=5), "data/rows.csv", storage)
    monkeypatch.chdir(first)
    _in_this_process([*args, "1", "-q"])
    monkeypatch.chdir(other)
    refused = _in_this_process([*other_args, "2", "-q"], exit_code=2)
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(
        f"error: {other / 'run.yaml'}: data (rows_data:load, path: data/rows.csv): the data read here (40 samples, "
        "sha256 "
    ), refused.stderr
    assert "is not the data study 'rows' was created with (40 samples, sha256 " in refused.stderr
    assert refused.stderr.rstrip().endswith(
        "copy the study's data here so every machine trains on the same, use a new study_name, or pass "
        "--allow-changed-config to go on anyway"
    ), refused.stderr
    assert len(optuna.load_study(study_name="rows", storage=storage).trials) == 1
    # The flag goes on with this data, and says so; the first machine's data is then the other one
    with caplog.at_level("WARNING", logger="hpotool"):
        _in_this_process([*other_args, "2", "-q", "--allow-changed-config"])
    assert "--allow-changed-config recorded other data (40 samples, sha256 " in caplog.text, caplog.text
    assert len(optuna.load_study(study_name="rows", storage=storage).trials) == 2
    monkeypatch.chdir(first)
    # not the data it "was created with": the data recorded with the flag, from the trial it ran
    refused = _in_this_process([*args, "3", "-q"], exit_code=2).stderr
    assert "is not the data study 'rows' has trained on since trial #1 (40 samples, sha256 " in refused, (
        refused
    )


def test_a_study_made_before_its_data_was_digested_keeps_the_digest_from_the_next_trial_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An older hpotool stored no digest of the data: the first run after the upgrade stored its own without a
    # word, as the data the study "was created with", and a machine with the data the earlier trials had read
    # was then refused as holding other data than the study was created with.
    import sqlite3

    (tmp_path / "rows_data.py").write_text(ROWS_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first, args = _machine(tmp_path, "m1", _rows(), "data/rows.csv", storage)
    other, other_args = _machine(tmp_path, "m2", _rows(flip=5), "data/rows.csv", storage)
    monkeypatch.chdir(first)
    _in_this_process([*args, "1", "-q"])
    with contextlib.closing(sqlite3.connect(tmp_path / "shared.db")) as db, db:  # as an older hpotool left it
        db.execute("DELETE FROM study_user_attributes WHERE key = 'data_digest'")
    monkeypatch.chdir(other)
    with caplog.at_level("WARNING", logger="hpotool"):
        _in_this_process([*other_args, "2", "-q"])
    assert (
        "note: study 'rows' kept no digest of its data (an older hpotool made it): it keeps this run's (40 "
        "samples, sha256 "
    ) in caplog.text, caplog.text
    assert (
        "from trial #1 on, and commands that train its trials compare theirs with it; what the trial before "
        "read is not known"
    ) in caplog.text, caplog.text
    monkeypatch.chdir(first)
    refused = _in_this_process([*args, "3", "-q"], exit_code=2).stderr
    assert "is not the data study 'rows' has trained on since trial #1 (40 samples, sha256 " in refused, (
        refused
    )
    assert len(optuna.load_study(study_name="rows", storage=storage).trials) == 2


def test_a_machine_reading_the_study_s_data_from_another_path_joins_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The same file at another path on the second machine (`/mnt/b/data/rows.csv` for `data/rows.csv`) was
    # refused as another experiment, telling to start a new study or to pass --allow-changed-config, which is
    # refused while the first machine runs the study: machines whose data lay at different paths could not
    # share one. The data read is the same: it joins, with a note, and the study keeps its creator's configs.
    (tmp_path / "rows_data.py").write_text(ROWS_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first, args = _machine(tmp_path, "m1", _rows(), "data/rows.csv", storage)
    elsewhere = tmp_path / "m2" / "data" / "rows.csv"
    other, other_args = _machine(tmp_path, "m2", _rows(), str(elsewhere), storage)
    monkeypatch.chdir(first)
    _in_this_process([*args, "1", "-q"])
    monkeypatch.chdir(other)
    with caplog.at_level("WARNING", logger="hpotool"):  # the run config as this machine's user gives it
        _in_this_process(["optimize", "-r", "run.yaml", *other_args[3:], "2", "-q"])
    # it named no file (`data.path: ...`), where the refusal of a changed experiment names `run.yaml: epochs: ...`
    assert (
        f'note: study \'rows\': run.yaml: data.path: "data/rows.csv" -> "{elsewhere}", and the data read here '
        "is the study's (40 samples, sha256 "
    ) in caplog.text, caplog.text
    study = optuna.load_study(study_name="rows", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.user_attrs["run_config"]["data"]["path"] == "data/rows.csv"
    # Other rows at another path are still other data
    third, third_args = _machine(
        tmp_path, "m3", _rows(flip=3), str(tmp_path / "m3" / "data" / "rows.csv"), storage
    )
    monkeypatch.chdir(third)
    assert "is not the data study 'rows'" in _in_this_process([*third_args, "3", "-q"], exit_code=2).stderr


def test_a_machine_with_other_versions_than_the_study_s_creator_says_so(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A machine with another Optuna, torch or hpotool than the machine that created the study joined it
    # without a word; its trials may differ in what the versions changed (torch's numerics, a sampler's).
    opt_dict["n_trials"] = 1
    run, opt = write_configs(tmp_path, {**run_dict, "epochs": 1}, opt_dict)
    args = ["optimize", "-r", str(run), "-o", str(opt), "-q"]
    _in_this_process(args)
    study = optuna.load_study(study_name=opt_dict["study_name"], storage=opt_dict["storage"])
    here = study.user_attrs["versions"]
    with caplog.at_level("WARNING", logger="hpotool"):
        _in_this_process([*args, "--n-trials", "2"])
    assert "versions" not in caplog.text, caplog.text  # the same versions: nothing to say
    study.set_user_attr(
        "versions", {**here, "optuna": "3.6.1", "torch": f"{here['torch'].split('+')[0]}+cu999"}
    )
    with caplog.at_level("WARNING", logger="hpotool"):
        _in_this_process([*args, "--n-trials", "3"])
    assert (
        f"note: study 'tiny' was created with optuna 3.6.1, {here['optuna']} here: the trials run with these "
        "versions may differ from those run with the study's in what the versions changed (said on the first "
        "run with them only); to keep them alike, install the study's (pip install optuna==3.6.1)"
    ) in caplog.text, caplog.text


def test_a_study_resumed_after_an_upgrade_is_told_of_the_other_versions_once(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hpotool import study as study_module

    # A study created before an upgrade (of Optuna, torch or hpotool) was told on every resume, for good, that
    # its trials may differ from the creator's and to install the creator's versions: long after the upgraded
    # versions had run most of its trials, where installing the old ones would mix in a third set. Said on
    # the first run with the new versions; again when the versions change once more.
    opt_dict["n_trials"] = 1
    run, opt = write_configs(tmp_path, {**run_dict, "epochs": 1}, opt_dict)
    args = ["optimize", "-r", str(run), "-o", str(opt), "-q"]
    _in_this_process(args)
    study = optuna.load_study(study_name=opt_dict["study_name"], storage=opt_dict["storage"])
    here = study.user_attrs["versions"]
    study.set_user_attr("versions", {**here, "optuna": "4.0.0", "torch": "2.5.1+cu121"})  # as created before
    notes = []
    for n_trials in (2, 3):
        caplog.clear()
        with caplog.at_level("WARNING", logger="hpotool"):
            _in_this_process([*args, "--n-trials", str(n_trials)])
        notes.append([r.getMessage() for r in caplog.records if "was created with" in r.getMessage()])
    assert [len(n) for n in notes] == [1, 0], notes
    assert notes[0][0].startswith(
        f"note: study 'tiny' was created with optuna 4.0.0, {here['optuna']} here; torch 2.5.1+cu121, "
        f"{here['torch']} here: "
    ), notes
    assert notes[0][0].endswith("(pip install optuna==4.0.0 torch==2.5.1)"), notes
    # torch upgraded once more here: another set of versions, said again
    monkeypatch.setattr(study_module, "versions", lambda: {**here, "torch": "2.99.0+cpu"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="hpotool"):
        _in_this_process([*args, "--n-trials", "4"])
    assert "torch 2.5.1+cu121, 2.99.0+cpu here: " in caplog.text, caplog.text
    assert len(optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials) == 4


def test_a_data_section_changed_other_than_where_it_reads_is_still_another_experiment(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Only a changed path is read as where a machine keeps the data: a fraction, another dataset, is a change of
    # the experiment, refused naming it as before the data's digest was kept.
    opt_dict["n_trials"] = 1
    run, opt = write_configs(tmp_path, {**run_dict, "epochs": 1}, opt_dict)
    _in_this_process(["optimize", "-r", str(run), "-o", str(opt), "-q"])
    run_dict["data"] = {**run_dict["data"], "subset_fraction": 0.2}
    run, opt = write_configs(tmp_path, {**run_dict, "epochs": 1}, opt_dict)
    refused = _in_this_process(
        ["optimize", "-r", str(run), "-o", str(opt), "-q", "--n-trials", "2"], exit_code=2
    )
    assert refused.stderr.startswith(
        f"error: study 'tiny' was created with another experiment: {run}: data.subset_fraction: 0.1 -> 0.2. "
    ), refused.stderr
