"""hpotool as a script runs it: stdout the data alone, the notes on stderr, exit codes a script can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hpotool.cli import app

from .conftest import write_configs


def test_a_json_run_says_its_notes_on_stderr(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """`optimize --json > summary.json 2> run.log` kept the summary's notes in the JSON alone: a CI log said
    nothing of every trial pruned, of a run with nothing to run, or of an interrupted run, where the
    table's run says each on stderr."""
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.999}}
    run, opt = write_configs(tmp_path, run_dict, opt_dict)
    args = ["optimize", "-r", str(run), "-o", str(opt), "--json"]
    runner = CliRunner()
    first = runner.invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    summary: dict[str, Any] = json.loads(first.stdout)  # stdout: the JSON alone
    assert summary["best"] is None and summary["counts"] == {"pruned": 3}
    assert f"note: {summary['extra']['pruned']}\n" in first.stderr, first.stderr
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    stopped = json.loads(again.stdout)["stopped"]
    assert stopped.startswith("the study already holds 3 finished trials (n_trials: 3): nothing to run")
    assert f"note: {stopped}\n" in again.stderr, again.stderr


def test_the_same_thing_has_the_same_key_in_every_json(tmp_path: Path, configs: tuple[Path, Path]) -> None:
    """A script reading one command's JSON and then another's found the best trial's seconds as `duration` in
    `optimize --json` and `duration_s` in `trials --json` and the exports, and the study as `study` in
    `prune-audit --json` and `study_name` everywhere else."""
    run, opt = configs
    runner = CliRunner()
    ran = runner.invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "--json"], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    best = json.loads(ran.stdout)["best"]
    study = ["--study-name", "tiny", "--storage", f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"]
    listed = runner.invoke(app, ["trials", *study, "--json"], catch_exceptions=False)
    row = next(r for r in json.loads(listed.stdout) if r["number"] == best["number"])
    assert {k: row[k] for k in best} == best  # number, value, values, params, metrics, duration_s
    assert isinstance(best["duration_s"], float)
    names = {}
    for command in (
        ["audit", "--json"],
        ["prune-audit", "--json"],
        ["report", "--format", "json", "--out", "-"],
    ):
        result = runner.invoke(app, [*command, *study])
        assert result.exit_code == 0, result.output
        names[command[0]] = json.loads(result.stdout).get("study_name")
    assert names == {"audit": "tiny", "prune-audit": "tiny", "report": "tiny"}


def _readme_script() -> str:
    """The bash block of README's "Scripting hpotool"."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return readme.split("## Scripting hpotool\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_script_runs_and_runs_again(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """README's script, as a CI job runs it: bash with `set -euo pipefail`, stdout a pipe, stderr a file, the
    `hpotool` and `python3` of this checkout first on PATH. Run again, it trains nothing twice."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hpotool").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hpotool "$@"\n')
    (bin_dir / "hpotool").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    del opt_dict["storage"]  # the default, studies/tiny.db beside the script
    write_configs(tmp_path, run_dict, opt_dict)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(repo / "src"),
    }
    env.pop("COLUMNS", None)

    def script() -> tuple[list[str], str]:
        with open(tmp_path / "log.txt", "w") as log:
            done = subprocess.run(
                ["bash", "-c", _readme_script()],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        stderr = (tmp_path / "log.txt").read_text()
        assert done.returncode == 0, stderr
        return done.stdout.splitlines(), stderr

    out, log = script()
    assert out[0] == "3" and 0 < float(out[1]) <= 1, out  # 3 complete trials; the val_accuracy trained
    assert log.startswith("new study 'tiny' in "), log
    assert "\x1b" not in log and "━" not in log  # a log file: no colour, no bars
    best = json.loads((tmp_path / "summary.json").read_text())["best"]["number"]
    model = tmp_path / "runs" / f"trial{best}" / "model.pt"
    first_model = model.stat().st_mtime_ns
    again, log = script()
    assert again == out
    assert "note: the study already holds 3 finished trials (n_trials: 3): nothing to run" in log, log
    assert model.stat().st_mtime_ns == first_model  # not trained again


def test_a_json_run_shows_its_progress_on_stderr_unless_quiet(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`optimize --json > summary.json` in a CI job showed nothing while it ran, however many trials (--json
    dropped the progress as --quiet does): its log now has a line per trial, as a run without --json
    writes into a log; `-q` leaves them out."""
    run, opt = write_configs(tmp_path, run_dict, {**opt_dict, "n_trials": 2})
    args = ["optimize", "-r", str(run), "-o", str(opt), "--json"]
    runner = CliRunner()
    shown = runner.invoke(app, args, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["counts"] == {"complete": 2}
    lines = [line.split()[:3] for line in shown.stderr.splitlines() if line.startswith("trial ")]
    assert lines == [["trial", "0", "COMPLETE"], ["trial", "1", "COMPLETE"]], shown.stderr
    quiet = runner.invoke(app, [*args, "-q", "--n-trials", "3"], catch_exceptions=False)
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["counts"] == {"complete": 3}
    assert quiet.stderr == "resuming study tiny: 2/3 trials done\n", quiet.stderr


def test_json_on_stdout_is_the_same_at_any_width_and_colour(
    tmp_path: Path, configs: tuple[Path, Path]
) -> None:
    """README (Scripting hpotool): stdout's JSON is the same at any COLUMNS, with no colour codes even where
    FORCE_COLOR is set (as many CI services set it), in a process of its own as a script runs it."""
    import os
    import subprocess
    import sys

    run, opt = configs
    ran = CliRunner().invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "-q"], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    repo = Path(__file__).resolve().parents[1]
    study = ["--study-name", "tiny", "--storage", f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"]
    for command in (
        ["trials", *study, "--json"],
        ["studies", *study[2:], "--json"],
        ["audit", *study, "--json"],
    ):
        outputs = []
        for width, colour in (("40", {"FORCE_COLOR": "1"}), ("300", {})):
            env = {**os.environ, "PYTHONPATH": str(repo / "src"), "COLUMNS": width, **colour}
            env.pop("NO_COLOR", None)
            done = subprocess.run(
                [sys.executable, "-m", "hpotool", *command],
                env=env,
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            assert done.returncode == 0, done.stderr
            assert "\x1b" not in done.stdout, done.stdout
            outputs.append(json.loads(done.stdout))
        assert outputs[0] == outputs[1], command
