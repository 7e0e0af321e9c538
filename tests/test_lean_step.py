from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from hpotool.lean_step import LeanStep

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
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _train(
    make: Make,
    lean: bool,
    steps: int = 12,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    skip_grad_at: int | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer, int]:
    """Train a tiny model; returns it, its optimizer and how often `optimizer.step()` itself ran."""
    model = _model()
    optimizer = make(list(model.parameters()))
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
        if lean:
            stepper.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if i == skip_grad_at:
            model[2].bias.grad = None  # type: ignore[index]
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
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        for name, value in state_a[key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[key][name])), name


# How many steps go through `optimizer.step()`: SGD with momentum takes its first step there (torch's kernel
# creates the momentum buffers); Adam's first step makes the same state itself.
TORCH_STEPS = {name: int("momentum" in name) for name in LEAN}


@pytest.mark.parametrize("name", list(LEAN))
def test_lean_steps_match_torch_bit_for_bit(name: str) -> None:
    lean, plain = _train(LEAN[name], lean=True), _train(LEAN[name], lean=False)
    _assert_same(lean, plain)
    assert lean[2] == TORCH_STEPS[name]


@pytest.mark.parametrize("name", ["adam", "sgd momentum, nesterov, weight decay"])
@pytest.mark.filterwarnings("error::UserWarning")  # e.g. "lr_scheduler.step() before optimizer.step()"
def test_lr_and_momentum_schedules_are_followed(name: str) -> None:
    def one_cycle(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12, cycle_momentum=True)

    lean, plain = (
        _train(LEAN[name], True, scheduler=one_cycle),
        _train(LEAN[name], False, scheduler=one_cycle),
    )
    _assert_same(lean, plain)
    assert lean[2] == TORCH_STEPS[name]


@pytest.mark.parametrize(("at", "torch_steps"), [(0, 2), (5, 1)])
def test_a_step_with_a_missing_gradient_goes_through_torch(at: int, torch_steps: int) -> None:
    lean, plain = _train(LEAN["adam"], True, skip_grad_at=at), _train(LEAN["adam"], False, skip_grad_at=at)
    _assert_same(lean, plain)
    # The step without the bias gradient; at the first step, also the next (it creates the bias's state).
    assert lean[2] == torch_steps


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


def test_training_through_lean_steps_never_imports_dynamo_until_something_compiles() -> None:
    # A fresh interpreter: importing torch._dynamo (~1.7 s) only to mark optimizer methods "not compiled"
    # is what defer_dynamo spares; once a user compiles, those methods are disabled for dynamo as usual.
    code = """
import sys, torch
from hpotool.lean_step import LeanStep, defer_dynamo
defer_dynamo()
model = torch.nn.Linear(4, 2)
opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
lean = LeanStep(opt)
for _ in range(3):
    lean.zero_grad(); model(torch.randn(8, 4)).sum().backward(); lean.step()
opt.state_dict()
print("torch._dynamo" in sys.modules)
import torch._dynamo

@torch.compile(backend="eager")
def f(x):
    opt.zero_grad()
    return x * 2

model(torch.randn(8, 4)).sum().backward()
print(f(torch.ones(2)).tolist(), all(p.grad is None for p in model.parameters()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["False", "[2.0, 2.0] True"]
