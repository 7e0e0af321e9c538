"""What a worker process receives from the main process, and the configs and plan it makes of it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_errors import validate_config
from hpotool.data import load_checked
from hpotool.errors import HpoError
from hpotool.factories import make_pruner
from hpotool.overrides import leaf_values
from hpotool.plan import StudyPlan
from hpotool.study_sampler import study_sampler
from hpotool.trial_setup import Unasked


def worker_threads(n_workers: int, configured: int | None, cores: int | None = None) -> int:
    """Torch threads per worker: the cores split between the workers, or fewer if the config says so."""
    share = max(1, (cores or os.cpu_count() or 1) // n_workers)
    return min(share, configured) if configured is not None else share


def worker_device(device: str, index: int, gpu_count: int) -> str:
    """`cuda:i` round-robin over several GPUs when the config asks for cuda or auto; else unchanged."""
    if device in ("cuda", "auto") and gpu_count > 1:
        return f"cuda:{index % gpu_count}"
    return device


def trains_with_torch(run: RunConfig) -> bool:
    """Whether `run` trains with torch: hpotool's Trainer does; a training function does where the checks in
    this process found it imports torch (its module, imported to check it, or its check step did)."""
    return run.trainer is None or "torch" in sys.modules


def worker_run_config(run: RunConfig, n_workers: int, index: int, *, uses_torch: bool = True) -> RunConfig:
    """`run` as worker `index` of `n_workers` trains it: on its share of the cores, on its GPU where there
    are several. Unchanged where the run trains without torch (`uses_torch`): counting the GPUs or setting
    torch's threads would import torch in the worker (~2 s), as one process never does."""
    if not uses_torch:
        return run
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    changes = {
        "torch_threads": worker_threads(n_workers, run.torch_threads),
        "device": worker_device(run.device, index, gpus),
    }
    return validate_config(RunConfig, {**run.model_dump(), **changes}, f"worker {index}")


def worker_plan(
    run: RunConfig,
    opt: OptimizeConfig,
    storage_url: str,
    index: int,
    existing: int,
    salt: tuple[int, ...] = (),
    storage_origin: str | None = None,
) -> StudyPlan:
    """The plan of worker `index` in a run that found `existing` trials in the study: its own seed stream
    (`study_sampler.study_sampler`), so the workers' random start-up points differ. What fails is an `HpoError`
    naming the config and key: a user's dataset that raises in a worker alone (a file or library only the
    main process can reach), or a sampler's, printed a traceback in each worker."""
    try:
        sampler = study_sampler(opt, fixed=leaf_values(run), worker=index, existing=existing, salt=salt)
        pruner = make_pruner(opt.pruner.name, opt.pruner.kwargs)
    except HpoError as exc:
        raise HpoError(f"optimize config: {exc}") from None
    # none for a training function, as in the main process (`plan.prepare_study`): it loads its own, and
    # the run config's data section (the built-in digits by default) imported torch to load it
    data = load_checked(run, "run config") if run.trainer is None else None
    return StudyPlan(run, opt, data, sampler, pruner, storage_url, storage_origin=storage_origin)


@dataclass(frozen=True)
class WorkerArgs:
    """What a worker process receives (picklable: configs as plain dicts)."""

    run: dict[str, Any]
    opt: dict[str, Any]
    storage_url: str
    index: int
    n_workers: int
    max_failures: int
    existing: int  # trials in the study when the run started
    salt: tuple[int, ...] = ()  # `study_sampler.process_salt()` where other processes sample the study too
    started: float = 0.0  # when the run started (time.time() in the main process)
    # The trials no process had asked for when the main process opened the study, where it saw no other
    # process (`loop.run_trials`); None: this worker's seeds are its own already (`salt`)
    alone_since: Unasked | None = None
    # The time.monotonic() past which no worker starts a trial (`loop.run_deadline`): the main process's, set
    # as the run started, so the workers' start-up counts against the timeout; None: no timeout
    deadline: float | None = None
    storage_origin: str | None = None  # where the storage URL was given (`StudyPlan.storage_origin`)
    # The main process shows hpotool's DEBUG records (`hpotool --debug`), a failed trial's traceback: so
    # does this one.
    debug: bool = False
    # The main process's environment as the command started (`command_environ`): its HPOTOOL_* settings
    # (heartbeat, server silence, SQLite busy timeout...) and the variables libraries read as they work
    # (PGCONNECT_TIMEOUT, MLFLOW_*). A worker forked from a forkserver has the server's environment, which is
    # the one its first command had, not a later one's in the same process.
    environ: dict[str, str] = field(default_factory=dict)
    uses_torch: bool = True  # `trains_with_torch`, as the main process found it


def command_environ() -> dict[str, str]:
    """This process's environment variables, for the workers it starts."""
    return dict(os.environ)


def take_environ(environ: dict[str, str]) -> None:
    """Set this worker's environment variables to the main process's (`WorkerArgs.environ`): those a library
    reads once, as it is imported in the worker server (torch's OMP_NUM_THREADS), stay as they were read."""
    for name in [k for k in os.environ if k not in environ]:
        del os.environ[name]
    os.environ.update(environ)
