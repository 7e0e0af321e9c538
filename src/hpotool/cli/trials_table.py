"""The `hpotool trials` table: a row per trial, a column per parameter where they fit the terminal, a note
where the state and epochs columns do not say enough, and the notes printed under it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpotool.cli.terminal import fits, out_console, plain_table, print_note
from hpotool.formatting import counted, format_choice, format_param, format_value

if TYPE_CHECKING:
    import optuna
    from rich.table import Table


@dataclass(frozen=True)
class _Columns:
    """What the table shows of each trial besides its number, state, epochs and seconds."""

    value_header: str  # "value", or the objectives' names
    params: list[str]  # in the order the search space writes them
    headers: list[str]  # the parameters' column headers
    cells: list[list[str]]  # each row's parameter values, as shown
    split: bool  # a column per parameter; else one wrapped "params" column


def print_trials(study: optuna.Study, study_name: str, rows: list[dict[str, Any]]) -> None:
    """The trials table of `rows`, then the notes it leaves out."""
    columns = _columns(study, rows)
    notes = _trial_notes(study, rows)
    title = f"study {study_name}: {counted(len(rows), 'trial')}"
    table = _trials_table(title, rows, columns, notes if any(notes) else None)
    # A note column that leaves the others too narrow for their words folded a value mid-number
    # ("optimizer.lr=0.02" over "527" at 80 columns), and one squeezed beside them wrapped a failed trial's
    # reason over a dozen lines: the notes then go under the table, by trial number. So too where the table
    # without them does not fit either: kept, the note column squeezed the other columns further.
    below = False
    if any(notes) and (not fits(table) or _squeezed(table, notes)):
        table, below = _trials_table(title, rows, columns, None), True
        fits(table)  # its columns' widths, where it fits; else rich's own layout
    out_console().print(table)
    if below:
        from rich.text import Text

        for r, note in zip(rows, notes, strict=True):
            if note:
                out_console().print(Text(f"#{r['number']}: {note}"))
    odd = _odd_epochs_note(rows)
    if odd is not None:
        print_note(odd)


# The most lines a note may wrap over in its column: more reads as a column squeezed beside the others.
NOTE_LINES = 3


def _squeezed(table: Table, notes: list[str]) -> bool:
    """Whether a note wraps over more than NOTE_LINES lines in the width `fits` gave its column (the last)."""
    from rich.text import Text

    width = table.columns[-1].width
    if width is None:  # every column at its widest: each note on one line
        return False
    return any(len(Text(note).wrap(out_console(), width)) > NOTE_LINES for note in notes if note)


def _columns(study: optuna.Study, rows: list[dict[str, Any]]) -> _Columns:
    """The parameter columns of `rows` and the value column's header, and whether the parameters get a
    column each."""
    from hpotool.ranking import is_multi_objective, objective_names

    params = _param_names(study, rows)
    choices = _categorical(study)
    cells = [[_cell(p, r, choices) for p in params] for r in rows]
    value_header = ", ".join(objective_names(study)) if is_multi_objective(study) else "value"
    # A parameter named like a column of the table (a searched epochs) is spelt as trials.csv spells it.
    own = {"#", "state", value_header, "params", "epochs", "seconds", "note"}
    headers = [f"params_{p}" if p in own else p for p in params]
    # One column per parameter where they fit the terminal, else one wrapped "params" column.
    widest = [max([len(h), *(len(v[i]) for v in cells)]) + 3 for i, h in enumerate(headers)]
    split = sum(widest) + 60 <= out_console().width
    return _Columns(value_header, params, headers, cells, split)


def _param_names(study: optuna.Study, rows: list[dict[str, Any]]) -> list[str]:
    """The parameters of `rows` in the order the search space writes them (the study's stored one), then
    any others as found."""
    from hpotool.fingerprint import stored_config
    from hpotool.trial_table import in_space_order

    space = stored_config(study.user_attrs, "optimize_config").get("search_space")
    found = dict.fromkeys(p for r in rows for p in r["params"])
    return in_space_order(found, space if isinstance(space, dict) else {})


def _categorical(study: optuna.Study) -> set[str]:
    """The parameters some trial of the study chose from a list."""
    from optuna.distributions import CategoricalDistribution

    return {
        name
        for t in study.get_trials(deepcopy=False)
        for name, d in t.distributions.items()
        if isinstance(d, CategoricalDistribution)
    }


def _cell(name: str, row: dict[str, Any], choices: set[str]) -> str:
    """A parameter's cell: a choice as the YAML spells it (5.0, null), a sampled number as the other
    numbers are shown, "-" where the trial has none."""
    if name not in row["params"]:
        return "-"
    return format_param(row["params"][name], name in choices)


def _trial_notes(study: optuna.Study, rows: list[dict[str, Any]]) -> list[str]:
    """Each row's note, "" for most: only where it says more than the state and epochs columns do."""
    from optuna.trial import TrialState

    from hpotool.owners import died_here
    from hpotool.ranking import is_feasible

    # "Pareto front" where the front leaves out some complete trial that meets the constraints.
    feasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    dominated = len(study.directions) > 1 and len(study.best_trials) < len(feasible)
    # A RUNNING trial whose process of this machine is gone (kill -9, an OOM kill) runs no more.
    dead = {
        t.number: f"its process (pid {t.user_attrs['worker']['pid']}) is gone: the next optimize marks it "
        f"FAIL" + (" and runs its values again" if t.params or "fixed_params" in t.system_attrs else "")
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if died_here(t)
    }
    # An interrupted trial that had drawn no value (Ctrl-C between its `ask` and its draw) and was not queued
    # with any: its empty params cell read as values lost, and the note said only "interrupted".
    undrawn = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not t.params and "fixed_params" not in t.system_attrs
    }
    return [
        dead.get(r["number"])
        or (
            "interrupted before it drew its values: none to run again"
            if r["number"] in undrawn and r["fail_reason"] == "interrupted"
            else _reason(r["fail_reason"])
        )
        or ("" if r["feasible"] else "violates the constraints")
        or ("Pareto front" if dominated and r.get("pareto") else "")
        or (
            ""
            if _reason(r["prune_reason"]).startswith(("pruned after", "pruned at epoch"))
            else _reason(r["prune_reason"])
        )
        for r in rows
    ]


def _reason(value: Any) -> str:
    """A trial's fail_reason or prune_reason attr as text: hpotool stores a string, but a plain Optuna study
    may keep anything under the name (a number, a list, a mapping: as the YAML spells it)."""
    if value is None or isinstance(value, str):
        return value or ""
    return format_choice(value)


def _trials_table(
    title: str, rows: list[dict[str, Any]], columns: _Columns, notes: list[str] | None
) -> Table:
    """The table of `rows`, with a note column where `notes` are given."""
    names = ["#", "state", columns.value_header, *(columns.headers if columns.split else ["params"])]
    names += ["epochs", "seconds", *(["note"] if notes is not None else [])]
    table = plain_table(title)
    for name in names:  # several objectives' names one under the other, as their values
        table.add_column(name.replace(", ", "\n") if name == columns.value_header else name, overflow="fold")
    for i, r in enumerate(rows):
        table.add_row(
            *_row_cells(r, columns.cells[i], columns), *([notes[i] or ""] if notes is not None else [])
        )
    return table


def _row_cells(row: dict[str, Any], values: list[str], columns: _Columns) -> list[str]:
    """A trial's cells, but for its note."""
    from hpotool.trial_table import epochs_count

    shown_values = row["values"] if row["values"] is not None else [row["value"]]
    # Several objectives one under the other: a narrow column leaves the params room to stay whole.
    value = "\n".join("-" if v is None else format_value(v) for v in shown_values)
    # Else what the trial ran in one cell: a parameter its conditions switched off is left out.
    params = (
        values
        if columns.split
        else [" ".join(f"{p}={v}" for p, v in zip(columns.params, values, strict=True) if p in row["params"])]
    )
    # A running trial: the epochs it has reported so far, the seconds since it started (`browse._progress`)
    epochs = epochs_count(row["epochs_run"])
    epochs = epochs if epochs is not None else row["epochs_reported"]
    seconds = row["duration_s"] if row["duration_s"] is not None else row["elapsed_s"]
    return [
        str(row["number"]),
        row["state"],
        value,
        *params,
        str(epochs) if epochs is not None else "-",
        _seconds(seconds) if seconds is not None else "-",
    ]


def _seconds(seconds: float) -> str:
    """Three significant digits, whole seconds from 1000 s: a 40-minute trial read `2.4e+03`."""
    return f"{seconds:.0f}" if abs(seconds) >= 999.5 else f"{seconds:.3g}"


def _odd_epochs_note(rows: list[dict[str, Any]]) -> str | None:
    """The note on trials whose epochs_run attr is not a count hpotool recorded (a plain Optuna script's own
    "10", "ten"), or None."""
    from hpotool.trial_table import epochs_count

    odd = [r for r in rows if r["epochs_run"] is not None and epochs_count(r["epochs_run"]) is None]
    if not odd:
        return None
    numbers = ", ".join(str(r["number"]) for r in sorted(odd, key=lambda r: r["number"]))
    stored = ", ".join(repr(r["epochs_run"]) for r in sorted(odd, key=lambda r: r["number"]))
    return (
        f"trial{'s' if len(odd) > 1 else ''} {numbers} store{'' if len(odd) > 1 else 's'} user attr "
        f"'epochs_run' as {stored}, not as the count of epochs hpotool records: shown as -; hpotool "
        f"trials --json lists each as stored"
    )
