"""hpotool's fast read of a study's trials (`rdb.FastReadRDBStorage._get_trials`).

Optuna reads trials through SQLAlchemy's ORM, ~27 mapped objects a trial. This reads the same six tables
(trials, then their params, values, user attrs, system attrs and intermediate values) with SQLAlchemy Core,
takes the child tables' rows straight from the DB-API cursor, and converts each value exactly as Optuna's
`_build_frozen_trial_from_trial_model` does (tests/test_rdb.py compares the two on every kind of value).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from datetime import datetime, timezone
from typing import Any

from optuna.trial import FrozenTrial, TrialState


def trials_wanted(
    study_id: int,
    states: Container[TrialState] | None,
    included_trial_ids: set[int],
    trial_id_greater_than: int,
) -> list[Any]:
    """The WHERE clauses on the trials table that pick the trials Optuna's `_get_trials` is asked for."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    included = {i for i in included_trial_ids if i <= trial_id_greater_than}
    trials_t = models.TrialModel.__table__
    where = [trials_t.c.study_id == study_id]
    if states is not None:
        where.append(trials_t.c.state.in_([s for s in TrialState if s in states]))
    if included and trial_id_greater_than > -1:
        where.append(sa.or_(trials_t.c.trial_id.in_(included), trials_t.c.trial_id > trial_id_greater_than))
    elif trial_id_greater_than > -1:
        where.append(trials_t.c.trial_id > trial_id_greater_than)
    return where


def read_trial_tables(session: Any, where: list[Any]) -> tuple[Sequence[Any], list[Sequence[Any]]]:
    """The chosen trials' rows, then their params, values, user attrs, system attrs and curves' rows."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trials_t = models.TrialModel.__table__
    chosen = sa.select(trials_t.c.trial_id).where(*where)
    rows = (
        session.execute(
            sa.select(
                trials_t.c.trial_id,
                trials_t.c.number,
                trials_t.c.state,
                trials_t.c.datetime_start,
                trials_t.c.datetime_complete,
            )
            .where(*where)
            .order_by(trials_t.c.trial_id)
        )
    ).all()
    params = _child_rows(
        session, chosen, models.TrialParamModel, "param_name", "param_value", "distribution_json"
    )
    values = _child_rows(session, chosen, models.TrialValueModel, "objective", "value", "value_type")
    user = _child_rows(session, chosen, models.TrialUserAttributeModel, "key", "value_json")
    system = _child_rows(session, chosen, models.TrialSystemAttributeModel, "key", "value_json")
    curves = _child_rows(
        session,
        chosen,
        models.TrialIntermediateValueModel,
        "step",
        "intermediate_value",
        "intermediate_value_type",
    )
    return rows, [params, values, user, system, curves]


def _child_rows(session: Any, chosen: Any, model: Any, *columns: str) -> Sequence[Any]:
    """The rows of one child table (trial id first, then `columns`) of the `chosen` trials, as the driver's tuples."""
    import sqlalchemy as sa

    table = model.__table__
    key = next(iter(table.primary_key.columns))
    # Enum columns come back as the member's name: a dict lookup below instead of SQLAlchemy's
    # per-row processor (200,000 of them for 10,000 trials' curves).
    selected = (
        sa.type_coerce(table.c[c], sa.String) if isinstance(table.c[c].type, sa.Enum) else table.c[c]
        for c in columns
    )
    query = sa.select(table.c.trial_id, *selected).where(table.c.trial_id.in_(chosen))
    # The driver's own tuples: these columns are ints, floats and strings, which no SQLAlchemy
    # type converts on any of the three databases tests/test_rdb.py reads. Skipping its Row
    # objects takes 10,000 trials' read from 1.1 to 0.7 s.
    result = session.connection().execute(query.order_by(key))
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def frozen_trials(
    rows: Sequence[Any],
    params: Sequence[Any],
    values: Sequence[Any],
    user: Sequence[Any],
    system: Sequence[Any],
    curves: Sequence[Any],
) -> list[FrozenTrial]:
    """A FrozenTrial for each trial row, from its child tables' rows."""
    by_trial: dict[int, dict[str, Any]] = {
        r.trial_id: {"params": {}, "dists": {}, "values": {}, "user": {}, "system": {}, "curve": {}}
        for r in rows
    }
    # The six reads are separate statements, as in Optuna's ORM read (selectin loading): a trial another
    # worker created after the first one is left for the next read.
    params, values, user, system, curves = (
        [row for row in table if row[0] in by_trial] for table in (params, values, user, system, curves)
    )
    _add_params(by_trial, params)
    _add_values_and_attrs(by_trial, values, user, system)
    _add_curves(by_trial, curves)
    trials = []
    for r in rows:
        parts = by_trial[r.trial_id]
        objectives = parts["values"]
        trials.append(
            FrozenTrial(
                number=r.number,
                state=r.state,
                value=None,
                values=[objectives[i] for i in range(len(objectives))] if objectives else None,
                datetime_start=_local(r.datetime_start),
                datetime_complete=_local(r.datetime_complete),
                params=parts["params"],
                distributions=parts["dists"],
                user_attrs=parts["user"],
                system_attrs=parts["system"],
                intermediate_values=parts["curve"],
                trial_id=r.trial_id,
            )
        )
    return trials


def _add_params(by_trial: dict[int, dict[str, Any]], params: Sequence[Any]) -> None:
    """Each trial's params in their external form, and their distributions (each JSON parsed once)."""
    from optuna import distributions

    parsed: dict[str, distributions.BaseDistribution] = {}
    for trial_id, name, internal, dist_json in params:
        dist = parsed.get(dist_json)
        if dist is None:
            dist = parsed[dist_json] = distributions.json_to_distribution(dist_json)
        by_trial[trial_id]["params"][name] = dist.to_external_repr(internal)
        by_trial[trial_id]["dists"][name] = dist


def _add_values_and_attrs(
    by_trial: dict[int, dict[str, Any]], values: Sequence[Any], user: Sequence[Any], system: Sequence[Any]
) -> None:
    """Each trial's objective values, user attrs and system attrs, converted as Optuna converts them."""
    import json

    from optuna.storages._rdb import models

    value_kind = {k.name: k for k in models.TrialValueModel.TrialValueType}
    for trial_id, objective, value, kind in values:
        by_trial[trial_id]["values"][objective] = models.TrialValueModel.stored_repr_to_value(
            value, value_kind[kind]
        )
    for trial_id, key, value_json in user:
        by_trial[trial_id]["user"][key] = json.loads(value_json)
    for trial_id, key, value_json in system:
        by_trial[trial_id]["system"][key] = json.loads(value_json)


def _add_curves(by_trial: dict[int, dict[str, Any]], curves: Sequence[Any]) -> None:
    """Each trial's intermediate values, converted as Optuna converts them."""
    from optuna.storages._rdb import models

    curve_kind = {k.name: k for k in models.TrialIntermediateValueModel.TrialIntermediateValueType}
    to_value = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    for trial_id, step, value, kind in curves:  # FINITE: the stored value itself, as to_value returns it
        by_trial[trial_id]["curve"][step] = value if kind == "FINITE" else to_value(value, curve_kind[kind])


def _local(utc: datetime | None) -> datetime | None:
    """Optuna stores naive UTC and hands out naive local time (models.TrialModel.datetime_start)."""
    return None if utc is None else utc.replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)
