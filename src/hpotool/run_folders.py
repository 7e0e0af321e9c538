"""A run folder before and after a run is saved into it: its name (`runs/<project>/<timestamp>`), the checks
that it can be made and holds no other run (made before training, not once it is over), and a complete run
found in it again (`saved_run_of`).
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.yamlfile import dump_yaml

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


RUN_FILES = ("model.pt", "metrics.json", "history.csv", "config.yaml")

# The name of a run folder train-from-best saves into its --out folder: trial<N>-seed<S>.
FINAL_RUN_NAME = re.compile(r"trial(\d+)-seed(-?\d+)")


@dataclass(frozen=True)
class SavedRun:
    """A run folder that `save_run` wrote."""

    folder: Path
    config: RunConfig
    metrics: dict[str, float]
    epochs_run: int
    seconds: float
    device: str
    files: tuple[str, ...] = RUN_FILES


def new_run_dir(parent: Path) -> Path:
    """A new folder name `parent/<timestamp>` (`-2`, `-3`, ... when taken), not made: the first save into
    it makes it, with the run's files (`atomic_folder`), so a process killed before (kill -9 while it
    trains) leaves no empty runs/<project>/<timestamp> behind."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        folder = parent / (stamp if i == 1 else f"{stamp}-{i}")
        if not os.path.lexists(folder):
            return folder
    raise HpoError(f"{parent}: 999 run folders for {stamp} already exist")  # pragma: no cover


def default_runs_dir(cfg: RunConfig) -> Path:
    """`runs/<project>`; the project must be usable as a folder name."""
    if not _SAFE_NAME.match(cfg.project) or ".." in cfg.project:
        raise HpoError(
            f"project: {cfg.project!r} cannot name a folder under runs/; use letters, digits, '_', '-' "
            f"and '.', or give --out"
        )
    return Path("runs") / cfg.project


def check_run_dir(folder: Path) -> None:
    """Refuse a folder that already holds a saved run, so nothing is overwritten: any file a run saves (a
    user's training function saves no model.pt)."""
    found = next((name for name in RUN_FILES if os.path.isfile(folder / name)), None)
    if found is not None:
        raise HpoError(f"{folder}: already holds a saved run ({found}); choose another --out")
    check_run_path(folder)


def check_run_path(folder: Path) -> None:
    """Refuse a run folder that cannot be made, or saved into: a file has its name, a file is above it, or
    something other than a file (a folder) has the name of a file a run saves in it."""
    try:
        os.stat(folder)
    except OSError as exc:  # a name too long, say: found now, not once training is over
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise HpoError(f"{folder}: cannot be made: {exc.strerror or exc}; choose another --out") from None
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise HpoError(f"{folder}: exists and is not a folder; choose another --out")
    # A file above it: the folder could not be made, and saving would fail only once training is over.
    blocker = next((p for p in reversed(folder.parents) if os.path.exists(p) and not os.path.isdir(p)), None)
    if blocker is not None:
        from hpotool.path_checks import kind_of

        raise HpoError(
            f"{folder}: cannot be made: {blocker} is {kind_of(blocker)}, not a folder; choose another --out"
        )
    check_writable(folder, out_given=True)
    # A folder named metrics.json in it: the save would fail once training is over, as well.
    for name in RUN_FILES:
        path = folder / name
        if os.path.isdir(folder) and os.path.exists(path) and not os.path.isfile(path):
            from hpotool.path_checks import kind_of

            kind = "a folder" if os.path.isdir(path) else kind_of(path)
            raise HpoError(
                f"{path}: is {kind}, not the file a run saves there; move it away, or choose another --out"
            )


def check_writable(folder: Path, out_given: bool) -> None:
    """Refuse a run folder this process cannot make or save into (a read-only folder above it, another
    user's): found now, not once training is over. The folder must be writable where it exists, its
    nearest existing folder above where it does not.

    Raises:
        HpoError: naming the folder, the one this process cannot write to and what to do: choose another
            --out where the user gave one (`out_given`), else give one.
    """
    from hpotool.path_checks import shown, unwritable

    blocked = unwritable(folder)
    if blocked is None:
        return
    fix = "choose another --out, one you can write" if out_given else "give --out a folder you can write"
    where = "it" if blocked == folder else shown(blocked)
    raise HpoError(f"{folder}: cannot save a run there: this process cannot write to {where}; {fix}")


def saved_run_of(folder: Path, cfg: RunConfig, info: dict[str, Any]) -> SavedRun | None:
    """The run `folder` holds when it was saved completely (every file `save_run` writes: config.yaml, the
    last, is there) from `cfg` with `info` (the study and trial it came from); None when it holds no
    complete run (a run interrupted while it was saved is trained again).

    Raises:
        HpoError: the folder holds a complete run of another config or study: nothing is overwritten.
    """
    import yaml

    files = RUN_FILES if cfg.trainer is None else RUN_FILES[1:]
    if not all((folder / name).is_file() for name in files):
        return None

    def unreadable(why: str) -> HpoError:
        return HpoError(
            f"{folder}: holds a saved run that cannot be read ({why}); move it away, or choose another --out"
        )

    try:
        saved = yaml.safe_load((folder / "config.yaml").read_text())
    except OSError as exc:
        raise unreadable(f"config.yaml: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:  # YAML's message is many lines: its problem and where, on one
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise unreadable(f"config.yaml: {where}{problem}") from None
    try:
        summary = json.loads((folder / "metrics.json").read_text())
    except OSError as exc:
        raise unreadable(f"metrics.json: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise unreadable(f"metrics.json: {exc}") from None
    # edited by hand: a list, or an object without the run's metrics, ended in a traceback
    if not (
        isinstance(summary, dict)
        and isinstance(summary.get("metrics"), dict)
        and all(key in summary for key in ("epochs_run", "seconds", "device"))
    ):
        raise unreadable(
            "metrics.json: not the object a run saves, with its metrics, epochs_run, seconds and device"
        )
    now = yaml.safe_load(dump_yaml(cfg.model_dump(mode="json")))  # as config.yaml reads back
    shown = [(k, summary.get(k), v) for k, v in info.items() if summary.get(k) != v]
    difference = shown[0] if shown else _difference(saved, now)
    if difference is not None and (misspelt := _misspelt(saved, now, cfg)) is not None:
        # a key edited by hand (`batchsize`) read as another config: "(batch_size: null saved, 32 now)"
        typo, meant = misspelt
        raise HpoError(
            f"{folder / 'config.yaml'}: unknown key {typo!r} (did you mean {meant!r}?); correct it, or choose "
            f"another --out"
        )
    if difference is not None:
        path, was, wanted = difference
        raise HpoError(
            f"{folder}: already holds a saved run of another config ({path}: {format_choice(was)} saved, "
            f"{format_choice(wanted)} now); choose another --out"
        )
    return SavedRun(
        folder, cfg, summary["metrics"], summary["epochs_run"], summary["seconds"], summary["device"], files
    )


def _difference(saved: Any, now: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted path where two config dicts differ, with both values there."""
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in dict.fromkeys([*now, *saved]):
            found = _difference(saved.get(key), now.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    return None if saved == now else (path or "config", saved, now)


def _misspelt(saved: Any, now: Any, model: Any, path: str = "") -> tuple[str, str] | None:
    """The first key of a saved config dict that is a misspelling of a key of `now` (the dump of `model`, a
    RunConfig or one of its sections) it lacks, and that key, as dotted paths; None where there is none. Only
    the keys the models declare are looked for: a component's own arguments (`model: {name: my.pkg:Net,
    hidden: 8}`) and a training function's keys are the user's to name, and a saved run whose model took
    `hidden` where this config's takes `hidden_size` is another config, not a typo in its config.yaml. A
    section of another component (its `name` differs) is not searched: its arguments differ by right."""
    from pydantic import BaseModel

    from hpotool.near_names import closest

    if not (isinstance(saved, dict) and isinstance(now, dict)) or saved.get("name") != now.get("name"):
        return None
    declared = type(model).model_fields
    lacked = [key for key in now if key not in saved and key in declared]
    for key in saved:
        near = closest(str(key), lacked, n=1) if key not in now and key not in declared else []
        if near:
            return f"{path}{key}", f"{path}{near[0]}"
        section = getattr(model, key) if key in declared else None
        if isinstance(section, BaseModel):
            found = _misspelt(saved[key], now.get(key), section, f"{path}{key}.")
            if found is not None:
                return found
    return None
