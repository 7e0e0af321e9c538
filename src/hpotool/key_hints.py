"""What a config key should be, for error messages: the valid keys at a location, the key a misspelling
(or another tool's name for it) means, and where a key given at the wrong level or in the other config
belongs."""

from __future__ import annotations

from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.near_names import did_you_mean


def _submodel(cls: Any, part: str | int) -> Any:
    """The model class one step down `loc` from `cls`, or None. A section that may be left out
    (`tracking: TrackingConfig | None`) is its model: its keys are as valid as a required section's."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        field = cls.model_fields.get(str(part))
        return _without_none(field.annotation) if field is not None else None
    return None


def _without_none(annotation: Any) -> Any:
    """`X` for `X | None` (or `Optional[X]`); any other annotation as it is."""
    if get_origin(annotation) not in (Union, UnionType):
        return annotation
    kept = [arg for arg in get_args(annotation) if arg is not NoneType]
    return kept[0] if len(kept) == 1 else annotation


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


# What other tools call a parameter's keys (Ray Tune, W&B sweeps, hyperopt): `values: [16, 32]`, `lower:`.
_KEY_SYNONYMS = {
    **dict.fromkeys(("values", "options", "categories", "items"), "choices"),
    **dict.fromkeys(("lower", "lower_bound", "minimum", "start"), "low"),
    **dict.fromkeys(("upper", "upper_bound", "maximum", "stop", "end"), "high"),
    **dict.fromkeys(("q", "increment"), "step"),
    **dict.fromkeys(("log_scale", "logscale", "log_uniform"), "log"),
}


def key_suggestion(key: str, valid: list[str]) -> str:
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


def misplaced_key_hint(root: type[BaseModel], key: str) -> str:
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


def valid_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
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


def misspelt_missing_key(err: Any) -> str:
    """`; 'functon' is given: did you mean 'function'?` for a missing key that a key given beside it is a
    misspelling of, where the section takes keys of the user's own (`trainer:`), so the misspelling is not
    refused as unknown; "" otherwise."""
    given = err.get("input")
    missing = str(err["loc"][-1])
    if not isinstance(given, dict):
        return ""
    # `trainer: {name: mypkg.train:fit}`, as every other section names its component, was told only that
    # `function` is missing, and `name` was kept as one of the function's own keys
    if missing == "function" and isinstance(given.get("name"), str):
        return f"; the trainer section names its function with function:, not name: (write function: {given['name']})"
    for key in given:
        if isinstance(key, str) and did_you_mean(key, [missing]):
            return f"; {key!r} is given: did you mean {missing!r}?"
    if missing == "function":  # `trainer: {fn: mypkg.train:fit}`: told only "required key is missing"
        for key, value in given.items():
            if isinstance(value, str) and ":" in value:
                return f"; the trainer section names its function with function:, not {key}: (write function: {value})"
        return "; add function: with your training function's import path (function: mypkg.train:fit)"
    return ""
