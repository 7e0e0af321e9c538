"""A run waiting for a slot that other processes' trials hold: how often it reads the study, how soon it
takes a slot that comes free. Counts reads and looks, never seconds."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import hpotool.waiting
import hpotool.worker_monitor
from hpotool.loop import POLL_S, run_trials
from hpotool.plan import StudyPlan, prepare_study
from hpotool.storage import make_storage
from hpotool.study import open_study
from hpotool.worker_monitor import Monitor
from tests.conftest import ask_with_heartbeat
from tests.test_workers import _study_configs, storage  # noqa: F401 (the storage fixture)

_Held = tuple[StudyPlan, optuna.Study, optuna.Study, optuna.trial.Trial]


@pytest.fixture
def held_by_another_machine(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],  # noqa: F811
) -> Callable[..., _Held]:
    """`held_by_another_machine(owned=True)`: a study of one trial, in each kind of storage (the plan, the
    study as this run opens it, and the same study opened apart, as another machine has it) whose one slot
    that machine's trial, returned, holds RUNNING (with no owner recorded where not `owned`)."""

    def make(*, owned: bool = True) -> _Held:
        plan = prepare_study(*_study_configs(tmp_path, run_dict, opt_dict, storage, 1))
        study, _ = open_study(plan)
        other = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
        trial = ask_with_heartbeat(other)
        if owned:
            trial.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
        return plan, study, other, trial

    return make


def _counting_sleep(
    monkeypatch: pytest.MonkeyPatch, on_call: Callable[[int], None], scale: float = 1.0
) -> list[float]:
    """Count the sleeps the run asks for (their lengths, in order), calling `on_call(n)` before the n-th,
    then sleep `scale` times as long (a test that counts polls, not seconds, needs no 0.1 s each). Only this
    thread's: another thread's (hpotool.silence's watcher, running once a PostgreSQL connection opened in
    this process, or a heartbeat) sleeps as it would."""
    sleeps: list[float] = []
    real = time.sleep
    mine = threading.current_thread()

    def sleep(seconds: float) -> None:
        if threading.current_thread() is not mine:
            real(seconds)
            return
        sleeps.append(seconds)
        on_call(len(sleeps))
        real(seconds * scale)

    monkeypatch.setattr(time, "sleep", sleep)
    return sleeps


def _counting_reads(monkeypatch: pytest.MonkeyPatch, study: optuna.Study) -> list[int]:
    """Count the times the run reads the study's trials (`get_all_trials` on its storage)."""
    reads: list[int] = []
    read = study._storage.get_all_trials

    def get_all_trials(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return read(*args, **kwargs)

    monkeypatch.setattr(study._storage, "get_all_trials", get_all_trials)
    return reads


def test_a_run_waiting_for_a_slot_looks_every_poll_but_reads_the_trials_once(
    held_by_another_machine: Callable[..., _Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every slot taken by another machine's trial, the run read all the study's trials every 0.1 s while it
    # waited: on PostgreSQL 7 statements a look, 62 a second and 4% of a core for each process waiting
    # (docs/PERFORMANCE_NOTES.md). Now each look is one cheap query, and the trials are read once.
    plan, study, _, _ = held_by_another_machine()
    monkeypatch.setattr(hpotool.waiting, "FULL_LOOK_S", 3600.0)  # no read for its own sake in this test
    stop = threading.Event()
    # the reads are counted per poll, not per second: a tenth of each poll's sleep is enough
    sleeps = _counting_sleep(monkeypatch, lambda n: n >= 30 and stop.set(), scale=0.1)
    reads = _counting_reads(monkeypatch, study)
    run_trials(study, plan, stop)
    assert len(sleeps) == 30 and all(s <= POLL_S for s in sleeps), sleeps  # as soon to see a slot free
    # Before: 34 on SQLite (the first look's 4 for dead and stale trials and the queue, then one a poll).
    assert len(reads) <= 5, len(reads)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]


def test_a_waiting_run_takes_a_slot_that_comes_free_at_its_next_look(
    held_by_another_machine: Callable[..., _Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cheap look must see a trial of another process end: the run takes the slot it frees at the next
    # look, as when it read every trial each poll (not at its next full read).
    plan, study, other, held = held_by_another_machine()
    monkeypatch.setattr(hpotool.waiting, "FULL_LOOK_S", 3600.0)
    stop = threading.Event()
    freed = threading.Event()
    waited: list[int] = []  # the sleeps asked for after the slot came free, before this run took it

    def on_call(n: int) -> None:
        if n == 5:
            other.tell(held, state=TrialState.FAIL)  # that machine's trial failed: its slot is free
            freed.set()
        elif freed.is_set() and len(other.get_trials(deepcopy=False)) == 1:
            waited.append(n)
        if n >= 100:  # the run never took the slot: end the test
            stop.set()

    sleeps = _counting_sleep(monkeypatch, on_call)
    run_trials(study, plan, stop)
    trials = other.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE], (trials, len(sleeps))
    assert trials[1].user_attrs["worker"]["pid"] == os.getpid()
    assert waited == [], waited  # it asked at the look right after the slot came free


class _Shown:
    """A display that keeps the numbers of the finished trials it is shown."""

    def __init__(self) -> None:
        self.finished: list[int] = []

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None: ...
    def trial_started(self, number: int, params: Any, epochs: int) -> None: ...
    def epoch_ended(self, number: int, result: Any) -> None: ...
    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.finished.append(trial.number)


def test_the_main_process_of_workers_reads_the_trials_only_once_the_study_changes(
    held_by_another_machine: Callable[..., _Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With --workers, the main process looked for newly finished trials twice a second for the whole run,
    # each look a read of every trial of the study (on PostgreSQL 7 statements), while its workers waited
    # for another machine's last trials or trained. Now a look is the one cheap query of a waiting run.
    _, study, other, held = held_by_another_machine()
    # no read for its own sake in this test
    monkeypatch.setattr(hpotool.worker_monitor, "FULL_LOOK_S", 3600.0)
    shown = _Shown()
    monitor = Monitor(study, shown)
    reads = _counting_reads(monkeypatch, study)
    for _ in range(30):
        monitor.poll()
    assert reads == [], len(reads)  # before: 30
    other.tell(held, 0.5)  # the other machine's trial ends: the next look reads the trials, and shows it
    monitor.poll()
    assert shown.finished == [held.number]
    assert len(reads) == 1


def test_a_run_waiting_for_a_trial_with_no_owner_looks_up_its_heartbeat_once_not_every_poll(
    held_by_another_machine: Callable[..., _Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slot held by a trial with no owner recorded (its process may still be about to record itself),
    # the run looked up that trial's heartbeat record every 0.1 s (one query of the heartbeat table each,
    # on PostgreSQL, MySQL, SQLite) for up to the grace period (60 s). Now at the reads of the trials only.
    import hpotool.dead_trials

    plan, study, _, _ = held_by_another_machine(owned=False)
    monkeypatch.setattr(hpotool.waiting, "FULL_LOOK_S", 3600.0)
    looked_up: list[int] = []
    beating = hpotool.dead_trials._beating

    def counted(backend: Any, trial_id: int) -> bool:
        looked_up.append(trial_id)
        return beating(backend, trial_id)

    monkeypatch.setattr(hpotool.dead_trials, "_beating", counted)
    stop = threading.Event()
    _counting_sleep(monkeypatch, lambda n: n >= 30 and stop.set(), scale=0.1)  # counted per poll
    run_trials(study, plan, stop)
    assert 1 <= len(looked_up) <= 2, len(looked_up)  # before: 30


def _fake_clock(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[int], None]) -> list[float]:
    """This thread's `time.monotonic` and `time.sleep` on a clock that a sleep moves on at once: the sleeps
    asked for, in order, calling `on_call(n)` after the n-th. Other threads keep the real clock."""
    real_sleep, real_monotonic = time.sleep, time.monotonic
    mine = threading.current_thread()
    now = [0.0]
    sleeps: list[float] = []

    def monotonic() -> float:
        return now[0] if threading.current_thread() is mine else real_monotonic()

    def sleep(seconds: float) -> None:
        if threading.current_thread() is not mine:
            real_sleep(seconds)
            return
        sleeps.append(seconds)
        now[0] += seconds
        on_call(len(sleeps))

    monkeypatch.setattr(time, "monotonic", monotonic)
    monkeypatch.setattr(time, "sleep", sleep)
    return sleeps


def _elapsed(sleeps: list[float]) -> float:
    """The test's clock after `sleeps` (from 0), added up as `_fake_clock` moves it, one sleep at a time: what
    the code's `time.monotonic()` read. `sum()` is not that on Python 3.12 and later, which add floats with
    compensation: 101 polls of 0.1 s made 10.100000000000001 there (10.09999999999998 on the clock), one
    poll past a wait the code had ended on time."""
    clock = 0.0
    for seconds in sleeps:
        clock += seconds
    return clock


@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
@pytest.mark.parametrize(
    "ends_at", [None, 3, 25]
)  # the sleep after which the earlier trial ends; None: never
def test_a_start_wait_for_an_earlier_trial_s_values_reads_the_trials_every_second_after_its_first(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    sampler: str,
    ends_at: int | None,
) -> None:
    # A grid or brute-force trial waits, as it starts, for the trials asked before it to draw their values:
    # a poll or two. For one asked by another machine's process that died before it drew, it read the
    # running trials every 0.1 s for DRAW_WAIT_S (10 s): 100 reads (59 statements a second on PostgreSQL).
    # Now every poll for the first second, then every second; an end in the first second is seen at the
    # next poll as before, a later one within a second.
    from hpotool.grid import GridSampler
    from hpotool.trial_setup import DRAW_WAIT_S, _wait_for_earlier_draws
    from hpotool.waiting import SLOW_LOOK_S
    from tests.conftest import write_configs

    opt_dict.update(sampler={"name": sampler}, n_trials=3)
    opt_dict.update(
        search_space={"model.activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]}}
    )
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study, _ = open_study(plan)
    backend = study._storage
    other = backend.create_new_trial(
        study._study_id
    )  # another machine's trial: asked, its values never drawn
    backend.set_trial_user_attr(other, "worker", {"host": "machine-b.example", "pid": 4242})
    reads = _counting_reads(monkeypatch, study)
    ended: list[int] = []

    def on_call(n: int) -> None:
        if n == ends_at:
            backend.set_trial_state_values(other, TrialState.FAIL)
            ended.append(len(reads))

    sleeps = _fake_clock(monkeypatch, on_call)
    if sampler == "grid":
        assert isinstance(study.sampler, GridSampler)
        study.sampler._wait_for_earlier_points(study, 1)
    else:
        _wait_for_earlier_draws(study, 1, plan, POLL_S)
    assert all(s == POLL_S for s in sleeps), sleeps  # a Ctrl-C is still seen at the next poll
    if ends_at is None:
        assert _elapsed(sleeps) == pytest.approx(DRAW_WAIT_S, abs=POLL_S)  # as long as before
        assert len(reads) <= 21, len(reads)  # before: 100
    elif ends_at == 3:
        assert len(sleeps) == 3 and len(reads) == ended[0] + 1  # the next poll's read saw it
    else:
        assert len(sleeps) - ends_at <= round(SLOW_LOOK_S / POLL_S), len(sleeps)
        assert len(reads) == ended[0] + 1 and len(reads) <= 14, len(reads)  # before: 26


@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_a_start_wait_that_ran_out_on_a_trial_does_not_wait_for_it_again(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sampler: str,
) -> None:
    # A trial asked by a process of another machine that died before it drew never draws: every trial asked
    # after it, in every process, waited the whole DRAW_WAIT_S (10 s) for it, until the heartbeat failed it,
    # and on a storage without one (Redis, journal files) for as long as the study ran. Now a process waits
    # for it once, says so once, and its later trials start at once.
    from hpotool.trial_setup import DRAW_WAIT_S, _wait_for_earlier_draws
    from tests.conftest import write_configs

    choices = ["relu", "gelu", "tanh"]
    opt_dict.update(storage=storage[0], study_name=storage[1], sampler={"name": sampler}, n_trials=3)
    opt_dict.update(search_space={"model.activation": {"type": "categorical", "choices": choices}})
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study, _ = open_study(plan)
    other = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
    dead = ask_with_heartbeat(other)  # the other machine's trial: asked, its process gone before it drew
    dead.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
    sleeps = _fake_clock(monkeypatch, lambda n: None)

    def start_a_trial() -> list[float]:
        """The sleeps of a trial of this process as it starts (asks, waits for earlier draws, draws)."""
        before = len(sleeps)
        trial = ask_with_heartbeat(study)  # the grid's wait is in its before_trial
        if sampler == "bruteforce":
            _wait_for_earlier_draws(study, trial.number, plan, POLL_S)
        trial.suggest_categorical("model.activation", choices)
        return sleeps[before:]

    with caplog.at_level("WARNING", logger="hpotool"):
        first, second, third = start_a_trial(), start_a_trial(), start_a_trial()
    assert _elapsed(first) == pytest.approx(DRAW_WAIT_S, abs=POLL_S)  # it waited for trial 0, as before
    assert second == [] and third == [], (len(second), len(third))  # before: 10 s each
    [said] = [r.getMessage() for r in caplog.records if r.name == "hpotool"]
    assert said.startswith("note: trial #0, asked by another process, has not drawn its values in 10 s"), said
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 4


def test_a_start_wait_that_gives_up_on_a_trial_still_waits_for_the_trials_asked_after_it(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Trial 1, of another worker, asked just after a dead trial 0 waits for it too, and draws once its own
    # wait runs out; trial 2's wait, running out at the same moment, gives up on trial 0 alone and waits
    # for trial 1's draw, so that the two do not draw the same point.
    from hpotool.trial_setup import DRAW_WAIT_S, _wait_for_earlier_draws
    from tests.conftest import write_configs

    choices = ["relu", "gelu", "tanh"]
    opt_dict.update(sampler={"name": "bruteforce"}, n_trials=3)
    opt_dict.update(search_space={"model.activation": {"type": "categorical", "choices": choices}})
    plan = prepare_study(*write_configs(tmp_path, run_dict, opt_dict))
    study, _ = open_study(plan)
    other = optuna.load_study(study_name=plan.opt.study_name, storage=study._storage)
    dead, waiting = (
        ask_with_heartbeat(other),
        ask_with_heartbeat(other),
    )  # another machine's trials: 0 dead, 1 waiting for it
    for t in (dead, waiting):
        t.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
    trial = ask_with_heartbeat(study)
    draws_at = round(DRAW_WAIT_S / POLL_S) + 3  # the sleep after which trial 1 draws: its wait ran out

    def on_call(n: int) -> None:
        if n == draws_at:
            waiting.suggest_categorical("model.activation", choices)

    sleeps = _fake_clock(monkeypatch, on_call)
    _wait_for_earlier_draws(study, trial.number, plan, POLL_S)
    assert len(sleeps) == draws_at, len(sleeps)  # before: 101, the limit, trial 1 not drawn


def _wait_notes_said(
    study: optuna.Study, plan: StudyPlan, stop: threading.Event, sleeps: list[float]
) -> list[float]:
    """Run `study`'s trials until `stop` is set; the test's clock (`_fake_clock`'s `sleeps`) as each note that
    the run waits for the study's last trials was said."""
    import logging

    said: list[float] = []

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("note: waiting for the study's last trials"):
                said.append(_elapsed(sleeps))

    handler = Said()
    logging.getLogger("hpotool").addHandler(handler)
    try:
        run_trials(study, plan, stop)
    finally:
        logging.getLogger("hpotool").removeHandler(handler)
    return said


@pytest.mark.parametrize("storage", ["journal", "redis"], indirect=True)
def test_a_run_waiting_for_other_machines_says_so_once_its_wait_has_lasted_the_grace_period(
    held_by_another_machine: Callable[..., _Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a storage without heartbeat (journal files, Redis) a run whose every slot another machine's trial
    # holds says so once, after the heartbeat's grace period (5 s here): never, before; at once would be
    # noise for the usual short wait. The clock is the test's own (a sleep moves it on), so nothing races.

    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "5")
    plan, study, _, held = held_by_another_machine()
    stop = threading.Event()
    sleeps = _fake_clock(monkeypatch, lambda n: _elapsed(sleeps) >= 20 and stop.set())
    said = _wait_notes_said(study, plan, stop, sleeps)
    assert len(said) == 1, said  # once, however long the wait
    assert 5 <= said[0] <= 5 + POLL_S, said  # as the wait's grace ended, not before, nor a poll later
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] and held.number == 0


@pytest.mark.parametrize("storage", ["journal"], indirect=True)
def test_the_note_on_waiting_for_other_machines_counts_each_wait_from_its_own_start(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    storage: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wait was timed from the first one of the run: a run that waited a moment, ran a trial, then waited
    # again said "note: waiting for the study's last trials ..." before the second wait had lasted the grace
    # period (5 s here). Every slot of 3 is another machine's; 3 s into the wait one fails, and the run
    # trains a trial in its slot, then waits again. The clock is the test's own: nothing races.

    from tests.test_workers import _study_configs

    monkeypatch.setenv("HPOTOOL_HEARTBEAT_GRACE", "5")
    plan = prepare_study(*_study_configs(tmp_path, run_dict, opt_dict, storage, 3))
    study, _ = open_study(plan)
    other = optuna.load_study(study_name=storage[1], storage=make_storage(storage[0]))
    held = [ask_with_heartbeat(other) for _ in range(3)]
    for trial in held:
        trial.set_user_attr("worker", {"host": "machine-b.example", "pid": 4242})
    stop = threading.Event()
    freed: list[float] = []  # the test's clock as the first slot came free

    def on_call(n: int) -> None:
        if not freed and _elapsed(sleeps) >= 3:
            other.tell(held[0], state=TrialState.FAIL)
            freed.append(_elapsed(sleeps))
        if _elapsed(sleeps) >= 30:
            stop.set()

    sleeps = _fake_clock(monkeypatch, on_call)
    said = _wait_notes_said(study, plan, stop, sleeps)
    states = [t.state for t in other.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING, TrialState.COMPLETE], states
    assert len(said) == 1, said
    assert said[0] >= freed[0] + 5, (freed, said)  # the second wait's own grace; before: at 5, 2 s into it
