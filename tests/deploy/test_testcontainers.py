"""`DRIFTLINE_TEST_STACK=docker` for real: a subset of the integration tests run against
Kafka, PostgreSQL, Redis and InfluxDB started by testcontainers (the root conftest's
`_docker_stack`) through podman's Docker API, with the locally built stand-ins of the
official images (deploy/compose/ci). The run must pass with nothing skipped (a skip would
mean no engine answered), and leave no container behind.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT, Podman

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(600),
]

SUBSET = [
    "libs/driftline-core/tests/integration/test_postgres.py",
    "libs/driftline-core/tests/integration/test_redis.py",
    "libs/driftline-core/tests/integration/test_influx.py",
    "libs/driftline-core/tests/integration/test_dead_letters.py",
]
STAND_INS = {
    "DRIFTLINE_TEST_KAFKA_IMAGE": "localhost/driftline-ci/kafka:4.3.1",
    "DRIFTLINE_TEST_POSTGRES_IMAGE": "localhost/driftline-ci/postgres:bookworm",
    "DRIFTLINE_TEST_REDIS_IMAGE": "localhost/driftline-ci/redis:bookworm",
    "DRIFTLINE_TEST_INFLUX_IMAGE": "localhost/driftline-ci/influxdb:1.8.10",
}


def _testcontainers(podman: Podman) -> list[str]:
    out = podman.run("ps", "-a", "-q", "--filter", "label=org.testcontainers=true")
    return out.stdout.split()


def test_integration_subset_runs_on_testcontainers_over_podman(podman: Podman) -> None:
    missing = [
        i for i in STAND_INS.values() if podman.run("image", "exists", i, check=False).returncode
    ]
    if missing:
        pytest.fail(f"images {missing} are not built: run `make ci-images`", pytrace=False)
    before = set(_testcontainers(podman))
    env = {
        **podman.env,
        **STAND_INS,
        "DRIFTLINE_TEST_STACK": "docker",
        # the Ryuk reaper's image is not available without a registry; the fixture removes
        # its containers itself (context managers), checked below
        "TESTCONTAINERS_RYUK_DISABLED": "true",
    }
    for k in list(env):  # the local stack's endpoints must not leak into the docker run
        if k.startswith("DRIFTLINE_") and "__" in k:
            del env[k]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *SUBSET, "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed, summary
    assert int(passed.group(1)) >= 8, summary
    assert "skipped" not in summary, run.stdout[-3000:]
    assert set(_testcontainers(podman)) == before, "testcontainers left containers behind"
