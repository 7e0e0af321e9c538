"""Every searched key's mistake told in one run: an optimize config whose search space fails validation for
some keys (`low: 0.5, high: 0.0`) is checked again without them against the run config, so a misspelt path
of another key (`optimizer.lrr`) is told beside them, a line each in the order of the keys, rather than on
the next run. Anything else that fails (another section of the file, the run config, the data) leaves the
validation's lines as they were."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hpotool.config import OptimizeConfig
from hpotool.errors import HpoError
from hpotool.nested_space import flatten_space
from hpotool.yamlfile import read_yaml_mapping


def keys_of_lines(lines: Iterable[str], source: str, keys: Iterable[str]) -> list[str] | None:
    """The search-space key each `source: search_space.KEY...` line is about (the longest of `keys` it
    names: model.hidden.0 before model.hidden), or None where a line names none."""
    prefix = f"{source}: search_space."
    ordered = sorted(keys, key=len, reverse=True)
    found: list[str] = []
    for line in lines:
        rest = line.removeprefix(prefix) if line.startswith(prefix) else None
        key = next((k for k in ordered if rest is not None and rest.startswith((f"{k}:", f"{k}."))), None)
        if key is None:
            return None
        found.append(key)
    return found


def with_other_keys(
    exc: HpoError,
    path: Path,
    validate: Callable[[dict[str, Any]], OptimizeConfig],
    check: Callable[[OptimizeConfig], object],
) -> HpoError:
    """`exc`, the validation error of the optimize config at `path`, with the lines of the keys it left
    unchecked: where each of its lines is a search-space key's, the file less those keys is validated again
    (`validate`) and checked (`check`, the checks against the run config); the lines that check gives for
    the other keys join `exc`'s, in the order of the keys in the file. `exc` alone otherwise."""
    source = str(path)
    lines = str(exc).splitlines()
    try:
        raw = read_yaml_mapping(path)
        space = flatten_space(raw.get("search_space"))
    except (HpoError, ValueError):
        return exc
    if not isinstance(space, dict):
        return exc
    refused = keys_of_lines(lines, source, space)
    others = {k: v for k, v in space.items() if refused is not None and k not in refused}
    if refused is None or not others:
        return exc
    try:
        checked = validate({**raw, "search_space": others})
    except HpoError:  # the others need the refused keys (a condition on one): told once they are fixed
        return exc
    try:
        check(checked)
    except HpoError as more:  # only lines of the other keys join: anything else is left to the next run
        more_lines = str(more).splitlines()
        more_keys = keys_of_lines(more_lines, source, others)
        if more_keys is None:
            return exc
        by_key = list(zip(refused, lines, strict=True)) + list(zip(more_keys, more_lines, strict=True))
        order = list(space)
        by_key.sort(key=lambda pair: order.index(pair[0]))  # stable: a key's own lines keep their order
        return HpoError("\n".join(line for _, line in by_key))
    return exc
