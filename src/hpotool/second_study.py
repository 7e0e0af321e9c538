"""A second study started by mistake, refused before it is made: a run that would start a new study while
the one of its name sits in a journal (studies/NAME.log), beside the optimize config run from another
folder, or under another Redis prefix, which a resume or a joining machine meant to go on with."""

from __future__ import annotations

from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING

from hpotool.errors import HpoError
from hpotool.storage import make_storage
from hpotool.storage_url import shown_url, storage_file, with_file
from hpotool.study_names import study_names

if TYPE_CHECKING:
    from hpotool.plan import StudyPlan


def refuse_a_second_study_beside_a_journal(plan: StudyPlan) -> None:
    """A study run with `--storage journal:studies/NAME.log` and resumed without it would start over in a
    new studies/NAME.db, silently: refused, naming the journal, before the SQLite file is made. The journal
    is looked for here, then where `_folders_that_may_hold` a relative storage of a study run from elsewhere
    (beside the optimize config, in the folders above): run from configs/, a resume started over in
    configs/studies/NAME.db while the study sat in the project's studies/NAME.log.

    A storage given (`--storage`, the config's `storage:`), the default file's URL written out included,
    is the one asked for: it was refused too, "without --storage", with --storage in the command.

    Raises:
        HpoError: the default SQLite file does not exist and studies/NAME.log holds a study of this name.
    """
    import os

    from hpotool.storage_url import DEFAULT_ORIGIN

    name = plan.opt.study_name
    default, journal = Path("studies") / f"{name}.db", Path("studies") / f"{name}.log"
    if plan.storage_origin != DEFAULT_ORIGIN or plan.storage_url != f"sqlite:///{default}":
        return
    if default.exists():
        return
    if _journal_holds(journal, name):
        url = f"journal:{journal}"
        raise HpoError(
            f"study {name!r} is in {url}, and without --storage a new one would start in {shown_url(plan.storage_url)}; "
            f"give --storage {quote(url)} (or storage: in the config) to resume it, or another study_name"
        )
    if plan.storage_from is None:  # joined with the configs stored on the study: no config folder
        return
    config_folder = Path(os.path.abspath(Path(plan.storage_from).parent))
    for folder in _folders_that_may_hold(config_folder):
        there = folder / journal
        if _journal_holds(there, name):
            where = (
                f"beside {plan.storage_from}" if folder == config_folder else f"in a folder above ({folder})"
            )
            raise HpoError(
                f"study {name!r} is in journal:{there}, {where}, and without --storage a new one would start in "
                f"{shown_url(plan.storage_url)} ({os.path.abspath(default)}); give --storage "
                f"{quote(f'journal:{there}')} to resume it, or another study_name"
            )


def _journal_holds(journal: Path, name: str) -> bool:
    """Whether `journal` is an Optuna journal file holding a study named `name`."""
    from hpotool.storage_files import is_optuna_journal

    if not journal.is_file() or not journal.stat().st_size or not is_optuna_journal(journal):
        return False
    return name in [s.study_name for s in make_storage(f"journal:{journal}", create=False).get_all_studies()]


def refuse_a_second_study_beside_the_config(plan: StudyPlan) -> None:
    """A relative path in the optimize config's storage (or the default studies/NAME.db) is read from the
    folder the command runs in, as every relative path in the configs is: run from another folder, a resume
    would start a new study in a new file, silently, while the study sits beside the config, or in a folder
    above it or above this one (the project's root, with the config in configs/: `cd configs` and
    `-o optimize.yaml`, or `-o ../configs/optimize.yaml` from a subfolder). Refused, naming both;
    `--storage` with the same relative path starts the new one on purpose.

    Raises:
        HpoError: the file is missing here, and the same path from one of those folders holds this study.
    """
    import os

    name, url = plan.opt.study_name, plan.storage_url
    path = storage_file(url)
    if plan.storage_from is None or path is None or path.is_absolute() or path.exists():
        return
    config_folder = Path(os.path.abspath(Path(plan.storage_from).parent))
    for folder in _folders_that_may_hold(config_folder):
        there = Path(os.path.abspath(folder / path))
        if not there.is_file() or not there.stat().st_size:
            continue
        beside = with_file(url, there)
        try:
            names = study_names(make_storage(beside, create=False))
        except HpoError:  # not an Optuna file: nothing of this study's there
            continue
        if name in names:
            where = (
                f"beside {plan.storage_from}" if folder == config_folder else f"in a folder above ({folder})"
            )
            raise HpoError(
                f"study {name!r} is in {there}, {where}, but the relative storage {shown_url(url)} is read from the "
                f"folder the command runs in, where a new study would start ({os.path.abspath(path)}); run from "
                f"{folder}, or give --storage {quote(shown_url(beside))}, to resume it (--storage {quote(shown_url(url))} "
                f"starts a new one here)"
            )


def _folders_that_may_hold(config_folder: Path) -> list[Path]:
    """Where a relative storage path of a study run from elsewhere may sit, nearest first: the optimize
    config's folder and the folders above it, then those above this one; never this folder."""
    here = Path.cwd()
    folders = [config_folder, *config_folder.parents, *here.parents]
    return [f for f in dict.fromkeys(folders) if f != here]


def refuse_a_second_study_under_another_prefix(plan: StudyPlan) -> None:
    """A machine whose `--storage redis://...` left out (or misspelt) the `?prefix=` the others give, or gave
    another database number, would start a study of its own, silently, instead of joining theirs: refused,
    naming the URL that holds it.

    Raises:
        HpoError: another journal on the Redis server holds a study of this name.
    """
    from hpotool.storage import redis_databases_holding, redis_prefixes_holding

    elsewhere = redis_prefixes_holding(plan.storage_url, plan.opt.study_name)
    where = "under another prefix"
    if not elsewhere:  # the right prefix, another database number (redis://host:6379/5?prefix=p)
        elsewhere, where = (
            redis_databases_holding(plan.storage_url, plan.opt.study_name),
            "in another database",
        )
    if elsewhere:
        raise HpoError(
            f"study {plan.opt.study_name!r} is not in {shown_url(plan.storage_url)} but {where}, "
            f"and a new one would start here; give --storage {quote(shown_url(elsewhere[0]))} to join it, or another "
            f"study_name"
        )
