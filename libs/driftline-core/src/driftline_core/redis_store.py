"""Redis: one asyncio client per process, built from settings (TLS and password too)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .settings import RedisSettings

__all__ = ["RedisStore"]


class RedisStore:
    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings
        self._client: aioredis.Redis | None = None

    async def start(self) -> None:
        s = self._settings
        kw: dict[str, Any] = {"decode_responses": False, "health_check_interval": 30}
        if s.password:
            kw["password"] = s.password.get_secret_value()
        if s.ssl_ca_certs:
            kw["ssl_ca_certs"] = s.ssl_ca_certs
        self._client = aioredis.from_url(s.url, **kw)

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisStore.start() was not awaited")
        return self._client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        await self.client.ping()
