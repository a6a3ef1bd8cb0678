"""The service's tight verification loop (`check_segment`) says exactly what the reference
`verify_segment` says, for every kind of tampering, every column changed and every place
a chain is cut; and joined, what `verify` of the whole chain says."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import driftline_audit.trail as trail_module
from driftline_audit.segments import VERIFY_COLUMNS, check_segment
from driftline_audit.trail import Trail
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


# `Trail.verify_range` reads a chain in chunks, each chunk's query sent before the chunk
# before it is hashed (PostgreSQL produces the one while the service hashes the other),
# and its verdict is the one of reading it in one piece.


class Conn:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def fetch(self, sql: str, tenant: str, lo: int, hi: int) -> list[Any]:
        self.pool.log.append(("sent", lo))
        for _ in range(3):  # the rows take a few turns of the loop to arrive
            await asyncio.sleep(0)
        self.pool.log.append(("arrived", lo))
        return [r for r in self.pool.rows if lo <= r[self.pool.seq] <= hi]


class Pool:
    """The queries `verify_range` makes, answered from a chain in memory."""

    def __init__(self, es: list[dict[str, Any]]) -> None:
        self.rows = rows(es)
        self.seq = VERIFY_COLUMNS.index("seq")
        self.last = len(es)
        self.log: list[tuple[str, int]] = []
        self.open = 0

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any]:
        return {"archived": None, "last": self.last}

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return []  # no checkpoints

    async def fetchval(self, sql: str, *args: Any) -> Any:
        raise AssertionError("from_seq is 1: no hash before the range is read")

    @asynccontextmanager
    async def acquire(self) -> Any:
        self.open += 1
        try:
            yield Conn(self)
        finally:
            self.open -= 1


class Db:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Pool:
    """A chain of 12 records; each chunk's hashing logged as ("hashed", its first seq)."""
    pool = Pool(chain(12))
    real = trail_module.check_segment

    def check(tenant: str, chunk: Any, want: Any = ()) -> Any:
        pool.log.append(("hashed", chunk[0][pool.seq] if chunk else 0))
        return real(tenant, chunk, want)

    monkeypatch.setattr(trail_module, "check_segment", check)
    return pool


def trail(pool: Pool, chunk: int) -> Trail:
    return Trail(Db(pool), None, KEY, "k", verify_chunk=chunk)  # type: ignore[arg-type]


async def test_each_chunk_is_requested_before_the_one_before_is_hashed(pool: Pool) -> None:
    assert [r[pool.seq] for r in pool.rows] == list(range(1, 13))
    out = await trail(pool, 5).verify_range("acme", authenticate=False)
    assert out["ok"], out
    assert out["records"] == 12
    log = pool.log
    assert [lo for what, lo in log if what == "hashed"] == [1, 6, 11]
    for nxt, cur in ((6, 1), (11, 6)):
        assert log.index(("sent", nxt)) < log.index(("hashed", cur)), log
    assert pool.open == 0  # every connection back in the pool


async def test_a_break_in_a_later_chunk_is_named_as_read_in_one_piece(pool: Pool) -> None:
    es = chain(12)
    es[8]["action"] = "x.z"  # seq 9, in the second chunk of 5
    pool.rows = rows(es)
    chunked = await trail(pool, 5).verify_range("acme", authenticate=False)
    whole = await trail(pool, 100).verify_range("acme", authenticate=False)
    assert not chunked["ok"]
    assert chunked["first_break"] == whole["first_break"]
    assert chunked["first_break"]["seq"] == 9
