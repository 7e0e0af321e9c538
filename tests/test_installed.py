"""A user's project installed with pip (`pip install -e .` or `pip install .`, a `src/` layout, a distribution
named `my-lab` imported as `mylab`), used from another folder: what a mistake with the install says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import hpotool
from hpotool.errors import HpoError
from hpotool.import_paths import import_object

SRC = Path(hpotool.__file__).resolve().parents[1]  # the hpotool these tests import, for the venv's .pth


def _dist_info(site: Path, dist: str, imports: list[str], folder: Path, *, editable: bool) -> None:
    """The .dist-info folder pip writes for `dist` installed from the local `folder` (`pip install [-e]`)."""
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "top_level.txt").write_text("".join(f"{i}\n" for i in imports))
    (info / "RECORD").write_text("")
    url = {"url": folder.as_uri(), "dir_info": {"editable": True} if editable else {}}
    (info / "direct_url.json").write_text(json.dumps(url))


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `runs/` folder, away from the project, as the current folder; the modules the test imports are
    forgotten after it."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.chdir(runs)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(
            ("instlab", "movedlab", "srclab", "deplab", "stalelab", "nslab", "solelab", "exactlab", "typolab")
        ):
            del sys.modules[name]


def test_the_distributions_name_written_for_its_import_name_is_told_the_import_path(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model: {name: inst-lab.models:Net}` (pip's name, as in `pip install -e .` of a project named inst-lab,
    whose package is instlab) said "No module named 'inst-lab'; ... run hpotool from the folder that holds
    inst-lab/", a folder no project has."""
    project = elsewhere / "proj"
    (project / "src" / "instlab").mkdir(parents=True)
    (project / "src" / "instlab" / "__init__.py").write_text("")
    (project / "src" / "instlab" / "models.py").write_text("class Net:\n    pass\n")
    site = elsewhere / "site"
    _dist_info(site, "inst-lab", ["instlab"], project, editable=True)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(project / "src"))  # as the editable install's .pth puts it
    for written in ("inst-lab", "inst_lab"):
        with pytest.raises(HpoError) as info:
            import_object(f"{written}.models:Net")
        assert str(info.value) == (
            f"cannot import '{written}.models:Net': No module named '{written}'; {written} names the "
            f"distribution inst-lab (pip's name for it), which Python imports as instlab: write "
            f"instlab.models:Net"
        )
    assert import_object("instlab.models:Net").__name__ == "Net"


def test_a_package_installed_editable_from_a_folder_since_moved_is_told_to_be_installed_again(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project folder of a `pip install -e` moved: Python finds no package, and the line told the user to
    run hpotool from the folder that holds it, which was where they had always run it from."""
    site = elsewhere / "site"
    _dist_info(site, "moved-lab", ["movedlab"], elsewhere / "gone" / "proj", editable=True)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info:
        import_object("movedlab.models:Net")
    assert str(info.value) == (
        f"cannot import 'movedlab.models:Net': No module named 'movedlab'; moved-lab is installed editable "
        f"(pip install -e) from {elsewhere / 'gone' / 'proj'}, which no longer exists (moved or deleted): "
        f"install it again from its folder now ({sys.executable} -m pip install -e NEW_FOLDER)"
    )


def test_a_package_not_found_names_the_python_to_install_the_project_in(elsewhere: Path) -> None:
    """hpotool run from a venv (or pipx) other than the one the project is installed in: the line spoke only
    of folders and PYTHONPATH, not of the environment the package must be installed in."""
    with pytest.raises(HpoError) as info:
        import_object("srclab_nowhere.models:Net")
    assert str(info.value).endswith(
        f", or install your project in the Python hpotool runs in ({sys.executable} -m pip install -e "
        f"YOUR_PROJECT)"
    )


@pytest.mark.parametrize("given", ["src/srclab/models.py", "src/srclab/models", "ABS"])
def test_a_file_path_into_an_installed_package_is_told_its_module(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`model: {name: src/srclab/models.py:Net}` of a `src/` layout installed with pip: the line said to write
    `src.srclab.models:Net` and run from the folder that holds src/ (the absolute path: `models:Net`, run from
    inside the package), both of which break the package's own imports; Python imports it as
    `srclab.models`."""
    project = elsewhere / "proj"
    (project / "src" / "srclab").mkdir(parents=True)
    (project / "src" / "srclab" / "__init__.py").write_text("")
    (project / "src" / "srclab" / "models.py").write_text("class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(project / "src"))
    path = str(project / "src" / "srclab" / "models.py") if given == "ABS" else given
    with pytest.raises(HpoError) as info:
        import_object(f"{path}:Net")
    assert str(info.value) == (
        f"cannot import '{path}:Net': '{path}' is a file path, not an import path; write srclab.models:Net, "
        f"the module Python imports that file as"
    )


def test_an_absolute_file_path_into_a_package_not_installed_is_told_the_folder_above_the_package(
    elsewhere: Path,
) -> None:
    """The absolute path of a package's module said "write models:Net and run hpotool from .../srclab", which
    imports the module outside its package."""
    project = elsewhere / "proj"
    (project / "src" / "srclab").mkdir(parents=True)
    (project / "src" / "srclab" / "__init__.py").write_text("")
    (project / "src" / "srclab" / "models.py").write_text("class Net:\n    pass\n")
    path = project / "src" / "srclab" / "models.py"
    with pytest.raises(HpoError) as info:
        import_object(f"{path}:Net")
    assert str(info.value) == (
        f"cannot import '{path}:Net': '{path}' is a file path, not an import path; write srclab.models:Net "
        f"(the file is in a package, named from the folder above it) and run hpotool from {project / 'src'} "
        f"(or add it to PYTHONPATH, or pip install -e your project)"
    )


def test_a_dependency_a_users_module_imports_is_told_the_python_to_install_it_in(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`import wandb` (installed in the user's own venv, not in hpotool's): the line said where, not what to
    do; a module beside the file imported by its bare name (`import helpers`, which worked as a script) is told
    to import it by its package, not to install it."""
    package = elsewhere / "lib" / "deplab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("")
    (package / "needs.py").write_text("import os\nimport deplab_not_installed_xyz\n")
    (package / "sibling.py").write_text("import helpers\n")
    (package / "sklearnish.py").write_text("import cv2_not_here_xyz\n")
    monkeypatch.syspath_prepend(str(elsewhere / "lib"))
    with pytest.raises(HpoError) as info:
        import_object("deplab.needs:Net")
    assert str(info.value).endswith(
        f"at {package / 'needs.py'}:2; deplab_not_installed_xyz is not installed in the Python hpotool runs "
        f"in: install it there ({sys.executable} -m pip install deplab_not_installed_xyz)"
    )
    with pytest.raises(HpoError) as info:
        import_object("deplab.sibling:Net")
    assert str(info.value).endswith(
        f"at {package / 'sibling.py'}:1; helpers is a module beside that file, in the package deplab, which "
        f"Python does not search by its bare name: import it by its package (from deplab import helpers, or "
        f"from . import helpers)"
    )


def test_an_installed_copy_older_than_the_source_being_edited_is_noted_once(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`pip install .` (not -e) copies the project into site-packages; the user edits src/ and hpotool runs
    the copy: a new argument of their model was refused as unknown, with nothing to say why."""
    project = elsewhere / "proj"
    (project / "src" / "stalelab").mkdir(parents=True)
    (project / "src" / "stalelab" / "__init__.py").write_text("")
    (project / "src" / "stalelab" / "models.py").write_text(
        "class Net:\n    def __init__(self, act=1): ...\n"
    )
    site = elsewhere / "site"
    (site / "stalelab").mkdir(parents=True)
    (site / "stalelab" / "__init__.py").write_text("")
    (site / "stalelab" / "models.py").write_text("class Net:\n    pass\n")
    (site / "stalelab" / "same.py").write_text("x = 1\n")
    (project / "src" / "stalelab" / "same.py").write_text("x = 1\n")
    _dist_info(site, "stale-lab", ["stalelab"], project, editable=False)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("HPOTOOL_NOTED_COPIES", raising=False)
    with caplog.at_level("WARNING", logger="hpotool"):
        import_object("stalelab.models:Net")
        import_object("stalelab.models:Net")
        import_object("stalelab.same:x")
    notes = [r.getMessage() for r in caplog.records if r.name == "hpotool"]
    assert notes == [
        f"note: stalelab.models is imported from the copy pip installed in {site} (pip install {project}, "
        f"without -e), not from {project / 'src' / 'stalelab' / 'models.py'}, which differs from it: your "
        f"edits there do not run until you install it again ({sys.executable} -m pip install {project}), or "
        f"install it editable once ({sys.executable} -m pip install -e {project})"
    ]


def test_an_error_in_an_installed_copy_of_the_users_model_is_told_at_its_line(tmp_path: Path) -> None:
    """A real `pip install .` (not -e) of a `src/` layout project into a venv, run from another folder: an
    error in the model's forward() was said to be at torch's module.py, as the copy in site-packages was taken
    for a library's code, and a missing dependency at its import was told with no file at all."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # hpotool's source and this Python's packages (torch, optuna, setuptools), as a .pth puts them
    (site / "zz_hpotool.pth").write_text(f"{SRC}\n{sysconfig.get_paths()['purelib']}\n")
    project = tmp_path / "proj"
    (project / "src" / "errlab").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "err-lab"
            version = "0.1.0"
            [tool.setuptools.packages.find]
            where = ["src"]
            """
        )
    )
    (project / "src" / "errlab" / "__init__.py").write_text("")
    (project / "src" / "errlab" / "models.py").write_text(
        textwrap.dedent(
            """\
            import torch


            class Net(torch.nn.Module):
                def __init__(self, in_features, out_features):
                    super().__init__()
                    self.lin = torch.nn.Linear(in_features, out_features)

                def forward(self, x):
                    return self.lin(x.flatten(1)) + undefined_name  # noqa: F821
            """
        )
    )
    (project / "src" / "errlab" / "needs.py").write_text("import errlab_dependency_xyz\n")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, str(project)], check=True, cwd=tmp_path, env={**os.environ, "PIP_NO_INPUT": "1"})
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "run.yaml").write_text(
        "data: {name: digits}\nmodel: {name: errlab.models:Net}\nepochs: 1\nbatch_size: 32\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, "-m", "hpotool", "train", "-r", "run.yaml"],
        cwd=runs,
        env=env,
        capture_output=True,
        text=True,
    )
    copy = site / "errlab" / "models.py"
    assert done.returncode == 2, done.stderr
    assert f"at {copy}:10 in forward" in done.stderr, done.stderr
    (runs / "run.yaml").write_text(
        "data: {name: digits}\nmodel: {name: errlab.needs:Net}\nepochs: 1\nbatch_size: 32\n"
    )
    done = subprocess.run(
        [python, "-m", "hpotool", "train", "-r", "run.yaml"],
        cwd=runs,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert f"No module named 'errlab_dependency_xyz' at {site / 'errlab' / 'needs.py'}:1" in done.stderr


def test_hpotool_itself_installed_from_a_checkout_is_not_taken_for_the_users_code(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pip install .` of an hpotool checkout copies hpotool into site-packages as a project installed from a
    folder: its files are hpotool's, where no error of the user's is said to be, and of which no copy is
    noted; the user's project installed beside it is theirs."""
    from hpotool.installed import local_packages

    site = elsewhere / "site"
    _dist_info(site, "hpotool", ["hpotool"], elsewhere / "hpotool-checkout", editable=False)
    _dist_info(site, "inst-lab", ["instlab"], elsewhere / "proj", editable=False)
    monkeypatch.syspath_prepend(str(site))
    assert local_packages() == (f"{site / 'instlab'}{os.sep}", str(site / "instlab.py"))


def test_a_package_installed_editable_from_a_folder_that_no_longer_holds_it_is_told_to_be_installed_again(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package of an editable install renamed in its folder (src/renamedlab/ now src/renamedlab2/): the
    line named only folders and PYTHONPATH, and the project is installed from where it is."""
    project = elsewhere / "proj"
    (project / "src" / "renamedlab2").mkdir(parents=True)
    site = elsewhere / "site"
    _dist_info(site, "renamed-lab", ["renamedlab"], project, editable=True)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info:
        import_object("renamedlab.models:Net")
    assert str(info.value) == (
        f"cannot import 'renamedlab.models:Net': No module named 'renamedlab'; renamed-lab is installed "
        f"editable (pip install -e) from {project}, which holds no renamedlab now: install it again "
        f"({sys.executable} -m pip install -e {project})"
    )


@pytest.mark.parametrize("how", ["package", "editable"])
def test_a_package_of_the_activated_environment_not_hpotools_is_told_which_environment_holds_it(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The shell's activated venv holds the project (pip install -e . there), but `hpotool` on the PATH is
    another environment's (pipx's, the system's): the line told the user to change folders or PYTHONPATH."""
    env = elsewhere / "labenv"
    site = env / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    if how == "package":
        (site / "envlab").mkdir()
        (site / "envlab" / "__init__.py").write_text("")
    else:
        (elsewhere / "proj" / "src" / "envlab").mkdir(parents=True)
        (site / "__editable__.env_lab-0.1.0.pth").write_text(f"{elsewhere / 'proj' / 'src'}\n")
    monkeypatch.setenv("VIRTUAL_ENV", str(env))
    with pytest.raises(HpoError) as info:
        import_object("envlab.models:Net")
    assert str(info.value) == (
        f"cannot import 'envlab.models:Net': No module named 'envlab'; envlab is installed in the environment "
        f"{env} (VIRTUAL_ENV, the one the shell has activated), not in the one hpotool runs in ({sys.prefix}): "
        f"install hpotool there ({env / 'bin' / 'python'} -m pip install hpotool) and run its hpotool, or "
        f"install your project in hpotool's ({sys.executable} -m pip install -e YOUR_PROJECT)"
    )


@pytest.mark.parametrize("how", ["record", "editable-folder"])
def test_a_distribution_without_top_level_txt_is_told_its_import_name(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Hatchling, flit and PDM write no top_level.txt: the import name comes from the files the wheel
    installed (RECORD), or, for an editable install that installed only a .pth, from the project folder's
    (or its src/'s) packages."""
    project = elsewhere / "proj"
    (project / "src" / "hatchlab").mkdir(parents=True)
    (project / "src" / "hatchlab" / "__init__.py").write_text("")
    site = elsewhere / "site"
    _dist_info(site, "hatch-lab", [], project, editable=how == "editable-folder")
    info = site / "hatch_lab-0.1.0.dist-info"
    (info / "top_level.txt").unlink()
    record = (
        "_hatch_lab.pth,," if how == "editable-folder" else "hatchlab/__init__.py,,\nhatchlab/models.py,,"
    )
    (info / "RECORD").write_text(f"{record}\nhatch_lab-0.1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info_:
        import_object("hatch-lab.models:Net")
    assert str(info_.value).endswith(
        "hatch-lab names the distribution hatch-lab (pip's name for it), which Python imports as hatchlab: "
        "write hatchlab.models:Net"
    )


@pytest.mark.parametrize("hook", [True, False])
def test_an_editable_install_whose_import_hook_failed_as_python_started_is_told_so(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, hook: bool
) -> None:
    """Hatchling's `dev-mode-exact` editable install (as `pip install --no-deps -e .` left it, walked for
    real): a .pth runs `import _editable_impl_hooklab`, whose `from editables.redirector import ...` fails as
    Python starts, and the package, though its folder holds it, is not found. The line said "No module named
    'hooklab' (did you mean 'hooklab'?)" and to run hpotool from the folder that holds hooklab/."""
    project = elsewhere / "proj"
    (project / "src" / "hooklab").mkdir(parents=True)
    (project / "src" / "hooklab" / "__init__.py").write_text("")
    site = elsewhere / "site"
    _dist_info(site, "hook-lab", [], project, editable=True)
    info = site / "hook_lab-0.1.0.dist-info"
    (info / "top_level.txt").unlink()  # hatchling writes none
    (info / "RECORD").write_text(
        "__pycache__/_editable_impl_hook_lab.cpython-311.pyc,,\n"
        "_editable_impl_hook_lab.pth,sha256=x,40\n_editable_impl_hook_lab.py,sha256=x,184\n"
        "hook_lab-0.1.0.dist-info/RECORD,,\n"
    )
    # without the hook: hatchling's plain .pth, which names a folder Python left off sys.path (python -S)
    pth = "import _editable_impl_hook_lab" if hook else str(project / "src")
    (site / "_editable_impl_hook_lab.pth").write_text(pth)
    (site / "_editable_impl_hook_lab.py").write_text(
        "from editables.redirector import RedirectingFinder as F\nF.install()\n"
        f"F.map_module('hooklab', {str(project / 'src' / 'hooklab' / '__init__.py')!r})\n"
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info_:
        import_object("hooklab.models:Net")
    why = (
        f'but its import hook (_editable_impl_hook_lab.pth in {site}) failed as Python started ("Error '
        f'processing line ... of _editable_impl_hook_lab.pth", printed above)'
        if hook
        else "yet Python does not find it there"
    )
    assert str(info_.value) == (
        f"cannot import 'hooklab.models:Net': No module named 'hooklab'; hook-lab is installed editable (pip "
        f"install -e) from {project}, which holds hooklab, {why}: install it again ({sys.executable} -m pip "
        f"install -e {project})"
    )


def test_a_module_not_found_is_never_told_to_mean_itself(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project installed from a folder that names a package Python does not find (its editable install's
    hook failed): "No module named 'selflab' (did you mean 'selflab'?)"."""
    from hpotool.import_hints import similar_module

    site = elsewhere / "site"
    _dist_info(site, "self-lab", ["selflab", "selflab2"], elsewhere / "proj", editable=False)
    monkeypatch.syspath_prepend(str(site))
    assert similar_module("selflab") == " (did you mean 'selflab2'?)"


@pytest.mark.parametrize("how", ["editable", "copy"])
def test_a_file_path_into_an_installed_namespace_package_is_told_its_module(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A namespace package (no __init__.py: `namespaces = true`, walked for real with setuptools' src layout)
    installed with pip: the absolute path of its module was told "write models:Net and run hpotool from
    .../nslab", which imports the module outside its package; Python imports it as nslab.models, from the
    source (-e, whose .pth adds src/) or from the copy in site-packages."""
    project = elsewhere / "proj"
    (project / "src" / "nslab").mkdir(parents=True)
    (project / "src" / "nslab" / "models.py").write_text("class Net:\n    pass\n")
    if how == "editable":
        monkeypatch.syspath_prepend(str(project / "src"))  # as `__editable__.ns_lab-0.1.0.pth` puts it
    else:
        (elsewhere / "site" / "nslab").mkdir(parents=True)
        (elsewhere / "site" / "nslab" / "models.py").write_text("class Net:\n    pass\n")
        _dist_info(elsewhere / "site", "ns-lab", ["nslab"], project, editable=False)
        monkeypatch.syspath_prepend(str(elsewhere / "site"))
    path = project / "src" / "nslab" / "models.py"
    with pytest.raises(HpoError) as info:
        import_object(f"{path}:Net")
    said = f"cannot import '{path}:Net': '{path}' is a file path, not an import path; write nslab.models:Net"
    assert str(info.value) == said + (
        ", the module Python imports that file as" if how == "editable" else _copy_said(elsewhere, project)
    )
    assert import_object("nslab.models:Net").__name__ == "Net"


@pytest.mark.parametrize("pth", ["_editable_impl_deep_learning_lab.pth", "deep_learning_lab.pth"])
def test_an_editable_install_that_records_no_import_name_moved_is_told_it_may_have_held_the_package(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, pth: str
) -> None:
    """Hatchling and PDM (`_editable_impl_<dist>.pth`) and Poetry (`<dist>.pth`) install editable
    projects as a .pth alone, with no top_level.txt (walked for real): a project named deep-learning-lab whose
    package is unnamedlab, its folder moved, was told only to run hpotool from the folder that holds
    unnamedlab/, as its import name could be read from nowhere; setuptools' top_level.txt names it. A
    distribution whose import names are known and are others is not told."""
    gone = elsewhere / "gone" / "proj"
    site = elsewhere / "site"
    _dist_info(site, "deep-learning-lab", [], gone, editable=True)
    info = site / "deep_learning_lab-0.1.0.dist-info"
    (info / "top_level.txt").unlink()
    (info / "RECORD").write_text(f"{pth},sha256=x,35\ndeep_learning_lab-0.1.0.dist-info/RECORD,,\n")
    (site / pth).write_text(f"{gone / 'src'}\n")
    _dist_info(site, "other-lab", ["otherlab"], elsewhere / "gone" / "other", editable=True)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info_:
        import_object("unnamedlab.models:Net")
    assert str(info_.value) == (
        f"cannot import 'unnamedlab.models:Net': No module named 'unnamedlab'; deep-learning-lab is installed "
        f"editable (pip install -e) from {gone}, which no longer exists (moved or deleted), and may have held "
        f"unnamedlab (its install names no package): install it again from its folder now ({sys.executable} -m "
        f"pip install -e NEW_FOLDER)"
    )


def test_a_flit_editable_install_moved_is_told_by_the_module_its_pth_is_named_after(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flit's editable install (walked for real) is `mvflit.pth` alone, named after the module, with no
    top_level.txt; its folder moved, the package is named by that .pth, and the line is the moved install's."""
    gone = elsewhere / "gone" / "proj"
    site = elsewhere / "site"
    _dist_info(site, "deep-learning-flit", [], gone, editable=True)
    info = site / "deep_learning_flit-0.1.0.dist-info"
    (info / "top_level.txt").unlink()
    (info / "RECORD").write_text("mvflit.pth,sha256=x,30\ndeep_learning_flit-0.1.0.dist-info/RECORD,,\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nGenerator: flit 4.2.0\nRoot-Is-Purelib: true\n")
    (site / "mvflit.pth").write_text(f"{gone / 'src'}")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info_:
        import_object("mvflit.models:Net")
    assert str(info_.value) == (
        f"cannot import 'mvflit.models:Net': No module named 'mvflit'; deep-learning-flit is installed editable "
        f"(pip install -e) from {gone}, which no longer exists (moved or deleted): install it again from its "
        f"folder now ({sys.executable} -m pip install -e NEW_FOLDER)"
    )


def test_a_flat_namespace_package_installed_editable_from_a_folder_since_moved_is_told_so(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """setuptools installs a flat-layout namespace package (no __init__.py) editable as an import finder
    (`__editable___*_finder.py`, made here by setuptools' own template) whose NAMESPACES still import the
    package once its folder moved (walked for real): `nsflatlab.models` was the module not found, told with
    no hint at all."""
    from setuptools.command.editable_wheel import _finder_template

    gone = elsewhere / "gone" / "proj"
    site = elsewhere / "site"
    _dist_info(site, "nsflat-lab", ["nsflatlab"], gone, editable=True)
    finder = "__editable___nsflat_lab_0_1_0_finder"
    held = {"nsflatlab": str(gone / "nsflatlab")}
    (site / f"{finder}.py").write_text(
        _finder_template("__editable__.nsflat_lab-0.1.0.finder", held, {"nsflatlab": [held["nsflatlab"]]})
    )
    for name in ("meta_path", "path_hooks", "path"):  # what the finder's install() changes, undone after
        monkeypatch.setattr(sys, name, list(getattr(sys, name)))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    monkeypatch.syspath_prepend(str(site))
    try:
        __import__(finder).install()
        with pytest.raises(HpoError) as info:
            import_object("nsflatlab.models:Net")
    finally:
        for name in (finder, "nsflatlab"):
            sys.modules.pop(name, None)
    assert str(info.value) == (
        f"cannot import 'nsflatlab.models:Net': No module named 'nsflatlab.models'; nsflat-lab is installed "
        f"editable (pip install -e) from {gone}, which no longer exists (moved or deleted): install it again "
        f"from its folder now ({sys.executable} -m pip install -e NEW_FOLDER)"
    )


def test_the_file_path_of_an_installed_single_module_is_told_its_module(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single-module project (`py-modules = ["solelab"]`) installed editable (walked for real: setuptools'
    finder maps solelab to the project's solelab.py): its file path was told "write solelab:Net and run
    hpotool from .../proj", though Python imports that file as solelab from any folder."""
    project = elsewhere / "proj"
    project.mkdir()
    (project / "solelab.py").write_text("class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(HpoError) as info:
        import_object(f"{project / 'solelab.py'}:Net")
    assert str(info.value) == (
        f"cannot import '{project / 'solelab.py'}:Net': '{project / 'solelab.py'}' is a file path, not an import "
        f"path; write solelab:Net, the module Python imports that file as"
    )


class _Redirector:
    """editables' RedirectingFinder (editables/redirector.py, which hatchling's dev-mode-exact hook installs),
    as it finds a top-level module: the file it was mapped to, whether or not it is still there."""

    redirections: ClassVar[dict[str, str]] = {}

    @classmethod
    def find_spec(cls, fullname: str, path: object = None, target: object = None) -> object:
        import importlib.util

        if "." in fullname or path is not None or fullname not in cls.redirections:
            return None
        return importlib.util.spec_from_file_location(fullname, cls.redirections[fullname])


@pytest.mark.parametrize("dist", ["exact-lab", "deep-learning-exact"])
def test_a_hatchling_exact_editable_install_moved_is_told_so(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, dist: str
) -> None:
    """Hatchling's `dev-mode-exact` editable install (walked for real) maps the package to its __init__.py in
    the project folder through editables' finder: once the folder moved, the import raised "FileNotFoundError:
    [Errno 2] No such file or directory: '.../__init__.py'", with nothing to say the install was the cause.
    The package's name is read from the hook (`F.map_module('exactlab', ...)`), as hatchling records none."""
    gone = elsewhere / "gone" / "proj"
    init = gone / "src" / "exactlab" / "__init__.py"
    site = elsewhere / "site"
    _dist_info(site, dist, [], gone, editable=True)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    (info / "top_level.txt").unlink()
    hook = f"_editable_impl_{dist.replace('-', '_')}"
    (info / "RECORD").write_text(f"{hook}.pth,sha256=x,40\n{hook}.py,sha256=x,184\n")
    (site / f"{hook}.pth").write_text(f"import {hook}")
    (site / f"{hook}.py").write_text(
        "from editables.redirector import RedirectingFinder as F\nF.install()\n"
        f"F.map_module('exactlab', {str(init)!r})\n"
    )
    monkeypatch.setattr(_Redirector, "redirections", {"exactlab": str(init)})
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _Redirector])
    monkeypatch.setitem(sys.modules, hook, sys)  # the hook loaded as Python started
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(HpoError) as info_:
        import_object("exactlab.models:Net")
    assert str(info_.value) == (
        f"cannot import 'exactlab.models:Net': importing 'exactlab.models' raised FileNotFoundError: [Errno 2] "
        f"No such file or directory: '{init}'; {dist} is installed editable (pip install -e) from {gone}, which "
        f"no longer exists (moved or deleted): install it again from its folder now ({sys.executable} -m pip "
        f"install -e NEW_FOLDER)"
    )


def _copy_said(tmp: Path, project: Path) -> str:
    """What a file path into the source of a project installed with `pip install .` (copied into tmp/site)
    is told after the module to write, as the stale-copy note says it."""
    return (
        f", which Python imports from the copy pip installed in {tmp / 'site'} (pip install {project}, without "
        f"-e), not from that file: your edits there do not run until you install it again ({sys.executable} -m "
        f"pip install {project}), or install it editable once ({sys.executable} -m pip install -e {project})"
    )


@pytest.mark.parametrize("given", ["ABS", "../proj/src/typolab/models.py"])
def test_a_file_path_into_the_source_of_a_project_installed_without_e_is_told_the_copy_is_imported(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`model: {name: .../proj/src/typolab/models.py:Net}` of a project installed with `pip install .`: the
    line said to write typolab.models:Net and run hpotool from src/, though from anywhere else that import
    path reads the copy in site-packages, not the file given (edited, it does not run)."""
    project = elsewhere / "proj"
    (project / "src" / "typolab").mkdir(parents=True)
    (project / "src" / "typolab" / "__init__.py").write_text("")
    (project / "src" / "typolab" / "models.py").write_text("class Net:\n    size = 2\n")
    (elsewhere / "site" / "typolab").mkdir(parents=True)
    (elsewhere / "site" / "typolab" / "__init__.py").write_text("")
    (elsewhere / "site" / "typolab" / "models.py").write_text("class Net:\n    size = 1\n")
    _dist_info(elsewhere / "site", "typo-lab", ["typolab"], project, editable=False)
    monkeypatch.syspath_prepend(str(elsewhere / "site"))
    path = str(project / "src" / "typolab" / "models.py") if given == "ABS" else given
    with pytest.raises(HpoError) as info:
        import_object(f"{path}:Net")
    assert str(info.value) == (
        f"cannot import '{path}:Net': '{path}' is a file path, not an import path; write typolab.models:Net"
        + _copy_said(elsewhere, project)
    )
    assert import_object("typolab.models:Net").size == 1  # the copy, as the line says


@pytest.mark.parametrize("where", ["current-folder", "editable", "copy"])
def test_a_misspelt_top_level_package_is_told_only_the_near_name_and_where_it_is(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`model: {name: typlab.models:Net}` where typolab is beside the configs, installed editable or
    installed with `pip install .`: the line said "(did you mean 'typolab'?)" and then to run hpotool from the
    folder that holds typlab/, add it to PYTHONPATH or pip install -e the project, none of which fixes the
    typo."""
    project = elsewhere / "proj"
    (project / "src" / "typolab").mkdir(parents=True)
    (project / "src" / "typolab" / "__init__.py").write_text("")
    (project / "src" / "typolab" / "models.py").write_text("class Net:\n    pass\n")
    site = elsewhere / "site"
    if where == "current-folder":
        monkeypatch.chdir(project / "src")
        said = "in the current folder"
    elif where == "editable":
        _dist_info(site, "typo-lab", ["typolab"], project, editable=True)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.syspath_prepend(str(project / "src"))  # as the editable install's .pth puts it
        said = f"installed editable (pip install -e) from {project}"
    else:
        (site / "typolab").mkdir(parents=True)
        (site / "typolab" / "__init__.py").write_text("")
        (site / "typolab" / "models.py").write_text("class Net:\n    pass\n")
        _dist_info(site, "typo-lab", ["typolab"], project, editable=False)
        monkeypatch.syspath_prepend(str(site))
        said = f"installed from {project} (pip install, without -e: a copy in {site})"
    for written, rest in (("typlab.models:Net", ".models:Net"), ("typlab.models.Net", ".models.Net")):
        with pytest.raises(HpoError) as info:
            import_object(written)
        assert str(info.value) == (
            f"cannot import '{written}': No module named 'typlab' (did you mean 'typolab'?); typolab is {said}: "
            f"write typolab{rest}"
        )
    assert import_object("typolab.models:Net").__name__ == "Net"
    with pytest.raises(HpoError) as info:  # no near name: where to run from, as before
        import_object("zzqx_nowhere.models:Net")
    assert "run hpotool from the folder that holds zzqx_nowhere/" in str(info.value)
