"""The two configs a user writes, as frozen pydantic models.

`RunConfig` is one complete training run. `OptimizeConfig` is a study: what to measure, how to search,
and the search space, keyed by dotted RunConfig paths. Both are validated once at load time; any change
(a trial's overrides, a CLI flag) builds a new, validated instance. `config_files` reads them from YAML.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# pydantic exports this from its top level only since 2.11; functional_validators has it since 2.0.
from pydantic.functional_validators import ModelWrapValidatorHandler

from hpotool import optimize_checks
from hpotool.components import WARMUP_SCHEDULES
from hpotool.config_fields import INT32_MAX, Epochs, Frozen, Integer, Seed, empty_if_null, no_boolean_or_nan
from hpotool.formatting import format_choice
from hpotool.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from hpotool.near_names import did_you_mean
from hpotool.nested_space import flatten_space
from hpotool.optimize_sections import FinalConfig, PrunerConfig, SamplerConfig, TrackingConfig
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

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class RunConfig(Frozen):
    """One complete training run."""

    project: str = Field("hpotool", description="Project name; runs are saved under runs/<project>/.")
    seed: Seed = Field(0, description="Seed for torch, numpy and Python's random.")
    device: str = Field("auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
    torch_threads: Annotated[int | None, no_boolean_or_nan(int)] = Field(
        None,
        ge=1,
        # what torch.set_num_threads takes (a C int): more passed the config and failed every trial with
        # "Overflow when unpacking long long"
        le=INT32_MAX,
        description="CPU threads torch may use; null keeps torch's default. 1 is fastest for small models.",
    )
    data: DataConfig = Field(default_factory=lambda: DataConfig(), description="The dataset and its split.")
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(), description="The model.")
    optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(), description="The optimizer."
    )
    scheduler: SchedulerConfig = Field(default_factory=lambda: SchedulerConfig(), description="LR schedule.")
    loss: LossConfig = Field(default_factory=lambda: LossConfig(), description="The loss function.")
    epochs: Epochs = Field(10, ge=1, description="Epochs to train.")
    batch_size: Integer = Field(64, ge=1, description="Samples per optimizer step.")
    grad_clip: Annotated[float | None, no_boolean_or_nan(float, " (null: no clipping)")] = Field(
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
        if not DEVICE_PATTERN.match(v):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {format_choice(v)}")
        return v

    @model_validator(mode="after")
    def _check_monitor(self) -> RunConfig:
        """`scheduler.monitor` names an epoch metric hpotool's Trainer measures; not with a user's training
        function, whose own metric names (val_f1) the section may carry for it to read. The choices say which
        data measures which: the task is known only once the data loads (a regression run was offered
        val_accuracy, which `lr_schedule` then refused for its task)."""
        monitor = self.scheduler.monitor
        known = list(dict.fromkeys((*CLASSIFICATION_METRICS, *REGRESSION_METRICS)))
        if self.trainer is None and monitor is not None and monitor not in known:
            both = [m for m in CLASSIFICATION_METRICS if m in REGRESSION_METRICS]
            only = [
                f"{', '.join(m for m in metrics if m not in both)} ({task} data)"
                for task, metrics in (
                    ("classification", CLASSIFICATION_METRICS),
                    ("regression", REGRESSION_METRICS),
                )
            ]
            raise ValueError(
                f"scheduler.monitor: {monitor!r} is not an epoch metric{did_you_mean(monitor, known)}; choose "
                f"one of: {', '.join(both)} (any data); {'; '.join(only)}"
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


class OptimizeConfig(Frozen):
    """One study: where it is stored, what it optimizes, how it searches and over what."""

    study_name: str = Field(description="Name of the study; also names its SQLite file under studies/.")
    storage: str | None = Field(
        None, description="Optuna storage URL; null: sqlite:///studies/<study_name>.db (folder created)."
    )
    n_trials: Annotated[int | None, no_boolean_or_nan(int)] = Field(
        20,
        gt=0,
        validation_alias=AliasChoices("n_trials", "trials"),
        description="Finished (complete or pruned) trials the study aims for, in total across runs and workers; "
        "null: as many as the timeout allows.",
    )
    timeout: Annotated[float | None, no_boolean_or_nan(float, " of seconds")] = Field(
        None, gt=0, description="Stop starting new trials after this many seconds."
    )
    seed: Annotated[int | None, no_boolean_or_nan(int)] = Field(
        None, description="Seeds the sampler unless its kwargs set a seed."
    )
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
    constraints: Annotated[list[str], empty_if_null(list)] = Field(
        default_factory=list,
        description='Limits on measured values, e.g. ["n_params <= 200000"]; infeasible trials are marked.',
    )
    tracking: TrackingConfig | None = Field(None, description="Log every trial to MLflow (optional extra).")
    enqueue: Annotated[list[dict[str, Any]], empty_if_null(list)] = Field(
        default_factory=list,
        description="Known-good parameter sets (dotted path -> value) to try first; ones already in the study are skipped.",
    )
    search_space: dict[str, Param] = Field(
        description="Dotted RunConfig path -> parameter, in suggestion order."
    )
    final: Annotated[FinalConfig, empty_if_null(dict)] = Field(
        default_factory=lambda: FinalConfig(),
        description="How train-from-best turns the best trial into the final run (epochs, seeds, overrides).",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_trial_count(cls, data: Any) -> Any:
        return optimize_checks.one_trial_count(data)

    @field_validator("search_space", mode="before")
    @classmethod
    def _flatten_space(cls, v: Any) -> Any:
        return flatten_space(v)

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _accept_bare_name(cls, v: Any, info: ValidationInfo) -> Any:
        return optimize_checks.bare_name(v, info.field_name)

    @field_validator("study_name")
    @classmethod
    def _check_study_name(cls, v: str) -> str:
        return optimize_checks.check_study_name(v)

    @field_validator("storage")
    @classmethod
    def _check_storage(cls, v: str | None) -> str | None:
        return optimize_checks.check_storage(v)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout_text(cls, v: Any) -> Any:
        return optimize_checks.timeout_text(v)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, v: float | None) -> float | None:
        return optimize_checks.check_timeout(v)

    @field_validator("seed")
    @classmethod
    def _check_seed(cls, v: int | None) -> int | None:
        return optimize_checks.check_seed(v)

    @field_validator("search_space")
    @classmethod
    def _check_space(cls, v: dict[str, Param]) -> dict[str, Param]:
        return optimize_checks.check_space(v)

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraint_texts(cls, v: Any) -> Any:
        from hpotool.constraints import constraint_texts

        return constraint_texts(v)

    @field_validator("constraints")
    @classmethod
    def _check_constraints(cls, v: list[str]) -> list[str]:
        return optimize_checks.check_constraints(v)

    @model_validator(mode="after")
    def _check_budget(self, info: ValidationInfo) -> OptimizeConfig:
        optimize_checks.check_budget(self, info.context)
        return self

    @model_validator(mode="after")
    def _check_objectives(self) -> OptimizeConfig:
        optimize_checks.check_objectives(self)
        return self

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
        optimize_checks.check_conditions(self.search_space)
        return self

    @model_validator(mode="after")
    def _name_section_choices(self) -> OptimizeConfig:
        return optimize_checks.name_section_choices(self)

    @model_validator(mode="after")
    def _check_enqueue(self) -> OptimizeConfig:
        optimize_checks.check_enqueue(self.enqueue, self.search_space)
        return self

    @property
    def storage_url(self) -> str:
        """The storage URL, the default filled in."""
        return self.storage or f"sqlite:///studies/{self.study_name}.db"
