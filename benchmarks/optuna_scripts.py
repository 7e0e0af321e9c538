"""Two hand-written Optuna + PyTorch scripts for the benchmark task, as users write them.

    python -m benchmarks.optuna_scripts efficient --trials 20 --storage sqlite:///x.db
    python -m benchmarks.optuna_scripts usual     --trials 20 --storage sqlite:///y.db

`efficient` trains exactly as hpotool does (the epoch's tensors gathered in shuffled order and sliced
into batches, torch's fused Adam stepped and the loss's backward run through `hpotool.lean_step` with
`torch._dynamo`'s import deferred,
one host sync per epoch, one torch thread, SQLite in WAL mode): the baseline for hpotool's own overhead. `usual` is the Optuna PyTorch
example's way: a DataLoader over a TensorDataset, `.item()` every step, torch's default threads, Optuna's
default SQLite set-up. Both use hpotool's digits loader and split so the data are identical, and the same
seeded random sampler, so they train the very same trials as `hpotool optimize`.
"""

from __future__ import annotations

import argparse
import functools
import sqlite3

import optuna
import torch
from torch import nn

from benchmarks.common import RUN
from hpotool.datasets import digits, split
from hpotool.lean_step import LeanStep, backward, defer_dynamo


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    train, val = split(digits(), RUN["data"]["val_fraction"], 1.0, 0)
    return train.x.reshape(len(train), -1), train.y, val.x.reshape(len(val), -1), val.y


def _model(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def efficient(trials: int, storage: str) -> None:
    torch.set_num_threads(1)
    defer_dynamo()  # as hpotool's Trainer does: torch.optim would import torch._dynamo (~1.7 s) for nothing
    xt, yt, xv, yv = _data()
    rdb = optuna.storages.RDBStorage(
        storage, engine_kwargs={"creator": functools.partial(_connect, storage.removeprefix("sqlite:///"))}
    )
    study = optuna.create_study(
        storage=rdb,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),  # hpotool's benchmark study prunes nothing either
    )

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True)
        hidden = trial.suggest_int("model.hidden.0", 32, 128, step=32)
        torch.manual_seed(0)
        model = _model(hidden)
        opt = LeanStep(torch.optim.Adam(model.parameters(), lr=lr, fused=True))
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(0)
        acc = 0.0
        batch = RUN["batch_size"]
        for epoch in range(RUN["epochs"]):
            model.train()
            perm = torch.randperm(len(xt), generator=gen)
            losses = []
            for x, y in zip(xt[perm].split(batch), yt[perm].split(batch), strict=True):
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                backward(loss)
                opt.step()
                losses.append(loss.detach())
            float(torch.stack(losses).sum())  # the train loss, read once per epoch
            model.eval()
            with torch.no_grad():
                out = model(xv)
                acc = float((out.argmax(1) == yv).float().mean())
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc

    study.optimize(objective, n_trials=trials)


def usual(trials: int, storage: str) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    xt, yt, xv, yv = _data()
    loader = DataLoader(TensorDataset(xt, yt), batch_size=RUN["batch_size"], shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=RUN["batch_size"])
    study = optuna.create_study(
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("optimizer.lr", 1e-3, 1e-1, log=True)
        hidden = trial.suggest_int("model.hidden.0", 32, 128, step=32)
        model = _model(hidden)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        acc = 0.0
        for epoch in range(RUN["epochs"]):
            model.train()
            running = 0.0
            for x, y in loader:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                running += loss.item()
            model.eval()
            correct = 0
            with torch.no_grad():
                for x, y in val_loader:
                    correct += (model(x).argmax(1) == y).sum().item()
            acc = correct / len(xv)
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc

    study.optimize(objective, n_trials=trials)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("style", choices=["efficient", "usual"])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    {"efficient": efficient, "usual": usual}[args.style](args.trials, args.storage)


if __name__ == "__main__":
    main()
