"""Strings the stores cannot hold are refused at the edge, with the field that held them.

- Anywhere (free text, feature values, keys, reasons): NUL (U+0000) and lone surrogates
  (U+D800-U+DFFF). PostgreSQL's text and jsonb refuse the first ("\\u0000 cannot be converted
  to text") and UTF-8 cannot encode the second, so one such string accepted here would later
  stop a checkpoint, an alerting state save or an audit append.
- In identifiers (model ids and versions, segment keys and values, class labels, tenant and
  CloudEvent ids, path and query parameters): every control character as well (C0, DEL, C1).
  They end up in keys, InfluxDB tags and log lines, where a newline or an escape sequence
  splits or forges a record.

JSON can carry NUL only as a `\\u` escape (raw control bytes are malformed JSON), and a
surrogate as an escape or as its raw 3-byte encoding, so `may_hold_unstorable(body)` is a
cheap, sound pre-filter: the walk over the parsed values runs only for bodies that have one.
`may_hold_control(body)` does the same for every control character (the short escapes \\n,
\\t..., \\u escapes, DEL and C1 raw), so events of a body without one skip the identifier
checks too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

__all__ = [
    "identifier_problem",
    "may_hold_control",
    "may_hold_unstorable",
    "refuse_unstorable_request",
    "unstorable",
]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# a \u escape of NUL or a surrogate, or a surrogate encoded raw (which orjson refuses, but
# the standard library's parser, FastAPI's, decodes with surrogatepass)
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\xed[\xa0-\xbf]")
# ...and of any control character: the short escapes, \u escapes of C0, DEL and C1, C1 raw
_CONTROL_ESCAPE = re.compile(
    rb"\\[bfnrt]|\\u(?:00[0189][0-9a-fA-F]|007[fF]|[dD][89a-fA-F][0-9a-fA-F]{2})"
    rb"|\x7f|\xc2[\x80-\x9f]|\xed[\xa0-\xbf]"
)


def _char(m: re.Match[str]) -> str:
    c = m.group()
    what = "NUL" if c == "\x00" else "a surrogate" if "\ud800" <= c <= "\udfff" else "control"
    return f"{what} character U+{ord(c):04X} at position {m.start()}"


def identifier_problem(field: str, value: str) -> str | None:
    """Why `value` may not be an identifier (None if it may)."""
    m = _CONTROL.search(value)
    return None if m is None else f"{field}: {_char(m)} is not allowed in an identifier"


def may_hold_unstorable(body: bytes) -> bool:
    """False only if no string parsed from this JSON body can hold NUL or a surrogate."""
    return _ESCAPE.search(body) is not None


def may_hold_control(body: bytes) -> bool:
    """False only if no string parsed from this JSON body can hold a control character (or
    NUL, or a surrogate): then neither identifiers nor free text need checking."""
    return _CONTROL_ESCAPE.search(body) is not None


def unstorable(value: Any, path: str = "event") -> str | None:
    """The first key or string inside `value` that holds NUL or a surrogate, as a reason."""
    if isinstance(value, str):
        m = _UNSTORABLE.search(value)
        return None if m is None else f"{path}: {_char(m)} is not allowed"
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and (m := _UNSTORABLE.search(k)) is not None:
                return f"{path}: key {k!r}: {_char(m)} is not allowed"
            if (why := unstorable(v, f"{path}.{k}")) is not None:
                return why
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (why := unstorable(v, f"{path}[{i}]")) is not None:
                return why
    return None


def _refuse(loc: tuple[str, ...], msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": None}])


async def refuse_unstorable_request(request: Request) -> None:
    """Router dependency: 422 for a path or query parameter with a control character, or a
    JSON body (of a route that has one) with NUL or a surrogate anywhere. Routes that read
    their body themselves (bounded, streamed) check their events in `Intake`."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (why := identifier_problem(name, value)):
            raise _refuse(("path", name), why)
    for name, value in request.query_params.multi_items():
        if why := identifier_problem(name, value):
            raise _refuse(("query", name), why)
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return
    body = await request.body()
    if not may_hold_unstorable(body):
        return
    try:
        parsed = json.loads(body)  # the parser FastAPI uses for the body
    except ValueError:
        return  # malformed: FastAPI answers it
    if why := unstorable(parsed, "body"):
        raise _refuse(("body",), why)
