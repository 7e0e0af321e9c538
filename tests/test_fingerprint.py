"""Which trials ran under a study's current base run config (`hpotool.fingerprint`), as refine's warm start
and narrowing and audit read it."""

from __future__ import annotations

from hpotool.fingerprint import CHANGES_ATTR, earlier_base_trials, ran_under_current_base


def test_a_study_without_a_stored_run_config_ran_every_trial_under_its_base() -> None:
    """A plain Optuna study (or one whose run_config attr is no mapping) has no base to change: each of its
    trials was said to have run under an earlier one, which only earlier_base_trials guarded against."""
    assert ran_under_current_base({}, 0)
    assert ran_under_current_base({"run_config": "not a mapping"}, 3)


def test_a_trial_before_a_change_of_the_base_did_not_run_under_the_current_one() -> None:
    attrs = {
        "run_config": {"seed": 1, "device": "cpu"},
        CHANGES_ATTR: [{"from_trial": 2, "previous": {"run_config": {"seed": 0, "device": "cpu"}}}],
    }
    assert [n for n in range(4) if ran_under_current_base(attrs, n)] == [2, 3]
    assert earlier_base_trials(attrs, []) == []
    lost = {**attrs, CHANGES_ATTR: [{"from_trial": 2, "previous": {}}]}  # its earlier base unknown
    assert not ran_under_current_base(lost, 0)
