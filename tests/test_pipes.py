"""Output into a closed pipe (`hpotool ... | head`): every command stops quietly with 141, as SIGPIPE stops a
Unix tool, and `optimize` leaves its study as Ctrl-C does. Real pipes, through `python -m hpotool`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

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
        done = subprocess.run(
            [sys.executable, "-m", "hpotool", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return done.stderr

    said = "stopped because its output went into a closed pipe (the reader, such as head, had exited)"
    for args in (["studies"], ["trials", "--study-name", "tiny"]):
        stderr = hpotool(*args)
        assert said in stderr and f"pid {proc.pid}" in stderr, (args, stderr)
        assert "so this went unseen: interrupted" in stderr and "run the same command to resume" in stderr
    stopped_at = len(load_study(opt_dict).trials)
    stderr = hpotool(*_OPTIMIZE, "--n-trials", str(stopped_at + 1), "--quiet")
    assert f"note: study 'tiny': a run (pid {proc.pid} on " in stderr and said in stderr
    for args in (["studies"], ["trials", "--study-name", "tiny"]):  # said once: the resume
        assert said not in hpotool(*args)
