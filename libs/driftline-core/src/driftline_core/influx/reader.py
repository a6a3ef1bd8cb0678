"""InfluxQL reads over `/query` (served by InfluxDB 1.8+, 2.x v1 compatibility and 3.x)."""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import UnavailableError
from ..settings import InfluxSettings

__all__ = ["InfluxQLReader"]


class InfluxQLReader:
    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        headers = {}
        token = settings.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Token {token}"
        self._http = httpx.AsyncClient(base_url=settings.url, headers=headers, timeout=10.0)

    async def close(self) -> None:
        await self._http.aclose()

    async def ping(self) -> None:
        try:
            r = await self._http.get("/ping")
        except httpx.HTTPError as e:
            raise UnavailableError(f"InfluxDB unreachable at {self._settings.url}: {e}") from e
        if r.status_code != 204:
            raise UnavailableError(f"InfluxDB /ping answered {r.status_code}")

    async def query(self, influxql: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run one InfluxQL statement; return its rows as dicts (tags and columns merged)."""
        try:
            r = await self._http.post(
                "/query",
                data={"db": self._settings.database, "q": influxql, "epoch": epoch},
            )
        except httpx.HTTPError as e:
            raise UnavailableError(f"InfluxDB unreachable at {self._settings.url}: {e}") from e
        if r.status_code >= 400:
            raise ValueError(f"InfluxQL refused ({r.status_code}): {r.text[:300]}")
        rows: list[dict[str, Any]] = []
        for result in r.json().get("results", []):
            if "error" in result:
                raise ValueError(f"InfluxQL error: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                cols = series["columns"]
                for values in series.get("values", []):
                    row = dict(zip(cols, values, strict=True))
                    row.update(tags)
                    row["_measurement"] = series["name"]
                    rows.append(row)
        return rows
