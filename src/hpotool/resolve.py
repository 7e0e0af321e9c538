"""Turn a short name or an import path (`package.module:Name`) into the object it names."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from typing import Any

from hpotool.errors import HpoError
from hpotool.import_hints import defined_here
from hpotool.import_paths import import_object, is_import_path, refuse_a_module
from hpotool.interrupts import unswallowed
from hpotool.near_names import did_you_mean


def resolve(name: str, registry: Mapping[str, str], kind: str) -> Any:
    """Look `name` up among the built-ins of `kind`, or import it when it is an import path.

    Args:
        name: a short name from `registry`, or `package.module:Name`.
        registry: short name -> import path of the built-in.
        kind: what is being resolved, for messages ("sampler", "model", ...).
    """
    if name in registry:
        return import_object(registry[name])
    if is_import_path(name):
        return import_object(name)
    if _local_module(name):  # `mynets` for mynets.py: the module, without the object in it
        refuse_a_module(name, name)
    near = did_you_mean(name, registry)
    library = None if name.lower() in registry else _library_path(name, kind)  # Adam is adam; NAdam is not
    if library is not None:
        raise HpoError(
            f"unknown {kind} {name!r}; for that class give its import path, {library} (built-in: "
            f"{', '.join(registry)})"
        )
    defined = defined_here(name)  # `Net`, which the user's mylab/models.py defines
    if defined:
        raise HpoError(
            f"unknown {kind} {name!r}; {defined} (your own code is named by its import path, "
            f"package.module:Name; built-in: {', '.join(registry)})"
        )
    raise HpoError(
        f"unknown {kind} {name!r}{near}; choose one of: {', '.join(registry)}, "
        f"or give an import path such as package.module:Name"
    )


# Where a bare class name (CosineAnnealingLR, TPESampler) of each kind is found, as torch and Optuna name it.
_LIBRARY_MODULES = {
    "optimizer": "torch.optim",
    "scheduler": "torch.optim.lr_scheduler",
    "loss": "torch.nn",
    "sampler": "optuna.samplers",
    "pruner": "optuna.pruners",
}


def _library_path(name: str, kind: str) -> str | None:
    """`torch.optim.lr_scheduler:CosineAnnealingLR` for the bare name `CosineAnnealingLR` of a scheduler: the
    import path of the class torch or Optuna defines under that name, or None."""
    module_name = _LIBRARY_MODULES.get(kind)
    if module_name is None or not name.isidentifier() or name.startswith("_"):
        return None
    try:
        with unswallowed():  # a Ctrl-C the import caught is raised, not taken for a module that is missing
            module = importlib.import_module(module_name)
    except ImportError:
        return None
    return f"{module_name}:{name}" if inspect.isclass(getattr(module, name, None)) else None


def _local_module(name: str) -> bool:
    """Whether `name` is a module of the user's in the current folder (`name.py`, or a package `name/`; not
    any folder, such as data/)."""
    cwd = os.getcwd()
    if not name.isidentifier():
        return False
    here = os.path.join(cwd, name)
    if not (os.path.isfile(f"{here}.py") or os.path.isfile(os.path.join(here, "__init__.py"))):
        return False
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return True
