"""Backup and restore of PostgreSQL as docs/deploy.md describes it for a Helm deployment: the
audit trail (and the keyring its payloads are encrypted under) survives `pg_dump` and
`pg_restore` into another database, and the restored trail still verifies: every hash link,
every signed checkpoint, every payload decrypting under its tenant's key. Tampering with the
restored copy is still found, at the changed record.

Runs against the shared local PostgreSQL, in two private databases made and dropped here (the
shared `driftline` database is never touched).
"""

from __future__ import annotations

import glob
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from driftline_audit.app import build
from driftline_audit.settings import AuditOptions, AuditSettings
from driftline_audit.trail import Item

ROOT = Path(__file__).resolve().parents[2]
SOCKET = ROOT / ".stack" / "data" / "postgres-sock"

pytestmark = pytest.mark.integration


def _pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"{name} not found (Debian's postgresql package, installed by make setup)")
    return found[-1]


def _settings(stack: Any, database: str, tmp: Path) -> AuditSettings:
    return AuditSettings(
        environment="test",
        postgres=stack.postgres.model_copy(update={"database": database}),
        audit=AuditOptions(
            group_id=f"audit-backup-{uuid.uuid4().hex[:8]}",
            checkpoint_every_records=10**9,
            checkpoint_every_s=3600,
            archive_dir=str(tmp / "archive"),
        ),
    )


def _items(tenant: str, n: int) -> list[Item]:
    return [
        Item(
            tenant_id=tenant,
            source_id=uuid.uuid4(),
            source_topic="driftline.audit.v1",
            service="test",
            occurred_at=datetime.now(UTC),
            actor=f"user:u{i % 3}",
            action="model.update" if i % 2 else "model.create",
            resource_type="model",
            resource_id=f"m{i % 5}",
            outcome="success",
            payload=orjson.dumps({"i": i, "secret": f"value-{i}"}),
        )
        for i in range(n)
    ]


class Trail:
    """The audit service's trail on one database: its own migrations, pools and keyring, and
    the producer its checkpoints are announced with."""

    def __init__(self, settings: AuditSettings) -> None:
        self.deps = build(settings)

    async def __aenter__(self) -> Any:
        await self.deps.core.database.start()
        await self.deps.keyring.database.start()
        await self.deps.core.producer.start()
        return self.deps.trail

    async def __aexit__(self, *exc: object) -> None:
        await self.deps.core.producer.stop()
        await self.deps.keyring.database.stop()
        await self.deps.core.database.stop()


@pytest.fixture
async def databases(stack: Any) -> AsyncIterator[tuple[str, str]]:
    """Two empty private databases owned by the stack's user: the source and the restore."""
    if not SOCKET.exists():
        pytest.fail("needs the local stack's PostgreSQL superuser socket (make up)")
    suffix = uuid.uuid4().hex[:10]
    names = (f"dl_backup_src_{suffix}", f"dl_backup_dst_{suffix}")
    admin = await asyncpg.connect(
        host=str(SOCKET), port=stack.postgres.port, user="postgres", database="postgres"
    )
    try:
        for n in names:
            await admin.execute(f'CREATE DATABASE "{n}" OWNER "{stack.postgres.user}"')
        yield names
    finally:
        for n in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
        await admin.close()


async def test_a_restored_audit_trail_still_verifies(
    stack: Any, databases: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = databases
    tenants = [f"t{uuid.uuid4().hex[:10]}" for _ in range(2)]
    async with Trail(_settings(stack, src, tmp_path)) as trail:
        for t in tenants:
            assert await trail.append(_items(t, 150)) == 150
        await trail.flush()  # a signed checkpoint at each head
        assert await trail.append(_items(tenants[0], 7)) == 7  # an unsigned tail too
        before = {t: await trail.verify_range(t) for t in tenants}
        heads = {t: await trail.hash_at(t, 157 if t == tenants[0] else 150) for t in tenants}
    assert all(v["ok"] for v in before.values()), before

    # the documented backup: a custom-format dump of the whole database, restored elsewhere
    dump = tmp_path / "driftline.dump"
    conn = ["-h", str(SOCKET), "-p", str(stack.postgres.port), "-U", "postgres"]
    subprocess.run(
        [_pg_tool("pg_dump"), *conn, "-Fc", "-d", src, "-f", str(dump)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    restored = subprocess.run(
        [_pg_tool("pg_restore"), *conn, "--exit-on-error", "-d", dst, str(dump)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr

    async with Trail(_settings(stack, dst, tmp_path)) as trail:
        for t in tenants:
            v = await trail.verify_range(t)  # links, checkpoints, payloads decrypt
            assert v["ok"], v
            assert v["records"] == before[t]["records"]
            assert v["records"] == (157 if t == tenants[0] else 150)
            assert await trail.hash_at(t, v["records"]) == heads[t]
        # the service keeps appending to the restored chain
        assert await trail.append(_items(tenants[1], 3)) == 3
        await trail.flush()
        assert (await trail.verify_range(tenants[1]))["records"] == 153

        # and tampering with the restored copy is still found where it happened
        su = await asyncpg.connect(
            host=str(SOCKET), port=stack.postgres.port, user="postgres", database=dst
        )
        try:
            async with su.transaction():
                await su.execute("SET LOCAL session_replication_role = replica")
                await su.execute(
                    "UPDATE audit.records SET action = 'model.delete' "
                    "WHERE tenant_id = $1 AND seq = 42",
                    tenants[0],
                )
        finally:
            await su.close()
        v = await trail.verify_range(tenants[0])
        assert not v["ok"]
        assert v["first_break"]["seq"] == 42, v
        assert (await trail.verify_range(tenants[1]))["ok"]
