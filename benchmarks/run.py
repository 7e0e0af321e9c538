"""The benchmark suite: every figure a ratio against its alternative, measured in the same run.

    python -m benchmarks.run --quick     # under 3 minutes: fewer trials and repeats
    python -m benchmarks.run             # the full suite (make bench), 6 to 37 minutes here

Writes docs/BENCHMARKS.md (or --out). Not tests: nothing here asserts a timing; the goals are reported as
met or missed.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BIN,
    PYTHON,
    REPO,
    RUN,
    alternate,
    goal,
    machine,
    med,
    optimize_config,
    spread,
    trials_span,
    wall,
    write_configs,
)

Section = Callable[[bool, Path], str]


# ---------------------------------------------------------------- 1, 2: hpotool vs hand-written scripts


def tool_overhead(quick: bool, tmp: Path) -> str:
    trials, times = (6, 1) if quick else (20, 3)
    run_path, opt_path = write_configs(tmp / "ovh", RUN, optimize_config("ovh", "sqlite:///x.db", trials))

    def hpotool() -> tuple[float, float]:
        db = tmp / f"h{time.monotonic_ns()}.db"
        args = ["optimize", "-r", str(run_path), "-o", str(opt_path), "--storage", f"sqlite:///{db}", "-q"]
        return wall([str(BIN / "hpotool"), *args], cwd=tmp), trials_span(db, skip=1)

    def script(style: str) -> tuple[float, float]:
        db = tmp / f"{style}{time.monotonic_ns()}.db"
        cmd = [
            PYTHON,
            "-m",
            "benchmarks.optuna_scripts",
            style,
            "--trials",
            str(trials),
            "--storage",
            f"sqlite:///{db}",
        ]
        return wall(cmd, cwd=REPO), trials_span(db, skip=1)

    runs: dict[str, list[tuple[float, float]]] = {"h": [], "e": [], "u": []}
    measure = {"h": hpotool, "e": lambda: script("efficient"), "u": lambda: script("usual")}
    for i in range(times):  # interleaved, so drifting load hits all three alike; every other round reversed,
        for key in alternate(list(measure), i):  # so neither runs first every time
            runs[key].append(measure[key]())
    whole = {k: [w for w, _ in v] for k, v in runs.items()}
    span = {k: [s for _, s in v] for k, v in runs.items()}
    ratio = med(whole["h"]) / med(whole["e"])
    speedup, speedup_trials = med(whole["u"]) / med(whole["h"]), med(span["u"]) / med(span["h"])
    tpm = lambda xs, n=trials: spread([n / x * 60 for x in xs], "{:.0f}")  # noqa: E731
    labels = {
        "h": "hpotool optimize",
        "e": "efficient script (shuffled tensors sliced into batches, fused Adam with lean steps, 1 thread, SQLite WAL)",
        "u": "usual script (DataLoader, `.item()` each step, default threads and Adam, default SQLite)",
    }
    return "\n".join(
        [
            f"## 1–2. hpotool vs hand-written Optuna scripts ({trials} trials × {RUN['epochs']} epochs, digits MLP)",
            "",
            f"Median (min–max) of {times} interleaved runs. The scripts are `benchmarks/optuna_scripts.py`; all three",
            "train the same trials (same data split, seeds and random sampler). Whole process: imports, data,",
            "study and trials. Trials only: from the second trial's start to the last trial's end as the study's",
            "SQLite file records them, the throughput a longer study converges to (the first trial is left out:",
            "a script that builds its first optimizer there pays one-off imports in it).",
            "",
            "| | wall s (whole process) | trials/min (whole process) | trials/min (trials only) |",
            "|---|---|---|---|",
            *(
                f"| {labels[k]} | {spread(whole[k])} | {tpm(whole[k])} | {tpm(span[k], trials - 1)} |"
                for k in labels
            ),
            "",
            f"- Tool overhead: hpotool / efficient script = **{ratio:.3f}×** the wall time (goal ≤ 1.03×: {goal(ratio <= 1.03)}).",
            f"- Against the usual script: **{speedup_trials:.2f}×** the trials per minute over the trials "
            f"(goal ≥ 3×: {goal(speedup_trials >= 3)}); **{speedup:.2f}×** over the whole process, where both pay "
            "the same ~2 s of imports.",
            "- Where the lead comes from (each measured in docs/PERFORMANCE_NOTES.md): torch's fused Adam kernel",
            "  instead of a Python loop over parameters, called without `optimizer.step()`'s per-call Python work",
            "  (`hpotool.lean_step`), the epoch's shuffled tensors sliced into batches instead",
            "  of a DataLoader collating samples, one torch thread, and `hpotool.rdb` writing a trial's reports in",
            "  one transaction instead of one each.",
        ]
    )


# ---------------------------------------------------------------- 3: Trainer throughput


def trainer_throughput(quick: bool, tmp: Path) -> str:
    import torch
    from torch import nn

    from hpotool.datasets import digits, split
    from hpotool.lean_step import LeanStep, backward
    from hpotool.models import CNN, MLP
    from hpotool.parts import fast_optimizer_kwargs
    from hpotool.trainer import Trainer

    torch.set_num_threads(1)
    train, val = split(digits(), 0.2, 1.0, 0)
    # Each timed fit lasts at least `least_s`: a fixed 5 epochs of the MLP at batch 256 took 25 ms on a fast
    # VM, where single runs varied by ±20% and the section's ratios by as much.
    min_epochs, least_s, times = (3, 0.1, 2) if quick else (5, 0.5, 7)
    rows = []
    for name, make in (("mlp", lambda: MLP(64, 10, hidden=[128, 128])), ("cnn", lambda: CNN((1, 8, 8), 10))):
        for batch in (32, 256):

            def hp(epochs: int, make: Callable[[], nn.Module] = make, batch: int = batch) -> float:
                torch.manual_seed(0)
                model = make()
                t = Trainer(
                    model,
                    torch.optim.Adam(
                        model.parameters(), **fast_optimizer_kwargs(torch.optim.Adam, model, {})
                    ),
                    nn.CrossEntropyLoss(),
                    "classification",
                    batch,
                )
                start = time.perf_counter()
                t.fit(train, val, epochs=epochs)
                return len(train) * epochs / (time.perf_counter() - start)

            def bare(
                epochs: int, make: Callable[[], nn.Module] = make, batch: int = batch, lean: bool = True
            ) -> float:
                torch.manual_seed(0)
                model = make()
                opt, loss_fn = torch.optim.Adam(model.parameters(), fused=True), nn.CrossEntropyLoss()
                stepper: Any = LeanStep(opt) if lean else None
                zero_grad = stepper.zero_grad if lean else functools.partial(opt.zero_grad, set_to_none=True)
                step = stepper.step if lean else opt.step
                g = torch.Generator().manual_seed(0)
                start = time.perf_counter()
                for _ in range(epochs):
                    model.train()
                    perm = torch.randperm(len(train), generator=g)
                    losses = []
                    for x, y in zip(train.x[perm].split(batch), train.y[perm].split(batch), strict=True):
                        zero_grad()
                        loss = loss_fn(model(x), y)
                        backward(loss) if lean else loss.backward()
                        step()
                        losses.append(loss.detach())
                    # The epoch's train loss, read once, as the Trainer does.
                    float(torch.stack(losses).sum())
                    model.eval()
                    with torch.no_grad():
                        out = model(val.x)
                        float(loss_fn(out, val.y)), float((out.argmax(1) == val.y).float().mean())
                return len(train) * epochs / (time.perf_counter() - start)

            hp(min_epochs), bare(min_epochs, lean=False)  # warm-up
            epochs = max(min_epochs, math.ceil(least_s * bare(min_epochs) / len(train)))
            h, b, t = [], [], []
            measure = ((h, hp), (b, bare), (t, functools.partial(bare, lean=False)))
            for i in range(times):  # in rounds, so a drift in the machine's speed hits all alike; every
                for out, fn in alternate(list(measure), i):  # other round reversed, so none runs first always
                    out.append(fn(epochs))
            ratio = med([x / y for x, y in zip(h, b, strict=True)])
            gain = med([x / y for x, y in zip(b, t, strict=True)])
            rows.append(
                f"| {name} | {batch} | {epochs} | {spread(h, '{:.0f}')} | {spread(b, '{:.0f}')} | {ratio:.3f}× {goal(ratio >= 0.97)} "
                f"| {spread(t, '{:.0f}')} | {gain:.2f}× |"
            )
    return "\n".join(
        [
            "## 3. Trainer throughput (training samples per second, one thread)",
            "",
            "hpotool's `Trainer.fit` vs a bare loop over the same tensors doing the same work (train, reading the",
            "epoch's train loss once, then evaluate loss and accuracy; fused Adam stepped and the backward run through",
            "`hpotool.lean_step`),",
            f"as many epochs as last at least {least_s} s a fit (at least {min_epochs}), median (min–max)",
            f"of {times} rounds; each ratio is the median of the rounds' ratios. Goal ≥ 0.97×. The last two columns:",
            "the same bare loop calling torch's `optimizer.step()`, `zero_grad()` and `loss.backward()`, and what the lean",
            "step and backward gain.",
            "",
            "| model | batch | epochs | Trainer | bare loop | Trainer / bare | bare loop, torch's `step()` and `backward()` | lean / torch's |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


# ---------------------------------------------------------------- 4: CLI start


def cli_start(quick: bool, tmp: Path, rounds: int | None = None) -> str:
    times, first_runs = (2, 1) if quick else (7, 3)
    times = rounds or times
    hp = str(BIN / "hpotool")
    commands = {
        "help": [hp, "--help"],
        "opt_help": [hp, "optimize", "--help"],
        "torch": [PYTHON, "-c", "import torch"],
        "bare": [PYTHON, "-c", "import torch, optuna, pydantic, yaml, rich, typer"],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(times):  # interleaved rounds, so a drift in the machine's speed hits all alike
        for key in alternate(list(commands), i):
            walls[key].append(wall(commands[key]))
    helps, opt_help, torch_import, bare_imports = (walls[k] for k in commands)
    run = {**RUN, "epochs": 1}
    run_path, opt_path = write_configs(tmp / "first", run, optimize_config("first", "sqlite:///x.db", 1))
    firsts = []
    for i in range(first_runs):
        db = tmp / f"first{i}.db"
        start = datetime.now(timezone.utc)
        wall(
            [hp, "optimize", "-r", str(run_path), "-o", str(opt_path), "--storage", f"sqlite:///{db}", "-q"],
            cwd=tmp,
        )
        import optuna

        trial = optuna.load_study(study_name="first", storage=f"sqlite:///{db}").trials[0]
        assert trial.datetime_start is not None
        first_epoch = trial.datetime_start.astimezone(timezone.utc) + timedelta(
            seconds=trial.user_attrs["history"][0]["epoch_time"]
        )
        firsts.append((first_epoch - start).total_seconds())
    r1, r2 = med(helps) / med(torch_import), med(opt_help) / med(torch_import)
    return "\n".join(
        [
            "## 4. CLI start",
            "",
            f"Wall seconds, median (min–max) of {times} interleaved rounds. Goal: `--help` ≤ 0.2× `import torch` and",
            "under 0.3 s.",
            "",
            "| command | s | vs import torch |",
            "|---|---|---|",
            f"| `hpotool --help` | {spread(helps, '{:.3f}')} | {r1:.2f}× {goal(r1 <= 0.2 and med(helps) < 0.3)} |",
            f"| `hpotool optimize --help` | {spread(opt_help, '{:.3f}')} | {r2:.2f}× {goal(r2 <= 0.2 and med(opt_help) < 0.3)} |",
            f"| `python -c 'import torch'` | {spread(torch_import, '{:.3f}')} | 1× |",
            f"| `python -c 'import torch, optuna, pydantic, yaml, rich, typer'` | {spread(bare_imports, '{:.3f}')} | |",
            f"| `hpotool optimize` start to the end of the first epoch | {spread(firsts, '{:.3f}')} | "
            f"{med(firsts) / med(bare_imports):.2f}× the bare imports |",
        ]
    )


# ---------------------------------------------------------------- 5: parallel scaling (benchmarks/parallel.py)


def parallel(quick: bool, tmp: Path) -> str:
    trials = "8" if quick else "40"
    workers = ["1", "2"] if quick else ["1", "2", "4"]
    rounds = "1" if quick else "3"
    storages = ["sqlite"] if quick else ["sqlite", "journal"]
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "benchmarks.parallel",
            "--trials",
            trials,
            "--rounds",
            rounds,
            "--workers",
            *workers,
            "--storages",
            *storages,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    return f"## 5. Parallel workers ({trials} trials, `benchmarks/parallel.py`)\n\n{out.strip()}"


# ---------------------------------------------------------------- 6: pruning value


PRUNERS: dict[str, dict[str, Any]] = {
    "nop": {},
    "median": {"n_startup_trials": 5, "n_warmup_steps": 2},
    "hyperband": {},
    "successive_halving": {
        "min_resource": "auto",
        "reduction_factor": 4,
        "min_early_stopping_rate": 0,
        "bootstrap_count": 0,
    },
    "pfl": {"n_startup_trials": 5, "n_warmup_steps": 3, "top_k": 5},
}
# Rows of section 6: (label, pruner, sampler); None runs the templates' sampler (rung_tpe).
PRUNING_ROWS: list[tuple[str, str, str | None]] = [
    *((name, name, None) for name in PRUNERS),
    ("successive_halving, Optuna's tpe", "successive_halving", "tpe"),
    ("pfl, Optuna's tpe", "pfl", "tpe"),
]


def pruning_study(run_path: Path, opt_path: Path) -> tuple[int, float, float, list[list[float]]]:
    """(epochs run, seconds, best value, each trial's validation accuracy per epoch) of one study, run in
    this process."""
    import optuna

    from hpotool.plan import prepare_study
    from hpotool.study_run import run_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = prepare_study(run_path, opt_path)
    start = time.perf_counter()
    summary = run_study(plan)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=plan.opt.study_name, storage=plan.opt.storage)
    ran = sum(t.user_attrs.get("epochs_run", 0) for t in study.trials)
    curves = [[epoch["val_accuracy"] for epoch in t.user_attrs.get("history", [])] for t in study.trials]
    return ran, seconds, summary.best["value"] if summary.best else float("nan"), curves


def replay(curves: list[list[float]], name: str, kwargs: dict[str, Any], epochs: int) -> tuple[int, float]:
    """(epochs run, best value) of `name`'s pruner deciding over finished curves in their order: what its
    decisions alone cost, with the trials the sampler chose without pruning (no feedback from pruned
    trials into the sampler)."""
    import optuna

    from hpotool.factories import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # A fixed name: the hyperband pruner assigns brackets by hashing it with the trial number.
    study = optuna.create_study(study_name="replay", direction="maximize", pruner=make_pruner(name, kwargs))
    study.set_user_attr("run_config", {"epochs": epochs})  # what PFL reads, as on a study hpotool made
    ran, best = 0, float("-inf")
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
            ran += 1
            if step + 1 < epochs and trial.should_prune():  # as hpotool: the last epoch completes
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
            best = max(best, curve[-1])
    return ran, best


def pruning_value(quick: bool, tmp: Path) -> str:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import yaml

    # The study the templates ship (the demo's): their RunConfig (cosine schedule), search space and
    # sampler, with each pruner in turn. Five sampler seeds: a 30-trial study's best accuracy moves by a
    # validation sample (0.28 points) or more from seed to seed.
    trials, epochs, seeds = (12, 10, [0]) if quick else (30, 20, [0, 1, 2, 3, 4])
    template = yaml.safe_load((REPO / "configs" / "optimize_template.yaml").read_text())
    run = yaml.safe_load((REPO / "configs" / "run_template.yaml").read_text())
    run.update(device="cpu", epochs=epochs)
    jobs = {}
    for i, (label, name, sampler) in enumerate(PRUNING_ROWS):
        for seed in seeds:
            folder = tmp / f"prune-{i}-{seed}"
            opt = optimize_config(
                f"p{i}-{seed}",
                f"sqlite:///{folder / 'study.db'}",
                trials,
                seed=seed,
                search_space=template["search_space"],
                sampler=template["sampler"] if sampler is None else {**template["sampler"], "name": sampler},
                pruner={"name": name, "kwargs": PRUNERS[name]},
            )
            jobs[label, seed] = write_configs(folder, run, opt)
    # Two studies at a time, one per core, each in a process of its own (one torch thread each): the
    # epochs and best values do not depend on it (seeded sampler, deterministic CPU training); the wall
    # times are all measured under the same load, so they compare with each other.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(pruning_study, *paths) for key, paths in jobs.items()}
        results = {label: [futures[label, seed].result() for seed in seeds] for label, _, _ in PRUNING_ROWS}
    full = trials * epochs
    nop = results["nop"]
    replays = {name: [replay(n[3], name, kwargs, epochs) for n in nop] for name, kwargs in PRUNERS.items()}

    def delta(bests: list[float]) -> tuple[float, float]:
        """Mean over the seeds of the best value's difference from no pruning's, same seed, in points, and
        its standard error (NaN with one seed)."""
        diffs = [(b - n[2]) * 100 for b, n in zip(bests, nop, strict=True)]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
        return statistics.fmean(diffs), se

    def points(bests: list[float]) -> str:
        mean, se = delta(bests)
        return f"{mean:+.2f}" if math.isnan(se) else f"{mean:+.2f} ± {se:.2f}"

    rows = []
    for label, name, _ in PRUNING_ROWS:
        rs, again = results[label], replays[name]
        share = [r[0] / full for r in rs]
        replayed = (
            "— | —"
            if name == "nop"
            else f"{med([a[0] / full for a in again]):.0%} | {points([a[1] for a in again])}"
        )
        rows.append(
            f"| {label} | {spread([s * 100 for s in share], '{:.0f}')}% | {spread([r[1] for r in rs], '{:.1f}')} | "
            f"{spread([r[2] for r in rs], '{:.4f}')} | {points([r[2] for r in rs])} | {replayed} |"
        )
    sh = results["successive_halving"]
    sh_share, (sh_delta, sh_se) = med([r[0] / full for r in sh]), delta([r[2] for r in sh])
    # PFL with either sampler (README advises Optuna's TPE for it); it beats the default if either does.
    pfls = {
        sampler: (med([r[0] / full for r in results[label]]), delta([r[2] for r in results[label]])[0])
        for sampler, label in (("Optuna's tpe", "pfl, Optuna's tpe"), ("rung_tpe", "pfl"))
    }
    pfl_beats = any(share < sh_share and d > sh_delta for share, d in pfls.values())
    pfl_text = "; ".join(
        f"with {sampler} {share:.0%} of the epochs, {d:+.2f} points" for sampler, (share, d) in pfls.items()
    )
    se_text = "" if math.isnan(sh_se) else f" (standard error {sh_se:.2f} over {len(seeds)} seeds)"
    return "\n".join(
        [
            f"## 6. Pruning value ({trials} trials × {epochs} epochs, the templates' study: digits MLP, cosine "
            f"schedule, 7 parameters, their sampler `rung_tpe`; sampler seeds {seeds})",
            "",
            "Epochs run as a share of what no pruning runs, wall seconds, best validation accuracy (median (min–max)",
            "over the seeds), and the best's difference from no pruning's with the same sampler seed, in accuracy",
            "points, averaged over the seeds ± its standard error (one validation sample is 0.28 points). The last",
            "two columns replay each pruner over no pruning's finished curves, in their order: what its decisions",
            "alone cost, with the trials the sampler chose unpruned; the rest of the live cost is the sampler's,",
            "which learns from pruned trials. Rows marked \"Optuna's tpe\" run Optuna's TPE, which ranks every",
            "complete trial above every pruned one; `rung_tpe` (hpotool.samplers) ranks them at the deepest epoch",
            "enough trials reached. Without pruning the two sample the same trials.",
            "",
            "| pruner | epochs run | wall s | best val_accuracy | Δ points vs nop (mean ± se per seed) | replayed: epochs | "
            "replayed: Δ points |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"- Shipped default (successive halving with rung_tpe): {sh_share:.0%} of the epochs, {sh_delta:+.2f} points"
            f"{se_text} (goal ≤ 35% and within 0.3 points: {goal(sh_share <= 0.35 and sh_delta >= -0.3)}).",
            f"- PFL: {pfl_text} (goal: beat the default on both: {goal(pfl_beats)}).",
        ]
    )


# ---------------------------------------------------------------- 7: storage cost and study scale


def _bare_trials(storages: dict[str, tuple[Any, int]]) -> dict[str, list[float]]:
    """Seconds per trial for each storage: ask, one parameter, 20 report + should_prune, tell; no training.

    `storages` maps a name to (storage, trials to run). The storages take turns, one trial each, so a
    drift in the machine's speed hits them alike (run one after the other, the first and last tenths of
    two storages were measured minutes apart). Every trial reports a value better than all before it (a
    minimized study), so the median pruner evaluates all 20 steps of every trial and prunes none: the
    issue's "bookkeeping + 20 report/should_prune calls" per trial, whatever the pruner decides.
    """
    import optuna

    studies = {
        name: optuna.create_study(
            storage=storage,
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
        )
        for name, (storage, _) in storages.items()
    }
    costs: dict[str, list[float]] = {name: [] for name in storages}
    for i in range(max(n for _, n in storages.values())):
        for name, study in studies.items():
            if i >= storages[name][1]:
                continue
            start = time.perf_counter()
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            for step in range(20):
                trial.report(-i - x, step)
                if trial.should_prune():
                    raise AssertionError("the storage benchmark's trials are never pruned")
            study.tell(trial, -i - x)
            costs[name].append(time.perf_counter() - start)
    return costs


def storage_cost(quick: bool, tmp: Path) -> str:
    import warnings

    import optuna

    from hpotool.storage import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", message="Heartbeat of storage")  # ask/tell, not optimize: as intended
    n = 100 if quick else 2000
    # Optuna's default set-up costs ~10x more per trial and does not grow with the study (364 ms per
    # trial over its first tenth, 380 ms over its last of 500): its first eighth is enough, and the
    # comparison is made over those same trials for every storage. The journal file is context, not a
    # goal: the same first eighth (2,000 trials of it took ~90 s).
    n_default = max(25, n // 8)
    costs = _bare_trials(
        {
            "ours": (make_storage(f"sqlite:///{tmp / 'ours.db'}"), n),
            "theirs": (f"sqlite:///{tmp / 'default.db'}", n_default),
            "journal": (make_storage(f"journal:{tmp / 'journal.log'}"), n_default),
            "memory": (None, n),
        }
    )
    ours, theirs, journal, memory = (costs[k] for k in ("ours", "theirs", "journal", "memory"))
    first = lambda xs: med(xs[: max(1, len(xs) // 10)]) * 1000  # noqa: E731
    last = lambda xs: med(xs[-max(1, len(xs) // 10) :]) * 1000  # noqa: E731
    cheaper = lambda xs: med(theirs) / med(xs[:n_default])  # noqa: E731
    ratio = cheaper(ours)

    def row(name: str, xs: list[float]) -> str:
        return (
            f"| {name} | {len(xs)} | {first(xs):.1f} | {last(xs):.1f} | {med(xs) * 1000:.1f} | "
            f"{med(xs[:n_default]) * 1000:.1f} | {cheaper(xs):.1f}× |"
        )

    return "\n".join(
        [
            f"## 7a. Storage cost per trial ({n} trials, 20 report + should_prune each, median pruner, no training)",
            "",
            "Milliseconds per trial (ask, one parameter, 20 `report` + `should_prune`, tell; the median pruner",
            "evaluates every step and prunes nothing), median over the first and the last tenth of the study.",
            "The storages take turns, one trial each, so the machine's drift hits them alike.",
            f"Optuna's default SQLite runs the first {n_default} trials only (its cost per trial is flat and",
            "several times the others'), and so does the journal file, which is shown for context (its cost",
            "grows with the study: 22 to 100 ms per trial over 2,000 trials in an earlier run);",
            f'"cheaper" compares every storage with Optuna\'s default SQLite over those same first {n_default} trials.',
            "",
            f"| storage | trials | first tenth | last tenth | median | median, first {n_default} | cheaper than Optuna's default |",
            "|---|---|---|---|---|---|---|",
            row("hpotool default (SQLite WAL, synchronous=NORMAL, `hpotool.rdb`)", ours),
            row("Optuna's default SQLite (`sqlite:///x.db`)", theirs),
            row("Optuna's journal file (`journal:x.log`)", journal),
            row("Optuna's in-memory storage (no file)", memory),
            "",
            f"- hpotool's default is **{ratio:.1f}×** cheaper per trial than Optuna's default SQLite (goal ≥ 5×: {goal(ratio >= 5)}).",
            f"- Growth from the first to the last tenth: hpotool {last(ours) - first(ours):+.1f} ms, Optuna's in-memory",
            f"  storage {last(memory) - first(memory):+.1f} ms: the median pruner's own work over more complete trials",
            f"  (no growth beyond the pruner's own: {goal(last(ours) - first(ours) <= (last(memory) - first(memory)) * 1.2)}).",
            "- Where it comes from: `hpotool.rdb` writes a trial's reports in one transaction (at most every",
            "  second, always before the trial ends) instead of one each, and answers the pruner's",
            "  finished-trials query from a snapshot (at most a second old for other workers' trials) instead of",
            "  re-reading every running trial per `should_prune`. The rest is WAL with synchronous=NORMAL.",
            "- Durability: WAL with synchronous=NORMAL never corrupts the file and survives a crashed process; a",
            "  power cut or OS crash can lose the last few committed trials (Optuna's default, synchronous=FULL,",
            "  fsyncs every commit). A killed worker loses at most the last second of its running trial's",
            "  curve; the trial itself is marked FAIL and re-run, as with any storage.",
        ]
    )


_CONTENDER = """
import sys, time, warnings
warnings.filterwarnings("ignore")
import optuna
from hpotool.storage import make_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
url, n = sys.argv[1], int(sys.argv[2])
study = optuna.load_study(study_name="c", storage=make_storage(url))
print("ready", flush=True)
sys.stdin.readline()  # every process imported and connected: go
errors = 0
for i in range(n):
    try:
        trial = study.ask()
        x = trial.suggest_float("x", 0, 1)
        for step in range(20):
            trial.report(x, step)
            trial.should_prune()
        study.tell(trial, x)
    except Exception as exc:
        errors += 1
        import traceback
        traceback.print_exc()
print(errors)
"""


def _contended(url: str, processes: int, n: int) -> tuple[float, int]:
    """(trials per second over all processes, errors): `processes` processes × `n` bare trials at once."""
    import optuna

    from hpotool.storage import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="c", storage=make_storage(url), pruner=optuna.pruners.MedianPruner())
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", _CONTENDER, url, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    for p in procs:  # all of them imported and connected before any starts
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    errors = 0
    for p in procs:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.close()
        errors += int(p.stdout.read().strip() or 1)
        p.wait()
    study = optuna.load_study(study_name="c", storage=make_storage(url))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return len(done) / span.total_seconds(), errors


def storage_contention(quick: bool, tmp: Path) -> str:
    n = 30 if quick else 100
    rows = []
    for processes in (1, 2) if quick else (1, 2, 4):
        cells = []
        for kind in ("sqlite", "journal"):
            folder = tmp / f"contention-{kind}-{processes}"
            folder.mkdir()
            url = f"sqlite:///{folder / 'c.db'}" if kind == "sqlite" else f"journal:{folder / 'c.log'}"
            rate, errors = _contended(url, processes, n)
            cells.append(f"{rate:.0f} | {errors}")
        rows.append(f"| {processes} | {' | '.join(cells)} |")
    return "\n".join(
        [
            f"## 7c. Several processes on one storage ({n} bare trials each, all started at once)",
            "",
            "Trials per second over all processes (ask, one parameter, 20 report + should_prune with the median",
            "pruner, tell; no training) and storage errors, on hpotool's default SQLite set-up and on Optuna's",
            "journal file. The study is created before the processes start, as `hpotool optimize --workers`",
            "does. On 2 cores, 4 processes measure contention, not speed.",
            "",
            "| processes | SQLite trials/s | SQLite errors | journal trials/s | journal errors |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "- Reading it: the storage's own ceiling in trials per second, against the trials a worker runs per",
            "  second. Where trials take seconds (real training), either storage is far from its ceiling and",
            "  SQLite's advantages (one file every SQLite tool, Optuna's CLI and optuna-dashboard open) cost",
            "  nothing; where trials take milliseconds, or many workers share the file, the journal's higher",
            "  ceiling is what Optuna's FAQ advice is about, and `--storage journal:studies/NAME.log` is the",
            "  answer.",
        ]
    )


def build_scale_study(path: Path, n: int) -> float:
    """A study of `n` complete trials × 20 intermediate values in SQLite at `path`; returns seconds taken.

    Optuna creates the study (schema, configs as hpotool stores them); the trial rows are then written in
    one SQLite transaction, as Optuna's schema stores them (add_trials writes ~27 rows a trial through the
    ORM: 146 s for 10,000). The result is read back through Optuna and checked.
    """
    import json
    import random
    import sqlite3
    from datetime import datetime, timedelta

    import optuna
    from optuna.distributions import FloatDistribution, distribution_to_json

    from hpotool.config import OptimizeConfig, RunConfig
    from hpotool.storage import make_storage

    url = f"sqlite:///{path}"
    started = time.perf_counter()
    study = optuna.create_study(study_name="scale", storage=make_storage(url), direction="maximize")
    study.set_user_attr("run_config", RunConfig.model_validate(RUN).model_dump(mode="json"))
    study.set_user_attr(
        "optimize_config",
        OptimizeConfig.model_validate(optimize_config("scale", url, n)).model_dump(mode="json"),
    )
    study_id = study._study_id
    dists = {
        "optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True),
        "model.hidden.0": FloatDistribution(32, 128),
    }
    rng = random.Random(0)
    t0 = datetime(2026, 1, 1)
    trials, params, values, curves, attrs = [], [], [], [], []
    for number in range(n):
        trial_id = number + 1
        begin = t0 + timedelta(seconds=number)
        trials.append((trial_id, number, study_id, "COMPLETE", begin, begin + timedelta(seconds=0.9)))
        for name, value in (
            ("optimizer.lr", 10 ** rng.uniform(-3, -1)),
            ("model.hidden.0", rng.uniform(32, 128)),
        ):
            params.append(
                (trial_id, name, dists[name].to_internal_repr(value), distribution_to_json(dists[name]))
            )
        curve = [0.9 - 0.5 * 0.8**s + rng.gauss(0, 0.01) for s in range(20)]
        curves += [(trial_id, s, v, "FINITE") for s, v in enumerate(curve)]
        values.append((trial_id, 0, curve[-1], "FINITE"))
        for key, attr in (("epochs_run", 20), ("history", []), ("metrics", {"val_accuracy": curve[-1]})):
            attrs.append((trial_id, key, json.dumps(attr)))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) VALUES (?, ?, ?, ?, ?, ?)",
            [(*row[:4], str(row[4]), str(row[5])) for row in trials],
        )
        conn.executemany(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)",
            params,
        )
        conn.executemany(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)", values
        )
        conn.executemany(
            "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) "
            "VALUES (?, ?, ?, ?)",
            curves,
        )
        conn.executemany(
            "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)", attrs
        )
    back = optuna.load_study(study_name="scale", storage=url).get_trials(deepcopy=False)
    assert len(back) == n and back[-1].number == n - 1 and len(back[-1].intermediate_values) == 20
    assert back[-1].value == values[-1][2] and back[-1].state == optuna.trial.TrialState.COMPLETE
    assert back[-1].params["optimizer.lr"] == params[-2][2] and back[-1].user_attrs["epochs_run"] == 20
    return time.perf_counter() - started


def study_scale(quick: bool, tmp: Path) -> str:
    n = 1000 if quick else 10000
    url = f"sqlite:///{tmp / 'scale.db'}"
    built = build_scale_study(tmp / "scale.db", n)
    hp = str(BIN / "hpotool")
    t_df = wall(
        [
            PYTHON,
            "-c",
            f"import optuna; optuna.load_study(study_name='scale', storage='{url}').trials_dataframe()",
        ]
    )
    t_trials = wall(
        [hp, "trials", "--study-name", "scale", "--storage", url, "--top", "10", "--json"], cwd=tmp
    )
    t_export = wall(
        [hp, "export-best", "--study-name", "scale", "--storage", url, "--out", str(tmp / "exp")], cwd=tmp
    )
    t_report = wall(
        [hp, "report", "--study-name", "scale", "--storage", url, "--out", str(tmp / "r.html")], cwd=tmp
    )
    rows = [
        ("`hpotool trials --top 10`", t_trials),
        ("`hpotool export-best`", t_export),
        ("`hpotool report`", t_report),
    ]
    return "\n".join(
        [
            f"## 7b. A study of {n:,} trials × 20 intermediate values in SQLite (built in {built:.0f} s)",
            "",
            "Whole-command wall seconds (imports included), one run each. Goal: each under 10 s.",
            "",
            "| command | s | vs Optuna's `trials_dataframe()` |",
            "|---|---|---|",
            f"| `optuna.load_study(...).trials_dataframe()` (a Python process) | {t_df:.2f} | 1× |",
            *[f"| {name} | {t:.2f} | {t / t_df:.2f}× {goal(t < 10)} |" for name, t in rows],
        ]
    )


# ---------------------------------------------------------------- 8: memory


_MEMORY = """
import resource, sys
from pathlib import Path
from hpotool.study_run import run_study
from hpotool.plan import prepare_study
plan = prepare_study(Path(sys.argv[1]), Path(sys.argv[2]))
run_study(plan)
# VmHWM: this process's own peak. ru_maxrss would also count the parent's memory at fork time on Linux
# (the benchmark process holds a 10,000-trial study by then).
status = Path("/proc/self/status")
hwm = [l for l in status.read_text().splitlines() if l.startswith("VmHWM:")] if status.exists() else []
print(int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(quick: bool, tmp: Path) -> str:
    sizes = (10, 30) if quick else (50, 200)
    run = {**RUN, "epochs": 2}
    peaks = []
    for n in sizes:
        run_path, opt_path = write_configs(
            tmp / f"mem{n}", run, optimize_config("mem", f"sqlite:///{tmp / f'mem{n}.db'}", n)
        )
        out = subprocess.run(
            [PYTHON, "-c", _MEMORY, str(run_path), str(opt_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        ).stdout
        peaks.append(int(out.strip().splitlines()[-1]) / 1024)
    growth = peaks[1] - peaks[0]
    return "\n".join(
        [
            "## 8. Memory",
            "",
            f"Peak RSS of a whole `hpotool` study process (digits MLP, 2 epochs per trial, SQLite): {sizes[0]} trials "
            f"{peaks[0]:.0f} MiB, {sizes[1]} trials {peaks[1]:.0f} MiB: **{growth:+.1f} MiB** for "
            f"{sizes[1] - sizes[0]} more trials ({growth / (sizes[1] - sizes[0]) * 1024:.0f} KiB per trial, Optuna's own",
            "trial cache included). Models and optimizers are dropped after each trial; on CUDA the cache is emptied.",
        ]
    )


def gpu(quick: bool, tmp: Path) -> str:
    import torch

    if not torch.cuda.is_available():
        return "## 9. GPU\n\nSkipped: no CUDA device on this machine (and none was lent to this session)."
    return "## 9. GPU\n\nRun `make bench` on the CUDA machine: sections 1 and 3 then use `device: cuda`."


SECTIONS: dict[str, Section] = {
    "overhead": tool_overhead,
    "trainer": trainer_throughput,
    "cli": cli_start,
    "parallel": parallel,
    "pruning": pruning_value,
    "storage": storage_cost,
    "scale": study_scale,
    "contention": storage_contention,
    "memory": memory,
    "gpu": gpu,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer trials and repeats (under 3 minutes)")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument(
        "--cli-rounds",
        type=int,
        metavar="N",
        help="section 4's rounds of timed commands (default: 2 with --quick, else 7); the test that the "
        "section runs takes 1",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONPATH", str(REPO))
    started = time.perf_counter()
    parts, took = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(SECTIONS):
            t0 = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            section = SECTIONS[name]
            if name == "cli" and args.cli_rounds:
                section = functools.partial(cli_start, rounds=args.cli_rounds)
            parts.append(section(args.quick, Path(tmp)))
            took.append(f"{name} {time.perf_counter() - t0:.0f} s")
            print(f"  {took[-1]}", file=sys.stderr, flush=True)
    header = [
        "# Benchmarks",
        "",
        f"`make bench{'-quick' if args.quick else ''}` ({'quick' if args.quick else 'full'} mode) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d}: {machine()}; the suite took {time.perf_counter() - started:.0f} s",
        f"({', '.join(took)}).",
        "Run `make bench-quick` (under 3 minutes) first, `make bench` (6 to 37 minutes, by the VM's speed) for these "
        "figures.",
        "Each figure is a ratio against its alternative measured in the same run; timings are medians with",
        "min–max. The machine is a shared 2-core VM, so absolute numbers move from run to run; ratios less so.",
        "Where a goal was missed, what the profiler showed and what changed, with before/after figures:",
        "[PERFORMANCE_NOTES.md](PERFORMANCE_NOTES.md).",
        "",
    ]
    args.out.write_text("\n".join(header) + "\n" + "\n\n".join(parts) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
