"""Safe YAML loading that rejects duplicate keys and reads `1e-3` as a float."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

import yaml

from hpotool.errors import HpoError
from hpotool.formatting import format_choice

# YAML 1.1 (PyYAML) reads 1e-3 as a string; YAML 1.2 and every user read it as a number.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: the keys it brings may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:  # `{a: 1}: x` or `[a]: x` (SafeLoader says so too, but after this check)
                kind = "a mapping" if isinstance(key, dict) else "a list"
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"this key is {kind}, where keys are names; write the name alone before the ':'",
                    key_node.start_mark,
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}, given earlier in the same mapping; keep one of the two",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in list("-+0123456789."):
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, rx)
        for tag, rx in _Loader.yaml_implicit_resolvers.get(_first, [])
        if tag != "tag:yaml.org,2002:float"
    ]
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))

# YAML 1.1's base-60 integers: `timeout: 2:00`, meant as two hours, was read as 120 seconds (and `1:30` as 90).
# YAML 1.2 dropped them; so does hpotool: such a value is text, which the setting then refuses or names.
# YAML 1.1's octal: `seed: 017` (a zero-padded run number) was read as 15; as in YAML 1.2, a leading zero is
# decimal (17) and octal is spelt 0o17, as in Python; 0x1F (31) and 0b101 (5) are read as Python reads them.
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o[0-7_]+
    |[-+]?[0-9][0-9_]*
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
for _first in list("-+0123456789"):
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, rx) for tag, rx in _Loader.yaml_implicit_resolvers[_first] if tag != "tag:yaml.org,2002:int"
    ]
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    """An integer as `_INT` reads it: a leading zero decimal (PyYAML's own constructor read it as octal);
    `0x_`, which names no digit, the text it is."""
    written = str(loader.construct_scalar(node))
    text = written.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    try:
        return sign * int(digits, 0 if digits[:2].lower() in ("0b", "0o", "0x") else 10)
    except ValueError:
        return written


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


# What PyYAML says of a line indented too far or not far enough (or of a line above it that lacks its ':').
_INDENTATION_SIGNS = (
    "mapping values are not allowed here",
    "expected <block end>",
    "did not find expected key",
    "could not find expected ':'",
)
_INDENTATION_FIX = (
    "check the indentation of this line and the one above: the keys of one mapping start in the same "
    "column, a section's keys further right than its name, and a ': ' inside a value needs quotes"
)


_UNCLOSED_FIX = (
    "a [ or { opened on this line or above is not closed: close it (] or }), or quote a value that holds "
    "one of , [ ] { }"
)
_SYNTAX_FIX = "check the quotes, brackets and indentation of this line and the one above"


# Both configs in one file, split by `---`: PyYAML says "but found another document".
_SECOND_DOCUMENT = (
    "a second YAML document starts here ('---'), and a config file holds one; give the run config and the "
    "optimize config as two files, or delete this line and what follows it"
)


def missing_path_fix(path: str | Path) -> str:
    """What to do about a file that is not where `path` leads (a config, a storage's file): check it, and a
    relative one against the folder it is read from."""
    relative = (
        " (a relative one is read from the folder hpotool runs in)" if not Path(path).is_absolute() else ""
    )
    return f"check the path{relative}"


def _tag_refused(problem: str) -> str:
    """PyYAML's "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    as the tag was written (!!python/object/apply:os.system), with what to do."""
    found = re.search(r"for the tag '([^']*)'", problem)
    tag = found.group(1).replace("tag:yaml.org,2002:", "!!") if found else "here"
    return (
        f"the YAML tag {tag} is not allowed: configs are loaded safely, without tags that build Python "
        "objects; remove the tag and write the value itself"
    )


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; any syntax or safety problem becomes one `HpoError` line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in problem:
            problem = _tag_refused(problem)
        elif "'\\t'" in problem:
            problem += "; YAML indents with spaces only: replace the tab with spaces"
        elif problem == "but found another document":
            problem = _SECOND_DOCUMENT
        elif any(sign in problem for sign in _INDENTATION_SIGNS):
            problem += f"; {_INDENTATION_FIX}"
        elif re.match(r"expected ',' or '[]}]'", problem):  # `[relu, tanh` or `{a: 1` left open
            problem = problem.replace("'<stream end>'", "the end of the file") + f"; {_UNCLOSED_FIX}"
        elif "that cannot start any token" in problem:  # `a: @x`, `a: %x`: characters YAML reserves
            problem += "; put a value that starts with it in quotes"
        elif "; " not in problem:  # hpotool's own (a duplicate key) says what to do
            problem = problem.replace("found unexpected end of stream", "the file ends here, unexpectedly")
            problem += f"; {_SYNTAX_FIX}"
        raise HpoError(f"{source}: {where}{problem}") from None
    except yaml.reader.ReaderError as exc:
        raise HpoError(f"{source}: {_where(text, exc.position)}{_control_character(exc)}") from None
    except yaml.YAMLError as exc:
        raise HpoError(f"{source}: invalid YAML: {exc}") from None


def _where(text: str, position: int) -> str:
    """`line 2, column 10: ` for a character offset into `text`, as an editor counts them."""
    before = text[:position]
    return f"line {before.count(chr(10)) + 1}, column {position - before.rfind(chr(10))}: "


def _control_character(exc: yaml.reader.ReaderError) -> str:
    """A character YAML refuses (a NUL, a bell), given as its code point: PyYAML's two lines, the second a
    character count into "<unicode string>", as one saying what to do."""
    return (
        f"the control character #x{exc.character:04x}, which YAML does not allow; delete it (an editor that "
        f"shows invisible characters finds it)"
    )


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """Why a config is no UTF-8 text, and how to save it: UTF-16 as Windows PowerShell writes it (`>`), or
    a byte of another encoding (Latin-1's é), where it is; Python's "'utf-8' codec can't decode byte 0xff
    in position 0" said neither."""
    data = exc.object
    valid = data[: exc.start].decode("utf-8")  # the text before the byte, whose characters an editor counts
    if data[:2] in _UTF16_BOMS:
        return (
            f"{path}: is UTF-16 text (as Windows PowerShell's > and Out-File write it); save it as UTF-8 "
            f"(in PowerShell: Set-Content -Encoding utf8)"
        )
    return (
        f"{path}: {_where(valid, len(valid))}byte 0x{data[exc.start]:02x} is not UTF-8 (the file is in another "
        f"encoding, such as Latin-1 or Windows-1252); save it as UTF-8"
    )


def _found_elsewhere(path: Path) -> str:
    """Where a relative config path does lead, for one run from another folder than the paths were written
    for: `-r configs/run.yaml` from inside configs/ (or a folder under the project), `-r configs/run.yaml`
    with the file here, `-r run.yaml` with it in configs/. "no such file" alone left the user to look."""
    if path.is_absolute():
        return ""
    for up in range(1, 4):
        above = "/".join([".."] * up)
        if (Path(above) / path).is_file():
            return f" here; {above}/{path} exists: run hpotool from there (cd {above})"
    if path.parent != Path("."):  # a folder given: is the file here, the folder not?
        here = not path.parent.is_dir() and Path(path.name).is_file()
        return f" here; {path.name} is in this folder: give {path.name}" if here else ""
    beside = sorted(p for p in Path().glob(f"*/{glob.escape(path.name)}") if p.is_file())
    return f" here; {beside[0]} exists: give {beside[0]}" if beside else ""


def _near_config(path: Path) -> str:
    """`; did you mean optimize.yaml?` for a config file misspelt (`-o optimize.yml`, `-r rnu.yaml`): the YAML
    file of its folder whose name looks most like it. "no such file; check the path" left the user to
    compare the names."""
    from hpotool.near_names import closest

    folder = path.parent if path.parent.is_dir() else _near_folder(path.parent)
    if folder is None:
        return ""
    if folder != path.parent and (folder / path.name).is_file():
        return f"; did you mean {folder / path.name}?"
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and e.name.endswith((".yaml", ".yml"))]
    except OSError:
        return ""
    stems = {Path(name).stem: name for name in sorted(names, reverse=True)}  # run.yaml before run.yml
    near = [stems[s] for s in closest(path.stem, stems, n=1)]  # by stem: every name ends in .yaml alike
    return f"; did you mean {folder / near[0] if folder != Path('.') else near[0]}?" if near else ""


def _near_folder(folder: Path) -> Path | None:
    """`folder`, which does not exist, with each of its names that leads nowhere replaced by the folder beside
    it whose name looks most like it (`confgs/` as `configs/`); None where one has none (or is `..`). A
    misspelt folder said "no such file; check the path", with the file meant one letter away."""
    from hpotool.near_names import closest

    found = Path(folder.anchor) if folder.is_absolute() else Path()
    for part in folder.relative_to(folder.anchor).parts if folder.is_absolute() else folder.parts:
        if (found / part).is_dir():
            found /= part
            continue
        if part == "..":
            return None
        try:
            names = [e.name for e in os.scandir(found) if e.is_dir()]
        except OSError:
            return None
        near = closest(part, names, n=1)
        if not near:
            return None
        found /= near[0]
    return found


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping at the top level."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        elsewhere = _found_elsewhere(path) or _near_config(path) or f"; {missing_path_fix(path)}"
        raise HpoError(f"{path}: no such file{elsewhere}") from None
    except IsADirectoryError:
        raise HpoError(
            f"{path}: is a folder, not a YAML file; give the path of the config file in it"
        ) from None
    except UnicodeDecodeError as exc:
        raise HpoError(_not_utf8(path, exc)) from None
    except OSError as exc:
        raise HpoError(f"{path}: cannot read: {exc}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise HpoError(
            f"{path}: the file is empty (or holds only comments); write the config in it, one key: value a line"
        )
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"the value {format_choice(data)}"
        raise HpoError(
            f"{path}: holds {got}, where a config is key: value lines (a YAML mapping); write each setting "
            "as key: value at the start of its line (epochs: 10)"
        )
    return data


class FlowMapping(dict[str, Any]):
    """A mapping `dump_yaml` writes on one line: `{type: float, low: 0.1, high: 1.0}`."""


class _Dumper(yaml.SafeDumper):
    pass


# The dumper writes a string bare only where its resolvers read it back as a string: with SafeDumper's own,
# "1e-3" (a categorical choice, a user model's argument) went out bare and `parse_yaml` read it as 0.001.
_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_Dumper.add_representer(
    FlowMapping, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def dump_yaml(data: Any) -> str:
    """Dump plain data as block-style YAML (FlowMapping values on one line), keys in insertion order."""
    # PyYAML folds a line past 80 columns, a flow mapping mid-mapping: a search space is read a parameter a line
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000
    )
