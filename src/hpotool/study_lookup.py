"""Finding a study by name for every command that reads one back (`find_study`): when it is missing, one
line naming where it was looked for and the studies that do exist, or where it is instead."""

from __future__ import annotations

import os
from pathlib import Path
from shlex import quote
from typing import Any

import optuna

from hpotool.browse import study_rows
from hpotool.errors import HpoError
from hpotool.path_checks import NAME_MAX, abbreviated, long_part
from hpotool.storage import load_study, make_storage
from hpotool.storage_url import default_storage_url, shown_url, storage_file, storage_origin, with_file
from hpotool.study_names import LISTED_STUDIES, near_study
from hpotool.yamlfile import missing_path_fix


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
            if missing and given is not None and root is None:  # nowhere above either: the path itself
                raise HpoError(f"{exc}; {missing_path_fix(given)}") from None
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
