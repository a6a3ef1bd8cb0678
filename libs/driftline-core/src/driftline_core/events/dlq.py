"""`driftline.dlq.v1`: records no consumer could process, with the reason and their origin.

A dead letter always fits the broker: a payload whose JSON form is longer than
`PAYLOAD_MAX_BYTES` is cut to a prefix (`payload_truncated`), and the original's size and
SHA-256 are recorded with it, so the copy can be matched to the original record. Long
reasons and keys are cut too. Every way of building a `DeadLetter` goes through this."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, model_validator

from .envelope import Envelope

__all__ = ["PAYLOAD_MAX_BYTES", "TOPIC", "DeadLetter"]

TOPIC = "driftline.dlq.v1"

# JSON-encoded payload at most 128 KiB; with the other fields cut as below a letter stays
# far under the producer's batch (256 KiB) and the broker's message limit (1 MiB)
PAYLOAD_MAX_BYTES = 128 * 1024
REASON_MAX_CHARS = 2000
KEY_MAX_CHARS = 512

Encoding = Literal["utf-8", "base64"]


def _encode(raw: bytes) -> tuple[str, Encoding]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _json_len(s: str) -> int:
    return len(orjson.dumps(s))


def _prefix(raw: bytes, encoding: Encoding, max_bytes: int) -> str:
    """The longest prefix (near enough) whose encoded, JSON-quoted form is at most
    `max_bytes`: exact for base64, shrinking by quarters for text with escapes."""
    if max_bytes <= 2:
        return ""
    if encoding == "base64":
        return base64.b64encode(raw[: (max_bytes - 2) // 4 * 3]).decode("ascii")
    n = min(len(raw), max_bytes - 2)
    while n > 0:
        text = raw[:n].decode("utf-8", "ignore")
        if _json_len(text) <= max_bytes:
            return text
        n = n * 3 // 4
    return ""


def _cut(s: str | None, limit: int) -> str | None:
    return s if s is None or len(s) <= limit else s[: limit - 1] + "…"


class DeadLetter(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    tenant_id: str = "unknown"  # the record may be too broken to tell
    reason: str
    error_type: str
    source: str = Field(description="the service or consumer group that gave up")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    source_key: str | None = None
    payload: str
    payload_encoding: Encoding = "utf-8"
    payload_truncated: bool = Field(
        False, description="true if `payload` holds only a prefix of the original record"
    )
    payload_size: int | None = Field(None, description="size of the original record, bytes")
    payload_sha256: str | None = Field(None, description="SHA-256 (hex) of the original record")
    attempts: int = 1

    @model_validator(mode="before")
    @classmethod
    def _fit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("payload"), str):
            return data
        data = dict(data)
        if isinstance(data.get("reason"), str):
            data["reason"] = _cut(data["reason"], REASON_MAX_CHARS)
        if isinstance(data.get("source_key"), str):
            data["source_key"] = _cut(data["source_key"], KEY_MAX_CHARS)
        if data.get("payload_truncated"):
            return data  # cut before (a letter read back): keep what it says
        payload: str = data["payload"]
        encoding = data.get("payload_encoding", "utf-8")
        if data.get("payload_size") is None or data.get("payload_sha256") is None:
            raw = base64.b64decode(payload) if encoding == "base64" else payload.encode()
            data["payload_size"] = len(raw)
            data["payload_sha256"] = hashlib.sha256(raw).hexdigest()
        if len(payload) * 6 + 2 > PAYLOAD_MAX_BYTES and _json_len(payload) > PAYLOAD_MAX_BYTES:
            raw = base64.b64decode(payload) if encoding == "base64" else payload.encode()
            data["payload"] = _prefix(raw, encoding, PAYLOAD_MAX_BYTES)
            data["payload_truncated"] = True
        return data

    @classmethod
    def of_record(cls, raw: bytes | None, **fields: Any) -> DeadLetter:
        """A letter carrying `raw` (cut to fit if too large, with its size and SHA-256)."""
        payload, encoding = _encode(raw or b"")
        return cls(
            payload=payload,
            payload_encoding=encoding,
            payload_size=len(raw or b""),
            payload_sha256=hashlib.sha256(raw or b"").hexdigest(),
            **fields,
        )

    @staticmethod
    def wrap_payload(raw: bytes | None) -> tuple[str, Encoding]:
        """`raw` as a payload string and its encoding (base64 unless UTF-8). A letter built
        with it is cut to fit, with the whole record's size and SHA-256, by the model."""
        if raw is None:
            return "", "utf-8"
        return _encode(raw)

    def shrunk(self, max_bytes: int) -> DeadLetter:
        """This letter with its payload cut so the whole encoded letter is at most
        `max_bytes` (for a broker or producer with a lower limit); the size and hash of the
        original stay."""
        from .envelope import encode

        size = len(encode(self))
        if size <= max_bytes:
            return self
        budget = max(0, max_bytes - (size - _json_len(self.payload)))
        payload = _prefix(self.raw_payload(), self.payload_encoding, budget)
        return self.model_copy(update={"payload": payload, "payload_truncated": True})

    def raw_payload(self) -> bytes:
        """The payload's bytes: the whole record, or its prefix if `payload_truncated`."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")
