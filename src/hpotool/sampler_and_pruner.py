"""The study's sampler and pruner, made and checked before trial 0: the sampler can sample the space for the
study's objectives, a queued trial leaves the grid sampler nothing to pick (`unset_by`), and the pruner can
stop a trial within the epochs trials train, a threshold pruner the worse trials only."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna

from hpotool.conditions import all_hold
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.errors import HpoError
from hpotool.factories import make_pruner
from hpotool.kwarg_notes import kwarg_notes
from hpotool.overrides import leaf_values
from hpotool.param_values import boundary_values
from hpotool.pruner_reach import check_pruner_reach, most_epochs
from hpotool.study_sampler import study_sampler
from hpotool.suggestion import as_written, suggest
from hpotool.user_code import refusing_exit, user_frame

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler


def sampler_and_pruner(run: RunConfig, opt: OptimizeConfig) -> tuple[BaseSampler, BasePruner, list[str]]:
    """The study's sampler and pruner, checked, and a note per deprecated argument Optuna warned of.

    Raises:
        HpoError: a sampler that cannot sample this study, a queued set the grid sampler would fail, a
            pruner that could never stop a trial.
    """
    with kwarg_notes() as deprecated:  # Optuna's FutureWarnings on the kwargs, as notes
        sampler = study_sampler(opt, fixed=leaf_values(run))
    check_sampler_samples(opt, leaf_values(run))
    if isinstance(sampler, optuna.samplers.GridSampler):
        _check_grid_enqueue(opt, leaf_values(run))
    with kwarg_notes() as pruner_deprecated:
        pruner = make_pruner(  # several objectives: the pruner the file sets is nop (load_optimize_config)
            "nop" if opt.multi_objective else opt.pruner.name,
            opt.pruner.kwargs if not opt.multi_objective or opt.pruner.is_nop else {},
        )
    deprecated += pruner_deprecated
    if run.trainer is None and not opt.multi_objective:  # a user's fit reports the epochs it likes
        check_pruner_reach(
            pruner,
            opt.pruner.kwargs,
            most_epochs(run.epochs, opt.search_space),
            epochs_searched="epochs" in opt.search_space,
        )
    if not opt.multi_objective:
        check_threshold_side(pruner, opt)
    return sampler, pruner, deprecated


def check_threshold_side(pruner: BasePruner, opt: OptimizeConfig, key: str = "pruner") -> None:
    """Refuse a threshold pruner's bound on the side of the study's better values (`upper` where it maximizes,
    `lower` where it minimizes): Optuna's pruner knows no direction, and stopped the best trials, which, as
    PRUNED, could never be the study's best (`upper: 0.3` on a maximized val_accuracy pruned the trials that
    rose above 0.3, without a word). `patient`'s wrapped pruner is checked under its own key."""
    if isinstance(pruner, optuna.pruners.PatientPruner) and pruner._wrapped_pruner is not None:
        check_threshold_side(pruner._wrapped_pruner, opt, f"{key}.kwargs.wrapped_pruner")
    if not isinstance(pruner, optuna.pruners.ThresholdPruner):
        return
    metric, maximize = opt.metric, opt.direction == "maximize"
    wrong, right = ("upper", "lower") if maximize else ("lower", "upper")
    bound = pruner._upper if maximize else pruner._lower
    if math.isfinite(bound):  # a side left out is infinite
        moves = "rises above" if maximize else "falls below"
        stays = "below" if maximize else "above"
        raise HpoError(
            f"{key}.kwargs.{wrong}: {bound:g} prunes a trial once its {metric} {moves} it, and the study "
            f"{opt.direction}s {metric}: it would stop the best trials; write {right}: {bound:g} to stop those "
            f"that stay {stays} it"
        )


def _check_grid_enqueue(opt: OptimizeConfig, fixed: Mapping[str, Any]) -> None:
    """Refuse a queued set that leaves the grid sampler a searched parameter to pick, which it fails."""
    for i, params in enumerate(opt.enqueue):
        missing = unset_by(params, opt, fixed)
        if missing:
            raise HpoError(
                f"enqueue.{i}: the grid sampler fails a queued set that leaves out a searched parameter; "
                f"add {', '.join(missing)} to it, or drop it"
            )


def unset_by(params: Mapping[str, Any], opt: OptimizeConfig, fixed: Mapping[str, Any]) -> list[str]:
    """The searched parameters a trial enqueued with `params` would still ask the sampler for (those whose
    conditions hold), which Optuna's grid sampler refuses in a queued trial."""
    missing: list[str] = []
    space = opt.search_space
    values = {**fixed, **{k: as_written(space[k], v) if k in space else v for k, v in params.items()}}
    for path, p in space.items():
        if path not in params and (not p.when or all_hold(p.when, values)):
            missing.append(path)
            values[path] = boundary_values(p)[0]  # a later condition may read it
    return missing


def check_sampler_samples(opt: OptimizeConfig, fixed: Mapping[str, Any]) -> None:
    """A fresh sampler as configured proposes one trial of an in-memory study with the study's directions:
    one that cannot handle them or the space (CmaEsSampler with several objectives) fails here, once,
    instead of failing every trial."""
    verbosity = optuna.logging.get_verbosity()
    # No "A new study created in memory" line, nor a warning the probe's sampler logs, which came out raw
    # ("[W 2026-12-06 23:08:54,723] The parameter `optimizer.lr` in Trial#0 is sampled independently ...", GP
    # with n_startup_trials: 0) above the plan: the study's own trial 0 logs it again, made a note (`fallback`).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings(), refusing_exit():
            warnings.simplefilter("ignore")
            probe = optuna.create_study(
                directions=opt.study_directions, sampler=study_sampler(opt, fixed=fixed)
            )
            suggest(probe.ask(), opt.search_space, fixed)
    except HpoError:
        raise
    except Exception as exc:  # a user's sampler may raise anything (a RuntimeError was a traceback)
        objectives = f"{len(opt.objectives)} objectives" if opt.multi_objective else "one objective"
        where = user_frame(exc)
        said = f"{type(exc).__name__}: {exc}"
        # Optuna's own sampler refused the objectives ('CmaEsSampler cannot be used.'): name those that take them.
        # Only that refusal: another error ('tpe' with n_ei_candidates: 0) was told to use tpe
        if opt.multi_objective and _refused_objectives(exc):
            said = f"{said.rstrip('.')}; for several objectives use tpe, nsga2, nsga3, gp, random or qmc"
        raise HpoError(
            f"sampler: {opt.sampler.name!r} cannot sample this study ({objectives}): {said}"
            + (f" (at {where})" if where else "")
        ) from None
    finally:
        optuna.logging.set_verbosity(verbosity)


def _refused_objectives(exc: BaseException) -> bool:
    """`exc` is a sampler's refusal of a multi-objective study: raised by Optuna's
    `BaseSampler._raise_error_if_multi_objective`, which CmaEsSampler calls."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].name == "_raise_error_if_multi_objective"
