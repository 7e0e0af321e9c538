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


def test_a_list_value_and_an_item_of_it_leave_the_given_list_as_it_was() -> None:
    """A search space's list choice model.hidden: [32, 16] with model.hidden.0 searched too: setting the item
    changed the choice itself, so the next trial suggested other choices ([40, 16]) and failed ("does not
    support dynamic value space"), every trial after the first."""
    choice = [32, 16]
    new = apply_overrides(RunConfig(), {"model.hidden": choice, "model.hidden.0": 40})
    assert new.model.kwargs["hidden"] == [40, 16] and choice == [32, 16]


def test_an_item_is_set_after_its_whole_list_whatever_the_order_of_the_paths() -> None:
    """model.hidden.0 listed before the list choice model.hidden set the item and then lost it to the whole
    list: the trial recorded model.hidden.0=40 and trained [32, 16]. A list is set before its items."""
    assert apply_overrides(RunConfig(), {"model.hidden.0": 40, "model.hidden": [32, 16]}).model.kwargs[
        "hidden"
    ] == [40, 16]


def test_a_whole_section_replaces_the_section_and_the_keys_below_it_apply_after() -> None:
    """What a whole-section choice means (README): the section as the choice spells it, the keys it leaves out
    at the section's defaults (weight_decay 0.0, not the run config's 0.1), then `optimizer.lr`, whatever
    order the paths come in."""
    base = RunConfig.model_validate({"optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 0.1}})
    new = apply_overrides(
        base, {"optimizer.lr": 0.5, "optimizer": {"name": "sgd", "momentum": 0.9, "lr": 0.2}}
    )
    assert new.optimizer.model_dump() == {"name": "sgd", "lr": 0.5, "weight_decay": 0.0, "momentum": 0.9}


def test_a_condition_reads_a_mapping_the_run_config_sets() -> None:
    """when: {trainer.opts: {in: [{a: 1.0}]}} with trainer.opts set in the run config, not searched: the
    condition read nothing there ("the run config does not set it") and was refused as never holding."""
    from hpotool.overrides import leaf_values

    run = RunConfig.model_validate(
        {"trainer": {"function": "tests.trainers:adds_its_options", "opts": {"a": 1.0, "b": 2.0}}}
    )
    fixed = leaf_values(run)
    assert fixed["trainer.opts"] == {"a": 1.0, "b": 2.0} and fixed["trainer.opts.a"] == 1.0
    assert "trainer" not in fixed and "model" not in fixed  # a section is not a value


def test_override_values_are_validated_again() -> None:
    with pytest.raises(HpoError, match=r"with epochs=0: epochs: must be 1 or more"):
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
        match=r"search_space.optimizer.lrr: the run config has no such key; did you mean 'optimizer.lr'",
    ):
        check_path("optimizer.lrr", paths)


def test_a_list_item_of_an_argument_left_at_its_default_starts_from_that_default() -> None:
    """The README's `model.hidden.0` on `model: {name: mlp}`, which leaves hidden at MLP's (128,): the item
    is set in a list, not in a mapping {'0': 8} that the model then refuses."""
    base = RunConfig.model_validate({"model": {"name": "mlp"}})
    assert apply_overrides(base, {"model.hidden.0": 8}).model.kwargs["hidden"] == [8]
    assert apply_overrides(base, {"model.hidden.1": 8}).model.kwargs["hidden"] == [128, 8]
    cnn = RunConfig.model_validate({"model": {"name": "cnn"}})
    assert apply_overrides(cnn, {"model.channels.1": 8}).model.kwargs["channels"] == [16, 8]
    switched = apply_overrides(
        cnn, {"model.name": "mlp", "model.hidden.0": 8}
    )  # the default of the new model
    assert switched.model.name == "mlp" and switched.model.kwargs["hidden"] == [8]
    with pytest.raises(HpoError) as info:
        apply_overrides(base, {"model.hidden.3": 8})
    # the path once: it read "search_space.model.hidden.3: model.hidden.3: no list item '3' ..."
    assert str(info.value) == (
        "search_space.model.hidden.3: no list item '3' in model.hidden (the list has 1); give model.hidden "
        "more items in the run config, or search its items in order (model.hidden.1 adds one)"
    )


def test_a_list_item_of_an_argument_without_a_default_list_makes_a_new_list() -> None:
    data: dict[str, object] = {"trainer": None}
    set_path(data, "trainer.widths.0", 8)
    assert data == {"trainer": {"widths": [8]}}


def test_a_bare_argument_name_suggests_the_section_that_has_it() -> None:
    """`lr:` at the top of a search space is the commonest slip; difflib alone finds 'lr' nothing like
    'optimizer.lr'."""
    paths = config_paths(RunConfig.model_validate({"model": {"name": "mlp", "hidden": [32]}}))
    with pytest.raises(HpoError) as info:
        check_path("lr", paths)
    assert str(info.value) == "search_space.lr: the run config has no such key; did you mean 'optimizer.lr'?"
    with pytest.raises(HpoError, match=r"^search_space.dropout: .*did you mean 'model.dropout'\?$"):
        check_path("dropout", paths)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "trainer.alpha",
            "search_space.trainer.alpha: the run config has no such key; the run config has no trainer: section, "
            "whose keys are a training function's of yours (trainer: {function: mypkg.train:fit, alpha: 0.1}); "
            "hpotool's own Trainer takes its settings at the top of the run config (epochs, batch_size, grad_clip)",
        ),
        (
            "trainer.epochs",
            "search_space.trainer.epochs: the run config has no such key; did you mean 'epochs'? (hpotool's "
            "Trainer takes it at the top of the run config)",
        ),
    ],
)
def test_a_trainer_key_without_a_trainer_section_says_what_trainer_is(path: str, message: str) -> None:
    """`trainer.epochs` (as Lightning names its Trainer's settings) or `trainer.alpha` where the run config
    sets no `trainer:` read "did you mean 'trainer'?", the one section that cannot be searched so."""
    paths = config_paths(RunConfig.model_validate({"model": {"name": "mlp", "hidden": [32]}}))
    with pytest.raises(HpoError) as info:
        check_path(path, paths)
    assert str(info.value) == message


def test_a_list_item_searched_above_the_item_before_it_says_to_move_that_one_up() -> None:
    # `n_layers` then `width_i` ported with width_2 written above width_1: it said "search its items in
    # order (model.hidden.1 adds one)", where model.hidden.1 was searched, a line below
    from hpotool.config import OptimizeConfig
    from hpotool.space_checks import check_space

    run = RunConfig.model_validate({"device": "cpu", "model": {"name": "mlp", "hidden": [64]}})
    width = {"type": "int", "low": 16, "high": 64}
    space = {
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "model.hidden.2": {**width, "when": {"model.layers": 3}},
        "model.hidden.1": {**width, "when": {"model.layers": {"ge": 2}}},
    }
    opt = OptimizeConfig.model_validate({"study_name": "s", "search_space": space})
    with pytest.raises(HpoError) as info:
        check_space(run, opt, None, "optimize.yaml")
    assert str(info.value) == (
        "optimize.yaml: search_space.model.hidden.2: model.hidden.1 is searched below it, but a trial sets "
        "model.hidden's items in the order written, and the run config's list has 1; move model.hidden.1 above "
        "model.hidden.2"
    )
    moved = {k: space[k] for k in ("model.layers", "model.hidden.1", "model.hidden.2")}
    check_space(
        run, OptimizeConfig.model_validate({"study_name": "s", "search_space": moved}), None, "o.yaml"
    )
