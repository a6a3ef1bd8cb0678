"""Verifying a chain in segments (in parallel processes) and joining them says exactly what
verifying it whole says: the same verdict, first break, reason, heads and signed coverage,
for every way of tampering and every place the chain is cut."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_core.auditchain import (
    GENESIS,
    entry_hash,
    join,
    sign_checkpoint,
    verify,
    verify_segment,
)

KEY = Ed25519PrivateKey.from_private_bytes(b"c" * 32)
T = "acme"


def chain(n: int) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {
            "tenant_id": T,
            "seq": seq,
            "source_id": f"00000000-0000-0000-0000-{seq:012d}",
            "source_topic": "driftline.audit.v1",
            "service": "test",
            "occurred_at": f"2026-11-01T00:00:{seq % 60:02d}Z",
            "actor": "user:a",
            "action": "x.y",
            "resource_type": "r",
            "resource_id": str(seq),
            "outcome": "success",
            "payload": f"dl1.1.payload{seq}",
            "key_version": 1,
            "prev_hash": prev,
        }
        e["hash"] = prev = entry_hash(e)
        out.append(e)
    return out


def checkpoint(e: dict[str, Any]) -> dict[str, Any]:
    cp = {"tenant_id": T, "seq": e["seq"], "hash": e["hash"], "created_at": "2026-11-02T00:00:00Z"}
    cp["signature"] = sign_checkpoint(KEY, cp)
    return cp


def _changed(es: list[dict[str, Any]]) -> None:
    es[6]["payload"] = "dl1.1.forged"


def _deleted(es: list[dict[str, Any]]) -> None:
    del es[6]


def _swapped(es: list[dict[str, Any]]) -> None:
    es[5], es[6] = {**es[6], "seq": 6}, {**es[5], "seq": 7}


def _inserted(es: list[dict[str, Any]]) -> None:
    forged = {**es[5], "resource_id": "forged"}
    forged["hash"] = entry_hash(forged)
    for e in es[5:]:
        e["seq"] += 1
    es.insert(5, forged)


def _truncated(es: list[dict[str, Any]]) -> None:
    del es[14:]


TAMPERING = {
    "none": lambda es: None,
    "changed": _changed,
    "deleted": _deleted,
    "swapped": _swapped,
    "inserted": _inserted,
    "truncated": _truncated,
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_segments_joined_say_what_the_whole_chain_says(kind: str) -> None:
    original = chain(20)
    cps = [checkpoint(original[9]), checkpoint(original[17])]
    es = copy.deepcopy(original)
    TAMPERING[kind](es)
    whole = verify(es, cps, KEY.public_key())
    assert whole.ok == (kind == "none")
    want = {c["seq"] for c in cps}
    cuts = range(1, len(es))
    for a, b in itertools.combinations(cuts, 2):  # every way of cutting it in three
        parts = [es[:a], es[a:b], es[b:]]
        joined = join([verify_segment(T, p, want) for p in parts], cps, KEY.public_key())
        assert joined.as_dict() == whole.as_dict(), (kind, a, b)


def test_a_range_joins_from_its_start_and_empty_segments_are_skipped() -> None:
    es = chain(12)
    start = {T: (4, es[3]["hash"])}
    whole = verify(es[4:], start=start)
    parts = [verify_segment(T, es[4:8]), verify_segment(T, []), verify_segment(T, es[8:])]
    assert join(parts, start=start).as_dict() == whole.as_dict()
    assert whole.ok
    wrong = {T: (4, "f" * 64)}
    assert join(parts, start=wrong).as_dict() == verify(es[4:], start=wrong).as_dict()
    assert not verify(es[4:], start=wrong).ok
