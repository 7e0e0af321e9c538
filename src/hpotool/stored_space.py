"""The search space a study stored, read back: validated (`stored_space`, which audit, refine and
prune-audit read; `stored_space_or_none` for what reads it where it may be missing), and the keys it
searches below a section it also searches whole (`shadowed_keys`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.search_space import CategoricalParam, Param
from hpotool.storage import study_options

if TYPE_CHECKING:
    import optuna


_PARAM = TypeAdapter(Param)


def stored_space(study: optuna.Study) -> dict[str, Param]:
    """The search space hpotool stored on the study, validated."""
    from hpotool.fingerprint import stored_config

    raw = stored_config(study.user_attrs, "optimize_config").get("search_space")
    if not isinstance(raw, dict) or not raw:
        raise HpoError(
            f"study {study.study_name!r} has no stored search space (user attr 'optimize_config'): it was not "
            f"created by hpotool optimize, which stores the ranges audit, refine and prune-audit --against read; "
            f"hpotool report {study_options(study)} draws its importances and figures, and "
            f"prune-audit (without --against) reads its pruned trials"
        )
    try:
        return {name: _PARAM.validate_python(spec) for name, spec in raw.items()}
    except ValidationError as exc:
        raise HpoError(f"study {study.study_name!r}: its stored search space is invalid: {exc}") from None


def stored_space_or_none(study_attrs: Mapping[str, Any]) -> dict[str, Param] | None:
    """The search space hpotool stored in `study_attrs` (a study's user attrs), validated; None where there
    is none or it is invalid (a plain Optuna study, or an old one), for what only says more with it."""
    from hpotool.fingerprint import stored_config

    raw = stored_config(study_attrs, "optimize_config").get("search_space")
    if not isinstance(raw, dict) or not raw:
        return None
    try:
        return {name: _PARAM.validate_python(spec) for name, spec in raw.items()}
    except ValidationError:
        return None


def shadowed_keys(space: dict[str, Param]) -> list[str]:
    """For each key searched below a section searched whole, without a condition (`optimizer.lr` beside
    `optimizer`): the choices that set it too, whose value no trial trained, since the searched key applies
    after the chosen section."""
    from hpotool.sections import SECTIONS

    out = []
    for name, p in space.items():
        section, _, key = name.partition(".")
        whole = space.get(section)
        if (
            section not in SECTIONS
            or not key
            or "." in key
            or p.when
            or not isinstance(whole, CategoricalParam)
        ):
            continue
        setting = [c for c in whole.choices if isinstance(c, dict) and key in c]
        if setting:
            shown = ", ".join(format_choice(c) for c in setting)
            out.append(
                f"{name} is searched below {section} and applies after the chosen section: the {key} that "
                f"{shown} {'sets' if len(setting) == 1 else 'set'} never trained; every trial trained its "
                f"{name}."
            )
    return out
