"""The `hpotool` command line. The only module that prints for the user or sets exit codes.

Heavy libraries (torch, optuna, plotly) are imported inside the commands that need them, so
`hpotool --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hpotool import __version__
from hpotool.errors import HpoError

if TYPE_CHECKING:
    from hpotool.objective import StudySummary

app = typer.Typer(
    help="Config-driven hyperparameter optimization for PyTorch: two YAML files, one command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@dataclass
class _State:
    debug: bool = False


state = _State()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an `HpoError` into one red line on stderr and exit code 2 (a traceback with --debug)."""
    try:
        yield
    except HpoError as exc:
        if state.debug:
            raise
        for line in str(exc).splitlines():
            err_console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        raise typer.Exit(code=2) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"hpotool {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    state.debug = debug


RunConfigOpt = Annotated[
    Path,
    typer.Option("--run-config", "-r", exists=True, dir_okay=False, help="RunConfig YAML: one training run."),
]
OptimizeConfigOpt = Annotated[
    Path,
    typer.Option(
        "--optimize-config", "-o", exists=True, dir_okay=False, help="OptimizeConfig YAML: the study."
    ),
]
StudyNameOpt = Annotated[str | None, typer.Option("--study-name", help="Override study_name.")]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL (default: SQLite under studies/).")
]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_summary(summary: StudySummary) -> None:
    table = Table(title=f"study {summary.study_name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("storage", summary.storage)
    table.add_row("metric", f"{summary.metric} ({summary.direction})")
    finished = summary.counts.get("complete", 0) + summary.counts.get("pruned", 0)
    table.add_row("trials", f"{finished}/{summary.target} finished, {summary.ran_now} run now")
    table.add_row("states", ", ".join(f"{k} {v}" for k, v in summary.counts.items()) or "none")
    table.add_row("wall time", f"{summary.wall_time:.1f}s")
    if summary.best:
        b = summary.best
        table.add_row("best trial", f"#{b['number']}")
        table.add_row(f"best {summary.metric}", _fmt(b["value"]))
        for k, v in b["params"].items():
            table.add_row(f"  {k}", _fmt(v))
        for k, v in b["metrics"].items():
            if k != summary.metric:
                table.add_row(f"  ({k})", _fmt(v))
    else:
        table.add_row("best", "no complete trial yet")
    console.print(table)
    if summary.stopped:
        err_console.print(f"[yellow]note:[/yellow] {escape(summary.stopped)}")
    if summary.first_error:
        err_console.print(f"[red]first error:[/red] {escape(summary.first_error)}")


@app.command()
def optimize(
    run_config: RunConfigOpt,
    optimize_config: OptimizeConfigOpt,
    study_name: StudyNameOpt = None,
    storage: StorageOpt = None,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", help="Override n_trials (the study's total).")
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Override timeout, in seconds.")] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Override device: auto, cpu, cuda, cuda:N, mps.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the sampler seed.")] = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", help="Stop after this many failed trials in a row (0: never).")
    ] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary to stdout.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes on this machine sharing the study.")
    ] = 1,
) -> None:
    """Run a study, or resume it: runs only the trials still missing from n_trials."""
    with user_errors():
        if workers > 1:
            from hpotool.forkserver import start_worker_server

            start_worker_server()  # imports torch there while this process checks the configs
        from hpotool.objective import Overrides, prepare_study, run_study

        overrides = Overrides(study_name, storage, n_trials, timeout, device, seed)
        plan = prepare_study(run_config, optimize_config, overrides)
        if workers > 1:
            from hpotool.workers import run_workers

            def run(observer: Any = None) -> StudySummary:
                return run_workers(plan, workers, observer, max_failures=max_failures)
        else:

            def run(observer: Any = None) -> StudySummary:
                return run_study(plan, observer, max_failures=max_failures)

        if quiet or as_json:
            summary = run()
        else:
            from hpotool.progress import RichObserver

            with RichObserver(err_console, plan.opt.metric) as observer:
                summary = run(observer)
        if as_json:
            sys.stdout.write(json.dumps(summary.as_dict(), indent=2, default=str) + "\n")
        else:
            print_summary(summary)


@app.command("fail-stale")
def fail_stale(
    study_name: Annotated[str, typer.Option("--study-name", help="The study to clean up.")],
    storage: StorageOpt = None,
    all_running: Annotated[
        bool,
        typer.Option(
            "--all-running",
            help="Mark EVERY running trial failed (storages without heartbeat; only when no worker runs).",
        ),
    ] = False,
) -> None:
    """Mark trials of dead workers (RUNNING, heartbeat older than the grace period) FAIL and queue a retry."""
    with user_errors():
        from hpotool.storage import fail_stale_trials, has_heartbeat, load_study

        study = load_study(study_name, storage)
        if not all_running and not has_heartbeat(study._storage):
            raise HpoError(
                f"study {study_name!r}: this storage has no heartbeat, so a dead worker's trial cannot be told "
                f"from a live one; stop every worker, then run again with --all-running"
            )
        failed = fail_stale_trials(study, every_running=all_running)
        listed = ", ".join(f"#{n}" for n in failed) if failed else "none"
        console.print(f"marked {len(failed)} stale trial(s) FAIL: {listed}")


def main() -> None:
    """Entry point of the `hpotool` console script."""
    app()
