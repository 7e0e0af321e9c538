"""A trained run on disk: train a RunConfig and save it to a run folder, and load the model back.

A run folder holds:

- `model.pt`: `{"format", "state_dict", "config", "metrics", "data", "versions"}`, loaded by
  `load_model(path) -> (model, config, metrics)`, which rebuilds the model from the config and the data's
  shapes stored beside the weights (no data is loaded);
- `metrics.json`: the final metrics and how the run went (epochs, seconds, device, seed);
- `history.csv`: one row per epoch;
- `config.yaml`: the resolved RunConfig, which `hpotool train --run-config` runs again as is.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpotool import __version__
from hpotool.atomic_folder import atomic_folder
from hpotool.config import DEVICE_PATTERN, RunConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError
from hpotool.export import tool_versions
from hpotool.formatting import format_choice, natural_key
from hpotool.run_folders import FINAL_RUN_NAME, RUN_FILES, SavedRun
from hpotool.strict_json import dump_json
from hpotool.yamlfile import dump_yaml

if TYPE_CHECKING:
    from torch import nn

    from hpotool.epoch import EpochResult
    from hpotool.runner import RunResult


MODEL_FORMAT = "hpotool-model/1"


def history_csv(history: list[dict[str, float]]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def not_saved(path: Path, exc: OSError, out_given: bool) -> HpoError:
    """The error for a run file or folder `path` that could not be written because of `exc`, with what to
    do about it: choose another --out where the user gave one (`out_given`), else give one."""
    other = "choose another --out" if out_given else "give --out another folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        disk = "choose another --out" if out_given else "give --out a folder"
        fix = f"free some space, or {disk} on another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose another --out, one you can write" if out_given else "give --out a folder you can write"
    elif exc.errno == errno.EEXIST:  # a folder has the name of a run file
        fix = f"move it away, or {other}"
    else:
        fix = other
    return HpoError(f"{path}: cannot write: {exc.strerror or exc}; the run was not saved: {fix}")


class RunDirTaken(HpoError):
    """A new run folder (`new_run_dir`) that another process saved a run into while this one saved its own:
    the save goes to the next name."""


def save_run(
    folder: Path,
    cfg: RunConfig,
    result: RunResult,
    info: dict[str, Any] | None = None,
    *,
    out_given: bool = True,
    new: Path | None = None,
) -> SavedRun:
    """Write model.pt, metrics.json, history.csv and config.yaml into `folder` as one set (no model.pt for a
    user's training function, which keeps its own model): into a staging folder that becomes `folder` once
    every file is on disk (`atomic_folder`), so a save that fails part-way leaves nothing behind.

    Args:
        folder: the run folder (created when missing; an empty one is replaced, another keeps its files).
        cfg: the RunConfig that was trained.
        result: what `runner.train_run` returned.
        info: extra provenance for metrics.json (e.g. the study and trial it came from).
        out_given: whether the user chose the folder (--out): what a failure tells them to do.
        new: the folder `new_run_dir` named (`folder`, or a folder above it), which another process may take
            meanwhile.

    Raises:
        HpoError: a file cannot be written (a full disk, a folder in the way) or the model cannot be saved,
            naming the file and the fix; `folder` is as it was then.
        RunDirTaken: another process made `new` first.
    """
    texts = _run_texts(cfg, result, info)

    def refuse(path: Path, exc: OSError) -> HpoError:
        if new is not None and path == folder and exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return RunDirTaken(f"{folder}: taken by another run")
        return not_saved(path, exc, out_given)

    with atomic_folder(folder, last="config.yaml", refuse=refuse, new=new) as staging:
        if result.model is not None:
            _save_model(staging / "model.pt", folder / "model.pt", cfg, result.model, result.metrics, refuse)
        for name, text in texts.items():
            try:
                _write_on_disk(staging / name, text)
            except OSError as exc:
                raise refuse(folder / name, exc) from None
    files = RUN_FILES if result.model is not None else RUN_FILES[1:]
    return SavedRun(
        folder, cfg, dict(result.metrics), result.epochs_run, result.seconds, result.device, files
    )


def _run_texts(cfg: RunConfig, result: RunResult, info: dict[str, Any] | None) -> dict[str, str]:
    """metrics.json's, history.csv's and config.yaml's texts, config.yaml last: a folder that holds it holds
    the whole run."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary = {
        "metrics": result.metrics,
        "epochs_run": result.epochs_run,
        "seconds": result.seconds,
        "device": result.device,
        "seed": cfg.seed,
        "created_at": created,
        "hpotool": __version__,
        **(info or {}),
    }
    return {
        "metrics.json": dump_json(summary),
        "history.csv": history_csv(result.history),
        "config.yaml": dump_yaml(cfg.model_dump(mode="json")),
    }


def _write_on_disk(path: Path, text: str) -> None:
    """Write `text` to `path` (UTF-8, newlines as written) and put it on disk before returning."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _save_model(
    path: Path,
    shown: Path,
    cfg: RunConfig,
    model: nn.Module,
    metrics: dict[str, float],
    refuse: Callable[[Path, OSError], HpoError],
) -> None:
    """Save the model to `path` (`shown` in messages: where it will be; `refuse` makes the error for a file
    that cannot be written)."""
    import torch

    from hpotool.data import load_data
    from hpotool.parts import model_out_features

    data = load_data(cfg.data, cfg.loss.name)  # cached: the same object the run trained on
    # a user's extra state (get_extra_state) is any object, not a tensor
    state = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "state_dict": state,
        "config": cfg.model_dump(mode="json"),
        "metrics": dict(metrics),
        "data": {
            "input_shape": list(data.input_shape),
            "out_features": model_out_features(cfg, data),  # the model's: one for a one-logit loss
            "task": data.task,
        },
        "versions": tool_versions(),
    }
    try:
        with open(path, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise refuse(shown, exc) from None
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # what pickle raises for an object
        if ":" not in cfg.model.name:  # a built-in model: hpotool's bug
            raise
        from hpotool.user_code import first_line

        raise HpoError(
            f"{shown}: cannot save the model: {first_line(exc)}; the run was not saved: make "
            f"{cfg.model.name}'s state_dict() hold only tensors and values pickle can save"
        ) from exc


def _ignore(_: EpochResult) -> None:
    return None


def train_and_save(
    cfg: RunConfig,
    folder: Path | Callable[[], Path],
    *,
    on_epoch_end: Callable[[EpochResult], None] | None = None,
    info: dict[str, Any] | None = None,
    out_given: bool = True,
    inside: str | None = None,
) -> SavedRun:
    """Train `cfg` with the runner's Trainer, then save it into `folder` (or the new folder `folder()` names,
    or its subfolder `inside`: train-from-best's trial<N>-seed<S>; `out_given`: whether the user chose it,
    with --out).

    The folder is made only after training succeeds, with the run's files in it, so a failed run (or one
    killed outright) leaves nothing behind.

    Raises:
        HpoError: the device is missing, the loss became NaN or infinite, or the user's own code (a model,
            dataset, loss, training function) raised: one line saying where (`--debug` shows the traceback).
    """
    from hpotool.epoch import NonFiniteLossError
    from hpotool.interrupts import deferred, raise_dropped
    from hpotool.runner import train_run
    from hpotool.trainer_contract import TrainerOutputError
    from hpotool.user_code import first_line, user_frame

    def epoch_ended(result: EpochResult) -> None:
        (on_epoch_end or _ignore)(result)
        raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed: it trained on, and the run was saved

    try:
        result = train_run(cfg, on_epoch_end=epoch_ended)
    except NonFiniteLossError as exc:
        raise HpoError(
            f"training diverged: {exc}; lower optimizer.lr or set grad_clip in the run config"
        ) from None
    except TrainerOutputError as exc:  # what a training function returned: found after it returned
        raise HpoError(f"training failed: {exc}") from exc
    except Exception as exc:
        raise_dropped()  # an interrupt the code it landed in turned into an error of its own
        where = user_frame(exc)
        if where is None:  # not raised in the user's code: an hpotool bug, shown as one
            raise
        raise HpoError(
            f"training failed: {first_line(exc)} (raised at {where}; hpotool --debug shows the traceback)"
        ) from exc
    raise_dropped()
    with deferred():  # a Ctrl-C while saving waits for the save: a run folder is whole or not there
        if isinstance(folder, Path):
            return save_run(folder, cfg, result, info, out_given=out_given)
        while True:  # a new runs/<project>/<timestamp>, made by the save: another run may take the name first
            new = folder()
            target = new / inside if inside is not None else new
            try:
                return save_run(target, cfg, result, info, out_given=out_given, new=new)
            except RunDirTaken:
                continue


def _user_trained(config_yaml: Path) -> bool:
    """Whether the run folder's config.yaml names a user's training function."""
    import yaml

    try:
        saved = yaml.safe_load(config_yaml.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(saved, dict) and saved.get("trainer") is not None


def _damaged(path: Path, exc: Exception) -> str | None:
    """Why torch could not read `path` where it is a checkpoint cut short (a copy stopped part-way): an empty
    file, or one that starts as torch's zip format does; None for any other file."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(4)
    except OSError:
        return None
    if not start:
        return "an empty file"
    if start != b"PK\x03\x04":
        return None
    from hpotool.user_code import first_line

    return first_line(exc).split(". ")[0]  # torch's "PytorchStreamReader failed ...", without its advice


def _refuse_a_folder_of_runs(folder: Path) -> None:
    """Refuse a folder that is not a run folder but holds run folders, naming them: train-from-best's --out
    (summary.json beside trial<N>-seed<S>/), runs/<project>/ (train's runs, and train-from-best's folders of
    runs); and one that holds none (an export folder, studies/<name>/). Both were "model.pt: no such file".
    A run of a user's training function, saved without a model.pt, is named too: given, it says why it has
    none."""
    if (folder / "model.pt").exists() or _is_run(folder):  # a run folder: its own errors follow
        return
    try:
        runs = _runs_in(folder)
    except OSError:
        return
    if not runs:
        raise HpoError(
            f"{folder}: holds no saved run, nor do the folders in it; give a run folder, or its model.pt, as "
            f"hpotool train and train-from-best print it"
        )
    shown = ", ".join(runs[:4]) + (", ..." if len(runs) > 4 else "")
    final = all(FINAL_RUN_NAME.fullmatch(run) for run in runs)
    held = "the runs train-from-best saved" if final else "saved runs"
    best = _ranked_first(folder, runs) if final else None
    # the first listed was the lowest trial number: of --top-k 3, maybe the one that ranked last
    example = f"load_model({str(folder / (best or runs[0]))!r})"
    found = FINAL_RUN_NAME.fullmatch(best or "")
    ranked = f" (trial {found[1]} ranks first in summary.json)" if found else ""
    raise HpoError(f"{folder}: holds {held} ({shown}), not one run; give one of them: {example}{ranked}")


def _ranked_first(folder: Path, runs: list[str]) -> str | None:
    """The first run of the trial that train-from-best's summary.json in `folder` ranks first, where it is one
    of `runs`; None where there is no such summary (the command was stopped before it wrote one)."""
    import json

    try:
        candidates = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["candidates"]
        names = [Path(run["folder"]).name for run in candidates[0]["runs"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        return None
    return next((run for run in runs if run in names), None)


def _runs_in(folder: Path) -> list[str]:
    """The run folders (`_is_run`) in `folder` and in the folders in it, by their paths from it, in number
    order (trial2-seed0 before trial10-seed0; as strings, trial10 came first). A folder in it that cannot be
    read is passed over."""
    runs: list[str] = []
    for sub in folder.iterdir():
        if _is_run(sub):
            runs.append(sub.name)
        elif sub.is_dir() and not sub.is_symlink():
            try:
                runs += [f"{sub.name}/{p.name}" for p in sub.iterdir() if _is_run(p)]
            except OSError:
                continue
    return sorted(runs, key=natural_key)


def _is_run(folder: Path) -> bool:
    """Whether `folder` holds a saved run: its model.pt, or (a user's training function keeps its own model)
    its config.yaml beside its metrics.json."""
    if (folder / "model.pt").is_file():
        return True
    return (folder / "config.yaml").is_file() and (folder / "metrics.json").is_file()


def _built(path: Path, cfg: RunConfig, shapes: dict[str, Any], changed: str) -> nn.Module:
    """The saved run's model, built by its class for the saved data shapes (its weights not loaded yet).

    Raises:
        HpoError: a user's model class raised as it was built (a file its __init__ reads is missing), naming
            the model.pt, the class and the exception (chained: Python's traceback shows it whole), or is
            refused by hpotool's checks on a model (`changed`: its code changed since the run was saved).
    """
    from hpotool.parts import make_model
    from hpotool.user_code import described, raised_by_hpotool, user_frame

    try:
        return make_model(cfg, tuple(shapes["input_shape"]), int(shapes["out_features"]))
    except Exception as exc:
        if ":" not in cfg.model.name:  # a built-in model: hpotool's bug
            raise
        # hpotool's own refusal, as in training: layers in a plain list, or no nn.Module returned
        if user_frame(exc) is None and raised_by_hpotool(exc):
            raise HpoError(f"{path}: {exc}; {changed}") from None
        # the user's __init__ raised (or a library it called): a traceback ended the user's script, naming
        # neither the run nor the class
        raise HpoError(f"{path}: cannot build model {cfg.model.name}: {described(exc)}") from exc


def load_model(path: Path | str, device: str = "cpu") -> tuple[nn.Module, RunConfig, dict[str, float]]:
    """Load a saved `model.pt` (or the run folder that holds it): the model (weights loaded, in eval mode,
    on `device`), its RunConfig and its final metrics.

    A custom model (`package.module:Name`) must be importable, as when training; the dataset need not be.

    Raises:
        HpoError: the file is missing or is not an hpotool model, or the model's class cannot be imported,
            no longer fits the saved weights, or raised as it was built (the exception chained to it).
    """
    import torch

    from hpotool.component_checks import check_component
    from hpotool.components import resolve_component
    from hpotool.device import resolve_device
    from hpotool.import_hints import imports_for, python_caller

    path = Path(path)
    if path.is_dir():  # the run folder, as train and train-from-best print it
        _refuse_a_folder_of_runs(path)
        path = path / "model.pt"
    # torch's error lists its 20 device types; "cpu:0" failed in torch.load
    if not DEVICE_PATTERN.match(device):
        raise HpoError(f"device: must be auto, cpu, cuda, cuda:N or mps, got {format_choice(device)}")
    # a device this machine lacks is said so, not blamed on the file
    target = resolve_device(device, "device=")
    try:
        payload = torch.load(path, map_location=target, weights_only=True)
    except FileNotFoundError:
        if _user_trained(path.parent / "config.yaml"):
            raise HpoError(
                f"{path}: no such file: this run was trained by a user's training function (trainer: in "
                f"{path.parent / 'config.yaml'}), which keeps its own model; hpotool saves no model.pt for it"
            ) from None
        raise HpoError(f"{path}: no such file") from None
    except Exception as exc:
        import pickle

        from hpotool.user_code import first_line

        damaged = _damaged(path, exc)
        if damaged is not None:  # the right file, cut short: not to be called another file
            raise HpoError(
                f"{path}: cut short or damaged ({damaged}); copy the run folder again from where it was saved, "
                f"or train the run again (hpotool train --run-config {path.parent / 'config.yaml'})"
            ) from None
        # torch's refusal of any other file (a config.yaml, a notebook) is a page that advises weights_only=False
        why = "not a PyTorch checkpoint" if isinstance(exc, pickle.UnpicklingError) else first_line(exc)
        raise HpoError(
            f"{path}: not a model saved by hpotool ({why}); give the model.pt of a run folder, or the folder, "
            f"as hpotool train and train-from-best print it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise HpoError(f"{path}: not a model saved by hpotool (expected format {MODEL_FORMAT!r})")
    # the model alone is rebuilt, from the shapes saved beside it: the data's code need not be importable
    cfg: RunConfig = validate_config(RunConfig, payload["config"], f"{path}: config", check_components=False)
    shapes = payload["data"]
    # a model class not found is told to the caller's script, not to the command, with the folder above the
    # run folder that holds it (runs/<project>/<time>/ is made in the folder hpotool ran in)
    # a model whose code changed since (an argument renamed, a layer added) is said so in one line, not in the
    # constructor's TypeError or torch's many-line state_dict error
    changed = (
        f"its code changed since the run was saved: restore the code that trained it, or train the run again "
        f"(hpotool train --run-config {path.parent / 'config.yaml'})"
    )
    with python_caller(), imports_for(path):
        resolve_component("model", cfg.model.name)  # one not found: the import's own line, as in training
        try:
            check_component("model", cfg.model.name, cfg.model.kwargs)
        except ValueError as exc:
            raise HpoError(f"{path}: model: {exc}; {changed}") from None
        model = _built(path, cfg, shapes, changed)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # "Error(s) in loading state_dict for Net:", then a line per mismatch
        details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        why = f" ({details[0].rstrip('. ')}{', ...' if len(details) > 1 else ''})" if details else ""
        raise HpoError(
            f"{path}: the saved weights do not fit {cfg.model.name} as its code builds it now{why}; {changed}"
        ) from None
    model.to(target).eval()
    return model, cfg, dict(payload["metrics"])
