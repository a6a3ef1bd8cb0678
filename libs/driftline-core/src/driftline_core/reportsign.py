"""Moved to `driftline_contracts.reportsign` (decision 40), so the SDK verifies offline without
the server stack; this name stays for the services. The same module objects: classes and
functions here are those of driftline_contracts.reportsign."""

from driftline_contracts.reportsign import *  # noqa: F403
from driftline_contracts.reportsign import __all__ as __all__
