"""Reading the two config files: `load_run_config` and `load_optimize_config` read a YAML file, refuse the
other kind of config and what the models cannot see (an objective's direction left out or the wrong way
round), and validate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.config_fields import Frozen
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.import_hints import imports_for
from hpotool.metrics import (
    CLASSIFICATION_METRICS,
    ERROR_METRICS,
    MINIMIZED_METRICS,
    REGRESSION_METRICS,
    minimized_by_default,
)
from hpotool.near_names import closest, edit_distance
from hpotool.yamlfile import read_yaml_mapping


def _refuse_other_kind(
    raw: dict[str, Any], path: Path, expected: type[Frozen], other: type[Frozen], fix: str
) -> None:
    """An `HpoError` when `raw` has keys only `other` has and none that only `expected` has: the file is the
    other kind of config (the two given the wrong way round). `fix` ends the message."""
    own = set(expected.model_fields) - set(other.model_fields)
    theirs = [k for k in raw if k in other.model_fields and k not in expected.model_fields]
    if theirs and not own & raw.keys():
        shown = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
        kinds = {RunConfig: "a run config", OptimizeConfig: "an optimize config"}
        raise HpoError(f"{path}: this is {kinds[other]} (it has {shown}), not {kinds[expected]}; {fix}")


def load_run_config(path: Path) -> RunConfig:
    """Read and validate a RunConfig YAML file."""
    raw = read_yaml_mapping(path)
    fix = "give a run config (project, data, model, ...) here, and this file as --optimize-config"
    _refuse_other_kind(raw, path, RunConfig, OptimizeConfig, fix)
    with imports_for(path):  # a module not found may be in a folder above the file (an export's)
        result: RunConfig = validate_config(RunConfig, raw, str(path))
    return result


def _refuse_objectives_misspelled(raw: dict[str, Any], path: Path) -> None:
    """`metric: [a, b]` (several objectives under the one-objective key) or `metrics: a` (the other way round):
    one line naming the key to use, where pydantic would say only that a string or a list was expected."""
    for one, several in (("metric", "metrics"), ("direction", "directions")):
        if isinstance(raw.get(one), list):
            raise HpoError(
                f"{path}: {one}: a list is several objectives: write metrics: [...] with directions: [...], "
                f"one direction per metric (or give {one} one value)"
            )
        if isinstance(raw.get(several), str):
            raise HpoError(
                f"{path}: {several}: {format_choice(raw[several])} is one value: for one objective write {one}: "
                f"{raw[several]} ({several} lists several objectives)"
            )


def load_optimize_config(path: Path, *, budget_given: bool = False) -> OptimizeConfig:
    """Read and validate an OptimizeConfig YAML file; `budget_given`: --n-trials or --timeout will set
    the budget (n_trials and timeout may both be null in the file)."""
    raw = read_yaml_mapping(path)
    fix = (
        "give it as --run-config, and an optimize config (study_name, search_space, ...) as --optimize-config"
    )
    _refuse_other_kind(raw, path, OptimizeConfig, RunConfig, fix)
    return optimize_config_of(raw, path, budget_given=budget_given)


def optimize_config_of(raw: dict[str, Any], path: Path, *, budget_given: bool = False) -> OptimizeConfig:
    """The validated OptimizeConfig of a file's mapping `raw` (read from `path`), as `load_optimize_config`
    checks it."""
    _refuse_objectives_misspelled(raw, path)
    with imports_for(path):  # a sampler or pruner of the user's, not found, may be in a folder above it
        result: OptimizeConfig = validate_config(OptimizeConfig, raw, str(path), budget_given=budget_given)
    if not result.multi_objective and "direction" not in raw and not minimized_by_default(result.metric):
        add = "maximize (or direction: minimize)" if "accuracy" in result.metric else "maximize or minimize"
        builtin = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *MINIMIZED_METRICS)
        # A typo is an edit or two away; a metric of the user's own is not one: 'val_f1' was asked whether
        # it meant 'val_mae' (told to fix the name, a user of an F1 might have written val_mae)
        typo = [] if result.metric in builtin else closest(result.metric, dict.fromkeys(builtin), n=1)
        near = f" (did you mean {typo[0]!r}?)" if typo and edit_distance(result.metric, typo[0]) <= 2 else ""
        if near:  # a misspelt val_accuracy: fixing the direction alone would only meet the next error
            raise HpoError(
                f"{path}: metric: {result.metric!r} is not a metric hpotool measures{near}, and direction is "
                f"not given; fix the name, or, for a metric your trainer returns, add direction: {add}"
            )
        raise HpoError(
            f"{path}: direction: not given, so {result.metric} would be minimized (the default); add "
            f"direction: {add}"
        )
    for i, (metric, direction) in enumerate(zip(result.objectives, result.study_directions, strict=True)):
        if direction == "maximize" and metric in ERROR_METRICS:
            key = f"directions[{i}]" if result.multi_objective else "direction"
            if not result.multi_objective and "metric" not in raw:
                # metric deleted or forgotten: "use minimize" would search the default instead of the user's
                raise HpoError(
                    f"{path}: direction: maximize, and metric is not given, so it would search for the largest "
                    f"{metric} (the default metric), the worst model; name the metric to maximize (metric: "
                    f"val_accuracy, or your trainer's), or use minimize"
                )
            raise HpoError(
                f"{path}: {key}: maximize would search for the largest {metric}, the worst model; use minimize"
            )
    if result.multi_objective:  # what the file says, beyond what the model can see after defaults
        if {"metric", "direction"} & raw.keys():
            raise HpoError(
                f"{path}: give metric/direction (one objective) or metrics/directions (several), not both"
            )
        natural = [
            "minimize" if minimized_by_default(m) else "maximize" if m == "val_accuracy" else None
            for m in result.objectives
        ]
        if None not in natural and all(d != n for d, n in zip(result.study_directions, natural, strict=True)):
            # every objective the wrong way round: directions written for the metrics in another order
            wrong = " and ".join(
                f"the {'largest' if d == 'maximize' else 'smallest'} {m}"
                for m, d in zip(result.objectives, result.study_directions, strict=True)
            )
            raise HpoError(
                f"{path}: directions: {format_choice(list(result.study_directions))} would search for {wrong}, the "
                f"worst model on each; each direction goes with the metric in the same place of metrics: "
                f"{format_choice(list(result.objectives))}: write directions: {format_choice(natural)}"
            )
        if not result.pruner.is_nop and "pruner" in raw:
            raise HpoError(
                f"{path}: pruner: {result.pruner.name!r} cannot be used with several metrics (Optuna's pruners "
                f"and Trial.report are single-objective); remove the pruner section or set name: nop"
            )
    return result
