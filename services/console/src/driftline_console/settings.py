"""Console settings: `DRIFTLINE_CONSOLE__*` on top of the shared ones."""

from __future__ import annotations

from pydantic import BaseModel, Field

from driftline_core.settings import DriftlineSettings

__all__ = ["ConsoleOptions", "ConsoleSettings", "Upstreams"]


class Upstreams(BaseModel):
    """Where each service's API is (`DRIFTLINE_CONSOLE__UPSTREAMS__DRIFT_DETECTION=...`);
    the browser reaches it as /api/<service>/..."""

    ingestion: str = "http://127.0.0.1:8101"
    drift_detection: str = "http://127.0.0.1:8102"
    alerting: str = "http://127.0.0.1:8103"
    audit: str = "http://127.0.0.1:8104"
    compliance_report: str = "http://127.0.0.1:8105"

    def by_service(self) -> dict[str, str]:
        """{"drift-detection": url, ...}: the service names as in the /api/ paths."""
        return {k.replace("_", "-"): v.rstrip("/") for k, v in self.model_dump().items()}


class ConsoleOptions(BaseModel):
    # the built single-page app (npm run build in console/); relative to the working directory
    dist_dir: str = "console/dist"
    upstreams: Upstreams = Field(default_factory=Upstreams)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    # the longest an upstream may take to send the next bytes (report bundles stream)
    read_timeout_s: float = Field(default=120.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    # /api/live: a comment line this often, so proxies and the browser keep the stream open
    keepalive_s: float = Field(default=15.0, gt=0)
    # records queued for one browser; a browser that falls this far behind is told so
    # (`event: overflow`) and its stream is closed (it reconnects and reloads)
    live_queue: int = Field(default=1000, ge=1)
    # how long /api/platform waits for each service's /readyz and /metrics
    platform_timeout_s: float = Field(default=3.0, gt=0)


class ConsoleSettings(DriftlineSettings):
    service_name: str = "console"
    console: ConsoleOptions = Field(default_factory=ConsoleOptions)
