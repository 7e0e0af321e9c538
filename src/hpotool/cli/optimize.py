"""`hpotool optimize`: run a study, resume it, or join it by name; Ctrl-C and SIGTERM said and exited."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
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
    check_config_options,
)
from hpotool.cli.optimize_outcome import Outcome, say_interrupted
from hpotool.cli.options import StorageOpt, StudyNameOpt
from hpotool.cli.root import app, interruptible, user_errors
from hpotool.cli.study_view import print_plan, print_summary
from hpotool.cli.terminal import err_console, print_note, say, shown_url
from hpotool.errors import HpoError

if TYPE_CHECKING:
    from hpotool.summary import StudySummary


def _short_of_top(plan: Any, source: Any, top: int) -> str | None:
    """The note saying why --enqueue-from queued fewer than --top points, or None."""
    from optuna.trial import TrialState

    from hpotool.ranking import ranked_trials
    from hpotool.warm_start import short_of_top_note

    queued = len(plan.opt.enqueue) - (plan.config_enqueue or 0)
    complete = len(source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return short_of_top_note(source.study_name, top, queued, len(ranked_trials(source)), complete)


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
    top: TopOpt = 5,
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

    def run() -> None:
        with _reading_only(dry_run):
            _optimize(
                outcome,
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

    interruptible(run, lambda: say_interrupted(outcome))
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


def _optimize(
    outcome: Outcome,
    run_config: Path | None,
    optimize_config: Path | None,
    study_name: str | None,
    storage: str | None,
    n_trials: int | None,
    timeout: float | None,
    device: str | None,
    seed: int | None,
    max_failures: int,
    quiet: bool,
    as_json: bool,
    report: bool,
    workers: int,
    enqueue_from: str | None,
    enqueue_from_storage: str | None,
    top: int,
    allow_changed_config: bool,
    dry_run: bool,
) -> None:
    """The body of `optimize`; puts its summary on `outcome` (none for --dry-run)."""
    with user_errors():
        check_config_options(run_config, optimize_config, study_name)
        if workers > 1 and not dry_run:
            from hpotool.forkserver import start_worker_server

            # imports torch there while this process checks the configs (`workers` starts it again where the
            # checks find the run needs other preloads)
            start_worker_server(_may_train_with_torch(run_config))
        from hpotool.plan import Overrides, prepare_study
        from hpotool.study_run import run_study

        overrides = Overrides(study_name, storage, n_trials, timeout, device, seed, allow_changed_config)
        if run_config is None or optimize_config is None:
            from hpotool.plan import prepare_stored_study

            assert study_name is not None  # check_config_options
            plan = prepare_stored_study(study_name, storage, overrides, on_wait=print_note)
        else:
            plan = prepare_study(run_config, optimize_config, overrides)
        redraws: str | None = None  # --enqueue-from a study this one would sample as
        if enqueue_from is not None:
            from hpotool.browse import find_study
            from hpotool.enqueue_from import with_warm_start

            try:
                source = find_study(
                    enqueue_from,
                    enqueue_from_storage,
                    storage_option="--enqueue-from-storage",
                    name_option="--enqueue-from",
                )
            except HpoError as exc:
                if str(exc).startswith(("--enqueue-from-storage: ", "--enqueue-from: ")):  # that option named
                    raise
                raise HpoError(f"--enqueue-from: {exc}") from None
            plan = with_warm_start(plan, source, top)
            short = _short_of_top(plan, source, top)
            if short:
                plan = replace(plan, notes=(*plan.notes, short))
            from hpotool.fingerprint import stored_config
            from hpotool.warm_start import same_draws_note

            redraws = same_draws_note(
                plan.opt.model_dump(mode="json"),
                source.study_name,
                stored_config(source.user_attrs, "optimize_config"),
            )
        from hpotool.storage import check_storage
        from hpotool.storage_url import storage_origin

        # A storage the run refuses (a folder, no URL, a file of another kind) is the one line printed: the
        # notes came first, then the error. Checked without connecting to a server or writing anything.
        with storage_origin(plan.storage_url, plan.storage_origin):
            check_storage(plan.storage_url)
        if dry_run:
            for note in plan.notes:
                print_note(note)
            from hpotool.study import finished_so_far

            # Joining by name, the storage was read already; a config's server is not asked.
            done, complete = finished_so_far(plan, ask_server=run_config is None)
            print_plan(plan, as_json, done, complete=complete)
            return

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

        if workers > 1:
            from hpotool.workers import run_workers

            def run(observer: Any = None) -> StudySummary:
                return run_workers(plan, workers, observer, max_failures=max_failures, on_open=opened)
        else:

            def run(observer: Any = None) -> StudySummary:
                return run_study(plan, observer, max_failures=max_failures, on_open=opened)

        from hpotool.lock_watch import saying_lock_waits

        outcome.opening = shown_url(plan.storage_url)
        with saying_lock_waits(plan.storage_url, print_note):  # not a silent minute behind another's lock
            if quiet or as_json:
                summary = run()
            else:
                from hpotool.progress import RichObserver

                with RichObserver(err_console(), plan.opt.objectives[0]) as observer:
                    summary = run(observer)
        outcome.summary = summary
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
            else:
                from hpotool.search_space import CategoricalParam

                space = plan.opt.search_space
                print_summary(summary, {k for k, p in space.items() if isinstance(p, CategoricalParam)})
        if report:
            # here, not at the top: imported first, outputs would register report before optimize
            from hpotool.cli.outputs import write_study_report

            outcome.writing_report = True
            write_study_report(summary.study_name, summary.storage, None, "html")


def _may_train_with_torch(run_config: Path | None) -> bool:
    """Whether the worker server, started before the configs are checked, imports torch: not where the run
    config file names a training function (`trainer:`) and this process has no torch yet; whether that
    function needs torch is known once the checks have imported its module. The file is read as YAML
    alone: the checks say what is wrong with it."""
    if run_config is None or "torch" in sys.modules:
        return True
    import yaml

    try:
        raw = yaml.safe_load(run_config.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True
    return not (isinstance(raw, dict) and raw.get("trainer") is not None)
