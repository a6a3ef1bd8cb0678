"""The service's tight verification loop (`check_segment`) says exactly what the reference
`verify_segment` says, for every kind of tampering, every column changed and every place
a chain is cut; and joined, what `verify` of the whole chain says."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_audit.segments import VERIFY_COLUMNS, check_segment
from driftline_core.auditchain import (
    GENESIS,
    entry_hash,
    join,
    sign_checkpoint,
    verify,
    verify_segment,
)

KEY = Ed25519PrivateKey.from_private_bytes(b"s" * 32)
T = "acme"


class Row(tuple[Any, ...]):
    """What asyncpg gives: a record read by position and by name, its keys in select order."""

    names: tuple[str, ...] = VERIFY_COLUMNS

    def __getitem__(self, k: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self.names.index(k) if isinstance(k, str) else k)

    def keys(self) -> Iterator[str]:
        return iter(self.names)


def rows(es: list[dict[str, Any]]) -> list[Row]:
    return [Row(e[c] for c in VERIFY_COLUMNS) for e in es]


def chain(n: int) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {
            "tenant_id": T,
            "seq": seq,
            "source_id": f"00000000-0000-0000-0000-{seq:012d}",
            "source_topic": "driftline.audit.v1",
            "service": "test",
            "occurred_at": f"2026-11-01T00:00:{seq % 60:02d}.000000+00:00",
            "actor": "user:a",
            "action": "x.y",
            "resource_type": "r",
            "resource_id": str(seq),
            "outcome": "success",
            "payload": f"dl1.1.payload{seq}" if seq % 5 else "shredded",
            "key_version": 1 if seq % 5 else None,
            "prev_hash": prev,
        }
        e["hash"] = prev = entry_hash(e)
        out.append(e)
    return out


def checkpoint(e: dict[str, Any]) -> dict[str, Any]:
    cp = {"tenant_id": T, "seq": e["seq"], "hash": e["hash"], "created_at": "2026-11-02T00:00:00Z"}
    cp["signature"] = sign_checkpoint(KEY, cp)
    return cp


def _set(i: int, column: str, value: Any) -> Any:
    def change(es: list[dict[str, Any]]) -> None:
        es[i][column] = value

    return change


def _swapped(es: list[dict[str, Any]]) -> None:
    es[5], es[6] = {**es[6], "seq": 6}, {**es[5], "seq": 7}


def _reordered(es: list[dict[str, Any]]) -> None:  # read out of seq order
    es[8], es[9] = es[9], es[8]


def _inserted(es: list[dict[str, Any]]) -> None:
    forged = {**es[5], "resource_id": "forged"}
    forged["hash"] = entry_hash(forged)
    for e in es[5:]:
        e["seq"] += 1
    es.insert(5, forged)


def _rehashed(es: list[dict[str, Any]]) -> None:  # changed and its own hash recomputed
    es[6]["actor"] = "user:mallory"
    es[6]["hash"] = entry_hash(es[6])


TAMPERING = {
    "none": lambda es: None,
    "deleted": lambda es: es.__delitem__(6),
    "swapped": _swapped,
    "reordered": _reordered,
    "inserted": _inserted,
    "rehashed": _rehashed,
    "truncated": lambda es: es.__delitem__(slice(14, None)),
    "duplicated": lambda es: es.insert(7, dict(es[6])),
    **{
        f"{c} changed": _set(6, c, v)
        for c, v in {
            "payload": "dl1.1.forged",
            "seq": 70,
            "prev_hash": "f" * 64,
            "hash": "e" * 64,
            "tenant_id": "other",
            "key_version": 2,
            "occurred_at": "2026-11-01T00:00:07.000001+00:00",
            "source_id": "00000000-0000-0000-0000-000000000099",
        }.items()
    },
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_the_tight_loop_says_what_the_reference_says(kind: str) -> None:
    original = chain(20)
    cps = [checkpoint(original[9]), checkpoint(original[17])]
    es = copy.deepcopy(original)
    TAMPERING[kind](es)
    whole = verify(es, cps, KEY.public_key())
    assert whole.ok == (kind == "none"), whole
    want = sorted({c["seq"] for c in cps})
    assert check_segment(T, rows(es), want) == verify_segment(T, es, want)
    for a, b in itertools.combinations(range(1, len(es)), 2):  # every cut in three
        parts = [es[:a], es[a:b], es[b:]]
        mine = [check_segment(T, rows(p), want) for p in parts]
        assert mine == [verify_segment(T, p, want) for p in parts], (kind, a, b)
        if kind != "tenant_id changed":  # (a row of another chain: never read, as the
            # service reads one tenant's rows; `join` has no place for it in the heads)
            assert join(mine, cps, KEY.public_key()).as_dict() == whole.as_dict(), (kind, a, b)


def test_rows_read_in_another_column_order_are_verified_by_name() -> None:
    es = chain(6)
    es[3]["payload"] = "dl1.1.forged"

    class Named(Row):
        names = tuple(reversed(VERIFY_COLUMNS))

    named = [Named(e[c] for c in Named.names) for e in es]
    got = check_segment(T, named, [6])
    assert got == verify_segment(T, es, [6])
    assert got.first_break is not None
    assert got.first_break.seq == 4
    assert check_segment(T, []) == verify_segment(T, [])
