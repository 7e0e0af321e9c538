"""Atomic file writes: a temporary file in the target folder, then `os.replace`.

A reader sees the old file or the new one, never half of one, and a failed or interrupted write leaves
the old file as it was and no temporary file behind (a process killed outright, SIGKILL, leaves its
temporaries until the next write into the same folder: `leftovers.remove_dead`). A replaced file keeps
its permissions. A symbolic link is written through (its target is replaced, the link kept), and a
target that is no file to replace, such as `/dev/null`, `/dev/stdout` or a named pipe, is written into as
it is: replacing it would put a plain file where the device was. `write_texts` writes several files as one set: all or none, and
`atomic_folder` a folder's files: the whole folder or nothing.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hpotool.errors import HpoError
from hpotool.interrupts import deferred
from hpotool.leftovers import remove_dead, tag


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on a clean exit it replaces `path`.

    Args:
        path: the file to write; its folder is created when missing.
        mode: "w" (text, UTF-8, newline as written) or "wb".

    Raises:
        HpoError: when the folder or file cannot be written (permissions, full disk), naming the file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    encoding = None if "b" in mode else "utf-8"
    newline = None if "b" in mode else ""
    kind = _kind(path)
    if _written_into(kind):
        try:  # a device or pipe: nothing to replace, and nothing half-written to keep a reader from
            with open(path, mode, encoding=encoding, newline=newline) as fh:
                yield fh
        except OSError as exc:
            raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
        return
    made = _missing(path.parent)  # removed again when the write fails
    try:
        path, fd, tmp = _temporary(path)
    except HpoError:
        _remove_made(made)
        raise
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            _seal(fh, tmp, kind)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _remove_made(made)
        if isinstance(exc, OSError):
            raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise


def _temporary(path: Path) -> tuple[Path, int, Path]:
    """The file to replace (a link's target), and an open temporary file beside it (descriptor, path),
    named for its maker (`leftovers.tag`): once a process killed while it wrote has ended, the next write
    into the same folder removes what it left."""
    if os.path.islink(path):  # replace the file the link points to, not the link
        path = Path(os.path.realpath(path))
    remove_dead(path.parent)  # the temporary files of a write killed outright (SIGKILL)
    short = os.fsdecode(os.fsencode(path.name)[:100])  # the name with the maker's tag must stay a name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{short}.{tag()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        blocker = next(
            (p for p in reversed(path.parents) if os.path.exists(p) and not os.path.isdir(p)), None
        )
        if blocker is not None:
            raise HpoError(
                f"{path}: cannot write: {blocker} is a file, not a folder; choose another path"
            ) from None
        raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path, fd, Path(tmp_name)


def _seal(fh: IO, tmp: Path, kind: int | None) -> None:
    """Put a written temporary file on disk with the mode its target should have."""
    fh.flush()
    os.fsync(fh.fileno())
    # mkstemp creates the file readable by its owner only; give it the mode a plain open() would, or
    # the one the file it replaces has (a report the user made private stays private).
    os.chmod(tmp, stat.S_IMODE(kind) if kind is not None and stat.S_ISREG(kind) else 0o666 & ~_umask())


def write_texts(texts: Mapping[Path, str], remove: Iterable[Path] = ()) -> None:
    """Write several files as one set: each text goes to a temporary file beside its target, and only when
    all are on disk are they renamed into place (and `remove` deleted), in one burst that Ctrl-C and
    SIGTERM wait for. A failed or interrupted write leaves every file as it was: old set or new, never a
    mix (a file that cannot be renamed into place puts back those renamed before it). A target that is no
    file to replace (`/dev/null`) is written into after the burst.

    Raises:
        HpoError: when a folder or file cannot be written, naming the file; nothing is replaced then, and
            the folders made for the files are removed.
    """
    made: list[list[Path]] = []  # the folders made for each file, removed again when the write fails
    staged: list[tuple[Path, Path]] = []
    replaced: list[tuple[Path, Path | None]] = []  # each file renamed into place, and its former self kept
    devices: dict[Path, str] = {}
    try:
        for target, text in texts.items():
            kind = _kind(target)
            if _written_into(kind):
                devices[target] = text
                continue
            made.append(_missing(target.parent))
            path, fd, tmp = _temporary(target)
            staged.append((tmp, path))
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(text)
                    _seal(fh, tmp, kind)
            except OSError as exc:
                raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
        with deferred():
            while staged:
                tmp, path = staged[0]
                kept = None
                try:
                    if os.path.isfile(path):
                        kept = _second_name(path)
                    os.replace(tmp, path)
                except OSError as exc:
                    if kept is not None:
                        kept.unlink()
                    _put_back(replaced)
                    raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
                replaced.append((path, kept))
                staged.pop(0)
            for old in remove:
                old.unlink(missing_ok=True)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folders in reversed(made):
            _remove_made(folders)
        raise
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for _, kept in replaced:
            if kept is not None:
                kept.unlink(missing_ok=True)
    for target, text in devices.items():
        write_text(target, text)


@contextmanager
def atomic_folder(
    folder: Path,
    last: str | None = None,
    refuse: Callable[[Path, OSError], HpoError] | None = None,
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
    above = _missing(folder.parent)  # folders above it to make: they appear with it, in the same rename
    if above and not os.path.lexists(folder):
        try:
            top, staging = _staging_above(above[0], folder)
        except OSError as exc:
            raise refuse(folder, exc) from None
        try:
            yield staging
            with deferred():
                os.rename(top, above[0])
        except BaseException as exc:
            shutil.rmtree(top, ignore_errors=True)
            if isinstance(exc, OSError):
                raise refuse(folder, exc) from None
            raise
        return
    made = above
    try:
        staging, beside = _staging(folder, new == folder)
    except OSError as exc:
        _remove_made(made)
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
        _remove_made(made)
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
        os.chmod(top, 0o777 & ~_umask())  # mkdtemp makes it private: the mode a plain mkdir would give
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
            mode = stat.S_IMODE(os.stat(folder).st_mode) if empty else 0o777 & ~_umask()
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
                _keep(target, kept)
            os.replace(staging / name, target)
            moved.append((target, kept))
    except OSError as exc:
        _put_back(moved)  # not half of the files: the folder as it was
        raise _NotMoved(target, exc) from None
    shutil.rmtree(staging)


def _keep(path: Path, kept: Path) -> None:
    """Keep the file (or link) `path` as `kept` too: a second name for it (a copy where the disk has none)."""
    try:
        os.link(path, kept, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        shutil.copy2(path, kept, follow_symlinks=False)


def _second_name(path: Path) -> Path:
    """A second name beside the file `path` (`_keep`), a temporary named for its maker, as `_temporary`'s."""
    short = os.fsdecode(os.fsencode(path.name)[:100])
    while True:
        kept = path.parent / f".{short}.{tag()}-{secrets.token_hex(4)}.tmp"
        try:
            _keep(path, kept)
        except FileExistsError:
            continue
        return kept


def _put_back(replaced: list[tuple[Path, Path | None]]) -> None:
    """Undo the renames of `replaced` (each file and its former self kept, None where there was none),
    last first: the folder as it was."""
    while replaced:
        path, kept = replaced.pop()
        if kept is None:
            path.unlink(missing_ok=True)
        else:
            os.replace(kept, path)


def _missing(folder: Path) -> list[Path]:
    """`folder` and the folders above it that do not exist (what making it makes), outermost first."""
    return [p for p in (*reversed(folder.parents), folder) if not os.path.lexists(p)]


def _remove_made(made: list[Path]) -> None:
    """Remove the folders in `made` (outermost first), innermost first, while each is empty."""
    for f in reversed(made):
        try:
            f.rmdir()
        except OSError:
            return


def cannot_write(path: Path, exc: OSError) -> HpoError:
    """The error for `path` that could not be written because of `exc`: the path and the reason."""
    return HpoError(f"{path}: cannot write: {exc.strerror or exc}")


NAME_MAX = 255  # bytes in one file or folder name (ext4, XFS, APFS, NTFS): more is ENAMETOOLONG


def long_part(path: Path) -> str | None:
    """The first file or folder name in `path` longer than NAME_MAX bytes (a stat of it raises `OSError:
    [Errno 36] File name too long`, where `os.path.exists` says False), else None."""
    return next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)


def abbreviated(name: str, keep: int = 24) -> str:
    """`name`, its middle left out past `keep` characters, for a message that names a very long one."""
    return name if len(name) <= keep + 12 else f"{name[:keep]}...{name[-8:]}"


def long_name(path: Path) -> str | None:
    """`the name 'aaa...a.db' is 303 bytes long, and a file or folder name holds at most 255` where a
    name in `path` is too long to be made or looked up, else None."""
    part = long_part(path)
    if part is None:
        return None
    return (
        f"the name {abbreviated(part)!r} is {len(os.fsencode(part))} bytes long, and a file or folder name "
        f"holds at most {NAME_MAX}"
    )


def not_a_folder(folder: Path) -> Path | None:
    """The first of the folders above `folder`, and `folder` itself, that exists and is no folder (a file,
    `/dev/null`): what keeps a file from being written into `folder`; None when nothing does."""
    return next(
        (p for p in (*reversed(folder.parents), folder) if os.path.exists(p) and not os.path.isdir(p)),
        None,
    )


def unwritable(folder: Path) -> Path | None:
    """The folder that keeps this process from writing files into `folder`: `folder` where it exists, else
    the nearest existing folder above it (where `folder` would be made), when this process cannot write to
    it (a read-only mount, another user's folder); None when it can. Checked before the work a write ends
    (training, drawing a report), not instead of the write's own errors."""
    existing = next((p for p in (folder, *folder.parents) if os.path.isdir(p)), Path("."))
    return None if os.access(existing, os.W_OK | os.X_OK) else existing


def shown(folder: Path) -> str:
    """`folder` as a message names it: the current folder by its absolute path, not as '.'."""
    return str(Path.cwd()) if folder == Path(".") else str(folder)


def kind_of(path: Path) -> str:
    """What `path`, which exists and is no folder, is: "a file", "a device", "a named pipe" or "a socket"."""
    mode = os.stat(path).st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a file"


def _written_into(kind: int | None) -> bool:
    """Whether a target of file type `kind` (`_kind`) is a device or pipe: written into, never replaced."""
    return kind is not None and not stat.S_ISREG(kind) and not stat.S_ISDIR(kind)


def _kind(path: Path) -> int | None:
    """The file type bits of what `path` names, through links; None when there is nothing there yet."""
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
