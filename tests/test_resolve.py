"""Import paths to users' own code: what a mistake in the path or in the module itself says."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpotool.errors import HpoError
from hpotool.import_paths import import_object


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's project folder with a package `labnets`, as the current folder (where imports resolve)."""
    pkg = tmp_path / "labnets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text("class Net:\n    pass\n")
    (pkg / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    (pkg / "needs.py").write_text("import os\nimport not_installed_anywhere_xyz\n")
    (pkg / "script.py").write_text(
        "import torch\n\nif __name__ == '__main__':\n    class Net(torch.nn.Module):\n        pass\n"
    )
    (pkg / "raises.py").write_text(
        "x = 1\nraise ValueError('no settings file\\nsee the README\\nthird line')\n"
    )
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m == "labnets" or m.startswith("labnets.")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "labnets.modle:Net",
            "cannot import 'labnets.modle:Net': No module named 'labnets.modle' (did you mean 'labnets.models'?)",
        ),
        (
            "labnet.models:Net",
            "cannot import 'labnet.models:Net': No module named 'labnet' (did you mean 'labnets'?); labnets is in "
            "the current folder: write labnets.models:Net",
        ),
        (
            "labnets.broken:Net",
            "cannot import 'labnets.broken:Net': importing 'labnets.broken' raised SyntaxError: invalid syntax "
            "at labnets/broken.py:2",
        ),
        (
            "labnets.needs:Net",
            "cannot import 'labnets.needs:Net': importing 'labnets.needs' raised ModuleNotFoundError: No module "
            "named 'not_installed_anywhere_xyz' at labnets/needs.py:2",
        ),
        (  # the module alone, as package.module: a submodule not imported by its package
            "labnets.models",
            "cannot import 'labnets.models': it names the module labnets.models, not an object in it; write "
            "labnets.models:Name (it defines: Net)",
        ),
        (  # a nested name: the class is found, its attribute is not
            "labnets.models:Net.Builder",
            "cannot import 'labnets.models:Net.Builder': 'labnets.models:Net' has no attribute 'Builder'",
        ),
        (  # a class defined in the script part of a module: it is not there on import
            "labnets.script:Net",
            "cannot import 'labnets.script:Net': module 'labnets.script' defines 'Net' only under if __name__ == "
            '"__main__": (line 4), which does not run when hpotool imports it; move the definition to the '
            "module's top level",
        ),
        (
            "labnets.raises:Net",  # a multi-line message: its first line, and where
            "cannot import 'labnets.raises:Net': importing 'labnets.raises' raised ValueError: no settings file "
            "at labnets/raises.py:2",
        ),
    ],
)
def test_a_mistake_in_an_import_path_or_its_module_says_where(project: Path, path: str, message: str) -> None:
    with pytest.raises(HpoError) as info:
        import_object(path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "labnets/models.py:Net",
            "cannot import 'labnets/models.py:Net': 'labnets/models.py' is a file path, not an import path; write "
            "labnets.models:Net (folders joined by dots, without .py), run from the folder that holds labnets/",
        ),
        (
            "./labnets/models:Net",
            "cannot import './labnets/models:Net': './labnets/models' is a file path, not an import path; write "
            "labnets.models:Net (folders joined by dots, without .py), run from the folder that holds labnets/",
        ),
        (
            "train.py:fit",
            "cannot import 'train.py:fit': 'train.py' is a file path, not an import path; write train:fit "
            "(folders joined by dots, without .py), run from the folder that holds train.py",
        ),
        (
            "/home/me/proj/train.py:fit",
            "cannot import '/home/me/proj/train.py:fit': '/home/me/proj/train.py' is a file path, not an import "
            "path; write train:fit and run hpotool from /home/me/proj (or add it to PYTHONPATH)",
        ),
    ],
)
def test_a_file_path_given_for_an_import_path_is_refused_with_the_import_path(
    project: Path, path: str, message: str
) -> None:
    """`trainer: {function: train.py:fit}` said "No module named 'train.py'; 'train' is not a package", and
    `labnets/models.py:Net` told the user to run from the folder holding `labnets/models/`: neither said what
    to write."""
    with pytest.raises(HpoError) as info:
        import_object(path)
    assert str(info.value) == message


def test_a_good_path_imports(project: Path) -> None:
    assert import_object("labnets.models:Net").__name__ == "Net"


def test_a_module_of_the_users_named_as_one_python_already_imported_is_told_to_be_renamed(
    project: Path,
) -> None:
    """A `tokenize.py` in the current folder: Python's own `tokenize` is imported already, so the import
    path named it, and the line said "module 'tokenize' has no attribute 'load'", of the user's function."""
    (project / "tokenize.py").write_text("def load():\n    pass\n")
    with pytest.raises(HpoError) as info:
        import_object("tokenize:load")
    assert str(info.value) == (
        f"cannot import 'tokenize:load': the module tokenize Python had already imported is "
        f"{sys.modules['tokenize'].__file__}, not tokenize.py in the current folder, which it never reads; "
        f"rename yours (and the import path) to a name Python and the installed packages do not use"
    )


def test_a_relative_import_path_says_what_to_write(project: Path) -> None:
    """`.labnets.models:Net` (as a package's own `from .models import Net` reads) said "importing
    '.labnets.models' raised TypeError: the 'package' argument is required to perform a relative import"."""
    with pytest.raises(HpoError) as info:
        import_object(".labnets.models:Net")
    assert str(info.value) == (
        "cannot import '.labnets.models:Net': '.labnets.models' is a relative import, which has no package to "
        "start from here; write labnets.models:Net, the path from the folder hpotool runs in"
    )
    with pytest.raises(HpoError, match=r"; write labnets.models:Net, "):
        import_object("..labnets.models.Net")


def test_a_module_of_the_users_named_without_an_object_lists_what_it_defines(project: Path) -> None:
    """`model: {name: labnets}` or a module file's name alone (`alone_nets` for alone_nets.py) read "unknown model
    'alone_nets'; choose one of: mlp, cnn, or give an import path", though the module was there."""
    from hpotool.components import REGISTRIES
    from hpotool.resolve import resolve

    (project / "alone_nets.py").write_text("class Net:\n    pass\n\n\ndef small():\n    pass\n")
    with pytest.raises(HpoError) as info:
        resolve("alone_nets", REGISTRIES["model"], "model")
    assert str(info.value) == (
        "cannot import 'alone_nets': it names the module alone_nets, not an object in it; write alone_nets:Name (it "
        "defines: Net, small)"
    )
    with pytest.raises(HpoError) as info:  # a name that is no module here: the built-ins, as before
        resolve("mlpp", REGISTRIES["model"], "model")
    assert str(info.value).startswith("unknown model 'mlpp' (did you mean 'mlp'?); choose one of: mlp, cnn")
    sys.modules.pop("alone_nets", None)


def test_hpotools_own_refusal_is_shown_without_its_class_name(project: Path) -> None:
    """`run.yaml: model: ValueError: unknown activation 'rellu' ...`: hpotool's own words for a config value
    read with a Python class name in front. A user's code raising, or a library's exception, keeps the name."""
    from hpotool.models import make_activation
    from hpotool.user_code import described

    with pytest.raises(ValueError) as own:
        make_activation("rellu")
    caught = own.value.__traceback__
    assert caught is not None  # hpotool catches it in its own code (runner's dry run): drop this test's frame
    assert described(own.value.with_traceback(caught.tb_next)) == (
        "unknown activation 'rellu' (did you mean 'relu'?); choose one of: relu, gelu, silu, tanh, leaky_relu, elu"
    )
    (project / "labnets" / "strict.py").write_text(
        "def build():\n    raise ValueError('width must be even')\n"
    )
    build = import_object("labnets.strict:build")

    with pytest.raises(ValueError) as users:
        build()
    assert described(users.value).startswith("ValueError: width must be even (at ")
    import torch

    with pytest.raises(ValueError) as library:
        torch.nn.Dropout(p=2.0)
    assert described(library.value).startswith("ValueError: dropout probability has to be between 0 and 1")


def test_a_misspelt_class_of_the_users_gets_the_name_meant(project: Path) -> None:
    """A user's module defining Net and IntOut: `Nett` is one letter from Net and four from IntOut, whatever
    the case; difflib's ratio on the names as written put IntOut (0.6) over Net (0.57) for `nett`."""
    from hpotool.near_names import closest, did_you_mean

    (project / "two_nets.py").write_text("class IntOut:\n    pass\n\n\nclass Net:\n    pass\n")
    for typo in ("Nett", "nett", "NETT"):
        with pytest.raises(HpoError) as info:
            import_object(f"two_nets:{typo}")
        assert str(info.value) == (
            f"cannot import 'two_nets:{typo}': module 'two_nets' has no attribute {typo!r} (did you mean 'Net'?)"
        )
        assert did_you_mean(typo, ["IntOut", "Net"]) == " (did you mean 'Net'?)"  # callers that mind case too
        assert closest(typo, ["IntOut", "Net", "nn", "torch"])[0] == "Net"
    sys.modules.pop("two_nets", None)


def test_a_ctrl_c_the_import_of_a_module_named_alone_swallows_is_raised_not_an_unknown_name(
    project: Path,
) -> None:
    """Ctrl-C as `model: {name: alone_nets}` imported its module, where that import caught the interrupt and
    failed with an error of its own (as torch's C code does with the imports it runs): the refusal's import
    took any error for 'does not import', and the command said "unknown model 'alone_nets'" (exit code 2)."""
    from hpotool.components import REGISTRIES
    from hpotool.interrupts import Interrupted, signals_interrupt
    from hpotool.resolve import resolve

    (project / "alone_nets.py").write_text(_SWALLOWS_CTRL_C)
    try:
        with pytest.raises(Interrupted), signals_interrupt():
            resolve("alone_nets", REGISTRIES["model"], "model")
    finally:
        sys.modules.pop("alone_nets", None)


def test_a_ctrl_c_the_import_of_the_library_a_bare_class_name_is_looked_up_in_swallows_is_raised(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, where a bare class name (`scheduler: CosineAnnealingLR`) is looked up in torch's module as
    it first imports: "unknown scheduler ..." (exit code 2) for a Ctrl-C."""
    from hpotool import resolve as resolve_module
    from hpotool.interrupts import Interrupted, signals_interrupt

    (project / "swallowing_lib.py").write_text(_SWALLOWS_CTRL_C)
    monkeypatch.setitem(resolve_module._LIBRARY_MODULES, "scheduler", "swallowing_lib")
    monkeypatch.syspath_prepend(str(project))
    try:
        with pytest.raises(Interrupted), signals_interrupt():
            resolve_module.resolve(
                "CosineAnnealingLR", {"none": "hpotool.schedulers:no_schedule"}, "scheduler"
            )
    finally:
        sys.modules.pop("swallowing_lib", None)


# A module whose import catches a Ctrl-C and then fails with an error of its own.
_SWALLOWS_CTRL_C = (
    "import signal\n"
    "try:\n"
    "    signal.raise_signal(signal.SIGINT)  # its handler raises here\n"
    "except KeyboardInterrupt:\n"
    "    pass\n"
    "raise ImportError(\"cannot import name 'RpcBackendOptions'\")\n"
)


def test_a_module_that_changes_the_working_folder_as_it_imports_is_refused_naming_the_line(
    project: Path,
) -> None:
    """`os.chdir(os.path.dirname(__file__))` at a script's top level (to read its data by relative paths)
    moved hpotool's working folder as its model was imported: `optimize` then said "opt.yaml: no such file",
    and studies/ and runs/ would have gone into the module's folder. The folder is restored and the import
    refused, naming the line."""
    (project / "labnets" / "here.py").write_text(
        "import os\n\nos.chdir(os.path.dirname(os.path.abspath(__file__)))\n\n\nclass Net:\n    pass\n"
    )
    with pytest.raises(HpoError) as info:
        import_object("labnets.here:Net")
    assert str(info.value) == (
        f"cannot import 'labnets.here:Net': importing 'labnets.here' changed the working folder to "
        f"{project / 'labnets'} (os.chdir at labnets/here.py:3), which moves every relative path hpotool reads "
        f'and writes (the configs, studies/, runs/); remove it, or move it under if __name__ == "__main__":, '
        f"and build the module's own paths from __file__ (Path(__file__).parent / 'data')"
    )
    assert Path.cwd() == project
    with pytest.raises(HpoError, match="changed the working folder"):  # not imported from sys.modules
        import_object("labnets.here:Net")
    assert Path.cwd() == project


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_bare_class_name_the_project_defines_is_told_its_import_path_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model: {name: Net}` with the user's walklab/models.py defining Net said only "unknown model 'Net';
    choose one of: mlp, cnn, or give an import path such as package.module:Name". The files are read, never
    imported; environments, hidden folders, builds, a file over 1 MB, and a Net that is no top-level
    definition are not named."""
    from hpotool.components import REGISTRIES
    from hpotool.resolve import resolve

    net = "class Net:\n    pass\n"
    _write(
        tmp_path,
        {
            "walklab/__init__.py": "",
            "walklab/models.py": f"open('imported', 'w').close()\n\n\n{net}",
            "walklab/only_indented.py": "if True:\n    class Net:\n        pass\n\n\nclass Holder:\n    def Net(self):\n        pass\n",
            "walklab/in_a_string.py": f'"""\n{net}"""\n',
            "walklab/broken.py": f"{net}def f(:\n",
            "walklab/huge.py": net + "#" * 1_100_000 + "\n",
            ".venv/lib/python3.11/site-packages/other/models.py": net,
            "env2/pyvenv.cfg": "home = /usr/bin\n",
            "env2/lib/nets.py": net,
            ".hidden/nets.py": net,
            "build/lib/walklab/models.py": net,
            "my-data/nets.py": net,
        },
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HpoError) as info:
        resolve("Net", REGISTRIES["model"], "model")
    assert str(info.value) == (
        "unknown model 'Net'; did you mean walklab.models:Net? (your own code is named by its import path, "
        "package.module:Name; built-in: mlp, cnn)"
    )
    assert "walklab" not in sys.modules and not (tmp_path / "imported").exists()
    with pytest.raises(HpoError) as info:  # a name the project does not define: the built-ins, as before
        resolve("Nett", REGISTRIES["model"], "model")
    assert str(info.value).startswith("unknown model 'Nett'; choose one of: mlp, cnn")


def test_several_definitions_of_a_bare_name_are_named_three_at_most_the_shallowest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset function, a loss and a training function given by their bare names, as a model's is."""
    from hpotool.components import REGISTRIES
    from hpotool.resolve import resolve

    load = "def load():\n    return None\n"
    _write(
        tmp_path,
        {
            "deep/x/y/loaders.py": load,
            "pkg/__init__.py": "",
            "pkg/data.py": load,
            "tools/read.py": f"import os\n\n\nasync {load}",
            "loading.py": load,
            "mylab/__init__.py": "",
            "mylab/losses.py": "def focal(pred, target):\n    return (pred - target).abs().mean()\n",
            "mylab/training.py": "def fit(config, report):\n    return {}\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HpoError) as info:
        resolve("load", REGISTRIES["data"], "data")
    assert str(info.value) == (
        "unknown data 'load'; did you mean loading:load, pkg.data:load or tools.read:load? (your own code is "
        "named by its import path, package.module:Name; built-in: digits, regression)"
    )
    with pytest.raises(HpoError) as info:
        resolve("focal", REGISTRIES["loss"], "loss")
    assert str(info.value).startswith(
        "unknown loss 'focal'; did you mean mylab.losses:focal? (your own code "
    )
    with pytest.raises(HpoError) as info:  # trainer: {function: fit}
        import_object("fit")
    assert str(info.value) == (
        "'fit' is not an import path; write it as package.module:Name; did you mean mylab.training:fit?"
    )


def test_a_bare_name_a_src_layout_defines_is_named_from_src_with_the_folder_to_run_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: imports resolve from the current folder and PYTHONPATH, so a src/ layout's package is named
    from src/, with how to import from there; with src/ on the path, as it is imported."""
    from hpotool.components import REGISTRIES
    from hpotool.resolve import resolve

    _write(tmp_path, {"src/mylab/__init__.py": "", "src/mylab/models.py": "class Net:\n    pass\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HpoError) as info:
        resolve("Net", REGISTRIES["model"], "model")
    assert str(info.value).startswith(
        "unknown model 'Net'; did you mean mylab.models:Net (run hpotool from src/, or add src to PYTHONPATH)? "
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    with pytest.raises(HpoError) as info:
        resolve("Net", REGISTRIES["model"], "model")
    assert str(info.value).startswith("unknown model 'Net'; did you mean mylab.models:Net? (your own code ")
