"""Temporaries that say who made them, and the removal of those whose maker is provably dead.

A staging folder or temporary file is removed by the process that made it when a save fails; a process
killed outright (SIGKILL, the OOM killer, a closed terminal's SIGHUP) cannot, and its temporary stayed
for good. So each one's name carries its maker: `tag()` is `<host>~<machine>-<pid>-<start>`, where
`<machine>` is a hash of the host name, the boot and the PID namespace, and `<start>` is when the process
started (clock ticks since boot, from /proc): a pid that another process took since is told apart. The
next save into the same folder removes the temporaries of this machine, boot and PID namespace whose
process is gone (`remove_dead`); one of another machine, container or boot, or of a process still alive,
is never touched, and without /proc (not Linux) nothing is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
from functools import cache
from pathlib import Path

# tempfile's random part: 8 of "abcdefghijklmnopqrstuvwxyz0123456789_"
_RANDOM = r"[a-z0-9_]{8}"


@cache
def _machine() -> str | None:
    """`<host>~<hash>` naming this host, boot and PID namespace; None where they cannot be told (no /proc)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    host = socket.gethostname()
    digest = hashlib.sha1(f"{host}\0{boot}\0{namespace}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9.-]', '_', host)[:20]}~{digest}"


def _started(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot; None when there is no such process here."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])  # field 22; the name in () may hold spaces


def tag() -> str:
    """What a temporary's name says about its maker (this process): `<host>~<machine>-<pid>-<start>`, or
    `<pid>` alone where the machine cannot be told (never removed by another process then)."""
    machine = _machine()
    pid = os.getpid()
    if machine is None:
        return str(pid)
    return f"{machine}-{pid}-{_started(pid) or 0}"


def _dead(pid: int, start: int) -> bool:
    """Whether the process `pid` that started at `start` (0: unknown) on this machine has ended."""
    if not 0 < pid < 2**22:  # no pid (0 would ask about this process group): nothing proves it dead
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        pass
    started = _started(pid)
    return start != 0 and started is not None and started != start  # the pid is another process's now


def remove_dead(folder: Path) -> None:
    """Remove the staging folders and temporary files in `folder` that a process of this machine, boot and
    PID namespace made and left when it died; anything else is kept, and an error is ignored (it is a
    cleanup: the save goes on)."""
    machine = _machine()
    if machine is None:
        return
    name = re.compile(rf"^\..*{re.escape(machine)}-(\d+)-(\d+)-{_RANDOM}\.tmp$")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        found = name.match(entry)
        if found is None or not _dead(int(found[1]), int(found[2])):
            continue
        path = folder / entry
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
