"""Optuna's RDB storage (SQLite, PostgreSQL, MySQL) with the trial loop's hot path made cheap.

`optuna.create_study` wraps an `RDBStorage` in Optuna's `_CachedStorage`, which keeps finished trials in
memory but goes to the database for the rest: every `trial.report` is a transaction of its own, and every
pruner's `study.get_trials(states=(COMPLETE,))` re-reads all running trials with their values first
(~2 ms a call on SQLite, 20 calls a trial). Per trial that was ~4x the cost of the bookkeeping itself.
`BufferedRDBStorage` is that same cached storage with two changes, and nothing else:

- Intermediate values (`trial.report`) of this process's running trials are written in one transaction
  at most every `flush_s` seconds, and always before the trial's state changes and before anything in
  this process reads the trial back. With epochs longer than `flush_s` every report is written at once,
  as before; with sub-second epochs they are written together.
- While this process has a trial running, queries for finished trials only (what pruners and samplers
  ask) are answered from a snapshot at most `refresh_s` old, renewed as soon as this process finishes a
  trial. Other queries, and every query while no trial of this process runs, read the database.

What other processes notice: a running trial's curve can reach the database up to `flush_s` late (a live
optuna-dashboard), and a trial another worker finished reaches this worker's pruner and sampler up to
`refresh_s` late. A worker killed mid-trial loses at most `flush_s` of its curve; the trial is marked
FAIL and re-run as before. States, parameters and attributes are written through, unchanged.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
from collections.abc import Container, Mapping, Sequence
from datetime import datetime
from typing import Any

from optuna.storages import RDBStorage, _CachedStorage  # optuna.storages exports it (its __all__)
from optuna.trial import FrozenTrial, TrialState

from hpotool.rdb_reads import frozen_trials, read_trial_tables, trials_wanted

FLUSH_S = 1.0
REFRESH_S = 1.0


class FastReadRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose bulk trial read builds FrozenTrials from plain rows.

    Optuna reads trials through SQLAlchemy's ORM: ~27 mapped objects a trial (params, values, attributes,
    20 intermediate values), 7.5 s for a 10,000-trial study, while fetching the rows takes 0.2 s. This
    reads the same six tables with SQLAlchemy Core (`rdb_reads`) and converts each value exactly as Optuna's
    `_build_frozen_trial_from_trial_model` does (tests/test_rdb.py compares the two on every kind of
    value), taking the child tables' rows straight from the DB-API cursor. Everything else, writes
    included, is Optuna's own code.
    """

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        """Optuna's bulk trial read, from plain rows (see the class): the same trials, the same values."""
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        where = trials_wanted(study_id, states, included_trial_ids, trial_id_greater_than)
        with _create_scoped_session(self.scoped_session) as session:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            rows, children = read_trial_tables(session, where)
        return frozen_trials(rows, *children)

    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        *,
        reason: str | None = None,
        from_state: TrialState | None = None,
        marks: Mapping[str, Any] | None = None,
    ) -> bool:
        """Optuna's, except that the state changes by one statement that changes the row only while its
        state is still the one read, so of processes changing it at once exactly one does. `reason`: the
        trial's `fail_reason` user attr, written in the same transaction, so it lands with the state or not
        at all (written before, it stayed on a trial its owner completed in between: a COMPLETE trial
        that said "stale: no heartbeat"); `marks`, system attrs written so too (`failed_trials.RUN_FAILED`).
        `from_state`: change it only from that state (False otherwise), as a queued trial is failed only
        while no worker has taken it up.

        Optuna reads the row, then writes the new state. On SQLite its row lock (SELECT ... FOR UPDATE) is
        a no-op and the driver begins the transaction only at the write, so a process that changed the
        state between the two went unseen: two workers of a resumed `--workers` both picked up the trial a
        race left WAITING (the second to finish died on `UpdateFinishedTrialError`), and a stale check's
        FAIL landing as the owner told COMPLETE overwrote it, or the other way round (the last write won).
        Now the second to pick a trial up is told False, and the second to finish it is told
        `UpdateFinishedTrialError`, as Optuna's row lock makes PostgreSQL and MySQL say.
        """
        if state == TrialState.RUNNING and values is not None:  # not a change Optuna makes
            return super().set_trial_state_values(trial_id, state, values)
        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        trials_t = models.TrialModel.__table__
        changes: dict[str, Any] = {"state": state}
        if state == TrialState.RUNNING:
            changes["datetime_start"] = datetime.now()
        if state.is_finished():
            changes["datetime_complete"] = datetime.now()
        while True:
            try:
                with _create_scoped_session(self.scoped_session) as session:
                    trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                    read: Any = trial.state  # a TrialState once loaded
                    self.check_trial_is_updatable(trial_id, read)  # finished: its error
                    if state == TrialState.RUNNING and read != TrialState.WAITING:
                        return False  # running elsewhere, as Optuna says
                    if from_state is not None and read != from_state:
                        return False
                    if reason is not None:
                        self._set_trial_attr_without_commit(
                            session, models.TrialUserAttributeModel, trial_id, "fail_reason", reason
                        )
                    for key, value in (marks or {}).items():
                        self._set_trial_attr_without_commit(
                            session, models.TrialSystemAttributeModel, trial_id, key, value
                        )
                    result = session.connection().execute(
                        sa.update(trials_t)
                        .where(trials_t.c.trial_id == trial_id, trials_t.c.state == read)
                        .values(**changes)
                    )
                    if result.rowcount:
                        for objective, value in enumerate(values or ()):
                            self._set_trial_value_without_commit(session, trial, objective, value)
                        return True
                    session.rollback()  # the reason too
            except sa.exc.IntegrityError:
                return False
            # Another process changed the state since the read (this transaction wrote nothing): read again.

    def claim(self, study_id: int, key: str) -> bool:
        """Whether this process is the first to claim `key` in `study_id`: it inserts the study system attr
        `key` (true), which the table's unique key (study, key) lets one process insert, however many try
        at once (Optuna's `set_study_system_attr` reads, then inserts or overwrites, so each would win)."""
        import json

        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        attrs_t = models.StudySystemAttributeModel.__table__
        try:
            with _create_scoped_session(self.scoped_session) as session:
                session.connection().execute(
                    sa.insert(attrs_t).values(study_id=study_id, key=key, value_json=json.dumps(True))
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def add_to_failed_trial(self, trial_id: int, system_attrs: Mapping[str, Any]) -> bool:
        """Write `system_attrs` on FAIL trial `trial_id`, which has none of them, all in one transaction;
        whether they were written (False: it is not FAIL, or has one of them already). For the seconds the
        live owner of a trial another process failed measured (`kept_writes.record_seconds_of_failed`):
        Optuna refuses every write to a finished trial, the run's as much as a stale check's overwriting
        one. They are inserted, never overwritten: the table's unique key (trial, key) refuses the second of
        two writes, and the trial's state is read in the same transaction."""
        import json

        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        attrs_t = models.TrialSystemAttributeModel.__table__
        try:
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                if trial.state != TrialState.FAIL:
                    return False
                for key, value in system_attrs.items():
                    session.connection().execute(
                        sa.insert(attrs_t).values(trial_id=trial_id, key=key, value_json=json.dumps(value))
                    )
        except sa.exc.IntegrityError:
            return False
        return True


class _Snapshot:
    def __init__(self, trials: list[FrozenTrial]) -> None:
        self.taken = time.monotonic()
        self.finished = [t for t in trials if t.state.is_finished()]
        self.by_states: dict[frozenset[TrialState], list[FrozenTrial]] = {}

    def add(self, trial: FrozenTrial) -> None:
        numbers = [t.number for t in self.finished]
        self.finished.insert(bisect.bisect(numbers, trial.number), trial)
        self.by_states.clear()

    def select(self, states: frozenset[TrialState]) -> list[FrozenTrial]:
        if states not in self.by_states:
            self.by_states[states] = [t for t in self.finished if t.state in states]
        return self.by_states[states]


class BufferedRDBStorage(_CachedStorage):
    """Optuna's cached RDB storage with buffered reports and a finished-trials snapshot (see module)."""

    def __init__(
        self, backend: RDBStorage, *, flush_s: float = FLUSH_S, refresh_s: float = REFRESH_S
    ) -> None:
        super().__init__(backend)
        self.flush_s = flush_s
        self.refresh_s = refresh_s
        self._buffer_lock = threading.Lock()
        self._pending: dict[int, dict[int, float]] = {}  # trial id -> step -> value
        self._flushed_at: dict[int, float] = {}  # this process's running trials -> last write
        self._snapshots: dict[int, _Snapshot] = {}  # study id -> finished trials

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        del state["_buffer_lock"]
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._buffer_lock = threading.Lock()

    # -- this process's running trials

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            with self._buffer_lock:
                self._flushed_at[trial_id] = time.monotonic()
        return trial_id

    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        *,
        reason: str | None = None,
        from_state: TrialState | None = None,
        marks: Mapping[str, Any] | None = None,
    ) -> bool:
        self.flush(trial_id)
        try:
            if reason is None and from_state is None and not marks:
                changed = super().set_trial_state_values(trial_id, state, values)
            else:  # in one transaction with the state (`FastReadRDBStorage.set_trial_state_values`)
                assert isinstance(self._backend, FastReadRDBStorage)  # as `make_storage` builds it
                changed = self._backend.set_trial_state_values(
                    trial_id, state, values, reason=reason, from_state=from_state, marks=marks
                )
        finally:  # finished by another process (its error) or here: this process no longer runs it
            if state != TrialState.RUNNING:
                with self._buffer_lock:
                    self._flushed_at.pop(trial_id, None)
        if changed and state == TrialState.RUNNING:  # a WAITING trial this process picked up
            with self._buffer_lock:
                self._flushed_at[trial_id] = time.monotonic()
        if changed and state.is_finished():
            self._remember_finished(self._backend.get_trial(trial_id))
        return changed

    def _remember_finished(self, trial: FrozenTrial) -> None:
        """Put a trial this process just finished into the caches: `tell` and the next pruner or
        sampler query read it from memory. It stays listed as unfinished in Optuna's cache, so the next
        database read still picks up the stored row; finished trials never change again."""
        with self._lock:
            known = self._trial_id_to_study_id_and_number.get(trial._trial_id)
            if known is None:  # a trial this process never read (a stale one failed here)
                return
            study_id = known[0]
            self._studies[study_id].trials[trial.number] = trial
        snapshot = self._snapshots.get(study_id)
        if snapshot is not None:
            snapshot.add(trial)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        with self._buffer_lock:
            last = self._flushed_at.get(trial_id)
            if last is not None:
                self._pending.setdefault(trial_id, {})[step] = intermediate_value
        if last is None:  # not a trial this process runs: write through
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        elif time.monotonic() - last >= self.flush_s:
            self.flush(trial_id)

    def flush(self, trial_id: int | None = None, *, reading: bool = False) -> None:
        """Write the buffered intermediate values of one trial (or of all) in one transaction each.
        `reading`: before a read, which returns what the database holds, so the values of a trial another
        process has finished (a stale check that took this live process for dead), which it refuses, are
        dropped; the trial this process runs holds them still (`kept_results.keep_result` keeps them). Before, the
        read raised `UpdateFinishedTrialError`: the trial loop's, as it ended such a trial, let it out of
        the command as a traceback."""
        from optuna.exceptions import UpdateFinishedTrialError

        with self._buffer_lock:
            ids = list(self._pending) if trial_id is None else [trial_id]
            batches = [(i, self._pending.pop(i)) for i in ids if i in self._pending]
            now = time.monotonic()
            for i, _ in batches:
                if i in self._flushed_at:
                    self._flushed_at[i] = now
        for i, values in batches:
            try:
                self._write_intermediate_values(i, values)
            except UpdateFinishedTrialError:
                if not reading:
                    raise  # the trial's own write: where it learns that another process ended it

    def _write_intermediate_values(self, trial_id: int, values: dict[int, float]) -> None:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        backend = self._backend
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            state: Any = trial.state  # a TrialState once loaded
            backend.check_trial_is_updatable(trial_id, state)
            rows = session.query(models.TrialIntermediateValueModel).filter(
                models.TrialIntermediateValueModel.trial_id == trial_id
            )
            existing: dict[int, Any] = {int(row.step): row for row in rows}
            for step, value in values.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                row = existing.get(step)
                if row is None:
                    session.add(
                        models.TrialIntermediateValueModel(
                            trial_id=trial_id,
                            step=step,
                            intermediate_value=stored,
                            intermediate_value_type=kind,
                        )
                    )
                else:
                    row.intermediate_value, row.intermediate_value_type = stored, kind

    def record_heartbeat(self, trial_id: int) -> None:
        """Optuna's heartbeat, beaten from its own thread: a server that stopped answering printed that
        thread's traceback. The trial loop meets the same error at its next write and says so in one line,
        and should the server answer again, the next beat goes through."""
        from hpotool.storage_faults import lost_connection

        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if lost_connection(exc) is None:
                raise

    # -- reads

    def get_trial(self, trial_id: int) -> FrozenTrial:
        self.flush(trial_id, reading=True)
        return super().get_trial(trial_id)

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        wanted = _finished_only(states)
        with self._buffer_lock:
            running_here = bool(self._flushed_at)
        if wanted is None or not running_here or self.refresh_s <= 0:
            if wanted is None:
                self.flush(reading=True)
            return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        snapshot = self._snapshots.get(study_id)
        if snapshot is None or time.monotonic() - snapshot.taken > self.refresh_s:
            snapshot = _Snapshot(super().get_all_trials(study_id, deepcopy=False))
            self._snapshots[study_id] = snapshot
        trials = snapshot.select(wanted)
        return copy.deepcopy(trials) if deepcopy else list(trials)


def _finished_only(states: Container[TrialState] | None) -> frozenset[TrialState] | None:
    """`states` as a set when it names finished states only (a query a snapshot can answer)."""
    if not isinstance(states, (tuple, list, set, frozenset)) or not states:
        return None
    wanted = frozenset(states)
    return wanted if all(s.is_finished() for s in wanted) else None
