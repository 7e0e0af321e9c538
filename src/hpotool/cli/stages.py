"""`hpotool audit`, `refine` and `prune-audit`: diagnose a study and write the next stage's configs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hpotool.cli.options import JsonOpt, ReadStorageOpt, StudyNameReq, out_option
from hpotool.cli.outputs import check_out_writable, refuse_stdout
from hpotool.cli.root import app, say_stopped, stoppable, user_errors
from hpotool.cli.terminal import escape, fits, out_console, plain_table, print_json
from hpotool.errors import HpoError
from hpotool.formatting import counted, format_param, format_value

if TYPE_CHECKING:
    import optuna
    from rich.table import Table

    from hpotool.audit import AuditReport
    from hpotool.param_findings import ParamFinding


def _audit_table(
    report: AuditReport, title: str, stack_best: bool = False, fold_names: bool = False
) -> Table:
    """The `audit` table: one row per parameter, most important first, its best value with the position
    of that value in the range. Its findings are sentences, printed under it: a column folded them into
    a word or two a line at 80 columns. No value wraps: `stack_best` puts a best value above its position,
    `fold_names` folds names (mid-word); a range or a best value wrapped at its spaces split it mid-value
    (`[4, 64, step` over `4]`), where `_audit_records` keeps each whole."""
    table = plain_table(title)
    table.add_column("parameter", overflow="fold", no_wrap=not fold_names)
    table.add_column("importance", no_wrap=True)
    table.add_column("best (position)", no_wrap=True)
    table.add_column("range", no_wrap=True)
    between = "\n" if stack_best else " "  # a line of its own, not a wrap: the value stays whole
    for p in report.params:
        best = _best_text(p)
        table.add_row(
            p.name,
            "-" if p.importance is None else f"{p.importance:.2f}",
            best if p.position is None else f"{best}{between}({p.position:.0%})",
            p.bounds,
        )
    return table


def _best_text(p: ParamFinding) -> str:
    return format_param(p.best, p.kind == "categorical") if p.set_in_best else "not set"


def _audit_records(report: AuditReport, title: str) -> Table:
    """The `audit` table for a terminal too narrow for a parameter a row with every value whole, as
    `hpotool studies` lays out its own: a section of lines per parameter, each value beside its key. A value
    wraps at its spaces only where it is wider than the values' column."""
    table = plain_table(title, show_header=False)
    table.add_column(no_wrap=True)  # the keys, whole
    table.add_column(overflow="fold")
    for p in report.params:
        best = _best_text(p)
        cells = {
            "parameter": p.name,
            "importance": "-" if p.importance is None else f"{p.importance:.2f}",
            "best (position)": best if p.position is None else f"{best} ({p.position:.0%})",
            "range": p.bounds,
        }
        for i, (key, value) in enumerate(cells.items()):
            table.add_row(key, value, end_section=i == len(cells) - 1)
    return table


@app.command(short_help="Diagnose a study: importances, range edges, pruning.")
def audit(study_name: StudyNameReq, storage: ReadStorageOpt = None, as_json: JsonOpt = False) -> None:
    """Diagnose a finished study: importances, best values on range edges, pruning, whether it still improves."""
    with stoppable(say_stopped("audit", writes=False)), user_errors():
        from hpotool.audit import audit_study
        from hpotool.importance import import_without_sklearn
        from hpotool.study_lookup import find_study

        import_without_sklearn()
        report = audit_study(find_study(study_name, storage))
        if as_json:
            print_json(report.as_dict())
            return
        title = f"audit of study {study_name} ({report.metric}, {report.direction})"
        # The first layout that fits the terminal, every range and best value whole. Parameter names are
        # each row's key: they fold (mid-word) only when nothing else makes room; then a section per
        # parameter.
        tables = [
            _audit_table(report, title, *layout) for layout in ((False, False), (True, False), (True, True))
        ]
        out_console().print(next((t for t in tables if fits(t)), None) or _audit_records(report, title))
        out_console().print(f"importance: {escape(report.evaluator)}, over {escape(report.basis)}")
        for finding in report.findings:
            _print_bullet(finding)


def _print_bullet(text: str) -> None:
    """`- text`, wrapped at spaces with a hanging indent; a token ("[0.0001, 0.03, log]"'s parts) never
    folds."""
    import textwrap

    lines = textwrap.fill(
        text,
        width=out_console().width,
        initial_indent="- ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    out_console().print(escape(lines), soft_wrap=True)


@app.command(short_help="Write the next stage's configs from a study.")
def refine(
    study_name: StudyNameReq,
    out: Annotated[
        Path,
        out_option(
            "a file, e.g. --out stage2.yaml",
            "<path>",
            "Where to write the next stage's OptimizeConfig YAML; its RunConfig goes beside it "
            "(<stem>.run.yaml; .run.yml for a .yml).",
            file_name="stage2.yaml",
        ),
    ],
    storage: ReadStorageOpt = None,
    keep_top: Annotated[
        float,
        typer.Option(
            "--keep-top",
            help="Share of the ranked trials (as the audit ranks them) the narrowed ranges cover.",
        ),
    ] = 0.25,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Overwrite --out and its .run.yaml when they exist (refused otherwise)."
        ),
    ] = False,
) -> None:
    """Write the next stage's configs: widen edge ranges, narrow the rest, fix what barely matters."""
    with stoppable(say_stopped("refine")), user_errors():
        from shlex import quote

        from hpotool.importance import import_without_sklearn
        from hpotool.interrupts import raise_dropped
        from hpotool.refine import refine_study
        from hpotool.stage_files import check_stage_paths, write_refinement
        from hpotool.study_lookup import find_study

        refuse_stdout(
            out, "two files (the stage's config and its .run.yaml)", "a file, e.g. --out stage2.yaml"
        )
        check_stage_paths(out, force)  # before the study is read: a hand-edited stage is never lost
        check_out_writable(out, out, out.parent, "refine writes the stage's configs", "a file")
        import_without_sklearn()
        from hpotool.import_hints import imports_for_study

        study = find_study(study_name, storage)
        with imports_for_study(study):  # a module of the study's project elsewhere: the folder to run from
            ref = refine_study(study, keep_top, storage_url=storage)
        raise_dropped()  # a Ctrl-C something caught (torch's import does) ends it before it writes
        opt_path, run_path = write_refinement(ref, out, study_name)
        for change in ref.changes:
            _print_bullet(change)
        # The paths whole, as the command under them: at 80 columns (a log file, a narrow terminal) rich
        # broke a long one mid-name over two lines, and it pasted as two.
        out_console().print(
            f"wrote {escape(str(opt_path))} and {escape(str(run_path))}; next:", soft_wrap=True
        )
        out_console().print(
            f"  hpotool optimize --run-config {escape(quote(str(run_path)))} "
            f"--optimize-config {escape(quote(str(opt_path)))}",
            soft_wrap=True,
        )


PRUNE_AUDIT_ROWS = 12


def _evenly(items: list[Any], n: int) -> list[Any]:
    """At most `n` of `items`, evenly spaced, the first and the last included."""
    if len(items) <= n:
        return items
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


@app.command("prune-audit", short_help="Check the pruner's decisions on a study.")
def prune_audit(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    against: Annotated[
        str | None, typer.Option("--against", help="A study of the same space run without pruning.")
    ] = None,
    against_storage: Annotated[
        str | None,
        typer.Option("--against-storage", help="Its storage (default: sqlite:///studies/<name>.db)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k", min=1, help="With --against, the bar: the k-th best complete trial (default 5)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the pruner: PFL's prediction error by epoch, and pruned trials a no-pruning study says would have won."""
    with stoppable(say_stopped("prune-audit", writes=False)), user_errors():
        from hpotool.prune_audit import audit_pruning
        from hpotool.study_lookup import find_study

        _check_against_options(against, against_storage, top_k)
        study = find_study(study_name, storage)
        baseline = (
            find_study(against, against_storage, storage_option="--against-storage", name_option="--against")
            if against is not None  # --against "" is refused, not read as no --against
            else None
        )
        data = audit_pruning(study, baseline, 5 if top_k is None else top_k)
        if as_json:
            print_json(data)
            return
        _print_predictions(study, study_name, data["prediction_errors"])
        if data["missed_winners"] is not None:
            _print_missed_winners(data["missed_winners"], study_name, against)


def _check_against_options(against: str | None, against_storage: str | None, top_k: int | None) -> None:
    """--against-storage and --top-k go with --against: without it they were ignored, the audit counting no
    missed winners, without a word."""
    if against is not None:
        return
    if against_storage:
        raise HpoError(
            "--against-storage: is where --against's study is stored, and no --against is given; give --against "
            "STUDY with it, or drop --against-storage"
        )
    if top_k is not None:
        raise HpoError(
            f"--top-k {top_k}: sets the bar of the pruned trials that would have made the top-k, which only "
            f"--against counts, and no --against is given; give --against STUDY with it, or drop --top-k"
        )


def _print_predictions(study: optuna.Study, study_name: str, errors: list[dict[str, Any]]) -> None:
    """PFL's prediction errors by epoch, at most PRUNE_AUDIT_ROWS of them; else why there are none."""
    from optuna.trial import TrialState

    table = plain_table(f"PFL predictions on the complete trials of {study_name}")
    for column in ("predicted after epochs", "trials", "median |error|", "max |error|"):
        table.add_column(column, justify="right")
    shown = _evenly(errors, PRUNE_AUDIT_ROWS)
    for e in shown:
        table.add_row(
            str(e["epochs_seen"]),
            str(e["trials"]),
            format_value(e["median_abs_error"]),
            format_value(e["max_abs_error"]),
        )
    if errors:
        out_console().print(table)
    elif not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        # It read "no complete trial of s reported 4 or more epochs", as if some had reported fewer; it ended
        # "then audit again", which reads as `hpotool audit`, and told a plain Optuna study to run hpotool optimize.
        made_by_hpotool = isinstance(study.user_attrs.get("run_config"), dict)
        run = "run hpotool optimize on it" if made_by_hpotool else "run the Optuna code that made it"
        out_console().print(
            f"no PFL predictions to measure: {escape(study_name)} has no complete trial yet, and a prediction is "
            f"measured against the final value a complete trial reached (a pruned trial has none); {run} "
            f"until some trials complete, then run hpotool prune-audit again"
        )
    else:  # an empty table said nothing of why
        out_console().print(
            f"no PFL predictions to measure: no complete trial of {escape(study_name)} reported 4 or more "
            f"epochs (the fit needs 3 before the last)"
        )
    if len(shown) < len(errors):
        out_console().print(
            f"({len(shown)} of {len(errors)} epochs shown, evenly spaced; --json has every one)"
        )


def _print_missed_winners(missed: dict[str, Any], study_name: str, against: str | None) -> None:
    """How many pruned trials would have made the top-k, going by their twins in the --against study."""
    rank = missed["bar_rank"]
    out_console().print(
        f"{missed['would_have_made_top_k']} of {counted(missed['pruned'], 'pruned trial')} would have beaten "
        f"{study_name}'s top-{rank} bar ({format_value(missed['bar'])}), going by what their twins "
        f"reached in {against} ({missed['matched_exactly']} matched by identical params, "
        f"{missed['matched_nearest']} by the nearest)"
    )
    if rank < missed["top_k"]:
        out_console().print(
            f"{study_name} has only {counted(rank, 'complete trial')} that {'meets' if rank == 1 else 'meet'} its "
            "constraints, so its "
            f"top-{missed['top_k']} has no bar (any finished trial would make it): the bar above is "
            f"its top-{rank}'s, its worst complete trial"
        )
