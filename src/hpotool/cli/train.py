"""`hpotool train` and `hpotool train-from-best`: train and save one run config, or the best trials of a
study under its final: rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hpotool.cli.options import DeviceOpt, EpochsOpt, ReadStorageOpt, RunConfigOpt, StudyNameReq, out_option
from hpotool.cli.outputs import check_export_folder, refuse_stdout
from hpotool.cli.root import app, stoppable, user_errors
from hpotool.cli.terminal import err_console, escape, print_note
from hpotool.errors import HpoError
from hpotool.formatting import counted


@app.command(short_help="Train one run config and save the model.")
def train(
    run_config: RunConfigOpt,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the seed.")] = None,
    out: Annotated[
        Path | None,
        out_option(
            "a folder, e.g. --out runs/mine",
            "<dir>",
            "Run folder (default: runs/<project>/<timestamp>/).",
            folder_of="model.pt, metrics.json, history.csv, config.yaml",
        ),
    ] = None,
) -> None:
    """Train one run config outside any study; save model.pt, metrics.json, history.csv and config.yaml.

    Ctrl-C or SIGTERM stops training, says whether the run was saved and exits 130 or 143.
    """
    made: list[Path] = []  # the run folder, once known
    with stoppable(lambda: _say_run_interrupted(made, out)):
        _train(run_config, epochs, device, seed, out, made)


def _say_run_interrupted(made: list[Path], out: Path | None) -> None:
    """Whether an interrupted train saved its run."""
    if made and (made[0] / "config.yaml").exists():  # written last (saving defers a signal)
        said = f"the run was saved in {made[0]}"
    else:
        where = f" ({out} was not written)" if out is not None else ""
        said = f"training stopped before its end; nothing was saved{where}"
    err_console().print(f"interrupted: {escape(said)}", soft_wrap=True)


def _train(
    run_config: Path,
    epochs: int | None,
    device: str | None,
    seed: int | None,
    out: Path | None,
    made: list[Path],
) -> None:
    with user_errors():
        from hpotool.config_files import load_run_config
        from hpotool.formatting import format_params
        from hpotool.overrides import apply_overrides
        from hpotool.run_folders import check_run_dir, check_writable, default_runs_dir, new_run_dir
        from hpotool.saved import train_and_save

        refuse_stdout(out, "a run folder (model.pt, metrics.json, ...)", "a folder, e.g. --out runs/mine")
        cfg = load_run_config(run_config)
        changes = {
            k: v for k, v in {"epochs": epochs, "device": device, "seed": seed}.items() if v is not None
        }
        for key, value in changes.items():  # one at a time, so a refusal names its flag
            try:
                cfg = apply_overrides(cfg, {key: value})
            except HpoError as exc:  # "with device=gpu: device: must be ...": the flag names both
                detail = (
                    str(exc).removeprefix(f"with {format_params({key: value})}: ").removeprefix(f"{key}: ")
                )
                raise HpoError(f"--{key}: {detail}") from None
        from hpotool.device import device_name
        from hpotool.runner import check_run

        if device is not None:  # the flag wins over the file's device: a refusal names the flag
            device_name(cfg.device, "--device")
        if out is None:
            try:
                runs_dir = default_runs_dir(cfg)
            except HpoError as exc:
                raise HpoError(f"{run_config}: {exc}") from None
        for data_note in check_run(cfg, str(run_config)):  # labels 1..K, channels last: as optimize says
            print_note(data_note)
        if cfg.trainer is not None:
            from hpotool.user_trainer_checks import schedule_note

            if note := schedule_note(cfg):
                print_note(note)
        if out is not None:
            check_run_dir(out)
            folder: Any = out
            made.append(out)
        else:
            check_writable(runs_dir, out_given=False)  # before training, not once it is over

            def make_folder() -> Path:  # once training succeeds; the save makes it, with the run's files
                made[:] = [new_run_dir(runs_dir)]  # the next name, where another run took this one
                return made[0]

            folder = make_folder
        from hpotool.progress import RunProgress

        with RunProgress(err_console()) as progress:
            progress.run_started(f"{cfg.project} seed {cfg.seed}", cfg)
            run = train_and_save(cfg, folder, on_epoch_end=progress.epoch_ended, out_given=out is not None)
        from hpotool.cli.run_tables import print_run

        print_run(run)


@app.command("train-from-best", short_help="Export the best trial, then train and save it.")
def train_from_best(
    study_name: StudyNameReq,
    storage: ReadStorageOpt = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Train for N epochs, overriding final.epochs (default: final.epochs, else the trial's epochs).",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option("--seeds", min=1, help="Train seeds seed, seed+1, ... (default: final.seeds or 1)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k", min=1, help="Retrain the K best trials and rank them by their mean (default 1)."
        ),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(
            "--trial",
            min=0,
            help="Train this complete trial instead of the best (a Pareto trial of a multi-objective study).",
        ),
    ] = None,
    device: DeviceOpt = None,
    out: Annotated[
        Path | None,
        out_option(
            "a folder, e.g. --out runs/final",
            "<dir>",
            "Folder (default: runs/<project>/<timestamp>/).",
            folder_of="run folders and summary.json",
        ),
    ] = None,
) -> None:
    """export-best, then train the best trial (or the --top-k best, or the --trial given) under the study's
    final: rules.

    Ctrl-C or SIGTERM stops training, says which runs were saved and exits 130 or 143; the same command with
    the same --out trains only the runs not saved.
    """
    training: list[tuple[Any, Path]] = []  # the plan and its folder, once training starts
    with stoppable(lambda: _say_final_interrupted(training, out)):
        _train_from_best(study_name, storage, epochs, seeds, top_k, trial, device, out, training)


def _say_final_interrupted(training: list[tuple[Any, Path]], out: Path | None) -> None:
    """Which runs an interrupted train-from-best saved, and how to train the rest."""
    # Stopped before a run was saved, it said only that, not what to do (the advice came once one was saved).
    if not training:
        err_console().print(
            "interrupted: no run was trained or saved; run the same command to train", soft_wrap=True
        )
        return
    said = _final_saved(training, out)
    if said is None:
        from hpotool.final import final_jobs

        count = len(final_jobs(*training[0]))
        said = f"no run was saved; the same command trains {'it' if count == 1 else f'all {count}'}"
    err_console().print(escape(f"interrupted: {said}"), soft_wrap=True)


def _final_saved(training: list[tuple[Any, Path]], out: Path | None) -> str | None:
    """Which runs a stopped train-from-best saved, and how to train the rest; None when it saved none."""
    from shlex import quote

    from hpotool.final import final_jobs

    plan, folder = training[0]
    jobs = final_jobs(plan, folder)
    # Only the folders there are: looking up every job's was endless for --seeds 10**18 after a Ctrl-C.
    saved = sum((run_dir / "config.yaml").exists() for _, _, run_dir in jobs.existing())  # written last
    if not saved:
        return None
    again = "the same command" if out is not None else f"the same command with --out {quote(str(folder))}"
    return f"{saved} of {len(jobs)} runs saved in {folder} (summary.json not written); {again} trains only the rest"


def _train_from_best(
    study_name: str,
    storage: str | None,
    epochs: int | None,
    seeds: int | None,
    top_k: int | None,
    trial: int | None,
    device: str | None,
    out: Path | None,
    training: list[tuple[Any, Path]],
) -> None:
    """The body of `train-from-best`; `training` gets the plan and its folder once training starts."""
    with user_errors():
        if top_k is not None and trial is not None:  # before the study is opened: the flags alone decide
            raise HpoError(
                f"--top-k {top_k} --trial {trial}: --trial trains the one trial it names, --top-k the K best: "
                f"give one of them"
            )
        from hpotool.final_plan import plan_final
        from hpotool.study_lookup import find_study

        refuse_stdout(out, "run folders and summary.json", "a folder, e.g. --out runs/final")
        study = find_study(study_name, storage)
        from hpotool.import_hints import imports_for_study

        with imports_for_study(study):  # a module, or a data file, of the study's project elsewhere
            plan = plan_final(study, epochs=epochs, seeds=seeds, top_k=top_k or 1, device=device, trial=trial)
            saved = _check_final_folders(plan, study_name, device, out)
            exported = _export_best(study, study_name, storage)
            _print_final_notes(study, plan, top_k or 1, saved, out)
            summary = _train_final(plan, exported.folder, out, training)
        from hpotool.cli.run_tables import print_final

        print_final(summary)


def _check_final_folders(plan: Any, study_name: str, device: str | None, out: Path | None) -> dict[Path, Any]:
    """Refuse, before anything is written, a --device this machine lacks and an export or run folder this
    process cannot write; the runs --out holds saved already (not trained again)."""
    from hpotool.final import check_jobs
    from hpotool.run_folders import check_writable, default_runs_dir

    if device is not None:  # the flag wins over the study's device: a refusal names the flag
        from hpotool.device import device_name

        device_name(device, "--device")
    check_export_folder(study_name, None, "train-from-best")
    saved = check_jobs(plan, out)
    if out is None:  # made by the first run's save: one this process cannot write fails before training
        check_writable(default_runs_dir(plan.candidates[0].config), out_given=False)
    return saved


def _export_best(study: Any, study_name: str, storage: str | None) -> Any:
    """export-best's files, written and said, with the export's notes."""
    from hpotool.export import export_best as write_export
    from hpotool.storage_url import default_storage_url

    exported = write_export(study, storage or default_storage_url(study_name))
    what = "the Pareto front" if len(exported.metrics) > 1 else "the best trial"
    err_console().print(
        f"exported {what} to {escape(str(exported.folder))}", soft_wrap=True
    )  # the path whole
    for note in exported.notes:  # a study still running: the best so far
        print_note(note)
    return exported


def _print_final_notes(study: Any, plan: Any, top_k: int, saved: dict[Path, Any], out: Path | None) -> None:
    """The notes before training: fewer trials than --top-k, the plan's and the trainers' notes, the runs
    not trained again."""
    if len(plan.candidates) < top_k:
        from optuna.trial import TrialState

        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        count = len(plan.candidates)
        # it read "1 complete trial that meet ...; retraining those"
        meets = "meets" if count == 1 else "meet"
        meet = "" if complete == count else f" that {meets} its constraints (of {complete})"
        them = "it" if count == 1 else "those"
        print_note(f"the study has only {counted(count, 'complete trial')}{meet}; retraining {them}")
    from hpotool.user_trainer_checks import schedule_note

    notes = [schedule_note(c.config) for c in plan.candidates if c.config.trainer is not None]
    for note in dict.fromkeys(n for n in [*plan.notes, *notes] if n):  # once each, as optimize and train say
        print_note(note)
    if saved:
        names = ", ".join(p.name for p in saved)
        print_note(f"already saved in {out}, not trained again: {names}")


def _train_final(
    plan: Any, exported: Path, out: Path | None, training: list[tuple[Any, Path]]
) -> dict[str, Any]:
    """Train the plan's runs into --out, or a new folder under runs/ that the first run's save makes; the
    summary. A refused run says which runs before it were saved."""
    from hpotool.final import train_from_best as run_final
    from hpotool.progress import RunProgress
    from hpotool.run_folders import default_runs_dir, new_run_dir

    folder: Any = out
    if out is None:  # named and made by the first run's save (and runs/<project>), with that run in it
        runs_dir = default_runs_dir(plan.candidates[0].config)

        def name_folder() -> Path:  # the name free then: what a stopped command says it saved in
            training[:] = [(plan, new_run_dir(runs_dir))]
            return training[0][1]

        folder = name_folder
    try:
        training.append((plan, out if out is not None else new_run_dir(runs_dir)))  # until a save names it
        with RunProgress(err_console(), plan.metric) as progress:
            return run_final(plan, folder, progress, exported, out_given=out is not None)
    except BaseException as exc:
        if isinstance(exc, HpoError) and (said := _final_saved(training, out)):
            raise HpoError(f"{exc}; {said}") from exc.__cause__  # the runs before it are kept
        raise
