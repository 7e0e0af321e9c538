from __future__ import annotations

from typing import Any

import pytest

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.errors import HpoError
from hpotool.space_checks import check_space

RUN = {"device": "cpu", "model": {"name": "mlp", "hidden": [32]}, "optimizer": {"name": "adam"}}
LR = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}


def _refusal(space: dict[str, Any]) -> list[str]:
    run = RunConfig.model_validate(RUN)
    opt = OptimizeConfig.model_validate({"study_name": "s", "search_space": space})
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "o.yaml")
    return str(info.value).splitlines()


def test_two_keys_with_a_mistake_each_are_told_in_one_run_in_the_order_of_the_keys() -> None:
    # it told optimizer.lrr alone, and model.dropot on the next run
    lines = _refusal(
        {
            "optimizer.lrr": LR,
            "model.hidden.0": {"type": "int", "low": 16, "high": 64},
            "model.dropot": {"type": "float", "low": 0.0, "high": 0.5},
        }
    )
    assert [line.partition(": ")[2].partition(":")[0] for line in lines] == [
        "search_space.optimizer.lrr",
        "search_space.model.dropot",
    ]
    assert lines[0].startswith("o.yaml: search_space.optimizer.lrr: optimizer 'adam' takes no argument 'lrr'")
    assert "(did you mean 'optimizer.lr'?)" in lines[0]
    assert lines[1].startswith("o.yaml: search_space.model.dropot: model 'mlp' takes no argument 'dropot'")
    assert "(did you mean 'model.dropout'?)" in lines[1]


def test_three_keys_with_three_kinds_of_mistake_are_told_together() -> None:
    lines = _refusal(
        {
            "epochs": {"type": "int", "low": 0, "high": 3},  # a value the run config refuses
            "optimizer.lrr": LR,
            "model.hidden.2": {"type": "int", "low": 16, "high": 64},  # the list has one item: 1 comes first
        }
    )
    assert len(lines) == 3, lines
    assert lines[0].startswith("o.yaml: search_space.epochs: ")
    assert lines[1].startswith("o.yaml: search_space.optimizer.lrr: ")
    assert lines[2].startswith("o.yaml: search_space.model.hidden.2: ")


def test_one_mistake_is_one_line_as_before() -> None:
    lines = _refusal({"optimizer.lr": LR, "model.dropot": {"type": "float", "low": 0.0, "high": 0.5}})
    assert len(lines) == 1 and lines[0].startswith("o.yaml: search_space.model.dropot: ")
