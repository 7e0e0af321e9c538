"""The options several commands share, and the parsing of path options (`--out ''` refused)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer


class OptionError(typer.BadParameter):
    """An option value refused while the command line is read, with the whole line to print."""


# Suffixes of the files a user may mean where a command writes a folder (`export-best --out best.yaml`).
_FILE_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".csv", ".html", ".pt", ".pth"})


def out_path(
    example: str, option: str = "--out", file_name: str | None = None, folder_of: str | None = None
) -> Callable[[str], Path]:
    """The parser of an --out option (or another path option): the text as a Path, or a refusal of `--out ''`,
    which typer read as `.` (export-best wrote into the current folder) and report refused as "--out .: is
    a folder"; `-r ''` said ".: is a directory, expected a YAML file".

    Args:
        example: what to give instead, e.g. "a folder, e.g. --out runs/mine".
        option: the option's name, as the refusal names it.
        file_name: where the option names a file the command writes, the file to suggest in a folder: a
            text ending in / (`--out reports/`), which names a folder, is refused. A Path drops the /, and
            report wrote its page as a file named `reports`.
        folder_of: where the option names a folder the command writes, the files it writes there: a text
            ending in a file's suffix (`--out best.yaml`) that is no folder yet is refused. export-best made a
            folder named best.yaml, train one named model.pt.
    """

    def parse(text: str) -> Path:
        if not text:
            raise OptionError(f"{option}: is empty; give {example}")
        if file_name is not None and text.endswith("/"):
            from shlex import quote

            raise OptionError(
                f"{option} {text}: ends in /, which names a folder, and this command writes a file there; give "
                f"a file in it, e.g. {option} {quote(text + file_name)}"
            )
        suffix = Path(text).suffix
        if folder_of is not None and suffix.lower() in _FILE_SUFFIXES and not os.path.isdir(text):
            from shlex import quote

            raise OptionError(
                f"{option} {text}: ends in {suffix}, as a file does, and this command writes a folder of files "
                f"({folder_of}); give a folder, e.g. {option} {quote(str(Path(text).with_suffix('')))}"
            )
        return Path(text)

    return parse


def run_config_option(help_text: str) -> Any:
    """A command's --run-config (-r) option, read by `out_path`."""
    return typer.Option(
        "--run-config",
        "-r",
        parser=out_path("a YAML file, e.g. --run-config run.yaml", "--run-config"),
        metavar="<path>",
        help=help_text,
    )


RunConfigOpt = Annotated[Path, run_config_option("RunConfig YAML: one training run.")]
StudyNameOpt = Annotated[
    str | None,
    typer.Option("--study-name", help="Override study_name; without -r and -o: the stored study to join."),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Override storage (default: the optimize config's storage:, else sqlite:///studies/<study-name>.db).",
    ),
]


def out_option(
    example: str, metavar: str, help_text: str, file_name: str | None = None, folder_of: str | None = None
) -> Any:
    """A command's --out option, read by `out_path(example)`; `file_name` where it names a file, `folder_of`
    where it names a folder (see `out_path`)."""
    parser = out_path(example, file_name=file_name, folder_of=folder_of)
    return typer.Option("--out", parser=parser, metavar=metavar, help=help_text)


StudyNameReq = Annotated[str, typer.Option("--study-name", help="The study's name.")]
ReadStorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL (default: sqlite:///studies/<study-name>.db)."),
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", min=1, help="Override the epochs.")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="Override the device: auto, cpu, cuda, cuda:N, mps.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]
