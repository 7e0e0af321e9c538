"""Searched parameters a study could not learn from, refused before trial 0: a value no trial trains with (an
MLP width past its layers, a per-layer option of an MLP with none, the lr under a one-cycle max_lr), one loss
under two labels (auto beside the loss it stands for), or trials measured on different validation splits."""

from __future__ import annotations

from hpotool.components import (
    auto_loss,
)
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_fields import CHECK_COMPONENTS
from hpotool.data import PreparedData, load_data
from hpotool.errors import HpoError
from hpotool.formatting import format_choice
from hpotool.param_values import boundary_values
from hpotool.run_sections import DataConfig
from hpotool.search_space import CategoricalParam, Param


def check_width_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """The built-in MLP uses the first `layers` widths of `hidden`: a searched width beyond them would be
    suggested, stored and never trained."""
    section, _, rest = path.partition(".")
    key, _, index = rest.partition(".")
    if section != "model" or key != "hidden" or not index.isdigit() or run.model.name != "mlp":
        return
    searched = opt.search_space.get("model.layers")
    needed = int(index) + 1
    if searched is not None:
        values = boundary_values(searched)
        if not all(_is_count(v) for v in values):
            return  # a choice of null uses every width of hidden; a wrong type is the model's own check's
        layers = max(values)
        given, fix = f"model.layers is searched up to {layers}", f"search model.layers up to {needed} too"
    else:
        layers = run.model.kwargs.get("layers")
        if not _is_count(layers):
            return
        given = f"the run config's model.layers is {layers}"
        fix = f"set model.layers to {needed} or more in the run config (or search it)"
    if needed <= layers:
        return
    if layers <= 0:
        uses = "has no hidden layer"
    elif layers == 1:
        uses = "uses model.hidden.0 alone"
    else:
        uses = f"uses model.hidden.0 to model.hidden.{layers - 1}"
    raise HpoError(f"search_space.{path}: has no effect: {given}, so the MLP {uses}; {fix}, or drop {path}")


def _is_count(value: object) -> bool:
    """A number of layers: an int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


_PER_HIDDEN_LAYER = ("model.dropout", "model.activation", "model.norm")  # the MLP's, applied after each


def check_layer_option_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """An MLP with no hidden layer (hidden: [] or layers: 0) is one linear layer: a searched dropout,
    activation or norm, which apply after each hidden layer, would be suggested, stored and never trained."""
    if path not in _PER_HIDDEN_LAYER or run.model.name != "mlp":
        return
    if any(
        p in ("model", "model.name", "model.layers") or p.startswith("model.hidden") for p in opt.search_space
    ):
        return  # some trials may have hidden layers
    from hpotool.models import layer_widths

    args = run.model.kwargs
    try:
        widths = layer_widths(args.get("hidden", (128,)), args.get("layers"))
    except (TypeError, ValueError):
        return  # the model's own check says what is wrong
    if widths:
        return
    if args.get("layers") == 0:
        given, fix = "model.layers: 0", "set model.layers to 1 or more, or search it"
    else:
        given, fix = "model.hidden: []", "give it a hidden layer (model.hidden: [64]), or search model.hidden"
    raise HpoError(
        f"search_space.{path}: has no effect: the MLP has no hidden layer ({given}), and {path.partition('.')[2]} "
        f"applies after each hidden layer, so every trial would train the same model; {fix}, or drop {path}"
    )


def check_lr_is_used(path: str, run: RunConfig, opt: OptimizeConfig) -> None:
    """The built-in one-cycle schedule given `max_lr` sets every lr of the run from it (max_lr / div_factor up
    to max_lr and down), so a searched optimizer.lr would be suggested, stored and never trained: every
    trial the same run."""
    if path != "optimizer.lr" or run.scheduler.name != "onecycle" or run.trainer is not None:
        return
    if {"scheduler", "scheduler.name"} & opt.search_space.keys():
        return  # a trial may draw another schedule, which reads the lr
    searched = "scheduler.max_lr" in opt.search_space
    max_lr = (run.scheduler.model_extra or {}).get("max_lr")
    if max_lr is None and not searched:
        return  # the cycle peaks at optimizer.lr
    if searched:
        given, fix = "searches scheduler.max_lr", "drop optimizer.lr from the search space"
    else:
        given = f"sets max_lr: {format_choice(max_lr)}"
        fix = (
            "search scheduler.max_lr instead, or drop max_lr from the scheduler section (the cycle then peaks "
            "at optimizer.lr)"
        )
    raise HpoError(
        f"search_space.optimizer.lr: has no effect: the 'onecycle' schedule {given}, and runs every trial's lr "
        f"from max_lr / div_factor up to max_lr and down whatever optimizer.lr is; {fix}"
    )


def check_project_is_used(path: str, run: RunConfig) -> None:
    """`project` names the folder `train` and `train-from-best` save runs under, which no trial of hpotool's
    Trainer reads: searched, it would be suggested and stored, and every trial would train the same run (a
    user's training function gets the run config, and may read it)."""
    if path == "project" and run.trainer is None:
        raise HpoError(
            "search_space.project: has no effect: project only names the folder train and train-from-best "
            "save runs under (runs/<project>/), which no trial reads, so every trial would train the same "
            "run; set project in the run config, and drop search_space.project"
        )


# Keys that choose the validation split: searched, every trial is measured on other samples.
SPLIT_PATHS = {
    path: f"every trial would be measured on another validation split, so their {{metrics}} would not compare "
    f"(the sampler would favour the easiest split); set {path} in the run config instead" + hint
    for path, hint in (
        ("data.val_fraction", " (to train trials on less data, search data.subset_fraction)"),
        ("data.split_seed", ""),
    )
}


def check_one_split(param: Param, opt: OptimizeConfig) -> None:
    """Whole data sections as choices that split the data differently would measure trials on different
    validation splits, as searching `data.val_fraction` would (`check_section_param` has validated them)."""
    sections = [
        DataConfig.model_validate(c, context={CHECK_COMPONENTS: False}) for c in boundary_values(param)
    ]
    for key in ("val_fraction", "split_seed"):
        values = list(dict.fromkeys(getattr(s, key) for s in sections))
        if len(values) > 1:
            metrics = " and ".join(opt.objectives)
            raise HpoError(
                f"its choices give {key} {' and '.join(map(str, values))} (a choice that leaves it out has "
                f"the default), so every trial would be measured on another validation split and their "
                f"{metrics} would not compare (the sampler would favour the easiest split); give every choice "
                f"the same {key}"
            )


def auto_task(run: RunConfig, opt: OptimizeConfig, data: PreparedData | None) -> str | None:
    """The task of the data a trial drawing the loss `auto` trains on, where the search switches no dataset
    (searches `data` or a data key other than how much of it a trial trains on); None where it may. The run
    config's task, but where its loss reads float targets as classes (bce_with_logits' 0/1 targets as two
    classes or labels, cross-entropy's one-hot rows or class probabilities): auto reads them as no loss
    does, so its trials load those targets as the regression they are (auto is mse there)."""
    searched = [p.partition(".")[2] for p in opt.search_space if p.partition(".")[0] == "data"]
    if data is None or not all(key == "subset_fraction" for key in searched):
        return None
    # bce_with_logits' two classes or labels, cross-entropy's one-hot rows or class probabilities: auto
    # loads them as the regression they are (the data loaded with no loss says)
    return load_data(run.data).task if data.task != "regression" else data.task


def check_auto_loss_name(param: Param, run: RunConfig, opt: OptimizeConfig, task: str | None) -> None:
    """Searched loss names `auto` and the loss it stands for on `task` (every trial's) train one loss where
    each trains bare: the run config's loss sets no arguments (auto takes none) and no other loss key is
    searched."""
    if task is None or not isinstance(param, CategoricalParam) or run.loss.kwargs:
        return
    if any(p == "loss" or (p.startswith("loss.") and p != "loss.name") for p in opt.search_space):
        return
    same = auto_loss(task)
    if "auto" in param.choices and same in param.choices:
        raise HpoError(
            f"choices auto and {same} are one loss on this {task} task (auto is {same} there): one "
            f"configuration under two labels, which a study would train as two; keep one"
        )
