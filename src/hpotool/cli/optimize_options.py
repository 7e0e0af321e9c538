"""The options of `hpotool optimize`, and how its config options may combine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpotool.cli.options import OptionError, out_path, run_config_option
from hpotool.errors import HpoError

RunConfigOrStoredOpt = Annotated[
    Path | None,
    run_config_option(
        "RunConfig YAML: one training run (with -o; without both, --study-name joins a study on its stored "
        "configs)."
    ),
]
OptimizeConfigOrStoredOpt = Annotated[
    Path | None,
    typer.Option(
        "--optimize-config",
        "-o",
        parser=out_path("a YAML file, e.g. --optimize-config optimize.yaml", "--optimize-config"),
        metavar="<path>",
        help=(
            "OptimizeConfig YAML: the study (with -r; without both, --study-name joins a study on its stored "
            "configs)."
        ),
    ),
]
NTrialsOpt = Annotated[int | None, typer.Option("--n-trials", help="Override n_trials (the study's total).")]


def _timeout_seconds(text: str) -> float:
    """--timeout's value: a number of seconds, or one line naming the seconds `1h` spells (as the optimize
    config's `timeout: 1h` is refused); "Input should be a valid number, unable to parse string" said
    neither that it is seconds nor how many."""
    from hpotool.optimize_checks import timeout_text

    try:
        timeout_text(text, option=True)
        return float(text)
    except ValueError as exc:
        raise OptionError(f"--timeout: {exc}") from None


TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", parser=_timeout_seconds, metavar="SECONDS", help="Override timeout, in seconds."
    ),
]
DeviceOverrideOpt = Annotated[
    str | None, typer.Option("--device", help="Override the device: auto, cpu, cuda, cuda:N, mps.")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Override the sampler seed.")]
MaxFailuresOpt = Annotated[
    int,
    typer.Option(
        "--max-failures",
        min=0,
        help="Stop after this many failed trials in a row (0: never); with --workers, in a row in the run, whichever workers ran them.",
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress: only the final summary (and notes, and the new or resumed study)."
    ),
]
SummaryJsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print a machine-readable summary to stdout (progress and notes stay on stderr; -q: no progress).",
    ),
]
ReportOpt = Annotated[
    bool, typer.Option("--report", help="Write studies/<study-name>/report.html at the end.")
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", min=1, help="Worker processes on this machine sharing the study.")
]
EnqueueFromOpt = Annotated[
    str | None,
    typer.Option("--enqueue-from", help="Warm start: run the best trials of this study first."),
]
EnqueueFromStorageOpt = Annotated[
    str | None,
    typer.Option("--enqueue-from-storage", help="Its storage (default: sqlite:///studies/<name>.db)."),
]
TopOpt = Annotated[
    int | None,
    typer.Option("--top", min=1, help="How many of its best trials --enqueue-from takes (default 5)."),
]
TOP_DEFAULT = 5
AllowChangedConfigOpt = Annotated[
    bool,
    typer.Option(
        "--allow-changed-config",
        help="Resume a study whose base config, search space, sampler, pruner or constraints changed "
        "(recorded); its metric and direction cannot change.",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check the configs, the data and one training step, print the plan and exit: nothing "
        "written (a SQLite or journal file, or a study joined by name, is read for its finished trials), "
        "no trial run (--json: the validated configs and trial counts).",
    ),
]


def check_warm_start_options(
    enqueue_from: str | None, enqueue_from_storage: str | None, top: int | None
) -> None:
    """--top and --enqueue-from-storage go with --enqueue-from: without it they were ignored, the run
    queuing nothing, without a word."""
    if enqueue_from is not None:
        return
    if top is not None:
        raise HpoError(
            f"--top {top}: counts the best trials --enqueue-from queues, and no --enqueue-from is given; give "
            f"--enqueue-from STUDY with it, or drop --top"
        )
    if enqueue_from_storage:
        raise HpoError(
            "--enqueue-from-storage: is where --enqueue-from's study is stored, and no --enqueue-from is given; "
            "give --enqueue-from STUDY with it, or drop --enqueue-from-storage"
        )


def check_config_options(
    run_config: Path | None, optimize_config: Path | None, study_name: str | None
) -> None:
    """optimize takes both config files, or neither and the name of a study that stores them."""
    if (run_config is None) != (optimize_config is None):
        given, missing = (
            ("--run-config", "--optimize-config")
            if optimize_config is None
            else ("--optimize-config", "--run-config")
        )
        raise HpoError(
            f"{given} needs {missing} too; or give neither, with --study-name (and --storage), to join a study "
            f"with the configs stored on it"
        )
    if run_config is None and study_name is None:
        raise HpoError(
            "give --run-config and --optimize-config to run a study, or --study-name (and --storage) to join one "
            "with the configs stored on it"
        )
