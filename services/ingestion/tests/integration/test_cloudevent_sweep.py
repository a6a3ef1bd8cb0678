"""The expiry sweep of waiting CloudEvent halves (CloudEventJoins) on a real Redis database
of its own: two sweepers at once claim each expired half once; a DLQ write that fails
leaves the halves claimed until their lease runs out, then they are dead-lettered; a half
stored again under a claimed key is pending anew (its mate joins it) and the claim's
settlement leaves it."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
import redis.asyncio as aioredis

from driftline_core.errors import UnavailableError
from driftline_core.events import DeadLetter, decode
from driftline_ingestion.cloudevents import CLAIMED, PENDING, CloudEventJoins


class Producer:
    """Records the dead letters it is given; fails the first `fail` sends."""

    max_record_bytes = 256 * 1024 - 512

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.letters = fail, []

    async def send_records(self, topic: str, records: Any, headers: Any = None) -> Any:
        assert topic == "driftline.dlq.v1"
        if self.fail:
            self.fail -= 1
            raise UnavailableError("Kafka away")
        self.letters += [decode(DeadLetter, v) for _, v in records]
        return [(0, i) for i in range(len(records))]


@pytest.fixture
async def db(stack):
    url = urlunsplit(urlsplit(stack.redis.url)._replace(path="/12"))
    r = aioredis.Redis.from_url(url)
    await r.delete(PENDING, CLAIMED)
    yield r
    await r.delete(PENDING, CLAIMED)
    await r.aclose()


def half(i: int, kind: str = "request") -> tuple[str, str, bytes]:
    base = f"dl:ce:tsweep:m:pair-{i}"
    other = "response" if kind == "request" else "request"
    body = {"kind": kind, "data": {"instances": [[i]]}, "ce": {"type": "x"}, "model": "m"}
    return f"{base}:{kind}", f"{base}:{other}", orjson.dumps({**body, "pair": f"pair-{i}"})


async def test_two_sweepers_at_once_dead_letter_each_expired_half_once(db):
    p1, p2 = Producer(), Producer()
    a = CloudEventJoins(db, p1, None, 0.5, batch=7)  # type: ignore[arg-type]
    b = CloudEventJoins(db, p2, None, 0.5, batch=7)  # type: ignore[arg-type]
    for i in range(50):
        assert await (a if i % 2 else b).offer(*half(i)) is None
    later = time.time() + 5

    async def drain(j: CloudEventJoins) -> None:
        while await j.sweep(later):
            pass

    await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    pairs = [orjson.loads(d.payload)["pair"] for d in p1.letters + p2.letters]
    assert sorted(pairs) == sorted(f"pair-{i}" for i in range(50))  # each exactly once
    assert p1.letters  # both took part
    assert p2.letters
    assert await db.zcard(PENDING) == 0
    assert await db.zcard(CLAIMED) == 0
    assert await db.exists(*[half(i)[0] for i in range(50)]) == 0
    assert all(d.error_type == "unmatched_cloudevent" for d in p1.letters + p2.letters)
    assert sum(a.unmatched.labels("request", "expired")._value.get() for a in (a, b)) == 50


async def test_a_failed_dlq_write_keeps_the_halves_until_their_lease_runs_out(db):
    producer = Producer(fail=1)
    j = CloudEventJoins(db, producer, None, 0.5, lease_s=30)  # type: ignore[arg-type]
    await j.offer(*half(1))
    await j.offer(*half(2, "response"))
    now = time.time() + 2
    with pytest.raises(UnavailableError):
        await j.sweep(now)
    assert await db.zcard(CLAIMED) == 2  # claimed, not lost
    assert await j.sweep(now + 1) == 0  # the lease holds them
    assert await j.sweep(now + 31) == 2  # the lease ran out: claimed again, dead-lettered
    assert sorted(orjson.loads(d.payload)["kind"] for d in producer.letters) == [
        "request",
        "response",
    ]
    assert "got no matching response within 0.5 s" in producer.letters[0].reason or (
        "got no matching response within 0.5 s" in producer.letters[1].reason
    )
    assert await db.zcard(CLAIMED) == 0


async def test_a_half_logged_again_while_claimed_is_pending_anew_and_survives_the_claim(db):
    producer = Producer()
    j = CloudEventJoins(db, producer, None, 0.2)  # type: ignore[arg-type]
    key, other, value = half(3)
    await j.offer(key, other, value)
    await asyncio.sleep(0.3)
    # claimed by a sweep (the lease holds it), then the same request is logged again
    got = await j._claim(keys=[PENDING, CLAIMED], args=[time.time(), time.time() + 30, 10])
    assert got[0].decode() == key
    assert await j.offer(key, other, value) is None  # stored anew: pending again
    # the late response does not join the claimed copy; it joins the new one
    okey, _, ovalue = half(3, "response")
    assert await j.offer(okey, key, ovalue) == value
    await j._settle(keys=[PENDING, CLAIMED, key], args=[])
    assert await db.zcard(CLAIMED) == 0
