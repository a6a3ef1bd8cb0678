"""`pip install driftline` into an empty virtual environment: the SDK's wheel (and the
contracts' wheel it needs) built with uv, its dependencies pinned from the workspace's
uv.lock (exported as pylock.toml) and installed offline from uv's cache. What it brings is
listed and counted; none of the server stack comes along."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
UV = ROOT / ".stack/cache/tools/bin/uv"
BOUND = 30  # packages, the SDK's own two included (the SDK with driftline-core brought 59)
SERVER_STACK = {"fastapi", "uvicorn", "asyncpg", "argon2-cffi", "qrcode", "aiokafka", "redis"}


def uv(*args: str) -> str:
    env = {**os.environ, "UV_CACHE_DIR": str(ROOT / ".stack/cache/uv")}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(UV), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(600)
def test_the_sdk_wheel_installs_into_an_empty_venv_with_few_packages(tmp_path):
    if not UV.exists():
        pytest.skip("uv is installed by deploy/local/bootstrap.sh")
    dist = tmp_path / "dist"
    for lib in ("libs/driftline-sdk", "libs/driftline-contracts"):
        uv("build", "--offline", "--wheel", "--out-dir", str(dist), lib, "-q")
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["driftline", "driftline_contracts"]
    lock = tmp_path / "pylock.toml"
    uv("export", "--frozen", "--package", "driftline", "--no-dev", "--no-emit-workspace",
       "--format", "pylock.toml", "-o", str(lock), "-q")  # fmt: skip
    venv = tmp_path / "venv"
    uv("venv", "-q", "--python", sys.executable, str(venv))
    py = str(venv / "bin/python")
    assert json.loads(uv("pip", "list", "--python", py, "--format", "json")) == []
    uv("pip", "install", "--offline", "--python", py, "-r", str(lock), "-q")
    uv("pip", "install", "--offline", "--no-deps", "--python", py, *map(str, dist.glob("*.whl")))
    uv("pip", "check", "--python", py)  # every requirement of the wheels is met
    names = sorted(
        p["name"] for p in json.loads(uv("pip", "list", "--python", py, "--format", "json"))
    )
    print(f"\n{len(names)} packages: {', '.join(names)}")
    assert "driftline" in names
    assert "httpx" in names
    assert len(names) <= BOUND, names
    assert SERVER_STACK.isdisjoint(names)
    assert "driftline-core" not in names
    probe = subprocess.run(
        [py, "-c", "import sys, driftline; from driftline import Client; c = Client('http://x');"
         " print(driftline.__version__, sorted(m for m in ('fastapi', 'driftline_core', "
         "'numpy') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["0.1.0", "[]"]
    junk = tmp_path / "junk.txt"
    junk.write_text("not a report")
    out = subprocess.run(
        [str(venv / "bin/driftline"), "report", "verify", str(junk)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "is not a Driftline report bundle" in out.stdout
