"""The two configs a user writes, as frozen pydantic models.

`RunConfig` is one complete training run. `OptimizeConfig` is a study: what to measure, how to search,
and the search space, keyed by dotted RunConfig paths. Both are validated once at load time; any change
(a trial's overrides, a CLI flag) builds a new, validated instance. `config_files` reads them from YAML.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hpotool.components import WARMUP_SCHEDULES
from hpotool.conditions import holds
from hpotool.config_fields import BUDGET_GIVEN, Frozen, Integer, Seed, no_boolean
from hpotool.formatting import format_choice, format_params
from hpotool.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, minimized_by_default
from hpotool.near_names import did_you_mean
from hpotool.nested_space import flatten_space
from hpotool.optimize_sections import FinalConfig, PrunerConfig, SamplerConfig, TrackingConfig
from hpotool.param_values import contains, values_text
from hpotool.run_sections import (
    FUNCTION_TRAINS,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainerConfig,
)
from hpotool.search_space import Param

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# A study name ending in a database file's suffix is a file name given as the study's name: `a.db` made
# studies/a.db.db, and hpotool commands given `--study-name a` found no study.
_DATABASE_SUFFIXES = ("db", "sqlite", "sqlite3")
_STUDY_NAME_MAX = 255 - len(".db-journal")  # SQLite writes its journal beside the file


class RunConfig(Frozen):
    """One complete training run."""

    project: str = Field("hpotool", description="Project name; runs are saved under runs/<project>/.")
    seed: Seed = Field(0, description="Seed for torch, numpy and Python's random.")
    device: str = Field("auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
    torch_threads: Annotated[int | None, no_boolean(int)] = Field(
        None,
        ge=1,
        description="CPU threads torch may use; null keeps torch's default. 1 is fastest for small models.",
    )
    data: DataConfig = Field(default_factory=lambda: DataConfig(), description="The dataset and its split.")
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(), description="The model.")
    optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(), description="The optimizer."
    )
    scheduler: SchedulerConfig = Field(default_factory=lambda: SchedulerConfig(), description="LR schedule.")
    loss: LossConfig = Field(default_factory=lambda: LossConfig(), description="The loss function.")
    epochs: Integer = Field(10, ge=1, description="Epochs to train.")
    batch_size: Integer = Field(64, ge=1, description="Samples per optimizer step.")
    grad_clip: Annotated[float | None, no_boolean(float, " (null: no clipping)")] = Field(
        None, gt=0, description="Clip the gradient norm to this value; null: no clipping."
    )
    trainer: TrainerConfig | None = Field(
        None, description="Train with your own function instead of hpotool's Trainer (see examples/)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _sections_of_a_function(cls, data: Any, handler: ModelWrapValidatorHandler[RunConfig]) -> RunConfig:
        """With `trainer:`, the data, model, optimizer, scheduler and loss sections are not checked against
        their components (`FUNCTION_TRAINS`), as `_check_warmup` checks no schedule: the function reads them
        itself, if at all."""
        if not (isinstance(data, dict) and data.get("trainer") is not None):
            return handler(data)
        token = FUNCTION_TRAINS.set(True)
        try:
            return handler(data)
        finally:
            FUNCTION_TRAINS.reset(token)

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {format_choice(v)}")
        return v

    @model_validator(mode="after")
    def _check_monitor(self) -> RunConfig:
        """`scheduler.monitor` names an epoch metric hpotool's Trainer measures; not with a user's training
        function, whose own metric names (val_f1) the section may carry for it to read."""
        monitor = self.scheduler.monitor
        known = list(dict.fromkeys((*CLASSIFICATION_METRICS, *REGRESSION_METRICS)))
        if self.trainer is None and monitor is not None and monitor not in known:
            raise ValueError(
                f"scheduler.monitor: {monitor!r} is not an epoch metric{did_you_mean(monitor, known)}; choose "
                f"one of: {', '.join(known)}"
            )
        return self

    @model_validator(mode="after")
    def _check_warmup(self) -> RunConfig:
        """A built-in schedule's warm-up ends before the run does (checked again for every trial's and every
        command line's epochs), and starts from a share of the lr torch's LinearLR takes. Not with a user's
        training function: it runs its own loop, hpotool builds no schedule for it, and checks none of the
        scheduler section (`user_trainer_checks.schedule_note` says so), monitor included."""
        if self.scheduler.name not in WARMUP_SCHEDULES or self.trainer is not None:
            return self
        args = self.scheduler.model_extra or {}
        warmup, start = args.get("warmup_epochs", 0), args.get("warmup_start", 0.1)
        if isinstance(warmup, int) and not isinstance(warmup, bool):
            if warmup < 0:
                raise ValueError(f"scheduler.warmup_epochs: must be 0 (no warm-up) or more, got {warmup}")
            if warmup >= self.epochs:
                raise ValueError(
                    f"scheduler.warmup_epochs: {warmup} is not shorter than the run (epochs: {self.epochs}), so "
                    f"the {self.scheduler.name!r} schedule would never start; use at most {self.epochs - 1}, "
                    f"or more epochs"
                )
        if isinstance(start, int | float) and not isinstance(start, bool) and not 0 < start <= 1:
            raise ValueError(
                f"scheduler.warmup_start: the warm-up starts at warmup_start x lr, so it must be greater "
                f"than 0 and at most 1, got {start}"
            )
        return self


def _as_spec(v: Any) -> Any:
    """Accept `sampler: tpe` as shorthand for `sampler: {name: tpe}`."""
    return {"name": v} if isinstance(v, str) else v


class OptimizeConfig(Frozen):
    """One study: where it is stored, what it optimizes, how it searches and over what."""

    study_name: str = Field(description="Name of the study; also names its SQLite file under studies/.")
    storage: str | None = Field(
        None, description="Optuna storage URL; null: sqlite:///studies/<study_name>.db (folder created)."
    )
    n_trials: int | None = Field(
        20,
        gt=0,
        validation_alias=AliasChoices("n_trials", "trials"),
        description="Finished (complete or pruned) trials the study aims for, in total across runs and workers; "
        "null: as many as the timeout allows.",
    )
    timeout: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")
    seed: int | None = Field(None, description="Seeds the sampler unless its kwargs set a seed.")
    metric: str = Field(
        "val_loss", description="The per-epoch metric to optimize (val_loss, val_accuracy, ...)."
    )
    direction: Literal["minimize", "maximize"] = Field(
        "minimize", description="minimize or maximize the metric."
    )
    metrics: list[str] | None = Field(
        None, description="Multi-objective: several metrics (e.g. [val_loss, n_params]); use with directions."
    )
    directions: list[Literal["minimize", "maximize"]] | None = Field(
        None, description="Multi-objective: one direction per entry of metrics."
    )
    sampler: SamplerConfig = Field(
        default_factory=lambda: SamplerConfig(), description="How to pick parameters."
    )
    pruner: PrunerConfig = Field(
        default_factory=lambda: PrunerConfig(), description="When to stop bad trials."
    )
    constraints: list[str] = Field(
        default_factory=list,
        description='Limits on measured values, e.g. ["n_params <= 200000"]; infeasible trials are marked.',
    )
    tracking: TrackingConfig | None = Field(None, description="Log every trial to MLflow (optional extra).")
    enqueue: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Known-good parameter sets (dotted path -> value) to try first; ones already in the study are skipped.",
    )
    search_space: dict[str, Param] = Field(
        description="Dotted RunConfig path -> parameter, in suggestion order."
    )
    final: FinalConfig = Field(
        default_factory=lambda: FinalConfig(),
        description="How train-from-best turns the best trial into the final run (epochs, seeds, overrides).",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_trial_count(cls, data: Any) -> Any:
        if isinstance(data, dict) and "n_trials" in data and "trials" in data:
            raise ValueError("give either 'n_trials' or 'trials' (the same setting), not both")
        return data

    @field_validator("search_space", mode="before")
    @classmethod
    def _flatten_space(cls, v: Any) -> Any:
        return flatten_space(v)

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _accept_bare_name(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None and info.field_name == "pruner":  # `pruner: null`, as for storage and timeout: none
            return {"name": "nop"}
        return _as_spec(v)

    @field_validator("study_name")
    @classmethod
    def _check_study_name(cls, v: str) -> str:
        if not v:
            raise ValueError(
                "is empty; give the study a name, e.g. mnist (its file is then studies/mnist.db)"
            )
        if not _STUDY_NAME.match(v) or ".." in v:
            raise ValueError(
                f"{v!r} may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter, "
                f"digit or '_' (no '/', '..', spaces or control characters), since it names files under studies/"
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

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):  # `gt=0` lets .inf through: a run that never ends
            raise ValueError(
                f"must be a finite number of seconds, got {v}; give e.g. timeout: 3600, or timeout: null "
                f"for no time limit (with n_trials set)"
            )
        return v

    @field_validator("seed")
    @classmethod
    def _check_seed(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v < 2**32:
            raise ValueError(f"must be from 0 to {2**32 - 1} (what Optuna's samplers take), got {v}")
        return v

    @field_validator("search_space")
    @classmethod
    def _check_space(cls, v: dict[str, Param]) -> dict[str, Param]:
        if not v:
            raise ValueError("the search space is empty; add at least one parameter")
        return v

    @field_validator("constraints")
    @classmethod
    def _check_constraints(cls, v: list[str]) -> list[str]:
        from hpotool.constraints import parse_constraint

        for text in v:
            parse_constraint(text)
        return v

    @model_validator(mode="after")
    def _check_budget(self, info: ValidationInfo) -> OptimizeConfig:
        if self.n_trials is None and self.timeout is None and not (info.context or {}).get(BUDGET_GIVEN):
            raise ValueError(
                "n_trials: null runs trials until the timeout, and timeout is null too; give n_trials a number, "
                "or timeout: SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _check_objectives(self) -> OptimizeConfig:
        if self.metrics is None and self.directions is None:
            return self
        if self.metrics is None or self.directions is None:
            raise ValueError(f"metrics and directions go together: {self._missing_list()}")
        if len(self.metrics) != len(self.directions) or len(self.metrics) < 2:
            raise ValueError(
                f"metrics and directions need the same length, at least 2 (got {len(self.metrics)} and "
                f"{len(self.directions)}); for one objective use metric and direction"
            )
        twice = next((m for i, m in enumerate(self.metrics) if m in self.metrics[:i]), None)
        if twice is not None:
            raise ValueError(f"metrics: {twice} is given twice; each objective needs its own metric")
        return self

    def _missing_list(self) -> str:
        """What to write where one of metrics and directions is given: the other list, as long as it."""
        if self.metrics is not None:
            given = self.direction if "direction" in self.model_fields_set else "minimize"
            guess = [
                "minimize" if minimized_by_default(m) else "maximize" if m == "val_accuracy" else given
                for m in self.metrics
            ]
            single = (
                f", in place of direction: {self.direction} (direction: goes with metric:, one objective)"
                if "direction" in self.model_fields_set
                else ""
            )
            return (
                f"metrics: {format_choice(list(self.metrics))} needs directions: [...], one per metric, such as "
                f"directions: {format_choice(guess)}{single}"
            )
        return (
            f"directions: {format_choice(list(self.directions or []))} needs metrics: [...], one per direction; "
            f"for one objective write metric: and direction:"
        )

    @property
    def objectives(self) -> list[str]:
        """The metric of each objective."""
        return list(self.metrics) if self.metrics else [self.metric]

    @property
    def study_directions(self) -> list[Literal["minimize", "maximize"]]:
        """The direction of each objective."""
        return list(self.directions) if self.directions else [self.direction]

    @property
    def multi_objective(self) -> bool:
        return self.metrics is not None

    @model_validator(mode="after")
    def _check_conditions(self) -> OptimizeConfig:
        order = list(self.search_space)
        for i, (name, param) in enumerate(self.search_space.items()):
            for path in param.when or {}:
                if path == name:
                    raise ValueError(f"search_space.{name}.when: a parameter cannot depend on itself")
                if path in order[i + 1 :]:
                    raise ValueError(
                        f"search_space.{name}.when: {path!r} is suggested after {name!r}; conditions may only "
                        f"refer to earlier parameters (move {path!r} above {name!r})"
                    )
        return self

    @model_validator(mode="after")
    def _name_section_choices(self) -> OptimizeConfig:
        """A whole section in `enqueue:`, a `when:` condition or a grid's values (`sampler.kwargs.
        search_space`), written as it builds (`{name: adam, lr: 0.001}`), as the choice that builds it
        (`{name: adam}`): the queued trial stores that choice's label, the condition compares it with the
        choice a trial drew, and the grid runs that choice."""
        from hpotool.sections import SECTIONS, choice_named

        if not any(path in SECTIONS for path in self.search_space):
            return self

        def named(path: str, value: Any) -> Any:
            param = self.search_space.get(path)
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
            for name, p in self.search_space.items()
        }
        # a section's keys the same set gives below it (optimizer.lr) replace the choice's own in its trial
        enqueue = [
            {
                path: v if (param := space.get(path)) is None else choice_named(path, param, v, params, space)
                for path, v in params.items()
            }
            for params in self.enqueue
        ]
        for i, params in enumerate(enqueue):  # written apart, named alike: one configuration queued twice
            same = next(
                (j for j in range(i) if enqueue[j] == params and self.enqueue[j] != self.enqueue[i]), None
            )
            if same is not None:
                raise ValueError(
                    f"enqueue.{i}: {format_params(self.enqueue[i])} is the set enqueue.{same} gives "
                    f"({format_params(self.enqueue[same])}): its sections build the same choices "
                    f"({format_params(params)}), so the study would train it twice; drop one"
                )
        sampler, grid = self.sampler, self.sampler.kwargs.get("search_space")
        if isinstance(grid, dict):
            named_grid = {
                path: [named(path, v) for v in values] if isinstance(values, list) else values
                for path, values in grid.items()
            }
            kwargs = {**sampler.kwargs, "search_space": named_grid}
            sampler = sampler if named_grid == grid else sampler.model_copy(update={"kwargs": kwargs})
        if enqueue == self.enqueue and space == self.search_space and sampler == self.sampler:
            return self
        # model_copy: the values are the choices the fields validated, and fields_set stays as written
        return self.model_copy(update={"enqueue": enqueue, "search_space": space, "sampler": sampler})

    @model_validator(mode="after")
    def _check_enqueue(self) -> OptimizeConfig:
        for i, params in enumerate(self.enqueue):
            # a new study would queue and train it twice, a resume skip it as tried: refused as one
            same = next((j for j in range(i) if self.enqueue[j] == params), None)
            if same is not None:
                raise ValueError(
                    f"enqueue.{i}: {format_params(params)} is enqueue.{same} again, so a new study would train "
                    f"it twice; drop one"
                )
            for path, value in params.items():
                param = self.search_space.get(path)
                if param is None:
                    raise ValueError(
                        f"enqueue.{i}: {path!r} is not in the search space{did_you_mean(path, self.search_space)}"
                    )
                if not contains(param, value):
                    raise ValueError(
                        f"enqueue.{i}: {format_params({path: value})} lies outside its search space "
                        f"({values_text(param)})"
                    )
                for on, condition in (param.when or {}).items():
                    if on in params and not holds(condition, params[on]):
                        raise ValueError(
                            f"enqueue.{i}: {format_params({path: value})} would not be used: its condition {on}: "
                            f"{format_choice(condition)} does not hold for {format_params({on: params[on]})}; drop "
                            f"{path} from this set or change {on}"
                        )
        return self

    @property
    def storage_url(self) -> str:
        """The storage URL, the default filled in."""
        return self.storage or f"sqlite:///studies/{self.study_name}.db"
