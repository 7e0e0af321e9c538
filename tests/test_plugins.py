"""What users plug in by import path, end to end: their own model trained, saved and loaded back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from hpotool.config import RunConfig


def _refused(call: Any, *args: Any) -> str:
    """The one line hpotool's error gives when `call(*args)` refuses what a user plugged in."""
    from hpotool.errors import HpoError

    with pytest.raises(HpoError) as info:
        call(*args)
    return str(info.value)


def test_a_saved_run_of_a_users_model_loads_from_its_folder(tmp_path: Path) -> None:
    """`load_model("runs/x/20261205-141011")`, the folder train and train-from-best print, said "not a model
    saved by hpotool: IsADirectoryError: [Errno 21] Is a directory"; it takes the folder now too."""
    from hpotool.saved import load_model, train_and_save

    (tmp_path / "wide_net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features, width):\n        super().__init__()\n"
        "        self.f = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))\n\n"
        "    def forward(self, x):\n        return self.f(x)\n"
    )
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "regression", "n_samples": 64},
            "model": {"name": "wide_net:Net", "width": 4},
            "epochs": 1,
            "batch_size": 16,
            "device": "cpu",
        }
    )
    saved = train_and_save(cfg, tmp_path / "run")
    model, config, metrics = load_model(saved.folder)
    same, _, _ = load_model(saved.folder / "model.pt")
    assert config == cfg and metrics == saved.metrics and not model.training
    x = torch.randn(3, 10)
    assert torch.equal(model(x), same(x))


TIMED_FIT = """import time


def timed(fn):
    def wrapper(*args, **kwargs):  # no functools.wraps: the signature hpotool reads is (*args, **kwargs)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        out['seconds'] = time.perf_counter() - start
        return out
    return wrapper


@timed
def fit(config, report):
    for epoch in range(config['epochs']):
        report(epoch, {'val_loss': 1.0 / (epoch + 1)})
    return {'val_loss': 1.0 / config['epochs']}


def load(path):
    return {}


def called_wrongly(config, report):
    return load('x.csv', config=config)  # a TypeError of the function's own, over an argument hpotool passes


@timed
def timed_called_wrongly(config, report):
    return called_wrongly(config, report)
"""


def test_a_training_function_under_a_decorator_that_hides_its_signature_is_called_with_what_it_takes(
    tmp_path: Path,
) -> None:
    """A timing or logging decorator without functools.wraps gives the function the signature
    (*args, **kwargs): hpotool passed it config, run_config and report, and `def fit(config, report)` failed
    every trial with "TypeError: fit() got an unexpected keyword argument 'run_config'"."""
    import pytest

    from hpotool.runner import train_run

    (tmp_path / "timed_fit.py").write_text(TIMED_FIT)
    cfg = RunConfig.model_validate({"trainer": {"function": "timed_fit:fit"}, "epochs": 2, "device": "cpu"})
    result = train_run(cfg)
    assert result.metrics["val_loss"] == 0.5 and "seconds" in result.metrics
    assert [row["epoch"] for row in result.history] == [0, 1]
    # a TypeError the function raises itself is its own, as before
    cfg = RunConfig.model_validate(
        {"trainer": {"function": "timed_fit:timed_called_wrongly"}, "device": "cpu"}
    )
    with pytest.raises(TypeError, match=r"^load\(\) got an unexpected keyword argument 'config'$"):
        train_run(cfg)


def test_an_optimizer_function_under_a_decorator_that_hides_its_signature_builds(tmp_path: Path) -> None:
    """Under a decorator without functools.wraps, a user's optimizer function shows (*args, **kwargs), so
    hpotool's default weight_decay: 0.0, which it leaves out for a function that takes no such argument, was
    passed: "TypeError: make_sgd() got an unexpected keyword argument 'weight_decay'", for an argument the
    config never set."""
    from hpotool.parts import build_optimizer

    (tmp_path / "logged_optimizer.py").write_text(
        "import torch\n\n\ndef logged(fn):\n    def wrapper(*args, **kwargs):\n"
        "        return fn(*args, **kwargs)\n    return wrapper\n\n\n"
        "@logged\ndef make_sgd(params, lr, momentum=0.9):\n"
        "    return torch.optim.SGD(params, lr=lr, momentum=momentum)\n"
    )
    cfg = RunConfig.model_validate(
        {"optimizer": {"name": "logged_optimizer:make_sgd", "lr": 0.05, "momentum": 0.5}}
    )
    optimizer = build_optimizer(cfg, torch.nn.Linear(3, 2))
    assert optimizer.defaults["momentum"] == 0.5 and optimizer.defaults["lr"] == 0.05


RUNNER_CLASS = """class Runner:
    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, config, report):
        report(0, {'val_loss': self.scale})
        return {'val_loss': self.scale}

    @staticmethod
    def plain(config, report):
        report(0, {'val_loss': 2.0})
        return {'val_loss': 2.0}


runner = Runner(0.5)
"""


def test_a_training_function_named_as_a_class_or_its_method_says_to_name_an_instances_method(
    tmp_path: Path,
) -> None:
    """`trainer: {function: x:Runner.fit}` said "requires 'self' ...; set 'self' under trainer: in the run
    config", which no config can; `x:Runner` passed the check and failed trial 0 with "returned Runner; it
    must return a dict". An instance's method and a static method train, as before."""

    from hpotool.runner import check_run, train_run

    (tmp_path / "class_trainer.py").write_text(RUNNER_CLASS)

    def cfg(function: str) -> RunConfig:
        return RunConfig.model_validate({"trainer": {"function": function}, "device": "cpu"})

    refused = _refused(check_run, cfg("class_trainer:Runner.fit"), "run.yaml")
    assert refused == (
        "run.yaml: trainer.function: class_trainer:Runner.fit is a method of the class Runner, called on an "
        "instance; make one at the module's top level (runner = Runner(...)) and name its method "
        "(class_trainer:runner.fit), or name a function"
    )
    refused = _refused(check_run, cfg("class_trainer:Runner"), "run.yaml")
    assert refused == (
        "run.yaml: trainer.function: class_trainer:Runner is a class, and calling it makes a Runner, not the "
        "dict of metrics; name the function that trains, or the method of an instance (class_trainer:obj.fit "
        "for obj = Runner(...) in the module)"
    )
    for good, value in (("class_trainer:runner.fit", 0.5), ("class_trainer:Runner.plain", 2.0)):
        check_run(cfg(good), "run.yaml")
        assert train_run(cfg(good)).metrics["val_loss"] == value


LOOPS = """import asyncio


async def fit_async(config, report):
    await asyncio.sleep(0)
    return {"val_loss": 0.5}


def fit_yielding(config, report):
    for epoch in range(3):
        yield {"val_loss": 1.0 / (epoch + 1)}


async def fit_async_yielding(config, report):
    yield {"val_loss": 0.5}


def fit_running_a_loop(config, report):
    return asyncio.run(fit_async(config, report))
"""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "fit_async",
            "run.yaml: trainer.function: loops:fit_async is an async function (async def), whose call returns a "
            "coroutine, not the dict of metrics; make it a plain def that runs its loop with asyncio.run(...) "
            "and returns the metrics",
        ),
        (
            "fit_yielding",
            "run.yaml: trainer.function: loops:fit_yielding is a generator function (it yields), whose call "
            "returns a generator, not the dict of metrics; call report(epoch, {...}) where it yields each "
            "epoch's metrics, and return the final ones",
        ),
        (
            "fit_async_yielding",
            "run.yaml: trainer.function: loops:fit_async_yielding is an async generator function (async def "
            "that yields), whose call returns an async generator, not the dict of metrics; make it a plain def "
            "that calls report(epoch, {...}) where it yields each epoch's metrics, and returns the final ones",
        ),
    ],
)
def test_an_async_or_generator_training_function_is_refused_before_trial_0(
    tmp_path: Path, function: str, message: str
) -> None:
    """`async def fit` or a `fit` that yields each epoch's metrics passed the checks and failed trial 0 with
    "returned coroutine" (and Python's "coroutine 'fit' was never awaited" warning) or "returned generator";
    a plain def running an async loop trains."""
    from hpotool.runner import check_run, train_run

    (tmp_path / "loops.py").write_text(LOOPS)

    def cfg(name: str) -> RunConfig:
        return RunConfig.model_validate({"trainer": {"function": f"loops:{name}"}, "device": "cpu"})

    assert _refused(check_run, cfg(function), "run.yaml") == message
    check_run(cfg("fit_running_a_loop"), "run.yaml")
    assert train_run(cfg("fit_running_a_loop")).metrics["val_loss"] == 0.5


def test_a_torch_dataset_of_dict_samples_says_which_keys_to_return() -> None:
    """A Dataset returning {'image': x, 'label': y}, as Hugging Face and many torchvision-style datasets do,
    read "DictSamples[0] is a dict; each sample must be an (x, y) pair", not saying what to return."""
    import pytest

    from hpotool.datasets import DataError
    from hpotool.user_datasets import as_dataset

    class DictSamples(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict[str, object]:
            return {"image": torch.zeros(3), "label": i % 2}

    with pytest.raises(DataError) as info:
        as_dataset(DictSamples())
    assert str(info.value) == (
        "DictSamples[0] is a dict; each sample must be an (x, y) pair (its keys: 'image', 'label'): return "
        "(sample['image'], sample['label']) from __getitem__"
    )


def test_a_torchvision_style_model_function_taking_kwargs_is_told_to_set_num_classes(tmp_path: Path) -> None:
    """torchvision's and timm's model functions take `(*, weights=None, progress=True, **kwargs)` and hand
    num_classes on to the model, 1000 by default: the check said only "its output for 8 samples has shape
    (8, 1000); this classification task needs (8, 2)", where a class naming num_classes is told to set it."""

    from hpotool.runner import check_run

    (tmp_path / "vision_like.py").write_text(
        "from torch import nn\n\n\nclass ResNet(nn.Module):\n"
        "    def __init__(self, num_classes=1000):\n        super().__init__()\n"
        "        self.f = nn.LazyLinear(num_classes)\n\n    def forward(self, x):\n        return self.f(x.flatten(1))\n\n\n"
        "def resnet18(*, weights=None, progress=True, **kwargs):\n    return ResNet(**kwargs)\n"
    )
    run = {"data": {"name": "digits", "subset_fraction": 0.1}, "device": "cpu"}
    cfg = RunConfig.model_validate({**run, "model": {"name": "vision_like:resnet18"}})
    refused = _refused(check_run, cfg, "run.yaml")
    assert refused == (
        "run.yaml: model: its output for 8 samples has shape (8, 1000); this classification task needs (8, 10): "
        "(batch, classes) logits; vision_like:resnet18 takes **kwargs and names no width: if it hands them to "
        "a model taking num_classes (torchvision's and timm's do), set num_classes: 10 under model:"
    )
    check_run(
        RunConfig.model_validate({**run, "model": {"name": "vision_like:resnet18", "num_classes": 10}}),
        "run.yaml",
    )


def test_an_optimizer_function_without_an_lr_argument_is_told_to_take_one(tmp_path: Path) -> None:
    """hpotool passes every optimizer optimizer.lr (a field with a default): a function taking learning_rate
    was told "takes no argument 'lr'; it takes: learning_rate, momentum", and setting learning_rate, or
    leaving lr out, changed nothing."""

    from hpotool.config_files import load_run_config

    (tmp_path / "keras_named_optimizer.py").write_text(
        "import torch\n\n\ndef make(params, learning_rate=1e-3, momentum=0.9):\n"
        "    return torch.optim.SGD(params, lr=learning_rate, momentum=momentum)\n\n\n"
        "def fixed(params):\n    return torch.optim.SGD(params, lr=0.1)\n"
    )
    path = tmp_path / "run.yaml"
    path.write_text("optimizer: {name: 'keras_named_optimizer:make', learning_rate: 0.05}\n")
    refused = _refused(load_run_config, path)
    assert refused == (
        f"{path}: optimizer: optimizer 'keras_named_optimizer:make' takes no argument 'lr', which hpotool gives "
        f"every optimizer (optimizer.lr, 0.001 by default, which a search varies): name its learning_rate "
        f"argument lr"
    )
    path.write_text("optimizer: {name: 'keras_named_optimizer:fixed', lr: 0.1}\n")
    refused = _refused(load_run_config, path)
    assert refused == (
        f"{path}: optimizer: optimizer 'keras_named_optimizer:fixed' takes no argument 'lr', which hpotool gives "
        f"every optimizer (optimizer.lr, 0.1 here, which a search varies): give the function an lr argument "
        f"and build the optimizer with it"
    )


@pytest.mark.parametrize(
    ("signature", "fix"),
    [
        ("cfg, report", "rename 'cfg' config (the run config as a dict) or run_config (the RunConfig)"),
        (
            "config, callback",
            "rename 'callback' report (call report(epoch, {'val_loss': 0.5}) after each epoch)",
        ),
        (
            "trial",
            "hpotool passes no Optuna trial: it samples search_space itself and hands the picked values in "
            "config (config['optimizer']['lr']) and as the trainer: keys the function names; take config and "
            "report instead, call report(epoch, {'val_loss': 0.5}) where it called trial.report, and drop its "
            "trial.suggest_* calls",
        ),
        ("config, data_path", "set 'data_path' under trainer: in the run config, or give it a default"),
    ],
)
def test_a_training_function_whose_parameter_hpotool_cannot_pass_is_told_the_fix_for_that_name(
    tmp_path: Path, signature: str, fix: str
) -> None:
    """`def fit(cfg, report)`, `def fit(config, callback)` and an Optuna objective `def objective(trial)`
    were told "set 'cfg' (or 'trial') under trainer: in the run config", which no value there can fix."""
    from hpotool.runner import check_run

    module = "named_fit_" + "".join(c for c in signature if c.isalnum())
    (tmp_path / f"{module}.py").write_text(f"def fit({signature}):\n    return {{'val_loss': 1.0}}\n")
    cfg = RunConfig.model_validate({"trainer": {"function": f"{module}:fit"}, "device": "cpu"})
    refused = _refused(check_run, cfg, "run.yaml")
    missing = next(p.strip() for p in signature.split(",") if p.strip() not in ("config", "report"))
    assert refused == (
        f"run.yaml: trainer.function: {module}:fit requires {missing!r}, which hpotool cannot pass: it passes "
        f"config, run_config, report and the trainer: keys the function names (by name); {fix}"
    )


@pytest.mark.parametrize(
    ("signature", "metrics", "example"),
    [
        ("config, callback", {"metric": "val_r2", "direction": "maximize"}, "{'val_r2': 0.5}"),
        (
            "trial",
            {"metrics": ["val_r2", "val_loss"], "directions": ["maximize", "minimize"]},
            "{'val_r2': 0.5, 'val_loss': 0.5}",
        ),
        (
            "config",
            {"metric": "val_r2", "direction": "maximize", "pruner": {"name": "median"}},
            "{'val_r2': 0.5}",
        ),
    ],
)
def test_the_checks_before_trial_0_show_report_with_the_studys_metrics(
    tmp_path: Path,
    run_dict: dict[str, Any],
    opt_dict: dict[str, Any],
    signature: str,
    metrics: dict[str, Any],
    example: str,
) -> None:
    """A study of val_r2 whose training function took `callback`, an Optuna objective's `trial`, or no report
    under a pruner, was told to call report(epoch, {'val_loss': 0.5}) (or {metric: value}), a metric it does
    not measure; the study-stopped line already showed the study's own (`metrics_example`)."""
    from hpotool.plan import prepare_study

    from .conftest import write_configs

    module = "metric_fit_" + "".join(c for c in signature if c.isalnum())
    (tmp_path / f"{module}.py").write_text(f"def fit({signature}):\n    return {{'val_r2': 1.0}}\n")
    run = {**run_dict, "trainer": {"function": f"{module}:fit"}}
    opt = {k: v for k, v in opt_dict.items() if k not in ("metric", "direction")} | metrics
    opt["search_space"] = {"optimizer.lr": opt_dict["search_space"]["optimizer.lr"]}
    refused = _refused(prepare_study, *write_configs(tmp_path, run, opt))
    assert f"report(epoch, {example})" in refused, refused
    assert refused.count("report(epoch, ") == 1


BUILT_OBJECTS = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.f = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.f(x.flatten(1))


class Samples(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(3), i % 2


model = Net(64, 10)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
train_ds = Samples()
"""


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"model": {"name": "built_objects:model"}},
            "model: model 'built_objects:model' is a Net object, already built, where hpotool builds a new one "
            "for every trial; name its class, built_objects:Net, and set its arguments under model:",
        ),
        (
            {"loss": {"name": "built_objects:criterion"}},
            "loss: loss 'built_objects:criterion' is a CrossEntropyLoss object, already built, where hpotool "
            "builds a new one for every trial; name its class, torch.nn.modules.loss:CrossEntropyLoss, and set "
            "its arguments under loss:",
        ),
        (
            {"data": {"name": "built_objects:train_ds"}},
            "data: data 'built_objects:train_ds' is a Samples object, not a function or class that returns the "
            "data; name its class, built_objects:Samples, with its arguments under data:, or a function that "
            "returns it",
        ),
    ],
)
def test_a_model_or_loss_object_built_in_the_users_module_says_to_name_its_class(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    """`model = Net(64, 10)` and `criterion = nn.CrossEntropyLoss(...)` at a training script's top level,
    named by import path, failed with "TypeError: Net.forward() missing 1 required positional argument: 'x'"
    and "CrossEntropyLoss.forward() missing 2 required positional arguments": hpotool called the object; a
    Dataset object as data with "'Samples' object is not callable"."""
    from hpotool.config_files import load_run_config

    (tmp_path / "built_objects.py").write_text(BUILT_OBJECTS)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(section))
    refused = _refused(load_run_config, path)
    assert refused == f"{path}: {message}"


SETTINGS = """MODEL = "resnet18"
LR = 0.01
MILESTONES = [10, 20]
CLASS_WEIGHTS = {"cat": 1.0, "dog": 3.0}
"""


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"model": {"name": "settings:MODEL"}},
            "model: model 'settings:MODEL' is a str ('resnet18'), not a class or function that builds the "
            "model; name the class or function, such as package.module:Net, and set its arguments under model:",
        ),
        (
            {"optimizer": {"name": "settings:LR"}},
            "optimizer: optimizer 'settings:LR' is a float (0.01), not a class or function that builds the "
            "optimizer; name the class or function, such as torch.optim:Adam, and set its arguments under "
            "optimizer:",
        ),
        (
            {"scheduler": {"name": "settings:MILESTONES"}},
            "scheduler: scheduler 'settings:MILESTONES' is a list ([10, 20]), not a class or function that builds "
            "the scheduler; name the class or function, such as torch.optim.lr_scheduler:MultiStepLR, and set its "
            "arguments under scheduler:",
        ),
        (
            {"loss": {"name": "settings:CLASS_WEIGHTS"}},
            "loss: loss 'settings:CLASS_WEIGHTS' is a dict ({'cat': 1.0, 'dog': 3.0}), not a class or function "
            "that builds the loss; name the class or function, such as torch.nn:CrossEntropyLoss, and set its "
            "arguments under loss:",
        ),
    ],
)
def test_a_value_that_is_not_a_class_or_function_is_refused_naming_what_it_is(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    """A module's setting named where a component goes (`model: {name: settings:MODEL}` for `MODEL =
    "resnet18"`) said "model: TypeError: 'str' object is not callable", an optimizer "AttributeError: 'float'
    object has no attribute '__module__'": neither named the path, nor what to name instead."""
    from hpotool.config_files import load_run_config

    (tmp_path / "settings.py").write_text(SETTINGS)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(section))
    assert _refused(load_run_config, path) == f"{path}: {message}"


def test_an_import_path_misspelt_only_in_case_is_told_the_name_the_module_defines(tmp_path: Path) -> None:
    """`case_data:pairds` for a module defining `PairDS` said "module 'case_data' has no attribute 'pairds'"
    without a hint: the suggestion compared names case-sensitively, and `pairds` is far from `PairDS` so."""
    from hpotool.errors import HpoError
    from hpotool.import_paths import import_object

    (tmp_path / "case_data.py").write_text(
        "import torch\n\n\nclass PairDS(torch.utils.data.Dataset):\n    pass\n\n\nclass Other:\n    pass\n"
    )
    for wrong in ("pairds", "PAIRDS", "pairDs"):
        with pytest.raises(HpoError) as info:
            import_object(f"case_data:{wrong}")
        assert str(info.value) == (
            f"cannot import 'case_data:{wrong}': module 'case_data' has no attribute {wrong!r} "
            "(did you mean 'PairDS'?)"
        )


def test_hpotools_warm_up_on_a_users_schedule_says_it_is_for_the_built_in_schedules(tmp_path: Path) -> None:
    """`warmup_epochs: 1` on a schedule by import path that takes `warmup` said only "takes no argument
    'warmup_epochs' (did you mean 'warmup'?)": not that warmup_epochs is hpotool's, for its own schedules."""
    from pydantic import ValidationError

    (tmp_path / "my_warm_schedule.py").write_text(
        "import torch\n\n\ndef make(optimizer, epochs, warmup=0):\n"
        "    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)\n"
    )
    for key, value in (("warmup_epochs", 1), ("warmup_start", 0.5)):
        with pytest.raises(ValidationError) as info:
            RunConfig.model_validate({"scheduler": {"name": "my_warm_schedule:make", key: value}})
        assert (
            f"scheduler 'my_warm_schedule:make' takes no argument {key!r}: warmup_epochs and warmup_start are "
            f"hpotool's warm-up of the built-in schedules cosine, none, step only; remove {key}, and set the "
            "schedule's own warm-up, if it has one (it takes: warmup)"
        ) in str(info.value)


def test_a_models_forward_that_requires_a_mask_names_its_line_and_how_hpotool_calls_it(
    tmp_path: Path,
) -> None:
    """A model with `forward(self, x, mask)` failed the one-step check with "Net.forward() missing 1 required
    positional argument: 'mask'" alone: not where forward is, nor that hpotool calls forward(x)."""
    from hpotool.runner import check_run

    (tmp_path / "masked_net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
        "        self.f = nn.Linear(in_features, out_features)\n\n"
        "    def forward(self, x, mask):\n        return self.f(x * mask)\n"
    )
    cfg = RunConfig.model_validate(
        {
            "data": {"name": "regression", "n_samples": 64},
            "model": {"name": "masked_net:Net"},
            "epochs": 1,
            "device": "cpu",
        }
    )
    refused = _refused(check_run, cfg, "run.yaml")
    assert refused == (
        "run.yaml: model: TypeError: Net.forward() missing 1 required positional argument: 'mask'; hpotool "
        "calls forward(x) with one batch tensor, and Net.forward (masked_net.py:9) also requires mask: give it "
        "a default (def forward(self, x, mask=None)), or wrap the model in a module whose forward takes x alone"
    )


@pytest.mark.parametrize("loss", ["torch.nn:BCELoss", "torch.nn.functional:binary_cross_entropy"])
def test_binary_cross_entropy_on_probabilities_for_soft_labels_names_the_soft_labels_and_the_fix(
    loss: str, tmp_path: Path
) -> None:
    """BCELoss (by import path) on class probabilities a dataset names a classification failed the one-step
    check with "all elements of input should be between 0 and 1; check that the loss fits this
    classification task": now the line says what the recent soft-label lines say, and what to use."""
    from hpotool.runner import check_run

    (tmp_path / "soft_probs.py").write_text(
        "import numpy as np\nimport torch\nfrom hpotool.datasets import Dataset\n\n\n"
        "def probabilities():\n    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)\n"
        "    p = np.exp(x[:, :3])\n"
        "    return Dataset(torch.as_tensor(x), torch.as_tensor(p / p.sum(axis=1, keepdims=True)), "
        "'classification')\n"
    )
    cfg = RunConfig.model_validate(
        {"data": {"name": "soft_probs:probabilities"}, "loss": {"name": loss}, "epochs": 1, "device": "cpu"}
    )
    refused = _refused(check_run, cfg, "run.yaml")
    assert refused == (
        "run.yaml: training: one step on 8 samples failed: RuntimeError: all elements of input should be "
        f"between 0 and 1; {loss!r} takes probabilities (after a sigmoid), but the model outputs one logit per "
        "class, and y holds each sample's probabilities over 3 classes (soft labels); use cross_entropy (or "
        "auto), which takes the logits and probabilities, or for 3 independent targets from 0 to 1 return "
        "hpotool.datasets.Dataset(x, y, 'multilabel') with loss bce_with_logits"
    )


def test_an_optimizer_told_to_maximize_is_refused_at_load_time(tmp_path: Path) -> None:
    """torch's optimizers take `maximize: true`, read as "maximize the metric": the optimizer climbed the
    loss, and the run trained to 8% accuracy on digits without a word."""
    from hpotool.config_files import load_run_config

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"optimizer": {"name": "torch.optim:SGD", "lr": 0.1, "maximize": True}}))
    assert _refused(load_run_config, path) == (
        f"{path}: optimizer: optimizer 'torch.optim:SGD' argument 'maximize': true makes the optimizer climb the "
        "loss, and hpotool trains by lowering it; remove maximize (to maximize a metric such as val_accuracy, "
        "set direction: maximize in the optimize config)"
    )
    path.write_text(yaml.safe_dump({"optimizer": {"name": "adam", "maximize": False}}))
    assert load_run_config(path).optimizer.kwargs["maximize"] is False  # torch's default, as it was


UNTRAINABLE = """import torch
from torch import nn


class NoLayers(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.out_features = out_features

    def forward(self, x):
        return x.flatten(1)[:, : self.out_features]


class AllFrozen(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features).requires_grad_(False)

    def forward(self, x):
        return self.fc(x.flatten(1))


class HeadOnly(AllFrozen):
    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.fc.bias.requires_grad_(True)
"""


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "NoLayers",
            "NoLayers has no parameters, so there is nothing to train; build its layers as attributes in __init__ "
            "(self.fc = nn.Linear(in_features, out_features))",
        ),
        (
            "AllFrozen",
            "every one of AllFrozen's 2 parameters is frozen (requires_grad=False), so training would change "
            "nothing; leave the layers to train trainable (freeze a backbone, not the head)",
        ),
    ],
)
def test_a_model_with_nothing_to_train_is_named_as_the_fault(
    tmp_path: Path, model: str, message: str
) -> None:
    """A model without parameters failed in the optimizer section ("ValueError: optimizer got an empty
    parameter list"); one with every parameter frozen blamed the loss ("does not depend on the model's
    parameters ... compute it from the prediction with differentiable torch operations")."""
    from hpotool.runner import check_run

    (tmp_path / "untrainable.py").write_text(UNTRAINABLE)
    run = {"data": {"name": "digits", "subset_fraction": 0.1}, "model": {"name": f"untrainable:{model}"}}
    cfg = RunConfig.model_validate({**run, "device": "cpu"})
    assert _refused(check_run, cfg, "run.yaml") == f"run.yaml: model: {message}"
    check_run(
        RunConfig.model_validate({**run, "model": {"name": "untrainable:HeadOnly"}, "device": "cpu"}), "r"
    )


MODEL_LOSSES = """import torch.nn.functional as F
from torch import nn


def penalised(prediction, target, model, alpha=1e-4):
    return F.cross_entropy(prediction, target) + alpha * sum(p.pow(2).sum() for p in model.parameters())


class Penalised(nn.Module):
    def __init__(self, net, alpha=1e-4):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, prediction, target):
        return F.cross_entropy(prediction, target)
"""


@pytest.mark.parametrize(("name", "argument"), [("penalised", "model"), ("Penalised", "net")])
def test_a_loss_that_requires_the_model_is_told_hpotool_does_not_give_it(
    tmp_path: Path, name: str, argument: str
) -> None:
    """A weight penalty written as `loss(prediction, target, model)` was told "add model: ... under loss:",
    which no YAML value could satisfy."""
    from hpotool.config_files import load_run_config

    (tmp_path / "model_losses.py").write_text(MODEL_LOSSES)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"loss": {"name": f"model_losses:{name}"}}))
    assert _refused(load_run_config, path) == (
        f"{path}: loss: loss 'model_losses:{name}' requires the model ({argument!r}), which hpotool does not give "
        "a loss (it calls it with the prediction and the target); for a penalty on the weights set "
        "optimizer.weight_decay, or train with your own function (trainer: {function: package.module:fit})"
    )


def test_debug_shows_the_users_own_frames_of_an_error_hpotool_turned_into_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpotool --debug optimize` on a model whose forward() raised showed hpotool's frames alone: the line
    was raised `from None`, which hid the user's error. Its traceback shows the user's forward() now."""
    import traceback

    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.errors import HpoError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken_net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
        "        self.f = nn.Linear(in_features, out_features)\n\n"
        "    def forward(self, x):\n        return self.f(x[:, :3])  # the user's slip\n"
    )
    run = {"data": {"name": "regression", "n_samples": 64}, "model": {"name": "broken_net:Net"}, "epochs": 1}
    opt = {
        "study_name": "b",
        "metric": "val_loss",
        "search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    args = ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "-q"]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 2 and "(at broken_net.py:10 in forward)" in plain.stderr
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert isinstance(debug.exception, HpoError)
    shown = "".join(traceback.format_exception(debug.exception))
    assert f'File "{tmp_path / "broken_net.py"}", line 10, in forward' in shown
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in shown


@pytest.mark.parametrize("where", ["trainer.function", "model", "data", "search_space.model"])
def test_debug_shows_the_traceback_of_a_users_module_that_raised_at_import(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's training function, model or dataset whose module raised at import (a NameError in it) gave
    its one line, and `hpotool --debug` the same line under hpotool's and pydantic's frames alone: the
    config validator's error kept only the message. --debug shows the user's module failing now, each
    place alike; without it, the one line and exit code 2, as before."""
    import traceback

    from typer.testing import CliRunner

    from hpotool.cli import app
    from hpotool.errors import HpoError

    monkeypatch.chdir(tmp_path)
    module = (
        f"fails_at_import_{where.replace('.', '_')}"  # a module of its own: a failed import is not cached
    )
    (tmp_path / f"{module}.py").write_text(
        "import math\nSCALE = undefined_scale * math.pi\n\n\ndef fit(config, report):\n    return {}\n"
    )
    run: dict[str, Any] = {"data": {"name": "regression", "n_samples": 64}, "epochs": 1}
    space: dict[str, Any] = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    match where:
        case "trainer.function":
            run["trainer"] = {"function": f"{module}:fit"}
        case "model" | "data":
            run[where] = {"name": f"{module}:fit"}
        case "search_space.model":
            space = {
                "model": {"type": "categorical", "choices": [{"name": "mlp"}, {"name": f"{module}:fit"}]}
            }
    opt = {"study_name": "i", "n_trials": 1, "metric": "val_loss", "search_space": space}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    args = ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "-q"]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 2 and "Traceback" not in plain.output, plain.output
    assert plain.stderr.count(
        "\n"
    ) == 1 and f"NameError: name 'undefined_scale' is not defined at {module}.py:2" in (plain.stderr)
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert isinstance(debug.exception, HpoError)
    shown = "".join(traceback.format_exception(debug.exception))
    assert f'File "{tmp_path / f"{module}.py"}", line 2, in <module>' in shown
    assert "NameError: name 'undefined_scale' is not defined\n" in shown


def test_debug_shows_a_failed_trials_traceback_through_the_users_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial whose training function raised kept one line, its innermost frame: `hpotool --debug optimize`
    showed nothing more, so an error in a helper left the caller in the user's loop unknown. It shows the
    trial's traceback now, every frame of the user's; without --debug the line alone, as before."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_loop.py").write_text(
        "def load_split(config):\n    return config['data']['path']\n\n\n"
        "def fit(config, report):\n    rows = load_split(config)\n    return {'val_loss': float(len(rows))}\n"
    )
    run = {"trainer": {"function": "my_loop:fit"}, "epochs": 1}
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}}
    opt = {"study_name": "t", "n_trials": 1, "metric": "val_loss", "search_space": space}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    (tmp_path / "opt.yaml").write_text(yaml.safe_dump(opt))
    args = ["optimize", "-r", "run.yaml", "-o", "opt.yaml", "-q", "--max-failures", "1"]
    debug = CliRunner().invoke(app, ["--debug", *args], catch_exceptions=False)
    assert debug.exit_code == 1, debug.output
    assert "trial 0 failed: KeyError: 'path' (at my_loop.py:2 in load_split)\nTraceback" in debug.stderr
    frames = [line.strip() for line in debug.stderr.splitlines() if 'my_loop.py"' in line]
    assert frames == [
        f'File "{tmp_path / "my_loop.py"}", line 6, in fit',
        f'File "{tmp_path / "my_loop.py"}", line 2, in load_split',
    ]
    (tmp_path / "studies" / "t.db").unlink()
    plain = CliRunner().invoke(app, args, catch_exceptions=False)
    assert plain.exit_code == 1 and "Traceback" not in plain.output
    assert "first error: KeyError: 'path' (at my_loop.py:2 in load_split)" in plain.stderr


def test_torch_lbfgs_by_import_path_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`optimizer: {name: torch.optim:LBFGS}` was refused before any run: "LBFGS.step() missing 1 required
    positional argument: 'closure' ... (hpotool calls step() with no arguments, once per batch)". The
    Trainer gives it a closure now; `hpotool train` trains it and the loss falls."""
    from typer.testing import CliRunner

    from hpotool.cli import app

    monkeypatch.chdir(tmp_path)
    run = {
        "data": {"name": "regression", "n_samples": 96},
        "model": {"name": "mlp", "hidden": [16]},
        "optimizer": {"name": "torch.optim:LBFGS", "lr": 0.5, "max_iter": 4},
        "epochs": 3,
        "batch_size": 32,
        "device": "cpu",
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    result = CliRunner().invoke(app, ["train", "-r", "run.yaml", "--out", "out"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    history = (tmp_path / "out" / "history.csv").read_text().splitlines()
    header, rows = (
        history[0].split(","),
        [dict(zip(history[0].split(","), r.split(","), strict=True)) for r in history[1:]],
    )
    assert "train_loss" in header and len(rows) == 3
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


KWARGS_FIT = """import time


def timed(fn):
    def wrapper(*args, **kwargs):  # no functools.wraps: the signature hpotool reads is (*args, **kwargs)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        out['seconds'] = time.perf_counter() - start
        return out
    return wrapper


def fit(config, report, **hparams):
    report(0, {'val_loss': 1.0 / hparams['width']})
    return {'val_loss': 1.0 / hparams['width'], 'depth': float(hparams['depth'])}


@timed
def timed_width(config, report, width=1):
    report(0, {'val_loss': 1.0 / width})
    return {'val_loss': 1.0 / width}


@timed
def timed_plain(config, report):
    report(0, {'val_loss': 0.25})
    return {'val_loss': 0.25}
"""


def test_a_training_functions_kwargs_get_the_trainer_keys(tmp_path: Path) -> None:
    """`def fit(config, report, **hparams)` got no `trainer:` key in `hparams` (only the keys fit names were
    passed), so `hparams['width']` failed every trial with KeyError: 'width'; and under a decorator without
    functools.wraps, `def fit(config, report, width=1)` kept its default: a searched trainer.width trained
    every trial alike. Both get the keys now; a decorated function that takes none still runs."""
    from hpotool.runner import check_run, train_run

    (tmp_path / "kwargs_fit.py").write_text(KWARGS_FIT)

    def cfg(function: str) -> RunConfig:
        trainer = {"function": f"kwargs_fit:{function}", "width": 4, "depth": 2}
        return RunConfig.model_validate({"trainer": trainer, "epochs": 1, "device": "cpu"})

    check_run(cfg("fit"), "run.yaml")
    metrics = train_run(cfg("fit")).metrics
    assert metrics["val_loss"] == 0.25 and metrics["depth"] == 2.0
    assert train_run(cfg("timed_width")).metrics["val_loss"] == 0.25
    assert train_run(cfg("timed_plain")).metrics["val_loss"] == 0.25


def test_a_float64_default_dtype_set_by_the_users_module_is_named_as_the_models_type(tmp_path: Path) -> None:
    """`torch.set_default_dtype(torch.float64)` at a module's top level (scientific code often sets it) builds
    every model in float64, while a plain (x, y) pair's x is cast to float32: the refusal told the user to
    build the model without .double() or .half(), which the model never called."""
    from hpotool.runner import check_run

    (tmp_path / "precise.py").write_text(
        "import torch\nfrom torch import nn\n\ntorch.set_default_dtype(torch.float64)\n\n\n"
        "def net(in_features, out_features):\n    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, "
        "out_features))\n"
    )
    cfg = RunConfig.model_validate({"model": {"name": "precise:net"}, "device": "cpu"})
    try:
        refused = _refused(check_run, cfg, "run.yaml")
    finally:
        torch.set_default_dtype(torch.float32)
    assert refused.startswith("run.yaml: model: RuntimeError: mat1 and mat2 must have the same dtype")
    assert refused.endswith(
        "; the data's x is float32 and the model's parameters float64: torch's default dtype is float64 (your "
        "code called torch.set_default_dtype(torch.float64)), so every model is built in float64, and a plain "
        "(x, y) pair's x is cast to float32: return hpotool.datasets.Dataset(x.to(torch.float64), y, "
        "'classification') from the dataset function (it keeps x's type), or leave the default dtype at float32"
    )


def test_a_schedule_function_that_takes_the_epochs_first_is_told_to_take_the_optimizer_first(
    tmp_path: Path,
) -> None:
    """`def warmup(epochs, warmup_epochs=1)`, the optimizer left out: hpotool passes the optimizer first, by
    position, and the run's length by name, so the run failed with "TypeError: warmup() got multiple values
    for argument 'epochs'", naming neither the section nor what to change."""
    from hpotool.config_files import load_run_config

    (tmp_path / "sched.py").write_text(
        "import torch\n\nOPTIMIZER = None\n\n\ndef warmup(epochs, warmup_epochs=1):\n"
        "    return torch.optim.lr_scheduler.LambdaLR(OPTIMIZER, lambda e: min(1.0, (e + 1) / warmup_epochs))\n"
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"scheduler": {"name": "sched:warmup"}}))
    assert _refused(load_run_config, path) == (
        f"{path}: scheduler: scheduler 'sched:warmup' takes 'epochs' first, where hpotool passes the optimizer "
        f"(by position; epochs by name); take the optimizer first: def warmup(optimizer, epochs, ...)"
    )


@pytest.mark.parametrize(
    ("model", "fix"),
    [
        (
            {"name": "torch.nn:Linear"},
            "each sample of the data's x is shaped (1, 8, 8), and in_features (64) is that size flattened: "
            "torch's Linear takes flat samples, and its forward() is torch's: flatten x in the dataset function "
            "(x.flatten(1)), or name a model of yours whose forward() flattens it first, as the built-in mlp "
            "does",
        ),
        (
            {"name": "linear_stack:net"},
            "each sample of the data's x is shaped (1, 8, 8), and in_features (64) is that size flattened: "
            "make nn.Flatten() the Sequential's first layer, as the built-in mlp flattens its input",
        ),
    ],
)
def test_a_torch_layer_or_sequential_given_image_samples_is_told_a_fix_it_can_make(
    tmp_path: Path, model: dict[str, Any], fix: str
) -> None:
    """`model: {name: torch.nn:Linear}` (or a factory's nn.Sequential of Linear layers) on digits' 1x8x8
    samples was told to "flatten it first in forward() (x = x.flatten(1))", a forward() that is torch's."""
    from hpotool.runner import check_run

    (tmp_path / "linear_stack.py").write_text(
        "from torch import nn\n\n\ndef net(in_features, out_features):\n"
        "    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out_features))\n"
    )
    cfg = RunConfig.model_validate({"model": model, "device": "cpu"})
    refused = _refused(check_run, cfg, "run.yaml")
    assert refused.startswith("run.yaml: model: RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert refused.endswith(f"; {fix}"), refused


FIXED_INPUT_NETS = """from torch import nn


class Fixed(nn.Module):
    def __init__(self, out_features, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(7, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.net(x)


class Named(nn.Module):
    def __init__(self, out_features, input_dim=7):
        super().__init__()
        self.f = nn.Linear(input_dim, out_features)

    def forward(self, x):
        return self.f(x)


def stack(out_features):
    return nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, out_features))
"""


@pytest.mark.parametrize(
    ("model", "fix"),
    [
        (
            {"name": "fixed_input_nets:Fixed"},
            "fixed_input_nets:Fixed takes no in_features, so its input size is fixed in its code: take in_features "
            "as an argument for its first layer (nn.Linear(in_features, ...)), which hpotool sets to 10 from the data",
        ),
        (
            {"name": "fixed_input_nets:stack"},
            "fixed_input_nets:stack takes no in_features, so its input size is fixed in its code: take in_features "
            "as an argument for its first layer (nn.Linear(in_features, ...)), which hpotool sets to 10 from the data",
        ),
        (
            {"name": "fixed_input_nets:Named"},
            "fixed_input_nets:Named takes its input size as input_dim (7 by default), which hpotool does not set (it "
            "passes in_features): rename the argument in_features, which hpotool sets from the data, or set "
            "input_dim: 10 under model:",
        ),
        (
            {"name": "fixed_input_nets:Named", "input_dim": 9},
            "model.input_dim is 9: set input_dim: 10, or rename the argument in_features, which hpotool sets from "
            "the data",
        ),
    ],
)
def test_a_model_whose_input_size_is_not_the_datas_is_told_hpotool_passes_in_features(
    tmp_path: Path, model: dict[str, Any], fix: str
) -> None:
    """A model of the user's with its input size written in its code (`nn.Linear(7, 16)`), or under another
    name than in_features, on data of 10 features was told only torch's "mat1 and mat2 shapes cannot be
    multiplied (8x10 and 7x16)": not the data's size, nor that hpotool passes it to a model that asks."""
    from hpotool.runner import check_run

    (tmp_path / "fixed_input_nets.py").write_text(FIXED_INPUT_NETS)
    data = {"name": "regression", "n_samples": 64, "n_features": 10}
    cfg = RunConfig.model_validate({"data": data, "model": model, "device": "cpu"})
    refused = _refused(check_run, cfg, "run.yaml")
    said = "each sample of the data's x has 10 features, and the model's linear layer that met them takes "
    assert refused.startswith("run.yaml: model: RuntimeError: mat1 and mat2 shapes cannot be multiplied"), (
        refused
    )
    assert f"; {said}" in refused and refused.endswith(fix), refused


def test_gradients_turned_off_by_the_users_module_are_named_not_the_loss(tmp_path: Path) -> None:
    """`torch.set_grad_enabled(False)` at a module's top level (an inference script's) left gradients off
    for hpotool's training: the refusal blamed the loss ("its value ... does not depend on the model's
    parameters: compute it ... with differentiable torch operations"), which was torch's own."""
    from hpotool.runner import check_run

    (tmp_path / "inference_nets.py").write_text(
        "import torch\nfrom torch import nn\n\ntorch.set_grad_enabled(False)\n\n\n"
        "def net(in_features, out_features):\n    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, "
        "out_features))\n"
    )
    cfg = RunConfig.model_validate({"model": {"name": "inference_nets:net"}, "device": "cpu"})
    try:
        refused = _refused(check_run, cfg, "run.yaml")
    finally:
        torch.set_grad_enabled(True)
    assert refused == (
        "run.yaml: model: torch's gradients are off (torch.set_grad_enabled(False) at a module's top level in "
        "your code, or a torch.no_grad() entered and not left), so no step could train the model: remove it, "
        "and turn gradients off only inside a with torch.no_grad(): block"
    )


def test_a_dataset_function_that_changes_the_working_folder_is_refused_and_the_folder_restored(
    tmp_path: Path,
) -> None:
    """`os.chdir(data_dir)` in a dataset function (to read its files by relative paths) moved hpotool's own
    relative paths: a new study went into that folder's studies/, without a word."""
    from hpotool.runner import check_run

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "moving_data.py").write_text(
        "import os\n\nimport torch\n\n\ndef load():\n    os.chdir('elsewhere')\n"
        "    return torch.randn(40, 3), torch.arange(40) % 2\n"
    )
    cfg = RunConfig.model_validate({"data": {"name": "moving_data:load"}, "device": "cpu"})
    refused = _refused(check_run, cfg, "run.yaml")
    assert refused == (
        f"run.yaml: data: loading 'moving_data:load' failed: os.chdir({str(tmp_path / 'elsewhere')!r}) was called "
        f"at moving_data.py:7 in load, which moves every relative path hpotool reads and writes (the configs, "
        f"studies/, runs/); build the paths your code reads from __file__ or an absolute folder instead of "
        f"changing the working folder"
    )
    assert Path.cwd() == tmp_path
