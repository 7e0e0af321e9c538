"""The benchmark scripts still start (no timing is asserted anywhere in the test suite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_entry_points_start() -> None:
    for module in ("benchmarks.run", "benchmarks.optuna_scripts"):
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True, check=True
        )
        assert "usage:" in out.stdout


def test_the_cli_benchmark_section_runs(tmp_path: Path) -> None:
    # One round of its timed commands, not quick mode's two: a round starts 4 interpreters (2 import torch)
    out = tmp_path / "b.md"
    command = ["--quick", "--only", "cli", "--cli-rounds", "1", "--out", str(out)]
    subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *command],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert "## 4. CLI start" in text and "median (min–max) of 1 interleaved rounds" in text


def test_the_bulk_built_scale_study_reads_back_through_optuna(tmp_path: Path) -> None:
    """Benchmark 7b writes Optuna's tables directly; what Optuna reads back must be the study it meant."""
    sys.path.insert(0, str(REPO))
    from benchmarks.run import build_scale_study

    from hpotool.storage import load_study

    build_scale_study(tmp_path / "s.db", 50)  # asserts the read-back itself
    study = load_study("scale", f"sqlite:///{tmp_path / 's.db'}")
    assert len(study.trials) == 50 and study.best_trial.value == max(t.value for t in study.trials)
    assert study.user_attrs["run_config"]["model"]["name"] == "mlp"
