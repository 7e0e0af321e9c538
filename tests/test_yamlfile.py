from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpotool.errors import HpoError
from hpotool.yamlfile import FlowMapping, dump_yaml, parse_yaml, read_yaml_mapping


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1e-3", 0.001),
        ("a: 1.0e-4", 0.0001),
        ("a: -2E5", -200000.0),
        ("a: 3", 3),
        ("a: .5", 0.5),
        ("a: 1e3x", "1e3x"),
        ("a: .inf", float("inf")),
        ("a: 1_000", 1000),
        ("a: 2:00", "2:00"),  # YAML 1.1's base 60: 120 (timeout: 2:00, meant as two hours, ran two minutes)
        ("a: 1:30:00", "1:30:00"),
        # YAML 1.1's octal: seed: 017 (a zero-padded run number) was read as 15; decimal, as written
        ("a: 017", 17),
        ("a: -017", -17),
        ("a: 09", 9),
        ("a: 0o17", 15),  # octal as Python and YAML 1.2 spell it
        ("a: 0x1F", 31),
        ("a: 0b101", 5),
        ("a: 0x_", "0x_"),
    ],
)
def test_numbers_read_as_users_expect(text: str, expected: object) -> None:
    assert parse_yaml(text, "f.yaml") == {"a": expected}


@pytest.mark.parametrize(
    ("text", "kind", "column"),
    [("[a]: 1\n", "a list", 1), ("? {a: 1}\n: x\n", "a mapping", 3), ("x:\n  {a: 1}: 2\n", "a mapping", 3)],
)
def test_a_mapping_or_list_as_a_key_is_one_line(text: str, kind: str, column: int) -> None:
    # it said "a key must be a plain value, not a dict": Python's name for a mapping, and no fix
    with pytest.raises(
        HpoError,
        match=rf"^f.yaml: line \d, column {column}: this key is {kind}, where keys are names; write the name alone "
        r"before the ':'$",
    ):
        parse_yaml(text, "f.yaml")


def test_duplicate_keys_are_refused() -> None:
    # its line and column led the line as in every other YAML error, and it says which to keep
    with pytest.raises(
        HpoError,
        match=r"^f.yaml: line 3, column 3: duplicate key 'lr', given earlier in the same mapping; keep one of the "
        r"two$",
    ):
        parse_yaml("optimizer:\n  lr: 1\n  lr: 2\n", "f.yaml")


def test_merge_keys_share_a_spec_and_may_override_it() -> None:
    text = "base: &lr {type: float, low: 1.0e-4, high: 1.0e-2}\nwd: {<<: *lr, low: 1.0e-6}\n"
    assert parse_yaml(text, "f.yaml")["wd"] == {"type": "float", "low": 1e-6, "high": 1e-2}
    with pytest.raises(HpoError, match="duplicate key 'low'"):  # the mapping's own keys are still checked
        parse_yaml("base: &b {a: 1}\nx: {<<: *b, low: 1, low: 2}\n", "f.yaml")


def test_python_tags_are_refused() -> None:
    # it said "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    with pytest.raises(
        HpoError,
        match=r"^f.yaml: line 1, column 4: the YAML tag !!python/object/apply:os.system is not allowed: configs are "
        r"loaded safely, without tags that build Python objects; remove the tag and write the value itself$",
    ):
        parse_yaml("a: !!python/object/apply:os.system ['echo hi']", "f.yaml")


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(
        HpoError, match=r"f.yaml: line 2, column 2: .*; a \[ or \{ opened on this line or above is not"
    ):
        parse_yaml("a: [1, 2\nb: 3", "f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # it said "found character '@' that cannot start any token" and no more
            "a: @x\n",
            "line 1, column 4: found character '@' that cannot start any token; put a value that starts with it in "
            "quotes",
        ),
        (  # it said "found unexpected end of stream"
            'a: "x\n',
            "line 2, column 1: the file ends here, unexpectedly; check the quotes, brackets and indentation of this "
            "line and the one above",
        ),
    ],
)
def test_other_syntax_errors_say_what_to_check(text: str, message: str) -> None:
    with pytest.raises(HpoError) as err:
        parse_yaml(text, "f.yaml")
    assert str(err.value) == f"f.yaml: {message}"


def test_missing_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(HpoError, match="no such file; check the path"):
        read_yaml_mapping(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(HpoError, match=r"the file is empty .*; write the config in it"):
        read_yaml_mapping(tmp_path / "empty.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    # it said "got list" (Python's name) and not what to write
    with pytest.raises(HpoError) as err:
        read_yaml_mapping(tmp_path / "list.yaml")
    assert str(err.value) == (
        f"{tmp_path / 'list.yaml'}: holds a list, where a config is key: value lines (a YAML mapping); write each "
        "setting as key: value at the start of its line (epochs: 10)"
    )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("configs/rnu.yaml", "configs/run.yaml"),  # the file in its own folder
        ("confgs/run.yaml", "configs/run.yaml"),  # a misspelt folder: it said "check the path"
        ("confgs/rnu.yaml", "configs/run.yaml"),  # both
        ("configs/stage_0ne/optimize.yaml", "configs/stage_one/optimize.yaml"),  # a folder deeper down
        ("configs/stage_0ne/optimise.yaml", "configs/stage_one/optimize.yaml"),
    ],
)
def test_a_misspelt_config_path_in_folders_names_the_file_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed: str, meant: str
) -> None:
    (tmp_path / "configs" / "stage_one").mkdir(parents=True)
    (tmp_path / "configs" / "run.yaml").write_text("epochs: 1\n")
    (tmp_path / "configs" / "stage_one" / "optimize.yaml").write_text("n_trials: 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HpoError) as err:
        read_yaml_mapping(Path(typed))
    assert str(err.value) == f"{typed}: no such file; did you mean {meant}?"
    with pytest.raises(HpoError) as err:  # an absolute path alike
        read_yaml_mapping(tmp_path / typed)
    assert str(err.value) == f"{tmp_path / typed}: no such file; did you mean {tmp_path / meant}?"


def test_a_config_path_in_a_folder_nothing_looks_like_gets_no_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "run.yaml").write_text("epochs: 1\n")
    monkeypatch.chdir(tmp_path)
    for typed in ("elsewhere/run.yaml", "configs/nested/run.yaml", "confgs/other.yaml"):
        with pytest.raises(HpoError) as err:
            read_yaml_mapping(Path(typed))
        assert str(err.value) == (
            f"{typed}: no such file; check the path (a relative one is read from the folder hpotool runs in)"
        )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("model:\n  name: mlp\n    hidden: [32]\n", "line 3, column 11: mapping values are not allowed here"),
        ("data:\n  name: digits\n val_fraction: 0.2\n", "line 3, column 2: expected <block end>"),
        ("project p\nepochs: 2\n", "line 2, column 7: mapping values are not allowed here"),
    ],
)
def test_an_indentation_mistake_says_to_check_the_indentation(text: str, where: str) -> None:
    with pytest.raises(HpoError) as info:
        parse_yaml(text, "f.yaml")
    message = str(info.value)
    assert message.startswith(f"f.yaml: {where}")
    assert message.endswith(
        "; check the indentation of this line and the one above: the keys of one mapping start in the same "
        "column, a section's keys further right than its name, and a ': ' inside a value needs quotes"
    )


def test_a_tab_says_to_indent_with_spaces() -> None:
    with pytest.raises(HpoError) as info:
        parse_yaml("search_space:\n\toptimizer.lr: {type: float, low: 0.1, high: 1.0}\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml: line 2, column 1: found character '\\t' that cannot start any token; "
        "YAML indents with spaces only: replace the tab with spaces"
    )


def test_a_control_character_is_one_line_naming_its_line_and_column() -> None:
    """A NUL or a bell in a config (a file cut short by a crash, a stray paste) printed two lines,
    "invalid YAML: unacceptable character #x0000: ..." and `in "<unicode string>", position 21`: a
    character count, not the line and column an editor goes to."""
    with pytest.raises(HpoError) as info:
        parse_yaml("project: p\nepochs: 2\x00\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml: line 2, column 10: the control character #x0000, which YAML does not allow; delete it "
        "(an editor that shows invisible characters finds it)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "project: p\n".encode("utf-16"),
            "f.yaml: is UTF-16 text (as Windows PowerShell's > and Out-File write it); save it as UTF-8 "
            "(in PowerShell: Set-Content -Encoding utf8)",
        ),
        (
            "project: p\n# caf\xe9\n".encode("latin-1"),
            "f.yaml: line 2, column 6: byte 0xe9 is not UTF-8 (the file is in another encoding, such as "
            "Latin-1 or Windows-1252); save it as UTF-8",
        ),
    ],
)
def test_a_file_not_in_utf_8_says_to_save_it_as_utf_8(tmp_path: Path, data: bytes, message: str) -> None:
    """It read "cannot read: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte":
    Python's decoder talking, with a byte offset, and no word of what to do."""
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(HpoError) as info:
        read_yaml_mapping(path)
    assert str(info.value) == f"{tmp_path / message}"


def test_a_second_document_says_a_config_is_one_document() -> None:
    """Both configs in one file, split by `---` (as Kubernetes manifests are), read "line 3, column 1: but
    found another document", PyYAML's half-sentence, with no word of what to do."""
    with pytest.raises(HpoError) as info:
        parse_yaml("project: p\nepochs: 2\n---\nstudy_name: s\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml: line 3, column 1: a second YAML document starts here ('---'), and a config file holds one; "
        "give the run config and the optimize config as two files, or delete this line and what follows it"
    )


# Strings YAML 1.1, or hpotool's reading of 1e-3 as a number, would take for something else when written bare.
_tricky_text = st.sampled_from(
    [
        "1e-3",
        "1E5",
        "-2e+4",
        ".5",
        "1_000",
        "0x10",
        "0o17",
        "017",
        "0x_",
        "0b101",
        "1:30",
        "yes",
        "No",
        "null",
        "~",
        "",
        "on",
        ".inf",
        "-.Inf",
        ".nan",
        "2024-01-01",
        "[1, 2]",
        "{a: 1}",
        "a: b",
        "- x",
        "#x",
        "&a",
        "*a",
        "!t",
        "1e3x",
    ]
)
# Printable text: PyYAML itself reads a control character such as NEL (\x85) back as a line break.
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=8)
_plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    _tricky_text,
    _text,
)
_plain_data = st.recursive(
    _plain_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text | _tricky_text, inner, max_size=3),
    max_leaves=10,
)


def _typed(value: object) -> object:
    """`value` with each scalar's type beside it: 1 and 1.0 and true differ, as they do to a config."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


@settings(max_examples=300, deadline=None)
@given(data=_plain_data)
def test_what_dump_yaml_writes_reads_back_as_the_same_data(data: object) -> None:
    """best_run.yaml, a refined stage's configs and a run's config.yaml are written by `dump_yaml` and read by
    `parse_yaml`: a string such as "1e-3" (a categorical choice, a user model's argument) must come back a
    string, not the number hpotool reads a bare 1e-3 as."""
    for flow in (False, True):
        doc = {"a": FlowMapping(x=data) if flow else data}
        assert _typed(parse_yaml(dump_yaml(doc), "f.yaml")) == _typed({"a": {"x": data} if flow else data})


def test_a_flow_mapping_stays_on_one_line_however_long() -> None:
    """A refined stage's search space is one line a parameter, to read and edit by hand: a conditional one
    past 80 columns was folded mid-mapping (`when: {model.layers: {` over `ge: 3}}}`)."""
    spec = FlowMapping(type="int", low=16, high=64, step=16, when={"model.layers": {"ge": 3}})
    text = dump_yaml({"search_space": {"model.hidden.2": spec}})
    assert (
        text
        == "search_space:\n  model.hidden.2: {type: int, low: 16, high: 64, step: 16, when: {model.layers: {ge: 3}}}\n"
    )
