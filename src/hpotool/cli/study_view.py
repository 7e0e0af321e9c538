"""What `optimize` prints: the plan of a dry run and the summary of a study."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from hpotool.cli.terminal import err_console, escape, print_keyed, print_note, shown_url
from hpotool.formatting import counted, format_param, format_params, format_value

if TYPE_CHECKING:
    from hpotool.plan import StudyPlan
    from hpotool.summary import StudySummary


def print_plan(plan: StudyPlan, as_json: bool, done: int | None = None, *, complete: bool = False) -> None:
    """What `optimize --dry-run` checked and would run (the storage is not written): `done`, the finished
    trials the study holds already (None: not read, a server's); `complete`, whether its grid or brute-force
    search has run every point (the run then runs nothing)."""
    opt = plan.opt
    to_run = None if opt.n_trials is None or done is None else max(opt.n_trials - done, 0)
    if complete:
        to_run = 0
    if as_json:
        _print_plan_json(plan, done, to_run)
        return
    # A storage URL too long for its cell (a log file's 80 columns) folded mid-path: under the table, whole
    print_keyed(
        f"plan of study {opt.study_name} (dry run)", _plan_rows(plan, done, to_run, complete), "storage"
    )
    checked = (
        "and that trainer.function imports and takes the arguments hpotool passes (the function itself runs "
        "only in the trials)"
        if plan.run.trainer is not None
        else "the data and one training step of the base run"
    )
    err_console().print(
        f"checked: both configs, {checked}; nothing written, no trial run (drop --dry-run to run the study)"
    )


def _print_plan_json(plan: StudyPlan, done: int | None, to_run: int | None) -> None:
    """The plan as JSON on stdout: the storage, the trial counts and both validated configs."""
    opt_dump = plan.opt.model_dump(mode="json")
    if opt_dump.get("storage"):  # a password in it as ***, as everywhere hpotool prints the URL
        opt_dump["storage"] = shown_url(opt_dump["storage"])
    configs = {"run_config": plan.run.model_dump(mode="json"), "optimize_config": opt_dump}
    counts = {"finished_trials": done, "trials_to_run": to_run}
    sys.stdout.write(
        json.dumps({"storage": shown_url(plan.storage_url), **counts, **configs}, indent=2) + "\n"
    )


def _plan_rows(
    plan: StudyPlan, done: int | None, to_run: int | None, complete: bool
) -> list[tuple[str, str]]:
    """The plan table's rows: storage, trials, objective, sampler and pruner, run, seed, search space."""
    from hpotool.param_findings import bounds_text

    opt = plan.opt
    rows: list[tuple[str, str]] = []
    rows.append(("storage", shown_url(plan.storage_url)))
    rows.append(("trials", escape(_trials_text(plan, done, to_run, complete))))
    rows.append(
        (
            "objective",
            ", ".join(f"{d} {m}" for d, m in zip(opt.study_directions, opt.objectives, strict=True)),
        )
    )
    pruner = "nop" if opt.multi_objective else opt.pruner.name
    for label, name, kwargs in (
        ("sampler", opt.sampler.name, opt.sampler.kwargs),
        ("pruner", pruner, {} if opt.multi_objective else opt.pruner.kwargs),
    ):
        rows.append((label, f"{name} {json.dumps(kwargs)}" if kwargs else name))
    if opt.constraints:
        rows.append(("constraints", escape(", ".join(opt.constraints))))
    rows.append(("run", _run_text(plan)))
    rows.append(("seed", "none (unseeded)" if opt.seed is None else str(opt.seed)))
    for path, param in opt.search_space.items():
        when = f" when {format_params(param.when)}" if param.when else ""
        rows.append((f"  {path}", f"{param.type} {bounds_text(param)}{when}"))
    if opt.enqueue:
        sets = len(opt.enqueue)
        rows.append(("enqueued", f"{counted(sets, 'parameter set')} first"))
    return rows


def _trials_text(plan: StudyPlan, done: int | None, to_run: int | None, complete: bool) -> str:
    """How many trials the study runs in all, or until when; those finished already and those to run."""
    opt = plan.opt
    timeout = f", timeout {opt.timeout:g}s" if opt.timeout else ""
    trials = f"{opt.n_trials} in all{timeout}" if opt.n_trials else f"until the timeout, {opt.timeout:g}s"
    if complete:
        from hpotool.exhaustion import EXHAUSTED

        trials += f"; {done} finished already, and {EXHAUSTED}: nothing to run"
    elif opt.n_trials is not None and done is not None and to_run == 0:
        from hpotool.study import nothing_to_run

        trials += f"; the study {nothing_to_run(done, opt.n_trials)}"
    elif done:
        trials += f"; {done} finished already" + (f", {to_run} to run" if to_run is not None else "")
    return trials


def _run_text(plan: StudyPlan) -> str:
    """The base run: its model or training function, epochs, batch size and device (as resolved here)."""
    from hpotool.device import device_name

    run = plan.run
    trainer = (
        f"trainer.function {run.trainer.function}" if run.trainer is not None else f"model {run.model.name}"
    )
    device = device_name(run.device)
    device = device if device == run.device else f"{run.device} ({device} here)"
    return f"{trainer}, {run.epochs} epochs, batch {run.batch_size}, device {device}"


def print_summary(summary: StudySummary, categorical: Collection[str] = ()) -> None:
    """The study's summary table; a parameter named in `categorical` is shown as the YAML spells its choice
    (null, 0.0, [128, 64]), as `hpotool trials` shows it."""

    def shown(name: str, value: Any) -> str:
        return format_param(value, name in categorical)

    rows: list[tuple[str, str]] = [("storage", shown_url(summary.storage))]
    rows.append(("metric", f"{summary.metric} ({summary.direction})"))
    finished = summary.counts.get("complete", 0) + summary.counts.get("pruned", 0)
    of = "" if summary.target is None else f"/{summary.target}"
    # 'run now': the trials this command ran to their end, failed ones too: their states when some failed
    # ('0/20 finished, 2 run now' read as two trials running, where both had failed)
    states = summary.extra.get("ran_now_states")
    states = f" ({', '.join(f'{k} {v}' for k, v in states.items())})" if states else ""
    rows.append(("trials", f"{finished}{of} finished, {summary.ran_now} run now{states}"))
    rows.append(("states", ", ".join(f"{k} {v}" for k, v in summary.counts.items()) or "none"))
    rows.append(("wall time", f"{summary.wall_time:.1f}s"))
    if summary.best:
        b = summary.best
        rows.append(("best trial", f"#{b['number']}"))
        rows.append((f"best {summary.metric}", format_value(b["value"])))
        for k, v in b["params"].items():
            rows.append((f"  {k}", shown(k, v)))
        for k, v in b["metrics"].items():
            if k != summary.metric:
                rows.append((f"  ({k})", format_value(v)))
    elif summary.extra.get("pareto"):
        metrics = summary.metric.split(", ")
        front = len(summary.extra["pareto"])
        rows.append(("Pareto front", counted(front, "trial")))
        for t in summary.extra["pareto"]:
            values = ", ".join(f"{m}={format_value(v)}" for m, v in zip(metrics, t["values"], strict=False))
            rows.append(
                (
                    f"  #{t['number']}",
                    f"{values}; {', '.join(f'{k}={shown(k, v)}' for k, v in t['params'].items())}",
                )
            )
    elif summary.counts.get("complete"):
        rows.append(("best", "no complete trial meets the constraints"))
    else:
        rows.append(("best", "no complete trial yet"))

    # A storage URL wider than its cell (a log file's 80 columns, a narrow terminal) folded mid-URL, and
    # pasted as two: it goes on one line under the table instead, as `hpotool studies` puts it.
    print_keyed(f"study {summary.study_name}", rows, "storage")
    print_summary_notes(summary)


def print_summary_notes(summary: StudySummary) -> None:
    """The notes under the summary, on stderr: why the run stopped, its first error, its failures, why no
    trial completed. `--json` prints them too, after its JSON, so a script's log (`2> run.log`) says why."""
    for note in (summary.extra.get("note"), summary.extra.get("independent_sampling", {}).get("note")):
        if note:
            print_note(str(note))
    if summary.extra.get("workers_note"):
        print_note(str(summary.extra["workers_note"]))
    for ended in summary.extra.get("workers_ended", []):
        print_note(f"worker {ended}")
    if summary.stopped:
        print_note(summary.stopped)
    if summary.first_error:
        err_console().print(f"[red]first error:[/red] {escape(summary.first_error)}", soft_wrap=True)
    # after the first error too: a run --max-failures stopped named no command listing its failed trials
    if summary.extra.get("failures") and summary.interrupted is None:  # an interrupt says so itself
        print_note(summary.extra["failures"])
    if summary.extra.get("pruned"):  # `best: no complete trial yet` and `pruned 6` said nothing of why
        print_note(summary.extra["pruned"])
    if summary.extra.get("repeats"):  # each repeat trained again for nothing, with no word
        print_note(summary.extra["repeats"])
