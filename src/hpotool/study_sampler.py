"""The sampler a study's run or worker samples with: its seeds derived from the config's, so that
workers, resumed runs and processes joining a study each draw values of their own."""

from __future__ import annotations

import contextlib
import os
import socket
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpotool.factories import make_sampler, sampler_class
from hpotool.instantiation import is_subclass
from hpotool.kwarg_notes import add_note
from hpotool.kwarg_types import coerce_scalars

if TYPE_CHECKING:
    import optuna

    from hpotool.config import OptimizeConfig


def study_sampler(
    opt: OptimizeConfig,
    *,
    fixed: Mapping[str, Any] | None = None,
    worker: int = 0,
    existing: int = 0,
    salt: tuple[int, ...] = (),
) -> optuna.samplers.BaseSampler:
    """The sampler of worker `worker` in a run that finds `existing` trials in the study; `fixed`: the run
    config's values (`leaf_values`), which brute force reads to tell a point drawn in part.

    A new study's first worker samples with the config's seed, worker i with seed + i. A run that resumes
    a study derives its seeds from the seed, the worker and the count: with the same seed, a resumed
    sampler would propose its first trials' values again. A process that joins a study other processes
    are sampling (`salt`: `process_salt()`) mixes in its host and process id, as the same command started
    on several machines would otherwise propose the same values. Optuna's grid sampler keeps the config's
    seed everywhere, as its seed orders the grid points that every run and worker number alike; so does its
    QMC sampler, whose seed scrambles the one sequence that every run and worker draws the next point of
    (the study counts the points drawn per seed: another seed started another sequence at its first point),
    its random sampler for what the sequence does not cover taking the derived seed.
    """
    import optuna

    cls = sampler_class(opt.sampler.name)
    qmc = is_subclass(cls, optuna.samplers.QMCSampler)
    shared = qmc or is_subclass(cls, optuna.samplers.GridSampler)  # the config's seed everywhere

    def derive(seed: int | None, shared: bool = shared) -> int | None:
        return seed if shared else _derived_seed(seed, worker, existing, salt)

    kwargs = _coerced_kwargs(cls, opt.sampler.kwargs)
    given = _given_seed(kwargs)
    if given is not None:
        kwargs["seed"] = derive(given)
    if qmc and given is None and opt.seed is None and kwargs.get("scramble"):
        # unseeded, each process scrambled a sequence of its own (and Optuna warned so in each): one the
        # study's name gives is shared by every run and worker, and differs between studies
        kwargs["seed"] = zlib.crc32(opt.study_name.encode())
    if is_subclass(cls, optuna.samplers.TPESampler):
        _pass_multivariate(kwargs, opt)
    if qmc and "independent_sampler" not in kwargs:  # its first trial, and a conditional parameter
        kwargs["independent_sampler"] = optuna.samplers.RandomSampler(
            seed=derive(given if given is not None else opt.seed, shared=False)
        )
    return make_sampler(opt.sampler.name, kwargs, seed=derive(opt.seed), space=opt.search_space, fixed=fixed)


def _derived_seed(seed: int | None, worker: int, existing: int, salt: tuple[int, ...]) -> int | None:
    """The seed worker `worker` samples with, from the config's `seed`, in a run that finds `existing` trials
    in the study (`salt`: see `study_sampler`): seed + worker in a new study, else one mixed of them all."""
    import numpy as np

    if seed is None:
        return seed
    if existing == 0 and not salt:
        return (seed + worker) % 2**32  # a sampler takes seeds below 2**32
    return int(np.random.SeedSequence([seed, worker, existing, *salt]).generate_state(1)[0])


def _coerced_kwargs(cls: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """The sampler's kwargs, a seed written 1e3 (1000.0) or "7" as the int it builds the sampler with; one
    that cannot be converted is left as it is, for make_sampler to refuse, naming the argument."""
    kwargs: dict[str, Any] = dict(given)
    with contextlib.suppress(ValueError):
        kwargs = coerce_scalars(cls, kwargs, "sampler")
    return kwargs


def _given_seed(kwargs: Mapping[str, Any]) -> int | None:
    """The seed the sampler's kwargs give, where it is an int (not a bool); else None."""
    seed = kwargs.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _pass_multivariate(kwargs: dict[str, Any], opt: OptimizeConfig) -> None:
    """TPE's `group: true` with several objectives and no `multivariate`: Optuna treats multivariate as true
    then, warning so at every trial; passed as Optuna takes it (in place, in `kwargs`), with one note."""
    if opt.multi_objective and kwargs.get("group") is True and "multivariate" not in kwargs:
        kwargs["multivariate"] = True
        add_note(
            "sampler.kwargs.group: true needs the multivariate TPE, which Optuna leaves off by default with "
            "several objectives but turns on for group; hpotool passes multivariate: true, as Optuna would "
            "(write multivariate: true to silence this note)"
        )


def process_salt() -> tuple[int, ...]:
    """This process's host, PID namespace and id, which make its seeds its own among processes sampling one
    study (containers sharing a host name each have their own namespace, and often the same pids)."""
    from hpotool.owners import pid_namespace

    return (zlib.crc32(socket.gethostname().encode()), pid_namespace() or 0, os.getpid())
