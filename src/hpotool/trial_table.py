"""Every trial of a study as data: its parameters as values in the search space's order (`trial_params`), one
record a trial (`trials.json`) and one flat table (`trials.csv`, on Optuna's `trials_dataframe`)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import trial_seconds
from hpotool.fingerprint import config_of, stored_config
from hpotool.formatting import format_param
from hpotool.ranking import is_multi_objective, objective_names
from hpotool.search_space import decode_params
from hpotool.silent_fails import silent_fail_reasons
from hpotool.strict_json import json_safe
from hpotool.suggestion import on_step

if TYPE_CHECKING:
    import pandas as pd


# User attrs the objective sets, shown as their own columns rather than as `user_attrs_<name>`.
_KNOWN_ATTRS = ("epochs_run", "prune_reason", "fail_reason", "metrics", "history", "diverged_at")


# The columns of trials.csv besides parameters, values and prefixed metrics and user attrs.
_COLUMNS = ("duration_s", *_KNOWN_ATTRS[:3], "datetime_start", "datetime_complete", "history")


def trial_params(study_attrs: Mapping[str, Any], trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters as values, a list choice as the list rather than the label Optuna stores,
    decoded by the search space the trial ran under (`study_attrs`: the study's user attrs, read once). A
    queued trial, which has none yet, gives the values it was queued with (`enqueue_trial`)."""
    opt = config_of(study_attrs, trial.number, "optimize_config")
    space = opt.get("search_space") if opt is not None else None
    space = space if isinstance(space, dict) else {}
    params = decode_params(stored_params(trial), space)
    return {name: params[name] for name in in_space_order(params, space)}  # a queued trial's as enqueued


def exported_params(study_attrs: Mapping[str, Any], trial: FrozenTrial) -> dict[str, Any]:
    """`trial_params` as the exports write them: a stepped float on its step as the YAML writes it
    (`on_step`: 0.3, where random, qmc and cmaes store 0.30000000000000004 and grid and brute force 0.3)."""
    return {k: _on_step(trial, k, v) for k, v in trial_params(study_attrs, trial).items()}


def _on_step(trial: FrozenTrial, name: str, value: Any) -> Any:
    """`value` of the trial's parameter `name` on its distribution's step (`on_step`), if it has one."""
    from optuna.distributions import FloatDistribution

    d = trial.distributions.get(name)
    return on_step(value, d.low, d.step) if isinstance(d, FloatDistribution) and d.step is not None else value


def shown_params(study_attrs: Mapping[str, Any], trial: FrozenTrial) -> dict[str, str]:
    """The trial's parameters as every line and table shows them (`format_param`), decoded first
    (`trial_params`): a string choice `"[1,2]"` reads apart from the list choice [1, 2], whose label Optuna
    stores as text (before, the progress lines, MLflow and the multi-objective export showed both bare)."""
    from optuna.distributions import CategoricalDistribution

    choices = {k for k, d in trial.distributions.items() if isinstance(d, CategoricalDistribution)}
    return {k: format_param(v, k in choices) for k, v in trial_params(study_attrs, trial).items()}


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
        "params": exported_params(study_attrs, trial),
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
    trials = study.get_trials(deepcopy=False)
    records = [trial_record(t, attrs) for t in trials]
    silent = silent_fail_reasons(study, trials)  # failed by plain Optuna, which gives no reason
    for record in records:
        record["fail_reason"] = silent.get(record["number"], record["fail_reason"])
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
    # Without "value": the value columns come from the trials (_value_columns), and two objectives of one
    # name made two ("values", name) columns, which pandas 2.0 would not select from ("cannot handle
    # a non-unique multi-index!", for raw[("number", "")]).
    raw = study.trials_dataframe(
        attrs=("number", "state", "datetime_start", "datetime_complete", "user_attrs"),
        multi_index=True,
    )
    out: dict[str, Any] = {"number": raw[("number", "")], "state": raw[("state", "")]}
    out.update(_value_columns(study, trials))
    param_columns = _param_columns(study, trials, out)
    out.update(dict.fromkeys(param_columns))  # their places among the columns; filled in by _typed_frame
    attrs = {str(c[1]): raw[c] for c in raw.columns if c[0] == "user_attrs"}
    out["duration_s"] = [trial_seconds(t) for t in trials]
    for name in ("epochs_run", "prune_reason", "fail_reason"):
        out[name] = attrs.get(name, pd.Series([None] * len(trials)))
    silent = silent_fail_reasons(study, trials)  # failed by plain Optuna, which gives no reason
    if silent:
        out["fail_reason"] = [
            silent.get(t.number, reason) for t, reason in zip(trials, out["fail_reason"], strict=True)
        ]
    out.update(_metric_columns(trials))
    out["datetime_start"] = raw[("datetime_start", "")]
    out["datetime_complete"] = raw[("datetime_complete", "")]
    out.update(_user_attr_columns(trials, attrs))
    out["history"] = [_cell(trial_history(t)) for t in trials]
    return _typed_frame(out, param_columns)


def _value_columns(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, Any]:
    """The objective value columns: `value`, or `values_<name or index>` and `pareto` for several objectives."""
    import pandas as pd

    out: dict[str, Any] = {}
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
    return out


def _param_columns(
    study: optuna.Study, trials: list[FrozenTrial], out: dict[str, Any]
) -> dict[str, pd.Series]:
    """One column per parameter, keyed by its column name (`params_<name>` where `out` or the table takes it)."""
    # Parameters in the search space's order (Optuna sorts them by name; the first trial's suggestions
    # put a parameter its conditions switched off after the rest), then any others in the order trials
    # suggested them; one whose name is taken by a column of the table (a plain Optuna study's "value" or
    # "state") is spelt as Optuna does.
    found: list[str] = []
    for t in trials:
        found += [p for p in stored_params(t) if p not in found]
    space = stored_config(study.user_attrs, "optimize_config").get("search_space")
    columns: dict[str, pd.Series] = {}
    for name in in_space_order(found, space if isinstance(space, dict) else {}):
        taken = (
            name in out
            or name in columns
            or name in _COLUMNS
            or name.startswith(("values_", "metrics_", "user_attrs_"))
        )
        columns[f"params_{name}" if taken else name] = _param_column(trials, name)
    return columns


def _metric_columns(trials: list[FrozenTrial]) -> dict[str, list[Any]]:
    """One `metrics_<name>` column per final metric any trial stored, in the order the trials stored them."""
    metric_names: list[str] = []
    for t in trials:
        metric_names += [m for m in _metrics(t) if m not in metric_names]
    return {f"metrics_{m}": [_cell(_metrics(t).get(m)) for t in trials] for m in metric_names}


def _user_attr_columns(trials: list[FrozenTrial], attrs: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """The `user_attrs_<name>` columns: the user attrs hpotool does not show as columns of their own."""
    # A "metrics" attr that is not the mapping hpotool stores (the metrics_ columns) is a plain study's own.
    own_metrics = any(not isinstance(t.user_attrs.get("metrics", {}), dict) for t in trials)
    return {
        f"user_attrs_{name}": column.map(_cell)
        for name, column in attrs.items()
        if name not in _KNOWN_ATTRS or (name == "metrics" and own_metrics)
    }


def _typed_frame(out: dict[str, Any], param_columns: dict[str, pd.Series]) -> pd.DataFrame:
    """The table of `out`'s columns with the dtypes trials.csv writes, the parameters' from `param_columns`."""
    import pandas as pd

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

    values = [_on_step(t, name, stored_params(t).get(name, _UNSET)) for t in trials]
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
