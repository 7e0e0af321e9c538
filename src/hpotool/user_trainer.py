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
import re
import time
import types
from collections.abc import Callable
from typing import Any

from hpotool.config import RunConfig
from hpotool.epoch import EpochResult, NonFiniteLossError
from hpotool.errors import HpoError
from hpotool.import_paths import import_object
from hpotool.signatures import accepted_kwargs, pick_kwargs

OFFERED = ("config", "run_config", "report")


class TrainerOutputError(TypeError):
    """The function returned something other than a dict of numbers: the user's mistake, found by hpotool
    after the function returned (so no frame of the user's code names where)."""


_CONTRACT = "hpotool_trainer_contract"  # set on what report() raises for a call that breaks its contract


def _broken(exc: Exception) -> Exception:
    setattr(exc, _CONTRACT, True)
    return exc


def broke_contract(exc: BaseException) -> bool:
    """Whether `exc` (or an exception that raised it) says the training function broke hpotool's contract:
    it returned no dict of numbers, or called report() wrongly. Such a mistake is the same in every trial."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TrainerOutputError) or getattr(current, _CONTRACT, False):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def missing_metric(
    function: str, metrics: dict[str, float], missing: list[str], reported: bool
) -> TrainerOutputError:
    """The mistake of a function whose returned dict lacks the study's metric(s) `missing` (`metrics`: what
    the run produced, with the epoch_time hpotool adds where the function `reported` epochs)."""
    returned = [k for k in metrics if not (reported and k == "epoch_time")]
    which, it = ("the study's metric", "it") if len(missing) == 1 else ("metrics the study optimizes", "them")
    return TrainerOutputError(
        f"{function} returned {{{', '.join(returned)}}}, without {', '.join(missing)}, {which}; return {it} "
        f"from fit, such as {{{missing[0]!r}: 0.5}} (the values given to report() do not count), or optimize "
        f"a metric it returns"
    )


def unmeasured_constraint(
    function: str, metrics: dict[str, float], constraint: str, metric: str, reported: bool
) -> TrainerOutputError:
    """The mistake of a function whose returned dict lacks the value `metric` that `constraint` reads."""
    returned = [k for k in metrics if not (reported and k == "epoch_time")]
    return TrainerOutputError(
        f"{function} returned {{{', '.join(returned)}}}, without {metric}, which constraints: {constraint} "
        f"reads; return it from fit, such as {{{metric!r}: 0.5}}, or drop the constraint"
    )


class ContractStop(HpoError):
    """A trial failed on `broke_contract`: the study stops at once (see `contract_stop`)."""


def contract_stop(function: str, trial_number: int, reason: str, source: str | None = None) -> ContractStop:
    """What optimize says when a trial failed on `broke_contract`: the study stops at once. `source`: the run
    config file that names the function (None for a study joined by name, which has none)."""
    named = "trainer.function" if function in reason else f"trainer.function {function}"  # once, not twice
    where = f"{source}: " if source else ""
    return ContractStop(
        f"{where}{named}: trial {trial_number} failed: {reason}; this mistake fails every trial, "
        f"so the study stopped: fix the function (report(epoch, {{'val_loss': 0.5}}) after each epoch, "
        f"return a dict of numbers) and run the same command"
    )


def check_user_trainer(cfg: RunConfig, *, pruning: bool, opt_source: str = "the optimize config") -> bool:
    """Before trial 0: the function imports, and hpotool can call it (every argument it requires is one
    hpotool passes); with a pruner the user chose (`pruning`), it must take `report`, or the pruner could
    never stop it. Returns whether it takes `report` (True where its signature cannot be read).

    Raises:
        HpoError: naming `trainer.function` and what to change.
    """
    assert cfg.trainer is not None
    path = cfg.trainer.function
    try:
        fn = import_object(path)
    except HpoError as exc:
        raise HpoError(f"trainer.function: {exc}") from None
    if not callable(fn):
        raise HpoError(f"trainer.function: {path!r} is a {type(fn).__name__}, not a function")
    _refuse_a_class(path, fn)
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # no signature to read: the call itself will tell
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and (p.name not in OFFERED or p.kind is inspect.Parameter.POSITIONAL_ONLY)
        and (p.name not in cfg.trainer.kwargs or p.kind is inspect.Parameter.POSITIONAL_ONLY)
    ]
    if required:
        raise HpoError(
            f"trainer.function: {path} requires {', '.join(repr(r) for r in required)}, which hpotool cannot "
            f"pass: it passes {', '.join(OFFERED)} and the trainer: keys the function names (by name); "
            f"{_required_fix(required[0])}"
        )
    names, var_kw = accepted_kwargs(fn)
    if pruning and "report" not in names and not var_kw:
        raise HpoError(
            f"trainer.function: {path} takes no 'report' argument, so the pruner can never stop a trial; add a "
            f"report parameter and call report(epoch, {{metric: value}}) after each epoch, or set pruner: "
            f"{{name: nop}} in {opt_source}"
        )
    return "report" in names or var_kw


def _refuse_a_class(path: str, fn: Any) -> None:
    """Raise `HpoError` for a class, whose call makes an instance rather than the metrics (it failed trial 0),
    or a method named through its class (`x:Runner.fit`), which needs an instance: told to set 'self' in the
    config, which no config can."""
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if isinstance(fn, type):
        raise HpoError(
            f"trainer.function: {path} is a class, and calling it makes a {fn.__name__}, not the dict of "
            f"metrics; name the function that trains, or the method of an instance ({module}:obj.fit for obj = "
            f"{fn.__name__}(...) in the module)"
        )
    owner_path, _, method = attr.rpartition(".")
    if not owner_path:
        return
    try:
        owner = import_object(f"{module}:{owner_path}")
    except HpoError:
        return
    if isinstance(owner, type) and isinstance(
        inspect.getattr_static(owner, method, None), types.FunctionType
    ):
        instance = owner.__name__[:1].lower() + owner.__name__[1:]
        instance = instance if instance != owner.__name__ else f"{instance}_"
        raise HpoError(
            f"trainer.function: {path} is a method of the class {owner.__name__}, called on an instance; make "
            f"one at the module's top level ({instance} = {owner.__name__}(...)) and name its method "
            f"({module}:{instance}.{method}), or name a function"
        )


# What training scripts call the settings and the per-epoch callback that hpotool passes as config and report.
_CONFIG_NAMES = frozenset(
    {"cfg", "conf", "hparams", "hyperparams", "hp", "params", "args", "opt", "opts", "options", "settings"}
)
_REPORT_NAMES = frozenset({"callback", "reporter", "report_fn", "on_epoch", "on_epoch_end", "log_metrics"})


def _required_fix(name: str) -> str:
    """How to fix a parameter `name` of the training function that hpotool cannot pass: rename what is the
    config or the report callback under another name, or replace an Optuna objective's trial; set any other
    under trainer:."""
    if name == "trial":
        return (
            "hpotool passes no Optuna trial: it samples search_space itself and hands the picked values in config "
            "(config['optimizer']['lr']) and as the trainer: keys the function names; take config and report "
            "instead, call report(epoch, {'val_loss': 0.5}) where it called trial.report, and drop its "
            "trial.suggest_* calls"
        )
    if name in _CONFIG_NAMES:
        return f"rename {name!r} config (the run config as a dict) or run_config (the RunConfig)"
    if name in _REPORT_NAMES:
        return f"rename {name!r} report (call report(epoch, {{'val_loss': 0.5}}) after each epoch)"
    return f"set {name!r} under trainer: in the run config, or give it a default"


def schedule_note(cfg: RunConfig) -> str | None:
    """With a user's training function, a scheduler section hpotool does not build: a note saying so (None
    for the default `none`), since a monitor or a warm-up there was ignored without a word. Nor does hpotool
    check a warm-up against the epochs there: the function may read the section as it likes."""
    assert cfg.trainer is not None
    section = {k: v for k, v in cfg.scheduler.model_dump(mode="json").items() if v is not None}
    if section == {"name": "none"}:
        return None
    shown = ", ".join(f"{k}: {v}" for k, v in section.items())
    return (
        f"trainer.function {cfg.trainer.function} trains in its own loop, so hpotool builds no lr schedule from "
        f"scheduler: {{{shown}}}: it steps nothing and watches no monitor; fit uses the section only if it reads "
        f"run_config.scheduler (otherwise drop it)"
    )


def run_user_trainer(
    cfg: RunConfig, on_epoch_end: Callable[[EpochResult], None], rows: list[dict[str, float]]
) -> dict[str, float]:
    """Call the user's function; returns its final metrics (with `epoch_time`, the mean over reports).

    An exception `report` raised (the pruner's stop, a NaN loss, an epoch reported twice) is raised again
    when the function returns, should it have caught and ignored it: the trial still ends as it said.
    """
    assert cfg.trainer is not None
    fn = import_object(cfg.trainer.function)
    last = time.perf_counter()
    stopped: list[BaseException] = []  # what report raised: it ends the run even if the function caught it

    def report(*args: Any, **kwargs: Any) -> None:
        nonlocal last
        if stopped:
            raise stopped[0]
        try:
            epoch, metrics = _report_arguments(args, kwargs)
            if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
                raise _broken(
                    ValueError(
                        f"report(epoch={epoch!r}, ...): the epoch must be a whole number counting from 0"
                    )
                )
            epoch = int(epoch)
            if rows and epoch <= rows[-1]["epoch"]:
                seen = int(rows[-1]["epoch"])
                said = "twice" if epoch == seen else f"after epoch {seen}"
                raise _broken(
                    ValueError(
                        f"report() was given epoch {epoch} {said}; report each epoch once, in order, counting "
                        f"from 0"
                    )
                )
            if not isinstance(metrics, dict):
                raise _broken(
                    TypeError(
                        f"report({epoch}, {metrics!r}): give the metrics as a dict, such as "
                        f"report({epoch}, {{'val_loss': {metrics!r}}})"
                    )
                )
            now = time.perf_counter()
            try:
                values = {
                    k: _number(v, f"report({epoch}, ...): {k!r} is {v!r}, not a number")
                    for k, v in metrics.items()
                }
            except TypeError as exc:
                raise _broken(exc) from None
            # A loss that is NaN: the run diverged. Another metric may be undefined in an epoch (an F1 with no
            # positive prediction) and is recorded; one the study optimizes prunes the trial (the objective).
            for k, v in values.items():
                if not math.isfinite(v) and "loss" in k:
                    raise NonFiniteLossError(epoch, v, k)
            result = EpochResult(epoch, values, now - last)
            last = now
            rows.append(result.as_row())
            on_epoch_end(result)
        except BaseException as exc:
            stopped.append(exc)
            raise

    offered: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "run_config": cfg, "report": report}
    try:
        metrics = _call(
            fn, pick_kwargs(fn, offered), _named_trainer_keys(fn, cfg), lambda: bool(rows or stopped)
        )
    except SystemExit as exc:  # it would end hpotool, leaving the trial RUNNING and the study without a word
        raise _broken(
            RuntimeError(
                f"{cfg.trainer.function} called sys.exit({exc.code!r}) instead of returning its metrics "
                f"(argparse's parse_args() does so on hpotool's command line); read the settings from config "
                f"and return a dict of numbers"
            )
        ).with_traceback(exc.__traceback__) from None
    if stopped:  # the function caught what report raised and carried on
        raise stopped[0]
    if not isinstance(metrics, dict):
        raise TrainerOutputError(
            f"{cfg.trainer.function} returned {type(metrics).__name__}; it must return a dict of final metrics, "
            f"such as {{'val_loss': 0.5}}"
        )
    final = {}
    for k, v in metrics.items():
        try:
            final[k] = _number(v, "")
        except TypeError:
            raise TrainerOutputError(
                f"{cfg.trainer.function} returned {k!r}: {v!r}, which is not a number; return numbers only"
            ) from None
    if rows and "epoch_time" not in final:
        final["epoch_time"] = sum(r["epoch_time"] for r in rows) / len(rows)
    return final


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


def _report_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The epoch and metrics of a call to `report`.

    Raises:
        TypeError: marked as breaking the contract, for a call that does not give exactly those two (the
            epoch left out, each metric as a keyword of its own), showing the call and the right one.
    """
    try:
        bound = _REPORT.bind(*args, **kwargs)
    except TypeError as exc:
        call = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise _broken(
            TypeError(
                f"report({call}): {exc}; call report(epoch, {{'val_loss': 0.5}}), the epoch counting from 0"
            )
        ) from None
    return bound.arguments["epoch"], bound.arguments["metrics"]


def _number(value: Any, message: str) -> float:
    """`value` as a float (a Python or numpy number, a 0-d or one-element tensor or array).

    Raises:
        TypeError: `message`, for text (even "0.5": a metric is a number), None or an array of several values.
    """
    if isinstance(value, str | bytes):
        raise TypeError(message)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(message) from None
