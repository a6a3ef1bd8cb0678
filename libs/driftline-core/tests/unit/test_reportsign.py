"""Signed report bundles: intact passes; any changed byte, file or manifest field fails."""

from __future__ import annotations

import io
import zipfile

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_core.reportsign import MANIFEST, bundle, check_bundle, check_file, sign_manifest

KEY = Ed25519PrivateKey.from_private_bytes(b"k" * 32)
FILES = {"report.json": b'{"a": 1}', "report.html": b"<p>hi</p>", "report.pdf": b"%PDF-1.7 x"}
META = {"report_id": "r1", "tenant_id": "t1", "framework": "sox"}


def _rezip(data: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    edit(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return buf.getvalue()


def _signed() -> bytes:
    return bundle(sign_manifest(KEY, "k1", META, FILES), FILES)


def test_intact_bundle_passes_with_embedded_and_trusted_key() -> None:
    got = check_bundle(_signed())
    assert got.ok
    assert got.problems == []
    assert got.embedded_key
    trusted = check_bundle(_signed(), KEY.public_key())
    assert trusted.ok
    assert not trusted.embedded_key
    assert [f["name"] for f in got.manifest["files"]] == sorted(FILES)


def test_one_changed_byte_fails_and_names_the_file() -> None:
    def flip(files: dict[str, bytes]) -> None:
        b = bytearray(files["report.pdf"])
        b[-1] ^= 1
        files["report.pdf"] = bytes(b)

    got = check_bundle(_rezip(_signed(), flip))
    assert not got.ok
    assert len(got.problems) == 1
    assert got.problems[0].startswith("report.pdf: SHA-256")


def test_added_removed_file_and_edited_manifest_fail() -> None:
    added = check_bundle(_rezip(_signed(), lambda f: f.update({"extra.txt": b"x"})))
    assert added.problems == ["extra.txt: in the bundle but not in the manifest"]
    removed = check_bundle(_rezip(_signed(), lambda f: f.pop("report.html")))
    assert removed.problems == ["report.html: listed in the manifest but missing from the bundle"]

    def edit(files: dict[str, bytes]) -> None:
        m = orjson.loads(files[MANIFEST])
        m["tenant_id"] = "t2"
        files[MANIFEST] = orjson.dumps(m)

    edited = check_bundle(_rezip(_signed(), edit))
    assert not edited.ok
    assert "signature is not valid" in edited.problems[0]


def test_another_key_is_refused_and_single_files_check() -> None:
    other = Ed25519PrivateKey.from_private_bytes(b"o" * 32).public_key()
    assert not check_bundle(_signed(), other).ok
    manifest = sign_manifest(KEY, "k1", META, FILES)
    assert check_file("report.html", FILES["report.html"], manifest).ok
    assert not check_file("report.html", b"<p>hi!</p>", manifest).ok
    assert not check_file("nope.txt", b"", manifest).ok
    assert not check_bundle(b"not a zip").ok
