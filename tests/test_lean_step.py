from __future__ import annotations

import copy
import logging
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hpotool import lean_step
from hpotool.lean_step import LeanStep, backward

from .conftest import RUN, write_yaml

Make = Callable[[list[nn.Parameter]], torch.optim.Optimizer]

LEAN: dict[str, Make] = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
    "adam amsgrad, weight decay, maximize": lambda ps: torch.optim.Adam(
        ps, lr=3e-3, betas=(0.8, 0.95), weight_decay=1e-2, amsgrad=True, maximize=True, fused=True
    ),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, fused=True),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, fused=True),
    "sgd momentum, nesterov, weight decay": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3, fused=True
    ),
    "sgd momentum, dampening": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.5, dampening=0.3, fused=True
    ),
    "sgd momentum": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, fused=True),
    "sgd momentum, dampening, weight decay, maximize": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.8, dampening=0.1, weight_decay=1e-2, maximize=True, fused=True
    ),
    "sgd weight decay, maximize": lambda ps: torch.optim.SGD(
        ps, lr=0.1, weight_decay=1e-2, maximize=True, fused=True
    ),
}
SGD_MOMENTUM = [name for name in LEAN if "sgd momentum" in name]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _train(
    make: Make,
    lean: bool,
    steps: int = 12,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    skip_grad_at: int | None = None,
    before_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
    resume: tuple[dict[str, Any], dict[str, Any], int] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer, int]:
    """Train a tiny model; returns it, its optimizer and how often `optimizer.step()` itself ran.

    `before_step(i, optimizer)` may change the param groups; `resume` (model and optimizer state dicts,
    steps taken) starts from a checkpoint, at the batch where it stopped."""
    model = _model()
    optimizer = make(list(model.parameters()))
    if resume is not None:
        model.load_state_dict(resume[0])
        optimizer.load_state_dict(resume[1])
    calls = 0
    torch_step = optimizer.step

    def counted(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return torch_step(*args, **kwargs)

    optimizer.step = types.MethodType(counted, optimizer)  # type: ignore[method-assign]
    sched = scheduler(optimizer) if scheduler else None
    stepper = LeanStep(optimizer)
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        x, y = torch.randn(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)
        if resume is not None and i < resume[2]:
            continue
        if lean:
            stepper.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if i == skip_grad_at:
            model[2].bias.grad = None  # type: ignore[index]
        if before_step is not None:
            before_step(i, optimizer)
        if lean:
            stepper.step()
        else:
            optimizer.step()
        if sched is not None:
            sched.step()
    return model, optimizer, calls


def _assert_same(
    a: tuple[nn.Module, torch.optim.Optimizer, int], b: tuple[nn.Module, torch.optim.Optimizer, int]
) -> None:
    for pa, pb in zip(a[0].parameters(), b[0].parameters(), strict=True):
        assert torch.equal(pa, pb)
    state_a, state_b = a[1].state_dict()["state"], b[1].state_dict()["state"]
    assert list(state_a) == list(state_b)  # the same parameters, in the same order
    for key in state_a:
        assert list(state_a[key]) == list(state_b[key])
        for name, value in state_a[key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[key][name])), name


@pytest.mark.parametrize("name", list(LEAN))
def test_lean_steps_match_torch_bit_for_bit(name: str) -> None:
    lean, plain = _train(LEAN[name], lean=True), _train(LEAN[name], lean=False)
    _assert_same(lean, plain)
    # Every step is LeanStep's own, the first included: Adam's state and SGD's momentum buffers are made
    # as torch makes them, so a run never reaches `optimizer.step()` (which imports torch._dynamo).
    assert lean[2] == 0


@pytest.mark.parametrize("name", ["adam", *SGD_MOMENTUM])
@pytest.mark.filterwarnings("error::UserWarning")  # e.g. "lr_scheduler.step() before optimizer.step()"
def test_lr_and_momentum_schedules_are_followed(name: str) -> None:
    def one_cycle(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12, cycle_momentum=True)

    lean, plain = (
        _train(LEAN[name], True, scheduler=one_cycle),
        _train(LEAN[name], False, scheduler=one_cycle),
    )
    _assert_same(lean, plain)
    assert lean[2] == 0


def _momentum_from_step_3(i: int, optimizer: torch.optim.Optimizer) -> None:
    """No momentum for three steps, then momentum (torch's first step with it makes the buffers), off again."""
    optimizer.param_groups[0]["momentum"] = 0.9 if 3 <= i < 9 else 0.0


def test_momentum_switched_on_later_makes_its_buffers_then() -> None:
    lean = _train(LEAN["sgd"], True, before_step=_momentum_from_step_3)
    plain = _train(LEAN["sgd"], False, before_step=_momentum_from_step_3)
    _assert_same(lean, plain)
    assert lean[2] == 0


def test_several_groups_each_with_its_own_momentum() -> None:
    def make(ps: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            [
                {"params": ps[:2], "momentum": 0.9, "nesterov": True},
                {"params": ps[2:3]},  # no momentum: no state, as with torch
                {"params": ps[3:], "momentum": 0.5, "dampening": 0.2, "weight_decay": 1e-2},
            ],
            lr=0.05,
            fused=True,
        )

    lean, plain = _train(make, True), _train(make, False)
    _assert_same(lean, plain)
    assert lean[2] == 0
    assert list(lean[1].state_dict()["state"]) == [0, 1, 3]


@pytest.mark.parametrize("name", ["adam", *SGD_MOMENTUM])
def test_a_checkpoint_of_lean_steps_resumes_as_torch_would(name: str) -> None:
    model, optimizer, _ = _train(LEAN[name], True, steps=5)
    checkpoint = copy.deepcopy((model.state_dict(), optimizer.state_dict(), 5))
    resumed = _train(LEAN[name], True, resume=checkpoint)
    _assert_same(resumed, _train(LEAN[name], False))
    # State it did not make (loaded) is left to torch's first step; LeanStep takes up its buffers after.
    assert resumed[2] == 1


@pytest.mark.parametrize(
    ("name", "at", "torch_steps"), [("adam", 0, 2), ("adam", 5, 1), ("sgd momentum", 5, 1)]
)
def test_a_step_with_a_missing_gradient_goes_through_torch(name: str, at: int, torch_steps: int) -> None:
    lean, plain = _train(LEAN[name], True, skip_grad_at=at), _train(LEAN[name], False, skip_grad_at=at)
    _assert_same(lean, plain)
    # The step without the bias gradient; at the first step, also the next (it creates the bias's state).
    assert lean[2] == torch_steps


def _outcome(lean: bool, **kwargs: Any) -> tuple[nn.Module, torch.optim.Optimizer, int] | str:
    try:
        return _train(LEAN["sgd"], lean, **kwargs)
    except Exception as exc:  # what torch's own step raises, to compare
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("at", [0, 3])
def test_a_gradient_missing_at_the_first_step_with_momentum_is_left_to_torch(at: int) -> None:
    # torch makes buffers only for the parameters that have a gradient, and its fused kernel then gets
    # None for the others (torch 2.13: a TypeError at the next step). LeanStep must not make fresh buffers
    # over those torch made: it does whatever torch does. At 3: momentum switched on at that step.
    def momentum(i: int, optimizer: torch.optim.Optimizer) -> None:
        optimizer.param_groups[0]["momentum"] = 0.9 if i >= at else 0.0

    lean = _outcome(True, skip_grad_at=at, before_step=momentum)
    plain = _outcome(False, skip_grad_at=at, before_step=momentum)
    if isinstance(lean, str) or isinstance(plain, str):
        assert lean == plain
    else:
        _assert_same(lean, plain)


def test_float64_parameters_take_their_first_step_through_torch() -> None:
    def train(lean: bool) -> tuple[nn.Module, torch.optim.Optimizer, int]:
        torch.set_default_dtype(torch.float64)  # the model and its inputs
        try:
            return _train(LEAN["adam"], lean)
        finally:
            torch.set_default_dtype(torch.float32)

    lean, plain = train(True), train(False)
    _assert_same(lean, plain)
    assert lean[2] == 1


class _MySGD(torch.optim.SGD):
    pass


FALLBACK: dict[str, Make] = {
    "not fused": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "a subclass": lambda ps: _MySGD(ps, lr=0.1, fused=True),
    "another optimizer": lambda ps: torch.optim.RMSprop(ps, lr=1e-2),
    "a tensor lr": lambda ps: torch.optim.Adam(ps, lr=torch.tensor(1e-2), fused=True),
}


@pytest.mark.parametrize("name", list(FALLBACK))
def test_what_it_does_not_know_goes_through_torch(name: str) -> None:
    lean, plain = _train(FALLBACK[name], True), _train(FALLBACK[name], False)
    _assert_same(lean, plain)
    assert lean[2] == 12


def test_an_unknown_group_option_goes_through_torch() -> None:
    def make(ps: list[nn.Parameter]) -> torch.optim.Optimizer:
        opt = torch.optim.Adam(ps, lr=1e-2, fused=True)
        opt.param_groups[0]["some_future_option"] = True
        return opt

    assert _train(make, True)[2] == 12


def test_step_hooks_and_the_profiler_see_every_step() -> None:
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    stepper = LeanStep(optimizer)
    seen: list[int] = []
    x, y = torch.randn(4, 6), torch.randint(0, 3, (4,))
    for _ in range(3):
        stepper.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        stepper.step()  # lean from the second step on
    handle = optimizer.register_step_post_hook(lambda *_: seen.append(1))
    for _ in range(2):
        stepper.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        stepper.step()
    handle.remove()
    assert seen == [1, 1]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        stepper.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        stepper.step()
    assert any(e.key == "Optimizer.step#Adam.step" for e in prof.key_averages())


def test_zero_grad_clears_every_gradient() -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)
    stepper = LeanStep(optimizer)
    for _ in range(2):
        stepper.zero_grad()
        model(torch.randn(2, 6)).sum().backward()
        stepper.step()
    stepper.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# Each optimizer LeanStep must step without torch._dynamo; the momentum SGDs' first step is where torch's
# own code (it makes the buffers) imports it, which LeanStep takes.
LEAN_OPTIMIZERS = [
    "torch.optim.Adam(model.parameters(), lr=0.1, fused=True)",
    "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, fused=True)",
    "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.1, maximize=True, fused=True)",
]


def test_training_through_lean_steps_never_imports_dynamo_until_something_compiles() -> None:
    # A fresh interpreter: importing torch._dynamo (~1.7 s) only to mark optimizer methods "not compiled"
    # is what defer_dynamo spares; once a user compiles, those methods are disabled for dynamo as usual.
    # One interpreter for the three optimizers, each trained in turn and the modules looked at after each
    # (the first to import torch._dynamo is the one named), then one compiled function zeroing all three.
    code = f"""
import sys, torch
from hpotool.lean_step import LeanStep, defer_dynamo
defer_dynamo()
pairs = []
for make in {LEAN_OPTIMIZERS!r}:
    model = torch.nn.Linear(4, 2)
    opt = eval(make)
    lean = LeanStep(opt)
    for _ in range(3):
        lean.zero_grad(); model(torch.randn(8, 4)).sum().backward(); lean.step()
    opt.state_dict()
    print(make, "torch._dynamo" in sys.modules)
    pairs.append((model, opt))
import torch._dynamo

@torch.compile(backend="eager")
def f(x):
    for _, opt in pairs:
        opt.zero_grad()
    return x * 2

for model, _ in pairs:
    model(torch.randn(8, 4)).sum().backward()
print(f(torch.ones(2)).tolist(), all(p.grad is None for model, _ in pairs for p in model.parameters()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [f"{make} False" for make in LEAN_OPTIMIZERS] + [
        "[2.0, 2.0] True"
    ]


def test_hpotool_train_with_sgd_momentum_never_imports_dynamo(tmp_path: Path) -> None:
    # The whole command in a fresh interpreter, as users run it: the Trainer builds torch's fused SGD and
    # LeanStep takes every step, the first one with momentum included. `-X importtime` lists every import.
    run = {
        **RUN,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    }
    run_path = write_yaml(tmp_path / "run.yaml", run)
    cmd = [sys.executable, "-X", "importtime", "-m", "hpotool", "train", "-r", str(run_path), "--out", "run"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "model.pt").exists()
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "torch.optim" in imported
    assert [m for m in imported if m.startswith("torch._dynamo")] == []


def _grads_after(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, run: Callable[[torch.Tensor], None]
) -> list:
    model.zero_grad(set_to_none=True)
    run(nn.functional.cross_entropy(model(x), y))
    return [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lean_backward_calls_the_engine_and_gives_torchs_gradients_bit_for_bit(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.LayerNorm(16), nn.Linear(16, 4))
    x, y = torch.randn(9, 6), torch.randint(0, 4, (9,))
    calls: list[int] = []
    engine = lean_step._ENGINE

    class Counting:
        def run_backward(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return engine.run_backward(*args, **kwargs)

    monkeypatch.setattr(lean_step, "_ENGINE", Counting())
    ours = _grads_after(model, x, y, backward)
    theirs = _grads_after(model, x, y, lambda loss: loss.backward())
    assert calls == [1]  # the engine itself, not loss.backward() (which goes through torch.autograd.backward)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (lambda: torch.ones(3, requires_grad=True) * 2, "grad can be implicitly created only for scalar"),
        (lambda: torch.ones(()), "does not require grad"),
        (lambda: torch.ones((), dtype=torch.complex64, requires_grad=True) * 2, "real scalar outputs"),
    ],
)
def test_lean_backward_leaves_what_it_does_not_take_to_torch_and_its_errors(
    loss: Callable[[], torch.Tensor], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean_step, "_ENGINE", None)  # the engine would not be reached either way
    with pytest.raises(RuntimeError, match=message):
        backward(loss())


def test_lean_backward_leaves_tensor_subclasses_and_autograd_debug_logging_to_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    class Recorded(torch.Tensor):
        def backward(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            seen.append("subclass")
            super().backward(*args, **kwargs)

    monkeypatch.setattr(lean_step, "_ENGINE", None)  # would fail if reached: `None.run_backward`
    w = torch.ones(2, requires_grad=True)
    backward((w * 3).sum().as_subclass(Recorded))
    assert seen == ["subclass"]
    assert w.grad is not None and w.grad.tolist() == [3.0, 3.0]
    log = logging.getLogger("torch.autograd.graph")
    monkeypatch.setattr(log, "level", logging.DEBUG)
    log.manager._clear_cache()  # type: ignore[attr-defined]
    taken: list[int] = []
    monkeypatch.setattr(
        lean_step, "_ENGINE", types.SimpleNamespace(run_backward=lambda *a, **k: taken.append(1))
    )
    w.grad = None
    backward((w * 2).sum())
    log.manager._clear_cache()  # type: ignore[attr-defined]
    assert taken == [] and w.grad is not None and w.grad.tolist() == [2.0, 2.0]


def test_lean_backward_inside_a_functorch_transform_raises_torchs_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[int] = []
    monkeypatch.setattr(
        lean_step, "_ENGINE", types.SimpleNamespace(run_backward=lambda *a, **k: taken.append(1))
    )

    def f(w: torch.Tensor) -> torch.Tensor:
        backward((w * 2).sum())
        return (w * 2).sum()

    with pytest.raises(RuntimeError, match="inside a functorch transform"):
        torch.func.grad(f)(torch.ones(2, requires_grad=True))
    assert taken == []
