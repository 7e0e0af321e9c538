"""What a user's training function promises hpotool (`user_trainer`): a dict of numbers from fit, report()
called as documented. The mistakes that break it (`TrainerOutputError`, `broke_contract`), which are the same
in every trial, and what optimize says when one stops the study (`contract_stop`)."""

from __future__ import annotations

from collections.abc import Sequence

from hpotool.errors import HpoError, chain
from hpotool.near_names import closest, edit_distance


class TrainerOutputError(TypeError):
    """The function returned something other than a dict of numbers: the user's mistake, found by hpotool
    after the function returned (so no frame of the user's code names where)."""


_CONTRACT = "hpotool_trainer_contract"  # set on what report() raises for a call that breaks its contract


def mark_broken_contract(exc: Exception) -> Exception:
    """`exc`, marked as a call that breaks the contract (`broke_contract`): `user_trainer` raises it so that
    optimize stops the study at the first such trial instead of failing every trial the same way."""
    setattr(exc, _CONTRACT, True)
    return exc


def broke_contract(exc: BaseException) -> bool:
    """Whether `exc` (or an exception that raised it) says the training function broke hpotool's contract:
    it returned no dict of numbers, or called report() wrongly. Such a mistake is the same in every trial."""
    return any(isinstance(link, TrainerOutputError) or getattr(link, _CONTRACT, False) for link in chain(exc))


def missing_metric(
    function: str, metrics: dict[str, float], missing: list[str], reported: bool
) -> TrainerOutputError:
    """The mistake of a function whose returned dict lacks the study's metric(s) `missing` (`metrics`: what
    the run produced, with the epoch_time hpotool adds where the function `reported` epochs)."""
    returned = [k for k in metrics if not (reported and k == "epoch_time")]
    which, it = ("the study's metric", "it") if len(missing) == 1 else ("metrics the study optimizes", "them")
    # A metric misspelt in the optimize config (val_r3 for the val_r2 fit returns) was told only to return
    # it from fit; and the study, made for the misspelt name, refuses the fixed config ("optimizes 'val_r3',
    # and this config says 'val_r2'"), so the line says to name a new study with it.
    misspelt = [(m, meant) for m in missing if (meant := _meant(m, returned)) is not None]
    hint = (
        f" (did you mean {misspelt[0][1]!r}, which it returned? then fix the optimize config's metric, with a new "
        f"study_name: this study is made for {misspelt[0][0]!r})"
        if misspelt
        # n_params, which hpotool measures for every run of its Trainer (`metrics: [val_loss, n_params]`), is
        # the count of a model hpotool builds: for a function's own model it was asked for as 0.5
        else " (hpotool counts n_params only of the models it builds: return your model's, "
        "sum(p.numel() for p in model.parameters()))"
        if "n_params" in missing
        else ""
    )
    return TrainerOutputError(
        f"{function} returned {{{', '.join(returned)}}}, without {', '.join(missing)}, {which}{hint}; return {it} "
        f"from fit, such as {{{missing[0]!r}: 0.5}} (the values given to report() do not count), or optimize "
        f"a metric it returns{'' if misspelt else _new_study(missing)}"
    )


def _meant(metric: str, returned: list[str]) -> str | None:
    """The metric fit returned that the study's `metric` most likely meant: one a letter or two off (val_r3
    for val_r2), or the one name that differs from it by a prefix (f1 for the val_f1 fit returns, or the
    other way round), which is no typo for closest() to find; None where none is."""
    if (near := _misspelt(metric, returned)) is not None:
        return near
    key = metric.casefold()
    affixed = [r for r in returned if r.casefold().endswith("_" + key) or key.endswith("_" + r.casefold())]
    return affixed[0] if len(affixed) == 1 else None


def _misspelt(metric: str, returned: list[str]) -> str | None:
    """The name of `returned` that `metric` looks misspelt from (two edits at most); None where none is."""
    near = closest(metric, returned, n=1)
    return near[0] if near and edit_distance(metric, near[0]) <= 2 else None


def _new_study(missing: list[str]) -> str:
    """Why optimizing another metric needs a new study: the study is made for `missing`, and refuses the
    optimize config changed to another metric ("optimizes 'f1', and this config says 'val_f1'"), where the
    line had said to run the same command."""
    return f" under a new study_name (this study is made for {', '.join(repr(m) for m in missing)})"


def unmeasured_constraint(
    function: str, metrics: dict[str, float], constraint: str, metric: str, reported: bool
) -> TrainerOutputError:
    """The mistake of a function whose returned dict lacks the value `metric` that `constraint` reads."""
    returned = [k for k in metrics if not (reported and k == "epoch_time")]
    # A constraint misspelt (val_r3 for the val_r2 fit returns), or a prefix away (loss for val_loss), as the
    # study metric's line finds it: the constraint's line found only the typo
    near = _meant(metric, returned)
    meant = f" (did you mean {near!r}, which it returned?)" if near else ""
    return TrainerOutputError(
        f"{function} returned {{{', '.join(returned)}}}, without {metric}, which constraints: {constraint} "
        f"reads{meant}; return it from fit, such as {{{metric!r}: 0.5}}, or drop the constraint"
    )


def metrics_example(objectives: Sequence[str] = (), first: str = "0.5") -> str:
    """The dict of metrics every line of a broken contract shows, to report() each epoch or return from fit:
    the study's own `objectives`, or val_loss where no study is known (`hpotool train`); `first`: the first
    one's value (the number a function gave report() in place of a dict). A study of val_r2 whose function
    returned nothing was told to return `{'val_loss': 0.5}` at the start of its line (the training's words)
    and to report `{'val_r2': 0.5}` at its end (`contract_stop`'s)."""
    names = list(objectives) or ["val_loss"]
    return "{" + ", ".join(f"{m!r}: {first if i == 0 else '0.5'}" for i, m in enumerate(names)) + "}"


class ContractStop(HpoError):
    """A trial failed on `broke_contract`: the study stops at once (see `contract_stop`)."""


def contract_stop(
    function: str, trial_number: int, reason: str, source: str | None = None, metrics: Sequence[str] = ()
) -> ContractStop:
    """What optimize says when a trial failed on `broke_contract`: the study stops at once. `source`: the run
    config file that names the function (None for a study joined by name, which has none); `metrics`: those
    the study optimizes, shown in the report() to call (`metrics_example`, as `reason` shows them)."""
    named = "trainer.function" if function in reason else f"trainer.function {function}"  # once, not twice
    where = f"{source}: " if source else ""
    return ContractStop(
        f"{where}{named}: trial {trial_number} failed: {reason}; this mistake fails every trial, "
        f"so the study stopped: fix the function (report(epoch, {metrics_example(metrics)}) after each epoch, "
        f"return a dict of numbers) and run the same command"
    )
