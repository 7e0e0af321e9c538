"""Components the tests load by import path, as users' own code would be."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


class ExplodingModel(nn.Module):
    """A model whose forward pass raises from its second training batch on: it passes the one-step check
    before trial 0, and every trial that uses it must end as FAIL."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches += self.training
        if self.batches > 1:
            raise RuntimeError("boom from user code")
        return self.linear(x.flatten(1))


class CtrlCInTraining(nn.Module):
    """Ctrl-C in the middle of a trial: KeyboardInterrupt from its second training batch, where SIGINT raises
    it (the one-step check before trial 0 passes)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches += self.training
        if self.batches > 1:
            raise KeyboardInterrupt
        return self.linear(x.flatten(1))


class FragileModel(nn.Module):
    """Fails in training only for a large `width`, so a study sees both COMPLETE and FAIL trials: from its
    second training batch, as a bug deep in a run would (the one-step check before trial 0 passes)."""

    def __init__(self, in_features: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        self.width = width
        self.batches = 0
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches += self.training
        if self.width > 24 and self.batches > 1:
            raise ValueError(f"width {self.width} is too wide")
        return self.net(x)


class PrintingModel(nn.Module):
    """Prints a line to stdout as it is built, as a user's model or training function may."""

    def __init__(self, in_features: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        print(f"printed by the model: width {width}")
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ForwardsItsArguments(FragileModel):
    """A subclass that hands its keyword arguments on to its parent, which takes no input_shape."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


def read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's dataset function reading a CSV file of features and a target, as data: {path: ...} gives."""
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    return table[:, :-1], table[:, -1]


def channels_last_images() -> tuple[np.ndarray, np.ndarray]:
    """A user's images as numpy gives them, height × width × channels (16×16×3), three classes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    return rng.normal(size=(60, 16, 16, 3)).astype("float32") + y[:, None, None, None], y


class SquareImage(nn.Module):
    """A user's model that reads its flat samples as square images, refusing in its constructor a number of
    features that makes none (the regression dataset's 10)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        side = int(in_features**0.5)
        if side * side != in_features:
            raise ValueError(f"{in_features} features make no square image")
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, side, side)), nn.Flatten(), nn.Linear(in_features, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class SlippedHead(nn.Module):
    """A user's bug the check before trial 0 cannot see, as it tries a searched range's ends: for `width` 16
    its last layer gives `out_features + extra` columns, for the other widths `out_features`."""

    def __init__(self, in_features: int, out_features: int, width: int = 8, extra: int = 2) -> None:
        super().__init__()
        columns = out_features + extra if width == 16 else out_features
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, columns)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ListedLayers(nn.Module):
    """A user's model keeping its hidden layers in a plain list, which torch does not register."""

    def __init__(self, in_features: int, out_features: int, width: int = 16) -> None:
        super().__init__()
        self.layers = [nn.Linear(in_features, width), nn.Linear(width, width)]
        self.acts = [nn.ReLU(), nn.Tanh()]  # nothing to train, move or switch: allowed
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer, act in zip(self.layers, self.acts, strict=True):
            x = act(layer(x))
        return self.head(x)


class CentersInPlace(nn.Module):
    """A user's model that centres its input in place (`x -= 0.5`), changing the data it is given."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x -= 0.5
        return self.net(x)


class UnsqueezesInPlace(nn.Module):
    """A user's model that adds a channel axis to its input in place (`x.unsqueeze_(1)`): the tensor object
    it is given changes shape, the data's values do not."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.head = nn.Linear(2 * in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x.unsqueeze_(1)
        return self.head(torch.relu(self.conv(x)).flatten(1))


class TorchvisionStyle(nn.Module):
    """A model that takes its width as torchvision's do, `num_classes` (1000 by default)."""

    def __init__(self, in_features: int, num_classes: int = 1000) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SlowModel(nn.Module):
    """A linear model that sleeps in every forward pass, so a trial is still running when a test acts. With
    `hold` (a file's path), a forward pass finding that file waits while it is there, and says so by making
    `hold.held`: a test acting then knows a trial is mid-training, however slow the machine. Only a training
    batch larger than the check's before any trial (`preflight.DRY_RUN_SAMPLES`) is held."""

    def __init__(
        self, in_features: int, out_features: int, width: int = 8, sleep: float = 0.02, hold: str = ""
    ) -> None:
        super().__init__()
        self.sleep = sleep
        self.hold = hold
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import os
        import time

        time.sleep(self.sleep)
        from hpotool.preflight import DRY_RUN_SAMPLES

        if self.hold and self.training and x.shape[0] > DRY_RUN_SAMPLES and os.path.exists(self.hold):
            open(f"{self.hold}.held", "w").close()
            while os.path.exists(self.hold):
                time.sleep(0.01)
        return self.net(x)


class FlatRegressor(nn.Module):
    """A linear model that returns (batch,) where hpotool's regression targets are (batch, 1)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


class TupleHead(nn.Module):
    """A classifier whose forward() returns (logits, features), as many models written for distillation do."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(1)
        return self.linear(flat), flat


def token_ids(n: int = 400) -> Any:
    """Integer inputs (token ids) returned as a Dataset, which keeps their dtype; the label: a large sum."""
    from hpotool.datasets import Dataset

    x = torch.randint(0, 50, (n, 8), generator=torch.Generator().manual_seed(0))
    return Dataset(x, (x.sum(1) > 196).long(), "classification")


class AuxHeadNet(nn.Module):
    """Inception-style: `(logits, aux_logits)` in training mode, the logits alone in eval mode."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.main = nn.Linear(in_features, out_features)
        self.aux = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> Any:
        x = x.flatten(1)
        return (self.main(x), self.aux(x)) if self.training else self.main(x)


def token_ids_as_pair(n: int = 400) -> Any:
    """The same token ids as an (x, y) pair, whose x hpotool casts to float32."""
    ds = token_ids(n)
    return ds.x, ds.y


class BagOfTokens(nn.Module):
    """An embedding model: it needs integer inputs."""

    def __init__(self, out_features: int, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(50, dim)
        self.head = nn.Linear(dim, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x))


class PlainCrossEntropy(nn.Module):
    """A loss written the short way: no `__init__` of its own, so it takes no arguments."""

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, y)


def points_with_a_gap(n: int = 200) -> Any:
    """Two classes of 4 features, one feature missing (NaN) in sample 5, as a CSV with an empty cell gives."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[5, 2] = float("nan")
    return x, (x[:, 0] > 0).long()


class NanModel(nn.Module):
    """A model whose forward pass returns NaN: a bug in its own code (here, 0 / 0)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * (torch.zeros(()) / 0)


class NanLaterModel(nn.Module):
    """Evaluates to NaN once it has trained on a few batches (it passes the one-step check before trial 0)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches += self.training
        out = self.linear(x.flatten(1))
        return out * float("nan") if self.batches > 2 and not self.training else out


class DeepNet(nn.Module):
    """A user's model with an argument of its own and no default (`depth`)."""

    def __init__(self, in_features: int, out_features: int, depth: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), *[nn.Linear(in_features, in_features) for _ in range(depth)])
        self.out = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x))


def sgd_with_required_lr(params: Any, lr: float) -> torch.optim.Optimizer:
    """An optimizer factory whose `lr` has no default: the run config's optimizer.lr gives it."""
    return torch.optim.SGD(params, lr=lr)


class SGDOfMyOwn(torch.optim.Optimizer):
    """A user's optimizer whose first argument is not called `params`, as torch's are."""

    def __init__(self, model_params: Any, lr: float = 0.1) -> None:
        super().__init__(model_params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


class SGDNeedingAScale(SGDOfMyOwn):
    """A user's optimizer whose step() requires an argument hpotool does not give (not a closure)."""

    @torch.no_grad()
    def step(self, scale: float, closure: Any = None) -> None:  # type: ignore[override]
        super().step()


def halving(opt: torch.optim.Optimizer, epochs: int, every: int = 1) -> Any:
    """A user's schedule whose first argument is not called `optimizer`."""
    return torch.optim.lr_scheduler.StepLR(opt, step_size=every, gamma=0.5)


def cosine_of_mine(optimizer: torch.optim.Optimizer, **kwargs: Any) -> Any:
    """A schedule that hands its keyword arguments on to torch's, which takes no epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **kwargs)


class SmoothedCrossEntropy(nn.CrossEntropyLoss):
    """A loss that hands its keyword arguments on to torch's, which takes no task."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"label_smoothing": 0.1, **kwargs})


def not_an_optimizer(params: Any, lr: float = 0.1) -> Any:
    """An optimizer factory that returns something else (here, the parameters' list)."""
    return list(params)


def not_a_scheduler(optimizer: Any, epochs: int) -> Any:
    """A scheduler factory that returns something else (here, the number of epochs)."""
    return epochs


def the_optimizer_back(optimizer: Any, epochs: int) -> Any:
    """A scheduler factory that returns the optimizer it is given (which has a step() too)."""
    return optimizer


def not_a_loss(reduction: str = "mean") -> Any:
    """A loss factory that returns something else (here, its reduction's name)."""
    return reduction


def loss_with_its_parts(prediction: torch.Tensor, target: torch.Tensor) -> Any:
    """A loss returned with the values it logs, as (loss, parts)."""
    loss = torch.nn.functional.cross_entropy(prediction, target)
    return loss, {"cross_entropy": loss.detach()}


def loss_as_a_dict(prediction: torch.Tensor, target: torch.Tensor) -> Any:
    """A loss returned in a dict, as some training loops read it."""
    return {"loss": torch.nn.functional.cross_entropy(prediction, target)}


def loss_as_a_float(prediction: torch.Tensor, target: torch.Tensor) -> Any:
    """A loss read back as a Python number (`.item()`), which has no backward()."""
    return torch.nn.functional.cross_entropy(prediction, target).item()


def loss_of_wrong_answers(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A count of wrong answers: a tensor, but no function of the parameters torch can differentiate."""
    return (prediction.argmax(1) != target).float().mean()


def loss_that_is_nan(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NaN whatever the model predicts (a log of zero, say)."""
    return torch.nn.functional.cross_entropy(prediction, target) * torch.tensor(float("nan"))


def labels_read_as_floats(n: int = 200) -> Any:
    """Class labels 0/1 stored as floats, as np.loadtxt reads a CSV: a regression task to hpotool, but two
    classes with loss bce_with_logits."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] > 0).astype(np.float64)


class FussyModel(nn.Module):
    """A model whose constructor refuses its arguments with a message of several lines."""

    def __init__(self, in_features: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        if width % 3:
            raise ValueError(f"width must be a multiple of 3, got {width}\nsupported widths:\n  3\n  6\n  9")
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def digits_samples(n: int = 300) -> Any:
    """scikit-learn's digits as a map-style torch Dataset of (image, label) samples, the way PyTorch code
    usually hands data around."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)

    class Digits(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.tensor(x[i] / 16.0, dtype=torch.float32), int(y[i])

    return Digits()


def digits_behind_a_gate(n: int = 300) -> Any:
    """`digits_samples`, loaded in a worker process only once the file HPOTOOL_TEST_GATE names exists (at
    once where it is unset, and in a main process): the workers of a run wait there, before their first
    trial, as a machine's workers do while they start, for as long as a test needs."""
    import multiprocessing
    import os
    import time
    from pathlib import Path

    gate = os.environ.get("HPOTOOL_TEST_GATE")
    while gate and multiprocessing.parent_process() is not None and not Path(gate).exists():
        time.sleep(0.05)
    return digits_samples(n)


def scaled_mse(prediction: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """A plain loss function, as users write them: (prediction, target, options...) -> loss."""
    return scale * torch.mean((prediction - target) ** 2)


class ShortNamesNet(nn.Module):
    """A model whose sizes are n_in and n_out, as short scripts name them."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class KerasStyleNet(nn.Module):
    """A model as many tutorials write it: input_dim and num_classes rather than hpotool's names."""

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FailsInTraining(nn.Module):
    """Its forward works in eval mode (the output-shape check) and fails in training mode."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("training-only branch is broken")
        return self.linear(x.flatten(1))


class ExitsAfterTheCheck(nn.Module):
    """A model whose forward() calls sys.exit() once past the one-step check, as a script's code in it may."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 3:
            sys.exit(3)
        return self.linear(x.flatten(1))


def ten_points(n: int = 10) -> Any:
    """Ten samples of two classes: `val_fraction: 0.1` leaves one for validation."""
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    return x, (torch.arange(n) % 2).long()


def ages_as_integers(n: int = 300) -> Any:
    """Numbers to predict (ages 0..90) that a user's numpy code keeps as int64: read as class labels."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    return x, np.clip((30 + 10 * x[:, 0]).round(), 0, 90).astype(np.int64)


def features_with_a_graph(n: int = 200) -> Any:
    """Features from a user's torch encoder run without torch.no_grad(): x carries its autograd graph."""
    raw = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
    x = torch.tanh(nn.Linear(8, 4)(raw))
    return x, (raw[:, 0] > 0).long()


class Jittered(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A torch Dataset that adds noise to each sample as it is read, as augmentation does."""

    def __len__(self) -> int:
        return 60

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((4,), float(i % 2)) + 0.1 * torch.randn(4), i % 2


def jittered() -> Any:
    return Jittered()


def two_classes(n: int = 120) -> Any:
    """A two-class problem a linear model separates."""
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    return x, (x[:, 0] - x[:, 1] > 0).long()


class OneLogitNet(nn.Module):
    """A binary classifier with one output, for BCEWithLogitsLoss."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def float64_dataset(n: int = 60) -> Any:
    """An `hpotool.datasets.Dataset` whose x came from numpy as float64: its tensors are kept as they are."""
    from hpotool.datasets import Dataset

    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return Dataset(x, x.sum(dim=1, keepdim=True), "regression")


def squared_errors(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A loss function that forgets to average: one value per sample."""
    return ((prediction - target) ** 2).sum(dim=1)


def numpy_regression(n: int = 80) -> Any:
    """What numpy gives by default: float64 inputs and targets."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return x, x.sum(axis=1)


def labels_one_and_two(n: int = 120) -> Any:
    """Two classes labelled 1 and 2 (as a spreadsheet numbers them), not 0 and 1."""
    x, y = two_classes(n)
    return x, y + 1


def uint8_images(n: int = 60) -> Any:
    """An `hpotool.datasets.Dataset` of 8x8 uint8 pixels: a Dataset object's x is kept as it is."""
    from hpotool.datasets import Dataset

    x = torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return Dataset(x, (torch.arange(n) % 3).long(), "classification")


class WeightedLoss(nn.Module):
    """Class weights kept as a plain attribute, not a buffer: `.to(device)` alone leaves them behind."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.weights = torch.tensor(weights)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, y, weight=self.weights)


class MaskedNet(nn.Module):
    """A model keeping a mask as a plain attribute, not a buffer: `.to(device)` alone leaves it behind."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.mask = torch.ones(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1) * self.mask)


def float64_classes(n: int = 60) -> Any:
    """Three classes in float64 inputs, kept as they are (an `hpotool.datasets.Dataset`), for a float64 model."""
    from hpotool.datasets import Dataset

    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return Dataset(x, x.argmax(dim=1), "classification")


class Float64Net(nn.Module):
    """A linear classifier in float64 (a user's model built with dtype=torch.float64)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def my_tpe(seed: int | None = None, n_startup_trials: int = 2) -> Any:
    """A sampler factory, the way to set what YAML cannot hold (a function argument) or to fix defaults."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True)


def median_after(warmup: int = 1) -> Any:
    """A pruner factory."""
    import optuna

    return optuna.pruners.MedianPruner(n_warmup_steps=warmup)


def pruner_at_level(level: int) -> Any:
    """A pruner factory with an argument it requires (no default)."""
    import optuna

    return optuna.pruners.PercentilePruner(percentile=level)


def not_a_sampler(seed: int | None = None) -> Any:
    """A sampler factory that returns something else (here, its seed)."""
    return seed


def labels_from_one(n: int = 120) -> Any:
    """Two classes numbered 1 and 2, as R and MATLAB number them."""
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long() + 1


def one_hot_floats(n: int = 160) -> Any:
    """Three classes stored one-hot as floats, as np.eye(3, dtype=float32)[k] makes them."""
    x = np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)
    k = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    return x, np.eye(3, dtype=np.float32)[k]


def soft_labels(n: int = 300) -> Any:
    """Three classes given as each sample's class probabilities (soft labels, rows summing to 1), as a
    teacher model's softmax or annotators' votes give them."""
    x = np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)
    logits = 2 * x[:, :3]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return x, (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def several_labels(n: int = 160, dtype: Any = np.float32) -> Any:
    """Three labels per sample, each 0 or 1 (multi-label)."""
    x = np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, :3] > 0).astype(dtype)


def grayscale_images(n: int = 60) -> Any:
    """Images shaped (n, H, W), without a channel axis, as MNIST-style arrays come."""
    x = np.random.default_rng(0).normal(size=(n, 8, 8)).astype(np.float32)
    return x, (x[:, 0, 0] > 0).astype(np.int64)


def squeezed_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A user's MSE written for 1-D targets: against hpotool's (n, 1) targets it broadcasts to (n, n)."""
    return ((pred.squeeze() - target) ** 2).mean()


def flat_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Both flattened alike: the batch's mean squared error."""
    return ((pred.reshape(-1) - target.reshape(-1)) ** 2).mean()


def pairwise_kernel_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Every prediction against every target on purpose (a kernel two-sample statistic), written explicitly."""
    cross = torch.exp(-((pred.reshape(-1, 1) - target.reshape(1, -1)) ** 2)).mean()
    return ((pred - target) ** 2).mean() - 0.1 * cross


def summed_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared errors summed over the batch (reduction 'sum'), not averaged."""
    return ((pred - target) ** 2).sum()


class KeepsALock(nn.Module):
    """A user's model whose extra state (in its state_dict) is a lock, which pickle cannot save: training
    works, saving model.pt fails."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        import threading

        self.linear = nn.Linear(in_features, out_features)
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def get_extra_state(self) -> Any:
        return self.lock

    def set_extra_state(self, state: Any) -> None:
        self.lock = state


class LockedOnOddSeeds(KeepsALock):
    """`KeepsALock` built under an odd torch seed; under an even one its extra state is None, which pickle
    saves: of a run's seeds 0 and 1, the first saves and the second fails."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        if torch.initial_seed() % 2 == 0:
            self.lock = None  # type: ignore[assignment]


class StallsWhileSaved(nn.Module):
    """A user's model that, once training is over and its state is being saved, creates the file
    `saving` names and sleeps: a process killed then dies in the middle of its save."""

    def __init__(self, in_features: int, out_features: int, saving: str = "saving") -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.saving = saving

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def get_extra_state(self) -> Any:  # state_dict() asks for it: only saving model.pt calls that
        import time
        from pathlib import Path

        Path(self.saving).touch()
        time.sleep(600)
        return None

    def set_extra_state(self, state: Any) -> None:
        return None


class CallsWhileSaved(nn.Module):
    """A user's model that, once training is over and its state is being saved, calls `hook` (once: it is
    cleared first), set by a test of this process that acts in the middle of a save."""

    hook: ClassVar[Callable[[], None] | None] = None

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def get_extra_state(self) -> Any:  # state_dict() asks for it: only saving model.pt calls that
        hook, CallsWhileSaved.hook = CallsWhileSaved.hook, None
        if hook is not None:
            hook()
        return None

    def set_extra_state(self, state: Any) -> None:
        return None


class SignalsTraining(nn.Module):
    """A linear model that creates the file `training` names once it has trained `steps` batches, and trains
    on: a test acts in the middle of a long run (a dry run's one step, on another instance, does not count)."""

    def __init__(
        self, in_features: int, out_features: int, training: str = "training", steps: int = 20
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.signal = training
        self.steps = steps
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.steps:
                from pathlib import Path

                Path(self.signal).touch()
        return self.linear(x.flatten(1))


class FullDisk:
    """The `os` module, as a module that saves files sees it on a full disk: `fsync` fails with ENOSPC."""

    def __getattr__(self, name: str) -> Any:
        import os

        return getattr(os, name)

    def fsync(self, fd: int) -> None:
        import errno
        import os

        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class TakesRunFolders(nn.Module):
    """A linear model that, where the file `armed` exists, at its second training step (a run check's one
    step does not reach it) makes `runs/<second>/` with a file `other-run` in it for every second of the
    last `seconds` (the names `run_folders.new_run_dir` gives): another process saving runs into the same
    runs/<project> meanwhile."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        runs: str = "runs/tiny",
        armed: str = "armed",
        seconds: int = 30,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.runs = runs
        self.armed = armed
        self.seconds = seconds
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            from pathlib import Path

            if self.calls == 2 and Path(self.armed).exists():
                from datetime import datetime, timedelta

                now = datetime.now()
                for s in range(self.seconds + 1):
                    folder = Path(self.runs) / (now - timedelta(seconds=s)).strftime("%Y%m%d-%H%M%S")
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / "other-run").touch()
        return self.linear(x.flatten(1))


def on_a_terminal(command: list[str], cwd: Path, env: dict[str, str], stdout: Any, columns: int) -> str:
    """What `command` shows on a terminal `columns` wide (a pseudo-terminal) as its stdin and stderr, its
    stdout `stdout` (None: the terminal too); it must exit 0."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    main, other = pty.openpty()
    fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    out = other if stdout is None else stdout
    with subprocess.Popen(command, cwd=cwd, stdin=other, stdout=out, stderr=other, env=env) as proc:
        os.close(other)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the command has ended, the terminal's last reader gone
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=120) == 0, shown
    os.close(main)
    return shown.decode().replace("\r\n", "\n")
