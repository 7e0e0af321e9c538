"""The `hpotool` command line. The only module that prints for the user or sets exit codes.

Heavy libraries (torch, optuna, plotly) are imported inside the commands that need them, so
`hpotool --help` stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hpotool import __version__
from hpotool.errors import HpoError, unsuppress_context
from hpotool.formatting import format_choice, format_param, format_params, format_value

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from hpotool.audit import AuditReport
    from hpotool.plan import StudyPlan
    from hpotool.summary import StudySummary

app = typer.Typer(
    help="Config-driven hyperparameter optimization for PyTorch: two YAML files, one command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: it shows every option name whole at 80 columns (rich's panels cut the long ones) and
    # keeps rich (~50 ms of imports) out of `--help`.
    rich_markup_mode=None,
)


def _show_usage_error(self: Any, file: Any = None) -> None:
    """A mistake on the command line (a missing or unknown option, a value out of range) as one line, like
    every other hpotool error; click printed four (usage, a hint, a blank line, the error). Exit code 2."""
    command = self.ctx.command_path if self.ctx is not None else "hpotool"
    if isinstance(self, _OptionError):  # its message is the whole line, as an HpoError's
        typer.echo(f"error: {self.message}", file=file, err=True)
        return
    bad_value = _bad_option_value(self)
    if bad_value is not None:  # as --n-trials 0 reads: "--n-trials: Input should be greater than 0, got 0"
        typer.echo(f"error: {bad_value}", file=file, err=True)
        return
    if (
        getattr(self, "option_name", None) == "--debug"
        and self.ctx is not None
        and self.ctx.parent is not None
    ):
        # `hpotool optimize ... --debug`, after the command, as the README's --debug looks: it read "No such
        # option: --debug (see hpotool optimize --help)", whose help does not have it
        typer.echo(
            f"error: --debug is an option of hpotool itself: give it before the command "
            f"(hpotool --debug {self.ctx.info_name} ...)",
            file=file,
            err=True,
        )
        return
    message = self.format_message().rstrip(".")
    typer.echo(f"error: {message} (see {command} --help)", file=file, err=True)


def _bad_option_value(error: Any) -> str | None:
    """`--workers: Input should be greater than or equal to 1, got 0` for a value typer's type check
    refused (it raises from pydantic's ValidationError), or None for any other mistake on the command line.
    It read "Invalid value for '--workers': Input should be ..." without the value given."""
    cause, param = error.__cause__, getattr(error, "param", None)
    if param is None or not param.opts or type(cause).__name__ != "ValidationError":
        return None
    found = cause.errors()
    if not found or "input" not in found[0]:
        return None
    flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
    given = found[0]["input"]
    shown = given if isinstance(given, str) and given else format_choice(given)  # the text as typed
    return f"{flag}: {found[0]['msg']}, got {shown}"


# click's UsageError, which typer vendors (typer._click) and exports only as BadParameter's base class.
_USAGE_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_USAGE_ERROR.show = _show_usage_error


@functools.cache
def _out() -> Console:
    """The rich console for results (stdout), made on first use so `--help` never imports rich."""
    from rich.console import Console

    width, height = _dumb_terminal_size()
    return Console(width=width, height=height)


@functools.cache
def _err() -> Console:
    """The rich console for progress, notes and errors (stderr)."""
    from rich.console import Console

    width, height = _dumb_terminal_size()
    return Console(stderr=True, width=width, height=height)


def _dumb_terminal_size() -> tuple[int | None, int | None]:
    """COLUMNS (and LINES) as the consoles' size on a dumb terminal (TERM=dumb: Emacs's shell, which sets
    COLUMNS to its window's width): rich takes one for 80 columns unless given both sizes, and printed
    every table 80 wide there, COLUMNS=160 or not. Nothing elsewhere: rich reads COLUMNS itself."""
    columns, lines = os.environ.get("COLUMNS", ""), os.environ.get("LINES", "")
    if (
        os.environ.get("TERM", "").lower() not in ("dumb", "unknown")
        or not columns.isdigit()
        or not int(columns)
    ):
        return None, None
    return int(columns), int(lines) if lines.isdigit() and int(lines) else 25


def _note(text: str) -> None:
    """`note: text` on stderr, one line however narrow the terminal (the terminal wraps it, rich does not
    break it): a note's command (`hpotool trials ... --state fail`) copies whole."""
    _err().print(f"[yellow]note:[/yellow] {escape(text)}", soft_wrap=True)


def _say(text: str) -> None:
    """`text` on stderr as one line (as `_note`, without its label): what a command did, e.g. the study
    `optimize` created and where (`new study 'NAME' in /abs/studies/NAME.db`)."""
    _err().print(escape(text), soft_wrap=True)


def _short_of_top(plan: Any, source: Any, top: int) -> str | None:
    """The note saying why --enqueue-from queued fewer than --top points, or None."""
    from optuna.trial import TrialState

    from hpotool.export import ranked_trials
    from hpotool.warm_start import short_of_top_note

    queued = len(plan.opt.enqueue) - (plan.config_enqueue or 0)
    complete = len(source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return short_of_top_note(source.study_name, top, queued, len(ranked_trials(source)), complete)


def escape(text: str) -> str:
    """Escape rich markup in `text` (rich.markup.escape, imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _table(title: str, **kwargs: Any) -> Table:
    """A left-titled rich table whose title, headers and cells are plain text: study, parameter and
    metric names come from users and plain Optuna studies, and "[x]" in them is not rich markup. A cell
    too wide for its column folds; none is cut short."""
    from rich.table import Table
    from rich.text import Text

    class PlainTable(Table):
        def add_column(self, header: Any = "", *args: Any, **kw: Any) -> None:
            # A word wider than its column (a path, a storage URL, a command) folds onto the next line
            # rather than ending in "…": at 80 columns export-best cut the best_run_<trial>.yaml it names.
            kw.setdefault("overflow", "fold")
            super().add_column(Text(header) if isinstance(header, str) else header, *args, **kw)

        def add_row(self, *cells: Any, **kw: Any) -> None:
            super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kw)

    return PlainTable(title=Text(title), title_justify="left", **kwargs)


@dataclass
class _State:
    debug: bool = False


state = _State()


def _warning_printer() -> Callable[..., None]:
    """A `warnings.showwarning` that prints a library's warning as one yellow line, without the file and
    line of the library that raised it, and each text once (a report computes importances twice)."""
    shown: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        text = str(message).strip()
        if text not in shown:
            shown.add(text)
            _err().print(f"[yellow]warning:[/yellow] {escape(text)}", soft_wrap=True)

    return show


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an `HpoError` into one red line on stderr and exit code 2 (a traceback with --debug); show
    warnings as one line each (Python's own format, with the site-packages path, with --debug)."""
    storage = sys.modules.get("hpotool.storage")
    if storage is not None:
        storage.forget_opened_servers()
    with warnings.catch_warnings():  # the command's own: put back when it ends
        if not state.debug:
            warnings.showwarning = _warning_printer()
        try:
            yield
        except typer.Exit:
            raise
        except Exception as exc:
            # A storage server that went away after the command opened it: one line, as optimize says it.
            storage = sys.modules.get("hpotool.storage")
            lost = storage.server_lost(exc) if storage is not None and not isinstance(exc, HpoError) else None
            if state.debug:
                unsuppress_context(exc)
                raise
            if not (isinstance(exc, HpoError) or lost is not None):
                raise
            for line in str(lost or exc).splitlines():
                _err().print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
            raise typer.Exit(code=_signal_code(exc) or 2) from None


def _signal_code(exc: BaseException) -> int | None:
    """The exit code of the signal (130, 143) that was being handled when `exc` was raised, None where
    none was: a SIGTERM whose trial's storage had stopped answering ended with that line and exit code 2,
    where a scheduler or script waits for 143."""
    from hpotool.interrupts import exit_code, signal_of

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return exit_code(signal_of(current))
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _version(value: bool) -> None:
    if value:
        _out().print(f"hpotool {__version__}")
        raise typer.Exit()


def _help(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        typer.echo(ctx.get_help(), color=ctx.color)
        raise typer.Exit()


# The group's own --help, defaulting to False: typer's built-in one has no default, and coercing its None
# builds a pydantic TypeAdapter on every `hpotool COMMAND --help` (pydantic's import, ~0.15-0.25 s).
@app.callback(add_help_option=False)
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    show_help: Annotated[
        bool, typer.Option("--help", callback=_help, is_eager=True, help="Show this message and exit.")
    ] = False,
) -> None:
    state.debug = debug
    _show_debug_log(debug)


class _DebugLog(logging.Handler):
    """hpotool's log records on the error console, above a live display, as `--debug` shows them: a failed
    trial's traceback among them."""

    def emit(self, record: logging.LogRecord) -> None:
        _err().print(self.format(record), markup=False, highlight=False, soft_wrap=True)


_DEBUG_LOG = _DebugLog()


def _show_debug_log(debug: bool) -> None:
    """With `--debug`, show hpotool's DEBUG records (a failed trial's traceback); without it, as before."""
    logger = logging.getLogger("hpotool")
    if debug and _DEBUG_LOG not in logger.handlers:
        logger.addHandler(_DEBUG_LOG)
        logger.setLevel(logging.DEBUG)
    elif not debug and _DEBUG_LOG in logger.handlers:  # a later command in the same process (tests)
        logger.removeHandler(_DEBUG_LOG)
        logger.setLevel(logging.NOTSET)


class _OptionError(typer.BadParameter):
    """An option value refused while the command line is read, with the whole line to print."""


def _out_path(example: str, option: str = "--out") -> Callable[[str], Path]:
    """The parser of an --out option (or another path option): the text as a Path, or a refusal of `--out ''`,
    which typer read as `.` (export-best wrote into the current folder) and report refused as "--out .: is
    a folder"; `-r ''` said ".: is a directory, expected a YAML file".

    Args:
        example: what to give instead, e.g. "a folder, e.g. --out runs/mine".
        option: the option's name, as the refusal names it.
    """

    def parse(text: str) -> Path:
        if not text:
            raise _OptionError(f"{option}: is empty; give {example}")
        return Path(text)

    return parse


_RUN_YAML = "a YAML file, e.g. --run-config run.yaml"
RunConfigOpt = Annotated[
    Path,
    typer.Option(
        "--run-config",
        "-r",
        parser=_out_path(_RUN_YAML, "--run-config"),
        metavar="<path>",
        help="RunConfig YAML: one training run.",
    ),
]
StudyNameOpt = Annotated[
    str | None,
    typer.Option("--study-name", help="Override study_name; without -r and -o: the stored study to join."),
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL (default: SQLite under studies/).")
]


def shown_url(url: str) -> str:
    """A storage URL as printed: its password as ***."""
    from hpotool.storage import shown_url as shown

    return shown(url)


def print_plan(plan: StudyPlan, as_json: bool, done: int | None = None, *, complete: bool = False) -> None:
    """What `optimize --dry-run` checked and would run (the storage is not written): `done`, the finished
    trials the study holds already (None: not read, a server's); `complete`, whether its grid or brute-force
    search has run every point (the run then runs nothing)."""
    run, opt = plan.run, plan.opt
    to_run = None if opt.n_trials is None or done is None else max(opt.n_trials - done, 0)
    if complete:
        to_run = 0
    if as_json:
        opt_dump = opt.model_dump(mode="json")
        if opt_dump.get("storage"):  # a password in it as ***, as everywhere hpotool prints the URL
            opt_dump["storage"] = shown_url(opt_dump["storage"])
        configs = {"run_config": run.model_dump(mode="json"), "optimize_config": opt_dump}
        counts = {"finished_trials": done, "trials_to_run": to_run}
        sys.stdout.write(
            json.dumps({"storage": shown_url(plan.storage_url), **counts, **configs}, indent=2) + "\n"
        )
        return
    from hpotool.audit import bounds_text
    from hpotool.device import device_name

    rows: list[tuple[str, str]] = []
    rows.append(("storage", shown_url(plan.storage_url)))
    timeout = f", timeout {opt.timeout:g}s" if opt.timeout else ""
    trials = f"{opt.n_trials} in all{timeout}" if opt.n_trials else f"until the timeout, {opt.timeout:g}s"
    if complete:
        from hpotool.exhaustion import EXHAUSTED

        trials += f"; {done} finished already, and {EXHAUSTED}: nothing to run"
    elif opt.n_trials is not None and done is not None and to_run == 0:
        from hpotool.study import nothing_to_run

        trials += f"; the study {nothing_to_run(done, opt.n_trials)}"
    elif done:
        trials += f"; {done} finished already" + (f", {to_run} to run" if to_run is not None else "")
    rows.append(("trials", escape(trials)))
    rows.append(
        (
            "objective",
            ", ".join(f"{d} {m}" for d, m in zip(opt.study_directions, opt.objectives, strict=True)),
        )
    )
    pruner = "nop" if opt.multi_objective else opt.pruner.name
    for label, name, kwargs in (
        ("sampler", opt.sampler.name, opt.sampler.kwargs),
        ("pruner", pruner, {} if opt.multi_objective else opt.pruner.kwargs),
    ):
        rows.append((label, f"{name} {json.dumps(kwargs)}" if kwargs else name))
    if opt.constraints:
        rows.append(("constraints", escape(", ".join(opt.constraints))))
    trainer = (
        f"trainer.function {run.trainer.function}" if run.trainer is not None else f"model {run.model.name}"
    )
    device = device_name(run.device)
    device = device if device == run.device else f"{run.device} ({device} here)"
    rows.append(("run", f"{trainer}, {run.epochs} epochs, batch {run.batch_size}, device {device}"))
    rows.append(("seed", "none (unseeded)" if opt.seed is None else str(opt.seed)))
    for path, param in opt.search_space.items():
        when = f" when {format_params(param.when)}" if param.when else ""
        rows.append((f"  {path}", f"{param.type} {bounds_text(param)}{when}"))
    if opt.enqueue:
        rows.append(("enqueued", f"{len(opt.enqueue)} parameter set(s) first"))
    # A storage URL too long for its cell (a log file's 80 columns) folded mid-path: under the table, whole
    _print_keyed(f"plan of study {opt.study_name} (dry run)", rows, "storage")
    checked = (
        "and that trainer.function imports and takes the arguments hpotool passes (the function itself runs "
        "only in the trials)"
        if run.trainer is not None
        else "the data and one training step of the base run"
    )
    _err().print(
        f"checked: both configs, {checked}; nothing written, no trial run (drop --dry-run to run the study)"
    )


def _print_keyed(title: str, rows: list[tuple[str, str]], whole: str, sep: str = ": ") -> None:
    """A table of `rows`, each a key and its value, with every key whole ("optimizer.weight_dec" over "ay" on
    a narrow terminal); where the value of the row keyed `whole` (a path, a URL) would fold, that row goes
    under the table as one line, `key: value` (`sep` between), whole to copy. Rich's own layout where
    neither fits."""

    def table_of(shown: list[tuple[str, str]], whole_keys: bool = True) -> Table:
        table = _table(title, show_header=False)
        table.add_column(style="bold", no_wrap=whole_keys)
        table.add_column()
        for key, value in shown:
            table.add_row(key, value)
        return table

    table, below = table_of(rows), None
    if not _fits(table):
        narrower = table_of([r for r in rows if r[0] != whole])
        if _fits(narrower):
            table, below = narrower, next(r for r in rows if r[0] == whole)
        else:
            table = table_of(rows, whole_keys=False)
    _out().print(table)
    if below is not None:
        _out().print(escape(f"{below[0]}{sep}{below[1]}"), soft_wrap=True)


def print_summary(summary: StudySummary, categorical: Collection[str] = ()) -> None:
    """The study's summary table; a parameter named in `categorical` is shown as the YAML spells its choice
    (null, 0.0, [128, 64]), as `hpotool trials` shows it."""

    def shown(name: str, value: Any) -> str:
        return format_param(value, name in categorical)

    rows: list[tuple[str, str]] = [("storage", shown_url(summary.storage))]
    rows.append(("metric", f"{summary.metric} ({summary.direction})"))
    finished = summary.counts.get("complete", 0) + summary.counts.get("pruned", 0)
    of = "" if summary.target is None else f"/{summary.target}"
    # 'run now': the trials this command ran to their end, failed ones too: their states when some failed
    # ('0/20 finished, 2 run now' read as two trials running, where both had failed)
    states = summary.extra.get("ran_now_states")
    states = f" ({', '.join(f'{k} {v}' for k, v in states.items())})" if states else ""
    rows.append(("trials", f"{finished}{of} finished, {summary.ran_now} run now{states}"))
    rows.append(("states", ", ".join(f"{k} {v}" for k, v in summary.counts.items()) or "none"))
    rows.append(("wall time", f"{summary.wall_time:.1f}s"))
    if summary.best:
        b = summary.best
        rows.append(("best trial", f"#{b['number']}"))
        rows.append((f"best {summary.metric}", format_value(b["value"])))
        for k, v in b["params"].items():
            rows.append((f"  {k}", shown(k, v)))
        for k, v in b["metrics"].items():
            if k != summary.metric:
                rows.append((f"  ({k})", format_value(v)))
    elif summary.extra.get("pareto"):
        metrics = summary.metric.split(", ")
        rows.append(("Pareto front", f"{len(summary.extra['pareto'])} trial(s)"))
        for t in summary.extra["pareto"]:
            values = ", ".join(f"{m}={format_value(v)}" for m, v in zip(metrics, t["values"], strict=False))
            rows.append(
                (
                    f"  #{t['number']}",
                    f"{values}; {', '.join(f'{k}={shown(k, v)}' for k, v in t['params'].items())}",
                )
            )
    elif summary.counts.get("complete"):
        rows.append(("best", "no complete trial meets the constraints"))
    else:
        rows.append(("best", "no complete trial yet"))

    # A storage URL wider than its cell (a log file's 80 columns, a narrow terminal) folded mid-URL, and
    # pasted as two: it goes on one line under the table instead, as `hpotool studies` puts it.
    _print_keyed(f"study {summary.study_name}", rows, "storage")
    for note in (summary.extra.get("note"), summary.extra.get("independent_sampling", {}).get("note")):
        if note:
            _note(str(note))
    if summary.extra.get("workers_note"):
        _note(str(summary.extra["workers_note"]))
    for ended in summary.extra.get("workers_ended", []):
        _note(f"worker {ended}")
    if summary.stopped:
        _note(summary.stopped)
    if summary.first_error:
        _err().print(f"[red]first error:[/red] {escape(summary.first_error)}", soft_wrap=True)
    elif summary.extra.get("failures") and summary.interrupted is None:  # an interrupt says so itself
        _note(summary.extra["failures"])


@app.command(short_help="Run a study, or resume it.")
def optimize(
    run_config: Annotated[
        Path | None,
        typer.Option(
            "--run-config",
            "-r",
            parser=_out_path(_RUN_YAML, "--run-config"),
            metavar="<path>",
            help="RunConfig YAML: one training run (left out with -o: the study's stored one).",
        ),
    ] = None,
    optimize_config: Annotated[
        Path | None,
        typer.Option(
            "--optimize-config",
            "-o",
            parser=_out_path("a YAML file, e.g. --optimize-config optimize.yaml", "--optimize-config"),
            metavar="<path>",
            help="OptimizeConfig YAML: the study (left out with -r: the study's stored one).",
        ),
    ] = None,
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
        int,
        typer.Option(
            "--max-failures",
            min=0,
            help="Stop after this many failed trials in a row (0: never); with --workers, in a row in the run, whichever workers ran them.",
        ),
    ] = 5,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress: only the final summary (and notes, and where a new study is)."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary to stdout.")
    ] = False,
    report: Annotated[
        bool, typer.Option("--report", help="Write studies/<name>/report.html at the end.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes on this machine sharing the study.")
    ] = 1,
    enqueue_from: Annotated[
        str | None,
        typer.Option("--enqueue-from", help="Warm start: run the best trials of this study first."),
    ] = None,
    enqueue_from_storage: Annotated[
        str | None,
        typer.Option("--enqueue-from-storage", help="Its storage (default: sqlite:///studies/<name>.db)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many of its best trials --enqueue-from takes.")
    ] = 5,
    allow_changed_config: Annotated[
        bool,
        typer.Option(
            "--allow-changed-config",
            help="Resume a study whose base config, search space, sampler, pruner or constraints changed "
            "(recorded); its metric and direction cannot change.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the configs, the data and one training step, print the plan and exit: nothing "
            "written (a SQLite or journal file, or a study joined by name, is read for its finished trials), "
            "no trial run (--json: the validated configs and trial counts).",
        ),
    ] = False,
) -> None:
    """Run a study, or resume it: runs only the trials still missing from n_trials.

    Without --run-config and --optimize-config, --study-name (and --storage) joins a study with the configs
    stored on it, as another machine does. Ctrl-C or SIGTERM ends the running trial as FAIL, prints the
    summary and exits 130 or 143.
    """
    from hpotool.interrupts import exit_code

    # Ctrl-C and SIGTERM raise from the first line on, not only while trials run: a SIGTERM while torch and
    # optuna were imported or the study was created killed the process (-15), with nothing said.
    outcome = _Outcome()

    def run() -> None:
        with _reading_only(dry_run):
            _optimize(
                outcome,
                run_config,
                optimize_config,
                study_name,
                storage,
                n_trials,
                timeout,
                device,
                seed,
                max_failures,
                quiet,
                as_json,
                report,
                workers,
                enqueue_from,
                enqueue_from_storage,
                top,
                allow_changed_config,
                dry_run,
            )

    _interruptible(run, lambda: _say_interrupted(outcome))
    summary = outcome.summary
    if summary is None:  # --dry-run
        return
    if summary.interrupted is not None:
        raise typer.Exit(code=exit_code(summary.interrupted))
    if summary.failed:  # the trials failed, not the command: 1, as a test runner with failing tests
        raise typer.Exit(code=1)


def _interruptible(run: Callable[[], None], say: Callable[[], None]) -> None:
    """`run()` with Ctrl-C and SIGTERM raising KeyboardInterrupt from its first line on; on one, `say` what it
    left (one line, however many signals follow) and exit 130 or 143."""
    from hpotool.interrupts import exit_code, signal_of, signals_ignored, signals_interrupt

    try:
        with signals_interrupt():
            run()
    except KeyboardInterrupt as exc:
        with signals_ignored():
            say()
        raise typer.Exit(code=exit_code(signal_of(exc))) from None


@contextmanager
def _reading_only(dry_run: bool) -> Iterator[None]:
    """A dry run reads storages (a study joined by name, its finished trials) and writes none of them: not a
    byte, nor a file beside them (`storage.reading_only`)."""
    if not dry_run:
        yield
        return
    from hpotool.storage import reading_only

    with reading_only():
        yield


@dataclass
class _Outcome:
    """How far `optimize` got: its summary once the trials have ended, and whether it writes the report."""

    summary: StudySummary | None = None
    writing_report: bool = False
    # The storage it is opening (it may have written its file and folder, or created the study), once the
    # configs are checked; until then nothing was written.
    opening: str | None = None
    opened: bool = False  # the study exists, and no trial has ended yet


def _say_interrupted(outcome: _Outcome) -> None:
    """What a signal outside the trials stopped (the trials' own interrupt is in the summary)."""
    from shlex import quote

    summary = outcome.summary
    if summary is None and outcome.opened:
        _err().print("interrupted: no trial was running; run the same command to resume", soft_wrap=True)
    elif summary is None and outcome.opening is not None:
        _err().print(
            f"interrupted while opening the study in {outcome.opening}, before any trial ran; run the same "
            f"command to go on",
            soft_wrap=True,
        )
    elif summary is None:  # importing torch, reading the configs, checking them
        _err().print("interrupted before the study started; nothing was written", soft_wrap=True)
    elif outcome.writing_report:
        _err().print(
            f"interrupted: the report was not written; hpotool report --study-name {quote(summary.study_name)} "
            f"--storage {quote(shown_url(summary.storage))} writes it",
            soft_wrap=True,
        )


def _optimize(
    outcome: _Outcome,
    run_config: Path | None,
    optimize_config: Path | None,
    study_name: str | None,
    storage: str | None,
    n_trials: int | None,
    timeout: float | None,
    device: str | None,
    seed: int | None,
    max_failures: int,
    quiet: bool,
    as_json: bool,
    report: bool,
    workers: int,
    enqueue_from: str | None,
    enqueue_from_storage: str | None,
    top: int,
    allow_changed_config: bool,
    dry_run: bool,
) -> None:
    """The body of `optimize`; puts its summary on `outcome` (none for --dry-run)."""
    with user_errors():
        _check_config_options(run_config, optimize_config, study_name)
        if workers > 1 and not dry_run:
            from hpotool.forkserver import start_worker_server

            start_worker_server()  # imports torch there while this process checks the configs
        from hpotool.plan import Overrides, prepare_study
        from hpotool.study_run import run_study

        overrides = Overrides(study_name, storage, n_trials, timeout, device, seed, allow_changed_config)
        if run_config is None or optimize_config is None:
            from hpotool.plan import prepare_stored_study

            assert study_name is not None  # _check_config_options
            plan = prepare_stored_study(study_name, storage, overrides, on_wait=_note)
        else:
            plan = prepare_study(run_config, optimize_config, overrides)
        redraws: str | None = None  # --enqueue-from a study this one would sample as
        if enqueue_from is not None:
            from hpotool.browse import find_study
            from hpotool.plan import with_warm_start

            try:
                source = find_study(
                    enqueue_from,
                    enqueue_from_storage,
                    storage_option="--enqueue-from-storage",
                    name_option="--enqueue-from",
                )
            except HpoError as exc:
                if str(exc).startswith(("--enqueue-from-storage: ", "--enqueue-from: ")):  # that option named
                    raise
                raise HpoError(f"--enqueue-from: {exc}") from None
            plan = with_warm_start(plan, source, top)
            short = _short_of_top(plan, source, top)
            if short:
                plan = replace(plan, notes=(*plan.notes, short))
            from hpotool.fingerprint import stored_config
            from hpotool.warm_start import same_draws_note

            redraws = same_draws_note(
                plan.opt.model_dump(mode="json"),
                source.study_name,
                stored_config(source.user_attrs, "optimize_config"),
            )
        from hpotool.storage import check_storage, storage_origin

        # A storage the run refuses (a folder, no URL, a file of another kind) is the one line printed: the
        # notes came first, then the error. Checked without connecting to a server or writing anything.
        with storage_origin(plan.storage_url, plan.storage_origin):
            check_storage(plan.storage_url)
        if dry_run:
            for note in plan.notes:
                _note(note)
            from hpotool.study import finished_so_far

            # Joining by name, the storage was read already; a config's server is not asked.
            done, complete = finished_so_far(plan, ask_server=run_config is None)
            print_plan(plan, as_json, done, complete=complete)
            return

        def opened(new_study: str | None) -> None:
            outcome.opened = True
            # Once the study is open: a study that will not open (a server that refuses, another direction)
            # is the one line printed, not read after notes about a run that will not happen.
            for note in plan.notes:  # on stderr before the progress, so it stays in view
                _note(note)
            if new_study is not None:
                _say(new_study)
                if redraws is not None:  # a resumed study's seed mixes in its trials: it draws new values
                    _note(redraws)

        if workers > 1:
            from hpotool.workers import run_workers

            def run(observer: Any = None) -> StudySummary:
                return run_workers(plan, workers, observer, max_failures=max_failures, on_open=opened)
        else:

            def run(observer: Any = None) -> StudySummary:
                return run_study(plan, observer, max_failures=max_failures, on_open=opened)

        from hpotool.lock_watch import saying_lock_waits

        outcome.opening = shown_url(plan.storage_url)
        with saying_lock_waits(plan.storage_url, _note):  # not a silent minute behind another's lock
            if quiet or as_json:
                summary = run()
            else:
                from hpotool.progress import RichObserver

                with RichObserver(_err(), plan.opt.objectives[0]) as observer:
                    summary = run(observer)
        outcome.summary = summary
        from hpotool.interrupts import deferred

        with deferred():  # a second Ctrl-C waits for the summary it would cut short (or leave unprinted)
            from hpotool.pipes import stderr_closed

            if summary.interrupted is not None and summary.stopped and stderr_closed():
                from hpotool.stop_note import keep  # `|& head`: the note below goes to /dev/null

                keep(summary.study_name, summary.storage, summary.stopped)
            if as_json:
                from hpotool.export import json_safe

                shown = {**summary.as_dict(), "storage": shown_url(summary.storage)}
                # strict JSON, as every JSON hpotool writes: a NaN metric is "NaN", not a bare NaN
                sys.stdout.write(json.dumps(json_safe(shown), indent=2, allow_nan=False, default=str) + "\n")
            else:
                from hpotool.search_space import CategoricalParam

                space = plan.opt.search_space
                print_summary(summary, {k for k, p in space.items() if isinstance(p, CategoricalParam)})
        if report:
            outcome.writing_report = True
            _write_report(summary.study_name, summary.storage, None, "html")


def _check_config_options(
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


def _write_report(study_name: str, storage: str | None, out: Path | None, fmt: str | None) -> None:
    from shlex import quote

    from hpotool.browse import find_study
    from hpotool.importance import import_without_sklearn
    from hpotool.report import default_report_path, render_report, report_format, write_report
    from hpotool.storage import default_storage_url

    fmt = report_format(out, fmt)
    if out is not None and os.path.isdir(out):  # found before the figures are drawn, not when writing them
        raise HpoError(
            f"--out {out}: is a folder; give a file in it, e.g. --out {quote(str(out / f'report.{fmt}'))}"
        )
    if not _is_stdout(out):
        _check_folder_of_report(study_name, out, fmt)
    import_without_sklearn()
    url = storage or default_storage_url(study_name)
    if _is_stdout(out):  # `--out -`: the report on stdout, as `-` means for most tools (curl -o -, tar -f -)
        sys.stdout.write(render_report(find_study(study_name, storage), url, fmt))
        sys.stdout.flush()
        return
    path = write_report(
        find_study(study_name, storage), url, out or default_report_path(study_name, fmt), fmt
    )
    _err().print(f"report written to {escape(str(path))}", soft_wrap=True)


def _check_folder_of_report(study_name: str, out: Path | None, fmt: str) -> None:
    """Refuse a report path under something that is no folder (a file named studies/<name>, /dev/null),
    naming --out: the line said "choose another path", not which flag gives one."""
    from shlex import quote

    from hpotool.atomic import kind_of, not_a_folder
    from hpotool.report import default_report_path

    path = out if out is not None else default_report_path(study_name, fmt)
    _refuse_a_long_name(path, out)
    _refuse_out_of_studies(
        study_name,
        out,
        "report writes studies/<name>/report.html",
        "give a file with --out, e.g. --out report.html",
    )
    blocker = not_a_folder(path.parent)
    if blocker is None:
        _check_writable(path, out, path.parent, "report writes the report", "a file")
        return
    other = f"--out {quote(f'{study_name}-report.{fmt}')}"
    if out is None:
        raise HpoError(
            f"{blocker}: is {kind_of(blocker)}, not a folder, and report writes {path} by default; give another "
            f"file with --out PATH, e.g. {other}, or move that file away"
        )
    raise HpoError(f"--out {out}: {_is_no_folder(blocker, out)}; give a file, e.g. {other}")


def _refuse_a_long_name(path: Path, out: Path | None) -> None:
    """Refuse a path to write that holds a name too long for a file (a study name of 300 characters, a
    mistyped --out): it ended in a traceback, `OSError: [Errno 36] File name too long`."""
    from hpotool.atomic import abbreviated, long_name

    too_long = long_name(path)
    if too_long is not None:
        given = (
            f"--out {abbreviated(str(out), 40)}"
            if out is not None
            else f"{abbreviated(str(path), 40)} (the default)"
        )
        raise HpoError(
            f"{given}: {too_long}; give a shorter {'--out' if out is not None else 'one with --out'}"
        )


def _refuse_out_of_studies(study_name: str, out: Path | None, writes: str, fix: str) -> None:
    """Refuse the default folder of a study whose name leads out of studies/ (a study Optuna code named
    '..' or '/data/x'): export-best and report wrote into the current folder or that absolute one."""
    from hpotool.export import out_of_studies

    folder = out_of_studies(study_name) if out is None else None
    if folder is not None:
        where = "the current folder" if folder == "." else folder
        raise HpoError(f"study {study_name!r}: {writes} by default, and its name makes that {where}; {fix}")


def _check_export_folder(study_name: str, out: Path | None, command: str) -> None:
    """Refuse an export folder that is no folder, or under one that is not (a file named studies/<name>,
    /dev/null), naming the flag that gives another: the line said "choose another path"."""
    from shlex import quote

    from hpotool.atomic import kind_of, not_a_folder
    from hpotool.export import default_export_dir

    folder = out if out is not None else default_export_dir(study_name)
    _refuse_a_long_name(folder, None if command == "train-from-best" else out)
    if command == "export-best":  # train-from-best's study has a stored config, and so a name hpotool checked
        _refuse_out_of_studies(
            study_name,
            out,
            "export-best writes into studies/<name>/",
            "give a folder with --out, e.g. --out exports/best",
        )
    blocker = not_a_folder(folder)
    if blocker is None:
        _check_export_names(folder, out, command)
        if command == "train-from-best":  # its export always goes to studies/<name>/
            _check_writable(
                folder,
                None,
                folder,
                "train-from-best exports the best trial",
                "",
            )
        else:
            _check_writable(folder, out, folder, "export-best writes the export", "a folder")
        return
    what = f"{blocker}: is {kind_of(blocker)}, not a folder"
    if command == "train-from-best":  # its export always goes to studies/<name>/
        raise HpoError(
            f"{what}, and train-from-best exports the best trial into {folder}/ (no flag changes that folder); "
            f"move or rename that file"
        )
    other = f"--out {quote(str(Path('exports') / study_name))}"
    if out is None:
        raise HpoError(
            f"{what}, and export-best writes into {folder}/ by default; give a folder with --out PATH, e.g. "
            f"{other}, or move that file away"
        )
    raise HpoError(
        f"--out {out}: {_is_no_folder(blocker, out)}; export-best writes several files into a folder: give one, "
        f"e.g. {other}"
    )


def _check_writable(path: Path, out: Path | None, folder: Path, what: str, give: str) -> None:
    """Refuse `path` (a file or folder a command writes, into `folder`) where this process cannot write the
    folder, or the one above it that would be made: before the study is read and the work is done, with
    the flag that gives another place (`out`: the user's --out; None: the default path). A device or pipe
    (`--out /dev/null`) is written into, not replaced: nothing is made beside it.

    Args:
        what: what the command does there, e.g. "report writes the report".
        give: what --out takes, e.g. "a file"; empty where no flag changes the path.
    """
    from hpotool.atomic import shown, unwritable

    if os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path):
        return
    blocked = unwritable(folder)
    if blocked is None:
        return
    cannot = f"this process cannot write to {'it' if blocked == path else shown(blocked)}"
    if not give:
        raise HpoError(
            f"{path}: {what} there (no flag changes that folder), and {cannot}; make it writable, or run from "
            f"another folder"
        )
    if out is None:
        raise HpoError(f"{path}: {what} there by default, and {cannot}; give --out {give} you can write")
    raise HpoError(f"{path}: {cannot}; choose another --out, one you can write")


def _check_export_names(folder: Path, out: Path | None, command: str) -> None:
    """Refuse a folder in the export folder named as a file the export writes (trials.json/): the export
    failed only once its files were written, with "cannot write: Is a directory"."""
    from shlex import quote

    from hpotool.export import EXPORT_FILES

    taken = next((folder / name for name in EXPORT_FILES if os.path.isdir(folder / name)), None)
    if taken is None:
        return
    what = f"{taken}: is a folder, not the file {command} writes there"
    if command == "train-from-best":
        raise HpoError(f"{what} when it exports the best trial (no flag changes that folder); move it away")
    if out is None:
        other = f"--out {quote(str(Path('exports') / folder.name))}"
        raise HpoError(f"{what}; move it away, or give a folder with --out PATH, e.g. {other}")
    raise HpoError(f"{what}; move it away, or choose another --out")


def _is_no_folder(blocker: Path, out: Path) -> str:
    """`is a device, not a folder` for --out itself, `/dev/null is a device, not a folder` for one above it."""
    from hpotool.atomic import kind_of

    return f"{'' if blocker == out else f'{blocker} '}is {kind_of(blocker)}, not a folder"


def _out_option(example: str, metavar: str, help_text: str) -> Any:
    """A command's --out option, read by `_out_path(example)`."""
    return typer.Option("--out", parser=_out_path(example), metavar=metavar, help=help_text)


def _is_stdout(out: Path | None) -> bool:
    return out is not None and str(out) == "-"


def _refuse_stdout(out: Path | None, writes: str, example: str) -> None:
    """`--out -` (stdout, for most tools) where a command writes files: refused, not a folder named '-'.

    Raises:
        HpoError: when `out` is `-`, saying what the command writes and giving `example` instead.
    """
    if _is_stdout(out):
        raise HpoError(f"--out -: this command writes {writes}, not to stdout; give {example}")


@app.command(short_help="Write a study's report (offline HTML, or JSON).")
def report(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    out: Annotated[
        Path | None,
        _out_option(
            "a file, e.g. --out report.html",
            "<path>",
            "Output file (default: studies/<name>/report.<format>), or - for stdout; "
            "a .json or .html suffix sets the format.",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html (offline, self-contained) or json (default: from the --out suffix, else html).",
        ),
    ] = None,
) -> None:
    """Write a self-contained report of a study: header, figures, pruning table (HTML or JSON)."""
    with user_errors():
        _write_report(study_name, storage, out, fmt)


# ---------------------------------------------------------------- results: export, train, browse

StudyNameReq = Annotated[str, typer.Option("--study-name", help="The study's name.")]
ReadStorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL (default: sqlite:///studies/<study-name>.db)."),
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", min=1, help="Override the epochs.")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="Override the device: auto, cpu, cuda, cuda:N, mps.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]


def _print_json(data: Any) -> None:
    from hpotool.export import dump_json

    sys.stdout.write(dump_json(data))


def _print_run(run: Any) -> None:
    # The folder whole, on its line above the table: as the table's title it folded mid-name at the table's
    # width (its cells', 67 columns) however wide the terminal, and pasted as two.
    _out().print(escape(f"run {run.folder}"), soft_wrap=True)
    table = _table("", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in run.metrics.items():
        table.add_row(k, format_value(v))
    table.add_row("epochs", str(run.epochs_run))
    table.add_row("seed", str(run.config.seed))
    table.add_row("device", run.device)
    table.add_row("wall time", f"{run.seconds:.1f}s")
    table.add_row("saved", ", ".join(run.files))
    _out().print(table)


@app.command("export-best", short_help="Write the best run config and every trial (CSV, JSON).")
def export_best(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    out: Annotated[
        Path | None,
        _out_option(
            f"a folder, e.g. --out {Path('exports') / 'best'}",
            "<dir>",
            "Folder (default: studies/<study-name>/).",
        ),
    ] = None,
) -> None:
    """Write the best trial (best_params.json, best_run.yaml) and every trial (trials.csv, trials.json)."""
    with user_errors():
        from shlex import quote

        from hpotool.browse import find_study
        from hpotool.export import export_best as write_export
        from hpotool.storage import default_storage_url, study_options

        _refuse_stdout(
            out,
            "several files into a folder",
            f"a folder, e.g. --out {quote(str(Path('exports') / study_name))}",
        )
        study = find_study(study_name, storage)
        _check_export_folder(study_name, out, "export-best")
        result = write_export(study, storage or default_storage_url(study_name), out)
        from optuna.distributions import CategoricalDistribution

        rows: list[tuple[str, str]] = []
        if len(result.metrics) > 1:  # why several trials, and which file trains one
            rows.append(
                (
                    "Pareto front",
                    escape(
                        f"{len(result.best)} trial{'s' * (len(result.best) != 1)} that no other trial beats on every objective: "
                        f"train the one you pick with hpotool train-from-best {study_options(study)} --trial <trial> "
                        f"(under the study's final: rules), or hpotool train --run-config "
                        f"{result.folder}/best_run_<trial>.yaml"
                    ),
                )
            )
        for trial in result.best:
            values = ", ".join(
                f"{m}={format_value(v)}" for m, v in zip(result.metrics, trial.values or [], strict=False)
            )
            rows.append((f"trial {trial.number}", values))
            categorical = {
                k for k, d in trial.distributions.items() if isinstance(d, CategoricalDistribution)
            }
            for (
                k,
                v,
            ) in trial.params.items():  # a choice as the YAML spells it (null, 0.0), as trials shows it
                rows.append((f"  {k}", format_param(v, k in categorical)))
        rows.append(("wrote", f"{result.folder}/: " + ", ".join(f.name for f in result.files)))
        # The folder whole, under the table where its cell would fold it mid-path (80 columns, a log file)
        _print_keyed(f"study {study_name}", rows, "wrote", sep=" ")
        for note in result.notes:
            _note(note)
        if result.problems:
            raise HpoError("\n".join(result.problems))


@app.command(short_help="Train one run config and save the model.")
def train(
    run_config: RunConfigOpt,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the seed.")] = None,
    out: Annotated[
        Path | None,
        _out_option(
            "a folder, e.g. --out runs/mine", "<dir>", "Run folder (default: runs/<project>/<timestamp>/)."
        ),
    ] = None,
) -> None:
    """Train one run config outside any study; save model.pt, metrics.json, history.csv and config.yaml.

    Ctrl-C or SIGTERM stops training, says whether the run was saved and exits 130 or 143.
    """
    made: list[Path] = []  # the run folder, once known
    _interruptible(
        lambda: _train(run_config, epochs, device, seed, out, made), lambda: _say_run_interrupted(made, out)
    )


def _say_run_interrupted(made: list[Path], out: Path | None) -> None:
    """Whether an interrupted train saved its run."""
    if made and (made[0] / "config.yaml").exists():  # written last (saving defers a signal)
        said = f"the run was saved in {made[0]}"
    else:
        where = f" ({out} was not written)" if out is not None else ""
        said = f"training stopped before its end; nothing was saved{where}"
    _err().print(f"interrupted: {escape(said)}", soft_wrap=True)


def _train(
    run_config: Path,
    epochs: int | None,
    device: str | None,
    seed: int | None,
    out: Path | None,
    made: list[Path],
) -> None:
    with user_errors():
        from hpotool.config import load_run_config
        from hpotool.formatting import format_params
        from hpotool.overrides import apply_overrides
        from hpotool.saved import check_run_dir, check_writable, default_runs_dir, new_run_dir, train_and_save

        _refuse_stdout(out, "a run folder (model.pt, metrics.json, ...)", "a folder, e.g. --out runs/mine")
        cfg = load_run_config(run_config)
        changes = {
            k: v for k, v in {"epochs": epochs, "device": device, "seed": seed}.items() if v is not None
        }
        for key, value in changes.items():  # one at a time, so a refusal names its flag
            try:
                cfg = apply_overrides(cfg, {key: value})
            except HpoError as exc:  # "with device=gpu: device: must be ...": the flag names both
                detail = (
                    str(exc).removeprefix(f"with {format_params({key: value})}: ").removeprefix(f"{key}: ")
                )
                raise HpoError(f"--{key}: {detail}") from None
        from hpotool.device import device_name
        from hpotool.runner import check_run

        if device is not None:  # the flag wins over the file's device: a refusal names the flag
            device_name(cfg.device, "--device")
        if out is None:
            try:
                runs_dir = default_runs_dir(cfg)
            except HpoError as exc:
                raise HpoError(f"{run_config}: {exc}") from None
        if unused := check_run(cfg, str(run_config)):  # labels 1..K: as optimize says before trial 0
            _note(unused)
        if cfg.trainer is not None:
            from hpotool.user_trainer import schedule_note

            if note := schedule_note(cfg):
                _note(note)
        if out is not None:
            check_run_dir(out)
            folder: Any = out
            made.append(out)
        else:
            check_writable(runs_dir, out_given=False)  # before training, not once it is over

            def make_folder() -> Path:  # once training succeeds; the save makes it, with the run's files
                made[:] = [new_run_dir(runs_dir)]  # the next name, where another run took this one
                return made[0]

            folder = make_folder
        from hpotool.progress import RunProgress

        with RunProgress(_err()) as progress:
            progress.run_started(f"{cfg.project} seed {cfg.seed}", cfg)
            run = train_and_save(cfg, folder, on_epoch_end=progress.epoch_ended, out_given=out is not None)
        _print_run(run)


@app.command("train-from-best", short_help="Export the best trial, then train and save it.")
def train_from_best(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Train for N epochs, overriding final.epochs (default: final.epochs, else the trial's epochs).",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option("--seeds", min=1, help="Train seeds seed, seed+1, ... (default: final.seeds or 1)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k", min=1, help="Retrain the K best trials and rank them by their mean (default 1)."
        ),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(
            "--trial",
            min=0,
            help="Train this complete trial instead of the best (a Pareto trial of a multi-objective study).",
        ),
    ] = None,
    device: DeviceOpt = None,
    out: Annotated[
        Path | None,
        _out_option(
            "a folder, e.g. --out runs/final", "<dir>", "Folder (default: runs/<project>/<timestamp>/)."
        ),
    ] = None,
) -> None:
    """export-best, then train the best trial (or the --top-k best, or the --trial given) under the study's
    final: rules.

    Ctrl-C or SIGTERM stops training, says which runs were saved and exits 130 or 143; the same command with
    the same --out trains only the runs not saved.
    """
    training: list[tuple[Any, Path]] = []  # the plan and its folder, once training starts
    _interruptible(
        lambda: _train_from_best(study_name, storage, epochs, seeds, top_k, trial, device, out, training),
        lambda: _say_final_interrupted(training, out),
    )


def _say_final_interrupted(training: list[tuple[Any, Path]], out: Path | None) -> None:
    """Which runs an interrupted train-from-best saved, and how to train the rest."""
    # Stopped before a run was saved, it said only that, not what to do (the advice came once one was saved).
    if not training:
        _err().print(
            "interrupted: no run was trained or saved; run the same command to train", soft_wrap=True
        )
        return
    said = _final_saved(training, out)
    if said is None:
        from hpotool.final import final_jobs

        count = len(final_jobs(*training[0]))
        said = f"no run was saved; the same command trains {'it' if count == 1 else f'all {count}'}"
    _err().print(escape(f"interrupted: {said}"), soft_wrap=True)


def _final_saved(training: list[tuple[Any, Path]], out: Path | None) -> str | None:
    """Which runs a stopped train-from-best saved, and how to train the rest; None when it saved none."""
    from shlex import quote

    from hpotool.final import final_jobs

    plan, folder = training[0]
    jobs = final_jobs(plan, folder)
    saved = sum((run_dir / "config.yaml").exists() for _, _, run_dir in jobs)  # written last
    if not saved:
        return None
    again = "the same command" if out is not None else f"the same command with --out {quote(str(folder))}"
    return f"{saved} of {len(jobs)} runs saved in {folder} (summary.json not written); {again} trains only the rest"


def _train_from_best(
    study_name: str,
    storage: str | None,
    epochs: int | None,
    seeds: int | None,
    top_k: int | None,
    trial: int | None,
    device: str | None,
    out: Path | None,
    training: list[tuple[Any, Path]],
) -> None:
    with user_errors():
        if top_k is not None and trial is not None:  # before the study is opened: the flags alone decide
            raise HpoError(
                f"--top-k {top_k} --trial {trial}: --trial trains the one trial it names, --top-k the K best: "
                f"give one of them"
            )
        from hpotool.browse import find_study
        from hpotool.export import export_best as write_export
        from hpotool.final import check_jobs, plan_final
        from hpotool.final import train_from_best as run_final
        from hpotool.saved import check_writable, default_runs_dir, new_run_dir
        from hpotool.storage import default_storage_url

        _refuse_stdout(out, "run folders and summary.json", "a folder, e.g. --out runs/final")
        study = find_study(study_name, storage)
        plan = plan_final(study, epochs=epochs, seeds=seeds, top_k=top_k or 1, device=device, trial=trial)
        if device is not None:  # the flag wins over the study's device: a refusal names the flag
            from hpotool.device import device_name

            device_name(device, "--device")
        # refused before anything is written, the export and the run folder included
        _check_export_folder(study_name, None, "train-from-best")
        saved = check_jobs(plan, out)
        if out is None:  # made by the first run's save: one this process cannot write fails before training
            check_writable(default_runs_dir(plan.candidates[0].config), out_given=False)
        exported = write_export(study, storage or default_storage_url(study_name))
        what = "the Pareto front" if len(exported.metrics) > 1 else "the best trial"
        _err().print(f"exported {what} to {escape(str(exported.folder))}", soft_wrap=True)  # the path whole
        for note in exported.notes:  # a study still running: the best so far
            _note(note)
        if len(plan.candidates) < (top_k or 1):
            from optuna.trial import TrialState

            complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            meet = "" if complete == len(plan.candidates) else f" that meet its constraints (of {complete})"
            _note(f"the study has only {len(plan.candidates)} complete trial(s){meet}; retraining those")
        from hpotool.user_trainer import schedule_note

        notes = [schedule_note(c.config) for c in plan.candidates if c.config.trainer is not None]
        for note in dict.fromkeys(
            n for n in [*plan.notes, *notes] if n
        ):  # once each, as optimize and train note it
            _note(note)
        if saved:
            names = ", ".join(p.name for p in saved)
            _note(f"already saved in {out}, not trained again: {names}")
        from hpotool.progress import RunProgress

        folder: Any = out
        if out is None:  # named and made by the first run's save (and runs/<project>), with that run in it
            runs_dir = default_runs_dir(plan.candidates[0].config)

            def name_folder() -> Path:  # the name free then: what a stopped command says it saved in
                training[:] = [(plan, new_run_dir(runs_dir))]
                return training[0][1]

            folder = name_folder
        try:
            training.append(
                (plan, out if out is not None else new_run_dir(runs_dir))
            )  # until a save names it
            with RunProgress(_err()) as progress:
                summary = run_final(plan, folder, progress, exported.folder, out_given=out is not None)
        except BaseException as exc:
            if isinstance(exc, HpoError) and (said := _final_saved(training, out)):
                raise HpoError(f"{exc}; {said}") from exc.__cause__  # the runs before it are kept
            raise
        metric = summary["metric"]
        trained = f" ({summary['epochs']} epochs)" if summary["epochs"] is not None else ""
        runs = _table(f"final runs{trained}")
        for col in ("trial", "seed", metric, "folder"):
            runs.add_column(col, overflow="fold")
        for c in summary["candidates"]:
            for r in c["runs"]:
                runs.add_row(
                    str(c["trial_number"]), str(r["seed"]), format_value(r["metrics"][metric]), r["folder"]
                )
        _out().print(runs)
        ranked = _table(f"ranked by mean {metric} ({summary['direction']})")
        for col in ("rank", "trial", "trial value", f"mean {metric}", "std", "seeds"):
            ranked.add_column(col)
        for c in summary["candidates"]:
            std = "-" if c["std"] is None else f"{c['std']:.2g}"
            ranked.add_row(
                str(c["rank"]),
                str(c["trial_number"]),
                format_value(c["trial_value"]),
                format_value(c["mean"]),
                std,
                str(len(c["runs"])),
            )
        _out().print(ranked)
        _out().print(f"summary: {escape(str(Path(summary['folder']) / 'summary.json'))}", soft_wrap=True)


def _objectives(row: dict[str, Any]) -> list[str]:
    """'maximize val_accuracy', one per objective; the directions alone when no metric is stored (a
    plain Optuna study)."""
    metrics = row["metric"].split(", ") if row["metric"] else []
    if len(metrics) != len(row["directions"]):
        return [", ".join(row["directions"]), *([row["metric"]] if row["metric"] else [])]
    return [f"{d} {m}" for d, m in zip(row["directions"], metrics, strict=True)]


# The fewest characters of a study name a line of the `studies` table shows before it folds.
_NAME_MIN = 10


def _studies_table(rows: list[dict[str, Any]], *, stacked: tuple[str, ...] = ()) -> Table:
    """The `studies` table. Cells of the `stacked` columns go on several lines: one trial state per line,
    one objective per line (a lone objective's direction above its metric), the date above the time
    (and "last" above "activity"). Only a name too long for the terminal folds: every other cell stays
    whole."""
    table = _table("studies")
    for col in ("name", "objective", "trials", "best", "last activity"):
        header = col.replace(" ", "\n") if col in stacked else col
        table.add_column(header, overflow="fold", no_wrap=col != "name")

    def join(col: str, parts: list[str]) -> str:
        return ("\n" if col in stacked else ", ").join(parts)

    for r in rows:
        objectives = _objectives(r)
        if "objective" in stacked and len(objectives) == 1:
            objectives = objectives[0].split(" ", 1)
        last = (r["last_activity"] or "-").replace("T", " ")[:16]
        table.add_row(
            r["name"],
            join("objective", objectives),
            join("trials", [f"{k} {v}" for k, v in r["trials"].items()] or ["none"]),
            _best_cell(r, stacked="best" in stacked),
            last.replace(" ", "\n") if "last activity" in stacked else last,
        )
    return table


def _studies_records(rows: list[dict[str, Any]]) -> Table:
    """The `studies` table for a terminal too narrow for a study a line (60 columns, 40): a section of
    lines per study, each value beside its key (`last activity  2026-12-06 09:02`), one trial state and
    one objective a line. The values wrap at their spaces; only a word wider than the values' column (a
    long study name) folds: in a table of a study a line, every cell wrapped at 60 columns, dates
    mid-number (`2026-12-0` over `6`)."""
    table = _table("studies", show_header=False)
    table.add_column(no_wrap=True)  # the keys, whole
    table.add_column()
    for r in rows:
        cells = {
            "name": r["name"],
            "objective": "\n".join(_objectives(r)),
            "trials": "\n".join(f"{k} {v}" for k, v in r["trials"].items()) or "none",
            "best": _best_cell(r, stacked=False),
            "last activity": (r["last_activity"] or "-").replace("T", " ")[:16],
        }
        for i, (key, value) in enumerate(cells.items()):
            table.add_row(key, value, end_section=i == len(cells) - 1)
    return table


def _best_cell(row: dict[str, Any], *, stacked: bool) -> str:
    """The `studies` table's best value; with several objectives, how many trials make the Pareto front
    (`stacked`: "Pareto" above the count, no wider than the column's "0.9805": at 80 columns a wider cell
    folded the names)."""
    if row["best_value"] is not None:
        return format_value(row["best_value"])
    if not row.get("pareto_trials"):
        return "-"
    return f"Pareto\n{row['pareto_trials']}" if stacked else f"Pareto: {row['pareto_trials']}"


def _storage_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Where the listed studies are stored, for the lines under the `studies` table: each storage URL
    once (a column repeated it on every row and folded it at 80 columns), and studies in their default
    file `sqlite:///studies/<name>.db` as one line."""
    from shlex import quote

    from hpotool.storage import default_storage_url

    # Quoted where a shell needs it (a path with a space, a Redis URL's &), so each pastes as --storage.
    if len({r["storage"] for r in rows}) == 1:
        return [f"storage: {quote(rows[0]['storage'])}"]
    in_default = [r["storage"] == default_storage_url(r["name"]) for r in rows]
    several_default = sum(in_default) >= 2
    elsewhere: dict[str, list[str]] = {}
    for r, default in zip(rows, in_default, strict=True):
        if not (default and several_default):
            elsewhere.setdefault(r["storage"], []).append(r["name"])
    lines = [f"storage: {quote(url)} for {', '.join(names)}" for url, names in elsewhere.items()]
    if several_default:
        others = "each" if not elsewhere else "the others"
        lines.append(f"storage: {default_storage_url('<name>')} for {others}")
    return lines


@app.command(short_help="List the studies in a storage.")
def studies(
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", help="Optuna storage URL (default: every studies/*.db and journal studies/*.log)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List studies: name, objective (direction and metric), trials by state, best value, last activity;
    under the table, where they are stored."""
    with user_errors():
        from hpotool.browse import study_rows
        from hpotool.storage import storage_origin

        with storage_origin(storage, "--storage"):
            rows, notes = study_rows(storage)
        for note in notes:
            _note(note)
        if as_json:
            _print_json(rows)
            return
        if not rows:
            where = shown_url(storage) if storage else "studies/*.db or studies/*.log"  # no password shown
            from hpotool.browse import studies_folder_above

            above = studies_folder_above() if storage is None else None
            hint = (
                f" of this folder; {above} holds some: run from {above.parent}" if above is not None else ""
            )
            _err().print(f"no studies in {escape(where)}{escape(hint)}", soft_wrap=True)
            return
        # The first layout that fits the terminal: on 80 columns a cell folded mid-word reads as noise
        # ("digits_" / "mlp", "comple" / "te 2, "), so cells go on several lines at their spaces instead.
        stackable = ("best", "trials", "objective", "last activity")  # best: "Pareto:" over its size
        layouts = [stackable[:n] for n in range(len(stackable) + 1)]
        unbounded = _out().options.update_width(1_000_000)  # measure() clamps to the terminal's width

        def fitting(names: list[dict[str, Any]]) -> tuple[str, ...] | None:
            widths = [_out().measure(_studies_table(names, stacked=s), options=unbounded) for s in layouts]
            return next((s for s, w in zip(layouts, widths, strict=True) if w.maximum <= _out().width), None)

        # Every cell whole where a layout allows it; else every cell but the names, which fold (rich narrows
        # the one column that may wrap): measured with the names whole only, a name longer than the
        # terminal allowed left every layout too wide, and every cell folded mid-word beside it. The names
        # fold in the layout that stacks every column, which leaves them the most room: the first layout
        # that fitted names cut short left them that short, 11 characters a line beside a whole "2026-12-06
        # 09:02" (a multi-objective study's two objectives took the width its name needed).
        stacked = fitting(rows)
        if stacked is None and fitting([{**r, "name": r["name"][:_NAME_MIN]} for r in rows]) is not None:
            stacked = stackable
        # Too narrow for a study a line, even stacked (60 columns): a section per study, keys beside values.
        _out().print(_studies_table(rows, stacked=stacked) if stacked is not None else _studies_records(rows))
        for line in _storage_lines(rows):
            _out().print(escape(line), soft_wrap=True)  # whole, to copy and paste
        for r in rows:
            if r["unseen_stop"]:  # `optimize ... |& head`: why its study stopped short, said nowhere else
                _note(f"study {r['name']}: {r['unseen_stop']}")


@app.command(short_help="List a study's trials, best first.")
def trials(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only the N best.")] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="Only trials in this state: complete, pruned, fail, running, waiting (queued)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a study's trials, best first (pruned trials show their last reported value)."""
    with user_errors():
        from hpotool.browse import find_study, trial_rows

        study = find_study(study_name, storage)
        rows = trial_rows(study, top, state)
        if as_json:
            _print_json(rows)
            return
        from hpotool.stop_note import kept

        # `optimize ... |& head`: why the study stopped short, said nowhere else; under the table
        unseen = kept(study.user_attrs)
        unseen_note = f"study {study_name}: {unseen}" if unseen is not None else None
        if not rows:  # an empty table says less than a line naming what the study has
            from hpotool.export import state_counts

            has = ", ".join(f"{k} {v}" for k, v in state_counts(study.get_trials(deepcopy=False)).items())
            which = f"{state.lower()} trial" if state else "trial"
            _out().print(f"study {escape(study_name)} has no {which}" + (f" ({has})" if has else ""))
            if unseen_note is not None:
                _note(unseen_note)
            return
        # In the order the search space writes them (the study's stored one), then any others as found.
        from hpotool.export import in_space_order
        from hpotool.fingerprint import stored_config

        space = stored_config(study.user_attrs, "optimize_config").get("search_space")
        found = dict.fromkeys(p for r in rows for p in r["params"])
        params = in_space_order(found, space if isinstance(space, dict) else {})
        # A note only where it says more than the state and epochs columns do: "Pareto front" where the
        # front leaves out some complete trial that meets the constraints.
        from optuna.trial import TrialState

        from hpotool.export import is_feasible

        feasible = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)
        ]
        dominated = len(study.directions) > 1 and len(study.best_trials) < len(feasible)
        from hpotool.stale import died_here

        # A RUNNING trial whose process of this machine is gone (kill -9, an OOM kill) runs no more.
        dead = {
            t.number: f"its process (pid {t.user_attrs['worker']['pid']}) is gone: the next optimize marks it "
            f"FAIL" + (" and runs its values again" if t.params or "fixed_params" in t.system_attrs else "")
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if died_here(t)
        }
        notes = [
            dead.get(r["number"])
            or _reason(r["fail_reason"])
            or ("" if r["feasible"] else "violates the constraints")
            or ("Pareto front" if dominated and r.get("pareto") else "")
            or (
                ""
                if _reason(r["prune_reason"]).startswith(("pruned after", "pruned at epoch"))
                else _reason(r["prune_reason"])
            )
            for r in rows
        ]
        from optuna.distributions import CategoricalDistribution

        # A choice as the YAML spells it (5.0, null); a sampled number as the other numbers are shown.
        choices = {
            name
            for t in study.get_trials(deepcopy=False)
            for name, d in t.distributions.items()
            if isinstance(d, CategoricalDistribution)
        }

        def cell(name: str, r: dict[str, Any]) -> str:
            if name not in r["params"]:
                return "-"
            return format_param(r["params"][name], name in choices)

        shown = [[cell(p, r) for p in params] for r in rows]
        # One column per parameter where they fit the terminal, else one wrapped "params" column.
        from hpotool.export import epochs_count, is_multi_objective, objective_names

        value_header = ", ".join(objective_names(study)) if is_multi_objective(study) else "value"
        # A parameter named like a column of the table (a searched epochs) is spelt as trials.csv spells it.
        own = {"#", "state", value_header, "params", "epochs", "seconds", "note"}
        headers = [f"params_{p}" if p in own else p for p in params]
        widest = [max([len(h), *(len(v[i]) for v in shown)]) + 3 for i, h in enumerate(headers)]
        split = sum(widest) + 60 <= _out().width

        def trials_table(with_notes: bool) -> Table:
            columns = ["#", "state", value_header, *(headers if split else ["params"]), "epochs", "seconds"]
            columns += ["note"] if with_notes else []
            table = _table(f"study {study_name}: {len(rows)} trial(s)")
            for col in columns:  # several objectives' names one under the other, as their values
                table.add_column(col.replace(", ", "\n") if col == value_header else col, overflow="fold")
            for r, values, note in zip(rows, shown, notes, strict=True):
                shown_values = r["values"] if r["values"] is not None else [r["value"]]
                # Several objectives one under the other: a narrow column leaves the params room to stay whole.
                value = "\n".join("-" if v is None else format_value(v) for v in shown_values)
                cells = [
                    str(r["number"]),
                    r["state"],
                    value,
                    *(
                        values
                        if split
                        else [  # what the trial ran: a parameter its conditions switched off is left out
                            " ".join(
                                f"{p}={v}" for p, v in zip(params, values, strict=True) if p in r["params"]
                            )
                        ]
                    ),
                    str(epochs_count(r["epochs_run"]) if epochs_count(r["epochs_run"]) is not None else "-"),
                    f"{r['duration_s']:.3g}" if r["duration_s"] is not None else "-",
                    *([note or ""] if with_notes else []),
                ]
                table.add_row(*cells)
            return table

        table = trials_table(any(notes))
        # A note column that leaves the others too narrow for their words folded a value mid-number
        # ("optimizer.lr=0.02" over "527" at 80 columns): the notes then go under the table, by trial number.
        below = False
        if not _fits(table) and any(notes):
            narrower = trials_table(False)
            if _fits(narrower):
                table, below = narrower, True
        _out().print(table)
        if below:
            from rich.text import Text

            for r, note in zip(rows, notes, strict=True):
                if note:
                    _out().print(Text(f"#{r['number']}: {note}"))
        # A plain Optuna script's own epochs_run attr ("10", "ten"): no count hpotool recorded.
        odd = [r for r in rows if r["epochs_run"] is not None and epochs_count(r["epochs_run"]) is None]
        if odd:
            numbers = ", ".join(str(r["number"]) for r in sorted(odd, key=lambda r: r["number"]))
            stored = ", ".join(repr(r["epochs_run"]) for r in sorted(odd, key=lambda r: r["number"]))
            _note(
                f"trial{'s' if len(odd) > 1 else ''} {numbers} store{'' if len(odd) > 1 else 's'} user attr "
                f"'epochs_run' as {stored}, not as the count of epochs hpotool records: shown as -; hpotool "
                f"trials --json lists each as stored"
            )
        if unseen_note is not None:
            _note(unseen_note)


def _reason(value: Any) -> str:
    """A trial's fail_reason or prune_reason attr as text: hpotool stores a string, but a plain Optuna study
    may keep anything under the name (a number, a list, a mapping: as the YAML spells it)."""
    if value is None or isinstance(value, str):
        return value or ""
    return format_choice(value)


@app.command("fail-stale", short_help="Mark the trials of dead workers failed.")
def fail_stale(
    study_name: Annotated[str, typer.Option("--study-name", help="The study to clean up.")],
    storage: ReadStorageOpt = None,
    all_running: Annotated[
        bool,
        typer.Option(
            "--all-running",
            help="Mark EVERY running trial failed (storages without heartbeat; only when no worker runs).",
        ),
    ] = False,
) -> None:
    """Mark trials of dead workers (RUNNING, heartbeat older than the grace period, or run by a process of
    this machine that is gone) FAIL and queue a retry."""
    with user_errors():
        from optuna.trial import TrialState

        from hpotool.browse import find_study
        from hpotool.stale import fail_dead_local_trials, fail_ownerless_trials, heartbeat_ages
        from hpotool.storage import (
            cannot_write,
            fail_stale_trials,
            has_heartbeat,
            heartbeat_settings,
            storage_url_of,
        )

        # A missing study is named with the studies that exist, as `trials` does.
        study = find_study(study_name, storage)
        heartbeat = has_heartbeat(study._storage)
        try:
            # A process of this machine that is gone is surely dead, heartbeat or not (`kill -9`, an OOM kill).
            failed = [] if all_running else fail_dead_local_trials(study)
            failed += [] if all_running else fail_ownerless_trials(study, heartbeat_settings()[1])
            if all_running or heartbeat:
                failed += fail_stale_trials(study, every_running=all_running)
        except Exception as exc:  # a read-only file or folder: it read the study, and cannot mark a trial
            url = storage_url_of(study)
            refused = cannot_write(url, exc) if url is not None and not isinstance(exc, HpoError) else None
            if refused is None:
                raise
            raise refused from None
        alive = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if not heartbeat and alive and not failed:
            raise HpoError(
                f"study {study_name!r}: its running trials ({_numbers(alive)}) belong to live processes or to "
                f"other machines, and this storage has no heartbeat to tell a dead worker from a live one; stop "
                f"every worker, then run again with --all-running"
            )
        if failed:
            _out().print(f"marked {len(failed)} stale trial(s) FAIL: {_numbers(sorted(failed))}")
        else:
            _out().print(f"no {'running' if all_running else 'stale'} trial: nothing marked FAIL")
        if alive and heartbeat:
            # A trial whose machine was killed seconds ago is left too: its heartbeat is not yet stale.
            grace = heartbeat_settings()[1]
            ages = heartbeat_ages(study)
            listed = ", ".join(
                f"#{n} (heartbeat {ages[n]:.0f} s old)" if n in ages else f"#{n} (no heartbeat yet)"
                for n in alive
            )
            _out().print(
                f"left {len(alive)} running trial(s) alone, their heartbeat younger than the {grace} s grace "
                f"period: {listed}; each is a live worker's, or one that died less than {grace} s ago (run "
                f"fail-stale again once its heartbeat is older)"
            )
        elif alive:
            _out().print(
                f"left {len(alive)} running trial(s) alone, of live processes or other machines (this storage has "
                f"no heartbeat to tell a dead worker from a live one; once every worker is stopped, run again "
                f"with --all-running): {_numbers(alive)}"
            )


def _numbers(trial_numbers: list[int]) -> str:
    return ", ".join(f"#{n}" for n in trial_numbers)


# ---------------------------------------------------------------- stages: audit and refine


def _audit_table(report: AuditReport, title: str, wrap: tuple[str, ...] = ()) -> Table:
    """The `audit` table: one row per parameter, most important first, its best value with the position
    of that value in the range. Its findings are sentences, printed under it: a column folded them into
    a word or two a line at 80 columns. A range may wrap at its spaces; so may the columns in `wrap`:
    "best" puts a best value above its position, "parameter" folds names (mid-word)."""
    table = _table(title)
    table.add_column("parameter", overflow="fold", no_wrap="parameter" not in wrap)
    table.add_column("importance", no_wrap=True)
    table.add_column("best (position)", overflow="fold", no_wrap="best" not in wrap)
    table.add_column("range", overflow="fold")
    for p in report.params:
        best = format_param(p.best, p.kind == "categorical") if p.set_in_best else "not set"
        table.add_row(
            p.name,
            "-" if p.importance is None else f"{p.importance:.2f}",
            best if p.position is None else f"{best} ({p.position:.0%})",
            p.bounds,
        )
    return table


def _fits(table: Table) -> bool:
    """Whether `table` prints within the terminal without folding a word or cutting a no_wrap cell, and if
    so, its columns' widths set to do so.

    Rich's own layout narrows the widest column first, below its longest word however much room the
    others leave ("optimizer.lr=0.0" over "0443" beside a whole "Pareto front" note): each column here
    gets its longest word (a no_wrap column, its longest cell), and the room left goes to the columns
    that need the least more to print on one line, so short cells stay whole and the widest wraps.
    """
    from rich.measure import Measurement

    unbounded = _out().options.update_width(1_000_000)  # Measurement.get clamps to the terminal's width
    least: list[int] = []
    most: list[int] = []
    for column in table.columns:
        cells = [Measurement.get(_out(), unbounded, cell) for cell in (column.header, *column.cells)]
        most.append(max(m.maximum for m in cells))
        least.append(most[-1] if column.no_wrap else max(m.minimum for m in cells))
    room = _out().width - (len(table.columns) + 1) - 2 * len(table.columns)  # borders, a space each side
    if sum(least) > room:
        return False
    if sum(most) > room:  # else rich prints every column at its widest
        widths = list(least)
        left = room - sum(least)
        for i in sorted(range(len(widths)), key=lambda i: most[i] - least[i]):
            widths[i] += min(most[i] - least[i], left)
            left -= widths[i] - least[i]
        for column, width in zip(table.columns, widths, strict=True):
            column.width = width
    return True


@app.command(short_help="Diagnose a study: importances, range edges, pruning.")
def audit(study_name: StudyNameReq, storage: ReadStorageOpt = None, as_json: JsonOpt = False) -> None:
    """Diagnose a finished study: importances, best values on range edges, pruning, whether it still improves."""
    with user_errors():
        from hpotool.audit import audit_study
        from hpotool.browse import find_study
        from hpotool.importance import import_without_sklearn

        import_without_sklearn()
        report = audit_study(find_study(study_name, storage))
        if as_json:
            _print_json(report.as_dict())
            return
        title = f"audit of study {study_name} ({report.metric}, {report.direction})"
        # The first layout that fits the terminal. Parameter names are each row's key: they fold
        # (mid-word) only when nothing else makes room.
        tables = [_audit_table(report, title, wrap) for wrap in ((), ("best",), ("best", "parameter"))]
        _out().print(next((t for t in tables if _fits(t)), tables[-1]))
        _out().print(f"importance: {escape(report.evaluator)}, over {escape(report.basis)}")
        for finding in report.findings:
            _print_bullet(finding)


def _print_bullet(text: str) -> None:
    """`- text`, wrapped at spaces with a hanging indent; a token ("[0.0001, 0.03, log]"'s parts) never
    folds."""
    import textwrap

    lines = textwrap.fill(
        text,
        width=_out().width,
        initial_indent="- ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    _out().print(escape(lines), soft_wrap=True)


@app.command(short_help="Write the next stage's configs from a study.")
def refine(
    study_name: StudyNameReq,
    out: Annotated[
        Path,
        _out_option(
            "a file, e.g. --out stage2.yaml",
            "<path>",
            "Where to write the next stage's OptimizeConfig YAML; its RunConfig goes beside it "
            "(<stem>.run.yaml; .run.yml for a .yml).",
        ),
    ],
    storage: ReadStorageOpt = None,
    keep_top: Annotated[
        float,
        typer.Option(
            "--keep-top",
            help="Share of the ranked trials (as the audit ranks them) the narrowed ranges cover.",
        ),
    ] = 0.25,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Overwrite --out and its .run.yaml when they exist (refused otherwise)."
        ),
    ] = False,
) -> None:
    """Write the next stage's configs: widen edge ranges, narrow the rest, fix what barely matters."""
    with user_errors():
        from shlex import quote

        from hpotool.browse import find_study
        from hpotool.importance import import_without_sklearn
        from hpotool.refine import check_stage_paths, refine_study, write_refinement

        _refuse_stdout(
            out, "two files (the stage's config and its .run.yaml)", "a file, e.g. --out stage2.yaml"
        )
        check_stage_paths(out, force)  # before the study is read: a hand-edited stage is never lost
        _check_writable(out, out, out.parent, "refine writes the stage's configs", "a file")
        import_without_sklearn()
        ref = refine_study(find_study(study_name, storage), keep_top, storage_url=storage)
        opt_path, run_path = write_refinement(ref, out, study_name)
        for change in ref.changes:
            _print_bullet(change)
        # The paths whole, as the command under them: at 80 columns (a log file, a narrow terminal) rich
        # broke a long one mid-name over two lines, and it pasted as two.
        _out().print(f"wrote {escape(str(opt_path))} and {escape(str(run_path))}; next:", soft_wrap=True)
        _out().print(
            f"  hpotool optimize --run-config {escape(quote(str(run_path)))} "
            f"--optimize-config {escape(quote(str(opt_path)))}",
            soft_wrap=True,
        )


PRUNE_AUDIT_ROWS = 12


def _evenly(items: list[Any], n: int) -> list[Any]:
    """At most `n` of `items`, evenly spaced, the first and the last included."""
    if len(items) <= n:
        return items
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


@app.command("prune-audit", short_help="Check the pruner's decisions on a study.")
def prune_audit(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    against: Annotated[
        str | None, typer.Option("--against", help="A study of the same space run without pruning.")
    ] = None,
    against_storage: Annotated[
        str | None,
        typer.Option("--against-storage", help="Its storage (default: sqlite:///studies/<name>.db)."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="The bar: the k-th best complete trial.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Check the pruner: PFL's prediction error by epoch, and pruned trials a no-pruning study says would have won."""
    with user_errors():
        from optuna.trial import TrialState

        from hpotool.browse import find_study
        from hpotool.prune_audit import audit_pruning

        study = find_study(study_name, storage)
        baseline = (
            find_study(against, against_storage, storage_option="--against-storage", name_option="--against")
            if against is not None  # --against "" is refused, not read as no --against
            else None
        )
        data = audit_pruning(study, baseline, top_k)
        if as_json:
            _print_json(data)
            return
        table = _table(f"PFL predictions on the complete trials of {study_name}")
        for column in ("predicted after epochs", "trials", "median |error|", "max |error|"):
            table.add_column(column, justify="right")
        errors = data["prediction_errors"]
        shown = _evenly(errors, PRUNE_AUDIT_ROWS)
        for e in shown:
            table.add_row(
                str(e["epoch"] + 1),
                str(e["trials"]),
                format_value(e["median_abs_error"]),
                format_value(e["max_abs_error"]),
            )
        if errors:
            _out().print(table)
        elif not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            # It read "no complete trial of s reported 4 or more epochs", as if some had reported fewer.
            _out().print(
                f"no PFL predictions to measure: {escape(study_name)} has no complete trial yet, and a prediction is "
                f"measured against the final value a complete trial reached (a pruned trial has none); run "
                f"hpotool optimize on it until some trials complete, then audit again"
            )
        else:  # an empty table said nothing of why
            _out().print(
                f"no PFL predictions to measure: no complete trial of {escape(study_name)} reported 4 or more "
                f"epochs (the fit needs 3 before the last)"
            )
        if len(shown) < len(errors):
            _out().print(f"({len(shown)} of {len(errors)} epochs shown, evenly spaced; --json has every one)")
        missed = data["missed_winners"]
        if missed is not None:
            rank = missed["bar_rank"]
            _out().print(
                f"{missed['would_have_made_top_k']} of {missed['pruned']} pruned trials would have beaten "
                f"{study_name}'s top-{rank} bar ({format_value(missed['bar'])}), going by what their twins "
                f"reached in {against} ({missed['matched_exactly']} matched by identical params, "
                f"{missed['matched_nearest']} by the nearest)"
            )
            if rank < missed["top_k"]:
                _out().print(
                    f"{study_name} has only {rank} complete trial{'s' * (rank != 1)} that meet its constraints, so its "
                    f"top-{missed['top_k']} has no bar (any finished trial would make it): the bar above is "
                    f"its top-{rank}'s, its worst complete trial"
                )


def main() -> None:
    """Entry point of the `hpotool` console script (and of `python -m hpotool`).

    Once the command has returned, the exit handlers run, the outputs are flushed and the process ends with
    the command's exit code, without the interpreter's teardown: after a command that imported torch it
    spent ~0.7 s freeing every torch module. Files are closed by then and nothing is lost. It also keeps the
    exit code ours: under `python -m`, CPython ends the process by SIGINT instead (returncode -2, whatever
    the code) once a Ctrl-C has interrupted any `exec()` of a string, such as a dataclass being created
    during an import, even though the command caught it and exits 130.

    Output into a closed pipe (`| head`) stops the command as SIGPIPE stops a Unix tool, quietly, and it
    exits 141 (128 + SIGPIPE), whatever it had done (`hpotool.pipes`).
    """
    from hpotool.pipes import guard_streams, pipe_closed

    guard_streams()
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # typer exits 130 for one while a command runs, not while it builds them
        code = 130
    else:
        code = 0
    if isinstance(code, str):  # sys.exit("message"): what the interpreter would print
        sys.stderr.write(code + "\n")
        code = 1
    import atexit
    import contextlib
    import signal

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A reader gone (`| head`): the guarded stream interrupts, as it would in the command; or a stream
        # closed: nothing to flush to.
        with contextlib.suppress(OSError, ValueError, KeyboardInterrupt):
            stream.flush()
    if pipe_closed():  # the command's output was cut short: the shell's code for SIGPIPE, as `head` leaves
        code = 128 + signal.SIGPIPE
    os._exit(code if isinstance(code, int) else 0)
