from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from rich.console import Console

from hpotool.progress import RichObserver

from .conftest import load_study
from .helpers import on_a_terminal


def _lines(trials: list[tuple[TrialState, float | None, dict[str, object]]]) -> list[str]:
    """What the live display prints for `trials` (state, value, user attrs), one line each, at 80 columns."""
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    study = optuna.create_study(direction="maximize")
    observer = RichObserver(console, "val_accuracy")
    observer.study_started(study, len(trials), 0)
    for state, value, attrs in trials:
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
        for key, text in attrs.items():
            trial.set_user_attr(key, text)
        if "feasible" in attrs:  # as the objective records a constraint: for Optuna, then for the exports
            trial.set_constraint("n_params <= 20000", -1.0 if attrs["feasible"] else 1.0)
        study.tell(trial, value, state=state)
        observer.trial_finished(study, study.trials[-1])
    observer.progress.stop()
    return [line for line in out.getvalue().splitlines() if line.strip()]  # the bars leave a blank line


def test_each_trial_is_one_line_at_80_columns_and_only_news_is_marked() -> None:
    lines = _lines(
        [
            (TrialState.COMPLETE, 0.9, {}),
            (TrialState.PRUNED, None, {"prune_reason": "pruned after 2 of 20 epochs (val_accuracy=0.844)"}),
            (TrialState.COMPLETE, 0.8, {}),
            (TrialState.COMPLETE, 0.95, {}),
        ]
    )
    assert len(lines) == 4, lines
    assert lines[0].startswith("trial   0 COMPLETE 0.9  optimizer.lr=") and lines[0].endswith("s  new best")
    # A pruned trial: its reason and time, not its parameters (trials --state pruned lists them).
    assert lines[1].startswith("trial   1 PRUNED   pruned after 2 of 20 epochs (val_accuracy=0.844)  0.")
    assert "optimizer.lr" not in lines[1] and lines[1].endswith("s")
    assert "new best" not in lines[2] and "optimizer.lr=" in lines[2]  # worse than trial 0
    assert lines[3].endswith("s  new best")


def test_a_trial_that_violates_the_constraints_says_so() -> None:
    """In a constrained study a trial of a better value than the best showed no mark, not saying why it was
    not the new best; `hpotool trials` says "violates the constraints"."""
    lines = _lines(
        [
            (TrialState.COMPLETE, 0.9, {"feasible": True}),
            (TrialState.COMPLETE, 0.95, {"feasible": False}),
        ]
    )
    assert lines[0].endswith("s  new best")
    second = " ".join(lines[1:])  # a long lr may fold it at 80 columns
    assert second.startswith("trial   1 COMPLETE 0.95  optimizer.lr=")
    assert second.endswith("violates the constraints") and "new best" not in second


def test_a_study_that_already_holds_its_trials_is_left_to_the_summary_s_note() -> None:
    """Running the demo's command again printed "resuming study digits_mlp: 20/20 trials done"; then the
    same fact twice (here, and in the summary's note). The note says it, with how to run more
    (test_cli.py::test_running_a_finished_study_again_says_so_once)."""
    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=200, color_system=None), "val_accuracy")
    study = optuna.create_study(study_name="digits_mlp", direction="maximize")
    observer.study_started(study, 20, 20)
    observer.progress.stop()
    assert "resuming" not in out.getvalue() and "finished trials" not in out.getvalue()


def test_a_whole_number_shows_whole() -> None:
    # n_params (a float metric) showed as 5.342e+04 in the summary and train tables.
    from hpotool.formatting import format_value

    assert format_value(53420.0) == "53420"
    assert format_value(0.012345) == "0.01235"
    assert format_value(1.5e-7) == "1.5e-07"
    assert format_value(3) == "3" and format_value("relu") == "relu"


def _trial_line(suggest: Callable[[optuna.Trial], None], space: dict[str, Any] | None = None) -> str:
    """The live line of a finished trial whose values `suggest` draws, in a study storing the search space
    `space` as hpotool does (its optimize config)."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("optimize_config", {"search_space": space or {}})
    observer = RichObserver(console, "val_accuracy")
    observer.study_started(study, 1, 0)
    trial = study.ask()
    suggest(trial)
    study.tell(trial, 0.9)
    observer.trial_finished(study, study.trials[-1])
    observer.progress.stop()
    return next(line for line in out.getvalue().splitlines() if line.startswith("trial"))


def test_a_trial_line_shows_categorical_choices_as_the_yaml_spells_them() -> None:
    # The live line printed a null choice as None, true as True and the choice 5.0 as 5, where
    # `hpotool trials` prints null, true and 5.0.
    def suggest(trial: optuna.Trial) -> None:
        trial.suggest_categorical("loss.weight", [None])
        trial.suggest_categorical("model.norm", [True])
        trial.suggest_categorical("optimizer.momentum", [5.0])
        trial.suggest_categorical("model.hidden", ["[128, 64]"])  # a list choice, as Optuna stores it
        trial.suggest_float("optimizer.lr", 0.0, 1.0)

    space = {
        "loss.weight": {"type": "categorical", "choices": [None]},
        "model.norm": {"type": "categorical", "choices": [True]},
        "optimizer.momentum": {"type": "categorical", "choices": [5.0]},
        "model.hidden": {"type": "categorical", "choices": [[128, 64]]},
    }
    line = _trial_line(suggest, space)
    assert "loss.weight=null model.norm=true optimizer.momentum=5.0 model.hidden=[128, 64]" in line, line


def test_a_text_choice_yaml_would_read_as_another_value_is_quoted() -> None:
    # The choices null and "null" (or 0.1 and "0.1" in an error message) both read null: one spelling
    # for two values. As the YAML spells them, the text is quoted.
    def suggest(trial: optuna.Trial) -> None:
        trial.suggest_categorical("loss.weight", ["null"])
        trial.suggest_categorical("model.norm", ["0.1"])
        trial.suggest_categorical("model.activation", ["relu"])

    line = _trial_line(suggest)
    assert 'loss.weight="null" model.norm="0.1" model.activation=relu' in line, line


def test_a_text_choice_yaml_reads_as_a_list_reads_apart_from_the_list_choice() -> None:
    # The choice "[1,2]" (text) and the choice [1, 2] (a list, stored as its label) both showed bare, the
    # stored labels undecoded: the text is quoted now, as `hpotool trials` shows it.
    space = {
        "model.hidden": {"type": "categorical", "choices": ["[1,2]", [1, 2]]},
        "model.sizes": {"type": "categorical", "choices": ["[1,2]", [1, 2]]},
    }

    def suggest(trial: optuna.Trial) -> None:  # the text for model.hidden, the list (its label) for sizes
        trial.suggest_categorical("model.hidden", ["[1,2]"])
        trial.suggest_categorical("model.sizes", ["[1, 2]"])

    line = _trial_line(suggest, space)
    assert 'model.hidden="[1,2]" model.sizes=[1, 2]' in line, line


def test_the_trials_of_other_commands_and_machines_are_marked_with_where_they_ran() -> None:
    # With --workers the main process shows every trial the study finishes: on a study shared with another
    # command or machine, their trials were listed as this run's, unmarked (the summary's "run now" counted
    # only this run's). Now each says where it ran.
    import os

    from hpotool.owners import owner

    here = owner()
    lines = _lines(
        [
            (TrialState.COMPLETE, 0.9, {"worker": {**here, "pid": 1, "main": os.getpid()}}),  # this run's
            (TrialState.COMPLETE, 0.8, {"worker": {**here, "pid": 4243}}),
            (TrialState.COMPLETE, 0.95, {"worker": {"host": "machine-b.example", "pid": 4242}}),
            (TrialState.COMPLETE, 0.5, {}),  # a trial without an owner recorded: not marked
        ]
    )
    import re

    trials = re.split(r" (?=trial \d+ )", " ".join(" ".join(lines).split()))  # a long line wraps at 80
    assert "(" not in trials[0] and "(" not in trials[3], lines
    assert trials[1].endswith("(another command, pid 4243)"), lines
    assert trials[2].endswith("(machine-b.example, pid 4242) new best"), lines


def test_no_blank_line_where_stderr_is_no_terminal(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logged to a file (`2> log`, a CI job), where the transient bars show nothing, optimize's trial lines
    and train-from-best's run lines ended in an empty line (rich's Progress.stop prints one there), and a run
    that failed in training printed one before its error."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_yaml

    runner = CliRunner()
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "opt.yaml", opt_dict)
    ran = runner.invoke(app, ["optimize", "-r", str(run_path), "-o", str(opt_path)], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    assert ran.stderr.startswith("new study 'tiny'") and "\n\n" not in ran.stderr, ran.stderr
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    final = runner.invoke(app, ["train-from-best", *storage, "--out", "final"], catch_exceptions=False)
    assert final.exit_code == 0, final.output
    assert final.stderr.startswith("exported the best trial") and "\n\n" not in final.stderr, final.stderr
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # tests.helpers: a user's model
    run_dict["model"] = {"name": "tests.helpers:ExplodingModel"}  # fails from its second training batch
    failing = runner.invoke(app, ["train", "-r", str(write_yaml(tmp_path / "boom.yaml", run_dict))])
    assert failing.exit_code == 2, failing.output
    assert failing.stderr.startswith("error: training failed: RuntimeError: boom from user code"), (
        failing.stderr
    )


def test_a_study_resumed_after_ctrl_c_in_its_first_trial_says_it_resumes(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in a study's first trial, then the same command: it said nothing of the study it resumed
    (the line counts done trials, and there were none), so the run read as one started over. README: a
    resumed run says `resuming study NAME: 0/N trials done`."""
    import signal

    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_yaml

    runner = CliRunner()
    args = ["optimize", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict))]
    args += ["-o", str(write_yaml(tmp_path / "opt.yaml", opt_dict))]
    real = RichObserver.epoch_ended

    def then_ctrl_c(self: RichObserver, *a: Any, **kw: Any) -> None:  # Ctrl-C after the first trial's epoch
        real(self, *a, **kw)
        signal.raise_signal(signal.SIGINT)

    with monkeypatch.context() as patched:
        patched.setattr(RichObserver, "epoch_ended", then_ctrl_c)
        first = runner.invoke(app, args)
    assert first.exit_code == 130, first.output
    assert first.stderr.startswith("new study 'tiny'"), first.stderr
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert again.stderr.startswith(f"resuming study tiny: 0/{opt_dict['n_trials']} trials done\n"), (
        again.stderr
    )


def test_a_log_file_gets_each_trial_on_one_line_whatever_its_length(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`hpotool optimize ... 2> run.log` (a CI log): rich, which takes 80 columns where stderr is no terminal,
    wrapped each trial line with several parameters onto two or three lines of the log. Now a trial is one
    line, as a logger writes it; COLUMNS still sets the width of the summary's table."""
    import os
    import subprocess
    import sys

    from .conftest import write_configs

    opt_dict["search_space"] |= {
        "optimizer.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "model.activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
        "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    }
    write_configs(tmp_path, run_dict, opt_dict)
    env = {**os.environ, "COLUMNS": "70"}
    with open(tmp_path / "run.log", "w") as log, open(tmp_path / "out.txt", "w") as out:
        subprocess.run(
            [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml"],
            cwd=tmp_path,
            stdout=out,
            stderr=log,
            env=env,
            check=True,
        )
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert lines[0].startswith("new study 'tiny' in ") and len(lines) == 1 + opt_dict["n_trials"], lines
    for number, line in enumerate(lines[1:]):
        assert line.startswith(f"trial   {number} COMPLETE "), lines
        assert all(f" {name}=" in line for name in opt_dict["search_space"]), lines
        assert len(line) > 70 and re.search(r"  \d+\.\d+s(  new best)?$", line), lines  # wider than COLUMNS
    table = [
        line for line in (tmp_path / "out.txt").read_text().splitlines() if not line.startswith("storage: ")
    ]
    assert table[0].startswith("study tiny") and max(len(line) for line in table) <= 70, table  # URL under it


def test_a_dumb_terminal_gets_each_trial_on_one_line_whatever_its_width(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """TERM=dumb (Emacs's shell and compile buffers), a terminal 150 columns wide: rich takes a dumb terminal
    for 80 columns whatever its size, and wrapped every trial line with a few parameters there; it shows no
    bars, as in a log file, and now gets a trial a line as a log file does (the terminal wraps it, if need
    be, at its own width)."""
    import os
    import subprocess
    import sys

    from .conftest import write_configs

    opt_dict["search_space"] |= {
        "optimizer.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "model.activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
    }
    write_configs(tmp_path, run_dict, opt_dict)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "dumb"}
    command = [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml"]
    lines = on_a_terminal(command, tmp_path, env, subprocess.DEVNULL, 150).splitlines()
    assert lines[0].startswith("new study 'tiny' in ") and len(lines) == 1 + opt_dict["n_trials"], lines
    for number, line in enumerate(lines[1:]):
        assert line.startswith(f"trial   {number} COMPLETE "), lines
        assert len(line) > 80 and all(f" {name}=" in line for name in opt_dict["search_space"]), lines


def test_what_the_trials_print_to_stdout_stays_in_its_file_while_the_bars_show_on_the_terminal(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """`hpotool optimize ... > out.txt` on a terminal: rich's bars took what the trials printed to stdout (a
    user's model, here as it is built) to the terminal, above the bars, though stdout was a file, where
    only what the checks before trial 0 printed arrived. Now it all goes to the file; the terminal shows
    the bars and the trial lines."""
    import os
    import sys

    from .conftest import write_configs

    run_dict["model"] = {"name": "tests.helpers:PrintingModel"}
    opt_dict["search_space"] = {"model.width": {"type": "categorical", "choices": [5, 7, 9]}}
    write_configs(tmp_path, run_dict, opt_dict)
    root = str(Path(__file__).resolve().parents[1])  # tests.helpers, as a user's module
    env = os.environ | {
        "TERM": "xterm",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml"]
    with open(tmp_path / "out.txt", "w") as out:
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", on_a_terminal(command, tmp_path, env, out, 100))
    assert "trial   2 COMPLETE" in shown and "printed by the model" not in shown, shown
    printed = [
        line for line in (tmp_path / "out.txt").read_text().splitlines() if line.startswith("printed by")
    ]
    trials = load_study(opt_dict).trials
    assert [f"printed by the model: width {t.params['model.width']}" for t in trials] == printed[-3:], printed


def test_counted_says_one_in_the_singular() -> None:
    # Messages said "1 trial(s)", "3 GPU(s)", "1 sample(s)"; now "1 trial", "3 GPUs", "1 sample".
    from hpotool.formatting import counted

    assert [counted(n, "trial") for n in (0, 1, 2)] == ["0 trials", "1 trial", "2 trials"]
    assert counted(1, "complete trial") == "1 complete trial" and counted(3, "GPU") == "3 GPUs"
    assert counted(2, "child", "children") == "2 children" and counted(1, "child", "children") == "1 child"


def test_an_infinite_or_nan_float_choice_is_shown_as_yaml_reads_it_back() -> None:
    # The choices inf, -inf and nan were shown so, which YAML reads as text: YAML spells them .inf, -.inf
    # and .nan.
    def suggest(trial: optuna.Trial) -> None:
        trial.suggest_categorical("model.a", [math.inf])
        trial.suggest_categorical("model.b", [-math.inf])
        trial.suggest_categorical("model.c", [math.nan])

    line = _trial_line(suggest)
    assert "model.a=.inf model.b=-.inf model.c=.nan" in line, line
    for shown in (".inf", "-.inf", ".nan"):
        assert isinstance(yaml.safe_load(shown), float)


def _lines_seen_late(study: optuna.Study, values: list[Any]) -> list[str]:
    """The trial lines for a trial per value in `values`, each seen once all had finished, as a busy main
    process (--workers) sees them."""
    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=200, color_system=None), "val_accuracy")
    observer.study_started(study, len(values), 0)
    for value in values:
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
        study.tell(trial, value)
    for trial in study.trials:
        observer.trial_finished(study, trial)
    observer.progress.stop()
    return [line for line in out.getvalue().splitlines() if line.startswith("trial")]


def test_a_trial_s_pareto_front_is_the_front_as_that_trial_finished() -> None:
    # With --workers the main process prints a trial's line once it sees it finished, when other trials may
    # have finished too: trial 0's line said "Pareto front: 2 trials", counting trial 1, which finished after
    # it (the front as the line was printed). Now each line's front is the study's as that trial finished.
    study = optuna.create_study(directions=["maximize", "minimize"])
    lines = _lines_seen_late(study, [[0.9, 5.0], [0.8, 1.0], [0.7, 9.0]])  # 0 and 1 on the front, 2 dominated
    assert [line.split("s  ")[-1] for line in lines] == [
        "Pareto front: 1 trial",
        "Pareto front: 2 trials",
        "Pareto front: 2 trials",
    ], lines


def test_a_constrained_trial_s_pareto_front_leaves_out_infeasible_trials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whether the study is constrained is read from the trials' public `constraints`, as best_trials does,
    # not by Optuna's private `_is_constrained_optimization`: a release dropping it (as here) failed every
    # multi-objective trial's line with an ImportError.
    import optuna.study._constrained_optimization as constrained

    monkeypatch.delattr(constrained, "_is_constrained_optimization")
    out = io.StringIO()
    study = optuna.create_study(directions=["maximize", "minimize"])
    observer = RichObserver(Console(file=out, width=200, color_system=None), "val_accuracy")
    observer.study_started(study, 3, 0)
    for values, violation in (([0.9, 5.0], -1.0), ([0.95, 1.0], 1.0), ([0.8, 1.0], -1.0)):
        trial = study.ask()  # trial 1 dominates both, but violates the constraint: off the front
        trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
        trial.set_constraint("n_params <= 20000", violation)
        study.tell(trial, values)
        observer.trial_finished(study, study.trials[-1])
    observer.progress.stop()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("trial")]
    assert [line.split("s  ")[-1] for line in lines] == [
        "Pareto front: 1 trial",
        "Pareto front: 1 trial",  # trial 0 alone: 1 is infeasible
        "Pareto front: 2 trials",
    ], lines


def test_a_trial_s_new_best_mark_is_judged_as_that_trial_finished() -> None:
    # With --workers the main process prints a trial's line once it sees it finished: trial 0, the best as
    # it finished, had no "new best" when trial 1, better, finished before its line was printed (the study's
    # best as the line was printed). Now each line's mark is judged among the trials finished by then; a
    # later trial that only ties the best is no news.
    study = optuna.create_study(direction="maximize")
    lines = _lines_seen_late(study, [0.8, 0.9, 0.7, 0.9])  # 0 and 1 each the best as it finished; 3 ties 1
    assert [line.endswith("  new best") for line in lines] == [True, True, False, False], lines


@pytest.mark.parametrize("flag", ["-q", "--json"])
def test_quiet_and_json_runs_say_they_resume_a_study_as_they_say_they_create_one(
    tmp_path: Path, run_dict: dict, opt_dict: dict, flag: str
) -> None:
    """`-q` (and `--json`, which showed no progress either) kept the `new study` line and dropped the
    `resuming study` one, which came with the live display: a run appending to an existing study read as
    one that started it. README: -q keeps the new study's line, or the resuming one."""
    import json

    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_yaml

    runner = CliRunner()
    args = ["optimize", "-r", str(write_yaml(tmp_path / "run.yaml", run_dict)), flag]
    args += ["-o", str(write_yaml(tmp_path / "opt.yaml", {**opt_dict, "n_trials": 1}))]
    first = runner.invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith("new study 'tiny'"), first.stderr
    again = runner.invoke(app, [*args, "--n-trials", "2"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert again.stderr.startswith("resuming study tiny: 1/2 trials done\n"), again.stderr
    if flag == "--json":  # on stderr: stdout holds the JSON alone
        assert json.loads(again.stdout)["study_name"] == "tiny"


def _started_line(observer_of: Callable[[Console], Any], running: int, done: int, joined: bool) -> str:
    """The line an observer (`observer_of(console)`) prints as a study of `done` finished trials and
    `running` trials of another machine starts, joined (`joined`) or not."""
    from hpotool.progress import QuietObserver

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    study = optuna.create_study(study_name="tiny", direction="maximize")
    for _ in range(done):
        study.tell(study.ask(), 0.5)
    for _ in range(running):
        study.ask().set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
    observer = observer_of(console)
    observer.study_started(study, 9, done, joined=joined)
    if not isinstance(observer, QuietObserver):
        observer.progress.stop()
    return next((line for line in out.getvalue().splitlines() if "study" in line), "")


@pytest.mark.parametrize("observer", ["rich", "quiet"])
def test_a_study_other_processes_run_now_is_joined_not_resumed(observer: str) -> None:
    # A second machine joining a study the first was running said `resuming study tiny: 0/9 trials done`:
    # nothing of it had stopped, nor was resumed. --quiet and --json print QuietObserver's line.
    from hpotool.progress import QuietObserver

    def make(console: Console) -> Any:
        return RichObserver(console, "val_accuracy") if observer == "rich" else QuietObserver(console)

    assert (
        _started_line(make, running=2, done=0, joined=True)
        == "joining study tiny: 0/9 trials done, 2 running"
    )
    assert (
        _started_line(make, running=1, done=3, joined=True)
        == "joining study tiny: 3/9 trials done, 1 running"
    )
    # Nothing running: a resume, whoever created the study
    assert _started_line(make, running=0, done=3, joined=True) == "resuming study tiny: 3/9 trials done"
    assert _started_line(make, running=0, done=3, joined=False) == "resuming study tiny: 3/9 trials done"


@pytest.mark.parametrize("flag", ["-q", "--json"])
def test_a_quiet_command_joining_a_study_another_machine_runs_says_it_joins(
    tmp_path: Path, run_dict: dict, opt_dict: dict, flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Machine B joins the study machine A created and runs two trials of now: it said `resuming study
    tiny: 0/1 trials done`. README (Resuming): `joining study NAME: 12/20 trials done, 2 running`."""
    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.plan import prepare_study
    from hpotool.progress import QuietObserver, RichObserver
    from hpotool.study import open_study

    from .conftest import ask_with_heartbeat, write_yaml

    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "opt.yaml", {**opt_dict, "n_trials": 1})
    machine_a, _ = open_study(prepare_study(run_path, opt_path))  # machine A's study, and its two trials
    on_a = [ask_with_heartbeat(machine_a) for _ in range(2)]
    for trial in on_a:
        trial.set_user_attr("worker", {"host": "machine-a.example", "pid": 4242})
    # -q shows the quiet line, --json the bars on stderr: whichever says the line, A's trials end once it
    # has (were they left running, B would wait the heartbeat grace, 60 s, for their slots)
    observer = QuietObserver if flag == "-q" else RichObserver
    real = observer.study_started

    def then_a_stops(self: Any, *a: Any, **kw: Any) -> None:
        real(self, *a, **kw)
        for trial in on_a:
            machine_a.tell(trial, state=TrialState.FAIL)

    monkeypatch.setattr(observer, "study_started", then_a_stops)
    result = CliRunner().invoke(
        app, ["optimize", "-r", str(run_path), "-o", str(opt_path), flag], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("joining study tiny: 0/1 trials done, 2 running\n"), result.stderr
    # B ran the trial A's failed ones left free: A ended them (no reason), the heartbeat grace did not
    trials = machine_a.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE], trials
    assert [t.user_attrs.get("fail_reason") for t in trials[:2]] == [None, None], trials


_CREATOR = """
import sys
from pathlib import Path
from hpotool.plan import prepare_study
from hpotool.study import open_study
open_study(prepare_study(Path(sys.argv[1]), Path(sys.argv[2])))
print("created", flush=True)
sys.stdin.read()  # alive, its study without a trial, until the test closes its stdin
"""


def _creator(run_path: Path, opt_path: Path) -> Any:
    """A process of its own that creates the study of the configs, says so, and stays until its stdin closes."""
    import os
    import subprocess
    import sys

    import hpotool

    src = Path(hpotool.__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _CREATOR, str(run_path), str(opt_path)],
        env={**os.environ, "PYTHONPATH": str(src)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "created\n"
    return proc


def test_a_study_its_live_creator_has_not_started_a_trial_of_is_joined_and_one_left_so_is_resumed(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A command started while another process created the study and still loaded its workers' data (no
    trial yet) said `resuming study tiny: 0/2 trials done`: it joins a study at work. Once that creator is
    gone, the study it left without a trial is resumed."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    from .conftest import write_yaml

    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    said = []
    for name in ("alive", "gone"):
        opt = {**opt_dict, "study_name": name, "n_trials": 2}
        opt_path = write_yaml(tmp_path / f"{name}.yaml", opt)
        creator = _creator(run_path, opt_path)
        try:
            if name == "gone":
                creator.stdin.close()
                assert creator.wait(timeout=60) == 0
            result = CliRunner().invoke(
                app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"], catch_exceptions=False
            )
        finally:
            if creator.poll() is None:
                creator.stdin.close()
                creator.wait(timeout=60)
        assert result.exit_code == 0, result.output
        said.append(result.stderr.splitlines()[0])
    assert said == [
        "joining study alive: 0/2 trials done, none running yet",
        "resuming study gone: 0/2 trials done",
    ]


def _line_of(study: optuna.Study, done: int) -> str:
    from hpotool.progress import resume_line

    line = resume_line(study, 9, done, joined=True)
    assert line is not None
    return line.replace("[bold]", "").replace("[/]", "")


def test_a_study_another_host_created_or_ran_a_trial_of_a_moment_ago_is_joined() -> None:
    # Another machine's processes cannot be looked at: one that created the study, or finished a trial of it,
    # within the heartbeat's grace (60 s) is taken to work on it still (loading its data, between trials).
    import time

    from hpotool.durations import SECONDS_ATTR, STARTED_ATTR
    from hpotool.owners import CREATED_BY

    machine_b = {"host": "machine-b.example", "pid": 4242}
    for ago, said in ((5, "joining study tiny: 0/9 trials done, none running yet"), (600, None)):
        study = optuna.create_study(study_name="tiny", direction="maximize")
        study._storage.set_study_system_attr(
            study._study_id, CREATED_BY, {**machine_b, "time": time.time() - ago}
        )
        assert _line_of(study, 0) == (said or "resuming study tiny: 0/9 trials done")
    for ago, said in ((5, "joining study tiny: 1/9 trials done, none running now"), (600, None)):
        study = optuna.create_study(study_name="tiny", direction="maximize")
        trial = study.ask()
        trial.set_user_attr("worker", machine_b)
        trial.storage.set_trial_system_attr(trial._trial_id, STARTED_ATTR, time.time() - ago - 2)
        trial.storage.set_trial_system_attr(trial._trial_id, SECONDS_ATTR, 2.0)
        study.tell(trial, 0.5)
        assert _line_of(study, 1) == (said or "resuming study tiny: 1/9 trials done")
