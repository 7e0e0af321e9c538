"""A search space nested by RunConfig section (`optimizer: {lr: {type: float, ...}}`), turned into the
canonical dotted form (`optimizer.lr: {type: float, ...}`) as the optimize config loads."""

from __future__ import annotations

from typing import Any

# A search-space parameter's own keys (a mapping with `type` is a parameter; the others follow it).
PARAM_KEYS = frozenset({"type", "low", "high", "min", "max", "step", "log", "choices", "when"})


def _refuse_stray_param_keys(space: dict[str, Any], prefix: str) -> None:
    """A parameter's own key written one level out, after it (`high: 0.1` under `optimizer.lr:`, at its
    column): one line saying to indent it, instead of "optimizer.lr.high: required key is missing" and
    "search_space.high: expected a mapping ... a fixed value belongs in the run config"."""
    above: str | None = None
    strays: list[str] = []
    for key, value in space.items():
        is_param = isinstance(value, dict) and "type" in value
        if above is not None and key in PARAM_KEYS and not is_param:
            strays.append(key)
            continue
        if strays:
            break
        above = key if is_param else None
    if above is not None and strays:
        one = len(strays) == 1
        raise ValueError(
            f"{', '.join(strays)} after {prefix}{above} {'sits' if one else 'sit'} at the level of the parameters; "
            f"indent {'it' if one else 'them'} under {prefix}{above}: (in the column of its type:)"
        )


def flatten_space(space: Any, prefix: str = "") -> Any:
    """Turn a space nested by RunConfig section into the canonical dotted form.

    A mapping with a `type` key is a parameter; any other mapping is a section whose keys continue the path:
    `{optimizer: {lr: {type: float, ...}}}` becomes `{"optimizer.lr": {type: float, ...}}`.
    """
    if not isinstance(space, dict):
        return space
    _refuse_stray_param_keys(space, prefix)
    flat: dict[str, Any] = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "type" not in value:
            _refuse_stray_param_keys(
                value, f"{path}."
            )  # a section, nested: {optimizer: {lr: {...}, high: 0.1}}
        if (
            isinstance(value, dict)
            and "type" not in value
            and value
            and (
                all(isinstance(v, dict) for v in value.values())
                # a section that also holds a fixed value (name: sgd): that value is the mistake to report
                or (any(isinstance(v, dict) for v in value.values()) and not PARAM_KEYS & value.keys())
            )
        ):
            for sub_path, sub in flatten_space(value, f"{path}.").items():
                if sub_path in flat:
                    raise ValueError(f"parameter {sub_path!r} is given twice")
                flat[sub_path] = sub
        else:
            if path in flat:
                raise ValueError(f"parameter {path!r} is given twice")
            flat[path] = value
    return flat
