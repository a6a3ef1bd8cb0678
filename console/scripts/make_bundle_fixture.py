"""Writes src/reports/fixtures/bundle.json: a report bundle signed by the Python signer
(driftline_contracts.reportsign, as the compliance-report service signs), base64, with its
public key, for the console's in-browser verification test (src/reports/verify.test.ts).

    .venv/bin/python console/scripts/make_bundle_fixture.py

The key is derived from a fixed seed (test only). The manifest carries, besides the
service's own fields, a string with non-ASCII, control and quote characters and numbers
in orjson's spelling, so the test checks the browser rebuilds the signed bytes exactly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from driftline_contracts.auditchain import public_key_pem
from driftline_contracts.reportsign import bundle, check_bundle, key_fingerprint, sign_manifest

OUT = Path(__file__).resolve().parents[1] / "src" / "reports" / "fixtures" / "bundle.json"


def main() -> None:
    seed = hashlib.sha256(b"driftline console fixture").digest()
    key = Ed25519PrivateKey.from_private_bytes(seed)
    files = {
        "report.json": json.dumps({"framework": "gdpr", "findings": ["ok"]}).encode(),
        "report.html": "<!doctype html><h1>GDPR report — Zürich</h1>".encode(),
        "report.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n",
    }
    meta = {
        "report_id": "7d3f0a52-8c1e-4d7a-9a55-2b1f3c4d5e6f",
        "tenant_id": "acme",
        "framework": "gdpr",
        "period_start": "2026-11-01T00:00:00+00:00",
        "period_end": "2026-12-01T00:00:00+00:00",
        "model_id": None,
        "generated_at": "2026-12-03T10:00:00.123456+00:00",
        "note": 'Zürich \u0001\t"quoted" \\ / 😀 \u2028',
        "figures": {"share": 0.1, "big": 1e20, "tiny": 1.5e-7, "whole": 1.0, "zeta": 3},
    }
    manifest = sign_manifest(key, "fixture-key", meta, files)
    data = bundle(manifest, files)
    pub = key.public_key()
    assert check_bundle(data, pub).ok  # the Python verifier accepts what it wrote
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "bundle_base64": base64.b64encode(data).decode(),
                "public_key": public_key_pem(pub),
                "fingerprint": key_fingerprint(pub),
                "made_by": "console/scripts/make_bundle_fixture.py",
            },
            indent=1,
        )
        + "\n"
    )
    sys.stdout.write(f"wrote {OUT}\n")


if __name__ == "__main__":
    main()
