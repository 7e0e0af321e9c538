"""Storage URLs refused before anything opens (malformed ones, a Redis database name, a path given for a
URL, an unknown scheme), or as it opens (a password for a Redis server that has none), and what to write
instead; the hint for a server that refused to open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpotool.errors import HpoError
from hpotool.storage_url import redis_url_with_db, shown_url


def refuse_a_redis_name(url: str) -> None:
    """`redis://host:6379/hpo`, a database name after the port as a PostgreSQL URL has one: Redis numbers its
    databases, and its client ignored the name, so the study went into database 0 beside every other
    unprefixed journal there, without a word. A `unix://` URL's path is its socket.

    Raises:
        HpoError: naming the URL to write, with the name as its `?prefix=`.
    """
    from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = next((v for k, v in query if k == "db"), None)  # redis-py reads the first, before the path
    if given is not None:
        where, name = "?db=", given.strip()
        rest = [(k, v) for k, v in query if k != "db"]
    elif url.startswith("unix://"):  # its path is the socket's
        return
    else:
        where, name, rest = "path", unquote(parts.path).strip("/"), query
    if not name or name.isdigit():
        return
    if name.startswith("-") and name[1:].isdigit():  # redis-py sends SELECT -1: "DB index is out of range"
        fixed = redis_url_with_db(url, 0)
        raise HpoError(
            f"storage {shown_url(url)!r}: a Redis URL's database number counts from 0 (16 databases unless "
            f"the server is configured otherwise), not {name}; write {shown_url(fixed)}"
        )
    named = any(k == "prefix" for k, _ in rest)
    path = parts.path if where == "?db=" else ""
    fixed = urlunsplit(
        parts._replace(path=path, query=urlencode(rest if named else [*rest, ("prefix", name)]))
    )
    if not parts.netloc:  # `unix:///path`, `redis:///x`: urlunsplit dropped the `//`
        fixed = fixed.replace(":", "://", 1) if not fixed.split(":", 1)[1].startswith("//") else fixed
    fix = "write" if named else "to keep this study's journal apart write"
    raise HpoError(
        f"storage {shown_url(url)!r}: a Redis URL's {where} is a database number (0, 1, ...), not a name; "
        f"{fix} {shown_url(fixed)}"
    )


# What Redis answers `AUTH PASSWORD` where its default user has no password (Redis 6 and later; before 6).
_NO_PASSWORD_SET = ("called without any password configured", "no password is set")
# What Redis answers a client that gives no password where its default user has one (redis-py's `HELLO 3`;
# any command over RESP2, `?protocol=2`; Redis before 6: "NOAUTH Authentication required.").
_PASSWORD_WANTED = ("HELLO must be called with the client already authenticated", "Authentication required")


def ping_redis(url: str, client: Any) -> None:
    """Ask the Redis server of `url` to answer (through `client`, its redis-py client), refusing a password
    the URL gives to a server whose default user has none. Redis takes any password for such a user (redis-py
    sends `HELLO 3 AUTH default PASSWORD`), so a URL meant for another server, or a password the server no
    longer has, read this server's journals as if nothing were amiss ("no study NAME ...; studies there:
    none"); over RESP2 (`?protocol=2`) the command ended with Redis's own refusal of `AUTH PASSWORD`.

    Raises:
        HpoError: naming the URL without its password.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    import redis

    parts = urlsplit(url)
    password = unquote(parts.password or "")
    try:
        client.ping()
        if password and unquote(parts.username or "default") == "default":
            client.auth(password)  # what the server says to the password alone: refused where it has none
    except redis.exceptions.AuthenticationError as exc:
        if not password and any(text in str(exc) for text in _PASSWORD_WANTED):
            # redis-py's HELLO 3 met Redis's long refusal ("HELLO must be called with the client already
            # authenticated, otherwise the HELLO AUTH <user> <pass> option can be used ..."), naming no fix
            user, _, host = parts.netloc.rpartition("@")
            with_one = urlunsplit(parts._replace(netloc=f"{user}:PASSWORD@{host}"))
            raise HpoError(
                f"storage {shown_url(url)!r}: its Redis server asks for a password, and the URL gives none; "
                f"write it in the URL: {with_one} (USER:PASSWORD@ for a user of its ACL)"
            ) from None
        if not password or not any(text in str(exc) for text in _NO_PASSWORD_SET):
            raise
        without = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        if not parts.netloc.rpartition("@")[2]:  # `unix://:PASSWORD@/path`: urlunsplit made it `unix:/path`
            without = without.replace(":", "://", 1)
        raise HpoError(
            f"storage {shown_url(url)!r}: its Redis server has no password (its default user takes none), yet "
            f"the URL gives one; drop the password ({without}), or, if the study is on a server that has one, "
            f"correct the host and port"
        ) from None


# The drivers the extras install, for URLs that name none (SQLAlchemy then wants its own default driver).
DRIVERS = {
    "postgresql": ("postgresql+psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "mysql"),
}


_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379, "rediss": 6379}


def _url_example(scheme: str) -> str:
    """A well-formed URL of `scheme` (`postgresql+psycopg`, `mysql`, `redis`), to copy."""
    base = scheme.partition("+")[0]
    if base in ("redis", "rediss"):
        return f"{scheme}://:password@host:6379/0"
    if scheme in DRIVERS:  # the bare scheme: the driver hpotool's extras install
        scheme = DRIVERS[scheme][0]
    return f"{scheme}://user:password@host:{_PORTS.get(base, 'PORT')}/db"


def refuse_a_malformed_url(url: str) -> None:
    """A server URL whose host and port cannot be read (`postgresql+psycopg://[::1`, `mysql+pymysql://u@host:
    port/db`): SQLAlchemy said "cannot open it: invalid literal for int() with base 10: 'port'", redis-py
    "Port could not be cast to integer value", naming neither the part nor the form to write.

    Raises:
        HpoError: naming what is malformed and a URL of the right form.
    """
    from urllib.parse import urlsplit

    scheme = url.partition("://")[0]
    example = _url_example(scheme)
    host_port = url.partition("://")[2].partition("/")[0].partition("?")[0].rpartition("@")[2]
    after_host = host_port.rpartition("]")[2]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
        if not after_host.endswith(":"):
            return
    except ValueError:
        pass
    if after_host.endswith(":"):  # `host:/db`: urllib reads no port, SQLAlchemy int('')
        what = f"{host_port!r} has a ':' and no port after it"
    elif host_port.count("[") != host_port.count("]"):
        what = f"the IPv6 address in {host_port!r} lacks its closing ]"
        example = example.replace("host", "[::1]")
    else:
        port = after_host.rpartition(":")[2]
        what = (
            f"its port {port!r} is not a number"
            if not port.isdigit()
            else f"its port {port} is out of range (0 to 65535)"
        )
    raise HpoError(f"storage {shown_url(url)!r} is malformed: {what}; write it as {example}")


def url_of_path(value: str) -> str:
    """`for the SQLite file x.db, write sqlite:///x.db` where a storage that is not a URL is the path of a
    SQLite file or journal (`storage: studies/x.db`, a new user's first guess), else ''. A `file:` URI's path
    (`file:studies/x.db`, `file:///abs/x.db`, as SQLite's own URIs name a file) is the file's: the advice was
    `sqlite:///file:studies/x.db`, a file named so."""
    if value.startswith("file:"):
        value = value.removeprefix("file:")
        value = "/" + value.lstrip("/") if value.startswith("//") else value
    value, _, query = value.partition("?")
    suffix = Path(value).suffix.lower()
    if suffix in (".db", ".sqlite", ".sqlite3"):
        return f"for the SQLite file {value}, write sqlite:///{value}" + (f"?{query}" if query else "")
    if suffix == ".log":
        return f"for the journal file {value}, write journal:{value}"
    return ""


def open_hint(url: str, error: str) -> str:
    """What to do about a server storage that refused to open, from its error text ("" when unknown)."""
    import re
    from urllib.parse import parse_qs, unquote, urlsplit

    try:
        parts = urlsplit(url)
        host, port, user = parts.hostname or "localhost", parts.port, unquote(parts.username or "")
    except ValueError:
        return ""
    if parts.scheme.lower() in ("redis", "rediss", "unix"):
        said = _redis_open_hint(url, error)
        if said:
            return said
    database = unquote(parts.path.lstrip("/"))
    missing = re.search(r"database \"([^\"]+)\" does not exist|Unknown database '([^']+)'", error)
    if missing:
        name = missing.group(1) or missing.group(2) or database
        if url.startswith("postgres"):
            command = (
                f"createdb -h {host}{f' -p {port}' if port else ''}{f' -U {user}' if user else ''} {name}"
            )
        else:
            command = (
                f"mysql -h {host}{f' -P {port}' if port else ''}{f' -u {user}' if user else ''} "
                f"-e 'CREATE DATABASE {name}'"
            )
        return f"; create the database first: {command}"
    lowered = error.lower()
    if any(word in lowered for word in ("password", "access denied", "role ", "authentication", "auth ")):
        where = " (or in ~/.pgpass, PGPASSWORD)" if url.startswith("postgres") else ""
        return f"; check the user name and password in the URL{where}"
    where = f"{host}{f':{port}' if port else ''}"
    hosts = parse_qs(parts.query).get("host") if parts.hostname is None else None
    if hosts:  # postgresql+psycopg://user@/db?host=a:5432&host=b:5432, which said "running on localhost?"
        where = ", ".join(hosts)
    if url.startswith("rediss://") and any(
        word in lowered for word in ("timed out", "timeout", "ssl", "tls")
    ):
        # A TLS handshake with a Redis that speaks plain text waits for a reply that never comes.
        return (
            f"; rediss:// connects with TLS: if the Redis on {where} does not take TLS connections, use "
            f"redis://{where}; otherwise is the server running there? check the host and port in the URL"
        )
    if any(word in lowered for word in ("refused", "resolve", "not known", "timed out", "timeout")):
        return f"; is the server running on {where}? check the host and port in the URL"
    if "db index is out of range" in lowered:
        return "; Redis numbers its databases from 0 (16 of them unless configured): redis://host:6379/0"
    return ""


def _redis_open_hint(url: str, error: str) -> str:
    """What to do about a Redis storage that refused to open, where its error says more than a server to
    start ("" otherwise; `open_hint` then gives the hint of every server): a `unix://` socket that is not
    there, a server at the port that is not a Redis taking plain connections, an ACL user that may not use
    the journal's keys, a query value redis-py cannot read."""
    import re
    from urllib.parse import unquote, urlsplit

    from hpotool.storage_url import redis_prefix

    parts = urlsplit(url)
    lowered = error.lower()
    if parts.scheme.lower() == "unix" and any(word in lowered for word in ("no such file", "refused")):
        return (
            f"; is the Redis server running, listening on the socket {unquote(parts.path)}? check the "
            f"socket's path in the URL (the server's unixsocket setting)"
        )
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if "connection closed by server" in lowered or "connection reset by peer" in lowered:
        # what a PostgreSQL or MySQL server does with Redis's first command, and a Redis that takes TLS alone
        tls = (
            ""
            if parts.scheme.lower() == "rediss"
            else f", or, for a Redis that takes TLS connections alone, rediss://{where}"
        )
        return (
            f"; is the server on {where} a Redis server (its default port is 6379)? check the host and port in "
            f"the URL{tls}"
        )
    if "no permissions to access" in lowered:  # an ACL user whose key patterns leave out this journal's
        user = unquote(parts.username or "default")
        prefix = redis_prefix(url)[2]
        keys = f"{prefix}:*" if prefix else "log_number, log:*, as the URL gives no ?prefix="
        return (
            f"; the Redis user {user} may not use this journal's keys ({keys}): give the ?prefix= its key "
            f"patterns allow (redis-cli ACL GETUSER {user} lists them), or have them widened"
        )
    if "no permissions to run" in lowered:
        user = unquote(parts.username or "default")
        return (
            f"; the Redis user {user} may not run a command hpotool needs: have its ACL allow them (redis-cli "
            f"ACL SETUSER {user} +@read +@write +@keyspace +@transaction +@connection)"
        )
    invalid = re.search(r"Invalid value for '(\w+)' in connection URL", error)
    if invalid:
        name = invalid.group(1)
        return f"; correct or leave out ?{name}= in the URL: redis-py could not read its value"
    if "protocol must be" in lowered:
        return "; write ?protocol=3 (or 2), or leave it out"
    return ""


_URL_FORMS = ("sqlite", "postgresql+psycopg", "mysql+pymysql", "mariadb+pymysql", "redis")


def unknown_scheme(url: str) -> str:
    """What to write instead of a URL scheme SQLAlchemy has no dialect or driver for (`postgres`, which
    SQLAlchemy 1.4 dropped, `sqllite`, `postgresql+psycopg3`)."""
    scheme = url.partition("://")[0]
    near = "postgresql+psycopg" if scheme.partition("+")[0] == "postgres" else None
    if near is None:
        from hpotool.near_names import closest

        found = closest(scheme, _URL_FORMS, n=1)
        near = found[0] if found else None
    hint = f" (did you mean {near!r}?)" if near else ""
    return (
        f"no database or driver {scheme!r}{hint}; use sqlite:///path.db, postgresql+psycopg://..., "
        f"mysql+pymysql://..., redis://host:6379 or journal:path.log"
    )
