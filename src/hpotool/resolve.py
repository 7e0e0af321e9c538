"""Turn a short name or an import path (`package.module:Name`) into the object it names."""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePath
from typing import Any

from hpotool.errors import HpoError
from hpotool.formatting import format_choice, yaml_bool_hint


def closest(word: str, candidates: Iterable[str], n: int = 3, ignore_case: bool = False) -> list[str]:
    """The candidates that look most like `word`, best first; with `ignore_case`, compared in lower case
    (`pairds` finds `PairDS`), those that differ from `word` only in case first. Of two that look alike
    (difflib's ratio), the fewer edits away comes first: `digits_mpl` is `digits_mlp` with two letters
    swapped, where difflib alone, at a tie, put `digits_pfl` first for sorting after it."""
    if not ignore_case:
        return _ranked(word, list(candidates), n)
    lowered: dict[str, list[str]] = {}
    for name in candidates:
        lowered.setdefault(name.casefold(), []).append(name)
    key = word.casefold()
    near = ([key] if key in lowered else []) + [k for k in _ranked(key, list(lowered), n) if k != key]
    return [name for k in near for name in lowered[k]][:n]


def _ranked(word: str, candidates: list[str], n: int) -> list[str]:
    """difflib's close matches (cutoff 0.6), best ratio first and, among equal ratios, fewest edits first."""
    matches = difflib.get_close_matches(word, candidates, n=max(n, len(candidates)), cutoff=0.6)

    def ratio(x: str) -> float:  # as get_close_matches measures it
        return difflib.SequenceMatcher(None, x, word).ratio()

    return sorted(matches, key=lambda x: (-ratio(x), edit_distance(word, x)))[:n]


def edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) between `a` and `b`: the optimal string
    alignment distance."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def did_you_mean(word: str, candidates: Iterable[str], ignore_case: bool = False) -> str:
    """`" (did you mean 'x'?)"`, or an empty string when nothing is close."""
    near = closest(word, candidates, n=1, ignore_case=ignore_case)
    return f" (did you mean {near[0]!r}?)" if near else ""


def is_import_path(name: str) -> bool:
    """Whether `name` looks like `package.module:Name` or `package.module.Name`."""
    return ":" in name or "." in name


def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the user's: hpotool, the Python installation and installed packages."""
    import site
    import sysconfig

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.abspath(__file__))}
    dirs.update(p for p in sysconfig.get_paths().values() if p)
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return tuple(os.path.abspath(d) + os.sep for d in dirs)


def user_frame(exc: BaseException) -> str | None:
    """Where in the user's own code `exc` was raised, as `path:line in function` (path relative to the
    current folder where it is inside it): the innermost frame outside hpotool, Python and installed
    packages, or None when the user's code is not involved."""
    import traceback

    library = _library_dirs()
    frames: list[tuple[str, int | None, str | None]]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:  # the error is in the file itself
        frames = [(exc.filename, exc.lineno, None)]
    else:
        frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    for filename, lineno, name in reversed(frames):
        path = os.path.abspath(filename)
        if filename.startswith("<") or path.startswith(library) or not os.path.isfile(path):
            continue  # not a file of the user's: a compiled module's frame names its source relatively
        shown = os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
        return f"{shown}:{lineno}" + (f" in {name}" if name and name != "<module>" else "")
    return None


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`: a user's multi-line message shown as one line. One of hpotool's own
    refusals of a config value (`unknown activation 'rellu' ...`) is its message alone: its words are written
    for the user, and the class name (ValueError) would tell them nothing. An exception from a library, or
    one raised in (or through) the user's code keeps the name, which tells them what their code did."""
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc).strip()
    if text and _raised_by_hpotool(exc) and user_frame(exc) is None:
        return text.splitlines()[0]
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _raised_by_hpotool(exc: BaseException) -> bool:
    """Whether `exc` is hpotool's own: of a class hpotool defines, or from a `raise` statement in hpotool's
    source (its innermost frame); not from the user's code, a library, or a builtin hpotool called (an
    `open()` failing keeps its PermissionError)."""
    import linecache

    if type(exc).__module__.partition(".")[0] == "hpotool":
        return True
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    if os.path.dirname(os.path.abspath(filename)) != os.path.dirname(os.path.abspath(__file__)):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise ")


def described(exc: BaseException) -> str:
    """An exception in one line: its type, the first line of its message, and where in the user's own code
    it was raised (a user's multi-line message would otherwise be a wall of `error:` lines)."""
    where = user_frame(exc)
    return first_line(exc) + (f" (at {where})" if where else "")


def _similar_module(missing: str) -> str:
    """` (did you mean 'pkg.models'?)` for a misspelt module: its siblings in the package above it, or the
    modules in the current folder for a top-level one."""
    import pkgutil

    parent, _, last = missing.rpartition(".")
    if parent:
        try:
            search = getattr(importlib.import_module(parent), "__path__", None)
        except Exception:  # the package itself does not import: nothing to compare with
            return ""
        if search is None:
            return ""
    else:
        search = [os.getcwd()]
    names = [m.name for m in pkgutil.iter_modules(search)]
    near = closest(last, names, n=1, ignore_case=True)
    return f" (did you mean {'.'.join([parent, near[0]]).lstrip('.')!r}?)" if near else ""


# Folders of the current one never searched for a user's package: environments, caches, version control.
_NOT_CODE = {"node_modules", "site-packages", "__pycache__", "venv", "env", "build", "dist"}


def _folder_holding(top: str) -> str | None:
    """The folder nearest the current one, one of its subfolders (`proj/` beside `-r proj/run.yaml`, a
    `src/` layout) or one above it (run from `configs/`), that holds the package `top/` or the module
    `top.py` an import path starts with, which Python did not find; None where none does. Told only "run
    hpotool from the folder that holds seqpkg/", a user run from the folder above theirs had to guess which."""

    def holds(folder: str) -> bool:
        if os.path.isfile(os.path.join(folder, f"{top}.py")):
            return True
        package = os.path.join(folder, top)
        try:
            return os.path.isdir(package) and any(e.name.endswith(".py") for e in os.scandir(package))
        except OSError:
            return False

    cwd = os.getcwd()
    try:
        below = sorted(
            e.path
            for e in os.scandir(cwd)
            if e.is_dir() and not e.name.startswith((".", "_")) and e.name not in _NOT_CODE
        )
    except OSError:
        below = []
    searched = {os.path.abspath(p) for p in sys.path if p}
    for folder in [*below, *map(str, Path(cwd).parents)]:
        if os.path.abspath(folder) not in searched and holds(folder):
            return folder
    return None


_PYTHON_CALLER: ContextVar[bool] = ContextVar("hpotool_python_caller", default=False)


@contextmanager
def python_caller() -> Iterator[None]:
    """Imports in this block are made for a user's own Python code (`hpotool.saved.load_model`), not for the
    hpotool command: a module not found is told to add its folder to sys.path, not to run hpotool elsewhere."""
    token = _PYTHON_CALLER.set(True)
    try:
        yield
    finally:
        _PYTHON_CALLER.reset(token)


def _not_found_hint(top: str) -> str:
    """Where the module `top`, not found, may be: the folder near this one that holds it, and what to do, for
    the command (run it from there, or PYTHONPATH) or for Python code (its script from there, or sys.path)."""
    holder = _folder_holding(top)
    if _PYTHON_CALLER.get():
        if holder is not None:
            return (
                f"; imports resolve from the current folder and sys.path, and {holder} holds {top}: run your "
                f"script from there (cd {os.path.relpath(holder)}), or add that folder to sys.path first "
                f"(sys.path.insert(0, {os.path.abspath(holder)!r}))"
            )
        return (
            f"; imports resolve from the current folder and sys.path: run your script from the folder that "
            f"holds {top}/ (or {top}.py), or add that folder to sys.path first"
        )
    if holder is not None:
        return (
            f"; imports resolve from the current folder and PYTHONPATH, and {holder} holds {top}: run "
            f"hpotool from there (cd {os.path.relpath(holder)}), or add that folder to PYTHONPATH"
        )
    return (
        f"; imports resolve from the current folder and PYTHONPATH: run hpotool from the folder "
        f"that holds {top}/ (or {top}.py), or add that folder to PYTHONPATH"
    )


def import_object(path: str) -> Any:
    """Import `package.module:Name` (or `package.module.Name`) and return the attribute."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise HpoError(f"{path!r} is not an import path; write it as package.module:Name")
    if "/" in module_name or "\\" in module_name:  # never a module name; a relative one fails otherwise
        raise _file_path(path, module_name, attr)
    if module_name.startswith("."):  # a package's own `from .models import Net`: no package to start from
        raise HpoError(
            f"cannot import {path!r}: {module_name!r} is a relative import, which has no package to start from "
            f"here; write {module_name.lstrip('.')}:{attr}, the path from the folder hpotool runs in"
        )
    # Users run hpotool from their project folder and expect its modules to import, as `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        missing = exc.name or ""
        wrong_path = module_name == missing or module_name.startswith(missing + ".")
        inside = user_frame(exc)
        if not wrong_path and inside is not None:
            # the user's module imports something that is missing: say where, not that the path is wrong
            raise HpoError(
                f"cannot import {path!r}: importing {module_name!r} raised {first_line(exc)} at {inside}"
            ) from None
        if wrong_path and module_name.endswith(".py"):
            raise _file_path(path, module_name, attr) from None
        hint = _similar_module(missing) if wrong_path else ""
        if wrong_path and "." not in missing:
            hint += _not_found_hint(top)
        raise HpoError(f"cannot import {path!r}: {exc}{hint}") from None
    except Exception as exc:  # the user's module raised while importing (a SyntaxError, an ImportError, ...)
        where = user_frame(exc)
        raise HpoError(
            f"cannot import {path!r}: importing {module_name!r} raised {first_line(exc)}"
            + (f" at {where}" if where else "")
        ) from None
    obj, owner, found = module, f"module {module_name!r}", []
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            _refuse_a_shadowed_module(path, module_name, attr.split(".")[0])
            if isinstance(obj, types.ModuleType):
                _refuse_a_module(path, f"{obj.__name__}.{part}")
                line = _main_block_definition(obj, part)
                if line is not None:
                    raise HpoError(
                        f"cannot import {path!r}: {owner} defines {part!r} only under "
                        f'if __name__ == "__main__": (line {line}), which does not run when hpotool imports '
                        f"it; move the definition to the module's top level"
                    ) from None
            names = [n for n in dir(obj) if not n.startswith("_")]
            near = did_you_mean(part, names, ignore_case=True)
            if not near and isinstance(obj, types.ModuleType):
                near = _defined_in_a_submodule(obj, part, attr)
            raise HpoError(f"cannot import {path!r}: {owner} has no attribute {part!r}{near}") from None
        found.append(part)
        owner = repr(f"{module_name}:{'.'.join(found)}")
    return obj


def _defined_in_a_submodule(package: types.ModuleType, name: str, attr: str) -> str:
    """`; mypkg.models defines Net: write mypkg.models:Net` where `package` (`mypkg`, whose __init__.py does
    not import Net) has a module that defines `name` at its top level (read, not imported); else empty. The
    line said only "module 'mypkg' has no attribute 'Net'", though the package holds it one level down."""
    import pkgutil

    search = getattr(package, "__path__", None)
    if search is None:
        return ""
    pattern = re.compile(
        rf"^(?:(?:async\s+)?def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]", re.M
    )
    found = []
    for info in sorted(pkgutil.iter_modules(search), key=lambda m: m.name):
        file = os.path.join(getattr(info.module_finder, "path", ""), f"{info.name}.py")
        try:
            with open(file, encoding="utf-8", errors="replace") as fh:
                if pattern.search(fh.read()):
                    found.append(f"{package.__name__}.{info.name}")
        except OSError:
            continue
    if not found:
        return ""
    rest = attr.partition(".")[2]
    full = f"{name}.{rest}" if rest else name
    where = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
    return f"; {where} {'defines' if len(found) == 1 else 'define'} {name}: write {found[0]}:{full}"


def _main_block_definition(module: types.ModuleType, name: str) -> int | None:
    """The line where `module` defines `name` (a class, function or assignment) inside an `if __name__ ==
    "__main__":` block, which runs only as a script, not on import; None when it does not (or its source
    cannot be read). Such a name was reported as a bare "has no attribute", though the file defines it."""
    import ast

    file = getattr(module, "__file__", None)
    if not file or not str(file).endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        test = node.test if isinstance(node, ast.If) else None
        if not (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
        ):
            continue
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and inner.name == name
            ):
                return inner.lineno
            if isinstance(inner, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in inner.targets
            ):
                return inner.lineno
    return None


def _file_path(path: str, module_name: str, attr: str) -> HpoError:
    """The mistake of a file path written where an import path goes (`train.py:fit`, `src/nets.py:Net`):
    the import path to write instead, and the folder to run hpotool from."""
    file = PurePath(module_name.replace("\\", "/"))
    file = file.with_suffix("") if file.suffix == ".py" else file
    said = f"cannot import {path!r}: {module_name!r} is a file path, not an import path; write"
    parts = [p for p in file.parts if p != "."]
    if file.is_absolute() or ".." in parts:
        return HpoError(
            f"{said} {file.name}:{attr} and run hpotool from {file.parent} (or add it to PYTHONPATH)"
        )
    top = f"{parts[0]}/" if len(parts) > 1 else f"{parts[0]}.py"
    return HpoError(
        f"{said} {'.'.join(parts)}:{attr} (folders joined by dots, without .py), run from the folder that "
        f"holds {top}"
    )


def _refuse_a_shadowed_module(path: str, module_name: str, attr: str) -> None:
    """Raise `HpoError` when the current folder holds a module `module_name.py` that defines `attr` (the
    user's `tokenize.py`) but Python had already imported another module of that name (its own
    `tokenize`), which the import then returned: the user was told their module lacks what it defines."""
    loaded = sys.modules.get(module_name)
    where = getattr(loaded, "__file__", None)
    cwd = os.getcwd()
    local = os.path.join(cwd, f"{module_name}.py")
    if "." in module_name or where is None or os.path.abspath(where) == local or not os.path.isfile(local):
        return
    try:
        with open(local, encoding="utf-8", errors="replace") as fh:
            defines = re.search(
                rf"^(def|class)\s+{re.escape(attr)}\b|^{re.escape(attr)}\s*=", fh.read(), re.M
            )
    except OSError:
        return
    if defines:
        raise HpoError(
            f"cannot import {path!r}: the module {module_name} Python had already imported is {where}, not "
            f"{module_name}.py in the current folder, which it never reads; rename yours (and the import path) "
            f"to a name Python and the installed packages do not use"
        )


def _refuse_a_module(path: str, name: str) -> None:
    """Raise `HpoError` when `name` is a module (`package.module` written without `:Name`), listing the
    functions and classes it defines; return when it is not one."""
    try:
        module = importlib.import_module(name) if importlib.util.find_spec(name) is not None else None
    except Exception:  # it does not import: the caller's message about the missing attribute stands
        return
    if module is None:
        return
    defined = [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == name
    ]
    listed = (
        f" (it defines: {', '.join(defined[:8])}{', ...' if len(defined) > 8 else ''})" if defined else ""
    )
    raise HpoError(
        f"cannot import {path!r}: it names the module {name}, not an object in it; write {name}:Name{listed}"
    )


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
        _refuse_a_module(name, name)
    near = did_you_mean(name, registry)
    library = None if name.lower() in registry else _library_path(name, kind)  # Adam is adam; NAdam is not
    if library is not None:
        raise HpoError(
            f"unknown {kind} {name!r}; for that class give its import path, {library} (built-in: "
            f"{', '.join(registry)})"
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
) -> None:
    """Raise `ValueError` naming the valid arguments when `obj` does not take one of `kwargs`.

    Args:
        obj: the class or function that will be called.
        kwargs: argument names the user gave.
        what: how to name `obj` in the message ("model 'mlp'").
        injected: arguments hpotool passes itself; the user may not set them.
        also: other keys the user may set beside `obj`'s (the section's own), suggested for a misspelt one.
    """
    names, var_kw = accepted_kwargs(obj)
    hidden = set(injected)
    valid = [n for n in names if n not in hidden and n != "self"]
    for key in kwargs:
        if key in hidden:
            raise ValueError(f"{key!r} is set by hpotool for {what}; remove it from the config")
        if not var_kw and key not in valid:
            near = did_you_mean(key, [*valid, *also])
            if not near and ARGUMENT_SYNONYMS.get(key) in {*valid, *also}:
                near = f" (did you mean {ARGUMENT_SYNONYMS[key]!r}?)"
            raise ValueError(
                f"{what} takes no argument {key!r}{near}; it takes: {', '.join(valid) or 'no arguments'}"
            )


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
_SIZE_NAMES = {
    **dict.fromkeys(
        ("input_dim", "in_dim", "input_size", "n_features", "num_features", "n_inputs"), "in_features"
    ),
    **dict.fromkeys(
        ("num_classes", "n_classes", "output_dim", "out_dim", "output_size", "n_outputs", "num_outputs"),
        "out_features",
    ),
    # a schedule's length, which a config could not follow as a search changed epochs or batch_size
    **dict.fromkeys(("n_epochs", "max_epochs", "total_epochs"), "epochs"),
    **dict.fromkeys(
        ("total_steps", "num_steps", "max_steps", "t_total", "num_total_steps"), "num_training_steps"
    ),
}


@functools.cache
def _hints(obj: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(getattr(obj, "__init__") if isinstance(obj, type) else obj)  # noqa: B009
    except Exception:  # an annotation that does not evaluate: nothing to check against
        return {}


@functools.cache
def _adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


# The plain annotations of Optuna's samplers and pruners (`seed: int | None`, `n_startup_trials: int`), as
# their source spells them: a string under `from __future__ import annotations`, which a TYPE_CHECKING import
# elsewhere in the signature keeps typing.get_type_hints from evaluating.
_SCALARS: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


@functools.cache
def _scalar_hints(obj: Callable[..., Any]) -> dict[str, Any]:
    """The arguments of `obj` annotated with scalars alone (`int`, `float | None`, `str | int`), by name; for
    a class, its bases' too (hpotool's `RungTPESampler(**kwargs)` passes them on to Optuna's TPESampler)."""
    import operator

    functions = (
        [getattr(c, "__init__") for c in obj.__mro__ if "__init__" in vars(c)]  # noqa: B009
        if isinstance(obj, type)
        else [obj]
    )
    hints: dict[str, Any] = {}
    for function in reversed(functions):  # a subclass's annotation wins over its base's
        try:
            params = inspect.signature(inspect.unwrap(function)).parameters
        except (TypeError, ValueError):
            continue
        for name, param in params.items():
            ann = param.annotation
            parts = [part.strip() for part in ann.split("|")] if isinstance(ann, str) else [ann]
            types = [_SCALARS.get(part) if isinstance(part, str) else part for part in parts]
            if types and all(t in _SCALARS.values() for t in types):
                hints[name] = functools.reduce(operator.or_, types)
            else:
                hints.pop(name, None)
    return hints


def coerce_scalars(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`kwargs` with each scalar argument of an Optuna sampler or pruner (or hpotool's, built on them)
    converted to the type its signature annotates, as pydantic converts a config's fields (`seed: 1e3`, read
    as 1000.0, is 1000; `n_warmup_steps: 2.0` is 2): `seed: 1.5` or `n_startup_trials: ten` failed inside
    numpy ("Cannot cast scalar from dtype('float64') to dtype('int64')") or at the first trial, naming no
    argument. Other classes check their own arguments and get `kwargs` as they are.

    Raises:
        ValueError: a value that is not of its argument's type, naming the argument.
    """
    from pydantic import ValidationError

    if not str(getattr(obj, "__module__", "")).startswith(("optuna.", "hpotool.")):
        return dict(kwargs)
    hints = _scalar_hints(obj)
    converted = dict(kwargs)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is None:
            continue
        if isinstance(value, bool) and bool not in (typing.get_args(hint) or (hint,)):  # read as 1 otherwise
            raise ValueError(
                f"{what} argument {key!r}: expected {_hint_text(hint)}, got {format_choice(value)}"
            )
        try:
            converted[key] = _adapter(hint).validate_python(value)
        except ValidationError as exc:
            msg, shown = exc.errors()[0]["msg"], format_choice(value)
            # "got a number with a fractional part": the value goes after it, not in a second "got"
            msg = f"{msg} ({shown})" if ", got " in msg else f"{msg}, got {shown}"
            raise ValueError(f"{what} argument {key!r}: {msg}") from None
    return converted


def _hint_text(hint: Any) -> str:
    """`int | None` as a reader writes it."""
    args = typing.get_args(hint) or (hint,)
    return " | ".join("null" if a is type(None) else a.__name__ for a in args)


def check_types(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Raise `ValueError` when a value in `kwargs` does not have the type `obj`'s signature annotates
    (strictly: `"0.1"` is not a float), so `dropout: "0.1"` fails at load time naming the argument, not
    with a TypeError from inside the component. Only for hpotool's own components, whose annotations are
    exact; other code checks its own arguments."""
    from pydantic import ValidationError

    _refuse_booleans_for_numbers(obj, kwargs, what)
    if not str(getattr(obj, "__module__", "")).startswith("hpotool."):
        return
    hints = _hints(obj)
    for key, value in kwargs.items():
        if key not in hints:
            continue
        try:
            _adapter(hints[key]).validate_python(value, strict=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            hint = yaml_bool_hint(value, error["type"])
            raise ValueError(
                f"{what} argument {key!r}: {error['msg']}, got {format_choice(value)}{hint}"
            ) from None


def _refuse_booleans_for_numbers(obj: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Raise `ValueError` for true or false given to an argument whose default is a number (torch's
    `Adam(lr=0.001)`, a user's `width=16`): Python takes it as 1 or 0, so `lr: yes` trained at lr 1.0 and
    `width: on` built a layer of width 1, where annotations (torch's `lr: float | Tensor`) check nothing."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    for key, value in kwargs.items():
        default = params[key].default if key in params else None
        if isinstance(value, bool) and isinstance(default, int | float) and not isinstance(default, bool):
            raise ValueError(
                f"{what} argument {key!r}: expected a number (its default is {format_choice(default)}), got "
                f"{format_choice(value)}; YAML reads an unquoted yes, no, on, off, true or false as a boolean: "
                f"write a number"
            )


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
