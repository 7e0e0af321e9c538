"""The keyword arguments a component's signature takes: checked against a config at load time (none it does
not take, none it requires left out), the ones hpotool offers picked, and the call that drops an offered
argument a `**kwargs` factory passes on to one that refuses it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hpotool.near_names import closest


def accepted_kwargs(obj: Callable[..., Any]) -> tuple[list[str], bool]:
    """The keyword arguments `obj` takes, and whether it also takes `**kwargs`."""
    if isinstance(obj, type) and _inherits_bare_init(obj):
        return [], False  # `class MyLoss(nn.Module)` without an __init__ takes no arguments
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return [], True  # a builtin without a signature: let the call itself check
    names = [
        p.name
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw


def _inherits_bare_init(cls: type) -> bool:
    """Whether `cls` gets its `__init__` from `object` or `torch.nn.Module`, whose `*args, **kwargs` only
    exist to raise a TypeError for any argument, so its signature would wrongly accept anything."""
    init = getattr(cls, "__init__", None)
    if init is object.__init__:
        return True
    return getattr(init, "__qualname__", "") == "Module.__init__" and getattr(
        init, "__module__", ""
    ).startswith("torch.nn.")


def check_kwargs(
    obj: Callable[..., Any],
    kwargs: Iterable[str],
    what: str,
    injected: Iterable[str] = (),
    also: Iterable[str] = (),
    unlisted: Iterable[str] = (),
) -> None:
    """Raise `ValueError` naming the valid arguments when `obj` does not take one of `kwargs`.

    Args:
        obj: the class or function that will be called.
        kwargs: argument names the user gave.
        what: how to name `obj` in the message ("model 'mlp'").
        injected: arguments hpotool passes itself; the user may not set them.
        also: other keys the user may set beside `obj`'s (the section's own), suggested for a misspelt one.
        unlisted: arguments `obj` takes that hpotool refuses on their own (Optuna ignores them, or hpotool
            sets them from another key): neither listed nor suggested for a misspelt one.
    """
    names, var_kw = accepted_kwargs(obj)
    hidden = set(injected)
    valid = [n for n in names if n not in hidden and n != "self"]
    listed = [n for n in valid if n not in set(unlisted)]
    for key in kwargs:
        if key in hidden:
            raise ValueError(f"{key!r} is set by hpotool for {what}; remove it from the config")
        if not var_kw and key not in valid:
            near = closest(key, [*listed, *also], n=1)
            if not near and ARGUMENT_SYNONYMS.get(key) in {*listed, *also}:
                near = [ARGUMENT_SYNONYMS[key]]
            mean = f" (did you mean {near[0]!r}?)" if near else ""
            takes = f": {', '.join(listed)}" if listed else " no arguments"
            if near and near[0] not in listed:  # the section's own key (data.val_fraction), not an argument
                raise ValueError(own_key_meant(key, what, mean, takes))
            raise ValueError(f"{what} takes no argument {key!r}{mean}; it takes{takes}")


def own_key_meant(key: str, what: str, mean: str, takes: str) -> str:
    """The line for a `key` given to `what` (`model 'mlp'`) that it does not take, where the section's own
    key (`data.val_fraction`) is the near one: `mean`, ` (did you mean 'val_fraction'?)`; `takes`, `: a, b`
    or ` no arguments`."""
    return f"{key!r} is neither an argument of {what} nor one of the section's own keys{mean}; {what} takes{takes}"


# Other libraries' names for torch's arguments (Keras and Hugging Face: learning_rate), suggested for them.
ARGUMENT_SYNONYMS = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "l2": "weight_decay",
    "decay": "weight_decay",
    "num_layers": "layers",
    "n_layers": "layers",
    "hidden_size": "hidden",
    "hidden_dim": "hidden",
    "dropout_rate": "dropout",
    "drop_rate": "dropout",
}


def check_required(
    obj: Callable[..., Any], kwargs: Iterable[str], what: str, section: str, injected: Iterable[str] = ()
) -> None:
    """Raise `ValueError` naming the arguments `obj` requires (no default) that neither `kwargs` nor
    hpotool (`injected`) gives, so a user's class fails at load time saying what to add to `section`."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return
    given = {*kwargs, *injected, "self"}
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in given
    ]
    if missing:
        renames = [f"{m} to {_SIZE_NAMES[m]}" for m in missing if _SIZE_NAMES.get(m) in set(injected)]
        source = "for each run" if section == "scheduler" else "from the data"
        rename = f", or rename {' and '.join(renames)}, which hpotool fills in {source}" if renames else ""
        raise ValueError(
            f"{what} requires {', '.join(repr(m) for m in missing)}, which the config does not set; add "
            f"{', '.join(f'{m}: ...' for m in missing)} under {section}:{rename}"
        )


# What models elsewhere call the sizes hpotool passes as in_features and out_features, and schedules the
# run's length it passes as epochs and num_training_steps.
INPUT_SIZE_NAMES = (
    "input_dim",
    "in_dim",
    "input_size",
    "n_features",
    "num_features",
    "n_inputs",
    "n_in",
    "d_in",
)
_SIZE_NAMES = {
    **dict.fromkeys(INPUT_SIZE_NAMES, "in_features"),
    **dict.fromkeys(
        (
            *("num_classes", "n_classes", "output_dim", "out_dim", "output_size", "n_outputs", "num_outputs"),
            *("n_out", "d_out", "num_labels", "n_labels"),
        ),
        "out_features",
    ),
    # a schedule's length, which a config could not follow as a search changed epochs or batch_size
    **dict.fromkeys(("n_epochs", "max_epochs", "total_epochs"), "epochs"),
    **dict.fromkeys(
        ("total_steps", "num_steps", "max_steps", "t_total", "num_total_steps"), "num_training_steps"
    ),
}


def pick_kwargs(obj: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `offered` that `obj` accepts (all of it when `obj` takes `**kwargs`)."""
    names, var_kw = accepted_kwargs(obj)
    return dict(offered) if var_kw else {k: v for k, v in offered.items() if k in names}


def construct(factory: Any, args: tuple[Any, ...], offered: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """`factory(*args, **offered, **kwargs)`, `offered` being what hpotool passes (a model's shapes, a
    schedule's epochs). A factory taking `**kwargs` is offered all of it, and one that hands them on
    (`def __init__(self, **kwargs): super().__init__(**kwargs)`, `def cosine(optimizer, **kw): return
    CosineAnnealingLR(optimizer, **kw)`) failed with "unexpected keyword argument 'input_shape'" (or
    'epochs'), which no config could fix: such an argument is left out and the factory called again, on the
    random numbers' state of the first call."""
    import torch  # loaded by then: the factory builds a part of a torch run

    state = torch.random.get_rng_state()
    while True:
        try:
            return factory(*args, **offered, **kwargs)
        except TypeError as exc:
            found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if found is None or found.group(1) not in offered or not accepted_kwargs(factory)[1]:
                raise
            offered = {k: v for k, v in offered.items() if k != found.group(1)}
            torch.random.set_rng_state(state)
