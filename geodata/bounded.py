"""Bounded parsing of a user's text: sizes are checked before anything is allocated for it.

* JSON (:func:`load_json`): the text's length, then — in one cheap scan that builds no Python
  objects — how deeply it nests and how many values it holds (``[``, ``{`` and ``,`` outside
  strings), before :func:`json.loads` runs. Deep nesting is refused as a caller's mistake, never a
  ``RecursionError``; a document of many tiny values cannot make millions of Python objects.
* CSV (:func:`field_limit`): the longest cell the :mod:`csv` reader keeps before it refuses the row.
* XML (:func:`parse_xml`): the length, then expat driven by hand: a DOCTYPE or ENTITY
  declaration is refused in whatever encoding it is written (no entity expansion, no external
  entities), and elements nested deeper than a limit are refused while parsing.

Every refusal is an :class:`~geodata.errors.InputError` (or the subclass the caller names) with a
:class:`~geodata.errors.Violation` on the caller's field.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.parsers import expat

import numpy as np

from geodata.errors import InputError, Violation

# the deepest JSON or XML a user's document may nest (a GeoJSON FeatureCollection route is 6 deep,
# a CBP feed record 4); far below Python's recursion limit, wherever the parser is called from
MAX_DEPTH = 64

# a JSON string, escapes included (unrolled so that it never backtracks)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_STRUCTURE = re.compile(r"[^\[\]{},]+")
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))


def size_text(length: int) -> str:
    """``1.5 MiB``, ``740 KiB``, ``12 bytes``."""
    if length >= 1 << 20:
        return f"{length / (1 << 20):.1f} MiB"
    if length >= 1 << 10:
        return f"{length / (1 << 10):.0f} KiB"
    return f"{length} bytes"


def check_size(text: str | bytes, field: str, max_chars: int, error: type[InputError] = InputError) -> None:
    """Refuse ``text`` longer than ``max_chars`` (characters, or bytes for bytes)."""
    if len(text) > max_chars:
        unit = "bytes" if isinstance(text, bytes) else "characters"
        raise error(Violation(field, f"is {len(text)} {unit} long, more than the limit of {max_chars}"))


def json_shape(text: str) -> tuple[int, int]:
    """(deepest nesting, structural characters) of JSON text, strings left out, without parsing it.

    Structural characters are ``[ ] { } ,`` outside strings: an upper bound (plus one) on the
    values the document holds. Exact for valid JSON; for text that is not JSON the figures are
    whatever its brackets say (:func:`json.loads` then refuses it).
    """
    marks = _structure(text)
    return _depth(marks), len(marks)


def _structure(text: str) -> str:
    """The ``[ ] { } ,`` of JSON text that are outside its strings."""
    return _NOT_STRUCTURE.sub("", _STRING.sub("", text))


def _depth(marks: str) -> int:
    if not marks:
        return 0
    codes = np.frombuffer(marks.encode("ascii"), dtype=np.uint8)
    step = np.isin(codes, _OPEN).astype(np.int32) - np.isin(codes, _CLOSE).astype(np.int32)
    return max(int(np.cumsum(step).max()), 0)


def load_json(
    text: str,
    field: str,
    *,
    max_chars: int,
    max_items: int,
    max_depth: int = MAX_DEPTH,
    error: type[InputError] = InputError,
    what: str = "JSON",
) -> Any:
    """:func:`json.loads` of a user's text once its size, value count and depth are within limits."""
    check_size(text, field, max_chars, error)
    marks = _structure(text)
    if len(marks) > max_items:
        raise error(
            Violation(field, f"{what} has {len(marks)} brackets and commas, more than the limit of {max_items}")
        )
    depth = _depth(marks)
    if depth > max_depth:
        raise error(Violation(field, f"{what} nests {depth} levels deep, more than the limit of {max_depth}"))
    try:
        return json.loads(text)
    except RecursionError:  # unreachable after the scan; kept so that no input can be INTERNAL
        raise error(Violation(field, f"{what} nests more than {max_depth} levels deep")) from None
    except (TypeError, ValueError) as exc:
        raise error(Violation(field, f"is not valid JSON: {exc}")) from None


@contextmanager
def field_limit(max_chars: int) -> Iterator[None]:
    """Within the block, :mod:`csv` readers refuse a cell over ``max_chars`` (``csv.Error``).

    The limit is the process's (``csv.field_size_limit``): set for the block, then restored.
    """
    previous = csv.field_size_limit(max_chars)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class _Refused(Exception):
    """Raised from inside an expat handler to stop the parse."""


def parse_xml(
    source: str | bytes,
    field: str,
    *,
    max_chars: int,
    max_depth: int = MAX_DEPTH,
    error: type[InputError] = InputError,
) -> ET.Element:
    """An :class:`xml.etree.ElementTree.Element` tree, parsed by expat with DTDs refused and a depth limit.

    Tags keep ElementTree's ``{namespace}local`` form. A document that is not well-formed is
    refused with the reason, line and column.
    """
    check_size(source, field, max_chars, error)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    builder = ET.TreeBuilder()
    depth = 0

    def tag_of(name: str) -> str:
        return "{" + name if "}" in name else name

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise _Refused(f"XML nests more than {max_depth} elements deep")
        builder.start(tag_of(name), attributes)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag_of(name))

    def doctype(*_: object) -> None:
        # entity expansion is the classic XML bomb; no feed we read declares a DTD
        raise _Refused("XML with a DOCTYPE or ENTITY declaration is not accepted")

    def external_entity(*_: object) -> int:
        raise _Refused("XML with a DOCTYPE or ENTITY declaration is not accepted")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.ExternalEntityRefHandler = external_entity
    try:
        parser.Parse(source, True)
    except _Refused as exc:
        raise error(Violation(field, str(exc))) from None
    except expat.ExpatError as exc:
        reason = expat.errors.messages.get(exc.code, "error")
        raise error(
            Violation(field, f"not well-formed XML: {reason} at line {exc.lineno} column {exc.offset}")
        ) from None
    except (ValueError, LookupError) as exc:  # unknown or mismatched declared encoding
        raise error(Violation(field, f"cannot read the XML: {exc}")) from None
    return builder.close()
