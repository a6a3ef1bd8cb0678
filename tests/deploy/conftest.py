"""Fixtures of the deployment tests (tests/deploy): the container tooling of this checkout.

Shared by the image and compose tests (test_images.py, test_compose.py,
test_testcontainers.py) and the Helm tests (test_helm*.py). The tooling is installed and the
images are built by the project's own scripts before the tests run (`make images`,
`make ci-images`; `make test` does both), so a test here never builds for minutes inside its
timeout: a missing tool or image fails with the command that makes it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".stack" / "cache"
VERSION = "0.1.0"
PREFIX = "ghcr.io/driftline"
SERVICES = ["ingestion", "drift-detection", "alerting", "audit", "compliance-report", "console"]
# the shared local stack's ports: containers in tests never publish on these
STACK_PORTS = {19092, 19093, 19094, 15432, 16379, 18086, 18088, 19090, *range(8101, 8107)}


def image(name: str) -> str:
    return f"{PREFIX}/{name}:{VERSION}"


@dataclass(frozen=True)
class Podman:
    """podman (and docker compose) against this checkout's private container storage."""

    env: dict[str, str]
    socket: Path

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,  # type: ignore[call-overload]
        )
        if check and out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out

    def inspect(self, what: str) -> dict[str, object]:
        data = json.loads(self.run("inspect", what).stdout)
        assert len(data) == 1, data
        return dict(data[0])


def free_port() -> int:
    """A free 127.0.0.1 port outside the shared stack's and the kernel's ephemeral range."""
    return _free_port_block(1)


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    conf = CACHE / "containers" / "containers.conf"
    if shutil.which("podman") is None or not conf.exists():
        pytest.fail("podman is not set up: run `make containers`", pytrace=False)
    sock = ROOT / ".stack" / "run" / "podman" / "podman.sock"
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(conf),
        "CONTAINERS_STORAGE_CONF": str(CACHE / "containers" / "storage.conf"),
        "DOCKER_HOST": f"unix://{sock}",
        # podman-api.sh starts the API where this says (deploy/images/env.sh): a value from
        # another checkout's environment would start it there, not where compose looks
        "DRIFTLINE_PODMAN_SOCK": str(sock),
        "PATH": f"{CACHE / 'bin'}:{os.environ.get('PATH', '')}",
    }
    # the Docker API socket and the health pump: started here unless already running, and
    # then stopped again at the end of the session (by pid, see podman-api.sh)
    script = ["bash", str(ROOT / "deploy" / "images" / "podman-api.sh")]
    status = subprocess.run([*script, "status"], env=env, capture_output=True, text=True)
    started = "api: pid" not in status.stdout
    out = subprocess.run([*script, "start"], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.fail(f"podman's API did not start:\n{out.stdout}\n{out.stderr}", pytrace=False)
    yield Podman(env=env, socket=sock)
    if started:
        subprocess.run([*script, "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def images(podman: Podman) -> dict[str, str]:
    """The Driftline images, built by `make images`."""
    names = [*SERVICES, "tools"]
    missing = [n for n in names if podman.run("image", "exists", image(n), check=False).returncode]
    if missing:
        pytest.fail(f"images {missing} are not built: run `make images`", pytrace=False)
    return {n: image(n) for n in names}


# ---- Helm chart and a private Kubernetes control plane (test_helm*.py) ----------------------

CHART = ROOT / "helm" / "driftline"
# building the tools cold takes 10-15 min of CPU on 2 cores (`make k8s-tools`, run by
# `make test` before pytest); when warm, the script only checks that they are there
K8S_TOOLS_TIMEOUT_S = float(os.environ.get("DRIFTLINE_K8S_TOOLS_TIMEOUT_S", "3600"))


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_HANDED: set[int] = set()  # ports given out in this session, never given twice


def _free_port_block(size: int) -> int:
    """A loopback port p such that p .. p+size-1 are free now, are not the stack's, and lie
    outside the kernel's ephemeral range. A server that binds its port only some time after
    it was chosen (KWOK starts after etcd and the API server, compose's containers after
    their images) must not find it taken by an outgoing connection meanwhile: one picked by
    binding port 0 is an ephemeral port, which every connect() may take (KWOK once failed
    on 'address already in use' so)."""
    lo_e, hi_e = _ephemeral_range()
    spans = [(r0, r1) for r0, r1 in ((20000, lo_e), (hi_e + 1, 65536)) if r1 - r0 > size]
    rng = random.Random()
    for _ in range(2000):
        r0, r1 = rng.choice(spans)
        base = rng.randrange(r0, r1 - size)
        block = set(range(base, base + size))
        if block & (STACK_PORTS | _HANDED):
            continue
        ok = True
        for p in block:
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            _HANDED.update(block)
            return base
    raise RuntimeError("no block of free loopback ports")


def _script(name: str, timeout: float) -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "k8s" / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        pytest.fail(f"deploy/k8s/{name} failed:\n{out.stderr[-3000:]}", pytrace=False)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """helm, kubectl, etcd, kube-apiserver, scheduler, controller-manager and kwok from
    deploy/k8s/tools.sh (.stack/cache/k8s/bin). DRIFTLINE_K8S_BIN names another folder."""
    if os.environ.get("DRIFTLINE_K8S_BIN"):
        return Path(os.environ["DRIFTLINE_K8S_BIN"])
    return _script("tools.sh", K8S_TOOLS_TIMEOUT_S)


@pytest.fixture(scope="session")
def k8s_crds() -> Path:
    """ServiceMonitor, PrometheusRule and KafkaTopic CRDs (deploy/k8s/crds.sh)."""
    return _script("crds.sh", 600)


class Helm:
    """helm and kubectl against one kubeconfig (or none, for lint and template)."""

    def __init__(self, bin_dir: Path, kubeconfig: Path | None = None) -> None:
        self.bin = bin_dir
        self.kubeconfig = kubeconfig
        self.home = Path(tempfile.mkdtemp(prefix="driftline-helm-home-"))

    def env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '')}",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def run(
        self,
        tool: str,
        *args: str,
        stdin: str | None = None,
        timeout: float = 120,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(self.bin / tool), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {out.returncode}:\n{out.stderr[-4000:]}"
            )
        return out

    def helm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kw)

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def template_text(
        self, values: Sequence[str] = (), sets: Sequence[str] = (), release: str = "dl"
    ) -> str:
        args = ["template", release, str(CHART), "--namespace", "driftline"]
        for v in values:
            args += ["-f", str(CHART / v)]
        for s in sets:
            args += ["--set", s]
        return self.helm(*args).stdout

    def template(
        self, values: Sequence[str] = (), sets: Sequence[str] = (), release: str = "dl"
    ) -> list[dict[str, Any]]:
        docs = yaml.safe_load_all(self.template_text(values, sets, release))
        return [d for d in docs if d]

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="session")
def helm_tools(k8s_bin: Path) -> Iterator[Helm]:
    h = Helm(k8s_bin)
    yield h
    h.close()


@pytest.fixture(scope="session")
def render(helm_tools: Helm) -> Callable[..., list[dict[str, Any]]]:
    """render(values_files, sets) -> the chart's rendered documents (cached per arguments)."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}

    def make(values: Sequence[str] = (), sets: Sequence[str] = ()) -> list[dict[str, Any]]:
        key = (tuple(values), tuple(sets))
        if key not in cache:
            cache[key] = helm_tools.template(values, sets)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def kube(k8s_bin: Path, k8s_crds: Path) -> Iterator[Helm]:
    """A private control plane (etcd, kube-apiserver, scheduler, controller-manager, KWOK with
    three fake nodes) on free loopback ports in a temporary folder; stopped at the end."""
    work = Path(tempfile.mkdtemp(prefix="driftline-k8s-"))
    base = _free_port_block(6)
    env = {
        **os.environ,
        "K8S_BIN": str(k8s_bin),
        "K8S_ETCD_PORT": str(base),  # and base+1 for its peers
        "K8S_API_PORT": str(base + 2),
        "K8S_SCHED_PORT": str(base + 3),
        "K8S_CM_PORT": str(base + 4),
        "K8S_KWOK_PORT": str(base + 5),
    }
    script = str(ROOT / "deploy" / "k8s" / "cluster.sh")
    try:
        started = subprocess.run(
            ["bash", script, "start", str(work)],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            check=False,
        )
        if started.returncode != 0:
            pytest.fail(f"deploy/k8s/cluster.sh start failed:\n{started.stderr[-4000:]}")
        h = Helm(k8s_bin, Path(started.stdout.strip().splitlines()[-1]))
        h.kubectl("apply", "--server-side", "-f", str(k8s_crds), timeout=120)
        for crd in sorted(k8s_crds.glob("*.yaml")):
            name = yaml.safe_load(crd.read_text())["metadata"]["name"]
            h.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        yield h
        h.close()
    finally:
        subprocess.run(["bash", script, "stop", str(work)], env=env, timeout=120, check=False)
        shutil.rmtree(work, ignore_errors=True)
