"""The report of a study as plain data (`report_info` -> `ReportInfo`): header, best trials, time, epochs,
importances, the figures planned, the pruning table; tests assert on it, and it is the JSON report's body."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from shlex import quote
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hpotool.audit import audit_findings, few_trials_caveat
from hpotool.durations import ended_unobserved, trial_end, trial_seconds, trial_start
from hpotool.epoch import diverged_in_an_epoch
from hpotool.fingerprint import config_of, stored_config
from hpotool.importance import EVALUATOR, Basis, basis, param_importances
from hpotool.optimize_sections import is_nop_pruner
from hpotool.pruning import pruned_rows
from hpotool.ranking import ranked_trials, state_counts
from hpotool.report_figures import FigureInfo, figure_infos, importance_target
from hpotool.trial_table import epochs_count, trial_params

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class ReportInfo:
    """Everything the report shows, as plain data."""

    study_name: str
    storage: str
    objectives: list[dict[str, str]]  # [{"name": metric, "direction": "maximize"}, ...]
    counts: dict[str, int]
    best: list[dict[str, Any]]  # the best trial, or the Pareto-optimal trials of a multi-objective study
    time: dict[str, float | None]
    epochs: dict[str, Any]
    versions: dict[str, str]  # those the study was created with
    evaluator: str
    importances: list[dict[str, float] | None]  # per objective; None when they cannot be computed
    reproduce: list[str]
    figures: list[FigureInfo]
    pruned: list[dict[str, Any]]
    pruner: dict[str, Any] | None = None
    audit: list[str] = field(default_factory=list)  # `hpotool audit`'s findings (single objective)
    importances_caveat: str | None = None  # set when the importances rest on fewer trials than audit trusts
    # the other versions later runs used (after an upgrade, on another machine): the study's `versions_run`
    later_versions: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _objectives(study: optuna.Study, opt: dict[str, Any]) -> list[dict[str, str]]:
    directions = [d.name.lower() for d in study.directions]
    if len(directions) == 1 and opt.get("metric"):
        return [{"name": str(opt["metric"]), "direction": directions[0]}]
    metrics = opt.get("metrics")
    names = (
        study.metric_names
        or (metrics if isinstance(metrics, list) and len(metrics) == len(directions) else None)
        or [f"objective {i}" for i in range(len(directions))]
    )
    return [{"name": n, "direction": d} for n, d in zip(names, directions, strict=True)]


def _epochs(
    study: optuna.Study, trials: list[FrozenTrial], run: dict[str, Any], pruner: dict[str, Any] | None
) -> dict[str, Any]:
    """Epochs the finished trials ran versus what they would have run without pruning (each under the run
    config it ran with: `--allow-changed-config` may have changed the epochs on the way), and the fraction
    pruning saved (None without a pruner: trials that diverged stopped early, but no pruner saved those).
    `not_recorded` says why the counts are None."""
    finished = [t for t in trials if t.state in FINISHED]

    def unknown(why: str) -> dict[str, Any]:
        return {"run": None, "planned": None, "saved_fraction": None, "not_recorded": why}

    if not run or any(epochs_count(t.user_attrs.get("epochs_run")) is None for t in finished):
        return unknown("not an hpotool study")
    attrs = study.user_attrs
    bases = [config_of(attrs, t.number, "run_config") or run for t in finished]
    # A training function that reports no epoch trains in a loop hpotool never sees: its 0 is no count. One
    # whose first report was NaN did report (its 0 epochs are a count): it said "reported no epochs" of them.
    if any(
        base.get("trainer") and not t.user_attrs.get("history") and not diverged_in_an_epoch(t.user_attrs)
        for t, base in zip(finished, bases, strict=True)
    ):
        return unknown("trainer.function reported no epochs, so hpotool cannot count them")
    ran = sum(t.user_attrs["epochs_run"] for t in finished)
    planned = sum(
        int(t.params.get("epochs", base.get("epochs", 0))) for t, base in zip(finished, bases, strict=True)
    )
    saved = 1 - ran / planned if planned and prunes(pruner) else None
    return {"run": ran, "planned": planned, "saved_fraction": saved, "not_recorded": None}


def prunes(pruner: dict[str, Any] | None) -> bool:
    """Whether a study's pruner section (None: several objectives, which nothing prunes) prunes at all."""
    return pruner is not None and not is_nop_pruner(str(pruner.get("name")))


def _time(trials: list[FrozenTrial]) -> dict[str, float | None]:
    durations = [s for s in map(trial_seconds, trials) if s is not None]
    # Trials whose worker died unobserved have no seconds: counted in none of the figures, but said.
    unobserved = sum(map(ended_unobserved, trials))
    # When hpotool recorded them (`durations`): Optuna's datetimes are whole seconds on MySQL
    starts = [s for s in map(trial_start, trials) if s is not None]
    # The last finish seen: a trial that ended unobserved ended when nothing recorded, not when found dead
    ends = [e for t in trials if not ended_unobserved(t) and (e := trial_end(t)) is not None]
    return {
        "trials_total_s": sum(durations) if durations else None,
        "per_trial_mean_s": statistics.fmean(durations) if durations else None,
        "wall_s": max(ends) - min(starts) if starts and ends else None,
        "unobserved": unobserved,
    }


def _best(study: optuna.Study, complete: list[FrozenTrial]) -> list[dict[str, Any]]:
    if not complete:
        return []
    best = ranked_trials(study)[:1] if len(study.directions) == 1 else study.best_trials
    attrs = study.user_attrs
    return [  # a list choice as the list, as best_params.json has it
        {
            "number": t.number,
            "values": t.values,
            "params": trial_params(attrs, t),
            "categorical": categorical(t),
            "lr": _lrs(t),
        }
        for t in best
    ]


def _versions(stored: Any) -> dict[str, str]:
    """The versions hpotool stored on the study (`{"hpotool": ..., "optuna": ..., "torch": ...}`); none where
    the attr is not such a mapping: a plain Optuna study's own `versions` attr ("1.2", a list) failed the
    report with a ValueError traceback."""
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _later_versions(stored: Any) -> list[dict[str, str]]:
    """The sets of versions later runs used where they differ from the creator's (`study.VERSIONS_RUN_ATTR`),
    as mappings; none where the attr is not a list (a study made before hpotool kept it)."""
    return [
        {str(k): str(v) for k, v in entry.items()}
        for entry in (stored if isinstance(stored, list) else [])
        if isinstance(entry, dict)
    ]


def categorical(trial: FrozenTrial) -> list[str]:
    """The trial's categorical parameters."""
    return [k for k, d in trial.distributions.items() if isinstance(d, CategoricalDistribution)]


def _lrs(trial: FrozenTrial) -> list[float]:
    """The lr each epoch of `trial` began with, from its history; empty where the history has none (a
    user's training function, or a study from before hpotool recorded it)."""
    history = trial.user_attrs.get("history") or []
    rows = [row for row in history if isinstance(row, dict)]
    if not rows or not all(isinstance(row.get("lr"), int | float) for row in rows):
        return []
    return [float(row["lr"]) for row in rows]


def report_info(study: optuna.Study, storage: str) -> ReportInfo:
    """The report of `study` as plain data (no plotting)."""
    from hpotool.storage_url import shown_url

    storage = shown_url(storage)  # the report is shared: no password in it
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    opt = stored_config(study.user_attrs, "optimize_config")
    run = stored_config(study.user_attrs, "run_config")
    objectives = _objectives(study, opt)
    on = basis(study)  # in a pruned study with few complete trials: the trials as of an earlier epoch
    importances, reasons = _importances(study, len(objectives), on)
    # audit's threshold: fewer trials rank parameters by noise (8 trials put optimizer.momentum first)
    several = len(objectives) > 1
    caveat = few_trials_caveat(len(on.trials), several_objectives=several) if any(importances) else None
    best = _best(study, complete)
    # A multi-objective study stores the default pruner section, but nothing prunes it (Trial.report is
    # single-objective): showing "pruner median" would say otherwise.
    pruner = opt.get("pruner") if len(objectives) == 1 else None
    # every pruned trial, those that diverged in a study of several objectives too: its report said "No trial
    # was pruned." over trials its counts gave as pruned
    rows = [r.as_dict() for r in pruned_rows(study, pruner)]
    return ReportInfo(
        study_name=study.study_name,
        storage=storage,
        objectives=objectives,
        counts=state_counts(trials),
        best=best,
        time=_time(trials),
        epochs=_epochs(study, trials, run, pruner),
        versions=_versions(study.user_attrs.get("versions")),
        later_versions=_later_versions(study.user_attrs.get("versions_run")),
        evaluator=EVALUATOR,
        importances=importances,
        reproduce=_reproduce(study, storage, trainable=bool(best and run), n_objectives=len(objectives)),
        figures=figure_infos(
            study, trials, objectives, importances, reasons, on.describe(objectives[0]["name"]), caveat
        ),
        pruned=rows,
        pruner=pruner,
        audit=audit_findings(study, importances[0]) if len(objectives) == 1 and complete else [],
        importances_caveat=caveat,
    )


def _importances(
    study: optuna.Study, n_objectives: int, on: Basis
) -> tuple[list[dict[str, float] | None], list[str | None]]:
    """Each objective's parameter importances over the trials `on`, or None and the reason they cannot be."""
    importances: list[dict[str, float] | None] = []
    reasons: list[str | None] = []
    for i in range(n_objectives):
        try:
            importances.append(param_importances(study, importance_target(study, i), on=on))
            reasons.append(None)
        except ValueError as exc:
            importances.append(None)
            reasons.append(f"importances cannot be computed: {exc}")
    return importances, reasons


def _reproduce(study: optuna.Study, storage: str, trainable: bool, n_objectives: int) -> list[str]:
    """The commands that train the best trial again; none without a best trial or a stored run config (`trainable`)."""
    names = f"--study-name {quote(study.study_name)} --storage {quote(storage)}"
    if not trainable:
        return []
    if n_objectives == 1:
        return [
            f"hpotool train-from-best {names}",
            f"(`hpotool export-best {names}` writes its run config, best_run.yaml, and best_params.json instead)",
        ]
    # A Pareto front has no one best trial: train-from-best trains the one picked
    folder = Path("studies") / study.study_name
    return [
        f"hpotool export-best {names}",
        f"(writes a run config for each Pareto-optimal trial, best_run_<trial>.yaml in {folder}/; train "
        f"the one you pick with `hpotool train-from-best {names} --trial <trial>`, under the study's final: "
        f"rules, or `hpotool train --run-config {quote(str(folder))}/best_run_<trial>.yaml`)",
    ]
