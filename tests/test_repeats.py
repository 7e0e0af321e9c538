"""The repeats line (`hpotool.repeats`): which trials a sampler had train a configuration already run, and
what it says of them, on real in-memory Optuna studies built with `create_trial`."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpotool.repeats import repeated_trials, repeats_note

_DROPOUT = CategoricalDistribution([0.0, 0.25])
_LR = FloatDistribution(1e-4, 1e-1, log=True)


def _study(*trials: optuna.trial.FrozenTrial) -> optuna.Study:
    study = optuna.create_study()
    for t in trials:
        study.add_trial(t)
    return study


def _trial(
    value: float, system_attrs: dict[str, Any] | None = None, **params: Any
) -> optuna.trial.FrozenTrial:
    dists = {"model.dropout": _DROPOUT, "optimizer.lr": _LR}
    return create_trial(
        state=TrialState.COMPLETE,
        value=value,
        params=params,
        distributions={k: dists[k] for k in params},
        system_attrs=system_attrs or {},
    )


def _attrs(space: dict[str, Any], sampler: str = "random") -> dict[str, Any]:
    return {
        "run_config": {"seed": 0},
        "optimize_config": {"search_space": space, "sampler": {"name": sampler}},
    }


_SMALL = {"model.dropout": {"type": "categorical", "choices": [0.0, 0.25]}}
_CONTINUOUS = {**_SMALL, "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}


@pytest.mark.parametrize(
    "system_attrs",
    [
        {"fixed_params": {"model.dropout": 0.0}},  # enqueue:, --enqueue-from, refine's warm start, a resume
        {"failed_trial": 0, "retry_history": [0]},  # Optuna's retry of a failed or stale trial
    ],
)
def test_a_trial_queued_with_values_already_run_is_no_sampler_repeat(system_attrs: dict[str, Any]) -> None:
    """A trial queued on purpose with values a trial already ran was named a repeat, with the advice to
    change sampler, though the sampler never proposed it; a sampler's later repeat of it still counts."""
    study = _study(
        _trial(0.5, **{"model.dropout": 0.0}),
        _trial(0.5, system_attrs, **{"model.dropout": 0.0}),
        _trial(0.4, {"fixed_params": {"model.dropout": 0.25}}, **{"model.dropout": 0.25}),
        _trial(0.4, **{"model.dropout": 0.25}),
    )
    assert repeated_trials(study.trials, _attrs(_SMALL)) == [(3, 2)]


def test_a_finite_space_s_repeats_name_its_configurations_and_grid_or_bruteforce() -> None:
    study = _study(_trial(0.5, **{"model.dropout": 0.0}), _trial(0.5, **{"model.dropout": 0.0}))
    assert repeats_note(study.trials, _attrs(_SMALL)) == (
        "1 trial repeated a configuration already run (#1 = #0), training it again for the same result; the "
        "space holds 2 configurations, and sampler grid or bruteforce runs each of them once"
    )


def test_a_continuous_space_s_repeats_are_the_sampler_s_not_the_space_s() -> None:
    """Over a space with a continuous float the line said 'over a space this small' and advised grid or
    bruteforce, which cannot run such a space."""
    values = {"model.dropout": 0.0, "optimizer.lr": 0.01}
    study = _study(_trial(0.5, **values), _trial(0.5, **values))
    note = repeats_note(study.trials, _attrs(_CONTINUOUS, "qmc"))
    assert note == (
        "1 trial repeated a configuration already run (#1 = #0), training it again for the same result; as "
        "optimizer.lr is continuous, grid and bruteforce cannot run the space, and these repeats are sampler "
        "qmc's own doing: another sampler (tpe, random) draws each configuration afresh"
    )


@pytest.mark.parametrize(
    ("sampler", "others"), [("tpe", "random"), ("random", "tpe"), ("rung_tpe", "tpe, random")]
)
def test_a_continuous_space_s_repeats_do_not_advise_the_sampler_that_made_them(
    sampler: str, others: str
) -> None:
    """Two machines' tpe samplers seeded alike repeated each other's values, and the note advised "another
    sampler (tpe, random)": the one in use among them."""
    values = {"model.dropout": 0.0, "optimizer.lr": 0.01}
    study = _study(_trial(0.5, **values), _trial(0.5, **values))
    note = repeats_note(study.trials, _attrs(_CONTINUOUS, sampler))
    assert note is not None
    assert note.endswith(
        f"sampler {sampler}'s own doing: another sampler ({others}) draws each configuration afresh"
    )


def test_a_continuous_parameter_a_condition_leaves_out_says_where_the_repeats_lie() -> None:
    space = {**_CONTINUOUS, "optimizer.lr": {**_CONTINUOUS["optimizer.lr"], "when": {"model.dropout": 0.25}}}
    study = _study(_trial(0.5, **{"model.dropout": 0.0}), _trial(0.5, **{"model.dropout": 0.0}))
    assert repeats_note(study.trials, _attrs(space)) == (
        "1 trial repeated a configuration already run (#1 = #0), training it again for the same result; grid "
        "and bruteforce cannot run a space with a continuous parameter (optimizer.lr): the configurations "
        "repeated are those a `when:` leaves it out of"
    )


def test_a_repeat_that_measured_another_result_is_not_said_to_train_for_the_same_one() -> None:
    """'training it again for the same result' held only where training reproduces a result (its own
    trainer, a GPU, may not): it is now read from the trials' values."""
    study = _study(
        _trial(0.5, **{"model.dropout": 0.0}),
        _trial(0.7, **{"model.dropout": 0.0}),
        _trial(0.5, **{"model.dropout": 0.0}),
    )
    note = repeats_note(study.trials, _attrs(_SMALL))
    assert note is not None and note.startswith(
        "2 trials repeated a configuration already run (#1 = #0, #2 = #0), training it again; #1 measured "
        "another result than the trial it repeated, so training with the same values does not reproduce a "
        "result here; the space"
    ), note


def test_a_plain_optuna_study_s_repeats_are_named_without_advice() -> None:
    study = _study(_trial(0.5, **{"model.dropout": 0.0}), _trial(0.5, **{"model.dropout": 0.0}))
    assert repeats_note(study.trials, {}) == (
        "1 trial repeated a configuration already run (#1 = #0), training it again for the same result"
    )


def _ran_by(trial: optuna.trial.FrozenTrial, host: str, pid: int) -> optuna.trial.FrozenTrial:
    trial.set_user_attr("worker", {"host": host, "pid": pid})
    return trial


def test_a_continuous_repeat_from_another_process_is_said_to_be_two_processes_seeded_alike() -> None:
    """An exact repeat of a continuous value by a trial another process ran than the one it repeated was
    called "sampler tpe's own doing": the likelier cause is two processes whose samplers were seeded alike
    (as two that resumed a study at once were, before). Repeats within one process keep the old words."""
    values = {"model.dropout": 0.0, "optimizer.lr": 0.01}
    study = _study(
        _ran_by(_trial(0.5, **values), "a", 1),
        _ran_by(_trial(0.5, **values), "b", 1),  # another machine, the same pid
        _ran_by(_trial(0.5, **values), "a", 1),  # the first trial's own process
    )
    note = repeats_note(study.trials[:2], _attrs(_CONTINUOUS, "tpe"))
    assert note is not None and note.endswith(
        "grid and bruteforce cannot run the space, and each of these repeats ran in another process than the "
        "trial it repeated: processes seeded alike draw the same values, the likelier cause than sampler tpe"
    ), note
    note = repeats_note(study.trials, _attrs(_CONTINUOUS, "tpe"))
    assert note is not None and note.endswith(
        "grid and bruteforce cannot run the space; #1 ran in another process than the trial it repeated: "
        "processes seeded alike draw the same values, and the other repeats are sampler tpe's own doing: "
        "another sampler (random) draws each configuration afresh"
    ), note
    alone = _study(_ran_by(_trial(0.5, **values), "a", 1), _ran_by(_trial(0.5, **values), "a", 1))
    note = repeats_note(alone.trials, _attrs(_CONTINUOUS, "tpe"))
    assert note is not None and note.endswith("these repeats are sampler tpe's own doing: another sampler "
                                              "(random) draws each configuration afresh")  # fmt: skip
