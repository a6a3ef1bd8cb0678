"""Signed report bundles: one definition shared by the compliance-report service (which
signs) and `driftline report verify FILE` (which checks offline, with no service and no key
but the signer's public key).

A bundle is a zip of the report's files (`report.json`, `report.html`, `report.pdf`) and
`manifest.json`: the SHA-256 and size of each file, what the report is (tenant, framework,
period, generation time), and an Ed25519 signature over the canonical JSON (sorted keys, no
whitespace) of every manifest field but the signature and the public key.

A file changed, added, removed or renamed, or a manifest field edited, fails verification.
A single file can be checked against a manifest taken out of its bundle.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .auditchain import public_key_from_pem, public_key_pem

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "BundleCheck",
    "bundle",
    "check_bundle",
    "check_file",
    "key_fingerprint",
    "sign_manifest",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "driftline-report-manifest/1"
_UNSIGNED = ("signature", "public_key")


def _signed_bytes(manifest: Mapping[str, Any]) -> bytes:
    return orjson.dumps(
        {k: v for k, v in manifest.items() if k not in _UNSIGNED}, option=orjson.OPT_SORT_KEYS
    )


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the PEM, first 16 hex digits: what an operator compares by eye."""
    return hashlib.sha256(public_key_pem(key).encode()).hexdigest()[:16]


def sign_manifest(
    key: Ed25519PrivateKey, key_id: str, meta: Mapping[str, Any], files: Mapping[str, bytes]
) -> dict[str, Any]:
    """The signed manifest of `files` (name -> bytes) described by `meta`."""
    manifest: dict[str, Any] = {
        **meta,
        "format": MANIFEST_FORMAT,
        "key_id": key_id,
        "files": [
            {"name": n, "sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)}
            for n, b in sorted(files.items())
        ],
    }
    manifest["signature"] = base64.b64encode(key.sign(_signed_bytes(manifest))).decode()
    manifest["public_key"] = public_key_pem(key.public_key())
    return manifest


def bundle(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> bytes:
    """The zip a user downloads: the files and their manifest."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            z.writestr(name, files[name])
        z.writestr(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return buf.getvalue()


@dataclass
class BundleCheck:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    embedded_key: bool = True  # checked against the key inside the manifest, not one given

    def fail(self, why: str) -> None:
        self.ok = False
        self.problems.append(why)


def _check_signature(
    manifest: Mapping[str, Any], trusted: Ed25519PublicKey | None, out: BundleCheck
) -> None:
    if manifest.get("format") != MANIFEST_FORMAT:
        out.fail(f"not a Driftline report manifest (format {manifest.get('format')!r})")
        return
    try:
        key = trusted or public_key_from_pem(str(manifest["public_key"]))
        out.embedded_key = trusted is None
        out.fingerprint = key_fingerprint(key)
        key.verify(base64.b64decode(str(manifest["signature"])), _signed_bytes(manifest))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        out.fail("the manifest's signature is not valid for its content and this key")


def check_bundle(data: bytes, trusted: Ed25519PublicKey | None = None) -> BundleCheck:
    """Check a bundle: its manifest's signature, then every file against the manifest."""
    out = BundleCheck()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if MANIFEST not in names:
                out.fail("the bundle has no manifest.json")
                return out
            manifest = orjson.loads(z.read(MANIFEST))
            contents = {n: z.read(n) for n in names - {MANIFEST}}
    except (zipfile.BadZipFile, orjson.JSONDecodeError, OSError) as e:
        out.fail(f"not a readable report bundle: {e}")
        return out
    out.manifest = manifest
    _check_signature(manifest, trusted, out)
    listed = {f["name"]: f for f in manifest.get("files", [])}
    for name in sorted(set(listed) - set(contents)):
        out.fail(f"{name}: listed in the manifest but missing from the bundle")
    for name in sorted(set(contents) - set(listed)):
        out.fail(f"{name}: in the bundle but not in the manifest")
    for name in sorted(set(contents) & set(listed)):
        _compare(name, contents[name], listed[name], out)
    return out


def check_file(
    name: str, data: bytes, manifest: Mapping[str, Any], trusted: Ed25519PublicKey | None = None
) -> BundleCheck:
    """Check one file (by its name in the manifest) against a manifest."""
    out = BundleCheck(manifest=dict(manifest))
    _check_signature(manifest, trusted, out)
    listed = {f["name"]: f for f in manifest.get("files", [])}
    if name not in listed:
        out.fail(f"{name}: not in the manifest (it lists {', '.join(sorted(listed))})")
    else:
        _compare(name, data, listed[name], out)
    return out


def _compare(name: str, data: bytes, entry: Mapping[str, Any], out: BundleCheck) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256") or len(data) != entry.get("bytes"):
        out.fail(
            f"{name}: SHA-256 {digest[:16]}… ({len(data)} bytes) differs from the manifest's "
            f"{str(entry.get('sha256'))[:16]}… ({entry.get('bytes')} bytes)"
        )
