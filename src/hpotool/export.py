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
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpotool import __version__
from hpotool.atomic import write_texts
from hpotool.config import RunConfig, validate_config
from hpotool.durations import trial_seconds
from hpotool.errors import HpoError
from hpotool.fingerprint import config_of, stored_config
from hpotool.overrides import apply_overrides
from hpotool.search_space import decode_params
from hpotool.storage import study_options
from hpotool.storage_url import shown_url
from hpotool.yamlfile import dump_yaml

if TYPE_CHECKING:
    import pandas as pd

# User attrs the objective sets, shown as their own columns rather than as `user_attrs_<name>`.
_KNOWN_ATTRS = ("epochs_run", "prune_reason", "fail_reason", "metrics", "history", "diverged_at")
# The columns of trials.csv besides parameters, values and prefixed metrics and user attrs.
_COLUMNS = ("duration_s", *_KNOWN_ATTRS[:3], "datetime_start", "datetime_complete", "history")


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


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def objective_names(study: optuna.Study) -> list[str]:
    """The name of each objective: Optuna's metric names, else the hpotool config's metric(s)."""
    if study.metric_names:
        return list(study.metric_names)
    opt = stored_config(study.user_attrs, "optimize_config")
    if not is_multi_objective(study):
        return [str(opt.get("metric", "value"))]
    metrics = opt.get("metrics")  # a study made before hpotool named its objectives in Optuna
    if isinstance(metrics, list) and len(metrics) == len(study.directions):
        return [str(m) for m in metrics]
    return [f"values_{i}" for i in range(len(study.directions))]


def direction_names(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


# Strict JSON has no numbers for these; null would say "no value". Spelt as the Protocol Buffers JSON
# mapping does, which pandas' read_json reads back as floats, and float() in Python.
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def json_safe(value: Any) -> Any:
    """Plain JSON data: NaN and infinities become the strings "NaN", "Infinity" and "-Infinity" (strict
    JSON has no spelling for them, and null is a missing value), datetimes ISO 8601 text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE[str(value)]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dump_json(data: Any) -> str:
    return json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"


def dump_json_records(records: list[dict[str, Any]]) -> str:
    """A JSON array with one record a line: greppable by trial, and written by json's C encoder (`indent`
    selects its pure-Python one): 10,000 trials' records in 0.16 s instead of 0.47."""
    lines = (json.dumps(r, allow_nan=False) for r in json_safe(records))
    return "[\n" + ",\n".join(lines) + "\n]\n"


def tool_versions() -> dict[str, str]:
    """hpotool, Optuna and torch versions, read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:  # pragma: no cover - torch is a dependency
        torch_version = "not installed"
    return {"hpotool": __version__, "optuna": optuna.__version__, "torch": torch_version}


def trial_params(study_attrs: Mapping[str, Any], trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters as values, a list choice as the list rather than the label Optuna stores,
    decoded by the search space the trial ran under (`study_attrs`: the study's user attrs, read once). A
    queued trial, which has none yet, gives the values it was queued with (`enqueue_trial`)."""
    opt = config_of(study_attrs, trial.number, "optimize_config")
    space = opt.get("search_space") if opt is not None else None
    space = space if isinstance(space, dict) else {}
    params = decode_params(stored_params(trial), space)
    return {name: params[name] for name in in_space_order(params, space)}  # a queued trial's as enqueued


def in_space_order(names: Iterable[str], space: Mapping[str, Any]) -> list[str]:
    """`names` in the order the search space writes them, any it lacks after them as given: the one order
    of the exports and `hpotool trials`."""
    names = list(names)
    return [p for p in space if p in names] + [n for n in names if n not in space]


def stored_params(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters as the study stores them (a list choice as its label); a queued trial, which
    has none yet, gives the values it was queued with (`enqueue_trial`)."""
    if trial.state == TrialState.WAITING and not trial.params:
        fixed = trial.system_attrs.get("fixed_params")
        return fixed if isinstance(fixed, dict) else {}
    return trial.params


def trial_record(trial: FrozenTrial, study_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """One trial as plain data: number, state, value(s), params (`trial_params`), duration, epochs run,
    reasons, attrs."""
    attrs = trial.user_attrs
    values = trial.values
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": values[0] if values is not None and len(values) == 1 else None,
        "values": list(values) if values is not None else None,
        "params": trial_params(study_attrs, trial),
        "duration_s": trial_seconds(trial),
        "epochs_run": attrs.get("epochs_run"),
        "prune_reason": attrs.get("prune_reason"),
        "fail_reason": attrs.get("fail_reason"),
        "metrics": attrs.get("metrics", {}),
        "history": trial_history(trial),
        "user_attrs": {k: v for k, v in attrs.items() if k not in _KNOWN_ATTRS},
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }


def trial_history(trial: FrozenTrial) -> Any:
    """The values a trial reported, epoch by epoch: hpotool's `history` attr (every metric of each epoch),
    else, for a study plain Optuna code ran, its intermediate values (`{"step": s, "value": v}`), which no
    export showed before."""
    if "history" in trial.user_attrs:
        return trial.user_attrs["history"]
    return [{"step": step, "value": value} for step, value in sorted(trial.intermediate_values.items())]


def epochs_count(value: Any) -> int | None:
    """A trial's `epochs_run` attr as the count of epochs hpotool records; None for anything else, such as a
    plain Optuna script's own attr of that name ("10", "ten", 2.0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def trial_records(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial of the study, in trial order (`trials.json`)."""
    attrs = study.user_attrs
    records = [trial_record(t, attrs) for t in study.get_trials(deepcopy=False)]
    if is_multi_objective(study):  # which trials make the front (that meet the constraints, as Optuna has it)
        front = {t.number for t in study.best_trials}
        for record in records:
            record["pareto"] = record["number"] in front
    return records


def _cell(value: Any) -> Any:
    """A CSV cell: lists and mappings as JSON (`json_safe`), a NaN as `NaN` (pandas leaves it empty, as a
    missing value), infinities as pandas writes them (`inf`, `-inf`)."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(json_safe(value))
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Every trial as one flat table (`trials.csv`), built on Optuna's `trials_dataframe`.

    Columns: number, state, value (multi-objective: `values_<name or index>` and `pareto`, whether the trial
    is on the Pareto front), one column per parameter
    named by its dotted path (a queued trial's: the values it was queued with), duration_s, epochs_run, prune_reason, fail_reason, the final metrics as
    `metrics_<name>`, start and end times, other user attrs as `user_attrs_<name>` and the per-epoch
    history as JSON.
    """
    import pandas as pd

    trials = study.get_trials(deepcopy=False)
    if not trials:
        return pd.DataFrame()
    raw = study.trials_dataframe(
        attrs=("number", "value", "state", "datetime_start", "datetime_complete", "user_attrs"),
        multi_index=True,
    )
    out: dict[str, Any] = {"number": raw[("number", "")], "state": raw[("state", "")]}
    # From the trials: Optuna's columns are keyed by metric name, and two objectives named alike share one.
    names = objective_names(study)
    if names == [f"values_{i}" for i in range(len(names))] or len(set(names)) < len(names):
        names = [str(i) for i in range(len(names))]  # unnamed, or two named alike: values_<index>
    for i, name in enumerate(names):
        column = [t.values[i] if t.values is not None else None for t in trials]
        out[f"values_{name}" if is_multi_objective(study) else "value"] = pd.Series(column, dtype=float)
    if is_multi_objective(study):  # which trials make the front, beside their values
        front = {t.number for t in study.best_trials}
        out["pareto"] = [t.number in front for t in trials]
    # Parameters in the search space's order (Optuna sorts them by name; the first trial's suggestions
    # put a parameter its conditions switched off after the rest), then any others in the order trials
    # suggested them; one whose name is taken by a column of the table (a plain Optuna study's "value" or
    # "state") is spelt as Optuna does.
    found: list[str] = []
    for t in trials:
        found += [p for p in stored_params(t) if p not in found]
    space = stored_config(study.user_attrs, "optimize_config").get("search_space")
    params = in_space_order(found, space if isinstance(space, dict) else {})
    param_columns: dict[str, pd.Series] = {}
    for name in params:
        taken = name in out or name in _COLUMNS or name.startswith(("values_", "metrics_", "user_attrs_"))
        param_columns[f"params_{name}" if taken else name] = _param_column(trials, name)
        out[f"params_{name}" if taken else name] = None  # its place among the columns; filled in below
    attrs = {str(c[1]): raw[c] for c in raw.columns if c[0] == "user_attrs"}
    out["duration_s"] = [trial_seconds(t) for t in trials]
    for name in ("epochs_run", "prune_reason", "fail_reason"):
        out[name] = attrs.get(name, pd.Series([None] * len(trials)))
    metric_names: list[str] = []
    for t in trials:
        metric_names += [m for m in _metrics(t) if m not in metric_names]
    for m in metric_names:
        out[f"metrics_{m}"] = [_cell(_metrics(t).get(m)) for t in trials]
    out["datetime_start"] = raw[("datetime_start", "")]
    out["datetime_complete"] = raw[("datetime_complete", "")]
    # A "metrics" attr that is not the mapping hpotool stores (the metrics_ columns) is a plain study's own.
    own_metrics = any(not isinstance(t.user_attrs.get("metrics", {}), dict) for t in trials)
    for name, column in attrs.items():
        if name not in _KNOWN_ATTRS or (name == "metrics" and own_metrics):
            out[f"user_attrs_{name}"] = column.map(_cell)
    out["history"] = [_cell(trial_history(t)) for t in trials]
    # Nullable dtypes, so an int column with a gap stays "8", not "8.0". The parameters keep their own
    # types (convert_dtypes would write a float choice 5.0 as 5), and the objective values are floats.
    frame = pd.DataFrame(out).convert_dtypes()
    for key, values in param_columns.items():
        frame[key] = values
    for key in [c for c in out if c == "value" or c.startswith("values_")]:
        frame[key] = pd.Series(out[key], dtype="Float64")
    return frame


_NULL_CELL = "null"  # a categorical choice None, told apart from a parameter the trial never set (empty)


def _param_column(trials: list[FrozenTrial], name: str) -> pd.Series:
    """One parameter's CSV column, each value as the trial holds it: an int as 8, a float as 5.0 (also a
    whole one, a float categorical choice), a `null` choice as `null`, and a parameter the trial never set
    (a conditional one, a failed trial's) as an empty cell."""
    import pandas as pd

    values = [stored_params(t).get(name, _UNSET) for t in trials]
    given = [v for v in values if v is not _UNSET]
    if given and all(isinstance(v, int) and not isinstance(v, bool) for v in given):
        return pd.Series([None if v is _UNSET else v for v in values], dtype="Int64")
    if given and all(isinstance(v, float) for v in given):
        return pd.Series([None if v is _UNSET else v for v in values], dtype="Float64")
    cells = [None if v is _UNSET else _NULL_CELL if v is None else v for v in values]
    return pd.Series(cells, dtype=object)


_UNSET = object()


def trials_csv(study: optuna.Study) -> str:
    buffer = io.StringIO()
    trials_frame(study).to_csv(buffer, index=False)
    return buffer.getvalue()


def _metrics(trial: FrozenTrial) -> dict[str, Any]:
    """The final metrics hpotool stored on the trial ({} when a plain Optuna study used the attr otherwise)."""
    metrics = trial.user_attrs.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def stored_run_config(
    study: optuna.Study, *, check_components: bool = True, trial_number: int | None = None
) -> RunConfig:
    """The base RunConfig `hpotool optimize` stored on the study (the one trial `trial_number` ran under,
    if the config changed since)."""
    attrs = study.user_attrs
    data = attrs.get("run_config") if trial_number is None else config_of(attrs, trial_number, "run_config")
    if not isinstance(data, dict):
        raise not_hpotool_error(study)
    try:
        result: RunConfig = validate_config(
            RunConfig, data, f"study {study.study_name!r}: run_config", check_components=check_components
        )
    except HpoError as exc:
        if made_by := _older_maker(attrs):
            raise HpoError(
                "; ".join(str(exc).splitlines()) + f"; the study was made by hpotool {made_by}, this is "
                f"{__version__}: use that version for it (pip install 'hpotool=={made_by}')"
            ) from None
        raise
    return result


def _older_maker(study_attrs: Mapping[str, Any]) -> str | None:
    """The hpotool version that made the study, when it is not this one (None: this one, or unknown)."""
    versions = study_attrs.get("versions")
    made_by = versions.get("hpotool") if isinstance(versions, dict) else None
    return str(made_by) if made_by and made_by != __version__ else None


def not_hpotool_error(study: optuna.Study) -> HpoError:
    """A study without the run config `hpotool optimize` stores: plain Optuna, or another tool's."""
    return HpoError(
        f"study {study.study_name!r} has no stored run config (user attr 'run_config'): it was not created by "
        f"hpotool optimize, so there is no RunConfig to merge its parameters into; hpotool trials "
        f"{study_options(study)} --json lists its trials and parameters"
    )


def trial_run_config(study: optuna.Study, trial: FrozenTrial, *, check_components: bool = True) -> RunConfig:
    """The exact RunConfig the trial trained: the stored base with its parameters applied.

    `check_components=False` (export) trusts the components the trial trained with instead of importing
    them (torch) to check their arguments again.
    """
    if not isinstance(study.user_attrs.get("run_config"), dict):
        raise not_hpotool_error(study)  # the study's, not this trial's
    base = stored_run_config(
        study, check_components=check_components, trial_number=trial.number
    )  # names the study
    try:
        params = trial_params(study.user_attrs, trial)
        return apply_overrides(base, params, check_components=check_components)
    except HpoError as exc:
        raise HpoError(f"study {study.study_name!r}: trial {trial.number}: {exc}") from None


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether `trial` meets its study's constraints (every value <= 0; a trial without any does), as
    Optuna's `Study.best_trial` and its constraint-aware samplers judge it."""
    return all(v <= 0 for v in trial.constraints.values())


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials of a single-objective study that meet its constraints, best first."""
    if is_multi_objective(study):
        if not study.best_trials:  # export-best, which the advice below names, would refuse it for this
            raise no_best_error(study)
        raise HpoError(
            f"study {study.study_name!r} has {len(study.directions)} objectives, so its trials have no single "
            f"ranking; train the Pareto-optimal trial you pick with hpotool train-from-best --study-name "
            f"{study.study_name} --trial N (under the study's final: rules), or run hpotool export-best and "
            f"train its best_run_<trial>.yaml with hpotool train --run-config"
        )
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or for a multi-objective study every Pareto-optimal one; never empty."""
    trials = study.best_trials if is_multi_objective(study) else ranked_trials(study)[:1]
    if not trials:
        raise no_best_error(study)
    return sorted(trials, key=lambda t: t.number)


def no_best_error(study: optuna.Study) -> HpoError:
    """Why `study` has no best trial yet: no complete trial, or none that meets its constraints."""
    counts = state_counts(study.get_trials(deepcopy=False))
    shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no trials"
    if counts.get("complete") and not stored_config(study.user_attrs, "optimize_config"):
        return HpoError(  # a plain Optuna study: no optimize config, no hpotool optimize to run again
            f"study {study.study_name!r} has no complete trial that meets its constraints ({shown}); every "
            f"complete trial reported a constraint value above 0{nearest_misses(study)}: loosen the constraints "
            f"it was run with, or run more trials that meet them"
        )
    if counts.get("complete"):
        return HpoError(
            f"study {study.study_name!r} has no complete trial that meets its constraints ({shown})"
            f"{nearest_misses(study)}; loosen the optimize config's constraints or narrow the search space "
            f"towards them, and run hpotool optimize again"
        )
    if not stored_config(study.user_attrs, "optimize_config"):  # no hpotool optimize to run again
        if counts.get("fail") and not counts.get("pruned"):
            return _all_failed_plain_error(study, counts["fail"], shown)
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); it was not created by hpotool "
            f"optimize: run more of its trials (with the Optuna code that made it) until one completes"
        )
    from hpotool.stale import died_here

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    live = [t for t in running if not died_here(t)]
    if live:  # a process runs the study now: another optimize is not what it takes
        which = "its running trial" if len(live) == 1 else f"its {len(live)} running trials"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); {which} may complete one: wait for "
            f"it to finish (hpotool trials {study_options(study)} shows it), or run hpotool optimize until one "
            f"completes"
        )
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if (
        failed
        and not counts.get("pruned")
        and all(t.user_attrs.get("fail_reason") == "interrupted" for t in failed)
    ):
        # Ctrl-C or SIGTERM ended them: nothing to fix, the study resumes where it stopped
        they = "its trial was" if len(failed) == 1 else f"its {len(failed)} trials were"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); {they} interrupted (Ctrl-C or "
            f"SIGTERM): run the same hpotool optimize command again, or hpotool optimize {study_options(study)} "
            f"(its stored configs), to resume it"
        )
    if counts.get("fail") and not counts.get("pruned"):  # the next step is to see why, not to run more alike
        they = "it" if counts["fail"] == 1 else "they"
        return HpoError(
            f"study {study.study_name!r} has no complete trial yet ({shown}); hpotool trials "
            f"{study_options(study)} --state fail shows why {they} failed: fix that and run hpotool optimize "
            f"until one completes"
        )
    return HpoError(
        f"study {study.study_name!r} has no complete trial yet ({shown}); run hpotool optimize until one completes"
    )


def nearest_misses(study: optuna.Study) -> str:
    """How close the complete trials of `study` came to the constraints none of them meets: `; the nearest
    to n_params <= 10 measured n_params 1810 (trial 1)` for each constraint no trial met (`; each constraint
    is met by some trial, but none meets them all` where each is), empty where no trial recorded any. The
    line said only that no trial met them, leaving how far to loosen which one to `hpotool trials`."""
    from hpotool.constraints import parse_constraint
    from hpotool.formatting import format_value

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    keys = list(dict.fromkeys(k for t in complete for k in t.constraints))
    misses = []
    for key in keys:
        recorded = [(v, t) for t in complete if math.isfinite(v := t.constraints.get(key, math.nan))]
        if not recorded:
            continue
        gap, trial = min(recorded, key=lambda vt: (vt[0], vt[1].number))
        if gap <= 0:
            continue
        try:
            limit = parse_constraint(key)
        except ValueError:  # a plain Optuna study's own constraint: its value alone
            misses.append(f"constraint {key!r} is {format_value(gap)} at the lowest (trial {trial.number})")
            continue
        metrics = trial.user_attrs.get("metrics")
        measured = metrics.get(limit.metric) if isinstance(metrics, dict) else None
        if not isinstance(measured, int | float) or isinstance(measured, bool):
            measured = limit.bound + gap if limit.op in ("<=", "<") else limit.bound - gap
        shown = format_value(float(measured))
        misses.append(f"the nearest to {limit} measured {limit.metric} {shown} (trial {trial.number})")
    if misses:
        return "; " + "; ".join(misses)
    return "; each constraint is met by some trial, but none meets them all" if keys else ""


def _all_failed_plain_error(study: optuna.Study, failed: int, shown: str) -> HpoError:
    """A study plain Optuna code ran, whose trials all failed: where to read why. Optuna keeps no reason
    (it logs it), so `hpotool trials` shows one only where the code (or fail-stale) stored a fail_reason."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    them, their = ("it", "its") if failed == 1 else ("them", "their")
    listed = f"hpotool trials {study_options(study)} --state fail"
    if any(t.user_attrs.get("fail_reason") is not None for t in trials):
        why = f"{listed} shows why {'it' if failed == 1 else 'they'} failed"
    else:
        why = (
            f"Optuna keeps no reason a trial failed: the log of the Optuna code that ran {them} says why "
            f'("Trial {trials[0].number} failed with parameters: ... because of the following error: ..."), '
            f"and {listed} lists {their} parameters"
        )
    return HpoError(
        f"study {study.study_name!r} has no complete trial yet ({shown}); it was not created by hpotool "
        f"optimize, and {why}: fix that and run more of its trials (with the Optuna code that made it) until "
        f"one completes"
    )


def state_counts(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """How many of `trials` are in each state ("complete", "pruned", ...), the states in order of the first
    trial in each."""
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _trial_summary(trial: FrozenTrial, study_attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "trial_number": trial.number,
        "params": trial_params(study_attrs, trial),
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
    for path in sorted(folder.glob("best_run*.yaml")) if folder.is_dir() else []:
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
    from hpotool.stale import died_here

    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if not died_here(t)]
    if not running:
        return None
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    which = "a trial" if len(running) == 1 else f"{len(running)} trials"
    return (
        f"study {study.study_name!r} is still running ({which} running now): this is the best of its {finished} "
        f"finished trial{'' if finished == 1 else 's'} so far; run the command again once the study ends"
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
