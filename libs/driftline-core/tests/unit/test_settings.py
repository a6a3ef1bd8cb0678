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
    with pytest.raises(ValidationError, match="key-encryption key"):
        DriftlineSettings()
    monkeypatch.setenv("DRIFTLINE_KEK__KEY_FILE", "/run/secrets/kek")
    with pytest.raises(ValidationError, match="JWT_PUBLIC_KEY_FILE"):
        DriftlineSettings()
    monkeypatch.setenv("DRIFTLINE_AUTH__JWT_PUBLIC_KEY_FILE", "/run/secrets/jwt.pub")
    assert DriftlineSettings().postgres.password.get_secret_value() == "a-real-secret"


def test_retired_keks_and_auth_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DRIFTLINE_KEK__RETIRED", '{"local-1": "b2xk"}')
    monkeypatch.setenv("DRIFTLINE_AUTH__ACCESS_TTL_S", "120")
    s = DriftlineSettings()
    assert s.kek.retired["local-1"].get_secret_value() == "b2xk"
    assert s.auth.access_ttl_s == 120


def test_secrets_do_not_leak_into_reprs():
    assert "driftline-dev" not in repr(DriftlineSettings())
