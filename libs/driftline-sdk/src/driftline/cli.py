"""`driftline`: the command line for tenants, API keys, models, references and the demo.

Reads DRIFTLINE_URL (default http://127.0.0.1:8101), DRIFTLINE_API_KEY and, for creating
tenants, DRIFTLINE_ADMIN_TOKEN."""

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
keys = typer.Typer(help="API keys of your tenant", no_args_is_help=True)
reference = typer.Typer(help="Reference data (what normal looks like)", no_args_is_help=True)
tenants = typer.Typer(help="Tenants (platform admin)", no_args_is_help=True)
demo = typer.Typer(help="The synthetic credit-risk demo", no_args_is_help=True)
for sub, name in (
    (models, "models"),
    (keys, "keys"),
    (reference, "reference"),
    (tenants, "tenants"),
    (demo, "demo"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)
URL = os.environ.get("DRIFTLINE_URL", "http://127.0.0.1:8101")


def client(admin: bool = False) -> Client:
    key = os.environ.get("DRIFTLINE_API_KEY")
    token = os.environ.get("DRIFTLINE_ADMIN_TOKEN")
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


@keys.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        list[str] | None, typer.Option(help="ingest, read or admin; repeat for several")
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
