"""Versioned SQL migrations, one folder per service: `0001_name.sql`, `0002_name.sql`, ...

Applied in order inside the service's schema, each in its own transaction, under an
advisory lock (two replicas starting together do not race). A version applied before
is skipped; one whose file changed since is refused (its checksum is recorded).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ..errors import ConfigurationError

__all__ = ["Migration", "apply_migrations", "load_migrations"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ConfigurationError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigurationError(f"duplicate migration versions in {folder}")
    return found


async def apply_migrations(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[int]:
    """Apply what is missing; return the versions applied now (empty: nothing to do)."""
    if not _SCHEMA.match(schema):
        raise ConfigurationError(f"invalid schema name {schema!r}")
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"driftline.migrations.{schema}")
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f'SELECT version, checksum FROM "{schema}".schema_migrations')
        done = {r["version"]: r["checksum"] for r in rows}
        for m in sorted(migrations, key=lambda m: m.version):
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise ConfigurationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied "
                        f"to schema {schema}; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                await conn.execute(m.sql)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, name, checksum) '
                    "VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied_now.append(m.version)
    finally:
        await conn.execute(
            "SELECT pg_advisory_unlock(hashtext($1))", f"driftline.migrations.{schema}"
        )
    return applied_now
