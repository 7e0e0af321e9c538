"""Browsing stored studies: the data behind `hpotool studies` and `hpotool trials` (`hpotool.cli.browse` draws it)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpotool.durations import trial_start
from hpotool.errors import HpoError
from hpotool.fingerprint import stored_config
from hpotool.formatting import natural_key
from hpotool.ranking import is_feasible, state_counts
from hpotool.silent_fails import silent_fail_reasons
from hpotool.sqlite_files import is_optuna_sqlite, sqlite_damage
from hpotool.stop_note import kept
from hpotool.storage import make_storage
from hpotool.storage_files import is_optuna_journal
from hpotool.storage_url import shown_url
from hpotool.trial_table import trial_record

STATES = ("complete", "pruned", "fail", "running", "waiting")


def _last_activity(trials: list[FrozenTrial]) -> datetime | None:
    times = [t.datetime_complete or t.datetime_start for t in trials]
    present = [t for t in times if t is not None]
    return max(present) if present else None


def _best_values(directions: list[StudyDirection], trials: list[FrozenTrial]) -> list[float] | None:
    """The best value of a single-objective study among complete trials that meet its constraints; None
    for none such or several objectives."""
    if len(directions) != 1:
        return None
    values = [
        float(t.values[0]) for t in trials if t.state == TrialState.COMPLETE and t.values and is_feasible(t)
    ]
    if not values:
        return None
    return [max(values) if directions[0] == StudyDirection.MAXIMIZE else min(values)]


def _pareto_size(
    study_name: str, storage: optuna.storages.BaseStorage, directions: list[StudyDirection]
) -> int | None:
    """How many trials make the Pareto front of a study of several objectives (those that meet its
    constraints, as `Study.best_trials` and export-best have it); None for one objective."""
    if len(directions) == 1:
        return None
    return len(optuna.Study(study_name=study_name, storage=storage).best_trials)


def _metric(opt: dict[str, Any]) -> str | None:
    """The metric(s) an hpotool study optimizes, as its optimize config names them."""
    metrics = opt.get("metrics")
    return ", ".join(metrics) if isinstance(metrics, list) and metrics else opt.get("metric")


def storage_studies(url: str) -> list[dict[str, Any]]:
    """One row per study in the storage at `url`: name, directions, metric, trials by state, best value,
    last activity. A study another process deletes while they are read is left out.

    Raises:
        HpoError: the storage does not exist or cannot be opened.
    """
    storage = make_storage(url, create=False)
    rows = []
    for frozen in storage.get_all_studies():
        try:
            trials = storage.get_all_trials(storage.get_study_id_from_name(frozen.study_name), deepcopy=False)
            pareto = _pareto_size(frozen.study_name, storage, frozen.directions)
        except KeyError:  # deleted by another process since it was listed (a shared server): gone, not shown
            continue
        counts = state_counts(trials)
        best = _best_values(frozen.directions, trials)
        last = _last_activity(trials)
        rows.append(
            {
                "name": frozen.study_name,
                "storage": shown_url(url),
                "directions": [d.name.lower() for d in frozen.directions],
                "metric": _metric(stored_config(frozen.user_attrs, "optimize_config")),
                "trials": counts,
                "n_trials": len(trials),
                "best_value": best[0] if best else None,
                "pareto_trials": pareto,
                "last_activity": last.isoformat(timespec="seconds") if last else None,
                "unseen_stop": kept(frozen.user_attrs),  # a run stopped by a closed pipe (`|& head`)
            }
        )
    return rows


def study_rows(
    storage_url: str | None, folder: Path = Path("studies")
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every study in `storage_url`, or in every `folder/*.db` and Optuna journal `folder/*.log` when no URL
    is given.

    Returns:
        The rows, and notes on files that were skipped (not Optuna databases, unreadable).
    """
    if storage_url:  # '' (`--storage "${VAR:-}"`, VAR unset) is no URL, as for every command: the default
        return storage_studies(storage_url), []
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    # Numbers in names as numbers: as strings, digits10.db came before digits2.db.
    for path in sorted(folder.glob("*.db"), key=lambda p: natural_key(p.name)):
        if not is_optuna_sqlite(path):
            damage = sqlite_damage(path)
            notes.append(
                f"{path}: a damaged SQLite file ({damage}), skipped"
                if damage
                else f"{path}: not an Optuna database, skipped"
            )
            continue
        try:
            rows += storage_studies(f"sqlite:///{path}")
        except HpoError as exc:
            notes.append(f"{path}: skipped: {exc}")
    # Journal files people keep beside them (`--storage journal:studies/NAME.log`); other logs are not ours.
    for path in sorted(folder.glob("*.log"), key=lambda p: natural_key(p.name)):
        if path.is_file() and path.stat().st_size and is_optuna_journal(path):
            try:
                rows += storage_studies(f"journal:{path}")
            except HpoError as exc:
                notes.append(f"{path}: skipped: {exc}")
    return rows, notes


def _sort_key(direction: StudyDirection, front: set[int]) -> Any:
    """Complete feasible trials first (those on the Pareto `front`, for several objectives, before the
    ones it dominates), then complete infeasible ones, pruned ones, the rest; by the first value."""
    sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0

    def key(t: FrozenTrial) -> tuple[int, float, int]:
        if t.state == TrialState.COMPLETE:
            group = (0 if not front or t.number in front else 1) if is_feasible(t) else 2
        else:
            group = 3 if t.state == TrialState.PRUNED else 4
        if t.values is None:
            return (5, 0.0, t.number)
        return (group, sign * float(t.values[0]), t.number)

    return key


def _state_meant(given: str) -> str:
    """` (did you mean 'complete'?)` for a state spelt with another ending (completed, failed, pruning): the
    one whose first four letters it shares, as a spelling distance would take pruning for running."""
    meant = [s for s in STATES if s[:4] == given[:4]]
    return f" (did you mean {meant[0]!r}?)" if len(meant) == 1 else ""


def trial_rows(study: optuna.Study, top: int | None = None, state: str | None = None) -> list[dict[str, Any]]:
    """The study's trials as rows, best first: complete trials that meet the study's constraints by value
    (the first objective's, respecting its direction; with several objectives, those on the Pareto front,
    marked `pareto`, before the ones it dominates), then complete trials that violate them (never the
    best, as export-best has it), then pruned trials by their last reported value (what Optuna stores as
    a pruned trial's value; it was measured before training ended, so it does not rank against complete
    trials), then trials without a value. Optionally only one state, and only the first `top`.
    """
    if state is not None:
        state = state.lower()  # as trials.csv spells it (PRUNED) too
    if state is not None and state not in STATES:
        raise HpoError(
            f"--state: {state!r} is not a trial state{_state_meant(state)}; choose one of: {', '.join(STATES)}"
        )
    trials = study.get_trials(deepcopy=False)
    if state is not None:
        trials = [t for t in trials if t.state.name.lower() == state]
    multi = len(study.directions) > 1
    front = {t.number for t in study.best_trials} if multi else set()  # feasible ones only, as Optuna has it
    trials = sorted(trials, key=_sort_key(study.directions[0], front))
    if top is not None:
        trials = trials[:top]
    rows, attrs = [], study.user_attrs
    reports, now = _reports_epochs(study), time.time()
    silent = silent_fail_reasons(study, trials)  # failed by plain Optuna, which gives no reason
    for t in trials:
        row = trial_record(t, attrs)
        if t.number in silent:
            row["fail_reason"] = silent[t.number]
        row["epochs_reported"], row["elapsed_s"] = _progress(t, reports, now)
        del row["history"]
        row["state"] = row["state"].lower()
        row["feasible"] = is_feasible(t)
        if multi:
            row["pareto"] = t.number in front
        rows.append(row)
    return rows


def _reports_epochs(study: optuna.Study) -> bool:
    """Whether the study's trials report their metric epoch by epoch (Optuna's intermediate values): not
    with several objectives, nor for a metric known only once the run ends (n_params, epoch_time)."""
    from hpotool.data import MEASURES

    metric = stored_config(study.user_attrs, "optimize_config").get("metric")
    return len(study.directions) == 1 and metric not in MEASURES


def _progress(trial: FrozenTrial, reports: bool, now: float) -> tuple[int | None, float | None]:
    """A RUNNING trial's progress, which its `epochs_run` and `duration_s` (written as it ends) do not show
    yet: the epochs it has reported so far (None where the study's trials report none, `_reports_epochs`),
    and the seconds since it started, at `now`. (None, None) for a trial in any other state."""
    if trial.state != TrialState.RUNNING:
        return None, None
    started = trial_start(trial)
    elapsed = None if started is None else max(now - started, 0.0)  # another machine's clock may run ahead
    return (len(trial.intermediate_values) if reports else None), elapsed
