"""HTTP clients (async and sync) for the ingestion service.

Retries with exponential backoff on 429, 503 and connection errors, honouring Retry-After.
A batch whose events were partly stored before a retry comes back with those refused as
duplicates; they count as accepted, since they are in Driftline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from .events import batched, with_ids

__all__ = ["AsyncClient", "Client", "DriftlineAPIError", "IngestReport"]

RETRY_STATUSES = {429, 502, 503, 504}
DUPLICATE = "duplicate event_id: already accepted"
REF_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
}


class DriftlineAPIError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


@dataclass
class IngestReport:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)

    def add(self, body: dict[str, Any], offset: int) -> None:
        dupes = [r for r in body.get("rejected", []) if r.get("reason") == DUPLICATE]
        self.accepted += body.get("accepted", 0) + len(dupes)
        self.event_ids += body.get("event_ids", []) + [r["event_id"] for r in dupes]
        self.rejected += [
            {**r, "index": r["index"] + offset}
            for r in body.get("rejected", [])
            if r.get("reason") != DUPLICATE
        ]


def _delay(attempt: int, response: httpx.Response | None) -> float:
    if response is not None and response.headers.get("retry-after", "").isdigit():
        return float(response.headers["retry-after"])
    return float(min(30.0, 0.25 * 2**attempt))


def _check(r: httpx.Response, accept: tuple[int, ...] = ()) -> Any:
    """The JSON body, or DriftlineAPIError. `accept`: error statuses whose body is an answer
    (an event batch's 409/422 lists what was refused)."""
    if r.status_code >= 400 and r.status_code not in accept:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise DriftlineAPIError(r.status_code, detail)
    return r.json() if r.content else None


class AsyncClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 6,
        admin_token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if admin_token:
            headers["X-Admin-Token"] = admin_token
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)
        self._retries = retries

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kw: Any
    ) -> Any:
        for attempt in range(self._retries + 1):
            response: httpx.Response | None = None
            try:
                response = await self._http.request(method, path, **kw)
                if response.status_code not in RETRY_STATUSES:
                    return _check(response, accept)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
            if attempt < self._retries:
                await asyncio.sleep(_delay(attempt, response))
        assert response is not None
        return _check(response, accept)

    async def log_predictions(
        self,
        model_id: str,
        model_version: str,
        events: Iterable[dict[str, Any]],
        *,
        batch_size: int = 1000,
    ) -> IngestReport:
        items = with_ids(events, model_id=model_id, model_version=model_version)
        return await self._send("/v1/events/predictions", items, batch_size)

    async def log_actuals(
        self, model_id: str, actuals: Iterable[dict[str, Any]], *, batch_size: int = 1000
    ) -> IngestReport:
        return await self._send(
            "/v1/events/actuals", with_ids(actuals, model_id=model_id), batch_size
        )

    async def _send(self, path: str, items: list[dict[str, Any]], size: int) -> IngestReport:
        report = IngestReport()
        for n, chunk in enumerate(batched(items, size)):
            body = await self.request(
                "POST",
                path,
                accept=(409, 422),
                content=orjson.dumps(chunk),
                headers={"Content-Type": "application/json"},
            )

            report.add(body, n * size)
        return report

    # registry and keys
    async def register_model(self, spec: dict[str, Any]) -> Any:
        return await self.request("POST", "/v1/models", json=spec)

    async def list_models(self) -> Any:
        return await self.request("GET", "/v1/models")

    async def add_version(self, model_id: str, version: dict[str, Any]) -> Any:
        return await self.request("POST", f"/v1/models/{model_id}/versions", json=version)

    async def approve(self, model_id: str, version: str, comment: str = "") -> Any:
        return await self.request(
            "POST", f"/v1/models/{model_id}/versions/{version}/approve", json={"comment": comment}
        )

    async def upload_reference(self, model_id: str, path: Path) -> Any:
        ctype = REF_TYPES.get(path.suffix.lower())
        if ctype is None:
            raise ValueError(f"{path.name}: use a .csv, .parquet or .jsonl file")
        with open(path, "rb") as f:  # noqa: ASYNC230 - httpx streams the file object
            return await self.request(
                "POST",
                f"/v1/models/{model_id}/reference",
                params={"filename": path.name},
                content=f.read(),
                headers={"Content-Type": ctype},
            )

    async def create_key(self, name: str, scopes: list[str]) -> Any:
        return await self.request("POST", "/v1/auth/keys", json={"name": name, "scopes": scopes})

    async def list_keys(self) -> Any:
        return await self.request("GET", "/v1/auth/keys")

    async def revoke_key(self, key_id: str) -> Any:
        return await self.request("DELETE", f"/v1/auth/keys/{key_id}")

    async def create_tenant(self, tenant_id: str, name: str) -> Any:
        return await self.request("POST", "/v1/auth/tenants", json={"id": tenant_id, "name": name})

    # --- operators and tenant keys (docs/security.md) -------------------------------------

    async def login(
        self, tenant_id: str, username: str, password: str, totp: str | None = None
    ) -> Any:
        """An access token (and refresh token) for an operator."""
        body = {"tenant": tenant_id, "username": username, "password": password}
        if totp:
            body["totp" if totp.strip().isdigit() else "backup_code"] = totp
        return await self.request("POST", "/v1/auth/login", json=body)

    async def create_user(self, username: str, password: str, role: str) -> Any:
        return await self.request(
            "POST",
            "/v1/auth/users",
            json={"username": username, "password": password, "role": role},
        )

    async def list_users(self) -> Any:
        return await self.request("GET", "/v1/auth/users")

    async def rotate_data_key(self, tenant_id: str) -> Any:
        return await self.request("POST", f"/v1/auth/tenants/{tenant_id}/data-keys/rotate")

    async def data_keys(self, tenant_id: str) -> Any:
        return await self.request("GET", f"/v1/auth/tenants/{tenant_id}/data-keys")

    async def rewrap_data_keys(self) -> Any:
        return await self.request("POST", "/v1/auth/data-keys/rewrap")

    async def erase_tenant(self, tenant_id: str, reason: str) -> Any:
        return await self.request(
            "POST",
            f"/v1/auth/tenants/{tenant_id}/erase",
            json={"confirm": tenant_id, "reason": reason},
        )


class Client:
    """The synchronous client: the same calls, for scripts and notebooks."""

    def __init__(self, base_url: str, api_key: str | None = None, **kw: Any) -> None:
        self._async = AsyncClient(base_url, api_key, **kw)
        self._loop = asyncio.new_event_loop()

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        self._run(self._async.aclose())
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._async, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            return self._run(attr(*args, **kw))

        call.__doc__ = attr.__doc__
        return call
