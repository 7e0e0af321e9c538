"""A plain-language diagnosis of a finished study: which parameters matter, where their best values sit,
how much was pruned, and whether more trials are worth it.

Everything is computed from the study alone: the search space comes from the `optimize_config` hpotool
stores on every study, so `hpotool audit --study-name NAME` needs nothing else.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError
from hpotool.param_findings import ParamFinding, param_finding
from hpotool.search_space import Param, decode_params
from hpotool.storage import study_options
from hpotool.stored_space import shadowed_keys, stored_space

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from hpotool.config import RunConfig
    from hpotool.importance import Basis

NEGLIGIBLE = 0.05  # importance below this share: fix the parameter
TOP_SHARE = 0.10  # "top trials": the best 10% of complete trials (at least 3)
# Trials the importances and top trials must rest on before a parameter is fixed or narrowed by them: the
# top 10% that PED-ANOVA sets apart then holds three trials, the fewest the top trials ever take.
MIN_EVIDENCE = 30
# The advice to a study that no longer improves, unless refine would leave nothing to search
_REFINE = "refine the space (hpotool refine) rather than add trials."


@dataclass
class AuditReport:
    """The audit of one study, as data: the CLI prints it, reports embed its sentences."""

    study_name: str
    metric: str
    direction: str
    evaluator: str
    basis: str  # the trials the importances and top trials rest on
    basis_trials: int  # how many: fewer than MIN_EVIDENCE, and nothing is fixed or narrowed by them
    complete: int
    feasible: int  # complete trials that meet the constraints (all of them in a study without any)
    pruned: int
    failed: int
    median_prune_epoch: float | None
    planned_epochs: int | None  # the pruned trials' planned epochs, when the same for all (else None)
    best_value: float | None
    improving: bool | None
    improvement: str
    params: list[ParamFinding] = field(default_factory=list)
    importance_note: str | None = None
    shadowed: list[str] = field(default_factory=list)  # choice keys a key searched below replaced
    mixed_bases: str | None = None  # where the trials ranked ran under different base run configs
    repeats: str | None = None  # trials that repeated a configuration already run (`hpotool.repeats`)

    @property
    def findings(self) -> list[str]:
        """The audit as short sentences, most useful first."""
        out = [p.advice for p in self.params if p.advice] + self.shadowed
        if self.pruned:
            # A count of epochs run (user_attrs epochs_run), not Optuna's step, which counts from 0
            # planned_epochs is None when the pruned trials planned different epochs (a changed config)
            of = f" of {self.planned_epochs}" if self.planned_epochs else ""
            when = (
                f", after a median of {self.median_prune_epoch:g}{of} epochs"
                if self.median_prune_epoch is not None
                else ""
            )
            out.append(f"{self.pruned} of {self.complete + self.pruned} finished trials were pruned{when}.")
        out.append(self.improvement)
        if self.repeats:
            out.append(f"{self.repeats}.")
        if self.basis_trials < MIN_EVIDENCE:
            out.append(
                f"the importances and top trials rest on {trials_text(self.basis_trials)}, too few to fix or narrow "
                f"parameters by (refine needs {MIN_EVIDENCE}); run more trials first."
            )
        if self.mixed_bases:
            out.append(self.mixed_bases)
        if self.importance_note:
            out.append(self.importance_note)
        return out

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = self.findings
        return data


def as_trained(run: RunConfig | None, params: dict[str, Any]) -> RunConfig | None:
    """`run` with a trial's decoded `params` applied: the config the trial trained, which a wider range of
    a key below a section searched whole is checked on (`optimizer.momentum` beside the drawn `{name: sgd}`,
    where the run config's adam takes no momentum); `run` where they do not apply (a changed config)."""
    if run is None:
        return None
    from hpotool.overrides import apply_overrides

    try:
        return apply_overrides(run, params, check_components=False)
    except HpoError:
        return run


def few_trials_caveat(n: int, *, several_objectives: bool = False) -> str | None:
    """What a reader of importances resting on `n` trials must know: below MIN_EVIDENCE (audit's and refine's
    threshold) the ranking is noise; None at or above it. A study of `several_objectives` is not told what
    audit and refine need: they refuse it at any count (its report said "audit and refine need 30")."""
    if n >= MIN_EVIDENCE:
        return None
    need = f"{MIN_EVIDENCE} or more" if several_objectives else f"audit and refine need {MIN_EVIDENCE}"
    return (
        f"these importances rest on {trials_text(n)}, too few to rank parameters by ({need}): run more trials "
        f"before reading them"
    )


def trials_text(n: int) -> str:
    """`1 trial`, `2 trials`."""
    return f"{n} trial" if n == 1 else f"{n} trials"


def _distinct(a: float, b: float) -> tuple[str, str]:
    """`a` and `b` to three digits, or to as many more as it takes to tell them apart (0.5011, 0.5012)."""
    for digits in range(3, 12):
        shown = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if shown[0] != shown[1] or a == b:
            return shown
    return f"{a!r}", f"{b!r}"


def _improvement(
    complete: list[FrozenTrial], direction: str, constrained: bool = False
) -> tuple[bool | None, str]:
    """Compare the best of the last third of `complete` (those that meet the constraints where the study
    has trials that break them: `constrained`) with the best before it."""
    if len(complete) < 6:
        one = len(complete) == 1
        kind = "complete trial" if one else "complete trials"
        if constrained:
            kind += " meets the constraints" if one else " meet the constraints"
        return None, f"only {len(complete)} {kind}: too few to tell whether the study still improves."
    ordered = sorted(complete, key=lambda t: t.number)
    cut = len(ordered) - len(ordered) // 3
    pick = min if direction == "minimize" else max
    before = pick(float(t.value or 0.0) for t in ordered[:cut])
    late = pick(float(t.value or 0.0) for t in ordered[cut:])
    better = late < before if direction == "minimize" else late > before
    late_text, before_text = _distinct(late, before)
    if better:
        return True, (
            f"still improving: the last third of trials found {late_text}, better than {before_text} before "
            f"it; more trials are likely worth it."
        )
    return False, (
        f"no longer improving: the best of the last third of trials ({late_text}) did not beat {before_text}; "
        f"{_REFINE}"
    )


def _planned_epochs(study: optuna.Study, trials: list[FrozenTrial]) -> set[int]:
    """The epochs each trial was to run, under the run config it ran with (`--allow-changed-config` may
    have changed them mid-study) or its own `epochs` parameter."""
    from hpotool.fingerprint import config_of

    attrs = study.user_attrs
    planned = set()
    for t in trials:
        base = config_of(attrs, t.number, "run_config")
        epochs = t.params.get("epochs", base.get("epochs") if base is not None else None)
        if isinstance(epochs, int):
            planned.add(epochs)
    return planned


def audit_study(
    study: optuna.Study,
    importances: dict[str, float] | None = None,
    *,
    next_stage: bool = True,
    notes: bool = True,
) -> AuditReport:
    """Audit a single-objective study created by hpotool (`importances`: when already computed). Where it no
    longer improves and `next_stage`, the advice is what refine will do with it (`_refine_advice`). Without
    `notes` (refine, which reads the parameters' findings alone), the mixed-bases and repeats notes are left
    out, sparing their reads of every trial.

    Raises:
        HpoError: for a multi-objective study, a study without a stored space, or no complete trial.
    """
    from optuna.trial import TrialState

    from hpotool.fingerprint import stored_config
    from hpotool.importance import EVALUATOR, basis
    from hpotool.ranking import best_trials, is_feasible, no_best_error
    from hpotool.repeats import repeats_note

    _refuse_several_objectives(study)
    space = stored_space(study)
    opt = stored_config(study.user_attrs, "optimize_config")
    direction = study.direction.name.lower()
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if not complete:
        raise no_best_error(study)  # what there is instead, and what to do
    best = best_trials(study)[0]  # meets the constraints; a clear error when none does
    feasible = [t for t in complete if is_feasible(t)]  # all of them in a study without constraints
    on = basis(study)  # in a pruned study with few complete trials: the trials as of an earlier epoch
    importances, note = _importances(study, on, importances)
    top = on.top(direction, TOP_SHARE)
    findings = _param_findings(space, best, importances, on, top, _stored_run(study))
    median_prune_epoch, planned_epochs = _prune_epochs(study, pruned)
    improving, improvement = _improvement(feasible, direction, len(feasible) < len(complete))
    report = AuditReport(
        study_name=study.study_name,
        metric=str(opt.get("metric", "value")),
        direction=direction,
        evaluator=EVALUATOR,
        basis=on.describe(str(opt.get("metric", "value"))),
        basis_trials=len(on.trials),
        complete=len(complete),
        feasible=len(feasible),
        pruned=len(pruned),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        median_prune_epoch=median_prune_epoch,
        planned_epochs=planned_epochs,
        best_value=best.value,
        improving=improving,
        improvement=improvement,
        params=findings,
        importance_note=note,
        shadowed=shadowed_keys(space),
        mixed_bases=_mixed_bases(study, on) if notes else None,
        repeats=repeats_note(trials, study.user_attrs) if notes else None,
    )
    if next_stage and improving is False:
        report.improvement = _refine_advice(study, report)
    return report


def _mixed_bases(study: optuna.Study, on: Basis) -> str | None:
    """Where some of the trials `on` ranks ran under a base run config an --allow-changed-config has since
    replaced: that the audit rests on both bases, and that refine rests on the current one's alone."""
    from hpotool.fingerprint import earlier_base_trials

    earlier = len(earlier_base_trials(study.user_attrs, on.trials))
    if not earlier:
        return None
    return (
        f"{earlier} of the {trials_text(len(on.trials))} these findings rest on ran under an earlier run config, "
        f"before --allow-changed-config changed it, and would not reproduce their values under the current one; "
        f"refine builds the next stage from the {len(on.trials) - earlier} that ran under the current one alone."
    )


def _refine_advice(study: optuna.Study, report: AuditReport) -> str:
    """`report.improvement`, its advice to refine replaced by refine's own where refine would leave nothing to
    search (it said to refine a study refine then refused)."""
    from hpotool.refine import NothingLeft, refine_study

    try:
        refine_study(study, report=report)
    except NothingLeft as left:
        return report.improvement.replace(_REFINE, f"{left.advice('hpotool refine --keep-top')}.")
    except HpoError:  # another refusal: refine says it when run, as it would after any advice
        pass
    return report.improvement


def _refuse_several_objectives(study: optuna.Study) -> None:
    """Audit and refine rank trials by one objective: a multi-objective study is refused, its report named."""
    if len(study.directions) > 1:
        raise HpoError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; audit and refine work on "
            f"single-objective studies (hpotool report {study_options(study)} shows each "
            f"objective's importances and the Pareto front)"
        )


def _importances(
    study: optuna.Study, on: Basis, importances: dict[str, float] | None
) -> tuple[dict[str, float], str | None]:
    """The parameters' importances on the trials `on` (`importances` when already computed), and a note
    saying why there are none."""
    from hpotool.importance import param_importances

    if importances is not None:
        return importances, None
    try:
        return param_importances(study, on=on), None
    except ValueError as exc:
        return {}, f"parameter importances unavailable: {exc}."


def _stored_run(study: optuna.Study) -> RunConfig | None:
    """The run config stored on the study, which refine may widen a range to; None where a component in it
    fails to import (refine names it)."""
    from hpotool.stored_run import stored_run_config

    try:
        return stored_run_config(study, check_components=False)
    except HpoError:
        return None


def _param_findings(
    space: dict[str, Param],
    best: FrozenTrial,
    importances: dict[str, float],
    on: Basis,
    top: list[FrozenTrial],
    run: RunConfig | None,
) -> list[ParamFinding]:
    """What the audit finds for each searched parameter, most important first."""
    findings = []
    best_params = decode_params(best.params, space)  # a list choice as the list
    run = as_trained(run, best_params)  # a range is widened around the best trial's config
    for name, p in space.items():
        imp = importances.get(name)
        negligible = (
            imp is not None and imp < NEGLIGIBLE and len(importances) > 1 and len(on.trials) >= MIN_EVIDENCE
        )
        finding = param_finding(
            name, p, best, best_params.get(name), imp, negligible=negligible, tied=on.tied, top=top, run=run
        )
        findings.append(finding)
    findings.sort(key=lambda f: -(f.importance or 0.0))
    return findings


def _prune_epochs(study: optuna.Study, pruned: list[FrozenTrial]) -> tuple[float | None, int | None]:
    """The median epoch the pruned trials stopped at, and the epochs they planned when the same for all."""
    from hpotool.trial_table import epochs_count

    epochs = [epochs_count(t.user_attrs.get("epochs_run")) for t in pruned]
    known_epochs = [e for e in epochs if e is not None]
    planned = _planned_epochs(study, pruned)
    return (
        statistics.median(known_epochs) if known_epochs else None,
        planned.pop() if len(planned) == 1 else None,
    )


def audit_findings(study: optuna.Study, importances: dict[str, float] | None = None) -> list[str]:
    """The audit's findings as sentences, or the reason there are none (for reports)."""
    try:
        return audit_study(study, importances).findings
    except HpoError as exc:
        return [f"no audit: {exc}"]
