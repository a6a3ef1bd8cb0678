"""Single sign-on settings and the MFA policy without servers (the flow itself:
tests/integration/test_oidc_sso.py against a real OpenID Connect provider)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from driftline_ingestion.oidc import _fragment, _groups
from driftline_ingestion.settings import IngestionSettings
from driftline_ingestion.sso_settings import GroupRule, MfaPolicy, OidcSettings

CALLBACK = "https://driftline.example/api/ingestion/v1/auth/oidc/callback"


def test_an_incomplete_or_unsafe_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="DRIFTLINE_OIDC__CLIENT_ID"):
        OidcSettings(issuer="https://idp.example", redirect_uri=CALLBACK, client_secret="x")
    with pytest.raises(ValueError, match="CLIENT_SECRET"):
        OidcSettings(issuer="https://idp.example", client_id="c", redirect_uri=CALLBACK)
    with pytest.raises(ValueError, match="must include openid"):
        OidcSettings(
            issuer="https://idp.example",
            client_id="c",
            client_secret="s",
            redirect_uri=CALLBACK,
            scopes=["profile"],
        )
    for bad in (["HS256"], ["none"], ["RS256", "HS512"]):
        with pytest.raises(ValueError, match="not accepted"):
            OidcSettings(algorithms=bad)
    with pytest.raises(ValueError, match="http"):
        OidcSettings(issuer="idp.example")
    for bad in ("https://console.example", "console.example/", "javascript:alert(1)//x/"):
        with pytest.raises(ValueError, match="return URL"):
            OidcSettings(return_urls=[bad])
    assert OidcSettings(return_urls=["https://console.example/"]).return_urls
    with pytest.raises(ValueError, match="tenant"):
        GroupRule(group="g", tenant="Not A Tenant", role="admin")
    with pytest.raises(ValueError, match="role"):
        GroupRule(group="g", tenant="acme", role="root")  # type: ignore[arg-type]


def test_sso_is_off_by_default_and_a_public_client_needs_no_secret() -> None:
    assert not OidcSettings().enabled
    public = OidcSettings(
        issuer="https://idp.example/",
        client_id="c",
        redirect_uri=CALLBACK,
        token_endpoint_auth_method="none",
    )
    assert public.enabled
    assert public.issuer == "https://idp.example/"  # kept exactly: the ID token's iss must match


def test_the_environment_configures_sso_and_the_mfa_policy(monkeypatch) -> None:
    env = {
        "DRIFTLINE_OIDC__ISSUER": "https://idp.example/realms/acme",
        "DRIFTLINE_OIDC__CLIENT_ID": "driftline",
        "DRIFTLINE_OIDC__CLIENT_SECRET": "s",
        "DRIFTLINE_OIDC__REDIRECT_URI": CALLBACK,
        "DRIFTLINE_OIDC__GROUPS_CLAIM": "realm_access.roles",
        "DRIFTLINE_OIDC__GROUP_MAP": '[{"group": "ops", "tenant": "acme", "role": "admin"}]',
        "DRIFTLINE_MFA__REQUIRED_ROLES": '["admin"]',
        "DRIFTLINE_MFA__SSO": "refuse",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = IngestionSettings(environment="test")
    assert s.oidc.group_map == [GroupRule(group="ops", tenant="acme", role="admin")]
    assert s.oidc.groups_claim == "realm_access.roles"
    assert s.oidc.client_secret.get_secret_value() == "s"
    assert s.mfa.required_roles == ["admin"]
    assert s.mfa.sso == "refuse"


@pytest.mark.parametrize(
    ("amr", "acr", "mfa"),
    [
        (["pwd"], None, False),
        (["pwd", "otp"], None, True),
        (["pwd", "mfa"], None, True),
        (["hwk"], None, True),
        ("mfa", None, False),  # amr is a list; a string is not trusted
        (None, "urn:okta:loa:2fa:any", True),
        (None, "urn:okta:loa:1fa:any", False),
        (None, None, False),
    ],
)
def test_what_counts_as_an_sso_second_factor(amr: object, acr: object, mfa: bool) -> None:
    policy = MfaPolicy(required_roles=["admin"], sso_acr=["urn:okta:loa:2fa:any"])
    assert policy.sso_mfa(amr, acr) is mfa
    assert policy.requires("admin")
    assert not policy.requires("viewer")
    assert not MfaPolicy().requires("admin")  # optional for everyone by default


def test_groups_are_read_from_a_claim_or_a_dotted_path() -> None:
    claims = {"groups": ["a", "b"], "realm_access": {"roles": ["ops"]}, "one": "solo"}
    assert _groups(claims, "groups") == ["a", "b"]
    assert _groups(claims, "realm_access.roles") == ["ops"]
    assert _groups(claims, "one") == ["solo"]
    assert _groups(claims, "realm_access.missing") == []
    assert _groups(claims, "nothing") == []
    assert _groups({"groups": 7}, "groups") == []


def test_the_grant_goes_back_in_the_fragment_never_the_query() -> None:
    url = _fragment("https://console.example/sso?x=1#old", {"access_token": "a b", "n": 3})
    parts = urlparse(url)
    assert parts.query == "x=1"
    assert parse_qs(parts.fragment) == {"access_token": ["a b"], "n": ["3"]}
