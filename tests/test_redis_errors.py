"""A Redis storage that fails, said as a PostgreSQL or MySQL one is: one line naming the URL (its password
hidden), the server's own words without redis-py's wrapping, and what to do. Each against a real server: the
local one, one of the test's own (`_own_redis`: a password, an ACL, a full memory, a replica), or a port
nothing listens on."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hpotool.cli import app

from .conftest import write_configs
from .test_storage import _own_redis, redis_with_password  # noqa: F401 - a fixture, used by name
from .test_workers import _server_url


def _hpotool(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@contextlib.contextmanager
def _own_plain_redis(tmp_path: Path, *options: str) -> Iterator[str]:
    """The URL of a Redis server of this test's own on a free port, started with `options`."""
    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    url = f"redis://127.0.0.1:{port}"
    with _own_redis(tmp_path, url, "--port", str(port), "--bind", "127.0.0.1", *options):
        yield url


def test_a_redis_port_nothing_listens_on_is_said_in_plain_words() -> None:
    # redis-py's "Error 111 connecting to 127.0.0.1:1. Connection refused." was the line's middle.
    result = _hpotool("studies", "--storage", "redis://127.0.0.1:1")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: --storage: 'redis://127.0.0.1:1': cannot open it: connection to 127.0.0.1:1 failed: Connection "
        "refused; is the server running on 127.0.0.1:1? check the host and port in the URL\n"
    )


def test_a_lost_redis_connection_is_said_without_redis_pys_class_name_and_error_number() -> None:
    # `optimize`'s "stopped answering during the study (ConnectionError: Error 111 connecting to
    # 127.0.0.1:6393. Connection refused.)" for a Redis gone mid-study.
    import redis

    from hpotool.storage_faults import lost_cause

    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        redis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=5).ping()
    assert lost_cause(refused.value) == "connection to 127.0.0.1:1 failed: Connection refused"


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        # redis-py's words for a name that does not resolve, a reset connection, a pipeline's command
        (
            "Error -2 connecting to nohost.invalid:6379. Name or service not known.",
            "connection to nohost.invalid:6379 failed: Name or service not known",
        ),
        (
            "Error while reading from 127.0.0.1:3306 : (104, 'Connection reset by peer')",
            "reading from 127.0.0.1:3306 failed: Connection reset by peer",
        ),
        (
            "hpotool-worker-0: Command # 1 (SETNX p:log_number -1) of pipeline caused error: command not "
            "allowed when used memory > 'maxmemory'",
            "hpotool-worker-0: command not allowed when used memory > 'maxmemory'",
        ),
    ],
)
def test_redis_pys_wording_is_made_plain(said: str, plain: str) -> None:
    from hpotool.storage_faults import driver_words

    assert driver_words(said) == plain


def test_a_missing_redis_socket_names_the_socket(tmp_path: Path) -> None:
    sock = tmp_path / "none.sock"
    result = _hpotool("studies", "--storage", f"unix://{sock}")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: --storage: 'unix://{sock}': cannot open it: connection to {sock} failed: No such file or "
        f"directory; is the Redis server running, listening on the socket {sock}? check the socket's path in "
        f"the URL (the server's unixsocket setting)\n"
    )


@pytest.mark.parametrize("command", [["studies"], ["trials", "--study-name", "tiny"]])
@pytest.mark.parametrize("query", ["?prefix=p", "?prefix=p&protocol=2"])
def test_a_redis_url_without_the_password_its_server_asks_for_says_where_to_write_it(
    redis_with_password: str,  # noqa: F811 - the fixture
    command: list[str],
    query: str,
) -> None:
    # "cannot open it: HELLO must be called with the client already authenticated, otherwise the HELLO AUTH
    # <user> <pass> option can be used to authenticate the client and select the RESP protocol version at
    # the same time; check the user name and password in the URL" (over RESP2: "Authentication required.")
    url = redis_with_password.replace(":s3cret@", "") + query
    result = _hpotool(*command, "--storage", url)
    assert result.exit_code == 2, result.output
    with_one = url.replace("redis://", "redis://:PASSWORD@")
    assert result.stderr == (
        f"error: --storage: {url!r}: its Redis server asks for a password, and the URL gives none; write it in "
        f"the URL: {with_one} (USER:PASSWORD@ for a user of its ACL)\n"
    )


def test_a_port_of_another_server_than_redis_is_named() -> None:
    # PostgreSQL closes the connection on Redis's first command: "cannot open it: Connection closed by
    # server." and no hint.
    from sqlalchemy.engine import make_url

    server = make_url(_server_url("postgres"))
    where = f"{server.host}:{server.port or 5432}"
    result = _hpotool("studies", "--storage", f"redis://{where}")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: --storage: 'redis://{where}': cannot open it: Connection closed by server; is the server on "
        f"{where} a Redis server (its default port is 6379)? check the host and port in the URL, or, for a "
        f"Redis that takes TLS connections alone, rediss://{where}\n"
    )


def test_an_acl_user_kept_from_the_journals_keys_is_told_which_prefix(tmp_path: Path) -> None:
    # "cannot open it: this user has no permissions to access one of the keys used as arguments", and no hint
    import redis

    with _own_plain_redis(tmp_path) as url:
        redis.Redis.from_url(url).acl_setuser(
            "hpo", enabled=True, passwords=["+pw"], keys=["mine:*"], commands=["+@all"]
        )
        given = url.replace("redis://", "redis://hpo:pw@") + "?prefix=theirs"
        result = _hpotool("studies", "--storage", given)
        assert _hpotool("studies", "--storage", given.replace("theirs", "mine")).exit_code == 0
    assert result.exit_code == 2, result.output
    shown = given.replace(":pw@", ":***@")
    assert result.stderr == (
        f"error: --storage: {shown!r}: cannot open it: this user has no permissions to access one of the keys "
        f"used as arguments; the Redis user hpo may not use this journal's keys (theirs:*): give the ?prefix= "
        f"its key patterns allow (redis-cli ACL GETUSER hpo lists them), or have them widened\n"
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        # redis-py: "Invalid value for 'db' in connection URL."
        (
            "redis://127.0.0.1:1?db=hpo",
            "a Redis URL's ?db= is a database number (0, 1, ...), not a name; to keep this study's journal "
            "apart write redis://127.0.0.1:1?prefix=hpo",
        ),
        # redis-py: SELECT -1, "DB index is out of range"; before, ?prefix=-1 was the advice
        (
            "redis://127.0.0.1:1/-1?prefix=p",
            "a Redis URL's database number counts from 0 (16 databases unless the server is configured "
            "otherwise), not -1; write redis://127.0.0.1:1/0?prefix=p",
        ),
        # "redis:?prefix=hpo", a URL redis-py refuses
        (
            "redis:///hpo",
            "a Redis URL's path is a database number (0, 1, ...), not a name; to keep this study's journal "
            "apart write redis://?prefix=hpo",
        ),
    ],
)
def test_a_redis_database_that_is_not_a_number_from_0_is_refused_before_connecting(
    url: str, said: str, configs: tuple[Path, Path]
) -> None:
    for args in (
        ["studies", "--storage", url],
        ["optimize", "-r", str(configs[0]), "-o", str(configs[1]), "--storage", url, "--dry-run"],
    ):
        result = _hpotool(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: --storage: {url!r}: {said}\n"


def test_a_redis_url_query_value_redis_py_cannot_read_is_named() -> None:
    # "Invalid value for 'socket_timeout' in connection URL; is the server running on 127.0.0.1:1? check the
    # host and port in the URL": "timeout" in the name read as a server that timed out.
    result = _hpotool("studies", "--storage", "redis://127.0.0.1:1?socket_timeout=abc")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: --storage: 'redis://127.0.0.1:1?socket_timeout=abc': cannot open it: Invalid value for "
        "'socket_timeout' in connection URL; correct or leave out ?socket_timeout= in the URL: redis-py could "
        "not read its value\n"
    )


def _refused_run(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any], url: str) -> Any:
    paths = write_configs(tmp_path, run, {**opt, "storage": url})
    return _hpotool("optimize", "-r", str(paths[0]), "-o", str(paths[1]), "-q")


def test_a_redis_at_its_maxmemory_ends_optimize_in_one_line_and_it_resumes(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # Redis's `OOM command not allowed when used memory > 'maxmemory'` (its default policy, noeviction):
    # a traceback and exit code 1, creating the study or resuming it.
    import optuna
    import redis

    from hpotool.storage import make_storage

    with _own_plain_redis(tmp_path) as server:
        client = redis.Redis.from_url(server)
        url = f"{server}?prefix=full"
        client.config_set("maxmemory", "1")  # every write refused
        created = _refused_run(tmp_path, run_dict, {**opt_dict, "n_trials": 1}, url)
        client.config_set("maxmemory", "0")
        assert _refused_run(tmp_path, run_dict, {**opt_dict, "n_trials": 1}, url).exit_code == 0
        client.config_set("maxmemory", "1")
        resumed = _refused_run(tmp_path, run_dict, {**opt_dict, "n_trials": 3}, url)
        client.config_set("maxmemory", "0")
        study = optuna.load_study(study_name=opt_dict["study_name"], storage=make_storage(url))
        assert [t.state.name for t in study.get_trials()] == ["COMPLETE"]
        assert _refused_run(tmp_path, run_dict, {**opt_dict, "n_trials": 3}, url).exit_code == 0
    port = server.rpartition(":")[2]
    for result in (created, resumed):
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: storage {url!r} refused to write during the study (command not allowed when used memory > "
            f"'maxmemory'): its Redis server is at its maxmemory: raise it (redis-cli -h 127.0.0.1 -p {port} "
            f"CONFIG SET maxmemory 2gb) or free memory there (delete the journals no longer needed); the trials "
            f"it holds are kept, and those that were running stay RUNNING there. Once it writes again, run the "
            f"same command to resume: it marks them FAIL ('worker died') and runs their parameters again\n"
        )


def test_a_redis_replica_ends_optimize_in_one_line_naming_its_primary(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    # A replica answers reads and refuses writes ("READONLY You can't write against a read only replica."):
    # a traceback and exit code 1. Its primary need not be there: a replica refuses writes all the same.
    with _own_plain_redis(tmp_path, "--replicaof", "127.0.0.1", "1") as server:
        url = f"{server}?prefix=ro-{uuid.uuid4().hex[:8]}"
        result = _refused_run(tmp_path, run_dict, opt_dict, url)
    assert result.exit_code == 2, result.output
    port = server.rpartition(":")[2]
    assert result.stderr.startswith(
        f"error: storage {url!r} refused to write during the study (You can't write against a read only "
        f"replica): its Redis server is a read-only replica: give the URL of its primary (master_host and "
        f"master_port in redis-cli -h 127.0.0.1 -p {port} INFO replication); the trials it holds are kept"
    ), result.stderr
    assert result.stderr.count("\n") == 1


def test_fail_stale_on_a_redis_at_its_maxmemory_says_so_in_one_line(tmp_path: Path) -> None:
    # fail-stale found the dead worker's trial and printed a traceback marking it FAIL, exit code 1:
    # "redis.exceptions.OutOfMemoryError: Command # 1 (SETNX p:log_number -1) of pipeline caused error: ..."
    import redis

    from .test_storage import _study_with_a_dead_trial

    with _own_plain_redis(tmp_path) as server:
        url = f"{server}?prefix=p"
        _study_with_a_dead_trial(url)
        redis.Redis.from_url(server).config_set("maxmemory", "1")
        result = _hpotool("fail-stale", "--study-name", "s", "--storage", url)
    assert result.exit_code == 2, result.output
    port = server.rpartition(":")[2]
    assert result.stderr == (
        f"error: storage {url!r} refused to write (command not allowed when used memory > 'maxmemory'): its "
        f"Redis server is at its maxmemory: raise it (redis-cli -h 127.0.0.1 -p {port} CONFIG SET maxmemory "
        f"2gb) or free memory there (delete the journals no longer needed); the study it holds is kept: once "
        f"it writes again, run the same command\n"
    )
