"""The check that a config's arguments fit the component its section names (`check_component`): each
refusal says what the argument does, or which component takes it, and what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hpotool.components import (
    AUTO_LOSS_FIX,
    INJECTED,
    MANAGED,
    REGISTRIES,
    WARMUP_SCHEDULES,
    Kind,
    component_kwargs,
    first_argument,
    loss_inputs,
    resolve_component,
    unset_positional,
)
from hpotool.formatting import format_choice
from hpotool.kwarg_types import check_types
from hpotool.near_names import did_you_mean
from hpotool.signatures import accepted_kwargs, check_kwargs, check_required, own_key_meant


def check_component(kind: Kind, name: str, kwargs: Mapping[str, Any], own: Iterable[str] = ()) -> None:
    """Raise `ValueError` when `name` does not resolve, does not take one of `kwargs`, or (a built-in)
    annotates another type for one of their values; `own` are the section's keys hpotool reads itself
    (`data.val_fraction`, `scheduler.interval`), which a misspelt argument may have meant."""
    from hpotool.errors import HpoError

    try:
        obj = resolve_component(kind, name)
    except HpoError as exc:
        raise ValueError(str(exc)) from None
    _refuse_a_built_object(kind, name, obj)
    if kind == "loss" and name == "auto" and kwargs:
        arg = next(iter(kwargs))
        if near := did_you_mean(arg, list(own)):  # `nam: mse`: not an argument to give auto, a misspelt key
            raise ValueError(own_key_meant(arg, "loss 'auto'", near, " no arguments"))
        raise ValueError(f"loss 'auto' takes no arguments; {AUTO_LOSS_FIX.format(arg=arg)}")
    if kind == "optimizer" and "lr" in kwargs:
        _check_takes_lr(name, obj, kwargs["lr"])
    if kind == "optimizer" and kwargs.get("maximize") is True:  # it trained, climbing the loss, silently
        raise ValueError(
            f"optimizer {name!r} argument 'maximize': true makes the optimizer climb the loss, and hpotool trains "
            f"by lowering it; remove maximize (to maximize a metric such as val_accuracy, set direction: "
            f"maximize in the optimize config)"
        )
    inputs = loss_inputs(obj, kwargs) if kind == "loss" else ()  # a loss function's (prediction, target)
    injected = (*INJECTED[kind], *inputs, *first_argument(kind, obj), *MANAGED[kind])
    for key, why in MANAGED[kind].items():
        if key in kwargs:
            raise ValueError(f"{kind} {name!r} argument {key!r} {why}; remove {key}")
    if kind == "scheduler":
        _refuse_warmup(name, obj, kwargs, injected)
    try:
        check_kwargs(obj, kwargs, f"{kind} {name!r}", injected, also=own)
    except ValueError as exc:
        raise ValueError(f"{exc}{_taken_by_others(kind, name, obj, kwargs, str(exc))}") from None
    # A sum made train_loss (batch sums) and val_loss (the validation split's sum) differ by their sizes;
    # KLDivLoss's batchmean is a mean over the batch's samples.
    if kind == "loss" and kwargs.get("reduction", "mean") not in ("mean", "batchmean"):
        raise ValueError(
            f"loss {name!r} argument 'reduction': hpotool needs each batch's mean loss (it weights batches by "
            f"their size for train_loss and val_loss), got {format_choice(kwargs['reduction'])}; drop reduction (for "
            f"larger steps, raise optimizer.lr)"
        )
    _check_objects(kind, name, obj, kwargs, injected)
    if kind == "scheduler":  # after _check_objects: ChainedScheduler(schedulers, optimizer) wants a function
        _refuse_optimizer_second(name, obj)
    if kind == "loss":
        _refuse_a_model_argument(name, obj, kwargs, injected)
        _refuse_a_one_input_loss(name, obj, kwargs, injected)
    check_required(obj, kwargs, f"{kind} {name!r}", kind, injected)
    check_types(obj, kwargs, f"{kind} {name!r}")
    if kind == "loss":
        _check_label_smoothing(name, kwargs.get("label_smoothing"))


def _refuse_warmup(name: str, obj: Any, kwargs: Mapping[str, Any], injected: tuple[str, ...]) -> None:
    """Raise `ValueError` where a schedule without hpotool's warm-up (a user's, by import path, or onecycle,
    plateau) is given warmup_epochs or warmup_start that it does not take: it was told "takes no argument
    'warmup_epochs' (did you mean 'warmup'?)", not that the key belongs to the built-in schedules."""
    names, var_kw = accepted_kwargs(obj)
    key = next((k for k in ("warmup_epochs", "warmup_start") if k in kwargs and k not in names), None)
    if name in WARMUP_SCHEDULES or var_kw or key is None:
        return
    takes = [n for n in names if n not in injected and n != "self"]
    own = f" (it takes: {', '.join(takes)})" if takes else " (it takes no arguments)"
    raise ValueError(
        f"scheduler {name!r} takes no argument {key!r}: warmup_epochs and warmup_start are hpotool's warm-up "
        f"of the built-in schedules {', '.join(sorted(WARMUP_SCHEDULES))} only; remove {key}, and set the "
        f"schedule's own warm-up, if it has one{own}"
    )


def _refuse_a_model_argument(
    name: str, obj: Any, kwargs: Mapping[str, Any], injected: tuple[str, ...]
) -> None:
    """Raise `ValueError` for a loss that requires the model (a weight penalty: `def loss(pred, target,
    model)`, `MyLoss(model)`): it was told "add model: ... under loss:", and no YAML value is a model."""
    import inspect

    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return
    wanted = next(
        (
            p.name
            for p in params
            if p.name in ("model", "module", "net", "network")
            and p.default is inspect.Parameter.empty
            and p.name not in kwargs
            and p.name not in injected
        ),
        None,
    )
    if wanted is not None:
        raise ValueError(
            f"loss {name!r} requires the model ({wanted!r}), which hpotool does not give a loss (it calls it with "
            f"the prediction and the target); for a penalty on the weights set optimizer.weight_decay, or train "
            f"with your own function (trainer: {{function: package.module:fit}})"
        )


_PREDICTION_NAMES = (
    *("pred", "preds", "prediction", "predictions", "output", "outputs", "logits", "input"),
    *("y_pred", "yhat", "y_hat", "out", "scores"),
)
_TARGET_NAMES = ("target", "targets", "y", "y_true", "label", "labels", "truth")


def _refuse_a_one_input_loss(
    name: str, obj: Any, kwargs: Mapping[str, Any], injected: tuple[str, ...]
) -> None:
    """Raise `ValueError` for a loss function that takes the prediction or the target alone (`def loss(pred)`):
    read as a factory, it was told "requires 'pred', which the config does not set; add pred: ... under loss:",
    where no YAML value is a batch's prediction."""
    free = unset_positional(obj, kwargs, injected)
    if len(free) != 1 or free[0].lower() not in (*_PREDICTION_NAMES, *_TARGET_NAMES):
        return
    arg = free[0]
    both = f"{arg}, target" if arg.lower() in _PREDICTION_NAMES else f"prediction, {arg}"
    raise ValueError(
        f"loss {name!r} takes {arg!r} alone; hpotool calls a loss function with the model's output and the "
        f"targets, loss(prediction, target): take both (def {getattr(obj, '__name__', 'loss')}({both}))"
    )


# The torch classes whose objects a training script builds at its top level (model = Net(...),
# criterion = nn.CrossEntropyLoss()): (module prefix, class name) of a base class.
_BUILT = (
    ("torch.nn.modules.module", "Module"),
    ("torch.optim.optimizer", "Optimizer"),
    ("torch.optim.lr_scheduler", "LRScheduler"),
    ("torch.optim.lr_scheduler", "ReduceLROnPlateau"),
)


# What a section's name may be, for a value that is not a class or function.
_EXAMPLE_PATHS: dict[Kind, str] = {
    "data": "package.module:load",
    "model": "package.module:Net",
    "optimizer": "torch.optim:Adam",
    "scheduler": "torch.optim.lr_scheduler:MultiStepLR",
    "loss": "torch.nn:CrossEntropyLoss",
}


def _refuse_a_built_object(kind: Kind, name: str, obj: Any) -> None:
    """Raise `ValueError` for an object already built (a model, loss, optimizer or schedule made at a script's
    top level, or the data) where hpotool calls a class or function to build one: it called the object, and a
    model failed with "Net.forward() missing 1 required positional argument: 'x'", data with "'PairDS' object
    is not callable"."""
    if isinstance(obj, type):
        return
    cls = type(obj)
    if kind == "data" and not callable(obj):  # train_ds = MyDataset(...), or (x, y), made on import
        its_class = f"its class, {cls.__module__}:{cls.__qualname__}, with its arguments under data:, or "
        raise ValueError(
            f"data {name!r} is a {cls.__name__} object, not a function or class that returns the data; name "
            f"{its_class if cls.__module__ != 'builtins' else ''}a function that returns it"
        )
    if kind == "data":
        return
    # a module's setting (MODEL = "resnet18"): "'str' object is not callable" at trial 0
    if not callable(obj):
        shown = repr(obj)
        shown = shown if len(shown) <= 40 else f"{shown[:37]}..."
        raise ValueError(
            f"{kind} {name!r} is {'an' if cls.__name__[0] in 'aeiouAEIOU' else 'a'} {cls.__name__} ({shown}), not a class or function that builds the {kind}; "
            f"name the class or function, such as {_EXAMPLE_PATHS[kind]}, and set its arguments under {kind}:"
        )
    if not any((c.__module__, c.__name__) in _BUILT for c in cls.__mro__):
        return
    raise ValueError(
        f"{kind} {name!r} is a {cls.__name__} object, already built, where hpotool builds a new one for every "
        f"trial; name its class, {cls.__module__}:{cls.__qualname__}, and set its arguments under {kind}:"
    )


# What optimizer functions written for other libraries call their learning rate.
_LR_NAMES = ("learning_rate", "base_lr", "init_lr", "initial_lr", "lr0", "eta")


_DEFAULT_LR = 1e-3  # OptimizerConfig.lr's default


def _check_takes_lr(name: str, obj: Any, lr: Any) -> None:
    """hpotool gives every optimizer `lr` (optimizer.lr has a default): one whose signature lacks it was
    told "takes no argument 'lr'; it takes: learning_rate, ...", which no change to the config fixed."""
    from hpotool.signatures import accepted_kwargs

    names, var_kw = accepted_kwargs(obj)
    if "lr" in names or var_kw:
        return
    given = f"{format_choice(lr)} by default" if lr == _DEFAULT_LR else f"{format_choice(lr)} here"
    other = next((n for n in _LR_NAMES if n in names), None)
    fix = (
        f"name its {other} argument lr"
        if other
        else "give the function an lr argument and build the optimizer with it"
    )
    raise ValueError(
        f"optimizer {name!r} takes no argument 'lr', which hpotool gives every optimizer (optimizer.lr, {given}, "
        f"which a search varies): {fix}"
    )


# How to build a schedule that takes a function: the one kind whose built-ins (torch's) take one.
_SCHEDULE_EXAMPLE = (
    "def my_schedule(optimizer, epochs): return LambdaLR(optimizer, lambda epoch: 0.95 ** epoch)"
)


def _check_objects(
    kind: Kind, name: str, obj: Any, kwargs: Mapping[str, Any], injected: tuple[str, ...]
) -> None:
    """An argument annotated as a function or a schedule object (LambdaLR's and MultiplicativeLR's
    lr_lambda, SequentialLR's schedulers), which no YAML value can be: a required one was "add lr_lambda: ...
    under scheduler:", and the value added then failed with "TypeError: 'float' object is not callable"."""
    import inspect

    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return
    for param in params:
        if param.name in injected or param.name == "self":
            continue
        text = _object_annotation(param.annotation)
        if text is None:
            continue
        value = kwargs.get(param.name)
        if param.name in kwargs and value is not None:
            said = f"argument {param.name!r} takes {text}, which a YAML value cannot be (got {format_choice(value)})"
        elif param.name not in kwargs and param.default is inspect.Parameter.empty:
            said = f"requires {param.name!r}, {text}, which a YAML value cannot be"
        else:
            continue
        raise ValueError(
            f"{kind} {name!r} {said}; build the {kind} in a function of your own module"
            + (f" ({_SCHEDULE_EXAMPLE})" if kind == "scheduler" else "")
            + " and give its import path (package.module:Name) as name"
        )


def _object_annotation(annotation: Any) -> str | None:
    """The annotation, as text, of a parameter that takes a function or an LRScheduler and nothing a YAML value
    can be (str, a number, a bool); None otherwise."""
    import inspect
    import re

    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        text = annotation
    else:  # a typing object's __name__ drops its arguments: Optional[Callable] is "Optional"
        text = annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")
    if not re.search(r"\bCallable\b|\bLRScheduler\b", text):
        return None
    bare = re.sub(r"Callable\[\[[^\]]*\],[^\]]*\]", "Callable", text)  # Callable[[int], float]: not an int
    if re.search(r"\b(str|int|float|bool|Any)\b", bare):
        return None
    return "a function" if "Callable" in bare and "LRScheduler" not in bare else f"an object ({text})"


def _check_label_smoothing(name: str, value: Any) -> None:
    """Label smoothing of 1 trains towards the uniform target whatever the label (torch accepts it: every
    class equally likely, the model learns nothing, val_accuracy at chance, silently); above 1 or below 0
    torch refuses only as the loss runs."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not 0 <= value < 1:
        why = (
            "trains every sample towards the same uniform target whatever its label, so the model learns "
            "nothing"
            if value == 1
            else "is outside what it means (a share of the target spread over the classes)"
        )
        raise ValueError(
            f"loss {name!r} argument 'label_smoothing': {format_choice(value)} {why}; give a value from 0 up to "
            f"but not including 1, such as 0.1"
        )


def _refuse_optimizer_second(name: str, obj: Any) -> None:
    """A schedule whose first parameter is not its optimizer, one named `optimizer` coming later: transformers'
    `get_scheduler(name, optimizer, num_warmup_steps, num_training_steps)` loaded, then failed the run with
    "missing 1 required positional argument: 'optimizer'" (hpotool passes the optimizer first), and its
    `name` cannot be set: the section's name is the import path. A `ValueError` naming what to use."""
    import inspect

    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    optimizer_later = "optimizer" in [p.name for p in params[1:]]
    # `def warmup(epochs, ...)`, no optimizer: "warmup() got multiple values for argument 'epochs'"
    if (
        params
        and params[0].kind in positional
        and params[0].name in INJECTED["scheduler"][1:]
        and not optimizer_later
    ):
        first = params[0].name
        raise ValueError(
            f"scheduler {name!r} takes {first!r} first, where hpotool passes the optimizer (by position; "
            f"{first} by name); take the optimizer first: def {getattr(obj, '__name__', 'schedule')}("
            f"optimizer, {first}, ...)"
        )
    if not optimizer_later or params[0].name == "optimizer":
        return
    first = params[0].name
    use = (
        "name the schedule's own function, which takes the optimizer first (transformers' "
        "get_scheduler('linear', ...) is get_linear_schedule_with_warmup, 'cosine' "
        "get_cosine_schedule_with_warmup), or wrap it in one of your own: def schedule(optimizer, "
        "num_warmup_steps, num_training_steps): return get_scheduler('linear', optimizer, num_warmup_steps, "
        "num_training_steps)"
        if first == "name"
        else "build it in a function of your own module that takes the optimizer first (def my_schedule("
        "optimizer, epochs): ...) and give its import path (package.module:Name) as name"
    )
    raise ValueError(
        f"scheduler {name!r} takes {first!r} before the optimizer, which hpotool passes first"
        + (", and the section's name is the import path" if first == "name" else "")
        + f"; {use}"
    )


def taken_by_others_marker(key: str) -> str:
    """How `_taken_by_others`'s hint for `key` begins: a search that switches the component gives its own."""
    return f"; {key} is an argument of "


def _taken_by_others(kind: Kind, name: str, obj: Any, kwargs: Mapping[str, Any], message: str) -> str:
    """For a built-in given an argument it does not take that other built-ins take (adam's momentum), which
    they are: it was told only adam's own arguments, as if momentum were misspelt."""
    from hpotool.errors import HpoError

    names, var_kw = accepted_kwargs(obj)
    key = next((k for k in kwargs if k not in names), None)
    if var_kw or key is None or name not in REGISTRIES[kind] or f"takes no argument {key!r}" not in message:
        return ""
    others = []
    for other in REGISTRIES[kind]:
        try:
            if other != name and key in component_kwargs(kind, other):
                others.append(other)
        except HpoError:
            continue
    if not others:
        return ""
    listed = " and ".join([", ".join(others[:-1]), others[-1]] if len(others) > 1 else others)
    rest = f" (or {', '.join(others[1:])})" if len(others) > 1 else ""
    return f"{taken_by_others_marker(key)}{listed}: write name: {others[0]}{rest}, or remove {key}"
