"""Notes on a search space that runs but may not search what its author meant, printed before trial 0: a
parameter of one value, a searched seed, device or thread count, a searched MLP width that trials with fewer
layers never use, a grid that repeats the configurations of conditional parameters, CMA-ES or GP over a space
of few values, whose trials repeat configurations already run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna

from hpotool.conditions import all_hold, holds
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.formatting import format_choice
from hpotool.param_values import grid_choices, value_count
from hpotool.sampler_checks import grid_search_space
from hpotool.search_space import CategoricalParam, FloatParam, IntParam, Param
from hpotool.suggestion import as_written

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


def single_choice_notes(opt: OptimizeConfig, opt_path: str) -> list[str]:
    """A note per parameter of one value (a categorical of one choice, a range whose low is its high) that
    fixes a value the run config could hold: one under a `when:` sets it only where the condition holds,
    and one below a section searched whole (as `refine` writes them) must stand beside each chosen section,
    so those are left alone."""
    notes = []
    for path, p in opt.search_space.items():
        if p.when or any(path.startswith(f"{section}.") for section in opt.search_space):
            continue
        if isinstance(p, CategoricalParam) and len(p.choices) == 1:
            value = format_choice(p.choices[0])
            notes.append(
                f"{opt_path}: search_space.{path} has one choice, {value}: every trial uses it and nothing is "
                f"searched; set {path}: {value} in the run config, or list more choices"
            )
        elif isinstance(p, IntParam | FloatParam) and p.low == p.high:
            value = format_choice(p.low)
            notes.append(
                f"{opt_path}: search_space.{path} has low = high = {value}: every trial uses it and nothing is "
                f"searched; set {path}: {value} in the run config, or widen the range"
            )
    return notes


def width_notes(run: RunConfig, opt: OptimizeConfig, opt_path: str) -> list[str]:
    """A note per searched width of the built-in MLP (`model.hidden.2`) that trials of a searched
    `model.layers` too small to use it still draw: the trial stores a width it never trained, and the sampler
    learns from it (one no trial uses is refused, `space_effects`)."""
    layers = opt.search_space.get("model.layers")
    if layers is None or run.model.name != "mlp" or {"model", "model.name"} & opt.search_space.keys():
        return []
    if isinstance(layers, IntParam):
        counts: list[Any] = list(range(layers.low, layers.high + 1, layers.step))
    elif isinstance(layers, CategoricalParam):
        counts = [c for c in layers.choices if isinstance(c, int) and not isinstance(c, bool)]
    else:
        return []
    notes = []
    for path, p in opt.search_space.items():
        section, _, rest = path.partition(".")
        key, _, index = rest.partition(".")
        if section != "model" or key != "hidden" or not index.isdigit():
            continue
        condition = (p.when or {}).get("model.layers")
        short = [n for n in counts if n <= int(index) and (condition is None or holds(condition, n))]
        if short:
            drawn = " or ".join(map(str, short))
            notes.append(
                f"{opt_path}: search_space.{path} is drawn in trials of model.layers {drawn}, whose MLP has fewer "
                f"than {int(index) + 1} hidden layers and never uses it; add when: {{model.layers: {{ge: "
                f"{int(index) + 1}}}}} to it, so those trials neither store nor learn from a width they did not "
                f"train"
            )
    return notes


def seed_notes(run: RunConfig, opt: OptimizeConfig, opt_path: str) -> list[str]:
    """A note for a searched `seed`: usually a mistake (trials then differ by luck as well as by their values),
    sometimes meant (how much does the seed matter?), so the run goes on; `data.split_seed`, which scores each
    trial on other data, is refused (`space_effects`)."""
    notes = []
    if "seed" in opt.search_space:
        notes.append(
            f"{opt_path}: search_space.seed searches the seed: each trial trains with another one, so trials "
            f"differ by luck as well as by their values, and the best may be the luckiest; drop it to compare "
            f"values fairly (every trial then trains with the run config's seed, {run.seed}); train-from-best "
            f"--seeds N shows how much the seed moves the best trial's metric"
        )
    return notes


# Run config keys that change how fast a trial trains, not what it learns or measures
_SPEED_KEYS = ("device", "torch_threads")


def speed_notes(run: RunConfig, opt: OptimizeConfig, opt_path: str) -> list[str]:
    """A note per searched `device` or `torch_threads`, which change how fast hpotool's Trainer trains a
    trial, not what it learns: trials alike in their other values measure the same metrics (up to rounding),
    and the sampler learns nothing from them. Left alone where the study optimizes or constrains
    `epoch_time`, which they do change (searching for speed), and with a user's training function, which
    reads the run config as it likes."""
    from hpotool.constraints import parse_constraint

    measured = {*opt.objectives, *(parse_constraint(c).metric for c in opt.constraints)}
    if run.trainer is not None or "epoch_time" in measured:
        return []
    metrics = " and ".join(opt.objectives)
    return [
        f"{opt_path}: search_space.{path} changes how fast a trial trains, not what it learns: trials alike in "
        f"their other values measure the same {metrics}, so the sampler learns nothing from it; set {path} "
        f"in the run config and drop it from the search (or optimize epoch_time to search for speed)"
        for path in _SPEED_KEYS
        if path in opt.search_space
    ]


def final_override_notes(opt: OptimizeConfig, opt_path: str) -> list[str]:
    """A note per `final.overrides` path that sets a searched parameter (or a key of a section searched
    whole, or a section one is searched in): every final run trains with the override, not with the value
    its trial won with. Meant for a searched fidelity (`data.subset_fraction: 1.0`), so a note, not a
    refusal; a fidelity is named as such, as the data a trial trains on, and left alone."""
    notes = []
    for path, value in opt.final.overrides.items():
        searched = [
            s for s in opt.search_space if s == path or path.startswith(f"{s}.") or s.startswith(f"{path}.")
        ]
        if searched and not path.startswith("data."):
            notes.append(
                f"{opt_path}: final.overrides.{path}: {format_choice(value)} replaces the searched "
                f"{', '.join(searched)}: train-from-best trains each trial with it, not with the value the trial "
                f"ran (and won) with; drop it from final.overrides to train the best trial as it ran"
            )
    return notes


def grid_notes(opt: OptimizeConfig, sampler: BaseSampler) -> tuple[str, ...]:
    """A note where the grid sampler searches conditional parameters: it runs each of their values also where
    the condition does not hold, so those trials repeat one configuration. A condition that holds at every
    grid point (it reads a value the run config fixes, or every value the grid gives the parameter it reads)
    repeats none: such a space had the note all the same.

    The grid is the one `make_sampler` built the sampler with (`grid_search_space`, which the sampler's
    building checked already): Optuna's grid sampler keeps its grid in a private attribute."""
    if not isinstance(sampler, optuna.samplers.GridSampler):
        return ()
    grid = grid_search_space(opt.sampler.kwargs, opt.search_space, "sampler")
    conditional = [path for path, p in opt.search_space.items() if p.when and _may_fail(p.when, opt, grid)]
    return (
        (
            f"the grid sampler runs every value of {', '.join(conditional)} also where its condition does not "
            f"hold, so those trials repeat one configuration; bruteforce runs each configuration once",
        )
        if conditional
        else ()
    )


def _may_fail(when: dict[str, Any], opt: OptimizeConfig, grid: dict[str, list[Any]]) -> bool:
    """Whether the condition `when` fails at some point of the grid `grid`: a parameter it reads has a grid
    value that fails it, or is itself conditional (absent at some points), or lies in a section searched
    whole. A value the run config fixes is the same at every point: it holds there (one that fails is never
    drawn, at no point)."""
    space = opt.search_space
    for key, condition in when.items():
        if any(key.startswith(f"{path}.") for path in space):  # a key of a section searched whole
            return True
        if key in space and (space[key].when or any(not holds(condition, v) for v in grid.get(key, ()))):
            return True
    return False


# A numeric parameter of at most this many values is one CMA-ES's rounding collapses: it draws a continuous
# value (its spread starts at a sixth of the range) and rounds it, so draws of 4 values land on one or two;
# in a space of at most _FEW_CONFIGURATIONS its trials then repeat whole configurations (16: 7 of them run in
# 30 trials, TPE all 16), in a larger one mostly that parameter's value
_FEW_VALUES = 10
_FEW_CONFIGURATIONS = 100


# A conditional space whose product of value counts is at most this has its configurations counted one by
# one (`_reachable`), each parameter only where its conditions hold; a larger one says "at most" the product
_COUNTED_MAX = 10_000


def configuration_count(space: Mapping[str, Param]) -> int | None:
    """How many configurations `space` holds, the product of its parameters' value counts (a conditional
    parameter counted as if its condition always held: at most that many); None where a parameter is
    continuous (a float without step), which gives no finite set of configurations."""
    total = 1
    for p in space.values():
        n = value_count(p)
        if n is None:
            return None
        total *= n or 1
    return total


def configurations_text(space: Mapping[str, Param], fixed: Mapping[str, Any] | None = None) -> str | None:
    """How many configurations `space` holds, in words; None for a space with a continuous parameter. A
    conditional space's (`fixed`: the base run config's `leaf_values`, which its conditions may read) counted
    where each parameter's conditions hold, as trials draw them, if its product is at most _COUNTED_MAX;
    otherwise, or without `fixed`, "at most" the product: it said "at most 192" of a space of 84."""
    counted = counted_configurations(space, fixed)
    if counted is None:
        return None
    total, exact = counted
    return _in_words(total, "" if exact else "at most ")


def counted_configurations(
    space: Mapping[str, Param], fixed: Mapping[str, Any] | None = None
) -> tuple[int, bool] | None:
    """How many configurations `space` holds, and whether exactly (`configurations_text`): a conditional
    space's counted where its conditions hold if its product is at most _COUNTED_MAX and `fixed` is given,
    else the product, at most that many. None for a space with a continuous parameter."""
    total = configuration_count(space)
    if total is None:
        return None
    if not any(p.when for p in space.values()):
        return total, True
    if fixed is None or total > _COUNTED_MAX:
        return total, False
    return _reachable(space, fixed), True


def _reachable(space: Mapping[str, Param], fixed: Mapping[str, Any]) -> int:
    """How many configurations `space` (finite, a conditional one) holds: its parameters in order, each set
    to each of its values where its conditions hold on the values set before it and then `fixed`, as
    `suggestion.suggest` reads them, and left out where they fail. At most `configuration_count` leaves."""
    params = list(space.items())
    values = {
        path: list(p.choices) if isinstance(p, CategoricalParam) else grid_choices(p) for path, p in params
    }

    def count(i: int, read: dict[str, Any]) -> int:
        if i == len(params):
            return 1
        path, p = params[i]
        if p.when and not all_hold(p.when, {**fixed, **read}):
            return count(i + 1, read)
        return sum(count(i + 1, {**read, path: as_written(p, v)}) for v in values[path])

    return count(0, {})


def _in_words(total: int, at_most: str = "") -> str:
    """`total`, a count of configurations, in words (`configurations_text`)."""
    return f"{at_most}{total:,} configuration{'' if total == 1 else 's'}"


def repeat_notes(
    opt: OptimizeConfig, sampler: BaseSampler, opt_path: str, fixed: Mapping[str, Any]
) -> tuple[str, ...]:
    """A note where the sampler repeats configurations already run, each trained again with the same values
    (to the same result or not: that rests on the trainer, which a note before the run cannot know), with no
    word: `cmaes` over a space of few configurations with a numeric parameter of few values (it draws them
    continuously and rounds: model.layers 1..4 ran 2 in five trials of eight, and its search narrows onto one
    configuration; its few configurations are counted where their conditions hold, as the note names them:
    the product of the choices kept it from a space of 72 whose product is 120), and `gp` over only
    categorical parameters (it may propose a configuration it has run; 32 configurations ran 15 in 25 trials,
    TPE 18). Where a parameter is continuous, no configuration repeats.
    `fixed`: the base run config's `leaf_values`, which conditions on keys not searched read."""
    space = opt.search_space
    counted = counted_configurations(space, fixed)
    if counted is None:
        return ()
    # the configurations trials can reach, where counted: a conditional space of 72 (a product of 120) repeats
    # as one of 72 does, and the note's "each of the space's 72 configurations" names that count
    total = counted[0]
    if isinstance(sampler, optuna.samplers.CmaEsSampler) and total <= _FEW_CONFIGURATIONS:
        few = [
            f"{path} ({n} values)"
            for path, p in space.items()
            if isinstance(p, IntParam | FloatParam)
            and not p.when
            and 1 < (n := value_count(p) or 0) <= _FEW_VALUES
        ]
        if few:
            return (
                f"{opt_path}: sampler cmaes draws {', '.join(few)} as a continuous value rounded to "
                f"{'its values' if len(few) == 1 else 'their values'}, and no searched parameter is "
                f"continuous: its trials repeat configurations already run, training the same values again, "
                f"often one trial after trial; use tpe, or grid or bruteforce, which run each of the "
                f"space's {configurations_text(space, fixed)} once",
            )
    if isinstance(sampler, optuna.samplers.GPSampler) and all(
        isinstance(p, CategoricalParam) for p in space.values()
    ):
        return (
            f"{opt_path}: sampler gp over only categorical parameters ({', '.join(space)}: "
            f"{configurations_text(space, fixed)}) "
            f"may propose a configuration already run, training the same values again; use tpe, or "
            f"bruteforce, which runs each configuration once",
        )
    return ()
