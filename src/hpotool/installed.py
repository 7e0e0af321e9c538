"""A user's own project installed with pip (`pip install -e .`, or `pip install .`) as hpotool sees it: the
folders of site-packages that hold a project pip installed from a local folder (`local_packages`: the user's
code, not a library's), and what a failed import or an out-of-date copy says about such an install (the
distribution's name written for its import name, an editable install whose folder moved, the Python the
project must be installed in, a copy older than the source being edited)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

_log = logging.getLogger("hpotool")


@dataclass(frozen=True)
class Install:
    """A distribution pip installed from a local folder (its `direct_url.json` says `dir_info`)."""

    name: str  # the distribution's name, as pip knows it (`my-lab`)
    imports: tuple[str, ...]  # the top-level names Python imports it by (`mylab`)
    folder: str  # the project folder it was installed from
    editable: bool  # `pip install -e`: Python reads the folder's files; otherwise a copy in site-packages
    site: str  # the folder that holds its .dist-info


def _squashed(name: str) -> str:
    """`name` without its separators, lower case: `my-lab`, `my_lab`, `My.Lab` and `mylab` alike."""
    return re.sub(r"[-_.]+", "", name).lower()


def _import_names(dist: metadata.Distribution, folder: str | None) -> tuple[str, ...]:
    """The top-level names `dist` is imported by: its `top_level.txt` (setuptools), else the first parts of
    the files it installed, else (an editable install that installed none: hatchling's .pth) the stem of
    flit's .pth (named after the module), or the packages in its project folder or the folder's `src/`."""
    text = dist.read_text("top_level.txt")
    names = [n.strip() for n in text.splitlines() if n.strip()] if text else []
    if not names:
        for file in dist.files or []:
            top = file.parts[0] if file.parts else ""
            top = top[:-3] if top.endswith(".py") and len(file.parts) == 1 else top
            if top.isidentifier() and not top.startswith("_") and top not in names:
                names.append(top)
    for file in [] if names else dist.files or []:  # hatchling's dev-mode-exact: the editables hook maps them
        if len(file.parts) == 1 and file.name.startswith("_editable_impl_") and file.suffix == ".py":
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for mapped in re.findall(r"map_module\(\s*['\"]([\w.]+)['\"]", text):
                if mapped.split(".")[0] not in names:
                    names.append(mapped.split(".")[0])
    if not names and re.search(r"^Generator: flit\b", dist.read_text("WHEEL") or "", re.M):
        # flit's editable install is a .pth named after the module (mylab.pth): its name where the folder is gone
        names = [
            f.stem
            for f in dist.files or []
            if len(f.parts) == 1 and f.suffix == ".pth" and f.stem.isidentifier()
        ]
    if not names and folder is not None:
        for base in (os.path.join(folder, "src"), folder):
            try:
                names += sorted(
                    e.name
                    for e in os.scandir(base)
                    if e.is_dir()
                    and e.name.isidentifier()
                    and os.path.isfile(os.path.join(e.path, "__init__.py"))
                )
            except OSError:
                continue
            if names:
                break
    return tuple(names)


def _folder_of(dist: metadata.Distribution) -> tuple[str, bool] | None:
    """The local folder `dist` was installed from and whether editably; None for one installed otherwise
    (from an index, a wheel or archive, a VCS URL)."""
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return None
    if not isinstance(direct, dict) or not isinstance(direct.get("dir_info"), dict):
        return None
    url = urlparse(str(direct.get("url", "")))
    if url.scheme != "file":
        return None
    return os.path.abspath(unquote(url.path)), bool(direct["dir_info"].get("editable"))


def _distributions() -> Iterator[metadata.Distribution]:
    """The distributions on sys.path, each name once (the first found, as Python imports it)."""
    seen = set()
    for dist in metadata.distributions():
        name = _squashed(dist.metadata["Name"] or "")
        if name and name not in seen:
            seen.add(name)
            yield dist


@functools.lru_cache(maxsize=1)
def _installs(path: tuple[str, ...]) -> tuple[Install, ...]:
    """The projects pip installed from local folders into the sys.path `path`, found once: only the
    .dist-info folders that hold a direct_url.json are read (a handful among a site-packages' hundreds)."""
    found, seen = [], set()
    for entry in path:
        try:
            listed = sorted(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
        except OSError:
            continue
        for info in listed:
            name = _squashed(info.partition("-")[0])
            if name in seen:
                continue
            seen.add(name)  # the first on sys.path, as Python imports it
            if not os.path.isfile(os.path.join(entry or ".", info, "direct_url.json")):
                continue
            dist = metadata.PathDistribution(Path(os.path.abspath(os.path.join(entry or ".", info))))
            local = _folder_of(dist)
            if local is not None:
                folder, editable = local
                site = os.path.abspath(entry or ".")
                found.append(
                    Install(dist.metadata["Name"], _import_names(dist, folder), folder, editable, site)
                )
    return tuple(found)


def local_installs() -> tuple[Install, ...]:
    """The projects pip installed from local folders (`pip install .`, `pip install -e .`) on sys.path."""
    return _installs(tuple(sys.path))


def local_packages() -> tuple[str, ...]:
    """The folders and files in site-packages of the projects pip copied there from a local folder (`pip
    install .`, not -e): the user's own code, though it lies among the libraries'. An error in an installed
    copy of the user's model was said to be at torch's `module.py`, not at the line of theirs that raised."""
    held = []
    for install in local_installs():
        if install.editable or "hpotool" in install.imports:  # hpotool's own code, installed from a checkout
            continue
        for name in install.imports:
            held += [os.path.join(install.site, name) + os.sep, os.path.join(install.site, f"{name}.py")]
    return tuple(held)


def installed_copy(top: str, root: str) -> Install | None:
    """The project pip copied into site-packages (`pip install .`, not -e) from the folder `root` (or the
    project whose `src/` it is) that Python imports the package `top` from: a file path into that source,
    told "write mylab.models:Net and run hpotool from src", named a module whose import reads the copy, not
    the file given. None for a package not installed so, or imported from elsewhere."""
    root = os.path.abspath(root)
    for install in local_installs():
        if install.editable or top not in install.imports:
            continue
        if root not in (install.folder, os.path.join(install.folder, "src")):
            continue
        if os.path.exists(os.path.join(install.site, top)):
            return install
    return None


def copy_hint(install: Install) -> str:
    """`, which Python imports from the copy pip installed in SITE ...`: what to do for the edits of a source
    file of the project `install` (copied into site-packages) to run, as `note_a_stale_copy` says it."""
    return (
        f", which Python imports from the copy pip installed in {install.site} (pip install {install.folder}, "
        f"without -e), not from that file: your edits there do not run until you install it again ({_python()} install "
        f"{install.folder}), or install it editable once ({_python()} install -e {install.folder})"
    )


def _python() -> str:
    """The Python hpotool runs in, as a command to run pip with."""
    return f"{sys.executable} -m pip"


def not_installed_hint(path: str, top: str) -> str:
    """What a top-level module `top` of the import path `path`, not found, may be as an installed project:
    the distribution's name written for its import name (`my-lab.models:Net`), or the import name of a
    project installed editable from a folder since moved or deleted (or one that no longer holds it, or whose
    import hook failed), or else the editable install from a folder since moved or deleted whose import names
    are not recorded (hatchling, PDM and Poetry record only a .pth named after the distribution, and the
    folder that held the packages is gone); empty for none of these."""
    unnamed = ""  # a moved editable install that records no import name (hatchling, PDM, Poetry)
    for dist in _distributions():
        name = dist.metadata["Name"] or ""
        local = _folder_of(dist)
        if _squashed(name) != _squashed(top) and (local is None or not local[1]):
            continue  # neither named so nor an editable install: its files are not read (torch's RECORD)
        imports = _import_names(dist, local[0] if local else None)
        if local is not None and local[1] and not imports and not os.path.isdir(local[0]) and not unnamed:
            unnamed = (
                f"; {name} is installed editable (pip install -e) from {local[0]}, which no longer exists (moved "
                f"or deleted), and may have held {top} (its install names no package): install it again from "
                f"its folder now ({_python()} install -e NEW_FOLDER)"
            )
        if _squashed(name) == _squashed(top) and top not in imports and imports:
            meant = [i for i in imports if _squashed(i) == _squashed(top)] or list(imports)
            rest = path[len(top) :]
            return (
                f"; {top} names the distribution {name} (pip's name for it), which Python imports as "
                f"{', '.join(imports)}: write {meant[0]}{rest}"
            )
        if local is None or not local[1] or (top not in imports and _squashed(name) != _squashed(top)):
            continue
        folder = local[0]
        if not os.path.isdir(folder):
            return (
                f"; {name} is installed editable (pip install -e) from {folder}, which no longer exists (moved or "
                f"deleted): install it again from its folder now ({_python()} install -e NEW_FOLDER)"
            )
        if not any(
            os.path.exists(os.path.join(folder, *s, t)) for s in ([], ["src"]) for t in (top, f"{top}.py")
        ):
            return (
                f"; {name} is installed editable (pip install -e) from {folder}, which holds no {top} now: "
                f"install it again ({_python()} install -e {folder})"
            )
        return (
            f"; {name} is installed editable (pip install -e) from {folder}, which holds {top}, "
            + (_unloaded_hook(dist) or "yet Python does not find it there")
            + f": install it again ({_python()} install -e {folder})"
        )
    return unnamed


def _unloaded_hook(dist: metadata.Distribution) -> str:
    """`but its import hook (x.pth in SITE) failed as Python started, as said above` where a .pth file that
    `dist` installed (an editable install's: hatchling's `dev-mode-exact` and setuptools' import finders) runs
    an `import` that did not load: `editables`, the module hatchling's hook imports, left out by `pip install
    --no-deps -e`. Python prints the error once, as it starts, and the package is not found later, where its
    folder still holds it. Empty for none."""
    for file in dist.files or []:
        if len(file.parts) != 1 or not file.name.endswith(".pth"):
            continue
        path = str(dist.locate_file(file))
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            found = re.match(r"import\s+([\w.]+)", line)
            if found is not None and found.group(1) not in sys.modules:
                return (
                    f"but its import hook ({file.name} in {os.path.dirname(path)}) failed as Python started "
                    f'("Error processing line ... of {file.name}", printed above)'
                )
    return ""


def other_environment_hint(top: str) -> str:
    """`; mylab is installed in the activated environment ..., not in the one hpotool runs in` where the
    virtual or conda environment the shell has activated (VIRTUAL_ENV, CONDA_PREFIX) is not hpotool's and
    holds the package `top`: `hpotool` on the PATH is another environment's (pipx's, the system's), which the
    line only told to change folders or PYTHONPATH. Empty otherwise."""
    import glob

    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        env = os.environ.get(variable)
        if not env or os.path.realpath(env) == os.path.realpath(sys.prefix):
            continue
        sites = glob.glob(os.path.join(env, "lib", "python*", "site-packages"))
        sites += glob.glob(os.path.join(env, "Lib", "site-packages"))
        if any(_holds(site, top) for site in sites):
            python = os.path.join(env, "Scripts" if os.name == "nt" else "bin", "python")
            return (
                f"; {top} is installed in the environment {env} ({variable}, the one the shell has activated), "
                f"not in the one hpotool runs in ({sys.prefix}): install hpotool there ({python} -m pip install "
                f"hpotool) and run its hpotool, or install your project in hpotool's ({_python()} install -e "
                f"YOUR_PROJECT)"
            )
    return ""


def _holds(site: str, top: str) -> bool:
    """Whether the site-packages folder `site` imports `top`: a package or module there, a distribution there
    that names it among its top-level names, or a folder an editable install's .pth adds that holds it."""
    if os.path.exists(os.path.join(site, top)) or os.path.isfile(os.path.join(site, f"{top}.py")):
        return True
    try:
        listed = os.listdir(site)
    except OSError:
        return False
    for name in listed:
        file = os.path.join(site, name)
        try:
            if name.endswith(".dist-info") and os.path.isfile(os.path.join(file, "top_level.txt")):
                with open(os.path.join(file, "top_level.txt"), encoding="utf-8") as fh:
                    if top in fh.read().split():
                        return True
            elif name.endswith(".pth"):
                with open(file, encoding="utf-8") as fh:
                    for line in fh.read().splitlines():
                        folder = line.strip()
                        if not folder or folder.startswith(("#", "import ")):
                            continue
                        if os.path.exists(os.path.join(folder, top)):
                            return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def install_hint(project: str | None) -> str:
    """`, or install your project in the Python hpotool runs in (...)`: the other way a package of the user's
    imports, which a user whose project is installed in another environment than hpotool's (hpotool run
    with pipx, or from another venv) needs; `project` is its folder where known."""
    folder = os.path.relpath(project) if project is not None else "YOUR_PROJECT"
    return f", or install your project in the Python hpotool runs in ({_python()} install -e {folder})"


# Modules whose distribution pip knows by another name, among those a training script commonly imports.
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "google.protobuf": "protobuf",
}


def missing_dependency_hint(missing: str) -> str:
    """`; wandb is not installed in the Python hpotool runs in: install it there (...)` for a module
    `missing` that a user's module imports: installed in another environment (the one the user's scripts run
    in), it is not in hpotool's, whichever folder hpotool runs from."""
    import importlib.util

    top = missing.split(".")[0]
    try:
        if "." in missing and importlib.util.find_spec(top) is not None:  # a submodule the package lacks
            return ""
    except (ImportError, ValueError):
        return ""
    dist = _DISTRIBUTIONS.get(missing, _DISTRIBUTIONS.get(top, top))
    return f"; {top} is not installed in the Python hpotool runs in: install it there ({_python()} install {dist})"


# The modules whose out-of-date copy was noted, in the environment the workers of `--workers N` inherit, so
# that the note is said once per command, not once more by each worker.
_NOTED = "HPOTOOL_NOTED_COPIES"


def note_a_stale_copy(module_name: str, file: str | None) -> None:
    """Log a note once per module when `module_name` was imported from a copy pip installed in site-packages
    (`pip install .`, not -e) and the project folder it was installed from holds a different version of that
    file: the user edits the source, and hpotool runs the old copy (a new argument of their model was
    refused as unknown, with nothing to say why)."""
    noted = os.environ.get(_NOTED, "").split(",")
    if file is None or module_name in noted:
        return
    file = os.path.abspath(file)
    for install in local_installs():
        if install.editable or "hpotool" in install.imports or not file.startswith(install.site + os.sep):
            continue
        inside = os.path.relpath(file, install.site)
        if inside.split(os.sep)[0].removesuffix(".py") not in install.imports:
            continue
        os.environ[_NOTED] = ",".join([*filter(None, noted), module_name])
        for source in (os.path.join(install.folder, "src", inside), os.path.join(install.folder, inside)):
            if os.path.isfile(source) and not _same_file(source, file):
                _log.warning(
                    "note: %s is imported from the copy pip installed in %s (pip install %s, without -e), not "
                    "from %s, which differs from it: your edits there do not run until you install it again "
                    "(%s install %s), or install it editable once (%s install -e %s)",
                    module_name,
                    install.site,
                    install.folder,
                    source,
                    _python(),
                    install.folder,
                    _python(),
                    install.folder,
                )
                return
        return


def _same_file(a: str, b: str) -> bool:
    """Whether the files `a` and `b` hold the same bytes (False where one cannot be read)."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False
