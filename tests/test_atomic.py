from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hpotool.atomic
from hpotool.atomic import atomic_open, write_text
from hpotool.errors import HpoError


def test_writes_the_file_with_normal_permissions(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.txt"
    write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(path.parent) == ["out.txt"]


def test_a_failed_replace_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.json"
    path.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hpotool.atomic.os, "replace", fail)
    with pytest.raises(HpoError, match=r"out.json: cannot write: No space left on device"):
        write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_an_exception_while_writing_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt), atomic_open(path, "wb") as fh:
        fh.write(b"half a file")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_is_an_hpo_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HpoError, match=r"cannot write"):
        write_text(blocker / "out.txt", "x")


def test_a_named_pipe_is_written_into_not_replaced(tmp_path: Path) -> None:
    import threading

    pipe = tmp_path / "out.html"  # as /dev/stdout or /dev/null would be: not a file to replace
    os.mkfifo(pipe)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    write_text(pipe, "report\n")
    reader.join(timeout=120)  # a hang guard: the write has ended, the reader has its text or soon will
    assert got == ["report\n"]
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    assert os.listdir(tmp_path) == ["out.html"]


def test_a_link_is_written_through_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "report.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink()
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["report.html"]


def test_a_name_too_long_is_an_hpo_error(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 300) / "trials.csv"  # export-best --out with a folder name too long
    with pytest.raises(HpoError, match=r"trials.csv: cannot write: File name too long$"):
        write_text(path, "x")
    assert os.listdir(tmp_path) == []


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    """A file the user had made private (chmod 600) came back readable by everyone (0644 under the usual
    umask) when a report or export replaced it; now it keeps its mode."""
    path = tmp_path / "best_params.json"
    path.write_text("old")
    path.chmod(0o600)
    write_text(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _left(folder: Path, name: str) -> Path:
    """A staging folder named `name`, with a file in it, as a save that died left it."""
    staging = folder / name
    staging.mkdir(parents=True)
    (staging / "model.pt").write_bytes(b"half")
    return staging


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc (Linux)")
def test_only_staging_folders_of_a_provably_dead_process_are_removed(tmp_path: Path) -> None:
    """A save killed outright left its `.hpotool-*.tmp` staging folder for good; now the next save beside
    (or inside) it removes those of this machine whose process is gone, or whose pid another process has
    taken since (another start time), and keeps the others: a live process's, another machine's or
    container's, one named the old way (no maker in its name)."""
    from hpotool.atomic_folder import atomic_folder
    from hpotool.leftovers import tag

    machine, pid, start = tag().rsplit("-", 2)
    assert int(pid) == os.getpid() and int(start) > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid no process has now (reaped)
    dead = _left(tmp_path, f".hpotool-{machine}-{child.pid}-{start}-abcd_123.tmp")
    reused = _left(tmp_path / "run", f".hpotool-{machine}-{pid}-{int(start) + 1}-abcd_123.tmp")  # inside
    alive = _left(tmp_path, f".hpotool-{tag()}-abcd_123.tmp")
    elsewhere = _left(tmp_path, f".hpotool-box~0123456789-{child.pid}-{start}-abcd_123.tmp")
    old = _left(tmp_path, ".hpotool-abcd_123.tmp")
    (tmp_path / "run" / "notes.txt").write_text("mine\n")
    with atomic_folder(tmp_path / "run") as staging:
        (staging / "config.yaml").write_text("x\n")
    assert not dead.exists() and not reused.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, elsewhere.name, old.name, "run"])
    assert sorted(os.listdir(tmp_path / "run")) == ["config.yaml", "notes.txt"]
    assert os.listdir(alive) == ["model.pt"]


def test_a_failed_move_up_puts_back_the_files_it_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder holding other files gets a save's files moved up one by one; when a later one failed (here a
    folder put in the way of config.yaml after the check, as another process could), the files already
    moved were deleted, and with them the older files of the same name they had replaced (a run folder part
    of which an older save left): the folder was not as it was. Now the replaced files are put back."""
    from hpotool.atomic_folder import atomic_folder

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    (folder / "metrics.json").write_text("old\n")
    (folder / "metrics.json").chmod(0o600)
    real = os.replace

    def race(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "config.yaml":
            os.mkdir(dst)  # made by someone else between the check and the move
        real(src, dst)

    monkeypatch.setattr(hpotool.atomic.os, "replace", race)
    with (
        pytest.raises(HpoError, match=r"^.*/run/config.yaml: cannot write: Is a directory$"),
        atomic_folder(folder, last="config.yaml") as staging,
    ):
        for name in ("history.csv", "metrics.json", "config.yaml"):
            (staging / name).write_text("new\n")
    assert sorted(os.listdir(folder)) == ["config.yaml", "metrics.json", "notes.txt"]  # the folder in the way
    assert (folder / "metrics.json").read_text() == "old\n"
    assert stat.S_IMODE((folder / "metrics.json").stat().st_mode) == 0o600
    assert (folder / "notes.txt").read_text() == "mine\n"


def test_a_set_whose_later_file_cannot_be_replaced_leaves_the_earlier_ones_as_they_were(
    tmp_path: Path,
) -> None:
    """export-best into a folder where trials.json was a folder replaced trials.csv (renamed first) and then
    failed: the folder held the new trials.csv beside the former best_params.json, a mix of two exports,
    though write_texts said "old set or new, never a mix". Now the files renamed before the failure are
    put back (or removed, where there was none)."""
    from hpotool.atomic import write_texts

    (tmp_path / "trials.csv").write_text("old\n")
    (tmp_path / "trials.csv").chmod(0o600)
    (tmp_path / "trials.json").mkdir()
    texts = {
        tmp_path / "trials.csv": "new\n",
        tmp_path / "best_run.yaml": "new\n",
        tmp_path / "trials.json": "new\n",
    }
    with pytest.raises(HpoError, match=r"/trials.json: cannot write: Is a directory$"):
        write_texts(texts)
    assert sorted(os.listdir(tmp_path)) == ["trials.csv", "trials.json"]
    assert (tmp_path / "trials.csv").read_text() == "old\n"
    assert stat.S_IMODE((tmp_path / "trials.csv").stat().st_mode) == 0o600


def test_a_failed_write_removes_the_folders_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`export-best --out exports/deep/x` or `report --out reports/deep/r.html` on a full disk failed and left
    the empty folders it had made for the files (a run's save removed them already); now they go too, and
    a folder that was there before stays."""
    from hpotool.atomic import write_texts

    from .helpers import FullDisk

    (tmp_path / "exports").mkdir()
    monkeypatch.setattr(hpotool.atomic, "os", FullDisk())
    folder = tmp_path / "exports" / "deep" / "x"
    with pytest.raises(HpoError, match=r"x/trials.csv: cannot write: No space left on device$"):
        write_texts({folder / "trials.csv": "a\n", folder / "trials.json": "[]\n"})
    with pytest.raises(HpoError, match=r"r.html: cannot write: No space left on device$"):
        write_text(tmp_path / "reports" / "deep" / "r.html", "<html>\n")
    assert os.listdir(tmp_path) == ["exports"] and os.listdir(tmp_path / "exports") == []


def test_a_file_that_cannot_be_replaced_keeps_no_second_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second name write_texts gives a file it replaces, to put it back, is removed when that file's
    own rename fails (here the disk refuses it, as a busy file on some mounts), not left as a stray
    hidden file."""
    from hpotool.atomic import write_texts

    (tmp_path / "trials.csv").write_text("old\n")
    (tmp_path / "trials.json").write_text("old\n")
    real = os.replace

    def busy(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "trials.json":
            raise OSError(16, "Device or resource busy")
        real(src, dst)

    monkeypatch.setattr(hpotool.atomic.os, "replace", busy)
    with pytest.raises(HpoError, match=r"/trials.json: cannot write: Device or resource busy$"):
        write_texts({tmp_path / "trials.csv": "new\n", tmp_path / "trials.json": "new\n"})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["trials.csv", "trials.json"]
    assert [(tmp_path / n).read_text() for n in ("trials.csv", "trials.json")] == ["old\n", "old\n"]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc (Linux)")
def test_a_staging_name_with_no_pid_in_it_is_kept_and_the_save_goes_on(tmp_path: Path) -> None:
    """A name in the staging form but whose pid no process can have (99999999999999999999, 0) made the next
    save fail with an OverflowError traceback (or asked about this process group); now it is kept, as
    anything not proven to be a dead process's, and the save goes on."""
    from hpotool.atomic_folder import atomic_folder
    from hpotool.leftovers import tag

    machine, _, start = tag().rsplit("-", 2)
    odd = [
        _left(tmp_path, f".hpotool-{machine}-{pid}-{start}-abcd_123.tmp")
        for pid in ("99999999999999999999", "0")
    ]
    with atomic_folder(tmp_path / "run") as staging:
        (staging / "config.yaml").write_text("x\n")
    assert sorted(os.listdir(tmp_path)) == sorted([*(p.name for p in odd), "run"])
