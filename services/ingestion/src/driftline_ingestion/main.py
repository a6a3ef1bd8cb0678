"""Process entry point: read settings, configure logging, serve."""

from __future__ import annotations

import gc

from driftline_core.observability.logging import configure_logging
from driftline_core.service import serve

from .app import SERVICE, build, create_app
from .settings import IngestionSettings

# Young-generation collections every 20,000 allocations instead of 700: a batch of 1,000
# events allocates tens of thousands of containers that live until its request answers,
# and at the default each of them was scanned many times over (docs/performance.md).
GC_THRESHOLD = (20_000, 20, 20)


def main() -> None:
    settings = IngestionSettings()
    configure_logging(SERVICE, settings.log_level, json=settings.log_json)
    app = create_app(settings, build(settings))
    # what the imports and the wiring made lives as long as the process: never scan it again
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    serve(app, settings)


if __name__ == "__main__":
    main()
