"""The metrics a study optimizes and constrains, checked before trial 0 against those its task measures:
a misspelt name gets the closest one, another task's metric says why this task lacks it."""

from __future__ import annotations

from hpotool.components import REGISTRIES
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.data import PreparedData, load_data, one_logit
from hpotool.errors import HpoError
from hpotool.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, never_met, shown_range
from hpotool.near_names import closest, edit_distance


def check_objectives(run: RunConfig, opt: OptimizeConfig, data: PreparedData, opt_path: str) -> None:
    """Each metric the study optimizes is one this task measures.

    Raises:
        HpoError: naming the metric, those measured, and the closest name or why the task lacks it.
    """
    for metric in opt.objectives:
        if metric not in data.metrics:
            key = "metrics" if opt.multi_objective else "metric"
            hint = _task_hint(run, data, metric)
            near = _near_name(metric, data)
            if not near and not hint and metric not in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS):
                hint = _own_metric_hint(metric)
            raise HpoError(
                f"{opt_path}: {key}: {metric!r} is not measured for this {data.task} task{near}; "
                f"choose one of: {', '.join(data.metrics)}{hint}"
            )


def _task_hint(run: RunConfig, data: PreparedData, metric: str) -> str:
    """Why the data made a task that lacks `metric`, another task's metric ("" where that is not why)."""
    binary = ", or set loss: {name: bce_with_logits} for these 0/1 labels" if data.zero_one_floats else ""
    hint = (
        f" (the targets of {run.data.name!r} are floating-point numbers, which make a regression task: "
        f"give class labels as integers for classification{binary})"
        if data.task == "regression" and metric in CLASSIFICATION_METRICS
        else ""
    )
    if (  # a user's numbers stored as integers (ages, counts): read as class labels
        data.task == "classification"
        and metric in REGRESSION_METRICS
        and run.data.name not in REGISTRIES["data"]
    ):
        hint = (
            f" (the targets of {run.data.name!r} are integers, which make a classification task of "
            f"{data.out_features} classes: to predict them as numbers give y as floats for regression, "
            f"y.float() or y.astype('float32'))"
        )
    if one_logit(run, data) and load_data(run.data).task == "regression":
        hint = (
            f" ({run.loss.name!r} reads the 0/1 float targets of {run.data.name!r} as two classes, a "
            f"classification task, where other losses make them a regression that measures {metric}: "
            f"set loss: {{name: mse}} for {metric}, or measure val_accuracy)"
        )
    return hint


def _near_name(metric: str, data: PreparedData) -> str:
    """The measured metric a misspelling (val_acuracy) is an edit or two away from, as a hint; "" for another
    task's metric, which the task hint explains, and for a metric of the user's own (val_f1 is no typo of
    val_mae)."""
    typo = (
        [] if metric in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS) else closest(metric, data.metrics, 1)
    )
    return f" (did you mean {typo[0]!r}?)" if typo and edit_distance(metric, typo[0]) <= 2 else ""


def _own_metric_hint(metric: str) -> str:
    """For a metric of the user's own (val_f1): the built-in Trainer measures only the listed ones, which
    read, unexplained, as if the name were misspelt."""
    return (
        f" (hpotool's Trainer measures only these; for a metric of your own such as {metric}, "
        f"train with a function of yours that computes it, reports it each epoch and returns it: "
        f"trainer: {{function: mypkg.train:fit}} in the run config)"
    )


def check_constraints(opt: OptimizeConfig, data: PreparedData, opt_path: str) -> None:
    """Each constraint reads a value this task measures, and some value in that value's range meets it: one
    no value can meet (`val_accuracy > 1`, `epoch_time < 0`) ran the whole study with no feasible trial.

    Raises:
        HpoError: naming the constraint and the values measured, or the range of its value.
    """
    for text in opt.constraints:
        from hpotool.constraints import parse_constraint

        limit = parse_constraint(text)
        if limit.metric not in data.metrics:
            raise HpoError(
                f"{opt_path}: constraints: {text!r} names a value this {data.task} task does not measure"
                f"{_near_name(limit.metric, data)}; choose from: {', '.join(data.metrics)}"
            )
        if never_met(limit.metric, limit.op, limit.bound):
            raise HpoError(
                f"{opt_path}: constraints: {text!r} can never be met: {shown_range(limit.metric)}, so no "
                f"trial would be feasible; give a bound inside that range, or drop the constraint"
            )
