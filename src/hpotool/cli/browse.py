"""`hpotool studies` and `hpotool trials`: tables of the stored studies and of one study's trials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from hpotool.cli.options import JsonOpt, ReadStorageOpt, StudyNameReq
from hpotool.cli.root import app, user_errors
from hpotool.cli.studies_table import NAME_MIN, storage_lines, studies_records, studies_table
from hpotool.cli.terminal import (
    err_console,
    escape,
    fits,
    out_console,
    plain_table,
    print_json,
    print_note,
    shown_url,
)
from hpotool.formatting import format_choice, format_param, format_value

if TYPE_CHECKING:
    from rich.table import Table


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
    with user_errors():
        from hpotool.browse import study_rows
        from hpotool.storage_url import storage_origin

        with storage_origin(storage, "--storage"):
            rows, notes = study_rows(storage)
        for note in notes:
            print_note(note)
        if as_json:
            print_json(rows)
            return
        if not rows:
            where = shown_url(storage) if storage else "studies/*.db or studies/*.log"  # no password shown
            from hpotool.browse import studies_folder_above

            above = studies_folder_above() if not storage else None  # --storage '': the default too
            hint = (
                f" of this folder; {above} holds some: run from {above.parent}" if above is not None else ""
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
    """List a study's trials, best first (pruned trials show their last reported value)."""
    with user_errors():
        from hpotool.browse import find_study, trial_rows

        study = find_study(study_name, storage)
        rows = trial_rows(study, top, state)
        if as_json:
            print_json(rows)
            return
        from hpotool.stop_note import kept

        # `optimize ... |& head`: why the study stopped short, said nowhere else; under the table
        unseen = kept(study.user_attrs)
        unseen_note = f"study {study_name!r}: {unseen}" if unseen is not None else None
        if not rows:  # an empty table says less than a line naming what the study has
            from hpotool.ranking import state_counts

            has = ", ".join(f"{k} {v}" for k, v in state_counts(study.get_trials(deepcopy=False)).items())
            which = f"{state.lower()} trial" if state else "trial"
            out_console().print(f"study {escape(study_name)} has no {which}" + (f" ({has})" if has else ""))
            if unseen_note is not None:
                print_note(unseen_note)
            return
        # In the order the search space writes them (the study's stored one), then any others as found.
        from hpotool.fingerprint import stored_config
        from hpotool.trial_table import in_space_order

        space = stored_config(study.user_attrs, "optimize_config").get("search_space")
        found = dict.fromkeys(p for r in rows for p in r["params"])
        params = in_space_order(found, space if isinstance(space, dict) else {})
        # A note only where it says more than the state and epochs columns do: "Pareto front" where the
        # front leaves out some complete trial that meets the constraints.
        from optuna.trial import TrialState

        from hpotool.ranking import is_feasible

        feasible = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)
        ]
        dominated = len(study.directions) > 1 and len(study.best_trials) < len(feasible)
        from hpotool.stale import died_here

        # A RUNNING trial whose process of this machine is gone (kill -9, an OOM kill) runs no more.
        dead = {
            t.number: f"its process (pid {t.user_attrs['worker']['pid']}) is gone: the next optimize marks it "
            f"FAIL" + (" and runs its values again" if t.params or "fixed_params" in t.system_attrs else "")
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if died_here(t)
        }
        notes = [
            dead.get(r["number"])
            or _reason(r["fail_reason"])
            or ("" if r["feasible"] else "violates the constraints")
            or ("Pareto front" if dominated and r.get("pareto") else "")
            or (
                ""
                if _reason(r["prune_reason"]).startswith(("pruned after", "pruned at epoch"))
                else _reason(r["prune_reason"])
            )
            for r in rows
        ]
        from optuna.distributions import CategoricalDistribution

        # A choice as the YAML spells it (5.0, null); a sampled number as the other numbers are shown.
        choices = {
            name
            for t in study.get_trials(deepcopy=False)
            for name, d in t.distributions.items()
            if isinstance(d, CategoricalDistribution)
        }

        def cell(name: str, r: dict[str, Any]) -> str:
            if name not in r["params"]:
                return "-"
            return format_param(r["params"][name], name in choices)

        shown = [[cell(p, r) for p in params] for r in rows]
        # One column per parameter where they fit the terminal, else one wrapped "params" column.
        from hpotool.ranking import is_multi_objective, objective_names
        from hpotool.trial_table import epochs_count

        value_header = ", ".join(objective_names(study)) if is_multi_objective(study) else "value"
        # A parameter named like a column of the table (a searched epochs) is spelt as trials.csv spells it.
        own = {"#", "state", value_header, "params", "epochs", "seconds", "note"}
        headers = [f"params_{p}" if p in own else p for p in params]
        widest = [max([len(h), *(len(v[i]) for v in shown)]) + 3 for i, h in enumerate(headers)]
        split = sum(widest) + 60 <= out_console().width

        def trials_table(with_notes: bool) -> Table:
            columns = ["#", "state", value_header, *(headers if split else ["params"]), "epochs", "seconds"]
            columns += ["note"] if with_notes else []
            table = plain_table(f"study {study_name}: {len(rows)} trial(s)")
            for col in columns:  # several objectives' names one under the other, as their values
                table.add_column(col.replace(", ", "\n") if col == value_header else col, overflow="fold")
            for r, values, note in zip(rows, shown, notes, strict=True):
                shown_values = r["values"] if r["values"] is not None else [r["value"]]
                # Several objectives one under the other: a narrow column leaves the params room to stay whole.
                value = "\n".join("-" if v is None else format_value(v) for v in shown_values)
                cells = [
                    str(r["number"]),
                    r["state"],
                    value,
                    *(
                        values
                        if split
                        else [  # what the trial ran: a parameter its conditions switched off is left out
                            " ".join(
                                f"{p}={v}" for p, v in zip(params, values, strict=True) if p in r["params"]
                            )
                        ]
                    ),
                    str(epochs_count(r["epochs_run"]) if epochs_count(r["epochs_run"]) is not None else "-"),
                    f"{r['duration_s']:.3g}" if r["duration_s"] is not None else "-",
                    *([note or ""] if with_notes else []),
                ]
                table.add_row(*cells)
            return table

        table = trials_table(any(notes))
        # A note column that leaves the others too narrow for their words folded a value mid-number
        # ("optimizer.lr=0.02" over "527" at 80 columns): the notes then go under the table, by trial number.
        below = False
        if not fits(table) and any(notes):
            narrower = trials_table(False)
            if fits(narrower):
                table, below = narrower, True
        out_console().print(table)
        if below:
            from rich.text import Text

            for r, note in zip(rows, notes, strict=True):
                if note:
                    out_console().print(Text(f"#{r['number']}: {note}"))
        # A plain Optuna script's own epochs_run attr ("10", "ten"): no count hpotool recorded.
        odd = [r for r in rows if r["epochs_run"] is not None and epochs_count(r["epochs_run"]) is None]
        if odd:
            numbers = ", ".join(str(r["number"]) for r in sorted(odd, key=lambda r: r["number"]))
            stored = ", ".join(repr(r["epochs_run"]) for r in sorted(odd, key=lambda r: r["number"]))
            print_note(
                f"trial{'s' if len(odd) > 1 else ''} {numbers} store{'' if len(odd) > 1 else 's'} user attr "
                f"'epochs_run' as {stored}, not as the count of epochs hpotool records: shown as -; hpotool "
                f"trials --json lists each as stored"
            )
        if unseen_note is not None:
            print_note(unseen_note)


def _reason(value: Any) -> str:
    """A trial's fail_reason or prune_reason attr as text: hpotool stores a string, but a plain Optuna study
    may keep anything under the name (a number, a list, a mapping: as the YAML spells it)."""
    if value is None or isinstance(value, str):
        return value or ""
    return format_choice(value)
