"""Trials of hpotool's workers that plain Optuna sharing the study failed, which gives no reason."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from datetime import datetime
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpotool.cli import app
from hpotool.durations import trial_seconds
from hpotool.trial_table import trial_records, trials_csv

# What hpotool's worker records on its trial (`owners`): a process of this host, long gone.
WORKER = {"host": os.uname().nodename, "pid": 2**22 + 7, "pidns": 0}
BEAT = datetime(2026, 12, 7, 8, 0, 5)


def _study(tmp_path: Path) -> tuple[str, optuna.Study]:
    """A study of three trials: #0 an hpotool worker's, failed as stale by plain Optuna's heartbeat check
    (its heartbeat set back to `BEAT`, long past any grace period); #1 an hpotool worker's, failed by a
    plain `study.tell` (no heartbeat kept); #2 a plain Optuna trial its own code failed."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        beating = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=beating)
    with warnings.catch_warnings():  # "Heartbeat of storage is supposed to be used with Study.optimize."
        warnings.simplefilter("ignore", UserWarning)
        stale = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    stale.set_user_attr("worker", WORKER)
    beating.record_heartbeat(stale._trial_id)
    # Typed, so SQLAlchemy writes the datetime as Optuna's column does; a bare datetime went to sqlite3's
    # default datetime adapter, deprecated from Python 3.12 (a DeprecationWarning in every run there).
    beat = sqlalchemy.bindparam("beat", BEAT, type_=sqlalchemy.DateTime())
    with sqlalchemy.create_engine(url).begin() as db:
        db.execute(sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = :beat").bindparams(beat))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # as a plain worker's study.optimize does before a trial
    plain = optuna.load_study(study_name="s", storage=url)  # no heartbeat
    told = plain.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    told.set_user_attr("worker", WORKER)
    plain.tell(told, state=TrialState.FAIL)
    own = plain.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    plain.tell(own, state=TrialState.FAIL)
    assert [t.state for t in plain.trials] == [TrialState.FAIL] * 3
    assert all("fail_reason" not in t.user_attrs for t in plain.trials)
    return url, plain


STALE = (
    "stale: no heartbeat since 2026-12-07 08:00:05 (the storage's clock); failed by another process, which gave "
    "no reason (Optuna's own heartbeat check gives none)"
)
TOLD = "failed by another process, which gave no reason (plain Optuna gives none)"


def test_trials_and_exports_say_another_process_failed_an_hpotool_trial_without_a_reason(
    tmp_path: Path,
) -> None:
    """They showed no reason at all, and as seconds the time from the trial's start until it was failed. A
    plain Optuna trial's failure, which its own code may have written, keeps no reason and Optuna's seconds:
    none is invented."""
    url, study = _study(tmp_path)
    own = study.trials[2]
    assert own.duration is not None
    seconds = {0: None, 1: None, 2: own.duration.total_seconds()}
    assert {t.number: trial_seconds(t) for t in study.trials} == seconds

    runner = CliRunner()
    result = runner.invoke(app, ["trials", "--study-name", "s", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["number"]: r for r in json.loads(result.stdout)}
    assert {n: r["fail_reason"] for n, r in rows.items()} == {0: STALE, 1: TOLD, 2: None}
    assert {n: r["duration_s"] for n, r in rows.items()} == seconds
    table = runner.invoke(app, ["trials", "--study-name", "s", "--storage", url])
    assert table.exit_code == 0, table.output
    assert STALE in " ".join(table.stdout.split()) and TOLD in " ".join(table.stdout.split())

    assert [r["fail_reason"] for r in trial_records(study)] == [STALE, TOLD, None]
    exported = list(csv.DictReader(io.StringIO(trials_csv(study))))
    assert [r["fail_reason"] for r in exported] == [STALE, TOLD, ""]
    assert [r["duration_s"] for r in exported][:2] == ["", ""]
