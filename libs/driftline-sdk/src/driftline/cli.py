"""`driftline`: the command line for tenants, API keys, models, references and the demo.

Reads DRIFTLINE_URL (default http://127.0.0.1:8101), DRIFTLINE_API_KEY (an API key, or an
operator's access token from `driftline login`) and, for platform commands (creating and
erasing tenants, rotating any tenant's keys), DRIFTLINE_ADMIN_TOKEN."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from .client import Client, DriftlineAPIError

app = typer.Typer(help=__doc__, no_args_is_help=True)
models = typer.Typer(help="Models and their versions", no_args_is_help=True)
keys = typer.Typer(help="API keys and data keys of your tenant", no_args_is_help=True)
users = typer.Typer(help="Operators (people) of your tenant", no_args_is_help=True)
audit = typer.Typer(help="The tamper-evident audit trail", no_args_is_help=True)
reference = typer.Typer(help="Reference data (what normal looks like)", no_args_is_help=True)
tenants = typer.Typer(help="Tenants (platform admin)", no_args_is_help=True)
demo = typer.Typer(help="The synthetic credit-risk demo", no_args_is_help=True)
report = typer.Typer(help="Signed compliance reports (GDPR, SOX, FDA)", no_args_is_help=True)
for sub, name in (
    (report, "report"),
    (models, "models"),
    (keys, "keys"),
    (reference, "reference"),
    (tenants, "tenants"),
    (users, "users"),
    (audit, "audit"),
    (demo, "demo"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)
URL = os.environ.get("DRIFTLINE_URL", "http://127.0.0.1:8101")


def client(admin: bool = False, either: bool = False) -> Client:
    """`admin`: the platform token is required; `either`: it or an API key/access token."""
    key = os.environ.get("DRIFTLINE_API_KEY")
    token = os.environ.get("DRIFTLINE_ADMIN_TOKEN")
    if either:
        if not (key or token):
            fail("set DRIFTLINE_ADMIN_TOKEN (platform) or DRIFTLINE_API_KEY (the tenant's admin)")
        return Client(URL, None if token else key, admin_token=token)
    if admin and not token:
        fail("set DRIFTLINE_ADMIN_TOKEN (the platform admin token) to create tenants")
    if not admin and not key:
        fail(
            "set DRIFTLINE_API_KEY (create one with `driftline tenants create` or "
            "`driftline keys create`)"
        )
    return Client(URL, key, admin_token=token)


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except DriftlineAPIError as e:
        fail(f"{e.detail} (HTTP {e.status})")
    except OSError as e:
        fail(f"cannot reach Driftline at {URL}: {e}")


def show(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(r.get(c, "")) for c in columns])
    console.print(table)


@tenants.command("create")
def tenants_create(tenant_id: str, name: Annotated[str, typer.Option()] = "") -> None:
    """Create a tenant and its first admin API key (shown once)."""
    with client(admin=True) as c:
        out = call(c.create_tenant, tenant_id, name or tenant_id)
    console.print(
        f"tenant [bold]{out['tenant_id']}[/bold] created; admin API key "
        f"(shown once):\n{out['api_key']}"
    )


@tenants.command("erase")
def tenants_erase(
    tenant_id: str,
    reason: Annotated[str, typer.Option(help="why (recorded in the audit trail)")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Crypto-shred a tenant: destroy its data keys, so all its encrypted data is unreadable;
    its API keys, users and sessions stop working. This cannot be undone."""
    if not yes:
        typer.confirm(f"Erase tenant {tenant_id} and make all its data unreadable?", abort=True)
    with client(either=True) as c:
        out = call(c.erase_tenant, tenant_id, reason)
    console.print(
        f"tenant [bold]{tenant_id}[/bold] erased: {out['data_keys_destroyed']} data keys "
        f"destroyed, {out['sessions_revoked']} sessions revoked, "
        f"{out['users_disabled']} users disabled"
    )


@keys.command("rotate")
def keys_rotate(tenant: Annotated[str, typer.Option(help="the tenant whose data key")]) -> None:
    """A new data-key version: new data is encrypted under it, old data stays readable."""
    with client(either=True) as c:
        out = call(c.rotate_data_key, tenant)
    console.print(f"tenant {tenant}: data key v{out['version']} is now current")


@keys.command("versions")
def keys_versions(tenant: Annotated[str, typer.Option()]) -> None:
    """The tenant's data-key versions (never key material)."""
    with client(either=True) as c:
        rows = call(c.data_keys, tenant)
    show(rows, ["version", "kek_id", "created_at", "rewrapped_at", "destroyed"], "Data keys")


@keys.command("rewrap")
def keys_rewrap() -> None:
    """After a KEK rotation: re-wrap every data key under the current KEK (platform admin)."""
    with client(admin=True) as c:
        out = call(c.rewrap_data_keys)
    console.print(f"{out['rewrapped']} data keys re-wrapped under the current KEK")


@users.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, ml-engineer, auditor or viewer")] = "viewer",
) -> None:
    """Create an operator; the password comes from DRIFTLINE_PASSWORD or a prompt."""
    password = os.environ.get("DRIFTLINE_PASSWORD") or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    with client() as c:
        out = call(c.create_user, username, password, role)
    console.print(f"user {out['username']} ({out['role']}) created: {out['id']}")


@users.command("list")
def users_list() -> None:
    with client() as c:
        show(
            call(c.list_users),
            ["id", "username", "role", "mfa_enabled", "disabled", "created_at"],
            "Users",
        )


@app.command("login")
def login(
    username: str,
    tenant: Annotated[str, typer.Option()],
    totp: Annotated[str | None, typer.Option(help="TOTP code or backup code")] = None,
) -> None:
    """Log in as an operator; prints the access token (use it as DRIFTLINE_API_KEY)."""
    password = os.environ.get("DRIFTLINE_PASSWORD") or typer.prompt("password", hide_input=True)
    with Client(URL) as c:
        out = call(c.login, tenant, username, password, totp)
    err.print(f"logged in as {username} ({out['role']}), valid {out['expires_in']} s")
    typer.echo(out["access_token"])  # plain: rich would wrap it


@audit.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="file to write (JSON lines)")],
    from_seq: Annotated[int, typer.Option()] = 1,
    to_seq: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Export your tenant's audit trail with its checkpoints (the `audit` permission), from
    the audit service at DRIFTLINE_AUDIT_URL (default http://127.0.0.1:8104)."""
    import httpx

    url = os.environ.get("DRIFTLINE_AUDIT_URL", "http://127.0.0.1:8104")
    key = os.environ.get("DRIFTLINE_API_KEY") or fail("set DRIFTLINE_API_KEY (an auditor's)")
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
        ):
            if r.status_code != 200:
                r.read()
                try:
                    detail = r.json().get("detail", r.text)
                except ValueError:
                    detail = r.text
                fail(f"{detail} (HTTP {r.status_code})")
            for chunk in r.iter_bytes():
                f.write(chunk)
    except httpx.HTTPError as e:
        fail(f"cannot reach the audit service at {url}: {e}")
    console.print(f"exported to {out}; check it with: driftline audit verify {out}")


@audit.command("verify")
def audit_verify(
    file: Path,
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM of the checkpoint key to trust (default: the one in the file)"),
    ] = None,
) -> None:
    """Verify an export offline: hash chain, sequence, checkpoint signatures, truncation.
    Exit 0 when intact, 1 naming the first broken record."""
    from driftline_core.auditchain import public_key_from_pem, verify

    try:
        lines = [json.loads(x) for x in file.read_text().splitlines() if x.strip()]
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read {file}: {e}")
    header = next((x for x in lines if x.get("type") == "header"), None)
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
    if result.ok:
        signed = result.covered.get(header["tenant_id"], 0)
        head = result.heads.get(header["tenant_id"], (0, ""))[0]
        console.print(
            f"[green]intact[/green]: {result.records} records, {result.checkpoints} signed "
            f"checkpoints; signed through seq {signed} of {head}"
        )
        return
    b = result.first_break
    assert b is not None
    console.print(f"[red]BROKEN[/red] at seq {b.seq} (tenant {b.tenant_id}): {b.reason}")
    raise typer.Exit(1)


def _reports_call(method: str, path: str, **kw: Any) -> Any:
    import httpx

    url = os.environ.get("DRIFTLINE_REPORTS_URL", "http://127.0.0.1:8105")
    key = os.environ.get("DRIFTLINE_API_KEY") or fail("set DRIFTLINE_API_KEY (an auditor's)")
    try:
        r = httpx.request(
            method, f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=60, **kw
        )
    except httpx.HTTPError as e:
        fail(f"cannot reach the compliance-report service at {url}: {e}")
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        fail(f"{detail} (HTTP {r.status_code})")
    return r


@report.command("create")
def report_create(
    framework: Annotated[str, typer.Argument(help="gdpr, sox, fda or model_card")],
    start: Annotated[str, typer.Option("--from", help="period start, ISO 8601 with zone")],
    end: Annotated[str, typer.Option("--to", help="period end (excluded)")],
    model: Annotated[str | None, typer.Option(help="one model (needed for model_card)")] = None,
    out: Annotated[Path | None, typer.Option(help="wait, then save the signed bundle here")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --out")] = 600,
) -> None:
    """Ask the compliance-report service (DRIFTLINE_REPORTS_URL) for a report of your tenant."""
    import time

    body = {"framework": framework, "period_start": start, "period_end": end, "model_id": model}
    job = _reports_call("POST", "/v1/reports", json=body).json()
    console.print(f"report {job['id']} queued")
    if out is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        job = _reports_call("GET", f"/v1/reports/{job['id']}").json()
        if job["status"] in ("done", "failed"):
            break
        if time.monotonic() > deadline:
            fail(f"report {job['id']} is still {job['status']} ({job['stage']}) after {timeout} s")
        err.print(f"{job['stage']} ({job['progress']:.0%})")
        time.sleep(1)
    if job["status"] == "failed":
        fail(f"report {job['id']} failed: {job['error']}")
    out.write_bytes(_reports_call("GET", f"/v1/reports/{job['id']}/bundle").content)
    console.print(f"saved to {out}; check it with: driftline report verify {out}")


@report.command("verify")
def report_verify(
    file: Path,
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM of the report-signing key to trust (default: the one in the file)"),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="check FILE (one report file) against this manifest")
    ] = None,
) -> None:
    """Verify a report offline: the manifest's Ed25519 signature and every file's SHA-256.
    Exit 0 when intact, 1 naming what differs."""
    from driftline_core.auditchain import public_key_from_pem
    from driftline_core.reportsign import check_bundle, check_file

    try:
        data = file.read_bytes()
        trusted = public_key_from_pem(public_key.read_text()) if public_key else None
        if manifest is not None:
            result = check_file(file.name, data, json.loads(manifest.read_text()), trusted)
        else:
            result = check_bundle(data, trusted)
    except (OSError, ValueError) as e:
        fail(f"cannot read {file}: {e}")
    m = result.manifest
    what = f"{m.get('framework')} report {m.get('report_id')} of {m.get('tenant_id')}"
    if result.ok:
        names = ", ".join(f["name"] for f in m.get("files", []))
        console.print(
            f"[green]intact[/green]: {what}, {m.get('period_start')} to {m.get('period_end')}; "
            f"files {names}; signed by key {m.get('key_id')} (fingerprint {result.fingerprint})"
        )
        if result.embedded_key:
            err.print(
                "[yellow]checked against the key inside the file: compare its fingerprint "
                "with GET /v1/reports/public-key, or pass --public-key[/yellow]"
            )
        return
    console.print(f"[red]NOT VALID[/red]: {what}")
    for problem in result.problems:
        typer.echo(f"  {problem}")
    raise typer.Exit(1)


@keys.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="ingest, read, write, audit or admin; repeat for several"),
    ] = None,
) -> None:
    """Create an API key (shown once); scope defaults to ingest."""
    scope = scope or ["ingest"]
    with client() as c:
        out = call(c.create_key, name, scope)
    console.print(f"key {out['key_id']} ({', '.join(out['scopes'])}):\n{out['api_key']}")


@keys.command("list")
def keys_list() -> None:
    with client() as c:
        show(
            call(c.list_keys),
            ["id", "name", "prefix", "scopes", "created_at", "revoked_at"],
            "API keys",
        )


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    with client() as c:
        call(c.revoke_key, key_id)
    console.print(f"key {key_id} revoked")


@models.command("register")
def models_register(spec: Path) -> None:
    """Register a model from a JSON file: id, name, task, feature_schema, monitoring."""
    try:
        body = json.loads(spec.read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read {spec}: {e}")
    with client() as c:
        out = call(c.register_model, body)
    console.print(
        f"model [bold]{out['id']}[/bold] registered with "
        f"{len(out['feature_schema']['features'])} features"
    )


@models.command("list")
def models_list() -> None:
    with client() as c:
        show(call(c.list_models), ["id", "name", "task", "created_by", "updated_at"], "Models")


@models.command("add-version")
def models_add_version(
    model_id: str,
    version: str,
    artifact: Annotated[Path, typer.Option(help="the model file")],
    uri: Annotated[str, typer.Option(help="where it is stored")],
) -> None:
    """Register a version; its artifact's SHA-256 is computed from the file."""
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    with client() as c:
        out = call(
            c.add_version,
            model_id,
            {"version": version, "artifact_uri": uri, "artifact_sha256": digest},
        )
    console.print(f"{model_id} {out['version']} registered (sha256 {digest[:12]}...)")


@models.command("approve")
def models_approve(
    model_id: str, version: str, comment: Annotated[str, typer.Option()] = ""
) -> None:
    """Approve a version (the approver must not be who submitted it)."""
    with client() as c:
        out = call(c.approve, model_id, version, comment)
    console.print(f"{model_id} {version} approved by {out['approved_by']}")


@reference.command("upload")
def reference_upload(model_id: str, file: Path) -> None:
    """Upload reference data (.csv, .parquet, .jsonl) and build its profile."""
    if not file.exists():
        fail(f"{file} does not exist")
    size = file.stat().st_size
    with (
        Progress(
            TextColumn("{task.description}"), BarColumn(), TransferSpeedColumn(), console=console
        ) as progress,
        client() as c,
    ):
        task = progress.add_task(f"uploading {file.name}", total=size)
        out = call(c.upload_reference, model_id, file)
        progress.update(task, completed=size)
    console.print(f"reference v{out['version']} of {model_id}: {out['rows']:,} rows profiled")


@demo.command("run")
def demo_run(
    seconds: Annotated[float, typer.Option()] = 60.0,
    rate: Annotated[float, typer.Option(help="events per second")] = 200.0,
    label_delay: Annotated[float, typer.Option(help="seconds")] = 5.0,
) -> None:
    """Register the demo model (if needed), upload its reference, and stream with drift."""
    from .demo.run import run

    key = os.environ.get("DRIFTLINE_API_KEY")
    if not key:
        fail("set DRIFTLINE_API_KEY (an admin key of the tenant to stream into)")
    sys.exit(run(URL, key, seconds=seconds, rate=rate, label_delay=label_delay, console=console))


if __name__ == "__main__":
    app()
