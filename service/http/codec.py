"""Message codecs: the canonical proto3 JSON mapping and the binary format, strict on input.

The JSON codec refuses unknown fields (a misspelt field silently ignored would score a route
the caller did not describe) and names the offending field in a ``google.rpc.BadRequest``, as
validation does; a body that is not JSON, not an object or not UTF-8 is ``invalid_argument`` on
``(body)``. Answers are compact JSON with lowerCamelCase names (what curl users and browsers read).
"""

from __future__ import annotations

import logging
import re
from typing import TypeVar

from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.errors import ConnectError
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from service.http.errors import invalid

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

BODY = "(body)"
# 'Message type "routerisk.v1.LatLng" has no field named "zzz" at "ScoreRouteRequest.route.line.points[0]".'
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]*)" at "([^"]*)"')
# '... Couldn't parse float: abc at ScoreRouteRequest.route.line.points[0].latitude.'
_AT_PATH = re.compile(r" at ([A-Za-z_][\w.\[\]]*?)\.*$")


def error_field(message: str) -> tuple[str, str]:
    """The request field a JSON parse error is about (the path below the request message, as
    field violations name them) and a one-line description."""
    first = message.splitlines()[0] if message else ""
    unknown = _UNKNOWN_FIELD.search(first)
    if unknown is not None:
        name, at = unknown.groups()
        return _below_root(at, name), f'unknown field "{name}"'
    located = _AT_PATH.search(first)
    if located is not None:
        description = first[: located.start()].rsplit("field: ", 1)[-1]
        return _below_root(located.group(1)), description
    return BODY, first.rsplit("field: ", 1)[-1]


def _below_root(path: str, leaf: str = "") -> str:
    """``ScoreRouteRequest.route.line`` (+ ``zzz``) → ``route.line.zzz``; the root alone → the leaf."""
    _, _, below = path.partition(".")
    return ".".join(part for part in (below, leaf) if part) or BODY


class StrictJSONCodec(Codec[Message, Message]):
    """proto3 JSON in and out; unknown fields and malformed bodies refused with the field named."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        try:
            return json_format.MessageToJson(message, indent=None).encode()
        except json_format.Error:  # a time outside what proto3 JSON can write (binary carries it)
            log.error("answer has no proto3 JSON form", extra={"message_type": message.DESCRIPTOR.full_name})
            raise ConnectError(Code.INTERNAL, "the answer has no JSON form; ask in application/proto") from None

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        message = message_class()
        if not bytes(data[:64]).lstrip().startswith(b"{"):
            raise invalid(BODY, "the body must be a JSON object (the request message in proto3 JSON)")
        try:
            json_format.Parse(bytes(data).decode("utf-8"), message, ignore_unknown_fields=False)
        except UnicodeDecodeError:
            raise invalid(BODY, "the body is not UTF-8") from None
        except json_format.ParseError as exc:
            raise invalid(*error_field(str(exc))) from None
        except (ValueError, TypeError, RecursionError) as exc:  # what json and the parser raise on hostile input
            raise invalid(BODY, f"not a valid {message_class.DESCRIPTOR.name}: {type(exc).__name__}") from None
        return message


class StrictBinaryCodec(Codec[Message, Message]):
    """The binary format; a body that does not parse is ``invalid_argument`` on ``(body)``."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        try:
            return message_class.FromString(bytes(data))
        except (DecodeError, RecursionError):
            raise invalid(BODY, f"not a valid binary {message_class.DESCRIPTOR.name}") from None


CODECS: list[Codec[Message, Message]] = [StrictBinaryCodec(), StrictJSONCodec()]
