"""Versioned migrations against the real PostgreSQL: applied once, re-applied as a no-op,
refused when an applied file changed; the pool is bound to the service's schema."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from driftline_core.db import Database
from driftline_core.errors import ConfigurationError

V1 = "CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL);"
V2 = "ALTER TABLE widgets ADD COLUMN colour text NOT NULL DEFAULT 'blue';"


@pytest.fixture
async def schema(stack, unique):
    name = unique("t")
    yield name
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    await conn.close()


def folder(tmp_path: Path, **files: str) -> Path:
    for name, sql in files.items():
        (tmp_path / f"{name}.sql").write_text(sql)
    return tmp_path


async def test_migrations_apply_in_order_then_reapply_as_no_op(stack, schema, tmp_path):
    migrations = folder(tmp_path, **{"0001_widgets": V1, "0002_colour": V2})
    db = Database(stack.postgres, schema, migrations_dir=migrations)
    assert await db.start() == [1, 2]
    await db.pool.execute("INSERT INTO widgets (name) VALUES ('w1')")  # search_path = schema
    assert await db.pool.fetchval("SELECT colour FROM widgets") == "blue"
    await db.stop()

    again = Database(stack.postgres, schema, migrations_dir=migrations)
    assert await again.start() == []
    rows = await again.pool.fetch(
        f'SELECT version, name FROM "{schema}".schema_migrations ORDER BY version'
    )
    assert [(r["version"], r["name"]) for r in rows] == [(1, "widgets"), (2, "colour")]
    assert await again.pool.fetchval("SELECT count(*) FROM widgets") == 1
    await again.stop()


async def test_a_changed_migration_is_refused_and_a_new_one_is_applied(stack, schema, tmp_path):
    migrations = folder(tmp_path, **{"0001_widgets": V1})
    db = Database(stack.postgres, schema, migrations_dir=migrations)
    await db.start()
    await db.stop()

    (migrations / "0001_widgets.sql").write_text(V1 + "\n-- edited")
    with pytest.raises(ConfigurationError, match="changed after it was applied"):
        await Database(stack.postgres, schema, migrations_dir=migrations).start()

    (migrations / "0001_widgets.sql").write_text(V1)
    (migrations / "0002_colour.sql").write_text(V2)
    db = Database(stack.postgres, schema, migrations_dir=migrations)
    assert await db.start() == [2]
    await db.stop()


async def test_a_failing_migration_leaves_nothing_half_applied(stack, schema, tmp_path):
    migrations = folder(
        tmp_path,
        **{
            "0001_widgets": V1,
            "0002_broken": "ALTER TABLE widgets ADD COLUMN x int; SELECT * FROM no_such_table;",
        },
    )
    with pytest.raises(asyncpg.UndefinedTableError):
        await Database(stack.postgres, schema, migrations_dir=migrations).start()
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        cols = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'widgets'",
            schema,
        )
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [1]
    assert {r["column_name"] for r in cols} == {"id", "name"}
