"""The checks an OptimizeConfig makes of its fields and across them.

Each `OptimizeConfig` validator is a one-line call into a function here, in the order the model runs them:
the study's name, its timeout and seed, the search space and constraints, the trial budget, the
objectives, the `when:` conditions, sections named as choices, and the `enqueue:` sets. Each raises the
ValueError pydantic words for the config's author.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from hpotool.conditions import holds
from hpotool.config_fields import BUDGET_GIVEN
from hpotool.formatting import format_choice, format_params
from hpotool.metrics import minimized_by_default
from hpotool.near_names import did_you_mean
from hpotool.param_values import contains, number_slip, off_step, values_text
from hpotool.search_space import CategoricalParam, Param
from hpotool.suggestion import as_written

if TYPE_CHECKING:
    from hpotool.config import OptimizeConfig

_STUDY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# A study name ending in a database file's suffix is a file name given as the study's name: `a.db` made
# studies/a.db.db, and hpotool commands given `--study-name a` found no study.
_DATABASE_SUFFIXES = ("db", "sqlite", "sqlite3")
_STUDY_NAME_MAX = 255 - len(".db-journal")  # SQLite writes its journal beside the file


def _outside_fix(param: Param, path: str) -> str:
    """What to do with a queued value outside `path`'s search space: a value in it, or a space that has it."""
    if isinstance(param, CategoricalParam):
        return f"give one of its choices, or add it to search_space.{path}'s choices"
    return f"give a value within it, or widen search_space.{path}"


def one_trial_count(data: Any) -> Any:
    """`n_trials` and its alias `trials`, not both."""
    if isinstance(data, dict) and "n_trials" in data and "trials" in data:
        raise ValueError("give either 'n_trials' or 'trials' (the same setting), not both")
    return data


def bare_name(v: Any, field_name: str | None) -> Any:
    """Accept `sampler: tpe` as shorthand for `sampler: {name: tpe}`; `pruner: null`, as for storage and
    timeout, is none."""
    if v is None and field_name == "pruner":
        return {"name": "nop"}
    return {"name": v} if isinstance(v, str) else v


def _a_study_name(v: str) -> str:
    """`v` made a study name: each character it may not hold an '_', '..' one '.', without the characters a
    name may not start or end with ('a/b' is 'a_b'; 'mnist' where nothing is left)."""
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.\-]", "_", v)).lstrip(".-").rstrip(".")
    return name if name.strip("_") else "mnist"


def check_study_name(v: str) -> str:
    """A name that names its SQLite file under studies/."""
    if not v:
        raise ValueError("is empty; give the study a name, e.g. mnist (its file is then studies/mnist.db)")
    if not _STUDY_NAME.match(v) or ".." in v:
        raise ValueError(
            f"{v!r} may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter, "
            f"digit or '_' (no '/', '..', spaces or control characters), since it names files under studies/; "
            f"name it {_a_study_name(v)!r}, say"
        )
    if v.endswith("."):
        raise ValueError(f"{v!r} ends in '.' (its file would be studies/{v}.db); drop the final '.'")
    if len(v) > _STUDY_NAME_MAX:
        raise ValueError(
            f"is {len(v)} characters long; give at most {_STUDY_NAME_MAX}, since studies/<name>.db-journal must fit "
            f"a file name (255 bytes)"
        )
    stem, dot, suffix = v.rpartition(".")
    if dot and stem and suffix.lower() in _DATABASE_SUFFIXES:
        raise ValueError(
            f"{v!r} ends in .{suffix}, and its default storage adds .db (studies/{v}.db); name the study "
            f"{stem!r} (its file is then studies/{stem}.db)"
        )
    return v


_SECONDS_PER = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)")


def timeout_text(v: Any, option: bool = False) -> Any:
    """A timeout given as text: its digits as they are (pydantic reads `"3600"`), else a ValueError naming
    the seconds to write (`1h`, `1h30m`, `10 minutes`: 3600, 5400, 600) or what the timeout is. `1h` read
    "Input should be a valid number, unable to parse string as a number", saying neither. `option`: the
    value of `--timeout`, whose fix is given on the command line."""
    if not isinstance(v, str):
        return v
    try:
        float(v)
        return v
    except ValueError:
        pass
    verb, key = ("give", "--timeout") if option else ("write", "timeout:")
    seconds = duration_seconds(v)
    if seconds is not None:
        raise ValueError(
            f"{v!r} is not a number of seconds; {verb} {key} {seconds:g} ({v.strip()} in seconds)"
        )
    null = "" if option else ", or timeout: null for no time limit (with n_trials set)"
    raise ValueError(f"{v!r} is not a number of seconds; {verb} one, e.g. {key} 3600 for an hour{null}")


def duration_seconds(text: str) -> float | None:
    """The seconds `1h`, `1h30m`, `90s` or `1.5 hours` spell, or None for text that is no duration."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(_DURATION_PART.sub("", text).split()):
        return None
    if any(unit.lower() not in _SECONDS_PER for _, unit in parts):
        return None
    return sum(float(number) * _SECONDS_PER[unit.lower()] for number, unit in parts)


def check_storage(v: str | None) -> str | None:
    """An empty storage (`storage: ${DB_URL}` templated with nothing) was taken as null: the study went into
    the local SQLite file instead of the shared server meant."""
    if v is not None and not v:
        raise ValueError(
            "is empty; give a storage URL (sqlite:///path.db, postgresql+psycopg://..., ...), or write storage: "
            "null (or leave it out) for sqlite:///studies/<study_name>.db"
        )
    return v


def check_timeout(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):  # `gt=0` lets .inf through: a run that never ends
        raise ValueError(
            f"must be a finite number of seconds, got {v}; give e.g. timeout: 3600, or timeout: null "
            f"for no time limit (with n_trials set)"
        )
    return v


def check_seed(v: int | None) -> int | None:
    if v is not None and not 0 <= v < 2**32:
        raise ValueError(f"must be from 0 to {2**32 - 1} (what Optuna's samplers take), got {v}")
    return v


def check_space(v: dict[str, Param]) -> dict[str, Param]:
    if not v:
        raise ValueError("the search space is empty; add at least one parameter")
    return v


def check_constraints(v: list[str]) -> list[str]:
    """Each constraint reads as one, and once: a constraint given twice (`n_params <= 20000` and
    `n_params<=2e4` too) ran, Optuna warning at trial 0 that "the constraint value is ignored because this
    constraint key='n_params <= 20000' is already set", and the exports listed its value twice."""
    from hpotool.constraints import parse_constraint

    seen: dict[str, str] = {}
    for text in v:
        key = str(parse_constraint(text))  # the name the trial records it under
        if key in seen:
            first = seen[key]
            twice = (
                f"{text!r} is given twice" if first == text else f"{first!r} and {text!r} are both {key!r}"
            )
            raise ValueError(f"{twice}; give each constraint once")
        seen[key] = text
    return v


def check_budget(config: OptimizeConfig, context: Any) -> None:
    """Trials end at a count or a timeout, unless the command line gives the budget (`BUDGET_GIVEN`)."""
    if config.n_trials is None and config.timeout is None and not (context or {}).get(BUDGET_GIVEN):
        raise ValueError(
            "n_trials: null runs trials until the timeout, and timeout is null too; give n_trials a number, "
            "or timeout: SECONDS"
        )


def check_objectives(config: OptimizeConfig) -> None:
    """Several objectives: metrics and directions together, as long as each other, each metric once."""
    metrics, directions = config.metrics, config.directions
    if metrics is None and directions is None:
        return
    if metrics is None or directions is None:
        raise ValueError(f"metrics and directions go together: {_missing_list(config)}")
    if len(metrics) != len(directions) or len(metrics) < 2:
        raise ValueError(
            f"metrics and directions need the same length, at least 2 (got {len(metrics)} and "
            f"{len(directions)}); for one objective use metric and direction"
        )
    twice = next((m for i, m in enumerate(metrics) if m in metrics[:i]), None)
    if twice is not None:
        raise ValueError(f"metrics: {twice} is given twice; each objective needs its own metric")


def _missing_list(config: OptimizeConfig) -> str:
    """What to write where one of metrics and directions is given: the other list, as long as it."""
    if config.metrics is not None:
        given = config.direction if "direction" in config.model_fields_set else "minimize"
        guess = [
            "minimize" if minimized_by_default(m) else "maximize" if m == "val_accuracy" else given
            for m in config.metrics
        ]
        single = (
            f", in place of direction: {config.direction} (direction: goes with metric:, one objective)"
            if "direction" in config.model_fields_set
            else ""
        )
        return (
            f"metrics: {format_choice(list(config.metrics))} needs directions: [...], one per metric, such as "
            f"directions: {format_choice(guess)}{single}"
        )
    return (
        f"directions: {format_choice(list(config.directions or []))} needs metrics: [...], one per direction; "
        f"for one objective write metric: and direction:"
    )


def check_conditions(search_space: dict[str, Param]) -> None:
    """A `when:` condition refers to an earlier parameter, not to its own or a later one."""
    order = list(search_space)
    for i, (name, param) in enumerate(search_space.items()):
        for path in param.when or {}:
            if path == name:
                raise ValueError(f"search_space.{name}.when: a parameter cannot depend on itself")
            if path in order[i + 1 :]:
                raise ValueError(
                    f"search_space.{name}.when: {path!r} is suggested after {name!r}; conditions may only "
                    f"refer to earlier parameters (move {path!r} above {name!r})"
                )


def name_section_choices(config: OptimizeConfig) -> OptimizeConfig:
    """A whole section in `enqueue:`, a `when:` condition, a grid's values (`sampler.kwargs.
    search_space`) or a fixed value (PartialFixedSampler's `sampler.kwargs.fixed_params`), written as it
    builds (`{name: adam, lr: 0.001}`), as the choice that builds it (`{name: adam}`): the queued trial
    stores that choice's label, the condition compares it with the choice a trial drew, and the grid and
    the fixed value run that choice."""
    from hpotool.sections import SECTIONS, choice_named

    if not any(path in SECTIONS for path in config.search_space):
        return config

    def named(path: str, value: Any) -> Any:
        param = config.search_space.get(path)
        return value if param is None else choice_named(path, param, value)

    def named_condition(path: str, condition: Any) -> Any:
        if not isinstance(condition, dict):
            return named(path, condition)
        ((test, operand),) = condition.items()
        if test == "in":
            return {test: [named(path, v) for v in operand]}
        return {test: named(path, operand)}

    space = {
        name: p.model_copy(update={"when": {k: named_condition(k, c) for k, c in p.when.items()}})
        if p.when
        else p
        for name, p in config.search_space.items()
    }
    # a section's keys the same set gives below it (optimizer.lr) replace the choice's own in its trial
    enqueue = [
        {
            path: v if (param := space.get(path)) is None else choice_named(path, param, v, params, space)
            for path, v in params.items()
        }
        for params in config.enqueue
    ]
    for i, params in enumerate(enqueue):  # written apart, named alike: one configuration queued twice
        same = next(
            (j for j in range(i) if enqueue[j] == params and config.enqueue[j] != config.enqueue[i]), None
        )
        if same is not None:
            raise ValueError(
                f"enqueue.{i}: {format_params(config.enqueue[i])} is the set enqueue.{same} gives "
                f"({format_params(config.enqueue[same])}): its sections build the same choices "
                f"({format_params(params)}), so the study would train it twice; drop one"
            )
    sampler, grid = config.sampler, config.sampler.kwargs.get("search_space")
    if isinstance(grid, dict):
        named_grid = {
            path: [named(path, v) for v in values] if isinstance(values, list) else values
            for path, values in grid.items()
        }
        kwargs = {**sampler.kwargs, "search_space": named_grid}
        sampler = sampler if named_grid == grid else sampler.model_copy(update={"kwargs": kwargs})
    fixed = sampler.kwargs.get("fixed_params")  # PartialFixedSampler's
    if isinstance(fixed, dict):
        named_fixed = {  # as in enqueue: a key fixed below the section stands in for the choice's own
            path: v if (param := space.get(path)) is None else choice_named(path, param, v, fixed, space)
            for path, v in fixed.items()
        }
        kwargs = {**sampler.kwargs, "fixed_params": named_fixed}
        sampler = sampler if named_fixed == fixed else sampler.model_copy(update={"kwargs": kwargs})
    if enqueue == config.enqueue and space == config.search_space and sampler == config.sampler:
        return config
    # model_copy: the values are the choices the fields validated, and fields_set stays as written
    return config.model_copy(update={"enqueue": enqueue, "search_space": space, "sampler": sampler})


def check_enqueue(enqueue: list[dict[str, Any]], search_space: dict[str, Param]) -> None:
    """Each queued set once, each of its values in the search space and used by its trial."""
    for i, params in enumerate(enqueue):
        # a new study would queue and train it twice, a resume skip it as tried: refused as one
        same = next((j for j in range(i) if enqueue[j] == params), None)
        if same is not None:
            raise ValueError(
                f"enqueue.{i}: {format_params(params)} is enqueue.{same} again, so a new study would train "
                f"it twice; drop one"
            )
        for path, value in params.items():
            param = search_space.get(path)
            if param is None:
                raise ValueError(
                    f"enqueue.{i}: {path!r} is not in the search space{did_you_mean(path, search_space)}"
                )
            # within the range, off its step: it said 0.15 "lies outside its search space" of [0.0, 0.5], step 0.1
            if not contains(param, value) and (
                slip := number_slip(path, param, value) or off_step(param, value)
            ):
                raise ValueError(f"enqueue.{i}: {path}: {slip}")
            if not contains(param, value):
                raise ValueError(
                    f"enqueue.{i}: {format_params({path: value})} lies outside its search space "
                    f"({values_text(param)}); {_outside_fix(param, path)}"
                )
            for on, condition in (param.when or {}).items():
                ref = search_space.get(on)  # a stepped float as the YAML writes it: a refined stage queues
                # its trial's 0.30000000000000004, which `when: {p: 0.3}` reads as 0.3, as in the trial
                if on in params and not holds(
                    condition, params[on] if ref is None else as_written(ref, params[on])
                ):
                    raise ValueError(
                        f"enqueue.{i}: {format_params({path: value})} would not be used: its condition {on}: "
                        f"{format_choice(condition)} does not hold for {format_params({on: params[on]})}; drop "
                        f"{path} from this set or change {on}"
                    )
