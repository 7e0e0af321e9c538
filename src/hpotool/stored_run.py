"""The RunConfig `hpotool optimize` stored on a study, and the exact one a trial trained (the stored base
with its parameters applied); a study that stored none is told it was not made by hpotool optimize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpotool import __version__
from hpotool.config import RunConfig
from hpotool.config_errors import validate_config
from hpotool.errors import HpoError
from hpotool.fingerprint import config_of
from hpotool.overrides import apply_overrides
from hpotool.storage import study_options
from hpotool.trial_table import trial_params


def stored_run_config(
    study: optuna.Study, *, check_components: bool = True, trial_number: int | None = None
) -> RunConfig:
    """The base RunConfig `hpotool optimize` stored on the study (the one trial `trial_number` ran under,
    if the config changed since)."""
    attrs = study.user_attrs
    data = attrs.get("run_config") if trial_number is None else config_of(attrs, trial_number, "run_config")
    if not isinstance(data, dict):
        raise not_hpotool_error(study)
    try:
        result: RunConfig = validate_config(
            RunConfig, data, f"study {study.study_name!r}: run_config", check_components=check_components
        )
    except HpoError as exc:
        if made_by := _older_maker(attrs):
            raise HpoError(
                "; ".join(str(exc).splitlines()) + f"; the study was made by hpotool {made_by}, this is "
                f"{__version__}: use that version for it (pip install 'hpotool=={made_by}')"
            ) from None
        raise
    return result


def _older_maker(study_attrs: Mapping[str, Any]) -> str | None:
    """The hpotool version that made the study, when it is not this one (None: this one, or unknown)."""
    versions = study_attrs.get("versions")
    made_by = versions.get("hpotool") if isinstance(versions, dict) else None
    return str(made_by) if made_by and made_by != __version__ else None


def not_hpotool_error(study: optuna.Study) -> HpoError:
    """A study without the run config `hpotool optimize` stores: plain Optuna, or another tool's."""
    return HpoError(
        f"study {study.study_name!r} has no stored run config (user attr 'run_config'): it was not created by "
        f"hpotool optimize, so there is no RunConfig to merge its parameters into; hpotool trials "
        f"{study_options(study)} --json lists its trials and parameters"
    )


def trial_run_config(study: optuna.Study, trial: FrozenTrial, *, check_components: bool = True) -> RunConfig:
    """The exact RunConfig the trial trained: the stored base with its parameters applied.

    `check_components=False` (export) trusts the components the trial trained with instead of importing
    them (torch) to check their arguments again: those this hpotool version checked as the study ran. The
    built-in ones of a study another version made are checked (an argument a built-in model took then may
    be gone), as train would check them.
    """
    if not isinstance(study.user_attrs.get("run_config"), dict):
        raise not_hpotool_error(study)  # the study's, not this trial's
    config = _trial_run_config(study, trial, check_components)
    if not check_components and _older_maker(study.user_attrs) and _built_in_components(config):
        config = _trial_run_config(study, trial, True)
    return config


def _trial_run_config(study: optuna.Study, trial: FrozenTrial, check_components: bool) -> RunConfig:
    # names the study
    base = stored_run_config(study, check_components=check_components, trial_number=trial.number)
    try:
        params = trial_params(study.user_attrs, trial)
        return apply_overrides(base, params, check_components=check_components)
    except HpoError as exc:
        raise HpoError(f"study {study.study_name!r}: trial {trial.number}: {exc}") from None


def _built_in_components(config: RunConfig) -> bool:
    """Whether every component `config` names is hpotool's own (no `package.module:Name` to import)."""
    sections = (config.data, config.model, config.optimizer, config.scheduler, config.loss)
    return config.trainer is None and all(":" not in str(section.name) for section in sections)
