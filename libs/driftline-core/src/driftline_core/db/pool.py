"""An asyncpg pool bound to one service's schema (services never read each other's)."""

from __future__ import annotations

import ssl as ssl_lib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from ..errors import UnavailableError
from ..settings import PostgresSettings
from .migrations import apply_migrations, load_migrations

__all__ = ["Database", "HasPool"]


def _ssl(settings: PostgresSettings) -> ssl_lib.SSLContext | str | bool:
    if settings.ssl in ("disable", "prefer", "require"):
        return settings.ssl if settings.ssl != "disable" else False
    ctx = ssl_lib.create_default_context(cafile=settings.ssl_rootcert)
    ctx.check_hostname = settings.ssl == "verify-full"
    return ctx


async def connect(settings: PostgresSettings, schema: str, application: str = "") -> Any:
    """One connection with a pool's options (search path, TLS), for work done outside the
    service's event loop, e.g. in a worker process."""
    return await asyncpg.connect(
        settings.dsn(),
        ssl=_ssl(settings),
        server_settings={
            "search_path": f"{schema},public",
            "application_name": application or schema,
        },
    )


class HasPool(Protocol):
    """Anything that gives a started pool (a Database); read at call time, so adapters can
    be built before the pool exists."""

    @property
    def pool(self) -> asyncpg.Pool: ...


class Database:
    def __init__(
        self,
        settings: PostgresSettings,
        schema: str,
        *,
        migrations_dir: Path | None = None,
        application: str = "",
        pool_settings: PostgresSettings | None = None,
        after_migrations: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        """`pool_settings`: other credentials for the pool than for the migrations (a role
        with fewer rights); `after_migrations` runs on the migrating (owner's) connection,
        e.g. to grant that role what it needs."""
        self._settings = settings
        self._pool_settings = pool_settings or settings
        self._after_migrations = after_migrations
        self.schema = schema
        self._migrations_dir = migrations_dir
        self.applied_migrations: list[int] = []
        self._application = application or schema
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Database.start() was not awaited")
        return self._pool

    @property
    def pool_settings(self) -> PostgresSettings:
        """The credentials the pool connects with (see `connect`)."""
        return self._pool_settings

    async def start(self) -> list[int]:
        """Apply the service's migrations (if it has a folder), then open the pool.
        Returns the migration versions applied now."""
        applied: list[int] = []
        migrations_dir = self._migrations_dir
        s = self._settings
        try:
            if migrations_dir is not None:
                conn = await asyncpg.connect(s.dsn(), ssl=_ssl(s))
                try:
                    applied = await apply_migrations(
                        conn, self.schema, load_migrations(migrations_dir)
                    )
                    if self._after_migrations is not None:
                        await self._after_migrations(conn)
                finally:
                    await conn.close()
            p = self._pool_settings
            self._pool = await asyncpg.create_pool(
                p.dsn(),
                min_size=s.min_pool,
                max_size=s.max_pool,
                ssl=_ssl(s),
                server_settings={
                    "search_path": f"{self.schema},public",
                    "application_name": self._application,
                },
            )
        except (OSError, asyncpg.PostgresConnectionError) as e:
            raise UnavailableError(f"PostgreSQL unreachable at {s.host}:{s.port}: {e}") from e
        self.applied_migrations = applied
        return applied

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")
