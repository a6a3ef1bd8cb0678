"""Settings of operator single sign-on (`DRIFTLINE_OIDC__*`) and of the MFA policy per role
(`DRIFTLINE_MFA__*`); docs/security.md, "Single sign-on", shows them for Keycloak, Okta and
Entra ID.

Lists and maps are JSON in the environment, e.g.
`DRIFTLINE_OIDC__GROUP_MAP='[{"group": "ml-platform", "tenant": "acme", "role": "admin"}]'`;
the client secret is best given as the secret file `DRIFTLINE_OIDC__CLIENT_SECRET`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["GroupRule", "MfaPolicy", "OidcSettings", "Role"]

Role = Literal["admin", "ml-engineer", "auditor", "viewer"]
TENANT = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class GroupRule(BaseModel):
    """Members of the IdP group `group` are operators of `tenant` with `role`."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1, max_length=512)
    tenant: str = Field(pattern=TENANT)
    role: Role


class OidcSettings(BaseModel):
    """One OpenID Connect provider per deployment; off while `issuer` is empty."""

    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(
        default="",
        description="the IdP's issuer URL; its .well-known/openid-configuration is read",
    )
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    # how the client authenticates at the token endpoint ("none": a public client, PKCE only)
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = (
        "client_secret_basic"
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    # must be registered at the IdP, exactly: ingestion's /v1/auth/oidc/callback as the
    # browser reaches it (directly or through the console's /api/ingestion/ proxy)
    redirect_uri: str = ""
    # where the groups are in the ID token: a claim name, or a dotted path for nested claims
    # (Keycloak realm roles: "realm_access.roles")
    groups_claim: str = "groups"
    # the operator's Driftline user name; the next claims are tried when it is absent
    username_claims: list[str] = Field(
        default_factory=lambda: ["preferred_username", "email", "sub"]
    )
    # the first rule (in this order) that names one of the operator's groups and the tenant
    # gives the role; an operator with no mapped group is refused (403)
    group_map: list[GroupRule] = Field(default_factory=list)
    # prefixes a login's return_to may start with (the console's URL); empty: JSON only
    return_urls: list[str] = Field(default_factory=list)
    # acr_values sent in the authorization request (asks the IdP for a level, e.g. MFA)
    acr_values: str = ""
    # ID token signature algorithms accepted (intersected with the IdP's); never "none"/HS*
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    )
    state_ttl_s: int = Field(default=600, ge=30, le=3600)
    leeway_s: int = Field(default=30, ge=0, le=300)
    # discovery document and JWKS cached this long (the JWKS is read again for a new kid)
    metadata_ttl_s: float = Field(default=3600, ge=0)
    http_timeout_s: float = Field(default=10, gt=0)
    # the login's state is also set as an HttpOnly cookie and must come back with it
    # (login CSRF); off only for clients that cannot keep cookies
    bind_state_cookie: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("the issuer must be an http(s) URL")
        return v  # kept exactly: the ID token's iss must equal it

    @field_validator("return_urls")
    @classmethod
    def _return_urls(cls, v: list[str]) -> list[str]:
        for url in v:
            scheme, sep, rest = url.partition("://")
            # the host must be closed by a slash, so https://console.example cannot also
            # allow https://console.example.attacker.test
            if scheme not in ("http", "https") or not sep or "/" not in rest:
                raise ValueError(
                    f"return URL {url!r}: an http(s) URL with a path, e.g. https://console.example/"
                )
        return v

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"ID token algorithms {bad} are not accepted (none, HMAC)")
        return v

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if not self.enabled:
            return self
        missing = [n for n in ("client_id", "redirect_uri") if not getattr(self, n)]
        if self.token_endpoint_auth_method != "none" and not self.client_secret.get_secret_value():
            missing.append("client_secret")
        if missing:
            raise ValueError(
                "DRIFTLINE_OIDC__ISSUER is set, so set "
                + ", ".join(f"DRIFTLINE_OIDC__{m.upper()}" for m in missing)
            )
        if "openid" not in self.scopes:
            raise ValueError("DRIFTLINE_OIDC__SCOPES must include openid")
        return self


class MfaPolicy(BaseModel):
    """Roles whose operators must log in with a second factor.

    Local accounts: a user of such a role without TOTP gets no session; the login answers
    403 with a single-use enrolment token for /v1/auth/mfa/required/{enroll,confirm}, then
    logs in with a code. Single sign-on: the IdP's `amr`/`acr` claims say whether the login
    was multi-factor (`sso: "idp"`), or such roles may not use SSO at all (`sso: "refuse"`).
    """

    model_config = ConfigDict(extra="forbid")
    required_roles: list[Role] = Field(default_factory=list)
    sso: Literal["idp", "refuse"] = "idp"
    # an SSO login is multi-factor when its amr names one of these (RFC 8176 values) ...
    sso_amr: list[str] = Field(default_factory=lambda: ["mfa", "otp", "hwk", "swk", "sc"])
    # ... or its acr is one of these (IdP-specific, e.g. Okta's "urn:okta:loa:2fa:any")
    sso_acr: list[str] = Field(default_factory=list)
    enrollment_ttl_s: int = Field(default=900, ge=60, le=86400)

    def requires(self, role: str) -> bool:
        return role in self.required_roles

    def sso_mfa(self, amr: object, acr: object) -> bool:
        """Whether an ID token's amr/acr claims assert a multi-factor login."""
        methods = {str(m) for m in amr} if isinstance(amr, list) else set()
        return bool(methods & set(self.sso_amr)) or (isinstance(acr, str) and acr in self.sso_acr)
