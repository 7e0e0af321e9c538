"""The private parts of Optuna that hpotool relies on, one test each: the symbol exists, has the shape hpotool
uses (its signature, its attributes), and behaves as hpotool expects, checked through hpotool's own function.

Optuna is pinned below 6, yet a minor release may rename or change any of these: the test that fails names
the hpotool module that depends on the part, so an upgrade fails here, once and clearly, instead of in users'
runs. Where Optuna offers a public way, hpotool uses it instead (and its part is not listed here)."""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import pickle
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import write_yaml


def _private(module: str, name: str, user: str) -> Any:
    """Optuna's private `module.name`, or a failure naming the hpotool module `user` that imports it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(f"Optuna {optuna.__version__} has no {module}.{name}, which {user} imports: adapt {user}")


def _params(fn: Any) -> list[str]:
    """The names of `fn`'s parameters, `self` included."""
    return list(inspect.signature(fn).parameters)


def _takes(fn: Any, names: list[str], user: str) -> None:
    """Fail, naming `user`, unless `fn` takes the parameters `names`, in that order, first."""
    have = _params(fn)
    assert have[: len(names)] == names, (
        f"Optuna {optuna.__version__}: {fn.__qualname__} takes {have}, {user} calls it with {names}: adapt {user}"
    )


def _has(obj: Any, attrs: list[str], user: str) -> None:
    """Fail, naming `user`, unless `obj` has each private attribute of `attrs`."""
    missing = [a for a in attrs if not hasattr(obj, a)]
    assert not missing, (
        f"Optuna {optuna.__version__}: {type(obj).__qualname__} has no {', '.join(missing)}, which {user} reads: "
        f"adapt {user}"
    )


def _squashed(code: str) -> str:
    """`code` without its spaces, line breaks and quotes: a script as Python source spells it over lines."""
    return re.sub(r"[\s\"']", "", code)


def _sqlite(tmp_path: Path, **kwargs: Any) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'internals.db'}", **kwargs)


def test_trial_init_takes_the_trial_id_and_calls_before_trial() -> None:
    """sampler_hooks.created_trial reads the id of the trial a failing `before_trial` leaves RUNNING from the
    frame of `Trial.__init__(self, study, trial_id)`, which calls the sampler's `before_trial`."""
    from hpotool.sampler_hooks import created_trial

    _takes(optuna.trial.Trial.__init__, ["self", "study", "trial_id"], "hpotool.sampler_hooks.created_trial")

    class Failing(optuna.samplers.RandomSampler):
        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            raise RuntimeError("no")

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.ask()  # trial 0 well made: the id is not 0 by chance
    study.sampler = Failing()
    with pytest.raises(RuntimeError) as raised:
        study.ask()
    left = study.get_trials(deepcopy=False)[-1]
    assert left.state == TrialState.RUNNING and left.number == 1
    assert created_trial(raised.value) == left._trial_id, (
        f"Optuna {optuna.__version__}: Trial.__init__ no longer holds trial_id where before_trial raises: adapt "
        f"hpotool.sampler_hooks.created_trial"
    )


def test_study_and_trial_ids_and_the_study_s_storage() -> None:
    """`Study._storage`, `Study._study_id`, `Trial._trial_id` and `FrozenTrial._trial_id`: how hpotool writes
    to a trial and reads a study through the storage (claims, grid, heartbeat, kept_results, loop, owners,
    resume, trial_run, trial_setup, waiting, workers, failed_trials and others)."""
    from hpotool.failed_trials import fail_trial

    study = optuna.create_study()
    _has(study, ["_storage", "_study_id"], "hpotool (claims, grid, loop, trial_run, trial_setup, ...)")
    assert isinstance(study._storage, optuna.storages.BaseStorage)
    assert study._storage.get_study_id_from_name(study.study_name) == study._study_id
    trial = study.ask()
    _has(trial, ["_trial_id"], "hpotool (trial_run, trial_setup, loop, kept_writes, ...)")
    frozen = study.get_trials(deepcopy=False)[0]
    _has(frozen, ["_trial_id"], "hpotool (dead_trials, heartbeat, owners, resume, waiting, ...)")
    assert frozen._trial_id == trial._trial_id
    assert fail_trial(study._storage, trial._trial_id, "internals: failed by the test")
    assert study.get_trials(deepcopy=False)[0].state == TrialState.FAIL


def test_a_trial_s_cached_frozen_trial_keeps_a_refused_write(tmp_path: Path) -> None:
    """kept_writes and kept_results keep a refused write on `Trial._cached_frozen_trial`, the trial's copy
    of its FrozenTrial, which they read back for the trial's result."""
    from hpotool import kept_writes

    study = optuna.create_study(storage=_sqlite(tmp_path))
    trial = study.ask()
    _has(trial, ["_cached_frozen_trial"], "hpotool.kept_writes, hpotool.kept_results")
    assert isinstance(trial._cached_frozen_trial, optuna.trial.FrozenTrial)
    study.tell(trial.number, state=TrialState.FAIL)  # another process ended it
    kept_writes.report(trial, 0.5, 3, final=True)
    kept_writes.set_user_attr(trial, "k", "v")
    assert trial._cached_frozen_trial.intermediate_values == {3: 0.5}
    assert trial._cached_frozen_trial.user_attrs == {"k": "v"}


def test_the_study_s_stop_flag_and_its_optimize_loop_mark() -> None:
    """loop.run_loop runs hpotool's own optimize loop: it marks the study inside one
    (`_thread_local.in_optimize_loop`), where `study.stop()` (which a grid's `tell` calls) sets `_stop_flag`
    instead of raising; exhaustion sets the flag itself; trial_run clears `_thread_local.cached_all_trials`
    as `tell` does."""
    study = optuna.create_study()
    _has(study, ["_stop_flag", "_thread_local"], "hpotool.loop, hpotool.exhaustion")
    _has(study._thread_local, ["in_optimize_loop", "cached_all_trials"], "hpotool.loop, hpotool.trial_run")
    with pytest.raises(RuntimeError):  # outside an optimize loop
        study.stop()
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True
    try:
        study.stop()
    finally:
        study._thread_local.in_optimize_loop = False
    assert study._stop_flag is True, "study.stop() no longer sets Study._stop_flag: adapt hpotool.loop"


def test_filter_study_gives_a_hyperband_bracket_its_own_study() -> None:
    """trial_run calls the sampler's `after_trial` of a trial it fails as `tell` does, with
    `optuna.pruners._filter_study(study, frozen)`."""
    filter_study = _private("optuna.pruners", "_filter_study", "hpotool.trial_run")
    _takes(filter_study, ["study", "trial"], "hpotool.trial_run")
    study = optuna.create_study()
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    assert filter_study(study, frozen) is study
    banded = optuna.create_study(pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9))
    banded.ask()
    assert filter_study(banded, banded.get_trials(deepcopy=False)[0]) is not banded


def test_the_heartbeat_parts(tmp_path: Path) -> None:
    """heartbeat, owners and trial_run use Optuna's heartbeat: `BaseHeartbeat` and its
    `_get_stale_trial_ids(study_id)`, `is_heartbeat_enabled(storage)` and `get_heartbeat_thread(trial_id,
    storage)`."""
    from hpotool.heartbeat import fail_stale_trials, has_heartbeat

    where = "optuna.storages._heartbeat"
    base = _private(where, "BaseHeartbeat", "hpotool.heartbeat, hpotool.owners")
    _private(where, "is_heartbeat_enabled", "hpotool.heartbeat")
    thread_of = _private(where, "get_heartbeat_thread", "hpotool.trial_run")
    _takes(thread_of, ["trial_id", "storage"], "hpotool.trial_run")
    _takes(base._get_stale_trial_ids, ["self", "study_id"], "hpotool.heartbeat, hpotool.owners")
    storage = _sqlite(tmp_path, heartbeat_interval=60, grace_period=120)
    assert isinstance(storage, base) and has_heartbeat(storage)
    assert not has_heartbeat(optuna.storages.InMemoryStorage())
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    beat = thread_of(trial._trial_id, storage)
    beat.start()
    beat.join()
    assert storage._get_stale_trial_ids(study._study_id) == []
    assert fail_stale_trials(study) == []  # its heartbeat is fresh
    assert study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING


# The RDB models and columns hpotool's SQL reads and writes (rdb, rdb_reads, dead_trials, study_names, waiting)
_MODEL_COLUMNS = {
    "StudyModel": ["study_id", "study_name", "find_or_raise_by_id"],
    "StudySystemAttributeModel": ["__table__"],
    "TrialModel": [
        "__table__",
        "trial_id",
        "number",
        "study_id",
        "state",
        "datetime_start",
        "find_or_raise_by_id",
    ],
    "TrialHeartbeatModel": ["trial_id", "heartbeat", "where_trial_id"],
    "TrialIntermediateValueModel": [
        "trial_id",
        "TrialIntermediateValueType",
        "intermediate_value_to_stored_repr",
        "stored_repr_to_intermediate_value",
    ],
    "TrialParamModel": ["trial_id"],
    "TrialSystemAttributeModel": ["trial_id"],
    "TrialUserAttributeModel": ["trial_id"],
    "TrialValueModel": ["trial_id", "TrialValueType", "stored_repr_to_value"],
}


def test_the_rdb_models_and_session(tmp_path: Path) -> None:
    """hpotool's SQL on an RDB storage (rdb, rdb_reads, dead_trials, study_names, waiting) reads Optuna's
    private models and opens sessions with `_create_scoped_session(scoped_session, ignore_integrity_error)`;
    rdb.FastReadRDBStorage overrides `RDBStorage._get_trials` and writes with its `_set_trial_*_without_commit`
    helpers."""
    from optuna.storages import RDBStorage

    from hpotool.rdb import FastReadRDBStorage

    user = "hpotool.rdb, hpotool.rdb_reads, hpotool.dead_trials, hpotool.study_names, hpotool.waiting"
    models = _private("optuna.storages._rdb", "models", user)
    for model, columns in _MODEL_COLUMNS.items():
        _has(getattr(models, model, None), columns, user)
    session_of = _private("optuna.storages._rdb.storage", "_create_scoped_session", user)
    _takes(session_of, ["scoped_session", "ignore_integrity_error"], user)
    _takes(
        RDBStorage._get_trials,
        _params(FastReadRDBStorage._get_trials),
        "hpotool.rdb.FastReadRDBStorage._get_trials",
    )
    _takes(
        RDBStorage._set_trial_attr_without_commit,
        ["self", "session", "model_cls", "trial_id", "key", "value"],
        "hpotool.rdb",
    )
    _takes(
        RDBStorage._set_trial_value_without_commit,
        ["self", "session", "trial", "objective", "value"],
        "hpotool.rdb",
    )
    plain = _sqlite(tmp_path)
    _has(plain, ["scoped_session", "engine"], user)
    study = optuna.create_study(storage=plain, study_name="internals")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with session_of(plain.scoped_session) as session:
        assert session.query(models.TrialModel).count() == 3
    fast = FastReadRDBStorage(f"sqlite:///{tmp_path / 'internals.db'}")
    assert fast.get_all_trials(study._study_id) == plain.get_all_trials(study._study_id)


def test_the_cached_storage_hpotool_buffers_writes_in(tmp_path: Path) -> None:
    """rdb.BufferedRDBStorage is Optuna's `_CachedStorage` over an RDB storage: it reads its `_backend`,
    `_lock`, `_studies[study_id].trials` and `_trial_id_to_study_id_and_number`, and pickles as it does
    (workers)."""
    from hpotool.storage import make_storage

    cached = _private("optuna.storages", "_CachedStorage", "hpotool.rdb")
    storage = make_storage(f"sqlite:///{tmp_path / 'internals.db'}")
    assert isinstance(storage, cached)
    _has(storage, ["_backend", "_lock", "_studies", "_trial_id_to_study_id_and_number"], "hpotool.rdb")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.report(0.25, 1)
    study.tell(trial, 0.5)
    assert trial._trial_id in storage._trial_id_to_study_id_and_number
    _has(storage._studies[study._study_id], ["trials"], "hpotool.rdb")
    again = pickle.loads(pickle.dumps(storage))
    done = optuna.load_study(study_name=study.study_name, storage=again).trials[0]
    assert (done.value, done.intermediate_values) == (0.5, {1: 0.25})


def test_the_journal_parts(tmp_path: Path) -> None:
    """journal_writes appends a trial's FAIL and its reason as Optuna's journal writes records: its
    `JournalOperation`s, the storage's `_backend`, `_thread_lock`, `_replay_result` and
    `_sync_with_backend()`, a file backend's `_file_path` and `_lock`; journal_claims, storage and
    journal_writes read a Redis backend's `_redis` and `_prefix`, and append with the script its
    `append_logs` runs; redis_journal subclasses the backend (its `_url`, `_key_log_id`, constructor,
    reading methods and `append_logs`), journal_file the file backend (its byte offsets, constructor, reading
    and appending methods)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    from hpotool import journal_writes

    user = "hpotool.journal_writes"
    ops = _private("optuna.storages.journal._storage", "JournalOperation", user)
    _has(ops, ["SET_TRIAL_USER_ATTR", "SET_TRIAL_SYSTEM_ATTR", "SET_TRIAL_STATE_VALUES"], user)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "internals.log")))
    _has(
        storage,
        ["_backend", "_thread_lock", "_replay_result", "_sync_with_backend"],
        f"{user}, hpotool.waiting",
    )
    _has(storage._replay_result, ["worker_id", "log_number_read", "get_trial"], f"{user}, hpotool.waiting")
    _has(storage._backend, ["_file_path", "_lock"], f"{user}, hpotool.journal_claims, hpotool.journal_file")
    # journal_file.JournalFile checks, before each read and append, the bytes the backend has read
    # (`_log_number_offset`: each log number's byte offset), and appends its records as Optuna writes them
    _has(storage._backend, ["_log_number_offset"], "hpotool.journal_file")
    assert _params(JournalFileBackend.__init__) == ["self", "file_path", "lock_obj"], (
        "adapt hpotool.journal_file"
    )
    assert _params(JournalFileBackend.read_logs) == ["self", "log_number_from"], "adapt hpotool.journal_file"
    assert _params(JournalFileBackend.append_logs) == ["self", "logs"], "adapt hpotool.journal_file"
    assert 'json.dumps(log, separators=(",", ":"))' in inspect.getsource(JournalFileBackend.append_logs), (
        "JournalFileBackend.append_logs writes its records otherwise: adapt hpotool.journal_file._line"
    )
    study = optuna.create_study(storage=storage)
    running = study.ask()
    study.enqueue_trial({"x": 0.5})
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    assert journal_writes.fail_in_one_write(storage, running._trial_id, {"fail_reason": "r"}, {"m": 1})
    assert journal_writes.fail_in_one_write(
        storage, waiting._trial_id, {"fail_reason": "w"}, {}, waiting=True
    )
    assert not journal_writes.fail_in_one_write(storage, running._trial_id, {"fail_reason": "again"}, {})
    fresh = optuna.load_study(
        study_name=study.study_name,
        storage=JournalStorage(JournalFileBackend(str(tmp_path / "internals.log"))),
    )
    assert [(t.state, t.user_attrs) for t in fresh.trials] == [
        (TrialState.FAIL, {"fail_reason": "r"}),
        (TrialState.FAIL, {"fail_reason": "w"}),
    ]
    assert fresh.trials[0].system_attrs["m"] == 1
    redis = JournalRedisBackend("redis://127.0.0.1:6379/0", prefix="hpotool-internals-never-written")
    _has(redis, ["_redis", "_prefix"], "hpotool.journal_writes, hpotool.journal_claims, hpotool.storage")
    # redis_journal.RedisJournal reads logs itself (without waiting for one that is gone): it calls the
    # backend's constructor by position, names its keys with `_key_log_id`, shows `_url`, and replaces the
    # reader's two methods, which Optuna's JournalStorage calls by these parameters
    _has(redis, ["_url", "_key_log_id"], "hpotool.redis_journal")
    assert _params(JournalRedisBackend.__init__) == ["self", "url", "use_cluster", "prefix"], (
        "JournalRedisBackend takes other arguments: adapt hpotool.redis_journal.RedisJournal.__init__"
    )
    assert _params(JournalRedisBackend.read_logs) == ["self", "log_number_from"], (
        "adapt hpotool.redis_journal"
    )
    assert _params(JournalRedisBackend.load_snapshot) == ["self"], "adapt hpotool.redis_journal"
    assert _params(JournalRedisBackend.append_logs) == ["self", "logs"], "adapt hpotool.redis_journal"
    assert redis._key_log_id(7) == "hpotool-internals-never-written:log:7", "adapt hpotool.redis_journal"
    assert _squashed(journal_writes._APPEND) in _squashed(
        inspect.getsource(JournalRedisBackend.append_logs)
    ), "JournalRedisBackend.append_logs runs another script: adapt hpotool.journal_writes._APPEND"


def test_the_brute_force_tree() -> None:
    """brute_force and exhaustion rebuild the brute-force sampler's tree of points: `_TreeNode()`, its
    `param_name`, `choices_args`, `children`, `expand`, `count_unexpanded` and `is_any_expandable`, filled by
    the static `BruteForceSampler._populate_tree(tree, trials, params)`; and read `_avoid_premature_stop`."""
    from hpotool.exhaustion import brute_force_point_left

    user = "hpotool.brute_force, hpotool.exhaustion"
    node = _private("optuna.samplers._brute_force", "_TreeNode", user)
    tree = node()
    _has(
        tree,
        ["param_name", "choices_args", "children", "expand", "count_unexpanded", "is_any_expandable"],
        user,
    )
    _takes(tree.expand, ["param_name", "choices_args"], user)
    _takes(tree.count_unexpanded, ["exclude_running"], user)
    _takes(tree.is_any_expandable, ["exclude_running"], user)
    populate = inspect.getattr_static(optuna.samplers.BruteForceSampler, "_populate_tree", None)
    assert isinstance(populate, staticmethod), (
        f"BruteForceSampler._populate_tree is no staticmethod: adapt {user}"
    )
    _takes(populate.__func__, ["tree", "trials", "params"], user)
    sampler = optuna.samplers.BruteForceSampler(seed=0, avoid_premature_stop=True)
    assert sampler._avoid_premature_stop is True
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_int("x", 0, 2), n_trials=2)
    assert brute_force_point_left(study, sampler)
    study.optimize(lambda t: t.suggest_int("x", 0, 2), n_trials=1)
    assert not brute_force_point_left(study, sampler)


def test_the_grid_sampler_s_grid() -> None:
    """grid.GridSampler, hpotool's grid sampler, reads Optuna's `_search_space`, `_all_grids`,
    `_param_names`, `_n_min_trials`, `_rng.rng` and `_same_search_space(search_space)`, and overrides
    `_get_unvisited_grid_ids(study)`, which Optuna's sampler calls to pick a point."""
    from hpotool.grid import GridSampler

    user = "hpotool.grid"
    space = {"x": [0, 1], "y": ["a", "b", "c"]}
    plain = optuna.samplers.GridSampler(space, seed=0)
    _has(
        plain,
        ["_search_space", "_all_grids", "_param_names", "_n_min_trials", "_rng", "_same_search_space"],
        user,
    )
    _has(plain._rng, ["rng"], user)
    assert plain._param_names == ["x", "y"] and plain._n_min_trials == 6
    assert sorted(plain._all_grids) == [(x, y) for x in space["x"] for y in space["y"]]
    assert plain._same_search_space({"y": ["a", "b", "c"], "x": [0, 1]})
    _takes(optuna.samplers.GridSampler._get_unvisited_grid_ids, ["self", "study"], user)
    source = inspect.getsource(optuna.samplers.GridSampler)
    assert "self._get_unvisited_grid_ids(study)" in source, (
        f"GridSampler picks its points otherwise: adapt {user}"
    )
    study = optuna.create_study(sampler=GridSampler(space, seed=0))
    study.optimize(
        lambda t: t.suggest_int("x", 0, 1) + len(t.suggest_categorical("y", ["a", "b", "c"])), n_trials=6
    )
    assert sorted((t.params["x"], t.params["y"]) for t in study.trials) == sorted(plain._all_grids)


def test_the_pruners_settings(tmp_path: Path, opt_dict: dict[str, Any]) -> None:
    """sampler_and_pruner and pruner_reach read the settings a pruner was built with: PatientPruner's
    `_wrapped_pruner`, ThresholdPruner's `_lower` and `_upper`, the `_min_resource` and `_reduction_factor` of
    successive halving and hyperband, successive halving's `_min_early_stopping_rate`, hyperband's
    `_max_resource`, WilcoxonPruner's `_p_threshold` and `_n_startup_steps`, and the `_n_warmup_steps` of
    the percentile, median and threshold pruners (pruner_reach._written reads `_<kwarg>`, and takes a
    missing one for a setting left out: a rename would skip its check without a word)."""
    from hpotool.config_files import load_optimize_config
    from hpotool.errors import HpoError
    from hpotool.pruner_reach import _written, check_pruner_reach
    from hpotool.sampler_and_pruner import check_threshold_side

    pruners = optuna.pruners
    threshold = pruners.ThresholdPruner(upper=0.3)
    _has(pruners.PatientPruner(threshold, patience=1), ["_wrapped_pruner"], "hpotool.sampler_and_pruner")
    assert pruners.PatientPruner(threshold, patience=1)._wrapped_pruner is threshold
    _has(threshold, ["_lower", "_upper"], "hpotool.sampler_and_pruner")
    assert (threshold._lower, threshold._upper) == (-math.inf, 0.3)
    halving = pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    _has(halving, ["_min_resource", "_reduction_factor"], "hpotool.pruner_reach")
    assert (halving._min_resource, halving._reduction_factor) == (2, 3)
    band = pruners.HyperbandPruner(min_resource=2, max_resource=9, reduction_factor=3)
    _has(band, ["_min_resource", "_reduction_factor"], "hpotool.pruner_reach")
    assert (band._min_resource, band._reduction_factor) == (2, 3)
    wilcoxon = pruners.WilcoxonPruner(p_threshold=0.2, n_startup_steps=4)
    _has(wilcoxon, ["_p_threshold", "_n_startup_steps"], "hpotool.pruner_reach")
    assert (wilcoxon._p_threshold, wilcoxon._n_startup_steps) == (0.2, 4)
    _has(pruners.MedianPruner(), ["_n_warmup_steps"], "hpotool.pruner_reach")
    assert pruners.MedianPruner(n_warmup_steps=7)._n_warmup_steps == 7
    _has(halving, ["_min_early_stopping_rate"], "hpotool.pruner_reach")
    _has(band, ["_max_resource"], "hpotool.pruner_reach")
    for pruner, name, value in (
        (pruners.PercentilePruner(25.0, n_warmup_steps=4), "n_warmup_steps", 4),
        (pruners.MedianPruner(n_warmup_steps=7), "n_warmup_steps", 7),
        (pruners.ThresholdPruner(lower=0.1, n_warmup_steps=3), "n_warmup_steps", 3),
        (pruners.SuccessiveHalvingPruner(min_resource=2), "min_resource", 2),
        (pruners.SuccessiveHalvingPruner(min_early_stopping_rate=1), "min_early_stopping_rate", 1),
        (band, "min_resource", 2),
        (band, "max_resource", 9),
    ):
        _has(pruner, [f"_{name}"], "hpotool.pruner_reach")
        assert _written(pruner, {name: value}, name) == value, (
            f"Optuna {optuna.__version__}: {type(pruner).__name__} keeps {name} otherwise: adapt "
            f"hpotool.pruner_reach._written"
        )
    opt_dict["direction"] = "maximize"
    opt = load_optimize_config(write_yaml(tmp_path / "o.yaml", opt_dict))
    with pytest.raises(HpoError, match=r"^pruner\.kwargs\.wrapped_pruner\.kwargs\.upper: 0\.3 prunes"):
        check_threshold_side(pruners.PatientPruner(threshold, patience=1), opt)
    with pytest.raises(HpoError, match=r"^pruner\.kwargs\.n_warmup_steps: 7 leaves no step to prune at"):
        check_pruner_reach(pruners.MedianPruner(n_warmup_steps=7), {"n_warmup_steps": 7}, 5)
    with pytest.raises(HpoError, match=r"^pruner\.kwargs\.min_resource: 6 puts the first rung at step"):
        check_pruner_reach(pruners.SuccessiveHalvingPruner(min_resource=6), {"min_resource": 6}, 5)


def test_a_sampler_s_refusal_of_several_objectives() -> None:
    """sampler_and_pruner._refused_objectives knows a sampler's refusal of a multi-objective study by the
    frame that raised it, `BaseSampler._raise_error_if_multi_objective(study)`, which CmaEsSampler calls."""
    from hpotool.sampler_and_pruner import _refused_objectives

    user = "hpotool.sampler_and_pruner._refused_objectives"
    refuse = getattr(optuna.samplers.BaseSampler, "_raise_error_if_multi_objective", None)
    assert refuse is not None, (
        f"Optuna {optuna.__version__}: BaseSampler has no _raise_error_if_multi_objective, the frame {user} "
        f"looks for: adapt {user}"
    )
    _takes(refuse, ["self", "study"], user)
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.CmaEsSampler(seed=0)
    )
    with pytest.raises(ValueError) as raised:
        study.ask().suggest_float("x", 0, 1)
    assert _refused_objectives(raised.value), (
        f"Optuna {optuna.__version__}: CmaEsSampler refuses several objectives from another frame: adapt {user}"
    )
    with pytest.raises(ValueError) as other:
        optuna.create_study().ask().suggest_float("x", 1, 0)  # another ValueError: not a refusal
    assert not _refused_objectives(other.value)


def test_partial_fixed_sampler_s_base_sampler() -> None:
    """constraints.unsteered_note reads PartialFixedSampler's `_base_sampler`."""
    from hpotool.constraints import unsteered_note

    sampler = optuna.samplers.PartialFixedSampler({}, optuna.samplers.RandomSampler(seed=0))
    _has(sampler, ["_base_sampler"], "hpotool.constraints")
    assert isinstance(sampler._base_sampler, optuna.samplers.RandomSampler)
    assert unsteered_note(["val_loss <= 1"], sampler) is not None
    steered = optuna.samplers.PartialFixedSampler({}, optuna.samplers.TPESampler(seed=0))
    assert unsteered_note(["val_loss <= 1"], steered) is None


def test_tell_s_check_of_values() -> None:
    """kept_results tells a kept result as `tell` would take it: `_check_values_are_feasible(study, values)`,
    None where it takes them, else why not."""
    from hpotool.kept_results import _result

    check = _private("optuna.study._tell", "_check_values_are_feasible", "hpotool.kept_results")
    _takes(check, ["study", "values"], "hpotool.kept_results")
    study = optuna.create_study()
    assert check(study, [0.5]) is None
    assert isinstance(check(study, [math.nan]), str) and isinstance(check(study, [0.5, 0.5]), str)
    assert _result(study, {}, 0.5, None) == (TrialState.COMPLETE, [0.5])
    assert _result(study, {}, math.nan, None) == (TrialState.COMPLETE, None)


def test_the_pareto_front_of_a_list_of_trials() -> None:
    """progress prints a trial's Pareto front as it finished with
    `_get_pareto_front_trials_by_trials(trials, directions, consider_constraint)`."""
    front_of = _private(
        "optuna.study._multi_objective", "_get_pareto_front_trials_by_trials", "hpotool.progress"
    )
    _takes(front_of, ["trials", "directions", "consider_constraint"], "hpotool.progress")
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.9, 5.0], [0.8, 1.0], [0.7, 9.0]):
        study.tell(study.ask(), values)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in front_of(trials, study.directions, consider_constraint=False)] == [0, 1]


def test_the_independent_sampling_warning_hpotool_reads() -> None:
    """fallback turns the samplers' "sampled independently" warning into a note, matching the text of
    `optuna.samplers._base._INDEPENDENT_SAMPLING_WARNING_TEMPLATE`."""
    from hpotool.fallback import _WARNING

    template = _private("optuna.samplers._base", "_INDEPENDENT_SAMPLING_WARNING_TEMPLATE", "hpotool.fallback")
    text = template.format(
        param_name="optimizer.lr",
        trial_number=3,
        independent_sampler_name="RandomSampler",
        sampler_name="TPESampler",
        fallback_reason="dynamic search space is not supported for `multivariate=True`",
    )
    found = _WARNING.search(text)
    assert found is not None, (
        f"Optuna {optuna.__version__} words the warning otherwise: adapt hpotool.fallback"
    )
    assert found.group("param", "trial", "fallback", "sampler") == (
        "optimizer.lr",
        "3",
        "RandomSampler",
        "TPESampler",
    )


def test_the_timeline_s_logger() -> None:
    """report_drawing quiets the warning `plot_timeline` logs on the logger of
    `optuna.visualization._timeline`."""
    timeline = importlib.import_module("optuna.visualization._timeline")
    _has(timeline, ["_logger"], "hpotool.report_drawing")
    assert timeline._logger is logging.getLogger("optuna.visualization._timeline"), (
        "plot_timeline logs elsewhere: adapt hpotool.report_drawing"
    )


def test_the_loggers_of_the_figures_omitted_trials() -> None:
    """report_drawing.make_figures gathers the "Trial N is omitted in visualization because its objective value
    is inf or nan" lines from the loggers of `optuna.visualization._utils` and `optuna.visualization._rank`,
    by their names, into one warning."""
    import optuna.visualization as vis

    from hpotool.report_drawing import _Omitted

    user = "hpotool.report_drawing.make_figures"
    for name in ("_utils", "_rank"):
        module = importlib.import_module(f"optuna.visualization.{name}")
        _has(module, ["_logger"], user)
        assert module._logger is logging.getLogger(f"optuna.visualization.{name}"), (
            f"Optuna {optuna.__version__}: optuna.visualization.{name} logs elsewhere: adapt {user}"
        )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (1.0, math.inf, 2.0):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        study.tell(trial, value)
    logger, omitted = logging.getLogger("optuna.visualization._utils"), _Omitted()
    logger.addFilter(omitted)
    try:
        vis.plot_slice(study)
    finally:
        logger.removeFilter(omitted)
    assert omitted.numbers == {1}, (
        f"Optuna {optuna.__version__} says an omitted trial otherwise: adapt {user}"
    )


def test_the_parallel_coordinates_label() -> None:
    """figure_labels names a parallel-coordinates dimension as Optuna's `_truncate_label` does."""
    from hpotool.figure_labels import _optuna_label

    truncate = _private(
        "optuna.visualization._parallel_coordinate", "_truncate_label", "hpotool.figure_labels"
    )
    for name in ("optimizer.lr", "optimizer.weight_decay", "a" * 19, "a" * 20):
        assert _optuna_label(name) == truncate(name), "adapt hpotool.figure_labels._optuna_label"


def test_the_nop_pruner_s_module() -> None:
    """optimize_sections knows the nop pruner by its public and its module's path."""
    nop = _private("optuna.pruners._nop", "NopPruner", "hpotool.optimize_sections")
    assert nop is optuna.pruners.NopPruner


def test_a_study_s_trials_come_from_get_trials_underscored() -> None:
    """snapshot.StudySnapshot and samplers.RungTPESampler's study view override `Study._get_trials(deepcopy,
    states, use_cache)`, through which `get_trials` and `trials` read (the plots, importances and TPE)."""
    from hpotool.snapshot import StudySnapshot

    user = "hpotool.snapshot, hpotool.samplers"
    _takes(optuna.Study._get_trials, ["self", "deepcopy", "states", "use_cache"], user)
    study = optuna.create_study()
    for value in (3.0, 1.0, 2.0):
        study.tell(study.ask(), value)
    snapshot = StudySnapshot(study, study.trials[:1])
    assert [t.number for t in snapshot.get_trials()] == [0], f"Study.get_trials reads otherwise: adapt {user}"
    assert [t.number for t in snapshot.trials] == [0], f"Study.trials reads otherwise: adapt {user}"
    states = (TrialState.RUNNING,)
    assert snapshot.get_trials(states=states) == [], f"Study.get_trials reads otherwise: adapt {user}"


# Private names that hpotool's code spells as Optuna does, but that are not Optuna's
_NOT_OPTUNA_S = {
    "_run_trial": "hpotool.loop's own method (Optuna's optuna.study._optimize has one too)",
    "_modules": "torch's nn.Module._modules (tests/test_library_internals.py)",
    "_values": "hpotool.objective's own method (Optuna's FrozenTrial has a _values)",
    "_steps": "a suffix of argument names hpotool.schedulers looks for",
}


def _optuna_private_names() -> set[str]:
    """Every private name Optuna's source defines: its modules and packages, functions, classes, attributes
    and module-level variables whose names start with one underscore."""
    import ast

    defined: set[str] = set()
    root = Path(optuna.__file__).parent
    for path in root.rglob("*.py"):
        defined.update(part for part in path.relative_to(root).with_suffix("").parts if part[:1] == "_")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
    return {n for n in defined if n.startswith("_") and not n.startswith("__") and n != "_"}


def test_every_private_optuna_name_hpotool_reads_is_guarded_here() -> None:
    """Each private name of Optuna's that hpotool's code reads (an attribute, a name imported from optuna, a
    string that is one, as getattr takes it, a dotted optuna path in a string) is named in this file, where a test pins it: a new use of one fails here
    until a test above covers it (or, if it is not Optuna's, `_NOT_OPTUNA_S` says whose it is)."""
    import ast

    import hpotool

    private = _optuna_private_names()
    guarded = Path(__file__).read_text(encoding="utf-8")
    used: dict[str, set[str]] = {}
    src = Path(hpotool.__file__).parent
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.append(node.attr)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "optuna":
                names += [alias.name for alias in node.names] + (node.module or "").split(".")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):  # getattr(x, "_name")
                names += re.findall(r"\w+", node.value) if node.value[:7] == "optuna." else [node.value]
            for name in names:
                if name in private and name not in _NOT_OPTUNA_S:
                    used.setdefault(name, set()).add(str(path.relative_to(src)))
    assert len(used) > 40, f"found {len(used)} private Optuna names in {src}: the scan reads nothing"
    unguarded = {n: sorted(where) for n, where in used.items() if not re.search(rf"\b{n}\b", guarded)}
    assert not unguarded, (
        f"hpotool reads private Optuna names no test in {Path(__file__).name} pins: {unguarded}; add a test "
        f"(or use a public API)"
    )
