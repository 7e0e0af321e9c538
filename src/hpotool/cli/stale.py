"""`hpotool fail-stale`: mark the running trials of dead workers FAIL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hpotool.cli.options import ReadStorageOpt
from hpotool.cli.root import app, stoppable, user_errors
from hpotool.cli.terminal import err_console, out_console
from hpotool.errors import HpoError
from hpotool.formatting import counted

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


@app.command("fail-stale", short_help="Mark the trials of dead workers failed.")
def fail_stale(
    study_name: Annotated[str, typer.Option("--study-name", help="The study to clean up.")],
    storage: ReadStorageOpt = None,
    all_running: Annotated[
        bool,
        typer.Option(
            "--all-running",
            help="Mark EVERY running trial failed (storages without heartbeat; only when no worker runs).",
        ),
    ] = False,
) -> None:
    """Mark trials of dead workers (RUNNING, heartbeat older than the grace period, or run by a process of
    this machine that is gone) FAIL and queue a retry."""
    with stoppable(_say_stopped), user_errors():
        from optuna.trial import TrialState

        from hpotool.heartbeat import has_heartbeat
        from hpotool.owners import on_this_host
        from hpotool.study_lookup import find_study

        # A missing study is named with the studies that exist, as `trials` does.
        study = find_study(study_name, storage)
        heartbeat = has_heartbeat(study._storage)
        failed = _fail_stale(study, all_running, heartbeat)  # by kind
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        # Without a heartbeat, the trials of this machine's processes still running are live ones' (the dead
        # ones' were failed above): left alone, as a heartbeat's look leaves them. It refused, exit 2, and
        # told the user to stop every worker, run beside a live `--workers` run on this machine.
        elsewhere = [t.number for t in running if heartbeat or not on_this_host(t)]
        if not heartbeat and elsewhere and not any(failed.values()):
            raise HpoError(
                f"study {study_name!r}: its running trials ({_numbers(elsewhere)}) belong to live processes or "
                f"to other machines, and this storage has no heartbeat to tell a dead worker from a live one; "
                f"stop every worker, then run again with --all-running"
            )
        _print_failed(study, failed, all_running)
        if heartbeat and running:
            _print_beating(study, running)
        elif running:
            _print_without_heartbeat(running)


def _say_stopped() -> None:
    """What a fail-stale that Ctrl-C or SIGTERM stopped leaves: each trial is failed with its retry queued,
    or left as it was (the two writes wait for each other, `dead_trials`, `heartbeat`)."""
    err_console().print(
        "interrupted: the trials it marked failed stay failed, each with its retry queued; run the same "
        "command to mark the rest",
        soft_wrap=True,
    )


# What `fail-stale` calls the trials it marks FAIL, by why: their process gone ("worker died"), their owner
# never recorded ("abandoned"), their heartbeat too old or --all-running ("stale"). Each counted in the
# singular and the plural; it called every one of them stale.
_KINDS = {
    "died": ("dead worker's trial", "dead workers' trials"),
    "abandoned": ("abandoned trial", "abandoned trials"),
    "stale": ("stale trial", "stale trials"),
}


def _fail_stale(study: optuna.Study, all_running: bool, heartbeat: bool) -> dict[str, list[int]]:
    """Mark the trials of dead workers FAIL (every running trial, with --all-running); their numbers, by
    kind (`_KINDS`). A storage that cannot be written is refused in words."""
    from hpotool.dead_trials import fail_dead_local_trials, fail_ownerless_trials
    from hpotool.heartbeat import fail_stale_trials
    from hpotool.storage_faults import cannot_write
    from hpotool.storage_settings import heartbeat_settings
    from hpotool.storage_url import storage_url_of

    try:
        # A process of this machine that is gone is surely dead, heartbeat or not (`kill -9`, an OOM kill).
        failed = {
            "died": [] if all_running else fail_dead_local_trials(study),
            "abandoned": [] if all_running else fail_ownerless_trials(study, heartbeat_settings()[1]),
        }
        failed["stale"] = (
            fail_stale_trials(study, every_running=all_running) if all_running or heartbeat else []
        )
    except Exception as exc:  # a read-only file or folder: it read the study, and cannot mark a trial
        url = storage_url_of(study)
        refused = cannot_write(url, exc) if url is not None and not isinstance(exc, HpoError) else None
        if refused is None:
            raise
        raise refused from None
    return failed


def _print_failed(study: optuna.Study, by_kind: dict[str, list[int]], all_running: bool) -> None:
    """The trials marked FAIL, each kind counted, and whose values are queued again; or that none was."""
    from hpotool.heartbeat import queued_again

    failed = sorted(n for numbers in by_kind.values() for n in numbers)
    if failed:
        kinds = [counted(len(by_kind[k]), *_KINDS[k]) for k in _KINDS if by_kind.get(k)]
        named = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
        out_console().print(
            f"marked {named} FAIL: {_numbers(failed)}; {_retries(failed, queued_again(study, failed))}"
        )
    else:
        out_console().print(f"no {'running' if all_running else 'stale'} trial: nothing marked FAIL")


def _print_beating(study: optuna.Study, running: list[FrozenTrial]) -> None:
    """The running trials left alone on a storage with a heartbeat: theirs is younger than the grace period,
    or they have none yet, and what will end each of those."""
    from hpotool.dead_trials import heartbeat_ages
    from hpotool.storage_settings import heartbeat_settings

    # A trial whose machine was killed seconds ago is left too: its heartbeat is not yet stale.
    grace = heartbeat_settings()[1]
    ages = heartbeat_ages(study)
    beating = [t.number for t in running if t.number in ages]
    if beating:
        one = len(beating) == 1
        listed = ", ".join(f"#{n} (heartbeat {ages[n]:.0f} s old)" for n in beating)
        out_console().print(
            f"left {_trials(len(beating), 'running')} alone, {'its' if one else 'their'} heartbeat younger "
            f"than the {grace} s grace period: {listed}; {'it' if one else 'each'} is a live worker's, or one "
            f"that died less than {grace} s ago (run fail-stale again once its heartbeat is older)"
        )
    unbeating = [t for t in running if t.number not in ages]
    if unbeating:
        listed = ", ".join(_without_heartbeat(t, grace) for t in unbeating)
        out_console().print(
            f"left {_trials(len(unbeating), 'running')} alone with no heartbeat yet: {listed}"
        )


def _without_heartbeat(trial: FrozenTrial, grace: float) -> str:
    """What ends a running `trial` with no heartbeat record yet: a live process's of this machine, once it
    is gone (`fail_dead_local_trials`); another machine's, or one with no owner yet, once it started over
    `grace` seconds ago (`fail_ownerless_trials`)."""
    from datetime import datetime

    from hpotool.owners import on_this_host

    if on_this_host(trial):
        pid = trial.user_attrs["worker"].get("pid")
        return f"#{trial.number} (pid {pid} of this machine, alive; fail-stale marks it FAIL once that process is gone)"
    # Optuna's datetime_start is local time, as here
    age = (datetime.now() - trial.datetime_start).total_seconds() if trial.datetime_start else 0.0
    return (
        f"#{trial.number} (started {age:.0f} s ago; run fail-stale again in {max(grace - age, 0):.0f} s or "
        f"later: past the {grace} s grace since its start, it marks FAIL a trial still without a heartbeat)"
    )


def _print_without_heartbeat(running: list[FrozenTrial]) -> None:
    """The running trials left alone on a storage without a heartbeat: those of live processes of this
    machine, and those it cannot tell (other machines', or of processes not recorded yet)."""
    from hpotool.owners import on_this_host

    here = [t for t in running if on_this_host(t)]
    if here:
        listed = ", ".join(f"#{t.number} (pid {t.user_attrs['worker']['pid']})" for t in here)
        out_console().print(
            f"left {_trials(len(here), 'running')} alone, of live processes of this machine: {listed}"
        )
    elsewhere = [t.number for t in running if not on_this_host(t)]
    if elsewhere:
        out_console().print(
            f"left {_trials(len(elsewhere), 'running')} alone, of live processes or other machines (this "
            f"storage has no heartbeat to tell a dead worker from a live one; once every worker is stopped, "
            f"run again with --all-running): {_numbers(elsewhere)}"
        )


def _numbers(trial_numbers: list[int]) -> str:
    return ", ".join(f"#{n}" for n in trial_numbers)


def _trials(count: int, kind: str) -> str:
    """`count` trials of `kind`, counted in words: "1 stale trial", "3 stale trials"."""
    return counted(count, f"{kind} trial")


def _retries(failed: list[int], queued: list[int]) -> str:
    """Whose values, of the trials `failed` marked FAIL, are queued to run again (`queued`), in words."""
    left = [n for n in failed if n not in queued]
    one = len(left if queued else failed) == 1
    why = (
        f"{'it' if one else 'they'} drew no values, or had {'its' if one else 'their'} values retried already"
    )
    if not queued:
        return f"{'its' if one else 'their'} values are not queued again ({why})"
    if not left:
        return f"{'its' if len(failed) == 1 else 'their'} values are queued to run again"
    return f"the values of {_numbers(queued)} are queued to run again, not those of {_numbers(left)} ({why})"
