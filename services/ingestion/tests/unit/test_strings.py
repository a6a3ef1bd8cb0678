"""The string guard: which characters are refused where, and the body pre-filter is sound
(no body it lets through can hold NUL or a surrogate once parsed)."""

from __future__ import annotations

import json

import orjson
import pytest

from driftline_ingestion.strings import (
    identifier_problem,
    may_hold_control,
    may_hold_unstorable,
    unstorable,
)


@pytest.mark.parametrize("c", ["\x00", "\x01", "\n", "\t", "\x1b", "\x7f", "\x85", "\ud800"])
def test_identifiers_refuse_every_control_character_naming_it(c):
    why = identifier_problem("model_version", f"1{c}x")
    assert why is not None
    assert why.startswith("model_version: ")
    assert f"U+{ord(c):04X} at position 1" in why


@pytest.mark.parametrize("ok", ["1", "v2.3-rc1", "région-nord", "模型", "a b", "x/y:z"])
def test_identifiers_accept_printable_text(ok):
    assert identifier_problem("model_id", ok) is None


def test_free_text_refuses_nul_and_surrogates_anywhere_but_keeps_newlines():
    assert unstorable({"features": {"note": "line one\nline two\ttab"}}) is None
    assert unstorable({"features": {"note": "a\x00b"}}) == (
        "event.features.note: NUL character U+0000 at position 1 is not allowed"
    )
    assert "key 'a\\x00'" in str(unstorable({"features": {"a\x00": 1}}))
    assert unstorable({"x": [1, {"y": ["ok", "\udc80"]}]}) == (
        "event.x[1].y[1]: a surrogate character U+DC80 at position 0 is not allowed"
    )


@pytest.mark.parametrize("code", [0x0000, 0xD800, 0xDBFF, 0xDC00, 0xDFFF])
def test_every_json_encoding_of_an_unstorable_string_trips_the_pre_filter(code):
    c = chr(code)
    value = [{"model_version": f"1{c}x", "features": {}}]
    body = json.dumps(value).encode()
    assert may_hold_unstorable(body)
    assert may_hold_unstorable(body.replace(b"\\ud", b"\\uD"))  # upper-case hex digits
    assert json.loads(body) == value  # what the pre-filter saw does parse to the bad string
    # written raw (not escaped): orjson refuses the bytes, but the standard library's
    # parser (FastAPI's) decodes them with surrogatepass, so the pre-filter catches them too
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert may_hold_unstorable(raw)
    if c != "\x00":  # json.dumps always escapes NUL
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        assert json.loads(raw) == value


def test_orjson_output_with_nul_trips_the_pre_filter_and_plain_bodies_do_not():
    assert may_hold_unstorable(orjson.dumps({"v": "a\x00"}))
    assert not may_hold_unstorable(orjson.dumps([{"v": "1", "t": "a\nb", "u": "é"}]))
    assert not may_hold_unstorable(json.dumps({"u": "é€"}).encode())  # \u00e9, \u20ac


def test_a_valid_surrogate_pair_is_not_refused():
    body = json.dumps({"v": "😀"}).encode()  # written as \ud83d\ude00
    assert may_hold_unstorable(body)  # the pre-filter only narrows the walk...
    assert unstorable(json.loads(body)) is None  # ...which finds nothing wrong
    assert unstorable(orjson.loads(body)) is None


CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0xD800, 0xDBFF, 0xDC00, 0xDFFF]


@pytest.mark.parametrize("code", CONTROLS)
def test_the_control_pre_filter_is_tripped_by_every_encoding_of_every_control_character(code):
    c = chr(code)
    value = {"model_version": f"v{c}1"}
    encodings = [
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    ]
    if not 0xD800 <= code <= 0xDFFF:
        encodings.append(orjson.dumps(value))
    for body in encodings:
        assert may_hold_control(body), body
    assert identifier_problem("model_version", value["model_version"]) is not None


def test_the_control_pre_filter_lets_ordinary_bodies_through():
    body = orjson.dumps([{"model_id": "credit", "model_version": "1", "features": {"x": "é"}}])
    assert not may_hold_control(body)
    assert not may_hold_control(json.dumps({"x": "région 模型 \u00a0"}).encode())
