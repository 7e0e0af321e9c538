"""What one test leaves in its process does not change what the next one does (tests/conftest.py): under
xdist each process runs hundreds of tests in turn, in an order the test run decides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hpotool

# Two tests, run in this order in one process: the first leaves what an in-process test may leave, the second
# looks for it, as a later test that did not ask for it would meet it.
_PAIR = """
import logging

import optuna
import pytest
import typer
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.cli.root import user_errors
from hpotool.errors import HpoError
from hpotool.import_paths import import_object


def test_1_leaves(tmp_path):
    (tmp_path / "left_behind.py").write_text("NET = 1\\n")
    assert import_object("left_behind:NET") == 1
    CliRunner().invoke(app, ["--debug", "trials", "-o", "missing.yaml"])
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_2_finds_nothing_left():
    with pytest.raises(HpoError, match="No module named 'left_behind'"):
        import_object("left_behind:NET")
    assert not logging.getLogger("hpotool").isEnabledFor(logging.DEBUG)
    with pytest.raises(typer.Exit), user_errors():  # one line, not the traceback of --debug
        raise HpoError("run.yaml: epochs: must be 1 or more")
    assert logging.getLogger("optuna").isEnabledFor(logging.INFO)
"""


def test_a_test_leaves_no_import_folder_logger_level_or_optuna_verbosity_to_the_next(tmp_path: Path) -> None:
    """A user's module an earlier test imported from its folder (which stayed on sys.path) was found by a
    later test that had written none; a `--debug` command left hpotool's logger at DEBUG, and its errors
    raised whole (`user_errors`), for the direct calls of the tests after it; Optuna's verbosity set by one
    test (or one module as it was imported) was every later test's."""
    _passes_in_order(tmp_path, "test_pair.py", _PAIR, 2)


def _passes_in_order(tmp_path: Path, name: str, tests: str, count: int, **environ: str) -> None:
    """Run `tests`, written to `name`, in a pytest of their own with this suite's conftest, in file order
    (no xdist, no random order), and check all `count` pass."""
    (tmp_path / name).write_text(tests)
    checkout = Path(__file__).resolve().parent.parent
    source = Path(hpotool.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(checkout)]), **environ}
    args = ["-p", "tests.conftest", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "--rootdir", str(tmp_path), name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{count} passed" in done.stdout


# A command run in the test process sets torch's thread count (the run config's `torch_threads`) for the rest
# of the process: a later test training with `torch_threads: null` (torch's default) trained with it. The
# first test is the process's first `import torch`; the second meets torch imported. Each test starts with
# the suite's count (conftest.TEST_TORCH_THREADS).
_THREADS = """
import yaml
from typer.testing import CliRunner

from hpotool.cli import app

from tests.conftest import TEST_TORCH_THREADS as FRESH


def _train(tmp_path):
    run = {"project": "t", "device": "cpu", "torch_threads": FRESH + 1, "epochs": 1,
           "data": {"name": "digits", "subset_fraction": 0.1}, "model": {"name": "mlp", "hidden": [8]}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    result = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    import torch

    assert torch.get_num_threads() == FRESH + 1  # what the test leaves


def test_1_imports_torch_and_sets_its_threads(tmp_path):
    _train(tmp_path)


def test_2_finds_the_fresh_count_and_sets_it_again(tmp_path):
    import torch

    assert torch.get_num_threads() == FRESH
    _train(tmp_path)


def test_3_finds_the_fresh_count():
    import torch

    assert torch.get_num_threads() == FRESH
"""


def test_a_test_leaves_no_torch_thread_count_to_the_next(tmp_path: Path) -> None:
    _passes_in_order(tmp_path, "test_threads.py", _THREADS, 3)
