"""Points to InfluxDB through the influxdb-client write API (line protocol, batching).

The batching writer runs in a background thread. Its success, retry and error callbacks
are wired to metrics and logs; a batch that still fails after the client's retries is
appended to a spool file (line protocol) and counted, so nothing is dropped silently.
`replay_spool()` sends spooled batches again once InfluxDB is back.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import WriteApi, WriteOptions, WriteType

from ..observability.metrics import CoreMetrics
from ..settings import InfluxSettings

__all__ = ["InfluxWriter"]

log = logging.getLogger(__name__)


def _lines(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode()
    if isinstance(data, str):
        return data
    return "\n".join(_lines(d) for d in data)


class InfluxWriter:
    def __init__(self, settings: InfluxSettings, metrics: CoreMetrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._client: InfluxDBClient | None = None
        self._api: WriteApi | None = None
        self._sync: WriteApi | None = None
        self._spool = Path(settings.spool_dir) / "failed.lp"
        self._lock = threading.Lock()
        self.failed_batches = 0
        self.written_points = 0

    def start(self) -> None:
        s = self._settings
        self._client = InfluxDBClient(
            url=s.url, token=s.token.get_secret_value(), org=s.org, timeout=10_000, enable_gzip=True
        )
        self._api = self._client.write_api(
            write_options=WriteOptions(
                write_type=WriteType.batching,
                batch_size=s.batch_size,
                flush_interval=s.flush_interval_ms,
                retry_interval=500,
                max_retries=s.max_retries,
                max_retry_delay=5_000,
                max_retry_time=30_000,
                exponential_base=2,
            ),
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )

    def write(self, points: Point | list[Point] | str | list[str]) -> None:
        """Queue points (or line-protocol strings); they are sent in batches."""
        if self._api is None:
            raise RuntimeError("InfluxWriter.start() was not called")
        self._api.write(bucket=self._settings.bucket, org=self._settings.org, record=points)

    def write_now(self, points: list[Point] | list[str]) -> bool:
        """Write synchronously, bypassing the batch (blocking: call it in a thread). For
        series that must be visible at once (live metrics); a refused write is spooled and
        counted like a refused batch. True if InfluxDB acknowledged."""
        if self._client is None:
            raise RuntimeError("InfluxWriter.start() was not called")
        if self._sync is None:
            from influxdb_client.client.write_api import SYNCHRONOUS

            self._sync = self._client.write_api(write_options=SYNCHRONOUS)
        s = self._settings
        try:
            self._sync.write(bucket=s.bucket, org=s.org, record=points)
        except Exception as e:  # whatever the client raises, the points are kept
            lines = [p.to_line_protocol() if isinstance(p, Point) else p for p in points]
            self._on_error((s.bucket, s.org, ""), "\n".join(lines), e)
            return False
        self.written_points += len(points)
        if self._metrics:
            self._metrics.influx_points_written.inc(len(points))
        return True

    def flush(self) -> None:
        if self._api is not None:
            self._api.flush()

    def close(self) -> None:
        """Flush what is queued and stop the background thread."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- callbacks (background thread) ---------------------------------------------------

    def _on_success(self, conf: tuple[str, str, str], data: Any) -> None:
        n = _lines(data).count("\n") + 1
        self.written_points += n
        if self._metrics:
            self._metrics.influx_points_written.inc(n)

    def _on_retry(self, conf: tuple[str, str, str], data: Any, exc: Exception) -> None:
        log.warning("InfluxDB write failed, the client retries", extra={"error": repr(exc)})

    def _on_error(self, conf: tuple[str, str, str], data: Any, exc: Exception) -> None:
        lines = _lines(data)
        n = lines.count("\n") + 1
        with self._lock:
            self.failed_batches += 1
            self._spool.parent.mkdir(parents=True, exist_ok=True)
            with open(self._spool, "a", encoding="utf-8") as f:
                f.write(lines.rstrip("\n") + "\n")
        if self._metrics:
            self._metrics.influx_points_failed.inc(n)
        log.error(
            "InfluxDB refused a batch after retries; spooled for replay",
            extra={"points": n, "spool": str(self._spool), "error": repr(exc), "bucket": conf[0]},
        )

    # --- replay ------------------------------------------------------------------------

    @property
    def spool_path(self) -> Path:
        return self._spool

    def replay_spool(self) -> int:
        """Send spooled points synchronously; returns how many were sent. Keeps the spool
        if InfluxDB still refuses."""
        with self._lock:
            if not self._spool.exists():
                return 0
            lines = [ln for ln in self._spool.read_text().splitlines() if ln.strip()]
            if not lines:
                self._spool.unlink()
                return 0
            s = self._settings
            with InfluxDBClient(url=s.url, token=s.token.get_secret_value(), org=s.org) as c:
                from influxdb_client.client.write_api import SYNCHRONOUS

                c.write_api(write_options=SYNCHRONOUS).write(
                    bucket=s.bucket, org=s.org, record=lines
                )
            self._spool.unlink()
            return len(lines)
