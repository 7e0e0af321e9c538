"""Turn a finished study into the next stage's configs: widen ranges whose best value sits on an edge,
narrow the others around the top trials, fix parameters that barely matter, and warm-start the next
study with the best trials so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpotool.audit import (
    MIN_EVIDENCE,
    AuditReport,
    as_trained,
    audit_study,
    trials_text,
)
from hpotool.conditions import holds
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.errors import HpoError
from hpotool.fingerprint import digest, earlier_base_trials, experiment
from hpotool.formatting import counted, format_value
from hpotool.importance import Basis, basis
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.param_findings import ParamFinding
from hpotool.param_values import contains
from hpotool.ranking import best_trials, is_feasible
from hpotool.search_space import CategoricalParam, Param, decode_params
from hpotool.sections import SECTIONS
from hpotool.stage_conditions import (
    drop_dead_conditions,
    drop_unkept_condition_values,
    pin_below_searched_sections,
)
from hpotool.stage_names import free_stage_name, next_study_name
from hpotool.stage_ranges import choice_text, narrow_range, range_text, value_text, widen_range, yaml_spec
from hpotool.stage_settings import carry_settings, stage_storage
from hpotool.stored_run import stored_run_config
from hpotool.stored_space import stored_space

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


ENQUEUE_TOP = 3


@dataclass
class Refinement:
    """The next stage: an OptimizeConfig and a RunConfig (both as validated plain data) and why."""

    study_name: str
    optimize: dict[str, Any]
    run: dict[str, Any]
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Evidence:
    """What the stage's ranges rest on: the study's audit, the trials it ranks, and their values."""

    report: AuditReport
    on: Basis  # the trials the audit's importances rest on: those that ran under the current base run config
    top: list[FrozenTrial]  # the best `keep_top` of them
    earlier: set[int]  # the study's trials that ran under an earlier one (`--allow-changed-config`): left out
    earlier_ranked: int  # how many of those the audit of every trial ranks
    best: FrozenTrial  # the best of `on`'s trials
    feasible: list[FrozenTrial]  # the complete trials that meet the constraints, under any base
    decoded: dict[int, dict[str, Any]]  # each trial's values by its number, list choices as lists
    at_best: RunConfig  # where a widened range must train: the config the best trial trained


def refine_study(
    study: optuna.Study,
    keep_top: float = 0.25,
    report: AuditReport | None = None,
    storage_url: str | None = None,
) -> Refinement:
    """The next stage of `study`: see the module docstring.

    Args:
        study: a finished single-objective study created by hpotool.
        keep_top: share of the trials the audit ranks (`hpotool.importance.basis`) whose values the
            narrowed ranges cover.
        report: its audit, when already computed.
        storage_url: the URL `study` was read from: the stage's storage where the stored one had its
            password replaced by `***`.
    """
    if not 0 < keep_top <= 1:
        raise HpoError(f"--keep-top must be in (0, 1], got {keep_top}")
    attrs = study.user_attrs  # read once: each read queries the storage
    current, earlier = _current_base_view(study, attrs)
    if report is None or earlier:  # one given (audit's) rests on every trial, an earlier base's among them
        report = audit_study(current, next_stage=False, notes=False)
    space = stored_space(study)
    run = stored_run_config(study)  # names a component that fails to import, or what else is wrong
    stored_opt = dict(attrs["optimize_config"])
    direction = study.direction.name.lower()
    evidence = _evidence(study, current, earlier, report, space, run, direction, keep_top)
    new_space, fixed, changes = _first_space(space, evidence)
    if not new_space:
        raise _nothing_left(study, space, fixed, changes, keep_top)
    pinned = pin_below_searched_sections(space, new_space, fixed, changes)
    stage_run = apply_overrides(run, fixed)
    changes = _settle_conditions(new_space, stage_run, fixed, changes)
    if not new_space:
        raise _nothing_left(study, space, fixed, changes, keep_top)
    ranked = len(evidence.on.trials)
    if evidence.earlier_ranked and ranked >= MIN_EVIDENCE and any(" narrowed " in c for c in changes):
        changes.append(
            f"narrowed the ranges around the top of the {trials_text(ranked)} that ran under the current "
            f"run config, leaving out the {evidence.earlier_ranked} that ran under an earlier one, before "
            f"--allow-changed-config changed it"
        )
    enqueue, left_out = _warm_start(evidence, direction, new_space, pinned)
    fit = "fits" if len(enqueue) == 1 else "fit"
    changes.append(
        f"enqueued the {counted(len(enqueue), 'best trial')} that {fit} the new space as a warm start"
    )
    if left_out:
        shown = ", ".join(f"#{n}" for n in left_out)
        changes.append(
            f"left out of the warm start {counted(len(left_out), 'trial')} ({shown}) that ran under an earlier "
            f"run config, before --allow-changed-config changed it: under the one the stage trains with they "
            f"would not reproduce their values"
        )
    n_trials = _room_for_new_trials(stored_opt.get("n_trials"), len(enqueue), changes)
    carry_settings(stored_opt, stage_run, new_space, changes, space)
    name = next_study_name(study.study_name)
    optimize = {
        **stored_opt,
        "study_name": name,
        "storage": stage_storage(stored_opt.get("storage"), storage_url),
        "search_space": {k: yaml_spec(p) for k, p in new_space.items()},
        "enqueue": enqueue,
        "n_trials": n_trials,
    }
    validated = OptimizeConfig.model_validate(optimize)  # what `hpotool optimize` will load
    free = free_stage_name(name, validated.storage, digest(experiment(stage_run, validated)), changes)
    if free != name:  # the study name is no part of the experiment: the same configs under another name
        name, validated = free, validated.model_copy(update={"study_name": free})
    return Refinement(
        name,
        validated.model_dump(mode="json", exclude_defaults=False),
        stage_run.model_dump(mode="json"),
        changes,
    )


def _current_base_view(study: optuna.Study, study_attrs: dict[str, Any]) -> tuple[optuna.Study, set[int]]:
    """`study` as far as its trials that ran under its current base run config go, which the stage trains
    with (`study` itself where every trial did), and the numbers of those that did not. A study resumed with
    --allow-changed-config ranked its earlier trials by values the current base would not reproduce: the
    stage's edges, importances, fixed values and top trials rest on the others alone (before, its narrowed
    ranges and warm start did, but its widened edges, importances and a negligible parameter's fixed value
    came from every trial).

    Raises:
        HpoError: where no trial that ran under the current base completed and met the constraints.
    """
    from optuna.trial import TrialState

    from hpotool.snapshot import StudySnapshot

    trials = study.get_trials(deepcopy=False)
    earlier = set(earlier_base_trials(study_attrs, trials))
    if not earlier:
        return study, earlier
    view = StudySnapshot(study, [t for t in trials if t.number not in earlier])
    complete = view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not any(is_feasible(t) for t in complete):
        from hpotool.storage import study_options

        meet = " and met the constraints" if complete else ""
        raise HpoError(
            f"study {study.study_name!r}: no trial that ran under its current run config completed{meet}; refine "
            f"builds the next stage from those alone, as the {counted(len(earlier), 'trial')} before "
            f"--allow-changed-config changed it would not reproduce their values under it: run more trials first "
            f"(hpotool optimize {study_options(study)} --n-trials {len(trials) + 10}, say)"
        )
    return view, earlier


def _evidence(
    study: optuna.Study,
    current: optuna.Study,
    earlier: set[int],
    report: AuditReport,
    space: dict[str, Param],
    run: RunConfig,
    direction: str,
    keep_top: float,
) -> _Evidence:
    """The trials the stage narrows around and warm-starts with, and the config the best trial trained.
    `current`: `study` as far as its trials that ran under the current base run config go, the `earlier`
    ones left out (`_current_base_view`), which the stage trains with, and which `report` audits: ranges
    narrow around its top trials, and its best trial is the one a widened range trains at; a trial started
    before an --allow-changed-config that changed the base ranked by values that base would not reproduce
    (as the warm start leaves it out)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # every base's: the warm start names those it leaves out
    feasible = [t for t in complete if is_feasible(t)]
    on = basis(current)
    earlier_ranked = sum(t.number in earlier for t in basis(study).trials) if earlier else 0
    top = on.top(direction, keep_top)
    best = best_trials(current)[0]
    decoded = {t.number: decode_params(t.params, space) for t in [*top, *feasible]}  # list choices as lists
    at_best = as_trained(run, decode_params(best.params, space)) or run  # where a widened range must train
    return _Evidence(report, on, top, earlier, earlier_ranked, best, feasible, decoded, at_best)


def _first_space(
    space: dict[str, Param], evidence: _Evidence
) -> tuple[dict[str, Param], dict[str, Any], list[str]]:
    """The stage's search space and fixed values, as each parameter's finding decides, with a change line
    for each parameter; before conditions and sections are settled on what the stage fixes."""
    by_name: dict[str, ParamFinding] = {f.name: f for f in evidence.report.params}
    new_space: dict[str, Param] = {}
    fixed: dict[str, Any] = {}
    changes: list[str] = []
    # searched where their own condition may fail: absent from such trials, where a condition on them fails
    # too (a value fixed on one was set where the study never set it)
    sometimes_absent: set[str] = set()
    for name, p in space.items():
        unsettled = [  # fixed failing it: kept, for `_settle_conditions` to remove with its reason
            path
            for path, condition in (p.when or {}).items()
            if not _always_holds(condition, new_space.get(path))
            or path in sometimes_absent
            or (path in fixed and not holds(condition, fixed[path]))
        ]
        param, value, change = _next_param(name, p, by_name[name], evidence, unsettled)
        if param is None:
            fixed[name] = value
        else:
            new_space[name] = param
            if unsettled:
                sometimes_absent.add(name)
        changes.append(change)
    return new_space, fixed, changes


def _always_holds(condition: Any, searched: Param | None) -> bool:
    """Whether `condition` holds in every trial of the stage, on a parameter it searches (`searched`; None:
    one it does not search, whose value the stage's run config holds): for a categorical, all its choices meet
    it; for a range, an order test (`ge`, `gt`, `le`, `lt`) holds at both ends, a `ne` names a number outside
    it, or the range is one value that meets it."""
    if searched is None:
        return True
    if isinstance(searched, CategoricalParam):
        return all(holds(condition, c) for c in searched.choices)
    test, operand = (
        next(iter(condition.items())) if isinstance(condition, dict) and len(condition) == 1 else ("", None)
    )
    if test == "ne" and isinstance(operand, int | float) and not isinstance(operand, bool):
        return not searched.low <= operand <= searched.high
    if not (holds(condition, searched.low) and holds(condition, searched.high)):
        return False
    return test in ("ge", "gt", "le", "lt") or searched.low == searched.high


def _next_param(
    name: str, p: Param, finding: ParamFinding, evidence: _Evidence, unsettled: list[str]
) -> tuple[Param | None, Any, str]:
    """What the stage does with parameter `name`: (its range widened, narrowed or kept, or None where it is
    fixed; the value fixed; the change line). `unsettled`: the parameters its condition reads that the stage
    still searches and that may fail it; with any, it is not fixed, as a value fixed in the run config would
    apply where the condition fails (`optimizer.momentum` under `optimizer.name: sgd` fixed into a run config
    of adam, which takes no momentum: refine failed; a user model's argument took it without a word)."""
    not_fixed = (
        f"not fixed: its condition on {', '.join(unsettled)}, still searched, may fail in a trial of the stage, "
        f"which a value fixed in the run config would reach"
    )
    values = [evidence.decoded[t.number][name] for t in evidence.top if name in t.params]
    if finding.edge is not None:  # before importance, as the audit advises: the best may lie beyond
        widened, change = widen_range(p, finding.edge, evidence.at_best, name)
        if finding.position is not None and not 0 <= finding.position <= 1:  # the space changed
            side = "below" if finding.edge == "low" else "above"
            change = change.replace(f"best at the {finding.edge} edge", f"best {side} the current range")
        return widened, None, change
    negligible = finding.negligible and name in evidence.best.params  # set in the best trial (None can be it)
    if negligible and not unsettled:
        change = (
            f"{name}: importance {finding.importance:.2f}; removed from the search, "
            f"fixed at {value_text(p, finding.best)}"
        )
        return None, finding.best, change
    param, value, change = _kept_or_narrowed(name, p, evidence, values, unsettled, not_fixed)
    if negligible and not_fixed not in change:
        change += f" (importance {finding.importance:.2f}, {not_fixed})"
    return param, value, change


def _kept_or_narrowed(
    name: str, p: Param, evidence: _Evidence, values: list[Any], unsettled: list[str], not_fixed: str
) -> tuple[Param | None, Any, str]:
    """`_next_param` for a parameter not widened, nor fixed as negligible."""
    on = evidence.on
    if on.tied:  # the "top" trials would be the first ones by number: a range around them means nothing
        return (
            p,
            None,
            (
                f"{name}: kept {range_text(p)}; the {trials_text(len(on.trials))} to rank all have the same value "
                f"({format_value(on.trials[0].value)}), so none is better to narrow around"
            ),
        )
    if len(on.trials) < MIN_EVIDENCE:
        earlier = evidence.earlier_ranked
        under = " ran under the current run config," if earlier else ","
        left_out = (
            f": the {earlier} that ran under an earlier one, before --allow-changed-config changed it, would "
            f"not reproduce their values"
        )
        few = f"too few to narrow by ({MIN_EVIDENCE} needed){left_out if earlier else ''}"
        return p, None, f"{name}: kept {range_text(p)}; {trials_text(len(on.trials))} to rank{under} {few}"
    if values:
        narrowed, value, change = narrow_range(p, name, values)
        if narrowed is None and unsettled:  # one choice, which applies only where the condition holds
            one = CategoricalParam.model_validate(p.model_dump() | {"choices": [value]})
            return (
                one,
                None,
                f"{name}: every top trial chose {choice_text(value)}; kept as its one choice ({not_fixed})",
            )
        return narrowed, value, change
    return p, None, f"{name}: no top trial sets it; kept {range_text(p)}"


class NothingLeft(HpoError):
    """refine's refusal of a stage that would fix every parameter: what it would do (`what`: "it fixes
    ..."), the command that trains the best trial, and the --keep-top that fixed a choice the top trials
    all made (None where none did). Audit gives its `advice` in place of advising refine."""

    def __init__(self, study_name: str, what: str, train: str, keep_top: float | None) -> None:
        self.what, self.train, self.keep_top = what, train, keep_top
        super().__init__(f"study {study_name!r}: {self.advice('--keep-top')}")

    def advice(self, keep_flag: str) -> str:
        """From "refine would leave nothing to search" on, naming the --keep-top option `keep_flag`."""
        keep = (
            ""
            if self.keep_top is None
            else f", or keep the choices the top trials did not all make with a larger {keep_flag} "
            f"({self.keep_top:g} now; 1 keeps them all)"
        )
        return (
            f"refine would leave nothing to search: {self.what}; train the best trial as it is with {self.train}"
            f"{keep}"
        )


def _nothing_left(
    study: optuna.Study, space: dict[str, Param], fixed: dict[str, Any], changes: list[str], keep_top: float
) -> NothingLeft:
    """The refusal of a stage that would fix every parameter (or drop it, its condition no longer able to
    hold): what it fixes, that the best trial is ready to train, and, where the top trials' one choice
    fixed a parameter, the --keep-top that keeps the other choices."""
    from hpotool.storage import study_options

    parts = (
        [f"fixes {'; '.join(f'{n} at {value_text(space[n], v)}' for n, v in fixed.items())}"] if fixed else []
    )
    dropped = [name for name in space if name not in fixed]
    if dropped:
        parts.append(f"drops {', '.join(dropped)}, whose condition can no longer hold")
    chose = any(": every top trial chose " in c for c in changes)
    return NothingLeft(
        study.study_name,
        f"it {' and '.join(parts)}",
        f"hpotool train-from-best {study_options(study)}",
        keep_top if chose else None,
    )


def _settle_conditions(
    space: dict[str, Param], stage_run: RunConfig, fixed: dict[str, Any], changes: list[str]
) -> list[str]:
    """Settle the conditions of the stage's `space` (in place) on what it fixes: the values no longer
    searched dropped, and each parameter whose condition can no longer hold removed, its change line
    replacing the earlier one. Returns the change lines."""
    settled = {**leaf_values(stage_run), **{k: v for k, v in fixed.items() if k in SECTIONS}}
    drop_unkept_condition_values(space)
    for dropped in drop_dead_conditions(space, settled):  # replaces its earlier change
        param = dropped.split(":", 1)[0]
        changes = [c for c in changes if not c.startswith(f"{param}: ")] + [dropped]
    return changes


def _warm_start(
    evidence: _Evidence,
    direction: str,
    space: dict[str, Param],
    pinned: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[int]]:
    """The values of the best trials (`ENQUEUE_TOP` at most, each set once) that fit the stage's `space`,
    with each key `pinned` below a searched section at its one choice; and the numbers of those among the
    `ENQUEUE_TOP` best that are left out as they ran under another base run config than the study's current
    one (`--allow-changed-config`), which the stage trains with: there they would not reproduce their values.
    The best trials that ran under it take their place."""
    ranked = _best_first(evidence.feasible, direction)  # never a trial that broke the constraints
    current = [t for t in ranked if t.number not in evidence.earlier]
    kept = {t.number for t in current}
    left_out = [t.number for t in ranked[:ENQUEUE_TOP] if t.number not in kept]
    enqueue: list[dict[str, Any]] = []
    for t in current[:ENQUEUE_TOP]:
        params = {k: pinned.get(k, v) for k, v in evidence.decoded[t.number].items() if k in space}
        if params and all(contains(space[k], v) for k, v in params.items()) and params not in enqueue:
            enqueue.append(params)
    return enqueue, left_out


def _room_for_new_trials(n_trials: Any, warm: int, changes: list[str]) -> Any:
    """The stage's n_trials: the study's, unless its `warm` warm starts would take every trial (a study of as
    few trials as it warm-starts with: the stage only ran the same configurations again), then those plus
    the study's n_trials of new ones, with a change line saying so. A study run by timeout alone (None)
    keeps it."""
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or not warm or n_trials > warm:
        return n_trials
    changes.append(
        f"n_trials: {n_trials} -> {warm + n_trials}, as the {counted(warm, 'warm start')} would take "
        f"{'the one trial' if n_trials == 1 else f'all {n_trials} trials'} of the stage and run only "
        f"configurations already run: it runs {counted(n_trials, 'new trial')} after them"
    )
    return warm + n_trials


def _best_first(trials: list[Any], direction: str) -> list[Any]:
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(trials, key=lambda t: sign * float(t.value))
