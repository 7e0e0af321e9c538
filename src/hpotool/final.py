"""The final run: the best trial(s) of a study, retrained under the study's `final:` rules.

Trials often train short on a subset; the final run trains the winning config longer, on everything,
over several seeds, so the user sees whether the best trial was luck. The rules come from the study's
stored OptimizeConfig (`final: {epochs, seeds, overrides}`); command-line flags override them.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

from hpotool.atomic import write_text
from hpotool.config import RunConfig
from hpotool.errors import HpoError
from hpotool.final_plan import Candidate, FinalPlan
from hpotool.overrides import apply_overrides
from hpotool.run_folders import FINAL_RUN_NAME

if TYPE_CHECKING:
    from hpotool.epoch import EpochResult
    from hpotool.run_folders import SavedRun


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


class FinalObserver(Protocol):
    """What a display needs to follow the final runs."""

    def run_started(self, label: str, cfg: RunConfig) -> None: ...
    def epoch_ended(self, result: EpochResult) -> None: ...
    def run_finished(self, label: str, run: SavedRun) -> None: ...


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
            match = FINAL_RUN_NAME.fullmatch(entry.name)
            if match is None or int(match[1]) not in order:
                continue
            k = order[int(match[1])]
            i = int(match[2]) - self.plan.candidates[k].config.seed
            if 0 <= i < self.plan.seeds and match[2] == str(int(match[2])):
                found.append((k, i))
        return [self._job(self.plan.candidates[k], i) for k, i in sorted(found)]


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
