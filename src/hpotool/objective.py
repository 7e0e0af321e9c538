"""The function Optuna calls per trial: suggest -> override -> train -> report each epoch -> prune.
Pruning happens here, not in the Trainer, which knows nothing of Optuna."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial

from hpotool import kept_writes
from hpotool.config import RunConfig
from hpotool.constraints import INFEASIBLE, constraint_values, parse_constraint
from hpotool.data import MEASURES
from hpotool.epoch import AT_RUN_END, EpochResult, NonFiniteLossError
from hpotool.interrupts import deferred, raise_dropped
from hpotool.overrides import apply_overrides, leaf_values
from hpotool.pipes import look_for_a_gone_reader
from hpotool.plan import StudyPlan
from hpotool.runner import RunResult, train_run
from hpotool.sampler_hooks import failed_hook, hook_reason, sampling_method
from hpotool.storage_faults import lost_connection
from hpotool.suggestion import suggest
from hpotool.user_code import described, exit_refused, refusing_exit


class StorageLostInTrial(Exception):
    """The storage stopped answering as the objective wrote a trial's report to it (`lost_connection`): not
    the training's failure. The trial is left RUNNING, as a server gone for good would leave it, and the
    run ends; the next run marks it FAIL ("worker died") and runs its values again."""


class StudyObserver(Protocol):
    """What a display needs to follow a study. Every method must return quickly."""

    def study_started(
        self, study: optuna.Study, target: int | None, already_done: int, joined: bool = False
    ) -> None: ...
    def trial_started(self, number: int, params: Mapping[str, Any], epochs: int) -> None: ...
    def epoch_ended(self, number: int, result: EpochResult) -> None: ...
    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


def make_objective(
    plan: StudyPlan, observer: StudyObserver | None = None
) -> Callable[[optuna.Trial], float | list[float]]:
    """The function Optuna calls per trial: suggest, override, train, report each epoch, prune."""
    return _Objective(plan, observer)


class _Objective:
    """The function Optuna calls per trial (`make_objective`), with what it reads built once per study."""

    def __init__(self, plan: StudyPlan, observer: StudyObserver | None) -> None:
        opt = plan.opt
        self.plan, self.opt, self.observer = plan, opt, observer
        # Trial.report: one objective only
        self.report_metric = not opt.multi_objective and opt.metric not in MEASURES
        self.fixed = leaf_values(plan.run)  # what conditions on non-searched paths read
        self.limits = [parse_constraint(text) for text in opt.constraints]
        self.watched = tuple(dict.fromkeys(("val_loss", *opt.objectives)))  # NaN in these: the run diverged

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        """`run(trial)`, where the storage failing under one of hpotool's own writes (the trial's values,
        its attributes: a SQLite file another process keeps locked, a server gone) is `StorageLostInTrial`,
        not the training's failure. The trial was told FAIL with Optuna's "StorageInternalError: ...
        invalid data in the commit, e.g. exceeding max length" as its reason, where the write after it got
        through (a lock released), and its values never ran again."""
        training: list[BaseException] = []  # what the training itself raised: a user's own database error
        try:
            return self.run(trial, training)
        except Exception as exc:
            if isinstance(exc, (StorageLostInTrial, optuna.TrialPruned)) or any(exc is e for e in training):
                raise
            if lost_connection(exc) is None:
                raise
            raise StorageLostInTrial(str(exc)) from exc

    def run(self, trial: optuna.Trial, training: list[BaseException]) -> float | list[float]:
        """Draw `trial`'s values, train the run config they make, record and check its metrics; returns the
        value (one per objective) Optuna stores. `training` gets what the training itself raised."""
        params, config = self._draw(trial)
        if self.observer is not None:
            self.observer.trial_started(trial.number, params, config.epochs)
        history: list[dict[str, float]] = []
        result = self._train(trial, config, history, training)
        kept_writes.set_user_attr(trial, "metrics", result.metrics)
        self._record_constraints(trial, config, result.metrics, bool(history))
        return self._values(trial, config, result.metrics, len(history))

    def _draw(self, trial: optuna.Trial) -> tuple[dict[str, Any], RunConfig]:
        """The values `trial` draws from the search space, and the run config they make."""
        try:
            # A signal waits for the whole point: a trial that ends with part of one (its values are stored
            # one by one) reads to brute force as a whole point, and its retry fails ('param_name mismatch').
            with deferred(), refusing_exit():  # a user's sampler's sys.exit() left the trial RUNNING
                params = suggest(trial, self.opt.search_space, self.fixed)
            config = apply_overrides(self.plan.run, params)
        except Exception as exc:  # a sampler that cannot sample (bad kwargs), a value the config refuses
            if lost_connection(exc) is None:  # not the storage failing under its values: `__call__`
                method = sampling_method(exc)
                reason = fail_reason(exc, self.plan.run)
                give_reason(
                    exc, reason if method is None else hook_reason(self.opt.sampler.name, method, exc)
                )
            raise
        return params, config

    def _epoch_reporter(self, trial: optuna.Trial, config: RunConfig) -> Callable[[EpochResult], None]:
        """What the training of `trial` calls after each epoch: shows it, stops on a signal or a NaN, reports
        the metric and prunes where the pruner says so."""
        observer, watched, metric = self.observer, self.watched, self.opt.metric
        report_metric = self.report_metric
        pruner_name = self.opt.pruner.name

        def on_epoch_end(result: EpochResult) -> None:
            if observer is not None:
                observer.epoch_ended(trial.number, result)
            raise_dropped()  # Ctrl-C, SIGTERM a finalizer swallowed while this epoch trained
            # `optimize ... |& head -n 1`: stderr's reader gone, found at the epoch's end, not once the trial
            # has ended and its line is written (a trial of hours trained on for hours)
            look_for_a_gone_reader()
            for name in watched:  # pruned before Optuna sees a NaN it would report or store as a value
                value = result.metrics.get(name)
                if value is not None and not math.isfinite(value):
                    raise NonFiniteLossError(result.epoch, value, name)
            if report_metric and metric in result.metrics:
                value = result.metrics[metric]
                # After the last epoch the training is spent: the trial completes, whatever a pruner says
                # (successive halving with a rung there, the median pruner, marked every such trial PRUNED).
                final = result.epoch + 1 >= config.epochs  # a user's training function may run other counts
                last = config.trainer is None and final
                try:
                    kept_writes.report(trial, value, result.epoch, final=final)
                    # A user's pruner's sys.exit() would end hpotool (its os.chdir() is watched by the training's
                    # own `refusing_exit` or `chdir_undone`, which this runs inside)
                    with exit_refused():
                        prune = not last and trial.should_prune()
                except Exception as exc:  # told apart here: a user's own database error is the training's
                    if lost_connection(exc) is not None:
                        raise StorageLostInTrial(str(exc)) from exc
                    if failed_hook(exc, "prune"):
                        raise PrunerFailed(
                            f"pruner {pruner_name!r} failed in its prune(): {described(exc)}"
                        ) from exc
                    raise
                if prune:
                    raise optuna.TrialPruned(
                        f"pruned after {result.epoch + 1} of {config.epochs} epochs ({metric}={value:.4g})"
                    )

        return on_epoch_end

    def _train(
        self,
        trial: optuna.Trial,
        config: RunConfig,
        history: list[dict[str, float]],
        training: list[BaseException],
    ) -> RunResult:
        """Train `config`, filling `history`; writes the trial's history, epochs run and the reason of a
        prune or divergence however the training ends (not once the storage stopped answering)."""
        on_epoch_end = self._epoch_reporter(trial, config)
        attrs: dict[str, Any] = {}
        lost = False  # the storage stopped answering: nothing more is written to it
        try:
            return train_run(
                config, on_epoch_end=on_epoch_end, history=history, objectives=self.opt.objectives
            )
        except StorageLostInTrial:
            lost = True
            raise
        except optuna.TrialPruned as exc:
            attrs["prune_reason"] = str(exc)
            raise
        except NonFiniteLossError as exc:
            attrs["prune_reason"] = str(exc)
            # the value the epoch ended with (not in the history): MLflow logs it at its step
            attrs["diverged_at"] = {"epoch": exc.epoch, "metric": exc.name, "value": str(exc.value)}
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:
            # its reason goes with the FAIL (`trial_run._tell_failed`), as an interrupt's does
            training.append(exc)
            reason = give_reason(exc, fail_reason(exc, config))
            if self.limits and reason.startswith("out of memory"):
                # marked in exports; samplers skip FAIL trials
                attrs["constraints"] = [INFEASIBLE] * len(self.limits)
                attrs["feasible"] = False
            raise
        finally:
            if not lost:
                attrs["history"] = history
                attrs["epochs_run"] = len(history)
                for key, value in attrs.items():
                    kept_writes.set_user_attr(trial, key, value)
            _free_device_memory(config.device)

    def _record_constraints(
        self, trial: optuna.Trial, config: RunConfig, metrics: dict[str, float], reported: bool
    ) -> None:
        """Write the trial's constraint values (what Optuna's samplers and best_trial read) and whether it is
        feasible; raises where the run produced no value for one."""
        limits = self.limits
        unmeasured = [c for c in limits if c.metric not in metrics]
        if unmeasured:  # a user's training function returns what it likes: say which value is missing
            error = _unmeasured_error(config, metrics, str(unmeasured[0]), unmeasured[0].metric, reported)
            give_reason(error, described(error))
            raise error
        if limits:
            values = constraint_values(limits, metrics)
            for limit, value in zip(limits, values, strict=True):
                kept_writes.set_constraint(trial, str(limit), value)
            kept_writes.set_user_attr(trial, "constraints", values)
            kept_writes.set_user_attr(trial, "feasible", all(v <= 0 for v in values))

    def _values(
        self, trial: optuna.Trial, config: RunConfig, metrics: dict[str, float], reported: int
    ) -> float | list[float]:
        """The trial's value, one per objective, from the run's `metrics` (after `reported` epochs reported):
        raises where one is missing, and prunes the trial where one is not finite."""
        opt = self.opt
        missing = [m for m in opt.objectives if m not in metrics]
        if missing:
            error = _missing_metric_error(config, metrics, missing, bool(reported))
            give_reason(error, described(error))
            raise error
        diverged = [m for m in opt.objectives if not math.isfinite(metrics[m])]
        if diverged:  # Optuna would fail the trial with no reason recorded
            reason = f"{', '.join(f'{m} is {metrics[m]}' for m in diverged)} {AT_RUN_END}"
            kept_writes.set_user_attr(trial, "prune_reason", reason)
            # marked as a divergence in an epoch is: the pruner did not stop it (the report's pruning table,
            # export-best's advice); at its last epoch (MLflow logs the value at that step)
            name, last = diverged[0], (reported or config.epochs) - 1
            kept_writes.set_user_attr(
                trial, "diverged_at", {"epoch": max(last, 0), "metric": name, "value": str(metrics[name])}
            )
            raise optuna.TrialPruned(reason)
        if opt.multi_objective:
            return [metrics[m] for m in opt.objectives]
        return metrics[opt.metric]


def _missing_metric_error(
    config: RunConfig, metrics: dict[str, float], missing: list[str], reported: bool
) -> Exception:
    """A run that produced no value for the study's metric(s): a user's training function that returns
    none breaks hpotool's contract (the study stops at once: every trial would fail alike)."""
    if config.trainer is not None:
        from hpotool.trainer_contract import missing_metric

        return missing_metric(config.trainer.function, metrics, missing, reported)
    return ValueError(f"the run produced no {', '.join(missing)}; it produced: {', '.join(metrics)}")


def _unmeasured_error(
    config: RunConfig, metrics: dict[str, float], constraint: str, metric: str, reported: bool
) -> Exception:
    """A run that produced no value for a constraint's metric: from a user's training function, a broken
    contract (the study stops at once: every trial would fail alike)."""
    if config.trainer is not None:
        from hpotool.trainer_contract import unmeasured_constraint

        return unmeasured_constraint(config.trainer.function, metrics, constraint, metric, reported)
    return ValueError(
        f"constraints: {constraint!r} reads {metric}, which the run did not produce; it produced: "
        f"{', '.join(metrics)}"
    )


# The attribute of an exception the objective raised that holds the trial's `fail_reason` (`give_reason`).
_REASON = "_hpotool_fail_reason"


class PrunerFailed(RuntimeError):
    """The pruner raised (or called sys.exit()) in its prune(), as a trial reported an epoch: the trial's
    reason names the pruner and the method, as a sampler's does; Optuna's or the user's words alone named
    neither."""


def give_reason(exc: BaseException, reason: str) -> str:
    """Attach `reason`, the `fail_reason` of the trial `exc` ends, to `exc`; returns it. The objective does
    not write it to the trial: the trial loop tells the FAIL with it in one write (`trial_run._tell_failed`).
    Written first, a stale check's FAIL landing between the two (one that took this live process for dead)
    kept this reason over its own, on SQLite, or this process's FAIL was refused under a reason it wrote."""
    setattr(exc, _REASON, reason)
    return reason


def reason_of(exc: BaseException) -> str:
    """The `fail_reason` of a trial that `exc` ended: the one the objective gave it (`give_reason`), or else
    the error in one line (`described`)."""
    given = getattr(exc, _REASON, None)
    return given if isinstance(given, str) else described(exc)


def fail_reason(exc: BaseException, config: RunConfig) -> str:
    """The one line a failed trial records: the error (the first line of its message), where in the user's
    own code it was raised, or a hint where hpotool has one."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, PrunerFailed):  # its words already say where, and through which of the user's calls
        return str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        _free_device_memory(config.device)
        # a user's training function builds its own model and batches: hpotool's batch_size may be unused
        hint = (
            f"{config.trainer.function} needs less memory (smaller batches or model, set under trainer:)"
            if config.trainer is not None
            else f"try a smaller batch_size than {config.batch_size} or a smaller model"
        )
        return f"out of memory ({type(exc).__name__}{f': {first}' if first else ''}); {hint}"
    return described(exc)


def _free_device_memory(device: str) -> None:
    # a training function that never imported torch has none of its memory to free
    if device != "cpu" and "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
