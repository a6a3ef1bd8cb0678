"""Settings: DRIFTLINE_ prefix, __ nesting, defaults for the local stack, secrets refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline_core.settings import DriftlineSettings


def test_defaults_point_at_the_local_stack():
    s = DriftlineSettings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert s.postgres.port == 15432
    assert s.influx.bucket == "driftline/autogen"


def test_nested_environment_variables_override(monkeypatch):
    monkeypatch.setenv("DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("DRIFTLINE_POSTGRES__PORT", "6543")
    monkeypatch.setenv("DRIFTLINE_INFLUX__DATABASE", "metrics")
    s = DriftlineSettings()
    assert s.kafka.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert s.postgres.port == 6543
    assert s.influx.bucket == "metrics/autogen"


def test_the_development_password_is_refused_in_production(monkeypatch):
    monkeypatch.setenv("DRIFTLINE_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="local development default"):
        DriftlineSettings()
    monkeypatch.setenv("DRIFTLINE_POSTGRES__PASSWORD", "a-real-secret")
    assert DriftlineSettings().postgres.password.get_secret_value() == "a-real-secret"


def test_secrets_do_not_leak_into_reprs():
    assert "driftline-dev" not in repr(DriftlineSettings())
