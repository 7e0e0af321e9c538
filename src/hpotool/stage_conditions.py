"""The next stage's search space kept whole once parameters are fixed: a key below a section still searched
whole stays as its one choice, and conditions drop the values no longer searched, or their parameter
where they can no longer hold."""

from __future__ import annotations

from typing import Any

from hpotool.condition_checks import can_hold
from hpotool.conditions import holds
from hpotool.param_values import contains
from hpotool.search_space import CategoricalParam, Param
from hpotool.sections import SECTIONS
from hpotool.stage_ranges import choice_text, range_text


def pin_below_searched_sections(
    space: dict[str, Param], new_space: dict[str, Param], fixed: dict[str, Any], changes: list[str]
) -> dict[str, Any]:
    """Keep each fixed key below a section the stage still searches whole (`optimizer.lr` beside `optimizer`)
    in `new_space` as its one choice, where `space` had it: in the stage's run config, every trial's choice
    would replace the section, and the fixed value with it. Updates `fixed`, `new_space` and the key's change
    in `changes`; returns the keys pinned so, with their values."""
    pinned = {k: fixed.pop(k) for k in list(fixed) if "." in k and k.partition(".")[0] in new_space}
    for name, value in pinned.items():
        new_space[name] = CategoricalParam(type="categorical", choices=[value], when=space[name].when)
        i = next(i for i, c in enumerate(changes) if c.startswith(f"{name}: "))
        changes[i] = changes[i].replace("removed from the search, fixed at", "fixed at") + (
            f", as its one choice: {name.partition('.')[0]} is searched whole, and each choice replaces the "
            f"section in the run config"
        )
    in_order = {k: new_space[k] for k in space if k in new_space}
    new_space.clear()
    new_space.update(in_order)
    return pinned


def drop_unkept_condition_values(space: dict[str, Param]) -> None:
    """In `space` (in place), drop from each condition on a parameter the stage still searches the values it
    no longer takes: `in: [{name: sgd}, {name: rmsprop}]` on a section searched whole where it keeps sgd and
    adam lists sgd alone, `in: [2, 3]` on `model.layers` narrowed to [1, 2] lists 2, and `ne: rmsprop` always
    holds, so goes (a condition naming a value its parameter never takes is refused before trial 0). An `in`
    left with none stays, for `drop_dead_conditions` to remove its parameter."""
    for name, p in list(space.items()):
        when = dict(p.when or {})
        for on, condition in p.when.items() if p.when else []:
            ref = space.get(on)
            if ref is None or not isinstance(condition, dict):
                continue
            ((test, operand),) = condition.items()
            if test == "in" and any(contains(ref, v) for v in operand):
                when[on] = {"in": [v for v in operand if contains(ref, v)]}
            elif test == "ne" and not contains(ref, operand):
                del when[on]
        if when != (p.when or {}):
            space[name] = type(p).model_validate(p.model_dump() | {"when": when or None})


def drop_dead_conditions(space: dict[str, Param], base: dict[str, Any]) -> list[str]:
    """Remove from `space` (in place, in order) each parameter whose `when` reads a value the stage no
    longer searches and that value fails it: its condition can never hold, so it would never be suggested
    (`optimizer.momentum` when `optimizer.name: sgd`, with `optimizer.name` fixed at adam), or a searched
    parameter none of whose values meets it (a categorical narrowed to adam and rmsprop, a range narrowed
    below the `ge:` of the condition: `hpotool optimize` refused the stage, the condition never holding). A condition on a
    whole section the stage fixes, which holds, is dropped: the stage's run config holds the section, which a
    condition cannot read (only a searched section)."""
    changes = []
    for name, p in list(space.items()):
        fixed_paths = {path: cond for path, cond in (p.when or {}).items() if path not in space}
        failed = [path for path, cond in fixed_paths.items() if not holds(cond, base.get(path))]
        unmet = {  # a condition on a searched parameter none of whose (narrowed) values meets it
            path: q
            for path, cond in (p.when or {}).items()
            if (q := space.get(path)) is not None and not can_hold(cond, q)
        }
        if failed or unmet:
            del space[name]
            reasons = ", ".join(
                [f"{path} is fixed at {choice_text(base.get(path))}" for path in failed]
                + [f"{path} is searched only over {_values(q)}" for path, q in unmet.items()]
            )
            changes.append(f"{name}: its condition can no longer hold ({reasons}); removed from the search")
        elif SECTIONS.keys() & fixed_paths:
            when = {path: cond for path, cond in (p.when or {}).items() if path not in SECTIONS} or None
            space[name] = type(p).model_validate(p.model_dump() | {"when": when})
    return changes


def _values(p: Param) -> str:
    """What a searched parameter takes, as a change line names it: `adam, rmsprop`; `[-999, -738] step 9`."""
    return ", ".join(map(choice_text, p.choices)) if isinstance(p, CategoricalParam) else range_text(p)
