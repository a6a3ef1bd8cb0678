"""PostgreSQL from Debian's packages, in its own data directory on its own port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .common import (
    DATA,
    LOGS,
    PORTS,
    StackError,
    apt_install,
    fail_with_log,
    pid_alive,
    run,
    wait_for,
)

USER = os.environ.get("DRIFTLINE_POSTGRES__USER", "driftline")
PASSWORD = os.environ.get("DRIFTLINE_POSTGRES__PASSWORD", "driftline-dev")
DATABASE = os.environ.get("DRIFTLINE_POSTGRES__DATABASE", "driftline")
AUDIT_WRITER = os.environ.get("DRIFTLINE_AUDIT__WRITER_USER", "driftline_audit")
AUDIT_WRITER_PASSWORD = os.environ.get("DRIFTLINE_AUDIT__WRITER_PASSWORD", "driftline-audit-dev")


def bindir() -> Path:
    for pattern in ("/usr/lib/postgresql/*/bin",):
        found = sorted(glob.glob(pattern), key=lambda p: int(p.split("/")[-2]))
        if found:
            return Path(found[-1])
    apt_install("postgresql")
    return bindir()


def as_owner() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        run(["useradd", "--system", "--no-create-home", "postgres"])
    return ["runuser", "-u", "postgres", "--"]


class Postgres:
    name = "postgres"

    def __init__(self) -> None:
        self.datadir = DATA / "postgres"
        self.sockdir = DATA / "postgres-sock"
        self.logfile = LOGS / "postgres.log"

    @property
    def port(self) -> int:
        return PORTS["postgres"]

    def pid(self) -> int | None:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def ready(self) -> bool:
        isready = shutil.which("pg_isready") or str(bindir() / "pg_isready")
        return (
            subprocess.run(
                [isready, "-q", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            ).returncode
            == 0
        )

    def _chown(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            for p in paths:
                shutil.chown(p, "postgres", "postgres")

    def start(self) -> None:
        bins = bindir()
        owner = as_owner()
        for d in (self.datadir.parent, LOGS, self.sockdir):
            d.mkdir(parents=True, exist_ok=True)
        self._chown(self.sockdir)
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._chown(self.datadir)
            pwfile = self.datadir.parent / ".pgpass-init"
            pwfile.write_text(PASSWORD + "\n")
            self._chown(pwfile)
            try:
                run(
                    [
                        *owner,
                        str(bins / "initdb"),
                        "-D",
                        str(self.datadir),
                        "-U",
                        "postgres",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        f"--pwfile={pwfile}",
                    ]
                )
            finally:
                pwfile.unlink(missing_ok=True)
        self.logfile.touch()
        self._chown(self.logfile)
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockdir} "
            "-c fsync=on -c max_connections=200 -c shared_buffers=128MB"
        )
        run(
            [
                *owner,
                str(bins / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if not wait_for(self.ready, 30):
            raise fail_with_log(self.name, self.logfile, "pg_isready never succeeded")
        self._ensure_role()

    def _psql(self, sql: str, db: str = "postgres") -> str:
        psql = str(bindir() / "psql")
        out = subprocess.run(
            [
                *as_owner(),
                psql,
                "-h",
                str(self.sockdir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                db,
                "-tAc",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise StackError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def _ensure_role(self) -> None:
        pw = PASSWORD.replace("'", "''")
        if self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{USER}'") != "1":
            self._psql(f"CREATE ROLE \"{USER}\" LOGIN CREATEDB PASSWORD '{pw}'")
        # the audit service writes with its own role: SELECT and INSERT on its tables only
        # (granted by the schema owner at the service's start), never UPDATE or DELETE
        if self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{AUDIT_WRITER}'") != "1":
            apw = AUDIT_WRITER_PASSWORD.replace("'", "''")
            self._psql(f"CREATE ROLE \"{AUDIT_WRITER}\" LOGIN PASSWORD '{apw}'")
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
            self._psql(f'CREATE DATABASE "{DATABASE}" OWNER "{USER}"')

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        run(
            [
                *as_owner(),
                str(bindir() / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ]
        )
        return True
