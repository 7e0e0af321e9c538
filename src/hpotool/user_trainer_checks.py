"""Before trial 0, the checks of a user's training function (`check_user_trainer`: it imports, and hpotool
can call it), and the note on a scheduler section it trains without (`schedule_note`)."""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.import_paths import import_object
from hpotool.near_names import closest, edit_distance
from hpotool.signatures import accepted_kwargs
from hpotool.trainer_contract import metrics_example
from hpotool.user_trainer import OFFERED


def check_user_trainer(
    cfg: RunConfig, *, pruning: bool, opt_source: str = "the optimize config", objectives: Sequence[str] = ()
) -> bool:
    """Before trial 0: the function imports, and hpotool can call it (every argument it requires is one
    hpotool passes); with a pruner the user chose (`pruning`), it must take `report`, or the pruner could
    never stop it. Returns whether it takes `report` (True where its signature cannot be read). `objectives`:
    the study's metrics, which the report() a fix shows reports (`metrics_example`; val_loss where none is
    known, `hpotool train`).

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
    _refuse_a_generator_or_coroutine(path, fn)
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
            f"{_required_fix(required[0], cfg, objectives)}"
        )
    names, var_kw = accepted_kwargs(fn)
    if not var_kw:
        _refuse_a_misspelt_key(path, cfg.trainer.kwargs, params)
    if pruning and "report" not in names and not var_kw:
        raise HpoError(
            f"trainer.function: {path} takes no 'report' argument, so the pruner can never stop a trial; add a "
            f"report parameter and call report(epoch, {metrics_example(objectives)}) after each epoch, or set pruner: "
            f"{{name: nop}} in {opt_source}"
        )
    return "report" in names or var_kw


def _refuse_a_misspelt_key(path: str, keys: Mapping[str, Any], params: Iterable[inspect.Parameter]) -> None:
    """Raise `HpoError` for a `trainer:` key the function does not take that is a letter or two off one of its
    parameters the section leaves at its default (`alhpa` for `alpha=0.1`): the key went unused, and every
    trial trained with the default, without a word. A key further from every parameter may be one the
    function reads from `config['trainer']` itself, as the scikit-learn example does."""
    taken = {p.name for p in params}
    defaults = {
        p.name: p.default
        for p in params
        if p.default is not inspect.Parameter.empty and p.name not in keys and p.name not in OFFERED
    }
    for key in keys:
        if key in taken:
            continue
        near = [n for n in closest(key, defaults, n=1) if edit_distance(key, n) <= 2]
        if near:
            name = near[0]
            raise HpoError(
                f"trainer.{key}: {path} takes no argument {key!r} (did you mean {name!r}?), so {name} would keep "
                f"its default, {format_choice(defaults[name])}, in every trial; write {name}"
            )


def _refuse_a_generator_or_coroutine(path: str, fn: Any) -> None:
    """Raise `HpoError` for an `async def` function, or one that yields (each epoch's metrics, say): its call
    returns a coroutine or a generator, and trial 0 failed with "returned coroutine" (with Python's "coroutine
    was never awaited" warning) or "returned generator"."""
    if inspect.isasyncgenfunction(fn):
        raise HpoError(
            f"trainer.function: {path} is an async generator function (async def that yields), whose call "
            f"returns an async generator, not the dict of metrics; make it a plain def that calls "
            f"report(epoch, {{...}}) where it yields each epoch's metrics, and returns the final ones"
        )
    if inspect.iscoroutinefunction(fn):
        raise HpoError(
            f"trainer.function: {path} is an async function (async def), whose call returns a coroutine, not "
            f"the dict of metrics; make it a plain def that runs its loop with asyncio.run(...) and returns the "
            f"metrics"
        )
    if inspect.isgeneratorfunction(fn):
        raise HpoError(
            f"trainer.function: {path} is a generator function (it yields), whose call returns a generator, not "
            f"the dict of metrics; call report(epoch, {{...}}) where it yields each epoch's metrics, and return "
            f"the final ones"
        )


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


def _required_fix(name: str, cfg: RunConfig, objectives: Sequence[str] = ()) -> str:
    """How to fix a parameter `name` of the training function that hpotool cannot pass: rename what is the
    config or the report callback under another name, or replace an Optuna objective's trial; read a key
    the run config has from it; set any other under trainer:. The report() it shows reports the study's
    `objectives` (`metrics_example`): a study of val_r2 was shown {'val_loss': 0.5}."""
    if name == "trial":
        return (
            "hpotool passes no Optuna trial: it samples search_space itself and hands the picked values in config "
            "(config['optimizer']['lr']) and as the trainer: keys the function names; take config and report "
            f"instead, call report(epoch, {metrics_example(objectives)}) where it called trial.report, and drop "
            "its trial.suggest_* calls"
        )
    if name in _CONFIG_NAMES:
        return f"rename {name!r} config (the run config as a dict) or run_config (the RunConfig)"
    if name in _REPORT_NAMES:
        return f"rename {name!r} report (call report(epoch, {metrics_example(objectives)}) after each epoch)"
    read = _run_config_key(name, cfg)
    if read is not None:
        return read
    return f"set {name!r} under trainer: in the run config, or give it a default"


# The flags that change a run config's own key in train and train-from-best (final runs also set epochs).
_FLAGS = {"epochs": "--epochs", "seed": "--seed", "device": "--device"}


def _run_config_key(name: str, cfg: RunConfig) -> str | None:
    """Where a parameter named as a key the run config already has (`epochs`, the optimizer's `lr`) is read
    from: it was told to set the key again under trainer:, where --epochs, a final run's epochs and a searched
    optimizer.lr would never reach it."""
    if name in type(cfg).model_fields and name != "trainer":
        flag = f", which {_FLAGS[name]} also sets" if name in _FLAGS else ""
        return f"take run_config and read run_config.{name} (the run config's {name}: key{flag}), or give it a default"
    for section in ("data", "model", "optimizer", "scheduler", "loss"):
        if name in getattr(cfg, section).kwargs:
            return (
                f"read {name} from config[{section!r}][{name!r}] (the run config's {section}.{name}, which "
                f"search_space sets where it searches {section}.{name}), or give it a default"
            )
    return None


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
