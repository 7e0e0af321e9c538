"""Built-in learning-rate schedules, and how any schedule is stepped.

Each schedule takes the optimizer, the run's length and its own arguments. The length comes in the units
the schedule is stepped in: `steps_per_epoch` is the number of batches when it steps after every batch,
and 1 when it steps once per epoch, so `epochs * steps_per_epoch` is always the number of steps it takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ChainedScheduler,
    CosineAnnealingLR,
    CyclicLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    SequentialLR,
    StepLR,
)

from hpotool.components import REGISTRIES
from hpotool.signatures import accepted_kwargs

# Built-ins stepped after every batch rather than every epoch.
PER_STEP = frozenset({"onecycle"})
# Arguments that count a schedule's length in batches: torch's OneCycleLR (steps_per_epoch) and the Hugging
# Face schedules, get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps) and its
# kin. A schedule by path that asks for one is stepped after every batch; stepped per epoch, a warm-up of
# 100 steps took 100 epochs. So is one asking for any other `*_steps` argument, or `t_total`: users' own and
# older libraries' names for the same counts (warmup_steps, total_steps, max_steps, decay_steps, and
# pytorch-transformers' WarmupLinearSchedule(optimizer, warmup_steps, t_total)).
STEP_COUNTED = ("steps_per_epoch", "num_training_steps", "num_warmup_steps")


def counts_steps(arg: str) -> bool:
    """Whether a schedule's argument `arg` counts batches (optimizer steps) rather than epochs."""
    return arg in STEP_COUNTED or arg == "t_total" or arg.endswith("_steps")


# What a schedule whose step() takes a metric (torch's ReduceLROnPlateau) is given once per epoch, unless
# the scheduler section's `monitor` names another of the epoch's metrics.
DEFAULT_MONITOR = "val_loss"
# The epoch metrics that are better higher: a schedule watching one needs mode: max.
HIGHER_IS_BETTER = frozenset({"val_accuracy"})


def steps_per_batch(name: str, interval: str | None, factory: Any) -> bool:
    """Whether the schedule is stepped after every batch: `interval` where the config sets it; else the
    built-ins' own rule (onecycle per batch), and per batch for a schedule by path whose signature asks for
    `steps_per_epoch` (torch's OneCycleLR), `num_training_steps` or `num_warmup_steps` (a Hugging Face
    schedule), or any other argument that `counts_steps` (`warmup_steps`, `t_total`), and for torch's
    CyclicLR, whose step_size_up counts batches; per epoch for any other."""
    if interval is not None:
        return interval == "step"
    if name in REGISTRIES["scheduler"]:
        return name in PER_STEP
    if isinstance(factory, type) and issubclass(factory, CyclicLR):  # torch: "step after every batch"
        return True
    return any(counts_steps(n) for n in accepted_kwargs(factory)[0])


# Arguments from which a schedule knows the run's length in steps: the two hpotool fills in, and the names
# of a total the config sets (which check_required suggests renaming to num_training_steps).
RUN_STEPS = frozenset(
    {
        "steps_per_epoch",
        "num_training_steps",
        "total_steps",
        "t_total",
        "num_steps",
        "max_steps",
        "num_total_steps",
    }
)


def counts_epochs(name: str, factory: Any) -> bool:
    """Whether a schedule by path is told the run's length in epochs only: its signature asks for `epochs`
    and for nothing that gives the run's length in steps (`RUN_STEPS`), so stepped after every batch it
    would end after `epochs` batches (a cosine over them restarted every few batches); a warm-up counted
    in steps beside it (`num_warmup_steps`) does not tell it the run's length."""
    if name in REGISTRIES["scheduler"]:
        return False
    names, var_kw = accepted_kwargs(factory)
    return not var_kw and "epochs" in names and not any(n in RUN_STEPS for n in names)


def step_counted_argument(factory: Any) -> str | None:
    """The first argument of the schedule's signature that `counts_steps`, if any."""
    return next((n for n in accepted_kwargs(factory)[0] if counts_steps(n)), None)


@dataclass(frozen=True)
class Held:
    """A schedule inside a SequentialLR or ChainedScheduler, and its part of the run."""

    scheduler: Any
    span: int  # the run's steps whose lr it sets
    stepped: int  # the times it is stepped in them (its last_epoch at the end)
    where: str  # "schedule 2 of its SequentialLR"
    # torch steps it on from where it was built: a ChainedScheduler's, and the first of a SequentialLR (which
    # restarts the others at their milestones, whatever their last_epoch)
    from_built: bool = True


def held_schedules(scheduler: Any, run_steps: int, from_built: bool = True) -> list[Held]:
    """The schedules a SequentialLR or ChainedScheduler holds (and those they hold), each with its part of a
    run of `run_steps` steps: a SequentialLR restarts each at its milestone (`step(0)`), so it sets the lr
    from there to the next milestone, and is stepped once less than that, but for the last one and one whose
    next milestone lies past the run's end, stepped at each of its steps; a ChainedScheduler steps all of
    them every step of the run. `from_built`: `scheduler` itself is stepped on from where it was built."""
    inner = getattr(scheduler, "_schedulers", None)
    if not isinstance(scheduler, SequentialLR | ChainedScheduler) or not isinstance(inner, list | tuple):
        return []
    kind = type(scheduler).__name__
    bounds = [0, *getattr(scheduler, "_milestones", []), run_steps]
    held: list[Held] = []
    for i, sub in enumerate(inner):
        if isinstance(scheduler, SequentialLR):
            start, end = min(bounds[i], run_steps), min(bounds[i + 1], run_steps)
            span = end - start if i < len(inner) - 1 else run_steps - start
            stepped = span if i == len(inner) - 1 or bounds[i + 1] > run_steps else span - 1
            on = from_built and start == 0  # one starting at a milestone is restarted there, at 0
        else:
            span = stepped = run_steps
            on = from_built
        if span <= 0:  # past the run's end: it never sets the lr
            continue
        held.append(Held(sub, span, stepped, f"schedule {i + 1} of its {kind}", on))
        held += held_schedules(sub, span, on)
    return held


def resumed_at(scheduler: Any) -> int | None:
    """The step a schedule starts the run at, where it is not its first: torch's schedules are at
    `last_epoch` 0 once built, and one built with `last_epoch` (which resumes it from a checkpoint) or stepped
    since is further on. None for a fresh one, and for one that holds others (SequentialLR, ChainedScheduler:
    `held_schedules` looks at those)."""
    last = getattr(scheduler, "last_epoch", None)
    if (
        isinstance(scheduler, SequentialLR | ChainedScheduler)
        or not isinstance(last, int)
        or isinstance(last, bool)
    ):
        return None
    return last if last > 0 else None


def _first_step_argument(scheduler: Any) -> str | None:
    """The name of `scheduler.step`'s first parameter where a call must give it (positional, no default)."""
    try:
        params = list(inspect.signature(scheduler.step).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if params and params[0].kind in positional and params[0].default is inspect.Parameter.empty:
        return params[0].name
    return None


def takes_epoch(scheduler: Any) -> bool:
    """Whether `scheduler.step` needs the epoch (timm's schedules: `step(epoch, metric=None)`, called with
    the number of epochs done after each); given a metric instead, the lr followed val_loss."""
    return _first_step_argument(scheduler) == "epoch"


def takes_epoch_and_metric(scheduler: Any) -> bool:
    """Whether a schedule given the epoch also takes the watched metric after it (timm's `step(epoch,
    metric=None)`, which its PlateauLRScheduler reads)."""
    if not takes_epoch(scheduler):
        return False
    params = list(inspect.signature(scheduler.step).parameters.values())
    return len(params) > 1 and params[1].name in ("metric", "metrics")


def takes_metric(scheduler: Any) -> bool:
    """Whether `scheduler.step` needs a value to watch (torch's ReduceLROnPlateau: `step(metrics)`)."""
    return _first_step_argument(scheduler) not in (None, "epoch")


def _warm_up(
    optimizer: Optimizer,
    build: Callable[[int], LRScheduler | None],
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int,
    warmup_start: float,
) -> LRScheduler | None:
    """`build(epochs)`'s schedule, after a linear warm-up from `warmup_start` x lr to the lr over the
    first `warmup_epochs` epochs; `build` is given the epochs left after it."""
    if warmup_epochs < 0 or warmup_epochs >= epochs:
        raise ValueError(f"warmup_epochs must be from 0 to epochs - 1 ({epochs - 1}), got {warmup_epochs}")
    if not 0 < warmup_start <= 1:
        raise ValueError(f"warmup_start must be greater than 0 and at most 1, got {warmup_start}")
    if warmup_epochs == 0:
        return build(epochs)
    steps = warmup_epochs * steps_per_epoch
    warm = LinearLR(optimizer, start_factor=warmup_start, end_factor=1.0, total_iters=steps)
    main = build(epochs - warmup_epochs)
    if main is None:  # a constant lr after the warm-up: LinearLR holds the lr once it reaches it
        return warm
    return SequentialLR(optimizer, [warm, main], milestones=[steps])


def no_schedule(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    warmup_start: float = 0.1,
) -> LRScheduler | None:
    """A constant learning rate, after a linear warm-up from `warmup_start` x lr over `warmup_epochs`."""
    return _warm_up(
        optimizer,
        lambda _: None,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        warmup_epochs=warmup_epochs,
        warmup_start=warmup_start,
    )


def cosine(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    eta_min: float = 0.0,
    warmup_epochs: int = 0,
    warmup_start: float = 0.1,
) -> LRScheduler | None:
    """Cosine decay from the optimizer's lr to `eta_min` over the run, after a linear warm-up from
    `warmup_start` x lr over the first `warmup_epochs` epochs (none by default)."""
    lr = optimizer.param_groups[0]["lr"]
    if eta_min < 0:  # the lr went below 0 near the run's end: the last epochs climbed the loss
        raise ValueError(f"eta_min must be 0 or more (the lr the cosine ends at), got {eta_min:g}")
    if eta_min > lr:  # CosineAnnealingLR would raise the lr towards eta_min
        raise ValueError(
            f"eta_min {eta_min:g} is above the optimizer's lr {lr:g}: the cosine would raise the lr to it; give "
            f"eta_min below optimizer.lr"
        )
    return _warm_up(
        optimizer,
        lambda left: CosineAnnealingLR(optimizer, T_max=left * steps_per_epoch, eta_min=eta_min),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        warmup_epochs=warmup_epochs,
        warmup_start=warmup_start,
    )


def step(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int | None = None,
    gamma: float = 0.1,
    warmup_epochs: int = 0,
    warmup_start: float = 0.1,
) -> LRScheduler | None:
    """Multiply the lr by `gamma` every `step_size` epochs (default: a third of the run after the warm-up),
    after a linear warm-up from `warmup_start` x lr over the first `warmup_epochs` epochs (none by default)."""
    if step_size is not None and step_size < 1:  # 0 meant the default, and a negative one decayed at random
        raise ValueError(f"step_size must be at least 1 (the epochs between decays), got {step_size}")
    if gamma < 0:  # the lr turned negative at every other decay: those epochs climbed the loss
        raise ValueError(
            f"gamma must be 0 or more (the lr is multiplied by it every step_size epochs), got {gamma:g}"
        )

    def build(left: int) -> LRScheduler:
        if step_size is not None and step_size >= left:  # a constant lr, and a searched gamma changed nothing
            after = " after the warm-up" if warmup_epochs else ""
            fix = f"use at most {left - 1}" if left > 1 else "use the 'none' schedule"
            raise ValueError(
                f"step_size {step_size} is not shorter than the {left} epoch{'s' if left != 1 else ''} the schedule "
                f"runs{after}, so the lr would never decay; {fix}, or more epochs"
            )
        return StepLR(optimizer, step_size=(step_size or max(1, left // 3)) * steps_per_epoch, gamma=gamma)

    return _warm_up(
        optimizer,
        build,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        warmup_epochs=warmup_epochs,
        warmup_start=warmup_start,
    )


def onecycle(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> LRScheduler:
    """The one-cycle policy (stepped every batch unless `interval: epoch`); `max_lr` defaults to the
    optimizer's lr."""
    # torch takes these as they come: a peak of 0 trained nothing, a negative one climbed the loss, and a
    # div_factor of 0 failed with a bare ZeroDivisionError
    if max_lr is not None and not max_lr > 0:
        raise ValueError(
            f"max_lr must be above 0 (the peak lr of the cycle), got {max_lr:g}; give the peak, or drop max_lr "
            "for a cycle that peaks at optimizer.lr"
        )
    if not div_factor > 0:
        raise ValueError(
            f"div_factor must be above 0 (the cycle starts at max_lr / div_factor), got {div_factor:g}; drop it for "
            "its default, 25"
        )
    if not final_div_factor > 0:
        raise ValueError(
            f"final_div_factor must be above 0 (the cycle ends at its start / final_div_factor), got "
            f"{final_div_factor:g}; drop it for its default, 1e4"
        )
    peak = max_lr if max_lr is not None else optimizer.param_groups[0]["lr"]
    return OneCycleLR(
        optimizer,
        max_lr=peak,
        total_steps=epochs * steps_per_epoch,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
