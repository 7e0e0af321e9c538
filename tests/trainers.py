"""Users' own training functions (`trainer: {function: tests.trainers:NAME}`), each with one mistake or
edge case that hpotool must handle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Report = Callable[[int, dict[str, float]], None]


def diverges_at_the_end(report: Report) -> dict[str, float]:
    """Reports finite losses, then returns NaN as its final metric."""
    report(0, {"val_loss": 1.0})
    return {"val_loss": float("nan")}


def diverges_in_validation(report: Report) -> dict[str, float]:
    report(0, {"val_loss": float("nan")})
    return {"val_loss": 1.0}


def diverges_in_epoch_2(report: Report) -> dict[str, float]:
    report(0, {"val_loss": 1.0})
    report(1, {"val_loss": float("inf")})
    return {"val_loss": 1.0}


def reports_an_undefined_metric(report: Report) -> dict[str, float]:
    """A metric beside the loss that is undefined in the first epoch (an F1 with no positive prediction)."""
    report(0, {"val_loss": 1.0, "val_f1": float("nan")})
    report(1, {"val_loss": 0.5, "val_f1": 0.7})
    return {"val_loss": 0.5, "val_f1": 0.7}


def ends_with_an_undefined_metric(report: Report) -> dict[str, float]:
    """A final metric beside the loss that is undefined (an F1 with no positive prediction)."""
    report(0, {"val_loss": 0.5, "val_f1": float("nan")})
    return {"val_loss": 0.5, "val_f1": float("nan")}


def needs_data_path(report: Report, data_path: str) -> dict[str, float]:
    """Requires an argument hpotool cannot pass."""
    return {"val_loss": 1.0}


def takes_its_lr(report: Report, lr: float = 0.1) -> dict[str, float]:
    """Names a trainer: key as a parameter of its own, with a default."""
    report(0, {"val_loss": lr})
    return {"val_loss": lr}


def never_reports(config: dict[str, Any]) -> dict[str, float]:
    """Takes no `report`, so no pruner can stop it."""
    return {"val_loss": 1.0}


def reports_an_epoch_twice(report: Report) -> dict[str, float]:
    report(0, {"val_loss": 1.0})
    report(0, {"val_loss": 0.5})
    return {"val_loss": 0.5}


def swallows_the_prune(report: Report) -> dict[str, float]:
    """Wraps `report` in try/except, as a loop that logs and goes on would, so the pruner's stop is caught."""
    for epoch in range(5):
        try:
            report(epoch, {"val_loss": 10.0 + epoch})
        except Exception:  # the mistake under test
            continue
    return {"val_loss": 15.0}


def fails_on_long_runs(run_config: Any, report: Report) -> dict[str, float]:
    """Trains like a study's trials for up to 3 epochs; longer, it raises with a message of several lines,
    as a library deep in a user's loop might."""
    for epoch in range(run_config.epochs):
        if epoch >= 3:
            raise RuntimeError("CUDA-like failure in the user's loop\n  detail line 1\n  detail line 2")
        report(epoch, {"val_loss": 1.0 / (epoch + 1)})
    return {"val_loss": 1.0 / run_config.epochs}


def fails_with_a_long_message(report: Report) -> dict[str, float]:
    """Raises with a message of many lines, as a library's error deep in a loop might."""
    raise RuntimeError("shapes do not match\n" + "\n".join(f"  tensor {i}: (32, {i})" for i in range(20)))


def reports_other_names(report: Report) -> dict[str, float]:
    """Takes `report` but reports `loss`, not the study's metric (val_loss): the pruner sees nothing."""
    for epoch in range(3):
        report(epoch, {"loss": 1.0 / (epoch + 1)})
    return {"val_loss": 0.3}


def reports_a_bare_number(report: Any) -> dict[str, float]:
    """Passes the loss itself to report, not a dict of metrics."""
    report(0, 0.25)
    return {"val_loss": 0.25}


def forgets_to_return(report: Report) -> None:
    """Reports, then returns nothing: the final metrics are missing."""
    report(0, {"val_loss": 0.5})


def trains_and_forgets_to_return(config: dict[str, Any]) -> None:
    """Trains without calling report, then returns nothing: no final metrics, and no report to show."""
    _ = config["epochs"]


def reports_its_metric_and_forgets_to_return(report: Report) -> None:
    """Reports a metric of its own each epoch, then returns nothing: the final metrics are missing."""
    report(0, {"val_r2": 0.25, "val_loss": 1.5})
    report(1, {"val_r2": 0.3125, "val_loss": 1.25})


def reads_the_config_dict_by_attribute(config: dict[str, Any]) -> dict[str, float]:
    """Reads the plain dict `config` as if it were the RunConfig."""
    return {"val_loss": config.optimizer.lr}  # type: ignore[attr-defined]


def reads_a_section_of_the_config_dict_by_attribute(config: dict[str, Any]) -> dict[str, float]:
    """Reads a section of the plain dict `config` by attribute."""
    optimizer = config["optimizer"]
    return {"val_loss": optimizer.lr}  # type: ignore[attr-defined]


def reads_the_run_config_by_key(run_config: Any) -> dict[str, float]:
    """Reads the RunConfig as if it were the plain dict `config`."""
    return {"val_loss": run_config["optimizer"]["lr"]}


def reports_an_array(report: Report) -> dict[str, float]:
    """Reports a metric as a one-element array of one dimension, as `np.mean(x, axis=0)` gives."""
    import numpy as np

    report(0, {"val_loss": 0.5, "acc": np.array([0.5])})  # type: ignore[dict-item]
    return {"val_loss": 0.5}


def returns_an_array(report: Report) -> dict[str, Any]:
    """Returns a metric as a one-element array of one dimension, as `np.mean(x, axis=0)` gives."""
    import numpy as np

    report(0, {"val_loss": 0.5})
    return {"val_loss": 0.5, "acc": np.array([0.5])}


def returns_text(report: Report) -> dict[str, Any]:
    report(0, {"val_loss": 0.5})
    return {"val_loss": 0.5, "note": "converged"}


def returns_a_bool(report: Report) -> dict[str, Any]:
    """Returns whether it converged beside its loss: True, which float() takes as 1.0."""
    report(0, {"val_loss": 0.5})
    return {"val_loss": 0.5, "converged": True}


def reports_a_bool(report: Report) -> dict[str, float]:
    """Reports a comparison numpy made (a numpy bool), which float() takes as 1.0."""
    import numpy as np

    report(0, {"val_loss": 0.5, "improved": np.float64(0.5) < 1})
    return {"val_loss": 0.5}


def reports_a_number_as_text(report: Report) -> dict[str, float]:
    """Reports the loss as the text "0.5" (read from a log line, say), which float() would take."""
    report(0, {"val_loss": "0.5"})  # type: ignore[dict-item]
    return {"val_loss": 0.5}


def reports_without_the_epoch(report: Any) -> dict[str, float]:
    """Passes only the metrics to report, leaving out the epoch."""
    report({"val_loss": 0.5})
    return {"val_loss": 0.5}


def reports_metrics_as_keywords(report: Any) -> dict[str, float]:
    """Passes each metric as a keyword argument of its own."""
    report(0, val_loss=0.5)
    return {"val_loss": 0.5}


def reports_no_epoch(report: Any) -> dict[str, float]:
    """Passes None as the epoch (a step counter never set), which int() refuses with its own TypeError."""
    report(None, {"val_loss": 0.5})
    return {"val_loss": 0.5}


def reports_a_nan_epoch(report: Any) -> dict[str, float]:
    """Passes NaN as the epoch (a step computed from a diverged value), which int() refuses with a ValueError."""
    report(float("nan"), {"val_loss": 0.5})
    return {"val_loss": 0.5}


def reports_the_samples_seen(report: Report) -> dict[str, float]:
    """Reports by the samples seen, 3 billion, past what Optuna's storages keep as a step (a 32-bit integer on
    PostgreSQL and MySQL, a 64-bit one on SQLite)."""
    report(3_000_000_000, {"val_loss": 0.5})
    return {"val_loss": 0.5}


def returns_a_float(report: Report) -> float:
    """Returns the final loss itself, not a dict of metrics."""
    report(0, {"val_loss": 0.5})
    return 0.5


def adds_its_options(config: dict[str, Any], report: Report) -> dict[str, float]:
    """The loss is the sum of the mapping `trainer.opts` ({a: 1.0, b: 2.0}), chosen whole by a search."""
    loss = float(sum(config["trainer"]["opts"].values()))
    report(0, {"val_loss": loss})
    return {"val_loss": loss}


def returns_nan_without_report(config: dict[str, Any]) -> dict[str, float]:
    """Trains in its own loop, reporting nothing, and diverges: its final val_loss is NaN."""
    return {"val_loss": float("nan")}


def parses_the_command_line(report: Report) -> dict[str, float]:
    """An existing script's loop that reads its options with argparse: parse_args() exits (code 2) on
    hpotool's own command line."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    return {"val_loss": float(len(parser.parse_args().data_dir))}


def exits_when_done(report: Report) -> dict[str, float]:
    """A script's loop that ends with sys.exit(0) instead of returning."""
    import sys

    report(0, {"val_loss": 0.5})
    sys.exit(0)


START_METHODS = ("fork", "spawn", "forkserver")


def reports_its_start_method(report: Report) -> dict[str, float]:
    """The start method a DataLoader with workers (or any multiprocessing) in this process would use."""
    import multiprocessing

    method = float(START_METHODS.index(multiprocessing.get_start_method()))
    report(0, {"val_loss": 1.0, "start_method": method})
    return {"val_loss": 1.0, "start_method": method}


def names_metrics_freely(report: Report) -> dict[str, float]:
    """Metric names with characters MLflow refuses in a name."""
    report(0, {"val_loss": 1.0, "top@5": 0.5})
    report(1, {"val_loss": 0.5, "top@5": 0.7})
    return {"val_loss": 0.5, "top@5": 0.7, "f1(macro)": 0.6}


def reports_a_setting(report: Report, variable: str = "HPOTOOL_TEST_SETTING") -> dict[str, float]:
    """The environment variable `variable` (the trainer section's), a number, as the metric `setting`, -1
    where it is not set: what a worker's environment holds."""
    import os

    setting = float(os.environ.get(variable, "-1"))
    report(0, {"val_loss": 1.0, "setting": setting})
    return {"val_loss": 1.0, "setting": setting}


def reports_its_imports(report: Report, x: float = 0.5) -> dict[str, float]:
    """Whether this process has imported torch, and hpotool's Trainer parts (`hpotool.parts`, which only a
    worker server that preloads torch imports for a training function), as the metrics `torch` and `parts`."""
    import sys

    metrics = {
        "val_loss": (x - 0.3) ** 2,
        "torch": float("torch" in sys.modules),
        "parts": float("hpotool.parts" in sys.modules),
    }
    report(0, metrics)
    return metrics


def fails_first_alone(report: Report, marker: str, storage: str, study: str) -> dict[str, float]:
    """Fails every trial: the first to create the file `marker` at once ('the first failure'), every other
    one once that trial has ended FAIL in study `study` at `storage` ('a later failure'), so the first
    failure is the first trial to end. (It was a second later: a first trial that took longer to write its
    FAIL, on a loaded machine or behind the SQLite lock, ended after a later one.)"""
    import os
    import time

    import optuna
    from optuna.trial import TrialState

    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        deadline = time.monotonic() + 120  # a bound against a hang, not a measure
        while time.monotonic() < deadline:
            ended = optuna.load_study(study_name=study, storage=storage).get_trials(
                deepcopy=False, states=(TrialState.FAIL,)
            )
            if any("the first failure" in str(t.user_attrs.get("fail_reason")) for t in ended):
                break
            time.sleep(0.05)
        raise RuntimeError("a later failure") from None
    raise RuntimeError("the first failure")


def takes_any_options(report: Report, **options: Any) -> dict[str, float]:
    """Takes every `trainer:` key (a search over generated spaces, `trainer.p0`, `trainer.p1`, ...)."""
    loss = float(len(repr(sorted(options.items()))) % 7)
    report(0, {"val_loss": loss})
    return {"val_loss": loss}


def changes_the_working_folder(report: Report) -> dict[str, float]:
    """Moves into a folder of its own to write its outputs by relative paths, as a script's main() might."""
    import os

    os.chdir("tests")
    report(0, {"val_loss": 0.5})
    return {"val_loss": 0.5}


def returns_tensors_still_in_the_graph(report: Report) -> dict[str, Any]:
    """Reports and returns its losses as tensors of the autograd graph, not detached first (a loss kept
    from the last step)."""
    import torch

    weight = torch.ones((), requires_grad=True)
    report(0, {"val_loss": weight * 0.5})
    return {"val_loss": weight * 0.25}


def damages_its_journal(report: Report, marker: str, damage: str, target: str) -> dict[str, float]:
    """The first trial to create the file `marker` damages the study's journal as another program would, in
    its first epoch: `flush` empties the Redis server at URL `target` (its data lost), `count` writes over
    the Redis key named after the URL in `target` (a journal's count), `empty` empties the journal file
    `target`; it reports on, for a minute at most (the run is to stop at its next write). Other trials end
    at once."""
    import os
    import time

    report(0, {"val_loss": 1.0})
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return {"val_loss": 1.0}  # the journal is damaged already: this trial's writes find it so
    if damage == "empty":
        open(target, "w").close()
    else:
        import redis

        url, _, key = target.partition(" ")
        with redis.Redis.from_url(url) as client:
            client.flushall() if damage == "flush" else client.set(key, "hi")
    for epoch in range(1, 600):
        time.sleep(0.1)
        report(epoch, {"val_loss": 1.0 / epoch})
    return {"val_loss": 0.0}


def ends_on_the_tick(report: Report, x: float = 0.5, tick: float = 0.5) -> dict[str, float]:
    """Ends as the clock reaches the next multiple of `tick` seconds: trials of several workers that started
    within one tick end at the same moment, and their workers ask their next trials together (a race for the
    last slot of `n_trials` happens in most runs, not in one of six)."""
    import time

    time.sleep(tick - time.time() % tick)
    report(0, {"val_loss": (x - 0.3) ** 2})
    return {"val_loss": (x - 0.3) ** 2}
