"""The names of the studies a storage holds, and a did-you-mean that leaves out a series named on purpose."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna


_NUMBER = re.compile(r"\d+")
# A trailing number or date, with the separator and version letter before it: _2, -v3, -2026-12-05, .1
_TRAILING_NUMBER = re.compile(r"[-_.]*[vV]?\d[\d\-_.:]*$")
# The letter refine gives a stage whose name an earlier refine's stage holds: digits_stage2b
_STAGE_LETTER = re.compile(r"(_stage\d+)[b-z]$")
# What parts a study name into words: digits_mlp, ws-pg.2
_WORD_SEPARATORS = re.compile(r"[-_.\s]+")


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
    """Whether `a` could be `b` mistyped: in any case, one edit (a character added, dropped, changed, or two
    swapped) per four characters, at most two, each word of the name (between `_`, `-`, `.`) still more than
    half its own letters. A name sharing a stem on purpose (digits_warm, digits_pfl, digits_mlp_stage2
    beside digits_mlp) is further off; digits_mpl, digts_mlp, digits-mlp and Digits_MLP are not. Nor is a
    short word of the name changed whole, the suffix that tells a series apart: walkb_k9 was told "did you
    mean walkb_fs?" (two edits of eight characters), run_x "did you mean run_1?"."""
    from hpotool.near_names import edit_distance

    a, b = a.casefold(), b.casefold()
    if edit_distance(a, b) > max(1, min(2, len(a) // 4)):
        return False
    words_a, words_b = _WORD_SEPARATORS.split(a), _WORD_SEPARATORS.split(b)
    if len(words_a) != len(words_b):  # digitsmlp, digits__mlp: a separator dropped or doubled
        return True
    return all(_mostly_kept(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y)


def _mostly_kept(x: str, y: str) -> bool:
    """Whether two words share more than half the longer one's letters (counted with repeats, in any order):
    digts and digits, mpl and mlp, gp2 and pg2, mlp and mlpx do; k9 and fs, fz and fs, x and 1, a and ab
    do not."""
    shared = sum((Counter(x) & Counter(y)).values())
    return 2 * shared > max(len(x), len(y))


def near_study(study_name: str, names: Iterable[str]) -> str:
    """` (did you mean 'NAME'?)` for a study whose name `study_name` could be mistyped from (`typo_of`) or,
    the only one, that starts with its words (`digits` for digits_mlp), leaving out the names of its series
    (`same_series`: `ws_pg` is no typo of `ws_pg3`, a new study named on purpose); "" when none is. Not a
    name that only shares a long part with it (mnist_2026-12-06 and cifar_2026-12-06, two names ending in
    one run id), which difflib alone rated close, nor one it starts with (digits_mlp for digits_mlp_stage2,
    a study not made yet), nor one that goes on with its last word (exp_ab for exp_a), nor one of several
    it is the start of (`digits` beside digits_mlp and digits_cnn): the line's list of the storage's
    studies names them."""
    from hpotool.near_names import did_you_mean

    names = [n for n in names if not same_series(study_name, n)]
    folded = study_name.casefold()
    starting = [
        n for n in names if (f := n.casefold()).startswith(folded) and _WORD_SEPARATORS.match(f, len(folded))
    ]
    typos = [n for n in names if typo_of(study_name, n)]
    return did_you_mean(study_name, typos or (starting if len(starting) == 1 else []), ignore_case=True)


# The studies a missing study's line names at most; `hpotool studies` lists them all.
LISTED_STUDIES = 12


def listed_names(names: list[str], lister: str) -> str:
    """`a, b, c` for the studies a storage holds, past `LISTED_STUDIES` the newest of them and how many more
    `lister` (the command listing them all) shows, or `none`: a storage of 2,000 studies made the line
    saying a study is missing 30,000 characters long."""
    if not names:
        return "none"
    more = len(names) - LISTED_STUDIES
    if more <= 0:
        return ", ".join(names)
    return f"{', '.join(names[-LISTED_STUDIES:])}, and {more} older, which {lister} lists"


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
