"""Every /v1/audit answer, with real data behind it (records, a checkpoint, a legal hold, an
archive), is what docs/openapi/audit.json declares: each JSON body validated against its
operation's 2xx schema (JSON Schema 2020-12, the document's components resolved)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from jsonschema_rs import Draft202012Validator  # schemathesis's validator (a dev dependency)

from driftline_core.auth import ApiKeys

from .conftest import items

DOC = json.loads(
    (Path(__file__).resolve().parents[4] / "docs" / "openapi" / "audit.json").read_text()
)


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def violations(body: Any, path: str, method: str, status: int) -> list[str]:
    answer = DOC["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(body)]


def conforms(r: httpx.Response, path: str, method: str = "get", status: int = 200) -> Any:
    assert r.status_code == status, r.text
    assert violations(r.json(), path, method, status) == [], r.json()
    return r.json()


def test_the_check_can_fail() -> None:
    bad = {"items": [{"seq": "1", "hash": 5}], "next_cursor": 3}
    found = violations(bad, "/v1/audit/records", "get", 200)
    assert any("next_cursor" in f for f in found), found
    assert any(f.startswith("['items', 0]") and "required" in f for f in found), found
    assert any(f.startswith("['items', 0, 'seq']") for f in found), found


async def test_every_answer_is_as_declared(audit_app, new_tenant, registry_db) -> None:
    client, deps = audit_app
    tenant, keys = await new_tenant()
    _, admin = await ApiKeys(registry_db).create(tenant, "admin", {"admin"}, "test")
    auditor = h(keys["auditor"])
    await deps.trail.append(items(tenant, 12, age_days=40))
    await deps.trail.flush()
    await deps.trail.append(items(tenant, 3, start=12))
    await deps.trail.flush()
    await deps.trail.checkpoint(tenant)

    page = conforms(
        await client.get("/v1/audit/records", params={"limit": 5}, headers=auditor),
        "/v1/audit/records",
    )
    assert len(page["items"]) == 5
    assert page["next_cursor"]
    assert page["items"][0]["record"]["i"] == 0  # decrypted
    page = conforms(
        await client.get(
            "/v1/audit/records",
            params={"cursor": page["next_cursor"], "decrypt": False},
            headers=auditor,
        ),
        "/v1/audit/records",
    )
    # (>=: an audit service elsewhere on a shared stack may add this test's access records)
    assert [x["seq"] for x in page["items"]][:10] == list(range(6, 16))
    assert "record" not in page["items"][0]
    assert page["next_cursor"] is None  # fewer than the default page of 100

    verdict = conforms(await client.get("/v1/audit/verify", headers=auditor), "/v1/audit/verify")
    assert verdict["ok"], verdict
    assert verdict["records"] >= 15, verdict
    cps = conforms(
        await client.get("/v1/audit/checkpoints", headers=auditor), "/v1/audit/checkpoints"
    )
    assert 15 in [c["seq"] for c in cps], cps

    r = await client.put("/v1/audit/retention", json={"retention_days": 30}, headers=h(admin))
    assert conforms(r, "/v1/audit/retention", "put") == {"tenant_id": tenant, "retention_days": 30}
    r = await client.post("/v1/audit/holds", json={"reason": "inquiry"}, headers=h(admin))
    hold = conforms(r, "/v1/audit/holds", "post", 201)
    [held] = conforms(await client.get("/v1/audit/holds", headers=auditor), "/v1/audit/holds")
    assert held["id"] == hold["id"]
    assert held["active"]
    assert held["released_at"] is None
    r = await client.post("/v1/audit/lifecycle", params={"dry_run": False}, headers=h(admin))
    assert conforms(r, "/v1/audit/lifecycle", "post")["action"] == "none"
    assert (
        await client.delete(f"/v1/audit/holds/{hold['id']}", headers=h(admin))
    ).status_code == 204
    [released] = conforms(await client.get("/v1/audit/holds", headers=auditor), "/v1/audit/holds")
    assert not released["active"]
    assert released["released_at"]

    r = await client.post("/v1/audit/lifecycle", params={"dry_run": True}, headers=h(admin))
    plan = conforms(r, "/v1/audit/lifecycle", "post")
    assert (plan["action"], plan["records"], plan["dry_run"]) == ("archive_and_delete", 12, True)
    r = await client.post("/v1/audit/lifecycle", params={"dry_run": False}, headers=h(admin))
    done = conforms(r, "/v1/audit/lifecycle", "post")
    assert done["deleted"] == 12, done
    assert done["file"], done
    kept = conforms(await client.get("/v1/audit/retention", headers=auditor), "/v1/audit/retention")
    assert kept["retention_days"] == 30
    assert kept["archived_through_seq"] == 12
    assert [a["last_seq"] for a in kept["archives"]] == [12]
