"""InfluxDB line protocol written directly, for paths that write hundreds of points at a
time (a drift window's close): `line(measurement, tags, fields, ns)` is exactly what
influxdb-client's `Point(measurement)` with those tags, fields and time gives from
`to_line_protocol()` (tags and fields sorted by key; None tags and fields, empty tags and
non-finite floats left out; integers with an `i`; a line with no field is ""), without a
Point object and its method calls per point."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from numbers import Integral, Real

__all__ = ["line"]

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


@lru_cache(maxsize=1024)
def _measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


@lru_cache(maxsize=4096)
def _key(key: str) -> str:
    return key.translate(_KEY)


@lru_cache(maxsize=65536)
def _tag_value(value: str) -> str:
    v = value.translate(_KEY)
    return v + " " if v.endswith("\\") else v


def _field(key: str, value: object) -> str | None:
    if isinstance(value, bool):
        return f"{_key(key)}={'true' if value else 'false'}"
    if isinstance(value, Integral):  # numpy's integers too
        return f"{_key(key)}={value}i"
    if isinstance(value, Real):  # numpy's floats too
        if not math.isfinite(value):
            return None
        s = str(value)
        return f"{_key(key)}={s[:-2] if s.endswith('.0') else s}"
    if isinstance(value, str):
        return f'{_key(key)}="{value.translate(_STRING)}"'
    raise ValueError(f'Type: "{type(value)}" of field: "{key}" is not supported.')


def line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, object],
    ns: int | None = None,
) -> str:
    """One point in line protocol; `ns` is the time in nanoseconds (None: the server's)."""
    fs = [f for k, v in sorted(fields.items()) if v is not None and (f := _field(k, v))]
    if not fs:
        return ""
    ts = []
    for k, v in sorted(tags.items()):
        if v is not None and (key := _key(k)) and (value := _tag_value(str(v))):
            ts.append(f"{key}={value}")
    head = _measurement(measurement) + ("," + ",".join(ts) if ts else "")
    return f"{head} {','.join(fs)}" + ("" if ns is None else f" {ns}")
