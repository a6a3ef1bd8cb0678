"""Settings for every Driftline process: `DRIFTLINE_` prefix, `__` nesting, secrets from files.

Defaults point at the local stack (`make up`), so a developer needs no configuration;
in the clouds the same fields take managed endpoints. Default secrets are refused
outside the `dev` and `test` environments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DriftlineSettings",
    "HttpSettings",
    "InfluxSettings",
    "KafkaSettings",
    "PostgresSettings",
    "RedisSettings",
]

DEV_POSTGRES_PASSWORD = "driftline-dev"


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


class DriftlineSettings(BaseSettings):
    """Settings of one process; services subclass it to add their own section."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_",
        env_nested_delimiter="__",
        secrets_dir=None,
        extra="ignore",
    )

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

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> DriftlineSettings:
        default_pw = self.postgres.password.get_secret_value() == DEV_POSTGRES_PASSWORD
        if self.environment in ("staging", "prod") and default_pw:
            raise ValueError(
                "DRIFTLINE_POSTGRES__PASSWORD is the local development default; "
                f"set a real secret for environment={self.environment}"
            )
        return self
