from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpotool.browse import study_rows, trial_rows
from hpotool.cli import app
from hpotool.report_page import _header_rows

from .redis_keys import delete_redis_keys
from .tiny_study import run_tiny_study

runner = CliRunner()


def _plain_study(url: str, name: str, direction: str, values: list[float]) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url, direction=direction)
    for v in values:
        study.enqueue_trial({"x": v})
    study.optimize(lambda t: t.suggest_float("x", -10, 10), n_trials=len(values))
    return study


def test_studies_lists_every_study_under_studies(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    opt_dict["storage"] = "sqlite:///studies/tiny.db"
    run_tiny_study(tmp_path, run_dict, opt_dict)
    _plain_study("sqlite:///studies/shared.db", "lows", "minimize", [3.0, -2.0])
    _plain_study("sqlite:///studies/shared.db", "highs", "maximize", [3.0, -2.0])
    with sqlite3.connect(tmp_path / "studies" / "notes.db") as conn:
        conn.execute("CREATE TABLE notes (t TEXT)")
    rows, notes = study_rows(None)
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == ["highs", "lows", "tiny"]
    assert by_name["lows"]["best_value"] == -2.0 and by_name["highs"]["best_value"] == 3.0
    assert by_name["tiny"]["trials"] == {"complete": 3} and by_name["tiny"]["metric"] == "val_accuracy"
    assert by_name["tiny"]["directions"] == ["maximize"]
    assert by_name["tiny"]["last_activity"] is not None
    assert notes == ["studies/notes.db: not an Optuna database, skipped"]
    with sqlite3.connect(tmp_path / "studies" / "notes.db") as conn:  # listing did not add Optuna's tables
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]

    result = runner.invoke(app, ["studies", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.stdout)] == [r["name"] for r in rows]
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert (
        "tiny" in result.stdout
        and "complete 3" in result.stdout
        and "sqlite:///studies/shared.db" in result.stdout
    )


def test_studies_lists_the_journal_files_under_studies_too(tmp_path: Path) -> None:
    # `--storage journal:studies/NAME.log` (README, Scaling out), then `hpotool studies`: "no studies in
    # studies/*.db".
    from hpotool.storage import make_storage

    study = optuna.create_study(study_name="j", storage=make_storage("journal:studies/j.log"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    (tmp_path / "studies" / "train.log").write_text("epoch 1 loss 0.3\n")  # some other log: not ours
    (tmp_path / "studies" / "empty.log").write_text("")
    rows, notes = study_rows(None)
    assert [(r["name"], r["storage"], r["trials"]) for r in rows] == [
        ("j", "journal:studies/j.log", {"complete": 2})
    ]
    assert notes == []
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "storage: journal:studies/j.log", (
        result.stdout
    )
    assert (tmp_path / "studies" / "train.log").read_text() == "epoch 1 loss 0.3\n"
    # The study by name alone: its default file is missing, and the journal beside it is named
    result = runner.invoke(app, ["trials", "--study-name", "j"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no study 'j' in studies/j.db: it is in journal:studies/j.log; give --storage journal:studies/j.log\n"
    )


def test_a_storage_the_lines_name_pastes_into_a_shell_as_it_is(tmp_path: Path) -> None:
    """`studies --storage 'sqlite:///my studies/x.db'` said `storage: sqlite:///my studies/x.db`, and a study
    found in a file of another name `give --storage journal:studies/my run.log`: pasted, the shell split them
    at the space."""
    import shlex

    from hpotool.storage import make_storage

    (tmp_path / "my studies").mkdir()
    url = f"sqlite:///{tmp_path / 'my studies' / 'x.db'}"
    _plain_study(url, "x", "minimize", [1.0])
    result = runner.invoke(app, ["studies", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == f"storage: {shlex.quote(url)}", (
        result.stdout
    )
    assert shlex.split(result.stdout.splitlines()[-1].removeprefix("storage: ")) == [url]

    optuna.create_study(study_name="my run", storage=make_storage("journal:studies/my run.log"))
    result = runner.invoke(app, ["trials", "--study-name", "my run"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no study 'my run' in studies/my run.db: it is in journal:studies/my run.log; give --storage "
        "'journal:studies/my run.log'\n"
    )


def test_an_out_the_lines_suggest_pastes_into_a_shell_as_it_is(tmp_path: Path) -> None:
    """Study 'my run' with a file where its default export folder goes: the line suggested `--out exports/my
    run` and `--out my run-report.html`, which a shell splits at the space."""
    (tmp_path / "studies").mkdir()
    _plain_study("sqlite:///studies/my run.db", "my run", "minimize", [1.0])
    (tmp_path / "studies" / "my run").write_text("notes\n")
    export = runner.invoke(app, ["export-best", "--study-name", "my run"])
    assert export.exit_code == 2 and export.stderr.endswith(
        "e.g. --out 'exports/my run', or move that file away\n"
    )
    report = runner.invoke(app, ["report", "--study-name", "my run"])
    assert report.exit_code == 2 and report.stderr.endswith(
        "e.g. --out 'my run-report.html', or move that file away\n"
    ), report.stderr


def test_studies_lists_the_files_under_studies_with_numbers_in_order(tmp_path: Path) -> None:
    # As strings digits10.db came before digits2.db (and run10.log before run9.log): a sweep of numbered
    # studies listed out of order.
    from hpotool.storage import make_storage

    (tmp_path / "studies").mkdir(exist_ok=True)
    for n in (10, 2, 1):
        _plain_study(f"sqlite:///studies/digits{n}.db", f"digits{n}", "minimize", [1.0])
    for n in (10, 9):
        study = optuna.create_study(study_name=f"run{n}", storage=make_storage(f"journal:studies/run{n}.log"))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    rows, notes = study_rows(None)
    assert [r["name"] for r in rows] == ["digits1", "digits2", "digits10", "run9", "run10"]
    assert notes == []
    result = runner.invoke(app, ["studies", "--json"], catch_exceptions=False)
    assert [r["name"] for r in json.loads(result.stdout)] == [
        "digits1",
        "digits2",
        "digits10",
        "run9",
        "run10",
    ]


def test_studies_in_one_storage_and_a_missing_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _plain_study(url, "only", "minimize", [1.0])
    result = runner.invoke(app, ["studies", "--storage", url, "--json"], catch_exceptions=False)
    assert [r["name"] for r in json.loads(result.stdout)] == ["only"]
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (t TEXT)")
    result = runner.invoke(app, ["studies", "--storage", f"sqlite:///{other}"])
    assert result.exit_code == 2 and "is not an Optuna storage" in result.stderr
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["studies", "--storage", missing])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: --storage: {missing!r}: no such SQLite file {str(tmp_path / 'none.db')!r}; check the path\n"
    )


def test_trials_are_sorted_best_first_for_each_direction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    low = _plain_study(url, "low", "minimize", [3.0, -2.0, 5.0])
    high = _plain_study(url, "high", "maximize", [3.0, -2.0, 5.0])
    assert [r["params"]["x"] for r in trial_rows(low)] == [-2.0, 3.0, 5.0]
    assert [r["params"]["x"] for r in trial_rows(high)] == [5.0, 3.0, -2.0]
    assert [r["number"] for r in trial_rows(high, top=2)] == [2, 0]
    # A pruned trial's value was measured before training ended: it ranks after the complete ones.
    trial = high.ask({"x": optuna.distributions.FloatDistribution(-10, 10)})
    trial.report(99.0, step=0)
    high.tell(trial, state=optuna.trial.TrialState.PRUNED)
    high.tell(high.ask(), state=optuna.trial.TrialState.FAIL)
    rows = trial_rows(high)
    assert [(r["number"], r["state"]) for r in rows] == [
        (2, "complete"),
        (0, "complete"),
        (1, "complete"),
        (3, "pruned"),
        (4, "fail"),
    ]
    assert rows[3]["value"] == 99.0


def test_trials_command_filters_by_state(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    opt_dict["pruner"] = {"name": "threshold", "kwargs": {"lower": 0.12}}
    opt_dict["n_trials"] = 2
    opt_dict["enqueue"] = [
        {"optimizer.lr": 0.05, "model.hidden.0": 16},
        {"optimizer.lr": 0.001, "model.hidden.0": 8},
    ]
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    states = [t.state.name.lower() for t in study.trials]
    assert states == ["complete", "pruned"]
    storage = opt_dict["storage"]
    result = runner.invoke(app, ["trials", "--study-name", "tiny", "--storage", storage, "--json"])
    rows = json.loads(result.stdout)
    assert [r["number"] for r in rows] == [0, 1] and rows[0]["value"] == study.trials[0].value
    result = runner.invoke(
        app, ["trials", "--study-name", "tiny", "--storage", storage, "--state", "pruned", "--json"]
    )
    (pruned,) = json.loads(result.stdout)
    assert pruned["number"] == 1 and pruned["prune_reason"].startswith("pruned after 1 of ")
    result = runner.invoke(  # as trials.csv and Optuna spell the state
        app, ["trials", "--study-name", "tiny", "--storage", storage, "--state", "PRUNED", "--json"]
    )
    assert result.exit_code == 0 and [r["number"] for r in json.loads(result.stdout)] == [1]
    result = runner.invoke(
        app, ["trials", "--study-name", "tiny", "--storage", storage], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "optimizer.lr" in result.stdout and "pruned" in result.stdout
    assert "note" not in result.stdout  # "pruned after 1 of 2 epochs" says no more than the state and epochs
    # No trial in the state: one line saying what the study has (it printed an empty table)
    result = runner.invoke(app, ["trials", "--study-name", "tiny", "--storage", storage, "--state", "FAIL"])
    assert result.exit_code == 0 and result.stdout == "study tiny has no fail trial (complete 1, pruned 1)\n"
    result = runner.invoke(app, ["trials", "--study-name", "tiny", "--storage", storage, "--state", "done"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --state: 'done' is not a trial state; choose one of: complete, pruned, fail, running, waiting\n"
    )
    # Its Optuna name with an ending (completed, failed), or pruning, as people say it: read "use one of" alone
    for given, meant in (("completed", "complete"), ("failed", "fail"), ("pruning", "pruned")):
        result = runner.invoke(
            app, ["trials", "--study-name", "tiny", "--storage", storage, "--state", given]
        )
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: --state: {given!r} is not a trial state (did you mean {meant!r}?); choose one of: complete, "
            f"pruned, fail, running, waiting\n"
        )


def test_studies_with_several_objectives_constraints_and_brackets_in_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    optuna.create_study(
        study_name="two[/objectives]", storage=url, directions=["minimize", "maximize"]
    ).optimize(lambda t: (t.suggest_float("w[lr]", 0, 1), 1.0), n_trials=2)
    constrained = optuna.create_study(study_name="c", storage=url, direction="maximize")
    for value, constraint in [(0.9, 1.0), (0.5, -1.0)]:
        trial = constrained.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_constraint("n_params <= 10", constraint)
        constrained.tell(trial, value)
    result = runner.invoke(app, ["studies", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["two[/objectives]"]["best_value"] is None
    assert rows["c"]["best_value"] == 0.5  # the best that meets the constraints, as export-best has it
    table = runner.invoke(app, ["studies", "--storage", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "two[/objectives]" in table.stdout
    trials = runner.invoke(
        app, ["trials", "--study-name", "two[/objectives]", "--storage", url], env={"COLUMNS": "200"}
    )
    assert trials.exit_code == 0 and "w[lr]" in trials.stdout


def test_trials_rank_complete_trials_that_violate_the_constraints_after_those_that_meet_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="c", storage=url, direction="maximize")
    for value, constraint in [(0.9, 1.0), (0.5, -1.0), (0.7, 0.0), (0.95, 2.0)]:
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_constraint("n_params <= 10", constraint)
        study.tell(trial, value)
    rows = trial_rows(study)
    assert [(r["number"], r["feasible"]) for r in rows] == [(2, True), (1, True), (3, False), (0, False)]
    assert [r["number"] for r in trial_rows(study, top=1)] == [study.best_trial.number]
    table = runner.invoke(app, ["trials", "--study-name", "c", "--storage", url], catch_exceptions=False)
    assert table.exit_code == 0
    lines = [line for line in table.stdout.splitlines() if "complete" in line]
    assert ["violates the constraints" in line for line in lines] == [False, False, True, True]


def test_trials_of_a_plain_study_show_its_own_reason_attrs_of_any_type(tmp_path: Path) -> None:
    """A plain Optuna study may keep anything under the user attrs hpotool names fail_reason and
    prune_reason: `hpotool trials` crashed on a mapping (rich cannot render a dict) and on a list
    (`'list' object has no attribute 'startswith'`). They are shown as the YAML spells them."""
    url = f"sqlite:///{tmp_path / 'own.db'}"
    study = optuna.create_study(study_name="own", storage=url)
    for number, (attr, value, state) in enumerate(
        [
            ("fail_reason", {"code": 3}, optuna.trial.TrialState.FAIL),
            ("prune_reason", ["rung", 2], optuna.trial.TrialState.PRUNED),
            ("prune_reason", 7, optuna.trial.TrialState.PRUNED),
        ]
    ):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr(attr, value)
        trial.report(float(number), 0)
        study.tell(trial, state=state)
    table = runner.invoke(app, ["trials", "--study-name", "own", "--storage", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    notes = {
        line.split()[1]: line.split("│")[-2].strip() for line in table.stdout.splitlines() if "│ " in line
    }
    assert notes == {"0": "{code: 3}", "1": "[rung, 2]", "2": "7"}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_trials_of_a_multi_objective_study_show_each_value_formatted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    study.set_metric_names(["val_loss", "n_params"])
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) + 1.4474249284579561, 1563.0), n_trials=1)
    result = runner.invoke(
        app,
        ["trials", "--study-name", "mo", "--storage", url],
        env={"COLUMNS": "200"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "val_loss" in line)
    assert "n_params" in lines[header + 1]  # each objective's name over its value, one under the other
    row = next(i for i, line in enumerate(lines) if "│ 1.947 " in line)
    assert "│ 1563 " in lines[row + 1] and "1.9474249" not in result.stdout


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_trials_of_a_multi_objective_study_keep_each_parameter_whole_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The values side by side ("0.4652, 2335") under "val_accuracy, n_params" took the params column's room:
    # optimizer.lr=0.0027 / 58 read as two numbers.
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["maximize", "minimize"])
    study.set_metric_names(["val_accuracy", "n_params"])
    study.enqueue_trial({"model.hidden.0": 31, "optimizer.lr": 0.002758})
    study.optimize(
        lambda t: (
            0.4652,
            t.suggest_int("model.hidden.0", 8, 64) * 75.0 + t.suggest_float("optimizer.lr", 0, 1),
        ),
        n_trials=1,
    )
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["trials", "--study-name", "mo", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "model.hidden.0=31" in result.stdout and "optimizer.lr=0.002758" in result.stdout, result.stdout


def test_a_failed_trial_s_note_goes_under_the_trials_table_where_its_column_would_fold_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns the demo's seven parameters beside a failed trial's note folded values mid-number,
    'optimizer.lr=0.02' over '527' (read as lr 0.02): the notes now go under the table, by trial number."""
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="f", storage=url, direction="maximize")
    F, Int = optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution
    space = {
        "optimizer.lr": F(1e-4, 3e-2, log=True),
        "optimizer.weight_decay": F(1e-6, 1e-2, log=True),
        "model.hidden.0": Int(32, 256, step=32),
        "model.dropout": F(0.0, 0.5),
    }
    values = {
        "optimizer.lr": 0.02527,
        "optimizer.weight_decay": 0.002137,
        "model.hidden.0": 64,
        "model.dropout": 0.0917,
    }
    study.enqueue_trial(values)
    trial = study.ask(space)
    trial.set_user_attr("fail_reason", "worker died (pid 24778)")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["trials", "--study-name", "f", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name, value in values.items():
        assert f"{name}={value}" in result.stdout, result.stdout  # each whole, on one line
    assert lines[-1] == "#0: worker died (pid 24778)", result.stdout
    monkeypatch.setattr(
        hpotool.cli.terminal.out_console(), "width", 200
    )  # where it fits, the note keeps its column
    wide = runner.invoke(app, ["trials", "--study-name", "f", "--storage", url], catch_exceptions=False)
    assert "│ worker died (pid 24778) │" in wide.stdout and "#0:" not in wide.stdout


def test_a_long_note_squeezed_into_a_narrow_column_goes_under_the_trials_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns a failed trial's long reason beside a few short parameter columns kept its note
    column, every value whole but the reason wrapped over a dozen narrow lines: such a note now goes under
    the table too, whole; a short note stays in its column."""
    import hpotool.cli.terminal
    from hpotool.cli.trials_table import NOTE_LINES

    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="f", storage=url, direction="maximize")
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 3e-2, log=True)}
    for lr in (0.004493, 0.009181):
        study.enqueue_trial({"lr": lr})
        study.tell(study.ask(space), lr * 100)
    reason = (
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x784 and 512x10) in model.forward "
        "(models.py:42); check model.kwargs.hidden against the dataset's input size"
    )
    trial = study.ask(space)
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["trials", "--study-name", "f", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 3, result.stdout  # a line per trial, no note wrapped beside them
    assert "note" not in result.stdout.split("└")[0], result.stdout
    below = " ".join(result.stdout.split("┘", 1)[1].split())
    assert below == f"#2: {reason}", result.stdout
    # a note that wraps over NOTE_LINES lines at most keeps its column
    other = optuna.create_study(study_name="g", storage=url, direction="maximize")
    other.tell(other.ask(space), 0.5)
    trial = other.ask(space)
    trial.set_user_attr("fail_reason", "worker died (pid 24778)")
    other.tell(trial, state=optuna.trial.TrialState.FAIL)
    kept = runner.invoke(app, ["trials", "--study-name", "g", "--storage", url], catch_exceptions=False)
    assert "│ worker died (pid" in kept.stdout and "#1:" not in kept.stdout, kept.stdout
    assert NOTE_LINES == 3


def test_a_note_goes_under_a_trials_table_too_narrow_even_without_its_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 64 columns a failed trial's reason kept its column, wrapped over nine lines, where the table
    without it did not fit either (its params cell one character too wide): the note column squeezed the
    params too, `optimizer.lr=7.726e-05` folded as `optimizer` over `.lr=7.726` over `e-05`. The notes go
    under the table wherever they would squeeze it, the rest getting their room."""
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="f", storage=url, direction="maximize")
    space = {
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "model.width": optuna.distributions.IntDistribution(8, 64),
    }
    study.enqueue_trial({"optimizer.lr": 7.726e-05, "model.width": 57})
    trial = study.ask(space)
    reason = "RuntimeError: width 57 is too wide for this test (at flaky/net.py:15 in forward)"
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 64)
    result = runner.invoke(app, ["trials", "--study-name", "f", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    table, below = result.stdout.split("┘", 1)
    assert "note" not in table and "RuntimeError" not in table, result.stdout
    assert " ".join(below.split()) == f"#0: {reason}", result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 64
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert len(rows) == 2, result.stdout  # the params over two lines, not ten beside the note


def test_a_trials_table_narrower_than_its_title_prints_the_title_whole_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich folded a title to its table's width: a long study name over a narrow trials table took three
    lines ("study", "sweep_of_the_digits_mlp_with_cosine_schedule_2026_12_", "06_x: 2 trials")."""
    import hpotool.cli.terminal

    name = "sweep_of_the_digits_mlp_with_cosine_schedule_2026_12_06_x"
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _plain_study(url, name, "minimize", [0.5, 0.25])
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["trials", "--study-name", name, "--storage", url], catch_exceptions=False)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and lines[0] == f"study {name}: 2 trials", result.stdout
    assert lines[1].startswith("┏") and len(lines[1]) < len(lines[0]), result.stdout  # the table, narrower
    # One wider than the terminal folds at the terminal's width, not the table's.
    longer = "x" * 90
    _plain_study(url, longer, "minimize", [0.5])
    result = runner.invoke(app, ["trials", "--study-name", longer, "--storage", url], catch_exceptions=False)
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[:3] == ["study", "x" * 80, "x" * 10 + ": 1 trial"], result.stdout


def test_studies_table_keeps_directions_dates_and_best_values_whole_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'a.db'}"
    _plain_study(url, "digits_small_and_good", "minimize", [0.123456789])
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["studies", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    table, storage = result.stdout.splitlines()[:-1], result.stdout.splitlines()[-1]
    assert max(len(line) for line in table) <= 80
    assert storage == f"storage: {url}"  # longer than 80 columns: printed whole, for copy and paste
    assert re.search(r"│ 0\.1235 +│ \d{4}-\d\d-\d\d \d\d:\d\d │", result.stdout), result.stdout
    assert "│ minimize  │" in result.stdout, result.stdout  # not "minimiz" / "e"


@pytest.mark.parametrize("width", [60, 40])
def test_studies_on_a_narrow_terminal_keep_dates_counts_and_directions_whole_and_fold_only_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # At 60 columns every cell of the one-study-a-line table wrapped: "2026-12-0" over "6", "minimiz" over "e".
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'a.db'}"
    _plain_study(url, "digits_small_and_good", "minimize", [0.123456789])
    _plain_study(url, "highs", "maximize", [1.0, 2.0])
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", width)
    result = runner.invoke(app, ["studies", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines[:-1]) <= width, result.stdout
    assert len(re.findall(r"│ \d{4}-\d\d-\d\d \d\d:\d\d +│", result.stdout)) == 2, result.stdout
    for whole in ("minimize", "maximize", "complete 1", "complete 2", "0.1235", "2"):
        assert re.search(rf"│ {re.escape(whole)} +│", result.stdout), (whole, result.stdout)
    # The name alone may fold, onto the lines under its first (a blank key): read back, each is whole.
    names: list[str] = []
    key = ""
    for row in (line.split("│") for line in lines if line.startswith("│")):
        key = row[1].strip() or key
        if key == "name" and row[1].strip():
            names.append(row[2].strip())
        elif key == "name":
            names[-1] += row[2].strip()
    assert sorted(names) == ["digits_small_and_good", "highs"], result.stdout


def test_studies_table_names_each_storage_once_under_the_table_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpotool.cli.terminal

    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    (tmp_path / "studies").mkdir()
    _plain_study("sqlite:///studies/digits_mlp.db", "digits_mlp", "maximize", [0.9])
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert result.stdout.splitlines()[-1] == "storage: sqlite:///studies/digits_mlp.db", result.stdout
    assert "│ storage" not in result.stdout and "┃ storage" not in result.stdout  # not a column folded 4 ways

    _plain_study("sqlite:///studies/other_default_study.db", "other_default_study", "minimize", [1.0])
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert result.stdout.splitlines()[-1] == "storage: sqlite:///studies/<name>.db for each", result.stdout

    _plain_study("sqlite:///studies/shared.db", "lows", "minimize", [3.0])
    _plain_study("sqlite:///studies/shared.db", "highs", "maximize", [3.0])
    far = f"sqlite:///{tmp_path / 'elsewhere' / 'a_rather_long_file_name_for_a_storage.db'}"
    (tmp_path / "elsewhere").mkdir()
    _plain_study(far, "far", "minimize", [1.0])
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert result.stdout.splitlines()[-2:] == [
        "storage: sqlite:///studies/shared.db for lows, highs",
        "storage: sqlite:///studies/<name>.db for the others",
    ], result.stdout
    result = runner.invoke(app, ["studies", "--storage", far], catch_exceptions=False)
    assert result.stdout.splitlines()[-1] == f"storage: {far}", result.stdout  # longer than 80, unfolded


def _hpotool_like_study(
    url: str, name: str, directions: list[str], metrics: list[str], complete: int, pruned: int = 0
) -> None:
    """A study as `hpotool optimize` stores one (its metric(s) in the optimize config), without training."""
    study = optuna.create_study(study_name=name, storage=url, directions=directions)
    key = {"metric": metrics[0]} if len(metrics) == 1 else {"metrics": metrics}
    study.set_user_attr("optimize_config", key)
    for i in range(complete):
        study.tell(study.ask(), [0.5 + i / 100] * len(directions))
    for _ in range(pruned):
        trial = study.ask()
        trial.report(0.1, step=0)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def _studies_in_default_files(tmp_path: Path, *more: str) -> None:
    """digits_mlp (2 complete, 18 pruned), loss_and_size (two objectives) and `more` single-objective
    studies, each in studies/<name>.db."""
    (tmp_path / "studies").mkdir()
    _hpotool_like_study(
        "sqlite:///studies/digits_mlp.db", "digits_mlp", ["maximize"], ["val_accuracy"], 2, 18
    )
    for name in more:
        _hpotool_like_study(f"sqlite:///studies/{name}.db", name, ["maximize"], ["val_accuracy"], 3)
    _hpotool_like_study(
        "sqlite:///studies/loss_and_size.db",
        "loss_and_size",
        ["minimize", "maximize"],
        ["val_loss", "n_params"],
        1,
    )


def _studies_table_at(width: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    """`hpotool studies` on a terminal `width` columns wide, which it fits: the table's lines, and them
    joined (to show where an assertion fails)."""
    import hpotool.cli.terminal

    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", width)
    result = runner.invoke(app, ["studies"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[-1] == "storage: sqlite:///studies/<name>.db for each"
    assert max(len(line) for line in lines) <= width, result.stdout
    return lines[:-1], "\n".join(lines[:-1])


def test_studies_table_keeps_names_objectives_and_trial_counts_whole_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _studies_in_default_files(tmp_path, "digits_small_and_good")
    table, text = _studies_table_at(80, monkeypatch)
    # Every cell whole, none folded mid-word ("digits_" / "mlp", "val_acc" / "uracy", "comple" / "te 2, "):
    # cells that do not fit go on several lines at their spaces.
    cells = {cell.strip() for line in table for cell in line.split("│")[1:-1]}
    for whole in (
        "digits_mlp",
        "digits_small_and_good",
        "loss_and_size",
        "val_accuracy",
        "complete 2",
        "pruned 18",
        "minimize val_loss",
        "maximize n_params",
        "Pareto",  # above the size of loss_and_size's front: 1
    ):
        assert whole in cells, text
    assert re.search(r"│ maximize +│ complete 2 +│ 0\.51 +│ \d{4}-\d\d-\d\d +│", text), text


def test_studies_keep_every_name_on_a_terminal_too_narrow_for_a_study_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 56 columns the other cells, kept whole, left the name column no width at all: no name showed
    # (and at 52, cells were cut short: "minimize val_los"); then every cell wrapped, mid-word. Each study is
    # now a section of lines, its values beside their keys, whole.
    _studies_in_default_files(tmp_path, "digits_small_and_good")
    table, text = _studies_table_at(56, monkeypatch)
    cells = {cell.strip() for line in table for cell in line.split("│")[1:-1]}
    for whole in (
        "digits_mlp",
        "digits_small_and_good",
        "loss_and_size",
        "minimize val_loss",
        "maximize n_params",
        "complete 2",
        "pruned 18",
    ):
        assert whole in cells, text


def test_studies_table_folds_only_a_name_too_long_for_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name too long for the terminal (70 columns) left every layout too wide as measured with the name
    whole, so every cell folded mid-word ("val_acc" / "uracy", "comple" / "te 2") beside it; only the name
    folds now, as the README says."""
    long_name = "digits_mlp_sweep_of_the_learning_rate_and_the_widths_2026_12_05_v3"
    _studies_in_default_files(tmp_path, long_name)
    table, text = _studies_table_at(70, monkeypatch)
    cells = {cell.strip() for line in table for cell in line.split("│")[1:-1]}
    for whole in ("digits_mlp", "val_accuracy", "complete 2", "pruned 18", "minimize val_loss"):
        assert whole in cells, text
    names = "".join(line.split("│")[1].strip() for line in table if line.startswith("│"))
    assert long_name in names, text


def test_studies_table_at_80_columns_gives_long_names_beside_a_multi_objective_study_the_room_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns a multi-objective study's two objectives ("maximize val_accuracy" over "minimize
    n_params") left no layout room for names of 26 and 30 characters whole, and the names then folded in the
    first layout that fitted names cut to 10: 11 characters a line, three lines each, beside a last activity
    and a "last activity" header kept on one line. The names fold in the layout that stacks every column
    now, which leaves them the most room: two lines each, every other cell whole."""
    (tmp_path / "studies").mkdir()
    monkeypatch.chdir(tmp_path)
    single, multi = "mnist_resnet_lr_sweep_2026", "digits_accuracy_vs_size_pareto"
    _hpotool_like_study(f"sqlite:///studies/{single}.db", single, ["maximize"], ["val_accuracy"], 2)
    _hpotool_like_study(
        f"sqlite:///studies/{multi}.db", multi, ["maximize", "minimize"], ["val_accuracy", "n_params"], 3
    )
    table, text = _studies_table_at(80, monkeypatch)
    rows: list[list[list[str]]] = []  # each study's cells, line by line
    for line in table:
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            if cells[0].startswith(("digits_", "mnist_")):
                rows.append([])
            rows[-1].append(cells)
    assert len(rows) == 2, text
    for row, name in zip(rows, (multi, single), strict=True):
        assert "".join(cells[0] for cells in row) == name, text
        assert len(row) == 2, text  # the name on two lines, not three
    cells = {cell for row in rows for cells in row for cell in cells}
    for whole in ("maximize val_accuracy", "minimize n_params", "complete 3", "complete 2", "Pareto", "0.51"):
        assert whole in cells, text
    assert sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", cell)) for cell in cells) >= 1, text


def test_studies_table_puts_each_study_on_one_line_when_the_terminal_is_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _studies_in_default_files(tmp_path)
    table, text = _studies_table_at(120, monkeypatch)
    rows = [line for line in table if line.startswith("│")]
    assert len(rows) == 2, text
    assert re.search(
        r"│ digits_mlp +│ maximize val_accuracy +│ complete 2, pruned 18 +│ 0\.51 +│ \d{4}-", text
    )
    assert "│ minimize val_loss, maximize n_params │ complete 1 " in text, text


def test_a_parameter_named_like_a_column_of_the_trials_table_is_headed_as_trials_csv_heads_it(
    tmp_path: Path,
) -> None:
    # A searched epochs gave the table two "epochs" columns (the parameter and the epochs run).
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="c", storage=url)
    study.optimize(lambda t: t.suggest_int("epochs", 1, 3) + t.suggest_float("state", 0, 1), n_trials=2)
    result = runner.invoke(app, ["trials", "--study-name", "c", "--storage", url], catch_exceptions=False)
    header = next(line for line in result.stdout.splitlines() if "seconds" in line)
    assert [h.strip() for h in header.strip("┃ \n").split("┃")] == [
        "#",
        "state",
        "value",
        "params_epochs",
        "params_state",
        "epochs",
        "seconds",
    ]


def _table_row(stdout: str, number: int) -> list[str]:
    """The cells of trial `number`'s row in the `hpotool trials` table."""
    line = next(line for line in stdout.splitlines() if re.match(rf"│ +{number} +│", line))
    return [cell.strip() for cell in line.strip("│ \n").split("│")]


def test_a_queued_trial_shows_the_values_it_will_run(tmp_path: Path, run_dict: dict, opt_dict: dict) -> None:
    """A waiting trial's parameters were `-`: it has no params yet, only the fixed ones it was queued with
    (`enqueue_trial`), which are shown decoded as the other rows' are (a list choice as the list)."""
    run_dict["epochs"] = 1
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.hidden": {"type": "categorical", "choices": [[16], [8, 8]]},
    }
    run_tiny_study(tmp_path, run_dict, opt_dict)
    storage = opt_dict["storage"]
    optuna.load_study(study_name="tiny", storage=storage).enqueue_trial(
        {"optimizer.lr": 0.05, "model.hidden": "[8, 8]"}
    )
    args = ["trials", "--study-name", "tiny", "--storage", storage]
    rows = json.loads(runner.invoke(app, [*args, "--json"], catch_exceptions=False).stdout)
    assert [(r["state"], r["params"]) for r in rows][1] == (
        "waiting",
        {"optimizer.lr": 0.05, "model.hidden": [8, 8]},
    )
    table = runner.invoke(app, args, catch_exceptions=False).stdout
    assert _table_row(table, 1)[:5] == ["1", "waiting", "-", "0.05", "[8, 8]"], table


def test_a_mapping_choice_is_spelt_with_sorted_keys_everywhere(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    """A whole section chosen was `{name: adam, lr: 0.001}` (the YAML's key order) in the optimize summary
    and `hpotool trials`, but `{lr: 0.001, name: adam}` (the label the study stores) in the progress lines,
    trials.csv and export-best: every place now shows the stored label."""
    from .conftest import write_yaml

    run_dict["epochs"] = 1
    adam = {"name": "adam", "lr": 0.001}
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {
        "optimizer": {"type": "categorical", "choices": [{"name": "sgd", "lr": 0.1}, adam]}
    }
    opt_dict["enqueue"] = [{"optimizer": adam}]
    run_path = write_yaml(tmp_path / "run.yaml", run_dict)
    opt_path = write_yaml(tmp_path / "opt.yaml", opt_dict)
    label = "{lr: 0.001, name: adam}"
    result = runner.invoke(
        app, ["optimize", "-r", str(run_path), "-o", str(opt_path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert f"optimizer={label}" in result.stderr  # the progress line
    assert re.search(rf"│ +optimizer +│ {re.escape(label)} +│", result.stdout), result.stdout  # the summary
    storage = ["--study-name", "tiny", "--storage", opt_dict["storage"]]
    table = runner.invoke(app, ["trials", *storage], catch_exceptions=False).stdout
    assert _table_row(table, 0)[3] == label, table


def test_trials_of_a_multi_objective_study_list_the_pareto_front_first(tmp_path: Path) -> None:
    """`trials --top 2` of a two-objective study listed the two lowest first values, one of them dominated
    (0.17 at 53421 parameters, worse on both counts than 0.13 at 14632), and left out Pareto-optimal trials
    such as the smallest model; the note column did not say which trials make up the front."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    study = optuna.create_study(study_name="m", storage=url, directions=["minimize", "minimize"])
    for values in [(0.17, 53421.0), (0.13, 14632.0), (1.0, 755.0), (0.25, 12000.0)]:
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, list(values))
    rows = trial_rows(study)
    assert [(r["number"], r["pareto"]) for r in rows] == [(1, True), (3, True), (2, True), (0, False)]
    assert [r["number"] for r in trial_rows(study, top=2)] == [1, 3]
    table = runner.invoke(
        app, ["trials", "--study-name", "m", "--storage", url], env={"COLUMNS": "200"}, catch_exceptions=False
    )
    assert table.exit_code == 0
    lines = [line for line in table.stdout.splitlines() if re.match(r"^│ \d ", line)]
    assert [("Pareto front" in line) for line in lines] == [True, True, True, False]


def test_trials_of_a_plain_study_that_stores_epochs_as_text_show_no_count_and_say_so(tmp_path: Path) -> None:
    """A plain Optuna script may keep its own `epochs_run` attr, as text ("10", "ten") or a float:
    `hpotool trials` showed it in the epochs column as if hpotool had counted it, and the report's pruning
    table did too ("ten" epochs run). Now only a count is shown, one line names the trials whose attr is
    not one, and the report counts a pruned trial's epochs from its reported steps, as for a plain study."""
    url = f"sqlite:///{tmp_path / 'own.db'}"
    study = optuna.create_study(study_name="own", storage=url)
    for epochs, state in [("10", "COMPLETE"), (7, "COMPLETE"), ("ten", "PRUNED"), (2.0, "COMPLETE")]:
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr("epochs_run", epochs)
        trial.set_user_attr("history", [{"epoch": str(e), "val_loss": 1.0} for e in (10, 2)])
        for step in range(3):
            trial.report(float(trial.number + step), step)
        study.tell(
            trial,
            float(trial.number) if state == "COMPLETE" else None,
            state=getattr(optuna.trial.TrialState, state),
        )
    table = runner.invoke(app, ["trials", "--study-name", "own", "--storage", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    epochs = {
        line.split()[1]: line.split("│")[-3].strip() for line in table.stdout.splitlines() if "│ " in line
    }
    assert epochs == {"0": "-", "1": "7", "2": "-", "3": "-"}
    assert " ".join(table.stderr.split()) == (
        "note: trials 0, 2, 3 store user attr 'epochs_run' as '10', 'ten', 2.0, not as the count of epochs "
        "hpotool records: shown as -; hpotool trials --json lists each as stored"
    )
    listed = runner.invoke(app, ["trials", "--study-name", "own", "--storage", url, "--json"])
    assert {r["number"]: r["epochs_run"] for r in json.loads(listed.stdout)} == {
        0: "10",
        1: 7,
        2: "ten",
        3: 2.0,
    }
    from hpotool.report_info import report_info

    (pruned,) = report_info(optuna.load_study(study_name="own", storage=url), url).pruned
    assert (pruned["number"], pruned["epochs_run"]) == (
        2,
        None,
    )  # the report's table: last step 2 + 1 = 3 epochs


def test_a_study_read_from_a_subfolder_names_the_studies_folder_above(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpotool trials --study-name NAME` from a subfolder of the project said only "studies/NAME.db does not
    exist; studies under studies/: none", with the study one folder up."""
    from .conftest import write_yaml

    del opt_dict["storage"]  # the default, studies/tiny.db
    opt_dict["n_trials"] = 1
    rp, op = write_yaml(tmp_path / "run.yaml", run_dict), write_yaml(tmp_path / "optimize.yaml", opt_dict)
    assert CliRunner().invoke(app, ["optimize", "-r", str(rp), "-o", str(op), "-q"]).exit_code == 0
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    for command in (["trials"], ["export-best"], ["optimize"]):
        result = CliRunner().invoke(app, [*command, "--study-name", "tiny"])
        assert result.exit_code == 2 and result.stderr.startswith(
            f"error: no study 'tiny' in studies/tiny.db: studies/tiny.db is read from the folder the command runs "
            f"in, and the study is in {tmp_path / 'studies' / 'tiny.db'}; run from {tmp_path}, or give --storage "
            f"sqlite:///{tmp_path / 'studies' / 'tiny.db'}"
        ), result.stderr
    assert not (tmp_path / "a" / "b" / "studies").exists()
    for empty in (
        [],
        ["--storage", ""],
    ):  # --storage '' (a script's "${VAR:-}") is the default: the same hint
        listed = CliRunner().invoke(app, ["studies", *empty])
        assert listed.exit_code == 0 and listed.stderr == (
            f"no studies in studies/*.db or studies/*.log of this folder; {tmp_path / 'studies'} holds some: run "
            f"from {tmp_path}\n"
        )
    given = CliRunner().invoke(
        app, ["trials", "--study-name", "tiny", "--storage", f"sqlite:///{tmp_path}/studies/tiny.db"]
    )
    assert given.exit_code == 0 and "study tiny: 1 trial" in given.output


def test_studies_and_trials_quote_the_study_name_in_a_kept_stop_note_as_optimize_does(tmp_path: Path) -> None:
    # `studies` and `trials` said "note: study tiny: a run ... stopped", where `optimize` says "note: study
    # 'tiny': a run ... stopped" of the same note.
    from hpotool import stop_note

    url = f"sqlite:///{tmp_path / 's.db'}"
    _plain_study(url, "tiny", "minimize", [1.0])
    stop_note.keep("tiny", url, "interrupted between trials")
    for args in (["studies"], ["trials", "--study-name", "tiny"]):
        result = runner.invoke(app, [*args, "--storage", url], catch_exceptions=False)
        assert result.exit_code == 0 and "note: study 'tiny': a run (pid " in result.stderr, (
            args,
            result.stderr,
        )


def test_a_relative_storage_read_from_a_subfolder_names_the_folder_above_that_holds_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd sub && hpotool trials --study-name s --storage sqlite:///studies/s.db` said only "no such SQLite
    file 'studies/s.db'", neither where that was read (sub/studies/s.db) nor that the study is one folder up."""
    from hpotool.storage import make_storage

    (tmp_path / "studies").mkdir()
    _plain_study("sqlite:///studies/s.db", "s", "minimize", [1.0])
    optuna.create_study(study_name="j", storage=make_storage("journal:studies/j.log"))
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    here = tmp_path / "a" / "b"
    for name, url, file in (("s", "sqlite:///studies/s.db", "s.db"), ("j", "journal:studies/j.log", "j.log")):
        result = CliRunner().invoke(app, ["trials", "--study-name", name, "--storage", url])
        kind = "SQLite" if file.endswith(".db") else "journal"
        found = tmp_path / "studies" / file
        assert result.exit_code == 2 and result.stderr == (
            f"error: --storage: {url!r}: no such {kind} file {str(here / 'studies' / file)!r}: studies/{file} is read "
            f"from the folder the command runs in, and the study is in {found}; run from {tmp_path}, or give "
            f"--storage {url.split(':')[0]}:{'///' if kind == 'SQLite' else ''}{found}\n"
        )
    # a file above that does not hold the study: only where the path was read
    result = CliRunner().invoke(app, ["trials", "--study-name", "t", "--storage", "sqlite:///studies/s.db"])
    assert result.exit_code == 2 and result.stderr == (
        f"error: --storage: 'sqlite:///studies/s.db': no such SQLite file {str(here / 'studies' / 's.db')!r}; "
        "check the path (a relative one is read from the folder hpotool runs in)\n"
    )
    assert not (here / "studies").exists()


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_a_pareto_note_column_never_folds_the_trials_params_mid_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpotool trials` of examples/multi_objective.yaml's study at 80 columns kept the "Pareto front" note
    column whole and folded every parameter mid-number, 'optimizer.lr=0.0' over '0443' (read as lr 0.0):
    the table's narrowest layout fitted, but rich narrowed the widest column (params) first, below its
    longest value. Now the columns get widths at which no value folds."""
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    study.set_metric_names(["val_loss", "n_params"])
    F, Int = optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution
    space = {
        "optimizer.lr": F(1e-3, 3e-2, log=True),
        "model.hidden.0": Int(8, 256, log=True),
        "model.hidden.1": Int(8, 256, log=True),
    }
    points = [  # the Pareto front leaves out the last two, so every front trial gets the note
        ({"optimizer.lr": 0.00443, "model.hidden.0": 175, "model.hidden.1": 226}, (0.1408, 53421.0)),
        ({"optimizer.lr": 0.006466, "model.hidden.0": 94, "model.hidden.1": 63}, (0.2011, 12735.0)),
        ({"optimizer.lr": 0.003685, "model.hidden.0": 123, "model.hidden.1": 49}, (0.3267, 14571.0)),
        ({"optimizer.lr": 0.006904, "model.hidden.0": 197, "model.hidden.1": 10}, (0.3741, 14895.0)),
    ]
    for params, values in points:
        study.enqueue_trial(params)
        study.tell(study.ask(space), list(values))
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(app, ["trials", "--study-name", "mo", "--storage", url], catch_exceptions=False)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for params, _ in points:
        for name, value in params.items():
            assert f"{name}={value}" in result.stdout, result.stdout  # each whole, on one line
    assert result.stdout.count("Pareto") == 2, result.stdout  # the note wraps at its space, if at all


def test_trials_list_the_parameters_in_search_space_order_and_leave_out_those_a_condition_switched_off(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conditional space at 80 columns: each trial's params cell listed every parameter of the study, the
    unset ones as `optimizer.momentum=-`, in the order the first trial listed happened to set them (momentum
    after the trials' other parameters where the best trial ran adam); the cell now names what the trial
    ran, in the order the search space writes them."""
    import hpotool.cli.terminal

    opt_dict["search_space"] = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer.name": "sgd"}},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
    }
    opt_dict["enqueue"] = [
        {"optimizer.name": "adam", "optimizer.lr": 0.05, "model.hidden.0": 32},
        {"optimizer.name": "sgd", "optimizer.momentum": 0.6, "optimizer.lr": 0.001, "model.hidden.0": 8},
    ]
    opt_dict["n_trials"] = 2
    run_tiny_study(tmp_path, run_dict, opt_dict)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = runner.invoke(
        app, ["trials", "--study-name", "tiny", "--storage", opt_dict["storage"]], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    cells = [line.split("│")[4].strip() for line in result.stdout.splitlines() if line.count("│") == 7]
    text = " ".join(cell for cell in cells if cell)  # the params column, its lines in order
    assert "=-" not in text, result.stdout
    assert "optimizer.name=adam optimizer.lr=0.05 model.hidden.0=32" in text, result.stdout
    assert "optimizer.name=sgd optimizer.momentum=0.6 optimizer.lr=0.001 model.hidden.0=8" in text, (
        result.stdout
    )


def test_studies_shows_the_size_of_a_multi_objective_studys_pareto_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best column said '-' for a study of several objectives, as for one with no complete trial."""
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    for values in ([0.5, 90], [0.4, 170], [0.6, 250]):  # the third is beaten by the first on both
        study.add_trial(optuna.trial.create_trial(values=values))
    result = runner.invoke(app, ["studies", "--storage", url, "--json"], catch_exceptions=False)
    (row,) = json.loads(result.stdout)
    assert row["best_value"] is None and row["pareto_trials"] == 2
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    table = runner.invoke(app, ["studies", "--storage", url], catch_exceptions=False)
    assert table.exit_code == 0
    assert re.search(r"│ complete 3 +│ Pareto: 2 +│", table.stdout), table.stdout
    assert max(len(line) for line in table.stdout.splitlines()[:-1]) <= 80, table.stdout


def test_studies_and_trials_count_the_states_in_the_reports_order(tmp_path: Path) -> None:
    """`studies` gave the states in the order of each one's first trial (`fail 2, complete 1, pruned 1`),
    the report in Optuna's; every command gives them in one order now."""
    from optuna.trial import TrialState

    from hpotool.report_info import report_info

    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    study = optuna.create_study(study_name="mixed", storage=url, direction="maximize")
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for state in (
        TrialState.FAIL,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.RUNNING,
    ):
        value = 0.5 if state == TrialState.COMPLETE else None
        study.add_trial(
            optuna.trial.create_trial(state=state, value=value, params={"x": 0.5}, distributions=x)
        )
    counts = "running 1, complete 1, pruned 1, fail 2"
    assert dict(_header_rows(report_info(study, url)))["trials"] == counts
    table = runner.invoke(app, ["studies", "--storage", url], env={"COLUMNS": "200"}, catch_exceptions=False)
    assert table.exit_code == 0 and f"│ {counts} " in table.stdout, table.stdout
    (row,) = json.loads(runner.invoke(app, ["studies", "--storage", url, "--json"]).stdout)
    assert ", ".join(f"{k} {v}" for k, v in row["trials"].items()) == counts
    result = runner.invoke(app, ["trials", "--study-name", "mixed", "--storage", url, "--state", "waiting"])
    assert result.exit_code == 0 and result.stdout == f"study mixed has no waiting trial ({counts})\n"


def test_trials_on_a_dumb_terminal_takes_its_width_from_columns(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # TERM=dumb COLUMNS=160 (Emacs's shell sets both): rich takes a dumb terminal for 80 columns unless given
    # its height too, and printed every table 80 wide, the trials' parameters in one wrapped column. Now
    # COLUMNS sets the width there, as it does elsewhere: a column per parameter.
    import os
    import sys

    from .helpers import on_a_terminal

    run_tiny_study(tmp_path, run_dict, opt_dict)
    env = {k: v for k, v in os.environ.items() if k != "LINES"} | {"TERM": "dumb", "COLUMNS": "160"}
    command = [sys.executable, "-m", "hpotool", "trials", "--study-name", "tiny"]
    lines = on_a_terminal(command, tmp_path, env, None, 160).splitlines()
    header = next(line for line in lines if "state" in line)
    assert "optimizer.lr" in header and "model.hidden.0" in header and " params " not in header, lines


def test_a_missing_study_named_by_an_absolute_path_names_the_file_looked_up(tmp_path: Path) -> None:
    """The default storage of study '/data/x' is sqlite:///studies//data/x.db, the file studies/data/x.db:
    the line said '/data/x.db does not exist', a file never looked at."""
    Path("studies").mkdir()
    result = runner.invoke(app, ["trials", "--study-name", "/data/x"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no study '/data/x': studies/data/x.db does not exist; studies under studies/: none "
        "(give --storage URL for a study stored elsewhere)\n"
    )


def test_a_missing_study_names_the_studies_in_their_own_files_once_and_at_most_twelve() -> None:
    """With many studies under studies/, the line of a missing one named each with its URL (30: over 1,500
    characters), `sqlite:///studies/NAME.db` spelt out each time: now the studies in their own files are
    named once with the URL's form, the others with their storage, and past twelve, how many more."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path("studies").mkdir()
    names = [f"exp_{letter}" for letter in "abcdefghijklmn"]  # 14
    for name in names:
        optuna.create_study(study_name=name, storage=f"sqlite:///studies/{name}.db")
    optuna.create_study(study_name="kept", storage=JournalStorage(JournalFileBackend("studies/kept.log")))
    missing = runner.invoke(app, ["trials", "--study-name", "nosuch"])
    assert missing.exit_code == 2 and missing.stderr == (
        f"error: no study 'nosuch': studies/nosuch.db does not exist; studies under studies/: "
        f"{', '.join(names[:12])} (each in sqlite:///studies/<name>.db), and 3 more, which hpotool studies lists "
        f"(give --storage URL for a study stored elsewhere)\n"
    )
    for name in names[2:]:
        Path(f"studies/{name}.db").unlink()
    missing = runner.invoke(app, ["trials", "--study-name", "nosuch"])
    assert missing.exit_code == 2 and missing.stderr == (
        "error: no study 'nosuch': studies/nosuch.db does not exist; studies under studies/: exp_a, exp_b (each "
        "in sqlite:///studies/<name>.db), kept (journal:studies/kept.log) (give --storage URL for a study stored "
        "elsewhere)\n"
    )


def _running_trial(study: optuna.Study, started_s_ago: float, reports: int) -> None:
    """Add a RUNNING trial to `study` that started `started_s_ago` seconds ago and has reported `reports`
    epochs, as a trial a worker trains right now."""
    from datetime import datetime, timedelta

    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.RUNNING,
        params={"optimizer.lr": 0.01},
        distributions={"optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)},
        intermediate_values={step: 0.5 + step / 10 for step in range(reports)},
    )
    trial.datetime_start = datetime.now() - timedelta(seconds=started_s_ago)
    study.add_trial(trial)


def test_a_running_trial_shows_the_epochs_it_has_reported_and_the_seconds_since_it_started(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    # A running trial's epochs and seconds were `-` (its epochs_run and duration are written as it ends):
    # a user watching a study run saw no progress.
    opt_dict["n_trials"] = 1
    opt_dict["search_space"] = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    _running_trial(study, 100, 3)
    args = ["trials", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    rows = {r["number"]: r for r in json.loads(runner.invoke(app, [*args, "--json"]).stdout)}
    assert (rows[1]["state"], rows[1]["epochs_run"], rows[1]["epochs_reported"]) == ("running", None, 3)
    assert rows[1]["duration_s"] is None and rows[1]["elapsed_s"] >= 100
    assert (rows[0]["epochs_run"], rows[0]["epochs_reported"], rows[0]["elapsed_s"]) == (2, None, None)
    table = runner.invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False).stdout
    running, complete = _table_row(table, 1), _table_row(table, 0)
    assert running[:2] == ["1", "running"] and running[-2] == "3" and float(running[-1]) >= 100, table
    assert complete[-2] == "2", table


def test_trials_json_lists_each_trial_as_the_exported_trials_json_does(tmp_path: Path) -> None:
    # `hpotool trials --json` cut each trial's start and end to whole seconds, where the trials.json that
    # export-best writes of the same study keeps Optuna's microseconds: the two disagreed on every trial.
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="p", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=3
    )
    args = ["--study-name", "p", "--storage", storage]
    result = runner.invoke(app, ["export-best", *args, "--out", str(tmp_path / "e")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    exported = {t["number"]: t for t in json.loads((tmp_path / "e" / "trials.json").read_text())}
    listed = json.loads(runner.invoke(app, ["trials", *args, "--json"], catch_exceptions=False).stdout)
    assert len(listed) == len(exported) == 3
    for row in listed:
        record = exported[row["number"]]
        assert row["datetime_start"] == record["datetime_start"], row
        assert row["datetime_complete"] == record["datetime_complete"], row
        shared = set(record) - {"history", "state"}
        assert {k: row[k] for k in shared} == {k: record[k] for k in shared}
        assert row["state"] == record["state"].lower()


def test_a_trial_of_a_thousand_seconds_or_more_shows_whole_seconds(tmp_path: Path) -> None:
    # A trial that ran 40 minutes read `2.4e+03` in the seconds column (three significant digits).
    study = optuna.create_study(study_name="long", storage=f"sqlite:///{tmp_path / 'long.db'}")
    _running_trial(study, 2400, 2)
    args = ["trials", "--study-name", "long", "--storage", f"sqlite:///{tmp_path / 'long.db'}"]
    cells = _table_row(runner.invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False).stdout, 0)
    assert cells[-1].isdigit() and 2400 <= int(cells[-1]) < 2500, cells


def test_a_running_trial_of_a_study_that_reports_no_epochs_shows_its_seconds_alone(tmp_path: Path) -> None:
    # Several objectives: no trial reports an epoch to Optuna, so none has a count to show while it runs.
    study = optuna.create_study(
        study_name="mo", storage=f"sqlite:///{tmp_path / 'mo.db'}", directions=["minimize"] * 2
    )
    _running_trial(study, 100, 0)
    args = ["trials", "--study-name", "mo", "--storage", f"sqlite:///{tmp_path / 'mo.db'}"]
    (row,) = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert row["epochs_reported"] is None and row["elapsed_s"] >= 100
    cells = _table_row(runner.invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False).stdout, 0)
    assert cells[-2] == "-" and float(cells[-1]) >= 100


@pytest.mark.server
def test_studies_on_redis_names_the_journals_kept_under_a_prefix() -> None:
    # `hpotool studies --storage redis://host:6379` for studies made with `?prefix=NAME` (README, Scaling
    # out) said "no studies in redis://host:6379", as if the server were empty; under one prefix it said
    # nothing of the others. Both name the other journals' --storage URLs.
    import uuid

    import redis

    from hpotool.storage import make_storage

    from .redis_databases import own_databases
    from .test_workers import _server_url

    server = _server_url("redis")
    first, second = (f"hpotool-test-{uuid.uuid4().hex[:12]}" for _ in range(2))
    # a database of its own, claimed empty: every journal there is this test's
    with own_databases(server, 1) as [db]:
        database = f"{server}/{db}"
        client = redis.Redis.from_url(database)
        try:
            for prefix in (first, second):
                optuna.create_study(
                    study_name=f"s-{prefix}", storage=make_storage(f"{database}?prefix={prefix}")
                )
            urls = sorted(f"'{database}?prefix={p}'" for p in (first, second))  # quoted: a shell globs "?"
            bare = CliRunner().invoke(app, ["studies", "--storage", database])
            assert bare.exit_code == 0, bare.output
            assert bare.stdout == ""
            assert " ".join(bare.stderr.split()) == (
                f"no studies in {database}; its server keeps 2 other journals: hpotool studies "
                f"--storage {urls[0]} (or {urls[1]}) lists theirs"
            )
            one = CliRunner().invoke(app, ["studies", "--storage", f"{database}?prefix={first}"])
            assert one.exit_code == 0, one.output
            assert f"s-{first}" in one.stdout and f"s-{second}" not in one.stdout
            assert " ".join(one.stderr.split()) == (
                f"note: {database}?prefix={first}: its server keeps another journal: "
                f"hpotool studies --storage '{database}?prefix={second}' lists its studies"
            )
        finally:
            delete_redis_keys(client, f"{first}*", f"{second}*")


def test_studies_skips_a_study_another_process_deletes_while_it_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpotool studies` on a server shared with others (a study deleted by `optuna delete-study`, a test's
    cleanup, between the list of studies and the read of its trials) ended with a traceback: KeyError
    'Record does not exist.' from `get_study_id_from_name`. The study deleted is gone, so it is left out."""
    from hpotool.storage import make_storage

    url = f"sqlite:///{tmp_path / 'a.db'}"
    _plain_study(url, "kept", "minimize", [1.0])
    _plain_study(url, "gone", "minimize", [2.0])
    cls = type(make_storage(url, create=False))
    listed = cls.get_all_studies

    def listed_then_deleted(self: optuna.storages.BaseStorage) -> list:
        studies = listed(self)
        optuna.delete_study(study_name="gone", storage=optuna.storages.RDBStorage(url))  # another process's
        return studies

    monkeypatch.setattr(cls, "get_all_studies", listed_then_deleted)
    result = runner.invoke(app, ["studies", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == ["kept"]


def test_a_trial_interrupted_before_it_drew_its_values_says_so_in_trials(
    tmp_path: Path, run_dict: dict, opt_dict: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial Ctrl-C ended between its `ask` and its draw is stored with no parameters: `trials` showed an
    empty params cell beside "interrupted", which read as values lost; the note says none were drawn."""
    import signal

    from hpotool.plan import prepare_study
    from hpotool.study_run import run_study
    from hpotool.trial_setup import TrialSetup

    from .conftest import write_configs

    real = TrialSetup.__call__

    def set_up_then_ctrl_c(self: TrialSetup, trial: optuna.Trial) -> bool:
        ready = real(self, trial)
        signal.raise_signal(signal.SIGINT)
        return ready

    monkeypatch.setattr(TrialSetup, "__call__", set_up_then_ctrl_c)
    assert run_study(prepare_study(*write_configs(tmp_path, run_dict, opt_dict))).interrupted == signal.SIGINT
    monkeypatch.undo()
    stored = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert [(t.state, t.params, t.user_attrs["fail_reason"]) for t in stored] == [
        (optuna.trial.TrialState.FAIL, {}, "interrupted")
    ]
    args = ["trials", "--study-name", "tiny", "--storage", opt_dict["storage"]]
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    notes = [line.split("│")[-2].strip() for line in table.stdout.splitlines() if line.startswith("│ 0")]
    assert notes == ["interrupted before it drew its values: none to run again"], table.stdout
