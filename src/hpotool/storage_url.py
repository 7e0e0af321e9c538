"""Storage URLs: shown with their password hidden, the default one, the file a SQLite or journal URL names,
where a refusal names the URL given (`storage_origin`), and the URL each loaded study came from."""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna


def redis_prefix(url: str) -> tuple[str, bool, str]:
    """`redis://host:6379/0?prefix=NAME` keeps a journal under its own keys (Optuna's default is "")."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = "".join(v for k, v in query if k == "prefix")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    base = urlunsplit(parts._replace(query=rest))
    if not parts.netloc:  # `redis:///0`, the local server to redis-py: urlunsplit made it `redis:/0`, refused
        base = base.replace(":", "://", 1)
    return base, False, prefix


def redis_url_with_db(url: str, db: int) -> str:
    """`url` (a `redis://`, `rediss://` or `unix://` URL) reaching database `db` of the same Redis server, written
    where redis-py reads the number (`redis.connection.parse_url`): a `?db=` in the query, which wins over the
    path of `redis://host:6379/N` (the first `db=` where several are given), and the only place a `unix://`
    socket's URL gives it; the path of a `redis://` URL otherwise."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "db" for k, _ in query) or parts.scheme.lower() == "unix":
        first = next((i for i, (k, _) in enumerate(query) if k == "db"), len(query))
        query = [*query[:first], ("db", str(db)), *((k, v) for k, v in query[first:] if k != "db")]
        parts = parts._replace(query=urlencode(query))
    else:
        parts = parts._replace(path=f"/{db}")
    out = urlunsplit(parts)
    if not parts.netloc:  # `unix:///tmp/redis.sock`, `redis:///0`: urlunsplit dropped the `//` redis-py needs
        out = out.replace(":", "://", 1) if not out.split(":", 1)[1].startswith("//") else out
    return out


def shown_url(url: str) -> str:
    """`url` as hpotool prints it and writes it into exports and reports: a password in it as `***`
    (`postgresql+psycopg://user:***@host/db`), as SQLAlchemy shows URLs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


class StorageFault(HpoError):
    """A storage that failed at its work (locked by another process, read-only, a server gone away): not its
    URL's fault, so `storage_origin` leaves the message as it is. `in_study`: what `optimize` says of it instead
    where it happened during its study (`storage_faults.damage_during_study`), if other words."""

    def __init__(self, message: str, in_study: str | None = None) -> None:
        super().__init__(message)
        self.in_study = in_study


# The origin of the storage a config without `storage:` and a command without --storage use:
# studies/<name>.db (`default_storage_url`), named so in its refusals.
DEFAULT_ORIGIN = "default"


def storage_named(url: str, origin: str | None) -> str:
    """How a message names storage `url`, given where it came from (`storage_origin`): `optimize.yaml:
    storage: 'URL'`, `--storage: 'URL'`, `the default storage studies/<name>.db` (`DEFAULT_ORIGIN`), or
    `storage 'URL'` where that is not known."""
    if origin is None:
        return f"storage {shown_url(url)!r}"
    if origin == DEFAULT_ORIGIN:
        return f"the default storage {storage_file(url) or shown_url(url)}"
    return f"{origin}: {shown_url(url)!r}"


@contextlib.contextmanager
def storage_origin(url: str | None, origin: str | None) -> Iterator[None]:
    """A refusal of storage `url` (`storage 'URL': ...`) raised inside names where the URL was given, so the
    user knows what to edit: `optimize.yaml: storage: 'URL': ...` for an optimize config's `storage:` key,
    `--storage: 'URL': ...` for the option, `the default storage studies/<name>.db: ...` for the default
    (`DEFAULT_ORIGIN`). Other errors, a `StorageFault`, and any where `origin` is None pass unchanged.

    Raises:
        HpoError: the refusal, its origin named.
    """
    try:
        yield
    except HpoError as exc:
        if origin is None or url is None or isinstance(exc, StorageFault):
            raise
        head = f"storage {shown_url(url)!r}"
        if not str(exc).startswith(head):
            raise
        raise HpoError(f"{storage_named(url, origin)}{str(exc)[len(head) :]}") from None


def default_storage_url(study_name: str) -> str:
    return f"sqlite:///studies/{study_name}.db"


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal URL names (relative: to the folder the command runs in); None for a server."""
    return Path(url.removeprefix("journal:")).expanduser() if url.startswith("journal:") else sqlite_path(url)


def with_file(url: str, path: Path) -> str:
    """`url`, a SQLite or journal URL, naming `path` instead (its query kept)."""
    if url.startswith("journal:"):
        return f"journal:{path}"
    query = url.partition("?")[2]
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


def location(url: str) -> str:
    """Where a study in `url` is kept, as a user looks for it: a SQLite or journal file's absolute path (a
    relative one is read from the folder the command runs in), else the URL as shown."""
    path = storage_file(url)
    return os.path.abspath(path) if path is not None else shown_url(url)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    # `~` as the shell reads it: SQLite takes it as a folder named ~ under the current one
    written = Path(path).expanduser()
    # `%20` as the installed SQLAlchemy reads it, so Optuna's CLI and optuna-dashboard given the same URL
    # open this file: SQLAlchemy 2.1 decodes it, 2.0 (the newest on Python 3.10) keeps it as written. A file
    # an older hpotool made under the other reading is still found there.
    from urllib.parse import unquote

    meant = Path(_database_as_sqlalchemy_reads(path)).expanduser()
    others = [p for p in (written, Path(unquote(path)).expanduser()) if p != meant]
    if not others or _is_there(meant):
        return meant
    return next((p for p in others if _is_there(p)), meant)


def _is_there(path: Path) -> bool:
    """Whether `path` exists; False for a name too long to be a file's, which the file checks then name."""
    try:
        return path.exists()
    except OSError:
        return False


def _database_as_sqlalchemy_reads(path: str) -> str:
    """The file SQLAlchemy (so Optuna) opens for the URL `sqlite:///{path}`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(f"sqlite:///{path}").database or path
    except ArgumentError:  # a URL SQLAlchemy cannot read: as written, for the message that says so
        return path


def storage_url_of(study: optuna.Study) -> str | None:
    """The URL `load_study` opened `study` from, or None."""
    return LOADED_FROM.get(study._storage)


# The URL of each storage `load_study` opened a study from (keyed by the study's storage object, which a
# StudySnapshot of the study shares), for the commands a message points to.
LOADED_FROM: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
