"""docker-compose.yml run for real: Docker Compose v5 on podman's Docker API, with
deploy/compose/ci.override.yml swapping the third-party images for local builds
(`make ci-images`) and the Driftline images from `make images`.

`up --wait` brings the whole system up healthy; the demo producer streams the credit-risk
model through it; its planted drift comes out as a verdict on driftline.drift.v1 and as an
alert at the webhook receiver, whose Standard Webhooks signature this test checks itself;
`down -v` leaves no container, volume or network behind. Every published port binds
127.0.0.1 on a free port (never the shared stack's).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from driftline_core.events import DriftResult, decode
from driftline_core.events.catalogue import TOPICS

from .conftest import ROOT, SERVICES, STACK_PORTS, Podman, free_port

pytestmark = [pytest.mark.deploy]
# the live tests: the first that uses `system` pays for `up --wait` (25 s on a quiet machine,
# 2-4 min on a loaded one); the demo streams 45 s and its last windows close after that
LIVE_TIMEOUT_S = 900


COMPOSE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "deploy" / "compose" / "ci.override.yml"
THIRD_PARTY = {"kafka", "postgres", "redis", "influxdb", "prometheus", "grafana"}
DRIVERS = {"init", "webhook-receiver", "demo"}
CI_IMAGES = [
    "localhost/driftline-ci/kafka:4.3.1",
    "localhost/driftline-ci/postgres:bookworm",
    "localhost/driftline-ci/redis:bookworm",
    "localhost/driftline-ci/influxdb:1.8.10",
    "localhost/driftline-ci/prometheus:bookworm",
]
PORT_VARS = [
    "DRIFTLINE_INGESTION_PORT",
    "DRIFTLINE_DRIFT_DETECTION_PORT",
    "DRIFTLINE_ALERTING_PORT",
    "DRIFTLINE_AUDIT_PORT",
    "DRIFTLINE_COMPLIANCE_REPORT_PORT",
    "DRIFTLINE_CONSOLE_PORT",
    "DRIFTLINE_WEBHOOK_RECEIVER_PORT",
    "DRIFTLINE_KAFKA_PORT",
    "DRIFTLINE_PROMETHEUS_PORT",
    "DRIFTLINE_GRAFANA_PORT",
]


def _compose_file() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_compose_names_exactly_the_services_and_the_catalogue_topics() -> None:
    spec = _compose_file()
    services = spec["services"]
    on_disk = {p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    driftline = {
        name
        for name, s in services.items()
        if "/tools:" not in s["image"] and name not in THIRD_PARTY
    }
    assert driftline == on_disk
    assert set(services) == on_disk | THIRD_PARTY | DRIVERS
    for name in on_disk:
        assert services[name]["image"].endswith(f"/{name}:${{DRIFTLINE_VERSION:-0.1.0}}")
    named = services["init"]["environment"]["DRIFTLINE_INIT_TOPICS"].split()
    assert sorted(named) == sorted(t.name for t in TOPICS)
    assert len(named) == len(set(named))


def test_compose_file_rules() -> None:
    """Health checks, depends_on conditions, loopback-only ports, secrets from files."""
    spec = _compose_file()
    services = spec["services"]
    for name, s in services.items():
        test = s.get("healthcheck", {}).get("test")
        if name not in ("init", "demo"):
            assert test, f"{name} has no health check"
            assert test[0] == "CMD-SHELL", f"{name}: podman 4.3 splits CMD-form checks"
        for port in s.get("ports", []):
            assert port.startswith("${DRIFTLINE_BIND:-127.0.0.1}:"), (name, port)
        assert ":latest" not in s["image"]
        assert ":" in s["image"].rsplit("/", 1)[-1], f"{name}: image without a tag"
    for name in SERVICES:
        s = services[name]
        assert s["read_only"] is True
        assert s["cap_drop"] == ["ALL"]
        deps = s["depends_on"]
        assert deps["init"]["condition"] == "service_completed_successfully"
        assert {deps[d]["condition"] for d in ("kafka", "postgres", "redis")} == {"service_healthy"}
        env = s["environment"]
        assert not any("PASSWORD" in k or "TOKEN" in k or "KEY_B64" in k for k in env), name
        assert any(x["target"] == "DRIFTLINE_POSTGRES__PASSWORD" for x in s["secrets"]), name
    assert services["demo"]["profiles"] == ["demo"]
    for secret in spec["secrets"].values():
        assert secret["file"].startswith("${DRIFTLINE_SECRETS_PATH:-./secrets}/")
    assert set(spec["volumes"]) >= {"kafka-data", "postgres-data", "influxdb-data"}
    grafana = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    override = yaml.safe_load(OVERRIDE.read_text())["services"]
    assert override["grafana"]["profiles"] == ["grafana"]
    assert {override[s]["image"] for s in THIRD_PARTY - {"grafana"}} == set(CI_IMAGES)
    example = (ROOT / ".env.example").read_text()
    assert "PASSWORD=" not in example
    assert "TOKEN=" not in example


@dataclass
class System:
    podman: Podman
    project: str
    env: dict[str, str]
    ports: dict[str, int]
    secrets: Path
    demo: dict[str, Any] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(COMPOSE), "-f", str(OVERRIDE), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def url(self, var: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[var]}{path}"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        out = {}
        for kind in ("ps -a", "volume ls", "network ls", "pod ps"):
            if kind == "pod ps":
                args = ["pod", "ps", "-q", "--filter", f"name={self.project}"]
            else:
                args = [*kind.split(), "-q", "--filter", label]
            found = self.podman.run(*args).stdout.split()
            out[kind] = found
        return out


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def system(
    podman: Podman, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    missing = [i for i in CI_IMAGES if podman.run("image", "exists", i, check=False).returncode]
    if missing:
        pytest.fail(f"images {missing} are not built: run `make ci-images`", pytrace=False)
    secrets = tmp_path_factory.mktemp("compose") / "secrets"
    subprocess.run(
        ["bash", str(ROOT / "deploy" / "compose" / "make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    ports = {v: free_port() for v in PORT_VARS}
    assert not set(ports.values()) & STACK_PORTS
    env = {
        **podman.env,
        **{k: str(v) for k, v in ports.items()},
        "DRIFTLINE_SECRETS_PATH": str(secrets),
        "DRIFTLINE_BIND": "127.0.0.1",
        "DRIFTLINE_PARTITIONS": "2",
        "DRIFTLINE_DRIFT_IDLE_CLOSE_S": "8",
        "DEMO_SECONDS": "45",
        "DEMO_RATE": "150",
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m",
    }
    for k in list(env):  # the caller's own compose settings must not leak in
        if k.startswith("COMPOSE_"):
            del env[k]
    sysm = System(podman, f"dltest{uuid.uuid4().hex[:8]}", env, ports, secrets)
    try:
        t0 = time.monotonic()
        up = sysm.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=420)
        if up.returncode != 0:
            ps = sysm.compose("ps", "-a")
            logs = sysm.compose("logs", "--tail", "40")
            pytest.fail(
                f"compose up failed:\n{up.stderr[-4000:]}\n{ps.stdout}\n{logs.stdout[-8000:]}",
                pytrace=False,
            )
        print(f"compose up --wait: {time.monotonic() - t0:.1f} s")
        yield sysm
    finally:
        sysm.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(LIVE_TIMEOUT_S)
def test_up_wait_brings_everything_up_healthy(system: System) -> None:
    ps = system.compose("ps", "-a", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    state = {r["Service"]: r for r in rows}
    expected = set(SERVICES) | (THIRD_PARTY - {"grafana"}) | {"init", "webhook-receiver"}
    assert set(state) == expected, sorted(state)
    assert state["init"]["State"] == "exited"
    assert state["init"]["ExitCode"] == 0
    for name in expected - {"init"}:
        assert state[name]["State"] == "running", (name, state[name])
        assert state[name]["Health"] == "healthy", (name, state[name])
    # every published port is on loopback
    for r in rows:
        for p in r.get("Publishers") or []:
            if p.get("PublishedPort"):
                assert p["URL"] in ("127.0.0.1", ""), r
    # /readyz of every service through its published port: ready with real dependencies
    for name in SERVICES:
        var = f"DRIFTLINE_{name.upper().replace('-', '_')}_PORT"
        body = _get(system.url(var, "/readyz"))
        assert body["status"] == "ready", (name, body)
        assert body["service"] == name, body
    # the init job made the catalogue's topics (with the compose file's partition count)
    topics = asyncio.run(_topics(system.ports["DRIFTLINE_KAFKA_PORT"]))
    assert {t.name for t in TOPICS} <= set(topics)
    assert all(topics[t.name] == 2 for t in TOPICS), topics
    # the services run as uid 10001 on a read-only root filesystem inside compose too
    cid = system.compose("ps", "-q", "ingestion").stdout.strip()
    assert system.podman.run("exec", cid, "id", "-u").stdout.strip() == "10001"
    denied = system.podman.run("exec", cid, "touch", "/probe", check=False)
    assert "Read-only file system" in denied.stderr
    # Prometheus scrapes all five services (bounded wait for the first scrape)
    deadline = time.monotonic() + 60
    while True:
        targets = _get(system.url("DRIFTLINE_PROMETHEUS_PORT", "/api/v1/targets"))
        up = {
            t["labels"]["instance"] for t in targets["data"]["activeTargets"] if t["health"] == "up"
        }
        if up == {f"{s}:8080" for s in SERVICES} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert up == {f"{s}:8080" for s in SERVICES}, targets


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(LIVE_TIMEOUT_S)
def test_console_serves_the_app_and_proxies_the_apis(system: System) -> None:
    """The console container (decision 52): ready, the built app at / and at an app route,
    and /api/<service>/ reaching each service's own container on the compose network."""
    body = _get(system.url("DRIFTLINE_CONSOLE_PORT", "/readyz"))
    assert body["status"] == "ready", body
    assert body["service"] == "console", body
    for path in ("/", "/alerts"):
        with urllib.request.urlopen(system.url("DRIFTLINE_CONSOLE_PORT", path), timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/html"), (path, r.headers)
            page = r.read().decode()
        assert "<title>Driftline console</title>" in page, page[:500]
        # the built app (npm run build), not the source page that loads /src/main.tsx
        assert re.search(r'src="/assets/[^"]+\.js"', page), page[:500]
        assert "/src/main.tsx" not in page
    # the proxy: each service answers its own /readyz through the console
    for name in ("ingestion", "drift-detection", "alerting", "audit", "compliance-report"):
        through = _get(system.url("DRIFTLINE_CONSOLE_PORT", f"/api/{name}/readyz"))
        assert through["service"] == name, (name, through)
    # and an API call: ingestion's SSO configuration (public; no IdP configured here)
    sso = _get(system.url("DRIFTLINE_CONSOLE_PORT", "/api/ingestion/v1/auth/oidc/config"))
    assert sso["enabled"] is False, sso
    # an API that needs a caller refuses without one, through the proxy too
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(system.url("DRIFTLINE_CONSOLE_PORT", "/api/ingestion/v1/models"))
    assert refused.value.code == 401, refused.value
    problem = json.loads(refused.value.read())
    assert problem["status"] == 401, problem


async def _topics(port: int) -> dict[str, int]:
    """Partitions per topic, from the broker's metadata."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", group_id=None)
    await c.start()
    try:
        cluster = await c._client.fetch_all_metadata()
        return {n: len(cluster.partitions_for_topic(n) or ()) for n in cluster.topics()}
    finally:
        await c.stop()


async def _drift_results(port: int, tenant: str, timeout: float) -> list[DriftResult]:
    """The tenant's verdicts on driftline.drift.v1, until one shows the planted income drift
    (bounded)."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        "driftline.drift.v1",
        bootstrap_servers=f"127.0.0.1:{port}",
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    found: list[DriftResult] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for records in (await c.getmany(timeout_ms=500)).values():
                for r in records:
                    d = decode(DriftResult, r.value)
                    if d.tenant_id == tenant:
                        found.append(d)
            if any(f.feature == "income" and f.drifted for d in found for f in d.features):
                break
    finally:
        await c.stop()
    return found


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(LIVE_TIMEOUT_S)
def test_demo_streams_through_to_a_drift_verdict_and_a_signed_webhook(system: System) -> None:
    # The test names the tenant, and reads the outcome from the exit status: the demo exits
    # 0 only when every event it sent was accepted (1 when any was rejected). The tail of a
    # short-lived container's output can be lost by the attach of podman's compat API
    # (CI once got stdout cut off mid-stream while the container exited 0), so the JSON
    # summary line is checked when it arrived, never relied on.
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    run = system.compose(
        "--profile", "demo", "run", "--rm", "-T", "-e", f"DRIFTLINE_DEMO_TENANT={tenant}",
        "demo", timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    summaries = [json.loads(x) for x in run.stdout.splitlines() if x.startswith('{"tenant_id"')]
    assert all(s == {"tenant_id": tenant, "seconds": s["seconds"], "exit": 0} for s in summaries)

    # a drift verdict: the planted sudden income drop (credit.py DRIFTS) is found
    results = asyncio.run(_drift_results(system.ports["DRIFTLINE_KAFKA_PORT"], tenant, 180))
    assert results, "no drift verdict of the demo tenant on driftline.drift.v1"
    assert all(d.model_id == "credit-risk" for d in results)
    assert any(f.feature == "income" and f.drifted for d in results for f in d.features), [
        (d.window.start, [(f.feature, f.drifted) for f in d.features]) for d in results
    ]

    # a signed webhook: the receiver verified it; this test checks the signature itself
    secret = (system.secrets / "webhook_secret").read_text().strip()
    deadline = time.monotonic() + 180
    mine: list[dict[str, Any]] = []
    while not mine and time.monotonic() < deadline:
        got = _get(system.url("DRIFTLINE_WEBHOOK_RECEIVER_PORT", "/received"))
        mine = [h for h in got["verified"] if f'"tenant":"{tenant}"' in h["body"].replace(" ", "")]
        if not mine:
            time.sleep(1)
    assert mine, f"no alert of {tenant} reached the webhook receiver: {got}"
    hit = mine[0]
    headers = {k: hit[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    payload = Webhook(secret).verify(hit["body"], headers)
    assert payload["status"] in ("firing", "resolved")
    labels = [a["labels"] for a in payload["alerts"]]
    assert all(lab["tenant"] == tenant and lab["model"] == "credit-risk" for lab in labels)
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 32).verify(hit["body"], headers)
    assert got["rejected"] == 0


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(LIVE_TIMEOUT_S)
def test_down_v_leaves_nothing_running(system: System) -> None:
    assert any(system.leftovers().values())  # the system is there before
    down = system.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)
    assert down.returncode == 0, down.stderr
    left = system.leftovers()
    assert not any(left.values()), left
    for var in ("DRIFTLINE_INGESTION_PORT", "DRIFTLINE_KAFKA_PORT"):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(system.url(var, "/healthz"), timeout=2)


def _interpolate(value: str, env: dict[str, str]) -> str:
    """compose's ${NAME:-default} (unset or empty: the default)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], value)


def _dotenv(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_sso_settings_are_optional_and_read_as_ingestion_s_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ingestion's DRIFTLINE_OIDC__*/MFA__* come from .env (off while the issuer is empty), and
    its real settings class reads them as given: the defaults, and .env.example's values."""
    from driftline_ingestion.settings import IngestionSettings

    services = _compose_file()["services"]
    sso = {
        k: v
        for k, v in services["ingestion"]["environment"].items()
        if k.startswith(("DRIFTLINE_OIDC__", "DRIFTLINE_MFA__"))
    }
    assert {"DRIFTLINE_OIDC__ISSUER", "DRIFTLINE_OIDC__GROUP_MAP"} <= set(sso)
    for name, s in services.items():  # ingestion's settings only
        env = s.get("environment", {})
        assert name == "ingestion" or not any(k.startswith("DRIFTLINE_OIDC") for k in env), name
    example = _dotenv(ROOT / ".env.example")
    for given, enabled in (({}, False), (example, False), ({**example, **ISSUER}, True)):
        for k in list(os.environ):
            if k.startswith("DRIFTLINE_"):
                monkeypatch.delenv(k)
        monkeypatch.setenv("DRIFTLINE_ENVIRONMENT", "dev")
        if enabled:
            monkeypatch.setenv("DRIFTLINE_OIDC__CLIENT_SECRET", "from-the-secret-file")
        for k, v in sso.items():
            monkeypatch.setenv(k, _interpolate(v, given))
        st = IngestionSettings()
        assert st.oidc.enabled is enabled
        if given:
            assert st.oidc.redirect_uri == example["DRIFTLINE_OIDC_REDIRECT_URI"]
            assert [r.model_dump() for r in st.oidc.group_map] == json.loads(
                example["DRIFTLINE_OIDC_GROUP_MAP"]
            )
            assert st.mfa.required_roles == json.loads(example["DRIFTLINE_MFA_REQUIRED_ROLES"])
        else:
            assert st.oidc.group_map == []
            assert st.mfa.required_roles == []


ISSUER = {"DRIFTLINE_OIDC_ISSUER": "https://idp.example/", "DRIFTLINE_OIDC_CLIENT_ID": "dl"}
