"""Worker processes sharing one study: exact trial counts on every storage, dead workers, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import yaml
from click.testing import Result
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpotool
from hpotool.cli import app
from hpotool.dead_trials import fail_dead_local_trials
from hpotool.exhaustion import _spare
from hpotool.heartbeat import retry_stale_trial
from hpotool.owners import owner
from hpotool.plan import Overrides, prepare_study
from hpotool.storage import make_storage
from hpotool.study import open_study
from hpotool.study_run import run_study
from hpotool.trial_setup import has_slot
from hpotool.worker_args import worker_device, worker_threads
from hpotool.workers import run_workers
from tests.conftest import ask_with_heartbeat, unique_name, write_yaml
from tests.redis_keys import delete_redis_keys

REPO = Path(__file__).resolve().parents[1]
SERVERS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
    "redis": "redis://127.0.0.1:6379",
}


@pytest.mark.parametrize(
    ("n_workers", "configured", "cores", "expected"),
    [(1, None, 2, 2), (2, None, 2, 1), (4, None, 2, 1), (2, None, 16, 8), (2, 3, 16, 3), (2, 12, 16, 8)],
)
def test_worker_threads_split_the_cores(
    n_workers: int, configured: int | None, cores: int, expected: int
) -> None:
    assert worker_threads(n_workers, configured, cores) == expected


@pytest.mark.parametrize(
    ("device", "index", "gpus", "expected"),
    [("cuda", 0, 2, "cuda:0"), ("cuda", 3, 2, "cuda:1"), ("auto", 2, 4, "cuda:2"), ("cuda", 1, 1, "cuda"),
     ("cpu", 1, 4, "cpu"), ("cuda:1", 0, 4, "cuda:1")],
)  # fmt: skip
def test_worker_device_round_robin(device: str, index: int, gpus: int, expected: str) -> None:
    assert worker_device(device, index, gpus) == expected


def test_a_trial_asked_beyond_the_target_has_no_slot() -> None:
    study = optuna.create_study()
    first, second, third = study.ask(), study.ask(), study.ask()
    assert has_slot(study, first, 2) and has_slot(study, second, 2)
    assert not has_slot(study, third, 2)
    study.tell(first, state=TrialState.FAIL)  # a failed trial frees its slot
    assert has_slot(study, third, 2)


def _server_url(kind: str) -> str:
    """The server's URL, or a skip (a failure when HPOTOOL_REQUIRE_SERVERS=1) when it is not reachable."""
    url = SERVERS[kind]
    try:
        if kind == "redis":
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        else:
            import sqlalchemy

            sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2}).connect().close()
    except Exception as exc:
        reason = f"{kind} server at {url} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        if os.environ.get("HPOTOOL_REQUIRE_SERVERS") == "1":
            pytest.fail(f"HPOTOOL_REQUIRE_SERVERS=1 but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "journal", "postgres", "mysql", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, study name) of a fresh storage of each kind; on servers a unique name/prefix, cleaned up."""
    kind = request.param
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies' / 'w.db'}", name
        return
    if kind == "journal":
        yield f"journal:{tmp_path / 'studies' / 'w.log'}", name
        return
    url = _server_url(kind)
    if kind == "redis":
        import redis

        yield f"{url}?prefix={name}", name
        delete_redis_keys(redis.Redis.from_url(url), f"{name}:*")
        return
    yield url, name
    optuna.delete_study(study_name=name, storage=make_storage(url))


def _study_configs(
    tmp_path: Path, run: dict[str, Any], opt: dict[str, Any], storage: tuple[str, str], n: int
) -> tuple[Path, Path]:
    run = {**run, "epochs": 1, "torch_threads": None}
    opt = {**opt, "storage": storage[0], "n_trials": n, "study_name": storage[1]}
    opt["sampler"] = {"name": "tpe", "kwargs": {"n_startup_trials": 5}}
    return write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)


def test_four_workers_end_with_exactly_the_target(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], storage: tuple[str, str]
) -> None:
    # 20 trials, 5 rounds of 4 workers (was 40): the race this guards is the last round's, where workers ask
    # for trials beyond the target; on a server every trial costs a few hundred ms of storage writes.
    plan = prepare_study(*_study_configs(tmp_path, run_dict, opt_dict, storage, 20))
    summary = run_workers(plan, 4)
    study = optuna.load_study(study_name=plan.opt.study_name, storage=make_storage(storage[0]))
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 20
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    assert summary.counts["complete"] == 20 and summary.stopped is None
    assert len({t.user_attrs["worker"]["pid"] for t in finished}) > 1  # the work was shared
    # seed + index: the workers' random start-up points differ
    assert len({tuple(sorted(t.params.items())) for t in finished[:12]}) > 8


def _hpotool(args: list[str], cwd: Path, *, before: str = "", **env: str) -> subprocess.Popen[str]:
    """`python -m hpotool ARGS` in a session of its own (its process group: main, forkserver, workers), from
    this checkout's src/ (not whichever hpotool the venv has installed), with tests/ importable; `before`,
    Python code the command's process runs first (to patch a module's constant)."""
    environ = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **env}
    main = ["-m", "hpotool"]
    if before:
        main = [
            "-c",
            f"{before}\nimport runpy\nrunpy.run_module('hpotool', run_name='__main__', alter_sys=True)",
        ]
    return subprocess.Popen(
        [sys.executable, *main, *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # As from a terminal: pytest started in the background (`pytest &`) ignores SIGINT, and so would
        # every process it starts, whose Ctrl-C tests would then wait in vain.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _session(proc: subprocess.Popen[str]) -> list[int]:
    """The processes still alive in `proc`'s session (workers left behind once it has exited)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == proc.pid and fields[0] != "Z":  # field 6 of stat: the session id
            found.append(int(stat.parent.name))
    return found


def _kill_session(proc: subprocess.Popen[str]) -> None:
    """Kill whatever a test left running of `proc` and its workers."""
    proc.kill()
    for pid in _session(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _error_line(proc: subprocess.Popen[str], output: str) -> str:
    """The one `error:` line of a command that ended as a user-facing failure should: exit 2, no traceback."""
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if line.startswith("error:")]
    return line


def _run_hpotool(args: list[str], cwd: Path, timeout: float = 180, **env: str) -> tuple[int, str]:
    """`python -m hpotool ARGS` (`_hpotool`) run to its end: its exit code and what it and its workers
    printed. Whatever it left running (after `timeout` s) is killed."""
    proc = _hpotool(args, cwd, **env)
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        _kill_session(proc)
    return proc.returncode, output


def _in_this_process(args: list[str], exit_code: int = 0) -> Result:
    """`hpotool ARGS` run in this process, which must exit `exit_code`: the same code as `_run_hpotool`'s,
    seconds sooner (no interpreter to start; workers fork from this process's warm worker server), for a
    test that needs neither the workers' own output nor a command to signal."""
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result


WORKERS = ("--workers", "2", "-q")  # the command line's end for a quiet run of two workers


def _optimize_args(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any], *extra: str) -> list[str]:
    """`optimize -r RUN -o OPT EXTRA...` of these configs, written to run.yaml and optimize.yaml there."""
    paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)
    return ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), *extra]


def test_more_workers_than_trials_left_start_one_per_trial_left(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `--workers 10` on a study lacking 3 trials started 10 workers, each its own process: 7 had nothing to
    # run, their trials asked in a race at the end were sent back, and the study kept some as WAITING
    # (a resumed `--workers 10` then ran one of those in two workers). Now as many start as trials are left,
    # each with a share of the cores that many take, and a note says so.
    args = _optimize_args(tmp_path, {**run_dict, "epochs": 1}, {**opt_dict, "n_trials": 2})
    first = json.loads(_in_this_process([*args, "--workers", "10", "--json"]).stdout)
    assert first["extra"]["workers"] == 2  # before: 10
    result = _in_this_process([*args, "--n-trials", "3", "--workers", "4"])
    assert "note: --workers 4: 1 of the study's 3 trials was left to run, so 1 worker ran it" in " ".join(
        result.stderr.split()
    ), result.stderr
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert len(trials) == 3 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), (
        trials
    )


def _slow_configs(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    n: int,
    width: dict[str, Any] | None = None,
) -> list[str]:
    """`optimize ... --workers 2 -q` of `n` trials of 4 epochs, each forward pass 0.05 s (~1.4 s a trial),
    searching model.width (`width`: its search space entry; by default an int from 4 to 64)."""
    run = {**run_dict, "epochs": 4, "model": {"name": "tests.helpers:SlowModel", "sleep": 0.05}}
    width = width or {"type": "int", "low": 4, "high": 64}
    opt = {**opt_dict, "n_trials": n, "search_space": {"model.width": width}}
    return _optimize_args(tmp_path, run, opt, *WORKERS)


def _wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the study")


def _study_of(url: str, name: str = "tiny") -> optuna.Study:
    """The study `name` at `url`, once a command started elsewhere has created it. Each look that finds
    none closes its storage's connections: left to the garbage collector, the looks of a command's start
    (every 0.1 s) held 45-60 idle PostgreSQL connections until the test ended, and beside another test
    process's the server's 100 ran out ("sorry, too many clients already")."""

    def look() -> optuna.Study | None:
        storage = make_storage(url)
        study = _study_or_none(storage, name)
        if study is None:
            engine = getattr(getattr(storage, "_backend", storage), "engine", None)
            if engine is not None:
                engine.dispose()
        return study

    return _wait_for(look)


def _running_with_epochs(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial of a worker, training for a while (its epochs may not be written yet: reports of
    sub-second epochs are written together, see hpotool.rdb). It has drawn its values: under load, a trial
    0.3 s old could still be short of its draw, and one killed there had no values to queue again."""
    for t in study.get_trials(deepcopy=False):
        started = t.datetime_start or datetime.now()
        if (
            t.state == TrialState.RUNNING
            and "worker" in t.user_attrs
            and t.params
            and (datetime.now() - started).total_seconds() > 0.3
        ):
            return t
    return None


def _signal_in_trials(
    study: optuna.Study,
    signum: int,
    pick: Any = lambda study: [t] if (t := _running_with_epochs(study)) else [],
) -> list[optuna.trial.FrozenTrial]:
    """Send `signum` to the worker of each trial `pick` returns, while those trials are still RUNNING; the
    trials. Each worker is stopped (SIGSTOP) while its trial is read again: this process, late under load,
    killed a worker whose trial had ended since `pick` saw it (between two trials, or in the next one)."""

    def signalled() -> list[optuna.trial.FrozenTrial]:
        victims = pick(study)
        pids = [t.user_attrs["worker"]["pid"] for t in victims]
        stopped, running = [], False
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            with contextlib.suppress(sqlalchemy.exc.OperationalError):  # a stopped worker holds SQLite's lock
                running = all(
                    study._storage.get_trial(t._trial_id).state == TrialState.RUNNING for t in victims
                )
            if running:
                for pid in pids:
                    os.kill(pid, signum)
        except ProcessLookupError:  # a worker exited since `pick`
            running = False
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        return victims if running and victims else []

    return _wait_for(signalled)


def _while_in_this_process(args: list[str], act: Callable[[], Any], exit_code: int) -> tuple[Result, Any]:
    """`hpotool ARGS` run in this process (`_in_this_process`, which must exit `exit_code`) while `act()`
    runs beside it, in a thread of its own (to signal the command's workers, say); the result and what
    `act` returned. A worker's own output is not in the result (it prints where this process does)."""
    done: dict[str, Any] = {}

    def beside() -> None:
        try:
            done["value"] = act()
        except BaseException as exc:  # re-raised in the test's thread, once the command has ended
            done["error"] = exc

    thread = threading.Thread(target=beside, daemon=True)
    thread.start()
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    thread.join(timeout=60)
    if "error" in done:
        raise done["error"]
    assert "value" in done, f"still acting 60 s after the command ended\n{result.output}"
    assert result.exit_code == exit_code, result.output
    return result, done["value"]


def _signal_one_worker(
    args: list[str], url: str, signum: int, name: str = "tiny"
) -> tuple[str, optuna.Study, optuna.trial.FrozenTrial]:
    """`hpotool args` on study `name` at `url`, run in this process (which must exit 0), `signum` sent to
    the pid of one worker (not to this process) once its trial has trained a while (`_running_with_epochs`);
    what the command printed, the study and that trial."""

    def signal_one() -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
        study = _study_of(url, name)
        (victim,) = _signal_in_trials(study, signum)
        return study, victim

    result, (study, victim) = _while_in_this_process(args, signal_one, 0)
    return result.output, study, victim


# SQLite has a heartbeat, whose 60 s grace must not be what fails the dead worker's trial; a journal file has
# none, and nothing but the main process would ever end it (the study would never reach n_trials). Redis is
# left out: hpotool keeps a study there as a journal too (Optuna's JournalStorage), through the same code.
@pytest.mark.parametrize("storage", ["sqlite", "journal"], indirect=True)
def test_a_killed_worker_s_trial_fails_at_once_and_is_rerun(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], storage: tuple[str, str]
) -> None:
    # kill -9 on one worker: its trial stayed RUNNING for the heartbeat's whole grace period (60 s), then
    # failed as "stale: no heartbeat for 60 s", while the main process knew at once that the worker died.
    url, name = storage
    # 3 trials: a trial to kill runs until the second round ends (~2.8 s), should this process be slow to
    # find one, and the other worker runs its own, the retry and one more.
    args = _slow_configs(tmp_path, run_dict, {**opt_dict, "storage": url, "study_name": name}, 3)
    # The grace: 60 s, as by default (the workers, forked from this process's worker server, beat every 10 s).
    output, study, victim = _signal_one_worker(args, url, signal.SIGKILL, name)
    pid = victim.user_attrs["worker"]["pid"]
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL  # with why: `hpotool trials` showed no reason
    assert killed.user_attrs["fail_reason"] == f"worker died (pid {pid})"
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert re.search(
        rf"note: worker hpotool-worker-\d \(pid {pid}\) was killed by SIGKILL: its trial #{victim.number} "
        rf"ended as FAIL \(worker died \(pid {pid}\)\), its values queued again; the other workers ran on",
        output,
    ), output


def _signal_both_workers(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], signum: int, exit_code: int
) -> tuple[str, optuna.Study]:
    """`optimize --workers 2` of 20 slow trials, run in this process (which must exit `exit_code`), `signum`
    sent to each worker's pid (not to this process) once both run a trial; what the command printed, and
    the study."""

    def signal_both() -> optuna.Study:
        study = _study_of(opt_dict["storage"])

        def both_running(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
            trials = {
                t.user_attrs["worker"]["pid"]: t
                for t in study.get_trials(deepcopy=False)
                if t.state == TrialState.RUNNING and "worker" in t.user_attrs
            }
            return list(trials.values()) if len(trials) == 2 else []

        _signal_in_trials(study, signum, both_running)
        return study

    args = _slow_configs(tmp_path, run_dict, opt_dict, 20)
    result, study = _while_in_this_process(args, signal_both, exit_code)
    return result.output, study


def test_workers_all_killed_short_of_the_target_exit_with_the_signal_s_code(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # kill -9 (the OOM killer) on every worker: '2 of 2 workers died ...; run again to resume', exit code 0,
    # as if the study were done.
    output, study = _signal_both_workers(tmp_path, run_dict, opt_dict, signal.SIGKILL, 128 + signal.SIGKILL)
    assert "2 of 2 workers died (hpotool-worker-0, hpotool-worker-1); run again to resume" in output
    assert not [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]


def test_one_worker_killed_before_the_timeout_ends_the_run_is_a_note_beside_the_timeout(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # The summary said '1 of 2 workers died (...); run again to resume', not that the timeout had ended the
    # run, although the other worker had run the dead one's trial again and went on to the timeout.
    # The timeout counts from the run's start in the main process, the workers' start-up (their imports,
    # their data) included: 30 s leaves them trials to kill on a loaded machine too, where one is killed
    # within a second once a trial has trained 0.3 s. (It was 4 s, enough while each worker counted its own
    # timeout from the start of its trial loop; then 10 s, which a test process at load 15 outlasted: its
    # worker server's imports and the workers' first steps took over 10 s, no trial started before the
    # deadline, and the wait for one to kill ran out after 60 s.)
    args = [*_slow_configs(tmp_path, run_dict, opt_dict, 400), "--timeout", "30"]
    output, _, victim = _signal_one_worker(args, opt_dict["storage"], signal.SIGKILL)
    pid = victim.user_attrs["worker"]["pid"]
    assert "note: the timeout (30 s) ended the run with" in output and "workers died" not in output, output
    assert re.search(rf"note: worker hpotool-worker-\d \(pid {pid}\) was killed by SIGKILL", output), output


def test_workers_set_up_past_the_timeout_start_no_trial(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Each worker counted the timeout from its own trial loop, once its imports and data were set up: with
    # `--timeout 4 --workers 2` the command lasted 8 s on a loaded machine. The timeout counts from the run's
    # start in the main process: workers whose set-up (a dataset module slow to import in a worker) outlasts
    # it start no trial. Before, each ran a trial or more, 1 s of trials from its own start.
    (tmp_path / "slow_data.py").write_text(
        "import multiprocessing\n"
        "import time\n"
        "from tests.helpers import digits_samples\n"
        "if multiprocessing.parent_process() is not None:  # a worker: its set-up outlasts the timeout\n"
        "    time.sleep(2)\n"
        "def digits(n=300):\n"
        "    return digits_samples(n)\n"
    )
    run = {**run_dict, "epochs": 1, "data": {"name": "slow_data:digits", "val_fraction": 0.2}}
    args = _optimize_args(tmp_path, run, {**opt_dict, "n_trials": 50}, *WORKERS, "--timeout", "1")
    output = _in_this_process(args).output
    assert "note: the timeout (1 s) ended the run with 50 of 50 trials to go" in output, output
    assert optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials == []


def test_a_warm_start_of_a_worker_stopped_alone_is_run_by_the_others_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # SIGTERM to one worker's pid during a warm start: the other worker finished the study with drawn
    # values, exit code 0, and the warm start never ran; the same command again found nothing to run and left
    # it queued. Now the main process queues it at once and the other worker runs it, once.
    args = _slow_configs(tmp_path, run_dict, opt_dict, 4)
    opt = yaml.safe_load((tmp_path / "optimize.yaml").read_text())
    write_yaml(tmp_path / "optimize.yaml", {**opt, "enqueue": [{"model.width": 5}, {"model.width": 6}]})
    output, study, victim = _signal_one_worker(args, opt_dict["storage"], signal.SIGTERM)
    point = victim.system_attrs["fixed_params"]  # both workers' first trials are the warm starts
    assert re.search(
        rf"its trial #{victim.number} ended as FAIL \(interrupted\), its values queued again; the other "
        r"workers ran on",
        output,
    ), output
    for _ in range(2):  # and the same command again runs it no more
        trials = study.get_trials(deepcopy=False)
        assert [t.state for t in trials if t.system_attrs.get("fixed_params") == point] == [
            TrialState.FAIL,
            TrialState.COMPLETE,
        ]
        assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
        assert not [t for t in trials if t.state == TrialState.WAITING]
        _in_this_process(args)


def test_a_worker_stopped_alone_while_the_others_finish_the_study_is_named_in_the_summary(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # SIGTERM to one worker's pid, the other ran the study to its end: exit code 0, and the only hint that
    # a worker had gone was '1 trial failed; the last, #N: interrupted'.
    # 3 trials: a trial to stop runs until the second round ends (~2.8 s), should this process be slow to
    # find one, and the other worker runs its own and two more.
    args = _slow_configs(tmp_path, run_dict, opt_dict, 3)
    output, study, victim = _signal_one_worker(args, opt_dict["storage"], signal.SIGTERM)
    pid = victim.user_attrs["worker"]["pid"]
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) == 3
    assert re.search(
        rf"note: worker hpotool-worker-\d \(pid {pid}\) was stopped by SIGTERM: its trial #{victim.number} "
        r"ended as FAIL \(interrupted\); the other workers ran on",
        output,
    ), output


def _study_or_none(storage: optuna.storages.BaseStorage, name: str = "tiny") -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def test_ctrl_c_stops_every_worker_and_the_study_resumes(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    args = _slow_configs(tmp_path, run_dict, opt_dict, 4)
    proc = _hpotool(args, tmp_path)
    try:
        study = _study_of(opt_dict["storage"])
        _wait_for(lambda: _running_with_epochs(study))
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the main process (a terminal also tells workers)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, output  # the shell's code for SIGINT
    assert "interrupted" in output and "finished" in output  # the summary is printed
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["fail_reason"] == "interrupted" for t in failed)
    resumed = _in_this_process(args)  # the same code as a second command's, without its start-up
    assert "4/4 finished" in resumed.stdout, resumed.output
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) == 4


def _forkserver_in(proc: subprocess.Popen[str]) -> int | None:
    """The pid of the worker server in `proc`'s session, once it has started."""
    for pid in _session(proc):
        with contextlib.suppress(OSError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def _ignores_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


_SERVER_PROBE = """
import os, signal, time
from multiprocessing import forkserver
from hpotool.forkserver import start_worker_server
start_worker_server()
pid = forkserver._forkserver._forkserver_pid
os.kill(pid, signal.SIGINT)  # Ctrl-C to the process group while Python starts up in the server
time.sleep(2)
print("alive" if os.waitpid(pid, os.WNOHANG)[0] == 0 else "dead")
"""


def test_the_worker_server_survives_a_ctrl_c_from_its_first_instant() -> None:
    # The server ignored SIGINT only once its first preload ran: a Ctrl-C in its first ~50 ms (longer on a
    # loaded machine) killed it with a KeyboardInterrupt traceback, and the test below flaked on it.
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _SERVER_PROBE], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "alive", done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_ctrl_c_while_the_worker_server_starts_exits_130_without_a_traceback(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Ctrl-C in the first seconds of `--workers N`: the terminal sends SIGINT to the whole process group,
    # the worker server too, which was importing torch then and printed 40 lines of KeyboardInterrupt.
    args = _slow_configs(tmp_path, run_dict, opt_dict, 4)
    proc = _hpotool(args, tmp_path)
    try:
        server = _wait_for(lambda: _forkserver_in(proc), timeout=30.0)
        with contextlib.suppress(AssertionError):  # its first import; torch and the rest take seconds
            _wait_for(lambda: _ignores_sigint(server), timeout=1.0)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        with contextlib.suppress(AssertionError):  # the bound a hang guard: they go, or are left
            _wait_for(lambda: not _session(proc), timeout=SETTLE_S)
        left = _session(proc)
    finally:
        _kill_session(proc)
    output = proc.communicate(timeout=10)[0]
    assert left == [], output
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output


def test_the_worker_server_ends_with_a_command_that_stops_before_any_worker_starts(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A config mistake (or a Ctrl-C) before trial 0 with --workers N: the command returned, and the worker
    # server lived on while it imported torch (seconds on a loaded machine: the Ctrl-C test above found it
    # still there), holding the command's output open (`hpotool ... | tee log` waited for it).
    args = _slow_configs(tmp_path, run_dict, opt_dict, 4)
    mistake = {**opt_dict, "search_space": {"model.widht": {"type": "int", "low": 4, "high": 64}}}
    args[args.index("-o") + 1] = str(write_yaml(tmp_path / "mistake.yaml", mistake))
    proc = _hpotool(args, tmp_path)
    try:
        server = _wait_for(lambda: _forkserver_in(proc), timeout=30.0)
        proc.wait(timeout=60)
        try:
            alive = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:  # gone
            alive = False
    finally:
        _kill_session(proc)
    output = proc.communicate(timeout=10)[0]
    assert proc.returncode == 2, output
    assert not alive


# How long the processes of a command's session may take to go once it exited: a hang guard, no speed
# asserted. It was 5 s (15 s after a kill -9), which a loaded machine's workers, still ending their trials
# and writing their FAIL, could outlast; where they go, the wait ends as they do.
SETTLE_S = 120.0


def _signal_the_run(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    n: int,
    send: Callable[[subprocess.Popen[str]], None],
) -> tuple[subprocess.Popen[str], list[int], str, optuna.Study]:
    """`optimize --workers 2` of `n` slow trials, `send(proc)` once a trial has reported an epoch: the
    command, the processes of its session still there `SETTLE_S` after it exited, what it printed (once
    they are killed), and the study."""
    proc = _hpotool(_slow_configs(tmp_path, run_dict, opt_dict, n), tmp_path)
    try:
        study = _study_of(opt_dict["storage"])
        _wait_for(lambda: _running_with_epochs(study))
        send(proc)
        proc.wait(timeout=60)  # not communicate(): orphaned workers would hold its pipe open
        with contextlib.suppress(AssertionError):
            _wait_for(lambda: not _session(proc), timeout=SETTLE_S)
        left = _session(proc)
    finally:
        _kill_session(proc)
    return proc, left, proc.communicate(timeout=10)[0], study


@pytest.mark.parametrize("group", [False, True], ids=["to-main", "to-group"])
def test_sigterm_stops_every_worker_and_prints_the_summary(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], group: bool
) -> None:
    # What a scheduler sends: SIGTERM to the main process alone (kill PID), or to its whole process group.
    def sigterm(proc: subprocess.Popen[str]) -> None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)

    proc, left, output, study = _signal_the_run(tmp_path, run_dict, opt_dict, 20, sigterm)
    assert left == [], f"processes left running after the main process exited: {left}\n{output}"
    assert proc.returncode == 143, output  # the shell's code for SIGTERM
    # one worker may be between its trials as the signal lands: its note counts the trials ended
    assert re.search(r"interrupted: (every worker|1 of 2 workers) ended its trial as FAIL", output), output
    assert "finished" in output
    assert "Traceback" not in output and "leaked" not in output
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["fail_reason"] == "interrupted" for t in failed)
    assert sum(t.state == TrialState.COMPLETE for t in trials) < 20


def test_ctrl_c_to_the_group_with_one_worker_running_a_trial_says_one_ended_as_fail(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """Ctrl-C to the process group of `--workers 2` once one worker has finished its trial and the other runs
    its own: the note said "every worker ended its trial as FAIL" (the study: complete 1, fail 1)."""
    run = {**run_dict, "epochs": 4, "model": {"name": "tests.helpers:SlowModel", "sleep": 0.0}}
    opt = {
        **opt_dict,
        "n_trials": 2,
        "search_space": {"model.sleep": {"type": "categorical", "choices": [0.0, 0.5]}},
        "enqueue": [{"model.sleep": 0.0}, {"model.sleep": 0.5}],  # one fast trial, one slow
    }
    proc = _hpotool(_optimize_args(tmp_path, run, opt, *WORKERS), tmp_path)
    try:
        study = _study_of(opt_dict["storage"])
        # the slow trial running while the fast one is complete: a RUNNING trial seen first and a COMPLETE one
        # seen in a later read could be the same fast trial, with the slow one still queued (failed in CI:
        # "interrupted between trials: none was running")
        _wait_for(
            lambda: (
                (running := _running_with_epochs(study)) is not None
                and running.params["model.sleep"] == 0.5
                and any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
            )
        )
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        _kill_session(proc)
    assert proc.returncode == 130, output
    # the worker that finished may have asked a third trial in a race at the end, back to WAITING untrained
    # (README, Several workers on one machine: "the summary may show waiting 1")
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"], output
    assert all(not t.intermediate_values for t in study.get_trials(states=(TrialState.WAITING,))), output
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert (
        f"interrupted: 1 of 2 workers ended its trial as FAIL (#{failed.number}), the other running none"
        in output
    )
    assert "every worker" not in output, output


def test_ctrl_c_after_a_worker_was_killed_says_it_ended_before_not_that_it_ran_none(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """kill -9 on one worker of `--workers 2`, then Ctrl-C to the group while the other runs a trial: the
    note said "1 of 2 workers ended its trial as FAIL (#N), the other running none", the dead worker counted
    as one between trials, and no note named it or its trial (it does where the others finish the study)."""
    proc = _hpotool(_slow_configs(tmp_path, run_dict, opt_dict, 20), tmp_path)
    try:
        study = _study_of(opt_dict["storage"])
        (victim,) = _signal_in_trials(study, signal.SIGKILL)
        pid = victim.user_attrs["worker"]["pid"]

        def other_running() -> bool:  # the victim's trial failed, and the other worker trains one
            trials = study.get_trials(deepcopy=False)
            running = _running_with_epochs(study)
            return (
                trials[victim.number].state == TrialState.FAIL
                and running is not None
                and running.user_attrs.get("worker", {}).get("pid") != pid
            )

        assert _wait_for(other_running)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        _kill_session(proc)
    assert proc.returncode == 130, output
    assert re.search(
        r"interrupted: 1 of 2 workers ended its trial as FAIL \(#\d+\), the other ended before it \(see the "
        r"note above\)",
        output,
    ), output
    assert re.search(
        rf"note: worker hpotool-worker-\d \(pid {pid}\) was killed by SIGKILL: its trial #{victim.number} ended as "
        rf"FAIL \(worker died \(pid {pid}\)\)",
        output,
    ), output
    assert "running none" not in output, output
    # the note the line points to, above it
    assert output.index("was killed by SIGKILL") < output.index("interrupted: 1 of 2"), output


def test_ctrl_c_after_a_worker_was_stopped_alone_says_it_ended_before_not_that_the_signal_ended_it(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """SIGTERM to one worker of `--workers 2` alone, then Ctrl-C to the group: the worker exited 143, as one
    the Ctrl-C ends would, so it was counted as ended by it: "every worker ended its trial as FAIL (#V, #M)",
    its earlier trial among the signal's, and no note named it. The main process saw it gone before the
    signal came (it queued its warm start again then, which the test waits for)."""
    args = _slow_configs(tmp_path, run_dict, opt_dict, 20)
    opt = yaml.safe_load((tmp_path / "optimize.yaml").read_text())
    write_yaml(tmp_path / "optimize.yaml", {**opt, "enqueue": [{"model.width": w} for w in range(4, 24)]})
    proc = _hpotool(args, tmp_path)
    try:
        study = _study_of(opt_dict["storage"])
        (victim,) = _signal_in_trials(study, signal.SIGTERM)
        pid, point = victim.user_attrs["worker"]["pid"], victim.system_attrs["fixed_params"]

        def queued_again_and_other_running() -> (
            bool
        ):  # the main process saw the victim gone: it queued its point
            trials = study.get_trials(deepcopy=False)
            running = _running_with_epochs(study)
            return (
                any(t.number > victim.number and t.system_attrs.get("fixed_params") == point for t in trials)
                and running is not None
                and running.user_attrs.get("worker", {}).get("pid") != pid
            )

        assert _wait_for(queued_again_and_other_running)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        _kill_session(proc)
    assert proc.returncode == 130, output
    assert "every worker" not in output, output
    # the other worker runs a trial as the signal comes, or has just ended it (between two trials)
    assert re.search(
        r"interrupted: (1 of 2 workers ended its trial as FAIL \(#\d+\), the other ended before it \(see the "
        r"note above\)|between trials: none was running)",
        output,
    ), output
    assert re.search(
        rf"note: worker hpotool-worker-\d \(pid {pid}\) was stopped by SIGTERM: its trial #{victim.number} "
        rf"ended as FAIL \(interrupted\), its values queued again",
        output,
    ), output


def test_sigterm_to_each_worker_alone_ends_the_run_as_interrupted(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A SIGTERM to each worker's pid (not to the main process): each ended its trial as FAIL and exited 0
    # as if its work were done, and the command ended with 0 of 20 trials finished, no reason, exit code 0.
    output, study = _signal_both_workers(tmp_path, run_dict, opt_dict, signal.SIGTERM, 143)
    assert (
        "interrupted: 2 of 2 workers (hpotool-worker-0, hpotool-worker-1) ended their trial as FAIL on SIGTERM; "
        "run the same command to resume" in output
    )
    assert re.search(r"finished, \d+ run now \((complete \d+, )?(pruned \d+, )?fail 2\)", output), output
    assert not [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]


def test_workers_end_their_trials_and_exit_when_the_main_process_is_killed(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # kill -9 (or the OOM killer) on the main process alone: the shell prompt came back, and the workers
    # went on running the study to its end in the background.
    _, left, output, study = _signal_the_run(
        tmp_path, run_dict, opt_dict, 400, lambda proc: proc.send_signal(signal.SIGKILL)
    )
    assert left == [], f"processes left running after the main process was killed: {left}"
    # Its resource tracker freed the semaphores the main process left, and warned of them on the terminal.
    assert "resource_tracker" not in output and "Warning" not in output, output
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert all(t.user_attrs["fail_reason"] == "interrupted" for t in trials if t.state == TrialState.FAIL)
    assert sum(t.state == TrialState.COMPLETE for t in trials) < 400


def _beat_an_hour_ago(study: optuna.Study, trial: optuna.Trial) -> None:
    """Move `trial`'s last heartbeat (a SQLite study's) an hour back: its worker died long ago, past any grace
    period, with no wait for one to pass (a short grace, waited out, was outlasted by a loaded machine's
    seconds between a live trial's heartbeat and the check that must find it fresh). A trial with no beat
    yet gets one an hour old: a lock another connection took as the trial started (`LocksTheStudy`) kept
    its heartbeat thread's first beat out whenever a loaded machine started that thread late, and a
    trial of a live process (the test's) with no heartbeat is never stale: the next run waited for it
    for good."""
    backend = getattr(study._storage, "_backend", study._storage)
    with backend.engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (:id, datetime('now', '-1 hour')) "
                "ON CONFLICT (trial_id) DO UPDATE SET heartbeat = datetime(heartbeat, '-1 hour')"
            ),
            {"id": trial._trial_id},
        )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_fail_stale_marks_dead_trials_and_queues_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_INTERVAL", "1")
    # A 60 s grace keeps `alive` fresh while a loaded machine runs the CLI (a 2 s one did not always), and
    # `dead`'s heartbeat is an hour old.
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "60")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    dead, alive = study.ask(), study.ask()
    dead.suggest_float("x", 0, 1)
    dead.set_user_attr("worker", {"host": "elsewhere", "pid": 1})  # as run_trials records it
    study._storage.record_heartbeat(dead._trial_id)  # type: ignore[attr-defined]
    _beat_an_hour_ago(study, dead)
    study._storage.record_heartbeat(alive._trial_id)  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        app, ["fail-stale", "--study-name", "s", "--storage", url], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "marked 1 stale trial FAIL: #0; its values are queued to run again" in " ".join(
        result.stdout.split()
    )
    # Not "(a live worker)": a trial whose machine was killed a second ago is left too, until its heartbeat
    # is older than the grace period; the line says how old each heartbeat is, and when to run again.
    left = re.search(
        r"left 1 running trial alone, its heartbeat younger than the 60 s grace period: "
        r"#1 \(heartbeat ([0-9]+) s old\); it is a live worker's, or one that died less than 60 s ago "
        r"\(run fail-stale again once its heartbeat is older\)",
        " ".join(result.stdout.split()),
    )
    assert left is not None and int(left.group(1)) <= 60, result.stdout
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert trials[2].params == {"x": dead.params["x"]} and trials[2].system_attrs["failed_trial"] == 0
    assert trials[2].user_attrs == {}  # not the dead run's worker: the retry is a new run


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_fail_stale_says_what_ends_a_running_trial_with_no_heartbeat_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RUNNING trial with an owner and no heartbeat record was listed "(no heartbeat yet)" under "run
    fail-stale again once its heartbeat is older", which it has none of: another machine's is failed once it
    started over the grace ago (`fail_ownerless_trials`), a live process's of this machine once it is gone."""
    from hpotool.owners import owner

    monkeypatch.setenv("HPOTOOL_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "600")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    elsewhere, here = study.ask(), study.ask()
    elsewhere.set_user_attr("worker", {"host": "elsewhere", "pid": 1})  # as run_trials records it
    here.set_user_attr("worker", owner())  # this test's process: alive
    result = CliRunner().invoke(
        app, ["fail-stale", "--study-name", "s", "--storage", url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stdout
    text = " ".join(result.stdout.split())
    assert "heartbeat is older" not in text and "heartbeat younger" not in text, text
    left = re.search(
        r"left 2 running trials alone with no heartbeat yet: "
        r"#0 \(started ([0-9]+) s ago; run fail-stale again in ([0-9]+) s or later: past the 600 s grace since "
        r"its start, it marks FAIL a trial still without a heartbeat\), "
        rf"#1 \(pid {os.getpid()} of this machine, alive; fail-stale marks it FAIL once that process is gone\)",
        text,
    )
    assert left is not None, text
    assert int(left.group(1)) + int(left.group(2)) in (599, 600, 601), text
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_fail_stale_counts_each_kind_of_trial_it_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said "marked 2 stale trials FAIL" where one trial's process of this machine was gone ("worker died"),
    # not a heartbeat gone stale.
    from hpotool.owners import owner

    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "60")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    died, stale = study.ask(), study.ask()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    died.set_user_attr("worker", {**owner(), "pid": gone.pid})
    stale.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    for trial in (died, stale):
        trial.suggest_float("x", 0, 1)
        study._storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
        _beat_an_hour_ago(study, trial)
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    assert result.exit_code == 0, result.output
    assert " ".join(result.stdout.split()) == (
        "marked 1 dead worker's trial and 1 stale trial FAIL: #0, #1; their values are queued to run again"
    )
    reasons = [t.user_attrs.get("fail_reason") for t in study.get_trials(deepcopy=False)][:2]
    assert reasons[0] == f"worker died (pid {gone.pid})" and reasons[1].startswith("stale: no heartbeat")


def test_fail_stale_without_heartbeat_marks_the_trials_of_dead_processes_of_this_machine(
    tmp_path: Path,
) -> None:
    # It refused without --all-running even where the trial's process, of this very machine, was gone.
    from hpotool.owners import owner

    url = f"journal:{tmp_path / 's.log'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    dead_here, elsewhere = study.ask(), study.ask()
    dead_here.suggest_float("x", 0, 1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dead_here.set_user_attr("worker", {**owner(), "pid": dead.pid})
    elsewhere.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.replace("\n", " ") == (  # not "stale": its process is gone
        "marked 1 dead worker's trial FAIL: #0; its values are queued to run again left 1 running trial alone, of live processes or other machines "
        "(this storage has no heartbeat to tell a dead worker from a live one; once every worker is stopped, run "
        "again with --all-running): #1 "
    )
    trials = optuna.load_study(study_name="s", storage=make_storage(url)).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert trials[2].system_attrs["fixed_params"] == dead_here.params
    assert trials[2].user_attrs == {"retry_of": 0}


def test_fail_stale_without_heartbeat_leaves_the_trials_of_live_processes_of_this_machine_alone(
    tmp_path: Path,
) -> None:
    # Beside a live `--workers` run on a journal file, fail-stale (safe while other workers run) exited 2,
    # telling the user to stop every worker and run it again with --all-running, which fails the live trials.
    from hpotool.owners import owner

    url = f"journal:{tmp_path / 's.log'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    live = study.ask()
    live.suggest_float("x", 0, 1)
    live.set_user_attr("worker", owner())  # this very process: alive, of this machine
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.replace("\n", " ") == (
        f"no stale trial: nothing marked FAIL left 1 running trial alone, of live processes of this machine: "
        f"#0 (pid {os.getpid()}) "
    )
    trials = optuna.load_study(study_name="s", storage=make_storage(url)).get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING]


def test_fail_stale_says_whose_values_it_queued_again(tmp_path: Path) -> None:
    # It said "marked 3 stale trial(s) FAIL: #2, #3, #4", and nothing of the retries it queued (or did not).
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    url = f"journal:{tmp_path / 's.log'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    for _ in range(2):  # #0 died, and its retry #1 too
        study.add_trial(
            create_trial(
                state=TrialState.FAIL, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}
            )
        )
    retry_count = {"failed_trial": 0, "retry_history": [0, 1]}
    study.add_trial(
        create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": {"x": 0.5}, **retry_count})
    )
    twice_retried, fresh = study.ask(), study.ask()
    study.ask()  # #4 draws nothing
    twice_retried.suggest_float("x", 0, 1)
    fresh.suggest_float("x", 0, 1)
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url, "--all-running"])
    assert result.exit_code == 0, result.output
    assert " ".join(result.stdout.split()) == (
        "marked 3 stale trials FAIL: #2, #3, #4; the values of #3 are queued to run again, not those of #2, #4 "
        "(they drew no values, or had their values retried already)"
    )
    trials = optuna.load_study(study_name="s", storage=make_storage(url)).get_trials()
    assert [t.number for t in trials if t.state == TrialState.WAITING] == [5]
    assert trials[5].params == fresh.params and trials[5].system_attrs["retry_history"] == [3]
    # One trial, counted in the singular: #3's retry #5 is queued again, and #5's retry #6 is not (Optuna's
    # count of retries, MAX_RETRY = 2).
    for number, retries in (
        (5, "its values are queued to run again"),
        (6, "its values are not queued again"),
    ):
        assert study.ask().number == number
        result = CliRunner().invoke(
            app, ["fail-stale", "--study-name", "s", "--storage", url, "--all-running"]
        )
        assert " ".join(result.stdout.split()).startswith(f"marked 1 stale trial FAIL: #{number}; {retries}")
    assert "(it drew no values, or had its values retried already)" in " ".join(result.stdout.split())


def test_fail_stale_without_heartbeat_needs_all_running(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 's.log'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("worker", {"host": "elsewhere", "pid": 1})  # as run_trials records it
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    assert result.exit_code == 2 and result.stderr == (
        "error: study 's': its running trials (#0) belong to live processes or to other machines, and this "
        "storage has no heartbeat to tell a dead worker from a live one; stop every worker, then run again with "
        "--all-running\n"
    )
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url, "--all-running"])
    assert result.exit_code == 0
    assert (
        result.stdout.replace("\n", " ")
        == "marked 1 stale trial FAIL: #0; its values are queued to run again "
    )
    trials = optuna.load_study(study_name="s", storage=make_storage(url)).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs["fail_reason"] == "stale: marked failed by fail-stale"
    # The retry is a new run: neither the dead run's failure nor its worker, which it would keep once COMPLETE.
    assert trials[1].user_attrs == {} and trials[1].params == trial.params
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    retried = study.get_trials(deepcopy=False)[1]
    assert retried.state == TrialState.COMPLETE and "fail_reason" not in retried.user_attrs


def test_a_dead_local_worker_s_retry_carries_only_retry_of(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=make_storage(f"journal:{tmp_path / 's.log'}"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": int(gone.stdout)})
    assert fail_dead_local_trials(study) == [0]
    dead, retry = study.get_trials(deepcopy=False)
    assert (
        dead.state == TrialState.FAIL
        and dead.user_attrs["fail_reason"] == f"worker died (pid {int(gone.stdout)})"
    )
    assert retry.state == TrialState.WAITING and retry.user_attrs == {"retry_of": 0}
    assert retry.system_attrs["fixed_params"] == trial.params  # enqueued: run with the same values


def test_a_dead_worker_s_trial_of_interrupted_values_is_retried_once(tmp_path: Path) -> None:
    # Ctrl-C, then the resume queued the interrupted trial's values (retry_of: the interrupted trial), and
    # the OOM killer took that trial: its values were not queued again, as if they had died once already,
    # and never ran. Now a death after an interrupt is retried once; a second death is not.
    study = optuna.create_study(study_name="s", storage=make_storage(f"journal:{tmp_path / 's.log'}"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_worker = {"host": socket.gethostname(), "pid": int(gone.stdout)}
    interrupted = study.ask()
    point = {"x": interrupted.suggest_float("x", 0, 1)}
    interrupted.set_user_attr("fail_reason", "interrupted")
    study.tell(interrupted, state=TrialState.FAIL)
    study.enqueue_trial(point, user_attrs={"retry_of": interrupted.number})  # as prepare_resume queues it
    for number in (1, 2):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("worker", dead_worker)
        assert trial.number == number and fail_dead_local_trials(study) == [number]
    trials = study.get_trials(deepcopy=False)
    assert [(t.state, t.user_attrs.get("retry_of")) for t in trials] == [
        (TrialState.FAIL, None),
        (TrialState.FAIL, 0),
        (TrialState.FAIL, 1),  # the retry of the first death, dead in turn: not queued again
    ]
    assert all(t.params == point for t in trials)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("how", ["kill -9", "heartbeat"])
def test_a_dead_trial_s_retry_outside_a_narrowed_range_does_not_run(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], how: str
) -> None:
    # A worker killed mid-trial, then the study resumed with a narrower range (--allow-changed-config): the
    # dead trial's queued retry ran its old value, outside the new range, as a trial of the new experiment
    # (and its best), with only Optuna's warning ("Fixed parameter ... is out of range"), or none at all
    # for the heartbeat's retry, which carries its old params.
    opt_dict["n_trials"] = 1
    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
    )
    study, _ = open_study(plan)
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True)  # drawn before its worker was killed
    if how == "kill -9":
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        trial.set_user_attr("worker", {**owner(), "pid": int(gone.stdout)})
    else:  # the heartbeat (or fail-stale) failed it and queued its retry
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        retry_stale_trial(study, study._storage.get_trial(trial._trial_id))
    lr = study.trials[0].params["optimizer.lr"]
    narrowed = {"type": "float", "low": 1e-4, "high": lr / 2, "log": True}
    opt_dict["search_space"] = {**opt_dict["search_space"], "optimizer.lr": narrowed}
    plan = prepare_study(
        tmp_path / "run.yaml",
        write_yaml(tmp_path / "opt.yaml", opt_dict),
        Overrides(allow_changed_config=True),
    )
    summary = run_study(plan)
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    (ran,) = [t for t in trials if t.state == TrialState.COMPLETE]
    assert 1e-4 <= ran.params["optimizer.lr"] <= lr / 2 and summary.counts["complete"] == 1
    (retry,) = [t for t in trials if t.number == 1]
    assert retry.state == TrialState.FAIL and retry.user_attrs["fail_reason"].startswith(
        "dropped: optimizer.lr="
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_warm_start_whose_worker_died_before_drawing_its_values_runs_on_resume(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A worker of this machine that took the queued warm start and was killed before its trial drew the
    # values (while it waited for earlier brute-force draws, say) left a trial with no params: it was failed
    # but not queued again, and as its queued values counted as tried, the warm start never ran.
    point = {"optimizer.lr": 0.0123, "model.hidden.0": 16}
    opt_dict.update(n_trials=2, enqueue=[point])
    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
    )
    study, _ = open_study(plan)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    taken = study.ask()  # the warm start, taken from the queue
    taken.set_user_attr("worker", {**owner(), "pid": int(gone.stdout)})
    run_study(plan)
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert [t.user_attrs["fail_reason"][:11] for t in trials if t.state == TrialState.FAIL] == ["worker died"]
    assert [t.params for t in trials if t.state == TrialState.COMPLETE].count(point) == 1


def test_a_stale_warm_start_that_drew_no_values_is_queued_again() -> None:
    # The heartbeat's retry (SQLite, PostgreSQL, MySQL) left out every trial without values: a warm start
    # whose worker died right after taking it from the queue never ran.
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.25})
    taken = study.ask()
    study._storage.set_trial_state_values(taken._trial_id, TrialState.FAIL)
    retry_stale_trial(study, study._storage.get_trial(taken._trial_id))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert study.trials[1].params == {"x": 0.25} and study.trials[1].system_attrs["failed_trial"] == 0


def test_workers_flag_runs_the_study_from_the_cli(configs: tuple[Path, Path]) -> None:
    run, opt = configs
    result = CliRunner().invoke(
        app, ["optimize", "-r", str(run), "-o", str(opt), "--workers", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "3/3 finished" in result.stdout
    assert result.stderr.count("COMPLETE") == 3  # every worker's trial is shown by the main process


def test_overrides_reach_the_workers(configs: tuple[Path, Path]) -> None:
    plan = prepare_study(*configs, Overrides(n_trials=4))
    counts = run_workers(plan, 2).counts
    # no WAITING trial asked in a race for the last slot (the workers ask one at a time: `slot_lock`)
    assert counts == {"complete": 4}


def test_workers_asking_for_the_last_slot_together_leave_no_waiting_trial(tmp_path: Path) -> None:
    # Trials that end together (`ends_on_the_tick`): the 4 workers asked for the one slot left at the same
    # moment, each counting it free, and those whose trial came later sent it back untrained, so the run
    # ended with a WAITING trial nobody asked for (README, Several workers on one machine). Now the workers of
    # a machine count and ask one at a time (`slot_lock`). Before, about 4 runs of 9 did (this test of 6 runs
    # failed in 5 tries of 5).
    run = {"epochs": 1, "trainer": {"function": "tests.trainers:ends_on_the_tick", "x": 0.5}}
    space = {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}}
    for attempt in range(6):
        url = f"sqlite:///{tmp_path / f'tick{attempt}.db'}"
        opt = {"study_name": "tick", "n_trials": 5, "seed": attempt, "storage": url, "search_space": space}
        paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "optimize.yaml", opt)
        with _chdir(REPO):
            counts = run_workers(prepare_study(*paths), 4).counts
        states = [t.state for t in optuna.load_study(study_name="tick", storage=url).trials]
        assert counts == {"complete": 5} and states == [TrialState.COMPLETE] * 5, (attempt, counts, states)


def test_a_studys_slot_lock_is_one_file_wherever_its_commands_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpotool.slot_lock import slot_lock_path

    (tmp_path / "studies").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "studies")
    monkeypatch.chdir(tmp_path)
    mine = slot_lock_path("sqlite:///studies/s.db", "s")
    assert mine is not None and mine.parent.name == f"hpotool-slots-{os.getuid()}"
    assert slot_lock_path(f"sqlite:///{tmp_path}/link/s.db", "s") == mine  # a shell in another folder
    assert mine not in {slot_lock_path("sqlite:///studies/s.db", "t"), slot_lock_path("sqlite:///s.db", "s")}
    assert slot_lock_path(SERVERS["redis"], "s") not in {mine, slot_lock_path(SERVERS["postgres"], "s")}


def test_a_slot_lock_is_let_go_when_its_holder_dies(tmp_path: Path) -> None:
    import fcntl

    from hpotool.slot_lock import slot_lock

    path = tmp_path / "slots" / "s.lock"
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom hpotool.slot_lock import slot_lock\n"
        f"with slot_lock(Path({str(path)!r})):\n    print('held', flush=True)\n    time.sleep(600)\n"
    )
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=environ)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.kill()  # a crashed holder: the OS lets the lock go
            holder.wait(timeout=60)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    (tmp_path / "a-file").write_text("")
    with slot_lock(tmp_path / "a-file" / "s.lock"):  # no lock can be made there: the run goes on without one
        pass


def test_workers_on_a_finished_study_say_so(configs: tuple[Path, Path]) -> None:
    run, opt = configs
    args = ["optimize", "-r", str(run), "-o", str(opt), "--workers", "2", "-q"]
    assert CliRunner().invoke(app, args, catch_exceptions=False).exit_code == 0
    result = CliRunner().invoke(app, args, catch_exceptions=False)  # no worker is started
    assert result.exit_code == 0, result.output
    assert (
        "3/3 finished, 0 run now" in result.stdout
        and "the study already holds 3 finished trials" in result.stderr
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_run_now_counts_the_warm_start_s_queued_trials(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], workers: int
) -> None:
    opt_dict["enqueue"] = [{"optimizer.lr": 3e-3, "model.hidden.0": 16}, {"optimizer.lr": 1e-2}]
    plan = prepare_study(write_yaml(tmp_path / "r.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict))
    summary = run_study(plan) if workers == 1 else run_workers(plan, workers)
    assert summary.counts["complete"] == 3 and summary.ran_now == 3


def test_two_commands_on_one_study_each_count_only_their_own_trials(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    args = _slow_configs(tmp_path, run_dict, opt_dict, 6)
    workers = _hpotool([*args, "--json"], tmp_path)  # 2 workers
    try:
        study = _study_of(opt_dict["storage"])
        _wait_for(lambda: _running_with_epochs(study))  # the second command joins while they train
        single = _in_this_process([*args[:-3], "--json"])  # 1 process: this one
        output, _ = workers.communicate(timeout=180)
    finally:
        _kill_session(workers)
    assert workers.returncode == 0, output
    # its stderr merged into stdout: the JSON between the progress lines and the notes that follow it
    start = output.index("\n{\n") + 1 if not output.startswith("{\n") else 0
    summaries = [json.loads(single.stdout), json.JSONDecoder().raw_decode(output, start)[0]]
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    ran_by_single = sum(t.user_attrs["worker"]["pid"] == os.getpid() for t in trials if t.state.is_finished())
    assert summaries[0]["ran_now"] == ran_by_single
    assert summaries[1]["ran_now"] == sum(t.state.is_finished() for t in trials) - ran_by_single


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_dead_pid_of_another_container_with_this_host_name_is_not_taken_for_a_dead_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Containers run with `--network host` share the machine's host name, each with its own pids: a worker
    # in one took a live trial of the other (a pid it could not see) for a dead worker's and failed it.
    import socket
    import subprocess
    import sys

    from hpotool import dead_trials, owners
    from hpotool.study_sampler import process_salt

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = os.stat("/proc/self/ns/pid").st_ino
    study = optuna.create_study(study_name="s", storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"))
    elsewhere, dead = study.ask(), study.ask()
    elsewhere.set_user_attr("worker", {"host": socket.gethostname(), "pid": gone.pid, "pidns": here + 1})
    dead.set_user_attr("worker", {"host": socket.gethostname(), "pid": gone.pid, "pidns": here})
    assert dead_trials.fail_dead_local_trials(study) == [dead.number]
    assert study.get_trials(states=(TrialState.RUNNING,))[0].number == elsewhere.number
    assert owners.owner()["pidns"] == here
    # and the two containers' processes draw their own values, even with the same pid
    salt = process_salt()
    monkeypatch.setattr(owners, "pid_namespace", lambda: here + 1)
    assert process_salt() != salt


def test_fail_stale_finds_a_journal_study_under_studies_as_the_other_commands_do(tmp_path: Path) -> None:
    # It said "no such SQLite file 'studies/s.db'", where trials and report name the journal file the
    # study is in, and the studies that exist.
    (tmp_path / "studies").mkdir()
    optuna.create_study(study_name="s", storage=make_storage(f"journal:{tmp_path / 'studies' / 's.log'}"))
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s"])
    assert result.exit_code == 2
    assert (
        result.stderr
        == "error: no study 's' in studies/s.db: it is in journal:studies/s.log; give --storage journal:studies/s.log\n"
    )
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "t"])
    assert result.exit_code == 2 and "studies under studies/: s (journal:studies/s.log)" in result.stderr


class _Relay:
    """A TCP relay to a server, which a test takes away mid-study: closing it drops every connection through
    it and refuses new ones, as a database server that went down does (the real one stays up for others)."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            self._relay(client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# One worker: the trial loop of this process meets the lost server (and PostgreSQL's heartbeat thread); two:
# each worker exits with LOST_STORAGE_EXIT, and the main process's own reads fail. Redis's errors are not
# SQLAlchemy's: with two workers they reach both a worker and the main process; the one-process loop turns
# them into the one line by the same code (`run_study` -> `lost_connection`) as PostgreSQL's.
@pytest.mark.parametrize(
    ("storage", "workers"), [("postgres", 1), ("postgres", 2), ("redis", 2)], indirect=["storage"]
)
def test_a_storage_server_that_goes_away_ends_the_study_in_one_line_and_it_resumes(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],
    workers: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server went down mid-study: a traceback from the trial loop (and one from every worker), exit 1.
    url, name = storage
    port = 6379 if url.startswith("redis") else 5432
    relay = _Relay(port)
    through = url.replace(f"127.0.0.1:{port}", f"127.0.0.1:{relay.port}")
    args = _slow_configs(tmp_path, run_dict, {**opt_dict, "storage": through, "study_name": name}, 3)
    args[args.index("--workers") + 1] = str(workers)
    proc = _hpotool(args, tmp_path)
    try:
        study = _study_of(url, name)
        _wait_for(lambda: _running_with_epochs(study))
        relay.close()
        proc.wait(timeout=60)
        output = proc.communicate(timeout=10)[0]
    finally:
        relay.close()
        _kill_session(proc)
    line = _error_line(proc, output)
    assert line.startswith(f"error: storage '{through}' stopped answering during the study (")
    assert "run the same command to resume" in line
    stranded = [t.number for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    assert stranded  # what could not be written when the server went away
    opt_path = Path(args[args.index("-o") + 1])  # the same study, reached directly: the server is back
    write_yaml(opt_path, {**yaml.safe_load(opt_path.read_text()), "storage": url})
    # A trial the server went away from before it recorded its owner is failed after the grace period. The
    # resume runs in this process (its workers take these settings from it, not from the worker server's
    # environment): only the run that loses its server needs a process of its own.
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "2")
    _in_this_process(args)
    trials = study.get_trials(deepcopy=False)
    reasons = [trials[n].user_attrs["fail_reason"] for n in stranded]
    assert all(r.startswith(("worker died", "abandoned")) for r in reasons), reasons
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def _local_ports(pid: int) -> set[int]:
    """The local TCP ports of process `pid`'s sockets (read from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed since the listing
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class _WorkerCut(_Relay):
    """A relay that can cut some processes off the server (`cut(pids)`: their connections dropped, new ones
    closed at once) while it passes on everyone else's: a worker that loses the storage while its command's
    main process still reaches it (a network fault on one process's connections, a server that ended them)."""

    def __init__(self, port: int) -> None:
        self.cut_off: set[int] = set()
        self.pairs: list[tuple[int, socket.socket, socket.socket]] = []  # (client's port, client, upstream)
        super().__init__(port)

    def _cut_ports(self) -> set[int]:
        return set().union(*(_local_ports(pid) for pid in self.cut_off)) if self.cut_off else set()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        port = client.getpeername()[1]
        if port in self._cut_ports():
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            return
        self.pairs.append((port, client, upstream))
        super()._relay(client, upstream)

    def cut(self, pids: set[int]) -> None:
        self.cut_off |= pids
        ports = self._cut_ports()
        for port, client, upstream in self.pairs:
            if port in ports:
                for s in (client, upstream):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("storage", ["redis"], indirect=True)
def test_workers_that_lose_a_redis_journal_while_their_main_process_reaches_it_are_named_with_their_cause(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], storage: tuple[str, str]
) -> None:
    # Every worker of `--workers 2` lost its connection to the Redis server that keeps the study's journal,
    # while their main process still reached it: the line named the first worker's error alone, and said
    # "those that were running stay RUNNING there", where the main process had failed them ("worker died")
    # and queued their values again. Now it names each worker that lost the storage, each cause once, and
    # what became of their trials; the same command finishes the study.
    url, name = storage
    relay = _WorkerCut(6379)
    through = url.replace("127.0.0.1:6379", f"127.0.0.1:{relay.port}")
    args = _slow_configs(tmp_path, run_dict, {**opt_dict, "storage": through, "study_name": name}, 6)
    proc = _hpotool(args, tmp_path)
    try:
        study = _study_of(url, name)

        def both_training() -> list[optuna.trial.FrozenTrial]:
            running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
            trained = [t for t in running if t.params and "worker" in t.user_attrs and t.intermediate_values]
            return trained if len(trained) == 2 else []

        victims = _wait_for(both_training)
        relay.cut({t.user_attrs["worker"]["pid"] for t in victims})
        output = proc.communicate(timeout=60)[0]
    finally:
        relay.close()
        _kill_session(proc)
    line = _error_line(proc, output)
    assert re.fullmatch(
        rf"error: storage '{re.escape(through)}' stopped answering during the study \("
        # Redis's or redis-py's words, without redis-py's class name ("ConnectionError: ") and full stop
        r"hpotool-worker-[01], hpotool-worker-[01]: (?!ConnectionError)[^;]+[^.]\); the trials it holds are kept, "
        r"and the trials that were running are marked FAIL \('worker died'\), their parameters queued again\. "
        r"Once it answers again, run the same command to resume",
        line,
    ), output
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    for victim in victims:
        assert trials[victim.number].user_attrs["fail_reason"].startswith("worker died")
        assert any(t.user_attrs.get("retry_of") == victim.number for t in trials)
    opt_path = Path(args[args.index("-o") + 1])  # the same study, reached directly
    write_yaml(opt_path, {**yaml.safe_load(opt_path.read_text()), "storage": url})
    _in_this_process(args)  # the same command, resuming: in this process, as nothing signals it
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) == 6


def test_the_causes_of_a_lost_storage_are_named_once_each_after_the_processes_that_met_them() -> None:
    from hpotool.worker_problems import lost_causes

    refused = "ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."
    closed = "ConnectionError: Connection closed by server."
    assert lost_causes(
        [("hpotool-worker-1", closed), ("hpotool-worker-0", refused), ("hpotool-worker-2", closed)]
    ) == (f"hpotool-worker-1, hpotool-worker-2: {closed}; hpotool-worker-0: {refused}")
    assert lost_causes([("the main process", closed), ("hpotool-worker-0", closed)]) == (
        f"the main process, hpotool-worker-0: {closed}"
    )


@contextlib.contextmanager
def _sqlite_locked(db: Path) -> Iterator[Any]:
    """Another process's write lock on the SQLite file `db`, as a sqlite3 shell holds it after `BEGIN
    EXCLUSIVE;` (a WAL database's readers read on); the connection that holds it."""
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _sqlite_locked_mid_trial(db: Path, study: optuna.Study) -> Iterator[optuna.trial.FrozenTrial]:
    """`_sqlite_locked` taken while a worker trains a trial (`_running_with_epochs`), and that trial, read
    again under the lock: still RUNNING, and kept so by the lock. Read only before the lock, it could end in
    the moment before the lock was taken (a test process descheduled on a loaded machine, or waiting out a
    worker's write to take the lock), and the test then saw a COMPLETE trial where it expects one the lock
    caught; the lock is let go and taken again until it catches the trial it read."""
    while True:
        caught = _wait_for(lambda: _running_with_epochs(study))
        with _sqlite_locked(db) as conn:
            (state,) = conn.execute(
                "SELECT state FROM trials WHERE trial_id = ?", (caught._trial_id,)
            ).fetchone()
            if state == TrialState.RUNNING.name:
                yield caught
                return


def _lock_test(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], n: int
) -> tuple[list[str], str, Path]:
    """A lock test's command (`_slow_configs` of `n` trials), its study's SQLite URL and that file."""
    url = opt_dict["storage"]
    return _slow_configs(tmp_path, run_dict, opt_dict, n), url, Path(url.removeprefix("sqlite:///"))


def _lock_line(url: str, db: Path, causes: str, timeout: int, resume: str) -> str:
    where = str(db.resolve())
    return (
        f"error: storage {url!r}: another process kept {where!r} locked for over {timeout} s, so this command "
        f"could not write to it ({causes}). Wait for that process to finish, or end it or its open transaction "
        f"(a sqlite3 shell, a database browser; fuser {where} lists the processes that have the file open), "
        f"then run the same command to resume: {resume}"
    )


LOCKED = "database is locked"
LEFT_RUNNING = "it marks any trial left RUNNING FAIL ('worker died') and runs its parameters again"


def test_workers_on_a_sqlite_study_another_process_keeps_locked_say_so_in_one_line(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `sqlite3 studies/tiny.db 'BEGIN EXCLUSIVE;'` held open beside `optimize --workers 2`: after the busy
    # timeout the command said the storage "stopped answering during the study ... once it answers again",
    # naming neither the file nor the lock. Now one line names the file, the lock and what to do.
    args, url, db = _lock_test(tmp_path, run_dict, opt_dict, 2)
    _in_this_process([*args[:-3], "-q", "--n-trials", "1"])  # the study, with one trial
    with _sqlite_locked(db):
        code, output = _run_hpotool(args, tmp_path, HPOTOOL_SQLITE_BUSY_TIMEOUT="1")
    assert code == 2, output
    assert output.strip() == _lock_line(url, db, LOCKED, 1, LEFT_RUNNING), output
    trials = _study_of(url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE]  # nothing written, nothing half-written


def _a_worker_refused_a_write(db: str, held: bool, problems: Any, stop: Any) -> None:
    """A worker's write to the SQLite study `db` failing on "database is locked", told to the main process
    as a worker tells it (`_end_on_a_storage_error`, which exits): where `held` (another connection holds
    the file's write lock, as a sqlite3 shell would), after the busy timeout; otherwise at once, as WAL
    refuses a write on a connection whose read began before another connection's write (the storage's own
    connections, the read held open here)."""
    import functools

    import sqlalchemy.exc

    from hpotool.rdb_storage import created_rdb_storage
    from hpotool.sqlite_files import connect_sqlite
    from hpotool.worker_process import _end_on_a_storage_error

    os.environ["HPOTOOL_SQLITE_BUSY_TIMEOUT"] = "1"  # the test's: importing the tests' conftest dropped it
    url = f"sqlite:///{db}"
    storage = created_rdb_storage(url, {"creator": functools.partial(connect_sqlite, db)})
    engine = storage._backend.engine  # type: ignore[attr-defined]
    try:
        with engine.connect() as reading, _sqlite_locked(Path(db)) if held else contextlib.nullcontext():
            if not held:
                rows = reading.exec_driver_sql("SELECT trial_id FROM trials")
                rows.cursor.fetchone()  # the read, halfway through its rows, holds its snapshot
                with engine.begin() as other:
                    other.exec_driver_sql("UPDATE studies SET study_name = 't'")
            reading.exec_driver_sql("UPDATE studies SET study_name = 's'")
    except sqlalchemy.exc.OperationalError as exc:
        _end_on_a_storage_error(exc, "s", url, problems, stop)


@pytest.mark.parametrize("held", [False, True])
def test_a_workers_write_refused_at_once_is_said_as_one_process_says_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    # A worker passes its error to the main process as text, which said nothing of how long the write
    # waited: a write SQLite refused a worker at once (no lock held for long) was said as "another process
    # kept ... locked for over 60 s", which one process no longer says. Now the wait goes with the text, and
    # the line is one process's: the new one at once, the old one for a lock held past the busy timeout.
    import functools
    import multiprocessing

    from hpotool.rdb_storage import created_rdb_storage
    from hpotool.sqlite_files import connect_sqlite
    from hpotool.storage_faults import storage_lost
    from hpotool.worker_problems import LOST_STORAGE_EXIT, Problems, lost_causes

    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    storage = created_rdb_storage(url, {"creator": functools.partial(connect_sqlite, str(db))})
    study = optuna.create_study(storage=storage, study_name="s")
    for _ in range(3):
        study.enqueue_trial({})
    monkeypatch.setenv("HPOTOOL_SQLITE_BUSY_TIMEOUT", "1")  # the worker's too
    ctx = multiprocessing.get_context("spawn")
    problems = Problems()
    problems.queue, stop = ctx.SimpleQueue(), ctx.Event()  # kept till the worker has them
    worker = ctx.Process(
        target=_a_worker_refused_a_write,
        args=(str(db), held, problems.queue, stop),
        name="hpotool-worker-0",
    )
    worker.start()
    worker.join()
    assert worker.exitcode == LOST_STORAGE_EXIT
    problems.drain()
    lost = problems.lost([worker])
    said = str(storage_lost(url, lost_causes(lost), waited=problems.lock_waited([worker])))
    if held:
        assert "error: " + said == _lock_line(url, db, f"hpotool-worker-0: {LOCKED}", 1, LEFT_RUNNING), said
        return
    assert "another process" not in said, said
    where = str(db.resolve())
    assert re.fullmatch(
        rf"storage {re.escape(repr(url))}: SQLite refused a write to {re.escape(repr(where))} after \d+\.\d s, "
        r"without waiting for a lock \(hpotool-worker-0: database is locked: a connection still reading the file "
        r"cannot write once another connection has written to it or holds its write lock\), so this command "
        r"could not write to it\. No process need be holding the file; then run the same command to resume: "
        rf"{re.escape(LEFT_RUNNING)}",
        said,
    ), said


@pytest.mark.parametrize("workers", [2, 1])
def test_a_lock_held_for_seconds_while_the_run_waits_is_said_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], workers: int
) -> None:
    # Another process held the study's SQLite file locked for a while (under the busy timeout, 60 s): the
    # run waited, silent, as long as the lock lasted (up to a minute per write). Now a note says, after a
    # few seconds, which file is locked and what the run waits for; the run goes on once the lock is gone.
    args, url, db = _lock_test(tmp_path, run_dict, opt_dict, 3)
    args = args if workers > 1 else [*args[:-3], "-q"]
    # The note comes after lock_watch.NOTE_AFTER_S (5 s), here 2 s (still far longer than the run's own
    # writes, milliseconds).
    note_after = "import hpotool.lock_watch\nhpotool.lock_watch.NOTE_AFTER_S = 2.0"
    proc = _hpotool(args, tmp_path, before=note_after, HPOTOOL_SQLITE_BUSY_TIMEOUT="60")
    try:
        study = _study_of(url)
        _wait_for(lambda: [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING])
        assert proc.stdout is not None
        lines = []
        # Held until the note comes, 2 s on (NOTE_AFTER_S above): a fixed 9 s was outlasted by a loaded
        # machine's probes. Were it never to come, the run stops after its busy timeout, saying so.
        with _sqlite_locked(db):
            for line in proc.stdout:
                lines.append(line)
                if "locked" in line:
                    break
        output = "".join(lines) + proc.communicate(timeout=120)[0]
    finally:
        _kill_session(proc)
    assert proc.returncode == 0, output
    where = str(db.resolve())
    note = (
        f"note: another process has kept the study's SQLite file {where!r} locked for over 2 s; this run waits "
        f"for it, up to 60 s per write (HPOTOOL_SQLITE_BUSY_TIMEOUT), then stops. End that process or its open "
        f"transaction (a sqlite3 shell, a database browser; fuser {where} lists the processes that have the "
        f"file open)"
    )
    assert [line for line in output.splitlines() if "locked" in line] == [note], output
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) == 3


def test_a_lock_taken_while_workers_train_ends_the_run_in_one_line_and_the_study_resumes(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # The lock taken mid-study: a worker whose write waited it out told its trial FAIL with Optuna's
    # "StorageInternalError: ... invalid data in the commit, e.g. exceeding max length" (once the lock was
    # gone), its values never run again. Now every process that met the lock is named, the trials it
    # caught stay RUNNING, and the same command fails them ('worker died') and runs their values again.
    args, url, db = _lock_test(tmp_path, run_dict, opt_dict, 6)
    proc = _hpotool(args, tmp_path, HPOTOOL_SQLITE_BUSY_TIMEOUT="1")
    try:
        study = _study_of(url)
        with _sqlite_locked_mid_trial(db, study) as caught:
            output = proc.communicate(timeout=60)[0]
    finally:
        _kill_session(proc)
    line = _error_line(proc, output)
    names = re.search(r"could not write to it \((.*): database is locked\)", line)
    assert names is not None and "the main process" in names.group(1), line
    assert line == _lock_line(url, db, f"{names.group(1)}: {LOCKED}", 1, LEFT_RUNNING), line
    trials = study.get_trials(deepcopy=False)
    assert trials[caught.number].state == TrialState.RUNNING
    assert not [t for t in trials if "StorageInternalError" in str(t.user_attrs.get("fail_reason"))]
    _in_this_process(args)  # the same command, resuming: in this process, as nothing signals it
    trials = study.get_trials(deepcopy=False)
    assert trials[caught.number].user_attrs["fail_reason"].startswith("worker died")
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == caught.number]
    assert retry.state == TrialState.COMPLETE and retry.params == caught.params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert not [t for t in trials if t.state == TrialState.RUNNING]


class _Tripwire(_Relay):
    """A relay that goes away when the client sends `trigger` (a query the command makes after it opened
    the storage), dropping every connection instead of passing it on."""

    def __init__(self, port: int, trigger: bytes) -> None:
        self.trigger = trigger
        super().__init__(port)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._watch, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _watch(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.trigger in data:
                    self.close()
                    return
                upstream.sendall(data)


@pytest.mark.parametrize(
    "command", [["trials"], ["export-best", "--out", "best"], ["report", "--out", "r.html"]]
)
@pytest.mark.parametrize("storage", ["postgres", "mysql"], indirect=True)
def test_a_storage_server_that_goes_away_while_a_command_reads_is_one_line(
    tmp_path: Path, storage: tuple[str, str], command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # trials, export-best and report printed a traceback; optimize said it in one line.
    from hpotool.config import RunConfig

    url, name = storage
    study = optuna.create_study(study_name=name, storage=make_storage(url))
    study.set_user_attr("run_config", RunConfig().model_dump(mode="json"))
    study.optimize(lambda t: t.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True), n_trials=2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best").mkdir()  # an earlier export and report, left as they were
    (tmp_path / "best" / "best_run.yaml").write_text("earlier\n")
    (tmp_path / "r.html").write_text("earlier\n")
    port = 5432 if url.startswith("postgresql") else 3306
    relay = _Tripwire(port, b"SELECT trials.trial_id, trials.number")  # the first read of the trials
    through = url.replace(f"127.0.0.1:{port}", f"127.0.0.1:{relay.port}")
    try:
        result = CliRunner().invoke(app, [*command, "--study-name", name, "--storage", through])
    finally:
        relay.close()
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    # the server's or driver's own words, without "OperationalError: (psycopg.OperationalError) "
    assert re.match(
        rf"error: storage '{re.escape(through)}' stopped answering \([A-Za-z][^()]+\); ", result.stderr
    ), result.stderr
    assert result.stderr.endswith(
        "; the study it holds is kept: once the server answers again, run the same command\n"
    )
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["best", "best_run.yaml", "r.html"]
    assert (
        (tmp_path / "best" / "best_run.yaml").read_text() == (tmp_path / "r.html").read_text() == "earlier\n"
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
def test_a_heartbeat_while_the_server_is_away_is_skipped_without_a_traceback(
    storage: tuple[str, str],
) -> None:
    # Optuna beats from its own thread: the server gone, that thread printed a traceback mid-study, before
    # the trial loop's one line.
    url, name = storage
    relay = _Relay(5432)
    try:
        through = make_storage(url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}"))
        trial = optuna.create_study(study_name=name, storage=through).ask()
        relay.close()
        through.record_heartbeat(trial._trial_id)  # raised OperationalError
    finally:
        relay.close()


def _machine_a_creates_the_study(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],
    n: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Machine A, in its folder machA with its copies of the configs, creates the study and runs its `n`
    trials (in this process, left in that folder)."""
    (tmp_path / "machA").mkdir()
    run, opt = _study_configs(tmp_path / "machA", run_dict, opt_dict, storage, n)
    monkeypatch.chdir(tmp_path / "machA")
    made = CliRunner().invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "-q"], catch_exceptions=False)
    assert made.exit_code == 0, made.output


def test_a_machine_joins_a_study_with_only_its_storage_url_and_name(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The configs are stored on the study, yet a second machine had to bring copies of both files:
    # `optimize --storage URL --study-name NAME` stopped at "Missing option '--run-config'".
    _machine_a_creates_the_study(tmp_path, run_dict, opt_dict, storage, 2, monkeypatch)
    (tmp_path / "machB").mkdir()
    monkeypatch.chdir(tmp_path / "machB")  # no configs here
    args = ["optimize", "--storage", storage[0], "--study-name", storage[1], "--n-trials", "4", "-q"]
    joined = CliRunner().invoke(app, args, catch_exceptions=False)
    assert joined.exit_code == 0, joined.output
    study = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 4
    # the stored run config trained them: 1 epoch (the tiny config's default is 2)
    assert all(len(t.intermediate_values) == 1 for t in finished)
    assert "config_changes" not in study.user_attrs


@pytest.mark.parametrize("storage", ["sqlite", "postgres"], indirect=True)
def test_a_machine_joining_by_name_before_the_study_exists_waits_for_its_creator(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cluster script starts every machine at once; one joining by name found no study yet (its creator was
    # still importing torch and checking the data) and failed at once: "no study ... studies there: none".
    (tmp_path / "machB").mkdir()
    args = ["optimize", "--storage", storage[0], "--study-name", storage[1], "-q"]
    joiner = _hpotool(args, tmp_path / "machB")
    try:
        assert joiner.stdout is not None
        first = joiner.stdout.readline()  # once it has looked for the study and not found it
        # a server shared with other tests may hold a study of a close name, which the note suggests
        # (a SQLite file not made yet is named: the creator makes it)
        assert re.fullmatch(
            rf"note: (no study {storage[1]!r} there yet( \(did you mean 'hpotool-test-\w+'\?\))?|no SQLite file "
            rf"'[^']+' yet): waiting up to 120 s for the machine that creates (it|study {storage[1]!r} in it) "
            rf"\(HPOTOOL_JOIN_WAIT sets how long\)\n",
            first,
        ), first
        _machine_a_creates_the_study(tmp_path, run_dict, opt_dict, storage, 4, monkeypatch)
        output, _ = joiner.communicate(timeout=180)
    finally:
        _kill_session(joiner)
    assert joiner.returncode == 0, first + output
    assert "error" not in output
    study = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
    # less a trial the two machines asked in a race at the end, sent back to the queue untrained (a spare
    # the next `ask` takes; seen once with four test processes at once)
    trials = [t for t in study.get_trials(deepcopy=False) if not _spare(t)]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4 and len(trials) == 4


# Python run by a command before hpotool: Ctrl-C (SIGINT) comes as a connection check (SQLAlchemy's pre-ping,
# as a pooled PostgreSQL connection is taken) has sent its query, and is raised in the driver's own Python
# code that waits for the answer, as a user's Ctrl-C often is. Which check, by CTRL_C_AT: a number, the
# command's check of that number (`trials`: the first opens the storage, the fourth loads the study);
# `after-note`, the first after the join wait's note; `trial-setup`, the first as the run sets up its third
# trial (`TrialSetup`: its slot, its point, its owner). Once.
CTRL_C_IN_A_PING = """
import os, signal
import psycopg
from sqlalchemy.dialects.postgresql import _psycopg_common
import hpotool.joining, hpotool.trial_setup
at = os.environ["CTRL_C_AT"]
state = {"pings": 0, "noted": False, "setting_up": False, "pinging": False, "sent": False}
ping, execute_gen = _psycopg_common._PGDialect_common_psycopg.do_ping, psycopg.Cursor._execute_gen
await_study, set_up = hpotool.joining.await_study, hpotool.trial_setup.TrialSetup.__call__
def do_ping(self, connection):
    state["pings"] += 1
    when = {"after-note": state["noted"], "trial-setup": state["setting_up"]}
    state["pinging"] = not state["sent"] and when.get(at, str(state["pings"]) == at)
    try:
        return ping(self, connection)
    finally:
        state["pinging"] = False
def _execute_gen(self, *args, **kwargs):
    inner = execute_gen(self, *args, **kwargs)
    if not state["pinging"]:
        return (yield from inner)
    state["sent"] = True
    sent = yield next(inner)  # the query is on its way: the connection is busy with it
    os.kill(os.getpid(), signal.SIGINT)
    return (yield from inner)
def noting_await_study(study_name, storage_url, find, limit, on_wait=None):
    def noted(text):
        on_wait(text)
        state["noted"] = True
    return await_study(study_name, storage_url, find, limit, noted)
def setting_up(self, trial):
    state["setting_up"] = trial.number == 2
    try:
        return set_up(self, trial)
    finally:
        state["setting_up"] = False
_psycopg_common._PGDialect_common_psycopg.do_ping = do_ping
psycopg.Cursor._execute_gen = _execute_gen
hpotool.joining.await_study = noting_await_study
hpotool.trial_setup.TrialSetup.__call__ = setting_up
"""


@pytest.mark.parametrize(
    ("command", "at"),
    [("join", "after-note"), ("trials", "1"), ("trials", "4"), ("optimize", "trial-setup")],
    ids=["join-wait", "opening-the-storage", "loading-the-study", "setting-up-a-trial"],
)
def test_ctrl_c_during_a_query_ends_the_command_as_an_interrupt(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], command: str, at: str
) -> None:
    # Ctrl-C as a command queried PostgreSQL: psycopg cancelled the query, and SQLAlchemy's connection check
    # then failed on the cancelled connection ("can't change 'autocommit' now"). That error, raised as the
    # interrupt was handled, took its place: as the storage opened, it was said as the storage's fault
    # ('error: ... cannot open it: An exception is raised during the commit ...'), and a machine waiting for
    # its study's creator took it for a study still missing and waited on, Ctrl-C ignored, until its wait ran
    # out (exit 2, 'no study'); as the study loaded, a 150-line traceback and exit code 1; as a run set up a
    # trial, the trial stayed RUNNING and the run said 'no trial was running'.
    url, name = _server_url("postgres"), unique_name()
    args = {
        "join": ["optimize", "--storage", url, "--study-name", name, "-q"],
        "trials": ["trials", "--storage", url, "--study-name", name],
        "optimize": _optimize_args(
            tmp_path, run_dict, {**opt_dict, "storage": url, "study_name": name, "n_trials": 20}
        ),
    }[command]
    if command == "trials":
        optuna.create_study(study_name=name, storage=url)
    try:
        proc = _hpotool(args, tmp_path, before=CTRL_C_IN_A_PING, CTRL_C_AT=at, HPOTOOL_JOIN_WAIT="30")
        try:
            output, _ = proc.communicate(timeout=120)
        finally:
            _kill_session(proc)
        running = [t.number for t in _trials_if_any(name, url) if t.state == TrialState.RUNNING]
    finally:
        if command != "join":
            optuna.delete_study(study_name=name, storage=url)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "error" not in output, output
    assert not running, output
    if command == "join":
        assert output.splitlines()[-1] == "interrupted before the study started; nothing was written", output
    if command == "optimize":
        assert output.splitlines()[-1] == (
            "note: interrupted: the running trial ended as FAIL; run the same command to resume"
        ), output


def _trials_if_any(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of study `name` at `url`; none where it does not exist."""
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except KeyError:
        return []


def test_a_machine_joining_by_name_gives_up_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A --storage file that is not there is waited for, as the creator, on a folder the machines share, makes
    it; the note said 'no study 'none' there yet', and that the file itself was missing (a mistyped path)
    showed only after the wait (120 s by default). Now the note names the file."""
    monkeypatch.setenv("HPOTOOL_JOIN_WAIT", "0.5")
    args = ["optimize", "--storage", "sqlite:///studies/none.db", "--study-name", "none", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    note, error = result.stderr.splitlines()
    assert note == (
        f"note: no SQLite file {str(Path.cwd() / 'studies' / 'none.db')!r} yet: waiting up to 0.5 s for the "
        "machine that creates study 'none' in it (HPOTOOL_JOIN_WAIT sets how long)"
    )
    missing = re.escape(str(Path.cwd() / "studies" / "none.db"))
    assert re.fullmatch(
        rf"error: --storage: 'sqlite:///studies/none.db': no such SQLite file '{missing}'; check the path \(a "
        r"relative one is read from the folder hpotool runs in\); waited \d+ s for "
        r"another machine to create it; to start a study, give --run-config and --optimize-config",
        error,
    )


_POINTS = [{"optimizer.lr": 0.005, "model.hidden.0": 16}, {"optimizer.lr": 0.02, "model.hidden.0": 24}]


def test_a_study_created_just_after_a_joiner_looked_is_joined_not_reported_missing(tmp_path: Path) -> None:
    """A study created between the joiner's look (no study) and its check that the storage may still get
    one made the joiner give up at once with 'no study ...; waited 9 s', while the study was there."""
    from hpotool.errors import HpoError
    from hpotool.joining import await_study

    url = f"sqlite:///{tmp_path / 'w.db'}"
    optuna.create_study(study_name="other", storage=make_storage(url))
    looks = []

    def find() -> optuna.Study:
        looks.append(1)
        if len(looks) == 1:  # not there when looked for; its creator makes it a moment later
            optuna.create_study(study_name="s", storage=make_storage(url))
            raise HpoError(f"no study 's' in {url}")
        return optuna.load_study(study_name="s", storage=make_storage(url))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("hpotool.joining.DESCRIBE_WAIT_S", 0.0)  # a plain Optuna study: never described
        study = await_study("s", url, find, 10.0)
    assert study.study_name == "s" and len(looks) == 2


def test_a_machine_joining_a_misspelt_study_name_is_told_the_close_one_there(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--study-name digts` (for digits) waited the whole HPOTOOL_JOIN_WAIT (120 s) for a study no machine
    creates, saying only that there was none yet."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = make_storage(url)
    optuna.create_study(study_name="digits", storage=storage)
    monkeypatch.setenv("HPOTOOL_JOIN_WAIT", "0.5")
    result = CliRunner().invoke(app, ["optimize", "--storage", url, "--study-name", "digts", "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        "note: no study 'digts' there yet (did you mean 'digits'?): waiting up to 0.5 s for the machine that "
        "creates it (HPOTOOL_JOIN_WAIT sets how long)"
    )


def test_a_join_wait_is_said_even_when_the_first_look_outlasts_it(tmp_path: Path) -> None:
    """Under CI's load the first look for a study (opening the storage) took longer than the wait
    (HPOTOOL_JOIN_WAIT=0.5): the command gave up at once, without the note that it waits for the study's
    creator, as if no machine could create it. Now the wait is said, and the study looked for once more."""
    from hpotool.errors import HpoError
    from hpotool.joining import await_study

    url = f"sqlite:///{tmp_path / 'not-yet.db'}"  # no file yet: another machine may create it
    looks: list[float] = []

    def slow_find() -> optuna.Study:  # a first look slower than the whole wait
        looks.append(time.monotonic())
        time.sleep(0.3)
        raise HpoError(f"no study 'digits' in {url}")

    notes: list[str] = []
    with pytest.raises(
        HpoError, match=r"^no study 'digits' in .*; waited \d+ s for another machine to create it$"
    ):
        await_study("digits", url, slow_find, 0.1, notes.append)
    assert notes == [
        f"no SQLite file '{tmp_path / 'not-yet.db'}' yet: waiting up to 0.1 s for the machine that creates "
        "study 'digits' in it (HPOTOOL_JOIN_WAIT sets how long)"
    ]
    assert len(looks) == 2  # before: 1, and no note


def test_a_join_wait_ends_when_its_note_says_however_long_a_look_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against PostgreSQL, where a look for the study takes a second or more, `HPOTOOL_JOIN_WAIT=2` said
    "waiting up to 2 s" and ended "waited 4 s": the wait counted from before the first look and started a
    last look at its deadline. Now it runs `limit` seconds from the note, the last look started to end by
    then. The clock is the test's own (each look takes 1.3 s of it, each sleep its seconds), so nothing races."""
    import types

    from hpotool.errors import HpoError
    from hpotool.joining import await_study

    clock = [0.0]
    monkeypatch.setattr(
        "hpotool.joining.time",
        types.SimpleNamespace(
            monotonic=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + max(0.0, s))
        ),
    )
    url = f"sqlite:///{tmp_path / 'not-yet.db'}"  # no file yet: another machine may create it
    looks: list[float] = []

    def slow_find() -> optuna.Study:
        clock[0] += 1.3
        looks.append(clock[0])
        raise HpoError(f"no study 'digits' in {url}")

    noted: list[float] = []
    with pytest.raises(HpoError, match=r"; waited 2 s for another machine to create it$"):
        await_study("digits", url, slow_find, 2.0, lambda note: noted.append(clock[0]))
    assert noted == [1.3]
    assert (
        looks[-1] <= noted[0] + 2.0 + 1e-9 and len(looks) == 2
    )  # before: a look ended at 3.3 s, past 1.3 + 2


def test_a_machine_joining_a_redis_study_in_another_database_is_told_the_url_at_once(
    monkeypatch: pytest.MonkeyPatch,
    two_redis_databases: tuple[str, int, int],
) -> None:
    """Machine B's `--storage redis://host:6379/12?prefix=p --study-name p`, where machine A's study is in
    database 11, waited the whole HPOTOOL_JOIN_WAIT saying "no study 'p' there yet", as if A had yet to create
    it: the wait looked at the server's other prefixes, not its other databases, as `hpotool studies` and
    `optimize` with the configs do. Now it ends at once with the URL to give."""
    import uuid

    import redis

    server, a, b = two_redis_databases  # two databases of its own
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    there, here = f"{server}/{a}?prefix={prefix}", f"{server}/{b}?prefix={prefix}"
    monkeypatch.setenv("HPOTOOL_JOIN_WAIT", "5")
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(there))
        result = CliRunner().invoke(app, ["optimize", "--storage", here, "--study-name", prefix, "-q"])
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"error: no study {prefix!r} in {here}; studies there: none; it is in another database of the server: "
            f"give --storage '{there}'; to start a study, give --run-config and --optimize-config"
        ]
    finally:
        for db in (a, b):
            client = redis.Redis.from_url(f"{server}/{db}")
            delete_redis_keys(client, f"{prefix}*")


def test_a_machine_joining_the_next_study_of_a_series_is_not_told_the_last_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--study-name ws_pg3` beside ws_pg was asked "did you mean 'ws_pg'?", while waiting for its creator
    and in the line it ended with: a series named on purpose, which a new study's note leaves out
    (`same_series`); a typo of a name there is still told it."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = make_storage(url)
    for name in ("ws_pg", "ws_pg2"):
        optuna.create_study(study_name=name, storage=storage)
    monkeypatch.setenv("HPOTOOL_JOIN_WAIT", "0.5")
    result = CliRunner().invoke(app, ["optimize", "--storage", url, "--study-name", "ws_pg3", "-q"])
    assert result.exit_code == 2, result.output
    note, error = result.stderr.splitlines()
    assert note == (
        "note: no study 'ws_pg3' there yet: waiting up to 0.5 s for the machine that creates it "
        "(HPOTOOL_JOIN_WAIT sets how long)"
    )
    assert error.startswith(f"error: no study 'ws_pg3' in {url}; studies there: ws_pg, ws_pg2; waited "), (
        error
    )
    typo = CliRunner().invoke(app, ["optimize", "--storage", url, "--study-name", "ws_gp2", "-q"])
    assert "note: no study 'ws_gp2' there yet (did you mean 'ws_pg2'?)" in typo.stderr, typo.output


def _machines(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], storage: tuple[str, str]
) -> tuple[Path, Path]:
    """Two machines' folders with their own copies of the configs, the same but for the enqueue list: A
    queues two warm starts, B none. Their workers load the data behind HPOTOOL_TEST_GATE (where it is set)."""
    run = {
        **run_dict,
        "epochs": 1,
        "data": {"name": "tests.helpers:digits_behind_a_gate", "val_fraction": 0.2},
    }
    opt = {**opt_dict, "storage": storage[0], "study_name": storage[1], "n_trials": 4}
    for folder, enqueue in (("machA", _POINTS), ("machB", [])):
        (tmp_path / folder).mkdir()
        write_yaml(tmp_path / folder / "run.yaml", run)
        write_yaml(tmp_path / folder / "optimize.yaml", {**opt, "enqueue": enqueue})
    return tmp_path / "machA", tmp_path / "machB"


def _queued_by_a(storage: tuple[str, str]) -> Any:
    """A's two warm starts, once they wait in the study and its configs are stored."""
    with contextlib.suppress(KeyError):  # not created yet
        study = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return len(waiting) == 2 and "fingerprint" in study.user_attrs and waiting
    return None


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    """`contextlib.chdir`, which Python 3.10 lacks."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


_OPTIMIZE = ["optimize", "-r", "run.yaml", "-o", "optimize.yaml", "-q"]


def _machine_b(b_dir: Path, caplog: pytest.LogCaptureFixture) -> str:
    """What machine B's `optimize` of the configs in its folder printed and logged (its notes and warnings),
    run in this process (another process than A's); it must exit 0."""
    with _chdir(b_dir), caplog.at_level("WARNING", logger="hpotool"):
        output = _in_this_process(_OPTIMIZE).output
    return output + "".join(f"{r.getMessage()}\n" for r in caplog.records if r.name == "hpotool")


# SQLite and PostgreSQL keep the study through the same code (Optuna's RDBStorage, hpotool's reads of it):
# SQLite stands for both. Redis keeps it as a journal, through other code.
@pytest.mark.parametrize("storage", ["sqlite", "redis"], indirect=True)
def test_a_machine_joining_with_another_enqueue_list_leaves_the_warm_starts_of_a_live_one_queued(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Machine A created the study with `enqueue: [p1, p2]` and --workers 2; machine B, whose copy of the
    # configs lists no warm start, joined while A's workers were starting: B marked A's two queued points
    # FAIL ("dropped: no longer in the optimize config's enqueue list"), and they never ran.
    a_dir, b_dir = _machines(tmp_path, run_dict, opt_dict, storage)
    gate = tmp_path / "gate"
    a = _hpotool([*_OPTIMIZE, "--workers", "2"], a_dir, HPOTOOL_TEST_GATE=str(gate))
    try:
        _wait_for(lambda: _queued_by_a(storage))
        b = _machine_b(b_dir, caplog)
        gate.touch()
        a_out, _ = a.communicate(timeout=300)
    finally:
        _kill_session(a)
    assert a.returncode == 0, a_out
    assert "dropped" not in b + a_out
    assert (
        f"note: study '{storage[1]}' is in use (process {a.pid} of this host, which queued trial #0, is running): "
        "2 points queued from an enqueue list that this optimize config does not hold are left queued, and will "
        "run: optimizer.lr=0.005, model.hidden.0=16; optimizer.lr=0.02, model.hidden.0=24"
    ) in b.replace("\n", "")
    study = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert [t.params for t in study.trials[:2]] == _POINTS


def test_a_resume_of_an_idle_study_drops_the_warm_starts_of_a_machine_that_died(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Machine A was killed while its workers started, its warm starts still queued: the study is idle, and
    a resume whose configs no longer list them drops them, as the config rules."""
    storage = (f"sqlite:///{tmp_path / 'w.db'}", "idle")
    a_dir, b_dir = _machines(tmp_path, run_dict, opt_dict, storage)
    a = _hpotool([*_OPTIMIZE, "--workers", "2"], a_dir, HPOTOOL_TEST_GATE=str(tmp_path / "never"))
    try:
        _wait_for(lambda: _queued_by_a(storage))
    finally:
        _kill_session(a)
        a.communicate(timeout=60)
    b = _machine_b(b_dir, caplog)
    assert "2 points an earlier run queued from the optimize config's enqueue list are no longer" in b
    study = optuna.load_study(study_name="idle", storage=make_storage(storage[0]))
    dropped = [t for t in study.trials if t.state == TrialState.FAIL]
    assert [t.system_attrs["fixed_params"] for t in dropped] == _POINTS
    assert all(t.user_attrs["fail_reason"].startswith("dropped: ") for t in dropped)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 4


@pytest.mark.parametrize(
    ("queued_s_ago", "running", "kept_by"),
    [
        (1, None, "elsewhere (pid 4242) queued trial #0 1 s ago"),  # its workers may still be starting
        (120, None, None),  # an idle study: whoever queued it stopped long ago
        (120, "beating", "trial #0 is running"),
        (120, "stale", None),  # a heartbeat older than the grace period: its worker is gone
    ],
)
def test_warm_starts_another_host_queued_stay_queued_while_the_study_is_in_use(
    configs: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    queued_s_ago: float,
    running: str | None,
    kept_by: str | None,
) -> None:
    from optuna.trial import create_trial

    from hpotool.owners import QUEUED_BY
    from hpotool.plan import WARM_START
    from hpotool.resume import prepare_resume

    # A grace a loaded machine's seconds between the heartbeat (or the queueing) and prepare_resume stay
    # inside (3 s did not always); the stale heartbeat is an hour old.
    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "60")  # seconds
    plan = prepare_study(*configs)  # the tiny configs, without warm starts
    study, _ = open_study(plan)
    point = {"optimizer.lr": 0.005, "model.hidden.0": 16}
    if running is not None:
        trial = ask_with_heartbeat(study)
        trial.set_user_attr("worker", {"host": "elsewhere", "pid": 4242})
        study._storage.record_heartbeat(trial._trial_id)
        if running == "stale":
            _beat_an_hour_ago(study, trial)
    queued_by = {"host": "elsewhere", "pid": 4242, "time": time.time() - queued_s_ago}
    system_attrs = {"fixed_params": point, QUEUED_BY: queued_by}
    study.add_trial(
        create_trial(state=TrialState.WAITING, system_attrs=system_attrs, user_attrs={WARM_START: "enqueue"})
    )
    with caplog.at_level("WARNING", logger="hpotool"):
        prepare_resume(study, plan)
    state = study.trials[-1].state
    lines = [r.getMessage() for r in caplog.records if r.name == "hpotool"]
    if kept_by is None:
        assert state == TrialState.FAIL and "dropped" in lines[0]
    else:
        assert state == TrialState.WAITING
        # queued 1 s ago, or a little more on a loaded machine
        said = [re.sub(r"queued trial #0 [1-9]\d* s ago", "queued trial #0 1 s ago", line) for line in lines]
        assert said == [
            f"note: study 'tiny' is in use ({kept_by}): 1 point queued from an enqueue list that this optimize "
            "config does not hold is left queued, and will run: optimizer.lr=0.005, model.hidden.0=16"
        ], lines


def test_a_worker_starts_processes_of_its_own_as_one_process_does(tmp_path: Path) -> None:
    """A worker the forkserver started kept forkserver as its default start method, so a user's
    DataLoader(num_workers=2) in a training function started another forkserver (24 s to its first batch)."""
    import multiprocessing

    from tests.trainers import START_METHODS

    run = write_yaml(
        tmp_path / "r.yaml", {"epochs": 1, "trainer": {"function": "tests.trainers:reports_its_start_method"}}
    )
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    opt = write_yaml(tmp_path / "o.yaml", {"study_name": "m", "n_trials": 2, "search_space": space})
    with _chdir(REPO):
        args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", f"sqlite:///{tmp_path / 'm.db'}"]
        result = CliRunner().invoke(app, [*args, "--workers", "2", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="m", storage=f"sqlite:///{tmp_path / 'm.db'}").trials
    trials = [t for t in trials if t.state.is_finished()]  # not one asked in the race at the end (WAITING)
    expected = START_METHODS.index(multiprocessing.get_all_start_methods()[0])  # the platform's default
    assert [t.user_attrs["metrics"]["start_method"] for t in trials] == [expected, expected]


@pytest.mark.parametrize("variable", ["HPOTOOL_TEST_SETTING", "PGCONNECT_TIMEOUT"])
def test_workers_take_the_environment_of_the_command_not_of_the_worker_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """Workers fork from a worker server started once a process, with the environment of the first command
    to start it: a second command in the same process (a test's CliRunner run, a library user's) whose
    HPOTOOL_HEARTBEAT_GRACE or HPOTOOL_SERVER_SILENCE differed ran its workers with the first's; then the
    HPOTOOL_* ones were passed on, and the variables libraries read (PGCONNECT_TIMEOUT, which libpq reads as
    a worker connects to PostgreSQL; MLFLOW_*) were still the first command's."""
    trainer = {"function": "tests.trainers:reports_a_setting", "variable": variable}
    run = write_yaml(tmp_path / "r.yaml", {"epochs": 1, "trainer": trainer})
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    url = f"sqlite:///{tmp_path / 'm.db'}"
    settings = []
    for setting in ("1", None):
        if setting is None:
            monkeypatch.delenv(variable)
        else:
            monkeypatch.setenv(variable, setting)
        name = f"m{setting}"
        opt = write_yaml(tmp_path / "o.yaml", {"study_name": name, "n_trials": 2, "search_space": space})
        with _chdir(REPO):
            args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", url]
            result = CliRunner().invoke(app, [*args, "--workers", "2", "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        trials = optuna.load_study(study_name=name, storage=url).trials
        settings.append({t.user_attrs["metrics"]["setting"] for t in trials if t.state.is_finished()})
    assert settings == [{1.0}, {-1.0}]


def _workers_setup_error(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any]) -> str:
    """What `optimize --workers 2` of configs the workers cannot set up printed after its first line (where it
    created the study), once it exited 2 without a traceback."""
    code, output = _run_hpotool(_optimize_args(tmp_path, run, opt, *WORKERS), tmp_path, timeout=120)
    created, _, rest = output.partition("\n")
    assert created == f"new study 'tiny' in {tmp_path / 'studies' / 'tiny.db'}", output
    assert code == 2, rest
    assert "Traceback" not in rest, rest
    return rest


_LR_SPACE = {"trainer.lr": {"type": "float", "low": 0.01, "high": 1.0}}

# What the main process sets up but a worker cannot: (the module it comes from, its source, the configs
# using it, the one line printed)
_SET_UP_IN_MAIN_ALONE = {
    # A training function that imports in the main process (its checks pass) but not in a worker (a library
    # the workers' environment lacks): each worker printed a pydantic traceback, the summary said '2 of 2
    # workers died ...; run again to resume' (it fails the same way again) and the command exited 0.
    "training-function": (
        "fit_in_main",
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('libcuda.so.1: cannot open shared object file')\n"
        "def fit(config, report):\n"
        "    report(0, {'val_loss': config['trainer']['lr']})\n"
        "    return {'val_loss': config['trainer']['lr']}\n",
        lambda run, opt: (
            {**run, "trainer": {"function": "fit_in_main:fit", "lr": 0.1}},
            {**opt, "metric": "val_loss", "direction": "minimize", "search_space": _LR_SPACE, "n_trials": 3},
        ),
        r"error: hpotool-worker-\d: run config: trainer\.function: cannot import 'fit_in_main:fit': importing "
        r"'fit_in_main' raised ImportError: libcuda\.so\.1: cannot open shared object file at fit_in_main\.py:3; "
        r"it passed in the main process but not in a worker: check what the workers' environment lacks\n",
    ),
    # A user's dataset class that loads in the main process but raises a plain exception in a worker (a file
    # only the main process can reach): each worker printed a traceback, the summary said '2 of 2 workers
    # died ...; run again to resume' and the command exited 1.
    "dataset": (
        "data_in_main",
        "import multiprocessing\n"
        "from tests.helpers import digits_samples\n"
        "class Digits:\n"
        "    def __new__(cls, n=100):\n"
        "        if multiprocessing.parent_process() is not None:\n"
        "            raise RuntimeError('cannot reach /data/train.csv')\n"
        "        return digits_samples(n)\n",
        lambda run, opt: (
            {**run, "epochs": 1, "data": {"name": "data_in_main:Digits", "val_fraction": 0.2}},
            opt,
        ),
        r"error: hpotool-worker-\d: run config: data: loading 'data_in_main:Digits' failed: RuntimeError: "
        r"cannot reach /data/train.csv \(at data_in_main.py:6 in __new__\); it passed in the main process but "
        r"not in a worker: check what the workers' environment lacks\n",
    ),
    # A user's sampler class that raises a plain exception when built in a worker (a licence server only the
    # main process's host reaches): each worker printed a traceback, and the command exited 1.
    "sampler": (
        "sampler_in_main",
        "import multiprocessing\n"
        "import optuna\n"
        "class Sampler(optuna.samplers.RandomSampler):\n"
        "    def __init__(self, seed=None):\n"
        "        if multiprocessing.parent_process() is not None:\n"
        "            raise RuntimeError('no licence server')\n"
        "        super().__init__(seed=seed)\n",
        lambda run, opt: (run, {**opt, "sampler": {"name": "sampler_in_main:Sampler"}}),
        r"error: hpotool-worker-\d: optimize config: sampler: building 'sampler_in_main:Sampler' failed: "
        r"RuntimeError: no licence server \(at sampler_in_main.py:6 in __init__\); it passed in the main "
        r"process but not in a worker: check what the workers' environment lacks\n",
    ),
}


@pytest.mark.parametrize("what", list(_SET_UP_IN_MAIN_ALONE))
def test_what_fails_to_set_up_in_the_workers_alone_is_one_line(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], what: str
) -> None:
    module, source, configs, line = _SET_UP_IN_MAIN_ALONE[what]
    (tmp_path / f"{module}.py").write_text(source)
    output = _workers_setup_error(tmp_path, *configs(run_dict, opt_dict))
    assert output.count("error:") == 1, output
    assert re.fullmatch(line, output), output


def test_max_failures_counts_the_failed_trials_in_a_row_of_all_workers(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Each worker counted its own failures in a row: with --max-failures 3 two workers failing every trial
    # ran about 6 failed trials ('stopped after 3 failed trials in a row in one worker'). Now the run stops
    # at the study's third failure in a row; the other worker ends the trial it is running.
    (tmp_path / "slow_failure.py").write_text(
        "import time\n"
        "from tests.helpers import ExplodingModel\n"
        "class SlowlyExploding(ExplodingModel):\n"
        "    def forward(self, x):\n"
        "        time.sleep(0.3)\n"
        "        return super().forward(x)\n"
    )
    run = {**run_dict, "epochs": 1, "model": {"name": "slow_failure:SlowlyExploding"}}
    opt = {
        **opt_dict,
        "n_trials": 20,
        "search_space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1}},
    }
    args = _optimize_args(tmp_path, run, opt, *WORKERS, "--max-failures", "3")
    output = _in_this_process(args, exit_code=1).output
    assert "note: stopped after 3 failed trials in a row\n" in output, output
    assert "first error: RuntimeError: boom from user code" in output, output
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert 3 <= len(failed) <= 4, output


def test_max_failures_with_workers_names_the_run_s_first_error_as_one_process_does(tmp_path: Path) -> None:
    # One process names the first failed trial's error where --max-failures stops the run; --workers named
    # the run's last. The first trial to fail fails at once, the others once it has ended: the first to end.
    marker = tmp_path / "failed_once"
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    url = f"sqlite:///{tmp_path / 'm.db'}"
    opt = write_yaml(tmp_path / "o.yaml", {"study_name": "m", "n_trials": 10, "search_space": space})
    for workers in ("1", "2"):
        marker.unlink(missing_ok=True)
        trainer = {"function": "tests.trainers:fails_first_alone", "marker": str(marker)}
        trainer.update(storage=url, study=f"m{workers}")
        run = write_yaml(tmp_path / "r.yaml", {"epochs": 1, "trainer": trainer})
        args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", url, "--study-name", f"m{workers}"]
        with _chdir(REPO):
            result = _in_this_process([*args, "--workers", workers, "--max-failures", "3", "-q"], exit_code=1)
        assert "note: stopped after 3 failed trials in a row" in result.output, result.output
        first = [line for line in result.output.splitlines() if line.startswith("first error:")]
        assert len(first) == 1, result.output
        assert first[0].startswith("first error: RuntimeError: the first failure (at "), (workers, first)
        # before, with --workers 2: "first error: RuntimeError: a later failure"


def test_the_run_s_streak_is_read_from_the_storage_in_the_order_the_trials_ended() -> None:
    from hpotool.failed_trials import fail_trial
    from hpotool.owners import owner
    from hpotool.run_failures import run_streak

    study = optuna.create_study()
    main, other = 1001, 1002

    def ended(state: TrialState, pid: int, run: int = main) -> None:
        trial = study.ask()
        trial.set_user_attr("worker", {**owner(), "pid": pid, "main": run})
        if state == TrialState.FAIL:  # as its worker tells a failed run (`trial_run._tell_failed`)
            assert fail_trial(study._storage, trial._trial_id, "boom", run_failed=True)
        else:
            study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)

    ended(TrialState.FAIL, 1)  # before the run started: not counted
    time.sleep(0.01)
    since = datetime.now()
    ended(TrialState.COMPLETE, 1)
    assert run_streak(study, main, since) == 0
    ended(TrialState.FAIL, 1)
    ended(TrialState.FAIL, 2)  # another worker of the run
    ended(TrialState.FAIL, 3, run=other)  # another command's worker: not counted
    ended(TrialState.FAIL, 1)
    assert run_streak(study, main, since) == 3
    ended(TrialState.PRUNED, 2)
    assert run_streak(study, main, since) == 0


def test_the_run_s_error_is_that_of_the_first_trial_whose_run_failed() -> None:
    # Where --max-failures stopped a run of workers, the summary named the reason of the study's FAIL trial of
    # the highest number: one another process failed as stale as it ran ("first error: stale: no heartbeat
    # ..."), or another command's; then the run's last. Now the first trial of the run whose run failed, as
    # one process names it.
    from hpotool.failed_trials import fail_trial
    from hpotool.run_failures import run_error

    study = optuna.create_study()
    main = 1001
    since = datetime.now()
    assert run_error(study, main, since) is None

    def ended(reason: str, *, run_failed: bool, run: int = main) -> None:
        trial = study.ask()
        trial.set_user_attr("worker", {**owner(), "main": run})
        assert fail_trial(study._storage, trial._trial_id, reason, run_failed=run_failed)

    ended("boom", run_failed=True)
    ended("bang", run_failed=True)
    ended("stale: no heartbeat for 60 s (its worker died, or lost the storage)", run_failed=False)
    ended("another command's", run_failed=True, run=1002)
    assert run_error(study, main, since) == "boom"  # before: the run's last, "bang"


def test_the_run_s_streak_passes_over_the_fail_trials_whose_run_did_not_fail(
    storage: tuple[str, str],
) -> None:
    # A FAIL that another process wrote (a stale check that took a live worker for dead, `fail-stale`, a dead
    # worker's) or an interrupt is no failure of the trial's run: `run_streak` neither counts it nor ends the
    # streak at it. On every storage: the journal ones (Redis, journal files) write the mark of a failed run
    # before the state, with its reason, as they do the reason.
    from hpotool.failed_trials import fail_trial, failed_in_run
    from hpotool.run_failures import run_streak

    url, name = storage
    study = optuna.create_study(study_name=name, storage=make_storage(url))
    main = os.getpid()

    def ended(reason: str, *, run_failed: bool) -> None:
        trial = ask_with_heartbeat(study)
        trial.set_user_attr("worker", {**owner(), "main": main})
        assert fail_trial(study._storage, trial._trial_id, reason, run_failed=run_failed)

    ended("boom", run_failed=True)
    ended("stale: no heartbeat for 60 s (its worker died, or lost the storage)", run_failed=False)
    ended("interrupted", run_failed=False)
    ended("worker died (pid 4242)", run_failed=False)
    ended("boom", run_failed=True)
    stored = optuna.load_study(study_name=name, storage=make_storage(url)).trials
    assert [failed_in_run(t) for t in stored] == [True, False, False, False, True]
    assert [t.user_attrs["fail_reason"] for t in stored][:2] == [
        "boom",
        "stale: no heartbeat for 60 s (its worker died, or lost the storage)",
    ]
    assert run_streak(study, main, datetime.min) == 2


def test_fail_stale_with_nothing_stale_says_so_in_a_sentence(tmp_path: Path) -> None:
    # It said "marked 0 stale trial(s) FAIL: none".
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    assert result.exit_code == 0 and result.stdout == "no stale trial: nothing marked FAIL\n", result.output
    result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url, "--all-running"])
    assert result.exit_code == 0 and result.stdout == "no running trial: nothing marked FAIL\n", result.output
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.COMPLETE]


WIDTHS = [4, 8, 12, 16, 20, 24]  # a 6-point grid of SlowModel widths


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("storage", ["journal", "redis"], indirect=True)
@pytest.mark.parametrize("sampler", ["grid", "bruteforce", "bruteforce-strict"])
def test_workers_beside_another_machine_s_running_trial_run_each_point_once(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], storage: tuple[str, str], sampler: str
) -> None:
    # Without a heartbeat (Redis, a journal file), a trial another machine runs may be a dead worker's: the
    # grid runs its point again here, once, and brute force counts it as run (as Optuna's do); brute force
    # made with `avoid_premature_stop` runs it again, once, like the grid. With --workers 2, once every
    # point had started, a worker ran a point the other worker of this machine was running (or both ran the
    # other machine's): 6 grid points, 7-8 runs.
    from hpotool.plan import prepare_study
    from hpotool.study import open_study

    url, name = storage
    strict = sampler == "bruteforce-strict"
    spec = {"name": "bruteforce", "kwargs": {"avoid_premature_stop": True}} if strict else {"name": sampler}
    opt = {**opt_dict, "storage": url, "study_name": name, "sampler": spec}
    args = _slow_configs(tmp_path, run_dict, opt, 20, {"type": "categorical", "choices": WIDTHS})
    study, _ = open_study(prepare_study(Path(args[2]), Path(args[4])))
    other = study.ask()  # a point another machine runs, or ran until it died
    other.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    theirs = other.suggest_categorical("model.width", WIDTHS)
    _in_this_process(args)
    trials = _study_of(url, name).get_trials(deepcopy=False)
    ran = sorted(t.params["model.width"] for t in trials if t.state == TrialState.COMPLETE)
    assert ran == (WIDTHS if sampler != "bruteforce" else [w for w in WIDTHS if w != theirs]), (theirs, ran)
    assert [t.number for t in trials if t.state == TrialState.RUNNING] == [other.number]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_strict_brute_force_workers_run_the_free_points_before_another_machine_s_running_ones(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Brute force made with `avoid_premature_stop` skipped running points only at its last parameter: with
    # two, a worker drew the first one's value among branches where only another machine's live trials'
    # points were left, then drew such a point, run twice while a free one was left out (6 points, 4 of
    # them another machine's, n_trials 6: 2 here).
    from hpotool.plan import prepare_study
    from hpotool.study import open_study

    url = f"journal:{tmp_path / 'b.log'}"
    lrs, hidden = [0.001, 0.01, 0.1], [8, 16]
    space = {
        "optimizer.lr": {"type": "categorical", "choices": lrs},
        "model.hidden.0": {"type": "categorical", "choices": hidden},
    }
    strict = {"name": "bruteforce", "kwargs": {"avoid_premature_stop": True}}
    opt = {**opt_dict, "storage": url, "n_trials": 6, "sampler": strict, "search_space": space}
    args = _optimize_args(tmp_path, {**run_dict, "epochs": 1}, opt, *WORKERS)
    study, _ = open_study(prepare_study(Path(args[2]), Path(args[4])))
    theirs = []
    for lr in lrs[1:]:  # another machine ran one point of each of two branches, and runs the other
        for h in hidden:
            study.enqueue_trial({"optimizer.lr": lr, "model.hidden.0": h})
            trial = study.ask()
            trial.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
            trial.suggest_categorical("optimizer.lr", lrs)
            trial.suggest_categorical("model.hidden.0", hidden)
            theirs.append(trial.number)
    for number in theirs[::2]:
        study.tell(number, 0.5)

    def end_theirs() -> None:  # once this machine has run its two trials, the other machine's end
        # 240 s: its workers' start-up and two trials, on a loaded machine; should this wait run out, its
        # error is lost in this thread and the command waits for their trials until the test's timeout
        _wait_for(
            lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 4, timeout=240
        )
        # as the other machine would, outside an optimize loop: told through the brute-force study, the
        # last point's tell calls `study.stop()`, which raises outside `optimize` (lost in this thread)
        elsewhere = optuna.load_study(
            study_name=study.study_name, storage=study._storage, sampler=optuna.samplers.RandomSampler()
        )
        for number in theirs[1::2]:
            elsewhere.tell(number, 0.5)

    ends = threading.Thread(target=end_theirs, daemon=True)
    ends.start()
    _in_this_process(args)
    ends.join()
    trials = _study_of(url).get_trials(deepcopy=False)  # less one asked in a race and sent back to the queue
    here = [t for t in trials if t.number not in theirs and t.state != TrialState.WAITING]
    ran = sorted((t.params["optimizer.lr"], t.params["model.hidden.0"]) for t in here)
    assert ran == [(0.001, 8), (0.001, 16)]
    assert [t.state for t in here] == [TrialState.COMPLETE] * 2


def test_debug_shows_the_traceback_of_what_fails_to_set_up_in_the_workers_alone(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `hpotool --debug optimize --workers 2` of what a worker could not set up (a user's module that raises
    # on import there, a dataset class that fails there) showed the main process's traceback, never the
    # worker's, where the user's code raised. Now --debug shows it too, as in one process (the one line
    # without --debug is test_what_fails_to_set_up_in_the_workers_alone_is_one_line's).
    module, source, configs, _ = _SET_UP_IN_MAIN_ALONE["dataset"]
    (tmp_path / f"{module}.py").write_text(source)
    args = ["--debug", *_optimize_args(tmp_path, *configs(run_dict, opt_dict), *WORKERS)]
    code, output = _run_hpotool(args, tmp_path, timeout=120)
    assert code == 1, output  # an error --debug lets through, as in one process
    assert "The traceback of hpotool-worker-" in output, output
    assert "in worker_main" in output, output  # a frame only a worker runs
    assert 'data_in_main.py", line 6, in __new__' in output, output  # the user's own, below it
    assert output.rstrip().splitlines()[-1].startswith("hpotool.errors.HpoError: hpotool-worker-"), output


def test_a_run_of_workers_says_once_which_trials_repeated_a_configuration(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    """The summary of `--workers 2` (worker_summary) calls the same summarize as one process: its repeats
    line is printed once, by the command, not once more by each worker, and counts both workers' trials
    (six over a space of two configurations: four at least repeat one)."""
    opt = {**opt_dict, "n_trials": 6, "sampler": {"name": "random", "kwargs": {"seed": 0}}}
    opt["search_space"] = {"model.dropout": {"type": "categorical", "choices": [0.0, 0.25]}}
    code, output = _run_hpotool(_optimize_args(tmp_path, {**run_dict, "epochs": 1}, opt, *WORKERS), tmp_path)
    assert code == 0, output
    shown = " ".join(output.split())
    study = optuna.load_study(study_name="tiny", storage=opt_dict["storage"])
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6, finished
    assert shown.count("repeated a configuration already run") == 1, output
    assert re.search(r"\b[4-6] trials repeated a configuration already run \(#\d+ = #\d+", shown), output
    assert "the space holds 2 configurations, and sampler grid or bruteforce runs each of them once" in shown


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_journal_file_emptied_during_a_study_stops_it_in_one_line_writing_nothing(
    tmp_path: Path, workers: str
) -> None:
    # `: > studies/NAME.log` as the trials ran: Optuna read on from the byte it had read to, and appended its
    # next records at the file's start, a journal no reader can replay. One process went on with Optuna's
    # 'reported value is ignored' warnings by the dozen; --workers printed a JSONDecodeError traceback for
    # each worker and exited 1.
    journal = tmp_path / "j.log"
    trainer = {"function": "tests.trainers:damages_its_journal", "marker": str(tmp_path / "damaged")}
    trainer.update(damage="empty", target=str(journal))
    run = write_yaml(tmp_path / "r.yaml", {"epochs": 1, "trainer": trainer})
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    opt = write_yaml(tmp_path / "o.yaml", {"study_name": "j", "n_trials": 20, "search_space": space})
    args = [
        "optimize",
        "-r",
        str(run),
        "-o",
        str(opt),
        "--storage",
        f"journal:{journal}",
        "--workers",
        workers,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpotool", *args, "-q"],
        cwd=REPO,  # tests.trainers
        env={**os.environ, "PYTHONPATH": f"{Path(hpotool.__file__).resolve().parents[1]}{os.pathsep}{REPO}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"hung: {proc.communicate()[1]}") from None
    assert proc.returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 2 and lines[0] == f"new study 'j' in {journal}", stderr
    assert re.fullmatch(
        rf"error: (?:hpotool-worker-\d+: )?storage 'journal:{re.escape(str(journal))}': its journal file '{re.escape(str(journal))}' "
        r"holds 0 bytes, fewer than the \d+ this process had read of it \(emptied, cut short, or written over "
        r"by another program\), during the study; this run stopped, writing nothing more to it, and the trials "
        r"that were running stay RUNNING in what is left of it, where it holds them: put the journal back from "
        r"a backup, then run the same command to resume: it marks the trials left RUNNING FAIL \('worker "
        r"died'\) and runs their parameters again; or move it aside, and run the same command to start the "
        r"study again",
        lines[1],
    ), lines[1]
    assert journal.read_bytes() == b""  # nothing written after
