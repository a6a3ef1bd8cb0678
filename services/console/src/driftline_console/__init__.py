"""The Driftline console service: serves the single-page app (console/dist) with a fallback
to index.html, reverse-proxies each service's API under /api/<service>/ (docs/console.md),
and streams the caller's tenant's result records as Server-Sent Events (/api/live)."""
