"""The Redis adapter against the real server: commands, expiry and a pipeline."""

from __future__ import annotations

from driftline_core.redis_store import RedisStore


async def test_redis_round_trip_with_expiry_and_atomic_pipeline(stack, unique, wait_until):
    store = RedisStore(stack.redis)
    await store.start()
    key = unique("test:key")
    try:
        await store.ping()
        await store.client.set(key, b"v1", px=300)
        assert await store.client.get(key) == b"v1"

        async def expired() -> bool:
            return await store.client.get(key) is None

        await wait_until(expired, timeout=5)

        async with store.client.pipeline(transaction=True) as pipe:
            pipe.incrby(key, 5).incrby(key, 7).expire(key, 60)
            incr1, incr2, expire_ok = await pipe.execute()
        assert (incr1, incr2, expire_ok) == (5, 12, True)
        assert 0 < await store.client.ttl(key) <= 60
    finally:
        await store.client.delete(key)
        await store.stop()
