from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from hpotool.datasets import TensorData
from hpotool.epoch import EpochResult, NonFiniteLossError
from hpotool.trainer import InputChangedError, OutputShapeError, Trainer


def _problem(n: int = 256) -> tuple[TensorData, TensorData]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorData(x[: n // 2], y[: n // 2]), TensorData(x[n // 2 :], y[n // 2 :])


def _trainer(lr: float = 0.05, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        nn.CrossEntropyLoss(),
        "classification",
        16,
        seed=seed,
    )


def _classifier(model: nn.Module, loss: nn.Module | None = None, **kwargs: Any) -> Trainer:
    """A Trainer of `model` for classification: SGD at lr 0.1, batch 16, cross-entropy unless `loss`."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, opt, loss or nn.CrossEntropyLoss(), "classification", 16, **kwargs)


def test_loss_goes_down_and_metrics_are_reported() -> None:
    train, val = _problem()
    seen: list[EpochResult] = []
    last = _trainer().fit(train, val, epochs=8, on_epoch_end=seen.append)
    assert [r.epoch for r in seen] == list(range(8))
    assert seen[-1].metrics["train_loss"] < seen[0].metrics["train_loss"]
    assert set(last.metrics) == {"train_loss", "val_loss", "val_accuracy"}
    assert last.metrics["val_accuracy"] > 0.8


def test_training_is_reproducible() -> None:
    train, val = _problem()
    a = _trainer().fit(train, val, epochs=3)
    b = _trainer().fit(train, val, epochs=3)
    assert a.metrics == b.metrics


def test_callback_stops_training_by_raising() -> None:
    class Stop(Exception):
        pass

    seen: list[int] = []

    def stop_after_two(result: EpochResult) -> None:
        seen.append(result.epoch)
        if result.epoch == 1:
            raise Stop

    train, val = _problem()
    with pytest.raises(Stop):
        _trainer().fit(train, val, epochs=10, on_epoch_end=stop_after_two)
    assert seen == [0, 1]


def test_non_finite_loss_raises() -> None:
    train, val = _problem()
    train = TensorData(train.x * float("nan"), train.y)
    with pytest.raises(NonFiniteLossError, match="train_loss is nan in epoch 1"):
        _trainer().fit(train, val, epochs=3)


def test_regression_metrics() -> None:
    x = torch.randn(64, 3)
    y = x.sum(dim=1, keepdim=True)
    model = nn.Linear(3, 1)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.1), nn.MSELoss(), "regression", 16)
    last = trainer.fit(TensorData(x, y), TensorData(x, y), epochs=30)
    assert set(last.metrics) == {"train_loss", "val_loss", "val_rmse", "val_mae"}
    assert last.metrics["val_rmse"] == pytest.approx(last.metrics["val_loss"] ** 0.5, rel=1e-4)
    assert last.metrics["val_rmse"] < 0.5


def _plain_loop(train: TensorData, val: TensorData, epochs: int) -> dict[str, float]:
    """The Trainer's work written out with a gather per step: the reference for its chunked batching."""
    trainer = _trainer()
    model, opt, loss_fn = trainer.model, trainer.optimizer, trainer.loss_fn
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        total = torch.zeros(())
        for idx in torch.randperm(len(train), generator=gen).split(16):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(train.x[idx]), train.y[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
    return {"train_loss": float(total) / len(train), **trainer.evaluate(val)}


@pytest.mark.parametrize("gather_bytes", [1, 24 * 40, 2**26])
def test_chunked_batches_train_exactly_like_a_gather_per_step(
    gather_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch per chunk, two batches per chunk, the whole epoch in one chunk: the same training."""
    monkeypatch.setattr("hpotool.trainer.GATHER_BYTES", gather_bytes)
    train, val = _problem(250)  # 125 training rows: the last batch of each epoch is short
    last = _trainer().fit(train, val, epochs=3)
    expected = _plain_loop(train, val, 3)
    assert last.metrics["val_loss"] == expected["val_loss"]
    assert last.metrics["val_accuracy"] == expected["val_accuracy"]
    assert last.metrics["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)


def test_too_many_logits_for_the_classes_stops_before_any_step() -> None:
    # Before, three logits for two classes trained without an error, its accuracy meaningless.
    train, val = _problem()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    before = [p.clone() for p in model.parameters()]
    trainer = _classifier(model, classes=2)
    with pytest.raises(
        OutputShapeError,
        match=r"^model Sequential's output has 3 columns for 2 classes; it needs one logit per class, shape \(batch, 2\)",
    ):
        trainer.fit(train, val, epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_regression_output_that_would_broadcast_against_the_targets_is_refused() -> None:
    # Before, an output of shape (n,) against targets (n, 1) trained on an (n, n) broadcast with only a warning.
    x = torch.randn(64, 3)
    y = x.sum(dim=1, keepdim=True)

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x).squeeze(1)

    model = Flat()
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.1), nn.MSELoss(), "regression", 16)
    with pytest.raises(
        OutputShapeError,
        match=r"^model Flat's output has shape \(2,\) for targets of shape \(2, 1\); it needs shape \(batch, 1\)",
    ):
        trainer.fit(TensorData(x, y), TensorData(x, y), epochs=1)
    wide = nn.Linear(3, 2)
    trainer = Trainer(wide, torch.optim.Adam(wide.parameters(), lr=0.1), nn.MSELoss(), "regression", 16)
    with pytest.raises(OutputShapeError, match=r"^model Linear's output has 2 columns for 1 target; "):
        trainer.fit(TensorData(x, y), TensorData(x, y), epochs=1)


def test_two_logits_for_a_one_logit_loss_are_refused() -> None:
    train, val = _problem()
    model = nn.Linear(4, 2)
    trainer = _classifier(model, nn.BCEWithLogitsLoss(), one_logit=True)
    with pytest.raises(
        OutputShapeError,
        match=r"^model Linear's output has 2 columns for a one-logit loss; it needs one logit per sample",
    ):
        trainer.fit(train, val, epochs=1)


def test_a_model_changing_its_input_in_place_is_stopped_before_it_changes_the_data() -> None:
    # Before, evaluation handed the model slices of the validation data kept in memory: `x -= 0.5` in
    # forward() shifted it again each epoch and trial (the same trial run twice: accuracy 0.53, then 0.09).
    from .helpers import CentersInPlace

    train, val = _problem()
    kept = (train.x.clone(), val.x.clone())
    model = CentersInPlace(4, 2)
    trainer = _classifier(model, classes=2)
    with pytest.raises(
        InputChangedError, match=r"^model CentersInPlace's forward\(\) changes its input in place"
    ):
        trainer.fit(train, val, epochs=2)
    assert torch.equal(train.x, kept[0]) and torch.equal(val.x, kept[1])


class _MonteCarloDropout(nn.Module):
    """Drops in eval mode too, so each forward pass draws random numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(nn.functional.dropout(x, 0.3, training=True))


def test_the_output_check_leaves_the_random_numbers_a_run_draws() -> None:
    # Before, the check's forward pass drew this model's dropout masks from the global generator, so every
    # later mask differed from those the run drew without the check (val_loss 0.896 where it was 0.858).
    train, _ = _problem()
    model = _MonteCarloDropout()
    trainer = _classifier(model, classes=2)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    trainer.check_output(train)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_model_changing_its_inputs_shape_in_place_but_no_value_trains() -> None:
    # Before, `x.unsqueeze_(1)` in forward() (a channel axis for a conv) changed the shape of the copy the
    # check compared with the data, so the trial failed with InputChangedError though no value changed.
    from .helpers import UnsqueezesInPlace

    train, val = _problem()
    model = UnsqueezesInPlace(4, 2)
    trainer = _classifier(model, classes=2)
    result = trainer.fit(train, val, epochs=1)
    assert result.metrics["val_accuracy"] > 0.5


def test_the_training_step_calls_forward_directly_until_a_hook_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nn.Module.__call__ is Python only where no hook listens (~2 us a call): the Trainer calls the model's
    and the loss's forward() itself then; a hook registered between epochs sees every later step, and a
    model class with its own __call__ keeps it."""
    train, val = _problem()  # 128 training rows, batch 16: 8 steps an epoch
    calls: list[str] = []
    call = nn.Module.__call__

    def counted(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(self).__name__)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__call__", counted)
    trainer = _trainer()
    steps: list[int] = []

    def listen(result: EpochResult) -> None:
        if result.epoch == 0:
            trainer.model.register_forward_hook(lambda m, i, o: steps.append(result.epoch))
            trainer.loss_fn.register_forward_pre_hook(lambda m, i: steps.append(-1))  # type: ignore[union-attr]

    trainer.fit(train, val, epochs=2, on_epoch_end=listen)
    # Epoch 0: the Sequential's layers (called by its forward), never the Sequential or the loss themselves,
    # plus evaluation's whole-module calls; epoch 1 goes through __call__ for the hooks.
    assert steps.count(0) == 8 + 1 and steps.count(-1) == 8 + 1  # 8 steps and one evaluation each
    assert calls.count("CrossEntropyLoss") == 1 + 1 + 8  # evaluations of epochs 0 and 1, epoch 1's steps

    class OwnCall(nn.Sequential):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("own")
            return super().__call__(*args, **kwargs)

    torch.manual_seed(0)
    calls.clear()
    _classifier(OwnCall(nn.Linear(4, 2))).fit(train, val, epochs=1)
    assert calls.count("own") == 1 + 8 + 1  # the output check, every step, the evaluation


def test_an_optimizer_whose_step_needs_a_closure_trains() -> None:
    """torch's LBFGS steps with `step(closure)`, evaluating the loss itself: the Trainer called `step()` and
    every run failed with "LBFGS.step() missing 1 required positional argument: 'closure'". It is given a
    closure now, and the epoch's train_loss is each batch's loss before its step, as for other optimizers."""
    train, val = _problem()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    lbfgs = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)
    trainer = Trainer(model, lbfgs, nn.CrossEntropyLoss(), "classification", 64, grad_clip=10.0)
    seen: list[EpochResult] = []
    last = trainer.fit(train, val, epochs=4, on_epoch_end=seen.append)
    assert seen[-1].metrics["train_loss"] < seen[0].metrics["train_loss"]
    assert last.metrics["val_accuracy"] > 0.9
    # the first batch's recorded loss is the model's loss on it before any step
    torch.manual_seed(0)
    fresh = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    one = Trainer(
        fresh,
        torch.optim.LBFGS(fresh.parameters(), lr=0.5, max_iter=5),
        nn.CrossEntropyLoss(),
        "classification",
        128,
    )
    before = nn.functional.cross_entropy(fresh(train.x), train.y).item()
    assert one._train_epoch(train) == pytest.approx(before, rel=1e-5)
