"""`python deploy/local/stack.py up|down|status|install|services-up|services-down`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Protocol

from .common import STACK, StackError, log, port_open, rss_mib
from .influxdb import InfluxDB
from .kafka import Kafka
from .postgres import Postgres
from .prometheus import Prometheus
from .redis import Redis
from .services import SERVICES, start_services


class Server(Protocol):
    name: str

    @property
    def port(self) -> int: ...
    def pid(self) -> int | None: ...
    def ready(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> bool: ...


def servers(with_prometheus: bool = True) -> list[Server]:
    out: list[Server] = [Postgres(), Redis(), InfluxDB(), Kafka()]
    if with_prometheus:
        out.append(Prometheus())
    return out


def up(targets: list[Server]) -> dict[str, float]:
    """Start what is not running; reuse what is. Returns seconds spent per server."""
    times: dict[str, float] = {}
    for s in targets:
        t0 = time.monotonic()
        if s.pid() is not None and s.ready():
            log(f"{s.name:<18} already running (pid {s.pid()}, port {s.port})")
            times[s.name] = 0.0
            continue
        if s.pid() is not None:
            log(f"{s.name:<18} pid {s.pid()} is not ready; restarting it")
            s.stop()
        elif port_open(s.port):
            raise StackError(
                f"{s.name}: port {s.port} is already in use by a process this stack did not "
                f"start; stop it or choose another port with "
                f"DRIFTLINE_STACK_{s.name.upper().replace('-', '_')}_PORT"
            )
        s.start()
        times[s.name] = round(time.monotonic() - t0, 2)
        log(f"{s.name:<18} ready in {times[s.name]:.1f} s (pid {s.pid()}, port {s.port})")
    return times


def down(targets: list[Server]) -> None:
    for s in reversed(targets):
        if s.stop():
            log(f"{s.name:<18} stopped")


def status(targets: list[Server]) -> list[dict[str, object]]:
    rows = []
    for s in targets:
        pid = s.pid()
        rss = rss_mib(pid)
        rows.append(
            {
                "name": s.name,
                "port": s.port,
                "pid": pid,
                "ready": bool(pid) and s.ready(),
                "rss_mib": round(rss, 1) if rss is not None else None,
            }
        )
    return rows


def leftovers() -> list[str]:
    """Processes still running from this stack: by pid file, or by a command line that
    names the stack's folder."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(STACK) in cmd and "stack.py" not in cmd:
            found.append(f"{d.name}: {cmd[:120]}")
    for s in [*servers(), *SERVICES]:
        if s.pid() is not None:
            found.append(f"{s.name} (pid {s.pid()})")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stack", description=__doc__)
    ap.add_argument(
        "command",
        choices=[
            "install",
            "up",
            "down",
            "status",
            "services-up",
            "services-down",
            "all-down",
            "check-down",
            "start",
            "stop",
        ],
    )
    ap.add_argument("name", nargs="?", help="one server, for start and stop")
    ap.add_argument("--json", action="store_true", help="status/up as JSON")
    ap.add_argument("--no-prometheus", action="store_true")
    args = ap.parse_args(argv)
    stack = servers(with_prometheus=not args.no_prometheus)
    svcs: list[Server] = list(SERVICES)
    try:
        if args.command == "install":
            from . import influxdb, kafka, postgres

            kafka.install()
            influxdb.install()
            postgres.bindir()
        elif args.command == "up":
            t0 = time.monotonic()
            times = up(stack)
            total = round(time.monotonic() - t0, 2)
            log(f"stack ready in {total:.1f} s; data and logs under {STACK}")
            if args.json:
                print(json.dumps({"seconds": times, "total_s": total}))
        elif args.command == "services-up":
            t0 = time.monotonic()
            started = start_services(SERVICES)
            log(
                f"services ready in {time.monotonic() - t0:.1f} s "
                f"(started: {', '.join(started) or 'none, all were running'})"
            )
        elif args.command == "services-down":
            down(svcs)
        elif args.command == "down":
            down(stack)
        elif args.command == "all-down":
            down(svcs)
            down(servers(with_prometheus=True))
        elif args.command in ("start", "stop"):
            chosen = [s for s in servers() if s.name == args.name]
            if not chosen:
                raise StackError(
                    f"{args.command} needs a server: {', '.join(s.name for s in servers())}"
                )
            up(chosen) if args.command == "start" else down(chosen)
        elif args.command == "check-down":
            left = leftovers()
            if left:
                raise StackError("processes left behind: " + "; ".join(left))
            log("no stack or service process is left")
        elif args.command == "status":
            rows = status(stack) + status(svcs)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'server':<18} {'port':>6} {'pid':>8} {'ready':>6} {'rss MiB':>8}")
                for r in rows:
                    print(
                        f"{r['name']!s:<18} {r['port']!s:>6} {r['pid'] or '-'!s:>8} "
                        f"{'yes' if r['ready'] else 'no':>6} {r['rss_mib'] or '-'!s:>8}"
                    )
    except StackError as e:
        print(f"[stack] ERROR: {e}", file=sys.stderr, flush=True)
        return 1
    return 0
