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
    out = tmp_path / "b.md"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "cli", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert "## 4. CLI start" in out.read_text()
