"""A live terminal display of a study: rich progress bars fed by `StudyObserver` calls."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hpotool.durations import trial_seconds
from hpotool.epoch import EpochResult
from hpotool.formatting import counted, format_value
from hpotool.owners import ran_elsewhere
from hpotool.trial_table import shown_params

_STATE_STYLE = {TrialState.COMPLETE: "green", TrialState.PRUNED: "yellow", TrialState.FAIL: "red"}


def format_params(study: optuna.Study, trial: FrozenTrial) -> str:
    """The trial's parameters, a categorical choice as the YAML spells it (null, true, 5.0, [128, 64],
    `"[1,2]"` for that text) as `hpotool trials` shows it (`trial_table.shown_params`), a number to four
    digits."""
    return " ".join(f"{k}={v}" for k, v in shown_params(study.user_attrs, trial).items())


def duration(seconds: float) -> str:
    """Seconds as a short label: two decimals under a second (a pruned trial's 0.05s, not 0.0s)."""
    return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"


def say(console: Console, text: str) -> None:
    """`text` (rich markup) as one line of the display. On a terminal rich wraps it at the terminal's width,
    above the live bars; elsewhere (`2> run.log`, a pipe, a CI log) it is one line whatever its length, as a
    logger writes it: rich wrapped it at 80 columns, its width where stderr is no terminal (or at COLUMNS),
    and a trial with many parameters took several lines of the log, to be grepped for as one. So on a dumb
    terminal (TERM=dumb: Emacs's shell and compile buffers), which shows no bars, and which rich takes for
    80 columns whatever its width: it wrapped there at 80 too."""
    console.print(text, soft_wrap=not console.is_interactive)


def bars(console: Console) -> Progress:
    """Rich progress bars that show a description, the bar, n/total, the time taken and an `info` field,
    and vanish when stopped.

    What the trials print to stdout (a user's model, training function) goes above the bars only where
    stdout is a terminal too, where it would break them; `hpotool optimize ... > out.txt` keeps it in its
    file. Rich's default took it to the bars' terminal (stderr) whatever stdout was: in out.txt, only what
    was printed before trial 0 and after the last trial."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
        redirect_stdout=_is_terminal(sys.stdout),
    )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # None (pythonw), closed, a stream without a terminal
        return False


def start(progress: Progress) -> None:
    """Show the bars. A start cut off before rich's Live hooked itself into its console (the interrupt of a
    closed pipe as it hid the cursor, with FORCE_COLOR on a pipe; a Ctrl-C at that instant) left it marked
    started: `stop` then failed with IndexError (pop from empty list), and the command exited 1 where it
    owed 141 or 130. It is hooked in then, so that `stop` takes it away whole (the cursor shown again)."""
    live = progress.live
    try:
        progress.start()
    except BaseException:
        if live.is_started and live not in live.console._render_hooks:
            live.console.push_render_hook(live)
        raise


def stop(progress: Progress) -> None:
    """Take the bars away. `Progress.stop()` also prints an empty line where stderr is no terminal (a log
    file, a pipe), where the transient bars showed nothing: a blank line after the last trial's or run's
    line, and before an error's."""
    progress.live.stop()


def _finished_order(trial: FrozenTrial) -> tuple[Any, int]:
    """When `trial` finished, a tie in finishing time (MySQL keeps whole seconds) broken by number."""
    return (trial.datetime_complete, trial.number)


def _front_as_of(study: optuna.Study, trial: FrozenTrial) -> list[FrozenTrial]:
    """The study's Pareto front (`study.best_trials`, constraints respected as Optuna does) of the trials that
    had finished when `trial` did: with --workers a trial's line is printed once the main process sees it,
    when later trials may have finished too (trial 0's line said "Pareto front: 2 trials", counting trial 1).
    A single-objective study's "new best" is found so too, in one pass (`_new_best`)."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

    if trial.datetime_complete is None:
        return []
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    by_then = [
        t for t in trials if t.datetime_complete is not None and _finished_order(t) <= _finished_order(trial)
    ]
    return _get_pareto_front_trials_by_trials(
        by_then,
        study.directions,
        consider_constraint=any(t.constraints for t in trials),  # as best_trials
    )


def _new_best(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether `trial` was the single-objective study's best as it finished: the first to reach the best
    value of the trials finished by then (a later tie is no news), of those that meet the constraints, as
    `study.best_trial` counts them (a trial without constraints meets them): with --workers, trial 0's line
    had no "new best" where trial 1 beat it before the line was printed. One pass over the complete trials:
    their Pareto front (`_front_as_of`) took 40 ms a finished trial at 5,000 trials."""
    if trial.datetime_complete is None or trial.value is None or not _feasible(trial):
        return False
    minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
    value, when = trial.value, _finished_order(trial)
    return not any(
        t.number != trial.number
        and t.datetime_complete is not None
        and t.value is not None
        and (t.value <= value if minimize else t.value >= value)
        and _finished_order(t) <= when
        and _feasible(t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    )


def _feasible(trial: FrozenTrial) -> bool:
    """Whether `trial` meets its constraints, as Optuna's best trial counts them: all of them 0 or less."""
    return all(c <= 0.0 for c in trial.constraints.values())


class RunProgress:
    """An epoch bar for each training run, and one line per finished run (a `final.FinalObserver`)."""

    def __init__(self, console: Console, metric: str | None = None) -> None:
        """`metric`: the study's (its first, with several) that a finished run's line shows beside the
        `val_*` metrics: a training function's own metric (`score`) was left out, and its line showed none."""
        self.console = console
        self.metric = metric
        self.progress = bars(console)
        self.task = self.progress.add_task("", total=1, info="", visible=False)

    def __enter__(self) -> RunProgress:
        try:
            start(self.progress)
        except BaseException:
            stop(self.progress)  # `with` calls no __exit__ for an __enter__ that raised
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.progress)

    def run_started(self, label: str, cfg: Any) -> None:
        self.progress.reset(self.task, total=cfg.epochs, description=label, info="", visible=True)

    def epoch_ended(self, result: EpochResult) -> None:
        info = " ".join(f"{k}={format_value(v)}" for k, v in result.metrics.items())
        self.progress.update(self.task, completed=result.epoch + 1, info=info)

    def run_finished(self, label: str, run: Any) -> None:
        shown = " ".join(
            f"{k}={format_value(v)}"
            for k, v in run.metrics.items()
            if k.startswith("val_") or k == self.metric
        )
        self.console.print(
            f"{escape(label)}: {escape(shown)}  [dim]{duration(run.seconds)}  {escape(str(run.folder))}[/]",
            soft_wrap=True,
        )


def resume_line(study: optuna.Study, target: int | None, already_done: int, joined: bool) -> str | None:
    """`resuming study NAME: 3/20 trials done` (rich markup) for a study this command did not start, as
    `StudyObserver.study_started` is told of it, or `joining study NAME: 3/20 trials done, 2 running` where
    other processes run its trials now (another machine, another command: this one has started none yet,
    and the trials of this machine's dead processes are failed by then), `joining study NAME: 0/20 trials
    done, none running yet` where another process is at work on it with no trial running; None for one it
    created, or one holding its target."""
    # A study holding its target already: the summary's note says so, with how to run more (said here too,
    # it printed the same fact twice, in two wordings). One whose trials all failed (Ctrl-C in its first
    # trial) is resumed too, though none is done: said nothing, the run read as a study started over. One
    # joined with no trial finished yet is said too: a second machine started with the first said nothing
    # of the study it joined. One another process runs now is joined, not resumed: nothing of it had stopped.
    #
    # One with none running is joined too where another process is seen at work on it (`at_work_elsewhere`):
    # its creator loading its workers' data before their first trial, or between two trials. It said
    # `resuming study NAME: 0/8 trials done` as the creator's workers loaded their data; a study an earlier
    # run left (its creator gone, no trial running) is resumed.
    trials = study.get_trials(deepcopy=False)
    failed = any(t.state == TrialState.FAIL for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if (already_done or failed or joined) and (target is None or already_done < target):
        of = "" if target is None else f"/{target}"
        done = f"[bold]{escape(study.study_name)}[/]: {already_done}{of} trials done"
        if joined and running:
            return f"joining study {done}, {running} running"
        if joined and _at_work_elsewhere(study, trials):
            return f"joining study {done}, none running {'now' if already_done or failed else 'yet'}"
        return f"resuming study {done}"
    return None


def _at_work_elsewhere(study: optuna.Study, trials: list[FrozenTrial]) -> bool:
    from hpotool.owners import at_work_elsewhere
    from hpotool.storage_settings import heartbeat_settings

    return at_work_elsewhere(study, trials, heartbeat_settings()[1])


class QuietObserver:
    """What --quiet shows as the study runs: the `resuming study` (or `joining study`) line alone.
    It keeps the `new study` line, and dropped this one with the bars: a run adding trials to an existing
    study read as one that started it."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None:
        line = resume_line(study, target, already_done, joined)
        if line is not None:
            say(self.console, line)

    def trial_started(self, number: int, params: Mapping[str, Any], epochs: int) -> None:
        """Nothing per trial: the summary lists them."""

    def epoch_ended(self, number: int, result: EpochResult) -> None:
        """Nothing per epoch."""

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Nothing per trial: the summary lists them."""


class RichObserver:
    """Two bars (trials of the study, epochs of the current trial) and one line per finished trial."""

    def __init__(self, console: Console, metric: str) -> None:
        self.console = console
        self.metric = metric
        self.progress = bars(console)
        # Added when the study starts, when the trials' total is known (None: the timeout ends the study).
        self.trials_task = self.epochs_task = TaskID(-1)

    def __enter__(self) -> RichObserver:
        return self  # the bars appear once the study is open, so an error before that prints alone

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            stop(self.progress)

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None:
        """`target` None: no trial count, the timeout ends the study (the bar counts up, n/?). `joined`: the
        study existed before this command opened it (another machine created it, or a resume)."""
        start(self.progress)
        self.trials_task = self.progress.add_task("trials", total=target, completed=already_done, info="")
        self.epochs_task = self.progress.add_task("epochs", total=1, info="", visible=False)
        line = resume_line(study, target, already_done, joined)
        if line is not None:
            say(self.console, line)

    def trial_started(self, number: int, params: Mapping[str, Any], epochs: int) -> None:
        self.progress.reset(self.epochs_task, total=epochs, visible=True, info="")
        self.progress.update(self.epochs_task, description=f"trial {number}")

    def epoch_ended(self, number: int, result: EpochResult) -> None:
        value = result.metrics.get(self.metric)
        info = f"{self.metric}={format_value(value)}" if value is not None else ""
        self.progress.update(self.epochs_task, completed=result.epoch + 1, info=info)

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.progress.advance(self.trials_task)
        # As `hpotool trials` and the exports show it: this run's trials and other workers' alike (Optuna's
        # duration on MySQL is whole seconds: another worker's trials showed 0.00s).
        seconds = trial_seconds(trial)  # None: it ended unobserved (`durations.ended_unobserved`)
        style = _STATE_STYLE.get(trial.state, "white")
        if trial.state == TrialState.COMPLETE:
            detail = ", ".join(format_value(v) for v in trial.values or [])
        elif trial.state == TrialState.PRUNED:
            detail = str(trial.user_attrs.get("prune_reason", "pruned"))
        else:
            detail = str(trial.user_attrs.get("fail_reason", ""))
        mark = ""  # on the trial's line: only news (the bar over trials always shows the best)
        try:
            if len(study.directions) > 1:
                best = f"Pareto front: {counted(len(study.best_trials), 'trial')}"  # the bar's: now
                if trial.state == TrialState.COMPLETE:  # the line's: as this trial finished
                    mark = f"  Pareto front: {counted(len(_front_as_of(study, trial)), 'trial')}"
            else:
                b = study.best_trial
                best = f"best {format_value(b.value)} (#{b.number})"  # the bar's: now
                # the line's: as this trial finished
                if trial.state == TrialState.COMPLETE and _new_best(study, trial):
                    mark = "  new best"
            self.progress.update(self.trials_task, info=best)
        except ValueError:  # no complete trial yet
            pass
        if trial.state == TrialState.COMPLETE and trial.user_attrs.get("feasible") is False:
            mark = f"  violates the constraints{mark}"  # why a better value is not the new best
        # A pruned trial's parameters are noise in the stream (most trials of a pruned study end so):
        # `hpotool trials --state pruned` lists them, as Optuna's own log says only "Trial N pruned".
        params = "" if trial.state == TrialState.PRUNED else f"{escape(format_params(study, trial))}  "
        took = "seconds unknown" if seconds is None else duration(seconds)
        # With --workers this process shows every trial the study finishes: another command's or another
        # machine's, on a shared study, were listed as this run's (the summary's "run now" left them out).
        elsewhere = ran_elsewhere(trial)
        if elsewhere is not None:
            mark = f"  [dim]({escape(elsewhere)})[/]{mark}"
        say(
            self.console,
            f"trial {trial.number:>3} [{style}]{trial.state.name:<8}[/] {escape(detail)}  [dim]{params}{took}[/]{mark}",
        )
