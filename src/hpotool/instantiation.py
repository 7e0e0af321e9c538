"""A sampler or pruner built from the class the config names and its kwargs: the kwargs checked first
(an object argument given a YAML value, one Optuna ignores), and a refusal worded with the key at fault."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import CodeType, TracebackType
from typing import Any

from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.kwarg_notes import note_deprecated_kwargs
from hpotool.kwarg_types import coerce_scalars
from hpotool.signatures import check_kwargs, check_required
from hpotool.user_code import described, refusing_exit


def instantiate(
    kind: str,
    name: str,
    cls: Any,
    kwargs: Mapping[str, Any],
    key: str | None = None,
    offered: frozenset[str] = frozenset(),
) -> Any:
    """`cls(**kwargs)`, checked; `offered`: the kwargs hpotool added (the study's seed), left out where the
    call refuses them (a function under a decorator without functools.wraps shows `(*args, **kwargs)`)."""
    key = key or kind  # where the config sets it: pruner.kwargs.wrapped_pruner for patient's inner pruner
    try:
        check_kwargs(cls, kwargs, f"{kind} {name!r}", unlisted=_refused_arguments(cls))
        check_required(cls, kwargs, f"{kind} {name!r}", f"{key}.kwargs")
        kwargs = coerce_scalars(cls, kwargs, f"{kind} {name!r}")
    except ValueError as exc:
        raise HpoError(f"{key}.kwargs: {exc}") from None
    _check_objects(kind, name, cls, kwargs, key)
    _check_ignored(name, cls, kwargs, key)
    if kind == "sampler":  # Optuna's pruners refuse a negative count themselves
        _check_counts(cls, kwargs, key)
    import warnings

    from optuna.exceptions import ExperimentalWarning

    try:
        with refusing_exit(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ExperimentalWarning)  # the user asked for this class by name
            built = _build(cls, kwargs, offered)
        note_deprecated_kwargs(caught, kwargs, key)
        return built
    except HpoError:
        raise
    except Exception as exc:  # a user's class that cannot start (a licence server, a file): a traceback
        if _refused_kwargs(cls, kwargs, exc):
            raise HpoError(_rejected(name, kwargs, exc, key)) from None
        raise HpoError(f"{key}: building {name!r} failed: {described(exc)}") from None


# Optuna's refusals that do not say what to write, as (its text, the kwarg at fault or None, the fix);
# the fix is formatted with the kwargs and `name`.
_FIXES: tuple[tuple[str, str | None, str], ...] = (
    (
        r"Either lower or upper must be specified",
        None,
        "{name!r} needs lower or upper (or both): a trial is pruned once its metric falls below lower or "
        "rises above upper; e.g. lower: 0.5",
    ),
    (
        r"lower should be smaller than upper",
        None,
        "lower ({lower}) must be below upper ({upper}): a trial is pruned once its metric falls below lower or "
        "rises above upper; swap them, or drop one",
    ),
    (
        r"``group`` option can only be enabled when ``multivariate``",
        "group",
        "group: true needs multivariate: true (it is false here); set multivariate: true, or drop group",
    ),
    (
        r"use_separable_cma=True` and `with_margin=True",
        None,
        "use_separable_cma and with_margin cannot both be true in {name!r}; drop one",
    ),
    (
        r"bootstrap_count > 0 and (?:min|max)_resource == 'auto'",
        "bootstrap_count",
        "bootstrap_count needs a number of epochs for min_resource (and max_resource), not auto; give them "
        "numbers, or drop bootstrap_count",
    ),
)


def _rejected(name: str, kwargs: Mapping[str, Any], exc: Exception, key: str) -> str:
    """The line for Optuna's (or a class's) refusal `exc` of `kwargs`: the key at fault and the fix, where
    Optuna's text leaves them out, else the kwargs its text names, with their values, and its text."""
    text = str(exc)
    for pattern, arg, fix in _FIXES:
        if re.search(pattern, text):
            values = {k: format_choice(v) for k, v in kwargs.items() if isinstance(v, _YAML_VALUES)}
            try:
                line = fix.format(name=name, **values)
            except (KeyError, IndexError):  # a value the fix names was not given (a default of the class)
                break
            return f"{key}.kwargs{'.' + arg if arg else ''}: {line}"
    named = [k for k in kwargs if re.search(rf"(?<![A-Za-z0-9_]){re.escape(k)}(?![A-Za-z0-9_])", text, re.I)]
    text = text.rstrip().removesuffix(".")  # the line goes on with the fix
    if not named:
        return f"{key}: {name!r} rejected its kwargs: {text}; correct them as it says"
    if len(named) == 1:
        value = format_choice(kwargs[named[0]])
        return f"{key}.kwargs.{named[0]}: {name!r} rejected {value}: {text}; give {named[0]} a value it takes"
    given = ", ".join(f"{k} = {format_choice(kwargs[k])}" for k in named)
    return f"{key}.kwargs: {name!r} rejected {given}: {text}; correct {' or '.join(named)} as it says"


# Arguments Optuna still takes but ignores, with a FutureWarning: a study would run without what they ask
# for. By the class that takes them (an import path, checked as a subclass), the argument and the reason.
_IGNORED: tuple[tuple[str, str, str], ...] = (
    (
        "optuna.samplers:CmaEsSampler",
        "restart_strategy",
        "Optuna's CmaEsSampler ignores it since Optuna 4.4 (it runs no restarts whatever restart_strategy says; "
        "restarts moved to OptunaHub): drop it",
    ),
    (
        "optuna.samplers:CmaEsSampler",
        "inc_popsize",
        "Optuna's CmaEsSampler ignores it since Optuna 4.4 (it served restart_strategy, which no longer "
        "restarts; to set the population give popsize instead): drop it",
    ),
    (
        "optuna.samplers:TPESampler",
        "consider_prior",
        "Optuna's TPESampler ignores it since Optuna 4.3 (the prior is always considered; prior_weight sets its "
        "weight): drop it",
    ),
)


def _refused_arguments(cls: Any) -> tuple[str, ...]:
    """The arguments of `cls` hpotool refuses on their own (`_IGNORED`'s, `constraints_func`), which a
    message listing the arguments it takes leaves out: "it takes: consider_prior, ..., constraints_func"
    named two that the config was then refused for."""
    from hpotool.import_paths import import_object

    ignored = [arg for owner, arg, _ in _IGNORED if is_subclass(cls, import_object(owner))]
    return (*ignored, "constraints_func")


def _check_ignored(name: str, cls: Any, kwargs: Mapping[str, Any], key: str) -> None:
    """An argument Optuna ignores (`restart_strategy`), refused, where Optuna warned and ran without it."""
    from hpotool.import_paths import import_object

    for owner, arg, why in _IGNORED:
        if arg in kwargs and is_subclass(cls, import_object(owner)):
            raise HpoError(f"{key}.kwargs.{arg}: {why}")


def _check_counts(cls: Any, kwargs: Mapping[str, Any], key: str) -> None:
    """An Optuna or hpotool sampler's count (`n_startup_trials`, `n_ei_candidates`) given a negative number:
    TPE took n_startup_trials: -5 silently (as 0), where nothing can be meant by it."""
    if not str(getattr(cls, "__module__", "")).startswith(("optuna.", "hpotool.")):  # rung_tpe: TPE's
        return
    for arg, value in kwargs.items():
        if arg.startswith("n_") and isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise HpoError(
                f"{key}.kwargs.{arg}: is a count, so it cannot be negative, got {value}; give 0 or more"
            )


def _build(cls: Any, kwargs: Mapping[str, Any], offered: frozenset[str]) -> Any:
    while True:
        try:
            return cls(**kwargs)
        except TypeError as exc:
            found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if found is None or found.group(1) not in offered:
                raise
            kwargs = {k: v for k, v in kwargs.items() if k != found.group(1)}
            offered = offered - {found.group(1)}


def _refused_kwargs(cls: Any, kwargs: Mapping[str, Any], exc: Exception) -> bool:
    """Whether `cls(**kwargs)` raised `exc` over its arguments: the call does not bind to its signature (a
    required one left out), or the constructor is Optuna's (or hpotool's), which checks its values with
    TypeError and ValueError (`ThresholdPruner` with neither `lower` nor `upper`). One a user's class raises
    for its own reasons (`raise ValueError("licence key missing")`, or an Optuna class it builds with values
    of its own) read as its kwargs rejected, though the config's kwargs were fine."""
    import inspect

    if not isinstance(exc, TypeError | ValueError):
        return False
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError:
        return True
    except ValueError:  # no signature (a builtin): let the frames tell
        pass
    inner = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    if inner is None:  # raised by the call itself, before any code of the class ran
        return True
    # The constructor's own frame: who checked the values. A decorator's wrapper (Optuna's
    # experimental_class) runs first, and its module is not the class's.
    own = _constructor_code(cls)
    frame: TracebackType | None = inner
    while own is not None and frame is not None and frame.tb_frame.f_code is not own:
        frame = frame.tb_next
    module = str((frame or inner).tb_frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in ("optuna", "hpotool")


def _constructor_code(cls: Any) -> CodeType | None:
    """The code of what `cls(...)` runs as the constructor (a class's `__init__`, or the function), under
    any decorator that wraps it with functools.wraps; None when it has none (a builtin)."""
    import inspect

    target: Any = getattr(cls, "__init__", None) if isinstance(cls, type) else cls
    try:
        target = inspect.unwrap(target)
    except ValueError:  # a cycle of __wrapped__
        return None
    code = getattr(target, "__code__", None)
    return code if isinstance(code, CodeType) else None


_YAML_VALUES = (str, int, float, bool, list, dict)


def _check_objects(kind: str, name: str, cls: Any, kwargs: Mapping[str, Any], path: str) -> None:
    """A function or object argument (TPE's `gamma`, CmaEs's `independent_sampler`) given a YAML value:
    the class may store it and call it only after its start-up trials, failing every later trial."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key, value in kwargs.items():
        annotation = params[key].annotation if key in params else inspect.Parameter.empty
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        wants_object = "Callable" in text or re.search(r"\bBase[A-Z]\w*", text) is not None
        if wants_object and isinstance(value, _YAML_VALUES) and key == "constraints_func":
            raise HpoError(  # an Optuna script's constraints_func: hpotool's constraints feed the same samplers
                f"{path}.kwargs.constraints_func: each trial gives the {kind} the constraints of the optimize config's "
                f"constraints: list, with Trial.set_constraint (which Optuna 5 has in its place); drop "
                f"constraints_func and write each constraint there on a measured value (constraints: "
                f'["n_params <= 20000"])'
            )
        base = re.search(r"\bBase[A-Z]\w*", text)
        if base is not None and "Callable" not in text and isinstance(value, _YAML_VALUES):
            example = {"BaseSampler": "tpe", "BasePruner": "median"}.get(base.group(0), "package.module:Name")
            raise HpoError(  # a name, or a mapping with one, was built by _build_objects
                f"{path}.kwargs.{key}: {kind} {name!r} takes a {base.group(0)} here (got {format_choice(value)}); "
                f"give it as {{name: {example}, kwargs: {{...}}}}, which hpotool builds"
            )
        if wants_object and isinstance(value, _YAML_VALUES):
            takes = "a function" if "Callable" in text else text  # not Python's `Callable[[int], int] | None`
            raise HpoError(
                f"{path}.kwargs.{key}: {kind} {name!r} takes {takes} here, which a YAML value cannot be (got "
                f"{format_choice(value)}); drop {key}, or build the {kind} in your own module and give its import path "
                f"(package.module:Name) as name"
            )


def is_subclass(obj: Any, base: type) -> bool:
    """Whether `obj` is a class derived from `base` (False for a function that builds one)."""
    return isinstance(obj, type) and issubclass(obj, base)
