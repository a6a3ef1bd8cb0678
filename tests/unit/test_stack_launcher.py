"""The local stack launcher's pure parts (no servers)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy" / "local"))

from dlstack import kafka


def test_kafka_cluster_ids_never_start_with_a_dash(monkeypatch):
    # a UUID whose base64url form starts with '-' comes first: the launcher must skip it
    dash = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))
    fresh = iter([dash, uuid.UUID(int=1)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(fresh))
    cid = kafka._cluster_id()
    assert not cid.startswith("-")
    assert len(cid) == 22


def test_generated_server_properties_listen_on_loopback_only(tmp_path):
    props = kafka._properties(tmp_path)
    listeners = [ln for ln in props.splitlines() if ln.startswith("listeners=")]
    assert listeners == [
        "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,"
        "SASL_SSL://127.0.0.1:19094"
    ]
    assert "ssl.keystore.type=PEM" in props
    assert "auto.create.topics.enable=false" in props
