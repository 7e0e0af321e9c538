"""Log every finished trial to MLflow (optional: `pip install 'hpotool[mlflow]'`).

One MLflow run per trial, named `<study>-trial-<number>`: its parameters (dotted paths), per-epoch metrics
(step = epoch), final metrics, and tags for the state, the prune or failure reason and, in a study with
constraints, whether the trial meets them (`hpotool.feasible`). Logged from the
trial as stored, after it ends, by whichever process ran it, so it works the same for one worker or many.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from hpotool.durations import ended_unobserved, trial_end, trial_seconds, trial_start
from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from hpotool.optimize_sections import MlflowConfig
    from hpotool.plan import StudyPlan

_log = logging.getLogger("hpotool")


def _import_mlflow() -> Any:
    """`import mlflow`, without the warning pydantic before 2.10 gives of MLflow's own models as MLflow
    imports them ('Field "model_name" has conflict with protected namespace "model_"'), which every
    process logging to MLflow printed: it is about MLflow's code, and nothing a user can change."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='Field "model_', category=UserWarning)
        import mlflow
    return mlflow


def check_mlflow() -> None:
    try:
        _import_mlflow()
    except ImportError:
        raise HpoError("tracking.mlflow: MLflow is not installed; pip install 'hpotool[mlflow]'") from None


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, for a one-line warning or error."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


REQUEST_TIMEOUT_S = 10  # MLflow's is 120 s: one request to a server that takes but never answers
_ours: set[str] = set()  # the variables _quick_requests has set (the others in os.environ are the user's)


@contextmanager
def _quick_requests(retries: int = 1) -> Iterator[None]:
    """MLflow's HTTP requests with `retries` retries, each given up after REQUEST_TIMEOUT_S seconds, and no
    "View run ... at: URL" lines on stdout, unless the user set these variables.

    A server that is not there (or went away mid-study) took MLflow's 7 retries with a growing backoff:
    about four minutes of silence before trial 0, or after every trial. One that takes connections and
    never answers (hung) took 2 × 120 s once retries were 1: 4 min 23 s before the one line. With an HTTP
    server MLflow printed two lines on stdout per trial (in `--json` output too), and read the run back to
    print them.
    """
    quick = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S),
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    quick = {k: v for k, v in quick.items() if k not in os.environ or k in _ours}
    outer = {k: os.environ[k] for k in quick if k in os.environ}  # set by an enclosing _quick_requests
    os.environ.update(quick)
    _ours.update(quick)
    try:
        yield
    finally:
        for key in quick:
            if key in outer:
                os.environ[key] = outer[key]
            else:
                os.environ.pop(key, None)
                _ours.discard(key)


def metric_name(name: str) -> str:
    """`name` as MLflow takes a metric's name: each character it refuses (`top@5`, `f1(macro)`: a user's
    training function names its metrics) as `_`, at most 250 characters. MLflow refused the whole trial."""
    return re.sub(r"[^\w./\- :]", "_", name)[:250]


class MlflowTracker:
    """A trial callback: `tracker(study, frozen_trial)` logs the trial as one MLflow run."""

    def __init__(self, config: MlflowConfig, study_name: str, where: str | None = None) -> None:
        """Open the tracking store (a new MLflow database is created and migrated here) and find or create
        the experiment; an `HpoError` when MLflow refuses either, naming `where` (the optimize config
        file; None: the configs stored on a study joined by name) and what to do."""
        mlflow = _import_mlflow()

        name = config.experiment or study_name
        # MLflow logs its database's creation and migration at INFO ("Creating initial MLflow database
        # tables...") on hpotool's stderr; its warnings and errors still show.
        loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        self.off = False  # set by the first trial MLflow could not log: the rest of the run logs none
        # runs whose logging was cut off and which the store could not end then: id -> status, end, why
        self.unended: dict[str, tuple[str, int | None, str]] = {}
        prefix = f"{where}: " if where else ""
        try:
            with _quick_requests():
                self.client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
                found = self.client.get_experiment_by_name(name)
                self.experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        except Exception as exc:
            raise HpoError(
                f"{prefix}tracking.mlflow: cannot use experiment {name!r} at {config.tracking_uri!r}: "
                f"{first_line(exc)}; {_store_advice(config.tracking_uri, exc)}"
            ) from None
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
        if found is not None and found.lifecycle_stage == "deleted":  # MLflow refuses every run in it
            raise HpoError(
                f"{prefix}tracking.mlflow: experiment {name!r} at {config.tracking_uri!r} is deleted (in MLflow's "
                "trash); "
                f"restore it (MLFLOW_TRACKING_URI={shlex.quote(config.tracking_uri)} mlflow experiments restore "
                f"-x {found.experiment_id}) or set tracking.mlflow.experiment to another name"
            )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Log `trial`; after the first error, log nothing more (the caller warns once)."""
        if self.off:
            return
        try:
            with _quick_requests():
                self._log(study, trial)
        except Exception:
            self.off = True
            raise

    def _log(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # The run's start and end are the trial's (MLflow's Duration column), not the moments it was logged.
        start, end = _span(trial)
        run = self.client.create_run(
            self.experiment_id,
            start_time=start,
            run_name=f"{study.study_name}-trial-{trial.number}",
            tags={
                "hpotool.study": study.study_name,
                "hpotool.trial": str(trial.number),
                "hpotool.state": trial.state.name,
            },
        )
        run_id = run.info.run_id
        try:
            self._fill(run_id, trial, study.user_attrs)
            status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(trial.state.name, "FAILED")
            self.client.set_terminated(run_id, status=status, end_time=end)
        except BaseException as exc:  # the store went away, Ctrl-C: the run was left RUNNING for good
            self._end_cut_off(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", end, exc)
            raise

    def _fill(self, run_id: str, trial: FrozenTrial, study_attrs: dict[str, Any]) -> None:
        from optuna.distributions import CategoricalDistribution

        from hpotool.trial_table import shown_params

        choices = {k for k, d in trial.distributions.items() if isinstance(d, CategoricalDistribution)}
        # a choice as the YAML spells it (null, 5.0, [128, 64], "[1,2]" for that text); a number as stored
        shown = shown_params(study_attrs, trial)
        for key, value in trial.params.items():
            self.client.log_param(run_id, key, shown[key] if key in choices else value)
        for row in trial.user_attrs.get("history", []):
            step = int(row.get("epoch", 0))
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    self.client.log_metric(run_id, metric_name(key), float(value), step=step)
        diverged = trial.user_attrs.get("diverged_at")
        if isinstance(diverged, dict):  # the NaN or infinite value that pruned it, at its epoch
            name, value, step = diverged["metric"], float(diverged["value"]), int(diverged["epoch"])
            self.client.log_metric(run_id, metric_name(name), value, step=step)
        final: dict[str, Any] = trial.user_attrs.get("metrics", {})
        for key, value in final.items():
            self.client.log_metric(run_id, metric_name(f"final_{key}"), float(value))
        if "feasible" in trial.user_attrs:  # a constrained study: whether the study could pick this trial
            self.client.set_tag(run_id, "hpotool.feasible", str(bool(trial.user_attrs["feasible"])).lower())
        for key in ("prune_reason", "fail_reason"):
            if key in trial.user_attrs:
                self.client.set_tag(run_id, f"hpotool.{key}", str(trial.user_attrs[key])[:5000])

    def _end_cut_off(self, run_id: str, status: str, end: int | None, exc: BaseException) -> None:
        """End a run whose logging was cut off as `status`, tagged `hpotool.log_error`; where the store
        refuses that too, keep it for `close` to try again. A signal waits until it is done."""
        from hpotool.interrupts import deferred

        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else first_line(exc)
        try:
            with deferred(), _quick_requests(retries=0):  # a store gone: one try, the retries were spent
                self.client.set_terminated(run_id, status=status, end_time=end)
                self.client.set_tag(
                    run_id, "hpotool.log_error", f"logging this trial was cut off: {why}"[:5000]
                )
        except Exception:
            self.unended[run_id] = (status, end, why)

    def close(self) -> None:
        """End the runs whose logging was cut off and which the store could not end then (it had gone
        away); where it is still away, they stay RUNNING until a later run of the study ends them
        (`end_cut_off_runs`). Called as the process stops trials, after Ctrl-C or SIGTERM too."""
        from hpotool.interrupts import deferred

        for run_id, (status, end, why) in list(self.unended.items()):
            try:
                with deferred(), _quick_requests(retries=0):
                    self.client.set_terminated(run_id, status=status, end_time=end)
                    self.client.set_tag(
                        run_id, "hpotool.log_error", f"logging this trial was cut off: {why}"[:5000]
                    )
            except Exception:
                return  # still away: one try, not one per run
            del self.unended[run_id]

    def end_cut_off_runs(self, study: optuna.Study) -> None:
        """End FAILED the runs of `study` a process of this host left RUNNING as it died (killed, or its
        store away as it stopped): their trials are finished, and their process is gone. A process of
        another host is not known to be gone: its runs are left as they are. Quiet: the store answered a
        moment ago, and a store that fails now fails the next trial's logging with its warning."""
        from hpotool.owners import died_here

        if self.off:
            return
        try:
            with _quick_requests():
                running = self.client.search_runs(
                    [self.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
                )
                trials = {str(t.number): t for t in study.get_trials(deepcopy=False)}
                for run in running:
                    tags = run.data.tags
                    trial = trials.get(tags.get("hpotool.trial", ""))
                    if tags.get("hpotool.study") != study.study_name or trial is None:
                        continue
                    if trial.state.is_finished() and died_here(trial):
                        self.client.set_terminated(run.info.run_id, status="FAILED", end_time=_span(trial)[1])
                        self.client.set_tag(
                            run.info.run_id,
                            "hpotool.log_error",
                            "logging this trial was cut off: the process that logged it stopped",
                        )
        except Exception as exc:
            logging.getLogger("hpotool").debug("could not end the runs left RUNNING: %s", first_line(exc))


def _span(trial: FrozenTrial) -> tuple[int | None, int | None]:
    """The trial's start and end in MLflow's milliseconds: when hpotool asked it (`trial_start`), and the
    seconds it took after that (`trial_seconds`), since MySQL keeps Optuna's datetimes in whole seconds (a
    0.3 s trial lasted 0 s, started at its whole second). One whose worker died unobserved
    (`ended_unobserved`) ends as it started, as it shows no seconds elsewhere: its Optuna end is when another
    process found it dead (637 s for a trial killed after 1.5 s)."""
    start, seconds = trial_start(trial), trial_seconds(trial)
    if start is not None and ended_unobserved(trial):
        return _ms(start), _ms(start)
    if start is None or seconds is None:
        return _ms(start), _ms(trial_end(trial))
    return _ms(start), _ms(start + seconds)


def _ms(when: float | None) -> int | None:
    """Seconds since the epoch (`trial_start`, `trial_end`) in MLflow's milliseconds."""
    return None if when is None else round(when * 1000)


Tracker: TypeAlias = "MlflowTracker"


def make_tracker(plan: StudyPlan) -> Tracker | None:
    """The MLflow logger the config asks for, or None; an `HpoError` when MLflow cannot be used.

    The main process makes it before any worker starts, so a new MLflow database is created (MLflow runs
    its migrations) and the experiment is created once, not by every worker at the same moment.
    """
    tracking = plan.opt.tracking
    if tracking is None or tracking.mlflow is None:
        return None
    return MlflowTracker(tracking.mlflow, plan.opt.study_name, plan.opt_from)


# What urllib3 (under MLflow's requests) says of a server it could not reach or that never answered.
_UNREACHED = (
    "NewConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Connection refused",
    "timed out",
)


def _store_advice(uri: str, exc: BaseException) -> str:
    """What to do about a tracking store MLflow could not use: start the server an HTTP URI names where
    nothing answered there, else correct the URI."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.hostname and any(s in str(exc) for s in _UNREACHED):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return (
            f"is an MLflow server running at {parts.hostname}:{port}? start one (mlflow server --host "
            f"{parts.hostname} --port {port}), or correct tracking.mlflow.tracking_uri"
        )
    return (
        "correct tracking.mlflow.tracking_uri: an MLflow tracking store, such as sqlite:///mlflow.db (a "
        "local file) or http://HOST:PORT (an MLflow server)"
    )


def tracking_off(number: int, exc: BaseException) -> str:
    """The warning for trial `number`, which the tracker could not log: `exc`, in one line."""
    return (
        f"warning: MLflow could not log trial #{number} ({first_line(exc)}); tracking is off for the rest of "
        "this run, and the study goes on"
    )


def track(
    tracker: Callable[[optuna.Study, FrozenTrial], None], study: optuna.Study, trial: FrozenTrial
) -> None:
    """Log `trial`; an error of the tracker is one warning line, the tracker logs no later trial of this
    process (a server that went away cost minutes of retries after every trial), and the study goes on."""
    try:
        tracker(study, trial)
    except Exception as exc:
        _log.warning("%s", tracking_off(trial.number, exc))
