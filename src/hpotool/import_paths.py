"""Import a user's object from its import path (`package.module:Name`), refusing in one line a file path, a
relative import, a module named without its object, or a module of the current folder that another of its
name shadows."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import re
import sys
import types
from pathlib import PurePath
from typing import Any

from hpotool.errors import HpoError
from hpotool.import_hints import (
    defined_here,
    defined_in_a_submodule,
    main_block_definition,
    near_top_module,
    not_found_hint,
    similar_module,
)
from hpotool.interrupts import unswallowed
from hpotool.near_names import did_you_mean
from hpotool.user_code import MOVES_RELATIVE_PATHS, chdir_undone, first_line, user_frame


def is_import_path(name: str) -> bool:
    """Whether `name` looks like `package.module:Name` or `package.module.Name`."""
    return ":" in name or "." in name


def import_object(path: str) -> Any:
    """Import `package.module:Name` (or `package.module.Name`) and return the attribute."""
    module_name, attr = _split_import_path(path)
    module = _import_module(path, module_name, attr)
    obj, owner, found = module, f"module {module_name!r}", []
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _no_attribute(path, module_name, attr, obj, owner, part) from None
        found.append(part)
        owner = repr(f"{module_name}:{'.'.join(found)}")
    return obj


def _split_import_path(path: str) -> tuple[str, str]:
    """The module and the attribute `path` names, refusing a path that is not an import path.

    Raises:
        HpoError: for no module or attribute, a file path, or a relative import, saying what to write.
    """
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        defined = defined_here(path)  # `trainer: {function: train}`, which mylab/training.py defines
        raise HpoError(
            f"{path!r} is not an import path; write it as package.module:Name"
            + (f"; {defined}" if defined else "")
        )
    if "/" in module_name or "\\" in module_name:  # never a module name; a relative one fails otherwise
        raise _data_file(path, attr) or _file_path(path, module_name, attr)
    if module_name.startswith("."):  # a package's own `from .models import Net`: no package to start from
        raise HpoError(
            f"cannot import {path!r}: {module_name!r} is a relative import, which has no package to start from "
            f"here; write {module_name.lstrip('.')}:{attr}, the path from the folder hpotool runs in"
        )
    return module_name, attr


def _import_module(path: str, module_name: str, attr: str) -> types.ModuleType:
    """The module `module_name` of `path`, imported with the current folder on sys.path.

    Raises:
        HpoError: for a module not found (a close name, or a file path) or one that raised while importing,
            saying where in the user's code.
    """
    # Users run hpotool from their project folder and expect its modules to import, as `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    held = io.StringIO()  # what the module writes to stderr as it imports: said after, unless it exits
    try:
        # A Ctrl-C that the import swallowed (torch's C code catches its imports' errors) is still raised,
        # not taken for the import's failure it caused, nor forgotten where the import went on.
        with contextlib.redirect_stderr(held), unswallowed(), chdir_undone(cwd) as moved:
            module = importlib.import_module(module_name)
    except SystemExit as exc:  # argparse's parse_args() at its top level, on hpotool's command line
        raise _exited(path, module_name, exc, held.getvalue()) from None
    except ModuleNotFoundError as exc:
        sys.stderr.write(held.getvalue())
        raise _not_found(path, module_name, attr, exc) from None
    except Exception as exc:  # the user's module raised while importing (a SyntaxError, an ImportError, ...)
        sys.stderr.write(held.getvalue())
        where = user_frame(exc)
        install = ""
        if isinstance(exc, FileNotFoundError) and where is None:  # a loader's: hatchling's editables hook
            from hpotool.installed import not_installed_hint

            install = not_installed_hint(path, module_name.split(".")[0])
        raise HpoError(
            f"cannot import {path!r}: importing {module_name!r} raised {first_line(exc)}"
            + (f" at {where}" if where else "")
            + install
        ) from None
    sys.stderr.write(held.getvalue())
    if moved:
        sys.modules.pop(module_name, None)  # imported again by a later call, which refuses it again
        raise _changed_folder(path, module_name, *moved)
    from hpotool.installed import note_a_stale_copy

    note_a_stale_copy(module_name, getattr(module, "__file__", None))
    return module


def _changed_folder(path: str, module_name: str, folder: str | None, where: str | None) -> HpoError:
    """The mistake of a module that changed the working folder as it imported (a script's
    `os.chdir(os.path.dirname(__file__))`, to read its data by relative paths): hpotool's own relative paths
    moved with it, and `optimize` said "opt.yaml: no such file" (studies/ and runs/ would have gone into the
    module's folder)."""
    return HpoError(
        f"cannot import {path!r}: importing {module_name!r} changed the working folder to {folder} (os.chdir"
        + (f" at {where}" if where else "")
        + f'), {MOVES_RELATIVE_PATHS}; remove it, or move it under if __name__ == "__main__":, and build the '
        "module's own paths from __file__ (Path(__file__).parent / 'data')"
    )


def _exited(path: str, module_name: str, exc: SystemExit, said: str) -> HpoError:
    """The mistake of a module that calls sys.exit() as it imports, which ended hpotool: silently with exit
    code 0, or with argparse's usage and error lines (`said`, left out) where its parse_args() at the module's
    top level read hpotool's command line."""
    where = user_frame(exc)
    found = re.search(r"^usage:.*^\S*: error: (.*)$", said, re.M | re.S)
    argparse = ""
    if found is not None:
        error = found.group(1).strip().splitlines()[-1]
        error = "unrecognized arguments" if error.startswith("unrecognized arguments") else error
        argparse = f" (argparse's parse_args() at a module's top level reads hpotool's command line: {error})"
    return HpoError(
        f"cannot import {path!r}: importing {module_name!r} called sys.exit({exc.code!r})"
        + (f" at {where}" if where else "")
        + f"{argparse}, which would end hpotool; move the module's script code under "
        f'if __name__ == "__main__":'
    )


def _not_found(path: str, module_name: str, attr: str, exc: ModuleNotFoundError) -> HpoError:
    """The mistake of a module that did not import: the path names no module (a close name to write, or the
    file path it is), or the user's module imports one that is missing (where it does)."""
    top = module_name.split(".")[0]
    missing = exc.name or ""
    wrong_path = module_name == missing or module_name.startswith(missing + ".")
    inside = user_frame(exc)
    if not wrong_path and inside is not None:
        # the user's module imports something that is missing: say where, not that the path is wrong
        return HpoError(
            f"cannot import {path!r}: importing {module_name!r} raised {first_line(exc)} at {inside}"
            + _missing_import_hint(missing, inside)
        )
    if wrong_path and module_name.endswith(".py"):
        return _file_path(path, module_name, attr)
    if wrong_path and (data_file := _data_file(path, attr)):
        return data_file
    from hpotool.installed import not_installed_hint, other_environment_hint

    if wrong_path and "." not in missing:
        installed = not_installed_hint(path, top) or other_environment_hint(top)
        if installed:
            return HpoError(f"cannot import {path!r}: {exc}{installed}")
    if wrong_path and "." in missing and _folderless_namespace(top):
        installed = not_installed_hint(path, top)  # setuptools' finder, its folder gone: an empty namespace
        if installed:
            return HpoError(f"cannot import {path!r}: {exc}{installed}")
    if wrong_path and "." not in missing:
        # a misspelt top-level name: the near one is the fix, not a folder to run from (said only for none)
        near = near_top_module(top)
        if near is None:
            return HpoError(f"cannot import {path!r}: {exc}{not_found_hint(top)}")
        name, where = near
        return HpoError(
            f"cannot import {path!r}: {exc} (did you mean {name!r}?); {name} is {where}: write "
            f"{name}{path[len(top) :]}"
        )
    hint = similar_module(missing) if wrong_path else ""
    return HpoError(f"cannot import {path!r}: {exc}{hint}")


def _folderless_namespace(top: str) -> bool:
    """Whether the imported package `top` is a namespace package none of whose folders exists: what
    setuptools' editable finder (`__editable___*_finder.py`) of a flat-layout namespace package imports once
    its project folder moved, so that `nslab.models` is the module not found, not `nslab`."""
    module = sys.modules.get(top)
    if module is None or getattr(module, "__file__", None) is not None:
        return False
    return not any(os.path.isdir(p) for p in getattr(module, "__path__", None) or [])


def _missing_import_hint(missing: str, inside: str) -> str:
    """What to do about the module `missing` that a user's module imports at `inside` (`path:line in f`):
    import it by its package where it is a module beside that file (`import utils` in mylab/models.py, which
    worked when the file ran as a script from its folder), or else install it in the Python hpotool runs in
    (installed in another environment, the one the user's scripts run in, it is not in hpotool's)."""
    from hpotool.installed import missing_dependency_hint

    top = missing.split(".")[0]
    folder = os.path.dirname(os.path.abspath(re.sub(r":\d+( in .*)?$", "", inside)))
    if not (os.path.isfile(os.path.join(folder, f"{top}.py")) or os.path.isdir(os.path.join(folder, top))):
        return missing_dependency_hint(missing)
    if not os.path.isfile(os.path.join(folder, "__init__.py")):  # a plain folder's: not on sys.path here
        return ""
    package = [os.path.basename(folder)]
    while os.path.isfile(os.path.join(os.path.dirname(folder), "__init__.py")):
        folder = os.path.dirname(folder)
        package.insert(0, os.path.basename(folder))
    return (
        f"; {top} is a module beside that file, in the package {'.'.join(package)}, which Python does not "
        f"search by its bare name: import it by its package (from {'.'.join(package)} import {top}, or "
        f"from . import {top})"
    )


def _no_attribute(path: str, module_name: str, attr: str, obj: Any, owner: str, part: str) -> HpoError:
    """The mistake of an `obj` (`owner` in words) without the `part` of `attr` that `path` names: a close name
    to write, or a submodule that defines it.

    Raises:
        HpoError: at once, for a module of the current folder another of its name shadows, or a module
            named without its object.
    """
    _refuse_a_shadowed_module(path, module_name, attr.split(".")[0])
    if isinstance(obj, types.ModuleType):
        refuse_a_module(path, f"{obj.__name__}.{part}")
        line = main_block_definition(obj, part)
        if line is not None:
            return HpoError(
                f"cannot import {path!r}: {owner} defines {part!r} only under "
                f'if __name__ == "__main__": (line {line}), which does not run when hpotool imports '
                f"it; move the definition to the module's top level"
            )
    names = [n for n in dir(obj) if not n.startswith("_")]
    near = did_you_mean(part, names, ignore_case=True)
    if not near and isinstance(obj, types.ModuleType):
        near = defined_in_a_submodule(obj, part, attr)
    return HpoError(f"cannot import {path!r}: {owner} has no attribute {part!r}{near}")


# The suffixes of files a user may give where an import path goes: data to train on, and saved weights.
_DATA_SUFFIXES = {
    *("csv", "tsv", "txt", "json", "jsonl", "parquet", "feather", "arrow", "npy", "npz"),
    *("h5", "hdf5", "xlsx", "xls", "pkl", "pickle", "mat", "zip", "gz"),
}
_WEIGHT_SUFFIXES = {"pt", "pth", "ckpt", "safetensors", "onnx", "bin"}


def _data_file(path: str, suffix: str) -> HpoError | None:
    """The mistake of a data file (`data: {name: data/train.csv}`) or a saved model (`model: {name:
    model.pt}`) written where an import path goes: it said "write data.train:csv", or "No module named
    'model'", as if the file were a module. None for a path that ends otherwise, or that names its object
    with a colon."""
    if ":" in path or suffix.lower() not in _DATA_SUFFIXES | _WEIGHT_SUFFIXES:
        return None
    said = f"cannot import {path!r}: it names a .{suffix} file, not an import path (package.module:Name)"
    if suffix.lower() in _WEIGHT_SUFFIXES:
        return HpoError(
            f"{said}; give the class that builds the model (name: mypkg.nets:Net), which hpotool trains from "
            f"its start (hpotool.saved.load_model loads a model.pt that hpotool saved)"
        )
    return HpoError(
        f"{said}; hpotool reads a file through a function of yours: write one that loads it and returns "
        f"(x, y), and give its import path with the file as its argument (name: mypkg.data:load, path: "
        f"{path})"
    )


def _file_path(path: str, module_name: str, attr: str) -> HpoError:
    """The mistake of a file path written where an import path goes (`train.py:fit`, `src/nets.py:Net`):
    the import path to write instead, and the folder to run hpotool from."""
    file = PurePath(module_name.replace("\\", "/"))
    file = file.with_suffix("") if file.suffix == ".py" else file
    said = f"cannot import {path!r}: {module_name!r} is a file path, not an import path; write"
    parts = [p for p in file.parts if p != "."]
    package = _package_module(str(file))
    if package is not None:
        name, root = package
        if root is None:
            return HpoError(f"{said} {name}:{attr}, the module Python imports that file as")
        from hpotool.installed import copy_hint, installed_copy

        copy = installed_copy(name.split(".")[0], root)
        if copy is not None:  # `pip install .`: running from `root` would import this file, but not elsewhere
            return HpoError(f"{said} {name}:{attr}{copy_hint(copy)}")
        return HpoError(
            f"{said} {name}:{attr} (the file is in a package, named from the folder above it) and run hpotool "
            f"from {root} (or add it to PYTHONPATH, or pip install -e your project)"
        )
    if file.is_absolute() or ".." in parts:
        return HpoError(
            f"{said} {file.name}:{attr} and run hpotool from {file.parent} (or add it to PYTHONPATH)"
        )
    top = f"{parts[0]}/" if len(parts) > 1 else f"{parts[0]}.py"
    return HpoError(
        f"{said} {'.'.join(parts)}:{attr} (folders joined by dots, without .py), run from the folder that "
        f"holds {top}"
    )


def _package_module(file: str) -> tuple[str, str | None] | None:
    """The module a file path (`src/mylab/models`, without .py) names inside a package: its dotted name
    (`mylab.models`) and None where Python imports that name from that file already (an installed project),
    or else the folder to run from (the one above the package's top); None for a file that is in no package,
    or is not there. A `src/` layout's file was told to be written `src.mylab.models:Net`, and an absolute
    path's `models:Net`, run from inside the package: both break the package's own imports."""
    path = os.path.abspath(file.replace("\\", "/"))
    if not os.path.isfile(f"{path}.py"):  # not here: the package Python imports that holds it, if one does
        given = PurePath(file.replace("\\", "/")).parts
        for i in range(len(given) - 1):
            if all(p.isidentifier() for p in given[i:]) and any(
                os.path.isfile(os.path.join(w, *given[i + 1 :]) + ".py") for w in _package_folders(given[i])
            ):
                return ".".join(given[i:]), None
        return None
    if not os.path.isfile(os.path.join(os.path.dirname(path), "__init__.py")):
        if _module_file(os.path.basename(path)) == f"{path}.py":  # an installed single module (py-modules)
            return os.path.basename(path), None
        return _namespace_module(path)
    parts, root = [os.path.basename(path)], os.path.dirname(path)
    while os.path.isfile(os.path.join(root, "__init__.py")):
        parts.insert(0, os.path.basename(root))
        root = os.path.dirname(root)
    if not all(p.isidentifier() for p in parts) or root == os.getcwd():  # from here: said as it is
        return None
    if os.path.join(root, parts[0]) in _package_folders(parts[0]):
        return ".".join(parts), None
    return ".".join(parts), os.path.relpath(root) if root.startswith(os.getcwd() + os.sep) else root


def _namespace_module(path: str) -> tuple[str, str | None] | None:
    """`_package_module` for the file `path` (without .py) in a folder without `__init__.py` that is part of
    a namespace package Python imports: an installed project's (`pip install -e`: None, as Python imports that
    file; `pip install .`: the folder to run from, as for a regular package's source); None for a plain
    folder, or one found only as the current folder's. Told "write models:Net and run hpotool from
    .../nslab", which imports the module outside its package."""
    cwd = os.getcwd()
    parts, folder = [os.path.basename(path)], os.path.dirname(path)
    while os.path.dirname(folder) not in (folder, cwd):
        parts.insert(0, os.path.basename(folder))
        if not all(p.isidentifier() for p in parts):
            return None
        found = _package_folders(parts[0])
        if folder in found:
            return ".".join(parts), None
        if any(os.path.isfile(os.path.join(w, *parts[1:]) + ".py") for w in found):
            root = os.path.dirname(folder)
            return ".".join(parts), os.path.relpath(root) if root.startswith(cwd + os.sep) else root
        if os.path.isfile(os.path.join(folder, "__init__.py")):  # a regular package's: named from there
            return None
        folder = os.path.dirname(folder)
    return None


def _module_file(name: str) -> str | None:
    """The file Python imports the top-level module `name` from (found, not imported), or None."""
    try:
        spec = importlib.util.find_spec(name) if name.isidentifier() else None
    except (ImportError, ValueError):
        return None
    return os.path.abspath(spec.origin) if spec is not None and spec.has_location and spec.origin else None


def _package_folders(top: str) -> list[str]:
    """The folders Python imports the package `top` from (found, not imported); none for a module that is not
    a package, or not found."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    return [os.path.abspath(w) for w in (spec.submodule_search_locations or [])] if spec is not None else []


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


def refuse_a_module(path: str, name: str) -> None:
    """Raise `HpoError` when `name` is a module (`package.module` written without `:Name`), listing the
    functions and classes it defines; return when it is not one."""
    try:
        # a Ctrl-C the import caught is raised, not taken for a module that does not import
        with unswallowed():
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
