"""Atomic file writes: a temporary file in the target folder, then `os.replace`.

A reader sees the old file or the new one, never half of one, and a failed or interrupted write leaves
the old file as it was and no temporary file behind (a process killed outright, SIGKILL, leaves its
temporaries until the next write into the same folder: `leftovers.remove_dead`). A replaced file keeps
its permissions. A symbolic link is written through (its target is replaced, the link kept), and a
target that is no file to replace, such as `/dev/null`, `/dev/stdout` or a named pipe, is written into as
it is: replacing it would put a plain file where the device was. `write_texts` writes several files as one
set: all or none (and `atomic_folder` a folder's files: the whole folder or nothing).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hpotool.errors import HpoError
from hpotool.interrupts import deferred
from hpotool.leftovers import remove_dead, tag

# Every file this process has put in place (renamed onto its target), first to last: what a command that
# Ctrl-C or SIGTERM stopped had written by then (`cli.root.say_stopped`).
_placed: list[Path] = []


def placed() -> list[Path]:
    """The files this process has put in place so far (`atomic_open`, `write_texts`), first to last."""
    return list(_placed)


def current_umask() -> int:
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
    made = missing_folders(path.parent)  # removed again when the write fails
    try:
        path, fd, tmp = _temporary(path)
    except HpoError:
        remove_made(made)
        raise
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            _seal(fh, tmp, kind)
        with deferred():  # in place and noted as such, or neither: a stopped command says which
            os.replace(tmp, path)
            _placed.append(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        remove_made(made)
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
    os.chmod(tmp, stat.S_IMODE(kind) if kind is not None and stat.S_ISREG(kind) else 0o666 & ~current_umask())


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
            made.append(missing_folders(target.parent))
            path, fd, tmp = _temporary(target)
            staged.append((tmp, path))
            _write_temporary(fd, tmp, path, text, kind)
        with deferred():
            _replace_staged(staged, replaced)
            for old in remove:
                old.unlink(missing_ok=True)
            _placed.extend(path for path, _ in replaced)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folders in reversed(made):
            remove_made(folders)
        raise
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for _, kept in replaced:
            if kept is not None:
                kept.unlink(missing_ok=True)
    for target, text in devices.items():
        write_text(target, text)


def _write_temporary(fd: int, tmp: Path, path: Path, text: str, kind: int | None) -> None:
    """Write `text` into the temporary file `tmp` (open as `fd`) that will replace `path`, and put it on disk."""
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            _seal(fh, tmp, kind)
    except OSError as exc:
        raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _replace_staged(staged: list[tuple[Path, Path]], replaced: list[tuple[Path, Path | None]]) -> None:
    """Rename each staged temporary file onto its target, first to last, moving it from `staged` to
    `replaced` with a second name for the file it replaces; when one cannot be renamed, put back those
    renamed before it.

    Raises:
        HpoError: a file cannot be renamed into place, naming it; every target is as it was then.
    """
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
            put_back(replaced)
            raise HpoError(f"{path}: cannot write: {exc.strerror or exc}") from None
        replaced.append((path, kept))
        staged.pop(0)


def keep(path: Path, kept: Path) -> None:
    """Keep the file (or link) `path` as `kept` too: a second name for it (a copy where the disk has none)."""
    try:
        os.link(path, kept, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        shutil.copy2(path, kept, follow_symlinks=False)


def _second_name(path: Path) -> Path:
    """A second name beside the file `path` (`keep`), a temporary named for its maker, as `_temporary`'s."""
    short = os.fsdecode(os.fsencode(path.name)[:100])
    while True:
        kept = path.parent / f".{short}.{tag()}-{secrets.token_hex(4)}.tmp"
        try:
            keep(path, kept)
        except FileExistsError:
            continue
        return kept


def put_back(replaced: list[tuple[Path, Path | None]]) -> None:
    """Undo the renames of `replaced` (each file and its former self kept, None where there was none),
    last first: the folder as it was."""
    while replaced:
        path, kept = replaced.pop()
        if kept is None:
            path.unlink(missing_ok=True)
        else:
            os.replace(kept, path)


def missing_folders(folder: Path) -> list[Path]:
    """`folder` and the folders above it that do not exist (what making it makes), outermost first."""
    return [p for p in (*reversed(folder.parents), folder) if not os.path.lexists(p)]


def remove_made(made: list[Path]) -> None:
    """Remove the folders in `made` (outermost first), innermost first, while each is empty."""
    for f in reversed(made):
        try:
            f.rmdir()
        except OSError:
            return


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
