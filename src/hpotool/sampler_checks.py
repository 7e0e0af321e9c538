"""The study's sampler checked before trial 0: that it can sample the space for the study's objectives, and
which searched parameters a queued trial leaves it to pick (Optuna's grid sampler refuses any)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from hpotool.conditions import all_hold
from hpotool.config import OptimizeConfig
from hpotool.errors import HpoError
from hpotool.factories import study_sampler
from hpotool.search_space import boundary_values, suggest


def unset_by(params: Mapping[str, Any], opt: OptimizeConfig, fixed: Mapping[str, Any]) -> list[str]:
    """The searched parameters a trial enqueued with `params` would still ask the sampler for (those whose
    conditions hold), which Optuna's grid sampler refuses in a queued trial."""
    missing: list[str] = []
    values = {**fixed, **params}
    for path, p in opt.search_space.items():
        if path not in params and (not p.when or all_hold(p.when, values)):
            missing.append(path)
            values[path] = boundary_values(p)[0]  # a later condition may read it
    return missing


def check_sampler_samples(opt: OptimizeConfig, fixed: Mapping[str, Any]) -> None:
    """A fresh sampler as configured proposes one trial of an in-memory study with the study's directions:
    one that cannot handle them or the space (CmaEsSampler with several objectives) fails here, once,
    instead of failing every trial."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = optuna.create_study(
                directions=opt.study_directions, sampler=study_sampler(opt, fixed=fixed)
            )
            suggest(probe.ask(), opt.search_space, fixed)
    except (ValueError, TypeError, NotImplementedError) as exc:
        objectives = f"{len(opt.objectives)} objectives" if opt.multi_objective else "one objective"
        raise HpoError(
            f"sampler: {opt.sampler.name!r} cannot sample this study ({objectives}): {type(exc).__name__}: {exc}"
        ) from None
    finally:
        optuna.logging.set_verbosity(verbosity)
