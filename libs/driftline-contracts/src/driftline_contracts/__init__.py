"""What a Driftline client needs without the platform's server stack: the offline verifiers
of audit exports (`auditchain`) and of signed compliance reports (`reportsign`). It depends
on orjson and cryptography only, so the SDK (`pip install driftline`) stays small;
driftline-core re-exports both modules under their old names for the services."""
