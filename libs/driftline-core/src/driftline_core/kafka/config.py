"""aiokafka keyword arguments from KafkaSettings (PLAINTEXT, SSL, SASL_SSL with SCRAM)."""

from __future__ import annotations

from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from ..errors import RefusedError, UnavailableError, is_retriable
from ..settings import KafkaSettings

__all__ = ["client_kwargs", "kafka_failure"]


def kafka_failure(e: KafkaError, what: str = "Kafka did not acknowledge") -> UnavailableError:
    """Our error for a Kafka client error: `UnavailableError` (retry) when the client says
    a retry can help, `RefusedError` (do not) when it cannot (authorisation, too large)."""
    cls = UnavailableError if is_retriable(e) else RefusedError
    return cls(f"{what}: {e!r}")


def client_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
        )
    if settings.security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = settings.sasl_mechanism or "SCRAM-SHA-512"
        kw["sasl_plain_username"] = settings.sasl_username
        kw["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return kw
