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


def test_every_secret_can_come_from_a_file_named_like_its_variable(tmp_path, monkeypatch):
    (tmp_path / "DRIFTLINE_POSTGRES__PASSWORD").write_text("pg-from-file\n")
    (tmp_path / "driftline_kafka__sasl_password").write_text("sasl-from-file")
    (tmp_path / "DRIFTLINE_REDIS__PASSWORD").write_text("redis-from-file\n")
    (tmp_path / "DRIFTLINE_INFLUX__TOKEN").write_text("influx-from-file")
    (tmp_path / "DRIFTLINE_KEK__KEY_B64").write_text("a2VrLWZyb20tZmlsZQ==\n")
    (tmp_path / "DRIFTLINE_KEK__PASSPHRASE").write_text("passphrase-from-file")
    (tmp_path / "DRIFTLINE_KEK__RETIRED").write_text('{"local-0": "b2xk"}')
    # a Kubernetes secret volume's bookkeeping and unrelated files are ignored
    (tmp_path / "..data").mkdir()
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "other-app-token").write_text("x")
    (tmp_path / "postgres_password").write_bytes(b"\xff\xfe not ours, not even UTF-8")
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_POSTGRES__HOST", "db.internal")
    s = DriftlineSettings()
    assert s.postgres.password.get_secret_value() == "pg-from-file"
    assert s.postgres.host == "db.internal"  # merged with the environment
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == "sasl-from-file"
    assert s.redis.password is not None
    assert s.redis.password.get_secret_value() == "redis-from-file"
    assert s.influx.token.get_secret_value() == "influx-from-file"
    assert s.kek.key_b64.get_secret_value() == "a2VrLWZyb20tZmlsZQ=="
    assert s.kek.passphrase is not None
    assert s.kek.passphrase.get_secret_value() == "passphrase-from-file"
    assert s.kek.retired["local-0"].get_secret_value() == "b2xk"
    assert "pg-from-file" not in repr(s)


def test_an_environment_variable_wins_over_a_secret_file(tmp_path, monkeypatch):
    (tmp_path / "DRIFTLINE_POSTGRES__PASSWORD").write_text("from-file")
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_POSTGRES__PASSWORD", "from-env")
    assert DriftlineSettings().postgres.password.get_secret_value() == "from-env"


def test_secret_files_satisfy_the_production_checks(tmp_path, monkeypatch):
    (tmp_path / "DRIFTLINE_POSTGRES__PASSWORD").write_text("a-real-secret")
    (tmp_path / "DRIFTLINE_KEK__KEY_FILE").write_text("/run/secrets/kek")
    (tmp_path / "DRIFTLINE_AUTH__JWT_PUBLIC_KEY_FILE").write_text("/run/secrets/jwt.pub")
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_ENVIRONMENT", "prod")
    assert DriftlineSettings().postgres.password.get_secret_value() == "a-real-secret"


def test_the_secrets_directory_defaults_to_run_secrets_and_can_be_turned_off(tmp_path, monkeypatch):
    from driftline_core import settings as module

    monkeypatch.setattr(module, "DEFAULT_SECRETS_DIR", tmp_path)
    (tmp_path / "DRIFTLINE_POSTGRES__PASSWORD").write_text("mounted")
    monkeypatch.delenv("DRIFTLINE_SECRETS_DIR", raising=False)
    assert module.secrets_dir() == tmp_path
    assert DriftlineSettings().postgres.password.get_secret_value() == "mounted"
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", "")
    assert module.secrets_dir() is None
    assert DriftlineSettings().postgres.password.get_secret_value() == "driftline-dev"
    monkeypatch.setattr(module, "DEFAULT_SECRETS_DIR", tmp_path / "absent")
    monkeypatch.delenv("DRIFTLINE_SECRETS_DIR")
    assert module.secrets_dir() is None


def test_a_configured_secrets_directory_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="DRIFTLINE_SECRETS_DIR"):
        DriftlineSettings()


def test_an_unreadable_secret_file_of_ours_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "DRIFTLINE_POSTGRES__PASSWORD").write_bytes(b"\xff\xfe")
    monkeypatch.setenv("DRIFTLINE_SECRETS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="DRIFTLINE_POSTGRES__PASSWORD cannot be read"):
        DriftlineSettings()
