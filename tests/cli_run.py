"""`hpotool optimize` through the real CLI, as the README's commands run it."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from hpotool.cli import app


def optimize(
    run: str | Path, opt: str | Path, storage: str, n_trials: int, *extra: str, exit_code: int | None = 0
) -> Result:
    """`hpotool optimize -r RUN -o OPT --storage STORAGE --n-trials N -q EXTRA...`, which must exit with
    `exit_code` (None: any, for the caller to look at)."""
    args = ["optimize", "-r", str(run), "-o", str(opt), "--storage", storage, "--n-trials", str(n_trials)]
    result = CliRunner().invoke(app, [*args, "-q", *extra], catch_exceptions=False)
    assert exit_code is None or result.exit_code == exit_code, result.output
    return result


def shipped_run(folder: Path, **changes: object) -> Path:
    """configs/run_template.yaml with `changes` to its top-level keys, written to folder/run.yaml: the shipped
    run config, for a test whose assertions do not need its 20 epochs."""
    import yaml

    template = Path(__file__).resolve().parents[1] / "configs" / "run_template.yaml"
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(template.read_text()) | changes, sort_keys=False))
    return path
