"""The root `hpotool` command: the typer app, its own options (--debug, --version, --help), mistakes on the
command line as one line, `user_errors` (an HpoError as one line and exit code 2) and `main`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from hpotool import __version__
from hpotool.cli.options import OptionError
from hpotool.cli.terminal import err_console, escape, out_console
from hpotool.errors import HpoError, unsuppress_context
from hpotool.formatting import format_choice, refused_value

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
    if isinstance(self, OptionError):  # its message is the whole line, as an HpoError's
        typer.echo(f"error: {self.message}", file=file, err=True)
        return
    bad_value = _bad_option_value(self)
    if bad_value is not None:  # as --n-trials 0 reads: "--n-trials: must be above 0, got 0"
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
    if type(self).__name__ == "NoSuchOption" and self.ctx is not None:
        # Worded here: click 8.3+ (which typer before 0.26 uses) says "No such option '--bogus'."
        message = f"No such option: {self.option_name}{_near_option(self.option_name, self.ctx)}"
    else:
        message = self.format_message().rstrip(".")
    typer.echo(f"error: {message} (see {command} --help)", file=file, err=True)


def _near_option(given: str, ctx: Any) -> str:
    """`. Did you mean --run-config?` for an unknown option, as click says it of an unknown command, naming
    the one option of the command that looks most like it; "" where none does. Compared without their
    dashes: click's own "(Possible options: --out)" for `--bogus` matched little more than the `--`."""
    from hpotool.near_names import closest

    names = {
        name.lstrip("-"): name
        for param in ctx.command.get_params(ctx)
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
        for name in (*param.opts, *param.secondary_opts)
    }
    near = closest(given.lstrip("-"), names, n=1)
    return f". Did you mean {names[near[0]]}?" if near else ""


def _bad_option_value(error: Any) -> str | None:
    """`--workers: must be 1 or more, got 0` for a value typer's type check
    refused (it raises from pydantic's ValidationError), or None for any other mistake on the command line.
    It read "Invalid value for '--workers': Input should be ..." without the value given."""
    cause, param = error.__cause__, getattr(error, "param", None)
    if param is None or not param.opts:
        return None
    if type(cause).__name__ != "ValidationError":
        return _out_of_click_range(error, param)
    found = cause.errors()
    if not found or "input" not in found[0]:
        return None
    flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
    given = found[0]["input"]
    shown = given if isinstance(given, str) and given else format_choice(given)  # the text as typed
    return f"{flag}: {refused_value(found[0])}, got {shown}"


def _out_of_click_range(error: Any, param: Any) -> str | None:
    """`--workers: must be 1 or more, got 0` for a value click's IntRange refused, as typer before 0.29 checks
    `min=`/`max=` ("Invalid value for '--workers': 0 is not in the range x>=1."); None for any other error."""
    given, found, _ = str(getattr(error, "message", "")).partition(" is not in the range")
    low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
    if not found or (low is None and high is None):
        return None
    try:
        value = float(given)
    except ValueError:
        return None
    below = low is not None and (value <= low if param.type.min_open else value < low)
    if below:
        bound = {
            "type": "greater_than" if param.type.min_open else "greater_than_equal",
            "ctx": {"gt": low, "ge": low},
        }
    else:
        bound = {
            "type": "less_than" if param.type.max_open else "less_than_equal",
            "ctx": {"lt": high, "le": high},
        }
    flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return f"{flag}: {refused_value(bound)}, got {given}"


# click's UsageError, which typer vendors (typer._click) and exports only as BadParameter's base class
# (tests/test_library_internals.py guards it, and atexit._run_exitfuncs in main).
_USAGE_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_USAGE_ERROR.show = _show_usage_error


def _with_its_context(parse_args: Any) -> Any:
    """A command's `parse_args` that gives a mistake it finds on the command line the command's context
    where click's parser left it none: `hpotool optimize --run-config` with nothing after it said "Option
    '--run-config' requires an argument (see hpotool --help)", the root's help, without the option."""

    def parse(self: Any, ctx: Any, args: list[str]) -> Any:
        try:
            return parse_args(self, ctx, args)
        except _USAGE_ERROR as error:
            if error.ctx is None:
                error.ctx = ctx
            raise

    return parse


for _command in (typer.core.TyperCommand, typer.core.TyperGroup):
    _command.parse_args = _with_its_context(_command.parse_args)  # type: ignore[method-assign]


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
            err_console().print(f"[yellow]warning:[/yellow] {escape(text)}", soft_wrap=True)

    return show


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an `HpoError` into one red line on stderr and exit code 2 (a traceback with --debug); show
    warnings as one line each (Python's own format, with the site-packages path, with --debug)."""
    faults = sys.modules.get("hpotool.storage_faults")
    if faults is not None:
        faults.forget_opened_servers()
    with warnings.catch_warnings():  # the command's own: put back when it ends
        if not state.debug:
            warnings.showwarning = _warning_printer()
        try:
            yield
        except typer.Exit:
            raise
        except Exception as exc:
            # A storage server that went away after the command opened it: one line, as optimize says it.
            faults = sys.modules.get("hpotool.storage_faults")
            lost = faults.server_lost(exc) if faults is not None and not isinstance(exc, HpoError) else None
            if state.debug:
                unsuppress_context(exc)
                raise
            if not (isinstance(exc, HpoError) or lost is not None):
                raise
            for line in str(lost or exc).splitlines():
                err_console().print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
            raise typer.Exit(code=_signal_code(exc) or 2) from None


def _signal_code(exc: BaseException) -> int | None:
    """The exit code of the signal (130, 143) that was being handled when `exc` was raised, None where
    none was: a SIGTERM whose trial's storage had stopped answering ended with that line and exit code 2,
    where a scheduler or script waits for 143."""
    from hpotool.interrupts import exit_code, interrupt_behind, signal_of

    behind = interrupt_behind(exc)
    return None if behind is None else exit_code(signal_of(behind))


def _version(value: bool) -> None:
    if value:
        out_console().print(f"hpotool {__version__}")
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
        err_console().print(self.format(record), markup=False, highlight=False, soft_wrap=True)


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


@contextmanager
def stoppable(say: Callable[[], None], *, caught_inside: bool = False) -> Iterator[None]:
    """Inside, Ctrl-C and SIGTERM raise KeyboardInterrupt from its first line on; on one, `say` what it left
    (one line, however many signals follow) and exit 130 or 143 (a closed pipe: 141, and nothing said).

    An interrupt that something inside caught and went on from (torch's import catches Ctrl-C's as it
    imports numpy; a finalizer drops one) is raised again as the block ends, or in place of the error it
    caused (`interrupts.unswallowed`; a command that writes checks for one first, `interrupts.raise_dropped`),
    unless the command handles its interrupts itself (`caught_inside`:
    optimize, whose trials end as interrupted and whose summary says so): the command stops, as asked."""
    from hpotool.interrupts import exit_code, signal_of, signals_ignored, signals_interrupt, unswallowed

    try:
        with signals_interrupt():
            if caught_inside:
                yield
            else:
                with unswallowed():
                    yield
    except KeyboardInterrupt as exc:
        # Output into a closed pipe (`trials ... | head`) stops the command quietly, as it stops a Unix tool:
        # the line is for Ctrl-C and SIGTERM, and `head`'s user did not interrupt anything.
        if signal_of(exc) != signal.SIGPIPE:
            with signals_ignored():
                say()
        raise typer.Exit(code=exit_code(signal_of(exc))) from None


def say_stopped(command: str, writes: bool = True, *, to_stdout: bool = False) -> Callable[[], None]:
    """What `stoppable` says where Ctrl-C or SIGTERM stopped `command` (report, export-best, refine: a
    command whose files are written whole or not at all, `atomic`; `writes` False: one that only reads):
    `interrupted: nothing was written`, or the files it had put in place by then. It exited 130 without a
    word, and a user could not tell whether an export or a report on disk was the new one or the one before.
    Made as the command starts, so that it names the files of this command alone. `to_stdout`: the command
    writes to stdout (`report --out -`), which a signal may cut short."""
    from hpotool.atomic import placed

    before = len(placed())

    def say() -> None:
        wrote = placed()[before:]
        if not wrote and to_stdout:
            said = "no file was written; what reached stdout may be cut short"
        elif not wrote:
            said = "nothing was written" if writes else f"nothing was written ({command} only reads)"
        elif len({p.parent for p in wrote}) == 1:
            names = ", ".join(p.name for p in wrote)
            where = "" if wrote[0].parent == Path() else f" in {wrote[0].parent}"
            said = f"{command} had written {names}{where} before it stopped"
        else:
            said = f"{command} had written {', '.join(map(str, wrote))} before it stopped"
        err_console().print(f"interrupted: {escape(said)}", soft_wrap=True)

    return say


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

    SIGTERM stops every command as Ctrl-C does, and it exits 143: it raises an interrupt (`interrupts.
    interrupt`), which the command's writes clean up after. It ended the process at once (`entry`), which
    left the hidden temporary file of a file being written (`export-best`, `report`, `refine`) and the
    folder made for it, as only SIGKILL may.
    """
    from hpotool.interrupts import exit_code, interrupt, interrupt_behind, signal_of
    from hpotool.pipes import guard_streams, pipe_closed

    guard_streams()
    loading = signal.signal(signal.SIGTERM, lambda signum, frame: interrupt(signum))
    try:
        app()
    except SystemExit as exc:
        code = exc.code
        stopped = interrupt_behind(exc)  # typer exits 130 for any KeyboardInterrupt, SIGTERM's too
        if code == 130 and stopped is not None:
            code = exit_code(signal_of(stopped))
    except KeyboardInterrupt as exc:  # typer exits 130 for one while a command runs, not while it builds them
        code = exit_code(signal_of(exc))
    else:
        code = 0
    signal.signal(signal.SIGTERM, loading)  # as the command ends: no interrupt to raise any more
    if isinstance(code, str):  # sys.exit("message"): what the interpreter would print
        sys.stderr.write(code + "\n")
        code = 1
    import atexit
    import contextlib

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A reader gone (`| head`): the guarded stream interrupts, as it would in the command; or a stream
        # closed: nothing to flush to.
        with contextlib.suppress(OSError, ValueError, KeyboardInterrupt):
            stream.flush()
    if pipe_closed():  # the command's output was cut short: the shell's code for SIGPIPE, as `head` leaves
        code = 128 + signal.SIGPIPE
    os._exit(code if isinstance(code, int) else 0)
