"""Verifying a chain's rows in one tight loop. Rows are read with their hashed fields in the
order of the fields' sorted names, then the stored hash (`VERIFY_SELECT`), so a row's
canonical JSON is `orjson.dumps(dict(zip(names, row)))`: what `entry_hash` computes, with
no lookup by name and no dict per field. A segment whose rows all link and hash is
answered here; any other is handed to `verify_segment` itself, which names the first
break, so the verdict is always the reference's (`join` of segments is `verify` of the
whole, decision 51)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from driftline_core.auditchain import ENTRY_FIELDS, Segment, verify_segment

__all__ = ["VERIFY_COLUMNS", "VERIFY_SELECT", "check_segment"]

_NAMES = tuple(sorted(ENTRY_FIELDS))
VERIFY_COLUMNS = (*_NAMES, "hash")
VERIFY_SELECT = ", ".join(
    "source_id::text AS source_id" if c == "source_id" else c for c in VERIFY_COLUMNS
)
_SEQ = VERIFY_COLUMNS.index("seq")
_PREV = VERIFY_COLUMNS.index("prev_hash")
_TENANT = VERIFY_COLUMNS.index("tenant_id")
_HASH = VERIFY_COLUMNS.index("hash")


def check_segment(tenant_id: str, rows: Sequence[Any], want: Collection[int] = ()) -> Segment:
    """`verify_segment(tenant_id, rows, want)`, for rows (asyncpg records, in seq order)
    read with VERIFY_SELECT."""
    if not rows:
        return Segment(tenant_id, 0, None, None, None, {})
    first = rows[0]
    if tuple(first.keys()) != VERIFY_COLUMNS:  # read another way: the reference, by name
        return verify_segment(tenant_id, rows, want)
    sha256, dumps, names = hashlib.sha256, orjson.dumps, _NAMES
    lo = seq = first[_SEQ]
    prev = first[_PREV]
    for r in rows:
        if r[_SEQ] != seq or r[_PREV] != prev or r[_TENANT] != tenant_id:
            return verify_segment(tenant_id, rows, want)
        prev = r[_HASH]
        if sha256(dumps(dict(zip(names, r, strict=False)))).hexdigest() != prev:
            return verify_segment(tenant_id, rows, want)
        seq += 1
    hi = seq - 1
    return Segment(
        tenant_id,
        len(rows),
        (lo, str(first[_PREV])),
        (hi, prev),
        None,
        {s: rows[s - lo][_HASH] for s in want if lo <= s <= hi},
    )
