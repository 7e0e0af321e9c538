"""Suggesting a search space on a trial: one value per parameter, in order, skipping a parameter whose
conditions do not hold; and whether a trial has drawn all its values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hpotool.conditions import all_hold
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param, decode_params

if TYPE_CHECKING:
    import optuna


def suggest(
    trial: optuna.Trial, space: Mapping[str, Param], fixed: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Ask the trial for one value per parameter, in declaration order, skipping a parameter whose `when`
    conditions do not hold (conditions read earlier parameters, then the base config's `fixed` values).

    Returns:
        `{dotted path: value}`, ready for `apply_overrides` (a list choice as the list, not its label).
    """
    params: dict[str, Any] = {}
    read: dict[str, Any] = {}  # as conditions read them (`as_written`)
    for name, p in space.items():
        if p.when and not all_hold(p.when, {**(fixed or {}), **read}):
            continue
        match p:
            case IntParam():
                params[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
            case FloatParam():
                params[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
            case CategoricalParam():
                params[name] = p.value_of(trial.suggest_categorical(name, p.labels))
            case _:  # pragma: no cover - the discriminated union admits nothing else
                raise TypeError(f"unsupported parameter {p!r}")
        read[name] = as_written(p, params[name])
    return params


def as_written(p: Param, value: Any) -> Any:
    """`value` of `p` as a condition reads it: a stepped float's value on its step as the YAML writes it
    (`on_step`); any other as it is. The trial itself keeps Optuna's value, which its model trained and its
    study stored."""
    if not isinstance(p, FloatParam) or p.step is None:
        return value
    return on_step(value, p.low, p.step)


def on_step(value: Any, low: float, step: float) -> Any:
    """A float drawn on the steps of `step` from `low` as the YAML writes it, `low + k * step` in decimal:
    Optuna's arithmetic in floats gives 0.30000000000000004 for 3 * 0.1 (so `when: {p: 0.3}` never held and
    its parameter was never set, without a word; trials.csv showed the long number). Any other value, or one
    off the steps, as it is."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    steps = round((value - low) / step)
    exact = float(Decimal(str(low)) + steps * Decimal(str(step)))
    return exact if math.isclose(exact, value, rel_tol=1e-9, abs_tol=step * 1e-9) else value


def drawn(params: Mapping[str, Any], space: Mapping[str, Param], fixed: Mapping[str, Any]) -> bool:
    """Whether a trial with `params` has drawn all its values: each parameter is set, or switched off by
    a condition on values it has. Parameters are drawn in order, so by the time a condition is read here each
    searched parameter it names is set or switched off itself (a missing value, as `suggest` reads it: the
    brute-force search ran a point again and again where a condition read one, `nesterov` under a `momentum`
    that adam never set). `params` may be stored ones (`trial.params`): a list or mapping choice's label reads
    as the choice, as conditions name it (`{ne: [16, 8]}` held for the label "[16, 8]": brute force took the
    trial for one that had not drawn all its values, and ran its configuration again until n_trials)."""
    values = {
        **fixed,
        **{k: as_written(space[k], v) if k in space else v for k, v in decode_params(params, space).items()},
    }
    for name, param in space.items():
        if name in params:
            continue
        if not param.when or all_hold(param.when, values):
            return False
    return True
