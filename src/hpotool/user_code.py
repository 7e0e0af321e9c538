"""An exception told in one line (`described`, `first_line`), and where in the user's own code it was raised
(`user_frame`, or `calling_user_frame` for a call in progress): the innermost frame outside hpotool, Python
and installed packages; a sys.exit() in the user's code made an error (`refusing_exit`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the user's: hpotool, the Python installation and installed packages."""
    import site
    import sysconfig

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.abspath(__file__))}
    dirs.update(p for p in sysconfig.get_paths().values() if p)
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return tuple(os.path.abspath(d) + os.sep for d in dirs)


def user_frame(exc: BaseException) -> str | None:
    """Where in the user's own code `exc` was raised, as `path:line in function` (path relative to the
    current folder where it is inside it): the innermost frame outside hpotool, Python and installed
    packages, or None when the user's code is not involved."""
    import traceback

    frames: list[tuple[str, int | None, str | None]]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:  # the error is in the file itself
        frames = [(exc.filename, exc.lineno, None)]
    else:
        frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    return _innermost_user_frame(frames)


def user_line(exc: BaseException) -> str:
    """The source text of the line in the user's own code where `exc` was raised, as `user_frame` finds it;
    "" where the user's code is not involved or its source cannot be read."""
    import traceback

    library = _library_dirs()
    frames = reversed(traceback.extract_tb(exc.__traceback__))
    return next((f.line or "" for f in frames if _users_file(f.filename, library)), "")


def calling_user_frame() -> str | None:
    """Where in the user's own code the current call comes from, as `user_frame` says it (a call the user's
    module makes into a function hpotool watches, such as os.chdir), or None."""
    import traceback

    return _innermost_user_frame([(f.filename, f.lineno, f.name) for f in traceback.extract_stack()])


def _innermost_user_frame(frames: list[tuple[str, int | None, str | None]]) -> str | None:
    """The innermost of `frames` (outermost first) in a file of the user's, as `path:line in function`."""
    library = _library_dirs()
    for filename, lineno, name in reversed(frames):
        if _users_file(filename, library):
            path = os.path.abspath(filename)
            shown = os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
            return f"{shown}:{lineno}" + (f" in {name}" if name and name != "<module>" else "")
    return None


def _users_file(filename: str, library: tuple[str, ...]) -> bool:
    """Whether a frame's `filename` is a file of the user's: outside the `library` folders, or in a project
    of theirs that pip copied there from its folder (`pip install .`), and a file (a compiled module's frame
    names its source relatively, `<frozen ...>` none)."""
    from hpotool.installed import local_packages

    path = os.path.abspath(filename)
    if filename.startswith("<") or not os.path.isfile(path):
        return False
    return not path.startswith(library) or path.startswith(local_packages())


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`: a user's multi-line message shown as one line. One of hpotool's own
    refusals of a config value (`unknown activation 'rellu' ...`) is its message alone: its words are written
    for the user, and the class name (ValueError) would tell them nothing. An exception from a library, or
    one raised in (or through) the user's code keeps the name, which tells them what their code did."""
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc).strip()
    if text and raised_by_hpotool(exc) and user_frame(exc) is None:
        return text.splitlines()[0]
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def raised_by_hpotool(exc: BaseException) -> bool:
    """Whether `exc` is hpotool's own: of a class hpotool defines, or from a `raise` statement in hpotool's
    source (its innermost frame); not from the user's code, a library, or a builtin hpotool called (an
    `open()` failing keeps its PermissionError)."""
    import linecache

    if type(exc).__module__.partition(".")[0] == "hpotool":
        return True
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    if os.path.dirname(os.path.abspath(filename)) != os.path.dirname(os.path.abspath(__file__)):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise ")


def described(exc: BaseException) -> str:
    """An exception in one line: its type, the first line of its message, and where in the user's own code
    it was raised (a user's multi-line message would otherwise be a wall of `error:` lines)."""
    where = user_frame(exc)
    return first_line(exc) + (f" (at {where})" if where else "")


# Why a user's os.chdir() is refused, in each message that refuses one (a module that changed folder as it
# imported, a training function, a dataset function): said one way, from here.
MOVES_RELATIVE_PATHS = (
    "which moves every relative path hpotool reads and writes (the configs, studies/, runs/)"
)


@contextmanager
def chdir_undone(cwd: str) -> Iterator[list[str | None]]:
    """Yield a list that holds, once the block is done, the folder the code in the block moved the working
    folder to and where in the user's code it called os.chdir (empty where it did not move it); the working
    folder is `cwd` again either way."""
    chdir = os.chdir
    where: list[str | None] = []
    moved: list[str | None] = []

    def watched(to: Any) -> None:
        where.append(calling_user_frame())
        chdir(to)

    os.chdir = watched  # type: ignore[assignment]
    try:
        yield moved
    finally:
        os.chdir = chdir
        now = os.getcwd() if os.path.isdir(cwd) else cwd
        if now != cwd:
            os.chdir(cwd)
            moved += [now, next((w for w in where if w is not None), None)]


@contextmanager
def refusing_exit() -> Iterator[None]:
    """Raise a sys.exit() called in this block (the user's dataset, model, loss or schedule: argparse's
    parse_args() there reads hpotool's command line) as a RuntimeError with its traceback, which says where:
    it ended hpotool at once, saying nothing, with its exit code (0: as if all went well), or a worker with
    its trial left RUNNING. An os.chdir() in it (a dataset function's `os.chdir(data_dir)`) is undone and
    raised as a RuntimeError too: a new study went into that folder's studies/, without a word."""
    with chdir_undone(os.getcwd()) as moved, exit_refused():
        yield
    if moved:  # a dataset function's os.chdir(data_dir): the study went into that folder's studies/
        folder, where = moved
        raise RuntimeError(
            f"os.chdir({folder!r}) was called"
            + (f" at {where}" if where else "")
            + f", {MOVES_RELATIVE_PATHS}; build the paths your code reads from __file__ or an absolute folder "
            "instead of changing the working folder"
        )


@contextmanager
def exit_refused() -> Iterator[None]:
    """Raise a sys.exit() called in this block as a RuntimeError with its traceback (`refusing_exit`
    without its watch on os.chdir: for a block that runs inside one, such as a pruner's should_prune())."""
    try:
        yield
    except SystemExit as exc:
        raise RuntimeError(
            f"sys.exit({exc.code!r}) was called, which would end hpotool (argparse's parse_args() does so on "
            f"hpotool's command line); raise an exception instead, or read the settings from the config"
        ).with_traceback(exc.__traceback__) from None
