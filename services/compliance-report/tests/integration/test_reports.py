"""Reports built from seeded data against the real Kafka, PostgreSQL, Redis and InfluxDB.

The seed, for one tenant: users of every role; a model with a sensitive field; two versions
with validation evidence (one meets its gates, one does not); an approval by a second
engineer; a promotion to production by the submitter (a segregation-of-duties violation
through the real API); a planted approval of a version by its own submitter (the registry
refuses that, so it is published straight onto the registry topic, as a forged or legacy
record would be); audit-trail reads by the auditor; a retention policy; a key rotation;
two alerts (one resolved after 30 minutes); drift and performance windows in InfluxDB, some
of them outside the period. A second tenant is erased.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from jsonschema_rs import Draft202012Validator  # schemathesis's validator (a dev dependency)

from driftline_core.events import AlertEvent, RegistryChange
from driftline_core.reportsign import check_bundle

pytestmark = pytest.mark.integration

ADMIN = {"X-Admin-Token": "driftline-dev-admin"}
PASSWORD = "correct horse battery staple"
SCHEMA = {
    "features": [
        {"name": "income", "kind": "numeric"},
        {"name": "age", "kind": "numeric"},
        {"name": "zip", "kind": "categorical", "sensitive": True},
        {"name": "employed", "kind": "boolean"},
    ]
}
NOW = datetime.now(UTC).replace(microsecond=0)
START, END = NOW - timedelta(hours=6), NOW + timedelta(hours=1)
# drift windows: 6 in the period (2 with dataset drift), 2 before it
WINDOWS = [
    (START + timedelta(minutes=30 * k), share, events)
    for k, (share, events) in enumerate(
        [(0.0, 100), (0.25, 120), (0.75, 90), (0.5, 110), (1.0, 130), (0.25, 100)], start=1
    )
]
# the windows (by index) in which each feature's verdict is "drifted", independent of the
# dataset verdicts above: feature drift in 4 windows, prediction drift in 1
FEATURE_DRIFT = {"income": {1}, "zip": {0, 2, 4}, "prediction": {5}}
OUTSIDE = [(START - timedelta(hours=2), 1.0, 999), (START - timedelta(minutes=1), 1.0, 999)]
PERFORMANCE = [(START + timedelta(hours=k), acc) for k, acc in ((1, 0.9), (2, 0.8), (3, 0.7))]


def _sha(n: int) -> str:
    return f"{n:x}" * 64


@pytest.fixture(scope="module")
async def seeded(apps: Any, stack) -> dict[str, Any]:
    ing = apps.ingestion
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN)
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['api_key']}"}
    tokens: dict[str, dict[str, str]] = {}
    for name, role in (
        ("alice", "ml-engineer"),
        ("bob", "ml-engineer"),
        ("carol", "auditor"),
        ("dave", "viewer"),
    ):
        r = await ing.post(
            "/v1/auth/users",
            json={"username": name, "password": PASSWORD, "role": role},
            headers=key,
        )
        assert r.status_code == 201, r.text
        r = await ing.post(
            "/v1/auth/login", json={"tenant": tid, "username": name, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    alice, bob, carol = tokens["alice"], tokens["bob"], tokens["carol"]
    r = await ing.post(
        "/v1/models",
        json={
            "id": "credit",
            "name": "Credit risk",
            "task": "classification",
            "feature_schema": SCHEMA,
        },
        headers=alice,
    )
    assert r.status_code == 201, r.text
    for version, auc in (("1", 0.91), ("2", 0.80)):
        r = await ing.post(
            "/v1/models/credit/versions",
            json={
                "version": version,
                "artifact_uri": f"s3://models/credit/{version}",
                "artifact_sha256": _sha(int(version)),
                "metadata": {
                    "validation": {
                        "dataset": "holdout-2026-10",
                        "metrics": {"auc": auc, "log_loss": 0.3},
                        "gates": {"auc": {"min": 0.85}, "log_loss": {"max": 0.4}},
                    }
                },
            },
            headers=alice,
        )
        assert r.status_code == 201, r.text
    r = await ing.post(
        "/v1/models/credit/versions/1/approve", json={"comment": "holdout AUC 0.91"}, headers=bob
    )
    assert r.status_code == 200, r.text
    # the registry refuses an approval by the submitter ...
    r = await ing.post("/v1/models/credit/versions/2/approve", json={}, headers=alice)
    assert r.status_code == 403, r.text
    # ... so the planted violation arrives on the topic, as a forged or legacy record would
    await apps.producer.send(
        RegistryChange(
            tenant_id=tid,
            model_id="credit",
            model_version="2",
            change="version_approved",
            actor="user:alice",
            details={
                "approved_by": "user:alice",
                "submitted_by": "user:alice",
                "comment": "self-approved",
                "meaning": "approved for production use",
            },
        )
    )
    r = await ing.post(
        "/v1/models/credit/versions/1/stage", json={"stage": "production"}, headers=alice
    )
    assert r.status_code == 200, r.text
    for _ in range(2):
        r = await apps.audit.get("/v1/audit/records", params={"limit": 5}, headers=carol)
        assert r.status_code == 200, r.text
    r = await ing.get("/v1/auth/users", headers=key)  # a read of personal data by the key
    assert r.status_code == 200, r.text
    r = await apps.audit.put("/v1/audit/retention", json={"retention_days": 400}, headers=key)
    assert r.status_code == 200, r.text
    r = await ing.post(f"/v1/auth/tenants/{tid}/data-keys/rotate", headers=key)
    assert r.status_code == 200, r.text
    # alerts: one resolved after 30 minutes, one still firing
    fired, resolved = START + timedelta(minutes=40), START + timedelta(minutes=70)
    labels = {"model": "credit", "alertname": "drift"}
    for kind, fp, at in (
        ("firing", "fp-resolved", fired),
        ("firing", "fp-resolved", fired + timedelta(minutes=5)),  # a repeat: the same alert
        ("resolved", "fp-resolved", resolved),
        ("firing", "fp-open", START + timedelta(hours=2)),
    ):
        await apps.producer.send(
            AlertEvent(
                tenant_id=tid,
                kind=kind,
                fingerprint=fp,
                rule_id="drift-high",
                severity="critical",
                labels=labels,
                annotations={"summary": f"{fp} drift"},
                starts_at=fired if fp == "fp-resolved" else at,
                ends_at=resolved if kind == "resolved" else None,
                occurred_at=at,
            )
        )
    lines = [
        f"drift_window,tenant={tid},model=credit,version=1 events={n}i,late=0i,"
        f"drifted_share={share},dataset_drift={int(share >= 0.5)}i,quality_score={100 - 10 * share}"
        f" {int(t.timestamp())}"
        for t, share, n in WINDOWS + OUTSIDE
    ]
    lines += [
        f"drift_feature,tenant={tid},model=credit,version=1,feature={f},test=psi statistic=0.1,"
        f"threshold=0.2,p_value=-1,drifted={int(k in FEATURE_DRIFT[f])}i"
        f" {int(t.timestamp())}"
        for k, (t, _, _) in enumerate(WINDOWS)
        for f in FEATURE_DRIFT
    ]
    lines += [
        f"performance,tenant={tid},model=credit,version=1 labelled=50i,accuracy={acc}"
        f" {int(t.timestamp())}"
        for t, acc in PERFORMANCE
    ]
    async with httpx.AsyncClient(base_url=stack.influx.url) as c:
        r = await c.post(
            "/write",
            params={"db": stack.influx.database, "precision": "s"},
            content="\n".join(lines),
        )
        assert r.status_code == 204, r.text

    # a second tenant, erased
    erased = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": erased, "name": erased}, headers=ADMIN)
    assert r.status_code == 201, r.text
    ekey = {"Authorization": f"Bearer {r.json()['api_key']}"}
    r = await ing.post(
        "/v1/models",
        json={"id": "churn", "name": "Churn", "task": "classification", "feature_schema": SCHEMA},
        headers=ekey,
    )
    assert r.status_code == 201, r.text
    r = await ing.post(
        f"/v1/auth/tenants/{erased}/erase",
        json={"confirm": erased, "reason": "customer contract ended (ticket 4711)"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text

    ev = apps.deps.evidence

    async def all_landed() -> bool:
        facts = await ev.facts(tid, decrypt=False)
        kinds = [f["kind"] for f in facts if f["topic"] != "driftline.audit.v1"]
        kinds += [
            f["kind"]
            for f in facts
            if f["topic"] == "driftline.audit.v1" and not f["kind"].startswith("registry.")
        ]
        landed[:] = kinds
        return (
            kinds.count("registry.version_approved") == 2
            and kinds.count("registry.version_stage_changed") == 1
            and kinds.count("alert.resolved") == 1
            and kinds.count("alert.firing") == 3
            and kinds.count("audit.query") == 2
            and kinds.count("user.list") == 1
            and "audit.retention_set" in kinds
            and "data_key.rotate" in kinds
            and any(f["kind"] == "tenant.erase" for f in await ev.facts(erased, decrypt=False))
        )

    landed: list[str] = []
    try:
        await apps.wait(all_landed, timeout=90)
    except AssertionError as e:
        raise AssertionError(f"seed evidence incomplete: {sorted(landed)}") from e
    return {"tenant": tid, "erased": erased, "key": key, **tokens}


async def _generate(
    apps: Any,
    headers: dict[str, str],
    framework: str,
    params: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "framework": framework,
        "period_start": START.isoformat(),
        "period_end": END.isoformat(),
        **extra,
    }
    r = await apps.reports.post("/v1/reports", json=body, headers=headers, params=params)
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    assert r.headers["location"] == f"/v1/reports/{rid}"
    seen: dict[str, Any] = {}

    async def done() -> bool:
        g = await apps.reports.get(f"/v1/reports/{rid}", headers=headers, params=params)
        assert g.status_code == 200, g.text
        seen.update(g.json())
        return bool(seen["status"] in ("done", "failed"))

    await apps.wait(done, timeout=120)
    assert seen["status"] == "done", seen
    assert seen["progress"] == 1
    return seen


DOC = json.loads(
    (Path(__file__).resolve().parents[4] / "docs/openapi/compliance-report.json").read_text()
)


def _violations(body: Any, path: str, method: str = "get", status: int = 200) -> list[str]:
    """What of `body` its operation's answer in docs/openapi/compliance-report.json refuses."""
    answer = DOC["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(body)]


async def _document(apps: Any, rep: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    r = await apps.reports.get(rep["downloads"]["report.json"], headers=headers)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    # report.json is the Report document the file route declares
    assert _violations(doc, "/v1/reports/{report_id}/files/{name}") == []
    assert _violations({**doc, "tenant_id": 5}, "/v1/reports/{report_id}/files/{name}")
    return doc


def _at(v: str) -> datetime:
    return datetime.fromisoformat(v.replace("Z", "+00:00"))


async def test_sox_report_states_the_changes_violations_and_integrity(apps: Any, seeded):
    rep = await _generate(apps, seeded["carol"], "sox")
    doc = await _document(apps, rep, seeded["carol"])
    s = doc["summary"]
    assert s["versions_registered"] == 2
    assert s["versions_approved"] == 2
    assert s["stage_changes"] == 1
    assert s["violations"] == 2
    v = {(x["rule"], x["actor"], x["model_id"], x["version"]) for x in doc["violations"]}
    assert v == {
        ("approver-is-submitter", "user:alice", "credit", "2"),
        ("submitter-promoted-to-production", "user:alice", "credit", "1"),
    }
    changes = [(c["change"], c["actor"], c["version"]) for c in doc["changes"]]
    assert changes == [
        ("model_registered", "user:alice", None),
        ("version_registered", "user:alice", "1"),
        ("version_registered", "user:alice", "2"),
        ("version_approved", "user:bob", "1"),
        ("version_approved", "user:alice", "2"),
        ("version_stage_changed", "user:alice", "1"),
    ]
    created = sorted(a["detail"] for a in doc["access_changes"] if a["action"] == "user.create")
    assert created == [
        "role=auditor, username=carol",
        "role=ml-engineer, username=alice",
        "role=ml-engineer, username=bob",
        "role=viewer, username=dave",
    ]
    i = doc["integrity"]
    assert i["status"] == "verified", i
    assert i["checkpoint_signature_valid"] is True
    assert i["checkpoint_seq"] >= 1
    assert i["records"] >= i["checkpoint_seq"]
    for c in doc["changes"]:
        assert START <= _at(c["at"]) < END


async def test_gdpr_report_states_processing_access_retention_and_keys(apps: Any, seeded):
    rep = await _generate(apps, seeded["carol"], "gdpr", formats=["json", "html"])
    assert sorted(f["name"] for f in rep["files"]) == ["report.html", "report.json"]
    doc = await _document(apps, rep, seeded["carol"])
    (p,) = doc["processing"]
    assert p["model_id"] == "credit"
    assert p["sensitive_fields"] == ["zip"]
    assert p["categories"] == {"boolean": 1, "categorical": 1, "numeric": 2}
    assert p["registered_by"] == "user:alice"
    assert doc["erasures"] == []
    access = {(a["actor"], a["action"]): a["count"] for a in doc["personal_data_access"]}
    assert access[("user:carol", "audit.query")] == 2
    ((lister, listed),) = [(a, n) for (a, act), n in access.items() if act == "user.list"]
    assert lister.startswith("key:")
    assert listed == 1
    assert doc["retention"]["audit_retention_days"] == 400
    assert doc["retention"]["set_by"].startswith("key:")
    k = doc["keys"]
    assert len(k["rotations_in_period"]) == 1
    assert k["versions"] == 2
    assert k["current_version"] == 2
    assert k["destroyed"] == 0
    assert doc["summary"]["erasures"] == 0
    assert doc["tenant_erased"] is False


async def test_fda_report_versions_gates_signatures_monitoring_and_alerts(apps: Any, seeded):
    rep = await _generate(apps, seeded["carol"], "fda")
    doc = await _document(apps, rep, seeded["carol"])
    versions = {v["version"]: v for v in doc["versions"]}
    assert versions["1"]["gates_met"] is True
    assert versions["2"]["gates_met"] is False
    assert [(g["metric"], g["met"]) for g in versions["2"]["gates"]] == [
        ("auc", False),
        ("log_loss", True),
    ]
    assert versions["1"]["artifact_sha256"] == _sha(1)
    assert versions["1"]["stage"] == "production"
    sigs = [(s["signer"], s["version"], s["meaning"]) for s in doc["signatures"]]
    assert sigs == [
        ("user:bob", "1", "approved for production use"),
        ("user:alice", "2", "approved for production use"),
    ]
    (m,) = doc["monitoring"]
    assert m["windows"] == len(WINDOWS)
    assert m["events"] == sum(n for _, _, n in WINDOWS)
    assert m["windows_with_dataset_drift"] == sum(1 for _, s, _ in WINDOWS if s >= 0.5)
    feature_windows = FEATURE_DRIFT["income"] | FEATURE_DRIFT["zip"]
    assert m["windows_with_feature_drift"] == len(feature_windows) == 4
    assert m["windows_with_prediction_drift"] == len(FEATURE_DRIFT["prediction"]) == 1
    assert m["features_with_drift"] == ["income", "zip"]
    assert m["versions_monitored"] == ["1"]
    summary = doc["summary"]
    assert summary["windows"] == len(WINDOWS)
    assert summary["windows_with_dataset_drift"] == m["windows_with_dataset_drift"] == 3
    assert summary["windows_with_feature_drift"] == 4
    assert summary["windows_with_prediction_drift"] == 1
    assert summary["versions_registered"] == len(versions) == 2
    assert summary["versions_monitored"] == 1
    assert m["max_drifted_share"] == 1.0
    assert m["mean_drifted_share"] == pytest.approx(sum(s for _, s, _ in WINDOWS) / len(WINDOWS))
    assert m["min_quality_score"] == pytest.approx(90.0)
    assert m["features"][0] == {"feature": "zip", "windows": 6, "drifted": 3}
    assert m["performance_windows"] == 3
    assert m["performance"]["accuracy"]["mean"] == pytest.approx(0.8)
    assert m["performance"]["accuracy"]["last"] == pytest.approx(0.7)
    assert [t for t, _ in m["series"]["drifted_share"]] == [
        t.isoformat().replace("+00:00", "Z") for t, _, _ in WINDOWS
    ]
    alerts = {a["fingerprint"]: a for a in doc["alerts"]}
    assert set(alerts) == {"fp-resolved", "fp-open"}
    assert alerts["fp-resolved"]["minutes_to_resolve"] == 30.0
    assert alerts["fp-open"]["resolved_at"] is None
    assert doc["summary"]["alerts_unresolved"] == 1
    assert doc["summary"]["versions_failing_gates"] == 1
    assert doc["integrity"]["status"] == "verified"

    # the HTML's drift chart has one vertex per window of the period, and nothing outside it
    r = await apps.reports.get(rep["downloads"]["report.html"], headers=seeded["carol"])
    html = r.text
    group = re.search(r'<g id="series-credit-drifted_share">\s*<path d="([^"]+)"', html)
    assert group is not None
    vertices = re.findall(r"[ML] ?[-\d.]+ [-\d.]+", group.group(1))
    assert len(vertices) == len(WINDOWS)
    assert "user:bob" in html

    # the PDF renders to non-empty pages, and a chart's line is drawn on one of them
    r = await apps.reports.get(rep["downloads"]["report.pdf"], headers=seeded["carol"])
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    pages = _png_pages(r.content)
    assert len(pages) >= 2
    assert all(ink > 0.005 for ink, _ in pages), pages
    assert any(blue > 200 for _, blue in pages), pages  # the chart's line colour (#1f77b4)


def _png_pages(pdf: bytes) -> list[tuple[float, int]]:
    """Per page: the share of non-white pixels, and how many pixels are the chart blue."""
    import tempfile

    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "r.pdf"
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(src), f"{d}/p"], check=True)
        out = []
        for png in sorted(Path(d).glob("p-*.png")):
            px = np.asarray(Image.open(png).convert("RGB")).astype(int)
            r, g, b = px[..., 0], px[..., 1], px[..., 2]
            ink = float(((r + g + b) < 720).mean())
            blue = int(((b > 150) & (r < 90) & (g > 90) & (g < 150)).sum())
            out.append((ink, blue))
    return out


async def test_bundle_verifies_and_a_changed_byte_fails(apps: Any, seeded, tmp_path):
    rep = await _generate(apps, seeded["carol"], "sox", formats=["json", "pdf"])
    r = await apps.reports.get(rep["downloads"]["bundle"], headers=seeded["carol"])
    assert r.status_code == 200, r.text
    good = tmp_path / "good.zip"
    good.write_bytes(r.content)
    key = (await apps.reports.get("/v1/reports/public-key", headers=seeded["carol"])).json()
    pem = tmp_path / "reports.pem"
    pem.write_text(key["public_key"])
    check = check_bundle(r.content)
    assert check.ok, check.problems
    assert check.fingerprint == key["fingerprint"]
    assert check.manifest["report_id"] == rep["id"]

    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    doc = orjson.loads(files["report.json"])
    doc["summary"]["violations"] = 0  # what someone hiding a violation would do
    files["report.json"] = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)

    cli = [str(Path(sys.executable).with_name("driftline")), "report", "verify"]
    ok = subprocess.run([*cli, str(good), "--public-key", str(pem)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout
    broken = subprocess.run([*cli, str(bad)], capture_output=True, text=True)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "report.json" in broken.stdout
    assert "differs from the manifest" in broken.stdout
    # one file checked against the bundle's manifest
    (tmp_path / "report.pdf").write_bytes(files["report.pdf"])
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    single = subprocess.run(
        [*cli, str(tmp_path / "report.pdf"), "--manifest", str(tmp_path / "manifest.json")],
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stdout + single.stderr


async def test_who_may_fetch_reports(apps: Any, seeded):
    rep = await _generate(apps, seeded["carol"], "gdpr", formats=["json"])
    path = f"/v1/reports/{rep['id']}"
    assert (await apps.reports.get(path, headers=seeded["carol"])).status_code == 200
    # an ml-engineer and a viewer of the same tenant lack the audit permission
    assert (await apps.reports.get(path, headers=seeded["dave"])).status_code == 403
    assert (await apps.reports.get(path, headers=seeded["alice"])).status_code == 403
    # another tenant's auditor and viewer see nothing, as for a report that does not exist
    other = f"t{uuid.uuid4().hex[:10]}"
    r = await apps.ingestion.post(
        "/v1/auth/tenants", json={"id": other, "name": other}, headers=ADMIN
    )
    okey = {"Authorization": f"Bearer {r.json()['api_key']}"}
    headers = {}
    for name, role in (("eve", "auditor"), ("frank", "viewer")):
        r = await apps.ingestion.post(
            "/v1/auth/users",
            json={"username": name, "password": PASSWORD, "role": role},
            headers=okey,
        )
        assert r.status_code == 201, r.text
        r = await apps.ingestion.post(
            "/v1/auth/login", json={"tenant": other, "username": name, "password": PASSWORD}
        )
        headers[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    missing = await apps.reports.get(f"/v1/reports/{uuid.uuid4()}", headers=headers["eve"])
    theirs = await apps.reports.get(path, headers=headers["eve"])
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(rep["id"], "X") == missing.json()["detail"].replace(
        missing.json()["detail"].split("'")[1], "X"
    )
    assert (
        await apps.reports.get(f"{path}/files/report.json", headers=headers["eve"])
    ).status_code == 404
    assert (await apps.reports.get(path, headers=headers["frank"])).status_code == 403
    listed = (await apps.reports.get("/v1/reports", headers=headers["eve"])).json()["items"]
    assert rep["id"] not in {x["id"] for x in listed}
    # every download was audited and announced
    ev = apps.deps.evidence

    async def audited() -> bool:
        facts = await ev.facts(seeded["tenant"], kinds=["report.download"], decrypt=False)
        return any(f["resource_id"] == rep["id"] for f in facts)

    await apps.reports.get(f"{path}/files/report.json", headers=seeded["carol"])
    await apps.wait(audited, timeout=30)


async def test_erased_tenant_gets_an_erasure_certificate(apps: Any, seeded):
    erased = seeded["erased"]
    params = {"tenant_id": erased}
    rep = await _generate(apps, ADMIN, "gdpr", formats=["json", "pdf"], params=params)
    r = await apps.reports.get(rep["downloads"]["report.json"], headers=ADMIN, params=params)
    assert r.status_code == 200, r.text
    doc = r.json()
    (e,) = doc["erasures"]
    assert e["actor"] == "platform-admin"
    assert e["reason"] == "customer contract ended (ticket 4711)"
    assert e["data_keys_destroyed"] >= 1
    assert doc["tenant_erased"] is True
    assert doc["summary"]["erasures"] == 1
    assert doc["keys"]["destroyed"] == doc["keys"]["versions"] >= 1
    # what was recorded about the tenant before the erasure cannot be read any more
    assert doc["processing"] == []
    assert doc["integrity"]["status"] == "verified"
    # a tenant member cannot act as another tenant; the platform token must be right
    wrong = await apps.reports.get(
        f"/v1/reports/{rep['id']}", headers={"X-Admin-Token": "nope"}, params=params
    )
    assert wrong.status_code == 401
    assert (
        await apps.reports.get(f"/v1/reports/{rep['id']}", headers=seeded["carol"])
    ).status_code == 404


async def test_schedules_queue_each_period_once(apps: Any, seeded):
    h = seeded["carol"]
    r = await apps.reports.post(
        "/v1/report-schedules", json={"framework": "sox", "cadence": "daily"}, headers=h
    )
    assert r.status_code == 201, r.text
    sched = r.json()
    assert _violations(sched, "/v1/report-schedules", "post", 201) == []
    listed = (await apps.reports.get("/v1/report-schedules", headers=h)).json()
    assert sched in listed
    assert _violations(listed, "/v1/report-schedules") == []
    first = (
        _at(str(sched["next_run_at"]))
        if isinstance(sched["next_run_at"], str)
        else sched["next_run_at"]
    )
    assert first > NOW
    sch = apps.deps.scheduler
    assert await sch.run_once(now=first + timedelta(hours=1)) == 0  # the day has not ended
    made = await sch.run_once(now=first + timedelta(days=1, minutes=5))
    assert made >= 1
    assert await sch.run_once(now=first + timedelta(days=1, minutes=6)) == 0  # once per period
    items = (await apps.reports.get("/v1/reports", headers=h)).json()["items"]
    mine = [x for x in items if x["schedule_id"] == sched["id"]]
    assert len(mine) == 1
    assert _at(str(mine[0]["period_start"])) == first
    assert _at(str(mine[0]["period_end"])) == first + timedelta(days=1)
    r = await apps.reports.delete(f"/v1/report-schedules/{sched['id']}", headers=h)
    assert r.status_code == 204
    listed = (await apps.reports.get("/v1/report-schedules", headers=h)).json()
    assert sched["id"] not in {s["id"] for s in listed}


async def test_bad_requests_get_clear_errors(apps: Any, seeded):
    h = seeded["carol"]
    bad = [
        {"framework": "hipaa", "period_start": START.isoformat(), "period_end": END.isoformat()},
        {"framework": "sox", "period_start": END.isoformat(), "period_end": START.isoformat()},
        {
            "framework": "model_card",
            "period_start": START.isoformat(),
            "period_end": END.isoformat(),
        },
        {
            "framework": "sox",
            "period_start": "2020-01-01T00:00:00Z",
            "period_end": "2026-01-01T00:00:00Z",
        },
        {"framework": "sox", "period_start": "2026-01-01", "period_end": END.isoformat()},
    ]
    for body in bad:
        r = await apps.reports.post("/v1/reports", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]
    r = await apps.reports.get(f"/v1/reports/{uuid.uuid4()}/bundle", headers=h)
    assert r.status_code == 404


async def test_a_tampered_trail_is_reported_broken_at_the_changed_record(apps: Any, superuser):
    ing = apps.ingestion
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await ing.post("/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN)
    key = {"Authorization": f"Bearer {r.json()['api_key']}"}
    r = await ing.post(
        "/v1/auth/users",
        json={"username": "ida", "password": PASSWORD, "role": "auditor"},
        headers=key,
    )
    assert r.status_code == 201, r.text
    r = await ing.post(
        "/v1/auth/login", json={"tenant": tid, "username": "ida", "password": PASSWORD}
    )
    ida = {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def chained() -> bool:
        n = await superuser.fetchval("SELECT count(*) FROM audit.records WHERE tenant_id = $1", tid)
        return bool(n >= 3)

    await apps.wait(chained, timeout=60)
    async with superuser.transaction():
        # as an attacker with full database rights can: triggers off, one payload changed
        await superuser.execute("SET LOCAL session_replication_role = replica")
        await superuser.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))", tid
        )
        await superuser.execute(
            "UPDATE audit.records SET payload = 'dl1.1.forged' WHERE tenant_id = $1 AND seq = 2",
            tid,
        )
    rep = await _generate(apps, ida, "sox", formats=["json", "html"])
    doc = await _document(apps, rep, ida)
    i = doc["integrity"]
    assert i["status"] == "broken", i
    assert i["first_break"]["seq"] == 2
    assert "hash mismatch" in i["first_break"]["reason"]
    assert doc["summary"]["integrity"] == "broken"
    html = (await apps.reports.get(rep["downloads"]["report.html"], headers=ida)).text
    assert "BROKEN" in html


async def test_a_report_waits_for_evidence_published_before_it(apps: Any, seeded):
    """The evidence consumer is held back; a report asked for meanwhile waits until what
    was published before it is stored, then counts it."""
    consumer = apps.deps.runner.consumer.consumer
    held = consumer.assignment()
    consumer.pause(*held)
    try:
        at = START + timedelta(hours=5)
        await apps.producer.send(
            AlertEvent(
                tenant_id=seeded["tenant"],
                kind="firing",
                fingerprint="fp-late",
                labels={"model": "credit"},
                starts_at=at,
                occurred_at=at,
            )
        )
        body = {
            "framework": "fda",
            "period_start": START.isoformat(),
            "period_end": END.isoformat(),
            "formats": ["json"],
        }
        r = await apps.reports.post("/v1/reports", json=body, headers=seeded["carol"])
        rid = r.json()["id"]

        async def waiting() -> bool:
            g = await apps.reports.get(f"/v1/reports/{rid}", headers=seeded["carol"])
            return bool(g.json()["stage"] == "waiting for the evidence to catch up")

        await apps.wait(waiting, timeout=30)
    finally:
        consumer.resume(*held)

    async def done() -> bool:
        g = await apps.reports.get(f"/v1/reports/{rid}", headers=seeded["carol"])
        return bool(g.json()["status"] == "done")

    await apps.wait(done, timeout=90)
    rep = (await apps.reports.get(f"/v1/reports/{rid}", headers=seeded["carol"])).json()
    doc = await _document(apps, rep, seeded["carol"])
    assert doc["summary"]["evidence_complete"] is True
    assert "fp-late" in {a["fingerprint"] for a in doc["alerts"]}
