"""`hpotool studies` and `hpotool trials`: tables of the stored studies and of one study's trials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from hpotool.cli.options import JsonOpt, ReadStorageOpt, StudyNameReq
from hpotool.cli.root import app, say_stopped, stoppable, user_errors
from hpotool.cli.studies_table import NAME_MIN, storage_lines, studies_records, studies_table
from hpotool.cli.terminal import err_console, escape, out_console, print_json, print_note, shown_url
from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna


def _other_journals(url: str) -> str:
    """The other journals on the Redis server of `url` (other `?prefix=`es), with the command that lists
    each one's studies: `studies` reads one journal, and a server that keeps its studies under a prefix read
    as empty without it. "" where there is none, or `url` is no Redis server's."""
    from shlex import quote

    from hpotool.storage import other_redis_journals

    urls = [quote(shown_url(u)) for u in other_redis_journals(url)]  # quoted: a shell globs the "?"
    if len(urls) == 1:
        return f"its server keeps another journal: hpotool studies --storage {urls[0]} lists its studies"
    if urls:
        return (
            f"its server keeps {len(urls)} other journals: hpotool studies --storage {urls[0]} "
            f"(or {', '.join(urls[1:])}) lists theirs"
        )
    return ""


@app.command(short_help="List the studies in a storage.")
def studies(
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", help="Optuna storage URL (default: every studies/*.db and journal studies/*.log)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List studies: name, objective (direction and metric), trials by state, best value, last activity;
    under the table, where they are stored."""
    with stoppable(say_stopped("studies", writes=False)), user_errors():
        from hpotool.browse import study_rows
        from hpotool.storage_url import storage_file, storage_origin
        from hpotool.yamlfile import missing_path_fix

        with storage_origin(storage, "--storage"):
            try:
                rows, notes = study_rows(storage)
            except HpoError as exc:  # a file that is not there: the path to check, as trials and report say
                path = storage_file(storage) if storage else None
                if path is None or path.exists():
                    raise
                raise HpoError(f"{exc}; {missing_path_fix(path)}") from None
            others = _other_journals(storage) if storage else ""
        if others and (rows or as_json):
            notes.append(f"{shown_url(storage or '')}: {others}")
        for note in notes:
            print_note(note)
        if as_json:
            print_json(rows)
            return
        if not rows:
            where = shown_url(storage) if storage else "studies/*.db or studies/*.log"  # no password shown
            from hpotool.study_lookup import studies_folder_above

            above = studies_folder_above() if not storage else None  # --storage '': the default too
            hint = (
                f" of this folder; {above} holds some: run from {above.parent}"
                if above is not None
                else f"; {others}"
                if others
                else ""
            )
            err_console().print(f"no studies in {escape(where)}{escape(hint)}", soft_wrap=True)
            return
        # The first layout that fits the terminal: on 80 columns a cell folded mid-word reads as noise
        # ("digits_" / "mlp", "comple" / "te 2, "), so cells go on several lines at their spaces instead.
        stackable = ("best", "trials", "objective", "last activity")  # best: "Pareto:" over its size
        layouts = [stackable[:n] for n in range(len(stackable) + 1)]
        unbounded = out_console().options.update_width(1_000_000)  # measure() clamps to the terminal's width

        def fitting(names: list[dict[str, Any]]) -> tuple[str, ...] | None:
            widths = [
                out_console().measure(studies_table(names, stacked=s), options=unbounded) for s in layouts
            ]
            return next(
                (s for s, w in zip(layouts, widths, strict=True) if w.maximum <= out_console().width), None
            )

        # Every cell whole where a layout allows it; else every cell but the names, which fold (rich narrows
        # the one column that may wrap): measured with the names whole only, a name longer than the
        # terminal allowed left every layout too wide, and every cell folded mid-word beside it. The names
        # fold in the layout that stacks every column, which leaves them the most room: the first layout
        # that fitted names cut short left them that short, 11 characters a line beside a whole "2026-12-06
        # 09:02" (a multi-objective study's two objectives took the width its name needed).
        stacked = fitting(rows)
        if stacked is None and fitting([{**r, "name": r["name"][:NAME_MIN]} for r in rows]) is not None:
            stacked = stackable
        # Too narrow for a study a line, even stacked (60 columns): a section per study, keys beside values.
        out_console().print(
            studies_table(rows, stacked=stacked) if stacked is not None else studies_records(rows)
        )
        for line in storage_lines(rows):
            out_console().print(escape(line), soft_wrap=True)  # whole, to copy and paste
        for r in rows:
            if r["unseen_stop"]:  # `optimize ... |& head`: why its study stopped short, said nowhere else
                print_note(f"study {r['name']!r}: {r['unseen_stop']}")


@app.command(short_help="List a study's trials, best first.")
def trials(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only the N best.")] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="Only trials in this state: complete, pruned, fail, running, waiting (queued)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a study's trials, best first (pruned trials show their last reported value; running ones the
    epochs they have reported so far and the seconds since they started)."""
    with stoppable(say_stopped("trials", writes=False)), user_errors():
        from hpotool.browse import trial_rows
        from hpotool.study_lookup import find_study

        study = find_study(study_name, storage)
        rows = trial_rows(study, top, state)
        if as_json:
            print_json(rows)
            return
        if rows:
            from hpotool.cli.trials_table import print_trials

            print_trials(study, study_name, rows)
        else:  # an empty table says less than a line naming what the study has
            _print_no_trials(study, study_name, state)
        from hpotool.stop_note import kept

        # `optimize ... |& head`: why the study stopped short, said nowhere else; under the table
        unseen = kept(study.user_attrs)
        if unseen is not None:
            print_note(f"study {study_name!r}: {unseen}")


def _print_no_trials(study: optuna.Study, study_name: str, state: str | None) -> None:
    """The line naming what a study has, where it has no trial (in `state`) to list."""
    from hpotool.ranking import state_counts

    has = ", ".join(f"{k} {v}" for k, v in state_counts(study.get_trials(deepcopy=False)).items())
    which = f"{state.lower()} trial" if state else "trial"
    out_console().print(f"study {escape(study_name)} has no {which}" + (f" ({has})" if has else ""))
