"""`make demo`'s console login: a demo operator of the demo tenant (an admin with a known
password and TOTP enrolled), created once and kept in .stack/demo-console.json, and the
console's URL with a code to log in with now. A LOCAL DEMO CREDENTIAL: the password is in
this file and the TOTP secret in .stack/ (never used outside this machine's demo)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
from rich.console import Console

__all__ = ["operator", "show"]

ROOT = Path(__file__).resolve().parents[2]
SAVED = ROOT / ".stack" / "demo-console.json"
USERNAME = "demo-admin"
PASSWORD = "driftline-local-demo"  # a local demo credential, printed by make demo
CONSOLE_URL = "http://127.0.0.1:8106"


def _enroll(http: httpx.Client, tenant: str) -> dict[str, Any]:
    """Log in with the password (no MFA yet), enrol TOTP and confirm it with a code."""
    login = http.post(
        "/v1/auth/login", json={"tenant": tenant, "username": USERNAME, "password": PASSWORD}
    )
    login.raise_for_status()
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    secret = http.post("/v1/auth/mfa/enroll", headers=auth).raise_for_status().json()["secret"]
    totp = pyotp.TOTP(secret)
    step = int(time.time() // totp.interval)
    code = totp.at(step * totp.interval)
    http.post("/v1/auth/mfa/confirm", json={"code": code}, headers=auth).raise_for_status()
    return {"tenant": tenant, "username": USERNAME, "totp_secret": secret, "used_step": step}


def operator(ingestion_url: str, key: str, tenant: str) -> dict[str, Any]:
    """The demo operator of `tenant`: created, or reused from .stack/demo-console.json, or
    (when that file is gone) its password and MFA reset with the tenant's admin key."""
    if SAVED.exists():
        saved: dict[str, Any] = json.loads(SAVED.read_text())
        if saved.get("tenant") == tenant:
            return saved
    with httpx.Client(
        base_url=ingestion_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as http:
        made = http.post(
            "/v1/auth/users", json={"username": USERNAME, "password": PASSWORD, "role": "admin"}
        )
        if made.status_code == 409:  # made by an earlier demo whose file is gone: reset it
            users = http.get("/v1/auth/users").raise_for_status().json()
            uid = next(u["id"] for u in users if u["username"] == USERNAME)
            http.patch(
                f"/v1/auth/users/{uid}",
                json={"reset_mfa": True, "password": PASSWORD, "disabled": False},
            ).raise_for_status()
        else:
            made.raise_for_status()
        out = _enroll(http, tenant)
    SAVED.write_text(json.dumps(out))
    SAVED.chmod(0o600)
    return out


def show(console: Console, ingestion_url: str, key: str, tenant: str) -> None:
    """The console's URL and a login for the demo tenant, with a TOTP code usable now."""
    try:
        op = operator(ingestion_url, key, tenant)
    except httpx.HTTPError as e:
        console.print(f"[yellow]no console login: {e} (see .stack/logs/svc-ingestion.log)")
        return
    totp = pyotp.TOTP(op["totp_secret"])
    step = max(int(time.time() // totp.interval), int(op.get("used_step", 0)) + 1)
    until = time.strftime("%H:%M:%S", time.localtime((step + 2) * totp.interval))
    console.print(
        f"Console: [bold]{CONSOLE_URL}[/bold]  (local demo credential, this machine only)\n"
        f"  tenant {op['tenant']}   user {op['username']}   password {PASSWORD}\n"
        f"  TOTP code now: [bold]{totp.at(step * totp.interval)}[/bold] (until about {until}; "
        f"a code serves once)  secret {op['totp_secret']} (add it to an authenticator app)\n"
        f"  next codes: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('"
        f"{op['totp_secret']}').now())\""
    )
