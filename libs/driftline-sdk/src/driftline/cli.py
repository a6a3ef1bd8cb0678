"""`driftline`: the command line for tenants, API keys, models, references, alerts, reports
and the demo.

Where to connect and as whom: --url / DRIFTLINE_URL (ingestion, default
http://127.0.0.1:8101), --api-key / DRIFTLINE_API_KEY (an API key, or an operator's access
token from `driftline login`), --admin-token / DRIFTLINE_ADMIN_TOKEN (platform commands),
and the other services' URLs (DRIFTLINE_ALERTING_URL, DRIFTLINE_AUDIT_URL,
DRIFTLINE_REPORTS_URL). Exit codes: 0 done, 1 a runtime failure (server unreachable,
credentials refused, an HTTP error, a check that failed), 2 a usage error."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from .client import Client, DriftlineAPIError

app = typer.Typer(help=__doc__, no_args_is_help=True)
models = typer.Typer(help="Models and their versions.", no_args_is_help=True)
keys = typer.Typer(help="API keys and data keys of your tenant.", no_args_is_help=True)
users = typer.Typer(help="Operators (people) of your tenant.", no_args_is_help=True)
audit = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
reference = typer.Typer(help="Reference data (what normal looks like).", no_args_is_help=True)
tenants = typer.Typer(help="Tenants (platform admin).", no_args_is_help=True)
demo = typer.Typer(help="The synthetic credit-risk demo.", no_args_is_help=True)
report = typer.Typer(help="Signed compliance reports (GDPR, SOX, FDA).", no_args_is_help=True)
alerts = typer.Typer(help="Alerts firing now (alerting service).", no_args_is_help=True)
silences = typer.Typer(help="Silences that mute matching alerts.", no_args_is_help=True)
rules = typer.Typer(help="Alert rules of your tenant.", no_args_is_help=True)
deliveries = typer.Typer(help="Notifications sent to receivers.", no_args_is_help=True)
for sub, name in (
    (report, "report"),
    (models, "models"),
    (keys, "keys"),
    (reference, "reference"),
    (tenants, "tenants"),
    (users, "users"),
    (audit, "audit"),
    (alerts, "alerts"),
    (silences, "silences"),
    (rules, "rules"),
    (deliveries, "deliveries"),
    (demo, "demo"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)
URL = os.environ.get("DRIFTLINE_URL", "http://127.0.0.1:8101")
USAGE, RUNTIME = 2, 1
CLI_RETRIES = 2  # a CLI user waits ~1 s for a server that is down, not 21 s


class Output(StrEnum):
    table = "table"
    json = "json"


class Framework(StrEnum):
    gdpr = "gdpr"
    sox = "sox"
    fda = "fda"
    model_card = "model_card"


class Role(StrEnum):
    admin = "admin"
    ml_engineer = "ml-engineer"
    auditor = "auditor"
    viewer = "viewer"


class Scope(StrEnum):
    ingest = "ingest"
    read = "read"
    write = "write"
    audit = "audit"
    admin = "admin"


@dataclass
class Settings:
    api_key: str | None = None
    admin_token: str | None = None
    output: Output = Output.table


state = Settings()


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"driftline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    url: Annotated[
        str,
        typer.Option(envvar="DRIFTLINE_URL", show_envvar=True, help="the ingestion service"),
    ] = "http://127.0.0.1:8101",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="DRIFTLINE_API_KEY",
            show_envvar=True,
            help="an API key, or an operator's access token from `driftline login`",
        ),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="DRIFTLINE_ADMIN_TOKEN", show_envvar=True, help="the platform admin token"
        ),
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="tables for people, JSON for programs")
    ] = Output.table,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Driftline's command line."""
    global URL
    URL = url
    state.api_key, state.admin_token, state.output = api_key, admin_token, output


def client(admin: bool = False, either: bool = False) -> Client:
    """`admin`: the platform token is required; `either`: it or an API key/access token."""
    key, token = state.api_key, state.admin_token
    if either:
        if not (key or token):
            fail(
                "set DRIFTLINE_ADMIN_TOKEN (platform) or DRIFTLINE_API_KEY (the tenant's admin)",
                USAGE,
            )
        return Client(URL, None if token else key, admin_token=token, retries=CLI_RETRIES)
    if admin and not token:
        fail("set DRIFTLINE_ADMIN_TOKEN (the platform admin token) to create tenants", USAGE)
    if not admin and not key:
        fail(
            "set DRIFTLINE_API_KEY or --api-key (create one with `driftline tenants create` "
            "or `driftline keys create`)",
            USAGE,
        )
    return Client(URL, key, admin_token=token, retries=CLI_RETRIES)


def service(env: str, default: str, what: str) -> Client:
    """A client of another service (alerting, audit, reports), with the API key."""
    if not state.api_key:
        fail(f"set DRIFTLINE_API_KEY or --api-key ({what})", USAGE)
    return Client(os.environ.get(env, default), state.api_key, retries=CLI_RETRIES)


def fail(message: str, code: int = RUNTIME) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def explain(e: Exception, where: str) -> str:
    """One line for an error of a call to `where`."""
    if isinstance(e, DriftlineAPIError):
        detail = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        if e.status == 401:
            return f"credentials refused by {where}: {detail} (HTTP 401)"
        if e.status == 403:
            return f"not allowed: {detail} (HTTP 403)"
        return f"{detail} (HTTP {e.status})"
    if isinstance(e, httpx.TimeoutException):
        return f"{where} did not answer in time ({type(e).__name__})"
    if isinstance(e, httpx.TransportError | OSError):
        return f"cannot reach {where}: {e or type(e).__name__}"
    raise e


def call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except (DriftlineAPIError, httpx.TransportError, OSError) as e:
        base = getattr(getattr(fn, "__self__", None), "base_url", URL)
        fail(explain(e, f"Driftline at {base}"))


def emit(data: Any, text: str) -> None:
    """The answer as JSON (--output json) or as a sentence."""
    if state.output is Output.json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        console.print(text, highlight=False, soft_wrap=True)


def show(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    if state.output is Output.json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[_cell(r.get(c, "")) for c in columns])
    console.print(table)


def _cell(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return "" if v is None else str(v)


def A(help: str, **kw: Any) -> Any:
    return typer.Argument(help=help, **kw)


@tenants.command("create")
def tenants_create(
    tenant_id: Annotated[str, A("the tenant's id (lowercase letters, digits, -)")],
    name: Annotated[str, typer.Option(help="a display name (default: the id)")] = "",
) -> None:
    """Create a tenant and its first admin API key (shown once)."""
    with client(admin=True) as c:
        out = call(c.create_tenant, tenant_id, name or tenant_id)
    emit(
        out,
        f"tenant [bold]{out['tenant_id']}[/bold] created; admin API key "
        f"(shown once):\n{out['api_key']}",
    )


@tenants.command("erase")
def tenants_erase(
    tenant_id: Annotated[str, A("the tenant to erase")],
    reason: Annotated[str, typer.Option(help="why (recorded in the audit trail)")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Crypto-shred a tenant: destroy its data keys, so all its encrypted data is unreadable;
    its API keys, users and sessions stop working. This cannot be undone."""
    if not yes:
        typer.confirm(f"Erase tenant {tenant_id} and make all its data unreadable?", abort=True)
    with client(either=True) as c:
        out = call(c.erase_tenant, tenant_id, reason)
    emit(
        out,
        f"tenant [bold]{tenant_id}[/bold] erased: {out['data_keys_destroyed']} data keys "
        f"destroyed, {out['sessions_revoked']} sessions revoked, "
        f"{out['users_disabled']} users disabled",
    )


@keys.command("rotate")
def keys_rotate(tenant: Annotated[str, typer.Option(help="the tenant whose data key")]) -> None:
    """A new data-key version: new data is encrypted under it, old data stays readable."""
    with client(either=True) as c:
        out = call(c.rotate_data_key, tenant)
    emit(out, f"tenant {tenant}: data key v{out['version']} is now current")


@keys.command("versions")
def keys_versions(tenant: Annotated[str, typer.Option(help="the tenant")]) -> None:
    """The tenant's data-key versions (never key material)."""
    with client(either=True) as c:
        rows = call(c.data_keys, tenant)
    show(rows, ["version", "kek_id", "created_at", "rewrapped_at", "destroyed"], "Data keys")


@keys.command("rewrap")
def keys_rewrap() -> None:
    """After a KEK rotation: re-wrap every data key under the current KEK (platform admin)."""
    with client(admin=True) as c:
        out = call(c.rewrap_data_keys)
    emit(out, f"{out['rewrapped']} data keys re-wrapped under the current KEK")


@users.command("create")
def users_create(
    username: Annotated[str, A("the operator's login name")],
    role: Annotated[Role, typer.Option(help="what the operator may do")] = Role.viewer,
) -> None:
    """Create an operator; the password comes from DRIFTLINE_PASSWORD or a prompt."""
    password = os.environ.get("DRIFTLINE_PASSWORD") or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    with client() as c:
        out = call(c.create_user, username, password, role.value)
    emit(out, f"user {out['username']} ({out['role']}) created: {out['id']}")


@users.command("list")
def users_list() -> None:
    """The operators of your tenant."""
    with client() as c:
        show(
            call(c.list_users),
            ["id", "username", "role", "mfa_enabled", "disabled", "created_at"],
            "Users",
        )


@app.command("login")
def login(
    username: Annotated[str, A("the operator's login name")],
    tenant: Annotated[str, typer.Option(help="the operator's tenant")],
    totp: Annotated[str | None, typer.Option(help="TOTP code or backup code")] = None,
) -> None:
    """Log in as an operator; prints the access token (use it as DRIFTLINE_API_KEY)."""
    password = os.environ.get("DRIFTLINE_PASSWORD") or typer.prompt("password", hide_input=True)
    with Client(URL, retries=CLI_RETRIES) as c:
        out = call(c.login, tenant, username, password, totp)
    if state.output is Output.json:
        emit(out, "")
        return
    err.print(f"logged in as {username} ({out['role']}), valid {out['expires_in']} s")
    typer.echo(out["access_token"])  # plain: rich would wrap it


def _progress(what: str = "{task.description}") -> Progress:
    """A progress bar on stderr (stdout stays the answer), hidden for --output json."""
    return Progress(
        TextColumn(what),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=state.output is Output.json,
        transient=False,
    )


@audit.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="file to write (JSON lines)")],
    from_seq: Annotated[int, typer.Option(help="first sequence number", min=1)] = 1,
    to_seq: Annotated[int | None, typer.Option(help="last sequence number")] = None,
) -> None:
    """Export your tenant's audit trail with its checkpoints (the `audit` permission), from
    the audit service at DRIFTLINE_AUDIT_URL (default http://127.0.0.1:8104)."""
    url = os.environ.get("DRIFTLINE_AUDIT_URL", "http://127.0.0.1:8104")
    key = state.api_key or fail("set DRIFTLINE_API_KEY (an auditor's)", USAGE)
    params = {"from_seq": from_seq, **({"to_seq": to_seq} if to_seq else {})}
    try:
        with (
            httpx.stream(
                "GET",
                f"{url}/v1/audit/export",
                params=params,
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            ) as r,
            open(out, "wb") as f,
            _progress() as progress,
        ):
            if r.status_code != 200:
                r.read()
                try:
                    detail = r.json().get("detail", r.text)
                except ValueError:
                    detail = r.text
                fail(
                    explain(DriftlineAPIError(r.status_code, detail), f"the audit service at {url}")
                )
            size = r.headers.get("content-length")
            task = progress.add_task(f"exporting to {out.name}", total=int(size) if size else None)
            for chunk in r.iter_bytes():
                f.write(chunk)
                progress.advance(task, len(chunk))
    except (httpx.TransportError, OSError) as e:
        fail(explain(e, f"the audit service at {url}"))
    emit({"file": str(out)}, f"exported to {out}; check it with: driftline audit verify {out}")


@audit.command("verify")
def audit_verify(
    file: Annotated[Path, A("an audit export (from `driftline audit export`)")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM of the checkpoint key to trust (default: the one in the file)"),
    ] = None,
) -> None:
    """Verify an export offline: hash chain, sequence, checkpoint signatures, truncation.
    Exit 0 when intact, 1 naming the first broken record."""
    from driftline_contracts.auditchain import public_key_from_pem, verify

    try:
        lines = [json.loads(x) for x in file.read_text().splitlines() if x.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"cannot read {file} as an audit export: {e}")
    header = next((x for x in lines if isinstance(x, dict) and x.get("type") == "header"), None)
    if header is None or not str(header.get("format", "")).startswith("driftline-audit-export/"):
        fail(f"{file} is not a Driftline audit export (no header line)")
    pem = public_key.read_text() if public_key else header["checkpoint_key"]["public_key"]
    if public_key and pem.strip() != header["checkpoint_key"]["public_key"].strip():
        err.print("[yellow]the file names another checkpoint key; checking against yours[/yellow]")
    start = header.get("start") or {}
    result = verify(
        [x for x in lines if x.get("type") == "record"],
        [x for x in lines if x.get("type") == "checkpoint"],
        public_key_from_pem(pem),
        start={header["tenant_id"]: (start["seq"], start["hash"])}
        if start.get("seq") and start.get("hash")
        else None,
    )
    signed = result.covered.get(header["tenant_id"], 0)
    head = result.heads.get(header["tenant_id"], (0, ""))[0]
    b = result.first_break
    summary = {
        "ok": result.ok,
        "records": result.records,
        "checkpoints": result.checkpoints,
        "signed_through": signed,
        "head": head,
        "first_break": None
        if b is None
        else {"seq": b.seq, "tenant_id": b.tenant_id, "reason": b.reason},
    }
    if result.ok:
        emit(
            summary,
            f"[green]intact[/green]: {result.records} records, {result.checkpoints} signed "
            f"checkpoints; signed through seq {signed} of {head}",
        )
        return
    assert b is not None
    emit(summary, f"[red]BROKEN[/red] at seq {b.seq} (tenant {b.tenant_id}): {b.reason}")
    raise typer.Exit(RUNTIME)


def _reports_call(method: str, path: str, **kw: Any) -> Any:
    url = os.environ.get("DRIFTLINE_REPORTS_URL", "http://127.0.0.1:8105")
    key = state.api_key or fail("set DRIFTLINE_API_KEY (an auditor's)", USAGE)
    try:
        r = httpx.request(
            method, f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=60, **kw
        )
    except (httpx.TransportError, OSError) as e:
        fail(explain(e, f"the compliance-report service at {url}"))
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        fail(
            explain(
                DriftlineAPIError(r.status_code, detail), f"the compliance-report service at {url}"
            )
        )
    return r


@report.command("create")
def report_create(
    framework: Annotated[Framework, A("the regulation the report answers")],
    start: Annotated[str, typer.Option("--from", help="period start, ISO 8601 with zone")],
    end: Annotated[str, typer.Option("--to", help="period end (excluded)")],
    model: Annotated[str | None, typer.Option(help="one model (needed for model_card)")] = None,
    out: Annotated[Path | None, typer.Option(help="wait, then save the signed bundle here")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --out")] = 600,
) -> None:
    """Ask the compliance-report service (DRIFTLINE_REPORTS_URL) for a report of your tenant;
    with --out, follow its generation on a progress bar and save the signed bundle."""
    import time

    body = {
        "framework": framework.value,
        "period_start": start,
        "period_end": end,
        "model_id": model,
    }
    job = _reports_call("POST", "/v1/reports", json=body).json()
    if out is None:
        emit(job, f"report {job['id']} queued")
        return
    err.print(f"report {job['id']} queued")
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=err,
        disable=state.output is Output.json,
    ) as progress:
        task = progress.add_task("queued", total=1.0)
        while True:
            job = _reports_call("GET", f"/v1/reports/{job['id']}").json()
            progress.update(
                task, completed=float(job.get("progress") or 0), description=str(job["stage"])
            )
            if job["status"] in ("done", "failed"):
                break
            if time.monotonic() > deadline:
                fail(
                    f"report {job['id']} is still {job['status']} ({job['stage']}) "
                    f"after {timeout} s"
                )
            time.sleep(1)
    if job["status"] == "failed":
        fail(f"report {job['id']} failed: {job['error']}")
    out.write_bytes(_reports_call("GET", f"/v1/reports/{job['id']}/bundle").content)
    emit(
        {**job, "file": str(out)},
        f"saved to {out}; check it with: driftline report verify {out}",
    )


@report.command("verify")
def report_verify(
    file: Annotated[Path, A("a report bundle (.zip), or one of its files with --manifest")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM of the report-signing key to trust (default: the one in the file)"),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="check FILE (one report file) against this manifest")
    ] = None,
) -> None:
    """Verify a report offline: the manifest's Ed25519 signature and every file's SHA-256.
    Exit 0 when intact, 1 naming what differs (or saying the file is not a report)."""
    from driftline_contracts.auditchain import public_key_from_pem
    from driftline_contracts.reportsign import check_bundle, check_file

    try:
        data = file.read_bytes()
        trusted = public_key_from_pem(public_key.read_text()) if public_key else None
        if manifest is not None:
            listed = json.loads(manifest.read_text())
            if not isinstance(listed, dict) or "files" not in listed:
                fail(f"{manifest} is not a Driftline report manifest (no list of files)")
            result = check_file(file.name, data, listed, trusted)
        else:
            result = check_bundle(data, trusted)
    except (OSError, ValueError) as e:
        fail(f"cannot read {file}: {e}")
    m = result.manifest or {}
    if not m.get("report_id"):
        why = "; ".join(result.problems) or "its manifest names no report"
        emit(
            {"ok": False, "report": False, "problems": result.problems},
            f"[red]NOT VALID[/red]: {file} is not a Driftline report bundle ({why})",
        )
        raise typer.Exit(RUNTIME)
    what = f"{m.get('framework')} report {m.get('report_id')} of {m.get('tenant_id')}"
    summary = {
        "ok": result.ok,
        "report": True,
        "report_id": m.get("report_id"),
        "framework": m.get("framework"),
        "tenant_id": m.get("tenant_id"),
        "key_id": m.get("key_id"),
        "fingerprint": result.fingerprint,
        "embedded_key": result.embedded_key,
        "problems": result.problems,
    }
    if result.ok:
        names = ", ".join(f["name"] for f in m.get("files", []))
        emit(
            summary,
            f"[green]intact[/green]: {what}, {m.get('period_start')} to {m.get('period_end')}; "
            f"files {names}; signed by key {m.get('key_id')} (fingerprint {result.fingerprint})",
        )
        if result.embedded_key:
            err.print(
                "[yellow]checked against the key inside the file: compare its fingerprint "
                "with GET /v1/reports/public-key, or pass --public-key[/yellow]"
            )
        return
    emit(summary, f"[red]NOT VALID[/red]: {what}")
    if state.output is Output.table:
        for problem in result.problems:
            typer.echo(f"  {problem}")
    raise typer.Exit(RUNTIME)


@keys.command("create")
def keys_create(
    name: Annotated[str, A("a name for the key (who or what uses it)")],
    scope: Annotated[
        list[Scope] | None,
        typer.Option(help="what the key may do; repeat for several (default: ingest)"),
    ] = None,
) -> None:
    """Create an API key (shown once); scope defaults to ingest."""
    scopes = [s.value for s in scope] if scope else ["ingest"]
    with client() as c:
        out = call(c.create_key, name, scopes)
    emit(out, f"key {out['key_id']} ({', '.join(out['scopes'])}):\n{out['api_key']}")


@keys.command("list")
def keys_list() -> None:
    """Your tenant's API keys (never the secrets)."""
    with client() as c:
        show(
            call(c.list_keys),
            ["id", "name", "prefix", "scopes", "created_at", "revoked_at"],
            "API keys",
        )


@keys.command("revoke")
def keys_revoke(key_id: Annotated[str, A("the key's id (from `driftline keys list`)")]) -> None:
    """Revoke an API key: it stops working at once."""
    with client() as c:
        call(c.revoke_key, key_id)
    emit({"key_id": key_id, "revoked": True}, f"key {key_id} revoked")


@models.command("register")
def models_register(
    spec: Annotated[Path, A("a JSON file: id, name, task, feature_schema, monitoring")],
) -> None:
    """Register a model from a JSON file: id, name, task, feature_schema, monitoring."""
    try:
        body = json.loads(spec.read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read {spec}: {e}", USAGE)
    with client() as c:
        out = call(c.register_model, body)
    emit(
        out,
        f"model [bold]{out['id']}[/bold] registered with "
        f"{len(out['feature_schema']['features'])} features",
    )


@models.command("list")
def models_list() -> None:
    """Your tenant's models."""
    with client() as c:
        show(call(c.list_models), ["id", "name", "task", "created_by", "updated_at"], "Models")


@models.command("add-version")
def models_add_version(
    model_id: Annotated[str, A("the model")],
    version: Annotated[str, A("the new version's name")],
    artifact: Annotated[Path, typer.Option(help="the model file", exists=True, dir_okay=False)],
    uri: Annotated[str, typer.Option(help="where it is stored")],
) -> None:
    """Register a version; its artifact's SHA-256 is computed from the file."""
    h = hashlib.sha256()
    with open(artifact, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    with client() as c:
        out = call(
            c.add_version,
            model_id,
            {"version": version, "artifact_uri": uri, "artifact_sha256": digest},
        )
    emit(out, f"{model_id} {out['version']} registered (sha256 {digest[:12]}...)")


@models.command("approve")
def models_approve(
    model_id: Annotated[str, A("the model")],
    version: Annotated[str, A("the version to approve")],
    comment: Annotated[str, typer.Option(help="recorded with the approval")] = "",
) -> None:
    """Approve a version (the approver must not be who submitted it)."""
    with client() as c:
        out = call(c.approve, model_id, version, comment)
    emit(out, f"{model_id} {version} approved by {out['approved_by']}")


@reference.command("upload")
def reference_upload(
    model_id: Annotated[str, A("the model")],
    file: Annotated[
        Path, A("reference data: .csv, .parquet or .jsonl", exists=True, dir_okay=False)
    ],
) -> None:
    """Upload reference data (.csv, .parquet, .jsonl) and build its profile. The file is
    streamed; the bar shows the bytes sent, then the server profiles it."""
    if file.suffix.lower() not in (".csv", ".parquet", ".jsonl", ".ndjson"):
        fail(f"{file.name}: use a .csv, .parquet or .jsonl file", USAGE)
    size = file.stat().st_size
    with _progress() as progress, client() as c:
        task = progress.add_task(f"uploading {file.name}", total=size)

        def sent(n: int, total: int) -> None:
            progress.update(task, completed=n)
            if n >= total:
                progress.update(task, description=f"{file.name} sent; profiling")

        out = call(c.upload_reference, model_id, file, progress=sent)
    emit(out, f"reference v{out['version']} of {model_id}: {out['rows']:,} rows profiled")


# --- the alert side (the alerting service's /v1 API) ---------------------------------------


def alerting() -> Client:
    return service(
        "DRIFTLINE_ALERTING_URL", "http://127.0.0.1:8103", "a key with read, or write, scope"
    )


@alerts.command("list")
def alerts_list() -> None:
    """The alerts firing (or just resolved) now, from DRIFTLINE_ALERTING_URL."""
    with alerting() as c:
        rows = call(c.request, "GET", "/v1/alerts")
    for r in rows:
        r["alertname"] = r.get("labels", {}).get("alertname", "")
        r["model"] = r.get("labels", {}).get("model", "")
    show(rows, ["fingerprint", "status", "alertname", "model", "starts_at", "value"], "Alerts")


_DURATION = re.compile(r"^(\d+)([smhd])$")


def _duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter("a number and a unit: 30m, 2h, 1d")
    return timedelta(seconds=int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]])


@silences.command("add")
def silences_add(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", "-m", help="label=value, label!=value, label=~regex; repeat to AND"
        ),
    ],
    comment: Annotated[str, typer.Option(help="why (required, recorded)")],
    duration: Annotated[str, typer.Option(help="how long from now: 30m, 2h, 1d")] = "2h",
) -> None:
    """Silence the alerts that match every matcher, from now for DURATION."""
    ends = datetime.now(UTC) + _duration(duration)
    with alerting() as c:
        out = call(
            c.request,
            "POST",
            "/v1/silences",
            json={"matchers": matcher, "ends_at": ends.isoformat(), "comment": comment},
        )
    emit(out, f"silence {out['id']} until {out['ends_at']}")


@silences.command("list")
def silences_list() -> None:
    """Your tenant's silences, active, pending and expired."""
    with alerting() as c:
        rows = call(c.request, "GET", "/v1/silences")
    for r in rows:
        r["matchers"] = [
            m if isinstance(m, str) else f"{m.get('name')}{_op(m)}{m.get('value')}"
            for m in r.get("matchers", [])
        ]
    show(rows, ["id", "state", "matchers", "ends_at", "created_by", "comment"], "Silences")


def _op(m: dict[str, Any]) -> str:
    eq = m.get("isEqual", m.get("is_equal", True))
    regex = m.get("isRegex", m.get("is_regex", False))
    return ("=" if eq else "!=") if not regex else ("=~" if eq else "!~")


@silences.command("expire")
def silences_expire(silence_id: Annotated[str, A("the silence's id")]) -> None:
    """End a silence now."""
    with alerting() as c:
        call(c.request, "DELETE", f"/v1/silences/{silence_id}")
    emit({"id": silence_id, "expired": True}, f"silence {silence_id} expired")


@rules.command("list")
def rules_list() -> None:
    """Your tenant's alert rules (the defaults until you add one)."""
    with alerting() as c:
        out = call(c.request, "GET", "/v1/alert-rules")
    rows = out["rules"]
    for r in rows:
        cond = r.get("condition") or {}
        r["condition"] = " ".join(str(v) for v in cond.values()) if isinstance(cond, dict) else cond
    title = "Alert rules (defaults)" if out.get("defaults") else "Alert rules"
    show(rows, ["id", "name", "model_id", "severity", "for_windows", "enabled", "condition"], title)


def _load_rules(file: Path) -> list[dict[str, Any]]:
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read {file}: {e}", USAGE)
    import yaml

    try:
        data: Any = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        fail(f"{file} is not valid JSON or YAML: {e}", USAGE)
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) and r.get("id") for r in data):
        fail(
            f"{file}: expected a rule, a list of rules or {{rules: [...]}}, each with an id", USAGE
        )
    return data


@rules.command("apply")
def rules_apply(
    file: Annotated[
        Path,
        typer.Option(
            "--file", "-f", help="YAML or JSON: a rule, a list, or {rules: [...]}", exists=True
        ),
    ],
) -> None:
    """Create or replace each rule of FILE by its id (PUT /v1/alert-rules/{id})."""
    data = _load_rules(file)
    with alerting() as c:
        done = [call(c.request, "PUT", f"/v1/alert-rules/{r['id']}", json=r) for r in data]
    emit(done, f"{len(done)} rules applied: {', '.join(r['id'] for r in done)}")


@deliveries.command("list")
def deliveries_list() -> None:
    """Notifications sent (or being retried) to your receivers."""
    with alerting() as c:
        rows = call(c.request, "GET", "/v1/deliveries")
    columns = list(rows[0]) if rows else ["receiver", "status"]
    keep = [
        c
        for c in ("receiver", "integration", "status", "attempts", "group_key", "sent_at", "error")
        if c in columns
    ]
    show(rows, keep or columns[:8], "Deliveries")


# --- status ----------------------------------------------------------------------------------

SERVICES = {
    "ingestion": "DRIFTLINE_URL",
    "drift-detection": "DRIFTLINE_DRIFT_URL",
    "alerting": "DRIFTLINE_ALERTING_URL",
    "audit": "DRIFTLINE_AUDIT_URL",
    "compliance-report": "DRIFTLINE_REPORTS_URL",
}
PORTS = {
    "ingestion": 8101,
    "drift-detection": 8102,
    "alerting": 8103,
    "audit": 8104,
    "compliance-report": 8105,
}
_LAG = re.compile(r"^driftline_consumer_lag_records\{([^}]*)\}\s+(\S+)", re.M)


def _lag(metrics: str) -> dict[str, float]:
    """Records behind, per consumer group, from a Prometheus text exposition."""
    out: dict[str, float] = {}
    for labels, value in _LAG.findall(metrics):
        group = re.search(r'group="([^"]*)"', labels)
        name = group[1] if group else "?"
        out[name] = out.get(name, 0.0) + float(value)
    return out


def _probe(name: str, url: str) -> dict[str, Any]:
    row: dict[str, Any] = {"service": name, "url": url, "ready": False, "lag": None}
    try:
        with httpx.Client(base_url=url, timeout=5) as h:
            r = h.get("/readyz")
            try:
                body = r.json()
            except ValueError:
                body = {}
            row["ready"] = r.status_code == 200
            checks = body.get("checks", {}) if isinstance(body, dict) else {}
            bad = {k: v for k, v in checks.items() if v != "ok"}
            row["detail"] = (
                "; ".join(f"{k}: {v}" for k, v in bad.items())
                if bad
                else ("ok" if row["ready"] else f"HTTP {r.status_code}")
            )
            m = h.get("/metrics")
            if m.status_code == 200:
                lag = _lag(m.text)
                row["lag"] = lag or None
    except httpx.TransportError as e:
        row["detail"] = f"unreachable: {e or type(e).__name__}"
    return row


@app.command("status")
def status(
    service_url: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            "-s",
            help="NAME=URL to check (repeat); default: the five services, each at its "
            "DRIFTLINE_*_URL or its local port",
        ),
    ] = None,
) -> None:
    """Each service's health (/readyz, naming failing checks) and consumer lag (records
    behind per consumer group, from /metrics). Exit 1 when any is not ready."""
    if service_url:
        targets = {}
        for item in service_url:
            name, sep, url = item.partition("=")
            if not sep or not url.startswith(("http://", "https://")):
                fail(f"--service {item!r}: expected NAME=http://host:port", USAGE)
            targets[name] = url
    else:
        targets = {
            n: (URL if n == "ingestion" else os.environ.get(env, f"http://127.0.0.1:{PORTS[n]}"))
            for n, env in SERVICES.items()
        }
    rows = [_probe(n, u) for n, u in targets.items()]
    if state.output is Output.json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title="Driftline services")
        for c in ("service", "url", "ready", "lag", "detail"):
            table.add_column(c)
        for r in rows:
            lag = r["lag"]
            table.add_row(
                r["service"],
                r["url"],
                "[green]ready[/green]" if r["ready"] else "[red]NOT READY[/red]",
                ", ".join(f"{g}: {v:,.0f}" for g, v in lag.items()) if lag else "-",
                r.get("detail", ""),
            )
        console.print(table)
    if not all(r["ready"] for r in rows):
        raise typer.Exit(RUNTIME)


@demo.command("run")
def demo_run(
    seconds: Annotated[float, typer.Option(help="how long to stream")] = 60.0,
    rate: Annotated[float, typer.Option(help="events per second")] = 200.0,
    label_delay: Annotated[float, typer.Option(help="seconds before labels are sent")] = 5.0,
) -> None:
    """Register the demo model (if needed), upload its reference, and stream with drift."""
    try:
        from .demo.run import run
    except ImportError as e:
        fail(f"the demo needs numpy: pip install 'driftline[demo]' ({e})", USAGE)

    key = state.api_key
    if not key:
        fail("set DRIFTLINE_API_KEY (an admin key of the tenant to stream into)", USAGE)
    sys.exit(run(URL, key, seconds=seconds, rate=rate, label_delay=label_delay, console=console))


def entry() -> None:
    """The `driftline` script: a failure the commands did not expect is still one line."""
    try:
        app()
    except (DriftlineAPIError, httpx.TransportError) as e:
        err.print(f"[red]error:[/red] {explain(e, f'Driftline at {URL}')}", highlight=False)
        sys.exit(RUNTIME)


if __name__ == "__main__":
    entry()
