"""The names closest to a misspelt one, for "did you mean" (`closest`, `did_you_mean`, `edit_distance`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], n: int = 3, ignore_case: bool = False) -> list[str]:
    """The candidates that look most like `word`, best first; with `ignore_case`, compared in lower case
    (`pairds` finds `PairDS`), those that differ from `word` only in case first. Of two that look alike
    (difflib's ratio), the fewer edits away comes first: `digits_mpl` is `digits_mlp` with two letters
    swapped, where difflib alone, at a tie, put `digits_pfl` first for sorting after it."""
    if not ignore_case:
        return _ranked(word, list(candidates), n)
    lowered: dict[str, list[str]] = {}
    for name in candidates:
        lowered.setdefault(name.casefold(), []).append(name)
    key = word.casefold()
    near = ([key] if key in lowered else []) + [k for k in _ranked(key, list(lowered), n) if k != key]
    return [name for k in near for name in lowered[k]][:n]


def _ranked(word: str, candidates: list[str], n: int) -> list[str]:
    """The candidates difflib finds alike (ratio at least 0.6), as written or in lower case, best ratio first
    and, among equal ratios, fewest edits first. Case alone never hides the name meant: of a user's `Net` and
    `IntOut`, `nett` scored `IntOut` (0.6) above `Net` (0.57, for the capital N) and was told `IntOut`."""
    folded = word.casefold()

    def ratio(x: str) -> float:  # as get_close_matches measures it, the better of as written and lower case
        as_written = difflib.SequenceMatcher(None, x, word).ratio()
        return max(as_written, difflib.SequenceMatcher(None, x.casefold(), folded).ratio())

    scored = [(ratio(x), x) for x in candidates]
    near = [(r, x) for r, x in scored if r >= 0.6]
    near.sort(key=lambda rx: (-rx[0], edit_distance(folded, rx[1].casefold()), edit_distance(word, rx[1])))
    return [x for _, x in near[:n]]


def edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) between `a` and `b`: the optimal string
    alignment distance."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def did_you_mean(word: str, candidates: Iterable[str], ignore_case: bool = False) -> str:
    """`" (did you mean 'x'?)"`, or an empty string when nothing is close."""
    near = closest(word, candidates, n=1, ignore_case=ignore_case)
    return f" (did you mean {near[0]!r}?)" if near else ""
