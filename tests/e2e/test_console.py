"""The web console in a real browser (Playwright driving Debian's Chromium) against every
service as a process on the run's own broker and databases (harness.py), with the console
service (services/console) in front of them as one more process serving console/dist.

Operators log in with a password and a TOTP code (secrets enrolled through the API, codes
computed with pyotp); the tests find controls by role and accessible name, as a keyboard or
screen-reader user would (the names are the contract in docs/console.md). Each view's
screenshot goes to .stack/console-screenshots/ (and to docs/img/console/ with
DRIFTLINE_CONSOLE_DOCS_IMG=1, shrunk under 200 KB).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyotp
import pytest
from harness import ROOT, SERVICES, Receiver, ServiceProcess, System, Tenant, free_port, poll
from playwright.async_api import Browser, Page, async_playwright, expect

pytestmark = pytest.mark.timeout(900)

SHOTS = ROOT / ".stack" / "console-screenshots"
DOCS_IMG = ROOT / "docs" / "img" / "console"
CHROMIUM = os.environ.get("DRIFTLINE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
WINDOW_S = 10
FEATURES = ["x0", "x1", "x2", "c0"]
SPEC: dict[str, Any] = {
    "task": "classification",
    "feature_schema": {
        "features": [
            {"name": "x0", "kind": "numeric"},
            {"name": "x1", "kind": "numeric"},
            {"name": "x2", "kind": "numeric"},
            {"name": "c0", "kind": "categorical"},
        ]
    },
    "classes": {"classes": ["0", "1"], "positive_class": "1"},
    "monitoring": {"window": {"kind": "time", "seconds": WINDOW_S, "grace_seconds": 1}},
}
# the two models drift together; only the first one's alert gets silenced (the second is
# the control: its notifications show when one would have been sent)
MODELS = ("credit", "fraud")


def rows(rng: np.random.Generator, n: int, drifted: bool) -> list[dict[str, Any]]:
    """x1, x2 and c0 drift (3 of 4 features: a dataset drift at the default 50% share)."""
    c0 = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object)
    if drifted:
        c0[rng.random(n) < 0.5] = "z"
    x0 = rng.normal(0, 1, n)
    x1 = rng.normal(9 if drifted else 5, 2, n)
    x2 = rng.normal(75 if drifted else 50, 10, n)
    return [
        {"x0": float(x0[i]), "x1": float(x1[i]), "x2": float(x2[i]), "c0": str(c0[i])}
        for i in range(n)
    ]


# --- operators ----------------------------------------------------------------------------


@dataclass
class Operator:
    username: str
    role: str
    secret: str = ""
    last_step: int = 0  # the last TOTP step the server accepted (each step is used once)

    async def code(self) -> str:
        """A code the server has not accepted yet: the next step's when the current one is
        used (a window of 1 step accepts it), else waiting for the clock to move on."""
        totp = pyotp.TOTP(self.secret)

        async def next_step() -> int | None:
            now = int(time.time() // totp.interval)
            return now + 1 if self.last_step < now + 1 else None

        step = await poll(next_step, timeout=70, interval=0.5, what="an unused TOTP step")
        self.last_step = step
        return totp.at(step * totp.interval)


async def make_operator(tenant: Tenant, username: str, role: str) -> Operator:
    """A user with TOTP enrolled and confirmed through the API (as the Account view does)."""
    op = Operator(username, role)
    async with tenant.http("ingestion") as c:
        made = await c.post(
            "/v1/auth/users", json={"username": username, "password": PASSWORD, "role": role}
        )
        assert made.status_code == 201, made.text
        login = await c.post(
            "/v1/auth/login",
            json={"tenant": tenant.tenant_id, "username": username, "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        enrolled = await c.post("/v1/auth/mfa/enroll", headers=auth)
        assert enrolled.status_code == 200, enrolled.text
        op.secret = enrolled.json()["secret"]
        totp = pyotp.TOTP(op.secret)
        op.last_step = int(time.time() // totp.interval)
        confirmed = await c.post(
            "/v1/auth/mfa/confirm",
            json={"code": totp.at(op.last_step * totp.interval)},
            headers=auth,
        )
        assert confirmed.status_code == 200, confirmed.text
    return op


# --- the world: services, console, browser ------------------------------------------------


@dataclass
class World:
    system: System
    tenant: Tenant
    url: str
    receiver: Receiver
    browser: Browser
    ops: dict[str, Operator]
    pages: dict[str, Page] = field(default_factory=dict)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(21))
    t0: float = 0.0  # event time of window 0 (aligned to the window)
    window: int = 0  # the next window to send

    async def page(self, who: str) -> Page:
        """The operator's logged-in tab (one per operator for the whole module: a TOTP
        code serves once, so each operator logs in once)."""
        if who not in self.pages:
            ctx = await self.browser.new_context(
                viewport={"width": 1280, "height": 800}, accept_downloads=True
            )
            page = await ctx.new_page()
            await login(self, page, self.ops[who])
            self.pages[who] = page
        return self.pages[who]

    async def send_window(self, *, drifted: dict[str, bool], n: int = 300) -> int:
        """One window of events per model (event time inside window `self.window`); the
        window closes on the next window's events or after the idle close."""
        k = self.window
        self.window += 1
        for model in MODELS:
            feats = rows(self.rng, n, drifted[model])
            start = self.t0 + k * WINDOW_S
            times = start + np.sort(self.rng.uniform(0.1, WINDOW_S - 0.5, n))
            events = [
                {
                    "event_id": str(uuid.uuid4()),
                    "timestamp": iso(t),
                    "features": f,
                    "prediction": int(f["x0"] > 0),
                }
                for f, t in zip(feats, times.tolist(), strict=True)
            ]
            await self.tenant.log_http(model, "1", events)
        return k


def iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def build_console() -> None:
    """console/dist from the sources (cached: make console does the same)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / "console.sh"), "build"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, f"the console did not build:\n{out.stdout}\n{out.stderr}"
    assert (ROOT / "console" / "dist" / "index.html").is_file()


async def start_console(system: System) -> str:
    """The console service as one more process of the run, its upstreams the run's APIs,
    serving a copy of console/dist (a build running meanwhile cannot take it away)."""
    dist = system.workdir / "console-dist"
    await asyncio.to_thread(shutil.copytree, ROOT / "console" / "dist", dist)
    system.env.update(
        {
            f"DRIFTLINE_CONSOLE__UPSTREAMS__{n.upper().replace('-', '_')}": system.url(n)
            for n in SERVICES
        }
        | {"DRIFTLINE_CONSOLE__DIST_DIR": str(dist)}
    )
    s = ServiceProcess("console", free_port(), system.workdir / "console.log")
    system._spawn(s)
    await system.wait_ready("console")
    return s.url


async def login(world: World, page: Page, op: Operator, *, shot: str | None = None) -> None:
    await page.goto(f"{world.url}/login")
    await page.get_by_label("Tenant").fill(world.tenant.tenant_id)
    await page.get_by_label("User name").fill(op.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("TOTP code").fill(await op.code())
    if shot:
        await screenshot(page, shot)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Fleet")).to_be_visible(timeout=30_000)


async def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    if os.environ.get("DRIFTLINE_CONSOLE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        small(path, DOCS_IMG / f"{name}.png")
    return path


def small(src: Path, dst: Path, limit: int = 200_000) -> None:
    """A PNG under `limit` bytes: the screenshot, palette-quantised and halved until it fits."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    while True:
        buf = io.BytesIO()
        img.quantize(colors=128).save(buf, format="PNG", optimize=True)
        if buf.tell() < limit or img.width < 400:
            dst.write_bytes(buf.getvalue())
            return
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4))


@pytest.fixture(scope="module")
async def world(system: System, receiver: Receiver) -> AsyncIterator[World]:
    await asyncio.to_thread(build_console)
    url = await start_console(system)
    tenant = await Tenant.create(system, "console")
    rng = np.random.default_rng(7)
    for model in MODELS:
        await tenant.register(
            {"id": model, "name": f"{model} (console e2e)", **SPEC}, rows(rng, 1000, False)
        )
        await tenant.add_version(model, "1")
    async with tenant.http("alerting") as c:
        config = {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname", "model"],
                "group_wait_s": 0,
                "group_interval_s": 2,
                "repeat_interval_s": 3600,
            },
            "receivers": [
                {
                    "name": "hook",
                    "type": "webhook",
                    "url": receiver.url,
                    "secrets": [receiver.secret],
                    "format": "alertmanager",
                }
            ],
        }
        r = await c.put("/v1/alerting/config", json=config)
        assert r.status_code == 200, r.text
    ops = {
        name: await make_operator(tenant, name, role)
        for name, role in (("alice", "ml-engineer"), ("bob", "admin"), ("vera", "viewer"))
    }
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        now = time.time()
        w = World(
            system, tenant, url, receiver, browser, ops, t0=(now - 300) // WINDOW_S * WINDOW_S
        )
        try:
            yield w
        finally:
            await browser.close()


def badge(page: Page, model: str) -> Any:
    return page.get_by_test_id(f"fleet-row-{model}")


# --- the tests, in the order a person would work ------------------------------------------


async def test_login_with_password_and_totp(world: World) -> None:
    ctx = await world.browser.new_context(viewport={"width": 1280, "height": 800})
    page = await ctx.new_page()
    try:
        await page.goto(world.url)
        await expect(page).to_have_url(re.compile(r"/login$"), timeout=30_000)
        op = world.ops["alice"]
        await page.get_by_label("Tenant").fill(world.tenant.tenant_id)
        await page.get_by_label("User name").fill(op.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_label("TOTP code").fill("000000" if await op.code() != "000000" else "1")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("alert")).to_be_visible(timeout=30_000)
        assert "/login" in page.url  # a wrong code gets no session
        await screenshot(page, "login-refused")
    finally:
        await ctx.close()
    page = await world.page("alice")  # the right code: the fleet
    await expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    me = await api(page, "GET", "/api/ingestion/v1/auth/me")
    assert me["status"] == 200
    assert me["body"]["role"] == "ml-engineer"
    assert me["body"]["tenant_id"] == world.tenant.tenant_id


async def api(page: Page, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A request from the page itself with its session's token (as the app sends them)."""
    out: dict[str, Any] = await page.evaluate(
        """async ([method, path, body]) => {
            const s = JSON.parse(sessionStorage.getItem("driftline.session") || "null");
            const headers = { Authorization: "Bearer " + (s ? s.accessToken : "") };
            if (body !== null) headers["Content-Type"] = "application/json";
            const r = await fetch(path, {
                method, headers, body: body === null ? undefined : JSON.stringify(body),
            });
            const text = await r.text();
            let parsed = null;
            try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
            return { status: r.status, body: parsed };
        }""",
        [method, path, body],
    )
    return out


async def test_a_drifting_model_turns_red_live(world: World) -> None:
    page = await world.page("alice")
    await page.goto(f"{world.url}/")
    for model in MODELS:
        await expect(badge(page, model)).to_contain_text("no data", timeout=30_000)
    await expect(page.get_by_role("status").filter(has_text="live")).to_be_visible(timeout=30_000)
    await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    await world.send_window(drifted={m: False for m in MODELS})
    for model in MODELS:
        await expect(badge(page, model)).to_contain_text("healthy", timeout=60_000)
    await screenshot(page, "fleet-healthy")
    await world.send_window(drifted={m: True for m in MODELS})
    for model in MODELS:
        await expect(badge(page, model)).to_contain_text("drifting", timeout=60_000)
    assert await page.evaluate("window.__sameDocument === true")  # live, not reloaded
    await screenshot(page, "fleet")


def firing(world: World, model: str, after: int = 0) -> list[dict[str, Any]]:
    """The firing DatasetDrift alerts of `model` in notifications the receiver accepted,
    from its `after`-th attempt on."""
    out = []
    for a in world.receiver.attempts[after:]:
        if a.status != 204 or a.duplicate or not a.payload:
            continue
        for alert in a.payload.get("alerts", []):
            labels = alert.get("labels", {})
            if (
                alert.get("status") == "firing"
                and labels.get("alertname") == "DatasetDrift"
                and labels.get("model") == model
            ):
                out.append(alert)
    return out


async def test_silence_an_alert_and_its_next_notification_is_suppressed(world: World) -> None:
    async def both_notified() -> bool:
        return all(firing(world, m) for m in MODELS)

    await poll(both_notified, timeout=90, what="DatasetDrift notified for both models")
    page = await world.page("alice")
    await page.goto(f"{world.url}/alerts")
    await expect(page.get_by_role("article", name="group to hook").first).to_be_visible(
        timeout=30_000
    )
    await screenshot(page, "alert-center")
    await page.get_by_role("button", name=f"Silence DatasetDrift {MODELS[0]}").click()
    matchers = page.get_by_label("Matchers (one per line)")
    await expect(matchers).to_contain_text(f'model="{MODELS[0]}"', timeout=30_000)
    await expect(matchers).to_contain_text('alertname="DatasetDrift"')
    await page.get_by_label("Comment").fill("retraining planned; quiet until then")
    await screenshot(page, "silence-form")
    mark = len(world.receiver.attempts)
    await page.get_by_role("button", name="Create silence").click()
    expire = page.get_by_role("button", name=re.compile(r"^Expire silence"))
    await expect(expire.first).to_be_visible(timeout=30_000)
    await screenshot(page, "silences")
    made = await api(page, "GET", "/api/alerting/v1/silences")
    assert made["status"] == 200
    (silence,) = [s for s in made["body"] if s["state"] == "active"]
    assert silence["created_by"] == "user:alice"
    assert silence["comment"] == "retraining planned; quiet until then"
    # both models' alerts resolve, then fire again: the control model is notified anew,
    # the silenced one is not
    await world.send_window(drifted={m: False for m in MODELS})
    await world.send_window(drifted={m: True for m in MODELS})

    async def control_notified_again() -> bool:
        return bool(firing(world, MODELS[1], after=mark))

    await poll(control_notified_again, timeout=120, what=f"{MODELS[1]} notified again")
    assert firing(world, MODELS[0], after=mark) == []  # suppressed by the silence
    alerts = await api(page, "GET", "/api/alerting/v1/alerts")
    assert alerts["status"] == 200
    silenced = [
        a
        for a in alerts["body"]
        if a["labels"].get("model") == MODELS[0] and a["labels"].get("alertname") == "DatasetDrift"
    ]
    assert silenced, alerts["body"]  # it fires: only its notification is suppressed


async def test_a_second_user_approves_a_version_the_submitter_may_not(world: World) -> None:
    model = MODELS[0]
    alice = await world.page("alice")
    await alice.goto(f"{world.url}/models/{model}")
    await alice.get_by_label("Version", exact=True).fill("2")
    await alice.get_by_label("Artifact URI").fill(f"s3://models/{model}/2")
    await alice.get_by_label("Artifact SHA-256").fill("ab" * 32)
    await alice.get_by_role("button", name="Submit version").click()
    own = alice.get_by_role("button", name="Approve 2")
    await expect(own).to_be_visible(timeout=30_000)
    await expect(own).to_be_disabled()  # separation of duties, shown
    await expect(alice.get_by_text("another person must approve it")).to_be_visible()
    await screenshot(alice, "model-versions")
    refused = await api(alice, "POST", f"/api/ingestion/v1/models/{model}/versions/2/approve", {})
    assert refused["status"] in (403, 409), refused  # and refused by the API anyway
    assert "may not approve" in str(refused["body"])
    bob = await world.page("bob")
    await bob.goto(f"{world.url}/models/{model}")
    approve = bob.get_by_role("button", name="Approve 2")
    await expect(approve).to_be_enabled(timeout=30_000)
    await approve.click()
    await expect(bob.get_by_role("button", name="Approve 2")).to_have_count(0, timeout=30_000)
    versions = await api(bob, "GET", f"/api/ingestion/v1/models/{model}/versions")
    (v2,) = [v for v in versions["body"] if v["version"] == "2"]
    assert v2["approved_by"] == "user:bob"
    assert v2["submitted_by"] == "user:alice"


async def test_generate_download_and_verify_a_report(world: World, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from driftline_contracts.auditchain import public_key_from_pem
    from driftline_contracts.reportsign import check_bundle

    page = await world.page("bob")  # reports need the audit permission (admin, auditor)
    await page.goto(f"{world.url}/reports")
    today = datetime.now(UTC).date()
    await page.get_by_label("Framework").select_option(label="FDA")
    await page.get_by_label("Period start").fill((today - timedelta(days=1)).isoformat())
    await page.get_by_label("Period end").fill((today + timedelta(days=1)).isoformat())
    await page.get_by_label(re.compile(r"^Model")).select_option(MODELS[0])
    await page.get_by_role("button", name="Generate report").click()
    bundle_button = page.get_by_role("button", name="Download bundle")
    await expect(bundle_button.first).to_be_visible(timeout=240_000)  # progress followed
    async with page.expect_download() as info:
        await bundle_button.first.click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    data = saved.read_bytes()
    key = await api(page, "GET", "/api/compliance-report/v1/reports/public-key")
    assert key["status"] == 200
    check = check_bundle(data, public_key_from_pem(key["body"]["public_key"]))
    assert check.ok, check.problems  # the downloaded bundle verifies with the published key
    assert check.manifest["framework"] == "fda"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        doc = orjson.loads(z.read("report.json"))
    assert doc["tenant_id"] == world.tenant.tenant_id
    # and in the browser: the job's bundle, then the downloaded file and a tampered copy
    await page.get_by_role("button", name="Verify bundle").first.click()
    verdict = page.get_by_role("status").filter(has_text="Verified")
    await expect(verdict.first).to_contain_text(key["body"]["fingerprint"], timeout=30_000)
    await screenshot(page, "reports")
    await page.get_by_label("Report bundle (.zip)").set_input_files(str(saved))
    await expect(verdict).to_have_count(2, timeout=30_000)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as z, zipfile.ZipFile(tampered, "w") as out:
        for item in z.infolist():
            body = z.read(item.filename)
            if item.filename == "report.json":
                body += b" "  # one byte more: its hash and size no longer match
            out.writestr(item, body)
    assert not check_bundle(tampered.read_bytes()).ok
    await page.get_by_label("Report bundle (.zip)").set_input_files(str(tampered))
    failed = page.get_by_role("status").filter(has_text="Verification failed")
    await expect(failed).to_be_visible(timeout=30_000)
    await expect(failed).to_contain_text("report.json")


async def test_a_viewer_cannot_reach_a_write_control(world: World) -> None:
    """Each view as a writer (the control is there) and as a viewer (it is not), once the
    same content has loaded; then the API refuses the viewer anyway."""
    model = MODELS[0]
    views = [
        (f"/models/{model}", "button", "Set stage of 1", "cell", "1"),
        ("/alerts", "button", f"Silence DatasetDrift {model}", "article", "group to hook"),
        ("/alerts/silences", "button", re.compile(r"^Expire silence"), "table", None),
        ("/alerts/rules", "button", "New rule", "table", None),
    ]
    alice, vera = await world.page("alice"), await world.page("vera")
    for path, role, control, anchor_role, anchor in views:
        await alice.goto(f"{world.url}{path}")
        await expect(alice.get_by_role(role, name=control).first).to_be_visible(timeout=30_000)
        await vera.goto(f"{world.url}{path}")
        where = (
            vera.get_by_role(anchor_role, name=anchor) if anchor else vera.get_by_role(anchor_role)
        )
        await expect(where.first).to_be_visible(timeout=30_000)
        assert await vera.get_by_role(role, name=control).count() == 0, path
        for name in ("Create silence", "Save rule", "Submit version", re.compile("^Approve ")):
            assert await vera.get_by_role("button", name=name).count() == 0, (path, name)
        if path == "/alerts":
            await screenshot(vera, "viewer-alerts")
    silence = await api(
        vera,
        "POST",
        "/api/alerting/v1/silences",
        {
            "matchers": [f'model="{model}"'],
            "ends_at": iso(time.time() + 3600),
            "comment": "a viewer tries",
        },
    )
    assert silence["status"] == 403, silence
    approve = await api(vera, "POST", f"/api/ingestion/v1/models/{model}/versions/1/approve", {})
    assert approve["status"] == 403, approve


async def test_the_demo_prints_a_console_login_that_works(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/local/demo_console.py (make demo): a demo operator made with the tenant's admin
    key, its TOTP confirmed; then reused from its file; the printed code logs in."""
    import demo_console  # deploy/local (on the path through harness)

    monkeypatch.setattr(demo_console, "SAVED", tmp_path / "demo-console.json")
    key, tid = world.tenant.api_key, world.tenant.tenant_id
    url = world.system.url("ingestion")
    made = await asyncio.to_thread(demo_console.operator, url, key, tid)
    assert made["username"] == demo_console.USERNAME
    assert await asyncio.to_thread(demo_console.operator, url, key, tid) == made  # reused
    (tmp_path / "demo-console.json").unlink()  # a lost file: password and MFA reset
    again = await asyncio.to_thread(demo_console.operator, url, key, tid)
    assert again["totp_secret"] != made["totp_secret"]
    from rich.console import Console

    out = Console(file=io.StringIO(), width=200)
    demo_console.show(out, url, key, tid)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    code = re.search(r"TOTP code now: (\d{6})", text)
    assert code, text
    assert f"tenant {tid}" in text
    assert demo_console.CONSOLE_URL in text
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post(
            "/v1/auth/login",
            json={
                "tenant": tid,
                "username": demo_console.USERNAME,
                "password": demo_console.PASSWORD,
                "totp": code.group(1),
            },
        )
    assert r.status_code == 200, r.text
    assert r.json()["mfa_enabled"] is True
    assert r.json()["role"] == "admin"


async def test_every_view_renders_for_the_run_and_is_captured(world: World) -> None:
    """The views not exercised above, each with its content for this run (no error state),
    captured for docs/console.md."""
    page = await world.page("bob")
    model = MODELS[0]
    views = [
        (f"/models/{model}/drift", "heading", "Drift per feature over time", "model-drift"),
        (f"/models/{model}/reference", "heading", "Reference profile", "model-reference"),
        (f"/models/{model}/monitoring", "heading", "Monitoring configuration", "model-monitoring"),
        (f"/models/{model}/quality", "heading", "Data quality", "model-quality"),
        (f"/models/{model}/performance", "heading", "Performance", "model-performance"),
        ("/alerts/deliveries", "heading", None, "delivery-log"),
        ("/alerts/rules", "table", None, "rules"),
        ("/platform", "heading", "Service health", "platform"),
    ]
    for path, role, name, shot in views:
        await page.goto(f"{world.url}{path}")
        found = page.get_by_role(role, **({"name": name} if name else {}))
        await expect(found.first).to_be_visible(timeout=30_000)
        if shot == "model-drift":  # from the stored windows (/api/history), not only live ones
            heat = page.get_by_role("img", name=re.compile(r"^Drift per feature over the last"))
            await expect(heat).to_be_visible(timeout=30_000)
        await screenshot(page, shot)
    platform = page.get_by_role("row", name=re.compile("^ingestion"))
    await expect(platform).to_contain_text("ready")
    await page.goto(f"{world.url}/audit")
    await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible(timeout=30_000)
    await page.get_by_role("button", name="Verify chain").click()
    verified = page.get_by_role("status").filter(has_text="The chain verifies")
    await expect(verified).to_be_visible(timeout=60_000)
    await screenshot(page, "audit")
