"""`hpotool optimize`: run a study, resume it, or join it by name; Ctrl-C and SIGTERM said and exited."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from hpotool.cli.optimize_options import (
    AllowChangedConfigOpt,
    DeviceOverrideOpt,
    DryRunOpt,
    EnqueueFromOpt,
    EnqueueFromStorageOpt,
    MaxFailuresOpt,
    NTrialsOpt,
    OptimizeConfigOrStoredOpt,
    QuietOpt,
    ReportOpt,
    RunConfigOrStoredOpt,
    SeedOpt,
    SummaryJsonOpt,
    TimeoutOpt,
    TopOpt,
    WorkersOpt,
)
from hpotool.cli.optimize_outcome import Outcome, say_interrupted
from hpotool.cli.options import StorageOpt, StudyNameOpt
from hpotool.cli.root import app, stoppable, user_errors
from hpotool.cli.study_view import print_plan, print_summary, print_summary_notes
from hpotool.cli.terminal import err_console, print_note, say, shown_url

if TYPE_CHECKING:
    from hpotool.cli.optimize_plan import OptimizeArgs
    from hpotool.plan import StudyPlan
    from hpotool.summary import StudySummary


@app.command(short_help="Run a study, or resume it.")
def optimize(
    run_config: RunConfigOrStoredOpt = None,
    optimize_config: OptimizeConfigOrStoredOpt = None,
    study_name: StudyNameOpt = None,
    storage: StorageOpt = None,
    n_trials: NTrialsOpt = None,
    timeout: TimeoutOpt = None,
    device: DeviceOverrideOpt = None,
    seed: SeedOpt = None,
    max_failures: MaxFailuresOpt = 5,
    quiet: QuietOpt = False,
    as_json: SummaryJsonOpt = False,
    report: ReportOpt = False,
    workers: WorkersOpt = 1,
    enqueue_from: EnqueueFromOpt = None,
    enqueue_from_storage: EnqueueFromStorageOpt = None,
    top: TopOpt = None,
    allow_changed_config: AllowChangedConfigOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Run a study, or resume it: runs only the trials still missing from n_trials.

    Without --run-config and --optimize-config, --study-name (and --storage) joins a study with the configs
    stored on it, as another machine does. Ctrl-C or SIGTERM ends the running trial as FAIL, prints the
    summary and exits 130 or 143.
    """
    from hpotool.interrupts import exit_code

    # Ctrl-C and SIGTERM raise from the first line on, not only while trials run: a SIGTERM while torch and
    # optuna were imported or the study was created killed the process (-15), with nothing said.
    outcome = Outcome()

    with stoppable(lambda: say_interrupted(outcome), caught_inside=True):
        from hpotool.cli.optimize_plan import OptimizeArgs

        args = OptimizeArgs(
            run_config,
            optimize_config,
            study_name,
            storage,
            n_trials,
            timeout,
            device,
            seed,
            max_failures,
            quiet,
            as_json,
            report,
            workers,
            enqueue_from,
            enqueue_from_storage,
            top,
            allow_changed_config,
            dry_run,
        )
        with _reading_only(dry_run):
            _optimize(outcome, args)
    summary = outcome.summary
    if summary is None:  # --dry-run
        return
    if summary.interrupted is not None:
        raise typer.Exit(code=exit_code(summary.interrupted))
    if summary.failed:  # the trials failed, not the command: 1, as a test runner with failing tests
        raise typer.Exit(code=1)


@contextmanager
def _reading_only(dry_run: bool) -> Iterator[None]:
    """A dry run reads storages (a study joined by name, its finished trials) and writes none of them: not a
    byte, nor a file beside them (`storage.reading_only`)."""
    if not dry_run:
        yield
        return
    from hpotool.storage import reading_only

    with reading_only():
        yield


def _optimize(outcome: Outcome, args: OptimizeArgs) -> None:
    """The body of `optimize`; puts its summary on `outcome` (none for --dry-run). With --json, what the
    user's code prints until then goes to stderr: stdout holds the JSON alone."""
    with user_errors():
        from hpotool.cli.optimize_plan import checked_plan

        with _json_apart(args.as_json):
            plan, redraws = checked_plan(args)
            from hpotool.interrupts import raise_dropped

            # A Ctrl-C a finalizer swallowed as the configs were checked (the model built, the data read):
            # forgotten once the run's own signal handling began, it let the whole study run.
            raise_dropped()
            if args.dry_run:
                _dry_run_notes(plan)
            else:
                outcome.summary = _run(outcome, plan, args, redraws)
        if args.dry_run:
            _print_dry_run(plan, args)
            return
        summary = outcome.summary
        assert summary is not None
        _print_outcome(summary, plan, args.as_json)
        from hpotool.interrupts import ended

        ended()  # a Ctrl-C held while an interrupted run summed up stops the report (its line says so)
        if args.report:
            # here, not at the top: imported first, outputs would register report before optimize
            from hpotool.cli.outputs import write_study_report

            outcome.writing_report = True
            write_study_report(summary.study_name, summary.storage, None, "html")


def _json_apart(as_json: bool) -> Any:
    """For --json, a block whose stdout goes to stderr (`pipes.stdout_to_stderr`); else one that changes
    nothing."""
    from contextlib import nullcontext

    from hpotool.pipes import stdout_to_stderr

    return stdout_to_stderr() if as_json else nullcontext()


def _dry_run_notes(plan: StudyPlan) -> None:
    """The notes of a dry run, printed before its plan."""
    for note in plan.notes:
        print_note(note)


def _print_dry_run(plan: StudyPlan, args: OptimizeArgs) -> None:
    """The plan of a dry run, with the finished trials the study holds already."""
    from hpotool.study import finished_so_far

    # Joining by name, the storage was read already; a config's server is not asked.
    done, complete = finished_so_far(plan, ask_server=args.run_config is None)
    if done == 0 and args.run_config is not None:
        from hpotool.study import new_study_note

        note = new_study_note(plan)
        if note is not None:
            print_note(note)
    print_plan(plan, args.as_json, done, complete=complete)


def _on_open(outcome: Outcome, plan: StudyPlan, redraws: str | None) -> Callable[[str | None], None]:
    """What the run calls once the study is open: the plan's notes, and where a new study is."""

    def opened(new_study: str | None) -> None:
        outcome.opened = True
        # Once the study is open: a study that will not open (a server that refuses, another direction)
        # is the one line printed, not read after notes about a run that will not happen.
        for note in plan.notes:  # on stderr before the progress, so it stays in view
            print_note(note)
        if new_study is not None:
            say(new_study)
            if redraws is not None:  # a resumed study's seed mixes in its trials: it draws new values
                print_note(redraws)

    return opened


def _run(outcome: Outcome, plan: StudyPlan, args: OptimizeArgs, redraws: str | None) -> StudySummary:
    """Run the plan's trials, here or in --workers processes, with progress on stderr unless --quiet (which
    says only that the study is resumed); --json too, whose JSON alone goes to stdout."""
    from hpotool.study_run import run_study

    opened = _on_open(outcome, plan, redraws)
    if args.workers > 1:
        from hpotool.workers import run_workers

        def run(observer: Any = None) -> StudySummary:
            return run_workers(plan, args.workers, observer, max_failures=args.max_failures, on_open=opened)
    else:

        def run(observer: Any = None) -> StudySummary:
            return run_study(plan, observer, max_failures=args.max_failures, on_open=opened)

    from hpotool.lock_watch import saying_lock_waits

    outcome.opening = shown_url(plan.storage_url)
    with saying_lock_waits(plan.storage_url, print_note):  # not a silent minute behind another's lock
        # --json showed no progress either: a CI job's log (`--json > summary.json`) said nothing for the
        # whole study; `--json -q` is as quiet as that was
        if args.quiet:
            from hpotool.progress import (
                QuietObserver,
            )  # the resuming (or joining) line, kept as the new study's is

            return run(QuietObserver(err_console()))
        from hpotool.progress import RichObserver

        with RichObserver(err_console(), plan.opt.objectives[0]) as observer:
            return run(observer)


def _print_outcome(summary: StudySummary, plan: StudyPlan, as_json: bool) -> None:
    """The run's summary, as a table or as JSON; a second Ctrl-C waits until it is printed."""
    from hpotool.interrupts import deferred

    with deferred():  # a second Ctrl-C waits for the summary it would cut short (or leave unprinted)
        from hpotool.pipes import stderr_closed

        if summary.interrupted is not None and summary.stopped and stderr_closed():
            from hpotool.stop_note import keep  # `|& head`: the note below goes to /dev/null

            keep(summary.study_name, summary.storage, summary.stopped)
        if as_json:
            from hpotool.strict_json import json_safe

            shown = {**summary.as_dict(), "storage": shown_url(summary.storage)}
            # strict JSON, as every JSON hpotool writes: a NaN metric is "NaN", not a bare NaN
            sys.stdout.write(json.dumps(json_safe(shown), indent=2, allow_nan=False, default=str) + "\n")
            # the notes a table would have under it, on stderr: a CI log (`--json > out.json 2> run.log`)
            # said nothing of a run interrupted, stopped by its failures or with every trial pruned
            print_summary_notes(summary)
        else:
            from hpotool.search_space import CategoricalParam

            space = plan.opt.search_space
            print_summary(summary, {k for k, p in space.items() if isinstance(p, CategoricalParam)})
