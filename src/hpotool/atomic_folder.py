"""Atomic folder writes: `atomic_folder` stages a folder's files beside it (or inside it) and puts them in
place together, so a reader finds the whole folder or nothing: never half of a run folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hpotool.atomic import current_umask, keep, missing_folders, put_back, remove_made
from hpotool.errors import HpoError
from hpotool.interrupts import deferred
from hpotool.leftovers import remove_dead, tag
from hpotool.path_checks import kind_of

# The error for a path that cannot be written because of an OSError (`atomic_folder`'s `refuse`).
Refuse = Callable[[Path, OSError], HpoError]


@contextmanager
def atomic_folder(
    folder: Path,
    last: str | None = None,
    refuse: Refuse | None = None,
    *,
    new: Path | None = None,
) -> Iterator[Path]:
    """Yield an empty staging folder to write `folder`'s files into; on a clean exit they become `folder`'s
    in one step, and on any failure (the writer's too) the staging folder, and any folder above `folder`
    made for it, is removed: `folder` is as it was.

    `folder` missing or empty: the staging folder is made beside it (with the mode `folder` has or would
    have) and renamed onto it, which is atomic; where folders above it are missing too, the outermost of
    them is staged whole, so none of them appears before `folder` does, with its files. `folder` holding other files (a user's --out with notes in
    it, or a run folder part of which an older save left), or beside which nothing can be made: the staging
    folder is made inside it and its files are moved up, `last` last, in a burst Ctrl-C and SIGTERM wait
    for, once no name is taken by anything but a file.

    Args:
        folder: the folder to write.
        last: the name of the file moved up last (the one whose presence says the folder is whole).
        refuse: the error for a path that cannot be written because of an OSError, with what to do about
            it for the command that writes (`cannot_write` by default: the path and the reason alone).
        new: `folder`, or a folder above it, named as free, which another process may take meanwhile: one
            holding files is refused (`refuse` of `folder` and EEXIST, or ENOTEMPTY where it is taken as
            the staging folder is renamed onto it), never written into.

    Raises:
        HpoError: a folder cannot be made or a name is taken, naming it; `folder` is as it was then.
    """
    refuse = refuse or cannot_write
    _remove_dead_around(folder)
    if new is not None and new != folder and os.path.lexists(new) and not _empty_folder(new):
        # another process saved into it first (its own subfolder, not `folder`): none of its names is ours
        raise refuse(folder, FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(new)))
    # folders above it to make: they appear with it, in the same rename
    above = missing_folders(folder.parent)
    if above and not os.path.lexists(folder):
        with _staged_above(above[0], folder, refuse) as staging:
            yield staging
        return
    with _staged(folder, last, refuse, above, new == folder) as staging:
        yield staging


@contextmanager
def _staged_above(outermost: Path, folder: Path, refuse: Refuse) -> Iterator[Path]:
    """Stage `folder` with the missing folders above it, from `outermost` down, and rename them into place
    at once; on any failure remove the staging folder and all in it."""
    try:
        top, staging = _staging_above(outermost, folder)
    except OSError as exc:
        raise refuse(folder, exc) from None
    try:
        yield staging
        with deferred():
            os.rename(top, outermost)
    except BaseException as exc:
        shutil.rmtree(top, ignore_errors=True)
        if isinstance(exc, OSError):
            raise refuse(folder, exc) from None
        raise


@contextmanager
def _staged(folder: Path, last: str | None, refuse: Refuse, made: list[Path], new: bool) -> Iterator[Path]:
    """Stage `folder`'s files beside it (renamed onto it) or inside it (moved up, `last` last); on any failure
    remove the staging folder and the folders above `folder` made for it (`made`)."""
    try:
        staging, beside = _staging(folder, new)
    except OSError as exc:
        remove_made(made)
        raise refuse(folder, exc) from None
    try:
        yield staging
        with deferred():
            if beside:
                os.rename(staging, folder)
            else:
                _move_up(staging, folder, last)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made(made)
        if isinstance(exc, _NotMoved):
            raise refuse(exc.path, exc.error) from None
        if isinstance(exc, OSError):
            raise refuse(folder, exc) from None
        raise


def _staging_above(outermost: Path, folder: Path) -> tuple[Path, Path]:
    """A staging folder for `outermost`, the outermost missing folder above `folder` (`runs` of
    runs/digits/20260101-120000 where runs is missing), beside it and holding the folders between, and the
    empty folder in it that stands for `folder`: renamed onto `outermost`, all of them appear at once, with
    `folder`'s files. A process killed outright (kill -9) before the rename leaves no empty folder, only its
    tagged staging folder, which the next save of a folder below it removes (`_remove_dead_around`)."""
    top = Path(tempfile.mkdtemp(prefix=f".hpotool-{tag()}-", suffix=".tmp", dir=outermost.parent))
    try:
        os.chmod(top, 0o777 & ~current_umask())  # mkdtemp makes it private: the mode a plain mkdir would give
        staging = top / folder.relative_to(outermost)
        staging.mkdir(parents=True)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    return top, staging


def _remove_dead_around(folder: Path) -> None:
    """Remove the staging folders that a process killed while it saved left wherever a save of `folder`
    stages (`leftovers.remove_dead`): inside it, beside it, or beside any folder above it, as `folder` is
    given (a relative runs/<project>/<timestamp> up to the current folder), which was the outermost one
    missing then. The one beside runs/ stayed for good once runs/ was made since: a save staged runs/ whole
    no more, and looked only beside and inside the folders it staged."""
    if os.path.isdir(folder):  # a link to a folder too: a save stages inside what it points to
        remove_dead(folder)
    for parent in folder.parents:
        if os.path.isdir(parent):
            remove_dead(parent)


def _staging(folder: Path, new: bool = False) -> tuple[Path, bool]:
    """An empty staging folder for `folder` (its parents made), and whether it is beside `folder` (renamed
    onto it) rather than inside it (its files moved up).

    Raises:
        FileExistsError: `new` and `folder` holds files (or is no folder): another process took the name.
    """
    prefix = f".hpotool-{tag()}-"
    empty = _empty_folder(folder)
    if new and os.path.lexists(folder) and not empty:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(folder))
    if not os.path.lexists(folder) or empty:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=folder.parent))
        except OSError:
            if not empty or new:  # a new folder's files never go inside it: another process may fill it
                raise
        else:  # mkdtemp makes it private: give it the mode the folder has, or a plain mkdir would give
            mode = stat.S_IMODE(os.stat(folder).st_mode) if empty else 0o777 & ~current_umask()
            os.chmod(staging, mode)
            return staging, True
    return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=folder)), False


def _empty_folder(folder: Path) -> bool:
    """Whether `folder` is a folder (not a link to one) with nothing in it."""
    return os.path.isdir(folder) and not os.path.islink(folder) and not os.listdir(folder)


class _NotMoved(Exception):
    """A file of the staging folder that could not be moved up to `path` because of `error`."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(path, error)
        self.path = path
        self.error = error


def _move_up(staging: Path, folder: Path, last: str | None) -> None:
    """Move the files of `staging` (inside `folder`) into `folder`, `last` last, then remove `staging`.
    When one cannot be moved, those moved before it are removed and the files they replaced put back.

    Raises:
        _NotMoved: a file cannot be moved up (its name is taken by a folder, say); `folder` is as it was.
    """
    names = sorted(os.listdir(staging), key=lambda name: name == last)
    for name in names:
        target = folder / name
        if os.path.lexists(target) and not os.path.isfile(target):
            kind = "a folder" if os.path.isdir(target) else kind_of(target)
            raise _NotMoved(target, FileExistsError(errno.EEXIST, f"{kind} has its name"))
    aside = Path(tempfile.mkdtemp(dir=staging))  # the files replaced, until every file is moved
    moved: list[tuple[Path, Path | None]] = []  # each file moved up, and the one it replaced
    try:
        for name in names:
            target = folder / name
            kept = aside / name if os.path.lexists(target) else None
            if kept is not None:
                keep(target, kept)
            os.replace(staging / name, target)
            moved.append((target, kept))
    except OSError as exc:
        put_back(moved)  # not half of the files: the folder as it was
        raise _NotMoved(target, exc) from None
    shutil.rmtree(staging)


def cannot_write(path: Path, exc: OSError) -> HpoError:
    """The error for `path` that could not be written because of `exc`: the path and the reason."""
    return HpoError(f"{path}: cannot write: {exc.strerror or exc}")
