"""A finished study's result as files: the best trial's parameters and run config, and the trial table.

`export_best` writes into one folder (default `studies/<study_name>/`):

- `best_params.json`: the best trial (or, for a multi-objective study, every Pareto-optimal trial);
- `best_run.yaml`: the study's base RunConfig with the best parameters merged in, ready for
  `hpotool train` (multi-objective: `best_run_<trial number>.yaml` per Pareto-optimal trial);
- `trials.csv`, `trials.json`: every trial, parameters as columns named by their dotted paths.

Everything is computed before the first file is written, and the files are written as one set: all of
them to temporary files first, then renamed into place together (`atomic.write_texts`), so an export
that fails or is interrupted leaves the former export whole. A folder holding another study's export is
refused: the two studies' files would be mixed in it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from shlex import quote
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool import __version__
from hpotool.atomic import write_texts
from hpotool.config import RunConfig
from hpotool.durations import trial_seconds
from hpotool.errors import HpoError
from hpotool.formatting import counted, natural_key
from hpotool.ranking import best_trials, direction_names, is_multi_objective, objective_names, state_counts
from hpotool.storage_url import shown_url
from hpotool.stored_run import trial_run_config
from hpotool.strict_json import dump_json, dump_json_records
from hpotool.trial_table import exported_params, trial_history, trial_records, trials_csv
from hpotool.yamlfile import dump_yaml

# The files an export writes (a multi-objective study's best_run_<N>.yaml aside).
EXPORT_FILES = ("trials.csv", "trials.json", "best_run.yaml", "best_params.json")


def default_export_dir(study_name: str) -> Path:
    return Path("studies") / study_name


def out_of_studies(study_name: str) -> str | None:
    """Where studies/<study_name>/, a study's default folder, would be when a name Optuna takes leads
    out of studies/ ('..', '/data/x', 'a/..': the current folder, an absolute one, studies/ itself), else
    None; export-best and report wrote their files there. A name holding '/' that stays inside
    (studies/exp/1/) is a folder of its own."""
    import os

    folder = os.path.normpath(os.path.join("studies", study_name))
    return None if folder.startswith("studies" + os.sep) else folder


def tool_versions() -> dict[str, str]:
    """hpotool, Optuna and torch versions, read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:  # pragma: no cover - torch is a dependency
        torch_version = "not installed"
    return {"hpotool": __version__, "optuna": optuna.__version__, "torch": torch_version}


def _trial_summary(trial: FrozenTrial, study_attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "trial_number": trial.number,
        "params": exported_params(study_attrs, trial),
        "metrics": trial.user_attrs.get("metrics", {}),
        "epochs_run": trial.user_attrs.get("epochs_run"),
        "duration_s": trial_seconds(trial),
        "history": trial_history(trial),
    }


def best_info(study: optuna.Study, storage_url: str, run_files: dict[int, str | None]) -> dict[str, Any]:
    """The contents of `best_params.json`."""
    best = best_trials(study)
    attrs = study.user_attrs
    head: dict[str, Any] = {"study_name": study.study_name, "storage": shown_url(storage_url)}
    if is_multi_objective(study):
        head |= {
            "metrics": objective_names(study),
            "directions": direction_names(study),
            "pareto_trials": [
                {"values": list(t.values), **_trial_summary(t, attrs), "run_config": run_files[t.number]}
                for t in best
            ],
        }
    else:
        (trial,) = best
        head |= {
            "metric": objective_names(study)[0],
            "direction": direction_names(study)[0],
            "best_value": trial.value,
            **_trial_summary(trial, attrs),
            "run_config": run_files[trial.number],
        }
    return head | {
        "trials": state_counts(study.get_trials(deepcopy=False)),
        "versions": {**tool_versions(), "study": study.user_attrs.get("versions", {})},
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class ExportResult:
    """What `export_best` wrote."""

    folder: Path
    files: list[Path]
    best: list[FrozenTrial]
    metrics: list[str]
    notes: list[str] = field(default_factory=list)
    # best_run files that could not be made (the stored run config no longer validates), one line each
    problems: list[str] = field(default_factory=list)


_RUN_HEADER = "# Best run of study "


def _exported_by(folder: Path) -> dict[str, list[str]]:
    """The studies whose export files are in `folder`, each with its files there: best_params.json by its
    study_name, a best_run file by its header (a user's own files, or unreadable ones, name no study)."""
    found: dict[str, list[str]] = {}
    try:
        params = json.loads((folder / "best_params.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        params = None
    if isinstance(params, dict) and isinstance(params.get("study_name"), str):
        found.setdefault(params["study_name"], []).append("best_params.json")
    for path in (
        sorted(folder.glob("best_run*.yaml"), key=lambda p: natural_key(p.name)) if folder.is_dir() else []
    ):
        if not re.fullmatch(r"best_run(_\d+)?\.yaml", path.name):
            continue
        try:
            with path.open(encoding="utf-8") as f:
                first = f.readline()
        except (OSError, UnicodeDecodeError):
            continue
        name, sep, _ = first.removeprefix(_RUN_HEADER).rpartition(": trial ")
        if first.startswith(_RUN_HEADER) and sep:
            try:
                found.setdefault(str(ast.literal_eval(name)), []).append(path.name)
            except (ValueError, SyntaxError):
                continue
    return found


def _refuse_another_study(folder: Path, study_name: str, *, chosen: bool) -> None:
    """An export into a folder holding another study's export left that study's best_run files beside the
    new ones (a plain Optuna study's export, which has no best_run.yaml, beside another's best_run.yaml):
    refused, naming the files, before anything is written. `chosen`: the folder came from --out.

    Raises:
        HpoError: `folder` holds export files of a study other than `study_name`.
    """
    others = {name: files for name, files in _exported_by(folder).items() if name != study_name}
    if not others:
        return
    other, files = next(iter(others.items()))
    fix = "move those files away"
    if chosen:
        elsewhere = folder.parent / study_name if folder.name != study_name else folder / study_name
        fix = f"give another --out, e.g. --out {quote(str(elsewhere))}, or {fix}"
    raise HpoError(
        f"{folder}: holds the export of study {other!r} ({', '.join(files)}), and an export of study "
        f"{study_name!r} there would mix the two studies' files; {fix}"
    )


def _exported_run(path: Path, study_name: str) -> bool:
    """Whether `path` is a best_run file export-best wrote for `study_name` (a user's own file of a similar
    name in the folder, or one they edited the header of, is theirs to keep)."""
    if not re.fullmatch(r"best_run(_\d+)?\.yaml", path.name):
        return False
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith(f"{_RUN_HEADER}{study_name!r}: trial ")


def _run_yaml(study: optuna.Study, trial: FrozenTrial, config: RunConfig) -> str:
    values = ", ".join(
        f"{name}={v:.6g}" for name, v in zip(objective_names(study), trial.values or [], strict=False)
    )
    header = (
        f"{_RUN_HEADER}{study.study_name!r}: trial {trial.number} ({values}).\n"
        f"# The study's base run config with the trial's parameters; train it with\n"
        f"#   hpotool train --run-config <this file>\n"
    )
    return header + dump_yaml(_trained_widths(config.model_dump(mode="json")))


def _trained_widths(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a dumped RunConfig) with the built-in MLP's `hidden` list cut to its `layers` widths: a trial
    that drew `model.layers: 1` over the base's `hidden: [16, 64, 64]` trains one layer of 16, and its
    exported file says so. MLP builds the same network either way (`layer_widths` cuts the list); the study
    keeps the base's list, so only the file a reader trains from changes."""
    model = data.get("model") or {}
    hidden, layers = model.get("hidden"), model.get("layers")
    builtin = model.get("name") in ("mlp", "hpotool.models:MLP")
    if builtin and isinstance(hidden, list) and type(layers) is int and 0 <= layers < len(hidden):
        return {**data, "model": {**model, "hidden": hidden[:layers]}}
    return data


def _still_running(study: optuna.Study) -> str | None:
    """A note where a live process runs `study` now (a trial of it is running): the export holds the best
    trial so far, which a later trial may beat; None otherwise (a dead worker's trial runs no more)."""
    from hpotool.owners import died_here

    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if not died_here(t)]
    if not running:
        return None
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    which = "a trial" if len(running) == 1 else f"{len(running)} trials"
    return (
        f"study {study.study_name!r} is still running ({which} running now): this is the best of its "
        f"{counted(finished, 'finished trial')} so far; run the command again once the study ends"
    )


def export_best(study: optuna.Study, storage_url: str, folder: Path | None = None) -> ExportResult:
    """Write best_params.json, best_run.yaml (or one per Pareto trial), trials.csv and trials.json. A
    study `hpotool optimize` did not make (plain Optuna) has no run config to write: the rest is written,
    with a note saying so. A best run whose stored run config this hpotool refuses (a key an older version
    had) is not written either: the rest is, and `ExportResult.problems` says why, for the CLI to fail on.

    Raises:
        HpoError: no complete trial, a file that cannot be written, or a folder holding another study's
            export (which this one would be mixed with).
    """
    chosen = folder is not None
    folder = folder if folder is not None else default_export_dir(study.study_name)
    _refuse_another_study(folder, study.study_name, chosen=chosen)
    best = best_trials(study)
    multi = is_multi_objective(study)
    notes = []
    unmade: dict[str, list[Path]] = {}  # why a best_run file cannot be made -> the files
    if isinstance(study.user_attrs.get("run_config"), dict):
        names: dict[int, str | None] = {}
        runs = {}
        for t in best:  # one a stored config this hpotool refuses cannot be made; the rest of the export can
            name = f"best_run_{t.number}.yaml" if multi else "best_run.yaml"
            try:
                runs[name] = _run_yaml(study, t, trial_run_config(study, t, check_components=False))
                names[t.number] = name
            except HpoError as exc:
                names[t.number] = None
                unmade.setdefault("; ".join(str(exc).splitlines()), []).append(folder / name)
    else:
        names, runs = dict.fromkeys((t.number for t in best), None), {}
        notes.append(
            f"no best_run.yaml: study {study.study_name!r} was not created by hpotool optimize, so there is no "
            f"run config to merge its parameters into (best_params.json has them)"
        )
    if note := _still_running(study):
        notes.append(note)
    texts = {"trials.csv": trials_csv(study), "trials.json": dump_json_records(trial_records(study)), **runs}
    texts["best_params.json"] = dump_json(best_info(study, storage_url, names))
    files = [folder / name for name in texts]
    # A Pareto front that moved: its former members are not best (nor a best_run.yaml no longer made).
    stale = [
        p for p in folder.glob("best_run*.yaml") if p.name not in texts and _exported_run(p, study.study_name)
    ]
    write_texts({folder / name: text for name, text in texts.items()}, remove=stale)
    problems = [_unmade_runs(paths, reason) for reason, paths in unmade.items()]
    return ExportResult(folder, files, best, objective_names(study), notes, problems)


def _unmade_runs(paths: list[Path], reason: str) -> str:
    """One line: why `paths` (best_run files) could not be made from the stored run config, and what to do
    (`stored_run_config` names the hpotool version that made the study, when another)."""
    fix = "or set" if "pip install 'hpotool==" in reason else "set"
    fix += " best_params.json's params in a run config this version accepts"
    return f"{', '.join(map(str, paths))} not written (the other exports were): {reason}; {fix}"
