"""Settings for every Driftline process: `DRIFTLINE_` prefix, `__` nesting, secrets from files.

Defaults point at the local stack (`make up`), so a developer needs no configuration;
in the clouds the same fields take managed endpoints. Default secrets are refused
outside the `dev` and `test` environments.

Secrets from files (Kubernetes secret volumes, compose `secrets:`): every setting can also
come from a file in the secrets directory named like its variable, in any case
(`DRIFTLINE_POSTGRES__PASSWORD` or `driftline_postgres__password`), holding the value
(surrounding whitespace and the final newline are dropped). The directory is
`DRIFTLINE_SECRETS_DIR`, else `/run/secrets` when it exists; `DRIFTLINE_SECRETS_DIR=""`
turns files off. A variable set in the environment wins over a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "AuthSettings",
    "DriftlineSettings",
    "HttpSettings",
    "InfluxSettings",
    "KafkaSettings",
    "KekSettings",
    "PostgresSettings",
    "RedisSettings",
    "SecretFilesSource",
    "secrets_dir",
]

SECRETS_DIR_VARIABLE = "DRIFTLINE_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")

DEV_POSTGRES_PASSWORD = "driftline-dev"
# development-only key material: refused outside `dev` and `test` (see _refuse_default_secrets)
DEV_KEK = "ZHJpZnRsaW5lLWRldi1rZXktbm90LWZvci1wcm9kISE="  # b"driftline-dev-key-not-for-prod!!"
DEV_JWT_SEED = b"driftline-dev-jwt-key-not-prod!!"  # Ed25519 seed (32 bytes)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "driftline"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # zstd: aiokafka compresses lz4 at level 9 (LZ4-HC), ~13 MB/s here; zstd ~92 MB/s with a
    # better ratio (docs/decisions.md). None is fastest on loopback.
    compression_type: Literal["lz4", "gzip", "zstd", "snappy"] | None = "zstd"

    # 0: batches form anyway while a request is in flight (one per partition with
    # idempotence); 5 ms of linger added 6 ms to every acknowledged send here
    linger_ms: int = 0

    max_batch_size: int = 256 * 1024
    request_timeout_ms: int = 30_000
    consumer_max_poll_records: int = 2000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    topic_partitions: int = 6
    topic_replication_factor: int = 1


class PostgresSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 15432
    user: str = "driftline"
    password: SecretStr = SecretStr(DEV_POSTGRES_PASSWORD)
    database: str = "driftline"
    min_pool: int = 1
    max_pool: int = 10
    ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "disable"
    ssl_rootcert: str | None = None

    def dsn(self) -> str:
        pw = self.password.get_secret_value()
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{self.database}"


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:16379/0"
    password: SecretStr | None = None
    ssl_ca_certs: str | None = None


class InfluxSettings(BaseModel):
    url: str = "http://127.0.0.1:18086"
    database: str = "driftline"
    retention_policy: str = "autogen"
    token: SecretStr = SecretStr("")
    org: str = "-"
    batch_size: int = 5000
    flush_interval_ms: int = 1000
    max_retries: int = 5
    spool_dir: str = ".stack/spool/influx"

    @property
    def bucket(self) -> str:
        """InfluxDB 1.8's /api/v2/write takes `db/rp` as the bucket."""
        return f"{self.database}/{self.retention_policy}"


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8100
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


class KekSettings(BaseModel):
    """`DRIFTLINE_KEK__*`: where the key-encryption key comes from (docs/security.md)."""

    provider: Literal["local", "aws-kms", "gcp-kms", "azure-keyvault"] = "local"
    key_id: str = "local-1"  # the KEK version new data keys are wrapped under
    key_b64: SecretStr = SecretStr(DEV_KEK)  # local: 32 bytes, base64
    key_file: str | None = None  # local: a file holding the base64 key (a mounted secret)
    passphrase: SecretStr | None = None  # local: alternatively, stretched with scrypt
    salt_b64: str | None = None  # the passphrase's salt (16+ random bytes, stored with it)
    # KEKs that wrapped keys before a rotation, by key id: still unwrap until `keys rewrap`
    retired: dict[str, SecretStr] = Field(default_factory=dict)
    # cloud providers: the key's ARN (AWS), resource name (GCP) or key URL (Azure)
    kms_key: str | None = None
    region: str | None = None  # AWS region

    def is_dev_default(self) -> bool:
        return (
            self.provider == "local"
            and self.key_b64.get_secret_value() == DEV_KEK
            and not (self.key_file or self.passphrase)
        )


class AuthSettings(BaseModel):
    """`DRIFTLINE_AUTH__*`: operator tokens (EdDSA JWTs), sessions, login protection.

    The ingestion service signs with the private key; every service verifies with the
    public key (derived from the private key when only that is given)."""

    jwt_private_key_file: str | None = None  # PEM, Ed25519
    jwt_public_key_file: str | None = None  # PEM, Ed25519
    jwt_issuer: str = "driftline"
    jwt_audience: str = "driftline-api"
    jwt_leeway_s: int = Field(default=5, ge=0, le=60)
    access_ttl_s: int = Field(default=600, ge=30, le=3600)
    refresh_ttl_s: int = Field(default=12 * 3600, ge=300)
    api_key_cache_ttl_s: float = Field(default=1.0, ge=0)
    login_max_failures: int = Field(default=5, ge=1)  # per user, then locked
    login_lockout_s: int = Field(default=900, ge=1)
    login_ip_max_failures: int = Field(default=50, ge=1)  # per client address and window
    min_password_length: int = Field(default=12, ge=8)
    totp_valid_window: int = Field(default=1, ge=0, le=2)  # steps of 30 s either side

    def is_dev_default(self) -> bool:
        return not (self.jwt_private_key_file or self.jwt_public_key_file)


def secrets_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The directory secret files are read from (see the module's docstring)."""
    configured = environ.get(SECRETS_DIR_VARIABLE)
    if configured is None:
        return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None
    if not configured.strip():
        return None
    path = Path(configured).expanduser()
    if not path.is_dir():
        raise ValueError(f"{SECRETS_DIR_VARIABLE}={configured!r} is not a directory")
    return path


class SecretFilesSource(EnvSettingsSource):
    """Settings from files named like their variables: the environment source's parsing
    (prefix, `__` nesting, JSON for maps and lists) over the files of one directory."""

    def __init__(self, settings_cls: type[BaseSettings], directory: Path | None) -> None:
        self.directory = directory
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        found: dict[str, str | None] = {}
        if self.directory is None:
            return found
        prefix = self.env_prefix.lower()
        for path in sorted(self.directory.iterdir()):
            # only our settings: the directory also holds other programs' secrets (a
            # database's password file, PEM keys), and Kubernetes' ..data bookkeeping
            if not path.name.lower().startswith(prefix) or not path.is_file():
                continue
            try:
                found[path.name.lower()] = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"secret file {path} cannot be read: {e}") from e
        return found

    def __repr__(self) -> str:
        return f"SecretFilesSource(directory={self.directory!r})"


class DriftlineSettings(BaseSettings):
    """Settings of one process; services subclass it to add their own section."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = SecretFilesSource(settings_cls, secrets_dir())
        return init_settings, env_settings, dotenv_settings, files

    environment: Literal["dev", "test", "staging", "prod"] = "dev"
    service_name: str = "driftline"
    log_level: str = "INFO"
    log_json: bool = True
    startup_timeout_s: float = Field(default=60.0, gt=0, description="retry window for deps")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    kek: KekSettings = Field(default_factory=KekSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> DriftlineSettings:
        if self.environment not in ("staging", "prod"):
            return self
        if self.postgres.password.get_secret_value() == DEV_POSTGRES_PASSWORD:
            raise ValueError(
                "DRIFTLINE_POSTGRES__PASSWORD is the local development default; "
                f"set a real secret for environment={self.environment}"
            )
        if self.kek.is_dev_default():
            raise ValueError("set a real key-encryption key (DRIFTLINE_KEK__*) outside dev")
        if self.auth.is_dev_default():
            raise ValueError(
                "set DRIFTLINE_AUTH__JWT_PUBLIC_KEY_FILE (and the private key on ingestion) "
                "outside dev"
            )
        return self
