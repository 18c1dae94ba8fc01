"""The JDL writer and reader: DIRAC's own texts, round trips, refusals, syntax errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _jobref import case_names
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodirac._exceptions import JDLSyntaxError, JobDescriptionError, UnsafeValueError
from aiodirac._job._jdl import check_item, check_name, check_value, parse_jdl, render_jdl
from aiodirac._job._spec import JDLValue

DESCRIPTION = "jobDescription.xml"


def cfg_form(value: JDLValue) -> str:
    """A parsed value as DIRAC's loadJDLAsCFG gives it (lists joined with ', ')."""
    return ", ".join(value) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("name", case_names())
def test_parses_dirac_jdl_as_loadjdlascfg_does(reference: Path, name: str) -> None:
    parsed = json.loads((reference / f"{name}.parsed.json").read_text())
    values = parse_jdl((reference / f"{name}.jdl").read_text())
    assert {k: cfg_form(v) for k, v in values.items()} == parsed["loadJDLAsCFG"]["value"]
    # What submitJob sends: the same JDL without jobDescription.xml in its InputSandbox
    # (the sandbox upload adds it); on the wire, the same again wrapped in [...].
    sent = parse_jdl((reference / f"{name}.submit.jdl").read_text())
    inputs = values.get("InputSandbox", ())
    kept = tuple(
        f for f in (inputs if isinstance(inputs, tuple) else (inputs,)) if f != DESCRIPTION
    )
    expected: dict[str, JDLValue] = {k: v for k, v in values.items() if k != "InputSandbox"}
    if kept:
        expected["InputSandbox"] = kept if len(kept) > 1 else kept[0]
    assert sent == expected
    wire = (reference / f"{name}.wire.jdl").read_text().strip()
    assert (wire[0], wire[-1]) == ("[", "]")
    assert parse_jdl(wire) == sent
    roundtrip = parse_jdl(parsed["ClassAdLight"]["asJDL_roundtrip"])
    assert roundtrip == parse_jdl((reference / f"{name}.jdl").read_text())
    for text in parsed.get("generateParametricJobs", {}).get("Value", []):
        job = parse_jdl(text)
        assert job["Parameter"] == "1"
        assert isinstance(job["ParameterNumber"], int)


@pytest.mark.parametrize("name", case_names())
def test_render_of_parse_is_stable(reference: Path, name: str) -> None:
    first = render_jdl(parse_jdl((reference / f"{name}.jdl").read_text()))
    assert render_jdl(parse_jdl(first)) == first
    assert parse_jdl(render_jdl(parse_jdl(first), brackets=False)) == parse_jdl(first)


def test_reader_forms() -> None:
    text = """[
        Bare = some-token ;
        Number = -42;
        Quoted = "a = b, c";
        List = { "x", y ,"z w" };
        Empty = {};
        Nested = [ A = "]"; B = [ C = 1; ]; ];
        Last = "no semicolon"
    ]"""
    assert parse_jdl(text) == {
        "Bare": "some-token",
        "Number": -42,
        "Quoted": "a = b, c",
        "List": ("x", "y", "z w"),
        "Empty": (),
        "Nested": '[ A = "]"; B = [ C = 1; ]; ]',
        "Last": "no semicolon",
    }
    assert parse_jdl("A = 1 B = 2;") == {"A": "1 B = 2"}  # a bare value runs to ';', as in DIRAC
    assert parse_jdl("") == {}
    assert parse_jdl("  A = 1; A = 2; ") == {"A": 2}


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("[ A = 1;", 8),
        ('A = "open', 4),
        ("A = {1, 2", 9),
        ("A = ;", 4),
        ("= 1;", 0),
        ("A = [ B = 1;", 4),
        ('A = {"x" "y"}', 9),
        ("A =", 3),
    ],
)
def test_syntax_errors_say_where(text: str, position: int) -> None:
    with pytest.raises(JDLSyntaxError) as info:
        parse_jdl(text)
    assert info.value.position == position


def test_not_a_string() -> None:
    with pytest.raises(JDLSyntaxError):
        parse_jdl(b"A = 1;")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attribute", "value", "character"),
    [
        ("JobName", 'a"b', '"'),
        ("JobName", "a;b", ";"),
        ("JobName", "a[b", "["),
        ("JobName", "a,b", ","),
        ("JobName", "a\nb", "\n"),
        ("JobName", "a\x00b", "\x00"),
        ("JobName", "50%s", "%s"),
        ("JobName", " lead", " "),
        ("JobName", "trail\xa0", "\xa0"),
        ("JobName", "\ud800", "\ud800"),
        ("JobName", "a\u2028b", "\u2028"),
        ("Arguments", 'x "y"', '"'),
    ],
)
def test_check_value_names_character_and_attribute(
    attribute: str, value: str, character: str
) -> None:
    with pytest.raises(UnsafeValueError) as info:
        check_value(attribute, value)
    assert info.value.character == character
    assert info.value.attribute == attribute
    assert attribute in str(info.value)
    assert repr(character) in str(info.value)


@pytest.mark.parametrize(
    "value", ["scan-%n", "x %(seed)s", "a]b", "{a}", "tab\tinside", "é😀", "=", "%j", "a'b"]
)
def test_check_value_accepts(value: str) -> None:
    check_value("JobName", value)


def test_commas_only_where_never_a_list() -> None:
    check_value("Arguments", "a, b")
    check_value("Executable", "a,b")
    with pytest.raises(UnsafeValueError):
        check_value("JobGroup", "a,b")


@pytest.mark.parametrize("item", ["", "a b", "a\tb", "a,b", 'a"b', "a;b", "a[b", "x%sy"])
def test_check_item_refuses(item: str) -> None:
    with pytest.raises(UnsafeValueError):
        check_item("InputSandbox", item)


def test_check_name() -> None:
    check_name("Parameters.seed")
    for bad in ["", "1abc", "a b", "a.b.c", "a=b", "a;"]:
        with pytest.raises(JobDescriptionError):
            check_name(bad)


@pytest.mark.parametrize(
    "value", [True, (), ("a", 1), 1.5, None, {"a": 1}], ids=lambda v: type(v).__name__
)
def test_render_refuses_other_values(value: object) -> None:
    with pytest.raises(JobDescriptionError):
        render_jdl({"A": value})  # type: ignore[dict-item]


def test_render_layout() -> None:
    text = render_jdl({"JobName": "x", "CPUTime": 5, "Tags": ("a", "b")})
    assert text == '[\n    JobName = "x";\n    CPUTime = 5;\n    Tags = {"a", "b"};\n]'
    assert render_jdl({"A": 1}, brackets=False) == " \n    A = 1;\n"


OTHERS: dict[str, JDLValue] = {
    "Executable": "dirac-jobexec",
    "JobName": "fixed",
    "CPUTime": 100,
    "InputSandbox": ("a.txt", "jobDescription.xml"),
    "Zz": "last",
}


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=20), as_list=st.booleans())
def test_any_value_round_trips_or_is_refused(value: str, as_list: bool) -> None:
    attrs = dict(OTHERS)
    attrs["Middle"] = (value, "other") if as_list else value
    try:
        text = render_jdl(attrs)
    except UnsafeValueError:
        return
    parsed = parse_jdl(text)
    assert parsed == attrs  # the value, and every other attribute, unchanged
    assert list(parsed) == list(attrs)


@settings(max_examples=200, deadline=None)
@given(
    attrs=st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
        st.one_of(
            st.integers(-(10**9), 10**9),
            st.text(max_size=10),
            st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4).map(tuple),
        ),
        max_size=6,
    )
)
def test_any_mapping_round_trips_or_is_refused(attrs: dict[str, JDLValue]) -> None:
    try:
        text = render_jdl(attrs)
    except UnsafeValueError:
        return
    assert parse_jdl(text) == attrs


@settings(max_examples=300, deadline=None)
@given(
    attrs=st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,6}", fullmatch=True),
        st.one_of(
            st.integers(-1000, 1000),
            st.text(max_size=8),
            st.lists(st.text(max_size=5), max_size=3).map(tuple),
        ),
        max_size=5,
    ),
    spacing=st.sampled_from(["", " ", "\n", "  \n\t"]),
    bare=st.booleans(),
)
def test_fast_and_general_readers_agree(
    attrs: dict[str, JDLValue], spacing: str, bare: bool
) -> None:
    """Texts in many shapes, valid or not: both readers give the same result or the same error."""
    from aiodirac._job._jdl import _parse_general, _parse_simple

    def show(value: JDLValue) -> str:
        if isinstance(value, tuple):
            return "{" + ",".join(f'{spacing}"{v}"' for v in value) + "}"
        if isinstance(value, str) and bare:
            return value
        return f'"{value}"' if isinstance(value, str) else str(value)

    body = "".join(f"{spacing}{k}{spacing}={spacing}{show(v)}{spacing};" for k, v in attrs.items())
    fast = _parse_simple(body, 0, len(body))
    try:
        general: object = _parse_general(body, 0, len(body))
    except JDLSyntaxError:
        general = "error"
    if fast is not None:
        assert fast == general
