"""The audit trail's hash chain and signed checkpoints: one definition shared by the audit
service (which writes and verifies) and `driftline audit verify FILE` (which verifies an
export offline, with no database and no keys but the checkpoint public key).

Each tenant has its own chain. An entry's hash is SHA-256 over the canonical JSON (sorted
keys, no spaces, UTF-8) of its fields, which include the previous entry's hash and its
sequence number. The payload is stored encrypted, and the hash covers the ciphertext, so
the chain verifies without the tenant's keys (and still verifies after crypto-shredding).

A checkpoint is an Ed25519 signature over (tenant, seq, hash, time) of the chain's head.
Changing, deleting, swapping or inserting a row breaks the chain at that row; removing the
tail is caught by a checkpoint that names a sequence number past the end, or a hash the
chain no longer has.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "DEV_CHECKPOINT_SEED",
    "ENTRY_FIELDS",
    "GENESIS",
    "Break",
    "Segment",
    "Verification",
    "canonical",
    "entry_hash",
    "join",
    "public_key_from_pem",
    "public_key_pem",
    "sign_checkpoint",
    "verify",
    "verify_checkpoint",
    "verify_segment",
]

GENESIS = "0" * 64
# the dev checkpoint key's seed (refused outside dev): the audit service signs with it and
# the compliance-report service checks quoted checkpoints with its public half
DEV_CHECKPOINT_SEED = b"driftline-dev-audit-checkpoints!!"[:32]
ENTRY_FIELDS = (
    "tenant_id",
    "seq",
    "source_id",
    "source_topic",
    "service",
    "occurred_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "payload",
    "key_version",
    "prev_hash",
)
CHECKPOINT_FIELDS = ("tenant_id", "seq", "hash", "created_at")


def canonical(d: Mapping[str, Any], fields: Iterable[str]) -> bytes:
    """JSON of the named fields, keys sorted, no whitespace, UTF-8."""
    return orjson.dumps({k: d[k] for k in sorted(fields)})


_ENTRY_SORTED = tuple(sorted(ENTRY_FIELDS))


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps({k: entry[k] for k in _ENTRY_SORTED})).hexdigest()


def sign_checkpoint(key: Ed25519PrivateKey, checkpoint: Mapping[str, Any]) -> str:
    return base64.b64encode(key.sign(canonical(checkpoint, CHECKPOINT_FIELDS))).decode()


def verify_checkpoint(key: Ed25519PublicKey, checkpoint: Mapping[str, Any]) -> bool:
    try:
        key.verify(
            base64.b64decode(checkpoint["signature"]), canonical(checkpoint, CHECKPOINT_FIELDS)
        )
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the checkpoint key must be Ed25519")
    return key


@dataclass(frozen=True)
class Break:
    tenant_id: str
    seq: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "seq": self.seq, "reason": self.reason}


@dataclass
class Verification:
    ok: bool = True
    records: int = 0
    checkpoints: int = 0
    first_break: Break | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # tenant -> (seq, hash)
    covered: dict[str, int] = field(default_factory=dict)  # tenant -> last signed seq

    def fail(self, tenant: str, seq: int, reason: str) -> None:
        if self.first_break is None:
            self.ok = False
            self.first_break = Break(tenant, seq, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "first_break": self.first_break.as_dict() if self.first_break else None,
            "heads": {t: {"seq": s, "hash": h} for t, (s, h) in self.heads.items()},
            "signed_through": self.covered,
        }


def verify(
    entries: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]] = (),
    public_key: Ed25519PublicKey | None = None,
    *,
    start: Mapping[str, tuple[int, str]] | None = None,
) -> Verification:
    """Check entries (in seq order per tenant) and checkpoints. `start` gives, per tenant,
    the (seq, hash) just before the first entry when verifying a range that does not begin
    at the genesis; otherwise a chain must start at seq 1 after GENESIS."""
    v = Verification()
    expect: dict[str, tuple[int, str]] = dict(start or {})
    hashes: dict[tuple[str, int], str] = {}
    for e in entries:
        t, seq = e["tenant_id"], int(e["seq"])
        v.records += 1
        _link(v, t, seq, e["prev_hash"], expect.get(t, (0, GENESIS)))
        computed = entry_hash(e)
        if computed != e["hash"]:
            v.fail(t, seq, "hash mismatch: the record's content was changed")
        expect[t] = (seq, e["hash"])
        hashes[(t, seq)] = e["hash"]
    v.heads = expect
    _checkpoints(v, checkpoints, public_key, hashes)
    return v


def _link(v: Verification, t: str, seq: int, prev: str, before: tuple[int, str]) -> None:
    """Does an entry (seq, prev_hash) follow the one before it? A sequence break is named
    before a broken link, as one entry can only have one first break."""
    prev_seq, prev_hash = before
    if seq != prev_seq + 1:
        if seq <= prev_seq:
            v.fail(t, seq, f"out of order: seq {seq} after seq {prev_seq}")
        else:
            v.fail(t, prev_seq + 1, f"missing: seq {prev_seq + 1} to {seq - 1} are absent")
    elif prev != prev_hash:
        v.fail(t, seq, "prev_hash does not match the hash of the record before it")


def _checkpoints(
    v: Verification,
    checkpoints: Iterable[Mapping[str, Any]],
    public_key: Ed25519PublicKey | None,
    hashes: Mapping[tuple[str, int], str],
) -> None:
    """Check checkpoints against the chain's heads (v.heads) and its hashes."""
    for c in checkpoints:
        v.checkpoints += 1
        t, seq = c["tenant_id"], int(c["seq"])
        if public_key is not None and not verify_checkpoint(public_key, c):
            v.fail(t, seq, "checkpoint signature is not valid")
            continue
        head = v.heads.get(t)
        if head is None or seq > head[0]:
            end = head[0] if head else 0
            v.fail(
                t,
                end + 1,
                f"truncated: a signed checkpoint covers seq {seq}, the chain ends at {end}",
            )
            continue
        known = hashes.get((t, seq))
        if known is not None and known != c["hash"]:
            v.fail(t, seq, "the chain differs from the signed checkpoint at this seq")
            continue
        v.covered[t] = max(v.covered.get(t, 0), seq)


@dataclass(frozen=True)
class Segment:
    """One consecutive part of a tenant's chain, checked on its own (in another process):
    its links are verified taking its first `prev_hash` as given, which `join` then checks
    against the segment before it."""

    tenant_id: str
    records: int
    first: tuple[int, str] | None  # (seq, prev_hash) of its first entry
    head: tuple[int, str] | None  # (seq, hash) of its last entry
    first_break: Break | None
    hashes: dict[int, str]  # the hashes at the seqs asked for (the checkpoints')


def verify_segment(
    tenant_id: str, entries: Sequence[Mapping[str, Any]], want: Collection[int] = ()
) -> Segment:
    if not entries:
        return Segment(tenant_id, 0, None, None, None, {})
    first = (int(entries[0]["seq"]), str(entries[0]["prev_hash"]))
    v = verify(entries, start={tenant_id: (first[0] - 1, first[1])})
    wanted = set(want)
    return Segment(
        tenant_id,
        v.records,
        first,
        v.heads.get(tenant_id),
        v.first_break,
        {int(e["seq"]): e["hash"] for e in entries if int(e["seq"]) in wanted},
    )


def join(
    segments: Iterable[Segment],
    checkpoints: Iterable[Mapping[str, Any]] = (),
    public_key: Ed25519PublicKey | None = None,
    *,
    start: Mapping[str, tuple[int, str]] | None = None,
) -> Verification:
    """The verification of the whole chain from its segments, in seq order: what `verify`
    over all their entries would say (same first break, same reason)."""
    v = Verification()
    expect: dict[str, tuple[int, str]] = dict(start or {})
    hashes: dict[tuple[str, int], str] = {}
    for seg in segments:
        if seg.first is None or seg.head is None:
            continue
        t, (seq, prev) = seg.tenant_id, seg.first
        _link(v, t, seq, prev, expect.get(t, (0, GENESIS)))
        if seg.first_break is not None:
            v.fail(seg.first_break.tenant_id, seg.first_break.seq, seg.first_break.reason)
        v.records += seg.records
        expect[t] = seg.head
        hashes.update({(t, s): h for s, h in seg.hashes.items()})
    v.heads = expect
    _checkpoints(v, checkpoints, public_key, hashes)
    return v
