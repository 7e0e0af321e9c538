from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from hpotool.errors import HpoError
from hpotool.storage import load_study, make_storage


def test_default_sqlite_is_created_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'folder' / 's.db'}"
    storage = make_storage(url)
    optuna.create_study(study_name="s", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    with sqlite3.connect(tmp_path / "deep" / "folder" / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2  # plain Optuna reads it


def test_missing_study_lists_the_existing_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="alpha", storage=make_storage(url))
    with pytest.raises(HpoError, match=rf"no study 'beta' in {url}; studies there: alpha"):
        load_study("beta", url)
    with pytest.raises(HpoError, match="no such SQLite file"):
        load_study("alpha", f"sqlite:///{tmp_path / 'none.db'}")


def test_journal_file_storage(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'j.log'}")
    study = optuna.create_study(study_name="j", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("studies/x.db", "is not a storage URL; use sqlite:///path.db"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot open it"),
        ("redis://127.0.0.1:1", "cannot open it"),
        ("nosuchdialect://x", "cannot open it"),
        # SQLAlchemy's default MySQL driver (MySQLdb) is not the one hpotool[mysql] installs
        (
            "mysql://root@127.0.0.1:1/x",
            r"a driver is missing .*; name the driver hpotool\[mysql\] installs: mysql\+pymysql://",
        ),
    ],
)
def test_bad_storage_urls(url: str, message: str) -> None:
    with pytest.raises(HpoError, match=message):
        make_storage(url)
