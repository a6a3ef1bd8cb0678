{{/*
Operators' single sign-on (config.sso -> DRIFTLINE_OIDC__*) and the MFA policy per role
(config.mfa -> DRIFTLINE_MFA__*): ingestion's own variables, rendered only when configured
(an issuer; required roles). Lists and the group map are JSON, as the settings read them
(services/ingestion/src/driftline_ingestion/sso_settings.py). The client secret is never a
value: a secret file (the release Secret's DRIFTLINE_OIDC__CLIENT_SECRET, see
driftline.secretKeys) or a secretKeyRef (config.sso.clientSecretRef).
*/}}
{{- define "driftline.ssoOn" -}}
{{- if .Values.config.sso.issuer }}on{{ end -}}
{{- end -}}

{{/* Whether the client secret is the release Secret's key (projected as a file) */}}
{{- define "driftline.ssoSecretFile" -}}
{{- $s := .Values.config.sso -}}
{{- if and $s.issuer (not $s.clientSecretRef.name) (ne $s.tokenEndpointAuthMethod "none") }}on{{ end -}}
{{- end -}}

{{- define "driftline.ssoEnv" -}}
{{- $s := .Values.config.sso -}}
{{- if $s.issuer }}
{{- if not $s.clientId }}{{ fail "config.sso.issuer is set, so set config.sso.clientId" }}{{ end }}
{{- if not $s.redirectUri }}{{ fail "config.sso.issuer is set, so set config.sso.redirectUri (ingestion's /v1/auth/oidc/callback as registered at the IdP)" }}{{ end }}
{{- if and (include "driftline.ssoSecretFile" .) (not .Values.secrets.existingSecret) (not (hasKey .Values.secrets.values "DRIFTLINE_OIDC__CLIENT_SECRET")) }}
{{- fail "config.sso.issuer is set, so give the client secret: secrets.values.DRIFTLINE_OIDC__CLIENT_SECRET, secrets.existingSecret holding that key, or config.sso.clientSecretRef (tokenEndpointAuthMethod none: a public client)" }}
{{- end }}
- {name: DRIFTLINE_OIDC__ISSUER, value: {{ $s.issuer | quote }}}
- {name: DRIFTLINE_OIDC__CLIENT_ID, value: {{ $s.clientId | quote }}}
- {name: DRIFTLINE_OIDC__REDIRECT_URI, value: {{ $s.redirectUri | quote }}}
- {name: DRIFTLINE_OIDC__TOKEN_ENDPOINT_AUTH_METHOD, value: {{ $s.tokenEndpointAuthMethod | quote }}}
- {name: DRIFTLINE_OIDC__SCOPES, value: {{ toJson $s.scopes | quote }}}
- {name: DRIFTLINE_OIDC__GROUPS_CLAIM, value: {{ $s.groupsClaim | quote }}}
- {name: DRIFTLINE_OIDC__USERNAME_CLAIMS, value: {{ toJson $s.usernameClaims | quote }}}
- {name: DRIFTLINE_OIDC__GROUP_MAP, value: {{ toJson $s.groupMap | quote }}}
- {name: DRIFTLINE_OIDC__RETURN_URLS, value: {{ toJson $s.returnUrls | quote }}}
{{- if $s.acrValues }}
- {name: DRIFTLINE_OIDC__ACR_VALUES, value: {{ $s.acrValues | quote }}}
{{- end }}
{{- if and $s.clientSecretRef.name (ne $s.tokenEndpointAuthMethod "none") }}
- name: DRIFTLINE_OIDC__CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $s.clientSecretRef.name | quote }}, key: {{ $s.clientSecretRef.key | quote }}}
{{- end }}
{{- end }}
{{- $m := .Values.config.mfa }}
{{- if $m.requiredRoles }}
- {name: DRIFTLINE_MFA__REQUIRED_ROLES, value: {{ toJson $m.requiredRoles | quote }}}
- {name: DRIFTLINE_MFA__SSO, value: {{ $m.sso | quote }}}
- {name: DRIFTLINE_MFA__SSO_AMR, value: {{ toJson $m.ssoAmr | quote }}}
- {name: DRIFTLINE_MFA__SSO_ACR, value: {{ toJson $m.ssoAcr | quote }}}
{{- end }}
{{- end -}}
