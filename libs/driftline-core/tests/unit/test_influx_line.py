"""`line()` writes what influxdb-client's `Point.to_line_protocol()` writes for the same
point, byte for byte: the client's encoder is the independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point

from driftline_core.influx.line import line

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
special = st.sampled_from(["", " ", ",", "=", "\\", '"', "a b", "x,y=z", "tail\\", "\n\t\r", "é"])
names = st.one_of(text, special)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    names,
)


def point(measurement: str, tags: dict, fields: dict, ns: int | None) -> str:
    p = Point(measurement)
    for k, v in tags.items():
        p = p.tag(k, v)
    for k, v in fields.items():
        p = p.field(k, v)
    if ns is not None:
        p = p.time(ns)
    return p.to_line_protocol()  # type: ignore[no-any-return]


@settings(max_examples=500, deadline=None)
@given(
    measurement=st.one_of(st.sampled_from(["drift_feature", "feature_bins", "a b,c"]), text),
    tags=st.dictionaries(names, st.one_of(st.none(), names), max_size=6),
    fields=st.dictionaries(names, values, max_size=6),
    ns=st.one_of(st.none(), st.integers(0, 2**62)),
)
def test_a_line_is_what_the_client_writes_for_the_same_point(measurement, tags, fields, ns):
    if measurement.startswith("#"):  # the client warns: InfluxDB reads it as a comment
        measurement = "m" + measurement
    assert line(measurement, tags, fields, ns) == point(measurement, tags, fields, ns)


def test_numpy_scalars_and_whole_floats_as_the_client_writes_them():
    fields = {"a": np.float64(0.25), "b": np.int64(7), "c": 3.0, "d": float("nan"), "e": True}
    tags = {"tenant": "acme", "model": "m 1", "segment": None, "bin": "b01"}
    got = line("drift_window", tags, fields, 1_700_000_000_000_000_000)
    assert got == point("drift_window", tags, fields, 1_700_000_000_000_000_000)
    want = "drift_window,bin=b01,model=m\\ 1,tenant=acme a=0.25,b=7i,c=3,e=true 1700000000000000000"
    assert got == want


def test_a_point_without_a_field_is_no_line_and_an_unknown_type_is_refused():
    assert line("m", {"t": "v"}, {"f": None, "g": float("inf")}) == ""
    with pytest.raises(ValueError, match="not supported"):
        line("m", {}, {"f": object()})
