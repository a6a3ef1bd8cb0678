"""The Driftline services themselves, run as local processes from the project's venv."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass

from .common import ROOT, Proc, StackError, fail_with_log, port, wait_for


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    env: tuple[tuple[str, str], ...] = ()  # added to the process's environment

    @property
    def proc(self) -> Proc:
        return Proc(f"svc-{self.name}")

    def pid(self) -> int | None:
        return self.proc.pid()

    def ready(self) -> bool:
        return self.probe("/readyz") == 200

    def probe(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except OSError:
            return 0

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        exe = ROOT / ".venv" / "bin" / f"driftline-{self.name}"
        if not exe.exists():
            raise StackError(f"{exe} is missing: run `make setup` first")
        env = {
            "DRIFTLINE_HTTP__PORT": str(self.port),
            "DRIFTLINE_SERVICE_NAME": self.name,
            # the demo's last window is reported 10 s after its stream stops
            "DRIFTLINE_DRIFT__IDLE_CLOSE_S": os.environ.get("DRIFTLINE_DRIFT__IDLE_CLOSE_S", "10"),
            **dict(self.env),
        }

        self.proc.spawn([str(exe)], env=env, cwd=ROOT)

    def wait_ready(self) -> None:
        if not wait_for(lambda: self.probe("/healthz") == 200 or self.pid() is None, 60):
            raise fail_with_log(self.name, self.proc.logfile, "/healthz never answered")
        if self.pid() is None:
            raise fail_with_log(self.name, self.proc.logfile, "process exited")
        timeout = float(os.environ.get("DRIFTLINE_STACK_READY_TIMEOUT", "60"))
        if not wait_for(self.ready, timeout):
            raise fail_with_log(self.name, self.proc.logfile, "/readyz did not turn 200")

    def stop(self) -> bool:
        return self.proc.stop(timeout=15)


def start_services(services: list[Service]) -> list[str]:
    """Start the services that are not running, all at once, then wait for each."""
    started = []
    for s in services:
        if s.pid() is None:
            s.spawn()
            started.append(s.name)
    for s in services:
        s.wait_ready()
    return started


APIS = [
    Service("ingestion", port("ingestion", 8101)),
    Service("drift-detection", port("drift_detection", 8102)),
    Service("alerting", port("alerting", 8103)),
    Service("audit", port("audit", 8104)),
    Service("compliance-report", port("compliance_report", 8105)),
]
# the web console (services/console): console/dist, the proxy to the APIs above, /api/live
CONSOLE = Service(
    "console",
    port("console", 8106),
    env=tuple(
        (
            f"DRIFTLINE_CONSOLE__UPSTREAMS__{s.name.upper().replace('-', '_')}",
            f"http://127.0.0.1:{s.port}",
        )
        for s in APIS
    ),
)
SERVICES = [*APIS, CONSOLE]
