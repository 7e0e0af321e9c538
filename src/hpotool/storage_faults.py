"""A storage that failed at its work: a server that stopped answering, a file this process cannot write or
another process keeps locked, a study deleted under a run; each said in one line (`StorageFault`)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hpotool.errors import HpoError, chain
from hpotool.storage_files import file_hint
from hpotool.storage_settings import sqlite_busy_timeout
from hpotool.storage_url import StorageFault, shown_url, storage_file


def lost_connection(exc: BaseException) -> BaseException | None:
    """The database or Redis error behind `exc` when the storage stopped answering (its server went away,
    the connection dropped, a write timed out) or refuses every write (a Redis at its `maxmemory`, a Redis
    replica: `redis_refusal`), or None for any other error. Looks through the exceptions that raised it
    (Optuna wraps a failed commit in `StorageInternalError`)."""
    sa = sys.modules.get("sqlalchemy.exc")
    rd = sys.modules.get("redis.exceptions")
    kinds: tuple[type[BaseException], ...] = ()
    if sa is not None:
        kinds += (sa.OperationalError, sa.InterfaceError)
    if rd is not None:  # and a Redis that answers, refusing every write: full, or a read-only replica
        kinds += (rd.ConnectionError, rd.TimeoutError, rd.OutOfMemoryError, rd.ReadOnlyError)
    return next((link for link in chain(exc) if isinstance(link, kinds)), None)


# The server storages (database, Redis) this process opened: a command that loses one after opening it says
# so in one line (`server_lost`). SQLite's OperationalError ("database is locked") is not a server going away.
OPENED_SERVERS: list[str] = []


def forget_opened_servers() -> None:
    """Start a command afresh: a server an earlier command of this process opened (the tests, a notebook
    driving the CLI) is not the one a later command's error is about."""
    OPENED_SERVERS.clear()
    silence = sys.modules.get("hpotool.silence")
    if silence is not None:
        silence.forget()


def _found_silent() -> str | None:
    """What `silence` found, where it found the server of this process's storage silent: the cause to say
    in place of the driver's error (the shut connection's "Lost connection", or a timed-out reconnection)."""
    silence = sys.modules.get("hpotool.silence")
    said = silence.found_silent() if silence is not None else None
    if said is None:
        return None
    return f"{said}: check the server, or a proxy in front of it; hpotool --debug shows the driver's error"


def server_lost(exc: BaseException) -> HpoError | None:
    """What a command says when the storage server it opened stopped answering while it read or wrote
    (`lost_connection(exc)`), or None for any other error."""
    cause = lost_connection(exc)
    if cause is None or not OPENED_SERVERS:
        return None
    first = lost_cause(cause)
    url = OPENED_SERVERS[-1]
    refusal = redis_refusal(url, first)
    if refusal is not None:
        return StorageFault(
            f"storage {shown_url(url)!r} refused to write ({first}): {refusal}; the study it holds is kept: "
            f"once it writes again, run the same command"
        )
    return StorageFault(
        f"storage {shown_url(url)!r} stopped answering ({first}); the study it holds is kept: "
        f"once the server answers again, run the same command"
    )


def cannot_write(url: str, exc: BaseException) -> HpoError | None:
    """What a command that writes to a study (`fail-stale`) says when the write failed because this process
    cannot write the SQLite or journal file or its folder (`file_hint`); None for any other error."""
    hint = file_hint(url)
    first = lost_cause(exc)  # not Optuna's "invalid data in the commit, e.g. exceeding max length"
    if not hint:
        # another process keeps the SQLite file locked (it printed a traceback)
        then = "then run the same command again"
        return locked(url, first, then, waited=lock_waited(exc)) if lost_connection(exc) else None
    return StorageFault(f"storage {shown_url(url)!r} cannot be written ({driver_words(first)}){hint}")


# The driver's class names around the database's words: `OperationalError: (sqlite3.OperationalError) database
# is locked`, `(psycopg.OperationalError) connection failed: ...` (SQLAlchemy's class, then the driver's, in
# brackets) say nothing the user can act on; nor does PyMySQL's tuple of error number and message,
# `(pymysql.err.OperationalError) (1049, "Unknown database 'x'")`.
_DRIVER_WRAPPING = re.compile(
    r"(?:\w*Error: )?\((?:sqlite3|psycopg2?|pymysql)(?:\.\w+)+\) (?:\(\d+, (?P<q>[\"'])(?P<said>.*?)(?P=q)\))?"
)


# redis-py's words for a connection that failed: `Error 111 connecting to 127.0.0.1:6391. Connection refused.`
# (the errno, then the socket's message, each followed by a full stop, `Error -2 connecting to host:6379. Name
# or service not known.` for a name that does not resolve), and `Error while reading from 127.0.0.1:3306 :
# (104, 'Connection reset by peer')` (the errno and message as a tuple); each said as libpq says it,
# `connection to HOST:PORT failed: MESSAGE`, `reading from HOST:PORT failed: MESSAGE`.
_REDIS_CONNECTING = re.compile(
    r"(?:\w*Error: )?Error(?: -?\d+)? connecting to (?P<where>.+?)\.(?: (?P<said>.+?)\.?)?$"
)
_REDIS_READING = re.compile(
    r"(?:\w*Error: )?Error while (?P<doing>reading from|writing to) (?P<where>.+?) ?: "
    r"\((?:-?\d+, )?(?P<q>[\"'])(?P<said>.*?)(?P=q),?\)$"
)


# What redis-py puts before the server's words for a command of a pipeline (MULTI/EXEC) the server refused.
_REDIS_PIPELINE = re.compile(r"Command # \d+ \(.*?\) of pipeline caused error: ")
# What Redis puts after its words for a command a script (hpotool's journal appends) ran and it refused.
_REDIS_SCRIPT = re.compile(r"\.? script: [0-9a-f]+, on @user_script:\d+\.?$")


def _redis_words(error: str) -> str:
    """`error` with redis-py's wording of a failed connection made plain (`_REDIS_CONNECTING`,
    `_REDIS_READING`), and without its words around a pipeline's or a script's refused command
    (`_REDIS_PIPELINE`, `_REDIS_SCRIPT`); any other error as it is."""
    error = _REDIS_SCRIPT.sub("", _REDIS_PIPELINE.sub("", error))
    found = _REDIS_CONNECTING.match(error)
    if found:
        said = found["said"]
        return f"connection to {found['where']} failed" + (f": {said}" if said else "")
    found = _REDIS_READING.match(error)
    if found:
        return f"{found['doing']} {found['where']} failed: {found['said']}"
    return error


def driver_words(error: str) -> str:
    """`error` (`lost_cause`'s line, the workers' `lost_causes`, or a storage's error that would not open)
    without the class names SQLAlchemy and the driver (sqlite3, psycopg, PyMySQL) put before the database's
    own words ("database is locked", "connection failed: ...", PyMySQL's message without its error number),
    with libpq's "FATAL:  " spacing made one space, and redis-py's "Error 111 connecting to HOST:PORT.
    Connection refused." said as libpq says it (`_redis_words`); any other error as it is."""
    said = _DRIVER_WRAPPING.sub(lambda found: found["said"] or "", error)
    return _redis_words(re.sub(r"(?<=\S)  +(?=\S)", " ", said).strip())


# The attribute `rdb_storage` sets on a SQLite "database is locked" error: the seconds its statement ran.
LOCK_WAITED = "hpotool_lock_waited_s"


def lock_waited(exc: BaseException) -> float | None:
    """How long the statement that failed with "database is locked" behind `exc` waited (`LOCK_WAITED`), or
    None where it is not known."""
    return next((getattr(link, LOCK_WAITED) for link in chain(exc) if hasattr(link, LOCK_WAITED)), None)


def locked(
    url: str, error: str, then: str, *, doing: str = "write to it", waited: float | None = None
) -> HpoError | None:
    """What a command says when another process kept the SQLite file of `url` locked past the busy timeout
    (`error`, the error or the processes that met it, says "database is locked"), so the command could not
    `doing`; None for any other error or storage. `waited`: the seconds the failed statement ran, where
    known (`lock_waited`): one refused before the busy timeout was not kept waiting by a lock, and is said
    so, naming no other process."""
    path = storage_file(url)
    if "database is locked" not in error or path is None or url.startswith("journal:"):
        return None
    # A sqlite3 shell or a database browser inside a transaction: the server is not gone, and waiting
    # longer is no fix. `optimize` said the storage "stopped answering ... once it answers again", naming
    # neither the file nor the lock; `fail-stale` printed a traceback.
    from shlex import quote

    where = os.path.abspath(path)
    said = driver_words(error)
    if waited is not None and waited < 0.9 * sqlite_busy_timeout():
        # SQLite refuses at once, without the busy timeout, a write on a connection whose read of the file
        # began before another connection's write (a snapshot conflict, WAL), or while another holds the
        # write lock (waiting could deadlock): no lock held for long. It came
        # in a process alone on its file, on Ctrl-C, and the line blamed "another process" for 60 s.
        return StorageFault(
            f"storage {shown_url(url)!r}: SQLite refused a write to {where!r} after {waited:.1f} s, without "
            f"waiting for a lock ({said}: a connection still reading the file cannot write once another "
            f"connection has written to it or holds its write lock), so this command could not {doing}. No "
            f"process need be holding the file; "
            f"{then}"
        )
    return StorageFault(
        f"storage {shown_url(url)!r}: another process kept {where!r} locked for over {sqlite_busy_timeout()} s, "
        f"so this command could not {doing} ({said}). Wait for that process to finish, or end it or its open "
        f"transaction (a sqlite3 shell, a database browser; fuser {quote(where)} lists the processes that have "
        f"the file open), {then}"
    )


def study_deleted(study_name: str, url: str, exc: BaseException) -> HpoError | None:
    """What a command running study `study_name` says when the study vanished from its storage under it
    (another process deleted it, `optuna delete-study`, or its tables were emptied): Optuna's storages then
    raise KeyError('Record does not exist.'), which printed a traceback; None for any other error."""
    if not any(
        isinstance(link, KeyError) and link.args == ("Record does not exist.",) for link in chain(exc)
    ):
        return None
    return HpoError(
        f"study {study_name!r} in {shown_url(url)} was deleted while this command ran it (by another "
        f"process: optuna delete-study, a script); its trials went with it. Run the same command to "
        f"start the study again"
    )


def lost_cause(exc: BaseException) -> str:
    """The error behind `exc` (`lost_connection`) in one line, its type and first line, the database
    driver's class names left out (`driver_words`): what a worker that lost the storage passes on to its
    main process, which says it (`storage_lost`)."""
    lost = lost_connection(exc)
    silent = _found_silent() if lost is not None else None
    if silent is not None:
        return silent
    cause = lost or exc
    text = str(cause).strip()
    if text and type(cause).__module__.startswith("redis."):
        # the server's words (or redis-py's for a connection) without redis-py's class name and full stop:
        # "(ConnectionError: Connection closed by server.)" in the line `storage_lost` makes
        return driver_words(text.splitlines()[0]).removesuffix(".")
    return driver_words(f"{type(cause).__name__}: {text.splitlines()[0]}") if text else type(cause).__name__


def redis_cli(url: str) -> str:
    """The `redis-cli` command reaching the Redis server of `url` (its password left out)."""
    from shlex import quote
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        return f"redis-cli -s {quote(unquote(parts.path))}"
    return f"redis-cli -h {parts.hostname or '127.0.0.1'} -p {parts.port or 6379}"


def redis_refusal(url: str, error: str) -> str | None:
    """What a Redis server that answers and refused a write (`error`: Redis's words, or the workers' causes)
    needs before the command can run again, or None for any other error: its memory full (`OOM command not
    allowed when used memory > 'maxmemory'`, with the policy noeviction, Redis's default), or a read-only
    replica. Both printed a traceback and exit code 1, a trial's FAIL or the study's creation half written."""
    if "when used memory > 'maxmemory'" in error:
        return (
            f"its Redis server is at its maxmemory: raise it ({redis_cli(url)} CONFIG SET maxmemory 2gb) or "
            f"free memory there (delete the journals no longer needed)"
        )
    if "write against a read only replica" in error:
        return (
            f"its Redis server is a read-only replica: give the URL of its primary (master_host and master_port "
            f"in {redis_cli(url)} INFO replication)"
        )
    return None


def storage_lost(
    url: str, exc: BaseException | str, *, left_running: bool = True, waited: float | None = None
) -> HpoError:
    """What `optimize` says when its storage stopped answering during the study (`lost_connection(exc)`);
    `exc` is the error, or the workers' `lost_cause`s of it, whose "database is locked" waited `waited`
    seconds (`Problems.lock_waited`; the error's own `lock_waited` otherwise). `left_running`: whether trials
    of the run may be left RUNNING (False where the main process of `--workers`, which still reaches the
    storage, has marked its lost workers' trials FAIL and queued their values again)."""
    first = exc if isinstance(exc, str) else lost_cause(exc)
    # SQLite opened a file it cannot write read-only: it answers, and will not write
    if "readonly database" in first:
        hint = file_hint(url) or (
            "; make the file and its folder writable, or copy it to a folder you can write to and give that path"
        )
        return StorageFault(f"storage {shown_url(url)!r} cannot be written ({driver_words(first)}){hint}")
    if left_running:
        resume = "it marks any trial left RUNNING FAIL ('worker died') and runs its parameters again"
    else:
        resume = "the trials that were running are marked FAIL ('worker died'), their parameters queued again"
    waited = waited if isinstance(exc, str) else lock_waited(exc)
    held = locked(url, first, f"then run the same command to resume: {resume}", waited=waited)
    if held is not None:
        return held
    refusal = redis_refusal(url, first)
    did = (
        f"refused to write during the study ({first}): {refusal}"
        if refusal
        else f"stopped answering during the study ({first})"
    )
    once = "Once it writes again," if refusal else "Once it answers again,"
    if not left_running:
        return StorageFault(
            f"storage {shown_url(url)!r} {did}; the trials it holds are kept, and {resume}. {once} run the same "
            f"command to resume"
        )
    return StorageFault(
        f"storage {shown_url(url)!r} {did}; the trials it holds are kept, and those that were running stay "
        f"RUNNING there. {once} run the same command to resume: it marks them FAIL ('worker died') and runs "
        f"their parameters again"
    )


@contextmanager
def damage_during_study() -> Iterator[None]:
    """Say a storage fault raised inside as `optimize` says it during its study (`StorageFault.in_study`): a
    Redis journal emptied or written over as the trials ran was said as a reading command says it ('run the
    same command to read what it holds now'), nothing of the trials that were running or of what to do."""
    try:
        yield
    except StorageFault as exc:
        if exc.in_study is None:
            raise
        raise in_study(exc) from exc


def in_study(exc: HpoError) -> HpoError:
    """`exc` as `optimize` says it during its study: a `StorageFault`'s `in_study` words, where it has some."""
    if isinstance(exc, StorageFault) and exc.in_study is not None:
        return StorageFault(exc.in_study)
    return exc
