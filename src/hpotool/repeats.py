"""Trials that repeated a configuration an earlier trial of the study already ran, as the sampler proposed it
(a trial queued with its values on purpose, by `enqueue:`, --enqueue-from, refine's warm start or a retry, is
no sampler's repeat): each trained it again, teaching the sampler nothing. Said at the end of a run and by
`hpotool audit`, where it happened (the start-of-run note, `space_notes.repeat_notes`, says only where it is
likely)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

_SHOWN = 5  # pairs named; the rest as "..."

# System attrs of a trial queued with its values (`study.enqueue_trial`, hpotool's own queues, Optuna's retry
# of a failed or stale trial): it ran them because someone asked, not because the sampler proposed them
_QUEUED = ("fixed_params", "failed_trial")


def queued(trial: FrozenTrial) -> bool:
    """Whether `trial` ran values queued for it (`_QUEUED`) rather than ones its sampler proposed."""
    return any(key in trial.system_attrs for key in _QUEUED)


def repeated_trials(trials: Iterable[FrozenTrial], study_attrs: dict[str, Any]) -> list[tuple[int, int]]:
    """(trial, the earlier trial it repeated) for each finished trial (complete or pruned) the sampler drew
    (not `queued`) whose parameters equal an earlier finished one's (queued or not), both run under the same
    base run config (an --allow-changed-config in between makes the same values another experiment), in
    trial order."""
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
        if key not in first:
            first[key] = t.number
        elif not queued(t):
            pairs.append((t.number, first[key]))
    return pairs


def _same_result(a: FrozenTrial, b: FrozenTrial) -> bool:
    """Whether `a` and `b` measured the same: their values where both completed, else their reports at the
    steps both reached (a pruner may stop one earlier); a pair with nothing to compare counts as the same."""
    if a.values is not None and b.values is not None:
        return all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a.values, b.values, strict=False)
        )
    steps = a.intermediate_values.keys() & b.intermediate_values.keys()
    return all(
        math.isclose(a.intermediate_values[s], b.intermediate_values[s], rel_tol=1e-9, abs_tol=1e-12)
        for s in steps
    )


def repeats_note(trials: Iterable[FrozenTrial], study_attrs: dict[str, Any]) -> str | None:
    """The line saying which trials repeated a configuration already run, whether they measured what it had
    (a run that trains alike twice: the run config's seed, its own trainer), and what follows for the study's
    space and sampler, from its stored optimize config: over a finite space, grid or bruteforce (bruteforce
    alone where the sampler is grid, which repeats a conditional space's configurations) runs each
    configuration once; a continuous parameter rules both out. None where no trial repeated one."""
    trials = list(trials)
    pairs = repeated_trials(trials, study_attrs)
    if not pairs:
        return None
    by_number = {t.number: t for t in trials}
    differ = [n for n, m in pairs if not _same_result(by_number[n], by_number[m])]
    shown = ", ".join(f"#{n} = #{m}" for n, m in pairs[:_SHOWN]) + (", ..." if len(pairs) > _SHOWN else "")
    did = "trial repeated" if len(pairs) == 1 else "trials repeated"
    if not differ:
        result = "training it again for the same result"
    else:
        named = ", ".join(f"#{n}" for n in differ[:_SHOWN]) + (", ..." if len(differ) > _SHOWN else "")
        it = "it" if len(differ) == 1 else "they"
        result = (
            f"training it again; {named} measured another result than the trial {it} repeated, so training "
            f"with the same values does not reproduce a result here"
        )
    fix = _fix(study_attrs, [by_number[n] for n, _ in pairs], _across_processes(pairs, by_number))
    return f"{len(pairs)} {did} a configuration already run ({shown}), {result}{fix}"


def _process(trial: FrozenTrial) -> tuple[Any, ...] | None:
    """The process that ran `trial` (its `worker` record: host, PID namespace, pid), or None unrecorded."""
    who = trial.user_attrs.get("worker")
    return (who.get("host"), who.get("pidns"), who.get("pid")) if isinstance(who, dict) else None


def _across_processes(pairs: list[tuple[int, int]], by_number: dict[int, FrozenTrial]) -> list[int]:
    """The repeating trials of `pairs` that another process ran than the trial each repeated (both
    recorded): two processes whose samplers were seeded alike draw the same values."""
    return [
        n
        for n, m in pairs
        if None not in (a := _process(by_number[n]), b := _process(by_number[m])) and a != b
    ]


def _fix(study_attrs: dict[str, Any], repeats: list[FrozenTrial], across: list[int]) -> str:
    """What the study's space and sampler make of its `repeats`, as the note's last clause ("" where the
    study stored no search space: a plain Optuna study). With a continuous parameter, a repeat that drew it
    is the sampler's quirk, unless it ran in another process than the trial it repeated (`across`): then
    the likelier cause is two processes seeded alike; one that did not draw it lies where a `when:` left it
    out."""
    from hpotool.fingerprint import stored_config
    from hpotool.overrides import leaves
    from hpotool.param_values import value_count
    from hpotool.space_notes import configurations_text
    from hpotool.stored_space import stored_space_or_none

    space = stored_space_or_none(study_attrs)
    if space is None:
        return ""
    sampler = stored_config(study_attrs, "optimize_config").get("sampler")
    name = sampler.get("name") if isinstance(sampler, dict) else None
    # the stored run config's values: what the space's conditions on keys not searched read in its trials
    configurations = configurations_text(space, leaves(stored_config(study_attrs, "run_config")))
    if configurations is not None:
        runs = "sampler bruteforce runs" if name == "grid" else "sampler grid or bruteforce runs"
        return f"; the space holds {configurations}, and {runs} each of them once"
    continuous = [path for path, p in space.items() if value_count(p) is None]
    which = "the sampler" if name is None else f"sampler {name}"
    cannot = f"grid and bruteforce cannot run a space with a continuous parameter ({', '.join(continuous)})"
    if not all(any(path in t.params for path in continuous) for t in repeats):
        return f"; {cannot}: the configurations repeated are those a `when:` leaves it out of"
    others = ", ".join(other for other in ("tpe", "random") if other != name)  # not the one that repeated
    are = f"; as {', '.join(continuous)} {'is' if len(continuous) == 1 else 'are'} continuous, grid and "
    are += "bruteforce cannot run the space"
    # An exact repeat of a continuous value from another process: more likely two processes whose samplers
    # were seeded alike (as they were, before, when two resumed a study at once) than the sampler's own.
    seeded = "ran in another process than the trial it repeated: processes seeded alike draw the same values"
    if len(across) == len(repeats):
        return f"{are}, and each of these repeats {seeded}, the likelier cause than {which}"
    own = f"{which}'s own doing: another sampler ({others}) draws each configuration afresh"
    if not across:
        return f"{are}, and these repeats are {own}"
    named = ", ".join(f"#{n}" for n in across[:_SHOWN]) + (", ..." if len(across) > _SHOWN else "")
    return f"{are}; {named} {seeded}, and the other repeats are {own}"
