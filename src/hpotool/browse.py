"""Browsing stored studies: the data behind `hpotool studies` and `hpotool trials` (`hpotool.cli.browse` draws it)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from shlex import quote
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpotool.errors import HpoError
from hpotool.fingerprint import stored_config
from hpotool.path_checks import NAME_MAX, abbreviated, long_part
from hpotool.ranking import is_feasible, state_counts
from hpotool.sqlite_files import is_optuna_sqlite, sqlite_damage
from hpotool.stop_note import kept
from hpotool.storage import load_study, make_storage
from hpotool.storage_files import is_optuna_journal
from hpotool.storage_url import default_storage_url, shown_url, storage_file, storage_origin, with_file
from hpotool.study_names import near_study
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
    last activity.

    Raises:
        HpoError: the storage does not exist or cannot be opened.
    """
    storage = make_storage(url, create=False)
    rows = []
    for frozen in storage.get_all_studies():
        trials = storage.get_all_trials(storage.get_study_id_from_name(frozen.study_name), deepcopy=False)
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
                "pareto_trials": _pareto_size(frozen.study_name, storage, frozen.directions),
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
    for path in sorted(folder.glob("*.db")):
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
    for path in sorted(folder.glob("*.log")):
        if path.is_file() and path.stat().st_size and is_optuna_journal(path):
            try:
                rows += storage_studies(f"journal:{path}")
            except HpoError as exc:
                notes.append(f"{path}: skipped: {exc}")
    return rows, notes


# The studies a missing study's line names at most; `hpotool studies` lists them all.
LISTED_STUDIES = 12


def listed_studies(rows: list[dict[str, Any]], folder: Path) -> str:
    """The studies `study_rows` found under `folder`, for the line saying a study is missing: those in their
    default file (`folder/NAME.db`) by name, with that file's URL once, then the others each with its
    storage; past `LISTED_STUDIES`, how many more (before: each with its URL, 30 studies a 1,500-character
    line)."""
    if not rows:
        return "none"

    def in_own_file(row: dict[str, Any]) -> bool:
        return bool(row["storage"] == f"sqlite:///{folder / row['name']}.db")

    own = [r["name"] for r in rows if in_own_file(r)]
    parts = [*own, *(f"{r['name']} ({r['storage']})" for r in rows if not in_own_file(r))]
    if len(own) == 1:
        parts[0] = f"{own[0]} (sqlite:///{folder / own[0]}.db)"
    shown, more = parts[:LISTED_STUDIES], len(parts) - LISTED_STUDIES
    if len(own) > 1:
        each = f" (each in sqlite:///{folder}/<name>.db)"
        at = min(len(own), LISTED_STUDIES) - 1
        shown[at] += each
    text = ", ".join(shown)
    return text + (f", and {more} more, which hpotool studies lists" if more > 0 else "")


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
        raise HpoError(f"--state: {state!r} is not a trial state; use one of: {', '.join(STATES)}")
    trials = study.get_trials(deepcopy=False)
    if state is not None:
        trials = [t for t in trials if t.state.name.lower() == state]
    multi = len(study.directions) > 1
    front = {t.number for t in study.best_trials} if multi else set()  # feasible ones only, as Optuna has it
    trials = sorted(trials, key=_sort_key(study.directions[0], front))
    if top is not None:
        trials = trials[:top]
    rows, attrs = [], study.user_attrs
    for t in trials:
        row = trial_record(t, attrs)
        del row["history"]
        row["state"] = row["state"].lower()
        row["feasible"] = is_feasible(t)
        if multi:
            row["pareto"] = t.number in front
        row["datetime_start"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        row["datetime_complete"] = (
            t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None
        )
        rows.append(row)
    return rows


def _in_a_folder_above(study_name: str, folder: Path) -> Path | None:
    """The nearest `folder/NAME.db` of a folder above this one that is an Optuna SQLite file, absolute;
    None when there is none (or `folder` is absolute)."""
    from hpotool.sqlite_files import is_optuna_sqlite

    if folder.is_absolute():
        return None
    for parent in Path.cwd().parents:
        candidate = parent / folder / f"{study_name}.db"
        if candidate.is_file() and is_optuna_sqlite(candidate):
            return candidate
    return None


def studies_folder_above(folder: Path = Path("studies")) -> Path | None:
    """The nearest `folder` of a folder above this one that holds Optuna files (*.db, *.log), absolute;
    None when there is none (or `folder` is absolute)."""
    from hpotool.sqlite_files import is_optuna_sqlite
    from hpotool.storage_files import is_optuna_journal

    if folder.is_absolute():
        return None
    for parent in Path.cwd().parents:
        candidate = parent / folder
        if not candidate.is_dir():
            continue
        files = [p for p in candidate.iterdir() if p.is_file()]
        if any(is_optuna_sqlite(p) for p in files if p.suffix == ".db") or any(
            is_optuna_journal(p) for p in files if p.suffix == ".log" and p.stat().st_size
        ):
            return candidate
    return None


def _folder_above(study_name: str, url: str, path: Path) -> Path | None:
    """The nearest folder above this one from which the relative `path`, the file `url` names, is a storage
    holding `study_name`; None when there is none (or `path` is absolute)."""
    from hpotool.study_names import study_names

    if path.is_absolute():
        return None
    for parent in Path.cwd().parents:
        if not (parent / path).is_file():
            continue
        try:
            if study_name in study_names(make_storage(with_file(url, parent / path), create=False)):
                return parent
        except Exception:  # not an Optuna file: not the one meant
            continue
    return None


def find_study(
    study_name: str,
    storage_url: str | None,
    folder: Path = Path("studies"),
    storage_option: str = "--storage",
    name_option: str = "--study-name",
) -> optuna.Study:
    """`storage.load_study`, and when no URL is given and the default file is missing, the error names
    the studies found under `folder` instead of only the missing file.

    Raises:
        HpoError: one line naming the study, the storage (and `storage_option` when it was given) and the
            studies that do exist.
    """
    storage_url = storage_url or None  # '': the default storage, as `studies` and `optimize` take it
    check_study_name(study_name, storage_url, name_option, storage_option)
    with storage_origin(storage_url, storage_option):
        return _find_study(study_name, storage_url, folder, storage_option, name_option)


def check_study_name(
    study_name: str,
    storage_url: str | None,
    name_option: str = "--study-name",
    storage_option: str = "--storage",
) -> None:
    """Refuse an empty or blank study name before any storage is opened: `--study-name "$NAME"` with NAME
    unset was looked up as the file studies/.db, said 'studies/.db does not exist', and a join waited for it.

    Raises:
        HpoError: naming `name_option` and how to find the study's name.
    """
    if study_name.strip():
        file = storage_file(default_storage_url(study_name)) if storage_url is None else None
        part = long_part(file) if file is not None else None
        if part is not None:
            raise HpoError(
                f"{name_option}: {abbreviated(study_name)!r} is {len(os.fsencode(study_name))} bytes long, too long for "
                f"its default storage file studies/<name>.db (a file name holds at most {NAME_MAX} bytes); give "
                f"the study's name, or {storage_option} URL for a study stored elsewhere"
            )
        return
    where = f" --storage {quote(shown_url(storage_url))}" if storage_url is not None else ""
    what = "is empty" if not study_name else f"is {study_name!r}, only spaces"
    raise HpoError(
        f"{name_option}: {what}; give the study's name, e.g. {name_option} mnist (hpotool studies{where} "
        f"lists the studies)"
    )


def _find_study(
    study_name: str, storage_url: str | None, folder: Path, storage_option: str, name_option: str
) -> optuna.Study:
    try:
        return load_study(study_name, storage_url)
    except HpoError as exc:
        default = Path(
            f"{folder}/{study_name}.db"
        )  # as the URL names it: studies//data/x.db is studies/data/x.db
        if storage_url is not None:
            given = storage_file(storage_url)
            missing = given is not None and long_part(given) is None and not given.exists()
            root = _folder_above(study_name, storage_url, given) if given and missing else None
            if root is None or given is None:
                raise
            raise HpoError(  # run from a subfolder of the project: the study is up there
                f"{exc}: {given} is read from the folder the command runs in, and the study is in {root / given}; "
                f"run from {root}, or give {storage_option} {quote(with_file(storage_url, root / given))}"
            ) from None
        if default.exists():
            raise
        rows, _ = study_rows(None, folder)
        here = [r["storage"] for r in rows if r["name"] == study_name]
        if len(here) == 1:  # in a file of another name there (a journal, studies/NAME.log): say which
            raise HpoError(
                f"no study {study_name!r} in {default}: it is in {here[0]}; give {storage_option} {quote(here[0])}"
            ) from None
        above = _in_a_folder_above(study_name, folder) if not here else None
        if above is not None:  # run from a subfolder of the project: the study is up there
            raise HpoError(
                f"no study {study_name!r} in {default}: {default} is read from the folder the command runs in, "
                f"and the study is in {above}; run from {above.parent.parent}, or give {storage_option} "
                f"{quote(f'sqlite:///{above}')}"
            ) from None
        found = listed_studies(rows, folder)
        file = Path(study_name)  # a study's file given for its name: studies/a.db -> a
        stem = file.stem if file.suffix.lower() in (".db", ".sqlite", ".sqlite3") else file.name
        if stem != study_name and stem in {r["name"] for r in rows}:
            raise HpoError(
                f"no study {study_name!r}: {name_option} takes the study's name, not its file; "
                f"give {name_option} {stem}"
            ) from None
        near = near_study(study_name, [r["name"] for r in rows])
        raise HpoError(
            f"no study {study_name!r}: {default} does not exist{near}; studies under {folder}/: {found} "
            f"(give {storage_option} URL for a study stored elsewhere)"
        ) from None
