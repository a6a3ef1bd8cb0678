"""Hand-off to an existing Alertmanager: Debian's real prometheus-alertmanager on a free
loopback port (no cluster port), Driftline's `driftline_alertmanager_configs` receiver
pointed at it. The alert arrives there with Driftline's labels, is re-sent while it fires,
and resolves (endsAt) when Driftline resolves it; Alertmanager's own webhook notifications,
to a receiver here, show the same: firing, then resolved."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from driftline_alerting.routing import AlertingConfig
from driftline_alerting.rules import Rule
from driftline_core.events import DriftResult
from driftline_core.kafka import Message

from .conftest import free_port
from .results import as_message, drift_result

RULE = {
    "id": "share",
    "name": "DatasetDrift",
    "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
    "severity": "critical",
    "annotations": {"summary": "{value:.0%} of {model} drifted"},
}


def result(tenant: str, share: float, end: float) -> Message[DriftResult]:
    return as_message(drift_result(tenant, share, end, income_feature=False))


@dataclass
class RealAlertmanager:
    url: str

    async def alerts(self, **params: str) -> list[dict]:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{self.url}/api/v2/alerts", params=params)
            r.raise_for_status()
            return list(r.json())


@pytest.fixture
async def alertmanager(tmp_path: Path, receiver) -> AsyncIterator[RealAlertmanager]:
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if exe is None:
        pytest.fail("prometheus-alertmanager is missing: deploy/local/bootstrap.sh installs it")
    port = free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(
        f"""
route:
  receiver: hook
  group_by: [alertname, model]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url}/from-alertmanager
        send_resolved: true
"""
    )
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--config.file={cfg}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=1) as c:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(f"{url}/-/ready")).status_code == 200:
                        break
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("Alertmanager did not become ready")
        assert proc.returncode is None, (tmp_path / "alertmanager.log").read_text()
        yield RealAlertmanager(url)
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_alerts_are_handed_to_a_real_alertmanager_and_resolve_there(
    make_alerting, alertmanager, receiver, unique, wait_until
):
    tenant = unique("t")
    cfg = AlertingConfig.model_validate(
        {
            "route": {
                "receiver": "upstream",
                "group_wait": "0s",
                "group_interval": "200ms",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "upstream",
                    "driftline_alertmanager_configs": [
                        {"url": alertmanager.url, "resend_interval": "1s"}
                    ],
                }
            ],
        }
    )
    async with make_alerting(external_url="https://driftline.example.org") as a:
        await a.runtime.store.put_rule(tenant, Rule.model_validate(RULE), "test")
        await a.runtime.store.put_config(tenant, cfg, "test")
        a.runtime.rules = await a.runtime.store.rules()
        a.runtime.configs = await a.runtime.store.configs()
        t0 = datetime.now(UTC).timestamp()
        await a.runtime.handle([result(tenant, 0.9, t0)])

        async def arrived() -> list[dict]:
            return [x for x in await alertmanager.alerts() if x["labels"].get("tenant") == tenant]

        async def there() -> bool:
            return len(await arrived()) == 1

        await wait_until(there, timeout=30)
        [got] = await arrived()
        assert got["labels"] == {
            "alertname": "DatasetDrift",
            "rule_id": "share",
            "severity": "critical",
            "tenant": tenant,
            "model": "credit",
            "version": "3",
        }
        assert got["annotations"]["summary"] == "90% of credit drifted"
        assert got["annotations"]["driftline_model_url"] == (
            "https://driftline.example.org/v1/models/credit"
        )
        assert got["generatorURL"].startswith("https://driftline.example.org/v1/alerts/")
        assert got["status"]["state"] == "active"
        ends = datetime.fromisoformat(got["endsAt"].replace("Z", "+00:00"))
        assert ends > datetime.now(UTC)  # a few re-send intervals ahead, as Prometheus sends

        # re-sent while it fires (each hand-off is one delivery, all delivered)
        async def resent() -> bool:
            ds = await a.runtime.store.deliveries(tenant)
            return sum(d["status"] == "delivered" for d in ds) >= 3

        await wait_until(resent, timeout=30)
        [again] = await arrived()
        assert datetime.fromisoformat(again["endsAt"].replace("Z", "+00:00")) >= ends

        # Alertmanager routed it to its own receiver
        def from_am(status: str) -> list[dict]:
            out = []
            for h in receiver.hits:
                body = orjson.loads(h.body)
                if body.get("status") == status:
                    out += [x for x in body["alerts"] if x["labels"].get("tenant") == tenant]
            return out

        async def am_notified() -> bool:
            return bool(from_am("firing"))

        await wait_until(am_notified, timeout=30)

        # resolved in Driftline: endsAt reaches Alertmanager, which resolves it
        before = datetime.now(UTC)
        await a.runtime.handle([result(tenant, 0.1, t0 + 60)])
        after = datetime.now(UTC)

        async def gone() -> bool:
            return await arrived() == []

        await wait_until(gone, timeout=30)

        async def am_resolved() -> bool:
            return bool(from_am("resolved"))

        await wait_until(am_resolved, timeout=30)
        [res] = from_am("resolved")
        assert res["labels"]["model"] == "credit"
        # the end Driftline sent, not the one Alertmanager would reach by itself when the
        # re-sends stop (seconds later)
        resolved_at = datetime.fromisoformat(res["endsAt"].replace("Z", "+00:00"))
        assert before <= resolved_at <= after
        ds = await a.runtime.store.deliveries(tenant)
        assert all(d["status"] == "delivered" for d in ds), ds
