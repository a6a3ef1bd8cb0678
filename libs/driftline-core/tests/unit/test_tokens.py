"""Operator access tokens: only EdDSA tokens signed by our key, for our audience and issuer,
unexpired and naming a known role, are accepted."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_core.auth import InvalidToken, TokenService
from driftline_core.auth.permissions import role_permissions, scope_permissions
from driftline_core.settings import AuthSettings

CLAIMS = {"tenant_id": "acme", "user_id": "u1", "username": "ana", "role": "viewer"}


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(AuthSettings(jwt_leeway_s=0))


def _b64(d: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def test_a_token_round_trips(tokens):
    token, exp = tokens.issue(**CLAIMS, session_id="s1")
    c = tokens.verify(token)
    assert (c.tenant_id, c.user_id, c.role, c.session_id) == ("acme", "u1", "viewer", "s1")
    assert exp > time.time()
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_expired_tokens_are_refused(tokens):
    token, _ = tokens.issue(**CLAIMS, session_id="s1", ttl_s=-5)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)


def test_a_token_signed_by_another_key_is_refused(tokens):
    other = TokenService.__new__(TokenService)
    other.__dict__.update(tokens.__dict__)
    other._private = Ed25519PrivateKey.generate()
    forged, _ = other.issue(**CLAIMS, session_id="s1")
    with pytest.raises(InvalidToken, match="not valid"):
        tokens.verify(forged)


def test_alg_none_and_a_tampered_payload_are_refused(tokens):
    good, _ = tokens.issue(**CLAIMS, session_id="s1")
    payload = jwt.decode(good, options={"verify_signature": False})
    none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**payload, 'role': 'admin'})}."
    with pytest.raises(InvalidToken):
        tokens.verify(none)
    head, _, sig = good.split(".")
    tampered = f"{head}.{_b64({**payload, 'role': 'admin'})}.{sig}"
    with pytest.raises(InvalidToken):
        tokens.verify(tampered)


def test_hs256_signed_with_the_public_key_is_refused(tokens):
    """Algorithm confusion: the public key used as an HMAC secret."""
    pub = tokens._public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(
        tokens.issue(**CLAIMS, session_id="s1")[0], options={"verify_signature": False}
    )
    head = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(payload)
    import hashlib
    import hmac

    sig = (
        base64.urlsafe_b64encode(hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(InvalidToken):
        tokens.verify(f"{head}.{body}.{sig}")


def test_wrong_audience_and_unknown_roles_are_refused():
    issuer = TokenService(AuthSettings(jwt_audience="elsewhere"))
    token, _ = issuer.issue(**CLAIMS, session_id="s1")
    with pytest.raises(InvalidToken):
        TokenService(AuthSettings()).verify(token)
    odd, _ = TokenService(AuthSettings()).issue(**{**CLAIMS, "role": "root"}, session_id="s1")
    with pytest.raises(InvalidToken, match="unknown role"):
        TokenService(AuthSettings()).verify(odd)


def test_a_service_with_only_the_public_key_verifies_but_cannot_issue(tmp_path, tokens):
    pem = tokens._public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "jwt.pub").write_bytes(pem)
    verifier = TokenService(AuthSettings(jwt_public_key_file=str(tmp_path / "jwt.pub")))
    assert not verifier.can_issue
    assert verifier.verify(tokens.issue(**CLAIMS, session_id="s1")[0]).user_id == "u1"


def test_roles_and_scopes_grant_what_the_docs_say():
    assert role_permissions("viewer") == {"read"}
    assert role_permissions("auditor") == {"read", "audit"}
    assert role_permissions("ml-engineer") == {"read", "write"}
    assert role_permissions("admin") >= {"read", "write", "audit", "admin", "ingest"}
    assert role_permissions("nobody") == frozenset()
    assert scope_permissions(["ingest"]) == {"ingest"}
    assert scope_permissions(["admin"]) == role_permissions("admin")
