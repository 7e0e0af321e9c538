"""Tiny, seeded configs on real data: digits, a 10% subset, 2 epochs, 3 trials."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import uuid
import warnings
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import yaml
from hypothesis import settings

import hpotool.cli.terminal
from tests.redis_keys import delete_redis_keys

# What a user's shell may carry into `make test` and would change what the commands the tests run print, or
# how long they wait: hpotool's own settings (HPOTOOL_HEARTBEAT_GRACE=5 made every "stale: no heartbeat for
# 60 s" a "5 s"; the tests that need one set it), and rich's terminal settings (FORCE_COLOR=1, which many CI
# services set, drew progress bars into every command's captured stderr; COLUMNS and LINES sized its tables).
# The suite's own switches (HPOTOOL_REQUIRE_*, HPOTOOL_WRITE_ERRORS_DOC, HPOTOOL_TEST_*) are kept.
_SUITE_SWITCHES = ("HPOTOOL_REQUIRE_", "HPOTOOL_WRITE_ERRORS_DOC", "HPOTOOL_TEST_")
for _name in list(os.environ):
    if (_name.startswith("HPOTOOL_") and not _name.startswith(_SUITE_SWITCHES)) or _name in (
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "COLUMNS",
        "LINES",
    ):
        del os.environ[_name]

# Wide, colourless output so messages are asserted whole (fastapi-cli widens its console the same way).
os.environ["NO_COLOR"] = "1"
for _console in (hpotool.cli.terminal.out_console(), hpotool.cli.terminal.err_console()):
    _console.width = 3000
    _console.no_color = True

# A test run started in the background by a non-interactive shell (`make test &` in a script, `nohup ... &`
# in a subshell) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler, in this
# process or in the commands the tests start: every Ctrl-C test saw nothing (exit 0, no KeyboardInterrupt).
# Python's own handler restores what an interactive run has; the commands started get SIGINT's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The property tests draw new examples on every run, which is how they find a space no one wrote down. In CI
# (`.ci/run` sets HPOTOOL_REQUIRE_SERVERS) they draw the same examples for the same code, so a landing is
# decided by the code, not by the luck of the draw; a failure found locally prints the example to add with
# @example, as test_audit_refine's explicit examples were added.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("HPOTOOL_REQUIRE_SERVERS") == "1":
    settings.load_profile("ci")

RUN: dict[str, Any] = {
    "project": "tiny",
    "seed": 0,
    "device": "cpu",
    "torch_threads": 1,
    "data": {"name": "digits", "val_fraction": 0.2, "subset_fraction": 0.1},
    "model": {"name": "mlp", "hidden": [16], "dropout": 0.0},
    "optimizer": {"name": "adam", "lr": 1e-2},
    "epochs": 2,
    "batch_size": 32,
}

OPTIMIZE: dict[str, Any] = {
    "study_name": "tiny",
    "n_trials": 3,
    "seed": 0,
    "metric": "val_accuracy",
    "direction": "maximize",
    "sampler": {"name": "random"},
    "pruner": {"name": "nop"},
    "search_space": {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
    },
}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_configs(folder: Path, run: dict[str, Any], opt: dict[str, Any]) -> tuple[Path, Path]:
    """`run` and `opt` written to folder/run.yaml and folder/optimize.yaml, as a test has just set them."""
    return write_yaml(folder / "run.yaml", run), write_yaml(folder / "optimize.yaml", opt)


def ask_with_heartbeat(study: optuna.Study) -> optuna.Trial:
    """`study.ask()` on a storage with a heartbeat, without Optuna's UserWarning that heartbeats are
    meant for `Study.optimize` (the tests ask trials up as a worker's loop would)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.ask()


def load_study(opt: dict[str, Any]) -> optuna.Study:
    """The study `opt` names, read back from its storage."""
    return optuna.load_study(study_name=opt["study_name"], storage=opt["storage"])


@pytest.fixture
def run_dict() -> dict[str, Any]:
    import copy

    return copy.deepcopy(RUN)


@pytest.fixture
def opt_dict(tmp_path: Path) -> dict[str, Any]:
    import copy

    d = copy.deepcopy(OPTIMIZE)
    d["storage"] = f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"
    return d


@pytest.fixture
def configs(tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]) -> tuple[Path, Path]:
    """The tiny run and optimize configs, written to files."""
    return write_configs(tmp_path, run_dict, opt_dict)


# The RDB storages a race is tested on: SQLite, whose row lock (SELECT ... FOR UPDATE) is a no-op, and the
# two servers, whose row lock is not. A server not reachable skips its test (fails it under
# HPOTOOL_REQUIRE_SERVERS=1); `-m "not server"` leaves them out.
RDB_KINDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.server),
    pytest.param("mysql", marks=pytest.mark.server),
]


@pytest.fixture(params=RDB_KINDS)
def rdb_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an RDB storage of each kind: tmp_path/s.db, or the PostgreSQL or MySQL test server (shared
    with other tests and test processes: name what you create there uniquely, `unique_name`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    from tests.test_workers import _server_url

    return _server_url(request.param)


@pytest.fixture(params=["journal", pytest.param("redis", marks=pytest.mark.server)])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh Optuna journal of each kind: tmp_path/studies/j.log, or a prefix of its own on the
    Redis test server (a skip where it is not reachable; a failure under HPOTOOL_REQUIRE_SERVERS=1), its keys
    deleted after the test."""
    if request.param == "journal":
        yield f"journal:{tmp_path / 'studies' / 'j.log'}"
        return
    import redis

    from tests.test_workers import _server_url

    server = _server_url("redis")
    prefix = f"hpotool-test-{uuid.uuid4().hex[:12]}"
    yield f"{server}?prefix={prefix}"
    delete_redis_keys(redis.Redis.from_url(server), f"{prefix}:*")


def unique_name() -> str:
    """A study name no other test, nor another test process on the same server, uses."""
    return f"hpotool-test-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class SharedStudy:
    """One study as two processes see it: `study`, opened through `mine` (hpotool's storage, as this process
    opens it), and `other`, another process's storage on the same database."""

    url: str
    name: str
    mine: optuna.storages.BaseStorage
    other: optuna.storages.BaseStorage
    study: optuna.Study

    @property
    def on_sqlite(self) -> bool:
        """Whether the database is SQLite, where a row read FOR UPDATE is not locked: another process can
        write it between this one's read and write (a server's lock keeps the other waiting for this one)."""
        return self.url.startswith("sqlite")

    def seen_by_other(self) -> optuna.Study:
        """The study through `other`."""
        return optuna.load_study(study_name=self.name, storage=self.other)

    def stored(self) -> optuna.Study:
        """The study read back through a storage of its own: what the database holds."""
        return optuna.load_study(study_name=self.name, storage=self.url)

    def seen_by_a_stale_check(self) -> tuple[optuna.Study, Any]:
        """The study through `other`, and `other`'s heartbeat backend, which takes any beat for stale (the
        database's clock counts whole seconds: a grace of -1 makes a beat of this instant stale)."""
        other = self.seen_by_other()
        backend = other._storage._backend  # type: ignore[attr-defined]
        backend.grace_period = -1
        return other, backend

    def one_trial_configs(self, folder: Path, run: dict[str, Any], opt: dict[str, Any]) -> tuple[Path, Path]:
        """`run` and `opt` written to `folder` as a study of one trial on this study's name and URL,
        minimizing val_loss over optimizer.lr."""
        opt.update(
            study_name=self.name, storage=self.url, n_trials=1, metric="val_loss", direction="minimize"
        )
        opt["search_space"] = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
        return write_configs(folder, run, opt)


@pytest.fixture
def two_redis_databases() -> Iterator[tuple[str, int, int]]:
    """The shared Redis server's URL and the numbers of two databases this test alone uses there
    (`tests.redis_databases`): a study kept in one, looked for from the other. A skip where there is no
    server (a failure under HPOTOOL_REQUIRE_SERVERS=1)."""
    from tests.redis_databases import own_databases
    from tests.test_workers import _server_url

    server = _server_url("redis")
    with own_databases(server, 2) as (first, second):
        yield server, first, second


@pytest.fixture
def shared_study(rdb_url: str) -> Iterator[SharedStudy]:
    """A new study of a unique name on each RDB storage (`rdb_url`), created through hpotool's storage, with
    another process's storage on its URL beside it; deleted after the test."""
    from hpotool.storage import make_storage

    name = unique_name()
    mine, other = make_storage(rdb_url), make_storage(rdb_url)
    study = optuna.create_study(study_name=name, storage=mine)
    try:
        yield SharedStudy(rdb_url, name, mine, other, study)
    finally:
        optuna.delete_study(study_name=name, storage=rdb_url)


# The engines of server storages (PostgreSQL, MySQL) the tests opened. A test drops its storages open, and
# their pooled connections, collected during a later test, made psycopg warn "... was deleted while still
# open" (ResourceWarning, shown with -W default): 27 in test_waiting alone. A command's process ends instead.
# Their idle connections are closed when a test ends, or when the engine is collected before.
_ENGINES: weakref.WeakSet[sqlalchemy.engine.Engine] = weakref.WeakSet()
_POOLS: weakref.WeakSet[sqlalchemy.pool.Pool] = weakref.WeakSet()


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "engine_connect")
def _engine_used(connection: sqlalchemy.engine.Connection) -> None:
    engine = connection.engine
    if engine.dialect.name == "sqlite" or engine.pool in _POOLS:
        return
    _ENGINES.add(engine)
    _POOLS.add(engine.pool)
    weakref.finalize(engine, engine.pool.dispose)


@pytest.fixture(autouse=True)
def _close_server_connections() -> Iterator[None]:
    """Close the idle pooled connections of the server storages a test opened, once it ends."""
    yield
    for engine in list(_ENGINES):
        engine.dispose()


# A test that hangs is failed by pytest-timeout (`timeout` in pyproject.toml): SIGALRM raises in the test where
# it waits, so its `finally` blocks and fixtures still end what it started. A command it left running (no
# `finally`, or one that outlasted it) would run on, hung perhaps, long after the test run: those processes
# that the test started and that are still this process's children when it timed out are killed.
_TIMED_OUT = pytest.StashKey[bool]()


def _children() -> set[int]:
    """The processes this one started that are still its children (Linux's /proc/self/task/*/children)."""
    found: set[int] = set()
    for listed in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.update(int(pid) for pid in listed.read_text().split())
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and "from pytest-timeout" in str(call.excinfo.value):  # setup or call
        item.stash[_TIMED_OUT] = True
    return report


@pytest.fixture(autouse=True)
def _nothing_left_running_by_a_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kill the processes a timed-out test started and left running: a command in a session of its own
    (`start_new_session`) with its whole process group (its workers), any other alone."""
    before = _children()
    yield
    if not request.node.stash.get(_TIMED_OUT, False):
        return
    for pid in _children() - before:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_interrupt_pending() -> Iterator[None]:
    """Start each test with no interrupt pending, as a new hpotool process does: one a test raised outside a
    command (`interrupts.interrupt`, caught by `pytest.raises`) stayed recorded, and the next test of the same
    process that trained outside a command (`saved.train_and_save`) raised it again at its first epoch's
    `raise_dropped`: a KeyboardInterrupt that crashed the whole xdist worker, far from its cause."""
    interrupts = sys.modules.get("hpotool.interrupts")
    if interrupts is not None:
        interrupts._raised.clear()  # type: ignore[attr-defined]
    yield


# Optuna's verbosity as a new process has it (INFO). A command run in the test process leaves it at WARNING
# (`study_run.open_for_run`), and test modules that set ERROR as they were imported set it for every test of
# the process, collected with them: under xdist each process collects every module, and a test asserting that
# a command logs no Optuna warning (test_fallback's "sampled independently") could not fail, the warning
# never logged.
_OPTUNA_VERBOSITY = optuna.logging.get_verbosity()


@pytest.fixture(autouse=True)
def _loggers_as_in_a_new_process() -> None:
    """Start each test with Optuna's verbosity, and hpotool's logger and `--debug`, as a new hpotool process
    has them: a `--debug` command left hpotool's logger at DEBUG with its handler on stderr, and its errors
    raised whole (`cli.root.user_errors`), for the tests after it that call hpotool's functions directly
    (only a later command without `--debug` took them away)."""
    if optuna.logging.get_verbosity() != _OPTUNA_VERBOSITY:
        optuna.logging.set_verbosity(_OPTUNA_VERBOSITY)
    root = sys.modules.get("hpotool.cli.root")
    if root is not None:
        root.state.debug = False  # type: ignore[attr-defined]
    logger = logging.getLogger("hpotool")
    if logger.level != logging.NOTSET or logger.handlers:
        logger.setLevel(logging.NOTSET)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


# torch's CPU thread count in a test process: one. `make test` runs three test processes on the machine's cores,
# and torch's default (a thread a core) in each made the tests that train in the test process 13-30% slower
# in CPU (test_export, test_objective and test_conditions on 2 cores: 125 s of CPU at one thread, 141-165 s at
# two). A command run in the test process also sets it (the run config's `torch_threads`, `runner.train_run`)
# for good, and every later test of the process trained with it, a run config's `torch_threads: null` ("keeps
# torch's default") included: each test starts and ends with this count. Set as torch is first imported (by a
# test, or a test module as it is collected), not by importing torch here: a test run of modules that never
# use torch would wait for it. The `hpotool` processes a test starts, and their workers, keep torch's default.
TEST_TORCH_THREADS = 1


class _TorchThreadsAtImport(importlib.abc.MetaPathFinder):
    """Sets `TEST_TORCH_THREADS` once `import torch` has run torch's __init__."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torch":
            return None
        sys.meta_path.remove(self)  # once: the spec below is found by the finders after it
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        run_init = loader.exec_module

        def exec_module(module: Any) -> None:
            run_init(module)
            module.set_num_threads(TEST_TORCH_THREADS)

        loader.exec_module = exec_module
        return spec


if "torch" in sys.modules:  # imported before this conftest (a plugin)
    sys.modules["torch"].set_num_threads(TEST_TORCH_THREADS)
else:
    sys.meta_path.insert(0, _TorchThreadsAtImport())


@pytest.fixture(autouse=True)
def _torch_threads_as_imported() -> Iterator[None]:
    """End each test with torch's thread count at `TEST_TORCH_THREADS`."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != TEST_TORCH_THREADS:
        torch.set_num_threads(TEST_TORCH_THREADS)


@pytest.fixture(autouse=True)
def _in_tmp_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Run each test in its own folder so default paths (studies/, runs/) never touch the checkout; and
    forget the user modules it wrote there and imported once it ends, as a new hpotool process would: a
    later test of the same test process writing a module of the same name in its own folder would otherwise
    be refused ("the module ... Python had already imported is ..."), a failure that depends on which tests
    xdist gives one process. The folder is taken off sys.path too, where importing a user's module put it
    (`import_paths`, as `python -m` does): a later test's import of a module it had not written found the
    one an earlier test had left there, where the user's would not have been found."""
    if "keep_cwd" not in request.keywords:
        monkeypatch.chdir(tmp_path)
    # Only the modules imported since (none of tmp_path's can be older: the folder is this test's, and this
    # fixture is set up before any of the test's own): reading `__file__` of each of the ~2,900 modules torch,
    # optuna and scikit-learn leave took 4-5 ms a test (now 0.3-1 ms), ~10 s of CPU over the suite.
    before = dict(sys.modules)
    yield
    folders = tuple({f"{tmp_path}{os.sep}", f"{tmp_path.resolve()}{os.sep}"})
    for name in [name for name, module in sys.modules.items() if before.get(name) is not module]:
        file = getattr(sys.modules[name], "__file__", None)
        if isinstance(file, str) and file.startswith(folders):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not f"{p}{os.sep}".startswith(folders)]


@pytest.fixture
def lock_read_only() -> Iterator[Callable[[Path], None]]:
    """Makes a folder read-only: a read-only mount as root, whom file modes do not stop; its modes
    otherwise. Undone after the test."""
    undo: list[Callable[[], None]] = []

    def lock(folder: Path) -> None:
        if os.geteuid() != 0:
            paths = [*folder.iterdir(), folder]
            for path in paths:
                path.chmod(0o555 if path.is_dir() else 0o444)
            undo.append(lambda: [path.chmod(0o755) for path in paths] and None)
            return
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if bind.returncode != 0:
            pytest.skip(f"cannot make a read-only mount here: {bind.stderr.decode().strip()}")
        undo.append(lambda: subprocess.run(["umount", "--lazy", str(folder)], check=True) and None)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)

    yield lock
    for step in undo:
        step()
