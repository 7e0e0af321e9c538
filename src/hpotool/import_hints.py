"""What a failed import of a user's object says besides Python's words: the module meant (a misspelt one),
the folder that holds a module not found and how to import from there (for the command, or for Python code
inside `python_caller`), the submodule that defines a name its package lacks, a definition made only under
`if __name__ == "__main__":`, and the import path of a bare name the current folder's project defines
(`defined_here`)."""

from __future__ import annotations

import collections
import functools
import importlib
import importlib.util
import itertools
import keyword
import os
import re
import sys
import types
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from hpotool.near_names import closest

if TYPE_CHECKING:
    import optuna


def similar_module(missing: str) -> str:
    """` (did you mean 'pkg.models'?)` for a misspelt module: its siblings in the package above it, or the
    modules in the current folder for a top-level one."""
    import pkgutil

    parent, _, last = missing.rpartition(".")
    if not parent:
        top = near_top_module(missing)
        return f" (did you mean {top[0]!r}?)" if top else ""
    try:
        search = getattr(importlib.import_module(parent), "__path__", None)
    except Exception:  # the package itself does not import: nothing to compare with
        return ""
    if search is None:
        return ""
    names = [m.name for m in pkgutil.iter_modules(search)]
    near = closest(last, [n for n in names if n != last], n=1, ignore_case=True)  # never the name not found
    return f" (did you mean {parent + '.' + near[0]!r}?)" if near else ""


def near_top_module(missing: str) -> tuple[str, str] | None:
    """The top-level module closest to `missing` (misspelt), among the current folder's and those of the
    user's projects pip installed from their folders, and where it is found, in words (`in the current
    folder`, `installed editable (pip install -e) from PROJ`); None for none close. The current folder's
    comes first, as Python imports it first."""
    import pkgutil

    from hpotool.installed import local_installs

    where = {m.name: "in the current folder" for m in pkgutil.iter_modules([os.getcwd()])}
    for install in local_installs():
        how = (
            f"installed editable (pip install -e) from {install.folder}"
            if install.editable
            else f"installed from {install.folder} (pip install, without -e: a copy in {install.site})"
        )
        for name in install.imports:
            where.setdefault(name, how)
    near = closest(missing, [n for n in where if n != missing], n=1, ignore_case=True)  # never itself
    return (near[0], where[near[0]]) if near else None


# Folders of the current one never searched for a user's package: environments, caches, version control.
_NOT_CODE = {"node_modules", "site-packages", "__pycache__", "venv", "env", "build", "dist"}


_FILE_READ: ContextVar[str | None] = ContextVar("hpotool_file_read", default=None)


@contextmanager
def imports_for(path: str | os.PathLike[str]) -> Iterator[None]:
    """Imports in this block are named by the file `path` (a config, a saved model): a module not found is
    looked for in the folders above that file too, after those near the current folder. A `best_run.yaml`
    that export-best wrote into `proj/studies/NAME/`, trained from a folder beside `proj/`, was told only to
    run from "the folder that holds nets/"."""
    token = _FILE_READ.set(os.path.abspath(path))
    try:
        yield
    finally:
        _FILE_READ.reset(token)


def file_read() -> str | None:
    """The absolute path of the file whose imports these are (`imports_for`), or None."""
    return _FILE_READ.get()


def _folder_holding(top: str) -> str | None:
    """The folder nearest the current one, one of its subfolders (`proj/` beside `-r proj/run.yaml`, a
    `src/` layout) or one above it (run from `configs/`), or else one above the file whose imports these are
    (`imports_for`), that holds the package `top/` or the module `top.py` an import path starts with, which
    Python did not find; None where none does. Told only "run hpotool from the folder that holds seqpkg/", a
    user run from the folder above theirs had to guess which."""

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
    file = _FILE_READ.get()
    above_file = [str(p) for p in Path(file).parents] if file is not None else []
    for folder in [*below, *map(str, Path(cwd).parents), *above_file]:
        if os.path.abspath(folder) not in searched and holds(folder):
            return folder
    return None


def imports_for_study(study: optuna.Study) -> AbstractContextManager[None]:
    """`imports_for` the file a study is stored in (a SQLite or journal file: `proj/studies/NAME.db`), so a
    module of the study's project not found from here is looked for in the folders above that file: told
    only "run hpotool from the folder that holds mypkg/", a user who ran train-from-best with --storage from
    another folder had to guess which. No file (a server): imports as they are."""
    from hpotool.storage_url import storage_file, storage_url_of

    url = storage_url_of(study)
    file = storage_file(url) if url is not None else None
    return imports_for(file) if file is not None else nullcontext()


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


def not_found_hint(top: str) -> str:
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
    from hpotool.installed import install_hint

    if holder is not None:
        return (
            f"; imports resolve from the current folder and PYTHONPATH, and {holder} holds {top}: run "
            f"hpotool from there (cd {os.path.relpath(holder)}), add that folder to PYTHONPATH"
            + install_hint(_project_of(holder))
        )
    return (
        f"; imports resolve from the current folder and PYTHONPATH: run hpotool from the folder "
        f"that holds {top}/ (or {top}.py), add that folder to PYTHONPATH" + install_hint(None)
    )


def _project_of(holder: str) -> str | None:
    """The project folder (one with a pyproject.toml, setup.py or setup.cfg) that is `holder` or holds it as
    its `src/`, which pip installs; None for a plain folder."""
    for folder in (holder, os.path.dirname(holder) if os.path.basename(holder) == "src" else holder):
        if any(os.path.isfile(os.path.join(folder, f)) for f in ("pyproject.toml", "setup.py", "setup.cfg")):
            return folder
    return None


def defined_in_a_submodule(package: types.ModuleType, name: str, attr: str) -> str:
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


def main_block_definition(module: types.ModuleType, name: str) -> int | None:
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


# Bounds of the search for a bare name's definition (`defined_here`): the .py files read, the entries of the
# folders listed, and a file's size; a folder with a large data set or a home folder costs no more than these.
_MOST_FILES = 2000
_MOST_ENTRIES = 20000
_MOST_BYTES = 1_000_000


def defined_here(name: str) -> str:
    """`did you mean mylab.models:Net?` for a bare name (`model: {name: Net}`) that a module under the current
    folder defines at its top level (a class or a function; up to three such modules, the shallowest first),
    each as the import path to write; empty where none does. The modules are read (`ast`), never imported:
    bounded in number and size, skipping hidden folders, environments, caches and builds. A module of a
    package whose project root is a folder below this one (a `src/` layout: `src/mylab/models.py`) is named
    from that root, with the folder to run from. The line said only "unknown model 'Net'", though the user's
    project defines it one import path away."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return ""
    cwd = os.getcwd()
    roots = tuple(sorted({os.path.abspath(p or cwd) for p in sys.path} | {cwd}))
    found = _definitions(cwd, name, roots)
    if not found:
        return ""
    shown = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"
    return f"did you mean {shown}?"


@functools.lru_cache(maxsize=32)
def _definitions(cwd: str, name: str, roots: tuple[str, ...]) -> tuple[str, ...]:
    """The import paths of up to three top-level definitions of `name` under `cwd` (`defined_here`), found
    once per name: the checks that only probe a component (and catch its error) do not read the files again."""
    pattern = re.compile(rb"^(?:async[ \t]+def|def|class)[ \t]+" + re.escape(name.encode()) + rb"\b", re.M)
    found: list[str] = []
    queue, files, entries = collections.deque([cwd]), 0, 0
    while queue and len(found) < 3 and files < _MOST_FILES and entries < _MOST_ENTRIES:
        folder = queue.popleft()
        try:
            with os.scandir(folder) as listing:
                listed = sorted(itertools.islice(listing, _MOST_ENTRIES - entries), key=lambda e: e.name)
        except OSError:
            continue
        entries += len(listed)
        for entry in listed:
            if entry.name.endswith(".py") and _is_file(entry):
                files += 1
                if files > _MOST_FILES or len(found) == 3:
                    break
                if _defines(entry.path, name, pattern):
                    path = _import_path(entry.path, name, cwd, roots)
                    found += [path] if path is not None else []
            elif _searched(entry, roots):
                queue.append(entry.path)
    return tuple(found)


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a file (or a link to one); False for one that cannot be read."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _searched(entry: os.DirEntry[str], roots: tuple[str, ...]) -> bool:
    """Whether the folder `entry` may hold a module of the user's: not a link, nor hidden, an environment
    (one with a pyvenv.cfg, whatever its name), a cache or a build, and named as a package can be (or on
    sys.path)."""
    try:
        if not entry.is_dir(follow_symlinks=False):
            return False
    except OSError:
        return False
    name = entry.name
    if name.startswith(".") or name in _NOT_CODE or name == "dist-packages" or name.endswith(".egg-info"):
        return False
    if not (name.isidentifier() and not keyword.iskeyword(name)) and entry.path not in roots:
        return False
    return not os.path.isfile(os.path.join(entry.path, "pyvenv.cfg"))


def _defines(file: str, name: str, pattern: re.Pattern[bytes]) -> bool:
    """Whether the module `file` defines the class or function `name` at its top level (not under an `if`,
    nor in a class)."""
    import ast

    try:
        if os.path.getsize(file) > _MOST_BYTES:
            return False
        with open(file, "rb") as fh:
            source = fh.read()
        if not pattern.search(source):  # most files: no parse
            return False
        tree = ast.parse(source, filename=file)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return any(isinstance(node, kinds) and node.name == name for node in tree.body)


def _import_path(file: str, name: str, cwd: str, roots: tuple[str, ...]) -> str | None:
    """`mylab.models:Net` for `file`, as imported from the deepest folder of sys.path (or the current one)
    that holds it; for a module of a package whose project root is a folder below that (`lib/mylab/`, whose
    `lib/` holds no __init__.py), or of a `src/` layout, the path from that root and the folder to run from.
    None for a file no import path names (`my-nets.py`)."""
    folder = os.path.dirname(file)
    root = max((r for r in roots if folder == r or folder.startswith(r.rstrip(os.sep) + os.sep)), key=len)
    src = os.path.join(cwd, "src")
    top = folder
    if os.path.isfile(os.path.join(folder, "__init__.py")):  # a package's: from the folder above the package
        while top != root and os.path.isfile(os.path.join(top, "__init__.py")):
            top = os.path.dirname(top)
    elif root == cwd and (folder == src or folder.startswith(src + os.sep)):
        top = src  # a src/ layout, which imports do not search (README: run from src/, or PYTHONPATH)
    else:
        top = root  # a module of a plain folder: the folders joined by dots, as Python imports them
    parts = Path(os.path.relpath(file, top)).with_suffix("").parts
    parts = parts[:-1] if parts and parts[-1] == "__init__" else parts
    if not parts or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        return None
    path = f"{'.'.join(parts)}:{name}"
    if top == root:
        return path
    below = os.path.relpath(top, cwd)
    return f"{path} (run hpotool from {below}/, or add {below} to PYTHONPATH)"
