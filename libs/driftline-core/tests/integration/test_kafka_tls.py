"""Kafka over TLS with SCRAM (SASL_SSL) against the local broker's TLS listener, whose
certificate comes from the stack's test CA (made with `cryptography`)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from driftline_core.events import AuditRecord, decode
from driftline_core.events.audit import Actor, Resource
from driftline_core.kafka import EventProducer
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "deploy" / "local"))
from dlstack import tls  # noqa: E402
from dlstack.common import PORTS  # noqa: E402


@pytest.fixture
def tls_settings(stack) -> KafkaSettings:
    if os.environ.get("DRIFTLINE_TEST_STACK", "local") != "local":
        pytest.skip("the TLS listener is the local stack's (deploy/local/dlstack/kafka.py)")
    assert tls.CA.exists(), "the local stack makes its test CA when Kafka starts"
    return KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{PORTS['kafka_tls']}",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=tls.SCRAM_USER,
        sasl_password=SecretStr(tls.SCRAM_PASSWORD),
        ssl_cafile=str(tls.CA),
        client_id="tls-test",
    )


async def test_events_round_trip_over_sasl_ssl(tls_settings, unique):
    topic = unique("test.tls")
    admin = AIOKafkaAdminClient(**client_kwargs(tls_settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = EventProducer(tls_settings)
        await producer.start()
        sent = [
            AuditRecord(
                tenant_id="acme",
                service="test",
                actor=Actor(type="system", id="tls-test"),
                action=f"tls.{i}",
                resource=Resource(type="topic", id=topic),
            )
            for i in range(20)
        ]
        try:
            for rec in sent:
                await producer.send(rec, topic=topic)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, auto_offset_reset="earliest", **client_kwargs(tls_settings)
        )
        await consumer.start()
        try:
            got = await consumer.getmany(timeout_ms=10_000, max_records=100)
            records = [decode(AuditRecord, m.value) for batch in got.values() for m in batch]
        finally:
            await consumer.stop()
        assert [r.event_id for r in records] == [r.event_id for r in sent]
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_a_wrong_scram_password_is_refused(tls_settings):
    bad = tls_settings.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    admin = AIOKafkaAdminClient(**{**client_kwargs(bad), "request_timeout_ms": 5000})
    with pytest.raises(KafkaError):
        await admin.start()
    await admin.close()


def _other_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the stack's CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


async def test_a_broker_certificate_from_an_untrusted_ca_is_refused(tls_settings, tmp_path):
    other = tls_settings.model_copy(update={"ssl_cafile": str(_other_ca(tmp_path / "ca.pem"))})
    admin = AIOKafkaAdminClient(**{**client_kwargs(other), "request_timeout_ms": 5000})
    with pytest.raises((KafkaConnectionError, KafkaError)):
        await admin.start()
    await admin.close()
