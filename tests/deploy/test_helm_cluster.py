"""The Helm chart against a real Kubernetes API server (deploy/k8s/cluster.sh: etcd,
kube-apiserver, kube-scheduler, kube-controller-manager and KWOK's fake nodes, on loopback):

- every rendered document, for the default values and each cloud's, passes the server's own
  validation (`kubectl apply --dry-run=server`; `helm install --dry-run=server` would not
  validate them);
- a real `helm install --wait`, `helm upgrade --wait` and `helm rollback --wait` into a
  namespace: the hook Job completes before the pods, the pods are scheduled across the zones
  and turn Running and Ready, a config change rolls the pods, a rollback restores it.
No container runs (KWOK fakes the kubelet), so this checks Kubernetes' side of the chart; the
images themselves are run by tests/deploy/test_images.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "driftline"
CLOUDS = ("aws", "gcp", "azure")
Helm = Any  # tests/deploy/conftest.py's Helm (helm and kubectl runner)
# the optional objects too, so their CRDs' schemas check them
EXTRAS = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "topics.strimzi.enabled=true",
    "topics.strimzi.cluster=events",
)
SERVICES = ("ingestion", "drift-detection", "alerting", "audit", "compliance-report", "console")


@pytest.fixture
def namespace(kube: Helm) -> Iterator[str]:
    ns = f"dl-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", ns)
    yield ns
    kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _json(kube: Helm, *args: str) -> Any:
    return json.loads(kube.kubectl(*args, "-o", "json").stdout)


@pytest.mark.parametrize(
    "values", [(), *((f"values-{c}.yaml",) for c in CLOUDS)], ids=["default", *CLOUDS]
)
def test_server_accepts_every_rendered_document(
    kube: Helm, namespace: str, values: tuple[str, ...]
) -> None:
    text = kube.template_text(values, EXTRAS)
    docs = [d for d in yaml.safe_load_all(text) if d]
    out = kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=text)
    accepted = [line for line in out.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(docs), out.stdout
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "PrometheusRule", "KafkaTopic", "Job"} <= kinds
    assert ("Ingress" in kinds) == bool(values)  # the clouds' files enable it
    # a dry run stores nothing
    assert _json(kube, "get", "deployments", "-n", namespace)["items"] == []


def test_server_validation_can_fail(
    kube: Helm, namespace: str, render: Callable[..., list[dict[str, Any]]]
) -> None:
    """The check above would catch a chart mistake: the same server refuses a typo'd field, a
    selector that misses its template and a bad quantity."""
    deployment = next(d for d in render() if d["kind"] == "Deployment")
    broken: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}),
        lambda d: d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/component": "x"}),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
            memory="lots"
        ),
    ]
    for breaks in broken:
        d = json.loads(json.dumps(deployment))
        breaks(d)
        out = kube.kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(d),
            check=False,
        )
        assert out.returncode != 0, f"the server accepted {d}"


def _release_pods(kube: Helm, ns: str) -> list[dict[str, Any]]:
    pods = _json(kube, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=dl")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict[str, Any]) -> bool:
    conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return pod["status"].get("phase") == "Running" and conds.get("Ready") == "True"


@pytest.mark.timeout(900)  # three helm operations of up to 240 s each on a loaded machine
def test_install_upgrade_rollback(kube: Helm, namespace: str) -> None:
    ns = namespace
    kube.helm("install", "dl", str(CHART), "-n", ns, "--wait", "--timeout", "240s", timeout=300)

    # the hook Job ran to completion before the release's objects, then was deleted
    events = _json(kube, "get", "events", "-n", ns)["items"]
    job_events = [
        e
        for e in events
        if e["involvedObject"]["kind"] == "Job"
        and e["involvedObject"]["name"] == "dl-driftline-migrations"
    ]
    assert any(e["reason"] == "Completed" for e in job_events), job_events
    assert _json(kube, "get", "jobs", "-n", ns)["items"] == []

    deployments = {
        d["metadata"]["name"]: d for d in _json(kube, "get", "deployments", "-n", ns)["items"]
    }
    assert sorted(deployments) == sorted(f"dl-driftline-{s}" for s in SERVICES)
    for name, d in deployments.items():
        st = d["status"]
        assert st.get("availableReplicas", 0) == d["spec"]["replicas"] >= 1, (name, st)
    # alerting and compliance-report run active/standby (decisions 38, 45): two replicas each
    for name in ("alerting", "compliance-report"):
        assert deployments[f"dl-driftline-{name}"]["spec"]["replicas"] == 2, name
    pods = _release_pods(kube, ns)
    assert pods
    assert all(_ready(p) for p in pods), [p["status"].get("phase") for p in pods]
    nodes = {n["metadata"]["name"]: n for n in _json(kube, "get", "nodes")["items"]}
    # topology spread: the two audit replicas land in different zones
    audit = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/component"] == "audit"]
    zones = {
        nodes[p["spec"]["nodeName"]]["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for p in audit
    }
    assert len(audit) == 2
    assert len(zones) == 2, zones
    hpas = _json(kube, "get", "hpa", "-n", ns)["items"]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} <= set(deployments)
    assert len(_json(kube, "get", "networkpolicies", "-n", ns)["items"]) == 1 + len(SERVICES)

    # an upgrade with a config change: hook again, new pods (config checksum), all Ready
    before = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
    kube.helm(
        "upgrade", "dl", str(CHART), "-n", ns, "--reuse-values",
        "--set", "config.logLevel=DEBUG", "--wait", "--timeout", "240s",
        timeout=300,
    )  # fmt: skip
    cm = _json(kube, "get", "configmap", "dl-driftline-config", "-n", ns)
    assert cm["data"]["DRIFTLINE_LOG_LEVEL"] == "DEBUG"
    upgraded = _release_pods(kube, ns)
    after = {p["metadata"]["labels"]["pod-template-hash"] for p in upgraded if _ready(p)}
    assert after
    assert not (after & before), "the config change did not roll the pods"
    completed = [
        e
        for e in _json(kube, "get", "events", "-n", ns)["items"]
        if e["involvedObject"]["name"] == "dl-driftline-migrations" and e["reason"] == "Completed"
    ]
    assert len({e["involvedObject"]["uid"] for e in completed}) == 2, (
        "the pre-upgrade hook did not run"
    )

    # rollback to the first revision restores its configuration
    kube.helm("rollback", "dl", "1", "-n", ns, "--wait", "--timeout", "240s", timeout=300)
    cm = _json(kube, "get", "configmap", "dl-driftline-config", "-n", ns)
    assert cm["data"]["DRIFTLINE_LOG_LEVEL"] == "INFO"
    history = json.loads(kube.helm("history", "dl", "-n", ns, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"

    kube.helm("uninstall", "dl", "-n", ns, "--wait", "--timeout", "120s", timeout=180)
    assert _json(kube, "get", "deployments", "-n", ns)["items"] == []


@pytest.mark.timeout(900)
def test_a_failing_hook_stops_the_upgrade_before_any_pod_changes(
    kube: Helm, namespace: str
) -> None:
    """The hook Job fails for real: a node selector no node matches keeps its pod Pending
    until the Job's activeDeadlineSeconds. The upgrade fails, the Deployments keep their
    pods, and the next good upgrade goes through."""
    ns = namespace
    kube.helm("install", "dl", str(CHART), "-n", ns, "--wait", "--timeout", "240s", timeout=300)
    before = {
        d["metadata"]["name"]: d["metadata"]["generation"]
        for d in _json(kube, "get", "deployments", "-n", ns)["items"]
    }
    failed = kube.helm(
        "upgrade", "dl", str(CHART), "-n", ns, "--reuse-values",
        "--set", "nodeSelector.driftline\\.io/no-such-node=true",
        "--set", "config.logLevel=DEBUG",
        "--set", "migrations.activeDeadlineSeconds=30",
        "--wait", "--timeout", "180s",
        check=False, timeout=300,
    )  # fmt: skip
    assert failed.returncode != 0
    assert "migrations" in failed.stderr, failed.stderr
    after = {
        d["metadata"]["name"]: d["metadata"]["generation"]
        for d in _json(kube, "get", "deployments", "-n", ns)["items"]
    }
    assert after == before, "the Deployments changed although the hook failed"
    cm = _json(kube, "get", "configmap", "dl-driftline-config", "-n", ns)
    assert cm["data"]["DRIFTLINE_LOG_LEVEL"] == "INFO"
    pods = _release_pods(kube, ns)
    assert all(
        _ready(p)
        for p in pods
        if p["metadata"]["labels"]["app.kubernetes.io/component"] != "migrations"
    )
    history = json.loads(kube.helm("history", "dl", "-n", ns, "-o", "json").stdout)
    assert history[-1]["status"] == "failed"
    # fixed values: the next upgrade runs the hook again and goes through
    kube.helm(
        "upgrade", "dl", str(CHART), "-n", ns, "--reset-values",
        "--set", "config.logLevel=DEBUG", "--wait", "--timeout", "240s",
        timeout=300,
    )  # fmt: skip
    cm = _json(kube, "get", "configmap", "dl-driftline-config", "-n", ns)
    assert cm["data"]["DRIFTLINE_LOG_LEVEL"] == "DEBUG"
    history = json.loads(kube.helm("history", "dl", "-n", ns, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed"
