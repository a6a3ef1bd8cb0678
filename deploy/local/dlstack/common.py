"""Paths, ports, process and download helpers shared by every server launcher."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STACK = Path(os.environ.get("DRIFTLINE_STACK_DIR", ROOT / ".stack"))
CACHE = Path(os.environ.get("DRIFTLINE_CACHE_DIR", STACK / "cache"))
DATA = STACK / "data"
LOGS = STACK / "logs"
RUN = STACK / "run"


def port(name: str, default: int) -> int:
    return int(os.environ.get(f"DRIFTLINE_STACK_{name.upper()}_PORT", default))


PORTS = {
    "kafka": port("kafka", 19092),
    "kafka_controller": port("kafka_controller", 19093),
    "kafka_tls": port("kafka_tls", 19094),  # SASL_SSL (SCRAM) with the local test CA
    "postgres": port("postgres", 15432),
    "redis": port("redis", 16379),
    "influxdb": port("influxdb", 18086),
    "influxdb_rpc": port("influxdb_rpc", 18088),
    "prometheus": port("prometheus", 19090),
}


class StackError(RuntimeError):
    """A server could not be installed or started; the message says why."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def port_open(p: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, p)) == 0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of pid and its children, in MiB."""
    if not pid_alive(pid):
        return None
    total = 0
    for p in [pid, *children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().split(")")[-1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
                out.extend(children(int(d.name)))
    return out


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    quiet_log: Path | None = None,
) -> None:
    """Run a setup command; on failure raise with the tail of its output."""
    merged = {**os.environ, **(env or {})}
    out = subprocess.run(cmd, env=merged, cwd=cwd, capture_output=True, text=True)
    if quiet_log:
        quiet_log.parent.mkdir(parents=True, exist_ok=True)
        quiet_log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        text = (out.stdout + out.stderr).strip().splitlines()[-30:]
        raise StackError(f"command failed ({out.returncode}): {' '.join(cmd)}\n" + "\n".join(text))


def apt_install(*packages: str) -> None:
    """Install Debian packages (the machine's own registry); needs root."""
    if not shutil.which("apt-get"):
        raise StackError(f"need {packages} but apt-get is not available; install them by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    log(f"apt-get install {' '.join(packages)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    stamp = CACHE / "apt-updated"
    if not stamp.exists() or time.time() - stamp.stat().st_mtime > 86400:
        run([*sudo, "apt-get", "update", "-qq"], env=env)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)


def which_or_install(binary: str, package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    for d in extra_dirs:
        cand = Path(d) / binary
        if cand.exists():
            return str(cand)
    found = shutil.which(binary)
    if found:
        return found
    apt_install(package)
    for d in extra_dirs:
        cand = Path(d) / binary
        if cand.exists():
            return str(cand)
    found = shutil.which(binary)
    if not found:
        raise StackError(f"{binary} not found after installing {package}")
    return found


@dataclass
class Proc:
    """A server process we spawned: pid file, log file, clean stop by process group."""

    name: str
    pidfile: Path = field(init=False)
    logfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pidfile = RUN / f"{self.name}.pid"
        self.logfile = LOGS / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def spawn(
        self, cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        RUN.mkdir(parents=True, exist_ok=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pidfile.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the process group, then SIGKILL what is left. True if something ran."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        kill_group(pid, signal.SIGTERM)
        if not wait_for(lambda: not pid_alive(pid), timeout):
            kill_group(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 5)
        self.pidfile.unlink(missing_ok=True)
        return True


def kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def fail_with_log(name: str, logfile: Path, why: str) -> StackError:
    return StackError(
        f"{name} failed to start: {why}\n--- last lines of {logfile} ---\n{tail(logfile)}"
    )
