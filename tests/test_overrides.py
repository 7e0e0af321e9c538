from __future__ import annotations

import pytest

from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.overrides import apply_overrides, check_path, config_paths, set_path


def test_overrides_make_a_new_validated_config() -> None:
    base = RunConfig.model_validate({"model": {"name": "mlp", "hidden": [64, 64]}})
    new = apply_overrides(
        base, {"optimizer.lr": 0.05, "model.hidden.1": 8, "model.dropout": 0.3, "epochs": 3}
    )
    assert new.optimizer.lr == 0.05
    assert new.model.kwargs["hidden"] == [64, 8]
    assert new.model.kwargs["dropout"] == 0.3
    assert new.epochs == 3
    assert base.optimizer.lr == 1e-3 and base.model.kwargs["hidden"] == [64, 64]  # untouched


def test_override_values_are_validated_again() -> None:
    with pytest.raises(HpoError, match=r"with epochs=0: epochs: Input should be greater than or equal to 1"):
        apply_overrides(RunConfig(), {"epochs": 0})
    with pytest.raises(HpoError, match="optimizer 'adam' takes no argument 'momentum'"):
        apply_overrides(RunConfig(), {"optimizer.momentum": 0.9})


def test_switching_a_component_with_its_arguments() -> None:
    new = apply_overrides(RunConfig(), {"optimizer.name": "sgd", "optimizer.momentum": 0.9})
    assert new.optimizer.name == "sgd" and new.optimizer.kwargs["momentum"] == 0.9


def test_set_path_appends_list_items() -> None:
    data = {"model": {"hidden": [16, 32]}}
    set_path(data, "model.hidden.2", 64)
    assert data["model"]["hidden"] == [16, 32, 64]
    with pytest.raises(KeyError, match="no list item '5'"):
        set_path(data, "model.hidden.5", 1)


def test_config_paths_include_component_arguments() -> None:
    run = RunConfig.model_validate({"model": {"name": "mlp", "hidden": [32]}})
    paths = config_paths(run, {"optimizer": ["sgd"]})
    assert {
        "optimizer.lr",
        "optimizer.betas",
        "optimizer.momentum",
        "model.dropout",
        "model.hidden.0",
        "epochs",
    } <= paths
    check_path("model.hidden.1", paths)  # the next list item
    with pytest.raises(
        HpoError,
        match=r"search_space.optimizer.lrr: the RunConfig has no such path; did you mean 'optimizer.lr'",
    ):
        check_path("optimizer.lrr", paths)
