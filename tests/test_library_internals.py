"""The private parts of torch, PyMySQL, the standard library, typer and rich that hpotool relies on, one test
each: the symbol exists, has the shape hpotool uses, and behaves as hpotool expects, checked through
hpotool's own function (as tests/test_optuna_internals.py does for Optuna's).

torch and PyMySQL offer no public way to do what these do (see each test); a release may rename or change
any of them: the test that fails names the hpotool module that depends on the part, so an upgrade fails here,
once and clearly, instead of in users' runs or as a silent slowdown (lean_step and models fall back to
torch's own calls where a part is missing). psycopg, redis and SQLAlchemy are used through their public
APIs only (Optuna's Redis backend's `_redis` and `_prefix` are Optuna's: tests/test_optuna_internals.py).

Of the standard library hpotool uses `multiprocessing.forkserver._forkserver` and `atexit._run_exitfuncs`,
of typer the click it vendors (`typer._click`, whose exceptions typer does not export), and of rich a
console's `_render_hooks`; pydantic, plotly and PyYAML through their public APIs only (a namedtuple's
`_replace` is its public API)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import subprocess
import sys
import warnings
from typing import Any

import pytest
import torch
from torch import nn


def _private(module: str, name: str, user: str, library: str = "torch") -> Any:
    """The private `module.name`, or a failure naming the hpotool module `user` that uses it."""
    version = _version(library)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(f"{library} {version} has no {module}.{name}, which {user} uses: adapt {user}")


def _version(library: str) -> str:
    """torch's version, or PyMySQL's own (its `__version__` is the MySQLdb one it poses as), or Python's."""
    if library == "Python":
        return sys.version.split()[0]
    module = importlib.import_module(library.lower())
    if not hasattr(module, "__version__"):  # rich
        return importlib.metadata.version(library.lower())
    return str(getattr(module, "VERSION_STRING", module.__version__))


def _has(obj: Any, attrs: list[str], user: str, library: str = "torch") -> None:
    """Fail, naming `user`, unless `obj` has each private attribute of `attrs`."""
    missing = [a for a in attrs if not hasattr(obj, a)]
    where = obj.__name__ if isinstance(obj, type) else type(obj).__qualname__
    assert not missing, (
        f"{library} {_version(library)}: {where} has no {', '.join(missing)}, which {user} reads: adapt {user}"
    )


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


# torch


def test_a_module_s_own_hooks_and_compiled_call() -> None:
    """models._plain: a module's `_forward_hooks`, `_forward_pre_hooks`, `_backward_hooks`,
    `_backward_pre_hooks` (torch has no public "has hooks") and `_compiled_call_impl` (`Module.compile`)."""
    from hpotool.models import direct_call, run_layers

    user = "hpotool.models (_plain)"
    net = _net()
    layer = net[0]
    _has(layer, ["_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"], user)
    _has(layer, ["_compiled_call_impl"], user)
    _has(net, ["_modules"], "hpotool.models (run_layers)")
    assert list(net._modules.values()) == list(net), (
        f"torch: Sequential no longer runs its _modules in order: adapt {user}"
    )
    assert layer._compiled_call_impl is None
    x = torch.ones(2, 3)
    assert direct_call(net) == net.forward and torch.equal(run_layers(net, x), net(x))
    seen: list[str] = []
    for register in ("register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook"):
        hook = getattr(layer, register)(lambda *args, r=register: seen.append(r))
        assert direct_call(layer) is layer, f"torch: {register} not seen by {user}: adapt {user}"
        run_layers(net, x.requires_grad_()).sum().backward()
        assert register in seen, f"torch: {register}'s hook not called through run_layers: adapt {user}"
        hook.remove()
        assert direct_call(layer) == layer.forward
    layer._compiled_call_impl = lambda *args: seen.append("compiled") or torch.zeros(2, 4)  # Module.compile's
    assert direct_call(layer) is layer
    assert torch.equal(run_layers(net, x), net(x)) and seen.count("compiled") == 2, (
        f"torch {torch.__version__}: nn.Module.__call__ no longer calls _compiled_call_impl: adapt {user}"
    )


def test_the_global_module_hooks() -> None:
    """models._listened: `torch.nn.modules.module._global_forward_hooks`, `_global_forward_pre_hooks`,
    `_global_backward_hooks` and `_global_backward_pre_hooks`, where `register_module_*_hook` keeps them."""
    from hpotool.models import direct_call

    user = "hpotool.models (_listened)"
    where = "torch.nn.modules.module"
    for name in ("forward", "forward_pre", "backward", "backward_pre"):
        _private(where, f"_global_{name}_hooks", user)
    net = _net()
    register = nn.modules.module
    for name, hook_fn in (
        ("register_module_forward_hook", lambda *args: None),
        ("register_module_forward_pre_hook", lambda *args: None),
        ("register_module_full_backward_hook", lambda *args: None),
        ("register_module_full_backward_pre_hook", lambda *args: None),
    ):
        handle = getattr(register, name)(hook_fn)
        try:
            assert direct_call(net) is net, (
                f"torch {torch.__version__}: {name} not seen by {user}: adapt {user}"
            )
        finally:
            handle.remove()
        assert direct_call(net) == net.forward


def test_the_optimizer_s_step_hooks_and_the_profiler_flag() -> None:
    """lean_step._observed: an optimizer's `_optimizer_step_pre_hooks` and `_optimizer_step_post_hooks`,
    `torch.optim.optimizer._global_optimizer_pre_hooks` and `_global_optimizer_post_hooks`, and
    `torch.autograd._profiler_enabled()`: no public way tells whether anything watches `step()`."""
    from hpotool.lean_step import _observed

    user = "hpotool.lean_step (_observed)"
    _private("torch.optim.optimizer", "_global_optimizer_pre_hooks", user)
    _private("torch.optim.optimizer", "_global_optimizer_post_hooks", user)
    _private("torch.autograd", "_profiler_enabled", user)
    hooks = importlib.import_module("torch.optim.optimizer")  # torch.optim's `optimizer` is not the module
    opt = torch.optim.Adam(_net().parameters(), fused=True)
    _has(opt, ["_optimizer_step_pre_hooks", "_optimizer_step_post_hooks"], user)
    assert not _observed(opt)
    for register in (
        opt.register_step_pre_hook,
        opt.register_step_post_hook,
        hooks.register_optimizer_step_pre_hook,
        hooks.register_optimizer_step_post_hook,
    ):
        handle = register(lambda *args: None)
        try:
            assert _observed(opt), f"torch {torch.__version__}: {register.__name__} not seen: adapt {user}"
        finally:
            handle.remove()
        assert not _observed(opt)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        assert _observed(opt), f"torch {torch.__version__}: a running profiler not seen: adapt {user}"


def test_the_fused_kernels_lean_step_calls() -> None:
    """lean_step._adam_step and _sgd_step call the kernels `torch.optim.adam._fused_adam` and
    `torch.optim.sgd._fused_sgd` call: `torch._fused_adam_`, `torch._fused_adamw_`, `torch._fused_sgd_` and
    `torch._foreach_add_` (no public kernel); the parameters come out as with `optimizer.step()`."""
    from hpotool.lean_step import LeanStep

    user = "hpotool.lean_step (_adam_step, _sgd_step)"
    for name in ("_fused_adam_", "_fused_adamw_", "_fused_sgd_", "_foreach_add_"):
        _private("torch", name, user)
    for module, name, kernels in (
        ("torch.optim.adam", "_fused_adam", ["_fused_adam_", "_fused_adamw_", "_foreach_add_"]),
        ("torch.optim.sgd", "_fused_sgd", ["_fused_sgd_"]),
    ):
        mirrored = inspect.getsource(_private(module, name, user))
        calls = [k for k in kernels if f"torch.{k}" not in mirrored]
        assert not calls, f"torch {torch.__version__}: {module}.{name} no longer calls {calls}: adapt {user}"
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(8, 2)
    for make in (
        lambda p: torch.optim.Adam(p, lr=0.1, fused=True),
        lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, fused=True),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, fused=True),
    ):
        theirs, ours = _net(), _net()
        opt_theirs, opt_ours = make(theirs.parameters()), make(ours.parameters())
        lean = LeanStep(opt_ours)
        for _ in range(3):
            for net, step in ((theirs, opt_theirs.step), (ours, lean.step)):
                net.zero_grad(set_to_none=True)
                nn.functional.mse_loss(net(x), y).backward()
                step()
        assert lean._groups is not None, (
            f"torch {torch.__version__}: LeanStep no longer steps itself: adapt {user}"
        )
        for a, b in zip(theirs.parameters(), ours.parameters(), strict=True):
            assert torch.equal(a, b), f"torch {torch.__version__}: {type(opt_ours).__name__}: adapt {user}"


def test_what_an_lr_scheduler_reads_of_the_optimizer_s_steps() -> None:
    """LeanStep.step marks the optimizer `_opt_called` (and counts `_step_count`, older torch), as torch's
    wrapper around `step()` does, which the LR scheduler reads: else it warns its step came first."""
    from hpotool.lean_step import LeanStep

    user = "hpotool.lean_step (LeanStep.step)"
    assert "_opt_called" in inspect.getsource(torch.optim.lr_scheduler), (
        f"torch {torch.__version__}: lr_scheduler no longer reads the optimizer's _opt_called: adapt {user}"
    )
    net = _net()
    opt = torch.optim.Adam(net.parameters(), fused=True)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    lean = LeanStep(opt)
    net(torch.ones(2, 3)).sum().backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lean.step()
        scheduler.step()  # torch warns where it finds no optimizer.step() before it
    said = [str(w.message) for w in caught]
    assert not said, (
        f"torch {torch.__version__}: LeanStep's step unseen by the LR scheduler ({said}): adapt {user}"
    )
    assert lean._groups is not None


def test_the_autograd_engine_backward_calls() -> None:
    """lean_step.backward calls `torch.autograd.variable.Variable._execution_engine.run_backward` where
    `torch._C._are_functorch_transforms_active()` is false, as `torch.autograd.backward` does."""
    from hpotool import lean_step

    user = "hpotool.lean_step (backward)"
    _private("torch._C", "_are_functorch_transforms_active", user)
    engine = getattr(torch.autograd.variable.Variable, "_execution_engine", None)
    assert engine is not None and lean_step._ENGINE is engine, (
        f"torch {torch.__version__}: no Variable._execution_engine: adapt {user}"
    )
    theirs, ours = _net(), _net()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    theirs(x).pow(2).mean().backward()
    lean_step.backward(ours(x).pow(2).mean())
    for a, b in zip(theirs.parameters(), ours.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad), (
            f"torch {torch.__version__}: the engine's run_backward differs from loss.backward(): adapt {user}"
        )


def test_the_dynamo_disable_mark_defer_dynamo_sets() -> None:
    """lean_step.defer_dynamo sets `__dynamo_disable` on the `__wrapped__` methods of torch.optim.Optimizer,
    which `torch._disable_dynamo`'s wrapper calls instead of importing torch._dynamo
    (tests/test_lean_step.py checks that no run imports it)."""
    from hpotool.lean_step import defer_dynamo

    user = "hpotool.lean_step (defer_dynamo)"
    disable = inspect.getsource(_private("torch", "_disable_dynamo", user))
    assert '"__dynamo_disable"' in disable and "fn.__dynamo_disable" in disable, (
        f"torch {torch.__version__}: torch._disable_dynamo no longer keeps fn.__dynamo_disable: adapt {user}"
    )
    defer_dynamo()
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        wrapped = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        assert wrapped is not None and hasattr(wrapped, "__dynamo_disable"), (
            f"torch {torch.__version__}: Optimizer.{name} is no longer wrapped by torch._disable_dynamo: "
            f"adapt {user}"
        )
    opt = torch.optim.SGD(_net().parameters())
    opt.zero_grad()
    assert opt.state_dict()["param_groups"]


def test_the_schedules_a_sequential_or_chained_scheduler_holds() -> None:
    """schedulers.held_schedules reads `SequentialLR._schedulers` and `_milestones` and
    `ChainedScheduler._schedulers`: torch keeps them in no public attribute."""
    from hpotool.schedulers import held_schedules

    user = "hpotool.schedulers (held_schedules)"
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    first = torch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
    second = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sequential = torch.optim.lr_scheduler.SequentialLR(opt, [first, second], milestones=[3])
    _has(sequential, ["_schedulers", "_milestones"], user)
    assert list(sequential._schedulers) == [first, second] and list(sequential._milestones) == [3]
    held = held_schedules(sequential, 10)
    assert [(h.scheduler, h.span) for h in held] == [(first, 3), (second, 7)], (
        f"torch {torch.__version__}: SequentialLR's schedules not found: adapt {user}"
    )
    chained = torch.optim.lr_scheduler.ChainedScheduler([first, second], optimizer=opt)
    _has(chained, ["_schedulers"], user)
    assert [(h.scheduler, h.span) for h in held_schedules(chained, 5)] == [(first, 5), (second, 5)], (
        f"torch {torch.__version__}: ChainedScheduler's schedules not found: adapt {user}"
    )


def test_the_dropout_and_batch_norm_bases() -> None:
    """parts._check_container asks whether a layer hidden in a plain list or dict holds a dropout in
    training mode (`nn.modules.dropout._DropoutNd`), step_faults whether a model that failed on a batch of
    one sample holds a batch norm (`nn.modules.batchnorm._BatchNorm`): torch names no public base of every
    dropout or batch-norm layer. Gone, the first would let such a model pass and the second give the
    general hint."""
    user = "hpotool.parts (_check_container) and hpotool.step_faults"
    dropout = _private("torch.nn.modules.dropout", "_DropoutNd", user)
    batch_norm = _private("torch.nn.modules.batchnorm", "_BatchNorm", user)
    for layer in (
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
    ):
        assert issubclass(layer, dropout), f"torch {torch.__version__}: {layer.__name__}: adapt {user}"
    for layer in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LazyBatchNorm1d, nn.SyncBatchNorm):
        assert issubclass(layer, batch_norm), f"torch {torch.__version__}: {layer.__name__}: adapt {user}"
    assert not issubclass(nn.LayerNorm, batch_norm) and not issubclass(nn.InstanceNorm1d, batch_norm)

    from hpotool.errors import RunCheckError
    from hpotool.parts import _check_container

    kept = [nn.Sequential(nn.ReLU(), nn.Dropout(0.5))]
    with pytest.raises(RunCheckError, match="plain list"):
        _check_container("Net", "blocks", kept, set(), set())
    kept[0].eval()  # dropout off: a frozen part hidden on purpose
    _check_container("Net", "blocks", kept, set(), set())


# PyMySQL


def test_a_pymysql_connection_s_packet_reads_socket_and_read_timeout() -> None:
    """silence_drivers.PyMySQLDriver subclasses `pymysql.connections.Connection` to note each
    `_read_packet(packet_type)` (every read from the server), shuts a waiting connection's `_sock`, and
    silence.pymysql_connection clears `_read_timeout` once connected: PyMySQL has no public socket, read
    hook or read-timeout setter. Without these, a MySQL connection is left unwatched."""
    import pymysql.connections

    from hpotool.silence_drivers import PyMySQLDriver

    user = "hpotool.silence_drivers (PyMySQLDriver), hpotool.silence (pymysql_connection)"
    read = getattr(pymysql.connections.Connection, "_read_packet", None)
    assert callable(read) and list(inspect.signature(read).parameters)[:2] == ["self", "packet_type"], (
        f"PyMySQL {_version('PyMySQL')}: no Connection._read_packet(self, packet_type): adapt {user}"
    )
    watched = PyMySQLDriver.connection_class()
    assert watched is not None and issubclass(watched, pymysql.connections.Connection)
    conn = watched(host="127.0.0.1", port=1, read_timeout=7, defer_connect=True)
    _has(conn, ["_sock", "_read_timeout"], user, "PyMySQL")
    assert conn._read_timeout == 7 and conn._sock is None and PyMySQLDriver.socket(conn) == -1
    assert PyMySQLDriver.waiting(conn) is None


@pytest.mark.server
def test_a_watched_pymysql_connection_reads_through_read_packet() -> None:
    """On the MySQL/MariaDB test server: silence.pymysql_connection opens a watched connection, its
    `_sock` is the connected socket, its `_read_timeout` (the greeting's) is cleared, and each read from the
    server goes through `_read_packet`."""
    import sqlalchemy.engine

    from hpotool import silence_drivers
    from hpotool.silence import pymysql_connection
    from hpotool.silence_drivers import PyMySQLDriver
    from tests.test_workers import _server_url

    user = "hpotool.silence_drivers (PyMySQLDriver), hpotool.silence (pymysql_connection)"
    url = sqlalchemy.engine.make_url(_server_url("mysql"))  # skips where the server is absent
    cparams = {"host": url.host, "port": url.port or 3306, "user": url.username, "database": url.database}
    conn = pymysql_connection((), {**cparams, "password": url.password or ""}, greeting_timeout=5)
    try:
        assert isinstance(conn, PyMySQLDriver.connection_class() or ()), f"unwatched: adapt {user}"
        assert conn._read_timeout is None and conn._sock is not None
        assert PyMySQLDriver.socket(conn) == conn._sock.fileno() > 0
        before = next(silence_drivers._reads)
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert next(silence_drivers._reads) > before + 1, (
            f"PyMySQL: a query's answer is no longer read through Connection._read_packet: adapt {user}"
        )
        assert PyMySQLDriver.waiting(conn) is None
    finally:
        conn.close()
    assert PyMySQLDriver.socket(conn) == -1


# The standard library


def test_the_forkserver_s_pid_and_stop() -> None:
    """forkserver._replace_server and _stop_server read the running worker server's pid,
    `multiprocessing.forkserver._forkserver._forkserver_pid`, kill it and `_stop()` it (forget it, so that
    `ensure_running` starts another with other preloads): multiprocessing has no public pid or stop for it.
    Without them, a server started without torch would serve a run that needs it, and one left at exit
    holds the command's output open (`hpotool ... | tee log`)."""
    user = "hpotool.forkserver (_replace_server, _stop_server)"
    server = _private("multiprocessing.forkserver", "_forkserver", user, "Python")
    _has(server, ["_forkserver_pid", "_stop"], user, "Python")
    assert callable(server._stop)
    # In a process of its own: it starts and kills a server, as a command does.
    script = """
import os
from multiprocessing import forkserver
from hpotool.forkserver import START_METHOD, _replace_server, _stop_server, start_worker_server
assert START_METHOD == "forkserver", START_METHOD
start_worker_server(uses_torch=False)
pid = forkserver._forkserver._forkserver_pid
assert isinstance(pid, int) and pid > 0, pid
os.kill(pid, 0)
_replace_server()
assert forkserver._forkserver._forkserver_pid is None, "not forgotten"
try:
    os.kill(pid, 0)
except ProcessLookupError:
    pass
else:
    raise AssertionError("still running")
start_worker_server(uses_torch=False)
again = forkserver._forkserver._forkserver_pid
assert isinstance(again, int) and again != pid, (again, pid)
_stop_server()
try:
    os.kill(again, 0)
except ProcessLookupError:
    print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", f"Python {_version('Python')}: {done.stderr[-2000:]}: adapt {user}"


def test_atexit_s_run_exitfuncs() -> None:
    """cli.root.main runs the exit handlers itself, `atexit._run_exitfuncs()`, before it flushes the
    outputs and ends the process with `os._exit` (no interpreter teardown, ~0.7 s after torch): atexit has
    no public "run them now". Without it, main fails at the end of every command."""
    user = "hpotool.cli.root (main)"
    run = _private("atexit", "_run_exitfuncs", user, "Python")
    assert callable(run)
    # In a process of its own (this one's handlers are pytest's): main runs a handler registered before it,
    # once, and exits with the command's code.
    script = """
import atexit, sys
atexit.register(lambda: print("handler ran", flush=True))
sys.argv = ["hpotool", "--version"]
from hpotool.cli.root import main
main()
print("not reached")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (
        done.returncode == 0 and done.stdout.count("handler ran") == 1 and "not reached" not in done.stdout
    ), (
        f"Python {_version('Python')}: main's exit handlers: {done.stdout!r} {done.stderr[-2000:]}: adapt {user}"
    )


# typer


def test_the_usage_error_typer_vendors_from_click() -> None:
    """cli.root replaces `UsageError.show` of the click typer uses (`typer._click.exceptions`, found as
    a base of typer.BadParameter: typer exports neither it nor NoSuchOption, known by name) to print a
    mistake on the command line as one line. Without it, such mistakes print click's four lines."""
    import typer
    from typer.testing import CliRunner

    import hpotool.cli.root as root
    from hpotool.cli import app

    user = "hpotool.cli.root (_USAGE_ERROR, _show_usage_error)"
    version = f"typer {_version('typer')}"
    usage = [c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"]
    assert usage and usage[0] is root._USAGE_ERROR, (
        f"{version}: BadParameter has no UsageError base: adapt {user}"
    )
    show = inspect.signature(root._USAGE_ERROR.show)
    assert list(show.parameters)[:2] == ["self", "file"], f"{version}: UsageError.show{show}: adapt {user}"
    # typer._click.exceptions from typer 0.26 on, click.exceptions before (typer>=0.16 is allowed)
    no_such = _private(root._USAGE_ERROR.__module__, "NoSuchOption", user, "typer")
    assert issubclass(no_such, root._USAGE_ERROR) and no_such.__name__ == "NoSuchOption"
    result = CliRunner().invoke(app, ["--debg", "studies"], prog_name="hpotool")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and lines == [
        "error: No such option: --debg. Did you mean --debug? (see hpotool --help)"
    ], f"{version}: an unknown option printed {lines}: adapt {user}"

    # click's parser raises "requires an argument" with no context; cli.root wraps typer.core's commands'
    # parse_args to give it theirs, so that the line names the command's help
    user = "hpotool.cli.root (_with_its_context)"
    result = CliRunner().invoke(app, ["trials", "--storage"], prog_name="hpotool")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and lines == [
        "error: Option '--storage' requires an argument (see hpotool trials --help)"
    ], f"{version}: an option without its value printed {lines}: adapt {user}"


# rich


def test_the_render_hooks_a_console_keeps() -> None:
    """progress.start reads `Console._render_hooks`, the list `push_render_hook` appends a Live to, to hook
    the bars in where a start cut off before rich did (rich has no public "is it hooked"); gone, such a
    start ends in AttributeError where it owed exit code 130 or 141."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from hpotool import progress as bars

    user = "hpotool.progress (start)"
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True), transient=True)
    live = progress.live
    _has(live.console, ["_render_hooks"], user, "rich")
    bars.start(progress)
    try:
        assert live in live.console._render_hooks, (
            f"rich {_version('rich')}: the Live is not in the hooks: adapt {user}"
        )
    finally:
        bars.stop(progress)
    assert live not in live.console._render_hooks
