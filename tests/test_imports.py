from __future__ import annotations

import subprocess
import sys


def test_cli_import_pulls_in_no_heavy_library() -> None:
    # A fresh interpreter: this test process has imported torch already.
    code = "import sys, hpotool.cli; print([m for m in ('torch', 'optuna', 'plotly', 'sklearn', 'pandas') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_config_import_pulls_in_no_heavy_library() -> None:
    code = "import sys, hpotool.config, hpotool.search_space; print([m for m in ('torch', 'optuna', 'plotly') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpotool", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("hpotool ")
