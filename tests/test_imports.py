from __future__ import annotations

import subprocess
import sys


def test_cli_import_pulls_in_no_heavy_library() -> None:
    # A fresh interpreter: this test process has imported torch already.
    code = "import sys, hpotool.cli; print([m for m in ('torch', 'optuna', 'plotly', 'sklearn', 'pandas') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_imports_neither_rich_nor_a_heavy_library() -> None:
    # `--help` is plain text: rich (~50 ms of imports) loads only when a command prints through it, and
    # pydantic (~0.2 s) only when a config is read.
    code = (
        "import sys\n"
        "from hpotool.cli import app\n"
        "try:\n"
        "    app(['optimize', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print([m for m in ('rich', 'pydantic', 'torch', 'optuna', 'plotly') if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--enqueue-from-storage" in result.stdout  # long option names are shown whole
    assert result.stderr.strip() == "[]"


def test_config_import_pulls_in_no_heavy_library() -> None:
    code = "import sys, hpotool.config, hpotool.search_space; print([m for m in ('torch', 'optuna', 'plotly') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpotool", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("hpotool ")
