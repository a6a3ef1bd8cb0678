"""`driftline-admin`: the deployment's one-off jobs (the Helm chart's pre-install/pre-upgrade
hook, the compose init job): create the catalogue's topics, apply services' migrations.

    driftline-admin topics [--partitions N]     create the catalogue's missing topics
    driftline-admin migrate SERVICE [SERVICE ...]
                                                apply each service's migrations (its schema and
                                                the shared keyring schema), exactly as the
                                                service does at start, then exit
    driftline-admin init [SERVICE ...]          topics, then migrate (default: every service
                                                installed in this environment)

Settings come from `DRIFTLINE_*` like every process. A migration needs the service's own
settings class (the audit service grants its writer role after migrating), so `migrate`
imports the service's package: run it where that service is installed (its image).
Exit status 0 on success, 1 with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaConnectionError

from .db.pool import Database
from .errors import ConfigurationError, UnavailableError
from .events.catalogue import TOPICS
from .kafka.admin import ensure_topics
from .service import start_all
from .settings import DriftlineSettings

__all__ = ["SERVICES", "databases_of", "main", "migrate", "package_of", "settings_class", "topics"]

log = logging.getLogger("driftline.admin")

SERVICES = ("ingestion", "drift-detection", "alerting", "audit", "compliance-report")


def package_of(service: str) -> str:
    if service not in SERVICES:
        raise ConfigurationError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return "driftline_" + service.replace("-", "_")


def installed_services() -> list[str]:
    return [s for s in SERVICES if importlib.util.find_spec(package_of(s)) is not None]


def settings_class(package: str) -> type[DriftlineSettings]:
    module = importlib.import_module(f"{package}.settings")
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, DriftlineSettings)
        and obj is not DriftlineSettings
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise ConfigurationError(f"{package}.settings defines {len(found)} settings classes")
    return found[0]


def databases_of(deps: Any, _depth: int = 0) -> list[Database]:
    """The Database adapters in a service's deps (dataclasses nested two levels: the core
    deps, the keyring), in field order, each once."""
    out: list[Database] = []
    if _depth > 3 or not dataclasses.is_dataclass(deps) or isinstance(deps, type):
        return out
    for f in dataclasses.fields(deps):
        value = getattr(deps, f.name)
        if isinstance(value, Database):
            out.append(value)
        else:
            out.extend(databases_of(value, _depth + 1))
    unique: list[Database] = []
    for d in out:
        if all(d is not u for u in unique):
            unique.append(d)
    return unique


async def migrate(service: str) -> dict[str, list[int]]:
    """Apply one service's migrations the way its start does (same Database objects, same
    after-migration grants); returns the versions applied now, by schema."""
    package = package_of(service)
    settings_cls = settings_class(package)
    app = importlib.import_module(f"{package}.app")
    settings = settings_cls(service_name=service)
    dbs = databases_of(app.build(settings))
    if not dbs:
        raise ConfigurationError(f"{service} has no database to migrate")
    await start_all(dbs, timeout_s=settings.startup_timeout_s)
    try:
        return {d.schema: d.applied_migrations for d in dbs}
    finally:
        for d in dbs:
            await d.stop()


async def topics(partitions: int | None = None) -> list[str]:
    settings = DriftlineSettings(service_name="admin")

    class _Topics:
        created: list[str] = []

        async def start(self) -> None:
            try:
                self.created = await ensure_topics(settings.kafka, TOPICS, partitions=partitions)
            except KafkaConnectionError as e:  # brokers not up yet: retried until the timeout
                raise UnavailableError(
                    f"Kafka unreachable at {settings.kafka.bootstrap_servers}: {e}"
                ) from e

        async def stop(self) -> None:
            return None

    job = _Topics()
    await start_all([job], timeout_s=settings.startup_timeout_s)
    return job.created


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driftline-admin", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("topics", help="create the catalogue's missing topics")
    t.add_argument("--partitions", type=int, default=None, help="override every topic's count")
    m = sub.add_parser("migrate", help="apply services' migrations")
    m.add_argument("services", nargs="+", choices=SERVICES)
    i = sub.add_parser("init", help="topics, then migrations")
    i.add_argument("services", nargs="*", help=f"default: the installed ones of {SERVICES}")
    i.add_argument("--partitions", type=int, default=None)
    return p


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _run(args: argparse.Namespace) -> None:
    if args.command in ("topics", "init"):
        if args.partitions is not None and args.partitions < 1:
            raise ConfigurationError("--partitions must be at least 1")
        created = await topics(args.partitions)
        _say(f"topics: {len(TOPICS)} in the catalogue, created {len(created)}: {created}")
    if args.command in ("migrate", "init"):
        services = list(args.services) or installed_services()
        for s in services:
            package_of(s)  # an unknown name is refused before anything is migrated
        if not services:
            raise ConfigurationError("no Driftline service is installed here to migrate")
        for s in services:
            applied = await migrate(s)
            _say(f"migrations of {s}: applied now {applied}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(_run(args))
    except Exception as e:  # one clear line for the operator (kubectl logs of the hook job)
        sys.stderr.write(f"driftline-admin {args.command}: {type(e).__name__}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
