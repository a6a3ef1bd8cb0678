"""Every service runs as its own process against the real stack: /healthz, /readyz (checking
its real dependencies), /metrics, JSON logs, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

SERVICES = {
    # "revocations": the listener of driftline.revocations.v1 is positioned (decision 37)
    "ingestion": {"kafka", "postgres", "redis", "revocations"},
    "drift-detection": {"kafka", "postgres", "redis", "influxdb", "consumers"},
    "alerting": {"kafka", "postgres", "redis", "consumers", "leader", "revocations"},
    "audit": {"kafka", "postgres", "redis", "consumers", "revocations"},
    # "leader": reported, not required (decision 45); a lone replica leads, so it is "ok"
    "compliance-report": {
        "kafka",
        "postgres",
        "redis",
        "influxdb",
        "consumers",
        "leader",
        "revocations",
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def executable(name: str) -> str:
    exe = Path(sys.executable).with_name(f"driftline-{name}")
    found = str(exe) if exe.exists() else shutil.which(f"driftline-{name}")
    assert found, f"driftline-{name} is not installed in this environment"
    return found


async def test_every_service_starts_is_ready_exposes_metrics_and_stops_cleanly(
    stack, tmp_path, wait_until
):
    procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name in SERVICES:
            port, log = free_port(), tmp_path / f"{name}.log"
            env = {
                "DRIFTLINE_HTTP__PORT": str(port),
                "PATH": "/usr/bin:/bin",
                "DRIFTLINE_INFLUX__SPOOL_DIR": str(tmp_path / "spool"),
            }
            with open(log, "wb") as out:
                procs[name] = (
                    subprocess.Popen(
                        [executable(name)], env=env, stdout=out, stderr=subprocess.STDOUT
                    ),
                    port,
                    log,
                )

        async with httpx.AsyncClient(timeout=5) as http:
            for name, (proc, port, _log) in procs.items():
                base = f"http://127.0.0.1:{port}"

                async def ready(
                    base: str = base, proc: subprocess.Popen[bytes] = proc, name: str = name
                ) -> bool:
                    assert proc.poll() is None, f"{name} exited early"
                    try:
                        return (await http.get(f"{base}/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(ready, timeout=60, interval=0.25)
                body = (await http.get(f"{base}/readyz")).json()
                assert set(body["checks"]) == SERVICES[name]
                assert all(v == "ok" for v in body["checks"].values())
                assert (await http.get(f"{base}/healthz")).json()["service"] == name
                metrics = (await http.get(f"{base}/metrics")).text
                assert f'driftline_service_info{{service="{name}"}} 1.0' in metrics
                assert 'driftline_dependency_up{dependency="kafka"} 1.0' in metrics

        for name, (proc, _, log) in procs.items():
            proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises SIGTERM once its graceful shutdown is complete
            code = proc.wait(20)
            assert code in (0, -signal.SIGTERM), f"{name} exited {code}:\n{log.read_text()[-2000:]}"
            lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
            records = [json.loads(ln) for ln in lines]  # every line is a JSON object
            assert {"service started", "service stopped"} <= {r["message"] for r in records}
            assert all(r["service"] == name and "time" in r and "level" in r for r in records)
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.mark.parametrize("name", ["ingestion"])
async def test_a_service_whose_dependency_is_unreachable_reports_it_and_does_not_start(
    stack, tmp_path, name
):
    env = {
        "DRIFTLINE_HTTP__PORT": str(free_port()),
        "PATH": "/usr/bin:/bin",
        "DRIFTLINE_POSTGRES__PORT": str(free_port()),  # nothing listens there
        "DRIFTLINE_STARTUP_TIMEOUT_S": "2",
    }
    out = subprocess.run(
        [executable(name)], env=env, capture_output=True, text=True, timeout=120, input=""
    )
    assert out.returncode != 0
    assert "PostgreSQL unreachable" in out.stderr + out.stdout
