"""Schedules span the run in the units they are stepped in; a plateau schedule watches val_loss, or the
metric `scheduler.monitor` names."""

from __future__ import annotations

import importlib
import itertools
import math
import warnings
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
import yaml
from torch import nn

from hpotool.config import RunConfig
from hpotool.data import load_data
from hpotool.parts import build_trainer
from hpotool.trainer import Trainer, batch_sizes, steps_per_epoch

LR = 0.01
EPOCHS = 4


def _trainer(
    scheduler: dict[str, Any], batch_size: int = 64, data: dict[str, Any] | None = None
) -> tuple[Trainer, Any]:
    cfg = RunConfig.model_validate(
        {
            "data": data or {"name": "regression", "n_samples": 300},
            "optimizer": {"name": "sgd", "lr": LR},
            "scheduler": scheduler,
            "epochs": EPOCHS,
            "batch_size": batch_size,
            "device": "cpu",
        }
    )
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(data.input_shape), data.out_features))
    return build_trainer(cfg, data, model), data


def _lrs(scheduler: dict[str, Any]) -> tuple[list[float], int]:
    """The lr of every optimizer step of the run, and the batches per epoch."""
    trainer, data = _trainer(scheduler)
    seen: list[float] = []
    hook = trainer.optimizer.register_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    trainer.fit(data.train, data.val, epochs=EPOCHS)
    hook.remove()
    return seen, steps_per_epoch(len(data.train), 64)


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_cosine_decays_once_over_the_run_whatever_it_is_stepped_by(interval: str) -> None:
    lrs, per_epoch = _lrs({"name": "cosine", "interval": interval})
    assert len(lrs) == EPOCHS * per_epoch and lrs[0] == LR
    assert all(b <= a for a, b in itertools.pairwise(lrs))  # no restart within the run
    if interval == "step":
        assert lrs[-1] < LR * 0.01  # it reached the end of its cosine at the last batch
    else:
        assert lrs[-1] == pytest.approx(LR * (1 + math.cos(math.pi * 3 / 4)) / 2)  # the 4th epoch of 4


@pytest.mark.parametrize("interval", ["epoch", "step"])
@pytest.mark.parametrize("name", ["cosine", "step", "none"])
def test_a_warm_up_rises_linearly_to_the_lr_then_the_schedule_runs_over_the_epochs_left(
    name: str, interval: str
) -> None:
    lrs, per_epoch = _lrs({"name": name, "interval": interval, "warmup_epochs": 1, "warmup_start": 0.2})
    steps = per_epoch if interval == "step" else 1  # the warm-up's steps: one epoch's
    by_step = lrs if interval == "step" else [lrs[e * per_epoch] for e in range(EPOCHS)]
    warm = [LR * (0.2 + 0.8 * i / steps) for i in range(steps)]
    assert by_step[:steps] == pytest.approx(warm)  # from warmup_start x lr, linearly
    assert by_step[steps] == pytest.approx(LR) and max(lrs) == pytest.approx(LR)
    after = by_step[steps:]
    assert all(b <= a for a, b in itertools.pairwise(after))
    if name == "cosine":  # one cosine over the 3 epochs left, not the 4 of the run
        expected = LR * (1 + math.cos(math.pi * 2 / 3)) / 2
        assert (by_step[-1] if interval == "epoch" else lrs[-per_epoch]) == pytest.approx(expected, rel=0.02)
    elif name == "none":
        assert after == pytest.approx([LR] * len(after))


@pytest.mark.parametrize(
    ("scheduler", "epochs", "message"),
    [
        (
            {"name": "cosine", "warmup_epochs": 4},
            4,
            "scheduler.warmup_epochs: 4 is not shorter than the run (epochs: 4), so the 'cosine' schedule would "
            "never start; use at most 3, or more epochs",
        ),
        (
            {"name": "none", "warmup_epochs": -1},
            4,
            "scheduler.warmup_epochs: must be 0 (no warm-up) or more, got -1",
        ),
        (
            {"name": "step", "warmup_epochs": 1, "warmup_start": 0.0},
            4,
            "scheduler.warmup_start: the warm-up starts at warmup_start x lr, so it must be greater than 0 and at "
            "most 1, got 0.0",
        ),
        (
            {"name": "cosine", "warmup_epochs": 0.5},
            4,
            "scheduler: scheduler 'cosine' argument 'warmup_epochs': Input should be a valid integer, got 0.5",
        ),
        (
            {"name": "onecycle", "warmup_epochs": 1},
            4,
            "scheduler: scheduler 'onecycle' takes no argument 'warmup_epochs'",
        ),
    ],
)
def test_a_warm_up_the_run_cannot_have_is_refused_at_load_time(
    scheduler: dict[str, Any], epochs: int, message: str, tmp_path: Path
) -> None:
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": scheduler, "epochs": epochs}))
    with pytest.raises(HpoError) as info:
        load_run_config(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_warm_up_is_checked_again_when_epochs_change() -> None:
    """A searched or command-line epochs that leaves no room after the warm-up is refused as it is set."""
    from hpotool.errors import HpoError
    from hpotool.overrides import apply_overrides

    cfg = RunConfig.model_validate({"scheduler": {"name": "cosine", "warmup_epochs": 2}, "epochs": 5})
    assert apply_overrides(cfg, {"epochs": 3}).epochs == 3
    with pytest.raises(
        HpoError, match=r"scheduler.warmup_epochs: 2 is not shorter than the run \(epochs: 2\)"
    ):
        apply_overrides(cfg, {"epochs": 2})


def test_a_cosine_ending_above_the_lr_is_refused() -> None:
    """eta_min 0.1 with lr 0.001 raised the lr a hundredfold over the run."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    run = {"scheduler": {"name": "cosine", "eta_min": 0.1}, "optimizer": {"name": "adam", "lr": 0.001}}
    with pytest.raises(HpoError) as info:
        check_run(RunConfig.model_validate({**run, "device": "cpu"}), "run.yaml")
    assert str(info.value) == (
        "run.yaml: scheduler: eta_min 0.1 is above the optimizer's lr 0.001: the cosine would raise "
        "the lr to it; give eta_min below optimizer.lr"
    )
    lrs, _ = _lrs({"name": "cosine", "eta_min": LR / 10})
    assert lrs[0] == LR and min(lrs) >= LR / 10


@pytest.mark.parametrize("step_size", [0, -2])
def test_a_step_size_below_one_is_refused(step_size: int) -> None:
    """0 fell back to the default (a third of the run), and -2 decayed the lr every other epoch."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    cfg = RunConfig.model_validate({"scheduler": {"name": "step", "step_size": step_size}, "device": "cpu"})
    with pytest.raises(HpoError) as info:
        check_run(cfg, "run.yaml")
    assert str(info.value) == (
        f"run.yaml: scheduler: step_size must be at least 1 (the epochs between decays), got {step_size}"
    )


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        (
            {"name": "cosine", "eta_min": -0.01},
            "eta_min must be 0 or more (the lr the cosine ends at), got -0.01",
        ),
        (
            {"name": "step", "gamma": -0.5},
            "gamma must be 0 or more (the lr is multiplied by it every step_size epochs), got -0.5",
        ),
        (
            {"name": "onecycle", "max_lr": 0.0},
            "max_lr must be above 0 (the peak lr of the cycle), got 0; give the peak, or drop max_lr for a cycle that peaks at optimizer.lr",
        ),
        (
            {"name": "onecycle", "max_lr": -0.1},
            "max_lr must be above 0 (the peak lr of the cycle), got -0.1; give the peak, or drop max_lr for a cycle that peaks at optimizer.lr",
        ),
        (
            {"name": "onecycle", "div_factor": 0},
            "div_factor must be above 0 (the cycle starts at max_lr / div_factor), got 0; drop it for its default, 25",
        ),
        (
            {"name": "onecycle", "final_div_factor": -2},
            "final_div_factor must be above 0 (the cycle ends at its start / final_div_factor), got -2; drop it for its default, 1e4",
        ),
    ],
)
def test_a_schedule_that_would_take_the_lr_to_zero_or_below_is_refused(
    scheduler: dict[str, Any], message: str
) -> None:
    """These trained on: a negative eta_min, gamma or max_lr made the lr negative (the epochs climbed the
    loss), a max_lr of 0 trained nothing, every trial alike, and a div_factor of 0 failed with a bare
    ZeroDivisionError."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    cfg = RunConfig.model_validate({"scheduler": scheduler, "device": "cpu"})
    with pytest.raises(HpoError) as info:
        check_run(cfg, "run.yaml")
    assert str(info.value) == f"run.yaml: scheduler: {message}"


def test_a_step_schedule_with_gamma_zero_still_trains() -> None:
    lrs, _ = _lrs({"name": "step", "gamma": 0.0})
    assert lrs[0] == LR and lrs[-1] == 0.0


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        (
            {"name": "step", "step_size": 4},
            "step_size 4 is not shorter than the 4 epochs the schedule runs, so the lr would never decay; use at "
            "most 3, or more epochs",
        ),
        (
            {"name": "step", "step_size": 1, "warmup_epochs": 3},
            "step_size 1 is not shorter than the 1 epoch the schedule runs after the warm-up, so the lr would "
            "never decay; use the 'none' schedule, or more epochs",
        ),
    ],
)
def test_a_step_schedule_that_would_never_decay_is_refused(scheduler: dict[str, Any], message: str) -> None:
    """step_size 5 in a 2-epoch run kept the lr constant: a searched gamma trained every trial alike."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    cfg = RunConfig.model_validate({"scheduler": scheduler, "epochs": EPOCHS, "device": "cpu"})
    with pytest.raises(HpoError) as info:
        check_run(cfg, "run.yaml")
    assert str(info.value) == f"run.yaml: scheduler: {message}"
    lrs, per_epoch = _lrs({"name": "step", "step_size": EPOCHS - 1, "gamma": 0.5})
    assert lrs[-1] == LR * 0.5 and lrs[(EPOCHS - 1) * per_epoch - 1] == LR  # it decays in the last epoch


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_step_decays_every_third_of_the_run(interval: str) -> None:
    lrs, per_epoch = _lrs({"name": "step", "gamma": 0.5, "interval": interval})
    by_epoch = [lrs[e * per_epoch] for e in range(EPOCHS)]  # the first step of each epoch
    assert by_epoch == pytest.approx([LR, LR * 0.5, LR * 0.25, LR * 0.125])  # step_size: 4 // 3 = 1 epoch


@pytest.mark.parametrize(
    "scheduler",
    [
        {"name": "onecycle", "max_lr": 0.1},
        {"name": "onecycle", "max_lr": 0.1, "interval": "epoch"},
        {"name": "torch.optim.lr_scheduler:OneCycleLR", "max_lr": 0.1},  # by path: stepped per batch
    ],
)
def test_one_cycle_rises_to_its_peak_and_comes_down_within_the_run(scheduler: dict[str, Any]) -> None:
    lrs, _ = _lrs(scheduler)
    peak = max(lrs)
    assert peak == pytest.approx(0.1, rel=0.2) and lrs[-1] < 0.1 / 100
    assert lrs.index(peak) < len(lrs) / 2  # warm-up is pct_start (0.3) of the run


class RecordingPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's ReduceLROnPlateau, keeping the values it was given."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: float,
        patience: int,
        threshold: float,
        mode: Literal["min", "max"] = "min",
    ) -> None:
        super().__init__(optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold)
        self.watched: list[float] = []

    def step(self, metrics: float, epoch: int | None = None) -> None:  # type: ignore[override]
        self.watched.append(float(metrics))
        super().step(metrics)


def test_a_plateau_schedule_watches_val_loss_each_epoch() -> None:
    # threshold 0.99: no epoch improves on the first enough, so after it the lr halves every epoch
    trainer, data = _trainer(
        {"name": "tests.test_schedulers:RecordingPlateau", "factor": 0.5, "patience": 0, "threshold": 0.99}
    )
    rows: list[dict[str, float]] = []
    trainer.fit(data.train, data.val, epochs=EPOCHS, on_epoch_end=lambda r: rows.append(r.metrics))
    assert trainer.scheduler is not None and trainer.scheduler.watched == [r["val_loss"] for r in rows]  # type: ignore[attr-defined]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(LR * 0.5 ** (EPOCHS - 1))


@pytest.mark.parametrize(
    ("monitor", "mode", "data"),
    [
        ("val_accuracy", "max", {"name": "digits", "subset_fraction": 0.2}),
        ("train_loss", "min", None),
        ("val_mae", "min", None),
    ],
)
def test_a_plateau_schedule_watches_the_metric_monitor_names(
    monitor: str, mode: str, data: dict[str, Any] | None
) -> None:
    """It watched val_loss whatever the user wanted it to watch."""
    trainer, split = _trainer(
        {
            "name": "tests.test_schedulers:RecordingPlateau",
            "monitor": monitor,
            "mode": mode,
            "factor": 0.5,
            "patience": 0,
            "threshold": 0.99,
        },
        data=data,
    )
    rows: list[dict[str, float]] = []
    trainer.fit(split.train, split.val, epochs=EPOCHS, on_epoch_end=lambda r: rows.append(r.metrics))
    assert trainer.scheduler is not None and trainer.scheduler.watched == [r[monitor] for r in rows]  # type: ignore[attr-defined]
    assert trainer.scheduler.watched != [r["val_loss"] for r in rows]  # type: ignore[attr-defined]


def test_the_built_in_plateau_schedule_halves_the_lr_when_val_accuracy_stops_rising() -> None:
    trainer, split = _trainer(
        {
            "name": "plateau",
            "monitor": "val_accuracy",
            "mode": "max",
            "factor": 0.5,
            "patience": 0,
            "threshold": 0.99,
        },
        data={"name": "digits", "subset_fraction": 0.2},
    )
    trainer.fit(split.train, split.val, epochs=EPOCHS)
    assert trainer.scheduler_metric == "val_accuracy"
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(LR * 0.5 ** (EPOCHS - 1))


PLATEAU = "torch.optim.lr_scheduler:ReduceLROnPlateau"


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        (
            {"name": "plateau", "monitor": "val_accuracy"},
            "scheduler: 'plateau' watches val_accuracy, which is better higher, but its mode is min, which cuts "
            "the lr while val_accuracy rises; set mode: max",
        ),
        (
            {"name": PLATEAU, "monitor": "val_rmse", "mode": "max"},
            "scheduler.monitor: 'val_rmse' is not measured each epoch of this classification task; choose one "
            "of: train_loss, val_loss, val_accuracy",
        ),
        (
            {"name": "plateau", "monitor": "train_loss", "mode": "max"},
            "scheduler: 'plateau' watches train_loss, which is better lower, but its mode is max, which cuts "
            "the lr while train_loss falls; set mode: min",
        ),
        (
            {"name": "plateau", "monitor": "train_loss", "interval": "step"},
            "scheduler: 'plateau' watches train_loss once per epoch; drop interval: step",
        ),
        (
            {"name": "cosine", "monitor": "val_loss"},
            "scheduler.monitor: scheduler 'cosine' watches no metric (its step() takes none), so monitor: "
            "val_loss would do nothing; drop monitor, or use a schedule that watches one (name: plateau)",
        ),
        (
            {"name": "plateau", "monitor": "val_acc"},
            # before: "choose one of: train_loss, val_loss, val_accuracy, val_rmse, val_mae", each as if for
            # any data (a regression run then refused val_accuracy)
            "scheduler.monitor: 'val_acc' is not an epoch metric (did you mean 'val_accuracy'?); choose one of: "
            "train_loss, val_loss (any data); val_accuracy (classification data); val_rmse, val_mae (regression "
            "data)",
        ),
    ],
)
def test_a_monitor_the_run_cannot_watch_is_refused_naming_the_fix(
    scheduler: dict[str, Any], message: str, tmp_path: Path
) -> None:
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {"data": {"name": "digits", "subset_fraction": 0.2}, "scheduler": scheduler, "device": "cpu"}
        )
    )
    with pytest.raises(HpoError) as info:
        check_run(load_run_config(path), str(path))
    assert str(info.value) == f"{path}: {message}"


def test_monitor_is_left_out_of_a_dump_when_unset_so_stored_studies_keep_their_fingerprint() -> None:
    assert RunConfig().model_dump(mode="json")["scheduler"] == {"name": "none", "interval": None}
    watched = RunConfig.model_validate({"scheduler": {"name": "plateau", "monitor": "train_loss"}})
    assert watched.model_dump(mode="json")["scheduler"] == {
        "name": "plateau",
        "interval": None,
        "monitor": "train_loss",
    }
    assert RunConfig.model_validate(watched.model_dump(mode="json")) == watched


def test_monitor_can_be_searched_and_overridden_though_a_dump_leaves_it_out() -> None:
    """search_space.scheduler.monitor was refused: 'the run config has no such key'."""
    from hpotool.overrides import apply_overrides, config_paths

    cfg = RunConfig.model_validate({"scheduler": {"name": "plateau"}})
    assert "scheduler.monitor" in config_paths(cfg)
    assert apply_overrides(cfg, {"scheduler.monitor": "train_loss"}).scheduler.monitor == "train_loss"


def test_a_plateau_schedule_stepped_per_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="watches val_loss once per epoch; drop interval: step"):
        _trainer({"name": "torch.optim.lr_scheduler:ReduceLROnPlateau", "interval": "step"})


def test_a_plateau_schedule_in_max_mode_is_refused_before_it_cuts_the_lr_while_val_loss_falls() -> None:
    """mode: max read the falling val_loss as no improvement and halved the lr every epoch."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    cfg = RunConfig.model_validate(
        {
            "data": {"name": "regression", "n_samples": 300},
            "scheduler": {"name": "torch.optim.lr_scheduler:ReduceLROnPlateau", "mode": "max"},
            "device": "cpu",
        }
    )
    with pytest.raises(HpoError) as info:
        check_run(cfg, "run.yaml")
    assert str(info.value) == (
        "run.yaml: scheduler: 'torch.optim.lr_scheduler:ReduceLROnPlateau' watches "
        "val_loss, which is better lower, but its mode is max, which cuts the lr while val_loss falls; drop "
        "mode or set mode: min"
    )
    _trainer({"name": "torch.optim.lr_scheduler:ReduceLROnPlateau", "mode": "min"})


def test_a_one_cycle_schedule_shorter_than_the_run_is_refused_before_it_fails_at_its_end() -> None:
    """total_steps: 3 passed the one-step check and failed the run with a traceback ('Tried to step 4
    times') after three batches."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    scheduler = {"name": "torch.optim.lr_scheduler:OneCycleLR", "max_lr": 0.1, "total_steps": 3}
    with pytest.raises(HpoError) as info:
        check_run(RunConfig.model_validate({"scheduler": scheduler, "device": "cpu"}), "run.yaml")
    assert str(info.value) == (
        "run.yaml: scheduler: scheduler 'torch.optim.lr_scheduler:OneCycleLR' has total_steps 3, "
        "but the run steps it 230 times (10 epochs x 23 batches), and it fails past its end; drop total_steps "
        "(hpotool passes epochs and steps_per_epoch)"
    )
    with pytest.raises(ValueError, match=r"steps it 4 times \(once per epoch, 4 epochs\)"):
        _trainer({**scheduler, "interval": "epoch"})
    _trainer({**scheduler, "total_steps": EPOCHS, "interval": "epoch"})  # exactly the run: it trains


def test_a_one_cycle_schedule_longer_than_the_run_is_refused_before_its_cycle_stops_part_way() -> None:
    """total_steps: 1000 on a run of 16 steps trained without a word: the lr climbed for the whole run, a
    fiftieth of its warm-up, and never reached max_lr or annealed."""
    scheduler = {"name": "torch.optim.lr_scheduler:OneCycleLR", "max_lr": 0.1, "total_steps": 1000}
    with pytest.raises(ValueError) as info:
        _trainer(scheduler)
    assert str(info.value) == (
        "scheduler 'torch.optim.lr_scheduler:OneCycleLR' has total_steps 1000, but the run steps it 16 times (4 "
        "epochs x 4 batches), so its cycle would stop 2% of the way through, before the lr anneals; drop "
        "total_steps (hpotool passes epochs and steps_per_epoch)"
    )
    lrs, _ = _lrs({**scheduler, "total_steps": None})  # as the line says: the cycle spans the run
    assert max(lrs) == pytest.approx(0.1, rel=0.2) and lrs[-1] < 0.1 / 100


@pytest.mark.parametrize(
    ("n", "batch", "sizes"),
    [(10, 4, [4, 4, 2]), (9, 4, [4, 5]), (8, 4, [4, 4]), (3, 4, [3]), (1, 4, [1]), (5, 1, [1] * 5)],
)
def test_a_lone_last_sample_joins_the_batch_before_it(n: int, batch: int, sizes: list[int]) -> None:
    assert batch_sizes(n, batch) == sizes and steps_per_epoch(n, batch) == len(sizes)


def test_batch_norm_trains_when_one_sample_is_left_over() -> None:
    data = _trainer({"name": "none"})[1]
    n = len(data.train)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(data.input_shape[0], 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])) if m.training else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    trainer = Trainer(model, optimizer, nn.MSELoss(), "regression", batch_size=n - 1)  # one sample over
    last = trainer.fit(data.train, data.val, epochs=1)
    assert seen == [n] and math.isfinite(last.metrics["train_loss"])


def test_each_epochs_history_row_records_the_lr_it_began_with(tmp_path: Path) -> None:
    """A warm-up or a plateau cut could not be seen: history.csv, trials.json and the report held the
    metrics of each epoch but not its learning rate."""
    from hpotool.runner import train_run
    from hpotool.saved import train_and_save

    run = {
        "data": {"name": "regression", "n_samples": 300},
        "optimizer": {"name": "sgd", "lr": LR},
        "scheduler": {"name": "cosine", "warmup_epochs": 1, "warmup_start": 0.2},
        "epochs": EPOCHS,
        "batch_size": 64,
        "device": "cpu",
    }
    rows = train_run(RunConfig.model_validate(run)).history
    lrs = [row["lr"] for row in rows]
    cosine = [LR * (1 + math.cos(math.pi * i / 3)) / 2 for i in range(3)]
    assert lrs == pytest.approx([LR * 0.2, *cosine])  # the warm-up's first epoch, then the cosine
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_rmse", "val_mae", "lr", "epoch_time"]

    plateau = {"name": "plateau", "monitor": "val_loss", "factor": 0.5, "patience": 0, "threshold": 10.0}
    saved = train_and_save(RunConfig.model_validate({**run, "scheduler": plateau}), tmp_path / "run")
    lines = (saved.folder / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("lr")
    # val_loss never falls by the 1000% threshold: each epoch's step halves the lr the next one starts with
    assert [float(line.split(",")[column]) for line in lines[1:]] == pytest.approx(
        [LR * 0.5**e for e in range(EPOCHS)]
    )


def test_a_searched_monitor_takes_the_mode_searched_with_it_under_a_condition(tmp_path: Path) -> None:
    """Searching scheduler.monitor over [val_loss, val_accuracy] needs the mode to follow it; the YAML the
    refusal gives (scheduler.mode with when: {scheduler.monitor: val_accuracy}) was refused as well, since
    each monitor was checked against the run config's mode alone."""
    from hpotool.errors import HpoError
    from hpotool.plan import prepare_study
    from hpotool.storage import load_study
    from hpotool.study_run import run_study

    monitor = {"type": "categorical", "choices": ["val_loss", "val_accuracy"]}
    mode = {"type": "categorical", "choices": ["max"], "when": {"scheduler.monitor": "val_accuracy"}}
    run = {
        "data": {"name": "digits", "subset_fraction": 0.1},
        "model": {"name": "mlp", "hidden": [8]},
        "scheduler": {"name": "plateau"},
        "epochs": 2,
        "batch_size": 32,
        "device": "cpu",
        "torch_threads": 1,
    }
    opt = {
        "study_name": "m",
        "storage": f"sqlite:///{tmp_path / 'm.db'}",
        "n_trials": 4,
        "metric": "val_accuracy",
        "direction": "maximize",
        "seed": 0,
        "sampler": {"name": "random"},
        "pruner": {"name": "nop"},
        "search_space": {"scheduler.monitor": monitor},
    }
    run_path = tmp_path / "run.yaml"
    run_path.write_text(yaml.safe_dump(run))
    opt_path = tmp_path / "opt.yaml"
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    with pytest.raises(HpoError, match=r"no one mode fits the choices val_loss, val_accuracy"):
        prepare_study(run_path, opt_path)
    opt_path.write_text(
        yaml.safe_dump(
            {**opt, "search_space": {"scheduler.monitor": monitor, "scheduler.mode": mode}}, sort_keys=False
        )
    )
    run_study(prepare_study(run_path, opt_path), max_failures=0)
    trials = load_study("m", opt["storage"]).trials
    assert {(t.params["scheduler.monitor"], t.params.get("scheduler.mode")) for t in trials} == {
        ("val_accuracy", "max"),
        ("val_loss", None),
    }
    assert all(t.state.name == "COMPLETE" for t in trials)
    # a misspelt mode under the condition is still refused, naming the monitor whose trials would fail
    bad = {**mode, "choices": ["min"]}
    opt_path.write_text(
        yaml.safe_dump(
            {**opt, "search_space": {"scheduler.monitor": monitor, "scheduler.mode": bad}}, sort_keys=False
        )
    )
    with pytest.raises(
        HpoError, match=r"search_space.scheduler.monitor: with scheduler.monitor=val_accuracy"
    ):
        prepare_study(run_path, opt_path)


@pytest.mark.parametrize(
    ("scheduler", "space", "message"),
    [
        (
            {"name": "onecycle", "max_lr": 0.05},
            {},
            "sets max_lr: 0.05, and runs every trial's lr from max_lr / div_factor up to max_lr and down whatever "
            "optimizer.lr is; search scheduler.max_lr instead, or drop max_lr from the scheduler section (the cycle "
            "then peaks at optimizer.lr)",
        ),
        (
            {"name": "onecycle"},
            {"scheduler.max_lr": {"type": "float", "low": 0.01, "high": 0.1}},
            "searches scheduler.max_lr, and runs every trial's lr from max_lr / div_factor up to max_lr and down "
            "whatever optimizer.lr is; drop optimizer.lr from the search space",
        ),
    ],
)
def test_a_searched_lr_that_a_one_cycle_max_lr_overrides_is_refused(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    scheduler: dict[str, Any],
    space: dict[str, Any],
    message: str,
) -> None:
    """Every trial trained the same run (val_accuracy 0.3705 three times over): the cycle's lrs come from
    max_lr alone, so the searched optimizer.lr was suggested, stored and never used."""
    from hpotool.errors import HpoError
    from hpotool.plan import prepare_study

    from .conftest import write_yaml

    run = write_yaml(tmp_path / "run.yaml", {**run_dict, "scheduler": scheduler})
    opt_dict["search_space"] = {**opt_dict["search_space"], **space}
    opt = write_yaml(tmp_path / "optimize.yaml", opt_dict)
    with pytest.raises(HpoError) as info:
        prepare_study(run, opt)
    assert (
        str(info.value)
        == f"{opt}: search_space.optimizer.lr: has no effect: the 'onecycle' schedule {message}"
    )


def test_a_one_cycle_without_max_lr_peaks_at_each_trials_lr(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    from .tiny_study import run_tiny_study

    study = run_tiny_study(tmp_path, {**run_dict, "scheduler": {"name": "onecycle"}}, opt_dict)
    assert len({t.value for t in study.trials}) == len(study.trials) == 3


SCHEDULE_IN_A_FUNCTION = (
    "build the scheduler in a function of your own module (def my_schedule(optimizer, epochs): return "
    "LambdaLR(optimizer, lambda epoch: 0.95 ** epoch)) and give its import path (package.module:Name) as name"
)


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        (
            {"name": "torch.optim.lr_scheduler:LambdaLR"},
            "scheduler 'torch.optim.lr_scheduler:LambdaLR' requires 'lr_lambda', a function, which a YAML value "
            "cannot be",
        ),
        (
            {"name": "torch.optim.lr_scheduler:MultiplicativeLR", "lr_lambda": 0.95},
            "scheduler 'torch.optim.lr_scheduler:MultiplicativeLR' argument 'lr_lambda' takes a function, which a "
            "YAML value cannot be (got 0.95)",
        ),
        (
            {"name": "torch.optim.lr_scheduler:SequentialLR", "milestones": [2]},
            "scheduler 'torch.optim.lr_scheduler:SequentialLR' requires 'schedulers', an object "
            "(list[LRScheduler]), which a YAML value cannot be",
        ),
    ],
)
def test_a_schedule_taking_a_function_says_to_build_it_in_a_function(
    scheduler: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """LambdaLR without lr_lambda said "add lr_lambda: ... under scheduler:", and any value added then failed
    with "TypeError: 'float' object is not callable": no YAML value is a function."""
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": scheduler}))
    with pytest.raises(HpoError) as info:
        load_run_config(path)
    assert str(info.value) == f"{path}: scheduler: {message}; {SCHEDULE_IN_A_FUNCTION}"
    # what the line says to write trains
    (tmp_path / "decay_schedule.py").write_text(
        "from torch.optim.lr_scheduler import LambdaLR\n\n\n"
        "def my_schedule(optimizer, epochs):\n    return LambdaLR(optimizer, lambda epoch: 0.95 ** epoch)\n"
    )
    lrs, _ = _lrs({"name": "decay_schedule:my_schedule"})
    assert lrs[0] == LR and lrs[-1] < LR


HF_LINEAR = """from torch.optim.lr_scheduler import LambdaLR


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    def lr_lambda(step):
        if step < num_warmup_steps:
            return step / max(1, num_warmup_steps)
        return max(0.0, (num_training_steps - step) / max(1, num_training_steps - num_warmup_steps))
    return LambdaLR(optimizer, lr_lambda, last_epoch)
"""


def test_a_hugging_face_style_schedule_is_stepped_per_batch_over_the_runs_steps(tmp_path: Path) -> None:
    """transformers' get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps) counts
    batches, but was stepped once per epoch: with num_warmup_steps: 5 the lr rose for the whole 4-epoch run
    and never decayed. It steps per batch now, and hpotool gives it num_training_steps."""
    (tmp_path / "hf_schedules.py").write_text(HF_LINEAR)
    lrs, per_epoch = _lrs({"name": "hf_schedules:get_linear_schedule_with_warmup", "num_warmup_steps": 5})
    assert per_epoch > 1 and len(lrs) == EPOCHS * per_epoch
    assert lrs[:6] == pytest.approx([LR * s / 5 for s in range(6)])  # the warm-up, over 5 batches
    assert all(b < a for a, b in itertools.pairwise(lrs[5:]))  # then a linear decay to the run's end
    assert lrs[-1] == pytest.approx(LR / (EPOCHS * per_epoch - 5))
    with pytest.raises(ValueError, match="'num_training_steps' is set by hpotool"):
        RunConfig.model_validate(
            {"scheduler": {"name": "hf_schedules:get_linear_schedule_with_warmup", "num_training_steps": 9}}
        )
    lrs, _ = _lrs(  # interval: epoch still steps it per epoch, over the run's epochs
        {"name": "hf_schedules:get_linear_schedule_with_warmup", "num_warmup_steps": 1, "interval": "epoch"}
    )
    assert sorted(set(lrs), reverse=True) == pytest.approx([LR, LR * 2 / 3, LR / 3, 0.0])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "last_epch",
            "scheduler 'torch.optim.lr_scheduler:StepLR' takes no argument 'last_epch'; it takes: step_size, gamma",
        ),
        (
            "last_epoch",
            "scheduler 'torch.optim.lr_scheduler:StepLR' argument 'last_epoch' resumes a schedule part-way "
            "through, from a checkpoint's optimizer state, and hpotool starts every run's schedule at its "
            "beginning; remove last_epoch",
        ),
    ],
)
def test_a_schedules_last_epoch_is_neither_suggested_nor_taken(
    key: str, message: str, tmp_path: Path
) -> None:
    """StepLR's arguments were listed as "step_size, gamma, last_epoch" and `last_epch` got "did you mean
    'last_epoch'?", whose value then failed the run with torch's KeyError about 'initial_lr' ("when resuming
    scheduler with last_epoch >= 0"): a fresh run has nothing to resume."""
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError

    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 1, key: 1}})
    )
    with pytest.raises(HpoError) as info:
        load_run_config(path)
    assert str(info.value) == f"{path}: scheduler: {message}"
    from hpotool.overrides import check_path, config_paths

    run = RunConfig.model_validate({"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 1}})
    with pytest.raises(HpoError) as info:  # nor searched: it said "the run config has no such key"
        check_path("scheduler.last_epoch", config_paths(run))
    assert str(info.value).startswith(
        "search_space.scheduler.last_epoch: scheduler argument 'last_epoch' resumes a schedule part-way"
    )
    (tmp_path / "hf_schedules.py").write_text(HF_LINEAR)  # nor a Hugging Face schedule's
    hf = {"name": "hf_schedules:get_linear_schedule_with_warmup", "num_warmup_steps": 1, "last_epoch": 1}
    with pytest.raises(ValueError, match="'last_epoch' resumes a schedule"):
        RunConfig.model_validate({"scheduler": hf})


EPOCH_COSINE = """from torch.optim.lr_scheduler import CosineAnnealingLR


def cosine(optimizer, epochs):
    return CosineAnnealingLR(optimizer, T_max=epochs)


def cosine_over_steps(optimizer, epochs, steps_per_epoch):
    return CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
"""


def test_a_schedule_counted_in_epochs_and_stepped_per_batch_is_refused(tmp_path: Path) -> None:
    """`def cosine(optimizer, epochs): return CosineAnnealingLR(optimizer, T_max=epochs)` with interval: step
    ran its cosine over the first 4 batches and then went up and down every 8, without a word: the history
    showed an lr that looked like a decay."""
    from hpotool.errors import RunCheckError

    (tmp_path / "epoch_cosine.py").write_text(EPOCH_COSINE)
    with pytest.raises(RunCheckError) as info:
        _trainer({"name": "epoch_cosine:cosine", "interval": "step"})
    assert str(info.value) == (
        "scheduler: 'epoch_cosine:cosine' takes the run's length as epochs (it asks for epochs, not steps_per_epoch or "
        "num_training_steps), but interval: step steps it after every batch, so it would run its course in the "
        f"first {EPOCHS} batches; drop interval: step, or give it a steps_per_epoch argument and span epochs * "
        "steps_per_epoch steps"
    )
    lrs, per_epoch = _lrs({"name": "epoch_cosine:cosine"})  # per epoch, as by default, it decays over the run
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx(
        [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    )
    lrs, _ = _lrs(
        {"name": "epoch_cosine:cosine_over_steps", "interval": "step"}
    )  # what the line says to write
    assert all(b <= a for a, b in itertools.pairwise(lrs)) and lrs[-1] < LR * 0.01


TIMM_LIKE = """import math


class CosineLRScheduler:
    # as timm.scheduler.CosineLRScheduler is called: step(epoch, metric=None) after each epoch

    def __init__(self, optimizer, t_initial):
        self.optimizer, self.t_initial = optimizer, t_initial
        self.base = [group["lr"] for group in optimizer.param_groups]

    def step(self, epoch, metric=None):
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = 0.5 * base * (1 + math.cos(math.pi * epoch / self.t_initial))


class PlateauLRScheduler:
    # as timm's: step(epoch, metric=None), halving the lr when the metric does not improve

    def __init__(self, optimizer):
        self.optimizer, self.seen, self.best = optimizer, [], None

    def step(self, epoch, metric=None):
        self.seen.append((epoch, metric))
        if metric is not None and self.best is not None and metric >= self.best:
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5
        self.best = metric if self.best is None or metric < self.best else self.best
"""


def test_a_timm_style_schedule_is_given_the_epochs_done_not_val_loss(tmp_path: Path) -> None:
    """A schedule whose step takes the epoch (timm's `step(epoch, metric=None)`) was taken for one that
    watches a metric and given val_loss as the epoch: its lr followed the loss (rising as it fell) instead of
    its cosine, silently."""
    from hpotool.errors import RunCheckError

    (tmp_path / "timm_like.py").write_text(TIMM_LIKE)
    lrs, per_epoch = _lrs({"name": "timm_like:CosineLRScheduler", "t_initial": EPOCHS})
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx(
        [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    )
    trainer, data = _trainer({"name": "timm_like:PlateauLRScheduler", "monitor": "train_loss"})
    rows: list[dict[str, float]] = []
    trainer.fit(data.train, data.val, epochs=EPOCHS, on_epoch_end=lambda r: rows.append(r.metrics))
    # the metric monitor names follows the epoch; "watches no metric (its step() takes none)" before
    assert trainer.scheduler.seen == [(e + 1, row["train_loss"]) for e, row in enumerate(rows)]  # type: ignore[union-attr]
    trainer, data = _trainer({"name": "timm_like:PlateauLRScheduler"})  # no monitor: the epoch alone
    trainer.fit(data.train, data.val, epochs=2)
    assert trainer.scheduler.seen == [(1, None), (2, None)]  # type: ignore[union-attr]
    with pytest.raises(RunCheckError) as info:
        _trainer({"name": "timm_like:CosineLRScheduler", "t_initial": EPOCHS, "interval": "step"})
    assert str(info.value) == (
        "scheduler: 'timm_like:CosineLRScheduler' is given the number of epochs done in step(epoch), once per "
        "epoch; drop interval: step"
    )


def test_torchs_cyclic_schedule_by_path_is_stepped_per_batch() -> None:
    """torch's CyclicLR says it is stepped "after a batch has been used for training" (its step_size_up
    counts batches), but by path it was stepped once per epoch: a cycle of 2 batches up took 2 epochs."""
    scheduler = {
        "name": "torch.optim.lr_scheduler:CyclicLR",
        "base_lr": LR / 10,
        "max_lr": LR,
        "step_size_up": 2,
    }
    lrs, per_epoch = _lrs(scheduler)
    assert per_epoch > 2 and lrs[:5] == pytest.approx([LR / 10, LR * 0.55, LR, LR * 0.55, LR / 10])
    lrs, per_epoch = _lrs({**scheduler, "interval": "epoch"})  # interval still chooses
    assert [lrs[e * per_epoch] for e in range(3)] == pytest.approx([LR / 10, LR * 0.55, LR])


def _cosine_lrs(t_max: int, steps: int, eta_min: float = 0.0) -> list[float]:
    """The lr each of `steps` steps trains with under torch's CosineAnnealingLR, stepped after each."""
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=LR)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=eta_min)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        cosine.step()
    return lrs


def test_a_cosine_by_path_shorter_than_the_run_is_refused_before_its_lr_climbs_back() -> None:
    """torch's CosineAnnealingLR with T_max: 4 on an 8-epoch run took the lr to 0 by epoch 4 and back up to
    the full lr by epoch 8, without a word (its cosine goes on past T_max)."""
    from hpotool.errors import RunCheckError

    scheduler = {"name": "torch.optim.lr_scheduler:CosineAnnealingLR", "T_max": EPOCHS - 2}
    with pytest.raises(RunCheckError) as info:
        _trainer(scheduler)
    assert str(info.value) == (
        f"scheduler: 'torch.optim.lr_scheduler:CosineAnnealingLR' has T_max {EPOCHS - 2}, but the run steps it "
        f"{EPOCHS} times (once per epoch, {EPOCHS} epochs), and past T_max its cosine climbs back up towards the "
        "lr; set T_max to the run's steps, or use name: cosine (hpotool's, which spans every trial's run)"
    )
    assert _cosine_lrs(EPOCHS - 2, EPOCHS) == pytest.approx([LR, LR / 2, 0.0, LR / 2])  # what it says
    lrs, _ = _lrs({**scheduler, "T_max": EPOCHS})  # the run's length: it decays over the run
    assert all(b <= a for a, b in itertools.pairwise(lrs))
    lrs, _ = _lrs({**scheduler, "T_max": EPOCHS * 2})  # longer: it stops part-way, as asked
    assert lrs[-1] == pytest.approx(LR * (1 + math.cos(math.pi * (EPOCHS - 1) / (EPOCHS * 2))) / 2)


def test_a_cosine_by_path_one_step_short_is_refused_for_its_last_step_at_lr_zero_unless_eta_min_is_above() -> (
    None
):
    """T_max one less than the run's steps was refused saying "past T_max its cosine climbs back up to the lr",
    which it does not: the cosine reaches eta_min at T_max, the run's last step, and stops there. At eta_min 0
    that step (stepped per epoch, the whole last epoch) trains at lr 0 and moves no weight, so it is still
    refused, saying so; above 0 it trains at eta_min, as a cosine ending there should, and is let through."""
    from hpotool.errors import RunCheckError

    assert _cosine_lrs(EPOCHS - 1, EPOCHS) == pytest.approx([LR, LR * 0.75, LR * 0.25, 0.0])
    name = "torch.optim.lr_scheduler:CosineAnnealingLR"
    with pytest.raises(RunCheckError) as info:
        _trainer({"name": name, "T_max": EPOCHS - 1})
    assert str(info.value) == (
        f"scheduler: '{name}' has T_max {EPOCHS - 1}, but the run steps it {EPOCHS} times (once per epoch, "
        f"{EPOCHS} epochs), so its cosine ends at T_max, at eta_min 0, and the run's last epoch trains at lr 0, "
        "which moves no weight; set T_max to the run's steps, or eta_min above 0, or use name: cosine (hpotool's, "
        "which spans every trial's run)"
    )
    _, per_epoch = _lrs({"name": "cosine"})
    steps = EPOCHS * per_epoch
    with pytest.raises(
        RunCheckError,
        match=r"steps it \d+ times \(4 epochs x \d+ batches\), so its cosine ends at T_max, "
        r"at eta_min 0, and the run's last batch trains at lr 0",
    ):
        _trainer({"name": name, "T_max": steps - 1, "interval": "step"})
    lrs, _ = _lrs({"name": name, "T_max": EPOCHS - 1, "eta_min": LR / 10})
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx(
        _cosine_lrs(EPOCHS - 1, EPOCHS, LR / 10)
    )
    assert lrs[-1] == pytest.approx(LR / 10)  # the last epoch trains at eta_min


LENGTH_NAMES = """from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR


def cosine(optimizer, max_epochs):
    return CosineAnnealingLR(optimizer, T_max=max_epochs)


def linear(optimizer, total_steps):
    return LambdaLR(optimizer, lambda step: 1 - step / total_steps)
"""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "cosine",
            "requires 'max_epochs', which the config does not set; add max_epochs: ... under scheduler:, or rename "
            "max_epochs to epochs, which hpotool fills in for each run",
        ),
        (
            "linear",
            "requires 'total_steps', which the config does not set; add total_steps: ... under scheduler:, or "
            "rename total_steps to num_training_steps, which hpotool fills in for each run",
        ),
    ],
)
def test_a_schedule_asking_for_the_runs_length_by_another_name_is_told_the_name_hpotool_fills(
    tmp_path: Path, name: str, message: str
) -> None:
    """`def cosine(optimizer, max_epochs)` was told only to set max_epochs in the config, which then stayed
    the same whatever epochs a trial or --epochs ran."""
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError

    (tmp_path / "length_names.py").write_text(LENGTH_NAMES)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": {"name": f"length_names:{name}"}}))
    with pytest.raises(HpoError) as info:
        load_run_config(path)
    assert str(info.value) == f"{path}: scheduler: scheduler 'length_names:{name}' {message}"


STEP_NAMES = """from torch.optim.lr_scheduler import LambdaLR


def warm_up(optimizer, warmup_steps):
    return LambdaLR(optimizer, lambda step: min(1.0, step / warmup_steps))


def warmup_linear(optimizer, warmup_steps, t_total):  # pytorch-transformers' WarmupLinearSchedule
    return LambdaLR(
        optimizer,
        lambda step: step / warmup_steps if step < warmup_steps else (t_total - step) / (t_total - warmup_steps),
    )


def decay(optimizer, decay_steps):  # TensorFlow's: decay_steps counts optimizer steps
    return LambdaLR(optimizer, lambda step: 0.5 ** (step / decay_steps))
"""


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("warm_up", {"warmup_steps": 3}), ("warmup_linear", {"warmup_steps": 3, "t_total": 30})],
)
def test_a_schedule_counting_its_warm_up_in_steps_by_another_name_is_stepped_per_batch(
    tmp_path: Path, name: str, kwargs: dict[str, Any]
) -> None:
    """`def warm_up(optimizer, warmup_steps)` (not one of Hugging Face's argument names) was stepped once per
    epoch: a warm-up of 3 steps took 3 epochs. Any argument named `*_steps` or `t_total` counts batches."""
    (tmp_path / "step_names.py").write_text(STEP_NAMES)
    lrs, per_epoch = _lrs({"name": f"step_names:{name}", **kwargs})
    assert per_epoch > 3
    assert lrs[:4] == pytest.approx([0.0, LR / 3, LR * 2 / 3, LR])  # over 3 batches, not 3 epochs
    lrs, per_epoch = _lrs({"name": "step_names:decay", "decay_steps": per_epoch})
    assert lrs[per_epoch] == pytest.approx(LR / 2) and lrs[1] < LR  # halved after an epoch's batches
    lrs, per_epoch = _lrs({"name": f"step_names:{name}", **kwargs, "interval": "epoch"})  # interval chooses
    assert [lrs[e * per_epoch] for e in range(4)] == pytest.approx([0.0, LR / 3, LR * 2 / 3, LR])


EPOCHS_AND_STEPS = """import math

from torch.optim.lr_scheduler import LambdaLR


def warm_cosine(optimizer, epochs, num_warmup_steps):
    # a warm-up counted in steps, then a cosine over `epochs` of the same steps
    def factor(step):
        return min(1.0, step / num_warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(step, epochs) / epochs))

    return LambdaLR(optimizer, factor)


def warm_cosine_over_steps(optimizer, num_training_steps, num_warmup_steps):
    def factor(step):
        return min(1.0, step / num_warmup_steps) * 0.5 * (1 + math.cos(math.pi * step / num_training_steps))

    return LambdaLR(optimizer, factor)
"""


def test_a_schedule_given_epochs_but_counting_its_warm_up_in_steps_is_refused(tmp_path: Path) -> None:
    """`def warm_cosine(optimizer, epochs, num_warmup_steps)` was stepped per batch (for num_warmup_steps) and
    given the run's 4 epochs as its length: its cosine ended after 4 batches and the lr stayed at 0 for the
    other 12 of the run's 16 steps, without a word."""
    from hpotool.errors import RunCheckError

    (tmp_path / "epochs_and_steps.py").write_text(EPOCHS_AND_STEPS)
    scheduler = {"name": "epochs_and_steps:warm_cosine", "num_warmup_steps": 2}
    with pytest.raises(RunCheckError) as info:
        _trainer(scheduler)
    assert str(info.value) == (
        "scheduler: 'epochs_and_steps:warm_cosine' asks for epochs, the run's length in epochs, but counts "
        f"num_warmup_steps in batches, so stepped after every batch it would run its course in the first {EPOCHS} "
        "batches; ask for num_training_steps (the run's batches, which hpotool fills in) instead of epochs, or "
        "for steps_per_epoch beside it, or set interval: epoch to count num_warmup_steps in epochs too"
    )
    with pytest.raises(RunCheckError) as again:  # "drop interval: step" led to the line above
        _trainer({**scheduler, "interval": "step"})
    assert str(again.value) == str(info.value)
    lrs, per_epoch = _lrs({**scheduler, "name": "epochs_and_steps:warm_cosine_over_steps"})  # as it says
    assert lrs[2] == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * 2 / (EPOCHS * per_epoch))))
    assert lrs[-1] > 0 and all(b < a for a, b in itertools.pairwise(lrs[2:]))
    lrs, per_epoch = _lrs({**scheduler, "interval": "epoch"})  # or both in epochs
    warm_cosine = [min(1, e / 2) * 0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in range(EPOCHS)]
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx([LR * f for f in warm_cosine])


TIMM_UPDATES = """class LinearWarmup:
    # timm's Scheduler protocol: step(epoch, metric=None) after each epoch and step_update(num_updates,
    # metric=None) after each optimizer step; with t_in_epochs=False its times count updates, and step() does
    # nothing (as timm's, whose _get_update_values is None when t_in_epochs)

    def __init__(self, optimizer, warmup_t, t_in_epochs=True):
        self.optimizer, self.warmup_t, self.t_in_epochs = optimizer, warmup_t, t_in_epochs
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.updates, self.epochs = [], []
        self._set(0)

    def _set(self, t):
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * min(1.0, t / self.warmup_t)

    def step(self, epoch, metric=None):
        self.epochs.append(epoch)
        if self.t_in_epochs:
            self._set(epoch)

    def step_update(self, num_updates, metric=None):
        self.updates.append(num_updates)
        if not self.t_in_epochs:
            self._set(num_updates)
"""


def test_a_timm_style_schedule_has_step_update_called_after_every_optimizer_step(tmp_path: Path) -> None:
    """timm's schedules move per batch through `step_update(num_updates)`, which timm's training loop calls
    after each optimizer step; hpotool called only `step(epoch)`, so `t_in_epochs: false` (a warm-up of 3
    updates) left the lr at 0 for the whole run."""
    (tmp_path / "timm_updates.py").write_text(TIMM_UPDATES)
    scheduler = {"name": "timm_updates:LinearWarmup", "warmup_t": 3, "t_in_epochs": False}
    trainer, data = _trainer(scheduler)
    seen: list[float] = []
    trainer.optimizer.register_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    trainer.fit(data.train, data.val, epochs=EPOCHS)
    steps = EPOCHS * steps_per_epoch(len(data.train), 64)
    assert trainer.scheduler.updates == list(range(1, steps + 1))  # type: ignore[union-attr]  # across epochs
    assert trainer.scheduler.epochs == list(range(1, EPOCHS + 1))  # type: ignore[union-attr]
    assert seen[:5] == pytest.approx([0.0, LR / 3, LR * 2 / 3, LR, LR])  # over 3 updates
    lrs, per_epoch = _lrs({**scheduler, "t_in_epochs": True})  # counted in epochs it follows step(epoch)
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx([0.0, LR / 3, LR * 2 / 3, LR])


NESTED = """from torch.optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, LinearLR, OneCycleLR, SequentialLR


def warm_cosine(optimizer, epochs, t_max):
    # a warm-up of an epoch, then a cosine over t_max epochs
    warm = LinearLR(optimizer, start_factor=0.1, total_iters=1)
    return SequentialLR(optimizer, [warm, CosineAnnealingLR(optimizer, T_max=t_max)], milestones=[1])


def chained_cycle(optimizer, total_steps):
    return ChainedScheduler([OneCycleLR(optimizer, max_lr=0.1, total_steps=total_steps)])


def cycle_then_constant(optimizer, total_steps, milestone):
    cycle = OneCycleLR(optimizer, max_lr=0.1, total_steps=total_steps)
    return SequentialLR(optimizer, [cycle, LinearLR(optimizer, 1.0, 1.0)], milestones=[milestone])
"""


def test_the_schedules_inside_a_sequential_or_chained_one_are_checked_as_the_run_steps_them(
    tmp_path: Path,
) -> None:
    """The T_max and total_steps checks looked only at the schedule the factory returned: a cosine inside a
    SequentialLR shorter than its part of the run took the lr back up to the full lr, without a word, and a
    OneCycleLR inside a ChainedScheduler failed the run with torch's 'Tried to step 5 times' after 4 batches."""
    from hpotool.errors import RunCheckError

    (tmp_path / "nested.py").write_text(NESTED)
    for t_max, what in [
        (EPOCHS - 3, "and past T_max its cosine climbs back up towards the lr"),
        (
            EPOCHS - 2,
            "so its cosine ends at T_max, at eta_min 0, and the last epoch of its part trains at lr 0, which moves "
            "no weight",
        ),
    ]:
        with pytest.raises(RunCheckError) as info:
            _trainer({"name": "nested:warm_cosine", "t_max": t_max})
        assert str(info.value) == (
            f"scheduler: 'nested:warm_cosine' holds a CosineAnnealingLR (schedule 2 of its SequentialLR) with T_max "
            f"{t_max}, but the run steps it {EPOCHS - 1} times (its part of the run's {EPOCHS} steps, once per "
            f"epoch, {EPOCHS} epochs), {what}; build it with T_max from the arguments hpotool fills in (epochs, "
            "steps_per_epoch, num_training_steps), to span its part of the run"
            + (", or with eta_min above 0" if t_max == EPOCHS - 2 else "")
        )
    lrs, per_epoch = _lrs(
        {"name": "nested:warm_cosine", "t_max": EPOCHS - 1}
    )  # its part of the run: it trains
    assert lrs[per_epoch] == LR and all(b <= a for a, b in itertools.pairwise(lrs[per_epoch:]))
    steps = EPOCHS * per_epoch
    for total, what in [
        (steps - 1, "and it fails past its end"),
        (steps * 2, "so its cycle would stop 50% of the way through, before the lr anneals"),
    ]:
        with pytest.raises(RunCheckError) as info:
            _trainer({"name": "nested:chained_cycle", "total_steps": total})
        assert str(info.value) == (
            f"scheduler: 'nested:chained_cycle' holds a OneCycleLR (schedule 1 of its ChainedScheduler) with "
            f"total_steps {total}, but the run steps it {steps} times ({EPOCHS} epochs x {per_epoch} batches), "
            f"{what}; build it with total_steps from the arguments hpotool fills in (epochs, steps_per_epoch, "
            "num_training_steps), to span its part of the run"
        )
    lrs, _ = _lrs({"name": "nested:chained_cycle", "total_steps": steps})
    assert max(lrs) == pytest.approx(0.1, rel=0.2) and lrs[-1] < 0.1 / 100
    # a milestone past the run's end: the cycle is stepped at every step of the run, as if alone
    cycle = {"name": "nested:cycle_then_constant", "milestone": steps * 2}
    with pytest.raises(RunCheckError, match=f"total_steps {steps - 1}, but the run steps it {steps} times"):
        _trainer({**cycle, "total_steps": steps - 1})
    lrs, _ = _lrs({**cycle, "total_steps": steps})
    assert lrs[-1] < 0.1 / 100
    lrs, _ = _lrs({**cycle, "total_steps": steps - 1, "milestone": steps - 1})  # it ends at its milestone
    assert lrs[-2] < 0.1 / 100  # the cycle's last step anneals, and the next schedule sets the run's last


RESTARTED = """from torch.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LinearLR, SequentialLR


def warm_then(optimizer, kind):
    # a warm-up of an epoch, then a ChainedScheduler or another SequentialLR from the milestone on
    warm = LinearLR(optimizer, start_factor=0.1, total_iters=1)
    if kind == "chained":
        then = ChainedScheduler([ExponentialLR(optimizer, 0.9)])
    else:
        then = SequentialLR(optimizer, [ExponentialLR(optimizer, 0.9), ExponentialLR(optimizer, 0.5)], milestones=[1])
    return SequentialLR(optimizer, [warm, then], milestones=[1])


def chained_first(optimizer):
    # the same ChainedScheduler first: torch steps it on from where it was built, never step(0)
    chained = ChainedScheduler([ExponentialLR(optimizer, 0.9)])
    return SequentialLR(optimizer, [chained, LinearLR(optimizer, 1.0, 1.0)], milestones=[2])
"""


def test_a_sequential_lr_restarting_a_schedule_that_holds_others_is_refused_before_the_run(
    tmp_path: Path,
) -> None:
    """A SequentialLR restarts each schedule after its first at its milestone with step(0), which torch's
    ChainedScheduler and SequentialLR cannot take: the run passed every check and failed at the milestone,
    part-way through the trial, with a bare NotImplementedError from torch."""
    from hpotool.errors import RunCheckError

    (tmp_path / "restarted.py").write_text(RESTARTED)
    for kind, held in [("chained", "ChainedScheduler"), ("sequential", "SequentialLR")]:
        with pytest.raises(RunCheckError) as info:
            _trainer({"name": "restarted:warm_then", "kind": kind})
        assert str(info.value) == (
            f"scheduler: 'restarted:warm_then' holds a {held} (schedule 2 of its SequentialLR), which the "
            f"SequentialLR restarts at its milestone with step(0), and torch's {held} cannot take that: the run "
            "would fail there, part-way through; put the schedules it holds into the outer SequentialLR (or a "
            "ChainedScheduler around it) instead"
        )
    # first, it is never restarted: it trains, decaying by 0.9 an epoch (torch's SequentialLR steps it once
    # as it is built, so the run starts at 0.9 x lr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lrs, per_epoch = _lrs({"name": "restarted:chained_first"})
    assert lrs[0] == pytest.approx(LR * 0.9) and lrs[per_epoch] == pytest.approx(LR * 0.81)
    # torch's SequentialLR stepping it as it is built warned of "`lr_scheduler.step()` before
    # `optimizer.step()`" in every trial: no step of the run's, nothing a user could fix
    assert [str(w.message) for w in caught] == []


GET_SCHEDULER = """from torch.optim.lr_scheduler import LambdaLR


def get_scheduler(name, optimizer, num_warmup_steps=None, num_training_steps=None, scheduler_specific_kwargs=None):
    # transformers.get_scheduler's signature: the schedule's name first, then the optimizer
    if name != "linear":
        raise ValueError(f"unknown schedule {name}")
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps)


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps):
    return LambdaLR(optimizer, lambda step: min(step / num_warmup_steps, (num_training_steps - step) / (num_training_steps - num_warmup_steps)))


def linear(optimizer, num_warmup_steps, num_training_steps):  # the wrapper the message suggests
    return get_scheduler("linear", optimizer, num_warmup_steps, num_training_steps)
"""


def test_a_schedule_taking_its_name_before_the_optimizer_is_refused_naming_the_function_to_use(
    tmp_path: Path,
) -> None:
    """transformers' `get_scheduler(name, optimizer, num_warmup_steps, num_training_steps)` loaded, then failed
    the run with "get_scheduler() missing 1 required positional argument: 'optimizer'": hpotool passes the
    optimizer first, into `name`, and the section's `name` is the import path, so no config could run it."""
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError

    (tmp_path / "hf_like.py").write_text(GET_SCHEDULER)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": {"name": "hf_like:get_scheduler", "num_warmup_steps": 2}}))
    with pytest.raises(HpoError) as info:
        load_run_config(path)
    assert str(info.value) == (
        f"{path}: scheduler: scheduler 'hf_like:get_scheduler' takes 'name' before the optimizer, which hpotool "
        "passes first, and the section's name is the import path; name the schedule's own function, which takes "
        "the optimizer first (transformers' get_scheduler('linear', ...) is get_linear_schedule_with_warmup, "
        "'cosine' get_cosine_schedule_with_warmup), or wrap it in one of your own: def schedule(optimizer, "
        "num_warmup_steps, num_training_steps): return get_scheduler('linear', optimizer, num_warmup_steps, "
        "num_training_steps)"
    )
    path.write_text(yaml.safe_dump({"scheduler": {"name": "torch.optim.lr_scheduler:ChainedScheduler"}}))
    with pytest.raises(HpoError) as info:  # ChainedScheduler(schedulers, optimizer=None): loaded, then failed
        load_run_config(path)
    assert str(info.value) == (
        f"{path}: scheduler: scheduler 'torch.optim.lr_scheduler:ChainedScheduler' takes 'schedulers' before the "
        "optimizer, which hpotool passes first; build it in a function of your own module that takes the "
        "optimizer first (def my_schedule(optimizer, epochs): ...) and give its import path (package.module:Name) "
        "as name"
    )
    for name in ("get_linear_schedule_with_warmup", "linear"):  # what the message says: both train per batch
        lrs, per_epoch = _lrs({"name": f"hf_like:{name}", "num_warmup_steps": 2})
        assert len(lrs) == EPOCHS * per_epoch and lrs[:3] == pytest.approx([0.0, LR / 2, LR])
        assert lrs[-1] == pytest.approx(LR / (EPOCHS * per_epoch - 2))


TIMM_V2 = """import math


class CosineLRScheduler:
    # timm's Scheduler protocol: step(epoch, metric=None) after each epoch, step_update(num_updates,
    # metric=None) after each optimizer step; t_in_epochs says which of the two moves the lr
    def __init__(self, optimizer, t_initial, lr_min=0.0, t_in_epochs=True):
        self.optimizer, self.t_initial, self.lr_min, self.t_in_epochs = optimizer, t_initial, lr_min, t_in_epochs
        self.base = [group["lr"] for group in optimizer.param_groups]

    def get_cycle_length(self):
        return self.t_initial

    def _set(self, t):
        for group, base in zip(self.optimizer.param_groups, self.base):
            t = min(t, self.t_initial)  # past its cycle timm holds lr_min
            group["lr"] = self.lr_min + 0.5 * (base - self.lr_min) * (1 + math.cos(math.pi * t / self.t_initial))

    def step(self, epoch, metric=None):
        if self.t_in_epochs:
            self._set(epoch)

    def step_update(self, num_updates, metric=None):
        if not self.t_in_epochs:
            self._set(num_updates)


def create_scheduler_v2(
    optimizer, sched="cosine", num_epochs=300, cooldown_epochs=0, min_lr=0.0, step_on_epochs=True, updates_per_epoch=0
):
    # timm.scheduler.create_scheduler_v2's arithmetic, for its cosine: the epochs to train come back with it
    t_initial, cooldown_t = num_epochs, cooldown_epochs
    if not step_on_epochs:
        assert updates_per_epoch > 0, "updates_per_epoch must be set to number of dataloader batches"
        t_initial, cooldown_t = t_initial * updates_per_epoch, cooldown_t * updates_per_epoch
    scheduler = CosineLRScheduler(optimizer, t_initial=t_initial, lr_min=min_lr, t_in_epochs=step_on_epochs)
    t_with_cooldown = scheduler.get_cycle_length() + cooldown_t
    return scheduler, t_with_cooldown if step_on_epochs else t_with_cooldown // updates_per_epoch
"""


def test_timms_create_scheduler_v2_is_given_the_runs_epochs_and_updates_and_its_pair_unpacked(
    tmp_path: Path,
) -> None:
    """timm's `create_scheduler_v2(optimizer, sched, num_epochs, ..., updates_per_epoch)` returns
    `(scheduler, num_epochs)`: by path it was refused ("returned tuple, not a learning-rate schedule"), and
    neither num_epochs nor updates_per_epoch followed the run."""
    from hpotool.config_files import load_run_config
    from hpotool.errors import HpoError, RunCheckError

    (tmp_path / "timm_v2.py").write_text(TIMM_V2)
    name = "timm_v2:create_scheduler_v2"
    lrs, per_epoch = _lrs({"name": name, "sched": "cosine"})  # per epoch, over the run's epochs
    assert [lrs[e * per_epoch] for e in range(EPOCHS)] == pytest.approx(
        [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    )
    lrs, per_epoch = _lrs({"name": name, "step_on_epochs": False})  # per update, over the run's updates
    steps = EPOCHS * per_epoch
    assert lrs == pytest.approx([LR * (1 + math.cos(math.pi * i / steps)) / 2 for i in range(steps)])
    for extra in ({}, {"step_on_epochs": False}):
        with pytest.raises(RunCheckError) as info:  # the run would stop before its cooldown
            _trainer({"name": name, "cooldown_epochs": 2, **extra})
        assert str(info.value) == (
            f"scheduler: '{name}' returned (CosineLRScheduler, {EPOCHS + 2}): a schedule and the epochs to train "
            f"it for (as timm's create_scheduler_v2 does, adding cooldown_epochs, a warmup_prefix's warm-up and "
            f"cycle_limit's cycles to num_epochs), but the run trains {EPOCHS} epochs, so the schedule's last 2 "
            "epochs would never run; drop cooldown_epochs, warmup_prefix and cycle_limit, so that it spans the run "
            "(hpotool fills in num_epochs and updates_per_epoch for each run)"
        )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": {"name": name, "num_epochs": 10}}))
    with pytest.raises(HpoError) as refused:  # it would not follow a searched epochs
        load_run_config(path)
    assert str(refused.value) == (
        f"{path}: scheduler: 'num_epochs' is set by hpotool for scheduler '{name}'; remove it from the config"
    )


RESUMED = """from torch.optim.lr_scheduler import ChainedScheduler, LinearLR, SequentialLR, StepLR


def _warm_and_decay(optimizer, warm_from, decay_from):
    for group in optimizer.param_groups:  # as a checkpoint's optimizer state has it: last_epoch needs it
        group.setdefault("initial_lr", group["lr"])
    warm = LinearLR(optimizer, start_factor=0.1, total_iters=2, last_epoch=warm_from)
    return warm, StepLR(optimizer, step_size=2, gamma=0.5, last_epoch=decay_from)


def chained(optimizer, warm_from=-1, decay_from=-1):
    return ChainedScheduler(list(_warm_and_decay(optimizer, warm_from, decay_from)))


def sequential(optimizer, warm_from=-1, decay_from=-1):
    return SequentialLR(optimizer, list(_warm_and_decay(optimizer, warm_from, decay_from)), milestones=[2])


def resumed(optimizer, decay_from=-1):
    return _warm_and_decay(optimizer, -1, decay_from)[1]
"""


def test_a_schedule_a_factory_resumed_part_way_is_refused_unless_torch_restarts_it(tmp_path: Path) -> None:
    """`last_epoch` was refused in the config only: a factory's own, on a schedule inside its ChainedScheduler
    (or the first of its SequentialLR, or the one it returns), started that schedule part-way through without
    a word (here the warm-up was skipped). A SequentialLR restarts the schedules after its first at their
    milestones, so theirs changes nothing and is let through."""
    from hpotool.errors import RunCheckError

    (tmp_path / "resumed.py").write_text(RESUMED)
    fresh, per_epoch = _lrs({"name": "resumed:chained"})
    assert [fresh[e * per_epoch] for e in range(EPOCHS)] == pytest.approx(
        [LR * 0.1, LR * 0.55, LR / 2, LR / 2]
    )
    cases = [
        ("chained", "warm_from", "LinearLR (schedule 1 of its ChainedScheduler)"),
        ("chained", "decay_from", "StepLR (schedule 2 of its ChainedScheduler)"),
        ("sequential", "warm_from", "LinearLR (schedule 1 of its SequentialLR)"),
    ]
    for factory, arg, said in cases:
        with pytest.raises(RunCheckError) as info:
            _trainer({"name": f"resumed:{factory}", arg: 1})
        assert str(info.value) == (
            f"scheduler: 'resumed:{factory}' holds a {said} that starts part-way through, at its step 2 (built "
            "with last_epoch 1, which resumes a schedule from a checkpoint, or stepped before it was returned), "
            "and hpotool starts every run's schedule at its beginning; build it without last_epoch"
        )
    with pytest.raises(RunCheckError) as info:
        _trainer({"name": "resumed:resumed", "decay_from": 3})
    assert str(info.value) == (
        "scheduler: 'resumed:resumed' returned a StepLR that starts part-way through, at its step 4 (built with "
        "last_epoch 3, which resumes a schedule from a checkpoint, or stepped before it was returned), and "
        "hpotool starts every run's schedule at its beginning; build it without last_epoch"
    )
    # the claim the refusal leaves out: a SequentialLR restarts a later schedule at its milestone (step(0))...
    lrs, _ = _lrs({"name": "resumed:sequential", "decay_from": 3})
    assert lrs == _lrs({"name": "resumed:sequential"})[0]
    # ...but not its first, which torch steps on from where it was built: the warm-up was skipped
    sequential = importlib.import_module("resumed").sequential  # the module above, called without hpotool
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=LR)
    assert sequential(optimizer, warm_from=1).get_last_lr() == pytest.approx([LR])  # not LR * 0.1


@pytest.mark.parametrize(
    ("warmup", "epochs", "message"),
    [
        # each fine beside the other's run config value (epochs 2, warm-up 0): trial 0, drawing a warm-up of 1
        # and a run of 1, failed ("warmup_epochs: 1 is not shorter than the run")
        (
            {"type": "int", "low": 0, "high": 1},
            {"type": "int", "low": 1, "high": 2},
            "reaches 1 where search_space.epochs goes down to 1",
        ),
        (
            {"type": "categorical", "choices": [0, 3]},
            {"type": "categorical", "choices": [5, 2]},
            "reaches 3 where search_space.epochs goes down to 2",
        ),
        ({"type": "int", "low": 0, "high": 1}, {"type": "int", "low": 2, "high": 4}, None),
    ],
)
def test_a_searched_warm_up_is_checked_against_the_fewest_searched_epochs(
    warmup: dict[str, Any], epochs: dict[str, Any], message: str | None
) -> None:
    from hpotool.config import OptimizeConfig
    from hpotool.errors import HpoError
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"scheduler": {"name": "cosine", "warmup_epochs": 0}, "epochs": 5})
    opt = OptimizeConfig.model_validate(
        {"study_name": "s", "search_space": {"epochs": epochs, "scheduler.warmup_epochs": warmup}}
    )
    if message is None:
        check_space(run, opt, None, "optimize.yaml")
        return
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "optimize.yaml")
    assert str(info.value).startswith(f"optimize.yaml: search_space.scheduler.warmup_epochs: {message}: ")
