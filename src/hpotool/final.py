"""The final run: the best trial(s) of a study, retrained under the study's `final:` rules.

Trials often train short on a subset; the final run trains the winning config longer, on everything,
over several seeds, so the user sees whether the best trial was luck. The rules come from the study's
stored OptimizeConfig (`final: {epochs, seeds, overrides}`); command-line flags override them.
"""

from __future__ import annotations

import os
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

from hpotool.atomic import write_text
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.config_fields import TORCH_SEEDS
from hpotool.errors import HpoError
from hpotool.formatting import format_params
from hpotool.optimize_sections import FinalConfig
from hpotool.overrides import apply_overrides, check_path, config_paths
from hpotool.sections import switchable

if TYPE_CHECKING:
    import optuna

    from hpotool.data import PreparedData
    from hpotool.epoch import EpochResult
    from hpotool.run_folders import SavedRun
    from hpotool.search_space import Param


_COMPONENTS = ("model", "optimizer", "scheduler", "loss")


def _path_error(path: str, valid: set[str]) -> str | None:
    try:
        check_path(path, valid)
    except HpoError as exc:
        return str(exc).removeprefix(f"search_space.{path}: ")
    return None


def unfit_overrides(
    run: RunConfig, space: Mapping[str, Param], overrides: Mapping[str, Any]
) -> dict[str, str]:
    """The paths of `overrides` that `run` has for no component a search of `space` may pick, each with why
    (`optimizer.momentum` where it picks adam or adamw)."""
    names = switchable(space)
    for section, name in _switched_to(overrides).items():
        names[section] = [*names.get(section, []), *name]
    valid = config_paths(run, names)
    return {path: problem for path in overrides if (problem := _path_error(path, valid))}


def _switched_to(overrides: Mapping[str, Any]) -> dict[str, list[str]]:
    """The component each section's `name` override switches to (`{"optimizer": ["sgd"]}`), whose arguments
    the overrides may set."""
    return {
        p.partition(".")[0]: [str(v)]
        for p, v in overrides.items()
        if p.endswith(".name") and component_arg(p)
    }


def component_arg(path: str) -> tuple[str, str] | None:
    """`(section, argument)` for a path to an argument of a component (`optimizer.momentum`), else None."""
    section, _, arg = path.partition(".")
    return (section, arg) if section in _COMPONENTS and arg and "." not in arg else None


def check_final(run: RunConfig, opt: OptimizeConfig, source: str, data: PreparedData | None = None) -> None:
    """Before trial 0: every `final.overrides` path exists (for some component the search may pick), and
    the overrides give a valid config on the base run, whose model, optimizer, schedule and loss (with
    `data`) build and train one step: a value only the component refuses would otherwise surface in
    `train-from-best`, after the study, stored on it. `final.epochs` is applied with them: a warm-up it
    leaves no run after is refused now too, unless the search sets the schedule (each trial's own)."""
    overrides = opt.final.overrides
    searched = any(path.partition(".")[0] == "scheduler" for path in opt.search_space)  # a key or all of it
    epochs = {} if opt.final.epochs is None or searched else {"epochs": opt.final.epochs}
    if not overrides and not epochs:
        return
    for path, problem in unfit_overrides(run, opt.search_space, overrides).items():
        raise HpoError(f"{source}: final.overrides.{path}: {problem}")
    # the base run's paths, and those of a component the overrides switch it to (scheduler.name: onecycle
    # with scheduler.max_lr: the argument was left out of this check, and failed in train-from-best instead)
    base = config_paths(run, _switched_to(overrides))
    on_base = {p: v for p, v in overrides.items() if _path_error(p, base) is None}
    try:
        config = apply_overrides(run, {**on_base, **epochs})
    except HpoError as exc:
        raise HpoError(f"{source}: {'final' if epochs else 'final.overrides'}: {exc}") from None
    other_data = any(p.startswith("data.") for p in on_base)
    if data is not None and other_data:  # the data the final runs train on: load it as train-from-best will
        from hpotool.data import data_failure, load_data

        try:
            data = load_data(config.data, config.loss.name)
        except Exception as exc:
            raise HpoError(f"{source}: final.overrides: {data_failure(config.data, exc)}") from None
    if data is not None and ("batch_size" in on_base or other_data):
        from hpotool.data import check_batch_size

        shown = format_params({k: v for k, v in on_base.items() if k.startswith("data.")})
        where = f"final.overrides: with {shown}: batch_size" if other_data else "final.overrides.batch_size"
        check_batch_size(config.batch_size, data, f"{source}: {where}")
    # final.epochs too: a schedule is built for the run's length (a step_size it leaves no decay after)
    if data is not None and (epochs or any(p.partition(".")[0] in _COMPONENTS for p in on_base)):
        from hpotool.errors import RunCheckError
        from hpotool.preflight import dry_run

        try:
            dry_run(config, data)
        except RunCheckError as exc:
            shown = format_params({**on_base, **epochs})
            raise HpoError(
                f"{source}: {'final' if epochs else 'final.overrides'}: with {shown}: {exc.detail}"
            ) from None


def _left_out_note(trial_config: RunConfig, path: str, whose: str) -> str | None:
    """The note for an override of a component argument (`optimizer.momentum`) the trial's component takes
    not; None for any other path."""
    part = component_arg(path)
    if part is None:
        return None
    section, arg = part
    name = getattr(trial_config, section).name
    return f"final.overrides.{path} left out: {whose} {section} {name} takes no {arg}"


def final_rules(study: optuna.Study) -> FinalConfig:
    """The `final:` section of the study's stored OptimizeConfig (empty when absent)."""
    from hpotool.fingerprint import stored_config

    data = stored_config(study.user_attrs, "optimize_config").get("final") or {}
    result: FinalConfig = validate_config(FinalConfig, data, f"study {study.study_name!r}: final")
    return result


def final_config(
    trial_config: RunConfig,
    rules: FinalConfig,
    *,
    epochs: int | None = None,
    device: str | None = None,
    where: str = "",
    whose: str = "the trial's",
) -> tuple[RunConfig, list[str]]:
    """The trial's config with the final overrides, then `final.epochs`, then the flags applied, and a note
    for each override left out: one for a component argument the trial's component (`whose`: "the best
    trial's") takes not, which `check_final` let through because another component the search may pick
    takes it (`optimizer.momentum` where the trial chose adam).

    Raises:
        HpoError: naming `where` (the study) and what the config does not accept: `final` (its overrides or
            epochs), or the flag (`--epochs 1`) where the final rules alone are accepted.
    """
    source = f"{where}: final" if where else "final"
    changes: dict[str, Any] = dict(rules.overrides)
    notes = []
    valid = config_paths(trial_config, _switched_to(rules.overrides))  # and the component they switch to
    for path in rules.overrides:
        problem = _path_error(path, valid)
        note = _left_out_note(trial_config, path, whose) if problem else None
        if problem and note is None:
            raise HpoError(f"{source}.overrides.{path}: {problem}")
        if note is not None:
            del changes[path]
            notes.append(note)
    if rules.epochs is not None:
        changes["epochs"] = rules.epochs
    flags = {k: v for k, v in (("epochs", epochs), ("device", device)) if v is not None}
    try:
        return apply_overrides(trial_config, {**changes, **flags}), notes
    except HpoError as exc:
        failure = exc
    if flags:  # a flag the user gave broke what the study's final rules accept: name the flag, not final
        try:
            apply_overrides(trial_config, changes)
        except HpoError:
            pass
        else:
            from shlex import quote

            given = " ".join(f"--{k} {quote(str(v))}" for k, v in flags.items())  # --device '', not --device
            shown = format_params({**changes, **flags})
            detail = str(failure).removeprefix(f"with {shown}: ")  # the flag names the values instead
            if len(flags) == 1:  # "--device gpu: device: must be ...": the flag names the key too
                detail = detail.removeprefix(f"{next(iter(flags))}: ")
            raise HpoError(f"{where}: {given}: {detail}" if where else f"{given}: {detail}") from None
    raise HpoError(f"{source}: {failure}") from None


@dataclass
class Candidate:
    """One trial retrained over seeds."""

    trial_number: int
    trial_value: float
    params: dict[str, Any]
    config: RunConfig
    runs: list[SavedRun] = field(default_factory=list)
    epochs_without_flag: int | None = None  # what `config.epochs` would be without --epochs (None: no flag)

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs]


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


class FinalObserver(Protocol):
    """What a display needs to follow the final runs."""

    def run_started(self, label: str, cfg: RunConfig) -> None: ...
    def epoch_ended(self, result: EpochResult) -> None: ...
    def run_finished(self, label: str, run: SavedRun) -> None: ...


@dataclass
class FinalPlan:
    """What `train_from_best` will train, checked before the first epoch."""

    study_name: str
    metric: str
    direction: str
    rules: FinalConfig
    seeds: int
    candidates: list[Candidate]
    requested_top_k: int
    notes: list[str] = field(default_factory=list)  # the final overrides left out, one line each


def plan_final(
    study: optuna.Study,
    *,
    epochs: int | None = None,
    seeds: int | None = None,
    top_k: int = 1,
    device: str | None = None,
    trial: int | None = None,
) -> FinalPlan:
    """Pick the `top_k` best complete trials that meet the study's constraints (or the one `trial` names,
    of a study of one objective or several) and build each one's final RunConfig (nothing is trained).
    With several objectives the plan ranks and shows the first metric (every metric's mean is in
    summary.json).

    Raises:
        HpoError: a study of several objectives without `trial` (it has no one best trial), or `trial`
            naming no trial, one not complete, or one that does not meet the study's constraints.
    """
    from hpotool.ranking import direction_names, no_best_error, objective_names, ranked_trials
    from hpotool.stored_run import not_hpotool_error, trial_run_config
    from hpotool.trial_table import trial_params

    if top_k < 1 or (seeds is not None and seeds < 1) or (epochs is not None and epochs < 1):
        raise HpoError("--top-k, --seeds and --epochs must be at least 1")
    if not isinstance(study.user_attrs.get("run_config"), dict):  # before the multi-objective advice, which
        raise not_hpotool_error(study)  # points to --trial for trials such a study has no run config of
    rules = final_rules(study)
    if trial is not None:
        ranked = [picked_trial(study, trial)]
    elif len(study.directions) > 1:
        raise _several_objectives_error(study)
    else:
        ranked = ranked_trials(study)
    if not ranked:
        raise no_best_error(study)
    where = f"study {study.study_name!r}"
    candidates, attrs, notes = [], study.user_attrs, []
    for i, t in enumerate(ranked[:top_k]):
        whose = "the best trial's" if i == 0 and trial is None else f"trial {t.number}'s"
        cfg, left_out = final_config(
            trial_run_config(study, t), rules, epochs=epochs, device=device, where=where, whose=whose
        )
        notes += left_out
        params = trial_params(attrs, t)
        unflagged = None if epochs is None else rules.epochs or trial_run_config(study, t).epochs
        value = float(t.values[0]) if t.values else 0.0  # the first objective's, as the plan ranks by it
        candidates.append(Candidate(t.number, value, params, cfg, [], unflagged))
    n_seeds = seeds if seeds is not None else rules.seeds or 1
    for c in candidates:  # seeds seed, seed+1, ...: the last one torch must take too
        if (last := c.config.seed + n_seeds - 1) > TORCH_SEEDS[1]:
            given = "--seeds" if seeds is not None else "final.seeds:"
            raise HpoError(
                f"{given} {n_seeds}: trial {c.trial_number}'s runs would take seeds {c.config.seed} to {last}, past "
                f"{TORCH_SEEDS[1]}, the largest torch.manual_seed takes; give {given} "
                f"{TORCH_SEEDS[1] - c.config.seed + 1} at most"
            )
    return FinalPlan(
        study_name=study.study_name,
        metric=objective_names(study)[0],
        direction=direction_names(study)[0],
        rules=rules,
        seeds=n_seeds,
        candidates=candidates,
        requested_top_k=top_k,
        notes=notes,
    )


def _several_objectives_error(study: optuna.Study) -> HpoError:
    """A study of several objectives has a Pareto front, no one best trial: name the front and --trial."""
    from hpotool.ranking import no_best_error
    from hpotool.storage import study_options

    front = sorted(t.number for t in study.best_trials)
    if not front:
        return no_best_error(study)
    them = "it" if len(front) == 1 else "them"
    return HpoError(
        f"study {study.study_name!r} has {len(study.directions)} objectives, so no one best trial to train: "
        f"give --trial N with the trial you pick from its Pareto front (trial{'s' * (len(front) > 1)} "
        f"{', '.join(map(str, front))}; hpotool trials {study_options(study)} lists {them} first)"
    )


def picked_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """The trial `--trial` names, which must be complete and meet the study's constraints.

    Raises:
        HpoError: one line, naming --trial: no such trial, a trial not complete, or one that violates the
            study's constraints.
    """
    from optuna.trial import TrialState

    from hpotool.ranking import is_feasible, no_best_error
    from hpotool.storage import study_options

    trials = study.get_trials(deepcopy=False)
    listed = f"hpotool trials {study_options(study)}"
    found = [t for t in trials if t.number == number]
    if not found:
        numbers = sorted(t.number for t in trials)
        span = (
            "it has no trials"
            if not numbers
            else f"its only trial is {numbers[0]}"
            if len(numbers) == 1
            else f"its trials are numbered {numbers[0]} to {numbers[-1]}"
        )
        raise HpoError(
            f"--trial {number}: study {study.study_name!r} has no trial {number} ({span}); {listed} --state "
            f"complete lists those it can train"
        )
    (t,) = found
    if t.state != TrialState.COMPLETE:
        raise HpoError(
            f"--trial {number}: trial {number} of study {study.study_name!r} is {t.state.name.lower()}, not "
            f"complete: only a complete trial can be trained as it ran; {listed} --state complete lists those "
            f"it can train"
        )
    if not is_feasible(t):
        if not any(is_feasible(c) for c in trials if c.state == TrialState.COMPLETE):
            raise HpoError(f"--trial {number}: {no_best_error(study)}")  # "lists those that do first": none
        broken = ", ".join(name for name, v in t.constraints.items() if v > 0)
        raise HpoError(
            f"--trial {number}: trial {number} of study {study.study_name!r} does not meet the study's "
            f"constraints ({broken}); {listed} lists those that do first"
        )
    return t


def rank_candidates(plan: FinalPlan) -> list[Candidate]:
    """Candidates best first by their mean final metric over seeds."""
    sign = -1.0 if plan.direction == "maximize" else 1.0
    return sorted(plan.candidates, key=lambda c: (sign * mean_std(c.values(plan.metric))[0], c.trial_number))


def summary_data(plan: FinalPlan, folder: Path, export_folder: Path | None) -> dict[str, Any]:
    """The contents of `summary.json`: every run's metrics, and mean ± std per candidate, ranked."""
    ranked = []
    for rank, c in enumerate(rank_candidates(plan), start=1):
        names = [k for k in c.runs[0].metrics] if c.runs else []
        stats = {}
        for name in names:
            mean, std = mean_std(c.values(name))
            stats[name] = {"mean": mean, "std": std}
        ranked.append(
            {
                "rank": rank,
                "trial_number": c.trial_number,
                "epochs": c.config.epochs,
                "trial_value": c.trial_value,
                "params": c.params,
                "mean": stats.get(plan.metric, {}).get("mean"),
                "std": stats.get(plan.metric, {}).get("std"),
                "metrics": stats,
                "runs": [
                    {
                        "seed": r.config.seed,
                        "folder": str(r.folder),
                        "metrics": r.metrics,
                        "seconds": r.seconds,
                    }
                    for r in c.runs
                ],
            }
        )
    return {
        "study_name": plan.study_name,
        "metric": plan.metric,
        "direction": plan.direction,
        "epochs": epochs.pop() if len(epochs := {c.config.epochs for c in plan.candidates}) == 1 else None,
        "seeds": plan.seeds,
        "top_k": len(plan.candidates),
        "final": plan.rules.model_dump(mode="json"),
        "folder": str(folder),
        "export": str(export_folder) if export_folder is not None else None,
        "candidates": ranked,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


Job = tuple[Candidate, RunConfig, Path]


class FinalJobs(Sequence[Job]):
    """Each training run of the plan, in order: its candidate, its RunConfig (seed set) and its folder,
    each built when it is reached. As a list, `train-from-best --seeds 99999999999999999999` built every
    job before the first trained: silent, and deaf to Ctrl-C, until killed."""

    def __init__(self, plan: FinalPlan, folder: Path) -> None:
        self.plan, self.folder = plan, folder

    def __len__(self) -> int:
        return len(self.plan.candidates) * self.plan.seeds

    @overload
    def __getitem__(self, index: int) -> Job: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Job]: ...
    def __getitem__(self, index: int | slice) -> Job | Sequence[Job]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._job(self.plan.candidates[index // self.plan.seeds], index % self.plan.seeds)

    def __iter__(self) -> Iterator[Job]:
        for c in self.plan.candidates:
            for i in range(self.plan.seeds):
                yield self._job(c, i)

    def _job(self, c: Candidate, i: int) -> Job:
        cfg = apply_overrides(c.config, {"seed": c.config.seed + i})
        return c, cfg, self.folder / f"trial{c.trial_number}-seed{cfg.seed}"

    def existing(self) -> list[Job]:
        """The jobs whose folder exists already (a run saved, or being saved, by an earlier command), in
        order: found from the folder's entries, not by looking up every job's."""
        if not os.path.isdir(self.folder):  # a name too long: check_run_path says so
            return []
        found: list[tuple[int, int]] = []
        order = {c.trial_number: k for k, c in enumerate(self.plan.candidates)}
        for entry in os.scandir(self.folder):
            match = _RUN_NAME.fullmatch(entry.name)
            if match is None or int(match[1]) not in order:
                continue
            k = order[int(match[1])]
            i = int(match[2]) - self.plan.candidates[k].config.seed
            if 0 <= i < self.plan.seeds and match[2] == str(int(match[2])):
                found.append((k, i))
        return [self._job(self.plan.candidates[k], i) for k, i in sorted(found)]


_RUN_NAME = re.compile(r"trial(\d+)-seed(-?\d+)")


def final_jobs(plan: FinalPlan, folder: Path) -> FinalJobs:
    """Each training run of the plan: its candidate, its RunConfig (seed set) and its folder (`FinalJobs`)."""
    return FinalJobs(plan, folder)


def _info(plan: FinalPlan, c: Candidate) -> dict[str, Any]:
    """What a final run's metrics.json says it came from."""
    return {"study_name": plan.study_name, "trial_number": c.trial_number}


def check_jobs(plan: FinalPlan, folder: Path | None) -> dict[Path, SavedRun]:
    """Every run of the plan can start: its folder (when one is given) holds no run, or the same run saved
    completely by an interrupted `train-from-best` (skipped), and its config passes `train`'s checks (the
    device, the data, one step), so a mistake stops the command before anything is written or trained.

    Returns:
        The runs already saved, by folder: a second `train-from-best` trains only the others.

    Raises:
        HpoError: a run folder holds a run of another config or study, or cannot be made; a run cannot start.
    """
    from hpotool.device import resolve_device
    from hpotool.run_folders import check_run_path, saved_run_of
    from hpotool.runner import check_run

    saved: dict[Path, SavedRun] = {}
    jobs = final_jobs(plan, folder if folder is not None else Path())
    existing = jobs.existing() if folder is not None else []
    if folder is not None:
        # The folders that exist, and each candidate's first and last (the shortest and longest names: one
        # too long is refused here), not every job's: a million seeds made a million looks before a run.
        ends = [jobs[k * plan.seeds + i] for k in range(len(plan.candidates)) for i in {0, plan.seeds - 1}]
        for c, cfg, run_dir in [*existing, *ends]:
            check_run_path(run_dir)  # before reading it: a name too long to look up is refused here
            if run_dir not in saved and (run := saved_run_of(run_dir, cfg, _info(plan, c))) is not None:
                saved[run_dir] = run
    saved_of = Counter(c.trial_number for c, _, p in existing if p in saved)
    for c in plan.candidates:  # each config once: its seeds differ in nothing the checks look at
        if saved_of[c.trial_number] == plan.seeds:  # every run of it saved: not trained again
            continue
        cfg = c.config
        where = f"{plan.study_name} trial {c.trial_number}"
        try:
            resolve_device(cfg.device)
        except HpoError as exc:  # the device the study ran on, which this machine lacks: the flag picks one
            detail = str(exc).partition("; use device:")[0]
            raise HpoError(f"{where}: {detail}; give --device auto (or cpu) to train it here") from None
        try:
            check_run(cfg, where)
        except HpoError as exc:
            raise _flag_error(c, cfg, where, exc) from None
    return saved


def _flag_error(c: Candidate, cfg: RunConfig, where: str, exc: HpoError) -> HpoError:
    """`exc`, naming --epochs where the run passes the checks with the epochs it has without the flag (a
    step schedule's step_size 3 under --epochs 2, which only building the schedule finds)."""
    from hpotool.runner import check_run

    if c.epochs_without_flag is None or c.epochs_without_flag == cfg.epochs:
        return exc
    try:
        check_run(apply_overrides(cfg, {"epochs": c.epochs_without_flag}), where)
    except HpoError:
        return exc
    return HpoError(f"{where}: --epochs {cfg.epochs}: {str(exc).removeprefix(f'{where}: ')}")


def train_from_best(
    plan: FinalPlan,
    folder: Path | Callable[[], Path],
    observer: FinalObserver | None = None,
    export_folder: Path | None = None,
    *,
    out_given: bool = True,
) -> dict[str, Any]:
    """Train every candidate with seeds seed, seed+1, ...; each run goes to
    `folder/trial<N>-seed<S>/`, and `folder/summary.json` ranks the candidates by their mean. A run the
    folder already holds, saved completely from the same config (`check_jobs`), is read back, not trained.
    `out_given`: whether the user chose `folder` (--out), which a failure to save names.

    `folder` a function (`saved.new_run_dir` of runs/<project>): the new folder is named when the first run
    is saved, which makes it with that run in it; a name another process took meanwhile (runs of another
    study saved into the same runs/<project>) moves the save on to the next name.

    Returns:
        The summary written to summary.json.
    """
    from hpotool.saved import train_and_save
    from hpotool.strict_json import dump_json

    chosen = folder if isinstance(folder, Path) else None
    saved = check_jobs(plan, chosen)  # every run can start before the first one trains
    for c, cfg, name in final_jobs(plan, Path()):
        run_dir = chosen / name if chosen is not None else None
        if run_dir in saved:
            c.runs.append(saved[run_dir])
            continue
        label = f"trial {c.trial_number} seed {cfg.seed}"
        if observer is not None:
            observer.run_started(label, cfg)
        on_epoch: Callable[[EpochResult], None] | None = observer.epoch_ended if observer else None
        # the new folder not named yet: the save names it and puts the run in its subfolder `name`
        where, inside = (run_dir, None) if run_dir is not None else (folder, str(name))
        try:
            run = train_and_save(
                cfg, where, on_epoch_end=on_epoch, info=_info(plan, c), out_given=out_given, inside=inside
            )
        except HpoError as exc:
            raise HpoError(f"{plan.study_name} {label}: {exc}") from exc.__cause__
        chosen = chosen if chosen is not None else run.folder.parent
        c.runs.append(run)
        if observer is not None:
            observer.run_finished(label, run)
    assert chosen is not None  # a new folder holds no saved run: the first job above trained and named it
    summary = summary_data(plan, chosen, export_folder)
    write_text(chosen / "summary.json", dump_json(summary))
    return summary
