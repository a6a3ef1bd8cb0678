"""Real receivers on loopback (an HTTP receiver that verifies every Standard Webhooks
signature, an SMTP server with STARTTLS and authentication) and an alerting runtime on its own
schema and topics, against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from driftline_alerting.app import MIGRATIONS
from driftline_alerting.runtime import AlertingRuntime
from driftline_alerting.settings import AlertingOptions
from driftline_alerting.store import Store
from driftline_core.audit import AuditEmitter
from driftline_core.crypto import FieldCipher
from driftline_core.db import Database
from driftline_core.kafka import EventProducer

SECRET_OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_NEW = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    status: int


@dataclass
class HttpReceiver:
    """Verifies every request's signature with the secret it knows; `plan` says how to answer
    the next requests (status codes, or "sleep" to make the sender time out)."""

    url: str
    secret: str = SECRET_NEW
    hits: list[Hit] = field(default_factory=list)
    plan: list[int | str] = field(default_factory=list)
    retry_after: str | None = None

    def verified(self) -> list[Hit]:
        return [h for h in self.hits if h.verified and 200 <= h.status < 300]


def _app(r: HttpReceiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified, error = False, None
        if "webhook-signature" in headers:
            try:
                Webhook(r.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError as e:
                error = str(e)
        step = r.plan.pop(0) if r.plan else 200
        if step == "sleep":
            r.hits.append(Hit(headers, body, verified, "slept", 0))
            await asyncio.sleep(3)
            return Response(status_code=200)
        status = int(step) if verified or "webhook-signature" not in headers else 401
        r.hits.append(Hit(headers, body, verified, error, status))
        extra = {"Retry-After": r.retry_after} if r.retry_after and status >= 400 else {}
        return Response(status_code=status, headers=extra)

    return app


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    port = free_port()
    r = HttpReceiver(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(_app(r), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield r
    server.should_exit = True
    await task


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftline-test-smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: str
    messages: list[dict[str, Any]] = field(default_factory=list)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
                "tls": session.ssl is not None,
                "user": session.authenticated and getattr(session, "auth_data", None),
            }
        )
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ops", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


@pytest.fixture
def smtp(tmp_path: Path) -> Any:
    cert, key = _certificate(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    port = free_port()
    box = Mailbox("127.0.0.1", port, str(cert))
    controller = Controller(
        _Handler(box),
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    controller.start()
    yield box
    controller.stop()


@dataclass
class Alerting:
    runtime: AlertingRuntime
    db: Database
    schema: str


@pytest.fixture
async def make_alerting(
    stack, unique
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Alerting]]]:
    schema = unique("alerting")

    @contextlib.asynccontextmanager
    async def make(
        topics: dict[str, str] | None = None, cipher: FieldCipher | None = None, **opts: Any
    ) -> AsyncIterator[Alerting]:
        db = Database(stack.postgres, schema, migrations_dir=MIGRATIONS)
        await db.start()
        producer = EventProducer(stack.kafka)
        await producer.start()
        options = AlertingOptions(
            **{
                "tick_s": 0.05,
                "backoff_base_s": 0.05,
                "backoff_cap_s": 1.0,
                "breaker_open_s": 0.5,
                **opts,
            }
        )
        rt = AlertingRuntime(
            options, Store(db, cipher), producer, AuditEmitter(producer, "alerting"), topics=topics
        )
        await rt.start()
        try:
            yield Alerting(rt, db, schema)
        finally:
            await rt.stop()
            await producer.stop()
            await db.stop()

    yield make
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()
