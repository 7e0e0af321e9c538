"""The built-in training components by short name, and what hpotool knows of a component's signature.

Each RunConfig section (`data`, `model`, `optimizer`, `scheduler`, `loss`) is a `name` plus that
component's own arguments. The name is a short name below or `package.module:Name`; the arguments are
checked against the component's signature when the config is loaded (`component_checks`), so a misspelt
one fails early. Registries hold import paths, so nothing heavy is imported until a component is actually
used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from hpotool.resolve import resolve

Kind = Literal["data", "model", "optimizer", "scheduler", "loss"]


REGISTRIES: dict[Kind, dict[str, str]] = {
    "data": {
        "digits": "hpotool.datasets:digits",
        "regression": "hpotool.datasets:synthetic_regression",
    },
    "model": {
        "mlp": "hpotool.models:MLP",
        "cnn": "hpotool.models:CNN",
    },
    "optimizer": {
        "adam": "torch.optim:Adam",
        "adamw": "torch.optim:AdamW",
        "sgd": "torch.optim:SGD",
        "rmsprop": "torch.optim:RMSprop",
    },
    "scheduler": {
        "none": "hpotool.schedulers:no_schedule",
        "cosine": "hpotool.schedulers:cosine",
        "step": "hpotool.schedulers:step",
        "onecycle": "hpotool.schedulers:onecycle",
        "plateau": "torch.optim.lr_scheduler:ReduceLROnPlateau",
    },
    "loss": {
        "auto": "hpotool.losses:auto",
        "cross_entropy": "torch.nn:CrossEntropyLoss",
        "mse": "torch.nn:MSELoss",
        "l1": "torch.nn:L1Loss",
        "smooth_l1": "torch.nn:SmoothL1Loss",
        "huber": "torch.nn:HuberLoss",
        "bce_with_logits": "torch.nn:BCEWithLogitsLoss",
    },
}


# Built-in schedules that take warmup_epochs and warmup_start (a linear warm-up before the schedule).
WARMUP_SCHEDULES = frozenset({"none", "cosine", "step"})


# Arguments hpotool passes itself, when the component's signature takes them.
INJECTED: dict[Kind, tuple[str, ...]] = {
    "data": (),
    "model": ("in_features", "out_features", "input_shape"),
    "optimizer": ("params",),
    # num_epochs and updates_per_epoch: timm's create_scheduler_v2 (updates: optimizer steps, whatever the
    # schedule is stepped by)
    "scheduler": (
        "optimizer",
        "epochs",
        "steps_per_epoch",
        "num_training_steps",
        "num_epochs",
        "updates_per_epoch",
    ),
    "loss": ("task",),
}


# Arguments a component takes that hpotool leaves at their defaults and a config must not set: torch's
# schedules (and Hugging Face's) take last_epoch to resume part-way from a checkpoint; a fresh run given
# one failed with a KeyError about 'initial_lr' ("not specified in param_groups[0] when resuming"), and a
# misspelt argument was told "did you mean 'last_epoch'?".
MANAGED: dict[Kind, dict[str, str]] = {
    "data": {},
    "model": {},
    "optimizer": {},
    "scheduler": {
        "last_epoch": "resumes a schedule part-way through, from a checkpoint's optimizer state, and hpotool "
        "starts every run's schedule at its beginning"
    },
    "loss": {},
}


def resolve_component(kind: Kind, name: str) -> Any:
    """The class or function behind a section's `name`."""
    return resolve(name, REGISTRIES[kind], kind)


def auto_loss(task: str) -> str:
    """The loss `auto` stands for on data of `task` (`hpotool.losses:auto`)."""
    if task == "multilabel":
        return "bce_with_logits"
    return "cross_entropy" if task == "classification" else "mse"


AUTO_LOSS_FIX = (
    "to give it {arg}, name the loss it stands for: loss: {{name: cross_entropy}} (integer class labels) or "
    "{{name: mse}} (float targets)"
)


def first_argument(kind: Kind, obj: Any) -> tuple[str, ...]:
    """The name of an optimizer's or a schedule's first parameter, which hpotool fills in by position (the
    model's parameters, the optimizer) whatever it is called: a user's `MyOptimizer(model_params, lr)` or
    `my_schedule(opt, epochs)` was refused, told to set `model_params` or `opt` in the config."""
    import inspect

    if kind not in ("optimizer", "scheduler"):
        return ()
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return ()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return (params[0].name,) if params and params[0].kind in positional else ()


def loss_inputs(obj: Any, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The (prediction, target) parameters of a plain loss function such as `torch.nn.functional:
    cross_entropy` (its first two required positional parameters the config does not set), or () for a loss
    class or a factory that builds one, which hpotool calls with the config's arguments first."""
    free = unset_positional(obj, kwargs, INJECTED["loss"])
    return tuple(free[:2]) if len(free) >= 2 else ()


def unset_positional(obj: Any, kwargs: Mapping[str, Any], injected: tuple[str, ...]) -> list[str]:
    """The required positional parameters of a function `obj` that neither the config (`kwargs`) nor hpotool
    (`injected`) sets, in order: what hpotool's call must pass it; [] for a class, or where Python cannot
    read the signature."""
    import inspect

    if isinstance(obj, type):
        return []
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [
        p.name
        for p in params
        if p.kind in positional
        and p.default is inspect.Parameter.empty
        and p.name not in kwargs
        and p.name not in injected
    ]


def component_kwargs(kind: Kind, name: str) -> list[str]:
    """The argument names a user may set for this component (empty when it takes `**kwargs`)."""
    from hpotool.signatures import accepted_kwargs

    obj = resolve_component(kind, name)
    names, _ = accepted_kwargs(obj)
    hidden = (*INJECTED[kind], *first_argument(kind, obj), *MANAGED[kind])
    return [n for n in names if n not in hidden and n != "self"]


def component_default(kind: Kind, name: str, arg: str) -> Any:
    """The default value of argument `arg` in the component's signature (None when it has none, or when
    the component does not resolve)."""
    import inspect

    from hpotool.errors import HpoError

    try:
        param = inspect.signature(resolve_component(kind, name)).parameters.get(arg)
    except (HpoError, TypeError, ValueError):
        return None
    return None if param is None or param.default is inspect.Parameter.empty else param.default
