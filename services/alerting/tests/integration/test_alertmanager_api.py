"""Alertmanager's face, driven by Debian's real amtool against the real service (uvicorn on
loopback, real Kafka and PostgreSQL): `alert query`, `silence add/query/expire`, `config
routes test`, bearer and basic auth from `--http.config.file`, tenant scoping; silences made
with amtool mute Driftline's own deliveries and those made on /v1 show in amtool; the
configuration is a real alertmanager.yml and the webhook gets bearer auth and working links."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn
import yaml
from jsonschema_rs import Draft202012Validator  # schemathesis's validator (a dev dependency)

from driftline_alerting.app import build, create_app
from driftline_alerting.settings import AlertingOptions, AlertingSettings
from driftline_core.auth import ApiKeys
from driftline_core.db import Database
from driftline_core.events import DriftResult
from driftline_core.kafka import EventProducer
from driftline_ingestion.app import MIGRATIONS as INGESTION_MIGRATIONS

from .conftest import free_port
from .results import drift_result

T0 = 1_795_000_000.0


def result(tenant: str, share: float, end: float, model: str) -> DriftResult:
    return drift_result(tenant, share, end, model, income_feature=False)


RULE = {  # replaces the default rule of that id (the tenant's other defaults do not fire)
    "id": "dataset-drift",
    "name": "DatasetDrift",
    "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
    "severity": "critical",
    "annotations": {"summary": "{value:.0%} of {model} drifted"},
}

ALERTMANAGER_YML = """
global:
  resolve_timeout: 5m
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['{severity="critical", team="payments"}']
      receiver: pager
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        http_config:
          authorization:
            credentials: hooktoken
  - name: pager
    pagerduty_configs:
      - routing_key: R0UT1NG
        url: http://127.0.0.1:9/enqueue
"""


@dataclass
class Served:
    url: str
    tenant: str
    admin: str
    viewer: str
    other: str  # the other tenant's admin key
    topic: str
    tmp: Path

    def http_config(self, key: str, basic: bool = False) -> str:
        path = self.tmp / f"{uuid.uuid4().hex}.yml"
        if basic:
            path.write_text(f"basic_auth:\n  username: {self.tenant}\n  password: {key}\n")
        else:
            path.write_text(f"authorization:\n  type: Bearer\n  credentials: {key}\n")
        return str(path)

    async def amtool(self, key: str, *args: str, basic: bool = False, ok: bool = True) -> str:
        exe = shutil.which("amtool")
        if exe is None:
            pytest.fail("amtool is missing: deploy/local/bootstrap.sh installs it")
        proc = await asyncio.create_subprocess_exec(
            exe,
            f"--alertmanager.url={self.url}",
            f"--http.config.file={self.http_config(key, basic)}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        if ok:
            assert proc.returncode == 0, f"amtool {' '.join(args)}: {err.decode()}"
        return out.decode() + (err.decode() if not ok else "")


@pytest.fixture
async def served(stack, unique, new_topic, receiver, tmp_path) -> AsyncIterator[Served]:
    db = Database(stack.postgres, "ingestion", migrations_dir=INGESTION_MIGRATIONS)
    await db.start()
    api = ApiKeys(db)
    tenant, other = unique("t"), unique("t")
    for t in (tenant, other):
        await api.create_tenant(t, t)
    _, admin = await api.create(tenant, "admin", {"admin"}, "test")
    _, viewer = await api.create(tenant, "viewer", {"read"}, "test")
    _, other_admin = await api.create(other, "admin", {"admin"}, "test")
    await db.stop()
    topic = await new_topic("drift")
    port = free_port()
    schema = unique("alerting")
    s = AlertingSettings(
        kafka=stack.kafka,
        postgres=stack.postgres,
        redis=stack.redis,
        alerting=AlertingOptions(
            group_id=unique("g"),
            tick_s=0.05,
            backoff_base_s=0.05,
            external_url=f"http://127.0.0.1:{port}",
        ),
    )
    app = create_app(s, build(s, topics={topic: "drift"}, schema=schema))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        await asyncio.sleep(0.1)
    assert server.started, "the alerting service did not start"
    try:
        yield Served(
            f"http://127.0.0.1:{port}", tenant, admin, viewer, other_admin, topic, tmp_path
        )
    finally:
        server.should_exit = True
        await task
        conn = await asyncpg.connect(stack.postgres.dsn())
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


SPEC = yaml.safe_load(
    (Path(__file__).parent.parent / "fixtures" / "alertmanager" / "openapi.yaml").read_text()
)


def problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in `value` breaks the Swagger 2.0 schema (the subset Alertmanager's spec uses:
    $ref, allOf, type, properties, required, items, additionalProperties, enum,
    minItems, format date-time)."""
    if "$ref" in schema:
        return problems(value, SPEC["definitions"][schema["$ref"].rsplit("/", 1)[1]], where)
    out: list[str] = []
    for part in schema.get("allOf", []):
        out += problems(value, part, where)
    t = schema.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t in kinds and not isinstance(value, kinds[t]):
        return [*out, f"{where}: {type(value).__name__}, not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            out.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                out.append(f"{where}: {k} is required")
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                out += problems(value[k], sub, f"{where}.{k}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k, v in value.items():
                out += problems(v, extra, f"{where}.{k}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: fewer than {schema['minItems']} items")
        for i, v in enumerate(value):
            out += problems(v, schema.get("items", {}), f"{where}[{i}]")
    return out


async def conforms(c: httpx.AsyncClient, key: str, path: str, template: str) -> Any:
    """GET path and check the answer against the spec's 200 response for `template`."""
    r = await c.get(path, headers=h(key))
    assert r.status_code == 200, r.text
    schema = SPEC["paths"][template]["get"]["responses"]["200"]["schema"]
    assert problems(r.json(), schema) == [], (path, r.json())
    return r.json()


# Driftline's own published document (docs/openapi/alerting.json): what each route declares
OURS = json.loads(
    (Path(__file__).resolve().parents[4] / "docs" / "openapi" / "alerting.json").read_text()
)


async def as_declared(c: httpx.AsyncClient, key: str, path: str, template: str) -> Any:
    """GET path and check the answer against the 200 schema docs/openapi/alerting.json
    declares for `template` (JSON Schema 2020-12, its components resolved)."""
    r = await c.get(path, headers=h(key))
    assert r.status_code == 200, r.text
    schema = OURS["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]
    validator = Draft202012Validator({**schema["schema"], "components": OURS["components"]})
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(r.json())]
    assert errors == [], (path, r.json())
    return r.json()


def test_the_shape_check_can_fail():
    alert = {"labels": {"a": "b"}, "fingerprint": "x", "status": {"state": "weird"}}
    found = problems([alert], {"$ref": "#/definitions/gettableAlerts"})
    assert "$[0]: receivers is required" in found
    assert "$[0].status.state: 'weird' not in ['unprocessed', 'active', 'suppressed']" in found
    assert problems({"labels": {"a": 1}}, {"$ref": "#/definitions/alert"}) == [
        "$.labels.a: int, not string"
    ]


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


async def test_amtool_works_unchanged_against_driftline(stack, served, receiver, wait_until):
    sv = served
    async with httpx.AsyncClient(base_url=sv.url, timeout=20) as c:
        yml = ALERTMANAGER_YML.replace("{url}", receiver.url + "/alerts")
        r = await c.put(
            "/v1/alerting/config",
            content=yml,
            headers=h(sv.admin, **{"content-type": "application/yaml"}),
        )
        assert r.status_code == 200, r.text
        r = await c.put("/v1/alert-rules/dataset-drift", json=RULE, headers=h(sv.admin))
        assert r.status_code == 200, r.text

        # a silence made with amtool before anything fires: model "fraud"
        sid = (
            await sv.amtool(
                sv.admin,
                "silence",
                "add",
                "alertname=DatasetDrift",
                "model=fraud",
                "--comment=retraining fraud",
                "--author=ops@example.org",
                "--duration=1h",
            )
        ).strip()
        assert uuid.UUID(sid)
        # Driftline's own face shows the same silence
        [v1] = (await c.get("/v1/silences", headers=h(sv.viewer))).json()
        assert (v1["id"], v1["state"], v1["created_by"]) == (sid, "active", "ops@example.org")

        producer = EventProducer(stack.kafka)
        await producer.start()
        try:
            for model in ("credit", "fraud"):  # one group (group_by alertname)
                await producer.send(result(sv.tenant, 0.9, T0, model), topic=sv.topic)
        finally:
            await producer.stop()

        async def alerts_in() -> bool:
            # -a -s: active and silenced ones (amtool's -s alone shows only the silenced)
            got = orjson.loads(
                await sv.amtool(sv.viewer, "-o", "json", "alert", "query", "-a", "-s")
            )
            return len(got) == 2

        await wait_until(alerts_in, timeout=60)
        # amtool alert query: active only by default, the silenced one left out
        active = orjson.loads(await sv.amtool(sv.viewer, "-o", "json", "alert", "query"))
        assert [a["labels"]["model"] for a in active] == ["credit"]
        assert active[0]["status"]["state"] == "active"
        assert active[0]["receivers"] == [{"name": "hook"}]
        both = orjson.loads(
            await sv.amtool(sv.viewer, "-o", "json", "alert", "query", "-a", "-s", basic=True)
        )
        fraud = next(a for a in both if a["labels"]["model"] == "fraud")
        # (amtool 0.25 prints the status as its model has it: without the newer mutedBy)
        assert {k: fraud["status"][k] for k in ("state", "silencedBy", "inhibitedBy")} == {
            "state": "suppressed",
            "silencedBy": [sid],
            "inhibitedBy": [],
        }
        filtered = orjson.loads(
            await sv.amtool(sv.viewer, "-o", "json", "alert", "query", "-s", 'model=~"fr.*"')
        )
        assert [a["labels"]["model"] for a in filtered] == ["fraud"]

        # Driftline's own delivery left the amtool-silenced alert out
        async def delivered() -> bool:
            return bool(receiver.hits) and any(
                d["status"] == "delivered"
                for d in (await c.get("/v1/deliveries", headers=h(sv.viewer))).json()
            )

        await wait_until(delivered, timeout=60)
        hit = receiver.hits[0]
        body = orjson.loads(hit.body)
        assert [a["labels"]["model"] for a in body["alerts"]] == ["credit"]
        assert hit.headers["authorization"] == "Bearer hooktoken"  # auth instead of signatures
        assert "webhook-signature" not in hit.headers
        # the links work: the alert and the model
        assert body["externalURL"] == sv.url
        link = body["alerts"][0]["generatorURL"]
        assert link.startswith(sv.url + "/v1/alerts/")
        page = await c.get(link.removeprefix(sv.url), headers=h(sv.viewer))
        assert page.status_code == 200, page.text
        assert page.json()["labels"]["model"] == "credit"
        assert (
            body["alerts"][0]["annotations"]["driftline_model_url"] == sv.url + "/v1/models/credit"
        )

        # every answer has the shape of Alertmanager's OpenAPI document
        for path, template in (
            ("/api/v2/status", "/status"),
            ("/api/v2/receivers", "/receivers"),
            ("/api/v2/alerts", "/alerts"),
            ("/api/v2/alerts/groups", "/alerts/groups"),
            ("/api/v2/silences", "/silences"),
            (f"/api/v2/silence/{sid}", "/silence/{silenceID}"),
        ):
            await conforms(c, sv.viewer, path, template)
            await as_declared(c, sv.viewer, path, path.replace(sid, "{silence_id}"))
        # and as Driftline's own document declares, /v1 too (alerts firing, deliveries made)
        fingerprint = link.rsplit("/", 1)[1]
        for path, template in (
            ("/v1/alerts", "/v1/alerts"),
            (f"/v1/alerts/{fingerprint}", "/v1/alerts/{fingerprint}"),
            ("/v1/deliveries", "/v1/deliveries"),
            ("/v1/silences", "/v1/silences"),
            ("/v1/alert-rules", "/v1/alert-rules"),
            ("/v1/alert-rules/dataset-drift", "/v1/alert-rules/{rule_id}"),
            ("/v1/alerting/config", "/v1/alerting/config"),
        ):
            assert await as_declared(c, sv.viewer, path, template), path
        [group] = await conforms(c, sv.viewer, "/api/v2/alerts/groups", "/alerts/groups")
        assert group["labels"] == {"alertname": "DatasetDrift"}
        assert sorted(a["labels"]["model"] for a in group["alerts"]) == ["credit", "fraud"]
        muted_out = await conforms(c, sv.viewer, "/api/v2/alerts?silenced=false", "/alerts")
        assert [a["labels"]["model"] for a in muted_out] == ["credit"]

        # a silence made on /v1 shows in amtool and mutes there too
        ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = await c.post(
            "/v1/silences",
            json={"matchers": ['model="credit"'], "ends_at": ends, "comment": "from v1"},
            headers=h(sv.admin),
        )
        assert r.status_code == 201, r.text
        v1_id = r.json()["id"]
        listed = orjson.loads(await sv.amtool(sv.viewer, "-o", "json", "silence", "query"))
        assert {s["id"] for s in listed} == {sid, v1_id}
        assert orjson.loads(await sv.amtool(sv.viewer, "-o", "json", "alert", "query")) == []
        q = (await sv.amtool(sv.viewer, "silence", "query", "-q", "model=credit")).split()
        assert q == [v1_id]

        # amtool silence expire: expired under both faces
        await sv.amtool(sv.admin, "silence", "expire", sid)
        states = {
            s["id"]: s["state"] for s in (await c.get("/v1/silences", headers=h(sv.viewer))).json()
        }
        assert states[sid] == "expired"
        expired = orjson.loads(
            await sv.amtool(sv.viewer, "-o", "json", "silence", "query", "--expired")
        )
        assert [s["id"] for s in expired] == [sid]

        # a read-only key cannot silence; another tenant sees none of it
        denied = await sv.amtool(sv.viewer, "silence", "add", "model=x", "--comment=x", ok=False)
        assert "403" in denied or "Forbidden" in denied or "permission" in denied
        assert (
            orjson.loads(
                await sv.amtool(sv.other, "-o", "json", "alert", "query", "-a", "-s", "-i")
            )
            == []
        )
        assert orjson.loads(await sv.amtool(sv.other, "-o", "json", "silence", "query")) == []
        gone = await sv.amtool(sv.other, "silence", "expire", v1_id, ok=False)
        assert "not found" in gone.lower() or "404" in gone

        # amtool config routes test reads the tenant's configuration from /api/v2/status
        routed = await sv.amtool(
            sv.viewer, "config", "routes", "test", "severity=critical", "team=payments"
        )
        assert routed.strip() == "pager"
        routed = await sv.amtool(sv.viewer, "config", "routes", "test", "severity=warning")
        assert routed.strip() == "hook"
        shown = await sv.amtool(sv.viewer, "config", "show")
        assert "R0UT1NG" not in shown
        assert "hooktoken" not in shown
        assert "<secret>" in shown


async def test_the_api_v2_shapes(served, wait_until):
    sv = served
    async with httpx.AsyncClient(base_url=sv.url, timeout=20) as c:
        st = (await c.get("/api/v2/status", headers=h(sv.viewer))).json()
        assert st["cluster"]["status"] == "disabled"
        assert set(st["versionInfo"]) == {
            "version",
            "revision",
            "branch",
            "buildUser",
            "buildDate",
            "goVersion",
        }
        assert "receiver: default" in st["config"]["original"]
        assert (await c.get("/api/v2/receivers", headers=h(sv.viewer))).json() == [
            {"name": "default"}
        ]
        assert (await c.get("/api/v2/alerts/groups", headers=h(sv.viewer))).json() == []
        assert (await c.get("/api/v2/status")).status_code == 401
        starts = datetime.now(UTC)
        body: dict[str, Any] = {
            "matchers": [{"name": "model", "value": "credit", "isRegex": False}],
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=1)).isoformat(),
            "createdBy": "me",
            "comment": "c",
        }
        r = await c.post("/api/v2/silences", json=body, headers=h(sv.admin))
        assert r.status_code == 200, r.text
        sid = r.json()["silenceID"]
        got = (await c.get(f"/api/v2/silence/{sid}", headers=h(sv.viewer))).json()
        assert got["matchers"] == [
            {"name": "model", "value": "credit", "isRegex": False, "isEqual": True}
        ]
        assert got["status"] == {"state": "active"}
        # an update keeps the id
        r = await c.post(
            "/api/v2/silences", json={**body, "id": sid, "comment": "longer"}, headers=h(sv.admin)
        )
        assert r.json() == {"silenceID": sid}
        assert (await c.get(f"/api/v2/silence/{sid}", headers=h(sv.viewer))).json()[
            "comment"
        ] == "longer"
        bad = await c.post(
            "/api/v2/silences",
            json={**body, "endsAt": (starts - timedelta(hours=2)).isoformat()},
            headers=h(sv.admin),
        )
        assert bad.status_code == 400
        assert isinstance(bad.json(), str)  # Alertmanager answers errors with a string
        empty = await c.post(
            "/api/v2/silences",
            json={**body, "matchers": [{"name": "a", "value": ".*", "isRegex": True}]},
            headers=h(sv.admin),
        )
        assert empty.status_code == 400
        assert "empty string" in empty.json()
        r = await c.get("/api/v2/alerts", params={"filter": "nonsense"}, headers=h(sv.viewer))
        assert r.status_code == 400
        assert (await c.delete(f"/api/v2/silence/{sid}", headers=h(sv.other))).status_code == 404
        deleted = await c.delete(f"/api/v2/silence/{sid}", headers=h(sv.admin))
        assert deleted.status_code == 200  # with no body nor content type, as Alertmanager's
        assert deleted.content == b""
        assert "content-type" not in deleted.headers
        state = (await c.get(f"/api/v2/silence/{sid}", headers=h(sv.viewer))).json()["status"]
        assert state == {"state": "expired"}
