"""Optuna samplers and pruners from `{name, kwargs}` config sections."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.formatting import returned_kind
from hpotool.instantiation import instantiate, is_subclass
from hpotool.kwarg_notes import add_note
from hpotool.resolve import resolve
from hpotool.sampler_checks import (
    check_brute_force,
    check_cmaes_x0,
    check_fixed_params,
    fixed_labels,
    grid_search_space,
)
from hpotool.search_space import Param
from hpotool.signatures import accepted_kwargs

if TYPE_CHECKING:
    import optuna


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


# Optuna's own names for samplers (its class names, its docs' words), written as a short name: `nsgaiii` was
# asked "did you mean 'nsga2'?" (NSGA-II for NSGA-III), and `partial_fixed` was told nothing of the import
# path that names PartialFixedSampler. Keys as `_spelling` folds a name.
_OPTUNA_SPELLINGS = {
    "nsgaii": ("NSGA-II", "nsga2"),
    "nsgaiii": ("NSGA-III", "nsga3"),
    "bruteforce": ("brute-force", "bruteforce"),
    "partialfixed": ("PartialFixedSampler", "optuna.samplers.PartialFixedSampler"),
}


def _spelling(name: str) -> str:
    """`name` folded as Optuna's names are compared: lower case, without `_`, `-` or a `sampler` ending."""
    folded = re.sub(r"[-_ ]", "", name.casefold())
    return folded.removesuffix("sampler") or folded


def sampler_class(name: str, key: str = "sampler") -> Any:
    """The class the `sampler.name` of an optimize config names (or another sampler's, set at `key`)."""
    title, meant = _OPTUNA_SPELLINGS.get(_spelling(name), ("", ""))
    if meant and name not in SAMPLERS:
        if meant in SAMPLERS:
            raise HpoError(
                f"{key}.name: unknown sampler {name!r}; Optuna's {title} sampler is {meant} here: write name: {meant}"
            )
        raise HpoError(
            f"{key}.name: unknown sampler {name!r}; Optuna's {title} has no short name: write name: {meant}, "
            f"with kwargs: {{fixed_params: {{PATH: VALUE}}, base_sampler: tpe}}"
        )
    return _resolve(name, SAMPLERS, "sampler", key)


def _resolve(name: str, registry: Mapping[str, str], kind: str, key: str) -> Any:
    """`resolve`, its error naming the config key (`pruner.kwargs.wrapped_pruner`) that gave the name."""
    try:
        return resolve(name, registry, kind)
    except HpoError as exc:
        raise HpoError(f"{key}.name: {exc}") from None


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

    cls = _sampler_cls(spec_name, key)
    args, offered = _seeded_args(cls, kwargs, seed)
    if is_subclass(cls, optuna.samplers.GridSampler):
        args["search_space"] = grid_search_space(args, space, key)
    if is_subclass(cls, optuna.samplers.BruteForceSampler):  # it fails trial 0 on a continuous float
        check_brute_force(space, key)
    if is_subclass(cls, optuna.samplers.PartialFixedSampler) and isinstance(
        args.get("fixed_params"), Mapping
    ):
        check_fixed_params(args["fixed_params"], space, key)
        args["fixed_params"] = fixed_labels(args["fixed_params"], space)
    if is_subclass(cls, optuna.samplers.CmaEsSampler) and isinstance(args.get("x0"), Mapping):
        check_cmaes_x0(args["x0"], space, key)
    args = _build_objects("sampler", cls, args, key, seed, space)
    if seed is not None and "seed" not in args and not _holds_a_sampler(args):
        add_note(
            f"{key}: {spec_name!r} takes no seed argument, so the optimize config's seed does not reach it, and "
            f"it draws other values on every run; give it a seed parameter (hpotool passes the seed to a sampler "
            f"that takes one) and seed what it draws with it"
        )
    sampler: optuna.samplers.BaseSampler = instantiate("sampler", spec_name, cls, args, key, offered)
    _check_built("sampler", spec_name, sampler, optuna.samplers.BaseSampler, key)
    from hpotool.brute_force import BruteForceSampler

    if isinstance(sampler, BruteForceSampler) and fixed is not None:
        sampler.knows(space, fixed)
    return sampler


def _holds_a_sampler(args: Mapping[str, Any]) -> bool:
    """Whether `args` give a sampler hpotool built, and seeded (PartialFixedSampler's base_sampler)."""
    import optuna

    return any(isinstance(v, optuna.samplers.BaseSampler) for v in args.values())


def _sampler_cls(spec_name: str, key: str) -> Any:
    """The sampler class (or function) `spec_name` names, checked; Optuna's grid and brute-force samplers
    replaced by hpotool's, also when named by their import path."""
    import optuna

    cls = sampler_class(spec_name, key)
    _check_factory("sampler", spec_name, cls, optuna.samplers.BaseSampler, key)
    if cls is optuna.samplers.GridSampler:  # by its import path too: the grid that counts a warm start
        from hpotool.grid import GridSampler

        cls = GridSampler
    from hpotool.brute_force import BruteForceSampler

    if cls is optuna.samplers.BruteForceSampler:  # the same: one that a trial drawn in part cannot break
        cls = BruteForceSampler
    return cls


def _seeded_args(
    cls: Any, kwargs: Mapping[str, Any], seed: int | None
) -> tuple[dict[str, Any], frozenset[str]]:
    """`kwargs` with `seed` added where they set none and the sampler takes one; and the kwargs so added."""
    args = dict(kwargs)
    names, var_kw = accepted_kwargs(cls)
    offered: frozenset[str] = frozenset()
    if seed is not None and "seed" not in args and ("seed" in names or var_kw):
        args["seed"] = seed
        offered = frozenset({"seed"})
    return args, offered


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
    pruner: optuna.pruners.BasePruner = instantiate("pruner", spec_name, cls, args, key)
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
            out[arg] = _inner_sampler(name, inner, args.get("fixed_params"), where, seed, space)
        elif base.group(0) == "BasePruner":
            out[arg] = make_pruner(name, inner, where)
        else:
            out[arg] = _inner_object(arg, name, inner, base.group(0), where)
    return out


def _inner_sampler(
    name: str,
    inner: Mapping[str, Any],
    given: Any,
    where: str,
    seed: int | None,
    space: Mapping[str, Param],
) -> optuna.samplers.BaseSampler:
    """The sampler an argument names (CmaEs's `independent_sampler`, PartialFixedSampler's `base_sampler`),
    which samples the parameters the `fixed_params` `given` beside it leave."""
    fixed: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    inner_space = {path: p for path, p in space.items() if path not in fixed}
    grid = inner.get("search_space")
    for path in grid if isinstance(grid, Mapping) else ():
        if path in fixed:
            raise HpoError(
                f"{where}.kwargs.search_space.{path}: fixed_params fixes it, so the base sampler samples "
                f"the other parameters alone: drop it from the grid"
            )
    return make_sampler(name, inner, seed=seed, space=inner_space, key=where)


def _inner_object(arg: str, name: str, inner: Mapping[str, Any], base: str, where: str) -> Any:
    """The object of class `base` (NSGA-II's `crossover`: a BaseCrossover) an argument names by import path."""
    from hpotool.import_hints import defined_here
    from hpotool.import_paths import import_object, is_import_path

    if not is_import_path(name):
        defined = defined_here(name)
        raise HpoError(
            f"{where}.name: give the import path of a {base} class (package.module:Name), got {name!r}"
            + (f"; {defined}" if defined else "")
        )
    try:
        made = import_object(name)
    except HpoError as exc:
        raise HpoError(f"{where}.name: {exc}") from None
    built = instantiate(arg, name, made, inner, where)
    if base not in {c.__name__ for c in type(built).__mro__}:
        raise HpoError(
            f"{where}.name: {name!r} built a {type(built).__name__}, not a {base}; name a {base} subclass"
        )
    return built


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
            f"{key}: {name!r} returned {returned_kind(built)}, not an {base.__module__.rsplit('._', 1)[0]}."
            f"{base.__name__}; return the {kind} it builds"
        )
