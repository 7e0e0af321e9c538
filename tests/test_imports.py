from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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


def _console_script() -> tuple[str, str]:
    """The module and function pyproject.toml names as the `hpotool` console script's entry point."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # tomllib is new in 3.11; tomli (a dev dependency there) is the same parser
        import tomli as tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["hpotool"].partition(":")
    return module, function


def test_the_entry_point_imports_nothing_before_its_ctrl_c_guard() -> None:
    # typer (and all the CLI imports) load inside the entry function's guard, not before it.
    module, _ = _console_script()
    code = f"import sys, {module}; print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ctrl_c_while_the_cli_loads_exits_130_quietly(tmp_path: Path) -> None:
    # A Ctrl-C in the first ~0.2 s, while hpotool.cli imported typer, printed a 20-line KeyboardInterrupt
    # traceback (exit code 1); later it is typer's, which exits 130 and prints nothing. A `typer` that
    # raises KeyboardInterrupt as it is imported, first on the path, is that Ctrl-C at a fixed moment.
    import os

    (tmp_path / "typer").mkdir()
    (tmp_path / "typer" / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    module, function = _console_script()
    script = f"import sys\nfrom {module} import {function}\nsys.exit({function}())"  # as pip writes it
    for args in (["-m", "hpotool", "--help"], ["-c", script, "--help"]):
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (130, "", ""), args


def test_ctrl_c_while_typer_builds_the_commands_exits_130_quietly(tmp_path: Path) -> None:
    # typer exits 130 quietly for a Ctrl-C while a command runs, but builds the click commands from the
    # functions' signatures (~0.1 s) before: a Ctrl-C then printed a traceback and the process ended by
    # SIGINT. A sitecustomize raises a real SIGINT at that moment.
    import os

    (tmp_path / "sitecustomize.py").write_text(
        "import signal\n"
        "import typer.main\n"
        "_get_command = typer.main.get_command\n"
        "def get_command(app):\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "    return _get_command(app)\n"
        "typer.main.get_command = get_command\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    module, function = _console_script()
    script = f"import sys\nfrom {module} import {function}\nsys.exit({function}())"
    for args in (["-m", "hpotool", "--help"], ["-c", script, "--help"]):
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (130, "", ""), args


def test_the_readme_code_layout_names_every_module_once() -> None:
    # The README's table of modules by stage is how a newcomer finds their way: a module added, split or
    # renamed without it made the table wrong.
    root = Path(__file__).resolve().parents[1]
    table = (root / "README.md").read_text().split("**Code layout.**", 1)[1].split("\n\n", 2)[1]
    named = [name for row in table.splitlines()[2:] for name in row.split("|")[2].split("`")[1::2]]
    modules = [p.stem for p in (root / "src" / "hpotool").glob("*.py")]  # __main__ and __init__ too
    # the cli package's modules as `cli.root`, the package as `cli`
    modules += ["cli", *(f"cli.{p.stem}" for p in (root / "src" / "hpotool" / "cli").glob("[!_]*.py"))]
    assert {m: named.count(m) for m in modules if named.count(m) != 1} == {}


def test_a_study_of_a_training_function_without_torch_imports_no_torch(tmp_path: Path) -> None:
    # A user's training function that never uses torch (scikit-learn, LightGBM, plain Python) paid ~2 s of
    # `import torch` per command: hpotool.runner imported it at module level, and the run config's default
    # sections (digits, mlp, adam) were imported to check them. `optimize` and `train` now import none of it.
    (tmp_path / "plain_fit.py").write_text(
        "def fit(config, report, x=0.5):\n"
        "    loss = 0.0\n"
        "    for epoch in range(config['epochs']):\n"
        "        loss = (x - 0.3) ** 2 + 1.0 / (epoch + 1)\n"
        "        report(epoch, {'val_loss': loss})\n"
        "    return {'val_loss': loss}\n"
    )
    (tmp_path / "run.yaml").write_text("epochs: 3\ntrainer: {function: 'plain_fit:fit', x: 0.5}\n")
    (tmp_path / "optimize.yaml").write_text(
        "study_name: plain\nn_trials: 3\nseed: 0\nmetric: val_loss\ndirection: minimize\n"
        "search_space:\n  trainer.x: {type: float, low: 0.0, high: 1.0}\n"
    )
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    for args in (
        ["optimize", "-r", "run.yaml", "-o", "optimize.yaml", "--storage", storage, "-q"],
        ["train", "-r", "run.yaml"],
        ["train", "-r", "run.yaml", "--device", "cpu"],
        ["optimize", "-r", "run.yaml", "-o", "optimize.yaml", "--storage", storage, "--dry-run"],
    ):
        code = (
            "import sys\n"
            "from hpotool.cli import app\n"
            "try:\n"
            f"    app({args!r})\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print([m for m in ('torch', 'hpotool.datasets', 'hpotool.models') if m in sys.modules], file=sys.stderr)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().splitlines()[-1] == "[]", (args, result.stderr)
    import optuna

    study = optuna.load_study(study_name="plain", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
