from __future__ import annotations

import numpy as np
import pytest
import torch

from hpotool.config import RunConfig, validate_config
from hpotool.datasets import as_dataset, digits, split, synthetic_regression
from hpotool.models import CNN, MLP, layer_widths
from hpotool.runner import check_run, load_data, train_run


def test_digits_matches_scikit_learn() -> None:
    from sklearn.datasets import load_digits

    ds = digits()
    ref = load_digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.task == "classification" and ds.n_classes == 10
    np.testing.assert_allclose(ds.x.reshape(1797, 64).numpy(), ref.data / 16.0, rtol=1e-6)
    assert (ds.y.numpy() == ref.target).all()


def test_regression_is_seeded() -> None:
    a, b = synthetic_regression(seed=3), synthetic_regression(seed=3)
    assert torch.equal(a.x, b.x) and a.task == "regression" and a.y.shape == (1000, 1)


def test_split_keeps_validation_fixed_under_subsets() -> None:
    ds = digits()
    train_full, val_full = split(ds, 0.2, 1.0, seed=0)
    train_sub, val_sub = split(ds, 0.2, 0.25, seed=0)
    assert torch.equal(val_full.x, val_sub.x)
    assert len(val_full) == 359 and len(train_sub) == round(len(train_full) * 0.25)
    with pytest.raises(ValueError, match="too few"):
        split(as_dataset((torch.randn(3, 2), torch.tensor([0, 1, 0]))), 0.1)


def test_as_dataset_infers_the_task() -> None:
    assert as_dataset((np.zeros((4, 2)), np.array([0, 1, 1, 0]))).task == "classification"
    reg = as_dataset((torch.zeros(4, 2), torch.zeros(4)))
    assert reg.task == "regression" and reg.y.shape == (4, 1)
    with pytest.raises(TypeError, match="must return"):
        as_dataset(42)


def test_mlp_and_cnn_shapes() -> None:
    x = torch.randn(5, 1, 8, 8)
    assert MLP(64, 10, hidden=[32, 16], norm="batch", dropout=0.1)(x).shape == (5, 10)
    assert CNN((1, 8, 8), 10, channels=[8, 16])(x).shape == (5, 10)
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        MLP(64, 10, activation="rleu")


def test_layer_widths() -> None:
    assert layer_widths([64, 32, 16], 2) == [64, 32]
    assert layer_widths([64], 3) == [64, 64, 64]
    assert layer_widths(48, None) == [48]


def test_a_dataset_object_keeps_integer_inputs_for_an_embedding_model() -> None:
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "tests.helpers:token_ids"},
            "model": {"name": "tests.helpers:BagOfTokens"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "epochs": 3,
            "device": "cpu",
        }
    )
    assert load_data(cfg.data).train.x.dtype == torch.int64
    check_run(cfg, "run.yaml")  # the one-step check passes
    assert train_run(cfg).metrics["val_accuracy"] > 0.6


def test_a_loss_class_without_its_own_init_builds_and_takes_no_arguments() -> None:
    from hpotool.errors import HpoError

    run = {
        "data": {"name": "digits", "subset_fraction": 0.1},
        "model": {"name": "mlp", "hidden": [8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "loss": {"name": "tests.helpers:PlainCrossEntropy"},
        "epochs": 1,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")  # nn.Module's own __init__ is not offered `task`
    assert train_run(cfg).metrics["val_loss"] > 0
    run["loss"] = {"name": "tests.helpers:PlainCrossEntropy", "weight": 1.0}
    with pytest.raises(HpoError, match="takes no argument 'weight'; it takes: no arguments"):
        validate_config(RunConfig, run, "run.yaml")
