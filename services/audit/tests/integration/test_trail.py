"""The trail in the real PostgreSQL: each record once, append-only for the service's role and
by trigger, and every kind of tampering by a superuser detected and located, by the API's
verify and by the offline verifier on an export."""

from __future__ import annotations

import asyncpg
import pytest
from typer.testing import CliRunner

from driftline.cli import app as cli

from .conftest import items


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def chain(deps, tenant: str, n: int = 20) -> None:
    assert await deps.trail.append(items(tenant, n)) == n
    await deps.trail.flush()  # a signed checkpoint at the head


async def verify_api(client, key: str, **params) -> dict:
    r = await client.get("/v1/audit/verify", params=params, headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()


async def verify_offline(client, key: str, tmp_path) -> tuple[int, str]:
    r = await client.get("/v1/audit/export", headers=h(key))
    assert r.status_code == 200, r.text
    path = tmp_path / "export.jsonl"
    path.write_bytes(r.content)
    out = CliRunner().invoke(cli, ["audit", "verify", str(path)])
    return out.exit_code, out.output


async def test_each_record_is_stored_once_in_a_gapless_chain(audit_app, new_tenant, tmp_path):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    batch = items(tenant, 50)
    assert await deps.trail.append(batch) == 50
    assert await deps.trail.append(batch[10:30]) == 0  # redelivered: no effect
    assert await deps.trail.append(batch[40:] + items(tenant, 10, start=50)) == 10
    rows = await deps.trail.entries(tenant)
    assert [r["seq"] for r in rows] == list(range(1, 61))
    assert len({r["source_id"] for r in rows}) == 60
    assert all("value-" not in r["payload"] for r in rows)  # encrypted at rest
    await deps.trail.flush()
    v = await verify_api(client, keys["auditor"])
    assert v["ok"], v
    assert v["records"] == 60
    assert v["signed_through"] == {tenant: 60}
    code, out = await verify_offline(client, keys["auditor"], tmp_path)
    assert code == 0, out
    assert "intact: 60 records" in out


async def test_the_service_role_cannot_change_or_delete_and_the_trigger_refuses_everyone(
    audit_app, new_tenant, stack
):
    _, deps = audit_app
    tenant, _ = await new_tenant()
    await chain(deps, tenant, 3)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await deps.core.database.pool.execute(
            "UPDATE records SET payload = 'x' WHERE tenant_id = $1", tenant
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await deps.core.database.pool.execute("DELETE FROM records WHERE tenant_id = $1", tenant)
    owner = await asyncpg.connect(stack.postgres.dsn())
    try:
        for sql in (
            "UPDATE audit.records SET payload = 'x' WHERE tenant_id = $1",
            "DELETE FROM audit.records WHERE tenant_id = $1",
            "DELETE FROM audit.checkpoints WHERE tenant_id = $1",
        ):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await owner.execute(sql, tenant)
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await owner.execute("TRUNCATE audit.records")
    finally:
        await owner.close()
    assert len(await deps.trail.entries(tenant)) == 3


TAMPERING = {
    "payload changed": (
        [
            "UPDATE audit.records SET payload = replace(payload, 'dl1.1.', 'dl1.1.A') "
            "WHERE tenant_id = $1 AND seq = 7"
        ],
        7,
        "hash mismatch",
    ),
    "row deleted": (
        ["DELETE FROM audit.records WHERE tenant_id = $1 AND seq = 7"],
        7,
        "missing",
    ),
    "two rows swapped": (
        [
            "UPDATE audit.records SET seq = 100000 WHERE tenant_id = $1 AND seq = 5",
            "UPDATE audit.records SET seq = 5 WHERE tenant_id = $1 AND seq = 6",
            "UPDATE audit.records SET seq = 6 WHERE tenant_id = $1 AND seq = 100000",
        ],
        5,
        "",
    ),
    "row inserted": (
        [
            # make room at seq 10, then copy the record at 9 into it with a fresh source id
            "UPDATE audit.records SET seq = seq + 1000 WHERE tenant_id = $1 AND seq >= 10",
            "UPDATE audit.records SET seq = seq - 999 WHERE tenant_id = $1 AND seq >= 1010",
            "INSERT INTO audit.records SELECT tenant_id, 10, gen_random_uuid(), source_topic, "
            "service, occurred_at, occurred_ts, actor, action, resource_type, resource_id, "
            "outcome, payload, key_version, hash, hash, recorded_at FROM audit.records "
            "WHERE tenant_id = $1 AND seq = 9",
        ],
        10,
        "hash mismatch",
    ),
    "tail truncated": (
        ["DELETE FROM audit.records WHERE tenant_id = $1 AND seq > 15"],
        16,
        "truncated",
    ),
}


@pytest.fixture(scope="module")
def parallel_trail(audit_app):
    """The same trail, verifying in two worker processes from 5 records on."""
    from driftline_audit.app import signing_key
    from driftline_audit.parallel import ParallelVerifier
    from driftline_audit.segments import VERIFY_SELECT
    from driftline_audit.settings import AuditSettings
    from driftline_audit.trail import Trail

    _, deps = audit_app
    s = AuditSettings(environment="test")
    writer = s.postgres.model_copy(
        update={"user": s.audit.writer_user, "password": s.audit.writer_password}
    )
    pv = ParallelVerifier(writer, "audit", VERIFY_SELECT, workers=2, min_records=5)
    pv.start()
    yield Trail(deps.core.database, deps.keyring.cipher, signing_key(s), "k", parallel=pv)
    pv.stop()


@pytest.fixture(scope="module")
def chunked_trail(audit_app):
    """The same trail, reading and verifying in-process in chunks of 5 records: the chunks
    cut through every kind of tampering below (a swap across two chunks, a deletion inside
    one, an insertion at a chunk's end, an empty chunk after a truncated tail)."""
    from driftline_audit.app import signing_key
    from driftline_audit.settings import AuditSettings
    from driftline_audit.trail import Trail

    _, deps = audit_app
    s = AuditSettings(environment="test")
    return Trail(deps.core.database, deps.keyring.cipher, signing_key(s), "k", verify_chunk=5)


@pytest.mark.parametrize("kind", list(TAMPERING))
async def test_tampering_is_detected_and_located(
    audit_app, new_tenant, superuser, tmp_path, kind, parallel_trail, chunked_trail
):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    await chain(deps, tenant, 20)
    assert (await verify_api(client, keys["auditor"]))["ok"]
    statements, seq, reason = TAMPERING[kind]
    async with superuser.transaction():
        # as a superuser can: switch the append-only triggers off for this session
        await superuser.execute("SET LOCAL session_replication_role = replica")
        await superuser.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))", tenant
        )
        for sql in statements:
            await superuser.execute(sql, tenant)
    v = await verify_api(client, keys["auditor"])
    assert not v["ok"]
    assert v["first_break"]["seq"] == seq, v
    assert reason in v["first_break"]["reason"]
    # in segments, in two processes: the same verdict, break and reason as in one piece
    whole = await deps.trail.verify_range(tenant, authenticate=False)
    assert whole["first_break"] == v["first_break"]
    assert await parallel_trail.verify_range(tenant, authenticate=False) == whole
    # in chunks of 5 read while the one before is hashed: the same again, with payload
    # decryption too
    assert await chunked_trail.verify_range(tenant, authenticate=False) == whole
    chunked = await chunked_trail.verify_range(tenant)
    assert chunked["first_break"] == v["first_break"]
    code, out = await verify_offline(client, keys["auditor"], tmp_path)
    assert code == 1, out
    assert "BROKEN at seq" in out
    assert int(out.split("BROKEN at seq")[1].split()[0]) == seq, out


async def test_verify_a_range_and_the_unsigned_tail(audit_app, new_tenant, chunked_trail):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    await chain(deps, tenant, 30)
    await deps.trail.append(items(tenant, 5))  # after the last checkpoint
    v = await verify_api(client, keys["auditor"], from_seq=11, to_seq=25)
    assert v["ok"], v
    assert v["records"] == 15
    chunked = await chunked_trail.verify_range(tenant, 11, 25)
    assert {k: chunked[k] for k in v} == v  # 11-15, 16-20, 21-25 read in turn
    chunked = await chunked_trail.verify_range(tenant, 12)
    assert chunked["ok"], chunked
    assert chunked["records"] == 24
    assert chunked["signed_through"] == {tenant: 30}
    v = await verify_api(client, keys["auditor"])
    assert v["ok"]
    assert v["signed_through"] == {tenant: 30}
    assert v["heads"][tenant]["seq"] == 35


async def test_query_filters_paginates_decrypts_and_is_itself_audited(audit_app, new_tenant):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    await deps.trail.append(items(tenant, 30))
    seen, cursor = [], None
    while True:
        params = {"actor": "user:u1", "limit": 4, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/audit/records", params=params, headers=h(keys["auditor"]))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 10  # i % 3 == 1 for i in 0..29
    assert {x["actor"] for x in seen} == {"user:u1"}
    assert [x["seq"] for x in seen] == sorted(x["seq"] for x in seen)
    assert seen[0]["record"]["secret"].startswith("value-")
    r = await client.get(
        "/v1/audit/records", params={"cursor": "garbage"}, headers=h(keys["auditor"])
    )
    assert r.status_code == 400
    r = await client.get("/v1/audit/records", headers=h(keys["viewer"]))
    assert r.status_code == 403  # read is not audit


async def test_another_tenant_sees_nothing(audit_app, new_tenant):
    client, deps = audit_app
    a, _ = await new_tenant()
    _, keys_b = await new_tenant()
    await deps.trail.append(items(a, 5))
    r = await client.get("/v1/audit/records", headers=h(keys_b["auditor"]))
    assert r.status_code == 200
    assert a not in r.text
    v = await verify_api(client, keys_b["auditor"])
    assert a not in str(v)


async def test_an_erased_tenants_chain_still_verifies_but_its_payloads_are_unreadable(
    audit_app, new_tenant, tmp_path
):
    client, deps = audit_app
    tenant, keys = await new_tenant()
    await chain(deps, tenant, 10)
    assert await deps.keyring.keyring.destroy(tenant) >= 1
    assert await deps.trail.append(items(tenant, 3)) == 3  # stored after the erasure
    await deps.trail.flush()
    v = await verify_api(client, keys["auditor"])
    assert v["ok"], v
    assert v["records"] == 13
    r = await client.get("/v1/audit/records", headers=h(keys["auditor"]))
    records = [x["record"] for x in r.json()["items"]]
    assert all(isinstance(x, str) for x in records)
    assert records[0].startswith("unreadable")
    assert records[-1].startswith("shredded")
    assert "value-" not in r.text
    code, out = await verify_offline(client, keys["auditor"], tmp_path)
    assert code == 0, out


async def test_the_cli_exports_over_http_and_verifies_the_file(
    audit_app, new_tenant, tmp_path, monkeypatch
):
    import asyncio
    import socket

    import uvicorn

    client, deps = audit_app
    tenant, keys = await new_tenant()
    await chain(deps, tenant, 12)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            client._transport.app, host="127.0.0.1", port=port, lifespan="off", log_config=None
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        out_file = tmp_path / "trail.jsonl"
        env = {
            "DRIFTLINE_AUDIT_URL": f"http://127.0.0.1:{port}",
            "DRIFTLINE_API_KEY": keys["auditor"],
        }
        out = await asyncio.to_thread(
            CliRunner().invoke, cli, ["audit", "export", "--out", str(out_file)], env=env
        )
        assert out.exit_code == 0, out.output
        out = CliRunner().invoke(cli, ["audit", "verify", str(out_file)])
        assert out.exit_code == 0, out.output
        assert "intact: 12 records, 1 signed checkpoints; signed through seq 12 of 12" in out.output
        env["DRIFTLINE_API_KEY"] = keys["viewer"]
        out = await asyncio.to_thread(
            CliRunner().invoke, cli, ["audit", "export", "--out", str(out_file)], env=env
        )
        assert out.exit_code == 1  # a runtime failure (2 is a usage error)
        assert "'audit' permission" in out.output
        assert "403" in out.output
    finally:
        server.should_exit = True
        await task
