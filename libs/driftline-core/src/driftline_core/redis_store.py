"""Redis: one asyncio client per process, built from settings (TLS and password too)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .settings import RedisSettings

__all__ = ["RedisStore"]


class RedisStore:
    """The client is built at once (redis-py connects lazily, on first command), so adapters
    can hold it before the service starts; `start()` checks the server answers."""

    def __init__(self, settings: RedisSettings) -> None:
        kw: dict[str, Any] = {"decode_responses": False, "health_check_interval": 30}
        if settings.password:
            kw["password"] = settings.password.get_secret_value()
        if settings.ssl_ca_certs:
            kw["ssl_ca_certs"] = settings.ssl_ca_certs
        self.client: aioredis.Redis = aioredis.from_url(settings.url, **kw)

    async def start(self) -> None:
        await self.ping()

    async def stop(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        await self.client.ping()
