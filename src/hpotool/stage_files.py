"""The two files `hpotool refine` writes: the next stage's OptimizeConfig and its RunConfig beside it."""

from __future__ import annotations

from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

from hpotool.errors import HpoError
from hpotool.search_space import Param
from hpotool.stage_ranges import yaml_spec

if TYPE_CHECKING:
    from hpotool.refine import Refinement


_PARAM: TypeAdapter[Param] = TypeAdapter(Param)


def stage_paths(out: Path) -> tuple[Path, Path]:
    """The files `refine --out OUT` writes: OUT (the OptimizeConfig) and `<OUT stem>.run.yaml` beside it
    (`.run.yml` for an OUT ending in `.yml`)."""
    suffix = ".yml" if out.suffix.lower() == ".yml" else ".yaml"
    return out, out.with_name(f"{out.stem}.run{suffix}")


def check_stage_paths(out: Path, force: bool = False) -> None:
    """Refuse to replace existing stage files (a next-stage config may have been edited by hand).

    Raises:
        HpoError: when OUT or its .run.yaml sibling exists and `force` is false, naming the file(s); when
            either is a folder, or no file at all (`--out /dev/null`: its .run.yaml would go into /dev); when
            OUT's suffix names another format than YAML (`--out s.json` got YAML and a partner s.run.yaml).
    """
    if out.suffix and out.suffix.lower() not in (".yaml", ".yml"):  # as report refuses HTML in a .json
        raise HpoError(
            f"--out {out}: refine writes YAML (the stage's config and its .run.yaml beside it), not "
            f"{out.suffix}; give a .yaml or .yml file, e.g. --out {quote(str(out.with_suffix('.yaml')))}"
        )
    from hpotool.path_checks import abbreviated, long_name

    too_long = next((t for t in map(long_name, stage_paths(out)) if t is not None), None)
    if too_long is not None:  # every stat of it raised OSError: File name too long
        raise HpoError(f"--out {abbreviated(str(out), 40)}: {too_long}; give a shorter --out")
    special = next((p for p in stage_paths(out) if p.exists() and not p.is_dir() and not p.is_file()), None)
    if special is not None:  # /dev/null: written into, and its .run.yaml made beside it, in /dev
        from hpotool.path_checks import kind_of

        raise HpoError(
            f"--out: {special} is {kind_of(special)}, not a file; refine writes two files, the stage's "
            f"config and its .run.yaml beside it: give a file, e.g. --out stage2.yaml"
        )
    folder = next((p for p in stage_paths(out) if p.is_dir()), None)
    if folder is not None:  # no --force replaces a folder; found before the study is read, not when writing
        raise HpoError(
            f"--out: {folder} is a folder; give a file, e.g. --out {quote(str(out / 'stage2.yaml'))}"
        )
    existing = [p for p in stage_paths(out) if p.exists() and not p.is_dir()]
    if existing and not force:
        names = " and ".join(str(p) for p in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise HpoError(f"--out: {names} already {verb}; choose another --out, or pass --force to overwrite")


def write_refinement(ref: Refinement, out: Path, source_study: str) -> tuple[Path, Path]:
    """Write the stage's OptimizeConfig to `out` and its RunConfig beside it (`<out stem>.run.yaml`),
    replacing them if they exist (`hpotool refine` calls `check_stage_paths` first), as one set: when either
    cannot be written, neither is replaced."""
    from hpotool.atomic import write_texts
    from hpotool.yamlfile import FlowMapping, dump_yaml

    out, run_path = stage_paths(out)
    optimize = dict(ref.optimize)
    # The data holds every field (`when: null, step: null, log: false`); the file only what differs from them
    optimize["search_space"] = {
        k: FlowMapping(yaml_spec(_PARAM.validate_python(v))) for k, v in optimize["search_space"].items()
    }
    header = [
        f"# Stage refined from study {source_study!r} by `hpotool refine`.",
        f"# Run it: hpotool optimize --run-config {quote(str(run_path))} --optimize-config {quote(str(out))}",
        "# Changes:",
        *[f"#   - {c}" for c in ref.changes],
    ]
    run_header = f"# RunConfig for study {ref.study_name!r}: the base config of {source_study!r} with the fixed parameters applied.\n"
    write_texts(
        {out: "\n".join(header) + "\n" + dump_yaml(optimize), run_path: run_header + dump_yaml(ref.run)}
    )
    return out, run_path
