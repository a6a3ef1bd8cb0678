"""Retention, legal holds and archival against the real PostgreSQL: a dry run changes
nothing, a hold stops everything, expired records are archived with their chain proof (the
archive verifies alone) before they leave, and the remaining chain still verifies."""

from __future__ import annotations

import gzip
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from driftline.cli import app as cli

from .conftest import items


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_retention_with_dry_run_hold_archive_and_delete(
    audit_app, new_tenant, registry_db, tmp_path
):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    from driftline_core.auth import ApiKeys

    _, admin = await ApiKeys(registry_db).create(tenant, "admin", {"admin"}, "test")
    await deps.trail.append(items(tenant, 12, age_days=40))
    await deps.trail.flush()
    await deps.trail.append(items(tenant, 5, start=12))  # recent: kept
    await deps.trail.flush()

    r = await client.post("/v1/audit/lifecycle", headers=h(admin))
    assert r.json()["action"] == "none"
    assert "no retention" in r.json()["reason"]
    assert (
        await client.put(
            "/v1/audit/retention", json={"retention_days": 30}, headers=h(keys["auditor"])
        )
    ).status_code == 403
    r = await client.put("/v1/audit/retention", json={"retention_days": 30}, headers=h(admin))
    assert r.status_code == 200, r.text

    r = await client.post("/v1/audit/lifecycle", params={"dry_run": True}, headers=h(admin))
    plan = r.json()
    assert plan["action"] == "archive_and_delete"
    assert (plan["first_seq"], plan["last_seq"], plan["records"]) == (1, 12, 12)
    assert plan["dry_run"] is True
    assert len(await deps.trail.entries(tenant)) == 17  # nothing changed

    r = await client.post(
        "/v1/audit/holds", json={"reason": "SEC inquiry 2026-17"}, headers=h(admin)
    )
    hold = r.json()["id"]
    r = await client.post("/v1/audit/lifecycle", params={"dry_run": False}, headers=h(admin))
    assert r.json()["action"] == "none"
    assert "legal hold" in r.json()["reason"]
    assert len(await deps.trail.entries(tenant)) == 17
    assert (await client.delete(f"/v1/audit/holds/{hold}", headers=h(admin))).status_code == 204

    r = await client.post("/v1/audit/lifecycle", params={"dry_run": False}, headers=h(admin))
    done = r.json()
    assert done["deleted"] == 12, done
    left = await deps.trail.entries(tenant)
    assert [e["seq"] for e in left] == list(range(13, 18))

    # the archive is a verifiable export of seq 1..12
    archive = tmp_path / "segment.jsonl"
    archive.write_bytes(gzip.decompress(Path(done["file"]).read_bytes()))
    out = CliRunner().invoke(cli, ["audit", "verify", str(archive)])
    assert out.exit_code == 0, out.output
    assert "intact: 12 records" in out.output

    # what remains verifies from the archived hash on, online and as an export
    r = await client.get("/v1/audit/verify", headers=h(keys["auditor"]))
    assert r.json()["ok"], r.json()
    assert r.json()["records"] == 5
    r = await client.get("/v1/audit/export", headers=h(keys["auditor"]))
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(r.content)
    out = CliRunner().invoke(cli, ["audit", "verify", str(rest)])
    assert out.exit_code == 0, out.output
    r = await client.get("/v1/audit/retention", headers=h(keys["auditor"]))
    assert r.json()["archived_through_seq"] == 12


async def test_unexpired_or_held_records_cannot_be_purged_even_by_the_owner(
    audit_app, new_tenant, stack
):
    _, deps = audit_app
    tenant, _ = await new_tenant()
    await deps.trail.append(items(tenant, 4, age_days=2))
    await deps.lifecycle.set_policy(tenant, 30, "test")
    owner = await asyncpg.connect(stack.postgres.dsn())
    try:
        await owner.execute(
            "INSERT INTO audit.archives (tenant_id, first_seq, last_seq, last_hash, records, "
            "file, sha256, created_by) VALUES ($1, 1, 4, 'x', 4, 'f', 'd', 'test')",
            tenant,
        )
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await owner.fetchval("SELECT audit.purge($1, 4)", tenant)  # not expired
        await deps.lifecycle.set_policy(tenant, 1, "test")
        hold = await deps.lifecycle.hold(tenant, "hold", "test")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await owner.fetchval("SELECT audit.purge($1, 4)", tenant)  # held
        assert len(await deps.trail.entries(tenant)) == 4
        with pytest.raises(asyncpg.PostgresError, match="append-only"):  # no purge flag
            await owner.execute("DELETE FROM audit.records WHERE tenant_id = $1", tenant)
        assert await deps.lifecycle.release(tenant, hold["id"], "test")
        assert await owner.fetchval("SELECT audit.purge($1, 4)", tenant) == 4
    finally:
        await owner.close()
    assert await deps.trail.entries(tenant) == []
