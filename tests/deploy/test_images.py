"""The Driftline images, run for real with podman: each service's entry point starts the
service, `/readyz` answers inside the container, and the process runs as a non-root user on
a read-only root filesystem, with only /tmp writable. Checked on the running containers
(podman inspect, exec), against the shared local stack (host network, loopback only).

Images are built by `make images` (deploy/images/build.sh) from deploy/images/Dockerfile.
"""

from __future__ import annotations

import ast
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from driftline_core.settings import DriftlineSettings

from .conftest import ROOT, SERVICES, Podman, free_port

# the static checks need nothing; the others run the images (marked integration)
pytestmark = [pytest.mark.deploy]

DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
UID = "10001"


def _tmpfs() -> list[str]:
    return ["--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777"]


@pytest.fixture(scope="module")
def running(
    podman: Podman, images: dict[str, str], stack: DriftlineSettings
) -> Iterator[dict[str, tuple[str, int]]]:
    """Every service image started at once against the local stack: name -> (container, port).
    Each run has its own database and consumer groups, so other work on the shared stack
    neither sees these containers nor feeds them its state. Removed at the end, also when a
    start fails."""
    started: dict[str, tuple[str, int]] = {}
    tag = uuid.uuid4().hex[:8]
    db = f"images_{tag}"
    _admin(stack, f'CREATE DATABASE "{db}"')
    private = [
        "-e", f"DRIFTLINE_POSTGRES__DATABASE={db}",
        "-e", f"DRIFTLINE_ALERTING__GROUP_ID=alerting-{tag}",
        "-e", f"DRIFTLINE_AUDIT__GROUP_ID=audit-{tag}",
        "-e", f"DRIFTLINE_REPORTS__GROUP_ID=reports-{tag}",
        "-e", "DRIFTLINE_REPORTS__OFFSET_RESET=latest",
        "-e", f"DRIFTLINE_DRIFT__GROUP_ID=drift-{tag}",
    ]  # fmt: skip
    try:
        for svc in SERVICES:
            port = free_port()
            name = f"dltest-{svc}-{tag}"
            podman.run(
                "run", "-d", "--name", name, "--network", "host", *_tmpfs(),
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--label", "driftline.test=images",
                # the local stack's development credentials are accepted in `test` only
                "-e", "DRIFTLINE_ENVIRONMENT=test",
                "-e", "DRIFTLINE_HTTP__HOST=127.0.0.1", "-e", f"DRIFTLINE_HTTP__PORT={port}",
                "-e", "DRIFTLINE_SECRETS_DIR=", *private,
                images[svc],
            )  # fmt: skip
            started[svc] = (name, port)
        deadline = time.monotonic() + 120
        for svc, (name, port) in started.items():
            while True:
                probe = _exec_readyz(podman, name, port)
                if probe.returncode == 0:
                    break
                state = podman.inspect(name)["State"]
                assert isinstance(state, dict)
                if not state.get("Running"):
                    logs = podman.run("logs", name, check=False)
                    pytest.fail(f"{svc} exited:\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
                if time.monotonic() > deadline:
                    logs = podman.run("logs", name, check=False)
                    pytest.fail(f"{svc}: /readyz never answered 200:\n{logs.stderr[-3000:]}")
                time.sleep(0.5)
        yield started
    finally:
        for name, _ in started.values():
            podman.run("rm", "-f", "-t", "5", name, check=False)
        _admin(stack, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _admin(stack: DriftlineSettings, sql: str) -> None:
    """One statement on the local stack's maintenance database."""
    import asyncio

    async def go() -> None:
        conn = await asyncpg.connect(stack.postgres.dsn().rsplit("/", 1)[0] + "/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _exec_readyz(podman: Podman, name: str, port: int) -> object:
    code = (
        "import json, urllib.request as u; "
        f"r = u.urlopen('http://127.0.0.1:{port}/readyz', timeout=5); "
        "print(json.dumps(json.load(r)))"
    )
    return podman.run("exec", name, "python", "-c", code, check=False)


@pytest.mark.parametrize("svc", SERVICES)
@pytest.mark.integration
@pytest.mark.slow
def test_service_image_runs_ready_non_root_read_only(
    podman: Podman, running: dict[str, tuple[str, int]], images: dict[str, str], svc: str
) -> None:
    name, port = running[svc]
    # /readyz from inside the container: ready, with the service's real dependency checks
    # (bounded retries: on a loaded machine one answer may take longer than its timeout)
    deadline = time.monotonic() + 60
    out = _exec_readyz(podman, name, port)
    while out.returncode != 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(1)
        out = _exec_readyz(podman, name, port)
    assert out.returncode == 0, out  # type: ignore[attr-defined]
    body = json.loads(out.stdout)  # type: ignore[attr-defined]
    assert body["status"] == "ready", body
    assert body["service"] == svc, body
    assert body["checks"], body
    assert all(v == "ok" for v in body["checks"].values()), body

    # the image's own HEALTHCHECK (CMD-SHELL, on the image's default port) passes too
    info = podman.inspect(name)
    config, host, state = info["Config"], info["HostConfig"], info["State"]
    assert isinstance(config, dict)
    assert isinstance(host, dict)
    assert isinstance(state, dict)
    assert state["Running"] is True
    assert host["ReadonlyRootfs"] is True

    # the entry point is the service's own console script, run as pid 1
    img = podman.inspect(images[svc])
    img_config = img["Config"]
    assert isinstance(img_config, dict)
    assert img_config["Entrypoint"] == ["/app/.venv/bin/driftline-service"]
    assert img_config["User"] == f"{UID}:{UID}"
    check = img["Healthcheck"]
    assert isinstance(check, dict)
    assert check["Test"][0] == "CMD-SHELL", check
    assert "/readyz" in check["Test"][1], check
    # and it passes on the running container (the pump-less way: run it once)
    deadline = time.monotonic() + 60
    ran = podman.run("healthcheck", "run", name, check=False)
    while ran.returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
        ran = podman.run("healthcheck", "run", name, check=False)
    assert ran.returncode == 0, ran
    cmdline = podman.run("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert "/app/.venv/bin/driftline-service" in cmdline, cmdline
    target = podman.run("exec", name, "readlink", "/app/.venv/bin/driftline-service").stdout
    assert target.strip() == f"/app/.venv/bin/driftline-{svc}", target

    # non-root: the exec'd user and pid 1 itself (real, effective, saved and fs uid)
    assert podman.run("exec", name, "id", "-u").stdout.strip() == UID
    status = podman.run("exec", name, "cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
    assert uids, status
    assert uids.group(1).split() == [UID] * 4, status
    caps = re.search(r"^CapEff:\s+(\S+)$", status, re.M)
    assert caps, status
    assert int(caps.group(1), 16) == 0, status

    # read-only root filesystem: writing / and /app fails, /tmp works
    for path in ("/probe", "/app/probe", "/app/.venv/probe"):
        denied = podman.run("exec", name, "touch", path, check=False)
        assert denied.returncode != 0, denied
        assert "Read-only file system" in denied.stderr, denied
    assert podman.run("exec", name, "touch", "/tmp/probe", check=False).returncode == 0


@pytest.mark.integration
@pytest.mark.slow
def test_weasyprint_libraries_only_in_the_compliance_report_image(
    podman: Podman, images: dict[str, str]
) -> None:
    probe = "ldconfig -p | grep -c -E 'libpango-1.0.so|libharfbuzz-subset.so' || true"
    for name in [*SERVICES, "tools"]:
        out = podman.run("run", "--rm", *_tmpfs(), "--entrypoint", "sh", images[name], "-c", probe)
        found = int(out.stdout.strip().splitlines()[-1])
        assert (found == 2) == (name == "compliance-report"), (name, out.stdout)
    # and WeasyPrint renders a PDF there, as the service's user on a read-only root
    render = (
        "import weasyprint; pdf = weasyprint.HTML(string='<h1>Driftline</h1>').write_pdf(); "
        "assert pdf.startswith(b'%PDF'), pdf[:8]; print(len(pdf))"
    )
    out = podman.run(
        "run", "--rm", *_tmpfs(), "--entrypoint", "python", images["compliance-report"],
        "-c", render,
    )  # fmt: skip
    assert int(out.stdout.strip()) > 500


def test_dockerfile_pins_the_public_base_and_builds_from_the_lock() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_BASE=(\S+)$", text, re.M)
    assert base, "the base image is not an ARG with a default"
    assert re.fullmatch(r"docker\.io/library/python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1))
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    # every stage starts from the pinned base or from an earlier stage of this file
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.M))
    assert all(f == "${PYTHON_BASE}" or f in stages for f in froms), froms
    syncs = re.findall(r"uv sync ([^\n\\]*)", text)
    assert syncs, "no uv sync in the Dockerfile"
    assert all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    assert "latest" not in text


@pytest.mark.integration
@pytest.mark.slow
def test_init_job_creates_schemas_and_is_idempotent(
    podman: Podman, images: dict[str, str], stack: DriftlineSettings
) -> None:
    """`driftline-init` (tools image) against a fresh database of the local stack: every
    service's migrations, the audit writer's grants; a second run applies nothing."""
    import asyncio

    db = f"init_{uuid.uuid4().hex[:10]}"
    pg = stack.postgres
    _admin(stack, f'CREATE DATABASE "{db}"')
    try:
        args = [
            "run", "--rm", "--network", "host", *_tmpfs(), "--cap-drop", "ALL",
            "-e", "DRIFTLINE_ENVIRONMENT=test", "-e", "DRIFTLINE_SECRETS_DIR=",
            "-e", f"DRIFTLINE_POSTGRES__DATABASE={db}", "-e", "DRIFTLINE_INIT_INFLUX=false",
            "--entrypoint", "/app/.venv/bin/driftline-init", images["tools"],
        ]  # fmt: skip
        first = podman.run(*args, timeout=180)
        second = podman.run(*args, timeout=180)

        async def check() -> dict[str, int]:
            conn = await asyncpg.connect(pg.dsn().rsplit("/", 1)[0] + f"/{db}")
            try:
                counts = {}
                for schema in ("keyring", "ingestion", "drift", "alerting", "audit", "reports"):
                    counts[schema] = await conn.fetchval(
                        f'SELECT count(*) FROM "{schema}".schema_migrations'
                    )
                granted = await conn.fetchval(
                    "SELECT has_table_privilege('driftline_audit', 'audit.records', 'INSERT')"
                    " AND NOT has_table_privilege('driftline_audit', 'audit.records', 'UPDATE')"
                )
                counts["writer_grants_ok"] = int(bool(granted))
                return counts
            finally:
                await conn.close()

        counts = asyncio.run(check())
    finally:
        _admin(stack, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    # what the image holds (it may be older or newer than this working tree)
    listing = (
        "import importlib.resources as r, json; "
        "pk = {'keyring': 'driftline_core.crypto', 'ingestion': 'driftline_ingestion', "
        "'drift': 'driftline_drift_detection', 'alerting': 'driftline_alerting', "
        "'audit': 'driftline_audit', 'reports': 'driftline_compliance_report'}; "
        "print(json.dumps({s: len([f for f in (r.files(p) / 'migrations').iterdir() "
        "if f.name.endswith('.sql')]) for s, p in pk.items()}))"
    )
    held = podman.run(
        "run", "--rm", *_tmpfs(), "--entrypoint", "python", images["tools"], "-c", listing
    )  # fmt: skip
    expected = {**json.loads(held.stdout), "writer_grants_ok": 1}
    assert all(n >= 1 for n in expected.values()), expected
    assert counts == expected, (counts, first.stdout)
    assert first.stdout.rstrip().endswith("done"), first.stdout
    assert second.stdout.rstrip().endswith("done"), second.stdout
    # driftline-admin's report: every service migrated on the first run, nothing the second
    runs = [
        [ast.literal_eval(m) for m in re.findall(r"applied now (\{.*\})", out.stdout)]
        for out in (first, second)
    ]
    assert len(runs[0]) == 5, first.stdout
    assert len(runs[1]) == 5, second.stdout
    assert all(any(v.values()) for v in runs[0]), first.stdout
    assert all(not any(v.values()) for v in runs[1]), second.stdout


def test_image_files_are_in_the_build_context() -> None:
    """The .dockerignore allowlist keeps .stack and tests out but what the build copies in."""
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"
    for needed in (
        "!pyproject.toml",
        "!uv.lock",
        "!libs",
        "!services",
        "!deploy/images/tools",
        "!console/dist",  # the console image's single-page app (decision 52)
    ):
        assert needed in ignore, needed
    # the console's sources and node_modules stay out: only its build is let through
    assert "!console" not in ignore
    assert Path(ROOT / "deploy" / "images" / "tools" / "driftline_init.py").exists()
