"""The `driftline` CLI against a live ingestion server."""

from __future__ import annotations

import asyncio
import csv
import json

from typer.testing import CliRunner

from driftline.cli import app
from driftline.demo.credit import MODEL, reference_rows


def run(
    live_url: str, *args: str, key: str | None = None, admin: bool = False, input: str | None = None
):
    env = {"DRIFTLINE_URL": live_url}
    if key:
        env["DRIFTLINE_API_KEY"] = key
    if admin:
        env["DRIFTLINE_ADMIN_TOKEN"] = "driftline-dev-admin"
    import driftline.cli as cli

    cli.URL = live_url
    return CliRunner().invoke(app, list(args), env=env, input=input)


async def test_cli_covers_tenants_keys_models_and_references(live_url, unique, tmp_path):
    def flow() -> None:
        tid = unique("cli").replace("_", "-")
        out = run(live_url, "tenants", "create", tid, admin=True)
        assert out.exit_code == 0, out.output
        key = out.output.strip().splitlines()[-1]
        assert key.startswith("dlk_")

        spec = tmp_path / "model.json"
        spec.write_text(json.dumps(MODEL))
        out = run(live_url, "models", "register", str(spec), key=key)
        assert out.exit_code == 0, out.output
        assert "20 features" in out.output
        assert "credit-risk" in run(live_url, "models", "list", key=key).output

        rows = reference_rows(3000)
        ref = tmp_path / "ref.csv"
        with open(ref, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(
                {
                    k: "" if v is None else str(v).lower() if isinstance(v, bool) else v
                    for k, v in r.items()
                }
                for r in rows
            )
        out = run(live_url, "reference", "upload", "credit-risk", str(ref), key=key)
        assert out.exit_code == 0, out.output
        assert "3,000 rows profiled" in out.output

        artifact = tmp_path / "model.bin"
        artifact.write_bytes(b"weights")
        out = run(
            live_url,
            "models",
            "add-version",
            "credit-risk",
            "1",
            "--artifact",
            str(artifact),
            "--uri",
            "s3://m/1",
            key=key,
        )
        assert out.exit_code == 0, out.output
        out = run(live_url, "models", "approve", "credit-risk", "1", key=key)
        assert out.exit_code == 1
        assert "may not approve" in out.output

        out = run(live_url, "keys", "create", "etl", "--scope", "ingest", key=key)
        assert out.exit_code == 0, out.output
        key_id = out.output.split()[1]
        assert run(live_url, "keys", "revoke", key_id, key=key).exit_code == 0
        out = run(live_url, "keys", "revoke", key_id, key=key)
        assert out.exit_code == 1
        assert "no active API key" in out.output

        out = run(live_url, "models", "list")
        assert out.exit_code == 2
        assert "set DRIFTLINE_API_KEY" in out.output

    await asyncio.to_thread(flow)


async def test_cli_users_login_key_rotation_and_erasure(live_url, unique):
    def flow() -> None:
        tid = unique("sec").replace("_", "-")
        key = run(live_url, "tenants", "create", tid, admin=True).output.strip().splitlines()[-1]
        import os

        os.environ["DRIFTLINE_PASSWORD"] = "correct horse battery staple"
        try:
            out = run(live_url, "users", "create", "ops-lead", "--role", "admin", key=key)
            assert out.exit_code == 0, out.output
            assert "ops-lead (admin) created" in out.output
            out = run(live_url, "login", "ops-lead", "--tenant", tid)
            assert out.exit_code == 0, out.output
            token = out.stdout.strip().splitlines()[-1]
            assert token.count(".") == 2  # a JWT
            out = run(live_url, "users", "list", key=token)
            assert "ops-lead" in out.output
            os.environ["DRIFTLINE_PASSWORD"] = "not the password at all"
            out = run(live_url, "login", "ops-lead", "--tenant", tid)
            assert out.exit_code == 1
            assert "invalid credentials (HTTP 401)" in out.output
        finally:
            os.environ.pop("DRIFTLINE_PASSWORD", None)

        out = run(live_url, "keys", "rotate", "--tenant", tid, key=token)
        assert out.exit_code == 0, out.output
        assert f"tenant {tid}: data key v" in out.output
        out = run(live_url, "keys", "rotate", "--tenant", tid, admin=True)
        assert out.exit_code == 0, out.output
        out = run(live_url, "keys", "versions", "--tenant", tid, admin=True)
        assert out.exit_code == 0, out.output
        out = run(live_url, "keys", "rotate", "--tenant", "someone-else", key=token)
        assert out.exit_code == 1
        assert "HTTP 404" in out.output

        out = run(live_url, "tenants", "erase", tid, "--reason", "test", key=token, input="n\n")
        assert out.exit_code != 0  # declined at the prompt
        out = run(live_url, "tenants", "erase", tid, "--reason", "GDPR request", "--yes", key=token)
        assert out.exit_code == 0, out.output
        assert "data keys destroyed" in out.output
        out = run(live_url, "models", "list", key=key)
        assert out.exit_code == 1
        assert "HTTP 401" in out.output

    await asyncio.to_thread(flow)
