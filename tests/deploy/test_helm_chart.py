"""The Helm chart, rendered: lint, the security and operability properties of every object,
least-privilege network and secrets, the HPA bounds, the settings it maps to, the schema.

Rendering needs only helm (deploy/k8s/tools.sh installs it); the API-server checks are in
test_helm_cluster.py.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline_core.events.catalogue import TOPICS, by_name

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "driftline"
CLOUDS = ("aws", "gcp", "azure")
Render = Callable[..., list[dict[str, Any]]]
Helm = Any  # tests/deploy/conftest.py's Helm (helm and kubectl runner)

SERVICES = ("ingestion", "drift-detection", "alerting", "audit", "compliance-report", "console")
# the services with a schema: the hook job migrates these (the console has none)
MIGRATED = tuple(s for s in SERVICES if s != "console")
VALUES = [(), *((f"values-{c}.yaml",) for c in CLOUDS)]
VALUE_IDS = ["default", *CLOUDS]


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_templates(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod template) of every workload: Deployments and the hook Job."""
    return [
        (d["metadata"]["name"], d["spec"]["template"])
        for d in docs
        if d["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    ]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unexpected selector form {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def component(d: dict[str, Any]) -> str:
    return str(d["metadata"]["labels"]["app.kubernetes.io/component"])


def service_deps_from_code(service: str) -> set[str]:
    """What a service connects to, read from its own app.py (independently of the chart):
    Kafka always, PostgreSQL when it has a schema, Redis/InfluxDB when build_deps asks."""
    pkg = "driftline_" + service.replace("-", "_")
    src = (ROOT / "services" / service / "src" / pkg / "app.py").read_text()
    tree = ast.parse(src)
    deps = {"kafka"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "build_deps":
            for kw in node.keywords:
                if kw.arg in ("redis", "influx") and getattr(kw.value, "value", None) is True:
                    deps.add(kw.arg)
                if kw.arg == "schema":
                    deps.add("postgres")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Database":
            deps.add("postgres")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "InfluxQLReader":
            deps.add("influx")
    return deps


# ---- lint and render --------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_lint_strict(helm_tools: Helm, values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for v in values:
        args += ["-f", str(CHART / v)]
    out = helm_tools.helm(*args)
    assert "0 chart(s) failed" in out.stdout


def test_no_remote_dependencies() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for dep in chart.get("dependencies") or []:
        assert str(dep.get("repository", "")).startswith("file://"), dep
    assert chart["kubeVersion"].startswith(">=")


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_every_service_is_deployed_once(render: Render, values: tuple[str, ...]) -> None:
    docs = render(values)
    on_disk = sorted(
        p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()
    )
    assert sorted(component(d) for d in kinds(docs, "Deployment")) == on_disk == sorted(SERVICES)
    assert sorted(component(d) for d in kinds(docs, "Service")) == on_disk


# ---- every container: probes, resources, non-root, read-only, pinned image -----------------


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_containers_are_locked_down(render: Render, values: tuple[str, ...]) -> None:
    docs = render(values)
    workloads = pod_templates(docs)
    assert len(workloads) == len(SERVICES) + 1  # and the migration job
    for name, tpl in workloads:
        spec = tpl["spec"]
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] > 0, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        volumes = {v["name"]: v for v in spec["volumes"]}
        containers = spec["containers"] + spec.get("initContainers", [])
        for c in containers:
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] > 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert not sc["capabilities"].get("add")
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            # a writable /tmp from an emptyDir, nothing else writable
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where
            for path, m in mounts.items():
                if path != "/tmp":
                    assert m.get("readOnly") is True, f"{where}: {path} is writable"
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, where
            image = c["image"]
            ref = image.split("@")[0]
            tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
            assert tag not in ("", "latest"), f"{where}: image {image} is not pinned"
            if tpl is not None and name.endswith("migrations"):
                assert c["command"] == ["driftline-admin"], where
                continue
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert c["startupProbe"]["httpGet"]["path"] == "/healthz", where
            port_names = {p["name"] for p in c["ports"]}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert c[probe]["httpGet"]["port"] in port_names, where


def test_latest_or_missing_tag_is_refused(helm_tools: Helm) -> None:
    for bad in ("image.tag=latest", "image.tag="):
        out = helm_tools.helm("template", "dl", str(CHART), "--set", bad, check=False)
        assert out.returncode != 0, bad
        assert "image/tag" in out.stderr or "image.tag" in out.stderr, out.stderr


def test_digest_pins_every_image(render: Render) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render((), (f"image.digest={digest}",))
    images = [c["image"] for _, t in pod_templates(docs) for c in t["spec"]["containers"]]
    assert images
    assert all(i.endswith("@" + digest) for i in images)


def test_topology_spread_over_zones_and_hosts(render: Render) -> None:
    for d in kinds(render(), "Deployment"):
        tsc = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = {t["topologyKey"] for t in tsc}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for t in tsc:
            assert selects(t["labelSelector"], d["spec"]["template"]["metadata"]["labels"])


# ---- network policies: default deny, each pod only its dependencies --------------------------


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule["ports"]}


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_every_pod_is_selected_by_network_policies(render: Render, values: tuple[str, ...]) -> None:
    docs = render(values)
    policies = kinds(docs, "NetworkPolicy")
    deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    assert len(deny) == 1
    assert sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not deny[0]["spec"].get("ingress")
    assert not deny[0]["spec"].get("egress")
    allow = [p for p in policies if p not in deny]
    for name, tpl in pod_templates(docs):
        labels = tpl["metadata"]["labels"]
        assert selects(deny[0]["spec"]["podSelector"], labels), f"{name} escapes the default deny"
        mine = [p for p in allow if selects(p["spec"]["podSelector"], labels)]
        assert len(mine) == 1, f"{name} is selected by {len(mine)} allow policies"
        assert sorted(mine[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        for rule in mine[0]["spec"].get("egress", []):
            assert rule.get("to"), f"{name}: an egress rule without `to` opens every address"
            assert rule.get("ports"), f"{name}: an egress rule without ports opens every port"


def test_each_service_reaches_only_its_dependencies(render: Render) -> None:
    """Distinct ports per dependency, so the allowed ports say which dependencies are reachable;
    compared with what each service's own code connects to."""
    port = {"kafka": 19001, "postgres": 19002, "redis": 19003, "influx": 19004, "receivers": 19005}
    sets = [f"networkPolicy.egress.{dep}.ports[0].port={p}" for dep, p in port.items()]
    sets += [f"networkPolicy.egress.{dep}.ports[0].protocol=TCP" for dep in port]
    docs = render((), tuple(sets))
    # with one port per rule: override the lists so only the first entry remains
    policies = {component(p): p for p in kinds(docs, "NetworkPolicy")}
    dns = 53
    for service in SERVICES:
        expected = service_deps_from_code(service) | (
            {"receivers"} if service == "alerting" else set()
        )
        got = _egress_ports(policies[service]) - {dns}
        if service == "console":
            # its reverse proxy reaches the other services' HTTP port, and only their pods
            (rule,) = [
                r for r in policies[service]["spec"]["egress"] if r["ports"][0]["port"] == 8080
            ]
            assert all(set(peer) == {"podSelector"} for peer in rule["to"]), rule
            release = {"app.kubernetes.io/name": "driftline", "app.kubernetes.io/instance": "dl"}
            reached_pods = {
                other
                for other in SERVICES
                for peer in rule["to"]
                if selects(peer["podSelector"], {**release, "app.kubernetes.io/component": other})
            }
            assert reached_pods == set(SERVICES) - {"console"}, reached_pods
            got -= {8080}
        reached = {dep for dep, p in port.items() if p in got}
        assert reached == expected, f"{service}: policy reaches {reached}, code uses {expected}"
        # nothing but the dependencies' ports (the defaults' second ports included)
        values = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]["egress"]
        allowed = {port[d] for d in expected} | {
            p["port"] for d in expected for p in values[d]["ports"][1:]
        }
        assert got <= allowed, f"{service}: unexpected ports {got - allowed}"
    # and every other service accepts the console's proxy on its HTTP port (decision 52)
    console_pod = next(
        d["spec"]["template"]["metadata"]["labels"]
        for d in kinds(docs, "Deployment")
        if component(d) == "console"
    )
    for service in SERVICES:
        froms = [
            peer
            for r in policies[service]["spec"]["ingress"]
            for peer in r["from"]
            if set(peer) == {"podSelector"}
        ]
        assert any(selects(p["podSelector"], console_pod) for p in froms) == (
            service != "console"
        ), service
    job = policies["migrations"]
    assert {p for p in _egress_ports(job) - {dns}} <= {port["kafka"], port["postgres"], 9093}
    assert job["spec"]["ingress"] == []
    # only services with an API behind the ingress accept from the ingress controller
    assert all(r.get("from") for p in policies.values() for r in p["spec"].get("ingress", []))


def test_cloud_policies_reach_the_managed_services(render: Render) -> None:
    for cloud in CLOUDS:
        docs = render((f"values-{cloud}.yaml",))
        cfg = next(d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config"))
        policies = {component(p): p for p in kinds(docs, "NetworkPolicy")}
        kafka_ports = {
            int(s.rsplit(":", 1)[1])
            for s in cfg["data"]["DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"].split(",")
        }
        pg_port = int(cfg["data"]["DRIFTLINE_POSTGRES__PORT"])
        redis_port = int(
            re.match(r"rediss?://[^:/]+:(\d+)", cfg["data"]["DRIFTLINE_REDIS__URL"]).group(1)
        )  # type: ignore[union-attr]
        for service in SERVICES:
            ports = _egress_ports(policies[service])
            assert kafka_ports <= ports, f"{cloud}/{service} cannot reach Kafka {kafka_ports}"
            assert pg_port in ports, f"{cloud}/{service}"
            assert redis_port in ports, f"{cloud}/{service}"
        for rule in policies["ingestion"]["spec"]["egress"]:
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    ipaddress.ip_network(peer["ipBlock"]["cidr"])  # a real CIDR


# ---- HPA and PDB ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_hpa_bounds_are_sane(render: Render, values: tuple[str, ...]) -> None:
    docs = render(values)
    hpas = {component(h): h for h in kinds(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"ingestion", "drift-detection"}
    deployments = {d["metadata"]["name"]: d for d in kinds(docs, "Deployment")}
    # independent of the chart's copy: the catalogue itself
    bound = min(
        by_name("driftline.predictions.v1").partitions, by_name("driftline.actuals.v1").partitions
    )
    for name, h in hpas.items():
        spec = h["spec"]
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"], name
        target = deployments[spec["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], (
            f"{name}: the HPA and the Deployment both set replicas"
        )
        cpu = spec["metrics"][0]["resource"]
        assert cpu["name"] == "cpu"
        assert 10 <= cpu["target"]["averageUtilization"] <= 100
        # utilisation needs requests
        c = target["spec"]["template"]["spec"]["containers"][0]
        assert c["resources"]["requests"]["cpu"]
    assert hpas["drift-detection"]["spec"]["maxReplicas"] <= bound
    pdbs = {component(p): p for p in kinds(docs, "PodDisruptionBudget")}
    for d in kinds(docs, "Deployment"):
        pdb = pdbs[component(d)]
        assert selects(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])


def _cpu(q: str | int | float) -> float:
    text = str(q)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_alerting_and_reports_run_active_standby_and_audit_workers_fit_its_cpu(
    render: Render,
) -> None:
    """Alerting and compliance-report run two replicas, one leading through a PostgreSQL
    advisory lock (decisions 38, 45), never autoscaled (alerting). Alerting's standby is not
    Ready (its `leader` check), so its rollout cannot wait for a new pod to be Ready: it
    starts the new pods and stops every old one (100% unavailable), and its PDB lets the
    leader be evicted (a standby never counts as healthy). Compliance-report's standby is
    Ready (the check is not required), so it rolls like the others, one pod at a time, none
    unavailable. Audit's verify workers default to the host's cores, which in a pod are the
    node's: the chart pins them to the pod's CPU limit."""
    docs = render()
    deps = {component(d): d for d in kinds(docs, "Deployment")}
    alerting = deps["alerting"]["spec"]
    assert alerting["replicas"] == 2
    assert alerting["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "100%"},
    }
    assert "alerting" not in {component(h) for h in kinds(docs, "HorizontalPodAutoscaler")}
    pdbs = {component(p): p for p in kinds(docs, "PodDisruptionBudget")}
    assert pdbs["alerting"]["spec"]["maxUnavailable"] >= alerting["replicas"]
    assert deps["compliance-report"]["spec"]["replicas"] == 2
    for name, d in deps.items():
        if name != "alerting":
            assert d["spec"]["strategy"]["type"] == "RollingUpdate", name
            assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
    # the readiness probe is /readyz, whose `leader` check is what keeps a standby out
    for name in ("alerting", "compliance-report"):
        c = deps[name]["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
    # one instance is still a valid choice
    one = {
        component(d): d for d in kinds(render(sets=["services.alerting.replicas=1"]), "Deployment")
    }
    assert one["alerting"]["spec"]["replicas"] == 1
    c = deps["audit"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    workers = int(env["DRIFTLINE_AUDIT__PARALLEL_VERIFY_WORKERS"])
    assert 1 <= workers <= _cpu(c["resources"]["limits"]["cpu"])


def test_drift_replicas_beyond_the_partitions_are_refused(helm_tools: Helm) -> None:
    parts = by_name("driftline.predictions.v1").partitions
    out = helm_tools.helm(
        "template", "dl", str(CHART),
        "--set", f"services.drift-detection.autoscaling.maxReplicas={parts + 1}",
        check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert f"{parts} partitions" in out.stderr, out.stderr
    # more partitions (overridden for both prediction topics) allow more replicas
    ok = helm_tools.helm(
        "template", "dl", str(CHART),
        "--set", f"services.drift-detection.autoscaling.maxReplicas={parts + 1}",
        "--set", f"topics.partitions.driftline\\.predictions\\.v1={parts + 4}",
        "--set", f"topics.partitions.driftline\\.actuals\\.v1={parts + 4}",
    )  # fmt: skip
    assert "HorizontalPodAutoscaler" in ok.stdout


def test_min_above_max_is_refused(helm_tools: Helm) -> None:
    out = helm_tools.helm(
        "template", "dl", str(CHART),
        "--set", "services.ingestion.autoscaling.minReplicas=9",
        "--set", "services.ingestion.autoscaling.maxReplicas=3",
        check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "above maxReplicas" in out.stderr


# ---- secrets: files, least privilege, existingSecret -----------------------------------------


def _secret_items(tpl: dict[str, Any]) -> set[str]:
    vol = next(v for v in tpl["spec"]["volumes"] if v["name"] == "secrets")
    return {i["key"] for i in vol["secret"]["items"]}


def test_each_pod_gets_only_its_secrets(render: Render) -> None:
    docs = render()
    items = {component(d): _secret_items(d["spec"]["template"]) for d in kinds(docs, "Deployment")}
    assert "jwt-private.pem" in items["ingestion"]
    assert all("jwt-private.pem" not in v for k, v in items.items() if k != "ingestion")
    assert {k for k, v in items.items() if "audit-signing.pem" in v} == {"audit"}
    assert {k for k, v in items.items() if "DRIFTLINE_AUDIT__WRITER_PASSWORD" in v} == {"audit"}
    assert {k for k, v in items.items() if "reports-signing.pem" in v} == {"compliance-report"}
    assert {k for k, v in items.items() if "DRIFTLINE_INFLUX__TOKEN" in v} == {
        "drift-detection",
        "compliance-report",
        "console",
    }
    for k, v in items.items():
        assert "DRIFTLINE_POSTGRES__PASSWORD" in v, k
        assert "jwt-public.pem" in v, k


def test_existing_secret_is_used_and_none_is_made(render: Render) -> None:
    docs = render((), ("secrets.existingSecret=corp-driftline",))
    assert kinds(docs, "Secret") == []
    for name, tpl in pod_templates(docs):
        vol = next(v for v in tpl["spec"]["volumes"] if v["name"] == "secrets")
        assert vol["secret"]["secretName"] == "corp-driftline", name


def test_chart_made_secret_holds_the_values(render: Render) -> None:
    docs = render((), ("secrets.values.DRIFTLINE_POSTGRES__PASSWORD=s3cret",))
    secrets = kinds(docs, "Secret")
    assert len(secrets) == 2  # the release's and the hook job's copy
    for s in secrets:
        assert s["stringData"]["DRIFTLINE_POSTGRES__PASSWORD"] == "s3cret"
    cms = kinds(docs, "ConfigMap")
    assert all("s3cret" not in json.dumps(c) for c in cms)


# ---- the settings the chart sets exist, and the services accept them -------------------------


def _field_exists(model: Any, parts: list[str]) -> bool:
    fields = model.model_fields
    head = parts[0].lower()
    if head not in fields:
        return False
    if len(parts) == 1:
        return True
    ann = fields[head].annotation
    if hasattr(ann, "model_fields"):
        return _field_exists(ann, parts[1:])
    return False


def _settings_classes() -> dict[str, Any]:
    from driftline_core.admin import settings_class

    return {s: settings_class("driftline_" + s.replace("-", "_")) for s in SERVICES}


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_every_variable_is_a_real_setting(render: Render, values: tuple[str, ...]) -> None:
    """A misspelled DRIFTLINE_* variable would be ignored silently (extra="ignore"): check each
    one the chart sets, and each secret key named like a variable, against the models."""
    docs = render(values)
    classes = _settings_classes()
    cfg = next(d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config"))
    for d in kinds(docs, "Deployment"):
        service = component(d)
        c = d["spec"]["template"]["spec"]["containers"][0]
        names = (
            set(cfg["data"]) | {e["name"] for e in c["env"]} | _secret_items(d["spec"]["template"])
        )
        for var in sorted(names):
            if not var.startswith("DRIFTLINE_") or var == "DRIFTLINE_SECRETS_DIR":
                continue
            parts = var.removeprefix("DRIFTLINE_").split("__")
            assert _field_exists(classes[service], parts), f"{service}: {var} is no setting"


def _ed25519_pem(tmp: Path, name: str, private: bool) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    if private:
        data = k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        data = k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    (tmp / name).write_bytes(data)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_services_accept_the_cloud_settings(render: Render, tmp_path: Path, cloud: str) -> None:
    """Each service's real settings class, fed the pod's environment and its projected secret
    files (as Kubernetes would mount them), validates in prod and holds the cloud's endpoints."""
    docs = render((f"values-{cloud}.yaml",))
    cloud_values = yaml.safe_load((CHART / f"values-{cloud}.yaml").read_text())["config"]
    cfg = next(d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config"))
    mount = Path(cfg["data"]["DRIFTLINE_SECRETS_DIR"])
    classes = _settings_classes()
    for d in kinds(docs, "Deployment"):
        service = component(d)
        tpl = d["spec"]["template"]
        secret_dir = tmp_path / service
        secret_dir.mkdir()
        for key in _secret_items(tpl):
            if key.endswith(".pem"):
                _ed25519_pem(secret_dir, key, private="public" not in key)
            elif key == "DRIFTLINE_KEK__KEY_B64":
                (secret_dir / key).write_text("c2VjcmV0LWtleS1mb3ItdGhlLXRlc3QtMzItYnl0ZSE=\n")
            elif key in ("DRIFTLINE_KEK__PASSPHRASE", "DRIFTLINE_KEK__RETIRED"):
                continue  # alternatives a deployment may leave out
            else:
                (secret_dir / key).write_text(f"{key.lower()}-value\n")
        c = tpl["spec"]["containers"][0]
        env = dict(cfg["data"])
        env.update({e["name"]: e["value"] for e in c["env"]})
        env = {k: v.replace(str(mount), str(secret_dir)) for k, v in env.items()}
        with pytest.MonkeyPatch.context() as mp:
            for k in list(os.environ):
                if k.startswith("DRIFTLINE_"):
                    mp.delenv(k)
            for k, v in env.items():
                mp.setenv(k, v)
            try:
                st = classes[service]()
            except ValueError as e:
                pytest.fail(f"{cloud}/{service} refused its settings: {e}")
        k, pg = st.kafka, st.postgres
        got = {
            "env": st.environment,
            "kafka": k.bootstrap_servers,
            "proto": k.security_protocol,
            "mech": k.sasl_mechanism,
            "sasl_pw": k.sasl_password.get_secret_value() if k.sasl_password else None,
            "pg": pg.host,
            "pg_pw": pg.password.get_secret_value(),
            "pg_ssl": pg.ssl,
            "redis": st.redis.url,
            "influx": st.influx.url,
            "http": [st.http.host, st.http.port],
            "jwt_pub": st.auth.jwt_public_key_file,
        }
        assert got["env"] == "prod"
        assert got["kafka"] == cloud_values["kafka"]["bootstrapServers"]
        assert got["proto"] == cloud_values["kafka"]["securityProtocol"]
        assert got["mech"] == cloud_values["kafka"]["saslMechanism"]
        assert got["sasl_pw"] == "driftline_kafka__sasl_password-value"
        assert got["pg"] == cloud_values["postgres"]["host"]
        assert got["pg_pw"] == "driftline_postgres__password-value"
        assert got["pg_ssl"] == cloud_values["postgres"]["ssl"]
        assert got["redis"] == cloud_values["redis"]["url"]
        assert got["influx"] == cloud_values["influx"]["url"]
        assert got["http"] == ["0.0.0.0", 8080]
        assert Path(got["jwt_pub"]).is_file()


# ---- the hook job, topics, monitoring --------------------------------------------------------


def test_hook_job_runs_topics_and_migrations_first(render: Render) -> None:
    docs = render()
    hooks = [d for d in docs if "helm.sh/hook" in d["metadata"].get("annotations", {})]
    assert {d["kind"] for d in hooks} == {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "NetworkPolicy",
        "Job",
    }
    for d in hooks:
        ann = d["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in ann["helm.sh/hook-delete-policy"]
    job = kinds(docs, "Job")[0]
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert all(
        int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
        for d in hooks
        if d is not job
    )
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][0] == "init"
    assert sorted(c["args"][1:]) == sorted(MIGRATED)
    assert c["image"].split("/")[-1].startswith("tools:")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    no_topics = kinds(render((), ("migrations.createTopics=false",)), "Job")[0]
    assert no_topics["spec"]["template"]["spec"]["containers"][0]["args"][0] == "migrate"


def test_the_admin_entry_point_exists() -> None:
    """The hook runs `driftline-admin`: declared by driftline-core, installed in the venv."""
    import tomllib

    core = tomllib.loads((ROOT / "libs" / "driftline-core" / "pyproject.toml").read_text())
    assert core["project"]["scripts"]["driftline-admin"] == "driftline_core.admin:main"
    out = subprocess.run(
        [sys.executable, "-m", "driftline_core.admin", "migrate", "no-such-service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_chart_files_are_fresh() -> None:
    """files/topics.json and files/prometheus-rules.yml are generated; stale copies fail here."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "k8s" / "gen_chart_files.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads((CHART / "files" / "topics.json").read_text())
    assert [t["name"] for t in data["topics"]] == [t.name for t in TOPICS]


def test_strimzi_topics_follow_the_catalogue(render: Render) -> None:
    docs = render((), ("topics.strimzi.enabled=true", "topics.strimzi.cluster=events"))
    topics = {d["spec"]["topicName"]: d for d in kinds(docs, "KafkaTopic")}
    assert set(topics) == {t.name for t in TOPICS}
    for t in TOPICS:
        kt = topics[t.name]
        assert kt["metadata"]["labels"]["strimzi.io/cluster"] == "events"
        assert kt["spec"]["partitions"] == t.partitions
        assert kt["spec"]["replicas"] == 3
        assert kt["spec"]["config"]["retention.ms"] == str(t.retention_ms)
        assert kt["spec"]["config"]["cleanup.policy"] == t.cleanup_policy
        assert kt["spec"]["config"]["min.insync.replicas"] == "2"
    over = render((), ("topics.strimzi.enabled=true", "topics.strimzi.cluster=events",
                       "topics.partitions.driftline\\.predictions\\.v1=24"))  # fmt: skip
    (p,) = [
        d for d in kinds(over, "KafkaTopic") if d["spec"]["topicName"] == "driftline.predictions.v1"
    ]
    assert p["spec"]["partitions"] == 24


def test_monitoring_objects(render: Render) -> None:
    docs = render(
        (), ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
    )
    (sm,) = kinds(docs, "ServiceMonitor")
    services = kinds(docs, "Service")
    assert all(selects(sm["spec"]["selector"], s["metadata"]["labels"]) for s in services)
    assert sm["spec"]["jobLabel"] == "driftline.io/job"
    assert {s["metadata"]["labels"]["driftline.io/job"] for s in services} == {"driftline"}
    (rule,) = kinds(docs, "PrometheusRule")
    source = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    assert rule["spec"] == source
    assert not kinds(render(), "ServiceMonitor")
    assert not kinds(render(), "PrometheusRule")


def test_ingress_routes_every_api_prefix(render: Render) -> None:
    docs = render(("values-aws.yaml",))
    (ing,) = kinds(docs, "Ingress")
    routes = {
        p["path"]: p["backend"]["service"]["name"] for p in ing["spec"]["rules"][0]["http"]["paths"]
    }
    # the routers' prefixes, from the services' code
    for service, prefixes in {
        "ingestion": ["/v1/events", "/v1/auth", "/v1/models"],
        "audit": ["/v1/audit"],
        "compliance-report": ["/v1/reports", "/v1/report-schedules"],
        "alerting": ["/v1/alert-rules", "/v1/silences", "/v1/alerts"],
        # the console: the app and, under /api/<service>/, its proxy to the APIs (decision 52)
        "console": ["/"],
    }.items():
        for prefix in prefixes:
            assert routes[prefix].endswith(service), prefix
    assert ing["spec"]["ingressClassName"] == "alb"


# ---- the schema refuses bad values -----------------------------------------------------------

BAD_VALUES = {
    "unknown top-level key": ["servics.ingestion.replicas=3"],
    "unknown service key": ["services.ingestion.replica=3"],
    "writable root filesystem": ["securityContext.readOnlyRootFilesystem=false"],
    "root user": ["securityContext.runAsNonRoot=false"],
    "privilege escalation": ["securityContext.allowPrivilegeEscalation=true"],
    "added capability": ["securityContext.capabilities.add[0]=NET_ADMIN"],
    "unconfined seccomp": ["podSecurityContext.seccompProfile.type=Unconfined"],
    "bad security protocol": ["config.kafka.securityProtocol=TLS"],
    "bad sasl mechanism": ["config.kafka.saslMechanism=GSSAPI"],
    "bootstrap without port": ["config.kafka.bootstrapServers=broker"],
    "bad postgres ssl": ["config.postgres.ssl=on"],
    "redis url scheme": ["config.redis.url=http://redis:6379"],
    "bad kek provider": ["config.kek.provider=vault"],
    "bad environment": ["environment=production"],
    "replicas not a number": ["services.audit.replicas=two"],
    "bad cpu quantity": ["services.audit.resources.requests.cpu=lots"],
    "missing memory limit": ["services.audit.resources.limits.memory=null"],
    "target cpu above 100": ["services.ingestion.autoscaling.targetCPUUtilizationPercentage=150"],
    "zero min replicas": ["services.ingestion.autoscaling.minReplicas=0"],
    "egress to everything": ["networkPolicy.egress.kafka.to=null"],
    "extraEnv not DRIFTLINE": ["config.extraEnv.PATH=/bin"],
    "bad digest": ["image.digest=sha256:abc"],
    "bad partitions key": ["topics.partitions.predictions=24"],
    "pull policy": ["image.pullPolicy=Sometimes"],
    "three alerting instances": ["services.alerting.replicas=3"],
    "alerting autoscaled": ["services.alerting.autoscaling.enabled=true"],
}


@pytest.mark.parametrize("sets", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_schema_refuses_bad_values(helm_tools: Helm, sets: list[str]) -> None:
    args = ["template", "dl", str(CHART)]
    for s in sets:
        args += ["--set", s]
    out = helm_tools.helm(*args, check=False)
    assert out.returncode != 0, f"{sets} was accepted"
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr


def test_required_endpoints_are_required(helm_tools: Helm) -> None:
    for key in ("config.kafka.bootstrapServers", "config.postgres.host"):
        out = helm_tools.helm("template", "dl", str(CHART), "--set", f"{key}=", check=False)
        assert out.returncode != 0, key


# ---- operators' single sign-on (config.sso, config.mfa: ingestion only) -----------------------

SSO_VALUES: dict[str, Any] = {
    "config": {
        "sso": {
            "issuer": "https://idp.example/realms/corp",
            "clientId": "driftline",
            "redirectUri": "https://driftline.example/api/ingestion/v1/auth/oidc/callback",
            "returnUrls": ["https://driftline.example/"],
            "groupsClaim": "realm_access.roles",
            "groupMap": [
                {"group": "ml-platform", "tenant": "acme", "role": "admin"},
                {"group": 'auditors "eu", 2', "tenant": "acme", "role": "auditor"},
            ],
            "acrValues": "mfa",
        },
        "mfa": {"requiredRoles": ["admin"], "ssoAcr": ["urn:okta:loa:2fa:any"]},
    },
    "secrets": {"values": {"DRIFTLINE_OIDC__CLIENT_SECRET": "oidc-s3cret"}},
}
SSO_VARS = ("DRIFTLINE_OIDC__", "DRIFTLINE_MFA__")


def _values_file(tmp: Path, values: dict[str, Any]) -> str:
    path = tmp / "sso-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)  # absolute: the renderer's CHART / path is this path


def _sso_names(d: dict[str, Any]) -> set[str]:
    tpl = d["spec"]["template"]
    names = {e["name"] for c in tpl["spec"]["containers"] for e in c.get("env", [])}
    return {n for n in names | _secret_items(tpl) if n.startswith(SSO_VARS)}


def _ingestion_settings(docs: list[dict[str, Any]], tmp: Path) -> Any:
    """ingestion's real settings class, fed its pod's environment and projected secret files."""
    cfg = next(d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config"))
    mount = cfg["data"]["DRIFTLINE_SECRETS_DIR"]
    (secret, *_) = [s for s in kinds(docs, "Secret") if "DRIFTLINE_OIDC__CLIENT_SECRET" in str(s)]
    (d,) = [d for d in kinds(docs, "Deployment") if component(d) == "ingestion"]
    tpl = d["spec"]["template"]
    folder = tmp / "secrets"
    folder.mkdir()
    for key in _secret_items(tpl):
        if key.endswith(".pem"):
            _ed25519_pem(folder, key, private="public" not in key)
        elif key == "DRIFTLINE_KEK__KEY_B64":
            (folder / key).write_text("c2VjcmV0LWtleS1mb3ItdGhlLXRlc3QtMzItYnl0ZSE=\n")
        elif key in ("DRIFTLINE_KEK__PASSPHRASE", "DRIFTLINE_KEK__RETIRED"):
            continue
        else:
            (folder / key).write_text(secret["stringData"].get(key, f"{key.lower()}-value") + "\n")
    env = dict(cfg["data"])
    env.update({e["name"]: e["value"] for e in tpl["spec"]["containers"][0]["env"]})
    env = {k: v.replace(mount, str(folder)) for k, v in env.items()}
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("DRIFTLINE_"):
                mp.delenv(k)
        for k, v in env.items():
            mp.setenv(k, v)
        return _settings_classes()["ingestion"]()


def test_sso_values_set_ingestion_s_oidc_and_mfa_settings_and_its_secret(
    render: Render, tmp_path: Path
) -> None:
    docs = render((_values_file(tmp_path, SSO_VALUES),))
    by = {component(d): d for d in kinds(docs, "Deployment")}
    assert all(not _sso_names(d) for name, d in by.items() if name != "ingestion")
    names = _sso_names(by["ingestion"])
    assert "DRIFTLINE_OIDC__CLIENT_SECRET" in _secret_items(by["ingestion"]["spec"]["template"])
    assert names >= {
        "DRIFTLINE_OIDC__ISSUER",
        "DRIFTLINE_OIDC__CLIENT_ID",
        "DRIFTLINE_OIDC__REDIRECT_URI",
        "DRIFTLINE_OIDC__GROUP_MAP",
        "DRIFTLINE_OIDC__CLIENT_SECRET",
        "DRIFTLINE_MFA__REQUIRED_ROLES",
    }
    # the client secret is in the Secrets only, never in a ConfigMap or an env value
    assert all("oidc-s3cret" not in json.dumps(c) for c in kinds(docs, "ConfigMap"))
    assert "oidc-s3cret" not in json.dumps(by["ingestion"])
    # the hook job migrates; it needs none of it
    (job,) = kinds(docs, "Job")
    assert not {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]} & names
    # what the real settings class reads from the pod: every value as given
    st = _ingestion_settings(docs, tmp_path)
    sso = SSO_VALUES["config"]["sso"]
    assert st.oidc.enabled
    assert st.oidc.issuer == sso["issuer"]
    assert st.oidc.client_id == sso["clientId"]
    assert st.oidc.client_secret.get_secret_value() == "oidc-s3cret"
    assert st.oidc.redirect_uri == sso["redirectUri"]
    assert st.oidc.return_urls == sso["returnUrls"]
    assert st.oidc.groups_claim == "realm_access.roles"
    assert st.oidc.acr_values == "mfa"
    assert [r.model_dump() for r in st.oidc.group_map] == sso["groupMap"]
    assert st.oidc.scopes == ["openid", "profile", "email"]
    assert st.mfa.required_roles == ["admin"]
    assert st.mfa.sso == "idp"
    assert st.mfa.sso_acr == ["urn:okta:loa:2fa:any"]
    # ingestion (only) may reach the identity provider
    policies = {component(p): p for p in kinds(docs, "NetworkPolicy")}
    plain = {component(p): p for p in kinds(render(), "NetworkPolicy")}
    for name, policy in policies.items():
        before = plain[name]["spec"].get("egress", [])
        added = [r for r in policy["spec"].get("egress", []) if r not in before]
        if name == "ingestion":
            assert [r["ports"] for r in added] == [[{"port": 443, "protocol": "TCP"}]]
        else:
            assert added == [], name


def test_without_sso_values_nothing_of_it_is_rendered(render: Render) -> None:
    for values in VALUES:
        docs = render(values)
        for d in kinds(docs, "Deployment") + kinds(docs, "Job"):
            assert not _sso_names(d), d["metadata"]["name"]
        assert "DRIFTLINE_OIDC" not in json.dumps(kinds(docs, "ConfigMap"))
        assert "DRIFTLINE_MFA" not in json.dumps(kinds(docs, "ConfigMap"))


def test_sso_client_secret_from_another_secret(render: Render, tmp_path: Path) -> None:
    values = json.loads(json.dumps(SSO_VALUES))
    values["secrets"] = {"values": {}}
    values["config"]["sso"]["clientSecretRef"] = {"name": "corp-idp", "key": "driftline-secret"}
    docs = render((_values_file(tmp_path, values),))
    (d,) = [d for d in kinds(docs, "Deployment") if component(d) == "ingestion"]
    tpl = d["spec"]["template"]
    assert "DRIFTLINE_OIDC__CLIENT_SECRET" not in _secret_items(tpl)
    (ref,) = [e for e in tpl["spec"]["containers"][0]["env"] if e["name"].endswith("_SECRET")]
    assert ref == {
        "name": "DRIFTLINE_OIDC__CLIENT_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "corp-idp", "key": "driftline-secret"}},
    }


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("clientId", "config.sso.clientId"),
        ("redirectUri", "config.sso.redirectUri"),
        ("secret", "DRIFTLINE_OIDC__CLIENT_SECRET"),
    ],
)
def test_incomplete_sso_values_are_refused_by_name(
    helm_tools: Helm, tmp_path: Path, drop: str, named: str
) -> None:
    values = json.loads(json.dumps(SSO_VALUES))
    if drop == "secret":
        values["secrets"] = {"values": {}}
    else:
        del values["config"]["sso"][drop]
    args = ["template", "dl", str(CHART), "-f", _values_file(tmp_path, values)]
    out = helm_tools.helm(*args, check=False)
    assert out.returncode != 0, f"SSO without {drop} was accepted"
    assert named in out.stderr, out.stderr


@pytest.mark.parametrize(
    "sets",
    [
        ["config.sso.issuer=idp.example"],
        ["config.sso.tokenEndpointAuthMethod=private_key_jwt"],
        ["config.sso.groupMap[0].group=g", "config.sso.groupMap[0].tenant=acme",
         "config.sso.groupMap[0].role=root"],
        ["config.sso.scopes[0]=profile"],
        ["config.mfa.requiredRoles[0]=owner"],
        ["config.mfa.sso=skip"],
    ],
    ids=["issuer not a URL", "auth method", "unknown role", "no openid scope", "mfa role",
         "mfa sso mode"],
)  # fmt: skip
def test_schema_refuses_bad_sso_values(helm_tools: Helm, sets: list[str]) -> None:
    args = ["template", "dl", str(CHART)]
    for s in sets:
        args += ["--set", s]
    out = helm_tools.helm(*args, check=False)
    assert out.returncode != 0, f"{sets} was accepted"
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr
