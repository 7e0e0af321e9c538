"""Output into a closed pipe (`hpotool ... | head`): every command stops quietly with 141, as SIGPIPE stops a
Unix tool, and `optimize` leaves its study as Ctrl-C does. Real pipes, through `python -m hpotool`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpotool.cli import app

from .conftest import load_study, write_configs
from .tiny_study import run_tiny_study

_OPTIMIZE = ["optimize", "-r", "run.yaml", "-o", "optimize.yaml"]


@pytest.mark.parametrize(
    ("args", "closed"),
    [
        # The summary, at the end, is its only output on stdout: the study is done, the summary lost.
        (_OPTIMIZE, "stdout"),
        # `|& head -n 1`: the trial lines on stderr go into the closed pipe as the study runs.
        ([*_OPTIMIZE, "--n-trials", "40"], "both"),
        ([*_OPTIMIZE, "--n-trials", "40", "--workers", "2"], "both"),
        (["trials", "--study-name", "tiny"], "stdout"),
        (["studies"], "stdout"),
        (["export-best", "--study-name", "tiny"], "stdout"),
        (["report", "--study-name", "tiny", "--out", "-"], "stdout"),
        # `| head -c 100`: the reader takes the report's first bytes and goes while the 5 MB are written in
        # one write(), which then returned a partial count that Python's text stream dropped: exit 0.
        (["report", "--study-name", "tiny", "--out", "-"], "read"),
    ],
    ids=[
        "optimize",
        "optimize-trial-lines",
        "optimize-workers",
        "trials",
        "studies",
        "export-best",
        "report",
        "report-read-in-part",
    ],
)
def test_output_into_a_closed_pipe_stops_quietly_with_141(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], args: list[str], closed: str
) -> None:
    write_configs(tmp_path, run_dict, opt_dict)
    if args[0] != "optimize":
        run_tiny_study(tmp_path, run_dict, opt_dict)
    read, write = os.pipe()
    if closed == "stdout":  # `| head` that has gone already: the first write finds no reader
        os.close(read)
    command = [sys.executable, "-m", "hpotool", *args]
    streams = {"stdout": write, "stderr": subprocess.PIPE if closed == "stdout" else write}
    with subprocess.Popen(command, cwd=tmp_path, **streams) as proc:  # type: ignore[call-overload]
        os.close(write)
        if closed == "both":  # `|& head -n 1`: the first line read, `new study 'tiny' in ...`
            with os.fdopen(read, "rb") as reader:
                assert reader.readline().startswith(b"new study 'tiny'")
        if closed == "read":  # `| head -c 100`
            with os.fdopen(read, "rb") as reader:
                assert reader.read(100).startswith(b"<!DOCTYPE html>")
        stderr = proc.stderr.read().decode() if proc.stderr is not None else ""
        code = proc.wait(timeout=120)
    assert code == 141, stderr
    # Quiet as `head`'s producer is: no line saying the command was interrupted (as Ctrl-C's would), which
    # `trials ... | head` printed on the terminal.
    for noise in ("Traceback", "Exception ignored", "BrokenPipeError", "error:", "interrupted"):
        assert noise not in stderr
    if args[0] == "export-best":  # written whole before its table was printed
        assert {p.name for p in (tmp_path / "studies" / "tiny").iterdir()} == {
            "best_params.json",
            "best_run.yaml",
            "trials.csv",
            "trials.json",
        }
    if args[0] != "optimize":
        return
    study = load_study(opt_dict)
    trials = study.get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    # A trial cut off ends as Ctrl-C ends it (a worker's, as the main process stopped them), none otherwise.
    reasons = [t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL]
    assert set(reasons) <= {"interrupted"}, [(t.number, t.state.name, t.user_attrs) for t in trials]
    if closed == "both":  # stopped early, and no worker outlives the command
        assert len(trials) < 40
        for pid in {t.user_attrs["worker"]["pid"] for t in trials} - {proc.pid}:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    else:
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 3


def test_bars_forced_onto_a_closed_pipe_stop_quietly_with_141(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # FORCE_COLOR=1 (set by many CI services) makes rich draw the progress bars on a pipe: with `|& head -n 1`
    # the closed pipe's interrupt came as the bars hid the cursor, their start cut off before rich's Live
    # hooked into its console, and taking them away raised IndexError: exit 1, not 141.
    write_configs(tmp_path, run_dict, opt_dict)
    read, write = os.pipe()
    command = [sys.executable, "-m", "hpotool", *_OPTIMIZE, "--n-trials", "40"]
    env = {**os.environ, "FORCE_COLOR": "1"}
    with subprocess.Popen(command, cwd=tmp_path, stdout=write, stderr=write, env=env) as proc:
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            assert reader.readline().startswith(b"new study 'tiny'")
        assert proc.wait(timeout=120) == 141
    trials = load_study(opt_dict).get_trials(deepcopy=False)
    assert len(trials) < 40 and not [t.number for t in trials if t.state == TrialState.RUNNING]


def test_a_worker_s_output_into_a_closed_pipe_goes_nowhere_and_leaves_the_stop_to_its_main_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker (`--workers 2 |& head`) shares the command's streams: a warning or a training function's
    # print there into the closed pipe raised BrokenPipeError in its trial, which failed with that reason
    # (the workers case above failed so once in six runs). Now it writes to /dev/null from then on and
    # goes on; the main process's own next line finds the pipe closed and stops the workers.
    from hpotool import pipes

    monkeypatch.setattr(pipes, "_closed", [])
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as stream:
        guarded = pipes._Guarded(stream, stop=False)
        guarded.write("a worker's line\n")
        guarded.flush()  # no BrokenPipeError, no Interrupted
        guarded.write("and the next\n")
        guarded.flush()
        assert pipes.pipe_closed()
        assert os.readlink(f"/proc/self/fd/{stream.fileno()}") == os.devnull


def test_the_main_process_finds_stderr_s_reader_gone_without_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The main process of `optimize --workers 2 |& head -n 1` writes only when a trial ends: it now looks
    # at each of its looks whether stderr's reader has gone (POLLERR on the pipe), and stops as the write
    # would have stopped it.
    from hpotool import interrupts, pipes
    from hpotool.interrupts import Interrupted

    monkeypatch.setattr(pipes, "_closed", [])
    monkeypatch.setattr(interrupts, "_raised", [])  # the interrupt it raises is this test's alone
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        monkeypatch.setattr(sys, "stderr", pipes._Guarded(stream))
        pipes.look_for_a_gone_reader()  # the reader is there: nothing happens
        assert not pipes.pipe_closed()
        os.close(read)
        with pytest.raises(Interrupted) as raised:
            pipes.look_for_a_gone_reader()
        assert raised.value.signum == signal.SIGPIPE
        assert pipes.stderr_closed()
        assert os.readlink(f"/proc/self/fd/{stream.fileno()}") == os.devnull
        pipes.look_for_a_gone_reader()  # found once: /dev/null from then on


def test_a_file_or_an_unguarded_stream_is_not_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpotool import pipes

    monkeypatch.setattr(pipes, "_closed", [])
    with (tmp_path / "log").open("w") as stream:
        monkeypatch.setattr(sys, "stderr", pipes._Guarded(stream))
        pipes.look_for_a_gone_reader()
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as stream:
        monkeypatch.setattr(
            sys, "stderr", stream
        )  # a test's or a library's own stream: not hpotool's to stop
        pipes.look_for_a_gone_reader()
    assert not pipes.pipe_closed()


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one-process", "workers"])
def test_long_trials_stop_when_the_reader_goes_not_when_a_trial_ends(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], workers: tuple[str, ...]
) -> None:
    # `hpotool optimize --workers 2 ... |& head -n 1` on trials of hours: the main process wrote nothing
    # until a trial ended, so the workers trained on for as long as their trials took (and a study of short
    # trials ran to its end between two looks: CI saw all 40 of 40 run). Now the next look stops them.
    # Without workers the trial's own epochs look (before, it trained on until its end too).
    run_dict["epochs"] = 10**6
    write_configs(tmp_path, run_dict, opt_dict)
    read, write = os.pipe()
    command = [sys.executable, "-m", "hpotool", *_OPTIMIZE, "--n-trials", "2", *workers]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=write, stderr=write, start_new_session=True)
    try:
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            assert reader.readline().startswith(b"new study 'tiny'")
            _wait_for_running(opt_dict, 2 if workers else 1)  # the reader goes while every trial trains
        assert proc.wait(timeout=300) == 141
    finally:
        if proc.poll() is None:  # before the fix: the trials run for hours; end them and their workers
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    trials = load_study(opt_dict).get_trials(deepcopy=False)
    assert trials and {t.state for t in trials} == {TrialState.FAIL}
    assert {t.user_attrs.get("fail_reason") for t in trials} == {"interrupted"}


def _wait_for_running(opt_dict: dict[str, Any], n: int) -> None:
    """Until the study has `n` trials RUNNING (a bound of 300 s against a hang, not a measure)."""
    deadline = time.monotonic() + 300
    while sum(t.state == TrialState.RUNNING for t in load_study(opt_dict).get_trials(deepcopy=False)) < n:
        assert time.monotonic() < deadline, f"{n} trials never ran at once"
        time.sleep(0.05)


def test_a_run_stopped_by_a_closed_pipe_says_why_where_the_study_is_read_next(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `hpotool optimize ... |& head -n 1`: the note saying why the run stopped went into the closed pipe with
    # the rest, and no trial said it either (the trial lines are printed after a trial ends: none was cut
    # off). `hpotool studies`, `hpotool trials` and the next optimize said nothing of why the study held 2
    # trials of 40. Now the note is kept on the study: those say it, the next optimize once.
    write_configs(tmp_path, run_dict, opt_dict)
    read, write = os.pipe()
    command = [sys.executable, "-m", "hpotool", *_OPTIMIZE, "--n-trials", "40"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=write, stderr=write) as proc:
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            assert reader.readline().startswith(b"new study 'tiny'")
        assert proc.wait(timeout=120) == 141

    def hpotool(*args: str) -> str:
        # `studies` and `trials` read the note from the study and print it on the error console, in this
        # process as in one of their own (its cwd is tmp_path; no pipe of theirs is closed). The resume says
        # it through hpotool's logger, whose records Python's last-resort handler writes to stderr in a
        # process of its own, but which pytest's log capture takes in this one: it stays a process.
        if args[0] == "optimize":
            done = subprocess.run(
                [sys.executable, "-m", "hpotool", *args], cwd=tmp_path, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            return done.stderr
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stderr

    said = "stopped because its output went into a closed pipe (the reader, such as head, had exited)"
    for args in (["studies"], ["trials", "--study-name", "tiny"]):
        stderr = hpotool(*args)
        assert said in stderr and f"pid {proc.pid}" in stderr, (args, stderr)
        assert "so this went unseen: interrupted" in stderr and "run the same command to resume" in stderr
    stopped_at = len(load_study(opt_dict).trials)
    stderr = hpotool(*_OPTIMIZE, "--n-trials", str(stopped_at + 1), "--quiet")
    assert f"note: study 'tiny': a run (pid {proc.pid} on " in stderr and said in stderr, stderr
    for args in (["studies"], ["trials", "--study-name", "tiny"]):  # said once: the resume
        assert said not in hpotool(*args)
