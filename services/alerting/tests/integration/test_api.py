"""The alerting API through the real app (its lifespan connects Kafka and PostgreSQL): rules
CRUD with validation, routing configuration from YAML with secrets redacted, silences, scopes
and tenant scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager

from driftline_alerting.app import build, create_app
from driftline_alerting.routing import AlertingConfig, render
from driftline_alerting.settings import AlertingOptions, AlertingSettings
from driftline_core.auth import ApiKeys
from driftline_core.db import Database
from driftline_ingestion.app import MIGRATIONS as INGESTION_MIGRATIONS

YAML = """
route:
  receiver: hook
  group_by: [alertname, model]
  group_wait_s: 0
  routes:
    - receiver: pager
      matchers: ['severity="critical"']
receivers:
  - name: hook
    type: webhook
    url: http://127.0.0.1:9/alerts
    secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]
  - name: pager
    type: pagerduty
    routing_key: R0UT1NGKEY
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [model]
"""


@pytest.fixture
async def keys(stack, unique):
    db = Database(stack.postgres, "ingestion", migrations_dir=INGESTION_MIGRATIONS)
    await db.start()
    api = ApiKeys(db)
    out = {}
    for tenant in (unique("t"), unique("t")):
        await api.create_tenant(tenant, tenant)
        _, admin = await api.create(tenant, "admin", {"admin"}, "test")
        _, viewer = await api.create(tenant, "viewer", {"read"}, "test")
        out[tenant] = {"admin": admin, "viewer": viewer}
    yield out
    await db.stop()


@pytest.fixture
async def client(stack):
    s = AlertingSettings(
        kafka=stack.kafka,
        postgres=stack.postgres,
        redis=stack.redis,
        alerting=AlertingOptions(group_id="alerting-api-test"),
    )
    deps = build(s)
    app = create_app(s, deps)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as m,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=m.app), base_url="http://a") as c,
    ):
        c.runtime = deps.runtime  # type: ignore[attr-defined]
        yield c


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


RULE = {
    "id": "income-drift",
    "name": "IncomeDrift",
    "model_id": "credit",
    "condition": {"metric": "drift.feature.ratio", "op": ">", "value": 1.5, "feature": "income"},
    "for_windows": 3,
    "severity": "warning",
    "annotations": {"summary": "income drifted", "runbook_url": "https://runbooks/income"},
}


async def test_rules_crud_with_validation_and_tenant_scoping(client, keys):
    (_t1, k1), (_t2, k2) = keys.items()
    listed = (await client.get("/v1/alert-rules", headers=h(k1["viewer"]))).json()
    assert listed["defaults"] is True  # a tenant without rules gets the defaults
    assert {r["id"] for r in listed["rules"]} >= {"dataset-drift", "no-data"}

    bad = {**RULE, "condition": {"metric": "drift.feature.ratio", "op": ">", "value": 1}}
    r = await client.post("/v1/alert-rules", json=bad, headers=h(k1["admin"]))
    assert r.status_code == 422
    assert "per feature" in r.text

    r = await client.post("/v1/alert-rules", json=RULE, headers=h(k1["viewer"]))
    assert r.status_code == 403  # a read-only key cannot write

    r = await client.post("/v1/alert-rules", json=RULE, headers=h(k1["admin"]))
    assert r.status_code == 201, r.text
    r = await client.post("/v1/alert-rules", json=RULE, headers=h(k1["admin"]))
    assert r.status_code == 409

    r = await client.put(
        "/v1/alert-rules/income-drift", json={**RULE, "for_windows": 5}, headers=h(k1["admin"])
    )
    assert r.json()["for_windows"] == 5
    assert (await client.get("/v1/alert-rules/income-drift", headers=h(k1["viewer"]))).json()[
        "for_windows"
    ] == 5
    # the other tenant sees nothing of it
    assert (
        await client.get("/v1/alert-rules/income-drift", headers=h(k2["admin"]))
    ).status_code == 404
    assert (
        await client.delete("/v1/alert-rules/income-drift", headers=h(k2["admin"]))
    ).status_code == 404
    assert (
        await client.delete("/v1/alert-rules/income-drift", headers=h(k1["admin"]))
    ).status_code == 204
    after = (await client.get("/v1/alert-rules", headers=h(k1["viewer"]))).json()
    # the defaults became the tenant's own rules when it wrote its first one
    assert after["defaults"] is False
    assert {r["id"] for r in after["rules"]} == {r["id"] for r in listed["rules"]}
    assert (await client.get("/v1/alert-rules")).status_code == 401


async def test_routing_config_from_yaml_hides_secrets(client, keys):
    (_t1, k1), (_t2, k2) = keys.items()
    r = await client.put(
        "/v1/alerting/config",
        content=YAML,
        headers=h(k1["admin"], **{"Content-Type": "application/yaml"}),
    )
    assert r.status_code == 200, r.text
    got = (await client.get("/v1/alerting/config", headers=h(k1["viewer"]))).json()
    hook, pager = got["receivers"]  # shown in Alertmanager's syntax, secrets as it shows them
    assert hook["webhook_configs"][0]["driftline_signing_secrets"] == ["<secret>"]
    assert pager["pagerduty_configs"][0]["routing_key"] == "<secret>"
    assert got["route"]["group_wait"] == "0s"
    assert got["route"]["routes"][0]["receiver"] == "pager"
    assert (await client.get("/v1/alerting/config", headers=h(k2["viewer"]))).json()[
        "receivers"
    ] == []
    broken = YAML.replace("receiver: pager", "receiver: nobody")
    r = await client.put(
        "/v1/alerting/config",
        content=broken,
        headers=h(k1["admin"], **{"Content-Type": "application/yaml"}),
    )
    assert r.status_code == 422
    assert "nobody" in r.text


async def test_silences_are_created_listed_and_expired(client, keys):
    (_t1, k1), (_t2, k2) = keys.items()
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await client.post(
        "/v1/silences",
        json={
            "matchers": ['model="credit"', 'severity=~"warning|info"'],
            "ends_at": ends,
            "comment": "retraining in progress",
        },
        headers=h(k1["admin"]),
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert r.json()["created_by"] == "key:admin"
    [s] = (await client.get("/v1/silences", headers=h(k1["viewer"]))).json()
    assert s["state"] == "active"
    assert (await client.get("/v1/silences", headers=h(k2["viewer"]))).json() == []
    assert (await client.delete(f"/v1/silences/{sid}", headers=h(k2["admin"]))).status_code == 404
    assert (await client.delete(f"/v1/silences/{sid}", headers=h(k1["admin"]))).status_code == 204
    [s] = (await client.get("/v1/silences", headers=h(k1["viewer"]))).json()
    assert s["state"] == "expired"
    r = await client.post(
        "/v1/silences",
        json={"matchers": ["nonsense"], "ends_at": ends, "comment": "x"},
        headers=h(k1["admin"]),
    )
    assert r.status_code == 422


async def test_nul_characters_are_refused_and_webhook_secrets_never_shown(client, keys):
    (_t1, k1), _ = keys.items()
    poisoned = {**RULE, "labels": {"team": "ml\u0000ops"}}
    r = await client.post("/v1/alert-rules", json=poisoned, headers=h(k1["admin"]))
    assert r.status_code == 422
    assert "labels.team" in r.text
    assert "NUL" in r.text
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await client.post(
        "/v1/silences",
        json={"matchers": ['model="a\u0000b"'], "ends_at": ends, "comment": "x"},
        headers=h(k1["admin"]),
    )
    assert r.status_code == 422

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    rule = {
        **RULE,
        "id": "with-retrain",
        "remediation": {"webhook": "http://127.0.0.1:9/retrain", "webhook_secret": secret},
    }
    r = await client.post("/v1/alert-rules", json=rule, headers=h(k1["admin"]))
    assert r.status_code == 201, r.text
    assert secret not in r.text
    got = (await client.get("/v1/alert-rules/with-retrain", headers=h(k1["viewer"]))).json()
    assert got["remediation"]["webhook_secret"] == "<redacted>"
    # written back as read (secret redacted), it is accepted: the stored secret is kept
    r = await client.put(
        "/v1/alert-rules/with-retrain", json={**got, "for_windows": 2}, headers=h(k1["admin"])
    )
    assert r.status_code == 200, r.text
    assert secret not in (await client.get("/v1/alert-rules", headers=h(k1["viewer"]))).text


SIMPLE = (Path(__file__).parent.parent / "fixtures" / "alertmanager" / "simple.yml").read_text()


async def test_alertmanagers_own_example_configuration_through_the_api(client, keys):
    (_t1, k1), _ = keys.items()
    yml = {"Content-Type": "application/yaml"}
    r = await client.put("/v1/alerting/config", content=SIMPLE, headers=h(k1["admin"], **yml))
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [
        "templates: kept, but not used by Driftline",
        "tracing: kept, but not used by Driftline",
    ]
    got = (await client.get("/v1/alerting/config", headers=h(k1["viewer"]))).json()
    original = AlertingConfig.model_validate(yaml.safe_load(SIMPLE))
    assert got["global"]["smtp_auth_password"] == "<secret>"
    # the same configuration back (stored encrypted, read, shown with secrets as <secret>)
    assert got == render(original)
    assert got["route"]["routes"][0]["matchers"] == ['service=~"foo1|foo2|baz"']
    # Alertmanager's face shows it too (amtool config show / routes test read this)
    st = (await client.get("/api/v2/status", headers=h(k1["viewer"]))).json()
    shown = yaml.safe_load(st["config"]["original"])
    assert shown["route"]["routes"][2]["receiver"] == "team-DB-pager"
    assert "tracing" not in shown


async def test_unsupported_alertmanager_fields_are_refused_by_name(client, keys):
    (_t1, k1), _ = keys.items()
    yml = {"Content-Type": "application/yaml"}
    opsgenie = SIMPLE.replace(
        "  - name: 'team-DB-pager'\n",
        "  - name: 'team-DB-pager'\n    opsgenie_configs:\n      - api_key: k\n",
    )
    r = await client.put("/v1/alerting/config", content=opsgenie, headers=h(k1["admin"], **yml))
    assert r.status_code == 422
    assert "opsgenie_configs: not supported by Driftline" in r.text
    typo = SIMPLE.replace("group_wait: 30s", "group_wiat: 30s")
    r = await client.put("/v1/alerting/config", content=typo, headers=h(k1["admin"], **yml))
    assert r.status_code == 422
    assert {"route.group_wiat"} <= {e["field"] for e in r.json()["errors"]}
    files = SIMPLE.replace("smtp_auth_password: 'password'", "smtp_auth_password_file: /etc/shadow")
    r = await client.put("/v1/alerting/config", content=files, headers=h(k1["admin"], **yml))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "global.smtp_auth_password_file"


async def test_a_configuration_read_back_and_written_again_keeps_its_secrets(client, keys):
    (t1, k1), _ = keys.items()
    yml = {"Content-Type": "application/yaml"}
    r = await client.put("/v1/alerting/config", content=SIMPLE, headers=h(k1["admin"], **yml))
    assert r.status_code == 200, r.text
    shown = (await client.get("/v1/alerting/config", headers=h(k1["viewer"]))).json()
    shown["route"]["group_wait"] = "10s"  # an edit
    shown["receivers"].reverse()  # receivers are matched by name, not by place
    r = await client.put("/v1/alerting/config", json=shown, headers=h(k1["admin"]))
    assert r.status_code == 200, r.text
    stored = client.runtime.configs[t1]
    assert stored.route.group_wait == 10
    assert stored.global_.smtp_auth_password == "password"
    keys_of = {x.name: [p.service_key for p in x.pagerduty_configs] for x in stored.receivers}
    assert keys_of["team-X-pager"] == ["<team-X-key>"]
    assert keys_of["team-DB-pager"] == ["<team-DB-key>"]
    # a <secret> where nothing is stored is refused
    shown["receivers"].append({"name": "new", "pagerduty_configs": [{"routing_key": "<secret>"}]})
    r = await client.put("/v1/alerting/config", json=shown, headers=h(k1["admin"]))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "receivers.5.pagerduty_configs.0.routing_key"
