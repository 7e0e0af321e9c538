"""The training loop: plain PyTorch, no Optuna, no terminal output.

Data sits on the device as tensors, is put in shuffled order a chunk at a time and sliced into
batches, which on small data is much faster than a DataLoader; losses accumulate as tensors and are
read back once per epoch, so the device never waits on the host inside an epoch. Built-in fused
optimizers step through `LeanStep`, without torch's per-call Python work. A callback sees every
epoch's metrics and stops training by raising.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from hpotool.datasets import Task, TensorData
from hpotool.epoch import EpochResult, NonFiniteLossError
from hpotool.lean_step import LeanStep, backward
from hpotool.models import direct_call


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer.step` requires a closure that recomputes the loss (torch's `LBFGS.step(closure)`):
    called with none, as other optimizers are, it raised "missing 1 required positional argument"."""
    try:
        param = inspect.signature(type(optimizer).step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is inspect.Parameter.empty


class OutputShapeError(ValueError):
    """The model's output does not fit the task: a column count other than the classes' or the targets'."""


class InputChangedError(ValueError):
    """The model's forward() changed its input in place, and with it the data hpotool keeps in memory."""


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether `a` and `b` hold the same values, NaN in the same places counting as the same."""
    if torch.equal(a, b):
        return True
    return a.is_floating_point() and bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))


def input_changed(model: nn.Module) -> str:
    """What to tell a user whose model's forward() changed its input in place."""
    return (
        f"{type(model).__name__}'s forward() changes its input in place (as x -= 0.5 or x.mul_(2) do): "
        f"hpotool keeps the data in memory for every epoch and trial, so each evaluation would change the "
        f"validation samples again; compute a new tensor instead (x = x - 0.5)"
    )


GATHER_BYTES = 64 * 2**20  # the most training data copied at once into shuffled order


def _noop(_: EpochResult) -> None:
    return None


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's batches over `n` samples: full batches, then what is left, except that a
    single sample left over joins the batch before it (batch norm cannot train on a batch of one)."""
    full, left = divmod(n, batch_size)
    if left == 1 and full and batch_size > 1:
        return [batch_size] * (full - 1) + [batch_size + 1]
    return [batch_size] * full + ([left] if left else [])


def steps_per_epoch(n: int, batch_size: int) -> int:
    """How many optimizer steps an epoch over `n` samples takes (see `batch_sizes`)."""
    return len(batch_sizes(n, batch_size))


@dataclass
class Trainer:
    """Trains `model` with `optimizer` on `loss_fn`, evaluating after each epoch.

    `scheduler` is stepped every batch when `scheduler_per_step`, else every epoch, with the epoch's
    `scheduler_metric` where one is named (torch's ReduceLROnPlateau watches a value), or with the number
    of epochs done for `scheduler_epoch` (timm's `step(epoch)`); for `scheduler_updates`, its
    `step_update(num_updates)` is called after every optimizer step with the run's updates so far, as timm's
    training loop does. `classes`, for a classification task, is how many there are: `fit` checks that the
    model gives a logit for each.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # an nn.Module or a plain function
    task: Task
    batch_size: int
    # One logit per sample (BCEWithLogitsLoss): the loss gets each class as a float, shaped (n, 1) as the
    # model's output, and accuracy counts a positive logit as class 1.
    one_logit: bool = False
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    scheduler_per_step: bool = False
    scheduler_metric: str | None = None
    scheduler_epoch: bool = False  # step(epochs done), as timm's schedules take it
    scheduler_updates: bool = False  # step_update(updates done) after each optimizer step, as timm's take it
    grad_clip: float | None = None
    seed: int = 0
    classes: int | None = None  # None: the model's output width is not checked for a classification
    eval_batch_size: int = 4096
    _generator: torch.Generator | None = field(default=None, init=False, repr=False)
    _lean: LeanStep | None = field(default=None, init=False, repr=False)
    _updates: int = field(default=0, init=False, repr=False)  # optimizer steps of this fit() so far

    def fit(
        self,
        train: TensorData,
        val: TensorData,
        *,
        epochs: int,
        on_epoch_end: Callable[[EpochResult], None] = _noop,
    ) -> EpochResult:
        """Train for `epochs` epochs; `train` and `val` must already be on the model's device.

        Raises:
            OutputShapeError, InputChangedError: the model's output does not fit the task, or its forward()
                changed its input in place (`check_output`), before any step.
            NonFiniteLossError: when the training loss becomes NaN or infinite.
            Whatever `on_epoch_end` raises, which ends training there.
        """
        device = train.x.device
        train, val = self.loss_targets(train), self.loss_targets(val)  # once per run, not per batch
        if epochs > 0:
            self.check_output(train)
        # A generator of our own: shuffling is reproducible whatever else draws random numbers.
        self._generator = torch.Generator(device=device).manual_seed(self.seed)
        self._lean = LeanStep(self.optimizer)
        self._updates = 0
        result = EpochResult(-1, {}, 0.0)
        for epoch in range(epochs):
            start = time.perf_counter()
            lr = self.current_lr()  # as the epoch begins: a warm-up's first epoch shows its low lr
            train_loss = self._train_epoch(train)
            if not math.isfinite(train_loss):
                raise NonFiniteLossError(epoch, train_loss)
            metrics = {"train_loss": train_loss, **self.evaluate(val)}
            if self.scheduler is not None and not self.scheduler_per_step:
                if self.scheduler_epoch:  # timm's step(epoch, metric=None), the metric where one is named
                    watched = () if self.scheduler_metric is None else (metrics[self.scheduler_metric],)
                    self.scheduler.step(epoch + 1, *watched)
                elif self.scheduler_metric is not None:
                    self.scheduler.step(metrics[self.scheduler_metric])  # type: ignore[arg-type]
                else:
                    self.scheduler.step()
            result = EpochResult(epoch, metrics, time.perf_counter() - start, lr)
            on_epoch_end(result)
        return result

    @torch.no_grad()
    def check_output(self, data: TensorData) -> None:
        """The model's output for two samples of `data` (its targets as the loss takes them) has the shape
        the task needs: a column per class, one logit, or the targets' shape. A model whose width depends
        on a searched value (the check before trial 0 tries a range's ends) otherwise trained on too many
        columns without an error, its accuracy meaningless, or failed with torch's 'Target 9 is out of
        bounds'. One forward pass in eval mode, so batch norm's running statistics stay as they are, and
        on the random numbers' state forked, so that a model drawing some leaves the run's draws as they were.

        The model is given a copy of the samples: a forward() that changes its input in place would change
        the data in memory for every later epoch and trial (evaluation passes slices of it), so that the
        same trial run twice measured 0.53 and 0.09 accuracy.

        Raises:
            InputChangedError: the model changed its input in place.
            OutputShapeError: naming the model, the shape it gave and the one it needs.
        """
        y = data.y[:2]
        x = data.x[:2].clone()
        self.model.eval()
        # The random numbers the run draws stay those it drew before this check: a model that draws in eval
        # mode too (Monte Carlo dropout) otherwise trained on other dropout masks than without it.
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            # a view of its own: a shape change in place (x.unsqueeze_(1)) leaves x's shape as it is
            out = self.model(x[:])
        if not same_values(x, data.x[:2]):
            raise InputChangedError(f"model {input_changed(self.model)}")
        if self.task == "classification" and not self.one_logit and self.classes is None:
            return
        name = type(self.model).__name__
        if not isinstance(out, torch.Tensor):
            raise OutputShapeError(f"model {name} returned a {type(out).__name__}, not a tensor of outputs")
        if self.task != "classification":  # regression, or multilabel: a logit per label
            if out.shape[1:] == y.shape[1:]:
                return
            targets = y.shape[1] if y.ndim == 2 else None
            if out.ndim == 2 and targets is not None:
                given = f"{out.shape[1]} columns for {targets} target{'s' if targets != 1 else ''}"
            else:
                given = f"shape {tuple(out.shape)} for targets of shape {tuple(y.shape)}"
            raise OutputShapeError(
                f"model {name}'s output has {given}; it needs shape (batch, {', '.join(map(str, y.shape[1:]))}), "
                f"as the targets (the loss would broadcast one against the other)"
            )
        columns = 1 if self.one_logit else self.classes
        if out.ndim == 2 and out.shape[1] == columns:
            return
        given = f"{out.shape[1]} columns" if out.ndim == 2 else f"shape {tuple(out.shape)}"
        need = (
            "one logit per sample, shape (batch, 1), as its binary loss takes"
            if self.one_logit
            else f"one logit per class, shape (batch, {columns})"
        )
        of = "for a one-logit loss" if self.one_logit else f"for {columns} classes"
        raise OutputShapeError(
            f"model {name}'s output has {given} {of}; it needs {need}: give its last layer the out_features "
            f"hpotool passes"
        )

    def current_lr(self) -> float:
        """The first parameter group's learning rate (read once an epoch: a tensor lr syncs the device)."""
        lr = self.optimizer.param_groups[0]["lr"]
        return float(lr.item() if isinstance(lr, torch.Tensor) else lr)

    def _train_epoch(self, data: TensorData) -> float:
        self.model.train()
        n = len(data)
        perm = torch.randperm(n, device=data.x.device, generator=self._generator)
        # The model's and the loss's forward() themselves where their __call__ would add only Python (no hooks)
        model, loss_fn = direct_call(self.model), direct_call(self.loss_fn)
        optimizer = self._lean or LeanStep(self.optimizer)
        step_scheduler = self.scheduler if self.scheduler_per_step else None
        update = getattr(self.scheduler, "step_update", None) if self.scheduler_updates else None
        losses: list[torch.Tensor] = []  # kept on the device: no tensor op per step to sum them
        closure_step = needs_closure(self.optimizer)
        for x, y in self._shuffled_batches(data, perm):
            if closure_step:  # torch's LBFGS evaluates the batch's loss itself, as often as it needs
                loss = self._closure_step(optimizer, model, loss_fn, x, y)
            else:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                backward(loss)
                if self.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                optimizer.step()
            if step_scheduler is not None:
                step_scheduler.step()
            if update is not None:  # timm's per-update schedule (t_in_epochs=False) moves the lr here
                self._updates += 1
                update(self._updates)
            losses.append(loss.detach())
        # Batch losses are means: weight each by its batch's size (the last batch may be smaller or larger).
        values = torch.stack(losses).tolist()  # the one host sync of the epoch
        last = n - self.batch_size * (len(values) - 1)
        return (sum(values[:-1]) * self.batch_size + values[-1] * last) / n  # inf - inf: NaN, caught by fit

    def _closure_step(
        self,
        optimizer: LeanStep,
        model: Callable[[torch.Tensor], torch.Tensor],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        """One step of an optimizer whose `step(closure)` recomputes the loss (LBFGS): the closure does what
        a plain step does before `step()`; the loss of the step is its first evaluation's, before the update,
        as a plain step records it."""

        first: list[torch.Tensor] = []

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            backward(loss)
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            if not first:
                first.append(loss.detach())
            return loss

        self.optimizer.step(closure)  # type: ignore[arg-type]  # LBFGS takes the loss tensor back
        if not first:
            raise RuntimeError(
                f"{type(self.optimizer).__name__}.step(closure) never called the closure, which computes the loss"
            )
        return first[0]

    def _shuffled_batches(
        self, data: TensorData, perm: torch.Tensor
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `data` in `perm` order: gathered a chunk of up to GATHER_BYTES at a time, then
        sliced, which costs one gather per chunk instead of two per step."""
        row_bytes = sum(t.element_size() * math.prod(t.shape[1:]) for t in (data.x, data.y))
        per_chunk = max(1, GATHER_BYTES // max(1, row_bytes) // self.batch_size) * self.batch_size
        chunks = list(perm.split(per_chunk)) if per_chunk < len(perm) else [perm]
        if len(chunks) > 1 and len(chunks[-1]) == 1:  # a lone sample joins the batch before it (below)
            chunks[-2:] = [torch.cat(chunks[-2:])]
        for chunk in chunks:
            sizes = batch_sizes(len(chunk), self.batch_size)
            yield from zip(data.x[chunk].split(sizes), data.y[chunk].split(sizes), strict=True)

    def loss_targets(self, data: TensorData) -> TensorData:
        """`data` with the targets the loss takes: for one logit, the classes as floats of shape (n, 1)."""
        if not self.one_logit or (data.y.is_floating_point() and data.y.ndim == 2):
            return data
        return TensorData(data.x, data.y.reshape(len(data), 1).float())

    @torch.no_grad()
    def evaluate(self, data: TensorData) -> dict[str, float]:
        """Validation metrics: val_loss, plus val_accuracy (classification; per label for multilabel) or
        val_rmse/val_mae (regression)."""
        self.model.eval()
        data = self.loss_targets(data)
        n = len(data)
        sums: list[torch.Tensor] = []  # per batch: loss sum, then hits or squared and absolute error sums
        for i in range(0, n, self.eval_batch_size):
            x, y = data.x[i : i + self.eval_batch_size], data.y[i : i + self.eval_batch_size]
            out = self.model(x)
            parts = [self.loss_fn(out, y).float() * len(x)]
            if self.one_logit:
                parts.append(((out.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).sum().float())
            elif self.task == "classification":  # soft labels: against each sample's most likely class
                target = y.argmax(dim=1) if y.is_floating_point() else y
                parts.append((out.argmax(dim=1) == target).sum().float())
            elif self.task == "multilabel":  # the share of a sample's labels a positive logit gets right
                parts.append(((out > 0) == (y > 0.5)).float().reshape(len(x), -1).mean(dim=1).sum())
            else:
                diff = (out - y).reshape(len(x), -1).float()
                parts += [diff.square().mean(dim=1).sum(), diff.abs().mean(dim=1).sum()]
            sums.append(torch.stack(parts))
        total = sums[0] if len(sums) == 1 else torch.stack(sums).sum(dim=0)
        values = total.tolist()  # the one host sync
        metrics = {"val_loss": values[0] / n}
        if self.task != "regression":
            metrics["val_accuracy"] = values[1] / n
        else:
            metrics["val_rmse"] = math.sqrt(values[1] / n)
            metrics["val_mae"] = values[2] / n
        return metrics
