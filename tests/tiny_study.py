"""A finished tiny study on disk, for the tests of what reads studies back (export, train, browse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from hpotool.plan import prepare_study
from hpotool.study_run import run_study

from .conftest import write_yaml


def run_tiny_study(tmp_path: Path, run: dict[str, Any], opt: dict[str, Any]) -> optuna.Study:
    """Run the study the two config dicts describe and load it back with plain Optuna."""
    rp = write_yaml(tmp_path / "run.yaml", run)
    op = write_yaml(tmp_path / "optimize.yaml", opt)
    run_study(prepare_study(rp, op))
    return optuna.load_study(study_name=opt["study_name"], storage=opt["storage"])


def two_objective_study(tmp_path: Path, run: dict[str, Any]) -> tuple[optuna.Study, str]:
    """An empty study 'mo' in tmp_path/mo.db that minimizes two values, with `run` as the run config
    hpotool records on its studies; and its storage URL."""
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    study.set_user_attr("run_config", run)
    return study, url
