from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
from torch import nn

from hpotool.config import RunConfig
from hpotool.data import load_data
from hpotool.parts import build_trainer, fast_optimizer_kwargs


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad])
def test_torch_optimizers_with_a_fused_kernel_get_it_on_cpu(cls: type) -> None:
    assert fast_optimizer_kwargs(cls, _model(), {"lr": 0.1}) == {"lr": 0.1, "fused": True}


@pytest.mark.parametrize("kwargs", [{"fused": False}, {"foreach": True}, {"foreach": False}])
def test_the_users_own_choice_of_kernel_wins(kwargs: dict[str, bool]) -> None:
    assert fast_optimizer_kwargs(torch.optim.Adam, _model(), kwargs) == kwargs


def test_optimizers_without_a_fused_kernel_and_other_classes_are_left_alone() -> None:
    assert fast_optimizer_kwargs(torch.optim.RMSprop, _model(), {}) == {}

    class MyAdam(torch.optim.Adam):
        pass

    MyAdam.__module__ = "mypackage.optim"
    assert fast_optimizer_kwargs(MyAdam, _model(), {}) == {}
    assert fast_optimizer_kwargs(torch.optim.Adam, nn.ReLU(), {}) == {}  # no parameters


def test_a_run_trains_with_the_fused_kernel_and_it_learns() -> None:
    cfg = RunConfig.model_validate(
        {"data": {"name": "digits"}, "optimizer": {"name": "adam", "lr": 0.01}, "epochs": 2, "device": "cpu"}
    )
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    trainer = build_trainer(cfg, data, model)
    assert trainer.optimizer.defaults["fused"] is True
    last = trainer.fit(data.train, data.val, epochs=2)
    assert last.metrics["val_accuracy"] > 0.8


# Tensors the config builds for the loss (class weights, pos_weight), for a loss class and a loss function,
# and the one-logit targets: all must sit on the run's device.
DEVICE_RUNS = [
    {
        "data": {"name": "digits", "subset_fraction": 0.2},
        "loss": {"name": "cross_entropy", "weight": [1.0] * 9 + [3.0]},
    },
    {
        "data": {"name": "digits", "subset_fraction": 0.2},
        "loss": {"name": "torch.nn.functional:cross_entropy", "weight": [1.0] * 9 + [3.0]},
    },
    {"data": {"name": "tests.helpers:two_classes"}, "loss": {"name": "bce_with_logits", "pos_weight": 3.0}},
    {
        "data": {"name": "tests.helpers:two_classes"},
        "loss": {"name": "torch.nn.functional:binary_cross_entropy_with_logits", "pos_weight": [3.0]},
    },
    {
        "data": {"name": "tests.helpers:two_classes"},
        "loss": {"name": "tests.helpers:WeightedLoss", "weights": [1.0, 2.0]},
    },
]


def _loss_tensors(loss_fn: Any) -> list[torch.Tensor]:
    """The tensors a built loss holds: a module's buffers, or the arguments bound to a function."""
    if isinstance(loss_fn, nn.Module):  # its buffers, and tensors a user's loss keeps as plain attributes
        return [*loss_fn.buffers(), *(v for v in vars(loss_fn).values() if isinstance(v, torch.Tensor))]
    return [v for v in loss_fn.keywords.values() if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("run", DEVICE_RUNS, ids=lambda r: r["loss"]["name"])
def test_tensors_built_from_the_config_go_to_the_models_device(run: dict[str, Any]) -> None:
    """On the CPU the device is checked with torch's meta device: a tensor built without the model's device
    would be a CPU one (what a CUDA run would get)."""
    from hpotool.parts import build_model

    cfg = RunConfig.model_validate({**run, "model": {"name": "mlp", "hidden": [8]}, "device": "cpu"})
    data = load_data(cfg.data)
    model = build_model(cfg, data).to("meta")
    tensors = _loss_tensors(build_trainer(cfg, data, model).loss_fn)
    assert tensors and all(t.device.type == "meta" for t in tensors)
    cpu = _loss_tensors(build_trainer(cfg, data, build_model(cfg, data)).loss_fn)
    assert all(t.device.type == "cpu" for t in cpu)


def test_a_models_plain_tensor_attributes_go_to_the_device_with_it() -> None:
    """`.to()` moved only parameters and buffers: a user's model keeping `self.mask = torch.ones(n)` failed
    every step on a GPU."""
    from hpotool.device import to_device

    from .helpers import MaskedNet

    model = to_device(MaskedNet(4, 2), torch.device("meta"))
    assert model.mask.device.type == "meta" and model.linear.weight.device.type == "meta"


def test_tensors_in_a_models_plain_lists_tuples_and_dicts_go_to_the_device_with_it() -> None:
    """`self.masks = [torch.ones(n)]` stayed on the CPU: on a GPU every step failed with 'Expected all
    tensors to be on the same device'."""
    from hpotool.device import to_device

    class Kept(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 2)
            self.masks = [torch.ones(4), torch.zeros(4)]
            self.alias = self.masks  # another reference to the same list sees the moved tensors
            self.pair = (torch.ones(2), "label")
            self.table = {"scale": torch.ones(2), "name": "x"}

    model = to_device(Kept(), torch.device("meta"))
    assert [t.device.type for t in model.masks] == ["meta", "meta"] and model.alias is model.masks
    assert model.pair[0].device.type == "meta" and model.pair[1] == "label"
    assert model.table["scale"].device.type == "meta" and model.table["name"] == "x"


def test_lists_and_dicts_holding_nothing_to_move_are_left_as_they_are() -> None:
    """to_device rewrote every list and dict attribute in place, so a model keeping one that refuses
    changes (torch.fx's immutable_list of sizes) failed with "TypeError: 'immutable_list' object does not
    support mutation" before trial 0."""
    from torch.fx.immutable_collections import immutable_dict, immutable_list

    from hpotool.device import to_device

    class Sized(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 2)
            self.sizes = immutable_list([4, 2])
            self.names = immutable_dict({"out": "logits"})

    model = to_device(Sized(), torch.device("meta"))
    assert model.sizes == [4, 2] and model.names == {"out": "logits"}
    assert model.linear.weight.device.type == "meta"


def test_layers_a_model_hides_in_a_plain_list_go_to_the_device_with_it() -> None:
    """A frozen teacher kept in a plain list (hidden from the optimizer and from model.train(), which the
    check of registered layers lets pass) stayed on the CPU: on a GPU every step failed with 'Expected all
    tensors to be on the same device'."""
    from hpotool.device import to_device

    class Distilled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = nn.Linear(4, 2)
            self._teacher = [nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).requires_grad_(False).eval()]
            self.by_name = {"teacher": self._teacher[0]}
            self.prototypes = [nn.Parameter(torch.ones(4), requires_grad=False)]
            self.student.owner = [self]  # type: ignore[assignment]  # a back reference: no endless loop

    model = to_device(Distilled(), torch.device("meta"))
    assert model._teacher[0][0].weight.device.type == "meta" and model.by_name["teacher"] is model._teacher[0]
    assert not model._teacher[0].training and model.student.weight.device.type == "meta"
    assert model.prototypes[0].device.type == "meta" and not model.prototypes[0].requires_grad


@pytest.mark.gpu
def test_a_model_with_a_plain_tensor_attribute_trains_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from hpotool.runner import train_run

    run = {"data": {"name": "tests.helpers:two_classes"}, "model": {"name": "tests.helpers:MaskedNet"}}
    result = train_run(RunConfig.model_validate({**run, "epochs": 2, "batch_size": 16, "device": "cuda"}))
    assert result.device.startswith("cuda") and math.isfinite(result.metrics["val_loss"])


@pytest.mark.gpu
@pytest.mark.parametrize("run", DEVICE_RUNS, ids=lambda r: r["loss"]["name"])
def test_class_weights_and_one_logit_training_run_on_cuda(run: dict[str, Any]) -> None:
    """The same runs trained on CUDA: weights, pos_weight and one-logit targets on the GPU with the model."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from hpotool.parts import build_model
    from hpotool.runner import train_run

    cfg = RunConfig.model_validate(
        {**run, "model": {"name": "mlp", "hidden": [8]}, "epochs": 2, "batch_size": 16, "device": "cuda"}
    )
    result = train_run(cfg)
    assert result.device.startswith("cuda") and result.epochs_run == 2
    assert all(math.isfinite(v) for v in result.metrics.values())
    data = load_data(cfg.data)
    model = build_model(cfg, data).to("cuda")
    assert all(t.device.type == "cuda" for t in _loss_tensors(build_trainer(cfg, data, model).loss_fn))


class _Tensor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.ones(2, requires_grad=True)  # meant as a parameter
        self.linear = nn.Linear(4, 2)


class _Dict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = {"a": nn.Linear(4, 2)}


class _Params(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4))
        self.inner.weights = [nn.Parameter(torch.ones(4))]  # type: ignore[assignment]


class _Dropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.drops = (nn.Dropout(0.5),)  # eval() would leave it dropping


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            _Tensor(),
            "_Tensor keeps a trainable tensor in self.scale, which is not an nn.Parameter, so the optimizer never updates it and the saved model lacks it; wrap it: nn.Parameter\\(tensor\\) \\(or register_buffer for a constant\\)",
        ),
        (
            _Dict(),
            "_Dict keeps its Linear layers in a plain dict, self.heads, which torch does not register: .*use nn.ModuleDict",
        ),
        (
            _Params(),
            "_Params keeps parameters in a plain list, self.inner.weights, which torch does not register: .*use nn.ParameterList",
        ),
        (_Dropout(), "_Dropout keeps its Dropout layers in a plain tuple, self.drops, .*use nn.ModuleList"),
    ],
    ids=["tensor", "dict", "parameter-list", "dropout"],
)
def test_weights_torch_does_not_register_are_refused(model: nn.Module, message: str) -> None:
    """Before, such a model trained without an error on the CPU while those weights never changed (the
    optimizer gets model.parameters()), and the saved model lacked them."""
    from hpotool.errors import RunCheckError
    from hpotool.parts import _check_registered

    with pytest.raises(RunCheckError, match=f"^model: {message}$"):
        _check_registered(model)


def test_registered_containers_aliases_and_activation_lists_pass() -> None:
    from hpotool.parts import _check_registered

    class Fine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)])
            self.order = [self.blocks[1], self.blocks[0]]  # registered through self.blocks
            self.acts = [nn.ReLU(), nn.GELU()]
            self.frozen = torch.ones(4)  # a constant, moved by to_device
            self.teacher = [nn.Linear(4, 2).requires_grad_(False)]  # hidden from the optimizer on purpose
            # a frozen teacher with dropout, put in eval mode and hidden so that model.train() keeps it there
            self.dropping_teacher = [
                nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).requires_grad_(False).eval()
            ]
            self.prototypes = [nn.Parameter(torch.ones(4), requires_grad=False)]  # frozen, as the teacher is

    _check_registered(Fine())


def test_a_model_adding_an_axis_to_its_input_in_place_passes_the_check_and_trains() -> None:
    """`x.unsqueeze_(1)` in forward() changes the shape of the tensor object it is given, no value: the check
    before trial 0 compared that object with the data and refused it as a model changing its input."""
    from hpotool.runner import check_run, train_run

    run = {
        "data": {"name": "tests.helpers:two_classes"},
        "model": {"name": "tests.helpers:UnsqueezesInPlace"},
    }
    cfg = RunConfig.model_validate({**run, "epochs": 2, "batch_size": 16})
    check_run(cfg, "run.yaml")
    assert math.isfinite(train_run(cfg).metrics["val_loss"])


def _label_run(data: dict[str, Any], loss: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": data,
            "model": {"name": "mlp", "hidden": [16]},
            "loss": {"name": loss},
            "epochs": 3,
            "device": "cpu",
            "optimizer": {"name": "adam", "lr": 0.02},
        }
    )


def test_one_hot_float_targets_with_cross_entropy_are_class_ids_measured_by_accuracy() -> None:
    """They trained as a regression (val_rmse of logits against 0/1), with no val_accuracy."""
    from hpotool.runner import train_run

    cfg = _label_run({"name": "tests.helpers:one_hot_floats"}, "cross_entropy")
    data = load_data(cfg.data, cfg.loss.name)
    assert (data.task, data.out_features, data.train.y.ndim) == ("classification", 3, 1)
    metrics = train_run(cfg).metrics
    assert "val_rmse" not in metrics
    assert metrics["val_accuracy"] > 0.5  # a third is chance


def test_soft_labels_with_cross_entropy_are_a_classification_measured_against_the_most_likely_class() -> None:
    """Rows of class probabilities with loss cross_entropy trained as a regression and reported val_rmse (0.49)
    and val_mae of logits against probabilities, with no val_accuracy. Now a classification: the loss gets the
    probabilities as they are (torch's cross-entropy takes them), and val_accuracy is the share of samples
    whose largest logit is their most likely class. With auto (mse) they stay a regression, as one-hot rows do."""
    from hpotool.criterion import build_loss
    from hpotool.datasets import DataError, Dataset
    from hpotool.runner import train_run
    from hpotool.user_datasets import as_dataset

    from .helpers import soft_labels

    cfg = _label_run({"name": "tests.helpers:soft_labels"}, "cross_entropy")
    data = load_data(cfg.data, cfg.loss.name)
    assert (data.task, data.out_features, data.train.y.dtype) == ("classification", 3, torch.float32)
    assert torch.allclose(data.train.y.sum(dim=1), torch.ones(len(data.train)))  # kept as probabilities
    result = train_run(cfg)
    metrics = result.metrics
    assert "val_rmse" not in metrics and metrics["val_accuracy"] > 0.7  # a third is chance
    assert result.model is not None
    result.model.eval()
    with torch.no_grad():
        out = result.model(data.val.x)
    hits = (out.argmax(dim=1) == data.val.y.argmax(dim=1)).float().mean().item()
    assert metrics["val_accuracy"] == pytest.approx(hits)
    expected = torch.nn.functional.cross_entropy(out, data.val.y).item()
    assert metrics["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert build_loss(cfg, data)(out, data.val.y).item() == pytest.approx(expected, rel=1e-5)
    assert load_data(cfg.data, "auto").task == "regression"
    x, p = soft_labels()
    assert as_dataset((x, p), classes=True).task == "classification"
    assert as_dataset((x, p)).task == "regression"
    named = as_dataset(Dataset(torch.as_tensor(x), torch.as_tensor(p), "classification"))
    assert named.n_classes == 3 and named.y.is_floating_point()
    not_rows = torch.as_tensor(p) * 0.5  # sums to 0.5: no distribution, not classes
    assert as_dataset((x, not_rows), classes=True).task == "regression"
    with pytest.raises(DataError, match=r"or each sample's class probabilities \(rows summing to 1\)"):
        as_dataset(Dataset(torch.as_tensor(x), not_rows, "classification"))


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_several_labels_per_sample_with_bce_with_logits_are_a_multilabel_task(dtype: str) -> None:
    """Float 0/1 label columns trained as a regression (val_rmse), integer ones were refused."""
    from hpotool.runner import train_run

    cfg = _label_run({"name": "tests.helpers:several_labels", "dtype": dtype}, "bce_with_logits")
    data = load_data(cfg.data, cfg.loss.name)
    assert (data.task, data.out_features, data.train.y.dtype) == ("multilabel", 3, torch.float32)
    metrics = train_run(cfg).metrics
    assert set(metrics) >= {"train_loss", "val_loss", "val_accuracy"} and "val_rmse" not in metrics
    assert metrics["val_accuracy"] > 0.7  # per label; the labels are the signs of three inputs


@pytest.mark.parametrize(("dtype", "loss"), [("int64", "auto"), ("float32", "cross_entropy")])
def test_several_labels_per_sample_for_one_class_per_sample_are_refused_saying_so(
    dtype: str, loss: str
) -> None:
    from hpotool.datasets import DataError

    cfg = _label_run({"name": "tests.helpers:several_labels", "dtype": dtype}, loss)
    with pytest.raises(DataError, match=r"several labels .*set loss: \{name: bce_with_logits\}"):
        load_data(cfg.data, cfg.loss.name)


def test_a_loss_comparing_every_prediction_with_every_target_is_refused_before_training() -> None:
    """`((pred.squeeze() - target) ** 2).mean()` against (n, 1) targets is the mean over (n, n) pairs: it
    trained towards the targets' mean without an error (val_rmse 3.9 where mse reaches 3.7)."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    def run(loss: str) -> RunConfig:
        return RunConfig.model_validate(
            {"data": {"name": "regression"}, "loss": {"name": loss}, "epochs": 1, "device": "cpu"}
        )

    with pytest.raises(HpoError) as info:
        check_run(run("tests.helpers:squeezed_mse"), "run.yaml")
    assert str(info.value) == (
        "run.yaml: loss: for 8 samples it compares the prediction and the targets as shapes (8,) and (8, 1), "
        "which broadcast to (8, 8): every prediction against every target, so its value is not the batch's loss "
        "(a .squeeze() or .view(-1) on one of them?); the model's output and the targets have the same shape "
        "(batch, outputs): compare them as they come, or to compare every pair on purpose write "
        "pred.reshape(-1, 1) - target.reshape(1, -1)"
    )
    for fine in ("tests.helpers:flat_mse", "tests.helpers:pairwise_kernel_loss", "mse", "huber"):
        check_run(run(fine), "run.yaml")


def test_a_loss_that_sums_over_the_samples_is_refused_before_training() -> None:
    """A user's ((pred - target) ** 2).sum() trained with train_loss 378 and val_loss 2692 for one model (the
    batch of 32 against the validation split of 200), where a built-in loss's reduction: sum is refused."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    def run(loss: str, data: str = "regression") -> RunConfig:
        return RunConfig.model_validate(
            {"data": {"name": data}, "loss": {"name": loss}, "epochs": 1, "device": "cpu"}
        )

    with pytest.raises(HpoError) as info:
        check_run(run("tests.helpers:summed_mse"), "run.yaml")
    message = str(info.value)
    assert message == (
        "run.yaml: loss: its value for 8 samples is the sum of its values for their two halves of 4, not their "
        "mean: it sums over the samples, so train_loss and val_loss would grow with the batch and the validation "
        "split's sizes; hpotool needs each batch's mean loss (it weights batches by their size): return the "
        "mean, .mean() or reduction='mean' (for larger steps, raise optimizer.lr)"
    )
    check_run(run("tests.helpers:flat_mse"), "run.yaml")  # a mean
    check_run(run("tests.helpers:pairwise_kernel_loss"), "run.yaml")  # pairs the samples: neither
    check_run(  # a weighted mean: sum of weighted losses over the sum of weights
        RunConfig.model_validate(
            {
                "data": {"name": "digits"},
                "loss": {"name": "cross_entropy", "weight": [1.0] * 9 + [5.0]},
                "device": "cpu",
                "epochs": 1,
            }
        ),
        "run.yaml",
    )


SOFT_LABELS_MODULE = (
    "import numpy as np\nimport torch\nfrom hpotool.datasets import Dataset\n\n\n"
    "def probabilities(task='classification'):\n"
    "    x = np.random.default_rng(0).normal(size=(120, 4)).astype(np.float32)\n"
    "    p = np.exp(2 * x[:, :3])\n"
    "    return Dataset(torch.as_tensor(x), torch.as_tensor(p / p.sum(axis=1, keepdims=True)), task)\n"
)


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (
            "mse",
            "run.yaml: loss: 'mse' compares numbers, but y holds each sample's class probabilities (soft labels "
            "of a classification task of 3 classes); use cross_entropy (or auto), which takes probabilities, or "
            "to fit them as numbers return hpotool.datasets.Dataset(x, y, 'regression')",
        ),
        (
            "bce_with_logits",
            "run.yaml: loss: 'bce_with_logits' scores two classes with one logit per sample, but y holds each "
            "sample's probabilities over 3 classes (soft labels); use cross_entropy (or auto), which takes "
            "probabilities, or for 3 independent targets from 0 to 1 return "
            "hpotool.datasets.Dataset(x, y, 'multilabel')",
        ),
    ],
)
def test_class_probabilities_with_a_loss_that_compares_numbers_or_scores_one_logit_say_so(
    tmp_path: Any, loss: str, message: str
) -> None:
    """A dataset returning Dataset(x, probabilities, 'classification'): with mse the check said "y holds class
    labels ...; give y as floating-point numbers for regression" (y held floats already); with
    bce_with_logits the probabilities read as labels 0 and 1 (truncated), the model got one output, and the
    step failed on a shape mismatch, "check that the loss fits this classification task". The fixes each
    line gives train."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    (tmp_path / "soft_label_data.py").write_text(SOFT_LABELS_MODULE)

    def run(task: str, loss: str) -> RunConfig:
        return RunConfig.model_validate(
            {
                "data": {"name": "soft_label_data:probabilities", "task": task},
                "model": {"name": "mlp", "hidden": [8]},
                "loss": {"name": loss},
                "epochs": 1,
                "batch_size": 16,
                "device": "cpu",
            }
        )

    with pytest.raises(HpoError) as info:
        check_run(run("classification", loss), "run.yaml")
    assert str(info.value) == message
    check_run(run("classification", "cross_entropy"), "run.yaml")
    check_run(run("regression" if loss == "mse" else "multilabel", loss), "run.yaml")


def test_an_optimizer_function_that_reads_the_parameters_twice_gets_them_all(tmp_path: Any) -> None:
    """hpotool handed a user's optimizer function model.parameters(), a generator: a function splitting it
    into weight-decay groups (two list comprehensions over params, as many training scripts do) found the
    second group empty, so the biases were never trained, without an error."""
    from hpotool.parts import build_optimizer

    (tmp_path / "grouped_optimizer.py").write_text(
        "import torch\n\n\ndef grouped(params, lr, weight_decay=0.01):\n"
        "    decay = [p for p in params if p.ndim > 1]\n"
        "    no_decay = [p for p in params if p.ndim <= 1]\n"
        "    groups = [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]\n"
        "    return torch.optim.AdamW(groups, lr=lr)\n"
    )
    cfg = RunConfig.model_validate({"optimizer": {"name": "grouped_optimizer:grouped", "lr": 0.01}})
    model = _model()
    optimizer = build_optimizer(cfg, model)
    held = [len(group["params"]) for group in optimizer.param_groups]
    assert held == [2, 2]  # the two weight matrices, the two biases


NO_DECAY_OPTIMIZERS = """import torch


def _groups(named, weight_decay):
    decay, biases = [], []
    for n, p in named:
        (biases if n.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}]


def by_model(model, lr, weight_decay=0.0):
    return torch.optim.AdamW(_groups(list(model.named_parameters()), weight_decay), lr=lr)


def by_names(named_parameters, lr, weight_decay=0.0):
    return torch.optim.AdamW(_groups(named_parameters, weight_decay), lr=lr)


def by_other_name(net_, lr, weight_decay=0.0):
    return torch.optim.AdamW(_groups(list(net_.named_parameters()), weight_decay), lr=lr)


def unpacking(params, lr, weight_decay=0.0):
    return torch.optim.AdamW(_groups(params, weight_decay), lr=lr)
"""


@pytest.mark.parametrize("name", ["by_model", "by_names"])
def test_an_optimizer_function_taking_the_model_or_its_named_parameters_is_given_them(
    tmp_path: Any, name: str
) -> None:
    """The common way to leave biases and norms out of weight decay reads the parameters' names:
    `def make(model, lr)` calling model.named_parameters() was refused ("'list' object has no attribute
    'named_parameters'"), and `def make(named_parameters, lr)` failed with "ValueError: too many values to
    unpack (expected 2)". A first argument named model gets the model, one named named_parameters the pairs."""
    (tmp_path / "no_decay_optimizers.py").write_text(NO_DECAY_OPTIMIZERS)
    cfg = RunConfig.model_validate(
        {
            "optimizer": {"name": f"no_decay_optimizers:{name}", "lr": 0.01, "weight_decay": 0.1},
            "device": "cpu",
        }
    )
    from hpotool.parts import build_optimizer

    model = _model()
    optimizer = build_optimizer(cfg, model)
    decay, biases = optimizer.param_groups
    assert [p is q for p, q in zip(decay["params"], [model[0].weight, model[2].weight], strict=True)] == [
        True
    ] * 2
    assert decay["weight_decay"] == 0.1 and biases["weight_decay"] == 0.0 and len(biases["params"]) == 2


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        (
            "by_other_name",
            "AttributeError: 'list' object has no attribute 'named_parameters' (at "
            "refused_{name}.py:20 in by_other_name)",
        ),
        (
            "unpacking",
            "ValueError: too many values to unpack (expected 2) (at refused_{name}.py:6 in _groups)",
        ),
    ],
)
def test_an_optimizer_function_expecting_what_hpotool_does_not_give_says_what_it_gives(
    tmp_path: Any, name: str, failure: str
) -> None:
    """A first argument of another name is given the parameters (a list); a function that treats it as the
    model or as (name, parameter) pairs is told what to name it."""
    from hpotool.errors import HpoError
    from hpotool.runner import check_run

    (tmp_path / f"refused_{name}.py").write_text(NO_DECAY_OPTIMIZERS)  # one module each: imports are kept
    cfg = RunConfig.model_validate(
        {"optimizer": {"name": f"refused_{name}:{name}", "lr": 0.01}, "device": "cpu"}
    )
    with pytest.raises(HpoError) as info:
        check_run(cfg, "run.yaml")
    assert str(info.value) == (
        f"run.yaml: optimizer: {failure.format(name=name)}; hpotool calls 'refused_{name}:{name}' with the model's parameters "
        f"(a list); name that argument model to be given the model, or named_parameters to be given its (name, "
        f"parameter) pairs"
    )


def test_a_training_function_is_handed_the_device_auto_picked(tmp_path: Any) -> None:
    """With device: auto (the default), a user's function got config['device'] == 'auto' and
    run_config.device == 'auto', which torch.device() refuses: every trial of such a study failed with
    "RuntimeError: Expected one of cpu, cuda, ... device type at start of device string: auto"."""
    from hpotool.device import resolve_device
    from hpotool.runner import train_run

    (tmp_path / "device_fit.py").write_text(
        "import torch\n\n\ndef fit(config, run_config, report):\n"
        "    devices = [str(torch.device(config['device'])), str(torch.device(run_config.device))]\n"
        "    report(0, {'val_loss': 1.0})\n"
        "    return {'val_loss': 1.0, 'devices': len(set(devices)), 'cpu': float(devices[0] == 'cpu')}\n"
    )
    cfg = RunConfig.model_validate({"trainer": {"function": "device_fit:fit"}})
    assert cfg.device == "auto"
    metrics = train_run(cfg).metrics
    assert metrics["devices"] == 1 and metrics["cpu"] == float(resolve_device("auto").type == "cpu")
    assert cfg.device == "auto"  # the config itself, as saved and exported, keeps what was written
    explicit = RunConfig.model_validate({"trainer": {"function": "device_fit:fit"}, "device": "cpu"})
    assert train_run(explicit).metrics["cpu"] == 1.0


def test_a_sys_exit_in_the_users_model_while_it_trains_is_an_error_saying_where() -> None:
    """A model's forward() calling sys.exit() (a script's argparse) ended a trial's process, the trial left
    RUNNING, and `train` at once with its exit code (0: as if all went well), saying nothing."""
    from hpotool.runner import train_run

    cfg = RunConfig.model_validate(
        {
            "data": {"name": "digits", "subset_fraction": 0.1},
            "model": {"name": "tests.helpers:ExitsAfterTheCheck"},
            "epochs": 1,
            "device": "cpu",
        }
    )
    with pytest.raises(RuntimeError, match=r"^sys\.exit\(3\) was called, which would end hpotool") as info:
        train_run(cfg)
    from hpotool.user_code import described

    assert re.search(r"\(at \S*tests/helpers\.py:\d+ in forward\)$", described(info.value))
