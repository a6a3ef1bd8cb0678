"""Per-key token bucket in Redis (one atomic script, Redis's own clock): a request costs
one token per event. Losing Redis state only refills buckets early."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import HTTPException

__all__ = ["RateLimiter", "Verdict", "enforce"]

_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local ok = 0
if tokens >= cost then
  tokens = tokens - cost
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
if ok == 1 then return {1, '0'} end
return {0, tostring((cost - tokens) / rate)}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float


class RateLimiter:
    def __init__(self, client: aioredis.Redis, rate_per_s: float, burst: int) -> None:
        self._script = client.register_script(_SCRIPT)
        self.rate = rate_per_s
        self.burst = burst

    async def take(self, key: str, cost: int) -> Verdict:
        allowed, wait = await self._script(
            keys=[f"dl:rl:{key}"], args=[self.rate, self.burst, cost]
        )
        return Verdict(bool(int(allowed)), float(wait))


async def enforce(limiter: RateLimiter, key_id: str, cost: int) -> None:
    """Take `cost` tokens or refuse: 413 if the batch can never fit, 429 with Retry-After."""
    if cost > limiter.burst:
        raise HTTPException(
            413,
            f"{cost} events in one request exceed this key's burst of "
            f"{limiter.burst}; split the batch",
        )
    verdict = await limiter.take(key_id, cost)
    if not verdict.allowed:
        retry = max(1, int(verdict.retry_after_s + 0.999))
        raise HTTPException(
            429,
            f"rate limit of {limiter.rate:g} events/s exceeded",
            headers={"Retry-After": str(retry)},
        )
