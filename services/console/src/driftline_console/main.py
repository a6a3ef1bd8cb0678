"""Process entry point: read settings, configure logging, serve."""

from __future__ import annotations

from driftline_core.observability.logging import configure_logging
from driftline_core.service import serve

from .app import SERVICE, build, create_app
from .settings import ConsoleSettings


def main() -> None:
    settings = ConsoleSettings(service_name=SERVICE)
    configure_logging(SERVICE, settings.log_level, json=settings.log_json)
    serve(create_app(settings, build(settings)), settings)


if __name__ == "__main__":
    main()
