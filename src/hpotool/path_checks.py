"""What keeps a path from being written (a name too long, a file where a folder should be, a folder this
process cannot write to), what is there instead, and how a message names a path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

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
