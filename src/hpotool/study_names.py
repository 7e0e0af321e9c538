"""The names of the studies a storage holds, and a did-you-mean that leaves out a series named on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna


_NUMBER = re.compile(r"\d+")
# A trailing number or date, with the separator and version letter before it: _2, -v3, -2026-12-05, .1
_TRAILING_NUMBER = re.compile(r"[-_.]*[vV]?\d[\d\-_.:]*$")
# The letter refine gives a stage whose name an earlier refine's stage holds: digits_stage2b
_STAGE_LETTER = re.compile(r"(_stage\d+)[b-z]$")


def same_series(a: str, b: str) -> bool:
    """Whether two study names differ only in their numbers (run-12-01 and run-12-02, exp1 and exp10) or in
    a trailing number or date (exp and exp2, digits_mlp and digits_mlp_v2): a series named on purpose,
    where a did-you-mean on each new one is noise, as it is on the stage `hpotool refine` lettered beside an
    earlier one (digits_stage2 and digits_stage2b); a typo (digits_mpl, digts_mlp) is not one."""
    if _STAGE_LETTER.sub(r"\1", a) == _STAGE_LETTER.sub(r"\1", b):  # digits_stage2 and digits_stage2b
        return True
    return _NUMBER.sub("#", a) == _NUMBER.sub("#", b) or _TRAILING_NUMBER.sub("", a) == _TRAILING_NUMBER.sub(
        "", b
    )


def typo_of(a: str, b: str) -> bool:
    """Whether `a` could be `b` mistyped: one edit (a character added, dropped, changed, or two swapped)
    per four characters, at most two. A name sharing a stem on purpose (digits_warm, digits_pfl,
    digits_mlp_stage2 beside digits_mlp) is further off; digits_mpl, digts_mlp and digits-mlp are not."""
    from hpotool.near_names import edit_distance

    return edit_distance(a, b) <= max(1, min(2, len(a) // 4))


def near_study(study_name: str, names: Iterable[str]) -> str:
    """` (did you mean 'NAME'?)` for a study whose name `study_name` could be mistyped from (`typo_of`, in
    any case) or is the start of (`digits` for digits_mlp), leaving out the names of its series
    (`same_series`: `ws_pg` is no typo of `ws_pg3`, a new study named on purpose); "" when none is. Not a
    name that only shares a long part with it (mnist_2026-12-06 and cifar_2026-12-06, two names ending in
    one run id), which difflib alone rated close."""
    from hpotool.near_names import did_you_mean

    def near(name: str) -> bool:
        a, b = study_name.casefold(), name.casefold()
        return typo_of(a, b) or b.startswith(a) or a.startswith(b)

    return did_you_mean(study_name, [n for n in names if near(n) and not same_series(study_name, n)])


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies `storage` holds, oldest first. On a database, the names alone:
    `get_all_studies` reads every study's attributes too (hpotool's configs and fingerprint, ~2 KB a
    study), 3.5 s for 2,000 studies on PostgreSQL where the names take 27 ms."""
    from optuna.storages import RDBStorage

    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        return [s.study_name for s in storage.get_all_studies()]
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        query = session.query(models.StudyModel.study_name).order_by(models.StudyModel.study_id)
        return [name for (name,) in query.all()]
