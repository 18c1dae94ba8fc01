"""DIRAC's ClassAd JDL: a safe writer, a tolerant reader, and the grammar of safe values.

DIRAC's JDL has no escape mechanism, and the code that reads it on a DIRAC or DiracX server is a
chain of ad-hoc string scanners (``ClassAdLight.ClassAd``, ``JDL.loadJDLAsCFG``, ``List.fromChar``,
``ParametricJob.generateParametricJobs``). A value therefore survives the trip only if none of those
scanners sees one of its characters as structure. The rules below were found by running those real
parsers (see ``tests/job/test_real_parsers.py``, which keeps checking them):

``"``      ends a quoted value for every reader; inside a value it corrupts the JDL (DiracX: 400).
``;``      ends the value for ``ClassAd`` whatever the quoting (the rest becomes new attributes).
``[``      opens a sub-JDL for ``ClassAd`` even inside quotes; ``[abc]`` hangs its scanner forever.
``,``      ``loadJDLAsCFG``/``List.fromChar`` split every value on commas: a scalar becomes a list.
           Only ``Arguments``, ``Executable``, ``StdOutput`` and ``StdError`` are never split.
newline    ``ClassAd`` deletes it. Other control characters survive the JDL readers but not
           ``jobDescription.xml`` (XML 1.0), and lone surrogates cannot be encoded: refused too.
``%s``     ``generateParametricJobs`` replaces every ``%s`` by the default sequence's value ("1"),
           and aiodirac always submits parametric JDL, so a literal ``%s`` cannot be carried.

Values with leading or trailing whitespace are refused: ``dumpCFGAsJDL`` writes a value that
``float()`` accepts (``" 5"``, ``"7\\xa0"``) without quotes, and ``ClassAd`` then strips it.

List items are read by ``ClassAd.getListFromExpression``, which deletes every space, and
``List.fromChar``, which strips items and drops empty ones: list items also refuse any whitespace
and the empty string.

``%n``, ``%(name)s`` and ``%j`` are DIRAC's placeholders (global index, parameter value, job ID)
and are allowed on purpose: the server substitutes them.

Usage::

    text = render_jdl({"Executable": "dirac-jobexec", "JobName": "scan-1", "CPUTime": 500})
    assert parse_jdl(text)["JobName"] == "scan-1"
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiodirac._exceptions import JDLSyntaxError, JobDescriptionError, UnsafeValueError

from ._spec import JDLValue

__all__ = [
    "NEVER_LIST_ATTRIBUTES",
    "check_item",
    "check_name",
    "check_value",
    "parse_jdl",
    "render_jdl",
]

#: Attributes that DiracX's ``dumpCFGAsJDL`` never turns into a list, so a comma is safe in them.
NEVER_LIST_ATTRIBUTES = frozenset({"Arguments", "Executable", "StdOutput", "StdError"})

_CONTROL = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
# One regex per context: a search is ~0.2 µs, so checking every value at render time is cheap.
# Character classes only (an alternation makes the regex engine 4x slower); "%s" is looked up apart.
_UNSAFE_SCALAR = re.compile(f'[";\\[,{_CONTROL}]')
_UNSAFE_NEVER_LIST = re.compile(f'[";\\[{_CONTROL}]')
_UNSAFE_ITEM = re.compile(f'[";\\[,\\s{_CONTROL}]')
_PERCENT_S = re.compile("%s")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?\Z")
_INT = re.compile(r"-?[0-9]+\Z")

_WHY = {
    '"': "it ends a quoted JDL value and the server rejects the JDL",
    ";": "DIRAC's ClassAd parser ends the value there and reads the rest as new attributes",
    "[": "DIRAC's ClassAd parser opens a sub-JDL there (it can hang the server)",
    "]": "DIRAC's list reader and dirac-jobexec treat it as structure",
    "'": "the value is pasted inside -p arguments='...' on the worker node's shell command line",
    "%": "DIRAC substitutes placeholders in several passes and could read it as one",
    ",": "DIRAC's JDL reader splits values on commas, turning the value into a list",
    "{": "DIRAC's list reader treats braces inside an item as a nested list",
    "}": "DIRAC's list reader treats braces inside an item as a nested list",
    "%s": "DIRAC's parametric expansion replaces every '%s' by a sequence value",
}


def _describe(character: str) -> str:
    if character in _WHY:
        return _WHY[character]
    if character.isspace():
        return "DIRAC's list reader deletes whitespace inside list items"
    return "DIRAC's parsers drop or cannot encode control characters and line separators"


def _refuse(attribute: str, value: str, match: re.Match[str], context: str) -> UnsafeValueError:
    character = match.group()
    return UnsafeValueError(
        f"{attribute}: the value {value!r} holds {character!r} at position {match.start()}, which "
        f"DIRAC's JDL cannot carry {context}: {_describe(character)}. Remove or replace it.",
        attribute=attribute,
        value=value,
        character=character,
    )


def check_name(attribute: str) -> None:
    """Check that ``attribute`` is a JDL attribute name DIRAC reads back as written.

    Raises:
        JobDescriptionError: the name is not ``[A-Za-z_][A-Za-z0-9_]*`` (one ``.suffix`` allowed).

    Usage: ``check_name("Parameters.seed")``
    """
    if not isinstance(attribute, str) or not _NAME.match(attribute):
        raise JobDescriptionError(
            f"{attribute!r} is not a JDL attribute name: use letters, digits and '_' "
            "(one '.suffix' allowed, as in Parameters.seed)",
            attribute=str(attribute),
            value=attribute,
        )


def check_value(attribute: str, value: str) -> None:
    """Check that a scalar string value survives DIRAC's and DiracX's JDL readers unchanged.

    Args:
        attribute: the JDL attribute the value is for (``Arguments``, ``Executable``,
            ``StdOutput`` and ``StdError`` may hold commas; the others may not).
        value: the value, as it will be written between double quotes.

    Raises:
        UnsafeValueError: naming the first character that cannot be carried and the attribute.

    Usage: ``check_value("JobName", "scan-%n")``
    """
    pattern = _UNSAFE_NEVER_LIST if attribute in NEVER_LIST_ATTRIBUTES else _UNSAFE_SCALAR
    match = pattern.search(value) or ("%s" in value and _PERCENT_S.search(value)) or None
    if match is not None:
        raise _refuse(attribute, value, match, "in a value")
    if value != value.strip():
        edge = value[0] if value[0].isspace() else value[-1]
        raise UnsafeValueError(
            f"{attribute}: the value {value!r} starts or ends with whitespace ({edge!r}), which "
            "DIRAC's JDL readers may strip; remove it",
            attribute=attribute,
            value=value,
            character=edge,
        )


def check_item(attribute: str, item: str) -> None:
    """Check that one list item survives DIRAC's list readers unchanged.

    Raises:
        UnsafeValueError: the item is empty or holds a character a list item cannot carry.

    Usage: ``check_item("InputSandbox", "LFN:/vo/user/a.tgz")``
    """
    if not item:
        raise UnsafeValueError(
            f"{attribute}: an empty list item cannot be carried (DIRAC's list reader drops it)",
            attribute=attribute,
            value=item,
            character="",
        )
    match = _UNSAFE_ITEM.search(item) or ("%s" in item and _PERCENT_S.search(item)) or None
    if match is not None:
        raise _refuse(attribute, item, match, "in a list item")


def _render_value(name: str, value: object) -> str:
    if isinstance(value, str):
        check_value(name, value)
        return f'"{value}"'
    if isinstance(value, bool):
        raise JobDescriptionError(
            f"{name}: {value!r} is a bool; give a string or an int", attribute=name, value=value
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        if not value:
            raise JobDescriptionError(
                f"{name}: an empty list cannot be carried (DIRAC reads it as an empty string); "
                "omit the attribute instead",
                attribute=name,
                value=value,
            )
        for item in value:
            if not isinstance(item, str):
                raise JobDescriptionError(
                    f"{name}: list items must be strings, got {item!r}", attribute=name, value=value
                )
            check_item(name, item)
        return "{" + ", ".join(f'"{item}"' for item in value) + "}"
    raise JobDescriptionError(
        f"{name}: {value!r} is not a JDL value (str, int or tuple of str)",
        attribute=name,
        value=value,
    )


def render_jdl(attrs: Mapping[str, JDLValue], *, brackets: bool = True) -> str:
    """Write attributes as ClassAd JDL that DIRAC and DiracX read back exactly.

    Strings are written quoted, ints bare, tuples as ``{"a", "b"}``; attributes keep the mapping's
    order. Every name and value is checked first, so no value can change the JDL's structure.

    Args:
        attrs: attribute name -> value.
        brackets: wrap the result in ``[`` ``]`` (DIRAC's ``_toJDL`` omits them; both parse).

    Raises:
        JobDescriptionError: a bad name, an empty list, a value of another type.
        UnsafeValueError: a value holding a character DIRAC's JDL cannot carry.

    Usage: ``render_jdl({"JobName": "x", "CPUTime": 60})``
    """
    lines: list[str] = []
    for name, value in attrs.items():
        check_name(name)
        lines.append(f"    {name} = {_render_value(name, value)};\n")
    body = "".join(lines)
    return f"[\n{body}]" if brackets else f" \n{body}"


_WS = re.compile(r"\s*")
_NAME_AT = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*")


def _bare(token: str) -> JDLValue:
    token = token.strip().replace("\n", "")
    return int(token) if _INT.match(token) else token


def _nested_end(text: str, start: int) -> int:
    """Index just after the ``]`` that closes the ``[`` at ``start`` (quotes respected)."""
    depth = 0
    pos = start
    while pos < len(text):
        char = text[pos]
        if char == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                raise JDLSyntaxError("unterminated string in a nested JDL", position=pos)
            pos = close
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    raise JDLSyntaxError("unbalanced '[' in a nested JDL", position=start)


def _parse_list(text: str, pos: int) -> tuple[tuple[str, ...], int]:
    items: list[str] = []
    pos += 1  # past "{"
    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            raise JDLSyntaxError("unterminated list: '}' expected", position=pos)
        char = text[pos]
        if char == "}":
            return tuple(items), pos + 1
        if char == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                raise JDLSyntaxError("unterminated string in a list", position=pos)
            items.append(text[pos + 1 : close])
            pos = close + 1
        else:
            end = pos
            while end < len(text) and text[end] not in ",}":
                end += 1
            item = text[pos:end].strip().replace("\n", "")
            if item:
                items.append(item)
            pos = end
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] != "}":
            raise JDLSyntaxError(f"',' or '}}' expected in a list, got {text[pos]!r}", position=pos)


def parse_jdl(text: str) -> dict[str, JDLValue]:
    """Read ClassAd JDL, including what DIRAC itself writes, into a dict.

    Accepts an outer ``[ ]`` or none, quoted and bare values, lists in ``{ }`` with quoted or
    bare items, and nested ``[ ... ]`` sub-JDLs (kept as their raw text). Bare integers become
    ``int``; every other scalar is a ``str``; lists become tuples of ``str``. A later duplicate
    attribute replaces an earlier one, as in DIRAC.

    Raises:
        JDLSyntaxError: text that is not a JDL, with the offending position.

    Usage: ``parse_jdl('[ JobName = "x"; CPUTime = 5; ]')`` -> ``{"JobName": "x", "CPUTime": 5}``
    """
    if not isinstance(text, str):
        raise JDLSyntaxError(f"a JDL must be a str, not {type(text).__name__}")
    start = _WS.match(text).end()  # type: ignore[union-attr]
    end = len(text.rstrip())
    if start < end and text[start] == "[":
        if text[end - 1] != "]":
            raise JDLSyntaxError("a JDL that opens with '[' must close with ']'", position=end)
        start, end = start + 1, end - 1
    body = text[:end]
    fast = _parse_simple(body, start, end)
    return fast if fast is not None else _parse_general(body, start, end)


# One attribute in the forms aiodirac and DIRAC write: quoted, bare, or a list of quoted items.
_SIMPLE_ATTR = re.compile(
    r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?:"([^"]*)"|\{((?:\s*"[^"]*"\s*,)*\s*"[^"]*"\s*)\}'
    r'|([^;"\[\]{}]*?))\s*(?:;|\Z)'
)
_QUOTED = re.compile(r'"([^"]*)"')


def _parse_simple(body: str, start: int, end: int) -> dict[str, JDLValue] | None:
    """The common case in a few regex calls; None sends the text to the general reader."""
    result: dict[str, JDLValue] = {}
    match_at = _SIMPLE_ATTR.match
    pos = start
    while pos < end:
        match = match_at(body, pos)
        if match is None:
            return result if not body[pos:end].strip() else None
        name, quoted, items, bare = match.groups()
        if quoted is not None:
            result[name] = quoted
        elif items is not None:
            result[name] = tuple(_QUOTED.findall(items))
        else:
            token = bare.strip().replace("\n", "")
            if not token:
                return None
            result[name] = int(token) if _INT.match(token) else token
        pos = match.end()
    return result


def _parse_general(body: str, start: int, end: int) -> dict[str, JDLValue]:
    """Every form the reader accepts, nested JDLs and bare list items included."""
    result: dict[str, JDLValue] = {}
    pos = start
    while True:
        pos = _WS.match(body, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return result
        if body[pos] == ";":  # tolerate stray separators
            pos += 1
            continue
        match = _NAME_AT.match(body, pos)
        if match is None:
            raise JDLSyntaxError("attribute name followed by '=' expected", position=pos)
        name = match.group(1)
        pos = match.end()
        if pos >= end:
            raise JDLSyntaxError(f"no value for {name}", position=pos)
        char = body[pos]
        value: JDLValue
        if char == '"':
            close = body.find('"', pos + 1)
            if close < 0:
                raise JDLSyntaxError(f"unterminated string in {name}", position=pos)
            value = body[pos + 1 : close]
            pos = close + 1
        elif char == "{":
            value, pos = _parse_list(body, pos)
        elif char == "[":
            stop = _nested_end(body, pos)
            value = body[pos:stop]
            pos = stop
        else:
            stop = body.find(";", pos)
            stop = end if stop < 0 else stop
            value = _bare(body[pos:stop])
            if value == "":
                raise JDLSyntaxError(f"no value for {name}", position=pos)
            pos = stop
        pos = _WS.match(body, pos).end()  # type: ignore[union-attr]
        if pos < end:
            if body[pos] != ";":
                raise JDLSyntaxError(
                    f"';' expected after the value of {name}, got {body[pos]!r}", position=pos
                )
            pos += 1
        result[name] = value
