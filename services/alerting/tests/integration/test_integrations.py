"""Alertmanager-syntax integrations against real servers on loopback: a webhook over HTTPS
trusting a private CA given inline (`tls_config.ca`) with basic auth, the same webhook
refused without that CA, and e-mail configured through `global.smtp_*` (STARTTLS,
authentication, the CA from `tls_config.ca_file`)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import uvicorn

from driftline_alerting.routing import AlertingConfig
from driftline_alerting.rules import Rule
from driftline_core.events import DriftResult
from driftline_core.kafka import Message

from .conftest import HttpReceiver, _app, _certificate, free_port
from .results import as_message, drift_result

RULE = {
    "id": "share",
    "name": "DatasetDrift",
    "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
    "severity": "critical",
    "annotations": {"summary": "{value:.0%} of {model} drifted"},
}


def result(tenant: str) -> Message[DriftResult]:
    end = datetime.now(UTC).timestamp()
    return as_message(drift_result(tenant, 0.9, end, income_feature=False))


@pytest.fixture
async def https_receiver(tmp_path: Path) -> AsyncIterator[tuple[HttpReceiver, str]]:
    cert, key = _certificate(tmp_path)
    port = free_port()
    r = HttpReceiver(url=f"https://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            _app(r),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield r, cert.read_text()
    server.should_exit = True
    await task


async def configure(a, tenant: str, cfg: dict) -> None:
    await a.runtime.store.put_rule(tenant, Rule.model_validate(RULE), "test")
    await a.runtime.store.put_config(tenant, AlertingConfig.model_validate(cfg), "test")
    a.runtime.rules = await a.runtime.store.rules()
    a.runtime.configs = await a.runtime.store.configs()


async def test_a_webhook_over_tls_with_an_inline_ca_and_basic_auth(
    make_alerting, https_receiver, unique, wait_until
):
    receiver, ca = https_receiver
    tenant = unique("t")
    hook = {
        "url": receiver.url + "/alerts",
        "http_config": {
            "basic_auth": {"username": "driftline", "password": "pw"},
            "tls_config": {"ca": ca},
        },
    }
    cfg = {
        "route": {
            "receiver": "tls",
            "group_wait": "0s",
            "routes": [{"receiver": "untrusted", "continue": True}, {"receiver": "tls"}],
        },
        "receivers": [
            {"name": "tls", "webhook_configs": [hook]},
            {"name": "untrusted", "webhook_configs": [{"url": receiver.url + "/plain"}]},
        ],
    }
    async with make_alerting(max_attempts=1) as a:
        await configure(a, tenant, cfg)
        await a.runtime.handle([result(tenant)])

        async def done() -> bool:
            ds = await a.runtime.store.deliveries(tenant)
            return len(ds) == 2 and all(d["status"] != "pending" for d in ds)

        await wait_until(done, timeout=30)
        by_receiver = {d["receiver"]: d for d in await a.runtime.store.deliveries(tenant)}
    assert by_receiver["tls"]["status"] == "delivered"
    [hit] = receiver.hits  # only the one that trusted the CA reached the server
    expected = "Basic " + base64.b64encode(b"driftline:pw").decode()
    assert hit.headers["authorization"] == expected
    assert orjson.loads(hit.body)["alerts"][0]["labels"]["model"] == "credit"
    failed = by_receiver["untrusted"]
    assert failed["status"] == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in failed["last_error"]


async def test_email_through_global_smtp_settings(make_alerting, smtp, unique, wait_until):
    tenant = unique("t")
    cfg = {
        "global": {
            "smtp_smarthost": f"{smtp.host}:{smtp.port}",
            "smtp_from": "driftline@example.org",
            "smtp_auth_username": "ops",
            "smtp_auth_password": "s3cret",
            "smtp_require_tls": True,
        },
        "route": {"receiver": "mail", "group_wait": "0s"},
        "receivers": [
            {
                "name": "mail",
                "email_configs": [
                    {"to": "oncall@example.org", "tls_config": {"ca_file": smtp.ca_file}}
                ],
            }
        ],
    }
    async with make_alerting(external_url="https://driftline.example.org") as a:
        await configure(a, tenant, cfg)
        await a.runtime.handle([result(tenant)])

        async def mailed() -> bool:
            return bool(smtp.messages)

        await wait_until(mailed, timeout=30)
    [mail] = smtp.messages
    assert mail["tls"]
    assert mail["user"] == b"ops"
    assert mail["to"] == ["oncall@example.org"]
    assert "Subject: [FIRING:1]" in mail["data"]
    assert "90% of credit drifted" in mail["data"]
    assert "model: https://driftline.example.org/v1/models/credit" in mail["data"]


async def test_a_webhook_with_a_client_certificate(make_alerting, tmp_path, unique, wait_until):
    """The receiver requires a client certificate (mutual TLS): `tls_config.cert`/`key`."""
    cert, key = _certificate(tmp_path)
    port = free_port()
    r = HttpReceiver(url=f"https://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            _app(r),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(cert),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        tenant = unique("t")
        tls = {"ca": cert.read_text()}
        cfg = {
            "route": {
                "receiver": "mtls",
                "group_wait": "0s",
                "routes": [{"receiver": "no-cert", "continue": True}, {"receiver": "mtls"}],
            },
            "receivers": [
                {
                    "name": "mtls",
                    "webhook_configs": [
                        {
                            "url": r.url + "/a",
                            "http_config": {
                                "tls_config": {
                                    **tls,
                                    "cert": cert.read_text(),
                                    "key": key.read_text(),
                                }
                            },
                        }
                    ],
                },
                {
                    "name": "no-cert",
                    "webhook_configs": [{"url": r.url + "/b", "http_config": {"tls_config": tls}}],
                },
            ],
        }
        async with make_alerting(max_attempts=1) as a:
            await configure(a, tenant, cfg)
            await a.runtime.handle([result(tenant)])

            async def done() -> bool:
                ds = await a.runtime.store.deliveries(tenant)
                return len(ds) == 2 and all(d["status"] != "pending" for d in ds)

            await wait_until(done, timeout=30)
            by_receiver = {d["receiver"]: d for d in await a.runtime.store.deliveries(tenant)}
        assert by_receiver["mtls"]["status"] == "delivered"
        assert by_receiver["no-cert"]["status"] == "failed"
        assert len(r.hits) == 1
    finally:
        server.should_exit = True
        await task
