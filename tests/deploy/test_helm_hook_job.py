"""The chart's pre-install/pre-upgrade Job, run for real: its rendered command, environment
and projected secret files, pointed at the local stack (a private database), create the
catalogue's topics and apply every service's migrations, and a second run (the next upgrade)
finds nothing to do. KWOK only pretends to run the Job's pod (test_helm_cluster.py); this
runs what the pod would."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from driftline_core.events.catalogue import TOPICS
from driftline_core.kafka.admin import topic_names

ROOT = Path(__file__).resolve().parents[2]
SOCKET = ROOT / ".stack" / "data" / "postgres-sock"
VENV_BIN = ROOT / ".venv" / "bin"

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(stack: Any) -> AsyncIterator[str]:
    if not SOCKET.exists():
        pytest.fail("needs the local stack's PostgreSQL superuser socket (make up)")
    name = f"dl_hook_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(
        host=str(SOCKET), port=stack.postgres.port, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{stack.postgres.user}"')
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _job(render: Callable[..., list[dict[str, Any]]], stack: Any) -> tuple[Any, dict[str, str]]:
    sets = (
        "environment=test",
        f"config.kafka.bootstrapServers={stack.kafka.bootstrap_servers}",
        "config.kafka.securityProtocol=PLAINTEXT",
        "config.kafka.replicationFactor=1",
        f"config.postgres.host={stack.postgres.host}",
        f"config.postgres.port={stack.postgres.port}",
        "config.postgres.ssl=disable",
        f"config.redis.url={stack.redis.url}",
        f"config.influx.url={stack.influx.url}",
    )
    docs = render((), sets)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-migrations")
    ]
    return job, dict(cm["data"])


async def test_the_hook_job_creates_topics_and_migrates_every_service(
    render: Callable[..., list[dict[str, Any]]], stack: Any, database: str, tmp_path: Path
) -> None:
    job, config = _job(render, stack)
    spec = job["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    mount = config["DRIFTLINE_SECRETS_DIR"]
    # the files the pod would see: the keys the Job's volume projects, with the local stack's
    # credentials (the test environment accepts its development keys for the rest)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (vol,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    projected = {i["key"] for i in vol["secret"]["items"]}
    assert "DRIFTLINE_POSTGRES__PASSWORD" in projected
    (secrets / "DRIFTLINE_POSTGRES__PASSWORD").write_text(
        stack.postgres.password.get_secret_value() + "\n"
    )
    env = {**config, **{e["name"]: e["value"] for e in c["env"]}}
    for k, v in list(env.items()):
        if v.startswith(mount + "/") and not (secrets / Path(v).name).exists():
            del env[k]  # a key file this test does not provide: the dev default stands in
    env.update(
        {
            "DRIFTLINE_SECRETS_DIR": str(secrets),
            "DRIFTLINE_POSTGRES__DATABASE": database,
            "DRIFTLINE_STARTUP_TIMEOUT_S": "30",
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "HOME": str(tmp_path),
        }
    )
    command = [str(VENV_BIN / c["command"][0]), *c["args"]]
    assert c["args"][0] == "init"

    first = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert first.returncode == 0, first.stderr
    for service in ("ingestion", "drift-detection", "alerting", "audit", "compliance-report"):
        assert f"migrations of {service}: applied now" in first.stdout, first.stdout
    assert await topic_names(stack.kafka) >= {t.name for t in TOPICS}

    owner = await asyncpg.connect(stack.postgres.model_copy(update={"database": database}).dsn())
    try:
        schemas = {
            r["nspname"]
            for r in await owner.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'"
            )
        }
        assert {"ingestion", "drift", "alerting", "audit", "reports", "keyring"} <= schemas
        for schema in ("ingestion", "drift", "alerting", "audit", "reports", "keyring"):
            n = await owner.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations')
            assert n >= 1, schema
        # the audit writer's grants, as the audit service gives them
        assert await owner.fetchval(
            "SELECT has_table_privilege($1, 'audit.records', 'INSERT')", "driftline_audit"
        )
    finally:
        await owner.close()

    # the next upgrade's run: nothing left to do, and it says so
    second = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert second.returncode == 0, second.stderr
    assert "created 0" in second.stdout
    assert second.stdout.count("applied now {") == 5
    for line in second.stdout.splitlines():
        if line.startswith("migrations of"):
            assert "[1" not in line, f"migrated again: {line}"

    # a broken environment fails the Job with one line naming the problem
    bad = subprocess.run(
        command,
        env={**env, "DRIFTLINE_POSTGRES__PORT": "1", "DRIFTLINE_STARTUP_TIMEOUT_S": "2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("driftline-admin init:"), bad.stderr
