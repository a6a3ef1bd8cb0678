"""Per-event and per-field limits (limits.py): what is refused, with which reason, and
that nothing is measured in a body too small to hold anything over a limit."""

from __future__ import annotations

import orjson
import pytest

from driftline_ingestion.http import parse_items
from driftline_ingestion.limits import TOO_LARGE, Refused, ScreenedItems, SizeLimits, event_problem

LIMITS = SizeLimits(event_bytes=2000, field_bytes=500)


def ev(note: str, **kw: object) -> dict[str, object]:
    return {"model_id": "m", "features": {"note": note}, **kw}


def test_events_and_fields_over_the_limits_are_refused_with_the_field_named() -> None:
    items = [ev("a"), ev("b" * 3000), ev("c" * 501), ev("d", segment={"k" * 600: "v"})]
    out = LIMITS.screen(items)
    assert isinstance(out, ScreenedItems)
    assert out[0] is items[0]
    reasons = [x.reason for x in out[1:] if isinstance(x, Refused)]
    assert len(reasons) == 3
    assert all(r.startswith(TOO_LARGE) for r in reasons)
    assert "per event" in reasons[0]
    assert "3,0" in reasons[0]
    assert reasons[1].startswith("too large: event.features.note is 501 bytes")
    assert "event.segment: a key is 600 bytes" in reasons[2]
    assert out[1].raw == orjson.dumps(items[1])  # what the DLQ gets


def test_field_sizes_are_utf8_bytes_not_characters() -> None:
    assert event_problem({"n": "é" * 250}, 500) is None  # 500 bytes
    assert event_problem({"n": "é" * 251}, 500) is not None  # 502 bytes
    assert event_problem({"n": ["x", "€" * 200]}, 500) == (
        "too large: event.n[1] is 600 bytes; the limit is 500 bytes per field "
        "(DRIFTLINE_INGESTION__MAX_FIELD_BYTES)"
    )


def test_a_small_body_is_not_measured_and_screening_happens_once() -> None:
    items = [ev("x" * 900)]  # over the field limit, but the body says it cannot be
    assert LIMITS.screen(items, body_bytes=400)[0] is items[0]
    once = LIMITS.screen([ev("x" * 900)])
    assert isinstance(once[0], Refused)
    assert LIMITS.screen(once) is once


def test_ndjson_lines_over_the_limit_are_never_parsed() -> None:
    body = b"\n".join([orjson.dumps(ev("a")), b"{" + b"x" * 3000, orjson.dumps(ev("b"))])
    items = parse_items(body, "application/x-ndjson", 100, LIMITS)
    assert [type(x).__name__ for x in items] == ["dict", "Refused", "dict"]
    assert items[1].reason.startswith("too large: line 2 is 3,001 bytes")


def test_one_json_object_over_the_limit_is_a_413_before_parsing() -> None:
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as e:
        parse_items(b"{" + b"x" * 3000, "application/json", 100, LIMITS)
    assert e.value.status_code == 413
    # an array is parsed (bounded by the body limit) and screened event by event
    items = parse_items(orjson.dumps([ev("a"), ev("b" * 3000)]), "application/json", 100, LIMITS)
    assert isinstance(items[1], Refused)
    assert items[0] == ev("a")
