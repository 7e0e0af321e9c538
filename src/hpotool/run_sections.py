"""The run config's component sections: `data`, `model`, `optimizer`, `scheduler` and `loss` (a `name`
plus the component's own arguments, flat, each checked against its component), and `trainer` (a user's
training function)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from hpotool.component_checks import check_component
from hpotool.components import Kind
from hpotool.config_fields import CHECK_COMPONENTS, Number, Seed
from hpotool.errors import HpoError

# True while a RunConfig with `trainer:` validates: its sections are for the user's function to read, and hpotool
# builds none of them, so it does not import their components to check them (the built-in defaults, the
# digits data, the mlp and adam, import torch, which a function that never uses torch would pay ~2 s for).
FUNCTION_TRAINS: ContextVar[bool] = ContextVar("function_trains", default=False)


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
        if (info.context or {}).get(CHECK_COMPONENTS, True) and not FUNCTION_TRAINS.get():
            own = sorted(self.own_fields - {"name"})  # a misspelt interval was suggested none of them
            if "name" not in self.model_fields_set:  # `nam: sgd` left name at its default: adam took 'nam'
                own.append("name")
            check_component(self.kind, self.name, self.kwargs, own)
        return self


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
    # finite: lr: .inf passed the config and the dry run's step, and every trial's loss went NaN (pruned)
    lr: Number = Field(1e-3, gt=0, allow_inf_nan=False, description="Learning rate.")
    weight_decay: Number = Field(0.0, ge=0, allow_inf_nan=False, description="Weight decay (L2 penalty).")

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
        "val_accuracy (classification data; set mode: max), val_rmse or val_mae (regression data); null: val_loss.",
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
