"""Trials that repeated a configuration an earlier trial of the study already ran: each trained again for the
result it had (a trial trains with the run config's seed), teaching the sampler nothing. Said at the end of
a run and by `hpotool audit`, where it happened (the start-of-run note, `space_notes.repeat_notes`, says
only where it is likely)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

_SHOWN = 5  # pairs named; the rest as "..."


def repeated_trials(trials: Iterable[FrozenTrial], study_attrs: dict[str, Any]) -> list[tuple[int, int]]:
    """(trial, the earlier trial it repeated) for each finished trial (complete or pruned) whose parameters
    equal an earlier finished one's, both run under the same base run config (an --allow-changed-config
    in between makes the same values another experiment), in trial order."""
    from optuna.trial import TrialState

    from hpotool.fingerprint import config_of

    first: dict[str, int] = {}
    pairs = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or not t.params:
            continue
        key = json.dumps(
            [sorted(t.params.items()), config_of(study_attrs, t.number, "run_config")],
            sort_keys=True,
            default=str,
        )
        if key in first:
            pairs.append((t.number, first[key]))
        else:
            first[key] = t.number
    return pairs


def repeats_note(trials: Iterable[FrozenTrial], study_attrs: dict[str, Any]) -> str | None:
    """The line saying which trials repeated a configuration already run, and what runs each once (the
    study's sampler, from its stored optimize config, aside: a grid repeats a conditional space's
    configurations, which bruteforce runs once); None where none did."""
    from hpotool.fingerprint import stored_config

    sampler = stored_config(study_attrs, "optimize_config").get("sampler")
    name = sampler.get("name") if isinstance(sampler, dict) else None
    fix = "sampler bruteforce runs" if name == "grid" else "sampler grid or bruteforce runs"
    pairs = repeated_trials(trials, study_attrs)
    if not pairs:
        return None
    shown = ", ".join(f"#{n} = #{m}" for n, m in pairs[:_SHOWN]) + (", ..." if len(pairs) > _SHOWN else "")
    did = "trial repeated" if len(pairs) == 1 else "trials repeated"
    return (
        f"{len(pairs)} {did} a configuration already run ({shown}), training it again for the same result; "
        f"over a space this small, {fix} each configuration once"
    )
