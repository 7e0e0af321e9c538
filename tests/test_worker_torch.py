"""Which processes of `optimize --workers N` import torch: none for a training function that never does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpotool.forkserver import PRELOAD, TORCH_PRELOAD, preloads
from tests.conftest import write_yaml
from tests.test_workers import REPO, _run_hpotool

SPACE = {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}}


def _workers_imports(tmp_path: Path, function: str, *, joined: bool = False) -> list[dict[str, float]]:
    """The metrics `torch` and `parts` (`tests.trainers.reports_its_imports`) of each finished trial of a
    fresh `optimize --workers 2` process training `function`, from config files or (`joined`) joining the
    study they created by name."""
    run = write_yaml(tmp_path / "run.yaml", {"epochs": 1, "trainer": {"function": function, "x": 0.5}})
    opt = {"study_name": "imports", "n_trials": 4, "seed": 0, "search_space": SPACE}
    url = f"sqlite:///{tmp_path / 'imports.db'}"
    args = ["optimize", "-r", str(run), "-o", str(write_yaml(tmp_path / "opt.yaml", opt)), "--storage", url]
    if joined:  # the configs stored on the study: whether it trains a function is known once it is read
        code, output = _run_hpotool([*args, "--n-trials", "1", "-q"], tmp_path, timeout=120)
        assert code == 0, output
        args = ["optimize", "--study-name", "imports", "--storage", url, "--n-trials", "4"]
    code, output = _run_hpotool([*args, "--workers", "2", "-q"], tmp_path, timeout=120)
    assert code == 0, output
    trials = optuna.load_study(study_name="imports", storage=url).trials
    finished = [t.user_attrs["metrics"] for t in trials if t.state.is_finished()][1 if joined else 0 :]
    assert len(finished) == (3 if joined else 4), trials
    return [{k: m[k] for k in ("torch", "parts")} for m in finished]


@pytest.mark.parametrize("joined", [False, True])
def test_the_workers_of_a_training_function_without_torch_import_no_torch(
    tmp_path: Path, joined: bool
) -> None:
    # One process training such a function imports no torch (test_imports); with --workers every worker
    # did (~2 s each on a loaded machine): the worker server preloaded torch before the configs were read,
    # and each worker loaded the run config's default data section (digits), which the function never reads.
    no_torch = {"torch": 0.0, "parts": 0.0}
    assert _workers_imports(tmp_path, "tests.trainers:reports_its_imports", joined=joined) == [no_torch] * (
        3 if joined else 4
    )  # before: torch 1.0 and parts 1.0 in every trial


def test_the_workers_of_a_training_function_that_imports_torch_have_it_preloaded(tmp_path: Path) -> None:
    # Such a function's module imports torch when the checks import it: the worker server, started without
    # torch while the checks ran, is started again with it, so each worker forks with torch imported once.
    (tmp_path / "torch_fit.py").write_text(
        "import torch\n\nfrom tests.trainers import reports_its_imports\n\n\n"
        "def fit(report, x=0.5):\n    return reports_its_imports(report, x)\n"
    )
    assert _workers_imports(tmp_path, "torch_fit:fit") == [{"torch": 1.0, "parts": 1.0}] * 4


def test_the_worker_server_preloads_torch_only_for_a_run_that_trains_with_it() -> None:
    assert preloads(True) == PRELOAD
    assert set(PRELOAD) - set(preloads(False)) == set(TORCH_PRELOAD) == {"torch", "hpotool.parts"}
    # what a torch-free run's server imports imports no torch (a module added to PRELOAD that does would)
    code = f"import sys\nfor m in {preloads(False)!r}: __import__(m)\nprint('torch' in sys.modules)"
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )
    assert done.stdout.strip() == "False", done.stdout + done.stderr
