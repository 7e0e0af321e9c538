"""The storage load of a run that waits for a slot: every one of the study's `n_trials` slots is taken by its
finished trials and by RUNNING trials of another machine, and `hpotool optimize` (alone, or with
--workers) waits for one to come free. Counts what each of its processes sends the storage per second
(SQL statements and transactions, Redis commands) and the CPU it burns while it waits.

    .venv/bin/python -m benchmarks.waiting --storage postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m benchmarks.waiting --storage ... --finished 2000 --running 4 --workers 2
    .venv/bin/python -m benchmarks.waiting --storage ... --start-wait

With --start-wait it counts instead, in this process, a grid trial's wait as it starts for the point of a
trial asked before it that never picks one (another machine's process died between asking and drawing):
the whole `DRAW_WAIT_S` (`waiting.wait_for_earlier_trials`; brute force waits the same way).

Not a test: the figures depend on the machine. The study gets a unique name and is deleted after.
Each process is counted by a `sitecustomize` module put first on its PYTHONPATH, which hooks SQLAlchemy's
engine events and redis-py's `execute_command` and writes its counts and CPU time every half second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

COUNTER = """
import json, os, threading, time

_out = os.environ.get("HPOTOOL_BENCH_COUNTS")
if _out:
    _counts = {"statements": 0, "commits": 0, "redis": 0}

    def _hook():
        import sqlalchemy

        def on_execute(*_):
            _counts["statements"] += 1

        def on_commit(*_):
            _counts["commits"] += 1

        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", on_execute)
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", on_commit)
        try:
            import redis
        except ImportError:
            return
        send = redis.Redis.execute_command

        def execute_command(self, *args, **kwargs):
            _counts["redis"] += 1
            return send(self, *args, **kwargs)

        redis.Redis.execute_command = execute_command

    def _report():
        path = os.path.join(_out, f"counts-{os.getpid()}.jsonl")
        while True:
            with open(path, "a") as f:
                f.write(json.dumps({"t": time.monotonic(), "cpu": time.process_time(), **_counts}) + "\\n")
            time.sleep(0.5)

    def _start():
        threading.Thread(target=_report, daemon=True).start()

    _hook()
    _start()
    os.register_at_fork(after_in_child=_start)  # the workers a forkserver forks
"""

QUICK_FIT = """
def fit(config, report):
    metrics = {"val_loss": config["trainer"]["x"]}
    report(0, metrics)
    return metrics
"""


def _env(folder: Path, counts: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{REPO / 'src'}", "COLUMNS": "300"}
    if counts is not None:
        env["HPOTOOL_BENCH_COUNTS"] = str(counts)
    return env


def _study_url(storage: str, name: str) -> str:
    """Redis keeps each study's journal under its own prefix here, so that deleting it is simple."""
    if storage.startswith("redis://"):
        return f"{storage}?prefix={name}"
    return storage


def measure(storage: str, finished: int, running: int, seconds: float, workers: int) -> dict[str, Any]:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from hpotool.storage import make_storage

    name = f"hpotool-bench-wait-{uuid.uuid4().hex[:10]}"
    url = _study_url(storage, name)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "quick.py").write_text(QUICK_FIT)
        (folder / "sitecustomize.py").write_text(COUNTER)
        (folder / "run.yaml").write_text(
            yaml.safe_dump(
                {"seed": 0, "project": "w", "epochs": 1, "trainer": {"function": "quick:fit", "x": 0.5}}
            )
        )
        opt = {
            "study_name": name,
            "n_trials": 1,
            "seed": 0,
            "metric": "val_loss",
            "direction": "minimize",
            "storage": url,
            "search_space": {"trainer.x": {"type": "float", "low": 0.0, "high": 1.0}},
        }
        (folder / "optimize.yaml").write_text(yaml.safe_dump(opt))
        command = [sys.executable, "-m", "hpotool", "optimize", "-r", "run.yaml", "-o", "optimize.yaml"]
        subprocess.run([*command, "-q"], cwd=folder, env=_env(folder, None), check=True, capture_output=True)
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        try:
            dist = {"trainer.x": FloatDistribution(0.0, 1.0)}
            study.add_trials(
                [
                    create_trial(params={"trainer.x": i / finished}, distributions=dist, value=i / finished)
                    for i in range(1, finished)
                ]
            )
            import warnings

            warnings.simplefilter(
                "ignore", UserWarning
            )  # "Heartbeat of storage is supposed to be used with Study.optimize"
            for _ in range(running):  # another machine's trials, running as long as it does
                trial = study.ask()
                trial.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
            counts = folder / "counts"
            counts.mkdir()
            extra = ["--workers", str(workers)] if workers > 1 else []
            proc = subprocess.Popen(
                [*command, "--n-trials", str(finished + running), *extra],
                cwd=folder,
                env=_env(folder, counts),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "joining study" in line, line  # another machine's trials run: joined
            time.sleep(3.0)  # the workers start, look, and wait
            begin = time.monotonic()
            time.sleep(seconds)
            end = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
            assert len(study.get_trials(states=(TrialState.RUNNING,))) == running, "a slot came free"
            return {"processes": _rates(counts, begin, end), "seconds": end - begin}
        finally:
            _delete(storage, name, url)


def _rates(counts: Path, begin: float, end: float) -> list[dict[str, float]]:
    """Per process that queried the storage: statements, transactions, Redis commands per second and CPU %."""
    rates = []
    for path in sorted(counts.glob("counts-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        inside = [r for r in rows if begin <= r["t"] <= end]
        if len(inside) < 2:
            continue
        a, b = inside[0], inside[-1]
        span = b["t"] - a["t"]
        rate = {k: (b[k] - a[k]) / span for k in ("statements", "commits", "redis")}
        if not any(rate.values()):
            continue  # the forkserver: it never touches the storage
        rates.append({**rate, "cpu_percent": 100 * (b["cpu"] - a["cpu"]) / span})
    return rates


def _delete(storage: str, name: str, url: str) -> None:
    if storage.startswith("redis://"):
        import redis

        client = redis.Redis.from_url(storage)
        for key in client.scan_iter(f"{name}:*"):
            client.delete(key)
        return
    import optuna

    from hpotool.storage import make_storage

    optuna.delete_study(study_name=name, storage=make_storage(url))


def measure_start_wait(storage: str, finished: int) -> dict[str, float]:
    """Statements and transactions per second, and CPU %, of one grid trial's start wait for a trial another
    machine asked and never drew (`--start-wait`)."""
    import warnings

    import optuna
    import sqlalchemy
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from hpotool.grid import GridSampler
    from hpotool.storage import make_storage
    from hpotool.trial_setup import DRAW_WAIT_S

    counts = {"statements": 0, "commits": 0}

    def count(key: str) -> Any:
        return lambda *_: counts.__setitem__(key, counts[key] + 1)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count("statements"))
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", count("commits"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    name = f"hpotool-bench-start-wait-{uuid.uuid4().hex[:10]}"
    url = _study_url(storage, name)
    sampler = GridSampler({"x": [i / 10 for i in range(11)]})
    study = optuna.create_study(study_name=name, storage=make_storage(url), sampler=sampler)
    try:
        dist = {"x": FloatDistribution(0.0, 1.0)}
        study.add_trials([create_trial(params={"x": 0.5}, distributions=dist, value=0.5)] * finished)
        other = study._storage.create_new_trial(study._study_id)  # asked, never drawn
        study._storage.set_trial_user_attr(other, "worker", {"host": "machine-b.example", "pid": 4242})
        before, cpu, begin = dict(counts), time.process_time(), time.monotonic()
        sampler._wait_for_earlier_points(study, study._storage.get_trial(other).number + 1)
        span = time.monotonic() - begin
        assert span >= DRAW_WAIT_S, "the wait ended early"
        return {
            "seconds": span,
            **{k: (counts[k] - before[k]) / span for k in counts},
            "cpu_percent": 100 * (time.process_time() - cpu) / span,
        }
    finally:
        _delete(storage, name, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="a server URL (PostgreSQL, MySQL, Redis) or a file")
    parser.add_argument("--finished", type=int, default=20, help="finished trials in the study")
    parser.add_argument("--running", type=int, default=2, help="trials another machine holds RUNNING")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to count the wait")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--start-wait", action="store_true", help="count a grid trial's start wait instead")
    args = parser.parse_args()
    if args.start_wait:
        r = measure_start_wait(args.storage, args.finished)
        print(
            f"{args.storage} finished={args.finished}: a start wait of {r['seconds']:.1f} s, "
            f"{r['statements']:.1f} statements/s, {r['commits']:.1f} transactions/s, CPU {r['cpu_percent']:.1f}%"
        )
        return
    result = measure(args.storage, args.finished, args.running, args.seconds, args.workers)
    print(f"{args.storage} finished={args.finished} running={args.running} workers={args.workers}")
    for i, r in enumerate(result["processes"]):
        print(
            f"  process {i}: {r['statements']:.1f} statements/s, {r['commits']:.1f} transactions/s, "
            f"{r['redis']:.1f} Redis commands/s, CPU {r['cpu_percent']:.1f}%"
        )


if __name__ == "__main__":
    main()
