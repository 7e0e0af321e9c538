"""`hpotool report` and `hpotool export-best`, and the checks of the paths they (and train-from-best,
refine) write, made before the study is read."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from hpotool.cli.options import ReadStorageOpt, StudyNameReq, out_option
from hpotool.cli.root import app, say_stopped, stoppable, user_errors
from hpotool.cli.terminal import err_console, escape, print_keyed, print_note
from hpotool.errors import HpoError
from hpotool.formatting import format_value


def write_study_report(study_name: str, storage: str | None, out: Path | None, fmt: str | None) -> None:
    from shlex import quote

    from hpotool.importance import import_without_sklearn
    from hpotool.interrupts import raise_dropped
    from hpotool.report import default_report_path, render_report, report_format, write_report
    from hpotool.storage_url import default_storage_url
    from hpotool.study_lookup import find_study

    fmt = report_format(out, fmt)
    if out is not None and os.path.isdir(out):  # found before the figures are drawn, not when writing them
        raise HpoError(
            f"--out {out}: is a folder; give a file in it, e.g. --out {quote(str(out / f'report.{fmt}'))}"
        )
    if not _is_stdout(out):
        _check_folder_of_report(study_name, out, fmt)
    import_without_sklearn()
    url = storage or default_storage_url(study_name)
    if _is_stdout(out):  # `--out -`: the report on stdout, as `-` means for most tools (curl -o -, tar -f -)
        text = render_report(find_study(study_name, storage), url, fmt)
        raise_dropped()  # a Ctrl-C an import caught: nothing written
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    study = find_study(study_name, storage)
    raise_dropped()
    path = write_report(study, url, out or default_report_path(study_name, fmt), fmt)
    err_console().print(f"report written to {escape(str(path))}", soft_wrap=True)


def _check_folder_of_report(study_name: str, out: Path | None, fmt: str) -> None:
    """Refuse a report path under something that is no folder (a file named studies/<name>, /dev/null),
    naming --out: the line said "choose another path", not which flag gives one."""
    from shlex import quote

    from hpotool.path_checks import kind_of, not_a_folder
    from hpotool.report import default_report_path

    path = out if out is not None else default_report_path(study_name, fmt)
    _refuse_a_long_name(path, out)
    _refuse_out_of_studies(
        study_name,
        out,
        "report writes studies/<name>/report.html",
        "give a file with --out, e.g. --out report.html",
    )
    blocker = not_a_folder(path.parent)
    if blocker is None:
        check_out_writable(path, out, path.parent, "report writes the report", "a file")
        return
    other = f"--out {quote(f'{study_name}-report.{fmt}')}"
    if out is None:
        raise HpoError(
            f"{blocker}: is {kind_of(blocker)}, not a folder, and report writes {path} by default; give another "
            f"file with --out PATH, e.g. {other}, or move that file away"
        )
    raise HpoError(f"--out {out}: {_is_no_folder(blocker, out)}; give a file, e.g. {other}")


def _refuse_a_long_name(path: Path, out: Path | None) -> None:
    """Refuse a path to write that holds a name too long for a file (a study name of 300 characters, a
    mistyped --out): it ended in a traceback, `OSError: [Errno 36] File name too long`."""
    from hpotool.path_checks import abbreviated, long_name

    too_long = long_name(path)
    if too_long is not None:
        given = (
            f"--out {abbreviated(str(out), 40)}"
            if out is not None
            else f"{abbreviated(str(path), 40)} (the default)"
        )
        raise HpoError(
            f"{given}: {too_long}; give a shorter {'--out' if out is not None else 'one with --out'}"
        )


def _refuse_out_of_studies(study_name: str, out: Path | None, writes: str, fix: str) -> None:
    """Refuse the default folder of a study whose name leads out of studies/ (a study Optuna code named
    '..' or '/data/x'): export-best and report wrote into the current folder or that absolute one."""
    from hpotool.export import out_of_studies

    folder = out_of_studies(study_name) if out is None else None
    if folder is not None:
        where = "the current folder" if folder == "." else folder
        raise HpoError(f"study {study_name!r}: {writes} by default, and its name makes that {where}; {fix}")


def check_export_folder(study_name: str, out: Path | None, command: str) -> None:
    """Refuse an export folder that is no folder, or under one that is not (a file named studies/<name>,
    /dev/null), naming the flag that gives another: the line said "choose another path"."""
    from shlex import quote

    from hpotool.export import default_export_dir
    from hpotool.path_checks import kind_of, not_a_folder

    folder = out if out is not None else default_export_dir(study_name)
    _refuse_a_long_name(folder, None if command == "train-from-best" else out)
    if command == "export-best":  # train-from-best's study has a stored config, and so a name hpotool checked
        _refuse_out_of_studies(
            study_name,
            out,
            "export-best writes into studies/<name>/",
            "give a folder with --out, e.g. --out exports/best",
        )
    blocker = not_a_folder(folder)
    if blocker is None:
        _check_export_names(folder, out, command)
        if command == "train-from-best":  # its export always goes to studies/<name>/
            check_out_writable(
                folder,
                None,
                folder,
                "train-from-best exports the best trial",
                "",
            )
        else:
            check_out_writable(folder, out, folder, "export-best writes the export", "a folder")
        return
    what = f"{blocker}: is {kind_of(blocker)}, not a folder"
    if command == "train-from-best":  # its export always goes to studies/<name>/
        raise HpoError(
            f"{what}, and train-from-best exports the best trial into {folder}/ (no flag changes that folder); "
            f"move or rename that file"
        )
    other = f"--out {quote(str(Path('exports') / study_name))}"
    if out is None:
        raise HpoError(
            f"{what}, and export-best writes into {folder}/ by default; give a folder with --out PATH, e.g. "
            f"{other}, or move that file away"
        )
    raise HpoError(
        f"--out {out}: {_is_no_folder(blocker, out)}; export-best writes several files into a folder: give one, "
        f"e.g. {other}"
    )


def check_out_writable(path: Path, out: Path | None, folder: Path, what: str, give: str) -> None:
    """Refuse `path` (a file or folder a command writes, into `folder`) where this process cannot write the
    folder, or the one above it that would be made: before the study is read and the work is done, with
    the flag that gives another place (`out`: the user's --out; None: the default path). A device or pipe
    (`--out /dev/null`) is written into, not replaced: nothing is made beside it.

    Args:
        what: what the command does there, e.g. "report writes the report".
        give: what --out takes, e.g. "a file"; empty where no flag changes the path.
    """
    from hpotool.path_checks import shown, unwritable

    if os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path):
        return
    blocked = unwritable(folder)
    if blocked is None:
        return
    cannot = f"this process cannot write to {'it' if blocked == path else shown(blocked)}"
    if not give:
        raise HpoError(
            f"{path}: {what} there (no flag changes that folder), and {cannot}; make it writable, or run from "
            f"another folder"
        )
    if out is None:
        raise HpoError(f"{path}: {what} there by default, and {cannot}; give --out {give} you can write")
    raise HpoError(f"{path}: {cannot}; choose another --out, one you can write")


def _check_export_names(folder: Path, out: Path | None, command: str) -> None:
    """Refuse a folder in the export folder named as a file the export writes (trials.json/): the export
    failed only once its files were written, with "cannot write: Is a directory"."""
    from shlex import quote

    from hpotool.export import EXPORT_FILES

    taken = next((folder / name for name in EXPORT_FILES if os.path.isdir(folder / name)), None)
    if taken is None:
        return
    what = f"{taken}: is a folder, not the file {command} writes there"
    if command == "train-from-best":
        raise HpoError(f"{what} when it exports the best trial (no flag changes that folder); move it away")
    if out is None:
        other = f"--out {quote(str(Path('exports') / folder.name))}"
        raise HpoError(f"{what}; move it away, or give a folder with --out PATH, e.g. {other}")
    raise HpoError(f"{what}; move it away, or choose another --out")


def _is_no_folder(blocker: Path, out: Path) -> str:
    """`is a device, not a folder` for --out itself, `/dev/null is a device, not a folder` for one above it."""
    from hpotool.path_checks import kind_of

    return f"{'' if blocker == out else f'{blocker} '}is {kind_of(blocker)}, not a folder"


def _is_stdout(out: Path | None) -> bool:
    return out is not None and str(out) == "-"


def refuse_stdout(out: Path | None, writes: str, example: str) -> None:
    """`--out -` (stdout, for most tools) where a command writes files: refused, not a folder named '-'.

    Raises:
        HpoError: when `out` is `-`, saying what the command writes and giving `example` instead.
    """
    if _is_stdout(out):
        raise HpoError(f"--out -: this command writes {writes}, not to stdout; give {example}")


@app.command(short_help="Write a study's report (offline HTML, or JSON).")
def report(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    out: Annotated[
        Path | None,
        out_option(
            "a file, e.g. --out report.html",
            "<path>",
            "Output file (default: studies/<study-name>/report.<format>), or - for stdout; "
            "a .json or .html suffix sets the format.",
            file_name="report.html",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html (offline, self-contained) or json (default: from the --out suffix, else html).",
        ),
    ] = None,
) -> None:
    """Write a self-contained report of a study: header, figures, pruning table (HTML or JSON)."""
    with stoppable(say_stopped("report", to_stdout=_is_stdout(out))), user_errors():
        write_study_report(study_name, storage, out, fmt)


@app.command("export-best", short_help="Write the best run config and every trial (CSV, JSON).")
def export_best(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    out: Annotated[
        Path | None,
        out_option(
            f"a folder, e.g. --out {Path('exports') / 'best'}",
            "<dir>",
            "Folder (default: studies/<study-name>/).",
            folder_of="best_run.yaml, best_params.json, trials.csv, trials.json",
        ),
    ] = None,
) -> None:
    """Write the best trial (best_params.json, best_run.yaml) and every trial (trials.csv, trials.json)."""
    with stoppable(say_stopped("export-best")), user_errors():
        from shlex import quote

        from hpotool.export import export_best as write_export
        from hpotool.interrupts import raise_dropped
        from hpotool.storage import study_options
        from hpotool.storage_url import default_storage_url
        from hpotool.study_lookup import find_study

        refuse_stdout(
            out,
            "several files into a folder",
            f"a folder, e.g. --out {quote(str(Path('exports') / study_name))}",
        )
        study = find_study(study_name, storage)
        check_export_folder(study_name, out, "export-best")
        raise_dropped()  # a Ctrl-C something caught (torch's import does) ends it before it writes
        result = write_export(study, storage or default_storage_url(study_name), out)
        from hpotool.trial_table import shown_params

        attrs = study.user_attrs
        rows: list[tuple[str, str]] = []
        if len(result.metrics) > 1:  # why several trials, and which file trains one
            front = f"{len(result.best)} trial{'s' * (len(result.best) != 1)} that no other trial beats on every objective"
            # Without a best_run_<trial>.yaml (a plain Optuna study, or a stored run config this hpotool refuses),
            # train-from-best refuses the study and there is no file to train: best_params.json lists the front
            trainable = any(f.name.startswith("best_run_") for f in result.files)
            rows.append(
                (
                    "Pareto front",
                    escape(
                        f"{front}: train the one you pick with hpotool train-from-best {study_options(study)} "
                        f"--trial <trial> (under the study's final: rules), or hpotool train --run-config "
                        f"{result.folder}/best_run_<trial>.yaml"
                        if trainable
                        else f"{front} (best_params.json lists them under pareto_trials)"
                    ),
                )
            )
        for trial in result.best:
            values = ", ".join(
                f"{m}={format_value(v)}" for m, v in zip(result.metrics, trial.values or [], strict=False)
            )
            rows.append((f"trial {trial.number}", values))
            # a choice as the YAML spells it (null, 0.0, "[1,2]" for that text), as trials shows it
            rows += [(f"  {k}", v) for k, v in shown_params(attrs, trial).items()]
        rows.append(("wrote", f"{result.folder}/: " + ", ".join(f.name for f in result.files)))
        # The folder whole, under the table where its cell would fold it mid-path (80 columns, a log file)
        print_keyed(f"study {study_name}", rows, "wrote", sep=" ")
        for note in result.notes:
            print_note(note)
        if result.problems:
            raise HpoError("\n".join(result.problems))
