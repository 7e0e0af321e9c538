"""The file of a SQLite or journal storage: a path too long or naming a folder refused, what to do about a
file or folder this process cannot write, and whether a file is an Optuna journal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hpotool.errors import HpoError
from hpotool.storage_url import shown_url, sqlite_path


def refuse_a_long_name(url: str, path: Path) -> None:
    """A SQLite or journal file whose path holds a name too long for a file: every stat of it raised
    `OSError: [Errno 36] File name too long` as a traceback.

    Raises:
        HpoError: naming the long part, its length and the limit.
    """
    from hpotool.path_checks import long_name

    too_long = long_name(path)
    if too_long is not None:
        raise HpoError(f"storage {shown_url(url)!r}: in its path, {too_long}; give a shorter path")


def refuse_a_folder(url: str, path: Path) -> None:
    """A storage URL naming a folder (`--storage sqlite:///studies`, for the folder the studies go in) was
    read as a file: 'is not a SQLite database; hpotool would add Optuna's tables to it', or 'is not an
    Optuna storage (it has no Optuna tables)' for a read, or '[Errno 21] Is a directory' for a journal.

    A path ending in / (`sqlite:///studies/new/`) names a folder too, made or not: it became a file of that
    name, as `path` holds no trailing /.

    Raises:
        HpoError: `path` is a folder, naming a file in it to give instead.
    """
    trailing = url.split("?", 1)[0].endswith("/")
    if path.is_dir() or trailing:
        journal = url.startswith("journal:")
        kind, scheme, suffix = ("journal", "journal:", ".log") if journal else ("SQLite", "sqlite:///", ".db")
        what = "is a folder" if path.is_dir() else "names a folder (it ends in /)"
        raise HpoError(
            f"storage {shown_url(url)!r}: {str(path)!r} {what}, not a {kind} file; give a file in it, "
            f"{scheme}{(path / 'NAME').as_posix()}{suffix} (NAME: the study's name)"
        )


def file_hint(url: str) -> str:
    """What to do about a SQLite or journal file this process cannot write, or whose folder it cannot write
    (a read-only mount, another user's file) or make (a file in its place): a study run writes to both (SQLite's -wal and -shm files, the
    journal's lock file, beside the file), and SQLite writes beside a file even to read it; "" otherwise."""
    journal = url.startswith("journal:")
    path = Path(url.removeprefix("journal:")).expanduser() if journal else sqlite_path(url)
    if path is None:
        return ""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():  # a file where the folder would be made: it read "[Errno 17] File exists: 'data'"
        return (
            f"; {os.path.abspath(folder)!r} is a file, not a folder, so the storage's folder cannot be made "
            f"there: move the file away, or give a path in another folder"
        )
    blocked = next((p for p in (folder, path) if p.exists() and not os.access(p, os.W_OK)), None)
    if blocked is None:
        return ""
    blocked = Path(os.path.abspath(blocked))  # a relative URL's: `ls -l` it from anywhere
    if not path.exists():
        return f"; this process cannot write to {str(blocked)!r}: give a path in a folder you can write to"
    if blocked == path:
        what = "a study run writes to the file"
    elif journal:
        what = "a study run writes beside the file (its lock file)"
    else:
        what = "SQLite writes beside the file (its -wal and -shm files) even to read a study"
    return (
        f"; this process cannot write to {str(blocked)!r}, and {what}: copy it to a folder you can write to "
        f"and give that path"
    )


def is_optuna_journal(path: Path) -> bool:
    """Whether `path` is missing, empty or an Optuna journal file: its first line a JSON record with an
    op_code (Optuna's reader skips lines it cannot parse, so any text file would read as "no studies", and
    a study written to it would be appended to the user's file)."""
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable: opening it says why
    if not first.strip():
        return path.stat().st_size == len(first)  # empty, or nothing but this blank line
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record
