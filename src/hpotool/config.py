"""The two configs a user writes, as frozen pydantic models, and their loaders.

`RunConfig` is one complete training run. `OptimizeConfig` is a study: what to measure, how to search,
and the search space, keyed by dotted RunConfig paths. Both are validated once at load time; any change
(a trial's overrides, a CLI flag) builds a new, validated instance.
"""

from __future__ import annotations

import json
import math
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from hpotool.components import WARMUP_SCHEDULES, Kind, check_component
from hpotool.conditions import holds
from hpotool.errors import HpoError
from hpotool.formatting import format_choice, format_params, yaml_bool_hint
from hpotool.near_names import closest, did_you_mean, edit_distance
from hpotool.search_space import PARAM_TYPES, Param, contains, values_text
from hpotool.yamlfile import read_yaml_mapping

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# A study name ending in a database file's suffix is a file name given as the study's name: `a.db` made
# studies/a.db.db, and hpotool commands given `--study-name a` found no study.
_DATABASE_SUFFIXES = ("db", "sqlite", "sqlite3")
_STUDY_NAME_MAX = 255 - len(".db-journal")  # SQLite writes its journal beside the file

CLASSIFICATION_METRICS = ("train_loss", "val_loss", "val_accuracy")
REGRESSION_METRICS = ("train_loss", "val_loss", "val_rmse", "val_mae")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CHECK_COMPONENTS = "check_components"  # validation context key: resolve and check each component
# True while a RunConfig with `trainer:` validates: its sections are for the user's function to read, and hpotool
# builds none of them, so it does not import their components to check them (the built-in defaults, the
# digits data, the mlp and adam, import torch, which a function that never uses torch would pay ~2 s for).
_FUNCTION_TRAINS: ContextVar[bool] = ContextVar("function_trains", default=False)
BUDGET_GIVEN = (
    "budget_given"  # validation context key: --n-trials or --timeout sets the budget the file leaves null
)


class _Component(BaseModel):
    """A section: `name` plus the component's own arguments, flat."""

    model_config = ConfigDict(frozen=True, extra="allow")
    kind: ClassVar[Kind]
    # Declared fields that hpotool uses itself rather than passing to the component.
    own_fields: ClassVar[frozenset[str]] = frozenset({"name"})
    # Fields added after studies were stored: left out of a dump at their default (None), so a config and a
    # study's fingerprint written before they existed stay the same.
    quiet_defaults: ClassVar[frozenset[str]] = frozenset()

    name: str

    @model_serializer(mode="wrap")
    def _leave_out_quiet_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in self.quiet_defaults:
            if key in data and data[key] is None:
                del data[key]
        return data

    @property
    def kwargs(self) -> dict[str, Any]:
        """The arguments passed to the component's constructor."""
        declared = {k: getattr(self, k) for k in type(self).model_fields if k not in self.own_fields}
        return {**declared, **(self.model_extra or {})}

    @model_validator(mode="after")
    def _check_signature(self, info: ValidationInfo) -> _Component:
        if (info.context or {}).get(CHECK_COMPONENTS, True) and not _FUNCTION_TRAINS.get():
            own = sorted(self.own_fields - {"name"})  # a misspelt interval was suggested none of them
            check_component(self.kind, self.name, self.kwargs, own)
        return self


def _no_boolean(kind: type[int | float], hint: str = "") -> BeforeValidator:
    """A number setting given true or false, which pydantic would take as 1 or 0 (`epochs: yes` trained one
    epoch, `batch_size: on` batches of one): refused before the field's own validation, as a component's
    number argument is. Used as `Annotated[int, _no_boolean(int)]`."""
    word = "integer" if kind is int else "number"

    def refuse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(
                f"Input should be a valid {word}, got {format_choice(value)}; YAML reads an unquoted yes, no, "
                f"on, off, true or false as a boolean: write a number{hint}"
            )
        return value

    return BeforeValidator(refuse)


# Number settings that refuse a YAML boolean; `Annotated[int | None, _no_boolean(int)]` where null is taken.
Integer = Annotated[int, _no_boolean(int)]
Number = Annotated[float, _no_boolean(float)]

TORCH_SEEDS = (-(2**63), 2**64 - 1)  # what torch.manual_seed and torch.Generator.manual_seed take


def _torch_seed(value: int) -> int:
    """A seed torch can take: one outside its range passed the config and failed at the first training step
    as 'Overflow when unpacking long long; check that the loss fits this classification task'."""
    low, high = TORCH_SEEDS
    if not low <= value <= high:
        raise ValueError(f"must be from {low} to {high} (what torch.manual_seed takes), got {value}")
    return value


Seed = Annotated[int, _no_boolean(int), AfterValidator(_torch_seed)]


class DataConfig(_Component):
    """Which data to train on and how to split it; other keys go to the dataset function."""

    kind: ClassVar[Kind] = "data"
    own_fields: ClassVar[frozenset[str]] = frozenset(
        {"name", "val_fraction", "subset_fraction", "split_seed"}
    )

    name: str = Field("digits", description="Built-in dataset (digits, regression) or package.module:Name.")
    val_fraction: Number = Field(0.2, gt=0, lt=1, description="Share of the data held out for validation.")
    subset_fraction: Number = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the training split to train on (fast trials on part of the data).",
    )
    split_seed: Seed = Field(
        0, description="Seed of the train/validation split, fixed so trials compare fairly."
    )


class ModelConfig(_Component):
    """The network; other keys go to its constructor (`hidden`, `dropout`, ...)."""

    kind: ClassVar[Kind] = "model"
    name: str = Field("mlp", description="Built-in model (mlp, cnn) or package.module:Name.")


class OptimizerConfig(_Component):
    """The torch optimizer; other keys (`momentum`, `betas`, ...) go to its constructor."""

    kind: ClassVar[Kind] = "optimizer"
    name: str = Field("adam", description="adam, adamw, sgd, rmsprop, or package.module:Name.")
    lr: Number = Field(1e-3, gt=0, description="Learning rate.")
    weight_decay: Number = Field(0.0, ge=0, description="Weight decay (L2 penalty).")

    @property
    def kwargs(self) -> dict[str, Any]:
        """The arguments passed to the optimizer; a weight_decay of 0 (none) is left out for a user's
        optimizer that takes no such argument, which would otherwise be unusable."""
        out = super().kwargs
        if out.get("weight_decay") == 0.0:
            from hpotool.components import resolve_component
            from hpotool.errors import HpoError
            from hpotool.signatures import accepted_kwargs

            try:
                names, var_kw = accepted_kwargs(resolve_component("optimizer", self.name))
            except HpoError:
                return out  # the name itself is wrong: the check says so
            if "weight_decay" not in names and not var_kw:
                del out["weight_decay"]
        return out


class SchedulerConfig(_Component):
    """The learning-rate schedule; other keys go to the scheduler."""

    kind: ClassVar[Kind] = "scheduler"
    own_fields: ClassVar[frozenset[str]] = frozenset({"name", "interval", "monitor"})
    quiet_defaults: ClassVar[frozenset[str]] = frozenset({"monitor"})
    name: str = Field("none", description="none, cosine, step, onecycle, plateau, or package.module:Name.")
    interval: Literal["epoch", "step"] | None = Field(
        None,
        description="Step the scheduler every epoch or every batch; null: the built-in's own (epoch otherwise).",
    )
    monitor: str | None = Field(
        None,
        description="The epoch metric a schedule that watches one (plateau) is given: train_loss, val_loss, "
        "val_accuracy (set mode: max), val_rmse or val_mae; null: val_loss.",
    )


class LossConfig(_Component):
    """The training loss; other keys go to its constructor."""

    kind: ClassVar[Kind] = "loss"
    name: str = Field(
        "auto",
        description="auto (cross_entropy for classification, mse for regression), cross_entropy, mse, l1, "
        "smooth_l1, huber, bce_with_logits (two classes, one logit), or package.module:Name.",
    )


class TrainerConfig(BaseModel):
    """Your own training function instead of hpotool's Trainer; other keys are yours (`trainer.alpha`)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    function: str = Field(
        description="package.module:function(config, run_config, report) -> final metrics dict"
    )

    @field_validator("function")
    @classmethod
    def _check_function(cls, v: str) -> str:
        from hpotool.import_paths import import_object

        try:
            fn = import_object(v)
        except HpoError as exc:
            raise ValueError(str(exc)) from None
        if not callable(fn):
            raise ValueError(f"{v!r} is not a function")
        return v

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RunConfig(_Frozen):
    """One complete training run."""

    project: str = Field("hpotool", description="Project name; runs are saved under runs/<project>/.")
    seed: Seed = Field(0, description="Seed for torch, numpy and Python's random.")
    device: str = Field("auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
    torch_threads: Annotated[int | None, _no_boolean(int)] = Field(
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
    grad_clip: Annotated[float | None, _no_boolean(float, " (null: no clipping)")] = Field(
        None, gt=0, description="Clip the gradient norm to this value; null: no clipping."
    )
    trainer: TrainerConfig | None = Field(
        None, description="Train with your own function instead of hpotool's Trainer (see examples/)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _sections_of_a_function(cls, data: Any, handler: ModelWrapValidatorHandler[RunConfig]) -> RunConfig:
        """With `trainer:`, the data, model, optimizer, scheduler and loss sections are not checked against
        their components (`_FUNCTION_TRAINS`), as `_check_warmup` checks no schedule: the function reads them
        itself, if at all."""
        if not (isinstance(data, dict) and data.get("trainer") is not None):
            return handler(data)
        token = _FUNCTION_TRAINS.set(True)
        try:
            return handler(data)
        finally:
            _FUNCTION_TRAINS.reset(token)

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
        scheduler section (`user_trainer.schedule_note` says so), monitor included."""
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


class SamplerConfig(_Frozen):
    """An Optuna sampler by short name or import path, with its keyword arguments."""

    name: str = Field(
        "tpe", description="tpe, rung_tpe, random, grid, cmaes, gp, qmc, nsga2, nsga3, bruteforce, or a path."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the sampler class."
    )


class PrunerConfig(_Frozen):
    """An Optuna pruner by short name or import path, with its keyword arguments."""

    name: str = Field(
        "median",
        description="median, percentile, successive_halving, hyperband, threshold, patient, wilcoxon, nop, or a path.",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the pruner class.")

    @property
    def is_nop(self) -> bool:
        """No pruning: `nop`, or Optuna's NopPruner by its import path."""
        return is_nop_pruner(self.name)


_NOP_PRUNER_PATHS = frozenset({"optuna.pruners.NopPruner", "optuna.pruners._nop.NopPruner"})


def is_nop_pruner(name: str) -> bool:
    """Whether a pruner name means no pruning: `nop`, or `optuna.pruners.NopPruner` (`:` or `.` before the
    class), which must behave as the short name (several metrics, the report's epochs, the note on trials)."""
    return name == "nop" or name.replace(":", ".") in _NOP_PRUNER_PATHS


def _as_spec(v: Any) -> Any:
    """Accept `sampler: tpe` as shorthand for `sampler: {name: tpe}`."""
    return {"name": v} if isinstance(v, str) else v


_PARAM_KEYS = frozenset({"low", "high", "min", "max", "step", "log", "choices", "when"})


def _refuse_stray_param_keys(space: dict[str, Any], prefix: str) -> None:
    """A parameter's own key written one level out, after it (`high: 0.1` under `optimizer.lr:`, at its
    column): one line saying to indent it, instead of "optimizer.lr.high: required key is missing" and
    "search_space.high: expected a mapping ... a fixed value belongs in the run config"."""
    above: str | None = None
    strays: list[str] = []
    for key, value in space.items():
        is_param = isinstance(value, dict) and "type" in value
        if above is not None and key in _PARAM_KEYS | {"type"} and not is_param:
            strays.append(key)
            continue
        if strays:
            break
        above = key if is_param else None
    if above is not None and strays:
        one = len(strays) == 1
        raise ValueError(
            f"{', '.join(strays)} after {prefix}{above} {'sits' if one else 'sit'} at the level of the parameters; "
            f"indent {'it' if one else 'them'} under {prefix}{above}: (in the column of its type:)"
        )


def flatten_space(space: Any, prefix: str = "") -> Any:
    """Turn a space nested by RunConfig section into the canonical dotted form.

    A mapping with a `type` key is a parameter; any other mapping is a section whose keys continue the path:
    `{optimizer: {lr: {type: float, ...}}}` becomes `{"optimizer.lr": {type: float, ...}}`.
    """
    if not isinstance(space, dict):
        return space
    _refuse_stray_param_keys(space, prefix)
    flat: dict[str, Any] = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "type" not in value:
            _refuse_stray_param_keys(
                value, f"{path}."
            )  # a section, nested: {optimizer: {lr: {...}, high: 0.1}}
        if (
            isinstance(value, dict)
            and "type" not in value
            and value
            and (
                all(isinstance(v, dict) for v in value.values())
                # a section that also holds a fixed value (name: sgd): that value is the mistake to report
                or (any(isinstance(v, dict) for v in value.values()) and not _PARAM_KEYS & value.keys())
            )
        ):
            for sub_path, sub in flatten_space(value, f"{path}.").items():
                if sub_path in flat:
                    raise ValueError(f"parameter {sub_path!r} is given twice")
                flat[sub_path] = sub
        else:
            if path in flat:
                raise ValueError(f"parameter {path!r} is given twice")
            flat[path] = value
    return flat


def _flatten_overrides(data: Any, prefix: str = "") -> Any:
    """`{data: {subset_fraction: 1.0}}` and `{data.subset_fraction: 1.0}` both become the dotted form."""
    if not isinstance(data, dict):
        return data
    flat: dict[str, Any] = {}
    for key, value in data.items():
        nested = isinstance(value, dict) and value
        pairs = _flatten_overrides(value, f"{prefix}{key}.") if nested else {f"{prefix}{key}": value}
        for path, v in pairs.items():
            if path in flat:
                raise ValueError(f"override {path!r} is given twice")
            flat[path] = v
    return flat


class FinalConfig(_Frozen):
    """How the winning trial's config becomes the final run (`train-from-best`); flags override it."""

    epochs: int | None = Field(None, ge=1, description="Epochs of the final run; null: the trial's epochs.")
    seeds: int | None = Field(
        None, ge=1, description="Seeds to train (seed, seed+1, ...) and average; null: one."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted RunConfig path -> value for the final run, e.g. data.subset_fraction: 1.0.",
    )

    @field_validator("overrides", mode="before")
    @classmethod
    def _flatten(cls, v: Any) -> Any:
        return _flatten_overrides(v)

    @model_validator(mode="after")
    def _check_epochs_once(self) -> FinalConfig:
        if self.epochs is not None and "epochs" in self.overrides:
            raise ValueError("epochs is given both as final.epochs and in final.overrides; keep one")
        return self


class MlflowConfig(_Frozen):
    """Where to log trials in MLflow."""

    tracking_uri: str = Field(
        description="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000."
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the study name.")


class TrackingConfig(_Frozen):
    """Experiment trackers that receive every finished trial."""

    mlflow: MlflowConfig | None = Field(None, description="Log every trial as an MLflow run.")


class OptimizeConfig(_Frozen):
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
                "minimize" if _minimized_by_default(m) else "maximize" if m == "val_accuracy" else given
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


# ---------------------------------------------------------------- loading and error messages


def _submodel(cls: Any, part: str | int) -> Any:
    """The model class one step down `loc` from `cls`, or None."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        field = cls.model_fields.get(str(part))
        return field.annotation if field is not None else None
    return None


# Keys a flat hyperparameter dict holds, with the run config section they go under (the built-in models',
# torch's optimizers', the schedules' and losses' arguments).
_SECTION_OF = {
    **dict.fromkeys(("val_fraction", "subset_fraction", "split_seed"), "data"),
    **dict.fromkeys(
        ("hidden", "layers", "activation", "dropout", "norm", "channels", "kernel_size"), "model"
    ),
    **dict.fromkeys(("lr", "weight_decay", "momentum", "betas", "eps", "nesterov"), "optimizer"),
    **dict.fromkeys(("warmup_epochs", "warmup_start", "monitor", "interval"), "scheduler"),
    **dict.fromkeys(("label_smoothing",), "loss"),
}


# Parameter types as Optuna's old suggest_* names, hyperopt, Ray Tune and W&B sweeps spell them.
_OTHER_TYPES = {
    **dict.fromkeys(("uniform", "real", "double", "number"), "write type: float"),
    **dict.fromkeys(
        ("loguniform", "log_uniform", "log_uniform_values", "reciprocal"), "write type: float, log: true"
    ),
    **dict.fromkeys(("discrete_uniform", "quniform"), "write type: float, with step: ..."),
    "qloguniform": "write type: float, log: true (a log scale takes no step)",
    **dict.fromkeys(("randint", "int_uniform", "qrandint"), "write type: int (step: for a stride)"),
    **dict.fromkeys(
        ("choice", "choices", "category", "enum", "grid_search"),
        "write type: categorical, with choices: [...]",
    ),
    **dict.fromkeys(("bool", "boolean"), "write type: categorical, with choices: [true, false]"),
}

# What other tools call a parameter's keys (Ray Tune, W&B sweeps, hyperopt): `values: [16, 32]`, `lower:`.
_KEY_SYNONYMS = {
    **dict.fromkeys(("values", "options", "categories", "items"), "choices"),
    **dict.fromkeys(("lower", "lower_bound", "minimum", "start"), "low"),
    **dict.fromkeys(("upper", "upper_bound", "maximum", "stop", "end"), "high"),
    **dict.fromkeys(("q", "increment"), "step"),
    **dict.fromkeys(("log_scale", "logscale", "log_uniform"), "log"),
}


def _key_suggestion(key: str, valid: list[str]) -> str:
    """`" (did you mean 'x'?)"` for a misspelt key, or for another tool's name of a parameter's key."""
    near = did_you_mean(key, valid)
    if near or _KEY_SYNONYMS.get(key) not in valid:
        return near
    return f" (did you mean {_KEY_SYNONYMS[key]!r}?)"


# Arguments of Optuna's create_study and Study.optimize that an Optuna script passes, which hpotool takes
# from elsewhere: what to write instead.
_OPTUNA_ARGS = {
    "load_if_exists": "hpotool always resumes a study of that name (Optuna's load_if_exists=True): drop the key; "
    "for a new study give another study_name",
    "n_jobs": "run trials in parallel processes with optimize --workers N",
    "show_progress_bar": "hpotool shows its progress; optimize --quiet hides it",
    "catch": "a trial that raises is marked FAIL and the study goes on; optimize --max-failures K stops after K "
    "failures in a row",
}


def _misplaced_key_hint(root: type[BaseModel], key: str) -> str:
    """Where a top-level key that is not the file's own belongs: under a run config section (`lr:` beside
    `optimizer:`), or in the other config (`epochs:` in the optimize config, `n_trials:` in the run
    config). Empty where neither holds it."""
    if root is RunConfig and key in _SECTION_OF:
        section = _SECTION_OF[key]
        return f"; {key} goes under {section}: (write {section}: {{..., {key}: ...}}, searched as {section}.{key})"
    if root is RunConfig and (key in OptimizeConfig.model_fields or key == "trials"):
        return f"; {key} is an optimize config key: set it in the file given as --optimize-config"
    if root is OptimizeConfig and key in _OPTUNA_ARGS:
        return f"; {_OPTUNA_ARGS[key]}"
    if root is OptimizeConfig and (key in RunConfig.model_fields or key in _SECTION_OF):
        path = key if key in RunConfig.model_fields else f"{_SECTION_OF[key]}.{key}"
        return (
            f"; {key} is a run config key: set {path} in the file given as --run-config, or search it under "
            f"search_space: ({path}: {{type: ..., ...}})"
        )
    return ""


def _valid_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    cls: Any = root
    parts = list(loc)
    while parts and cls is not None:
        part = parts.pop(0)
        if cls is OptimizeConfig and part == "search_space":
            parts.pop(0) if parts else None  # the parameter's path
            tag = parts.pop(0) if parts else None
            from hpotool.search_space import CategoricalParam, FloatParam, IntParam

            cls = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}.get(str(tag))
            continue
        cls = _submodel(cls, part)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return [
            f.validation_alias.choices[0] if isinstance(f.validation_alias, AliasChoices) else n  # type: ignore[misc]
            for n, f in cls.model_fields.items()
        ]
    return []


def _display_loc(loc: tuple[str | int, ...]) -> str:
    parts = [str(p) for p in loc]
    # Pydantic puts the discriminator's tag in the location (search_space.x.float.low): drop it.
    if len(parts) >= 3 and parts[0] == "search_space" and parts[2] in PARAM_TYPES:
        del parts[2]
    return ".".join(parts)


_MAPPING_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})
_PARAM_KEYS = frozenset({"type", "low", "high", "min", "max", "step", "log", "choices", "when"})


def _under_indented(errors: list[Any], root: type[BaseModel]) -> tuple[list[str], list[Any]]:
    """A section (or a search-space parameter) left empty with its keys one level out, beside it:

        data:               search_space:
        name: digits          optimizer.lr:
                              type: float

    One line per such section, naming the keys to indent, instead of "expected a mapping, got null" and a
    line per stray key ("unknown key 'name'", "search_space.type: expected a mapping"). Returns those lines
    and the errors they leave to report."""
    top = _valid_keys(root, ())
    lines: list[str] = []
    for prefix in ((), ("search_space",)):
        empty = [
            e
            for e in errors
            if e["type"] in _MAPPING_ERRORS
            and e["input"] is None
            and len(e["loc"]) == len(prefix) + 1
            and tuple(e["loc"][:-1]) == prefix
        ]
        if len(empty) != 1:
            continue
        if prefix:
            strays = [
                e
                for e in errors
                if e["type"] in _MAPPING_ERRORS
                and e["input"] is not None
                and len(e["loc"]) == 2
                and tuple(e["loc"][:-1]) == prefix
                and e["loc"][-1] in _PARAM_KEYS
            ]
        else:
            strays = [
                e
                for e in errors
                if e["type"] == "extra_forbidden"
                and len(e["loc"]) == 1
                and not did_you_mean(str(e["loc"][0]), top)
            ]
        if not strays:
            continue
        section = str(empty[0]["loc"][-1])
        keys = ", ".join(str(e["loc"][-1]) for e in strays)
        lines.append(
            f"{_display_loc(tuple(empty[0]['loc']))}: is empty, and {keys} after it "
            f"{'sits' if len(strays) == 1 else 'sit'} at its level; indent {'it' if len(strays) == 1 else 'them'} "
            f"under {section}: (further right than {section})"
        )
        errors = [e for e in errors if e is not empty[0] and not any(e is x for x in strays)]
    return lines, errors


def _null_section_hint(section: str) -> str:
    """How to write a run config section left null (`scheduler: null`, meant as no schedule): its default
    by leaving it out, or a name."""
    field = RunConfig.model_fields.get(section)
    default = getattr(field.get_default(call_default_factory=True), "name", None) if field else None
    if default is None:
        return ""
    if section == "scheduler":
        return "; for no schedule leave scheduler out, or write scheduler: {name: none}"
    return f"; leave {section} out for its default ({{name: {default}}}), or write {section}: {{name: ...}}"


def keep_validator_context(exc: ValidationError) -> None:
    """Chain to `exc` the exception a validator raised for its first error that was raised while handling
    another (`import_object`'s, for a user's module that failed to import), so `--debug`'s traceback
    (`errors.unsuppress_context`) reaches the user's own frames: pydantic keeps a validator's error only as
    its message, and `hpotool --debug optimize` on a `trainer.function`, model or dataset whose module raised
    at import showed hpotool's frames and pydantic's alone."""
    for error in exc.errors(include_url=False):
        raised = (error.get("ctx") or {}).get("error")
        if isinstance(raised, BaseException) and (raised.__cause__ or raised.__context__) is not None:
            if exc.__context__ is None:
                exc.__context__ = raised
            return


def error_lines(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One `location: message` line per validation error, worded for a config author."""
    errors = exc.errors(include_url=False)
    lines, errors = _under_indented(errors, root)
    # A misspelt key also makes its correct spelling "missing": report the misspelling alone.
    misspelt = {
        (tuple(e["loc"][:-1]), _key_suggestion(str(e["loc"][-1]), _valid_keys(root, tuple(e["loc"][:-1]))))
        for e in errors
        if e["type"] == "extra_forbidden"
    }
    errors = [
        e
        for e in errors
        if not (
            e["type"] == "missing"
            and (tuple(e["loc"][:-1]), f" (did you mean {e['loc'][-1]!r}?)") in misspelt
        )
    ]
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            valid = _valid_keys(root, loc[:-1])
            msg = f"unknown key {key!r}{_key_suggestion(key, valid)}"
            misplaced = _misplaced_key_hint(root, key) if not loc[:-1] else ""
            if misplaced:
                msg += misplaced
            elif valid:
                msg += f"; valid keys: {', '.join(valid)}"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag", "")
            msg = f"unknown type {tag!r}{did_you_mean(str(tag), PARAM_TYPES)}; use one of: {', '.join(PARAM_TYPES)}"
            if not did_you_mean(str(tag), PARAM_TYPES) and str(tag).lower() in _OTHER_TYPES:
                msg = f"unknown type {tag!r}; {_OTHER_TYPES[str(tag).lower()]}"
        elif kind == "union_tag_not_found":
            msg = f"a parameter needs a 'type' ({', '.join(PARAM_TYPES)})"
        elif kind in {"model_type", "model_attributes_type", "dict_type"}:
            msg = f"expected a mapping, got {format_choice(err['input'])}"
            if len(loc) == 2 and loc[0] == "search_space":
                msg += _param_hint(str(loc[1]), err["input"])
            elif len(loc) == 1 and isinstance(err["input"], str) and root is RunConfig:
                key = "function" if loc[0] == "trainer" else "name"
                msg += f"; write {loc[0]}: {{{key}: {err['input']}}}"
            elif len(loc) == 1 and err["input"] is None and root is RunConfig:  # scheduler: null for none
                msg += _null_section_hint(str(loc[0]))
            elif loc == ("pruner",) and err["input"] is False:  # pruner: off (YAML reads off and no as false)
                msg += "; for no pruning write pruner: null, or pruner: {name: nop}"
        elif "input" in err and not kind.startswith("value_error") and kind != "assertion_error":
            if (
                kind == "literal_error"
            ):  # pydantic quotes the allowed words as Python does: spell them as YAML
                msg = f"Input should be {err['ctx']['expected'].replace(chr(39), '')}"
            shown = format_choice(err["input"])
            shown = shown if len(shown) < 60 else shown[:57] + "..."
            # "got a number with a fractional part": the value goes after it, not in a second "got"
            msg = f"{msg} ({shown})" if ", got " in msg else f"{msg}, got {shown}"
            msg += yaml_bool_hint(err["input"], kind)
            if (
                kind == "list_type"
                and isinstance(err["input"], str)
                and err["input"].lstrip().startswith("[")
            ):
                msg = msg.replace(f"got {shown}", f"got the text {json.dumps(err['input'])}")
                msg += "; drop the quotes around the list"
        where = _display_loc(loc[:-1] if kind == "extra_forbidden" else loc)
        lines.append(f"{where}: {msg}" if where else msg)
    return _one_line_per_missing_package(lines)


def _one_line_per_missing_package(lines: list[str]) -> list[str]:
    """Sections whose components come from one package that does not import (hpotool run from the wrong
    folder) share one line: the first, naming the other sections."""
    first: dict[str, int] = {}
    also: dict[int, list[str]] = {}
    out: list[str] = []
    for line in lines:
        missing = re.search(r"No module named '([^']+)'; imports resolve", line)
        if missing is None:
            out.append(line)
        elif missing.group(1) in first:
            also[first[missing.group(1)]].append(line.partition(":")[0])
        else:
            first[missing.group(1)] = len(out)
            also[len(out)] = []
            out.append(line)
    for i, sections in also.items():
        if sections:
            out[i] += f" ({', '.join(sections)} {'needs' if len(sections) == 1 else 'need'} it too)"
    return out


def _param_hint(path: str, value: Any) -> str:
    """How to write a search-space entry given as a bare list or value."""
    if value is None:
        return (
            f"; give what to search on its line ({path}: {{type: float, low: ..., high: ...}}) or indented "
            f"under it, or drop it"
        )
    if isinstance(value, list):
        return f"; write a list of choices as {{type: categorical, choices: {format_choice(value)}}}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        search = "{type: categorical, choices: [...]}"
    else:
        search = f"{{type: {type(value).__name__}, low: ..., high: ...}}"
    return f"; a fixed value belongs in the run config ({path}: {format_choice(value)}); to search it, give {search}"


def validate_config(
    cls: type[_Frozen],
    data: dict[str, Any],
    source: str,
    *,
    check_components: bool = True,
    budget_given: bool = False,
) -> Any:
    """Validate `data` as `cls`; errors become one `HpoError` naming `source` and each key.

    `check_components=False` skips importing each component to check its arguments: for configs a
    study has already trained (export), where the check would only import torch. `budget_given`: the
    command line gives n_trials or timeout, so a file that leaves both null is complete.
    """
    try:
        return cls.model_validate(
            data, context={CHECK_COMPONENTS: check_components, BUDGET_GIVEN: budget_given}
        )
    except ValidationError as exc:
        lines = error_lines(exc, cls)
        keep_validator_context(exc)
        raise HpoError(f"{source}: " + f"\n{source}: ".join(lines)) from None


def _refuse_other_kind(
    raw: dict[str, Any], path: Path, expected: type[_Frozen], other: type[_Frozen], fix: str
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
    result: RunConfig = validate_config(RunConfig, raw, str(path))
    return result


_ERRORS = ("train_loss", "val_loss", "val_rmse", "val_mae")  # hpotool's own: lower is better, always
_MINIMIZED = (*_ERRORS, "n_params", "epoch_time")


def _minimized_by_default(metric: str) -> bool:
    """Whether leaving out `direction` (minimize) can only mean what the user wants: a loss, an error, the
    model's size or time. Accuracy, or a trainer's own score, would be searched for its worst value."""
    return metric in _MINIMIZED or metric.endswith("loss")


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
    _refuse_objectives_misspelled(raw, path)
    result: OptimizeConfig = validate_config(OptimizeConfig, raw, str(path), budget_given=budget_given)
    if not result.multi_objective and "direction" not in raw and not _minimized_by_default(result.metric):
        add = "maximize (or direction: minimize)" if "accuracy" in result.metric else "maximize or minimize"
        builtin = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *_MINIMIZED)
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
        if direction == "maximize" and metric in _ERRORS:
            key = f"directions[{i}]" if result.multi_objective else "direction"
            raise HpoError(
                f"{path}: {key}: maximize would search for the largest {metric}, the worst model; use minimize"
            )
    if result.multi_objective:  # what the file says, beyond what the model can see after defaults
        if {"metric", "direction"} & raw.keys():
            raise HpoError(
                f"{path}: give metric/direction (one objective) or metrics/directions (several), not both"
            )
        natural = [
            "minimize" if _minimized_by_default(m) else "maximize" if m == "val_accuracy" else None
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
