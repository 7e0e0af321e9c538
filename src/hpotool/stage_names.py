"""The next stage's study name: `<name>_stage2`, then `_stage3`, and a letter on where the storage already
holds a stage of that name with other configs (a study refined again after more trials)."""

from __future__ import annotations

import re
import string

from hpotool.errors import HpoError

# A stage's number and the letter a second refine of the same study gave it: `digits_stage2b`.
_STAGE = re.compile(r"(.*)_stage(\d+)[b-z]?")


def next_study_name(name: str) -> str:
    """`digits` -> `digits_stage2`, `digits_stage2` (or `digits_stage2b`) -> `digits_stage3`."""
    match = _STAGE.fullmatch(name)
    return f"{match.group(1)}_stage{int(match.group(2)) + 1}" if match else f"{name}_stage2"


def free_stage_name(name: str, storage: str | None, experiment_hash: str, changes: list[str]) -> str:
    """`name`, unless the stage's `storage` (None: `studies/<name>.db`) holds a study of that name with
    another experiment (configs whose fingerprint is not `experiment_hash`): then the first of `<name>b`,
    `<name>c`, ... that it does not. A study refined again after more trials got the name of the stage its
    first refine wrote, and `optimize` refused the new stage's configs as another experiment, after refine
    had said to run them. The same configs keep the name: their optimize resumes that stage. The change is
    added to `changes`."""
    taken: list[str] = []
    for letter in ("", *string.ascii_lowercase[1:]):
        candidate = name + letter
        stored = _stored_hash(candidate, storage)
        if stored is None or stored == experiment_hash:
            break
        taken.append(candidate)
    else:
        return name  # 25 stages of one name: optimize names the clash, and the fix
    if taken:
        held = " and ".join(taken)
        changes.append(
            f"study_name: {candidate}, as its storage holds {held}, {'a stage' if len(taken) == 1 else 'stages'} "
            f"with other configs (an earlier refine's), which optimize would not mix with these"
        )
    return candidate


def _stored_hash(study_name: str, storage: str | None) -> str | None:
    """The fingerprint of the study `study_name` in `storage` ('' for one without hpotool's), None where there
    is none: nothing is created."""
    from hpotool.fingerprint import ATTR
    from hpotool.storage import load_study

    try:
        study = load_study(study_name, storage)
    except HpoError:  # no such study, or no such file: the name is free
        return None
    stored = study.user_attrs.get(ATTR)
    return str(stored.get("hash", "")) if isinstance(stored, dict) else ""
