"""The commands that read a study (trials, export-best, report, studies, train-from-best) against a Redis
journal whose server fails while they read it: killed, frozen, emptied, or a key of the journal written over
by another program. Each ends in one line and exit code 2, naming the fix, and writes nothing. One Redis
server of this module's own, on a free port, holds a study of 300 trials; a relay in front of it acts as
the command asks for a log in the middle of the journal (`_Trap`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

import hpotool
from hpotool.cli import app

PREFIX = "reads"
STUDY = "s"


class _Server:
    """A redis-server of this module's own on `port`, which a test may kill, freeze or empty; `restore`
    puts it back as the module built it, running and holding `keys`."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("HPOTOOL_REQUIRE_SERVERS") == "1":
                pytest.fail("HPOTOOL_REQUIRE_SERVERS=1 but redis-server is not installed")
            pytest.skip("redis-server is not installed")
        with socket.create_server(("127.0.0.1", 0)) as free:
            self.port = free.getsockname()[1]
        self.command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(folder),
        ]
        self.keys: dict[bytes, bytes] = {}
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        import redis

        proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for attempt in range(600):  # it answers within ~0.1 s
            try:
                self.client().ping()
                return proc
            except redis.exceptions.ConnectionError:
                if attempt == 599 or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=5, socket_timeout=30)

    def restore(self) -> None:
        self.proc.send_signal(signal.SIGCONT)  # a frozen one
        if self.proc.poll() is not None:
            self.proc = self._start()
        client = self.client()
        client.flushall()
        client.mset(self.keys)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Trap:
    """A TCP relay to the server that runs `action` once, as a command asks for the key `trigger` (then
    passes the request on), and closes for good where `action` returns True (the server gone: new
    connections refused)."""

    def __init__(self, port: int, trigger: str, action: Callable[[], bool]) -> None:
        self.target = ("127.0.0.1", port)
        self.trigger = f"{trigger}\r\n".encode()
        self.action = action
        self.fired = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, watched: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if watched and self.trigger in data and not self.fired.is_set():
                    self.fired.set()
                    if self.action():
                        self.close()
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """The module's Redis server, holding study `STUDY` of 300 complete trials under `PREFIX`."""
    from hpotool.config import RunConfig
    from hpotool.storage import make_storage

    own = _Server(tmp_path_factory.mktemp("redis"))
    try:
        storage = make_storage(f"redis://127.0.0.1:{own.port}?prefix={PREFIX}")
        study = optuna.create_study(study_name=STUDY, storage=storage)
        study.set_user_attr("run_config", RunConfig().model_dump(mode="json"))
        lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
        study.add_trials(
            optuna.trial.create_trial(params={"optimizer.lr": v}, distributions={"optimizer.lr": lr}, value=v)
            for v in (1e-4 + i * 3e-4 for i in range(300))
        )
        client = own.client()
        own.keys = {key: client.get(key) for key in client.keys(f"{PREFIX}:*")}
        yield own
    finally:
        own.stop()


@pytest.fixture
def journal(server: _Server) -> _Server:
    """The module's server, as it was built."""
    server.restore()
    return server


def _middle_log(server: _Server) -> str:
    """A log the commands read past Optuna's last snapshot of the journal (at trial 200), a few before
    the end."""
    return f"{PREFIX}:log:{int(server.keys[f'{PREFIX}:log_number'.encode()]) - 20}"


# Each command, and what it would write: a pre-existing output there must be left as it was.
COMMANDS: dict[str, list[str]] = {
    "trials": ["trials", "--study-name", STUDY],
    "export-best": ["export-best", "--study-name", STUDY, "--out", "best"],
    "report": ["report", "--study-name", STUDY, "--out", "r.html"],
    "studies": ["studies"],
    "train-from-best": ["train-from-best", "--study-name", STUDY, "--out", "trained"],
}


def _outputs(folder: Path) -> None:
    """Outputs of an earlier run where the commands write theirs."""
    (folder / "best").mkdir()
    (folder / "best" / "best_run.yaml").write_text("earlier\n")
    (folder / "r.html").write_text("earlier\n")


def _left_as_they_were(folder: Path) -> None:
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "best",
        "best/best_run.yaml",
        "r.html",
    ]
    assert (folder / "best" / "best_run.yaml").read_text() == "earlier\n"
    assert (folder / "r.html").read_text() == "earlier\n"


def _in_process(command: str, url: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`hpotool COMMAND --storage URL` in this process, in `folder`: its exit code and stderr."""
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, [*COMMANDS[command], "--storage", url])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stderr


def _in_a_process_of_its_own(command: str, url: str, folder: Path) -> tuple[int | str, str]:
    """`hpotool COMMAND --storage URL` in a process of its own, in `folder` (this process's hpotool: the
    checkout's, or the one PYTHONPATH gives): its exit code, or "hung" where it had not ended after 120 s
    (killed then), and stderr."""
    src = Path(hpotool.__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpotool", *COMMANDS[command], "--storage", url],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(src)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "hung", proc.communicate()[1]
    return proc.returncode, stderr


def _through(trap: _Trap) -> str:
    return f"redis://127.0.0.1:{trap.port}?prefix={PREFIX}"


def _lost(url: str) -> re.Pattern[str]:
    """The line of a server that stopped answering as the command read the journal: redis-py's words, made
    plain, in brackets."""
    return re.compile(
        rf"error: storage '{re.escape(url)}' stopped answering \([A-Za-z][^()]+\); the study it holds is "
        rf"kept: once the server answers again, run the same command\n"
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_redis_server_killed_as_a_command_reads_the_journal_is_one_line(
    journal: _Server, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "cannot open it: Connection closed by server; is the server on 127.0.0.1:PORT a Redis server (its
    # default port is 6379)? ...": the ping had answered, the server then went away.
    def kill() -> bool:
        journal.proc.kill()
        journal.proc.wait()
        return True  # nothing listens there any more

    trap = _Trap(journal.port, _middle_log(journal), kill)
    _outputs(tmp_path)
    try:
        code, stderr = _in_process(command, _through(trap), tmp_path, monkeypatch)
    finally:
        trap.close()
    assert trap.fired.is_set()
    assert code == 2
    assert _lost(_through(trap)).fullmatch(stderr), stderr
    _left_as_they_were(tmp_path)


def test_a_frozen_redis_server_ends_the_read_after_its_timeout_in_one_line(
    journal: _Server, tmp_path: Path
) -> None:
    # SIGSTOP: the connection stays open and nothing answers. It ended after redis-py's read timeout (5 s),
    # saying "cannot open it: Timeout reading from ...; is the server running on ...?".
    def freeze() -> bool:
        journal.proc.send_signal(signal.SIGSTOP)
        return False

    trap = _Trap(journal.port, _middle_log(journal), freeze)
    _outputs(tmp_path)
    try:
        code, stderr = _in_a_process_of_its_own("export-best", _through(trap), tmp_path)
    finally:
        trap.close()
        journal.proc.send_signal(signal.SIGCONT)
    assert code == 2, stderr
    assert stderr == (
        f"error: storage {_through(trap)!r} stopped answering (Timeout reading from 127.0.0.1:{trap.port}); "
        f"the study it holds is kept: once the server answers again, run the same command\n"
    )
    _left_as_they_were(tmp_path)


@pytest.mark.parametrize("command", ["trials", "report", "studies"])
def test_a_redis_journal_emptied_as_a_command_reads_it_is_one_line_not_a_hang(
    journal: _Server, command: str, tmp_path: Path
) -> None:
    # The server restarted without its data (or FLUSHDB) after the command read the journal's log count:
    # Optuna's reader waited for ever for the logs that count promised.
    def empty() -> bool:
        journal.client().flushall()
        return False

    trap = _Trap(journal.port, _middle_log(journal), empty)
    _outputs(tmp_path)
    try:
        code, stderr = _in_a_process_of_its_own(command, _through(trap), tmp_path)
    finally:
        trap.close()
    shown = _through(trap)
    assert code == 2, stderr
    assert stderr == (
        f"error: storage {shown!r}: its journal went away while this command read it ({_middle_log(journal)} "
        f"and its count {PREFIX}:log_number are gone: the Redis server restarted without its data, or the "
        f"journal's keys were deleted); run the same command to read what it holds now (hpotool studies "
        f"--storage '{shown}' lists its studies)\n"
    )
    _left_as_they_were(tmp_path)


def test_a_log_evicted_from_a_redis_journal_is_named_not_waited_for(journal: _Server, tmp_path: Path) -> None:
    # One log gone, its count still there (evicted under maxmemory-policy allkeys-lru, or deleted): a hang.
    middle = _middle_log(journal)
    journal.client().delete(middle)
    url = f"redis://127.0.0.1:{journal.port}?prefix={PREFIX}"
    _outputs(tmp_path)
    code, stderr = _in_a_process_of_its_own("report", url, tmp_path)
    assert code == 2, stderr
    count = int(journal.keys[f"{PREFIX}:log_number".encode()]) + 1
    assert stderr == (
        f"error: storage {url!r}: its journal's key {middle!r} is gone, though {PREFIX}:log_number counts "
        f"{count} logs (deleted, or evicted: a maxmemory-policy other than noeviction evicts keys); the study "
        f"cannot be read past it: restore the server's data from a backup, and keep it from evicting the "
        f"journal (redis-cli -h 127.0.0.1 -p {journal.port} CONFIG SET maxmemory-policy noeviction)\n"
    )
    _left_as_they_were(tmp_path)


def _written_over(journal: _Server, key: str, write: Callable[[Any], None]) -> Callable[[], bool]:
    """An action writing over the journal's `key` (DEL then `write(client)`), as another program does."""

    def action() -> bool:
        client = journal.client()
        client.delete(key)
        write(client)
        return False

    return action


@pytest.mark.parametrize(
    ("command", "write", "said"),
    [
        # "cannot open it: WRONGTYPE Operation against a key holding the wrong kind of value", naming no key
        (
            "trials",
            lambda c, k: c.hset(k, "field", "value"),
            "holds a hash, where the journal keeps a string",
        ),
        # "cannot open it: Expecting value: line 1 column 1 (char 0)"
        ("export-best", lambda c, k: c.set(k, "hello"), "holds 'hello', not a journal log"),
        # JSON, not a journal's record: a traceback (TypeError in Optuna's replay)
        ("studies", lambda c, k: c.set(k, "[1, 2]"), "holds '[1, 2]', not a journal log"),
    ],
    ids=["a-hash", "not-json", "not-a-record"],
)
def test_a_journal_log_another_program_wrote_over_is_named(
    journal: _Server,
    command: str,
    write: Callable[[Any, str], None],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    middle = _middle_log(journal)
    trap = _Trap(journal.port, middle, _written_over(journal, middle, lambda c: write(c, middle)))
    _outputs(tmp_path)
    try:
        code, stderr = _in_process(command, _through(trap), tmp_path, monkeypatch)
    finally:
        trap.close()
    assert code == 2, stderr
    assert stderr == (
        f"error: storage {_through(trap)!r}: its journal's key {middle!r} {said}: another program wrote over "
        f"it; the study cannot be read past it: restore the server's data from a backup, or run the study "
        f"again under a new ?prefix=. Keep other programs' keys out of the journal's ({PREFIX}:*)\n"
    )
    _left_as_they_were(tmp_path)


def test_a_journal_count_another_program_wrote_over_is_named_with_the_number_to_set_back(
    journal: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # int(b'hello') in Optuna's reader: a traceback, exit code 1.
    count = f"{PREFIX}:log_number"
    last = int(journal.keys[count.encode()])
    trap = _Trap(
        journal.port, _middle_log(journal), _written_over(journal, count, lambda c: c.set(count, "hi"))
    )
    _outputs(tmp_path)
    try:
        code, stderr = _in_process("report", _through(trap), tmp_path, monkeypatch)
    finally:
        trap.close()
    assert code == 2, stderr
    fix = f"redis-cli -h 127.0.0.1 -p {trap.port} SET {count} {last}"
    assert stderr == (
        f"error: storage {_through(trap)!r}: its journal's key {count!r} holds 'hi', not the number of its last "
        f"log: another program wrote over it; set it back to the number of the journal's last log ({fix}). "
        f"Keep other programs' keys out of the journal's ({PREFIX}:*)\n"
    )
    _left_as_they_were(tmp_path)
    journal.client().set(count, last)  # as the line says: the study reads again
    url = f"redis://127.0.0.1:{journal.port}?prefix={PREFIX}"
    assert CliRunner().invoke(app, ["trials", "--study-name", STUDY, "--storage", url]).exit_code == 0


def test_a_journal_snapshot_another_program_wrote_over_is_named_and_can_go(
    journal: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "cannot open it: WRONGTYPE Operation against a key holding the wrong kind of value"
    snapshot = f"{PREFIX}:snapshot"
    client = journal.client()
    client.delete(snapshot)
    client.rpush(snapshot, "x")
    url = f"redis://127.0.0.1:{journal.port}?prefix={PREFIX}"
    _outputs(tmp_path)
    code, stderr = _in_process("trials", url, tmp_path, monkeypatch)
    assert code == 2, stderr
    fix = f"redis-cli -h 127.0.0.1 -p {journal.port} DEL {snapshot}"
    assert stderr == (
        f"error: storage {url!r}: its journal's key {snapshot!r} holds a list, where the journal keeps a string: "
        f"another program wrote over it; delete it ({fix}): the journal's logs are read without it. Keep other "
        f"programs' keys out of the journal's ({PREFIX}:*)\n"
    )
    _left_as_they_were(tmp_path)
    client.delete(snapshot)  # as the line says
    result = CliRunner().invoke(app, ["trials", "--study-name", STUDY, "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count('"number"') == 300


def _optimize_with_damage(
    folder: Path, url: str, workers: int, damage: str, target: str, n_trials: int = 20
) -> tuple[int | str, str]:
    """`hpotool optimize -q --workers N` in a process of its own, on a study at `url` whose first trial damages
    its journal (`tests.trainers:damages_its_journal`): its exit code, or "hung" where it had not ended after
    120 s (killed then), and stderr."""
    from .conftest import write_yaml

    trainer = {"function": "tests.trainers:damages_its_journal", "marker": str(folder / "damaged")}
    trainer.update(damage=damage, target=target)
    run = write_yaml(folder / "run.yaml", {"epochs": 1, "trainer": trainer})
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    opt = write_yaml(folder / "opt.yaml", {"study_name": "run", "n_trials": n_trials, "search_space": space})
    repo = Path(__file__).resolve().parents[1]
    src = Path(hpotool.__file__).resolve().parents[1]
    args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", url, "--workers", str(workers), "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpotool", *args],
        cwd=repo,  # tests.trainers
        env={**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{repo}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "hung", proc.communicate()[1]
    return proc.returncode, stderr


_STOPPED = (
    "this run stopped, and the trials that were running stay RUNNING in the journal (nothing could be written "
    "to end them)"
)
_RESUME = (
    "then run the same command to resume: it marks the trials left RUNNING FAIL ('worker died') and runs their "
    "parameters again"
)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_redis_journal_emptied_during_a_study_stops_it_in_one_line_writing_nothing(
    journal: _Server, workers: int, tmp_path: Path
) -> None:
    # The server lost its data as the trials ran (restarted without it, FLUSHALL). Optuna's appends set the
    # count to -1 and went on from log 0, a journal of records no reader could replay: the run went on with
    # Optuna's 'reported value is ignored' warnings, its trials stored nowhere, then waited for ever for
    # 'the trials other processes run'; with --workers, the line said 'while this command read it ... run
    # the same command to read what it holds now', nothing of the trials that were running.
    url = f"redis://127.0.0.1:{journal.port}?prefix=run"
    code, stderr = _optimize_with_damage(tmp_path, url, workers, "flush", f"redis://127.0.0.1:{journal.port}")
    assert code == 2, stderr
    lines = stderr.splitlines()
    assert lines[0] == f"new study 'run' in {url}", stderr
    assert len(lines) == 2, stderr  # one line, whichever process found it first: not one per worker
    assert re.fullmatch(
        rf"error: (?:hpotool-worker-\d+: )?storage {re.escape(repr(url))}: its journal went away during the study \(run:log:\d+ and its "
        r"count run:log_number are gone: the Redis server restarted without its data, or the journal's keys "
        r"were deleted\); the study went with it, its finished trials and those that were running alike, and "
        r"this run stopped, writing nothing more there: restore the server's data from a backup, then run the "
        r"same command to resume, or run it as it is to start the study again",
        lines[1],
    ), lines[1]
    assert journal.client().keys("run:*") == []  # nothing written after: no new journal begun from log 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_redis_journal_count_written_over_during_a_study_says_what_became_of_its_running_trials(
    journal: _Server, workers: int, tmp_path: Path
) -> None:
    # One process: a traceback (ResponseError: value is not an integer, from Optuna's append script), exit 1;
    # --workers: the reading commands' line, nothing of the running trials or of resuming.
    url = f"redis://127.0.0.1:{journal.port}?prefix=run"
    target = f"redis://127.0.0.1:{journal.port} run:log_number"
    code, stderr = _optimize_with_damage(tmp_path, url, workers, "count", target)
    assert code == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 2 and lines[0] == f"new study 'run' in {url}", stderr
    fix = re.fullmatch(
        rf"error: (?:hpotool-worker-\d+: )?storage {re.escape(repr(url))}: its journal's key 'run:log_number' holds 'hi', not the number "
        rf"of its last log: another program wrote over it, during the study; {re.escape(_STOPPED)}; set it back "
        rf"to the number of the journal's last log \((redis-cli -h 127\.0\.0\.1 -p {journal.port} SET "
        rf"run:log_number (\d+))\), {re.escape(_RESUME)}\. Keep other programs' keys out of the journal's "
        r"\(run:\*\)",
        lines[1],
    )
    assert fix is not None, lines[1]
    from optuna.trial import TrialState

    from hpotool.storage import make_storage

    def trials() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="run", storage=make_storage(url, create=False)).trials

    journal.client().set("run:log_number", fix[2])  # as the line says
    running = [t.number for t in trials() if t.state == TrialState.RUNNING]
    assert running  # the trial that damaged it, at least
    code, stderr = _optimize_with_damage(tmp_path, url, workers, "count", target)  # the same command
    assert code == 0, stderr
    for number in running:
        trial = trials()[number]
        assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"].startswith("worker died"), (
            trial
        )
