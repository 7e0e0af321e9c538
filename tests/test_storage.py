from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import yaml

from hpotool.errors import HpoError
from hpotool.plan import prepare_study
from hpotool.storage import load_study, make_storage

from .conftest import ask_with_heartbeat, write_yaml
from .redis_keys import delete_redis_keys
from .storage_race import open_after
from .test_workers import _beat_an_hour_ago, _hpotool, _kill_session


def test_default_sqlite_is_created_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'folder' / 's.db'}"
    storage = make_storage(url)
    optuna.create_study(study_name="s", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    with sqlite3.connect(tmp_path / "deep" / "folder" / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2  # plain Optuna reads it


def test_missing_study_lists_the_existing_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="alpha", storage=make_storage(url))
    with pytest.raises(HpoError, match=rf"no study 'beta' in {url}; studies there: alpha"):
        load_study("beta", url)
    with pytest.raises(HpoError, match="no such SQLite file"):
        load_study("alpha", f"sqlite:///{tmp_path / 'none.db'}")


def test_journal_file_storage(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'j.log'}")
    study = optuna.create_study(study_name="j", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


@pytest.mark.parametrize("url", ["sqlite:///~/hpo/x.db", "journal:~/hpo/x.log"])
def test_a_tilde_in_a_storage_path_is_the_home_folder(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder named ~ was made in the current one (and `rm -rf ~` is how people clean that up).
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    optuna.create_study(study_name="s", storage=make_storage(url))
    assert not (tmp_path / "~").exists()
    assert (tmp_path / "home" / "hpo" / Path(url).name).is_file()
    assert load_study("s", url).study_name == "s"


def test_a_percent_encoded_sqlite_path_is_the_file_optuna_opens(tmp_path: Path) -> None:
    # hpotool wrote sqlite:///.../my%20studies/x.db to a folder named "my%20studies", and Optuna's own CLI
    # (or optuna-dashboard) given the same URL opened "my studies/x.db" and found no study.
    # And on Python 3.10, whose newest SQLAlchemy is 2.0, which reads `%20` as written (2.1 decodes it),
    # hpotool wrote "my studies/x.db", where Optuna found no study.
    import sqlalchemy

    decodes = tuple(int(n) for n in sqlalchemy.__version__.split(".")[:2]) >= (2, 1)
    folder, other = ("my studies", "my%20studies") if decodes else ("my%20studies", "my studies")
    url = f"sqlite:///{tmp_path}/my%20studies/x.db"
    optuna.create_study(study_name="s", storage=make_storage(url))
    assert (tmp_path / folder / "x.db").is_file() and not (tmp_path / other).exists()
    assert optuna.load_study(study_name="s", storage=url).study_name == "s"  # Optuna's own reading of the URL
    # A study an older hpotool made under the other reading of the name is found where it is.
    optuna.create_study(study_name="o", storage=make_storage(f"sqlite:///{tmp_path / 'plain' / 'x.db'}"))
    from hpotool.sqlite_storage import _close_sqlite_storages

    _close_sqlite_storages()
    (tmp_path / "plain").rename(tmp_path / ("old%20place" if decodes else "old place"))
    assert load_study("o", f"sqlite:///{tmp_path}/old%20place/x.db").study_name == "o"


def test_a_study_in_a_folder_that_cannot_be_written_says_so(
    tmp_path: Path, lock_read_only: Callable[[Path], None]
) -> None:
    # A study copied to a read-only place was "not an Optuna storage (it has no Optuna tables)" for every
    # command (SQLite cannot open a WAL database there without writing beside it), and a journal there made
    # `optimize` end in a traceback from Optuna's lock file.
    read_only = tmp_path / "ro"
    read_only.mkdir()
    sqlite_url, journal_url = f"sqlite:///{read_only / 's.db'}", f"journal:{read_only / 's.log'}"
    for url in (sqlite_url, journal_url):
        optuna.create_study(study_name="s", storage=make_storage(url)).optimize(lambda t: 1.0, n_trials=1)
    from hpotool.sqlite_storage import _close_sqlite_storages

    _close_sqlite_storages()  # as the CLI does at exit: the WAL goes back into s.db
    for extra in read_only.glob("s.db-*"):
        extra.unlink()
    lock_read_only(read_only)
    with pytest.raises(HpoError) as caught:
        load_study("s", sqlite_url)
    assert str(caught.value).endswith(
        f"; this process cannot write to {str(read_only)!r}, and SQLite writes beside the file (its -wal and "
        f"-shm files) even to read a study: copy it to a folder you can write to and give that path"
    )
    assert load_study("s", journal_url).trials[0].value == 1.0  # reading a journal writes nothing
    with pytest.raises(
        HpoError,
        match=r"cannot run a study in it; this process cannot write to .*/ro', and a study run writes beside",
    ):
        make_storage(journal_url)
    with pytest.raises(HpoError, match=r"cannot write to .*': give a path in a folder you can write to$"):
        make_storage(f"sqlite:///{read_only / 'new' / 'n.db'}")


@pytest.fixture
def lock_file() -> Iterator[Callable[[Path], None]]:
    """Makes a file read-only: immutable as root, whom file modes do not stop; its mode otherwise."""
    locked: list[Path] = []

    def lock(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
            return
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.decode().strip()}")
        locked.append(path)

    yield lock
    for path in locked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_optimize_on_a_study_file_it_cannot_write_says_so(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], lock_file: Callable[[Path], None]
) -> None:
    # SQLite opens a file it cannot write read-only, and the first write failed "attempt to write a readonly
    # database", which optimize took for a storage that stopped answering: "Once it answers again, run the
    # same command to resume".
    from hpotool.plan import Overrides
    from hpotool.sqlite_storage import _close_sqlite_storages
    from hpotool.study_run import run_study

    opt_dict["n_trials"] = 1
    paths = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
    run_study(prepare_study(*paths))
    _close_sqlite_storages()
    db = Path(opt_dict["storage"].removeprefix("sqlite:///"))
    lock_file(db)
    with pytest.raises(HpoError) as caught:
        run_study(prepare_study(*paths, Overrides(n_trials=2)))
    assert str(caught.value) == (  # without the driver's "OperationalError: (sqlite3.OperationalError)"
        f"storage {opt_dict['storage']!r} cannot be written (attempt to write a readonly database); this "
        f"process cannot write to {str(db)!r}, and a study run writes to the file: copy it to a folder you can "
        f"write to and give that path"
    )
    assert load_study("tiny", opt_dict["storage"]).trials[0].state.name == "COMPLETE"  # it still reads


def test_a_relative_storage_that_cannot_be_written_is_named_by_its_absolute_path(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    lock_file: Callable[[Path], None],
    lock_read_only: Callable[[Path], None],
) -> None:
    # `--storage sqlite:///studies/tiny.db` in a place it cannot write: the message named 'studies/tiny.db'
    # (and a folder 'ro'), relative to wherever the command ran, which `ls -l` from elsewhere cannot find.
    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.sqlite_storage import _close_sqlite_storages

    opt_dict["n_trials"] = 1
    opt_dict["storage"] = "sqlite:///studies/tiny.db"  # the tests run in tmp_path
    paths = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "opt.yaml", opt_dict)
    assert (
        CliRunner().invoke(app, ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "-q"]).exit_code == 0
    )
    _close_sqlite_storages()
    (tmp_path / "ro").mkdir()
    shutil.copy(tmp_path / "studies" / "tiny.db", tmp_path / "ro" / "tiny.db")
    lock_file(tmp_path / "studies" / "tiny.db")
    lock_read_only(tmp_path / "ro")
    optimize = ["optimize", "-r", str(paths[0]), "-o", str(paths[1]), "--n-trials", "2"]
    for args, blocked in [
        (optimize, tmp_path / "studies" / "tiny.db"),
        (["trials", "--study-name", "tiny", "--storage", "sqlite:///ro/tiny.db"], tmp_path / "ro"),
    ]:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"; this process cannot write to {str(blocked)!r}, and " in result.stderr, result.stderr


def _first_beat_under_the_lock(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat thread of the trial that `LocksTheStudy` locks the SQLite file `db` under beats first
    once the lock is held, as on a loaded machine that starts the thread late: the beat is refused, and the
    trial has no heartbeat at all. It waits for the lock, or for the trial's end, then beats as usual."""
    from optuna.storages._heartbeat import HeartbeatThread

    from hpotool.lock_watch import write_locked

    beat = HeartbeatThread._record_heartbeat
    marker = Path(f"{db}.locked")  # made just before the lock is taken

    def late(trial_id: int, heartbeat: Any, stop_event: threading.Event) -> None:
        while not (marker.exists() and write_locked(db)) and not stop_event.wait(0.05):
            pass
        beat(trial_id, heartbeat, stop_event)

    monkeypatch.setattr(HeartbeatThread, "_record_heartbeat", staticmethod(late))


@pytest.mark.parametrize("first_beat", ["as-scheduled", "under-the-lock"])
def test_a_lock_another_process_takes_during_a_trial_leaves_it_running_and_says_so(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    first_beat: str,
) -> None:
    # Another process took a write lock on the study's file as a trial trained (a sqlite3 shell's `BEGIN
    # EXCLUSIVE;`) and held it past the busy timeout: the trial's next write failed, and the trial was told
    # FAIL (the lock gone by then) with Optuna's "StorageInternalError: ... invalid data in the commit, e.g.
    # exceeding max length" as its reason, blaming the data; its values never ran again. Now the run ends
    # in one line naming the file and the lock, the trial stays RUNNING, and the same command runs it again.
    from hpotool.study_run import run_study

    from .moving_storage import LOCK

    db = Path(opt_dict["storage"].removeprefix("sqlite:///"))
    monkeypatch.setenv("HPOTOOL_SQLITE_BUSY_TIMEOUT", "1")
    monkeypatch.setenv(LOCK, f"{db} 2")
    run = {**run_dict, "model": {"name": "tests.moving_storage:LocksTheStudy"}}
    opt = {
        **opt_dict,
        "n_trials": 1,
        "search_space": {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]},
    }
    paths = write_yaml(tmp_path / "run.yaml", run), write_yaml(tmp_path / "opt.yaml", opt)
    with pytest.MonkeyPatch.context() as late, pytest.raises(HpoError) as caught:
        if first_beat == "under-the-lock":  # the order a loaded machine may take: this test then waited
            _first_beat_under_the_lock(db, late)  # for good (the trial had no heartbeat to turn stale)
        run_study(prepare_study(*paths))
    where = str(db.resolve())
    assert str(caught.value) == (
        f"storage {opt['storage']!r}: another process kept {where!r} locked for over 1 s, so this command could not "
        f"write to it (database is locked). Wait for that process to finish, or end it or its open transaction "
        f"(a sqlite3 shell, a database browser; fuser {where} lists the processes that have the file open), then "
        f"run the same command to resume: it marks any trial left RUNNING FAIL ('worker died') and runs its "
        f"parameters again"
    )
    study = load_study("tiny", opt["storage"])
    [trial] = study.trials
    assert trial.state.name == "RUNNING" and "fail_reason" not in trial.user_attrs
    with contextlib.closing(sqlite3.connect(db)) as look:
        beats = look.execute("SELECT count(*) FROM trial_heartbeats").fetchone()[0]
    if first_beat == "under-the-lock":
        assert beats == 0  # the case this variant is for (the other order is the usual one, not a sure one)
    # The lock is gone: the next run fails the trial and runs its values again (a process that is gone would
    # be found at once, 'worker died'; this one lives on, so its trial's heartbeat goes stale first: an hour
    # old here, past the grace at once, where a 1 s grace waited out failed the retry's own heartbeat too
    # whenever a loaded machine delayed a beat).
    _beat_an_hour_ago(study, trial)
    run_study(prepare_study(*paths))
    first, retry = load_study("tiny", opt["storage"]).trials
    assert first.state.name == "FAIL" and first.user_attrs["fail_reason"].startswith("stale: no heartbeat")
    assert retry.state.name == "COMPLETE" and retry.params == first.params


def _study_with_a_dead_trial(url: str) -> None:
    """A study whose one RUNNING trial belongs to a process of this machine that is gone."""
    import sys

    from hpotool.owners import owner
    from hpotool.sqlite_storage import _close_sqlite_storages

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    trial = ask_with_heartbeat(study)
    trial.set_user_attr("worker", {**owner(), "pid": dead.pid})
    _close_sqlite_storages()


def test_fail_stale_on_a_study_it_cannot_write_says_so(
    tmp_path: Path, lock_file: Callable[[Path], None], lock_read_only: Callable[[Path], None]
) -> None:
    # It read the study and found the dead trial, then ended in a traceback when marking it: Optuna's
    # "invalid data in the commit, e.g. exceeding max length" for a read-only SQLite file, an OSError from
    # the journal's lock file in a read-only folder.
    from typer.testing import CliRunner

    from hpotool.cli import app

    db, journal = tmp_path / "s.db", tmp_path / "ro" / "s.log"
    journal.parent.mkdir()
    _study_with_a_dead_trial(f"sqlite:///{db}")
    _study_with_a_dead_trial(f"journal:{journal}")
    lock_file(db)
    lock_read_only(journal.parent)
    for url, blocked, what in [
        (f"sqlite:///{db}", db, "a study run writes to the file"),
        (f"journal:{journal}", journal.parent, "a study run writes beside the file (its lock file)"),
    ]:
        result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
        assert result.exit_code == 2, result.output
        line = result.stderr.strip()
        assert line.startswith(f"error: storage {url!r} cannot be written (") and "\n" not in line, line
        assert line.endswith(
            f"; this process cannot write to {str(blocked)!r}, and {what}: copy it to a folder you can write "
            f"to and give that path"
        ), line
        assert load_study("s", url).trials[0].state.name == "RUNNING"  # nothing half-written


def _dead_trial_file_of_short_patience(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """The SQLite file `s.db` under `tmp_path` and its URL, holding `_study_with_a_dead_trial`, with a busy
    timeout of 1 s for the lock tests (60 s by default)."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    _study_with_a_dead_trial(url)
    monkeypatch.setenv("HPOTOOL_SQLITE_BUSY_TIMEOUT", "1")
    return db, url


def test_fail_stale_on_a_study_another_process_keeps_locked_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `fail-stale` read the study, found the dead trial and ended in a traceback (Optuna's "invalid data in
    # the commit, e.g. exceeding max length") when a sqlite3 shell held the file in `BEGIN EXCLUSIVE;`.
    from typer.testing import CliRunner

    from hpotool.cli import app

    db, url = _dead_trial_file_of_short_patience(tmp_path, monkeypatch)
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        result = CliRunner().invoke(app, ["fail-stale", "--study-name", "s", "--storage", url])
    finally:
        lock.close()
    assert result.exit_code == 2, result.output
    where = str(db.resolve())
    assert result.stderr == (
        f"error: storage {url!r}: another process kept {where!r} locked for over 1 s, so this command could not "
        f"write to it (database is locked). Wait for that process to finish, or end it or its open transaction "
        f"(a sqlite3 shell, a database browser; fuser {where} lists the processes that have the file open), "
        f"then run the same command again\n"
    )
    assert load_study("s", url).trials[0].state.name == "RUNNING"  # nothing half-written


@contextlib.contextmanager
def _held_exclusively(db: Path) -> Iterator[None]:
    """`db` held as a sqlite3 shell's `PRAGMA locking_mode=EXCLUSIVE;` and a write hold it: readers kept out too."""
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        lock.execute("PRAGMA locking_mode=EXCLUSIVE")
        lock.execute("BEGIN EXCLUSIVE")
        lock.execute("UPDATE version_info SET schema_version = schema_version")
        lock.execute("COMMIT")  # the lock kept after the write: the connection's locking mode
        yield
    finally:
        lock.close()


def test_a_sqlite_file_held_past_the_busy_timeout_is_opened_once_not_six_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "database is locked" as the tables are created is retried as a race lost to another process turning a
    # new file to WAL, which fails at once. A lock that outlasted the busy timeout is a process holding the
    # file: each of the 6 attempts waited the busy timeout (60 s by default) before the one-line error.
    import functools

    import sqlalchemy.exc

    from hpotool.rdb_storage import created_rdb_storage
    from hpotool.sqlite_files import connect_sqlite

    db, url = _dead_trial_file_of_short_patience(tmp_path, monkeypatch)
    opened: list[str] = []

    def counted(path: str) -> Any:
        opened.append(path)
        return connect_sqlite(path)

    with _held_exclusively(db), pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"):
        created_rdb_storage(url, {"creator": functools.partial(counted, str(db))})
    assert opened == [str(db)]


def test_a_sqlite_write_refused_at_once_by_this_process_own_read_blames_no_other_process(
    tmp_path: Path,
) -> None:
    # SQLite refuses at once, without the busy timeout, a write on a connection whose read began before
    # another connection's write (WAL's snapshot conflict): a read of the run's own left open as Ctrl-C cut it
    # short, then a write of its own. The line said "another process kept ... locked for over 60 s" of a
    # process alone on the file, whose error came in milliseconds. Made deterministic: both connections are
    # the storage's own, the read held open by the test.
    import functools

    import sqlalchemy.exc

    from hpotool.rdb_storage import created_rdb_storage
    from hpotool.sqlite_files import connect_sqlite
    from hpotool.storage_faults import storage_lost

    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    storage = created_rdb_storage(url, {"creator": functools.partial(connect_sqlite, str(db))})
    study = optuna.create_study(storage=storage, study_name="s")
    for _ in range(3):
        study.enqueue_trial({})
    engine = storage._backend.engine  # type: ignore[attr-defined]
    with engine.connect() as reading:
        rows = reading.exec_driver_sql("SELECT trial_id FROM trials")
        rows.cursor.fetchone()  # the read, halfway through its rows, holds its snapshot
        with engine.begin() as other:
            other.exec_driver_sql("UPDATE studies SET study_name = 't'")
        with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked") as refused:
            reading.exec_driver_sql("UPDATE studies SET study_name = 's'")
        rows.close()
    where = str(db.resolve())
    said = str(storage_lost(url, refused.value))
    assert "another process" not in said, said
    assert re.fullmatch(
        rf"storage {re.escape(repr(url))}: SQLite refused a write to {re.escape(repr(where))} after \d+\.\d s, "
        r"without waiting for a lock \(database is locked: a connection still reading the file cannot write once "
        r"another connection has written to it or holds its write lock\), so this command could not write to "
        r"it\. No process need be holding the file; then run the same command to resume: it marks any trial left RUNNING FAIL "
        r"\('worker died'\) and runs its parameters again",
        said,
    ), said


@pytest.mark.parametrize(
    "command",
    [["trials"], ["export-best", "--out", "best"], ["fail-stale", "--all-running"], ["prune-audit"]],
)
def test_a_sqlite_study_another_process_holds_exclusively_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    # A sqlite3 shell's `PRAGMA locking_mode=EXCLUSIVE;` and a write keep every other connection out, readers
    # too: `trials`, `export-best` and the rest said "cannot open it: (sqlite3.OperationalError) database is
    # locked", the driver's class names and not the file, the lock or what to do.
    from typer.testing import CliRunner

    from hpotool.cli import app

    db, url = _dead_trial_file_of_short_patience(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    with _held_exclusively(db):
        result = CliRunner().invoke(app, [command[0], "--study-name", "s", "--storage", url, *command[1:]])
    assert result.exit_code == 2, result.output
    where = str(db.resolve())
    assert result.stderr == (
        f"error: storage {url!r}: another process kept {where!r} locked for over 1 s, so this command could not "
        f"open it (database is locked). Wait for that process to finish, or end it or its open transaction (a "
        f"sqlite3 shell, a database browser; fuser {where} lists the processes that have the file open), then "
        f"run the same command again\n"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "studies/x.db",
            "is not a storage URL; for the SQLite file studies/x.db, write sqlite:///studies/x.db",
        ),
        ("postgres", "is not a storage URL; use sqlite:///path.db"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot open it"),
        ("redis://127.0.0.1:1", "cannot open it"),
        ("nosuchdialect://x", r"no database or driver 'nosuchdialect'; use sqlite:///path\.db"),
        # SQLAlchemy dropped the postgres:// spelling Heroku and many guides use; a misspelt name or driver
        (
            "postgres://u@127.0.0.1/x",
            r"no database or driver 'postgres' \(did you mean 'postgresql\+psycopg'\?\)",
        ),
        ("sqllite:///x.db", r"no database or driver 'sqllite' \(did you mean 'sqlite'\?\)"),
        # a slash short of a file: SQLAlchemy refuses these (or would read a host), none is in memory
        (
            "sqlite://studies/x.db",
            r"^storage 'sqlite://studies/x\.db' is not a SQLite file URL: write three slashes before a relative "
            r"path \(sqlite:///studies/x\.db\) or four before an absolute one \(sqlite:////studies/x\.db\)$",
        ),
        (
            "sqlite:/tmp/x.db",
            r"not a SQLite file URL: .* \(sqlite:///tmp/x\.db\) .* \(sqlite:////tmp/x\.db\)$",
        ),
        ("sqlite:///:memory:", r"is an in-memory SQLite database"),
        ("mysql+pymsql://u@127.0.0.1/x", r"'mysql\+pymsql' \(did you mean 'mysql\+pymysql'\?\)"),
        # SQLAlchemy's default MySQL driver (MySQLdb) is not the one hpotool[mysql] installs
        (
            "mysql://root@127.0.0.1:1/x",
            r"a driver is missing .*; name the driver hpotool\[mysql\] installs: mysql\+pymysql://",
        ),
        # what to do: the server refused to connect, or it is there and the database or user is not
        (
            "redis://127.0.0.1:1",
            r"Connection refused; is the server running on 127\.0\.0\.1:1\? check the host and port in the URL$",
        ),
        ("postgresql+psycopg://nobody@nohost.invalid:1/x", r"is the server running on nohost\.invalid:1\?"),
        # a database name after the port, as PostgreSQL's URL takes one: Redis's client ignored it, and the
        # study went into database 0 with every other unprefixed journal there, without a word
        (
            "redis://127.0.0.1:1/hpo",
            r"^storage 'redis://127\.0\.0\.1:1/hpo': a Redis URL's path is a database number \(0, 1, \.\.\.\), "
            r"not a name; to keep this study's journal apart write redis://127\.0\.0\.1:1\?prefix=hpo$",
        ),
        (
            "redis://127.0.0.1:1/hpo?prefix=mine",
            r"database number \(0, 1, \.\.\.\), not a name; write redis://127\.0\.0\.1:1\?prefix=mine$",
        ),
    ],
)
def test_bad_storage_urls(url: str, message: str) -> None:
    with pytest.raises(HpoError, match=message):
        make_storage(url)


@pytest.mark.parametrize(
    ("kind", "url", "message"),
    [
        (
            "postgres",
            "postgresql+psycopg://postgres@127.0.0.1:5432/hpotool_no_such_db",
            r"does not exist; create the database first: createdb -h 127\.0\.0\.1 -p 5432 -U postgres "
            r"hpotool_no_such_db$",
        ),
        (
            "postgres",
            "postgresql+psycopg://hpotool_no_such_user@127.0.0.1:5432/test",
            r"check the user name and password in the URL \(or in ~/\.pgpass, PGPASSWORD\)$",
        ),
        (
            "mysql",
            "mysql+pymysql://root@127.0.0.1:3306/hpotool_no_such_db",
            r"cannot open it: Unknown database 'hpotool_no_such_db'; create the database first: mysql -h 127\.0\.0\.1 -P 3306 "
            r"-u root -e 'CREATE DATABASE hpotool_no_such_db'$",
        ),
        (
            "redis",
            "redis://127.0.0.1:6379/99",
            r"Redis numbers its databases from 0 .*: redis://host:6379/0$",
        ),
    ],
)
def test_a_server_that_refuses_a_storage_url_says_what_to_fix(kind: str, url: str, message: str) -> None:
    from tests.test_workers import _server_url

    _server_url(kind)  # skips where the server is absent
    with pytest.raises(HpoError, match=message):
        make_storage(url)


_REFUSED = '"127.0.0.1", port 1 failed: Connection refused'


@pytest.mark.parametrize(
    ("kind", "url", "said"),
    [
        (
            "postgres",
            "postgresql+psycopg://nobody@127.0.0.1:1/test",
            f"connection failed: connection to server at {_REFUSED}; is the server running on 127.0.0.1:1? check "
            f"the host and port in the URL",
        ),
        (
            "mysql",
            "mysql+pymysql://root@127.0.0.1:1/test",
            "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused); is the server "
            "running on 127.0.0.1:1? check the host and port in the URL",
        ),
        (
            "postgres",
            "postgresql+psycopg://hpotool_no_such_user:s3cret@127.0.0.1:5432/test",
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL: role '
            '"hpotool_no_such_user" does not exist; check the user name and password in the URL (or in '
            "~/.pgpass, PGPASSWORD)",
        ),
        (
            "mysql",
            "mysql+pymysql://hpotool_no_such_user:s3cret@127.0.0.1:3306/test",
            "Access denied for user 'hpotool_no_such_user'@'127.0.0.1' (using password: YES); check the user "
            "name and password in the URL",
        ),
        (
            "postgres",
            "postgresql+psycopg://postgres@127.0.0.1:5432/hpotool_no_such_db",
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL: database '
            '"hpotool_no_such_db" does not exist; create the database first: createdb -h 127.0.0.1 -p 5432 '
            "-U postgres hpotool_no_such_db",
        ),
        (
            "mysql",
            "mysql+pymysql://root@127.0.0.1:3306/hpotool_no_such_db",
            "Unknown database 'hpotool_no_such_db'; create the database first: mysql -h 127.0.0.1 -P 3306 -u "
            "root -e 'CREATE DATABASE hpotool_no_such_db'",
        ),
    ],
)
@pytest.mark.parametrize("command", ["studies", "trials", "optimize"])
def test_a_server_that_cannot_be_opened_is_said_without_the_drivers_class_names(
    tmp_path: Path, configs: tuple[Path, Path], kind: str, url: str, said: str, command: str
) -> None:
    # A closed port, a user the server does not know, a database it does not have: each said
    # "(psycopg.OperationalError) connection failed: ..." or "(pymysql.err.OperationalError) (1049, \"Unknown
    # database ...\")", the drivers' class names and error tuple around the server's own words.
    from typer.testing import CliRunner

    from hpotool.cli import app
    from tests.test_workers import _server_url

    _server_url(kind)  # skips where the server is absent: the line is the driver's and the server's
    args = {
        "studies": ["studies"],
        "trials": ["trials", "--study-name", "tiny"],
        "optimize": ["optimize", "-r", str(configs[0]), "-o", str(configs[1]), "--n-trials", "1"],
    }[command]
    result = CliRunner().invoke(app, [*args, "--storage", url])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"error: --storage: {url.replace(':s3cret@', ':***@')!r}: cannot open it: {said}\n"
    )


def test_rediss_against_a_redis_without_tls_names_tls() -> None:
    # The TLS handshake with a plain-text Redis times out; "is the server running" sent users the wrong way.
    from tests.test_workers import _server_url

    _server_url("redis")  # skips where the server is absent
    with pytest.raises(HpoError) as caught:
        make_storage("rediss://127.0.0.1:6379")
    assert str(caught.value) == (
        "storage 'rediss://127.0.0.1:6379': cannot open it: Timeout connecting to server; rediss:// connects "
        "with TLS: if the Redis on 127.0.0.1:6379 does not take TLS connections, use redis://127.0.0.1:6379; "
        "otherwise is the server running there? check the host and port in the URL"
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers (another service there, a stuck server or proxy)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize(
    ("scheme", "error"),
    [
        (
            "postgresql+psycopg://postgres",
            r"no answer in 2 s \(hpotool's limit; \?connect_timeout=N in the URL sets another\)",
        ),
        ("mysql+pymysql://root", r"Lost connection to MySQL server during query \(timed out\)"),
    ],
)
@pytest.mark.parametrize("command", ["trials", "optimize"])
def test_a_server_port_that_never_answers_ends_the_command(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    silent_port: int,
    scheme: str,
    error: str,
    command: str,
) -> None:
    # Both drivers waited for such a server's first reply without a limit: the command hung for good. The
    # command's own limit, CONNECT_TIMEOUT_S, is 2 s here rather than 10 (the URL sets none: hpotool's limit
    # is what ends the wait; its default value is checked below); a hang still fails after 60 s.
    url = f"{scheme}@127.0.0.1:{silent_port}/test"
    args = [command, "--study-name", "tiny", "--storage", url]
    if command == "optimize":
        args += ["-r", str(write_yaml(tmp_path / "run.yaml", run_dict))]
        args += ["-o", str(write_yaml(tmp_path / "optimize.yaml", opt_dict))]
    proc = _hpotool(
        args, tmp_path, before="import hpotool.rdb_storage\nhpotool.rdb_storage.CONNECT_TIMEOUT_S = 2"
    )
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 2, output
    assert re.fullmatch(
        f"error: --storage: '{re.escape(url)}': cannot open it: {error}; is the server running on "
        f"127\\.0\\.0\\.1:{silent_port}\\? check the host and port in the URL\n",
        output,
    ), output


@pytest.mark.parametrize(
    ("hosts", "said"),
    [
        (1, "no answer in 2 s (the URL's connect_timeout=2)"),
        (
            2,
            "no answer in 2 s from any of the 2 addresses tried, 4 s in all (the URL's connect_timeout=2, which "
            "libpq gives each address of each host)",
        ),
    ],
)
def test_a_postgresql_urls_connect_timeout_is_one_try_at_each_address_and_the_line_says_the_wait(
    hosts: int, said: str
) -> None:
    """A user's `?connect_timeout=2` to a server that never answered gave up after 4.2 s and said only
    "connection timeout expired", read as hpotool trying twice. It tries once at each address (the rest was
    the command's start); libpq's connect_timeout is each address's own limit, so a URL of two hosts (or a
    host name of two addresses) waits twice as long: the line now says the wait and why. The tries are
    counted as the connections the never-answering port has taken, not timed."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))  # takes connections, never accepts or answers them
    port = listener.getsockname()[1]
    where = ", ".join([f"127.0.0.1:{port}"] * hosts)
    url = (
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2"
        if hosts == 1
        else f"postgresql+psycopg://postgres@/test?{'&'.join([f'host=127.0.0.1:{port}'] * hosts)}&connect_timeout=2"
    )
    try:
        with pytest.raises(HpoError) as caught:
            make_storage(url, create=False)
        listener.setblocking(False)
        taken = []
        with contextlib.suppress(BlockingIOError):
            while True:
                taken.append(listener.accept()[0])
    finally:
        listener.close()
    for conn in taken:
        conn.close()
    assert len(taken) == hosts
    assert str(caught.value) == (
        f"storage {url!r}: cannot open it: {said}; is the server running on {where}? check the host and port "
        "in the URL"
    )


def test_a_server_url_that_sets_no_limit_waits_10_s_to_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default limit the test above lowers: 10 s for both drivers' whole opening (PyMySQL's greeting too).
    from hpotool import silence
    from hpotool.rdb_storage import server_connect_kwargs

    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)  # a limit of the environment's own
    creator = server_connect_kwargs("postgresql+psycopg://postgres@127.0.0.1:1/test")["creator"]
    assert creator.args[1]["connect_timeout"] == 10
    seen: dict[str, Any] = {}
    monkeypatch.setattr(silence, "pymysql_connection", lambda *args, **kwargs: seen.update(kwargs))
    server_connect_kwargs("mysql+pymysql://root@127.0.0.1:1/test")["creator"]()
    assert seen == {"greeting_timeout": 10}


def test_a_mysql_connection_keeps_no_read_timeout_once_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # The greeting is read with a timeout; a query after it (one waiting for a lock) may take longer.
    from hpotool import rdb_storage
    from tests.test_workers import _server_url

    url = _server_url("mysql")  # skips where the server is absent
    monkeypatch.setattr(rdb_storage, "CONNECT_TIMEOUT_S", 1)
    engine = sqlalchemy.create_engine(url, **rdb_storage.server_connect_kwargs(url))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT SLEEP(2)")).scalar() == 0
    finally:
        engine.dispose()


def test_a_mysql_urls_connect_timeout_bounds_its_greeting_too(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyMySQL's connect_timeout covers the TCP connection alone, and hpotool read the greeting with its own
    # limit (CONNECT_TIMEOUT_S, 10 s): a URL's connect_timeout=1 still waited 10 s for a silent server, and
    # as long again for each new connection SQLAlchemy opened after a server went silent mid-study.
    # The limits the connection's socket is given once connected are read, not the seconds it took.
    import socket

    from hpotool import rdb_storage

    monkeypatch.setattr(rdb_storage, "CONNECT_TIMEOUT_S", 7)  # hpotool's own, a number no other limit is
    url = f"mysql+pymysql://root@127.0.0.1:{silent_port}/test?connect_timeout=1"
    engine = sqlalchemy.create_engine(url, **rdb_storage.server_connect_kwargs(url))
    limits: list[float | None] = []  # each timeout set on the socket connected to the silent server
    settimeout = socket.socket.settimeout

    def noted(sock: socket.socket, seconds: float | None) -> None:
        with contextlib.suppress(OSError):  # not connected (yet): not the greeting's read
            if sock.getpeername()[1] == silent_port:
                limits.append(seconds)
        settimeout(sock, seconds)

    monkeypatch.setattr(socket.socket, "settimeout", noted)
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="timed out"):
            engine.connect()
    finally:
        engine.dispose()
    assert 1 in limits and 7 not in limits, limits  # the greeting read for 1 s; before: for 7 (10 s)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_study_file_alone_holds_every_trial_after_optimize(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], workers: int
) -> None:
    # Users copy "the one file" studies/NAME.db: the WAL must be written back into it when hpotool exits.
    del opt_dict["storage"]  # the default, studies/tiny.db
    args = ["optimize", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict))]
    args += ["-o", str(write_yaml(tmp_path / "optimize.yaml", opt_dict)), "-q", "--workers", str(workers)]
    proc = _hpotool(args, tmp_path)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        _kill_session(proc)  # a command that did not end in time, and its workers, are not left running
    assert proc.returncode == 0, output
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "studies" / "tiny.db", tmp_path / "copy" / "tiny.db")  # not -wal, not -shm
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'copy' / 'tiny.db'}")
    assert len([t for t in study.trials if t.state.is_finished()]) == 3


def _tables_of(url: str) -> set[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sqlalchemy.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_read_commands_refuse_a_database_that_is_not_an_optuna_storage_and_write_nothing(
    kind: str, tmp_path: Path
) -> None:
    import uuid

    import sqlalchemy
    from typer.testing import CliRunner

    from hpotool.cli import app

    from .test_workers import _server_url

    if kind == "sqlite":
        url, server, db = f"sqlite:///{tmp_path / 'notes.db'}", None, ""
    else:  # a database of its own on the server, holding one table of someone else's
        server, db = _server_url(kind), f"hpotool_notes_{uuid.uuid4().hex[:8]}"
        with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {db}")
        url = server.rsplit("/", 1)[0] + f"/{db}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (t VARCHAR(10))")
    engine.dispose()
    try:
        for args in (["trials", "--study-name", "x"], ["studies"], ["export-best", "--study-name", "x"]):
            result = CliRunner().invoke(app, [*args, "--storage", url])
            assert result.exit_code == 2, result.output
            assert result.stderr == (
                f"error: --storage: {url!r} is not an Optuna storage (it has no Optuna tables), so it holds no "
                f"study; give the storage URL hpotool optimize wrote to (nothing was written to this one)\n"
            )
        assert _tables_of(url) == {"notes"}
    finally:
        if server is not None:
            with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {db}")


@pytest.mark.parametrize("text", ["hello world\n", "\n\nnotes\n", '["a list"]\n', '{"a": 1}\n'])
def test_a_journal_path_that_is_some_other_file_is_refused_by_every_command_and_left_as_it_was(
    text: str, tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    path = tmp_path / "notes.log"
    path.write_text(text)
    url = f"journal:{path}"
    run = write_yaml(tmp_path / "run.yaml", run_dict)
    opt = write_yaml(tmp_path / "optimize.yaml", opt_dict)
    for args in (
        ["optimize", "-r", str(run), "-o", str(opt), "-q"],
        ["trials", "--study-name", "tiny"],
        ["studies"],
    ):
        result = CliRunner().invoke(app, [*args, "--storage", url])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: --storage: {url!r}: {str(path)!r} is not an Optuna journal file (its first line is not a "
            f"journal record); give the journal hpotool optimize wrote to, or a new file name (nothing was "
            f"written to this one)\n"
        )
    assert path.read_text() == text


def test_an_empty_journal_file_is_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "new.log"
    path.write_text("")
    study = optuna.create_study(study_name="j", storage=make_storage(f"journal:{path}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert '"op_code"' in path.read_text().splitlines()[0]


def test_optimize_refuses_a_sqlite_file_that_holds_something_else_and_writes_nothing(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    notes, text, empty = tmp_path / "notes.db", tmp_path / "notes.txt", tmp_path / "empty.db"
    with sqlite3.connect(notes) as conn:
        conn.executescript("CREATE TABLE notes (t TEXT); CREATE TABLE tags (t TEXT)")
    text.write_text("not a database\n")
    empty.write_bytes(b"")
    args = ["optimize", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict))]
    args += ["-o", str(write_yaml(tmp_path / "optimize.yaml", opt_dict)), "-q", "--n-trials", "1"]
    for path, what in (
        (notes, "holds other tables (notes, tags) and no Optuna study"),
        (text, "is not a SQLite database"),
    ):
        before = path.read_bytes()
        result = CliRunner().invoke(app, [*args, "--storage", f"sqlite:///{path}"])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: --storage: 'sqlite:///{path}': {str(path)!r} {what}; hpotool would add Optuna's tables to it, "
            f"so give a new file or one hpotool wrote (nothing was written to this one)\n"
        )
        assert path.read_bytes() == before
    # An empty file, and the study file once written, take a study.
    assert CliRunner().invoke(app, [*args, "--storage", f"sqlite:///{empty}"]).exit_code == 0
    assert (
        CliRunner().invoke(app, [*args, "--storage", f"sqlite:///{empty}", "--n-trials", "2"]).exit_code == 0
    )
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{empty}").trials) == 2


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_workers_started_together_on_a_new_database_all_open_it(kind: str, tmp_path: Path) -> None:
    # The same command started several times at once on a new SQLite file, or on several machines against
    # a database just made with createdb: every process creates Optuna's tables, and all but one used to
    # lose the race with "table ... already exists", "UNIQUE constraint failed: alembic_version" (SQLite),
    # "duplicate key value violates unique constraint" (PostgreSQL) or "Table ... already exists" (MySQL).
    import multiprocessing
    import uuid

    import sqlalchemy

    from .test_workers import _server_url

    server = None if kind == "sqlite" else _server_url(kind)
    # spawn, not fork: the test process runs threads by now (those of the tests before), and a fork there may
    # deadlock the child on a lock a thread held (Python 3.12 warns: "This process ... is multi-threaded, use
    # of fork() may lead to deadlocks in the child", 48 DeprecationWarnings in a run of this file). A spawned
    # process imports only tests/storage_race.py and hpotool.storage, not this file.
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(4):
        db = f"hpotool_race_{uuid.uuid4().hex[:8]}"
        if server is None:
            url = f"sqlite:///{tmp_path / str(attempt) / 'new.db'}"
        else:
            with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {db}")
            url = server.rsplit("/", 1)[0] + f"/{db}"
        try:
            barrier, results = ctx.Barrier(4), ctx.Queue()
            # daemons: any left once the test has failed are killed, not waited for at pytest's exit
            procs = [
                ctx.Process(target=open_after, args=(barrier, url, results), daemon=True) for _ in range(4)
            ]
            for proc in procs:
                proc.start()
            try:
                outcomes = [results.get(timeout=180) for _ in procs]
                for proc in procs:
                    proc.join(timeout=60)
                assert [proc.exitcode for proc in procs] == [0] * 4
            finally:
                for proc in procs:
                    if proc.is_alive():
                        proc.kill()
                        proc.join()
            assert outcomes == ["ok"] * 4
            assert _tables_of(url) >= {"studies", "trials", "version_info", "alembic_version"}
        finally:
            if server is not None:
                with sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE {db}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://me:s3cret@db/hpo", "postgresql+psycopg://me:***@db/hpo"),
        (
            "mysql+pymysql://root:p%40ss@db:3306/hpo?charset=utf8",
            "mysql+pymysql://root:***@db:3306/hpo?charset=utf8",
        ),
        ("redis://:s3cret@cache:6379?prefix=x", "redis://:***@cache:6379?prefix=x"),
        ("postgresql+psycopg://me@db/hpo", "postgresql+psycopg://me@db/hpo"),
        ("sqlite:///studies/s.db", "sqlite:///studies/s.db"),
        ("journal:studies/s.log", "journal:studies/s.log"),
    ],
)
def test_a_password_in_a_storage_url_is_shown_as_stars(url: str, shown: str) -> None:
    from hpotool.storage_url import shown_url

    assert shown_url(url) == shown


def test_a_storage_password_stays_out_of_output_exports_and_reports(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `--storage postgresql+psycopg://user:PASSWORD@host/db` printed the password in the summary, `studies`
    # and error lines, and wrote it into best_params.json and the report, files people share.
    import uuid

    from typer.testing import CliRunner

    from hpotool.cli import app

    from .test_workers import _server_url

    server = _server_url("postgres")  # trust authentication: any password is accepted
    url = server.replace("postgres@", "postgres:s3cret@", 1)
    assert "s3cret" in url
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    args = ["optimize", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict))]
    args += ["-o", str(write_yaml(tmp_path / "optimize.yaml", {**opt_dict, "study_name": name}))]
    runner = CliRunner()
    try:
        outputs = [
            runner.invoke(app, [*args, "--storage", url, "-q", "--n-trials", "2"]),
            runner.invoke(app, [*args, "--storage", url, "--json", "--n-trials", "3"]),
            runner.invoke(app, ["export-best", "--study-name", name, "--storage", url, "--out", "exported"]),
            runner.invoke(app, ["report", "--study-name", name, "--storage", url, "--out", "report.html"]),
            runner.invoke(app, ["report", "--study-name", name, "--storage", url, "--out", "report.json"]),
            runner.invoke(app, ["studies", "--storage", url]),
            runner.invoke(app, ["studies", "--storage", url, "--json"]),
            runner.invoke(app, ["trials", "--study-name", "nosuch", "--storage", url]),
            runner.invoke(app, ["refine", "--study-name", name, "--storage", url, "--out", "stage2.yaml"]),
        ]
        assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 0, 0, 0, 2, 0], [r.output for r in outputs]
        # the configs stored on the study, which everyone it is shared with reads (optuna-dashboard, a copy)
        stored = optuna.load_study(study_name=name, storage=make_storage(server)).user_attrs
        assert "s3cret" not in json.dumps(stored) and "postgres:***@" in stored["optimize_config"]["storage"]
        # the next stage's config, written for the user, still reaches the study's storage
        assert yaml.safe_load((tmp_path / "stage2.yaml").read_text())["storage"] == url
        for result in outputs:
            assert "s3cret" not in result.output
        assert "postgres:***@" in outputs[0].output and "postgres:***@" in outputs[7].stderr
        written = [*(tmp_path / "exported").iterdir(), tmp_path / "report.html", tmp_path / "report.json"]
        assert len(written) == 6
        for path in written:
            assert "s3cret" not in path.read_text(), path
        assert json.loads((tmp_path / "exported" / "best_params.json").read_text())["storage"] == url.replace(
            "s3cret", "***"
        )
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(server))


def test_a_study_whose_creation_fails_half_way_is_not_left_behind(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The storage failing after Optuna's create_study and before hpotool stored the configs and fingerprint
    # (a server going away) left a study without them, which the next run took for a plain Optuna study.
    from hpotool import study as study_module

    def failing() -> dict[str, str]:
        raise RuntimeError("server closed the connection unexpectedly")

    plan = prepare_study(
        write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
    )
    monkeypatch.setattr(study_module, "versions", failing)
    with pytest.raises(RuntimeError, match="server closed"):
        study_module.open_study(plan)
    assert opt_dict["study_name"] not in optuna.get_all_study_names(storage=opt_dict["storage"])


def test_a_process_joining_a_study_its_creator_deleted_says_so(tmp_path: Path) -> None:
    # The creator failed part-way and deleted the study while another process waited for its fingerprint:
    # that one died with KeyError: 'Record does not exist.'
    from hpotool.study import _wait_for_creator

    storage = make_storage(f"sqlite:///{tmp_path / 'j.db'}")
    study = optuna.create_study(study_name="joined", storage=storage)
    optuna.delete_study(study_name="joined", storage=storage)
    with pytest.raises(HpoError, match="the process creating it failed before it was ready, and deleted it"):
        _wait_for_creator(study, joined=True)


def test_a_command_does_not_blame_a_server_an_earlier_command_of_the_process_opened() -> None:
    # The servers opened were kept for the whole process: in the tests (or a notebook driving the CLI), a
    # later command's SQLite "database is locked" was reported as that server having stopped answering.
    import sqlalchemy.exc

    from hpotool import storage_faults
    from hpotool.cli.root import user_errors

    storage_faults.OPENED_SERVERS.append("postgresql+psycopg://u@127.0.0.1:5432/test")  # an earlier command's
    locked = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))
    with pytest.raises(sqlalchemy.exc.OperationalError), user_errors():
        raise locked


def test_a_redis_study_looked_for_under_another_prefix_names_the_one_it_is_under() -> None:
    # `--storage redis://host:6379` for a study kept under ?prefix=NAME said "studies there: none", as if
    # the server were empty.
    import uuid

    import redis

    from .test_workers import _server_url

    server = _server_url("redis")
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(f"{server}?prefix={prefix}"))
        with pytest.raises(HpoError) as caught:
            load_study(prefix, f"{server}?prefix={prefix}-typo")
        assert str(caught.value) == (
            f"no study {prefix!r} in {server}?prefix={prefix}-typo; studies there: none; it is under another prefix: "
            f"give --storage '{server}?prefix={prefix}'"  # quoted: a shell globs the "?"
        )
    finally:
        client = redis.Redis.from_url(server)
        delete_redis_keys(client, f"{prefix}*")


def test_a_redis_study_looked_for_in_another_database_names_the_one_it_is_in(
    two_redis_databases: tuple[str, int, int],
) -> None:
    # `redis://host:6379/12?prefix=p` for a study kept under ?prefix=p in database 11 said "studies there:
    # none": the hint looked only at the other prefixes of database 12.
    import uuid

    import redis

    server, a, b = two_redis_databases  # two databases of its own
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    there, here = f"{server}/{a}?prefix={prefix}", f"{server}/{b}?prefix={prefix}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(there))
        with pytest.raises(HpoError) as caught:
            load_study(prefix, here)
        assert str(caught.value) == (
            f"no study {prefix!r} in {here}; studies there: none; it is in another database of the server: "
            f"give --storage '{there}'"
        )
        with pytest.raises(HpoError) as caught:  # a study of another name: no hint
            load_study(f"{prefix}-other", here)
        assert str(caught.value).endswith("studies there: none")
    finally:
        for db in (a, b):
            client = redis.Redis.from_url(f"{server}/{db}")
            delete_redis_keys(client, f"{prefix}*")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:6379/2?prefix=p", "redis://h:6379/9?prefix=p"),
        ("redis://h:6379?prefix=p", "redis://h:6379/9?prefix=p"),
        ("redis:///0", "redis:///9"),
        # a ?db= wins over the path for redis-py, the first of several: the one replaced
        ("redis://h:6379/2?db=5&prefix=p&db=7", "redis://h:6379/2?db=9&prefix=p"),
        # a socket's URL gives its database only as ?db=: the path is the socket
        ("unix:///run/redis.sock?prefix=p", "unix:///run/redis.sock?prefix=p&db=9"),
        ("unix:///run/redis.sock?db=3&prefix=p", "unix:///run/redis.sock?db=9&prefix=p"),
        ("unix://:pw@/run/redis.sock", "unix://:pw@/run/redis.sock?db=9"),
    ],
)
def test_a_redis_url_is_given_another_database_where_redis_py_reads_it(url: str, expected: str) -> None:
    from redis.connection import parse_url

    from hpotool.storage_url import redis_url_with_db

    assert redis_url_with_db(url, 9) == expected
    given, moved = parse_url(url), parse_url(expected)
    assert moved.pop("db") == 9
    given.pop("db", None)
    assert moved == given  # the same server (host, port or socket path), password and prefix


@pytest.mark.parametrize("form", ["query", "unix"])
def test_a_redis_study_in_another_database_is_found_from_a_db_query_or_a_socket_url(
    form: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # `redis://host:6379?db=12&prefix=p` for a study in database 11 said "studies there: none", where
    # `redis://host:6379/12?prefix=p` named database 11: each other database was read as `?db=12` still (the
    # query wins over the path the search replaced), and a `unix://` socket's URL was not searched at all.
    import uuid

    import redis

    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    server: subprocess.Popen[bytes] | None = None
    a, b = 11, 12  # on a server of the test's own, every database is free
    if form == "query":  # on the shared one, two databases of its own
        base, a, b = request.getfixturevalue("two_redis_databases")
    else:  # a server of this test's own on a socket: the shared one listens on TCP alone
        if shutil.which("redis-server") is None:
            pytest.skip("no redis-server to listen on a unix socket")
        socket = tmp_path / "redis.sock"
        server = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"unix://{socket}"
        while True:  # until it answers, or has died
            assert server.poll() is None, "redis-server on a socket did not start"
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if socket.exists() and redis.Redis.from_url(base).ping():
                    break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.05)
    joiner = "&" if "?" in base else "?"
    there, here = f"{base}{joiner}db={a}&prefix={prefix}", f"{base}{joiner}db={b}&prefix={prefix}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(there))
        with pytest.raises(HpoError) as caught:
            load_study(prefix, here)
        assert str(caught.value) == (
            f"no study {prefix!r} in {here}; studies there: none; it is in another database of the server: "
            f"give --storage '{there}'"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        else:
            for db in (a, b):
                client = redis.Redis.from_url(f"{base}/{db}")
                delete_redis_keys(client, f"{prefix}*")


def test_a_machine_whose_redis_url_gives_another_database_does_not_start_a_study_of_its_own(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    two_redis_databases: tuple[str, int, int],
) -> None:
    # Machine B's `--storage redis://host:6379/12?prefix=p`, where machine A's study is in database 11, created a
    # second study of the same name in database 12 and ran it alone, silently.
    import uuid

    import redis

    from hpotool.study import open_study

    server, a, b = two_redis_databases  # two databases of its own
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    there, here = f"{server}/{a}?prefix={prefix}", f"{server}/{b}?prefix={prefix}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(there))
        opt_dict["storage"], opt_dict["study_name"] = here, prefix
        plan = prepare_study(
            write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
        )
        with pytest.raises(HpoError) as caught:
            open_study(plan)
        assert str(caught.value) == (
            f"study {prefix!r} is not in {here} but in another database, and a new one would start here; give "
            f"--storage '{there}' to join it, or another study_name"
        )
        assert optuna.get_all_study_names(storage=make_storage(here)) == []
    finally:
        for db in (a, b):
            client = redis.Redis.from_url(f"{server}/{db}")
            delete_redis_keys(client, f"{prefix}*")


def test_a_redis_study_in_the_default_journal_looked_for_under_a_prefix_names_the_url_without_one() -> None:
    # A study made with `redis://host:6379` (Optuna's default journal, prefix "") looked for under
    # `?prefix=NAME` said "give --storage redis://host:6379?prefix=", an empty prefix to type.
    import uuid

    import redis

    from .redis_databases import own_databases
    from .test_workers import _server_url

    server = _server_url("redis")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    # a database of its own, claimed empty: the default journal of database 0 is anyone's
    with own_databases(server, 1) as [db]:
        database = f"{server}/{db}"
        client = redis.Redis.from_url(database)
        try:
            optuna.create_study(study_name=name, storage=make_storage(database))
            with pytest.raises(HpoError) as caught:
                load_study(name, f"{database}?prefix={name}")
            assert str(caught.value) == (
                f"no study {name!r} in {database}?prefix={name}; studies there: none; it is under another "
                f"prefix: give --storage {database}"
            )
        finally:
            delete_redis_keys(client, ":log*", f"{name}*")


def test_a_machine_whose_redis_url_lacks_the_others_prefix_does_not_start_a_study_of_its_own(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Machine B's `--storage redis://host:6379` without the `?prefix=` machine A gave created a second study
    # of the same name in the server's default journal and ran it alone, silently.
    import uuid

    import redis

    from hpotool.study import open_study

    from .test_workers import _server_url

    server = _server_url("redis")
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(f"{server}?prefix={prefix}"))
        typo = f"{server}?prefix={prefix}-b"
        opt_dict["storage"], opt_dict["study_name"] = typo, prefix
        plan = prepare_study(
            write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "o.yaml", opt_dict)
        )
        with pytest.raises(HpoError) as caught:
            open_study(plan)
        assert str(caught.value) == (
            f"study {prefix!r} is not in {typo} but under another prefix, and a new one would start here; give "
            f"--storage '{server}?prefix={prefix}' to join it, or another study_name"
        )
        assert optuna.get_all_study_names(storage=make_storage(typo)) == []
    finally:
        client = redis.Redis.from_url(server)
        delete_redis_keys(client, f"{prefix}*")


@pytest.mark.parametrize(
    ("a", "b", "series"),
    [
        ("run-12-01", "run-12-02", True),
        ("exp1", "exp2", True),
        ("exp1", "exp10", True),
        ("exp", "exp2", True),
        ("digits_mlp", "digits_mlp_v2", True),
        ("sweep", "sweep-2026-12-05", True),
        ("digits_mlp_stage2", "digits_mlp_stage2b", True),  # refine's stage of a study refined again
        ("digits_mlp_stage2b", "digits_mlp_stage2c", True),
        ("digits_mpl", "digits_mlp", False),
        ("digts_mlp", "digits_mlp", False),
        ("digts_mlp2", "digits_mlp1", False),
    ],
)
def test_study_names_in_a_series_are_told_from_typos(a: str, b: str, series: bool) -> None:
    from hpotool.study_names import same_series

    assert same_series(a, b) is series and same_series(b, a) is series


@pytest.mark.parametrize(
    ("name", "stored", "hint"),
    [
        ("digits", "digits_mlp", "digits_mlp"),  # the README's `hpotool trials --study-name digits`
        ("tinny", "tiny", "tiny"),
        ("digts", "digits", "digits"),
        ("ws_gp2", "ws_pg2", "ws_pg2"),
        ("Digits_MLP", "digits_mlp", "digits_mlp"),
        ("mnist_2026-12-06", "cifar_2026-12-06", None),  # one run id at the end of two names
        ("nojoin_ff9f9eee", "rw_ff9f9eee", None),
        ("hpotool-test-c36c2518b3a7", "hpotool-test-8c527003426f", None),
        ("walkb_k9", "walkb_fs", None),  # the short word that tells two studies apart, changed whole
        ("walkb_fz", "walkb_fs", None),
        ("run_x", "run_1", None),
        ("exp_a", "exp_b", None),
        ("exp_a", "exp_ab", None),
        ("wlakb_fs", "walkb_fs", "walkb_fs"),  # two letters swapped
        ("walkb_sf", "walkb_fs", "walkb_fs"),
        ("digts_mpl", "digits_mlp", "digits_mlp"),  # a typo in each word of a long name
        ("digits_mlpx", "digits_mlp", "digits_mlp"),
        ("digitsmlp", "digits_mlp", "digits_mlp"),
        ("WALKB_FS", "walkb_fs", "walkb_fs"),
        ("digits_mlp_stage2", "digits_mlp", None),  # a name it starts with: a study not made yet
    ],
)
def test_a_missing_study_is_told_a_name_it_could_be_mistyped_from_not_one_that_shares_a_long_part(
    name: str, stored: str, hint: str | None
) -> None:
    """`no study 'nojoin_ff9f9eee' ... (did you mean 'rw_ff9f9eee'?)`: difflib rated two names close that
    share only a long ending (a run id, a date), and the commands that read a study, and a machine waiting
    to join one, suggested the other experiment. A typo, or the start of a name, is still told it."""
    from hpotool.study_names import near_study

    assert near_study(name, [stored]) == (f" (did you mean {hint!r}?)" if hint else "")


def test_a_missing_study_that_starts_several_names_is_told_none_of_them() -> None:
    """`--study-name digits` beside digits_mlp alone is told it; beside digits_mlp and digits_cnn, either
    would be a guess, and the line's list of the storage's studies names both."""
    from hpotool.study_names import near_study

    assert near_study("digits", ["digits_mlp", "other"]) == " (did you mean 'digits_mlp'?)"
    assert near_study("digits", ["digits_mlp", "digits_cnn"]) == ""


def test_a_missing_study_on_a_storage_of_many_names_the_newest_and_how_to_list_them_all(
    tmp_path: Path,
) -> None:
    """`no study NAME in URL; studies there: ...` listed every study the storage holds, 2,000 of them a line of
    tens of thousands of characters; now the newest dozen, and the command that lists them all."""
    url = f"sqlite:///{tmp_path / 'many.db'}"
    storage = make_storage(url)
    names = [f"sweep_{chr(ord('a') + i)}" for i in range(15)]
    for name in names:
        optuna.create_study(study_name=name, storage=storage)
    with pytest.raises(HpoError) as caught:
        load_study("walkb_k9", url)
    assert str(caught.value) == (
        f"no study 'walkb_k9' in {url}; studies there: {', '.join(names[3:])}, and 3 older, which "
        f"hpotool studies --storage {url} lists"
    )


def test_study_names_on_a_database_reads_the_names_alone(tmp_path: Path) -> None:
    """Each new study's did-you-mean looks up the storage's study names: Optuna's get_all_studies read every
    study's attributes too (hpotool's configs, ~2 KB a study), 3.5 s for 2,000 studies on PostgreSQL."""
    import sqlalchemy

    from hpotool.study_names import study_names

    url = f"sqlite:///{tmp_path / 'many.db'}"
    storage = make_storage(url)
    for name in ("b", "a", "c"):
        optuna.create_study(study_name=name, storage=storage).set_user_attr("run_config", {"big": "x" * 1000})
    statements: list[str] = []
    engine = storage._backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert study_names(storage) == ["b", "a", "c"]  # oldest first, as before
    assert statements and not [s for s in statements if "attributes" in s or "directions" in s]


def test_a_refused_storage_names_where_its_url_was_given(tmp_path: Path) -> None:
    # "storage 'studies/x.db' is not a storage URL" did not say whether to edit the config or the option.
    from hpotool.storage_url import StorageFault, storage_origin

    url = "studies/x.db"
    with pytest.raises(HpoError) as caught, storage_origin(url, "configs/optimize.yaml: storage"):
        make_storage(url)
    assert str(caught.value) == (
        "configs/optimize.yaml: storage: 'studies/x.db' is not a storage URL; for the SQLite file studies/x.db, "
        "write sqlite:///studies/x.db"
    )
    folder = f"sqlite:///{tmp_path}"
    with pytest.raises(HpoError) as caught, storage_origin(folder, "--storage"):
        make_storage(folder)
    assert str(caught.value).startswith(
        f"--storage: {folder!r}: {str(tmp_path)!r} is a folder, not a SQLite file"
    )
    # the default studies/<name>.db was given nowhere; a storage failing at work is not its URL's fault
    with pytest.raises(HpoError) as caught, storage_origin(url, None):
        make_storage(url)
    assert str(caught.value).startswith("storage 'studies/x.db' is not a storage URL")
    fault = StorageFault(f"storage {url!r} cannot be written (read-only)")
    with pytest.raises(StorageFault) as raised, storage_origin(url, "--storage"):
        raise fault
    assert raised.value is fault


def test_each_command_s_storage_option_is_named_in_its_refusal(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=make_storage(url))
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    for args, option in (
        (["trials", "--study-name", "p", "--storage", missing], "--storage"),
        (
            [
                "prune-audit",
                "--study-name",
                "p",
                "--storage",
                url,
                "--against",
                "q",
                "--against-storage",
                missing,
            ],
            "--against-storage",
        ),
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and result.stderr == (
            f"error: {option}: {missing!r}: no such SQLite file {str(tmp_path / 'none.db')!r}; check the path\n"
        ), result.output


def test_a_redis_url_without_a_host_reads_the_local_server_as_redis_py_does() -> None:
    # `redis:///0?prefix=P` (redis-py: the server on localhost:6379) lost its `//` when the prefix was taken
    # off (`redis:/0`), and the client refused it: "Redis URL must specify one of the following schemes".
    import uuid

    import redis

    from .test_workers import _server_url

    server = _server_url("redis")
    if server != "redis://127.0.0.1:6379":
        pytest.skip("the Redis server is not the local default one")
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    try:
        optuna.create_study(study_name=prefix, storage=make_storage(f"{server}?prefix={prefix}"))
        assert load_study(prefix, f"redis:///0?prefix={prefix}").study_name == prefix
        assert load_study(prefix, f"redis://?prefix={prefix}").study_name == prefix
    finally:
        client = redis.Redis.from_url(server)
        delete_redis_keys(client, f"{prefix}*")


@contextlib.contextmanager
def _own_redis(tmp_path: Path, url: str, *options: str) -> Iterator[str]:
    """A Redis server of this test's own, started with `options`, answering at `url` (returned): the local
    server's configuration is not the tests' to change."""
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("HPOTOOL_REQUIRE_SERVERS") == "1":
            pytest.fail("HPOTOOL_REQUIRE_SERVERS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    options += ("--save", "", "--dir", str(tmp_path))
    server = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for attempt in range(200):  # it answers within ~0.1 s
            try:
                redis.Redis.from_url(url, socket_connect_timeout=1).ping()
                break
            except redis.exceptions.ConnectionError:
                if attempt == 199 or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[str]:
    """The URL, password included, of a Redis server of this test's own that requires the password s3cret
    (the local server has none)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    url = f"redis://:s3cret@127.0.0.1:{port}"
    with _own_redis(tmp_path, url, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret"):
        yield url


def test_studies_of_a_server_without_studies_does_not_print_its_password(redis_with_password: str) -> None:
    # `hpotool studies --storage redis://:PASSWORD@host?prefix=P` printed "no studies in" the whole URL.
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = f"{redis_with_password}?prefix=hpo"
    result = CliRunner().invoke(app, ["studies", "--storage", url])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert result.stderr.startswith(f"no studies in {url.replace(':s3cret@', ':***@')}")


@pytest.mark.parametrize("command", [["studies"], ["trials", "--study-name", "tiny"]])
@pytest.mark.parametrize("query", ["", "&protocol=2"])
def test_a_password_given_to_a_redis_server_without_one_is_refused(command: list[str], query: str) -> None:
    # Redis takes any password for a default user that has none (redis-py's `HELLO 3 AUTH default PASSWORD`),
    # so `trials --storage redis://:PASSWORD@host` said "no study 'tiny' ...; studies there: none" and
    # `studies` "no studies in" it, of a URL meant for another server or a password the server no longer
    # has. Over RESP2 (`protocol=2`) the server's own refusal ended the command with its long line.
    import uuid

    from typer.testing import CliRunner

    from hpotool.cli import app

    from .test_workers import _server_url

    server = _server_url("redis")  # the local server: no password
    rest = f"?prefix=hpotool-test-{uuid.uuid4().hex[:12]}{query}"
    url = server.replace("redis://", "redis://:wrongpw@", 1) + rest
    result = CliRunner().invoke(app, [*command, "--storage", url])
    assert result.exit_code == 2, result.output
    shown = server.replace("redis://", "redis://:***@", 1) + rest
    assert result.stderr == (
        f"error: --storage: {shown!r}: its Redis server has no password (its default user takes none), yet "
        f"the URL gives one; drop the password ({server}{rest}), or, if the study is on a server that has one, "
        f"correct the host and port\n"
    )
    assert "wrongpw" not in result.output


def test_a_password_given_to_a_redis_socket_without_one_is_refused_with_the_socket_url(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    socket = tmp_path / "redis.sock"
    with _own_redis(tmp_path, f"unix://{socket}", "--port", "0", "--unixsocket", str(socket)):
        result = CliRunner().invoke(app, ["studies", "--storage", f"unix://:wrongpw@{socket}"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"error: --storage: 'unix://:***@{socket}': its Redis server has no password"
    )
    assert f"; drop the password (unix://{socket}), or" in result.stderr


def test_a_wrong_password_to_a_redis_server_with_one_is_named(redis_with_password: str) -> None:
    from typer.testing import CliRunner

    from hpotool.cli import app

    url = redis_with_password.replace(":s3cret@", ":wrongpw@")
    for command in (["studies"], ["trials", "--study-name", "tiny"]):
        result = CliRunner().invoke(app, [*command, "--storage", url])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: --storage: {url.replace(':wrongpw@', ':***@')!r}: cannot open it: invalid username-password "
            f"pair or user is disabled; check the user name and password in the URL\n"
        )


def test_a_read_only_sqlite_url_is_refused_by_commands_that_write_and_read_read_only(
    tmp_path: Path, configs: tuple[Path, Path]
) -> None:
    # `sqlite:///x.db?mode=ro`, SQLite's read-only URI mode: hpotool dropped the query and opened the file
    # read-write, so `optimize` wrote its trials there, and `trials` left -wal and -shm files beside it.
    from typer.testing import CliRunner

    from hpotool.cli import app

    db = tmp_path / "ro" / "s.db"
    db.parent.mkdir()
    _study_with_a_dead_trial(f"sqlite:///{db}")
    url = f"sqlite:///{db}?mode=ro"
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    run, opt = configs
    refusals = {
        (
            "optimize",
            "-r",
            str(run),
            "-o",
            str(opt),
            "--study-name",
            "s",
            "--n-trials",
            "1",
        ): "a study run writes its trials",
        ("fail-stale", "--study-name", "s"): "fail-stale writes the trials it marks failed",
    }
    for args, what in refusals.items():
        result = CliRunner().invoke(app, [*args, "--storage", url])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: --storage: {url!r} asks for read-only access (?mode=ro), and {what} to it; drop ?mode=ro "
            f"(commands that only read a study, such as trials, report and export-best, take it as it is)\n"
        )
    listed = CliRunner().invoke(app, ["trials", "--study-name", "s", "--storage", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["state"] for row in json.loads(listed.stdout)] == ["running"]
    assert {p.name: p.read_bytes() for p in db.parent.iterdir()} == before  # not a byte written, nor a file


@pytest.mark.parametrize(
    ("url", "what", "example"),
    [
        (
            "postgresql+psycopg://[::1",
            "the IPv6 address in '[::1' lacks its closing ]",
            "postgresql+psycopg://user:password@[::1]:5432/db",
        ),
        (
            "mysql+pymysql://user@host:port/db",
            "its port 'port' is not a number",
            "mysql+pymysql://user:password@host:3306/db",
        ),
        (
            "postgresql://u@h:70000/d",
            "its port 70000 is out of range (0 to 65535)",
            "postgresql+psycopg://user:password@host:5432/db",
        ),
        (
            "mariadb+pymysql://u@h:/d",
            "'h:' has a ':' and no port after it",
            "mariadb+pymysql://user:password@host:3306/db",
        ),
        ("redis://127.0.0.1:port/0", "its port 'port' is not a number", "redis://:password@host:6379/0"),
    ],
)
def test_a_malformed_server_url_says_what_is_wrong_and_the_form_to_write(
    url: str, what: str, example: str
) -> None:
    # SQLAlchemy's "cannot open it: invalid literal for int() with base 10: ':1'" named neither the part
    # that was wrong nor what to write; redis-py's "Port could not be cast to integer value as 'port'" no form.
    from typer.testing import CliRunner

    from hpotool.cli import app

    expected = f"--storage: {url!r} is malformed: {what}; write it as {example}"
    for args in (["trials", "--study-name", "s"], ["studies"]):
        result = CliRunner().invoke(app, [*args, "--storage", url])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {expected}\n"


def test_an_empty_storage_is_the_default_for_every_command(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # `--storage "${VAR:-}"` with VAR unset: `studies` refused '' ("is not a storage URL") while the commands
    # that read a study took the default, and `optimize` put the study in studies/<name>.db though the
    # config's `storage:` named another file. Now '' is no flag, everywhere.
    from typer.testing import CliRunner

    from hpotool.cli import app

    stored = opt_dict["storage"] = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run, opt = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    ran = CliRunner().invoke(app, ["optimize", "-r", str(run), "-o", str(opt), "--storage", "", "-q"])
    assert ran.exit_code == 0, ran.output
    assert len(load_study("tiny", stored).trials) == 3  # in the config's storage
    assert not (tmp_path / "studies" / "tiny.db").exists()
    from hpotool.sqlite_storage import _close_sqlite_storages

    _close_sqlite_storages()  # its trials in the file, not its -wal, for the copy
    (tmp_path / "studies").mkdir()
    shutil.copy(tmp_path / "elsewhere.db", tmp_path / "studies" / "tiny.db")
    listed = CliRunner().invoke(app, ["studies", "--storage", "", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.stdout)] == ["tiny"]
    trials = CliRunner().invoke(app, ["trials", "--study-name", "tiny", "--storage", "", "--json"])
    assert trials.exit_code == 0 and len(json.loads(trials.stdout)) == 3, trials.output


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("file:studies/x.db", "for the SQLite file studies/x.db, write sqlite:///studies/x.db"),
        ("file:///srv/hpo/x.db", "for the SQLite file /srv/hpo/x.db, write sqlite:////srv/hpo/x.db"),
        (
            "file:studies/x.db?mode=ro",
            "for the SQLite file studies/x.db, write sqlite:///studies/x.db?mode=ro",
        ),
        ("file:studies/x.log", "for the journal file studies/x.log, write journal:studies/x.log"),
    ],
)
def test_a_sqlite_file_uri_is_told_the_storage_url_of_its_file(url: str, advice: str) -> None:
    # SQLite's own URI form for a file: the advice was `sqlite:///file:studies/x.db` (a file named so), and
    # `file:///abs/x.db` was "no database or driver 'file'".
    from typer.testing import CliRunner

    from hpotool.cli import app

    result = CliRunner().invoke(app, ["trials", "--study-name", "x", "--storage", url])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: --storage: {url!r} is not a storage URL; {advice}\n"


def test_checking_a_file_that_is_not_there_does_not_make_it(tmp_path: Path) -> None:
    """Whether a file is an Optuna SQLite file, asked of one that is not there, made it, empty: its read-only
    open failed and the fallback (`immutable=1`, for a WAL file in a folder this process cannot write) opened
    it read-write, which creates a missing file. `hpotool studies` listing studies/*.db as another process
    deleted one (`rm studies/old.db`, a cleanup) left an empty old.db there, 'not an Optuna database' ever
    after."""
    from hpotool.sqlite_files import is_optuna_sqlite, sqlite_damage, sqlite_tables

    gone = tmp_path / "studies" / "old.db"
    gone.parent.mkdir()
    assert sqlite_tables(gone) is None
    assert not is_optuna_sqlite(gone)
    assert sqlite_damage(gone) is None
    assert not gone.exists()


@pytest.mark.server
@pytest.mark.timeout(120)
def test_a_journal_half_deleted_beside_is_passed_over_not_waited_for() -> None:
    # `redis-cli --scan --pattern 'p:*' | xargs redis-cli del` (or a test's cleanup) can take p:log:0 before
    # p:log_number; Optuna's reader waits for that log for ever, and hpotool's look at the server's other
    # journals (where else is this study?) hung every command opening a Redis study beside it (CI: 300 s).
    import uuid

    import redis

    from hpotool.storage import peeked_study_names, redis_prefixes_holding

    from .redis_databases import own_databases
    from .test_workers import _server_url

    server = _server_url("redis")
    name = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    with own_databases(server, 1) as [db]:
        database = f"{server}/{db}"
        client = redis.Redis.from_url(database)
        try:
            for prefix in ("whole", "going"):
                optuna.create_study(study_name=name, storage=make_storage(f"{database}?prefix={prefix}"))
            assert peeked_study_names(f"{database}?prefix=going") == [name]
            client.delete("going:log:0")  # the journal's first log gone, its count still there
            assert peeked_study_names(f"{database}?prefix=going") == []
            assert redis_prefixes_holding(f"{database}?prefix=mine", name) == [f"{database}?prefix=whole"]
        finally:
            delete_redis_keys(client, "*")
