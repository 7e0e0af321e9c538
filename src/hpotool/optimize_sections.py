"""The optimize config's sections: `sampler` and `pruner` (a name and its keyword arguments), `final` (how
train-from-best turns the best trial into the final run) and `tracking` (MLflow)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from hpotool.config_fields import Frozen, OptionalEpochs, OptionalSeedCount, empty_if_null, no_boolean_or_nan

OptionalInteger = Annotated[int | None, no_boolean_or_nan(int)]
Kwargs = Annotated[dict[str, Any], empty_if_null(dict)]


# What other tools (and Optuna's own docs, in prose) call a sampler's keyword arguments.
_KWARGS_NAMES = frozenset({"params", "parameters", "options", "arguments", "settings", "config"})


def arguments_under_kwargs(data: Any, kind: str) -> Any:
    """Refuse a sampler's or pruner's own arguments given beside its name (`pruner: {name: median,
    n_startup_trials: 2}`), as a run config section takes its component's, with the section to write: each
    read "unknown key 'n_startup_trials'; valid keys: name, kwargs". A misspelt `name` or `kwargs` is left
    to the unknown key's own line."""
    from hpotool.formatting import format_choice
    from hpotool.near_names import did_you_mean

    if not isinstance(data, dict):
        return data
    flat = [k for k in data if k not in ("name", "kwargs") and not did_you_mean(str(k), ("name", "kwargs"))]
    kwargs = data.get("kwargs")
    if not flat or not (kwargs is None or isinstance(kwargs, dict)):
        return data
    keys = ", ".join(repr(k) for k in flat)
    given = dict(kwargs or {})
    for key in flat:  # `params: {seed: 1}`, as other tools name the arguments, is kwargs misnamed
        value = data[key]
        given |= value if key in _KWARGS_NAMES and isinstance(value, dict) else {key: value}
    written = {"name": data.get("name", "..."), "kwargs": given}
    raise ValueError(
        f"unknown key{'s' if len(flat) > 1 else ''} {keys}; the {kind}'s own arguments go under kwargs: write "
        f"{kind}: {format_choice(written)}"
    )


class SamplerConfig(Frozen):
    """An Optuna sampler by short name or import path, with its keyword arguments."""

    name: str = Field(
        "tpe", description="tpe, rung_tpe, random, grid, cmaes, gp, qmc, nsga2, nsga3, bruteforce, or a path."
    )
    kwargs: Kwargs = Field(default_factory=dict, description="Keyword arguments of the sampler class.")

    @model_validator(mode="before")
    @classmethod
    def _arguments_under_kwargs(cls, data: Any) -> Any:
        return arguments_under_kwargs(data, "sampler")


class PrunerConfig(Frozen):
    """An Optuna pruner by short name or import path, with its keyword arguments."""

    name: str = Field(
        "median",
        description="median, percentile, successive_halving, hyperband, threshold, patient, wilcoxon, nop, or a path.",
    )
    kwargs: Kwargs = Field(default_factory=dict, description="Keyword arguments of the pruner class.")

    @model_validator(mode="before")
    @classmethod
    def _arguments_under_kwargs(cls, data: Any) -> Any:
        return arguments_under_kwargs(data, "pruner")

    @property
    def is_nop(self) -> bool:
        """No pruning: `nop`, or Optuna's NopPruner by its import path."""
        return is_nop_pruner(self.name)


_NOP_PRUNER_PATHS = frozenset({"optuna.pruners.NopPruner", "optuna.pruners._nop.NopPruner"})


def is_nop_pruner(name: str) -> bool:
    """Whether a pruner name means no pruning: `nop`, or `optuna.pruners.NopPruner` (`:` or `.` before the
    class), which must behave as the short name (several metrics, the report's epochs, the note on trials)."""
    return name == "nop" or name.replace(":", ".") in _NOP_PRUNER_PATHS


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


class FinalConfig(Frozen):
    """How the winning trial's config becomes the final run (`train-from-best`); flags override it."""

    epochs: OptionalEpochs = Field(
        None, ge=1, description="Epochs of the final run; null: the trial's epochs."
    )
    seeds: OptionalSeedCount = Field(
        None, ge=1, description="Seeds to train (seed, seed+1, ...) and average; null: one."
    )
    overrides: Kwargs = Field(
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


class MlflowConfig(Frozen):
    """Where to log trials in MLflow."""

    tracking_uri: str = Field(
        description="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000."
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the study name.")


class TrackingConfig(Frozen):
    """Experiment trackers that receive every finished trial."""

    mlflow: MlflowConfig | None = Field(None, description="Log every trial as an MLflow run.")
