"""Optimizer steps without the Python work `torch.optim` repeats around its fused kernel on every call.

On a small model, a fused `Adam.step()` spends most of its time in Python rather than in the kernel:
a profiler label, hook checks, gathering params, grads and state into fresh lists, grouping them by
device and dtype (measured on the digits MLP: ~120 us per call, of which the kernel is ~37 us;
`zero_grad` ~30 us more), about a quarter of each training step. `LeanStep` gathers the lists once
and then calls the kernel `torch.optim` itself calls, reading the group's hyperparameters on every
step so LR schedulers keep working. The parameters come out bit for bit as with `optimizer.step()`
(tests/test_lean_step.py).

It only takes a step where it knows exactly what torch would do: `Adam`, `AdamW` and `SGD` themselves
(not subclasses) with `fused=True`, every parameter of a group on one device and dtype with a dense
gradient, and no group option it does not know. Everything else goes through `optimizer.step()`: the
first step of float16/float64 parameters or of an optimizer whose state was loaded, a step where a
parameter has no gradient, a tensor lr or beta, registered step hooks, a running torch profiler. The
first step makes the state torch would, where torch would: Adam's before the kernel (float32 step count,
zeroed moments); SGD's momentum buffers as `_fused_sgd` makes them, `torch.empty_like` of each gradient
filled by the kernel's `is_first_step`, at the first step a group has momentum (a scheduler may switch
it on later). Where torch's own step made only some of a group's buffers (a parameter without a
gradient then), every later step of that group is torch's too.

`backward(loss)` is `loss.backward()` for a scalar loss on the CPU without the Python `torch.autograd.backward`
runs around its engine call on every step (~30 us of a ~200 us digits MLP step on an AMD EPYC VM): it
makes the same ones-gradient and calls the same engine, so the gradients are the same bit for bit.

`defer_dynamo` keeps `torch.optim` from importing `torch._dynamo` (~1.7 s, more than torch itself on a
small machine) just to mark its methods "do not compile" while nothing is compiling; with `LeanStep`
taking every step, a training run never imports it.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch

_ADAM_OPTIONS = frozenset(
    {"params", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable"}
    | {"differentiable", "fused", "decoupled_weight_decay"}
)
_SGD_OPTIONS = frozenset(
    {"params", "lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach"}
    | {"differentiable", "fused"}
)
# What LR schedulers add to a param group for their own use; the optimizer never reads them.
_SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum"})


@dataclass
class _Group:
    options: dict[str, Any]  # the param group itself: hyperparameters are read from it every step
    params: list[torch.Tensor]
    buffers: list[list[torch.Tensor]]  # Adam: steps, exp_avgs, exp_avg_sqs, max_exp_avg_sqs; SGD: momentum


class LeanStep:
    """`zero_grad()` (to None) and `step()` for `optimizer`, without torch's per-call Python work where safe."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._groups: list[_Group] | None = None
        self._params: list[torch.Tensor] = []
        self._adam = type(optimizer) in (torch.optim.Adam, torch.optim.AdamW)
        self._eligible = (self._adam or type(optimizer) is torch.optim.SGD) and all(
            _known_options(optimizer, group) for group in optimizer.param_groups
        )

    def zero_grad(self) -> None:
        if self._groups is None and (not self._eligible or _observed(self.optimizer)):
            self.optimizer.zero_grad(set_to_none=True)
            return
        for p in self._params or (p for g in self.optimizer.param_groups for p in g["params"]):
            p.grad = None

    def step(self) -> None:
        groups = self._groups
        if groups is None and self._eligible and not _observed(self.optimizer) and self._first_state():
            groups = self._take_plan()
            # What an LR scheduler's wrapper around `step()` records, so it does not warn that its step
            # came first: `_opt_called` (recent torch), a step count (older releases).
            self.optimizer._opt_called = True  # type: ignore[attr-defined]
            if isinstance(getattr(self.optimizer, "_step_count", None), int):
                self.optimizer._step_count += 1  # type: ignore[attr-defined]
        if groups is None or _observed(self.optimizer):
            self.optimizer.step()
            if groups is None and self._eligible:
                self._take_plan()
            return
        grads: list[list[torch.Tensor]] = []
        for group in groups:
            group_grads = [p.grad for p in group.params]
            if not _steppable(group, group_grads, self._adam):
                self.optimizer.step()
                if not self._adam and any(g.options["momentum"] != 0 and not g.buffers[0] for g in groups):
                    self._take_plan()  # torch's step may have made momentum buffers: take them
                return
            grads.append(cast(list[torch.Tensor], group_grads))
        for group, ready in zip(groups, grads, strict=True):
            if self._adam:
                _adam_step(group, ready)
            else:
                _sgd_step(group, ready, self.optimizer.state)

    def _take_plan(self) -> list[_Group] | None:
        self._groups = self._plan()
        self._params = [p for g in self._groups or () for p in g.params]
        return self._groups

    def _first_state(self) -> bool:
        """The state the first `step()` would create before the kernel runs (Adam: a float32 step count and
        zeroed moments; SGD: none), where every parameter is a float32 tensor with a gradient on the CPU or a
        CUDA device (what the fused kernels take). False leaves the first step to torch."""
        optimizer = self.optimizer
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if optimizer.state or not all(
            p.grad is not None and p.dtype == torch.float32 and p.device.type in ("cpu", "cuda")
            for p in params
        ):
            return False
        if not self._adam:
            return True  # SGD's momentum buffers are made in the step itself, as torch's `_fused_sgd` does
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state[p]
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return True

    def _plan(self) -> list[_Group] | None:
        """The lists each step needs, taken once the first step has made the optimizer's state."""
        optimizer = self.optimizer
        if (
            getattr(optimizer, "grad_scale", None) is not None
            or getattr(optimizer, "found_inf", None) is not None
        ):
            return None
        groups = []
        for options in optimizer.param_groups:
            params: list[torch.Tensor] = list(options["params"])
            if not params or not _uniform(params):
                return None
            states = [optimizer.state.get(p, {}) for p in params]
            if self._adam:
                keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if options["amsgrad"] else [])
                if not all(all(k in s for k in keys) for s in states):
                    return None
                buffers = [[s[k] for s in states] for k in keys] + ([] if options["amsgrad"] else [[]])
            else:
                # Every buffer, or none yet (the first step with momentum makes them); the same whatever
                # the momentum now, since a scheduler may change it.
                momentum_buffers = [s.get("momentum_buffer") for s in states]
                if all(isinstance(b, torch.Tensor) for b in momentum_buffers):
                    buffers = [cast(list[torch.Tensor], momentum_buffers)]
                elif all(b is None for b in momentum_buffers):
                    buffers = [[]]
                else:
                    return None
            groups.append(_Group(options, params, buffers))
        return groups


def _known_options(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> bool:
    """True where the group uses the fused kernel and no option this module does not handle."""
    known = _SGD_OPTIONS if type(optimizer) is torch.optim.SGD else _ADAM_OPTIONS
    keys = set(group)
    if not known <= keys or not keys <= known | _SCHEDULER_KEYS:
        return False
    return group["fused"] is True and not group["differentiable"] and not group.get("capturable", False)


def _uniform(params: list[torch.Tensor]) -> bool:
    """One device, one floating dtype, dense real tensors: what the fused kernels take in one call."""
    first = params[0]
    return (
        all(
            p.device == first.device
            and p.dtype == first.dtype
            and p.layout == torch.strided
            and not p.is_complex()
            and (p.grad is None or p.grad.layout == torch.strided)
            for p in params
        )
        and first.dtype.is_floating_point
    )


def _observed(optimizer: torch.optim.Optimizer) -> bool:
    """True while something watches `optimizer.step()`: step hooks, or a running torch profiler."""
    hooks = sys.modules["torch.optim.optimizer"]
    return bool(
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or hooks._global_optimizer_pre_hooks
        or hooks._global_optimizer_post_hooks
        or torch.autograd._profiler_enabled()
    )


def _steppable(group: _Group, grads: list[torch.Tensor | None], adam: bool) -> bool:
    """Every parameter has a gradient and the hyperparameters are plain numbers (SGD: whatever the momentum,
    as the step makes the buffers where there are none yet)."""
    options = group.options
    if any(g is None for g in grads) or isinstance(options["lr"], torch.Tensor):
        return False
    if adam:
        beta1, beta2 = options["betas"]
        return not isinstance(beta1, torch.Tensor) and not isinstance(beta2, torch.Tensor)
    return True


def _adam_step(group: _Group, grads: list[torch.Tensor]) -> None:
    """What `torch.optim.adam._fused_adam` does for one device and dtype, without grad scaling."""
    options = group.options
    steps, exp_avgs, exp_avg_sqs, max_exp_avg_sqs = group.buffers
    beta1, beta2 = options["betas"]
    kernel = torch._fused_adamw_ if options["decoupled_weight_decay"] else torch._fused_adam_
    torch._foreach_add_(steps, 1)
    kernel(
        group.params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        steps,
        amsgrad=options["amsgrad"],
        lr=options["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=options["weight_decay"],
        eps=options["eps"],
        maximize=options["maximize"],
        grad_scale=None,
        found_inf=None,
    )


def _sgd_step(group: _Group, grads: list[torch.Tensor], state: dict[Any, Any]) -> None:
    """What `torch.optim.sgd._fused_sgd` does for one device and dtype, without grad scaling.

    With momentum and no buffers yet (torch's first step with momentum), it makes them as torch does,
    `torch.empty_like` of each gradient, which the kernel fills (`is_first_step`: the buffer becomes the
    gradient), and puts them where `SGD.step()` does, `state[p]["momentum_buffer"]`, in the same order.
    """
    options = group.options
    momentum = options["momentum"]
    buffers = group.buffers[0]
    first_step = momentum != 0 and not buffers
    if first_step:
        buffers.extend(torch.empty_like(g) for g in grads)
        for p, buffer in zip(group.params, buffers, strict=True):
            state.setdefault(p, {})["momentum_buffer"] = buffer
    torch._fused_sgd_(
        group.params,
        grads,
        [] if momentum == 0 else buffers,
        weight_decay=options["weight_decay"],
        momentum=momentum,
        lr=options["lr"],
        dampening=options["dampening"],
        nesterov=options["nesterov"],
        maximize=options["maximize"],
        is_first_step=first_step,
        grad_scale=None,
        found_inf=None,
    )


_ENGINE = getattr(getattr(torch.autograd, "variable", None), "Variable", None)
_ENGINE = getattr(_ENGINE, "_execution_engine", None)
# What torch.autograd.backward checks first; a torch without it gets loss.backward() every time.
_TRANSFORMS_ACTIVE = getattr(torch._C, "_are_functorch_transforms_active", None)
if _TRANSFORMS_ACTIVE is None:
    _ENGINE = None
_AUTOGRAD_LOG = logging.getLogger("torch.autograd.graph")  # torch hooks every node when it logs at DEBUG


def backward(loss: torch.Tensor) -> None:
    """`loss.backward()`, calling torch's autograd engine directly where that is all it would do.

    That is a real scalar loss on the CPU that needs a gradient, outside functorch transforms and torch's
    autograd debug logging. Anything else (a loss on a GPU, whose backward runs on the engine's device
    threads; a tensor subclass; a loss that is not a scalar or needs no gradient) goes through
    `loss.backward()`, so its behaviour and errors are torch's own.
    """
    if (
        _ENGINE is None
        or type(loss) is not torch.Tensor
        or not loss.is_cpu
        or loss.dim() != 0
        or not loss.requires_grad
        or not loss.is_floating_point()
        or _TRANSFORMS_ACTIVE()  # type: ignore[misc]
        or _AUTOGRAD_LOG.isEnabledFor(logging.DEBUG)
    ):
        loss.backward()
        return
    _ENGINE.run_backward(
        (loss,),
        (torch.ones_like(loss, memory_format=torch.preserve_format),),  # what torch makes for a scalar
        False,  # retain_graph
        False,  # create_graph
        (),  # every leaf
        allow_unreachable=True,
        accumulate_grad=True,
    )


def defer_dynamo() -> None:
    """Let `torch.optim.Optimizer`'s "never compile me" methods run without importing `torch._dynamo`.

    torch wraps them in `torch._disable_dynamo`, which imports `torch._dynamo` on the first call to
    build the disabled version. Until `torch._dynamo` is imported nothing can be compiling, so calling
    the method itself is what the disabled version would do; from the moment it is imported (a user's
    `torch.compile`), each call goes through `torch._dynamo.disable` as torch intends. Does nothing on a
    torch whose methods are not wrapped this way.
    """
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        fn = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if callable(fn) and not hasattr(fn, "__dynamo_disable"):
            fn.__dynamo_disable = _until_dynamo(fn)


def _until_dynamo(fn: Callable[..., Any]) -> Callable[..., Any]:
    disabled: Callable[..., Any] | None = None

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal disabled
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is None or not hasattr(dynamo, "disable"):
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = dynamo.disable(fn)
        return disabled(*args, **kwargs)

    return call
