"""Optuna samplers and pruners from `{name, kwargs}` config sections."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import zlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import CodeType, TracebackType
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.kwarg_types import coerce_scalars
from hpotool.near_names import did_you_mean
from hpotool.resolve import resolve
from hpotool.search_space import (
    FloatParam,
    Param,
    choice_label,
    contains,
    grid_choices,
    grid_size,
    value_count,
    values_text,
)
from hpotool.signatures import accepted_kwargs, check_kwargs, check_required
from hpotool.user_code import described

if TYPE_CHECKING:
    import warnings

    import optuna

    from hpotool.config import OptimizeConfig

SAMPLERS = {
    "tpe": "optuna.samplers:TPESampler",
    "rung_tpe": "hpotool.samplers:RungTPESampler",
    "random": "optuna.samplers:RandomSampler",
    "grid": "hpotool.grid:GridSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "gp": "optuna.samplers:GPSampler",
    "qmc": "optuna.samplers:QMCSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "nsga3": "optuna.samplers:NSGAIIISampler",
    "bruteforce": "hpotool.brute_force:BruteForceSampler",
}

PRUNERS = {
    "median": "optuna.pruners:MedianPruner",
    "percentile": "optuna.pruners:PercentilePruner",
    "successive_halving": "optuna.pruners:SuccessiveHalvingPruner",
    "hyperband": "optuna.pruners:HyperbandPruner",
    "threshold": "optuna.pruners:ThresholdPruner",
    "patient": "optuna.pruners:PatientPruner",
    "wilcoxon": "optuna.pruners:WilcoxonPruner",
    "nop": "optuna.pruners:NopPruner",
    "pfl": "hpotool.pruners:PFLPruner",
}

# Names a user may give for no pruner: the run config's `none` (scheduler, norm), or YAML's words for off.
_NO_PRUNER = frozenset({"none", "null", "no", "off", "false", "disabled"})


def sampler_class(name: str, key: str = "sampler") -> Any:
    """The class the `sampler.name` of an optimize config names (or another sampler's, set at `key`)."""
    return _resolve(name, SAMPLERS, "sampler", key)


def _resolve(name: str, registry: Mapping[str, str], kind: str, key: str) -> Any:
    """`resolve`, its error naming the config key (`pruner.kwargs.wrapped_pruner`) that gave the name."""
    try:
        return resolve(name, registry, kind)
    except HpoError as exc:
        raise HpoError(f"{key}.name: {exc}") from None


def _instantiate(
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
        check_kwargs(cls, kwargs, f"{kind} {name!r}")
        check_required(cls, kwargs, f"{kind} {name!r}", f"{key}.kwargs")
        kwargs = coerce_scalars(cls, kwargs, f"{kind} {name!r}")
    except ValueError as exc:
        raise HpoError(f"{key}.kwargs: {exc}") from None
    _check_objects(kind, name, cls, kwargs, key)
    _check_ignored(name, cls, kwargs, key)
    import warnings

    from optuna.exceptions import ExperimentalWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ExperimentalWarning)  # the user asked for this class by name
            built = _build(cls, kwargs, offered)
        _deprecation_notes(caught, kwargs, key)
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
    if not named:
        return f"{key}: {name!r} rejected its kwargs: {text}"
    if len(named) == 1:
        return f"{key}.kwargs.{named[0]}: {name!r} rejected {format_choice(kwargs[named[0]])}: {text}"
    given = ", ".join(f"{k} = {format_choice(kwargs[k])}" for k in named)
    return f"{key}.kwargs: {name!r} rejected {given}: {text}"


# Arguments Optuna still takes but ignores, with a FutureWarning: a study would run without what they ask
# for. By the class that takes them (an import path, checked as a subclass), the argument and the reason.
_IGNORED: tuple[tuple[str, str, str], ...] = (
    (
        "optuna.samplers:CmaEsSampler",
        "restart_strategy",
        "Optuna's CmaEsSampler ignores it since Optuna 4.4 (restart_strategy falls back to None, no restarts; "
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

_DEPRECATED = re.compile(
    r"^`(\w+)` has been deprecated in v([\d.]+)\. This feature will be removed in v([\d.]+)\."
)

# Where `_instantiate` leaves its notes on deprecated kwargs, while `kwarg_notes()` collects them.
_notes: ContextVar[list[str] | None] = ContextVar("hpotool_kwarg_notes", default=None)


@contextlib.contextmanager
def kwarg_notes() -> Iterator[list[str]]:
    """Collects a note line per deprecated kwarg of the samplers and pruners built inside: one Optuna takes
    today and warns of (TPE's `prior_weight`). Outside, the same builds (a worker's, a resumed run's) say
    nothing: the check before trial 0 printed the note once."""
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


def _check_ignored(name: str, cls: Any, kwargs: Mapping[str, Any], key: str) -> None:
    """An argument Optuna ignores (`restart_strategy`), refused, where Optuna warned and ran without it."""
    from hpotool.import_paths import import_object

    for owner, arg, why in _IGNORED:
        if arg in kwargs and is_subclass(cls, import_object(owner)):
            raise HpoError(f"{key}.kwargs.{arg}: {why}")


def _deprecation_notes(caught: list[warnings.WarningMessage], kwargs: Mapping[str, Any], key: str) -> None:
    """Optuna's FutureWarnings on kwargs the config gives, as hpotool notes (`kwarg_notes`); other warnings
    are shown again."""
    import warnings

    import optuna

    notes = _notes.get()
    for w in caught:
        found = _DEPRECATED.match(str(w.message)) if issubclass(w.category, FutureWarning) else None
        if found is not None and found.group(1) in kwargs:
            arg, since, until = found.groups()
            if notes is not None:
                notes.append(
                    f"{key}.kwargs.{arg} is deprecated in Optuna {since} and goes in Optuna {until}; it still "
                    f"works with this Optuna ({optuna.__version__}), so the study uses it: drop it before "
                    f"upgrading Optuna"
                )
            continue
        # shown as before, each text once under the default filter (the registry of this line's module)
        warnings.warn(w.message, w.category, stacklevel=2)


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
            raise HpoError(
                f"{path}.kwargs.{key}: {kind} {name!r} takes {text} here, which a YAML value cannot be (got "
                f"{format_choice(value)}); drop {key}, or build the {kind} in your own module and give its import path "
                f"(package.module:Name) as name"
            )


def make_sampler(
    spec_name: str,
    kwargs: Mapping[str, Any],
    *,
    seed: int | None,
    space: Mapping[str, Param],
    fixed: Mapping[str, Any] | None = None,
    key: str = "sampler",
) -> optuna.samplers.BaseSampler:
    """The sampler `spec_name` names, seeded with `seed` unless `kwargs` sets one; `key`: where the config
    sets it (`sampler.kwargs.base_sampler` for PartialFixedSampler's).

    The grid sampler gets its grid from the search space when `kwargs` gives none; the brute-force sampler
    gets the search space and the run config's values `fixed` its conditions read, when given, to tell a
    point drawn in part.
    """
    import optuna

    cls = sampler_class(spec_name, key)
    _check_factory("sampler", spec_name, cls, optuna.samplers.BaseSampler, key)
    if cls is optuna.samplers.GridSampler:  # by its import path too: the grid that counts a warm start
        from hpotool.grid import GridSampler

        cls = GridSampler
    from hpotool.brute_force import BruteForceSampler

    if cls is optuna.samplers.BruteForceSampler:  # the same: one that a trial drawn in part cannot break
        cls = BruteForceSampler
    args = dict(kwargs)
    names, var_kw = accepted_kwargs(cls)
    offered: frozenset[str] = frozenset()
    if seed is not None and "seed" not in args and ("seed" in names or var_kw):
        args["seed"] = seed
        offered = frozenset({"seed"})
    if is_subclass(cls, optuna.samplers.GridSampler) and "search_space" not in args:
        sizes = {}
        for path, p in space.items():
            try:
                sizes[path] = grid_size(p)
            except ValueError as exc:
                raise HpoError(
                    f"{key}: the grid sampler needs a finite grid: search_space.{path}: {exc}"
                ) from None
        _check_grid_size(sizes, "search_space", key)
        args["search_space"] = {path: grid_choices(p) for path, p in space.items()}
    elif is_subclass(cls, optuna.samplers.GridSampler):
        _check_grid(args["search_space"], space, key)
        _check_grid_size(
            {k: len(v) for k, v in args["search_space"].items()}, f"{key}.kwargs.search_space", key
        )
        args["search_space"] = {  # as Optuna stores the values: a list choice as its label
            path: [choice_label(v) for v in values] for path, values in args["search_space"].items()
        }
    if is_subclass(cls, optuna.samplers.BruteForceSampler):  # it fails trial 0 on a continuous float
        for path, p in space.items():
            if isinstance(p, FloatParam) and p.step is None:
                raise HpoError(
                    f"{key}: the brute-force sampler needs a finite set of values: search_space.{path}: a float "
                    f"without step has infinitely many; give it a step, or use another sampler"
                )
            if (n := value_count(p) or 0) > GRID_MAX_POINTS:  # a MemoryError in the check's first suggest
                raise HpoError(
                    f"{key}: the brute-force sampler lists every value of a parameter in memory: "
                    f"search_space.{path} has {n:,}; narrow its range or give it a larger step, for at most "
                    f"{GRID_MAX_POINTS:,} values, or use another sampler (tpe, random)"
                )
    if is_subclass(cls, optuna.samplers.PartialFixedSampler) and isinstance(
        args.get("fixed_params"), Mapping
    ):
        _check_fixed(args["fixed_params"], space, key)
    args = _build_objects("sampler", cls, args, key, seed, space)
    sampler: optuna.samplers.BaseSampler = _instantiate("sampler", spec_name, cls, args, key, offered)
    _check_built("sampler", spec_name, sampler, optuna.samplers.BaseSampler, key)
    if isinstance(sampler, BruteForceSampler) and fixed is not None:
        sampler.knows(space, fixed)
    return sampler


GRID_MAX_POINTS = 1_000_000


def _check_grid_size(sizes: Mapping[str, int], where: str, key: str = "sampler") -> None:
    """A grid of at most GRID_MAX_POINTS points: Optuna's grid sampler lists every point in memory as it is
    built, so a range of 10^10 integers ended in a MemoryError (or the machine's memory) before trial 0."""
    total = math.prod(sizes.values())
    if total > GRID_MAX_POINTS:
        counts = " x ".join(f"{path}: {n:,}" for path, n in sizes.items() if n > 1)
        raise HpoError(
            f"{key}: the grid of {where} has {total:,} points ({counts} values), and the grid sampler lists "
            f"every point in memory: give a larger step or fewer choices, for at most {GRID_MAX_POINTS:,} "
            f"points, or use another sampler (tpe, random)"
        )


def _check_fixed(fixed: Mapping[str, Any], space: Mapping[str, Param], key: str = "sampler") -> None:
    """PartialFixedSampler's `fixed_params` name searched parameters, each with a value of its range: a
    misspelt key fixed nothing (the parameter was sampled as before), and a value outside the range was
    trained as it was (a choice not among the choices failed every trial)."""
    where = f"{key}.kwargs.fixed_params"
    for path, value in fixed.items():
        if path not in space:
            hint = did_you_mean(str(path), space) or f" (it searches {', '.join(space)})"
            raise HpoError(
                f"{where}.{path}: not in search_space{hint}; fixed_params fixes searched parameters only: "
                f"correct the key or drop it"
            )
        if not contains(space[path], value):
            raise HpoError(
                f"{where}.{path}: {format_choice(value)} lies outside search_space.{path} "
                f"({values_text(space[path])}); give a value within it, or widen the search space"
            )


def _check_grid(grid: Any, space: Mapping[str, Param], key: str = "sampler") -> None:
    """A grid given in the kwargs covers the searched parameters, and only with values of their ranges: a
    parameter it lacks failed every trial, and a value outside the range was trained as it was."""
    where = f"{key}.kwargs.search_space"
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise HpoError(
            f"{where}: give each searched parameter a list of values ({{optimizer.lr: [0.001, 0.01]}})"
        )
    for path, values in grid.items():
        if path not in space:
            raise HpoError(
                f"{where}.{path}: not in search_space{did_you_mean(str(path), space)}; the grid holds the searched "
                f"parameters only"
            )
        outside = [v for v in values if not contains(space[path], v)]
        if outside:
            raise HpoError(
                f"{where}.{path}: {format_choice(outside[0])} lies outside search_space.{path}; widen the range or drop the value"
            )
    missing = [path for path in space if path not in grid]
    if missing:
        raise HpoError(
            f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} searched but not in the grid; "
            f"give {'it' if len(missing) == 1 else 'them'} values too, or leave search_space out of the kwargs "
            f"(the grid is then built from search_space)"
        )


def make_pruner(spec_name: str, kwargs: Mapping[str, Any], key: str = "pruner") -> optuna.pruners.BasePruner:
    """The pruner `spec_name` names, set at `key` of the optimize config. `patient` wraps the pruner given as
    `wrapped_pruner: {name, kwargs}`."""
    import optuna

    if spec_name.casefold() in _NO_PRUNER:  # as a schedule or a norm says it (scheduler: {name: none})
        raise HpoError(
            f"{key}.name: unknown pruner {spec_name!r}; for no pruning write {key}: null, or name: nop"
        )
    cls = _resolve(spec_name, PRUNERS, "pruner", key)
    _check_factory("pruner", spec_name, cls, optuna.pruners.BasePruner, key)
    args = dict(kwargs)
    inner = args.get("wrapped_pruner")
    if isinstance(inner, str):
        inner = {"name": inner}
    if isinstance(inner, Mapping):
        if set(inner) - {"name", "kwargs"} or "name" not in inner:
            raise HpoError(f"{key}.kwargs.wrapped_pruner: give it as {{name: ..., kwargs: {{...}}}}")
        inner_key = f"{key}.kwargs.wrapped_pruner"
        args["wrapped_pruner"] = make_pruner(str(inner["name"]), inner.get("kwargs") or {}, inner_key)
    elif is_subclass(cls, optuna.pruners.PatientPruner) and "wrapped_pruner" not in args:
        args["wrapped_pruner"] = None
    args = _build_objects("pruner", cls, args, key, None, {})
    pruner: optuna.pruners.BasePruner = _instantiate("pruner", spec_name, cls, args, key)
    _check_built("pruner", spec_name, pruner, optuna.pruners.BasePruner, key)
    return pruner


def _build_objects(
    kind: str, cls: Any, args: Mapping[str, Any], key: str, seed: int | None, space: Mapping[str, Param]
) -> dict[str, Any]:
    """`args` with each object argument given as `{name, kwargs}` built: NSGA-II's `crossover`,
    PartialFixedSampler's `base_sampler`, CmaEs's `independent_sampler` (a sampler by short name too,
    seeded with `seed`; a pruner too), which an Optuna script passes as objects and YAML cannot."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return dict(args)
    out = dict(args)
    for arg, value in args.items():
        annotation = params[arg].annotation if arg in params else inspect.Parameter.empty
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        base = re.search(r"\bBase[A-Z]\w*", text)
        if base is not None and "Callable" not in text and isinstance(value, str):
            value = {"name": value}  # base_sampler: tpe, as wrapped_pruner: median
        if base is None or not isinstance(value, Mapping) or "name" not in value:
            continue
        where = f"{key}.kwargs.{arg}"
        inner = value.get("kwargs") or {}
        if set(value) - {"name", "kwargs"} or not isinstance(inner, Mapping):
            raise HpoError(f"{where}: give it as {{name: ..., kwargs: {{...}}}}")
        name = str(value["name"])
        if base.group(0) == "BaseSampler":
            given = args.get("fixed_params")  # PartialFixedSampler's: its base samples only the others
            fixed: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
            inner_space = {path: p for path, p in space.items() if path not in fixed}
            grid = inner.get("search_space")
            for path in grid if isinstance(grid, Mapping) else ():
                if path in fixed:
                    raise HpoError(
                        f"{where}.kwargs.search_space.{path}: fixed_params fixes it, so the base sampler samples "
                        f"the other parameters alone: drop it from the grid"
                    )
            out[arg] = make_sampler(name, inner, seed=seed, space=inner_space, key=where)
        elif base.group(0) == "BasePruner":
            out[arg] = make_pruner(name, inner, where)
        else:
            from hpotool.import_paths import import_object, is_import_path

            if not is_import_path(name):
                raise HpoError(
                    f"{where}.name: give the import path of a {base.group(0)} class (package.module:Name), got {name!r}"
                )
            try:
                made = import_object(name)
            except HpoError as exc:
                raise HpoError(f"{where}.name: {exc}") from None
            built = _instantiate(arg, name, made, inner, where)
            if base.group(0) not in {c.__name__ for c in type(built).__mro__}:
                raise HpoError(
                    f"{where}.name: {name!r} built a {type(built).__name__}, not a {base.group(0)}; name a "
                    f"{base.group(0)} subclass"
                )
            out[arg] = built
    return out


def is_subclass(obj: Any, base: type) -> bool:
    """Whether `obj` is a class derived from `base` (False for a function that builds one)."""
    return isinstance(obj, type) and issubclass(obj, base)


def _check_factory(kind: str, name: str, obj: Any, base: type, key: str) -> None:
    """`obj` is a subclass of `base` or a function that may build one: a function (`def my_tpe(seed=None):
    return TPESampler(gamma=...)`, the way to give TPE a gamma) crashed with "issubclass() arg 1 must be a
    class", and a ready-made instance would be called."""
    if is_subclass(obj, base):
        return
    wanted = f"{base.__module__.rsplit('._', 1)[0]}.{base.__name__}"
    if isinstance(obj, type) or not callable(obj) or isinstance(obj, base):
        what = f"the class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__} object"
        raise HpoError(
            f"{key}: {name!r} is not an {wanted} subclass (it is {what}); name such a class, or a function "
            f"that builds the {kind} from the kwargs"
        )


def _check_built(kind: str, name: str, built: Any, base: type, key: str) -> None:
    """What a user's function built is an Optuna sampler or pruner."""
    if not isinstance(built, base):
        raise HpoError(
            f"{key}: {name!r} returned {type(built).__name__}, not an {base.__module__.rsplit('._', 1)[0]}."
            f"{base.__name__}; return the {kind} it builds"
        )


def study_sampler(
    opt: OptimizeConfig,
    *,
    fixed: Mapping[str, Any] | None = None,
    worker: int = 0,
    existing: int = 0,
    salt: tuple[int, ...] = (),
) -> optuna.samplers.BaseSampler:
    """The sampler of worker `worker` in a run that finds `existing` trials in the study; `fixed`: the run
    config's values (`leaf_values`), which brute force reads to tell a point drawn in part.

    A new study's first worker samples with the config's seed, worker i with seed + i. A run that resumes
    a study derives its seeds from the seed, the worker and the count: with the same seed, a resumed
    sampler would propose its first trials' values again. A process that joins a study other processes
    are sampling (`salt`: `process_salt()`) mixes in its host and process id, as the same command started
    on several machines would otherwise propose the same values. Optuna's grid sampler keeps the config's
    seed everywhere, as its seed orders the grid points that every run and worker number alike; so does its
    QMC sampler, whose seed scrambles the one sequence that every run and worker draws the next point of
    (the study counts the points drawn per seed: another seed started another sequence at its first point),
    its random sampler for what the sequence does not cover taking the derived seed.
    """
    import numpy as np
    import optuna

    cls = sampler_class(opt.sampler.name)
    grid = is_subclass(cls, optuna.samplers.GridSampler)
    qmc = is_subclass(cls, optuna.samplers.QMCSampler)

    def derive(seed: int | None, shared: bool = grid or qmc) -> int | None:
        if seed is None or shared:
            return seed
        if existing == 0 and not salt:
            return (seed + worker) % 2**32  # a sampler takes seeds below 2**32
        return int(np.random.SeedSequence([seed, worker, existing, *salt]).generate_state(1)[0])

    kwargs: dict[str, Any] = dict(opt.sampler.kwargs)
    # a seed written 1e3 (1000.0) or "7" is derived as the int it builds the sampler with; one that cannot
    # be converted is refused by make_sampler, naming the argument
    with contextlib.suppress(ValueError):
        kwargs = coerce_scalars(sampler_class(opt.sampler.name), kwargs, "sampler")
    given = (
        kwargs.get("seed")
        if isinstance(kwargs.get("seed"), int) and not isinstance(kwargs["seed"], bool)
        else None
    )
    if given is not None:
        kwargs["seed"] = derive(given)
    if qmc and given is None and opt.seed is None and kwargs.get("scramble"):
        # unseeded, each process scrambled a sequence of its own (and Optuna warned so in each): one the
        # study's name gives is shared by every run and worker, and differs between studies
        kwargs["seed"] = zlib.crc32(opt.study_name.encode())
    if (
        is_subclass(cls, optuna.samplers.TPESampler)
        and opt.multi_objective
        and kwargs.get("group") is True
        and "multivariate" not in kwargs
    ):
        # Optuna treats multivariate as true then, warning so at every trial: passed as Optuna takes it, one note
        kwargs["multivariate"] = True
        notes = _notes.get()
        if notes is not None:
            notes.append(
                "sampler.kwargs.group: true needs the multivariate TPE, which Optuna leaves off by default with "
                "several objectives but turns on for group; hpotool passes multivariate: true, as Optuna would "
                "(write multivariate: true to silence this note)"
            )
    if qmc and "independent_sampler" not in kwargs:  # its first trial, and a conditional parameter
        kwargs["independent_sampler"] = optuna.samplers.RandomSampler(
            seed=derive(given if given is not None else opt.seed, shared=False)
        )
    return make_sampler(opt.sampler.name, kwargs, seed=derive(opt.seed), space=opt.search_space, fixed=fixed)


def process_salt() -> tuple[int, ...]:
    """This process's host, PID namespace and id, which make its seeds its own among processes sampling one
    study (containers sharing a host name each have their own namespace, and often the same pids)."""
    from hpotool.stale import pid_namespace

    return (zlib.crc32(socket.gethostname().encode()), pid_namespace() or 0, os.getpid())
