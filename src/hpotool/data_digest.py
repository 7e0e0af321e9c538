"""The data a study trains on, as a digest of its splits, so machines sharing a study train on one dataset.

The fingerprint holds the configs, which name the data (`data: {name: mylab.data:load, path: data/train.csv}`)
but not what the file holds: a machine whose file at that path held other rows (an older copy, another
preprocessing) joined the study and mixed its trials in, and a machine whose copy of the same file lay at
another path (`/mnt/data/train.csv`) was refused as another experiment. The digest, of the training and
validation splits hpotool made (so the split's settings count too), is stored on the study as it is created
(`ATTR`), and a command opening the study compares its own: other data is refused, and a data section that
differs only in where this machine reads the same data from is accepted with a note. A user's own training
function loads its data itself: its runs have no digest, and are not compared.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna

    from hpotool.data import PreparedData

_log = logging.getLogger("hpotool")
ATTR = "data_digest"
_DATA_KEY = "run_config.data."
_READS = re.compile(r'run_config\.data\.(?!name:)[^.:]+: ".*" -> ".*"$')


def digest_of(data: PreparedData) -> dict[str, Any]:
    """`{"sha256": the first 16 hex digits, "samples": N}` of the splits' tensors: their dtypes, shapes and
    bytes, in the order train x, train y, val x, val y."""
    import torch

    h = hashlib.sha256()
    for tensor in (data.train.x, data.train.y, data.val.x, data.val.y):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)  # a view of the bytes: no copy
    return {"sha256": h.hexdigest()[:16], "samples": len(data.train) + len(data.val)}


def record(study: optuna.Study, digest: dict[str, Any] | None) -> None:
    """Store `digest` on `study` (nothing for a run without one: a user's own training function)."""
    if digest is not None:
        study.set_user_attr(ATTR, digest)


def stored(study_attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The digest a study stored; None for a study made before hpotool kept one, or by a user's own training
    function's run, or where the attr is no such mapping."""
    value = study_attrs.get(ATTR)
    return value if isinstance(value, dict) and isinstance(value.get("sha256"), str) else None


def same_data(study_attrs: dict[str, Any], digest: dict[str, Any] | None) -> bool:
    """Whether `digest` is the one the study stored (False where either is missing)."""
    kept = stored(study_attrs)
    return kept is not None and digest is not None and kept["sha256"] == digest["sha256"]


def only_where_it_reads(changes: list[str]) -> bool:
    """Whether the `changes` of the configs (`fingerprint.differences`) are all of a text the run config's
    data section gives its dataset, other than its name: a file's path, as another machine spells it (none:
    False). Another dataset, a split's fraction or a number of the dataset's own is another experiment."""
    return bool(changes) and all(_READS.match(c) for c in changes)


def only_where_it_is_read(
    changes: list[str], study_attrs: dict[str, Any], digest: dict[str, Any] | None
) -> bool:
    """Whether the `changes` of the configs (`fingerprint.differences`) are all in the run config's data
    section and the data they read is the study's: the same dataset read from another place (this machine's
    copy of the file at another path), no other experiment."""
    return bool(changes) and all(c.startswith(_DATA_KEY) for c in changes) and same_data(study_attrs, digest)


def note_same_data_elsewhere(study: optuna.Study, changes: list[str], digest: dict[str, Any]) -> None:
    """Say that the study is joined with this machine's data section, which reads the study's data. `changes`:
    each under the run config file it comes from (`fingerprint.named_changes`: `run.yaml: data.path: "a" ->
    "b"`, as the refusals of a changed experiment name them; it said `data.path: ...`, naming no file)."""
    _log.warning(
        "note: study %r: %s, and the data read here is the study's (%s): this machine trains its trials with "
        "its own data section; the study keeps the one it was created with (export-best writes that one)",
        study.study_name,
        "; ".join(changes[:3]) + ("; ..." if len(changes) > 3 else ""),
        _described(digest),
    )


def check(
    study: optuna.Study,
    study_attrs: dict[str, Any],
    digest: dict[str, Any] | None,
    *,
    source: str,
    allow_changed: bool,
    record_it: bool = True,
) -> None:
    """Refuse to train `study` on other data than it was created with, unless `allow_changed` (which records
    this data's digest, with a note). A study without a digest gets this one (`record_it` false, for a dry
    run: nothing is written). `source`: the data section, for the line (`run.yaml: data (mylab.data:load, path:
    data/train.csv)`; `study 'NAME': run_config: data (...)` where the stored configs are run).

    Raises:
        HpoError: naming the two datasets and the ways out.
    """
    if digest is None:
        return
    kept = stored(study_attrs)
    if kept is None:
        if record_it:
            _record_first(study, digest)
        return
    if kept["sha256"] == digest["sha256"]:
        return
    since = kept.get("from_trial")
    trained = (
        f"has trained on since trial #{since}"
        if isinstance(since, int) and not isinstance(since, bool) and since > 0
        else "was created with"
    )
    if not allow_changed:
        raise HpoError(
            f"{source}: the data read here ({_described(digest)}) is not the data study {study.study_name!r} "
            f"{trained} ({_described(kept)}): what it reads holds other rows here (another copy or "
            f"version of the file, or a dataset function drawing its data at random: seed it); copy the study's "
            f"data here so every machine trains on the same, use a new study_name, or pass "
            f"--allow-changed-config to go on anyway"
        )
    if record_it:
        ran = _trials_run(study)
        record(study, {**digest, "from_trial": ran} if ran else digest)
        _log.warning(
            "note: study %r: --allow-changed-config recorded other data (%s, before %s); trials from now on "
            "train on it",
            study.study_name,
            _described(digest),
            _described(kept),
        )


def _record_first(study: optuna.Study, digest: dict[str, Any]) -> None:
    """Store the first digest of a study that has none: one made before hpotool kept it (an older hpotool's,
    resumed after an upgrade) keeps this run's from its next trial on (`from_trial`), with a note, since what
    its earlier trials read is not known. A refusal of other data then names that trial: it said the study
    "was created with" the data of the run that upgraded it."""
    ran = _trials_run(study)
    if not ran:
        record(study, digest)
        return
    record(study, {**digest, "from_trial": ran})
    _log.warning(
        "note: study %r kept no digest of its data (an older hpotool made it): it keeps this run's (%s) from "
        "trial #%d on, and commands that train its trials compare theirs with it; what the %s before read is "
        "not known",
        study.study_name,
        _described(digest),
        ran,
        "trial" if ran == 1 else f"{ran} trials",
    )


def _trials_run(study: optuna.Study) -> int:
    """The number after the last trial that started (0: none did; queued ones run with what comes next)."""
    from optuna.trial import TrialState

    started = [t.number for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    return max(started) + 1 if started else 0


def _described(digest: dict[str, Any]) -> str:
    samples = digest.get("samples")
    count = f"{samples} samples, " if isinstance(samples, int) else ""
    return f"{count}sha256 {digest['sha256']}"
