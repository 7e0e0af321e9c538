"""Each catalogued bad input, through the real CLI: exit code 2, the exact line, no traceback, no study
written or changed. docs/ERRORS.md is generated from the same table."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from hpotool.cli import app

from .error_catalogue import CASES, Case
from .python_words import as_this_python_words

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ERRORS.md"
ARGS = ["optimize", "--run-config", "run.yaml", "--optimize-config", "optimize.yaml"]
runner = CliRunner()


def _write(case: Case) -> None:
    run, opt = case.configs()
    Path("run.yaml").write_text(case.run_text if case.run_text is not None else yaml.safe_dump(run))
    Path("optimize.yaml").write_text(
        case.optimize_text if case.optimize_text is not None else yaml.safe_dump(opt)
    )
    for name, text in case.files.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(text)
    if case.name == "unreadable":
        Path("run.yaml").write_bytes(b"\xff\xfe")


def _snapshot() -> list[tuple[int, str, dict]]:
    study = optuna.load_study(study_name="tiny", storage="sqlite:///studies/tiny.db")
    return [(t.number, t.state.name, t.params) for t in study.trials] + [(-1, "attrs", study.user_attrs)]


def test_the_readme_counts_the_catalogue() -> None:
    # Each branch that added cases left the README's count behind.
    readme = (REPO / "README.md").read_text()
    assert f"lists {len(CASES)} of them" in readme


def test_the_catalogue_is_large_enough_and_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, request: pytest.FixtureRequest) -> None:
    if case.needs_no_cuda:
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    if case.server is not None:
        from .test_workers import _server_url

        _server_url(case.server)
    Path("studies").mkdir()
    if case.plain_study is not None:
        url = f"sqlite:///studies/{case.plain_study}.db"

        def fails(trial: optuna.Trial) -> float:
            trial.suggest_float("x", 0, 1)
            raise RuntimeError("the plain study's own error")

        optuna.create_study(study_name=case.plain_study, storage=url).optimize(fails, 2, catch=RuntimeError)
    before = None
    if case.elsewhere is not None:
        here = Path.cwd()
        Path(case.elsewhere).mkdir()
        os.chdir(case.elsewhere)
        try:
            _write(Case("base", "", ""))
            made = runner.invoke(
                app, [*ARGS, "--n-trials", "1", "-q", *case.elsewhere_args], catch_exceptions=False
            )
        finally:
            os.chdir(here)
        assert made.exit_code == 0, made.output
    if case.existing_study:
        _write(
            Case(
                "base",
                "",
                "",
                run=case.existing_run,
                optimize=case.existing_optimize,
                files=case.existing_files,
            )
        )
        made = runner.invoke(
            app, [*ARGS, "--n-trials", str(case.existing_trials), "-q"], catch_exceptions=False
        )
        # exit 1: a run config whose trials all fail stops the study after 5 of them, as the case means it to;
        # exit 130: one that interrupts its trial (Ctrl-C)
        assert made.exit_code in (0, 130) or "5 failed trials in a row" in made.output, made.output
        if case.resumed_run:
            _write(
                Case(
                    "base",
                    "",
                    "",
                    run={**case.existing_run, **case.resumed_run},
                    optimize=case.existing_optimize,
                )
            )
            resumed = runner.invoke(
                app,
                [*ARGS, "--n-trials", str(case.existing_trials), "-q", "--allow-changed-config"],
                catch_exceptions=False,
            )
            assert resumed.exit_code == 0, resumed.output
        if case.running_trials:  # asked by a live process of this machine: the test's parent
            study = optuna.load_study(study_name="tiny", storage="sqlite:///studies/tiny.db")
            for _ in range(case.running_trials):
                worker = {"host": socket.gethostname(), "pid": os.getppid()}
                study.ask().set_user_attr("worker", worker)
        before = _snapshot()
    _write(case)
    if case.read_only is not None:
        Path(case.read_only).mkdir()
        request.getfixturevalue("lock_read_only")(Path(case.read_only))
    argv = list(case.command) or [*(ARGS[:1] if case.without_configs else ARGS), *case.args]
    # The command line the user's code sees, as `hpotool ...` gives it: a module parsing it at import (argparse)
    # reads this, not pytest's (which an xdist process does not have).
    request.getfixturevalue("monkeypatch").setattr(sys, "argv", ["hpotool", *argv])
    here = Path.cwd()
    if case.run_in is not None:
        Path(case.run_in).mkdir(exist_ok=True)  # or made by `files`
        os.chdir(case.run_in)
    lock = None
    if case.lock_held:
        lock = sqlite3.connect(here / "studies" / "tiny.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
    try:
        result = runner.invoke(app, argv, env=case.env, prog_name="hpotool")  # a usage line names its command
    finally:
        os.chdir(here)
        if lock is not None:
            lock.close()  # its transaction rolls back
    assert result.exit_code == 2, result.output
    expected = as_this_python_words(case.message)
    expected = expected.replace("<cwd>", str(Path.cwd())).replace("<repo>", str(REPO))
    assert result.stderr == expected.replace("<python>", sys.executable) + "\n"
    assert "Traceback" not in result.output
    if before is None:
        assert not Path("studies/tiny.db").exists()
    else:
        assert _snapshot() == before
    assert {name: Path(name).read_text() for name in case.files} == case.files


def render_doc() -> str:
    lines = [
        "# Error catalogue",
        "",
        "Every mistake below is caught before the command does its work (`optimize`: before trial 0;",
        "`export-best`, `train-from-best`, `refine`, `report`, `trials`: before they train, write or list),",
        "with exit code 2 and the one line shown (a line per mistake, where a file has several), and nothing is",
        "written to the study's storage.",
        "`hpotool --debug ...` shows the traceback instead. The page is generated from",
        "`tests/error_catalogue.py`, and `tests/test_errors_catalogue.py` runs every case through the real CLI,",
        "so what you read here is what hpotool prints (paths as in the tests: `run.yaml`, `optimize.yaml`, the",
        "default `studies/tiny.db`; `<cwd>`: the folder the command runs in; `<repo>`: hpotool's checkout, whose",
        "`tests/helpers.py` stands for a user's code; `<python>`: the Python hpotool runs in).",
        "",
    ]
    for i, case in enumerate(CASES, 1):
        shown = [f"   {line}" for line in case.message.splitlines()]  # a line per mistake, each as printed
        lines += [f"{i}. **{case.what}** (`{case.name}`)", "", "   ```", *shown, "   ```", ""]
    return "\n".join(lines)


def test_docs_errors_md_matches_the_catalogue() -> None:
    text = render_doc()
    if os.environ.get("HPOTOOL_WRITE_ERRORS_DOC") == "1":
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    assert DOC.read_text() == text, (
        "docs/ERRORS.md is stale: HPOTOOL_WRITE_ERRORS_DOC=1 pytest tests/test_errors_catalogue.py"
    )
