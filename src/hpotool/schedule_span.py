"""A learning-rate schedule's length checked against the run's: a total_steps or T_max that does not span
the steps the run takes, a schedule resumed part-way, and the same for the schedules a SequentialLR or
ChainedScheduler holds, each refused with the argument to change."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, SequentialLR

from hpotool.errors import RunCheckError
from hpotool.schedulers import held_schedules, resumed_at


def check_total_steps(name: str, scheduler: Any, run_steps: int, per: str) -> None:
    """Refuse a total_steps that does not span the run's `run_steps` steps (stepped `per`): OneCycleLR
    raises once stepped more than this, and stepped fewer times its cycle stops part-way, the lr never
    annealed (a one-cycle's whole point).

    Raises:
        ValueError: naming both lengths.
    """
    total = getattr(scheduler, "total_steps", None)
    one_cycle = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    if isinstance(total, int) and (total < run_steps or (one_cycle and total > run_steps)):
        what = (
            "and it fails past its end"
            if total < run_steps
            else f"so its cycle would stop {run_steps / total:.0%} of the way through, before the lr anneals"
        )
        raise ValueError(
            f"scheduler {name!r} has total_steps {total}, but the run steps it {run_steps} times "
            f"({per}), {what}; drop total_steps (hpotool passes epochs and steps_per_epoch)"
        )


def check_users_schedule(name: str, scheduler: Any, run_steps: int, per: str, unit: str) -> None:
    """The checks of a schedule given by import path: a cosine that ends before the run does, a schedule
    resumed part-way, and those checks for the schedules it holds (`_check_held`).

    Raises:
        RunCheckError: naming the schedule and what to change.
    """
    if (ends := _cosine_past_end(scheduler, run_steps, f"the run's last {unit}")) is not None:
        zero = "" if ends == _CLIMBS else ", or eta_min above 0"
        raise RunCheckError(
            "scheduler",
            f"{name!r} has T_max {scheduler.T_max}, but the run steps it {run_steps} times ({per}), "
            f"{ends}; set T_max to the run's steps{zero}, or use name: cosine (hpotool's, which spans every trial's "
            f"run)",
        )
    if (at := resumed_at(scheduler)) is not None:
        raise RunCheckError(
            "scheduler",
            f"{name!r} returned a {type(scheduler).__name__} {_resumed_part_way(at)}",
        )
    _check_held(name, scheduler, run_steps, per, unit)


def _resumed_part_way(at: int) -> str:
    """Why a schedule a factory built at its step `at` (a config's last_epoch is refused at load time)."""
    return (
        f"that starts part-way through, at its step {at} (built with last_epoch {at - 1}, which resumes a schedule "
        f"from a checkpoint, or stepped before it was returned), and hpotool starts every run's schedule at its "
        f"beginning; build it without last_epoch"
    )


_CLIMBS = "and past T_max its cosine climbs back up towards the lr"


def _cosine_past_end(scheduler: Any, span: int, last: str) -> str | None:
    """What goes wrong where torch's CosineAnnealingLR sets the lr of `span` steps and its T_max is shorter
    than that (`last`: the last of them, "the run's last epoch"), or None. The lr of step t is its cosine at
    t, which reaches eta_min at T_max: with T_max below span - 1 the steps after it climb back up towards
    the lr, and with T_max at span - 1 the last step trains at eta_min, which at 0 moves no weight (stepped
    per epoch, a trial pays for a whole last epoch that changes none of its weights). Above 0 that is where a
    cosine ending at eta_min should end."""
    t_max = getattr(scheduler, "T_max", None)
    if not isinstance(scheduler, CosineAnnealingLR) or not isinstance(t_max, int) or t_max >= span:
        return None
    if t_max < span - 1:
        return _CLIMBS
    if scheduler.eta_min != 0:
        return None
    return f"so its cosine ends at T_max, at eta_min 0, and {last} trains at lr 0, which moves no weight"


def _check_held(name: str, scheduler: Any, run_steps: int, per: str, unit: str) -> None:
    """The total_steps and T_max checks above, for the schedules a SequentialLR or ChainedScheduler of a
    user's factory holds, against their part of the run (`held_schedules`), and the refusal of a schedule
    resumed part-way, for those torch steps on from where they were built.

    Raises:
        RunCheckError: naming the schedule held, its place, and its part of the run.
    """
    fix = (
        "from the arguments hpotool fills in (epochs, steps_per_epoch, num_training_steps), to span its part of "
        "the run"
    )
    for held in held_schedules(scheduler, run_steps):
        inner, span = held.scheduler, held.span
        part = f"its part of the run's {run_steps} steps, " if span != run_steps else ""
        kind = type(inner).__name__
        said = f"{name!r} holds a {kind} ({held.where})"
        if not held.from_built and isinstance(inner, SequentialLR | ChainedScheduler):
            # torch: SequentialLR restarts it with step(0), which these two take to LRScheduler.get_lr
            raise RunCheckError(
                "scheduler",
                f"{said}, which the SequentialLR restarts at its milestone with step(0), and torch's {kind} cannot "
                "take that: the run would fail there, part-way through; put the schedules it holds into the outer "
                "SequentialLR (or a ChainedScheduler around it) instead",
            )
        if held.from_built and (at := resumed_at(inner)) is not None:
            raise RunCheckError("scheduler", f"{said} {_resumed_part_way(at)}")
        total = getattr(inner, "total_steps", None)
        one_cycle = isinstance(inner, torch.optim.lr_scheduler.OneCycleLR)
        if isinstance(total, int) and (total < held.stepped or (one_cycle and total > span)):
            what = (
                "and it fails past its end"
                if total < held.stepped
                else f"so its cycle would stop {span / total:.0%} of the way through, before the lr anneals"
            )
            raise RunCheckError(
                "scheduler",
                f"{said} with total_steps {total}, but the run steps it {span} times ({part}{per}), {what}; build "
                f"it with total_steps {fix}",
            )
        last = f"the last {unit} of its part" if part else f"the run's last {unit}"
        if (ends := _cosine_past_end(inner, span, last)) is not None:
            zero = "" if ends == _CLIMBS else ", or with eta_min above 0"
            raise RunCheckError(
                "scheduler",
                f"{said} with T_max {inner.T_max}, but the run steps it {span} times ({part}{per}), {ends}; build it "
                f"with T_max {fix}{zero}",
            )
