from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hpotool.config import RunConfig
from hpotool.config_errors import validate_config
from hpotool.data import load_checked, load_data
from hpotool.datasets import DataError, Dataset, digits, split, synthetic_regression
from hpotool.errors import HpoError
from hpotool.models import CNN, MLP, layer_widths
from hpotool.parts import build_model
from hpotool.runner import check_run, train_run
from hpotool.user_datasets import as_dataset
from tests.helpers import features_with_a_graph, numpy_regression
from tests.python_words import as_this_python_words

SMALL = {"data": {"name": "digits", "subset_fraction": 0.1}, "model": {"name": "mlp", "hidden": [8]}}  # quick


class _DuckSamples:
    """A map-style dataset of (x, y) samples that does not subclass torch.utils.data.Dataset."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(2), i % 2


def _check_refusal(run: dict[str, Any] | RunConfig) -> str:
    """What check_run says, refusing the run config `run` (read from run.yaml)."""
    with pytest.raises(HpoError) as info:
        check_run(run if isinstance(run, RunConfig) else RunConfig.model_validate(run), "run.yaml")
    return str(info.value)


def _load_refusal(run: dict[str, Any]) -> str:
    """What loading the run config `run` (from run.yaml) says, refusing it."""
    with pytest.raises(HpoError) as info:
        validate_config(RunConfig, run, "run.yaml")
    return str(info.value)


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


def test_the_regression_datasets_noise_is_a_standard_deviation_of_0_or_more() -> None:
    """`noise: -0.5` drew y with the noise's sign flipped, the same data as 0.5 would draw, with no word; a
    search space over data.noise from -0.5 tried each level twice. 0 (no noise) stays allowed."""
    assert torch.equal(
        synthetic_regression(n_samples=50, noise=0.0).y, synthetic_regression(n_samples=50, noise=0).y
    )
    assert _check_refusal({"data": {"name": "regression", "noise": -0.5}, "device": "cpu"}) == (
        "run.yaml: data: loading 'regression' failed: noise is the standard deviation of the noise added to y, so "
        "it must be 0 or more (0: none), got -0.5; give data.noise 0 or more"
    )


def test_split_keeps_validation_fixed_under_subsets() -> None:
    ds = digits()
    train_full, val_full = split(ds, 0.2, 1.0, seed=0)
    train_sub, val_sub = split(ds, 0.2, 0.25, seed=0)
    assert torch.equal(val_full.x, val_sub.x)
    assert len(val_full) == 359 and len(train_sub) == round(len(train_full) * 0.25)
    with pytest.raises(ValueError, match=r"leaves no validation sample; raise it to at least 0\.667"):
        split(as_dataset((torch.randn(3, 2), torch.tensor([0, 1, 0]))), 0.1)


def test_as_dataset_infers_the_task() -> None:
    assert as_dataset((np.zeros((4, 2)), np.array([0, 1, 1, 0]))).task == "classification"
    reg = as_dataset((torch.zeros(4, 2), torch.zeros(4)))
    assert reg.task == "regression" and reg.y.shape == (4, 1)
    with pytest.raises(DataError, match="must return"):
        as_dataset(42)


def test_mlp_and_cnn_shapes() -> None:
    x = torch.randn(5, 1, 8, 8)
    assert MLP(64, 10, hidden=[32, 16], norm="batch", dropout=0.1)(x).shape == (5, 10)
    assert CNN((1, 8, 8), 10, channels=[8, 16])(x).shape == (5, 10)
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        MLP(64, 10, activation="rleu")


@pytest.mark.parametrize(
    ("make", "message"),
    [  # it was torch's "TypeError: empty(): ... Overflow when unpacking long long"
        (
            lambda: MLP(64, 10, hidden=10**30),
            "hidden widths must be at most 2**63 - 1 (torch sizes a layer with a 64-bit integer), got "
            "1000000000000000000000000000000",
        ),
        (
            lambda: CNN((1, 8, 8), 10, hidden=2**63),
            "hidden must be at most 2**63 - 1 (torch sizes a layer with a 64-bit integer), got 9223372036854775808",
        ),
        (
            lambda: CNN((1, 8, 8), 10, channels=[8, 2**64]),
            "channels must be at most 2**63 - 1 (torch sizes a layer with a 64-bit integer), got "
            "18446744073709551616",
        ),
    ],
)
def test_a_layer_size_torch_cannot_hold_is_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": -1}, "layers must be 0 or more, got -1; give 0 for no hidden layer"),
        (
            {"hidden": [32, 0]},
            "hidden widths must be 1 or more, got [32, 0]; give each hidden layer 1 unit or more",
        ),
    ],
)
def test_an_mlp_of_no_layers_or_widths_says_what_to_give(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        MLP(64, 10, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [  # the choices were listed with no "did you mean", as other misspellings in hpotool have
        (
            {"activation": "rellu"},
            "unknown activation 'rellu' (did you mean 'relu'?); choose one of: relu, gelu, silu, tanh, "
            "leaky_relu, elu",
        ),
        (
            {"activation": "swish"},
            "unknown activation 'swish'; choose one of: relu, gelu, silu, tanh, leaky_relu, elu",
        ),
        (
            {"norm": "btach"},
            "unknown norm 'btach' (did you mean 'batch'?); choose one of: none, batch, layer",
        ),
    ],
)
def test_a_misspelt_choice_names_the_closest(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        MLP(64, 10, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"dropout": 1.0},
            "dropout must be from 0 up to but not including 1, got 1.0; give a value such as 0.1 (0: no dropout)",
        ),
        (
            {"dropout": -0.1},
            "dropout must be from 0 up to but not including 1, got -0.1; give a value such as 0.1 (0: no dropout)",
        ),
        (
            {"hidden": 0},
            "hidden must be 1 or more (the width of the fully connected layer), got 0; give its units",
        ),
        ({"channels": [8, 0]}, "channels must each be >= 1, got [8, 0]"),
    ],
)
def test_cnn_arguments_that_leave_nothing_to_train_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """dropout 1 and hidden 0 built without a word and trained one constant output (val_accuracy 0.086 on
    digits, every trial alike); channels 0 failed with torch's 'expected weight to be at least 1 at dimension
    0', naming no argument."""
    cfg = RunConfig.model_validate({"model": {"name": "cnn", **kwargs}, "device": "cpu"})
    assert _check_refusal(cfg) == f"run.yaml: model: {message}"


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


def test_token_ids_returned_as_a_pair_are_told_to_come_as_a_dataset_object() -> None:
    """A pair's x is cast to float32: the embedding's "got torch.FloatTensor" left a user who returned
    integers with no idea why, nor how to keep them."""
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "tests.helpers:token_ids_as_pair"},
            "model": {"name": "tests.helpers:BagOfTokens"},
            "device": "cpu",
        }
    )
    with pytest.raises(HpoError, match=r"return hpotool\.datasets\.Dataset\(x, y, 'classification'\)"):
        check_run(cfg, "run.yaml")


def test_an_error_in_a_users_model_constructor_names_the_shapes_hpotool_passed_it() -> None:
    """The constructor's own error ("10 features make no square image", at its line) did not say what
    hpotool gave it, from the data, so the user could not tell whether the config, the data or the model
    was wrong."""
    run = {"data": {"name": "regression"}, "model": {"name": "tests.helpers:SquareImage"}, "device": "cpu"}
    assert _check_refusal(run).endswith(
        "in __init__); hpotool passed it in_features=10, out_features=1, from the data (each sample of x is "
        "shaped (10,))"
    )


def test_the_same_data_section_run_in_another_folder_reads_that_folder_s_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`path: points.csv` is read from the folder hpotool runs in: a second command of the same process (the
    tests, each in a folder of its own; a notebook driving the CLI) run in another folder was given the
    data the first one had loaded, from the first folder's file."""
    import gc

    from hpotool import runner

    cfg = RunConfig.model_validate(
        {"data": {"name": "tests.helpers:read_csv", "path": "points.csv", "val_fraction": 0.5}}
    )
    digits = RunConfig.model_validate({"data": {"name": "digits", "subset_fraction": 0.1}}).data
    for folder, rows in (("first", 10), ("second", 20)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "points.csv").write_text("".join(f"{i},{i % 2},{i % 2}\n" for i in range(rows)))
        monkeypatch.chdir(tmp_path / folder)
        data = load_data(cfg.data)
        assert len(data.train) + len(data.val) == rows
        assert load_data(cfg.data) is data  # loaded once for the trials of a run
        train, val = runner._on_device(data, torch.device("cpu"))
        assert len(train) + len(val) == rows
        assert load_data(digits) is load_data(digits)  # hpotool's own, which reads no file: once per process
    # A dataset loaded again in another's place is freed, and its copies on the device go with it: its id
    # may be the next dataset's, which was given those copies (the second folder's 10 rows of the first).
    key = (str(id(data)), "cpu")
    (tmp_path / "points.csv").write_text("".join(f"{i},{i % 2},{i % 2}\n" for i in range(6)))
    monkeypatch.chdir(tmp_path)
    load_data(cfg.data)
    del data, train, val
    gc.collect()
    assert key not in runner._DEVICE_CACHE


def test_a_dataset_module_imported_again_is_loaded_again(tmp_path: Path) -> None:
    """A dataset function whose module was imported again (`importlib.reload` after an edit) is called again,
    not the data its first version made returned."""
    import importlib

    module = tmp_path / "reloaded_points.py"
    for rows in (10, 200):
        module.write_text(
            "import numpy as np\n\n\ndef load():\n"
            f"    return np.arange({rows * 2}.0).reshape({rows}, 2), np.arange({rows}) % 2\n"
        )
        if "reloaded_points" in sys.modules:
            importlib.reload(sys.modules["reloaded_points"])
        cfg = RunConfig.model_validate({"data": {"name": "reloaded_points:load", "val_fraction": 0.5}})
        data = load_data(cfg.data)
        assert len(data.train) + len(data.val) == rows


def test_a_data_path_written_from_the_config_files_folder_names_the_path_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`path: data/train.csv` beside conf/run.yaml, run from the folder above: the user's loader said only
    "data/train.csv not found", a file they could see from the config."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf/data").mkdir(parents=True)
    (tmp_path / "conf/data/train.csv").write_text("".join(f"{i},{i % 3},{i / 10}\n" for i in range(10)))
    (tmp_path / "conf/run.yaml").write_text("data: {name: tests.helpers:read_csv, path: data/train.csv}\n")
    cfg = RunConfig.model_validate({"data": {"name": "tests.helpers:read_csv", "path": "data/train.csv"}})
    with pytest.raises(HpoError) as info:
        load_checked(cfg, "conf/run.yaml")
    assert str(info.value).endswith(
        "; data.path: a relative path is read from the folder hpotool runs in, not the config's, and "
        "conf/data/train.csv is there: write path: conf/data/train.csv"
    )
    cfg = RunConfig.model_validate(
        {"data": {"name": "tests.helpers:read_csv", "path": "conf/data/train.csv"}}
    )
    assert len(load_checked(cfg, "conf/run.yaml").train) == 8


def test_images_with_their_channels_last_for_the_cnn_are_noted() -> None:
    """numpy's 16×16×3 images trained without a word as 16 channels of 16×3 images; the note says how to
    give them channels first. Channels-first images, or the mlp, which flattens them, get none."""
    run = {
        "data": {"name": "tests.helpers:channels_last_images"},
        "model": {"name": "cnn"},
        "device": "cpu",
        "batch_size": 16,
    }
    assert check_run(RunConfig.model_validate(run), "run.yaml") == (
        "data: each sample of tests.helpers:channels_last_images's x is shaped (16, 16, 3), which the cnn reads "
        "as 16 channels of 16×3 images (C×H×W); if they are images with their channels last (H×W×C, as numpy "
        "and PIL give them), return x.transpose(0, 3, 1, 2) (a tensor's x.permute(0, 3, 1, 2)) from the "
        "dataset function",
    )
    assert check_run(RunConfig.model_validate({**run, "model": {"name": "mlp"}}), "run.yaml") == ()
    digits = {**run, "data": {"name": "digits", "subset_fraction": 0.1}}  # 1×8×8
    assert check_run(RunConfig.model_validate(digits), "run.yaml") == ()


def test_a_model_that_hands_its_keyword_arguments_to_its_parent_is_built() -> None:
    """`def __init__(self, **kwargs): super().__init__(**kwargs)` was offered every shape and failed with the
    parent's "unexpected keyword argument 'input_shape'", which no config could fix."""
    run = {
        "data": {"name": "digits", "subset_fraction": 0.1},
        "model": {"name": "tests.helpers:ForwardsItsArguments", "width": 12},
        "epochs": 1,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")
    model = train_run(cfg).model
    assert model is not None and model.width == 12
    torch.manual_seed(0)
    built = build_model(cfg, load_data(cfg.data))
    torch.manual_seed(0)  # built on the draws the parent class alone makes
    cfg = RunConfig.model_validate({**run, "model": {"name": "tests.helpers:FragileModel", "width": 12}})
    parent = build_model(cfg, load_data(cfg.data))
    assert all(torch.equal(a, b) for a, b in zip(built.parameters(), parent.parameters(), strict=True))


def test_a_schedule_that_hands_its_keyword_arguments_on_is_built() -> None:
    """`def cosine(optimizer, **kw): return CosineAnnealingLR(optimizer, **kw)` was offered epochs and
    steps_per_epoch and failed with torch's "unexpected keyword argument 'epochs'"; a loss class doing the
    same, offered task, with "unexpected keyword argument 'task'"."""
    run = {
        **SMALL,
        "optimizer": {"name": "sgd", "lr": 0.1},
        "scheduler": {"name": "tests.helpers:cosine_of_mine", "T_max": 2},
        "epochs": 2,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")
    assert [row["lr"] for row in train_run(cfg).history] == pytest.approx([0.1, 0.05])
    run["loss"] = {
        "name": "tests.helpers:SmoothedCrossEntropy",
        "reduction": "mean",
    }  # and a loss, offered task
    check_run(RunConfig.model_validate(run), "run.yaml")


def test_a_loss_class_without_its_own_init_builds_and_takes_no_arguments() -> None:
    run = {
        **SMALL,
        "optimizer": {"name": "adam", "lr": 0.01},
        "loss": {"name": "tests.helpers:PlainCrossEntropy"},
        "epochs": 1,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")  # nn.Module's own __init__ is not offered `task`
    assert train_run(cfg).metrics["val_loss"] > 0
    run["loss"] = {"name": "tests.helpers:PlainCrossEntropy", "weight": 1.0}
    with pytest.raises(HpoError, match="takes no argument 'weight'; it takes no arguments"):
        validate_config(RunConfig, run, "run.yaml")


def test_a_plain_loss_function_trains_as_its_class_does() -> None:
    run: dict[str, Any] = {
        **SMALL,
        "optimizer": {"name": "adam", "lr": 0.01},
        "loss": {"name": "torch.nn.functional:cross_entropy", "label_smoothing": 0.1},
        "epochs": 2,
        "device": "cpu",
    }
    function = validate_config(RunConfig, run, "run.yaml")
    check_run(function, "run.yaml")
    module = RunConfig.model_validate({**run, "loss": {"name": "cross_entropy", "label_smoothing": 0.1}})
    same = ("train_loss", "val_loss", "val_accuracy")
    by_function, by_module = train_run(function).metrics, train_run(module).metrics
    assert [by_function[k] for k in same] == [by_module[k] for k in same]  # the same arithmetic
    regression = {
        **run,
        "data": {"name": "regression"},
        "loss": {"name": "tests.helpers:scaled_mse", "scale": 2.0},
    }
    assert train_run(validate_config(RunConfig, regression, "run.yaml")).metrics["val_loss"] > 0
    run["loss"] = {"name": "tests.helpers:scaled_mse", "scael": 2.0}
    with pytest.raises(HpoError) as info:
        validate_config(RunConfig, run, "run.yaml")
    # the prediction and the target are hpotool's to pass: it listed them too (it takes: prediction, target, scale)
    assert str(info.value).endswith(
        "loss 'tests.helpers:scaled_mse' takes no argument 'scael' (did you mean 'scale'?); it takes: scale"
    )


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ((torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), r"the dataset is empty \(0 samples\)"),
        ((torch.tensor([[0.0], [float("nan")], [1.0]]), torch.tensor([0, 1, 0])), r"x holds NaN .* sample 1"),
        ((torch.zeros(3, 2), torch.tensor([1.0, float("inf"), 0.0])), "y holds NaN or infinite values"),
        ((torch.zeros(4, 2), torch.tensor([0, -1, 1, 0])), r"negative class labels \(the smallest is -1\)"),
        ((torch.zeros(4, 2), torch.tensor([2, 2, 2, 2])), r"a single class \(2\)"),
        ((torch.zeros(4, 2), np.array(["cat", "dog", "cat", "dog"])), "y holds text labels such as 'cat'"),
        ((np.array([["a", 1]], dtype=object), np.array([0])), "x holds str values such as 'a', not numbers"),
        ((torch.zeros(3, 2), torch.zeros(4)), r"x and y differ in length: 3 != 4$"),
        # samples as columns (np.vstack of the features, a y of shape (1, n)): the two lengths alone
        (
            (np.zeros((6, 3)), np.zeros((1, 6))),
            r"x and y differ in length: 6 != 1; y is shaped \(1, 6\), its 6 samples as columns: give one row per "
            r"sample, y.T or y.ravel\(\)$",
        ),
        (
            (np.zeros((3, 6)), np.zeros(6)),
            r"x and y differ in length: 3 != 6; x is shaped \(3, 6\), its 6 samples as columns: give one row per "
            r"sample, x.T$",
        ),
        # complex numbers: x was cast to float32, dropping the imaginary parts with only torch's warning
        (
            (torch.zeros(4, 2, dtype=torch.complex64), torch.tensor([0, 1, 0, 1])),
            r"x holds complex64 values; .* torch\.view_as_real\(x\)\.flatten\(1\)",
        ),
        (
            (torch.zeros(4, 2), torch.zeros(4, dtype=torch.complex64)),
            "y holds complex64 values; hpotool trains on real",
        ),
        (
            Dataset(torch.zeros(4, 2, dtype=torch.complex64), torch.zeros(4), "regression"),
            "x holds complex64",
        ),
        (  # the choices were listed with no "did you mean"
            Dataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), "clasification"),  # type: ignore[arg-type]
            r"task is 'clasification' \(did you mean 'classification'\?\); use 'classification', 'regression'",
        ),
        (Dataset(torch.zeros(4, 2), torch.tensor([0.0, 1.0, 0.0, 1.0]), "classification"), "y holds float32"),
        (
            "data",
            r"must return hpotool.datasets.Dataset, an \(x, y\) pair or a torch Dataset of \(x, y\) samples, got str",
        ),
        # what scikit-learn's train_test_split returns: it said only "got list"
        (
            [np.zeros((3, 2)), np.zeros((1, 2)), np.zeros(3), np.zeros(1)],
            r"samples, got a list of 4 items; return x and y alone: the validation split is hpotool's "
            r"\(data.val_fraction\)$",
        ),
        (
            (torch.zeros(4, 2), torch.zeros(4), torch.ones(4)),
            r"samples, got a tuple of 3 items; return x and y alone$",
        ),
        # a list of (x, y) samples, as a script collects them: "return x and y alone" told no way to do it
        (
            [(torch.zeros(2), np.int64(i % 2)) for i in range(5)],
            r"samples, got a list of 5 \(x, y\) samples; return them as one \(x, y\) pair: "
            r"torch.stack\(\[s\[0\] for s in samples\]\), torch.tensor\(\[s\[1\] for s in samples\]\)$",
        ),
        # a dict of the arrays: "got dict" told no way to return them
        (
            {"x": torch.zeros(4, 2), "y": torch.zeros(4)},
            r'samples, got a dict \(keys "x", "y"\); return its inputs and targets as an \(x, y\) pair: '
            r'return \(d\["x"\], d\["y"\]\)$',
        ),
        (
            {"labels": torch.zeros(4), "pixels": torch.zeros(4, 2)},
            r'got a dict \(keys "labels", "pixels"\); .*: return \(d\["pixels"\], d\["labels"\]\)$',
        ),
        (
            {"a": torch.zeros(4), "b": torch.zeros(4), "c": torch.zeros(4)},
            r'got a dict \(keys "a", "b", "c"\); .*: return \(d\[<key of the inputs>\], d\[<key of the targets>\]\)$',
        ),
        # a map-style dataset that is no torch Dataset: "got Samples" said nothing of what it lacked
        (
            _DuckSamples(),
            r"samples, got _DuckSamples, which has __len__ and __getitem__ but is no torch.utils.data.Dataset: make its "
            r"class a subclass of torch.utils.data.Dataset, or return an \(x, y\) pair$",
        ),
        # one array returned alone (y forgotten, or x and y in one table): the line told an ndarray, a tensor or
        # a DataFrame to subclass torch.utils.data.Dataset
        (
            np.zeros((6, 3)),
            r"samples, got a numpy array alone, shaped \(6, 3\): return the inputs and the targets as an \(x, y\) "
            r"pair \(return x, y\); a table whose last column is the target: return a\[:, :-1\], a\[:, -1\]$",
        ),
        (
            torch.zeros(6),
            r"samples, got a tensor alone, of 6 values: return the inputs and the targets as an \(x, y\) pair "
            r"\(return x, y\)$",
        ),
        (
            pd.DataFrame({"age": [1.0, 2.0], "bmi": [3.0, 4.0], "Target": [0.5, 0.6]}),
            r'samples, got a pandas DataFrame alone \(columns "age", "bmi", "Target"\); return its inputs and its '
            r'target as an \(x, y\) pair: return df.drop\(columns=\["Target"\]\), df\["Target"\]$',
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}),
            r'got a pandas DataFrame alone \(columns "a", "b"\); .*: return '
            r'df.drop\(columns=\["<target column>"\]\), df\["<target column>"\]$',
        ),
        (
            pd.Series([1.0, 2.0, 3.0]),
            r"samples, got a pandas Series alone \(3 values\): return the inputs and the targets as an \(x, y\) "
            r"pair \(return x, y\)$",
        ),
        # a training and a validation split, as a script keeps them: numpy's "setting an array element with a
        # sequence ... inhomogeneous shape", or torch's for two Datasets, said nothing of what was returned
        (
            ((np.zeros((6, 2)), np.zeros(6)), [np.zeros((2, 2)), np.zeros(2)]),
            r"^got two \(x, y\) pairs, a training and a validation split\?; return all the samples as one \(x, y\) "
            r"pair: hpotool makes the validation split itself \(data.val_fraction, data.split_seed\)$",
        ),
        (
            tuple(
                torch.utils.data.random_split(
                    torch.utils.data.TensorDataset(torch.zeros(8, 2), torch.zeros(8)), [6, 2]
                )
            ),
            r"^got two torch Datasets, a training and a validation split\?",
        ),
    ],
)
def test_a_dataset_hpotool_cannot_train_on_is_refused_saying_why(returned: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        as_dataset(returned)


class _Samples(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A map-style torch Dataset as users write them: __len__ and __getitem__ giving (x, y)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


class _Stream(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        yield torch.zeros(2), 0


def test_a_map_style_torch_dataset_is_stacked_into_tensors() -> None:
    images = [np.full((1, 2, 2), i, dtype=np.float32) for i in range(6)]
    ds = as_dataset(_Samples([(image, i % 3) for i, image in enumerate(images)]))
    assert ds.task == "classification" and ds.n_classes == 3
    assert ds.x.shape == (6, 1, 2, 2) and ds.x.dtype == torch.float32 and ds.x[4].sum().item() == 16
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2]
    reg = as_dataset(_Samples([(torch.tensor([float(i)]), torch.tensor([0.5 * i])) for i in range(4)]))
    assert reg.task == "regression" and reg.y.shape == (4, 1) and reg.y[3].item() == 1.5
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    tensors = as_dataset(torch.utils.data.TensorDataset(x, y))
    assert torch.equal(tensors.x, x) and torch.equal(tensors.y, y)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            _Stream(),
            r"_Stream is an iterable torch Dataset \(no len\): hpotool loads the samples into memory",
        ),
        (_Samples([]), r"the dataset is empty \(0 samples\)"),
        (
            _Samples([(torch.zeros(2), 0), torch.zeros(2)]),
            r"_Samples\[1\] is a Tensor; each sample must be an \(x, y\) pair",
        ),
        (_Samples([(torch.zeros(2), 0, "id")]), r"_Samples\[0\] is a 3-item tuple"),
        (
            _Samples([(torch.zeros(2), 0), (torch.zeros(3), 1)]),
            r"_Samples: sample 1's x has shape \(3,\), sample 0's \(2,\); hpotool stacks the samples",
        ),
        (_Samples([(torch.zeros(2), "cat"), (torch.zeros(2), "dog")]), "y holds text labels such as 'cat'"),
    ],
)
def test_a_torch_dataset_hpotool_cannot_stack_is_refused_saying_why(returned: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        as_dataset(returned)


def test_optimize_trains_on_a_users_torch_dataset(
    tmp_path: Path, run_dict: dict[str, Any], opt_dict: dict[str, Any]
) -> None:
    import optuna

    from tests.cli_run import optimize

    from .conftest import write_yaml

    run_dict["data"] = {"name": "tests.helpers:digits_samples", "val_fraction": 0.2, "n": 200}
    optimize(
        write_yaml(tmp_path / "run.yaml", run_dict),
        write_yaml(tmp_path / "opt.yaml", opt_dict),
        opt_dict["storage"],
        2,
    )
    trials = optuna.load_study(study_name="tiny", storage=opt_dict["storage"]).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(0.0 <= t.value <= 1.0 and t.user_attrs["metrics"]["n_params"] > 0 for t in trials)


def test_pandas_objects_and_a_1d_x_become_tensors_a_user_would_expect() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]}, index=[10, 11, 12, 13])
    ds = as_dataset((frame, pd.Series([0, 1, 0, 1], index=[10, 11, 12, 13])))
    assert ds.task == "classification" and ds.x.shape == (4, 2) and ds.y.tolist() == [0, 1, 0, 1]
    one_feature = as_dataset((torch.arange(5.0), torch.arange(5.0)))
    assert one_feature.x.shape == (5, 1) and one_feature.y.shape == (5, 1)  # one feature per sample
    regression = as_dataset(Dataset(torch.zeros(3, 2), torch.zeros(3), "regression"))
    assert regression.out_features == 1


def test_a_frame_of_float_and_bool_columns_trains_as_numbers() -> None:
    """pd.get_dummies makes bool columns; beside float ones pandas hands out an object array of numbers."""
    import pandas as pd

    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "c": ["lo", "hi", "lo", "hi"]})
    x = pd.get_dummies(frame)  # a: float64, c_hi and c_lo: bool
    assert x.to_numpy().dtype == object
    ds = as_dataset((x, pd.Series([0, 1, 0, 1])))
    assert ds.x.dtype == torch.float32 and ds.x.tolist()[1] == [1.5, 1.0, 0.0]
    mixed = as_dataset((np.array([[1, True], [2.5, False]], dtype=object), np.array([0, 1])))
    assert mixed.x.tolist() == [[1.0, 1.0], [2.5, 0.0]]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (  # a pandas text column is an object array: name the column, not a float beside it
            ("frame", "y"),
            r"^x column 'c' holds str values such as 'lo', not numbers; encode it as numbers "
            r"\(pd.get_dummies\(x, dtype=float\), or \.cat\.codes\) or drop it$",
        ),
        (  # text labels in a pandas Series: the text-label hint, not "convert y to float32"
            ("x", "labels"),
            r"^y holds text labels such as 'cat'; give class indices 0..K-1",
        ),
        (("x", "missing"), r"^y holds a missing value \(None\) in sample 1; drop or fill it"),
    ],
)
def test_pandas_objects_hpotool_cannot_train_on_are_refused_naming_what(
    returned: tuple[str, str], message: str
) -> None:
    import pandas as pd

    parts = {
        "frame": pd.DataFrame({"a": [0.5, 1.5, 2.5], "c": ["lo", "hi", "lo"]}),
        "x": pd.DataFrame({"a": [0.5, 1.5, 2.5]}),
        "y": pd.Series([0, 1, 0]),
        "labels": pd.Series(["cat", "dog", "cat"]),
        "missing": pd.Series([0, None, 1], dtype=object),
    }
    with pytest.raises(DataError, match=message):
        as_dataset((parts[returned[0]], parts[returned[1]]))


def test_a_scikit_learn_bunch_is_refused_saying_to_ask_for_x_and_y() -> None:
    from sklearn.datasets import load_iris

    with pytest.raises(DataError) as info:
        as_dataset(load_iris())
    assert str(info.value).endswith(
        "got Bunch; scikit-learn's loaders return (x, y) with return_X_y: true under data:"
    )


def test_a_scipy_sparse_x_is_refused_in_one_line_saying_how_to_make_it_dense() -> None:
    """scikit-learn's text vectorizers return sparse matrices; the message held the matrix's two-line repr
    and advised .astype('float32'), which keeps it sparse."""
    import scipy.sparse

    x = scipy.sparse.random(20, 5, density=0.3, format="csr", random_state=0)
    with pytest.raises(DataError) as info:
        as_dataset((x, np.arange(20) % 2))
    assert str(info.value) == (
        "x is a scipy sparse matrix (csr_matrix of 20 x 5); hpotool trains on dense tensors kept in memory: "
        "return x.toarray() (400 bytes as float32)"
    )
    with pytest.raises(DataError) as info:
        as_dataset((np.array([[object()]]), np.array([0])))
    assert "\n" not in str(info.value) and str(info.value).startswith("x holds object values such as <object")


def test_integer_quantities_are_not_taken_for_thousands_of_classes() -> None:
    """Prices or counts stored as integers would train a classifier with a class per value (a 57,000-way
    output layer, accuracy 0); an explicit Dataset with task 'classification' is trusted as it is."""
    x = np.zeros((6, 2))
    prices = np.array([52_000, 48_500, 51_250, 60_000, 49_999, 55_000])
    with pytest.raises(DataError) as info:
        as_dataset((x, prices))
    assert str(info.value) == (
        "y holds integers up to 60000 for 6 samples, which would make a classification task of 60001 classes; "
        "to predict these numbers give y as floats (y.astype('float32')) for regression, or for class ids "
        "return hpotool.datasets.Dataset(x, y, 'classification')"
    )
    assert as_dataset((x, prices.astype(np.float32))).task == "regression"
    ids = as_dataset(Dataset(torch.zeros(6, 2), torch.from_numpy(prices), "classification"))
    assert ids.n_classes == 60_001
    assert as_dataset((x, np.array([0, 5, 5, 2, 0, 5]))).n_classes == 6  # gaps, fewer classes than samples


def test_negative_integer_amounts_are_told_how_to_be_a_regression() -> None:
    """Integer amounts below 0 (a profit in whole euros) were read as class labels and refused with 'number
    the classes 0..K-1' alone, as if the user meant classes; a regression user was not told to give floats."""
    x = np.zeros((6, 2))
    profits = np.array([-2572, 480, 1250, -60, 49, 550])
    with pytest.raises(DataError) as info:
        as_dataset((x, profits))
    assert str(info.value) == (
        "y holds negative class labels (the smallest is -2572); number the classes 0..K-1, or give y as floats "
        "(y.astype('float32')) if it holds amounts to predict (regression)"
    )
    assert as_dataset((x, profits.astype(np.float32))).task == "regression"


def test_a_user_class_missing_a_required_argument_is_named_at_load_time() -> None:
    run = {
        "data": {"name": "digits", "subset_fraction": 0.1},
        "model": {"name": "tests.helpers:DeepNet"},
        "optimizer": {"name": "tests.helpers:sgd_with_required_lr", "lr": 0.05},
        "epochs": 1,
        "device": "cpu",
    }
    assert _load_refusal(run) == (
        "run.yaml: model: model 'tests.helpers:DeepNet' requires 'depth', which the config does not set; add "
        "depth: ... under model:"
    )  # in_features and out_features come from the data; lr from the config
    run["model"] = {"name": "tests.helpers:DeepNet", "depth": 1}
    cfg = validate_config(RunConfig, run, "run.yaml")
    check_run(cfg, "run.yaml")


@pytest.mark.parametrize(
    ("model", "given"),
    [("KerasStyleNet", ("input_dim", "num_classes")), ("ShortNamesNet", ("n_in", "n_out"))],
)
def test_a_model_that_names_its_sizes_otherwise_is_told_the_names_hpotool_fills_in(
    model: str, given: tuple[str, str]
) -> None:
    """n_in and n_out (short scripts' names) were told only to be set under model:, where no value fits
    every dataset."""
    run = {"data": {"name": "digits"}, "model": {"name": f"tests.helpers:{model}"}, "device": "cpu"}
    n_in, n_out = given
    assert _load_refusal(run) == (
        f"run.yaml: model: model 'tests.helpers:{model}' requires '{n_in}', '{n_out}', which the "
        f"config does not set; add {n_in}: ..., {n_out}: ... under model:, or rename {n_in} to "
        f"in_features and {n_out} to out_features, which hpotool fills in from the data"
    )


def test_a_user_optimizer_and_schedule_may_name_their_first_argument_as_they_like() -> None:
    """hpotool passes the model's parameters and the optimizer by position: `model_params` and `opt` were
    refused at load time, the line telling the user to set them under optimizer: and scheduler:."""
    run = {
        **SMALL,
        "optimizer": {"name": "tests.helpers:SGDOfMyOwn", "lr": 0.05},
        "scheduler": {"name": "tests.helpers:halving", "every": 1},
        "epochs": 2,
        "device": "cpu",
    }
    cfg = validate_config(RunConfig, run, "run.yaml")
    check_run(cfg, "run.yaml")
    history = train_run(cfg).history
    assert [row["lr"] for row in history] == [0.05, 0.025]
    with pytest.raises(HpoError, match=r"'opt' is set by hpotool for scheduler 'tests.helpers:halving'"):
        validate_config(
            RunConfig, {**run, "scheduler": {"name": "tests.helpers:halving", "opt": 1}}, "run.yaml"
        )


def test_a_user_optimizer_without_weight_decay_is_usable_unless_weight_decay_is_set() -> None:
    run = {
        **SMALL,
        "optimizer": {"name": "tests.helpers:sgd_with_required_lr", "lr": 0.05},
        "epochs": 1,
        "device": "cpu",
    }
    cfg = validate_config(RunConfig, run, "run.yaml")  # hpotool's default weight_decay (0) is not passed
    assert cfg.optimizer.kwargs == {"lr": 0.05}
    assert train_run(cfg).metrics["val_loss"] > 0
    assert RunConfig.model_validate({"optimizer": {"name": "adamw"}}).optimizer.kwargs["weight_decay"] == 0.0
    run["optimizer"]["weight_decay"] = 0.01
    with pytest.raises(HpoError, match="takes no argument 'weight_decay'; it takes: lr"):
        validate_config(RunConfig, run, "run.yaml")


def test_an_optimizer_factory_returning_something_else_is_refused_before_training() -> None:
    run = {**SMALL, "optimizer": {"name": "tests.helpers:not_an_optimizer"}, "device": "cpu"}
    assert _check_refusal(run) == (
        "run.yaml: optimizer: optimizer 'tests.helpers:not_an_optimizer' returned list, not a "
        "torch.optim.Optimizer; return the optimizer it builds"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"scheduler": {"name": "tests.helpers:not_a_scheduler"}},
            "run.yaml: scheduler: scheduler 'tests.helpers:not_a_scheduler' returned int, not a "
            "learning-rate schedule (an object with a step() method, such as torch.optim.lr_scheduler.StepLR); "
            "return the schedule it builds",
        ),
        # the optimizer itself has a step(): it was taken for a schedule, and stepped a second time each epoch
        (
            {"scheduler": {"name": "tests.helpers:the_optimizer_back"}},
            "run.yaml: scheduler: scheduler 'tests.helpers:the_optimizer_back' returned the optimizer (Adam), "
            "not a learning-rate schedule, so each epoch would step the optimizer a second time; return a "
            "schedule built on it (return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)), or set "
            "scheduler: {name: none} for a constant learning rate",
        ),
        (
            {"loss": {"name": "tests.helpers:not_a_loss"}},
            "run.yaml: loss: loss 'tests.helpers:not_a_loss' returned str, not a loss (a "
            "torch.nn.Module or function called with the prediction and the target); return the loss it builds",
        ),
    ],
)
def test_a_scheduler_or_loss_factory_returning_something_else_is_refused_saying_so(
    section: dict[str, Any], message: str
) -> None:
    """They said `AttributeError: 'int' object has no attribute 'step'` and `one step on 8 samples failed:
    TypeError: 'str' object is not callable; check that the loss fits this classification task`."""
    assert _check_refusal({**SMALL, **section, "device": "cpu"}) == message


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (
            "loss_as_a_float",
            "run.yaml: loss: it returned float for 8 samples, not a tensor; hpotool calls backward() on it: "
            "compute it from the prediction with torch operations (no .item())",
        ),
        (
            "loss_with_its_parts",
            "run.yaml: loss: it returned a tuple of 2 items for 8 samples, not a tensor; hpotool calls backward() "
            "on the loss alone: return the loss tensor by itself",
        ),
        (
            "loss_as_a_dict",
            "run.yaml: loss: it returned a dict with keys 'loss' for 8 samples, not a tensor; hpotool calls "
            "backward() on the loss alone: return the loss tensor by itself",
        ),
        (
            "loss_of_wrong_answers",
            "run.yaml: loss: its value for 8 samples does not depend on the model's parameters (no gradient "
            "reaches them): compute it from the prediction with differentiable torch operations (no .item(), "
            ".detach(), argmax or comparisons)",
        ),
        (
            "loss_that_is_nan",
            "run.yaml: loss: it returned nan for the untrained model's finite output on 8 samples, before any "
            "step, so the loss itself computes it: guard its log, division or sqrt against 0 (torch.log(p + 1e-8), "
            "or torch.nn.functional.log_softmax in place of log(softmax))",
        ),
    ],
)
def test_a_loss_the_trainer_cannot_step_on_is_named_as_the_fault(loss: str, message: str) -> None:
    """They said `training: one step on 8 samples failed: AttributeError: 'float' object has no attribute
    'backward'` (a tuple or dict of the loss and what it logs: "compute it ... (no .item())"), `RuntimeError: element 0 of tensors does not require grad ...` (both: check that the loss
    fits this classification task) and `train_loss is nan in epoch 1; lower optimizer.lr or set grad_clip`."""
    run = {
        **SMALL,
        "loss": {"name": f"tests.helpers:{loss}"},
        "device": "cpu",
    }
    assert _check_refusal(run) == message


def test_a_training_step_that_fails_in_the_optimizer_says_so_not_to_check_the_loss() -> None:
    """An optimizer whose step() needs an argument: the one-step check blamed the loss. (torch's LBFGS, whose
    step needs a closure, was the example; it is given one now.)"""
    run = {
        **SMALL,
        "optimizer": {"name": "tests.helpers:SGDNeedingAScale", "lr": 0.1},
        "device": "cpu",
    }
    assert _check_refusal(run) == (
        "run.yaml: training: one step on 8 samples failed: TypeError: SGDNeedingAScale.step() missing 1 required "
        "positional argument: 'scale'; the optimizer's step() raised it: check the optimizer section's arguments "
        "(lr: 0.1); hpotool calls step() with no arguments, once per batch"
    )
    run["optimizer"] = {"name": "adam"}
    run["model"] = {"name": "tests.helpers:FailsInTraining"}
    with pytest.raises(
        HpoError, match=r"broken \(at .*\); the model raised it in training mode: check its forward"
    ):
        check_run(RunConfig.model_validate(run), "run.yaml")
    run["model"] = {"name": "mlp", "hidden": [8]}
    run["loss"] = {"name": "torch.nn:MultiLabelMarginLoss"}  # l1 and the like are refused before the step
    with pytest.raises(HpoError, match=r"; check that the loss fits this classification task$"):
        check_run(RunConfig.model_validate(run), "run.yaml")


@pytest.mark.parametrize(
    ("section", "ending"),
    [
        (  # torch's StepLR builds, and divides by its step_size as it steps
            {"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 0}},
            "ZeroDivisionError: integer modulo by zero; the scheduler's step() raised it: check the scheduler "
            "section's arguments (step_size: 0)",
        ),
        (  # a quoted gamma: torch's ExponentialLR multiplies the lr by the text as it steps
            {"scheduler": {"name": "torch.optim.lr_scheduler:ExponentialLR", "gamma": "0.9"}},
            "TypeError: can't multiply sequence by non-int of type 'float'; the scheduler's step() raised it: "
            'scheduler.gamma is the text "0.9": write 0.9 without quotes, a number',
        ),
        (  # three betas: torch's Adam builds, and its fused step (hpotool's LeanStep) unpacks two
            {"optimizer": {"name": "torch.optim:Adam", "lr": 0.01, "betas": [0.9, 0.99, 0.1]}},
            "ValueError: too many values to unpack (expected 2); the optimizer's step() raised it: check the "
            "optimizer section's arguments (lr: 0.01, betas: [0.9, 0.99, 0.1]); hpotool calls step() with no "
            "arguments, once per batch",
        ),
    ],
)
def test_a_training_step_that_fails_in_the_schedule_or_the_optimizer_names_its_arguments(
    section: dict[str, Any], ending: str
) -> None:
    """A schedule's or a fused optimizer's argument torch takes and fails on as the run steps: the one-step
    check said "check that the loss fits this classification task", blaming the loss, naming no argument."""
    message = _check_refusal({**SMALL, **section, "device": "cpu"})
    assert message == f"run.yaml: training: one step on 8 samples failed: {as_this_python_words(ending)}"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"optimizer": {"name": "sgd", "lr": 0.01, "momentum": "0.9"}},
            "optimizer: TypeError: '<' not supported between instances of 'str' and 'float'; optimizer.momentum "
            'is the text "0.9": write 0.9 without quotes, a number',
        ),
        (
            {"optimizer": {"name": "torch.optim:Adam", "lr": 0.01, "betas": 0.9}},
            "optimizer: TypeError: 'float' object is not subscriptable; check the optimizer section's arguments "
            "(lr: 0.01, betas: 0.9)",
        ),
        (
            {"scheduler": {"name": "torch.optim.lr_scheduler:MultiStepLR", "milestones": 1}},
            "scheduler: TypeError: 'int' object is not iterable; check the scheduler section's arguments "
            "(milestones: 1)",
        ),
    ],
)
def test_an_argument_torch_refuses_as_it_builds_the_optimizer_or_schedule_is_named(
    section: dict[str, Any], message: str
) -> None:
    """torch's own refusal, raised deep in its constructor, named neither the section's key nor its value
    (`optimizer: TypeError: '<' not supported between instances of 'str' and 'float'`)."""
    assert _check_refusal({**SMALL, **section, "device": "cpu"}) == f"run.yaml: {message}"


@pytest.mark.parametrize(
    ("n", "hint"),
    [
        ("120", 'data.n is the text "120": write 120 without quotes, a number'),
        (120.0, "data.n is 120.0, a float, where 120, its default, is an int: write 120"),
    ],
)
def test_a_dataset_argument_spelt_as_text_or_a_float_is_named(n: object, hint: str) -> None:
    """A dataset function's count given as '120' or 120.0: torch's refusal deep in the user's code ("randn()
    received an invalid combination of arguments - got (str, int, ...)") named the line but not the key."""
    message = _check_refusal(
        {**SMALL, "data": {"name": "tests.helpers:two_classes", "n": n}, "device": "cpu"}
    )
    assert message.startswith(
        "run.yaml: data: loading 'tests.helpers:two_classes' failed: TypeError: randn()"
    )
    assert message.endswith(f" in two_classes); {hint}")


@pytest.mark.parametrize(
    ("data", "loss", "args"),
    [
        ({"name": "regression", "n_samples": 100}, {"name": "huber", "delta": 0}, "delta: 0"),
        ({"name": "regression", "n_samples": 100}, {"name": "smooth_l1", "beta": -1}, "beta: -1"),
    ],
)
def test_a_loss_argument_torch_refuses_as_the_loss_runs_is_named(
    data: dict[str, Any], loss: dict[str, Any], args: str
) -> None:
    """huber's delta: 0 failed with 'huber_loss does not support non-positive values for delta.; check that the
    loss fits this regression task': the loss fits, its argument does not."""
    cfg = RunConfig.model_validate({"data": data, "loss": loss, "device": "cpu"})
    task = "classification" if data["name"] == "digits" else "regression"
    assert _check_refusal(cfg).endswith(
        f"; check the loss section's arguments ({args}), and that the loss fits this {task} task"
    )


def test_class_weights_written_as_a_list_reach_the_loss_as_a_tensor_on_the_models_device() -> None:
    """`loss: {name: cross_entropy, weight: [...]}` is the only way YAML can give class weights; torch needs a
    tensor on the model's device (a loss module's buffers were left on the CPU)."""
    from hpotool.criterion import build_loss
    from hpotool.parts import build_trainer

    run = {
        **SMALL,
        "loss": {"name": "cross_entropy", "weight": [1.0] * 9 + [5.0]},
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")
    data = load_data(cfg.data)
    loss = build_loss(cfg, data)
    assert isinstance(loss, torch.nn.CrossEntropyLoss) and loss.weight is not None
    assert loss.weight.tolist() == [1.0] * 9 + [5.0]
    out, y = torch.randn(4, 10), torch.tensor([9, 9, 0, 1])
    expected = torch.nn.functional.cross_entropy(out, y, weight=torch.tensor([1.0] * 9 + [5.0]))
    assert torch.allclose(loss(out, y), expected)
    functional = RunConfig.model_validate(
        {**run, "loss": {"name": "torch.nn.functional:cross_entropy", "weight": [1.0] * 9 + [5.0]}}
    )
    check_run(functional, "run.yaml")
    assert torch.allclose(build_loss(functional, data)(out, y), expected)
    model = CNN((1, 8, 8), 10).to("meta")  # a device without CUDA: where the model is, the loss goes
    trainer = build_trainer(cfg, data, model)
    assert trainer.loss_fn.weight.device.type == "meta"  # type: ignore[union-attr]
    assert build_trainer(functional, data, model).loss_fn.keywords["weight"].device.type == "meta"  # type: ignore[attr-defined]


def test_a_validation_split_of_one_sample_is_refused_and_of_two_trains_batch_norm() -> None:
    """A validation split of one sample was accepted: every run's val_accuracy was 0 or 1 (1.0 here), so a
    study's trials tied or differed by chance. It is refused, naming the val_fraction that gives two; and
    the one-step check trains on a batch the run could take (batch norm refuses a batch of one), not on as
    many samples as the validation split holds."""
    run = {
        "data": {"name": "tests.helpers:ten_points", "val_fraction": 0.1},
        "model": {"name": "mlp", "hidden": [8], "norm": "batch"},
        "batch_size": 8,
        "epochs": 1,
        "device": "cpu",
    }
    assert _check_refusal(run) == (
        "run.yaml: data: val_fraction: 0.1 of the dataset's 10 samples leaves 1 validation sample, whose "
        "accuracy is 0 or 1 and error one prediction's: too few to compare runs; raise it to at least 0.2, or "
        "give more data"
    )
    with pytest.raises(ValueError, match=r"give more data \(at least 3 samples: 2 to validate, 1 to train\)"):
        split(as_dataset((torch.randn(2, 2), torch.tensor([0, 1]))), 0.5)
    cfg = RunConfig.model_validate({**run, "data": {**run["data"], "val_fraction": 0.2}})
    check_run(cfg, "run.yaml")
    assert train_run(cfg).epochs_run == 1


def test_two_classes_train_with_one_logit_and_bce_with_logits(tmp_path: Path) -> None:
    """BCEWithLogitsLoss (by short name, path or function): the model gets one output, the loss the classes
    as floats shaped like it, and val_accuracy counts a positive logit as class 1. The output-shape check
    refused a one-logit model, and the built-in MLP got two outputs, which the loss refused."""
    import torch.nn.functional as F

    from hpotool.saved import load_model, train_and_save

    run = {
        "data": {"name": "tests.helpers:two_classes", "val_fraction": 0.5},
        "model": {"name": "mlp", "hidden": [8]},
        "loss": {"name": "bce_with_logits"},
        "optimizer": {"name": "adam", "lr": 0.05},
        "epochs": 5,
        "batch_size": 16,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")
    saved = train_and_save(cfg, tmp_path / "run")
    model, _, metrics = load_model(tmp_path / "run" / "model.pt")
    val = load_data(cfg.data).val
    with torch.no_grad():
        out = model(val.x)
    assert out.shape == (len(val), 1)
    assert metrics["val_accuracy"] == pytest.approx(((out[:, 0] > 0) == (val.y == 1)).float().mean().item())
    assert metrics["val_accuracy"] > 0.8 and saved.metrics == metrics
    expected = F.binary_cross_entropy_with_logits(out, val.y.float().unsqueeze(1)).item()
    assert metrics["val_loss"] == pytest.approx(expected, rel=1e-5)
    for loss in (
        {"name": "torch.nn:BCEWithLogitsLoss", "pos_weight": [2.0]},
        {"name": "torch.nn.functional:binary_cross_entropy_with_logits"},
    ):
        check_run(
            RunConfig.model_validate({**run, "model": {"name": "tests.helpers:OneLogitNet"}, "loss": loss}),
            "r",
        )
    with pytest.raises(HpoError) as info:
        check_run(RunConfig.model_validate({**run, "data": {"name": "digits", "subset_fraction": 0.1}}), "r")
    assert str(info.value) == (
        "r: loss: 'bce_with_logits' scores two classes with one logit per sample, but y holds 10 classes "
        "(labels 0 to 9); use loss: {name: cross_entropy}"
    )
    with pytest.raises(HpoError) as info:
        check_run(
            RunConfig.model_validate({**run, "model": {"name": "tests.helpers:OneLogitNet"}, "loss": {}}), "r"
        )
    assert str(info.value) == (
        "r: model: its output for 8 samples has shape (8, 1); this classification task needs (8, 2): (batch, "
        "classes) logits; for one logit per sample, set loss: {name: bce_with_logits}"
    )


@pytest.mark.parametrize("name", ["bce_with_logits", "torch.nn.functional:binary_cross_entropy_with_logits"])
def test_binary_cross_entropy_on_labels_other_than_0_and_1_says_which_labels_y_holds(name: str) -> None:
    """Labels 1 and 2 were called '3 classes' (the largest label + 1), with the fix to use cross_entropy."""
    run = {"data": {"name": "tests.helpers:labels_one_and_two"}, "loss": {"name": name}, "device": "cpu"}
    assert _check_refusal(run) == (
        f"run.yaml: loss: {name!r} is binary cross-entropy, which needs the labels 0 and 1, but y holds the "
        "labels 1 and 2; number the two classes 0 and 1 in the dataset function: (y == 2).long() turns 2 into 1 "
        "and 1 into 0"
    )
    check_run(RunConfig.model_validate({**run, "data": {"name": "tests.helpers:two_classes"}}), "run.yaml")


@pytest.mark.parametrize(
    ("data", "loss", "message"),
    [
        (
            "tests.helpers:two_classes",
            {"name": "bce_with_logits", "weight": [1.0, 4.0]},
            "weight: [1.0, 4.0]: for 'bce_with_logits' weight scales the loss of each position in a batch, not of "
            "each class; to weight class 1 against class 0, give pos_weight: 4 instead",
        ),
        (
            "tests.helpers:two_classes",
            {"name": "torch.nn.functional:binary_cross_entropy_with_logits", "pos_weight": [1.0, 4.0]},
            "pos_weight: [1.0, 4.0] holds 2 weights; with one logit per sample it is one number, the weight of "
            "class 1 against class 0 (pos_weight: 3.0 counts each class-1 sample three times)",
        ),
        (
            "tests.helpers:two_classes",
            {"name": "cross_entropy", "weight": [1.0, 4.0, 2.0]},
            "weight: [1.0, 4.0, 2.0] holds 3 weights for the 2 classes of y (labels 0 and 1); give one weight per "
            "class, class 0's first",
        ),
        (
            "digits",
            {"name": "torch.nn.functional:cross_entropy", "weight": [1.0, 2.0]},
            "weight: [1.0, 2.0] holds 2 weights for the 10 classes of y (labels 0 to 9); give one weight per "
            "class, class 0's first",
        ),
        (  # it said 'weight: 2.0 holds 1 weights for the 2 classes'
            "tests.helpers:two_classes",
            {"name": "cross_entropy", "weight": 2.0},
            "weight: 2.0 is one number, but 'cross_entropy' takes one weight per class: give a list of 2 for the "
            "classes of y (labels 0 and 1), class 0's first (such as [1.0, 2.0])",
        ),
    ],
)
def test_class_weights_that_do_not_fit_the_classes_say_what_to_give(
    data: str, loss: dict[str, Any], message: str
) -> None:
    """torch said 'output with shape [8, 1] doesn't match the broadcast shape [8, 2]' or 'weight tensor should
    be defined either for all 2 classes or no classes', and hpotool to check that the loss fits the task."""
    run = {"data": {"name": data, "subset_fraction": 0.5}, "loss": loss, "batch_size": 16, "device": "cpu"}
    assert _check_refusal(run) == f"run.yaml: loss: {message}"


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (
            "cross_entropy",
            "'cross_entropy' scores classes, but y holds one floating-point number per sample (a regression "
            "task), over which it is 0 whatever the model predicts; use mse, l1, smooth_l1 or huber, or give y "
            "as integer class labels for classification",
        ),
        (
            "torch.nn.functional:nll_loss",
            "'torch.nn.functional:nll_loss' scores classes, but y holds one floating-point number per sample",
        ),
        (
            "bce_with_logits",
            "'bce_with_logits' takes targets from 0 to 1 (probabilities, or 0/1 labels), but y holds values from "
            "-9.187 to 10.59; for regression use mse, l1, smooth_l1 or huber",
        ),
    ],
)
def test_a_classification_loss_on_regression_targets_is_refused(loss: str, message: str) -> None:
    """cross_entropy trained with val_loss 0 (one output: its softmax is 1 whatever the model predicts), and
    bce_with_logits with a negative val_loss (targets outside 0..1), both without a word."""
    run = {"data": {"name": "regression"}, "loss": {"name": loss}, "device": "cpu"}
    assert _check_refusal(run).startswith(f"run.yaml: loss: {message}")


@pytest.mark.parametrize("loss", ["torch.nn:NLLLoss", "torch.nn.functional:nll_loss"])
def test_negative_log_likelihood_of_a_built_in_models_logits_is_refused(loss: str) -> None:
    """It trained: train_loss -180, val_loss -229, val_accuracy 0.09 after 5 epochs on digits."""
    run = {"data": {"name": "digits", "subset_fraction": 0.2}, "loss": {"name": loss}, "device": "cpu"}
    assert _check_refusal(run) == (
        f"run.yaml: loss: {loss!r} takes log-probabilities, but the built-in model 'mlp' outputs logits, whose "
        "negative log-likelihood falls below 0 without end while the model learns nothing; use cross_entropy "
        "(log_softmax and NLL in one), or a model of your own ending in log_softmax"
    )


def test_0_1_labels_stored_as_floats_with_binary_cross_entropy_train_as_two_classes() -> None:
    """`hpotool train` reported val_rmse for `x, (x[:, 0] > 0).float()` with bce_with_logits: the float 0/1
    labels made a regression task. With a one-logit loss they are two classes, measured by val_accuracy; with
    any other loss, probabilities between 0 and 1, or a Dataset that names its task, they stay numbers."""
    run = {
        "data": {"name": "tests.helpers:labels_read_as_floats"},
        "loss": {"name": "bce_with_logits"},
        "epochs": 3,
        "batch_size": 16,
        "device": "cpu",
    }
    for loss in ("bce_with_logits", "torch.nn.functional:binary_cross_entropy_with_logits"):
        cfg = RunConfig.model_validate({**run, "loss": {"name": loss}})
        check_run(cfg, "run.yaml")
        data = load_data(cfg.data, cfg.loss.name)
        assert data.task == "classification" and data.val.y.dtype == torch.int64
        result = train_run(cfg)
        assert set(result.metrics) >= {"val_accuracy", "val_loss"} and "val_rmse" not in result.metrics
        assert result.metrics["val_accuracy"] > 0.7
    assert (
        load_data(RunConfig.model_validate({**run, "loss": {"name": "mse"}}).data, "mse").task == "regression"
    )
    x = torch.randn(20, 2)
    assert as_dataset((x, torch.rand(20)), binary=True).task == "regression"  # probabilities
    assert as_dataset((x, torch.zeros(20)), binary=True).task == "regression"  # one value is no two classes
    named = Dataset(x, (x[:, 0] > 0).float(), "regression")
    assert as_dataset(named, binary=True).task == "regression"
    assert as_dataset((x, (x[:, :2] > 0).float()), binary=True).task == "multilabel"  # two labels a sample


def test_class_weights_that_fit_train() -> None:
    for data, loss in (
        ("tests.helpers:two_classes", {"name": "cross_entropy", "weight": [1.0, 4.0]}),
        ("tests.helpers:two_classes", {"name": "bce_with_logits", "pos_weight": [4.0], "weight": 2.0}),
        ("digits", {"name": "torch.nn.functional:cross_entropy", "weight": [1.0] * 10}),
    ):
        run = {
            "data": {"name": data, "subset_fraction": 0.5},
            "loss": loss,
            "batch_size": 16,
            "device": "cpu",
        }
        check_run(RunConfig.model_validate(run), "run.yaml")


@pytest.mark.parametrize("name", ["cross_entropy", "torch.nn.functional:cross_entropy"])
def test_class_weights_take_a_float64_models_dtype(name: str) -> None:
    """They were always float32, so a float64 model's every step failed: 'expected scalar type Double but
    found Float', with 'check that the loss fits this classification task'."""
    from hpotool.parts import build_trainer

    run = {
        "data": {"name": "tests.helpers:float64_classes"},
        "model": {"name": "tests.helpers:Float64Net"},
        "loss": {"name": name, "weight": [1.0, 2.0, 1.0]},
        "epochs": 2,
        "batch_size": 16,
        "device": "cpu",
    }
    cfg = RunConfig.model_validate(run)
    check_run(cfg, "run.yaml")
    result = train_run(cfg)
    assert result.epochs_run == 2 and 0 <= result.metrics["val_accuracy"] <= 1
    data = load_data(cfg.data, cfg.loss.name)
    model = result.model
    assert model is not None
    loss_fn: Any = build_trainer(cfg, data, model).loss_fn
    weight = loss_fn.weight if name == "cross_entropy" else loss_fn.keywords["weight"]
    assert weight.dtype == torch.float64 and weight.tolist() == [1.0, 2.0, 1.0]
    digits = RunConfig.model_validate(
        {"data": {"name": "digits"}, "loss": {"name": name, "weight": [1.0] * 10}}
    )
    default: Any = build_trainer(digits, load_data(digits.data), MLP(64, 10, hidden=[8])).loss_fn
    assert (default.weight if name == "cross_entropy" else default.keywords["weight"]).dtype == torch.float32


@pytest.mark.parametrize(
    "loss",
    [
        {"name": "mse", "reduction": "sum"},
        {"name": "torch.nn.functional:mse_loss", "reduction": "none"},
    ],
)
def test_a_loss_that_does_not_average_is_refused_at_load_time(loss: dict[str, Any]) -> None:
    """With reduction: sum, train_loss held batch sums and val_loss the whole split's sum (~669 against
    ~2283 for the same model); with none, the step failed saying to check that the loss fits the task."""
    run = {"data": {"name": "regression"}, "loss": loss, "device": "cpu"}
    with pytest.raises(
        HpoError, match=r"run\.yaml: loss: .*argument 'reduction': hpotool needs each batch's mean"
    ):
        validate_config(RunConfig, run, "run.yaml")
    validate_config(RunConfig, {**run, "loss": {**loss, "reduction": "mean"}}, "run.yaml")
    kl_div = {"name": "torch.nn:KLDivLoss", "reduction": "batchmean"}  # the mean over the batch's samples
    validate_config(RunConfig, {**run, "loss": kl_div}, "run.yaml")


def test_a_float64_x_kept_by_a_dataset_object_is_named_as_the_cause_of_the_models_dtype_error() -> None:
    """The message was torch's alone ('mat1 and mat2 must have the same dtype, but got Double and Float')."""
    cfg = RunConfig.model_validate({"data": {"name": "tests.helpers:float64_dataset"}, "device": "cpu"})
    said = _check_refusal(cfg)
    assert said.startswith("run.yaml: model: RuntimeError: ")
    assert said.endswith(
        "; the data's x is float64 and the model's parameters float32: give x as float32 in the dataset "
        "function (x.float(); a numpy array: x.astype(np.float32))"
    )


def test_a_dataset_object_of_numpy_arrays_and_pandas_objects_is_checked_as_a_pair_of_them_is() -> None:
    """`Dataset(x, y, task)` of numpy arrays (scikit-learn's) failed with "AttributeError: 'numpy.ndarray'
    object has no attribute 'detach'", though an (x, y) pair of them trains; their types are kept, as a
    tensor's are."""
    x = np.arange(12, dtype=np.int64).reshape(6, 2)
    ds = as_dataset(Dataset(x, np.array([0, 1, 2, 0, 1, 2]), "classification"))  # type: ignore[arg-type]
    assert ds.x.dtype == torch.int64 and ds.y.tolist() == [0, 1, 2, 0, 1, 2] and ds.n_classes == 3
    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5], "b": [1.0, 2.0, 3.0]})
    ds = as_dataset(Dataset(frame, pd.Series([0.1, 0.2, 0.3]), "regression"))  # type: ignore[arg-type]
    assert ds.x.dtype == torch.float64 and ds.y.shape == (3, 1) and ds.y.dtype == torch.float64
    with pytest.raises(DataError, match="y holds text labels such as 'cat'"):
        as_dataset(Dataset(x[:2], np.array(["cat", "dog"]), "classification"))  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_uint8_pixels_kept_by_a_dataset_object_are_named_as_the_cause_of_the_models_dtype_error(
    model: str,
) -> None:
    """torch's message alone: 'mat1 and mat2 must have the same dtype, but got Byte and Float' (mlp), 'Input
    type (unsigned char) and bias type (float) should be the same' (cnn)."""
    run = {"data": {"name": "tests.helpers:uint8_images"}, "model": {"name": model}, "batch_size": 16}
    said = _check_refusal({**run, "device": "cpu"})
    assert said.startswith("run.yaml: model: RuntimeError: ")
    assert said.endswith(
        "; the data's x is uint8 and the model's parameters float32: give x as float32 in the dataset function, "
        "scaled as the model expects (pixels: x.float() / 255); integer x is kept as it is for a model that "
        "embeds token ids"
    )


def test_a_loss_function_returning_one_value_per_sample_is_told_to_return_the_mean() -> None:
    """backward() refused it with 'grad can be implicitly created only for scalar outputs', and hpotool
    said to check that the loss fits the task."""
    cfg = RunConfig.model_validate(
        {"data": {"name": "regression"}, "loss": {"name": "tests.helpers:squared_errors"}, "device": "cpu"}
    )
    assert _check_refusal(cfg) == (
        "run.yaml: loss: it returned shape (8,) for 8 samples, not one number; hpotool needs the batch's mean "
        "loss: return loss.mean()"
    )


@pytest.mark.parametrize("name", ["bce_with_logits", "torch.nn.functional:binary_cross_entropy_with_logits"])
def test_a_number_given_for_a_tensor_argument_reaches_the_loss_as_a_tensor(name: str) -> None:
    """`pos_weight: 3.0` failed: 'cannot assign float object to buffer pos_weight' (the class), 'argument
    pos_weight must be Tensor, not float' (the function); only lists were made tensors."""
    import torch.nn.functional as F

    from hpotool.criterion import build_loss

    cfg = RunConfig.model_validate(
        {
            "data": {"name": "tests.helpers:two_classes"},
            "model": {"name": "mlp", "hidden": [8]},
            "loss": {"name": name, "pos_weight": 3.0},
            "device": "cpu",
        }
    )
    check_run(cfg, "run.yaml")
    out, y = torch.randn(6, 1), torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    expected = F.binary_cross_entropy_with_logits(out, y, pos_weight=torch.tensor(3.0))
    assert torch.allclose(build_loss(cfg, load_data(cfg.data))(out, y), expected)


def test_batch_norm_given_batches_of_one_sample_is_told_to_raise_batch_size() -> None:
    """The hint was 'the model raised it in training mode: check its forward()', for the built-in MLP."""
    run = {
        "data": {"name": "digits", "subset_fraction": 0.1},
        "model": {"name": "mlp", "hidden": [8], "norm": "batch"},
        "batch_size": 1,
        "device": "cpu",
    }
    said = _check_refusal(run)
    assert said.startswith(
        "run.yaml: training: one step on 1 sample failed: ValueError: Expected more than 1 value per channel"
    )
    assert said.endswith("; batch norm cannot train on a batch of one sample: set batch_size to 2 or more")


def test_numpy_float64_regression_targets_train_with_every_built_in_loss() -> None:
    """huber failed on numpy's float64 targets: 'Found dtype Double but expected Float'."""
    ds = as_dataset(numpy_regression())
    assert ds.x.dtype == ds.y.dtype == torch.float32 and ds.y.shape == (80, 1)
    for loss in ("mse", "l1", "smooth_l1", "huber"):
        cfg = RunConfig.model_validate(
            {"data": {"name": "tests.helpers:numpy_regression"}, "loss": {"name": loss}, "device": "cpu"}
        )
        check_run(cfg, "run.yaml")
    kept = as_dataset(Dataset(torch.zeros(4, 2, dtype=torch.float64), torch.arange(4.0), "regression"))
    assert kept.y.dtype == torch.float64  # a Dataset's float64 x is kept, and its targets match it


def test_a_searched_loss_is_checked_on_the_task_it_makes_of_0_1_float_labels(tmp_path: Path) -> None:
    """bce_with_logits makes 0/1 float labels two classes, other losses a regression: a searched loss.name
    was checked on the base loss's task only, so its other choice failed every trial it was given."""
    import yaml

    from hpotool.plan import prepare_study

    run = {
        "data": {"name": "tests.helpers:labels_read_as_floats"},
        "loss": {"name": "bce_with_logits"},
        "epochs": 1,
        "batch_size": 16,
        "device": "cpu",
    }
    opt = {
        "study_name": "l",
        "storage": f"sqlite:///{tmp_path / 'l.db'}",
        "metric": "val_accuracy",
        "direction": "maximize",
        "search_space": {
            "loss.name": {"type": "categorical", "choices": ["bce_with_logits", "cross_entropy"]}
        },
    }
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    run_path.write_text(yaml.safe_dump(run))
    opt_path.write_text(yaml.safe_dump(opt))
    with pytest.raises(HpoError) as info:
        prepare_study(run_path, opt_path)
    assert str(info.value).startswith(
        f"{opt_path}: search_space.loss.name: with loss.name=cross_entropy: 'cross_entropy' scores classes, but "
        "y holds one floating-point number per sample (a regression task)"
    )
    run_path.write_text(yaml.safe_dump({**run, "loss": {"name": "mse"}}))
    choices = {"type": "categorical", "choices": ["mse", "bce_with_logits"]}
    regression = {
        **opt,
        "metric": "val_rmse",
        "direction": "minimize",
        "search_space": {"loss.name": choices},
    }
    opt_path.write_text(yaml.safe_dump(regression))
    with pytest.raises(HpoError) as info:
        prepare_study(run_path, opt_path)
    assert str(info.value) == (
        f"{opt_path}: search_space.loss.name: with loss.name=bce_with_logits: this classification task does "
        "not measure val_rmse; it measures: train_loss, val_loss, val_accuracy, n_params, epoch_time "
        "('bce_with_logits' reads the 0/1 float targets as two classes, a classification task, where other "
        "losses make them a regression that measures val_rmse; drop bce_with_logits from its choices to "
        "compare regression losses by val_rmse, or compare classification losses by val_accuracy)"
    )
    opt_path.write_text(
        yaml.safe_dump({**regression, "search_space": {"loss.name": {**choices, "choices": ["mse", "l1"]}}})
    )
    prepare_study(run_path, opt_path)


def test_a_searched_dataset_of_another_task_is_dry_run_with_the_class_weights(tmp_path: Path) -> None:
    """A searched data.name over a classification and a regression dataset was checked for its metrics
    alone: class weights for digits' ten classes failed every trial that drew the regression data."""
    import yaml

    from hpotool.plan import prepare_study

    weight = [1.0] * 9 + [2.0]
    run = {
        "data": {"name": "digits", "subset_fraction": 0.2},
        "loss": {"name": "cross_entropy", "weight": weight},
        "epochs": 1,
        "device": "cpu",
    }
    opt = {
        "study_name": "w",
        "storage": f"sqlite:///{tmp_path / 'w.db'}",
        "metric": "val_loss",
        "direction": "minimize",
        "search_space": {"data.name": {"type": "categorical", "choices": ["digits", "regression"]}},
    }
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    run_path.write_text(yaml.safe_dump(run))
    opt_path.write_text(yaml.safe_dump(opt))
    with pytest.raises(HpoError) as info:
        prepare_study(run_path, opt_path)
    message = str(info.value)
    assert message.startswith(
        f"{opt_path}: search_space.data.name: with data.name=regression: loss: 'cross_entropy' scores classes"
    )
    assert message.endswith(
        "(the run config's loss is for its classification data; search data.name over datasets of one task)"
    )
    run_path.write_text(yaml.safe_dump({**run, "loss": {"name": "auto"}}))
    prepare_study(run_path, opt_path)


def test_class_weights_are_searched_as_whole_lists_or_item_by_item(tmp_path: Path) -> None:
    """loss.weight as a categorical of whole lists (null among them) was refused, with a hint about layer
    widths; it is searched as given now, and a list of the wrong length is refused before trial 0, as an
    item past the classes is."""
    import yaml

    from hpotool.plan import prepare_study

    run = {
        "data": {"name": "digits", "subset_fraction": 0.2},
        "loss": {"name": "cross_entropy", "weight": [1.0] * 10},
        "epochs": 1,
        "device": "cpu",
    }
    lists = {"type": "categorical", "choices": [None, [1.0] * 10, [1.0] * 9 + [2.0]]}
    opt = {
        "study_name": "w",
        "storage": f"sqlite:///{tmp_path / 'w.db'}",
        "metric": "val_loss",
        "direction": "minimize",
        "search_space": {"loss.weight": lists},
    }
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    run_path.write_text(yaml.safe_dump(run))
    opt_path.write_text(yaml.safe_dump(opt))
    prepare_study(run_path, opt_path)
    short = {"type": "categorical", "choices": [[1.0] * 10, [2.0] * 9]}
    opt_path.write_text(yaml.safe_dump({**opt, "search_space": {"loss.weight": short}}))
    with pytest.raises(
        HpoError, match=r"search_space.loss.weight: with loss.weight=\[2.0, .*holds 9 weights for the 10"
    ):
        prepare_study(run_path, opt_path)
    item = {"loss.weight.9": {"type": "float", "low": 1.0, "high": 4.0}}
    opt_path.write_text(yaml.safe_dump({**opt, "search_space": item}))
    prepare_study(run_path, opt_path)
    opt_path.write_text(yaml.safe_dump({**opt, "search_space": {"loss.weight.10": item["loss.weight.9"]}}))
    with pytest.raises(HpoError, match=r"holds 11 weights for the 10 classes of y"):
        prepare_study(run_path, opt_path)


def _conditional_dataset_study(
    tmp_path: Path, space: dict[str, Any], loss: str = "auto"
) -> tuple[Path, Path]:
    """A digits run and a search space with a conditional dataset (`space`)."""
    import yaml

    run = {"data": {"name": "digits", "subset_fraction": 0.2}, "loss": {"name": loss}, "epochs": 1}
    opt = {
        "study_name": "c",
        "storage": f"sqlite:///{tmp_path / 'c.db'}",
        "metric": "val_loss",
        "direction": "minimize",
        "search_space": space,
    }
    run_path, opt_path = tmp_path / "run.yaml", tmp_path / "opt.yaml"
    run_path.write_text(yaml.safe_dump({**run, "device": "cpu"}))
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))  # conditions read earlier parameters
    return run_path, opt_path


def test_a_conditional_dataset_is_dry_run_with_the_searched_values_it_meets(tmp_path: Path) -> None:
    """A searched value was dry-run on the run config's data alone: cross_entropy passed on digits and failed
    every trial where the condition switched the data to the regression set."""
    from hpotool.plan import prepare_study

    gelu = {"model.activation": {"type": "categorical", "choices": ["relu", "gelu"]}}
    regression = {"type": "categorical", "choices": ["regression"], "when": {"model.activation": "gelu"}}
    losses = {"type": "categorical", "choices": ["auto", "cross_entropy"]}
    run_path, opt_path = _conditional_dataset_study(
        tmp_path, {**gelu, "data.name": regression, "loss.name": losses}
    )
    with pytest.raises(HpoError) as info:
        prepare_study(run_path, opt_path)
    assert str(info.value).startswith(
        f"{opt_path}: search_space.loss.name: with data.name=regression (when model.activation=gelu), "
        f"loss.name=cross_entropy: 'cross_entropy' scores classes"
    )
    # the same loss under the other branch of the condition, where the data stays digits, is fine
    cross_entropy = {**losses, "choices": ["cross_entropy"], "when": {"model.activation": "relu"}}
    run_path, opt_path = _conditional_dataset_study(
        tmp_path, {**gelu, "data.name": regression, "loss.name": cross_entropy}
    )
    prepare_study(run_path, opt_path)


def test_a_value_is_checked_with_the_dataset_its_condition_brings(tmp_path: Path) -> None:
    """mse under the condition that also switches to the regression set was dry-run on digits and refused,
    though no trial trains mse on digits (nor the regression set with the run config's cross_entropy)."""
    from hpotool.plan import prepare_study

    gelu = {"model.activation": {"type": "categorical", "choices": ["relu", "gelu"]}}
    when = {"when": {"model.activation": "gelu"}}
    run_path, opt_path = _conditional_dataset_study(
        tmp_path,
        {
            **gelu,
            "loss.name": {"type": "categorical", "choices": ["mse"], **when},
            "data.name": {"type": "categorical", "choices": ["regression"], **when},
        },
        loss="cross_entropy",
    )
    prepare_study(run_path, opt_path)


def test_features_that_carry_an_autograd_graph_train() -> None:
    """x computed by a torch encoder without no_grad() passed the one-step check, then every trial failed
    at its second step: 'Trying to backward through the graph a second time'."""
    assert not as_dataset(features_with_a_graph()).x.requires_grad
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "tests.helpers:features_with_a_graph"},
            "device": "cpu",
            "epochs": 2,
            "batch_size": 16,
        }
    )
    check_run(cfg, "run.yaml")
    result = train_run(cfg)
    assert result.epochs_run == 2 and 0 <= result.metrics["val_accuracy"] <= 1


def test_a_torch_dataset_with_a_random_transform_is_refused_saying_it_would_apply_once() -> None:
    """Before, augmentation in __getitem__ was read once and frozen into the tensors every epoch trains on,
    without a word."""

    class Augmented(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 20

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.full((3,), float(i)) + torch.randn(3), i % 2

    with pytest.raises(DataError, match=r"^Augmented\[0\] differs between two reads \(a random transform"):
        as_dataset(Augmented())

    class Fixed(Augmented):
        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.full((3,), float("nan") if i == 0 else float(i)), i % 2

    assert len(_stack_samples(Fixed())[0]) == 20


@pytest.mark.parametrize("n", [2, 5, 1000])
def test_a_torch_dataset_whose_augmentation_skips_the_first_sample_is_refused(n: int) -> None:
    """Only sample 0 was read twice, so augmentation that leaves it alone (or a first sample that happens to
    be fixed) passed, and the random transform was frozen into the tensors every epoch trains on."""

    class SkipsFirst(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            x = torch.full((3,), float(i))
            return (x if i == 0 else x + torch.randn(3)), i % 2

    with pytest.raises(DataError, match=r"^SkipsFirst\[\d+\] differs between two reads \(a random transform"):
        as_dataset(SkipsFirst())


def test_a_torch_dataset_flipping_half_the_time_is_refused() -> None:
    """A flip drawn per read gives the same sample twice with odds 1/2: eight samples read again miss it once
    in 256 tries; sample 0 alone missed it every other time."""

    class Flips(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 100

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            x = torch.arange(4.0) + i
            return (x.flip(0) if torch.rand(()) < 0.5 else x), i % 2

    torch.manual_seed(0)
    refused = 0
    for _ in range(20):
        try:
            _stack_samples(Flips())
        except DataError:
            refused += 1
    assert refused >= 19


def _stack_samples(ds: Any) -> Any:
    from hpotool.torch_datasets import stack_torch_dataset

    return stack_torch_dataset(ds)


def test_cnn_on_images_without_a_channel_axis_says_to_add_one() -> None:
    """x of shape (n, H, W) was refused with 'cnn needs inputs shaped (channels, height, width), got (8, 8)'
    alone, which did not say the missing axis is the channel."""
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "tests.helpers:grayscale_images"},
            "model": {"name": "cnn"},
            "device": "cpu",
            "batch_size": 16,
        }
    )
    assert _check_refusal(cfg).endswith(
        "got (8, 8); for one-channel (grayscale) images add the channel axis in the dataset function: "
        "x.unsqueeze(1) (numpy: x[:, None])"
    )


def test_one_hot_integer_or_boolean_targets_are_class_ids() -> None:
    """Integer one-hot y was refused ('needs one class index per sample'); boolean one-hot (np.eye(3,
    dtype=bool)[k]) failed in argmax ('not implemented for Bool'). Float one-hot is class ids with a loss
    that scores classes, and stays numbers with any other."""
    x, k = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    for dtype in (torch.int64, torch.bool):
        ds = as_dataset((x, torch.eye(3, dtype=dtype)[k]))
        assert ds.task == "classification" and torch.equal(ds.y, k)
    assert as_dataset((x, torch.eye(3)[k]), classes=True).task == "classification"
    assert as_dataset((x, torch.eye(3)[k])).task == "regression"


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(64, 10, hidden=[32, 16], dropout=0.2, norm="batch"),
        lambda: MLP(64, 10, hidden=[32], norm="layer", activation="gelu"),
        lambda: CNN((1, 8, 8), 10, dropout=0.1),
    ],
)
def test_built_in_models_run_their_layers_without_module_calls_unless_a_hook_listens(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each nn.Module call costs Python (~8% of a digits MLP step for its Sequential and layers): the built-in
    models call their layers' forward() directly, the same computation, and go through the modules as
    before wherever a hook (global, on the Sequential or on a layer) would see the difference."""
    torch.manual_seed(0)
    model, x = make(), torch.randn(12, 1, 8, 8)
    twin = make()
    twin.load_state_dict(model.state_dict())
    calls: list[str] = []
    call = torch.nn.Module.__call__

    def counted(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(self).__name__)
        return call(self, *args, **kwargs)

    for mode in ("train", "eval"):
        getattr(model, mode)(), getattr(twin, mode)()
        torch.manual_seed(1)
        expected = twin.net(x)  # every layer through nn.Module.__call__, dropout drawn from the same seed
        monkeypatch.setattr(torch.nn.Module, "__call__", counted)
        torch.manual_seed(1)
        got = model(x)
        monkeypatch.setattr(torch.nn.Module, "__call__", call)
        assert torch.equal(got, expected)
        assert calls == [type(model).__name__]  # the model itself only
        calls.clear()
    model.train()
    seen: list[str] = []
    layer = model.net[-1]
    handle = layer.register_forward_hook(lambda m, i, o: seen.append("layer"))
    model(x)
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(type(m).__name__)
    )
    model(x)
    handle.remove()
    handle = model.net.register_forward_pre_hook(lambda m, i: seen.append("net"))
    model(x)
    handle.remove()
    assert seen[0] == "layer" and seen[-1] == "net"
    assert {"Sequential", "Linear"} <= set(seen[1:-1])  # the global hook saw the layers


def test_a_batch_larger_than_one_training_sample_says_sample() -> None:
    """`val_fraction: 0.9995` leaves one training sample: the line read "the 1 training samples"."""
    from hpotool.data import batch_size_problem

    data = load_data(RunConfig.model_validate({"data": {"name": "digits", "val_fraction": 0.9995}}).data)
    assert batch_size_problem(64, data) == (
        "64 is larger than the 1 training sample; use a smaller batch_size or more data (data.subset_fraction, "
        "data.val_fraction)"
    )


def test_a_users_own_loss_raising_in_its_code_is_not_told_the_loss_may_not_fit_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a user's loss (a KeyError in a function, an attribute a class never set) read "... (at
    my_losses.py:5 in buggy); check that the loss fits this classification task", as if a built-in loss had
    been given outputs of the wrong shape; the line already names the user's frame."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_losses.py").write_text(
        "import torch\n\n\ndef buggy(pred, target, scale=1.0):\n    return {'a': scale}['b']\n\n\n"
        "class Buggy(torch.nn.Module):\n    def forward(self, pred, target):\n        return self.nope\n"
    )
    said = "one step on 8 samples failed: {} (at my_losses.py:{}); the loss my_losses:{} raised it in its own code"
    run: dict[str, Any] = {**SMALL, "loss": {"name": "my_losses:buggy"}, "device": "cpu"}
    assert _check_refusal(run) == "run.yaml: training: " + said.format(
        "KeyError: 'b'", "5 in buggy", "buggy"
    ) + (": check that code")
    run["loss"] = {"name": "my_losses:buggy", "scale": 2.0}
    assert _check_refusal(run).endswith(
        "raised it in its own code: check that code, and the loss section's arguments (scale: 2.0)"
    )
    run["loss"] = {"name": "my_losses:Buggy"}
    assert (
        _check_refusal(run)
        == "run.yaml: training: "
        + said.format("AttributeError: 'Buggy' object has no attribute 'nope'", "10 in forward", "Buggy")
        + ": check that code"
    )
    sys.modules.pop("my_losses", None)
    run["model"] = {"name": "mlp", "hidden": [8]}  # a built-in loss given what it cannot take keeps the hint
    run["loss"] = {"name": "torch.nn:MultiLabelMarginLoss"}
    assert _check_refusal(run).endswith("; check that the loss fits this classification task")
