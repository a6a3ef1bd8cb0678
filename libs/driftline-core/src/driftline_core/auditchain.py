"""Moved to `driftline_contracts.auditchain` (decision 40), so the SDK verifies offline without
the server stack; this name stays for the services. The same module objects: classes and
functions here are those of driftline_contracts.auditchain."""

from driftline_contracts.auditchain import *  # noqa: F403
from driftline_contracts.auditchain import __all__ as __all__
