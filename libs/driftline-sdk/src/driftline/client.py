"""HTTP clients for the ingestion service: `Client` on `httpx.Client` (scripts, notebooks:
it works inside a running event loop, as in Jupyter, since it never touches one) and
`AsyncClient` on `httpx.AsyncClient`.

Retries by tenacity with exponential backoff on 429, 502, 503, 504 and transport errors,
honouring Retry-After. A batch whose events were partly stored before a retry comes back
with those refused as duplicates; they count as accepted, since they are in Driftline.
Reference uploads are streamed from the file (never read whole), with progress in bytes
handed to the connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from .events import batched, with_ids

__all__ = ["AsyncClient", "Client", "DriftlineAPIError", "IngestReport", "Progress"]

RETRY_STATUSES = {429, 502, 503, 504}
DUPLICATE = "duplicate event_id: already accepted"
CHUNK = 1 << 20
REF_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
}

Progress = Callable[[int, int], None]
"""Called as progress(bytes_sent_so_far, total_bytes) while an upload streams."""


class DriftlineAPIError(Exception):
    """The server answered with an error status; `detail` is its reason."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


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

    def merge(self, other: IngestReport, offset: int) -> None:
        self.accepted += other.accepted
        self.event_ids += other.event_ids
        self.rejected += [{**r, "index": r["index"] + offset} for r in other.rejected]


def _delay(attempt: int, response: httpx.Response | None) -> float:
    if response is not None and response.headers.get("retry-after", "").isdigit():
        return float(response.headers["retry-after"])
    return float(min(30.0, 0.25 * 2**attempt))


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    response = exc.response if isinstance(exc, _RetryableStatus) else None
    return _delay(state.attempt_number - 1, response)


def _check(r: httpx.Response, accept: tuple[int, ...] = ()) -> Any:
    """The JSON body, or DriftlineAPIError. `accept`: error statuses whose body is an answer
    (an event batch's 409/422 lists what was refused)."""
    if r.status_code >= 400 and r.status_code not in accept:
        try:
            body = r.json()
            detail = body.get("detail", r.text) if isinstance(body, dict) else body
        except ValueError:
            detail = r.text
        raise DriftlineAPIError(r.status_code, detail)
    return r.json() if r.content else None


def _ref_type(path: Path) -> str:
    ctype = REF_TYPES.get(path.suffix.lower())
    if ctype is None:
        raise ValueError(f"{path.name}: use a .csv, .parquet or .jsonl file")
    return ctype


def _headers(api_key: str | None, admin_token: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if admin_token:
        headers["X-Admin-Token"] = admin_token
    return headers


def _http_options(
    base_url: str, api_key: str | None, admin_token: str | None, timeout: float
) -> dict[str, Any]:
    """What both clients hand to httpx."""
    return {"base_url": base_url, "headers": _headers(api_key, admin_token), "timeout": timeout}


def _retry_options(retries: int) -> dict[str, Any]:
    """What both clients hand to tenacity: transport errors and 429/502/503/504 are retried."""
    return {
        "retry": retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
        "wait": _wait,
        "stop": stop_after_attempt(retries + 1),
        "reraise": True,
    }


def _batch_posts(items: list[dict[str, Any]], size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each batch's offset and request options; 409/422 bodies list what was refused."""
    for n, chunk in enumerate(batched(items, size)):
        yield (
            n * size,
            {
                "accept": (409, 422),
                "content": orjson.dumps(chunk),
                "headers": {"Content-Type": "application/json"},
            },
        )


class _Calls:
    """The calls that are one request each: `request` returns the answer (Client) or an
    awaitable of it (AsyncClient), so each is written once for both."""

    def request(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kw: Any) -> Any:
        raise NotImplementedError

    # registry and keys
    def register_model(self, spec: dict[str, Any]) -> Any:
        return self.request("POST", "/v1/models", json=spec)

    def list_models(self) -> Any:
        return self.request("GET", "/v1/models")

    def get_model(self, model_id: str) -> Any:
        return self.request("GET", f"/v1/models/{model_id}")

    def add_version(self, model_id: str, version: dict[str, Any]) -> Any:
        return self.request("POST", f"/v1/models/{model_id}/versions", json=version)

    def approve(self, model_id: str, version: str, comment: str = "") -> Any:
        return self.request(
            "POST", f"/v1/models/{model_id}/versions/{version}/approve", json={"comment": comment}
        )

    def create_key(self, name: str, scopes: list[str]) -> Any:
        return self.request("POST", "/v1/auth/keys", json={"name": name, "scopes": scopes})

    def list_keys(self) -> Any:
        return self.request("GET", "/v1/auth/keys")

    def revoke_key(self, key_id: str) -> Any:
        return self.request("DELETE", f"/v1/auth/keys/{key_id}")

    def create_tenant(self, tenant_id: str, name: str) -> Any:
        return self.request("POST", "/v1/auth/tenants", json={"id": tenant_id, "name": name})

    # --- operators and tenant keys (docs/security.md) -------------------------------------

    def login(self, tenant_id: str, username: str, password: str, totp: str | None = None) -> Any:
        """An access token (and refresh token) for an operator."""
        body = {"tenant": tenant_id, "username": username, "password": password}
        if totp:
            body["totp" if totp.strip().isdigit() else "backup_code"] = totp
        return self.request("POST", "/v1/auth/login", json=body)

    def create_user(self, username: str, password: str, role: str) -> Any:
        return self.request(
            "POST",
            "/v1/auth/users",
            json={"username": username, "password": password, "role": role},
        )

    def list_users(self) -> Any:
        return self.request("GET", "/v1/auth/users")

    def rotate_data_key(self, tenant_id: str) -> Any:
        return self.request("POST", f"/v1/auth/tenants/{tenant_id}/data-keys/rotate")

    def data_keys(self, tenant_id: str) -> Any:
        return self.request("GET", f"/v1/auth/tenants/{tenant_id}/data-keys")

    def rewrap_data_keys(self) -> Any:
        return self.request("POST", "/v1/auth/data-keys/rewrap")

    def erase_tenant(self, tenant_id: str, reason: str) -> Any:
        return self.request(
            "POST",
            f"/v1/auth/tenants/{tenant_id}/erase",
            json={"confirm": tenant_id, "reason": reason},
        )


def _file_chunks(path: Path, total: int, progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk  # resumed once the connection has taken it
            sent += len(chunk)
            if progress:
                progress(sent, total)


class Client(_Calls):
    """The synchronous client, on `httpx.Client`: for scripts and notebooks. It runs no
    event loop of its own, so it works inside one (Jupyter) and from any thread."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 6,
        admin_token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            **_http_options(base_url, api_key, admin_token, timeout), transport=transport
        )
        self._retries = retries
        self.base_url = base_url

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _retrying(self) -> Retrying:
        return Retrying(sleep=lambda s: time.sleep(s), **_retry_options(self._retries))

    def request(
        self,
        method: str,
        path: str,
        *,
        accept: tuple[int, ...] = (),
        content_factory: Callable[[], Any] | None = None,
        **kw: Any,
    ) -> Any:
        try:
            for attempt in self._retrying():
                with attempt:
                    if content_factory is not None:
                        kw["content"] = content_factory()
                    response = self._http.request(method, path, **kw)
                    if response.status_code in RETRY_STATUSES:
                        raise _RetryableStatus(response)
                    return _check(response, accept)
        except _RetryableStatus as e:
            return _check(e.response, accept)
        raise AssertionError("unreachable")  # pragma: no cover

    def log_predictions(
        self,
        model_id: str,
        model_version: str,
        events: Iterable[dict[str, Any]],
        *,
        batch_size: int = 1000,
    ) -> IngestReport:
        items = with_ids(events, model_id=model_id, model_version=model_version)
        return self._send("/v1/events/predictions", items, batch_size)

    def log_actuals(
        self, model_id: str, actuals: Iterable[dict[str, Any]], *, batch_size: int = 1000
    ) -> IngestReport:
        return self._send("/v1/events/actuals", with_ids(actuals, model_id=model_id), batch_size)

    def _send(self, path: str, items: list[dict[str, Any]], size: int) -> IngestReport:
        report = IngestReport()
        for offset, options in _batch_posts(items, size):
            report.add(self.request("POST", path, **options), offset)
        return report

    def upload_reference(
        self, model_id: str, path: Path | str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a .csv, .parquet or .jsonl file as the model's reference; `progress` is
        called with the bytes the connection has taken so far."""
        path = Path(path)
        ctype, total = _ref_type(path), path.stat().st_size
        return self.request(
            "POST",
            f"/v1/models/{model_id}/reference",
            params={"filename": path.name},
            content_factory=lambda: _file_chunks(path, total, progress),
            headers={"Content-Type": ctype, "Content-Length": str(total)},
        )

    def log(
        self,
        df: Any,
        *,
        model: str,
        version: str,
        prediction: str,
        labels: str | None = None,
        event_id: str | None = None,
        **columns: Any,
    ) -> IngestReport:
        """Log a DataFrame in one call; see `driftline.dataframe.log_frame`."""
        from .dataframe import log_frame

        return log_frame(
            self,
            df,
            model=model,
            version=version,
            prediction=prediction,
            labels=labels,
            event_id=event_id,
            **columns,
        )

    def sender(self, model: str, version: str, **kw: Any) -> Any:
        """A background sender that batches and flushes; close it (or use `with`)."""
        from .sender import BackgroundSender

        return BackgroundSender(self, model, version, **kw)


class AsyncClient(_Calls):
    """The asynchronous client, on `httpx.AsyncClient`: every call is awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 6,
        admin_token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            **_http_options(base_url, api_key, admin_token, timeout), transport=transport
        )
        self._retries = retries
        self.base_url = base_url

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(sleep=lambda s: asyncio.sleep(s), **_retry_options(self._retries))

    async def request(
        self,
        method: str,
        path: str,
        *,
        accept: tuple[int, ...] = (),
        content_factory: Callable[[], Any] | None = None,
        **kw: Any,
    ) -> Any:
        try:
            async for attempt in self._retrying():
                with attempt:
                    if content_factory is not None:
                        kw["content"] = content_factory()
                    response = await self._http.request(method, path, **kw)
                    if response.status_code in RETRY_STATUSES:
                        raise _RetryableStatus(response)
                    return _check(response, accept)
        except _RetryableStatus as e:
            return _check(e.response, accept)
        raise AssertionError("unreachable")  # pragma: no cover

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
        for offset, options in _batch_posts(items, size):
            report.add(await self.request("POST", path, **options), offset)
        return report

    async def upload_reference(
        self, model_id: str, path: Path | str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a .csv, .parquet or .jsonl file as the model's reference."""
        path = Path(path)
        ctype, total = _ref_type(path), path.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            with open(path, "rb") as f:  # noqa: ASYNC230 - chunks are read in a thread
                while chunk := await asyncio.to_thread(f.read, CHUNK):
                    yield chunk
                    sent += len(chunk)
                    if progress:
                        progress(sent, total)

        return await self.request(
            "POST",
            f"/v1/models/{model_id}/reference",
            params={"filename": path.name},
            content_factory=chunks,
            headers={"Content-Type": ctype, "Content-Length": str(total)},
        )
