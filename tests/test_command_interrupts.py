"""Ctrl-C and SIGTERM in the commands besides optimize and train: real signals in real `hpotool` processes.

Each signal is sent by the command's own process, at a fixed point of its work (as a function it calls
returns), so that it lands where the test means it to, whatever the machine's load."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from .test_workers import _hpotool
from .tiny_study import run_tiny_study

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


@pytest.fixture(scope="module")
def made_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny study's SQLite file, made once for the module."""
    from .conftest import OPTIMIZE, RUN

    folder = tmp_path_factory.mktemp("made")
    opt = {**OPTIMIZE, "n_trials": 3, "storage": f"sqlite:///{folder / 'studies' / 'tiny.db'}"}
    run_tiny_study(folder, dict(RUN), opt)
    return folder / "studies" / "tiny.db"


@pytest.fixture
def study_here(tmp_path: Path, made_study: Path) -> str:
    """The tiny study copied into this test's folder (studies/tiny.db); its storage URL."""
    shutil.copytree(made_study.parent, tmp_path / "studies")  # tiny.db and its WAL
    shutil.rmtree(tmp_path / "studies" / "tiny", ignore_errors=True)
    return f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"


def _signal_after(module: str, name: str, how: signal.Signals, *, caught: bool = False) -> str:
    """Python code that makes `module.name` send the signal `how` to its own process as each call returns;
    `caught`: as the call starts, inside a `try` that catches its KeyboardInterrupt and goes on, as torch's
    import catches one as it imports numpy."""
    if caught:
        call = (
            "    try:\n"
            f"        os.kill(os.getpid(), {int(how)})\n"
            "    except KeyboardInterrupt:\n"
            "        pass\n"
            "    return real(*args, **kwargs)\n"
        )
    else:
        call = f"    found = real(*args, **kwargs)\n    os.kill(os.getpid(), {int(how)})\n    return found\n"
    return (
        f"import os, importlib\nowner = importlib.import_module({module!r})\nreal = owner.{name}\n"
        f"def then_signal(*args, **kwargs):\n{call}owner.{name} = then_signal\n"
    )


def _run(args: list[str], cwd: Path, before: str) -> tuple[int, str]:
    proc = _hpotool(args, cwd, before=before)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, output


def _left(folder: Path) -> list[str]:
    """What is in `folder` besides the study's files (studies/tiny.db, its WAL)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p != folder / "studies" and not p.name.startswith("tiny.db")
    )


_COMMANDS = {
    "export-best": (["export-best", "--out", "export"], "interrupted: nothing was written"),
    "report": (["report"], "interrupted: nothing was written"),
    "refine": (["refine", "--out", "stage2.yaml"], "interrupted: nothing was written"),
    "audit": (["audit"], "interrupted: nothing was written (audit only reads)"),
    "trials": (["trials"], "interrupted: nothing was written (trials only reads)"),
    "prune-audit": (["prune-audit"], "interrupted: nothing was written (prune-audit only reads)"),
    "fail-stale": (
        ["fail-stale"],
        "interrupted: the trials it marked failed stay failed, each with its retry queued; run the same "
        "command to mark the rest",
    ),
}


@pytest.mark.parametrize("command", list(_COMMANDS))
@pytest.mark.parametrize(("how", "code"), SIGNALS)
def test_a_signal_in_a_command_says_what_it_wrote_in_one_line(
    tmp_path: Path, study_here: str, command: str, how: signal.Signals, code: int
) -> None:
    # report, export-best, refine (and the commands that only read) exited 130 without a word: the user
    # could not tell whether the export or report on disk was the new one or the one before.
    args, line = _COMMANDS[command]
    full = [*args, "--study-name", "tiny", "--storage", study_here]
    found, output = _run(full, tmp_path, _signal_after("hpotool.study_lookup", "find_study", how))
    assert (found, output.strip().splitlines()[-1]) == (code, line), output
    assert "Traceback" not in output
    assert _left(tmp_path) == [], _left(tmp_path)  # no export, report, stage, folder or temporary file


def test_a_signal_in_a_report_to_stdout_says_its_output_may_be_cut_short(
    tmp_path: Path, study_here: str
) -> None:
    # `report --out -` said "nothing was written", though a signal as it wrote cuts the report on stdout short.
    args = ["report", "--study-name", "tiny", "--storage", study_here, "--out", "-"]
    before = _signal_after("hpotool.study_lookup", "find_study", signal.SIGINT)
    found, output = _run(args, tmp_path, before)
    assert (found, output.strip().splitlines()[-1]) == (
        130,
        "interrupted: no file was written; what reached stdout may be cut short",
    ), output
    assert _left(tmp_path) == [], _left(tmp_path)


@pytest.mark.parametrize(("how", "code"), SIGNALS)
def test_a_signal_in_studies_says_it_only_reads(
    tmp_path: Path, study_here: str, how: signal.Signals, code: int
) -> None:
    found, output = _run(["studies"], tmp_path, _signal_after("hpotool.browse", "study_rows", how))
    assert (found, output.strip().splitlines()[-1]) == (
        code,
        "interrupted: nothing was written (studies only reads)",
    ), output


def test_a_signal_as_export_best_renames_its_files_names_them(tmp_path: Path, study_here: str) -> None:
    # A Ctrl-C in the burst of renames waits for its end: the files are the new export, and the line says so.
    args = ["export-best", "--study-name", "tiny", "--storage", study_here, "--out", "export"]
    found, output = _run(args, tmp_path, _signal_after("hpotool.atomic", "_replace_staged", signal.SIGINT))
    names = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert names == ["best_params.json", "best_run.yaml", "trials.csv", "trials.json"], names
    last = output.strip().splitlines()[-1]
    assert found == 130 and last.startswith("interrupted: export-best had written "), output
    assert last.endswith(" in export before it stopped") and all(n in last for n in names), last


@pytest.mark.parametrize("command", ["export-best", "refine"])
@pytest.mark.parametrize(("how", "code"), SIGNALS)
def test_a_signal_something_catches_still_stops_the_command(
    tmp_path: Path, study_here: str, command: str, how: signal.Signals, code: int
) -> None:
    # A Ctrl-C that torch's import caught (refine imports torch) was forgotten: the command wrote its files
    # and exited 0.
    args, line = _COMMANDS[command]
    full = [*args, "--study-name", "tiny", "--storage", study_here]
    before = _signal_after("hpotool.study_lookup", "find_study", how, caught=True)
    found, output = _run(full, tmp_path, before)
    assert (found, output.strip().splitlines()[-1]) == (code, line), output
    assert _left(tmp_path) == [], _left(tmp_path)


def test_a_signal_as_fail_stale_fails_a_trial_queues_its_retry(tmp_path: Path, study_here: str) -> None:
    # fail-stale wrote a trial's FAIL, then its retry: a Ctrl-C between the two left the trial failed and its
    # values never run again. Now the signal waits for the retry; the trial after it stays RUNNING.
    study = optuna.load_study(study_name="tiny", storage=study_here)
    asked = [study.ask() for _ in range(2)]
    for trial in asked:
        trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True)
    args = ["fail-stale", "--study-name", "tiny", "--storage", study_here, "--all-running"]
    found, output = _run(args, tmp_path, _signal_after("hpotool.failed_trials", "fail_trial", signal.SIGINT))
    assert found == 130, output
    after: dict[Any, list[int]] = {}
    for t in optuna.load_study(study_name="tiny", storage=study_here).get_trials(deepcopy=False):
        after.setdefault(t.state, []).append(t.number)
    failed = after.get(TrialState.FAIL, [])
    assert len(failed) == 1 and after[TrialState.RUNNING] == [
        n.number for n in asked if n.number not in failed
    ]
    waiting = optuna.load_study(study_name="tiny", storage=study_here).get_trials(
        states=(TrialState.WAITING,)
    )
    assert [t.system_attrs.get("failed_trial") for t in waiting] == failed, output
    assert waiting[0].params == next(t.params for t in asked if t.number in failed)
    assert _left(tmp_path) == []
