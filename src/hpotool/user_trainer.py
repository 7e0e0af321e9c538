"""Your own training code: `trainer: {function: mypkg.train:fit}` in the RunConfig.

hpotool calls `fit` with the keyword arguments its signature asks for: `config` (the resolved RunConfig as a
plain dict), `run_config` (the pydantic model), `report` (call `report(epoch, {"val_loss": ...})` after
each epoch, counting from 0; it records the history and lets the pruner stop the trial by raising), and
each key of the `trainer:` section that it names as a parameter (`def fit(config, report, lr=0.1)`). `fit`
returns its final metrics as a dict. Pruning, storage, exports and reports work as for the built-in Trainer.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from hpotool.config import RunConfig
from hpotool.config_fields import INT32_MAX
from hpotool.epoch import EpochResult, NonFiniteLossError
from hpotool.formatting import returned_kind
from hpotool.import_paths import import_object
from hpotool.signatures import accepted_kwargs, pick_kwargs
from hpotool.trainer_contract import TrainerOutputError, mark_broken_contract, metrics_example
from hpotool.user_code import MOVES_RELATIVE_PATHS, chdir_undone

OFFERED = ("config", "run_config", "report")


def run_user_trainer(
    cfg: RunConfig,
    on_epoch_end: Callable[[EpochResult], None],
    rows: list[dict[str, float]],
    objectives: Sequence[str] = (),
) -> dict[str, float]:
    """Call the user's function; returns its final metrics (with `epoch_time`, the mean over reports).
    `objectives`: the metrics the study optimizes, which the line of a broken contract shows in its examples
    (`metrics_example`; none outside a study).

    An exception `report` raised (the pruner's stop, a NaN loss, an epoch reported twice) is raised again
    when the function returns, should it have caught and ignored it: the trial still ends as it said.
    """
    assert cfg.trainer is not None
    fn = import_object(cfg.trainer.function)
    stopped: list[BaseException] = []  # what report raised: it ends the run even if the function caught it
    report = _reporter(on_epoch_end, rows, stopped, objectives)
    offered: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "run_config": cfg, "report": report}
    metrics = _call_refusing_exit(fn, cfg, offered, lambda: bool(rows or stopped))
    if stopped:  # the function caught what report raised and carried on
        raise stopped[0]
    final = _final_metrics(cfg.trainer.function, metrics, rows, objectives)
    if rows and "epoch_time" not in final:
        final["epoch_time"] = sum(r["epoch_time"] for r in rows) / len(rows)
    return final


def _reporter(
    on_epoch_end: Callable[[EpochResult], None],
    rows: list[dict[str, float]],
    stopped: list[BaseException],
    objectives: Sequence[str],
) -> Callable[..., None]:
    """The `report` passed to the function: each call checked, its epoch timed, appended to `rows` and handed
    to `on_epoch_end`. What it raises is kept in `stopped` and raised again by every later call."""
    last = time.perf_counter()

    def report(*args: Any, **kwargs: Any) -> None:
        nonlocal last
        if stopped:
            raise stopped[0]
        try:
            epoch, metrics = _report_arguments(args, kwargs, objectives)
            epoch = _checked_report(epoch, metrics, rows, objectives)
            now = time.perf_counter()
            result = EpochResult(epoch, _reported_values(epoch, metrics), now - last)
            last = now
            rows.append(result.as_row())
            on_epoch_end(result)
        except BaseException as exc:
            stopped.append(exc)
            raise

    return report


def _checked_report(epoch: Any, metrics: Any, rows: list[dict[str, float]], objectives: Sequence[str]) -> int:
    """The epoch of a call to `report` as an int: a whole number after the last one reported in `rows`
    (`objectives`: the study's metrics, for the example of metrics not in a dict).

    Raises:
        ValueError, TypeError: marked as breaking the contract, for another epoch or metrics not in a dict.
    """
    if not _whole_number(epoch):
        raise mark_broken_contract(
            ValueError(f"report(epoch={epoch!r}, ...): the epoch must be a whole number counting from 0")
        )
    epoch = int(epoch)
    # The largest step Optuna's storages keep: a 32-bit INTEGER column on PostgreSQL and MySQL (SQLite's holds
    # 64 bits): they refused 3_000_000_000 (samples seen) with a traceback, the trial left RUNNING
    if epoch > INT32_MAX:
        raise mark_broken_contract(
            ValueError(
                f"report(epoch={epoch}, ...): the epoch must be below {INT32_MAX + 1}, which Optuna's storages "
                f"keep as a 32-bit integer; report the epoch (counting from 0), not a count of steps or samples"
            )
        )
    if rows and epoch <= rows[-1]["epoch"]:
        seen = int(rows[-1]["epoch"])
        said = "twice" if epoch == seen else f"after epoch {seen}"
        raise mark_broken_contract(
            ValueError(
                f"report() was given epoch {epoch} {said}; report each epoch once, in order, counting from 0"
            )
        )
    if not isinstance(metrics, dict):
        raise mark_broken_contract(
            TypeError(
                f"report({epoch}, {metrics!r}): give the metrics as a dict, such as "
                f"report({epoch}, {metrics_example(objectives, repr(metrics))})"
            )
        )
    return epoch


def _whole_number(epoch: Any) -> bool:
    """Whether `epoch` is a whole number, 0 or more (an int, a numpy integer, a 0-d tensor; not a bool). None,
    NaN or infinity failed every trial with int()'s own TypeError, ValueError or OverflowError, which did not
    say that report() was called wrongly, nor stop the study as the other broken contracts do."""
    if isinstance(epoch, bool):
        return False
    try:
        return bool(int(epoch) == epoch and epoch >= 0)
    except (TypeError, ValueError, OverflowError):
        return False


def _reported_values(epoch: int, metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics of a call to `report`, each a float.

    Raises:
        TypeError: marked as breaking the contract, naming a value that is not a number.
        NonFiniteLossError: for a loss that is NaN or infinite.
    """
    try:
        values = {
            k: _number(v, f"report({epoch}, ...): {k!r} is {v!r}, not a number") for k, v in metrics.items()
        }
    except TypeError as exc:
        raise mark_broken_contract(exc) from None
    # A loss that is NaN: the run diverged. Another metric may be undefined in an epoch (an F1 with no
    # positive prediction) and is recorded; one the study optimizes prunes the trial (the objective).
    for k, v in values.items():
        if not math.isfinite(v) and "loss" in k:
            raise NonFiniteLossError(epoch, v, k)
    return values


def _call_refusing_exit(
    fn: Callable[..., Any], cfg: RunConfig, offered: dict[str, Any], reported: Callable[[], bool]
) -> Any:
    """`_call` the function with what it takes of `offered` and the `trainer:` keys it names; a sys.exit()
    in it is raised as a broken contract, with the function's traceback, rather than ending hpotool."""
    assert cfg.trainer is not None
    try:
        with chdir_undone(os.getcwd()) as moved:
            result = _call(fn, pick_kwargs(fn, offered), _named_trainer_keys(fn, cfg), reported)
    except (AttributeError, TypeError) as exc:
        fix = _config_read_wrongly(exc, offered["config"], cfg)
        if fix is None:
            raise
        raise mark_broken_contract(type(exc)(f"{exc}; {fix}")).with_traceback(exc.__traceback__) from None
    except SystemExit as exc:  # it would end hpotool, leaving the trial RUNNING and the study without a word
        raise mark_broken_contract(
            RuntimeError(
                f"{cfg.trainer.function} called sys.exit({exc.code!r}) instead of returning its metrics "
                f"(argparse's parse_args() does so on hpotool's command line); read the settings from config "
                f"and return a dict of numbers"
            )
        ).with_traceback(exc.__traceback__) from None
    if moved:  # hpotool's relative paths (the study, exports) moved with it
        folder, where = moved
        said = os.path.relpath(folder) if folder else folder
        raise mark_broken_contract(
            RuntimeError(
                f"{cfg.trainer.function} called os.chdir({said!r}), {MOVES_RELATIVE_PATHS}; build the paths it reads "
                f"and writes from __file__ or an absolute folder instead"
                + (f" (at {where})" if where else "")
            )
        )
    return result


def _config_read_wrongly(exc: BaseException, config: dict[str, Any], cfg: RunConfig) -> str | None:
    """How to read the run config where the function read `config`, a plain dict, by attribute
    (`config.optimizer.lr`), or `run_config`, the RunConfig, by key (`run_config["optimizer"]`); None for
    another error. Each trial failed alike with Python's "'dict' object has no attribute 'optimizer'" or
    "'RunConfig' object is not subscriptable", until 5 in a row stopped the study, exit code 1."""
    read = getattr(exc, "obj", None)  # what the attribute was read from
    if isinstance(exc, AttributeError) and isinstance(read, dict) and exc.name:
        path = _dict_path(config, read)
        if path is None:
            return None
        keys = "".join(f"[{k!r}]" for k in (*path, exc.name))
        return (
            f"config is the run config as a plain dict: read config{keys}, or take run_config, the "
            f"RunConfig, and read run_config.{'.'.join((*path, exc.name))}"
        )
    sections = {type(cfg).__name__} | {
        type(value).__name__
        for name in type(cfg).model_fields
        if isinstance(value := getattr(cfg, name), BaseModel)
    }
    found = re.fullmatch(r"'(\w+)' object is not subscriptable", str(exc))
    if isinstance(exc, TypeError) and found is not None and found.group(1) in sections:
        return (
            "run_config is the RunConfig, read by attribute (run_config.optimizer.lr, run_config.trainer.width); "
            "config is the same run config as a plain dict, read by key (config['optimizer']['lr'])"
        )
    return None


def _dict_path(config: dict[str, Any], obj: dict[Any, Any]) -> tuple[str, ...] | None:
    """The keys that lead from `config` to `obj`, the dict an attribute was read from (itself, or a copy of
    it); None where `obj` is no part of the config."""
    if obj is config or (obj and obj == config):
        return ()
    for key, value in config.items():
        if isinstance(value, dict) and (path := _dict_path(value, obj)) is not None:
            return (str(key), *path)
    return None


def _final_metrics(
    function: str, metrics: Any, rows: list[dict[str, float]], objectives: Sequence[str]
) -> dict[str, float]:
    """What `function` returned, checked to be a dict of numbers, each value as a float.

    Raises:
        TrainerOutputError: for anything else, naming what it returned, and what it reported last (`rows`):
            a function that reported its `val_r2` each epoch and returned nothing was shown
            `{'val_loss': 0.5}` as the dict to return, a metric it had never measured; one that reported
            nothing, the study's `objectives` (`metrics_example`).
    """
    if not isinstance(metrics, dict):
        raise TrainerOutputError(
            f"{function} returned {returned_kind(metrics)}{_last_report(rows)}; it must return a dict of final "
            f"metrics, such as "
            + (
                f"its last report's, {_reported_dict(rows[-1])} (the values given to report() do not count)"
                if rows
                else metrics_example(objectives)
            )
        )
    final = {}
    for k, v in metrics.items():
        try:
            final[k] = _number(v, "")
        except TypeError:
            raise TrainerOutputError(
                f"{function} returned {k!r}: {v!r}, which is not a number; return numbers only"
            ) from None
    return final


def _last_report(rows: list[dict[str, float]]) -> str:
    """How many epochs the function reported before it returned (`_final_metrics`); empty for none."""
    return f" after reporting {len(rows)} epoch{'s' if len(rows) != 1 else ''}" if rows else ""


def _reported_dict(row: dict[str, float]) -> str:
    """The metrics of a history row as the dict the function gave report(), each to 4 significant digits."""
    shown = {k: v for k, v in row.items() if k not in ("epoch", "epoch_time", "lr")}
    return "{" + ", ".join(f"{k!r}: {v:.4g}" for k, v in shown.items()) + "}"


def _call(
    fn: Callable[..., Any], offered: dict[str, Any], named: dict[str, Any], reported: Callable[[], bool]
) -> Any:
    """`fn(**offered, **named)`. A decorator without functools.wraps (a timer, a logger) shows the signature
    `(*args, **kwargs)`, so `fn` is offered config, run_config and report all: `def fit(config, report)`
    under it failed every trial with "fit() got an unexpected keyword argument 'run_config'". The argument
    it refuses (or a `trainer:` key in `named` it does not take) is left out and the call made again, where
    the refusal came from the wrapper's own call into the function (no code of the function ran) and nothing
    was reported yet."""
    while True:
        try:
            return fn(**offered, **named)
        except TypeError as exc:
            found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            in_wrapper = tb is not None and tb.tb_frame.f_code is getattr(fn, "__code__", None)
            if found is None or found.group(1) not in {*offered, *named} or not in_wrapper or reported():
                raise
            offered = {k: v for k, v in offered.items() if k != found.group(1)}
            named = {k: v for k, v in named.items() if k != found.group(1)}


_REPORT = inspect.Signature(
    [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ("epoch", "metrics")]
)


def _named_trainer_keys(fn: Callable[..., Any], cfg: RunConfig) -> dict[str, Any]:
    """The `trainer:` keys that `fn` names as parameters of its own (`def fit(config, report, lr=0.1)` with
    `trainer: {lr: 0.01}`), passed by name. Before, only config, run_config and report were passed, so such
    a parameter kept its default: a searched trainer.lr trained every trial alike, without a word.
    A `**kwargs` of `fn` gets every key (`def fit(config, report, **hparams)` read `hparams["width"]` and
    failed every trial with KeyError: 'width'); so does a decorator's `(*args, **kwargs)`, which hands them
    on to the function it wraps, and a key that function does not take is left out (`_call`)."""
    assert cfg.trainer is not None
    names, var_kw = accepted_kwargs(fn)
    return {k: v for k, v in cfg.trainer.kwargs.items() if (var_kw or k in names) and k not in OFFERED}


def _report_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], objectives: Sequence[str]
) -> tuple[Any, Any]:
    """The epoch and metrics of a call to `report`.

    Raises:
        TypeError: marked as breaking the contract, for a call that does not give exactly those two (the
            epoch left out, each metric as a keyword of its own), showing the call and the right one (of
            the study's `objectives`, `metrics_example`).
    """
    try:
        bound = _REPORT.bind(*args, **kwargs)
    except TypeError as exc:
        call = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise mark_broken_contract(
            TypeError(
                f"report({call}): {exc}; call report(epoch, {metrics_example(objectives)}), the epoch counting "
                f"from 0"
            )
        ) from None
    return bound.arguments["epoch"], bound.arguments["metrics"]


def _number(value: Any, message: str) -> float:
    """`value` as a float (a Python or numpy number, a 0-d numpy array, a 0-d or one-element tensor).

    Raises:
        TypeError: `message`, for text (even "0.5": a metric is a number), a bool (a Python, numpy or torch
            one: float() took True as 1.0, a metric of the study), None, a tensor of several values or a numpy
            array of one dimension or more. float() refuses such an array from numpy 2.4 on; before (numpy
            2.2, the newest on Python 3.10) it took a one-element one, with a deprecation warning printed
            amid the run: the same training function was refused on one install and recorded on another.
    """
    if isinstance(value, str | bytes | bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        raise TypeError(message)
    numpy = sys.modules.get("numpy")  # an array is numpy's: numpy is imported if one is here
    if numpy is not None and isinstance(value, numpy.ndarray) and value.ndim > 0:
        raise TypeError(message)
    detach = getattr(value, "detach", None)  # a loss still in the autograd graph: its value, without torch's
    if callable(detach) and getattr(value, "requires_grad", False):  # warning about converting it
        value = detach()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(message) from None
