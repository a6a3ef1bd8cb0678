{{/* Names */}}
{{- define "driftline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "driftline.component" (dict "root" $ "name" "ingestion") -> <fullname>-ingestion */}}
{{- define "driftline.component" -}}
{{- printf "%s-%s" (include "driftline.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "driftline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "driftline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: driftline
{{- end -}}

{{/* The image of a component: <registry>/<repository>/<name>:<tag>[@digest]; never latest */}}
{{- define "driftline.image" -}}
{{- $img := .root.Values.image -}}
{{- $tag := toString $img.tag -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail "image.tag must be a pinned version, not empty or latest" -}}
{{- end -}}
{{- $repo := printf "%s/%s" $img.repository .name -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{- if $img.digest -}}
{{- printf "%s:%s@%s" $repo $tag $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "driftline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ include "driftline.fullname" . }}{{- else -}}default{{- end -}}
{{- end -}}

{{- define "driftline.secretName" -}}
{{- if .Values.secrets.existingSecret -}}{{ .Values.secrets.existingSecret }}{{- else -}}{{ include "driftline.fullname" . }}-secrets{{- end -}}
{{- end -}}

{{/*
What each service reads (the code's facts, not values): its dependencies, which decide its
NetworkPolicy, and the secret keys projected into its pod (least privilege). Keys named like
variables are read by the settings' secret-files source; *.pem are key files.
*/}}
{{- define "driftline.facts" -}}
common-secrets: [DRIFTLINE_POSTGRES__PASSWORD, DRIFTLINE_KAFKA__SASL_PASSWORD, DRIFTLINE_REDIS__PASSWORD, DRIFTLINE_KEK__KEY_B64, DRIFTLINE_KEK__PASSPHRASE, DRIFTLINE_KEK__RETIRED, jwt-public.pem]
ingestion:
  deps: [kafka, postgres, redis]
  secrets: [DRIFTLINE_INGESTION__ADMIN_TOKEN, jwt-private.pem]
  files: {DRIFTLINE_AUTH__JWT_PRIVATE_KEY_FILE: jwt-private.pem}
drift-detection:
  deps: [kafka, postgres, redis, influx]
  secrets: [DRIFTLINE_INFLUX__TOKEN]
  files: {}
alerting:
  deps: [kafka, postgres, redis, receivers]
  secrets: []
  files: {}
audit:
  deps: [kafka, postgres, redis]
  secrets: [DRIFTLINE_AUDIT__WRITER_PASSWORD, audit-signing.pem]
  files: {DRIFTLINE_AUDIT__SIGNING_KEY_FILE: audit-signing.pem}
compliance-report:
  deps: [kafka, postgres, redis, influx]
  secrets: [DRIFTLINE_INFLUX__TOKEN, DRIFTLINE_REPORTS__ADMIN_TOKEN, reports-signing.pem, audit-public.pem]
  files: {DRIFTLINE_REPORTS__SIGNING_KEY_FILE: reports-signing.pem, DRIFTLINE_REPORTS__AUDIT_PUBLIC_KEY_FILE: audit-public.pem}
console:
  # `services`: the other services' HTTP port (its reverse proxy and /api/platform, decision 52)
  deps: [kafka, postgres, redis, influx, services]
  secrets: [DRIFTLINE_INFLUX__TOKEN]
  files: {}
{{- end -}}

{{/* The secret keys of one component (or of every service for the migration job) */}}
{{- define "driftline.secretKeys" -}}
{{- $facts := include "driftline.facts" . | fromYaml -}}
{{- $keys := get $facts "common-secrets" -}}
{{- if eq .name "migrations" -}}
{{- range $svc := list "ingestion" "drift-detection" "alerting" "audit" "compliance-report" -}}
{{- $keys = concat $keys (get (get $facts $svc) "secrets") -}}
{{- end -}}
{{- else -}}
{{- $keys = concat $keys (get (get $facts .name) "secrets") -}}
{{- if and (eq .name "ingestion") (include "driftline.ssoSecretFile" .root) -}}
{{- $keys = append $keys "DRIFTLINE_OIDC__CLIENT_SECRET" -}}{{/* single sign-on: _sso.tpl */}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "keys" (uniq $keys)) -}}
{{- end -}}

{{/* Pod volumes: writable /tmp (the root filesystem is read-only) and the projected secrets */}}
{{- define "driftline.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
- name: secrets
  secret:
    secretName: {{ include "driftline.secretName" .root }}
    defaultMode: 0440
    # a key absent from the Secret is an absent file: the service then refuses to start
    # outside dev with a message naming the setting (no silent default)
    optional: true
    items:
      {{- range (include "driftline.secretKeys" . | fromYaml).keys }}
      - {key: {{ . }}, path: {{ . }}}
      {{- end }}
{{- end -}}

{{- define "driftline.volumeMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: secrets, mountPath: {{ .root.Values.secrets.mountPath }}, readOnly: true}
{{- end -}}

{{/* Environment of a component: the shared ConfigMap plus its own variables */}}
{{- define "driftline.env" -}}
{{- $root := .root -}}
{{- $facts := include "driftline.facts" . | fromYaml -}}
{{- $mount := $root.Values.secrets.mountPath -}}
- {name: DRIFTLINE_SERVICE_NAME, value: {{ .name | quote }}}
{{- $files := dict -}}
{{- if eq .name "migrations" -}}
{{- range $svc := list "ingestion" "drift-detection" "alerting" "audit" "compliance-report" -}}
{{- $files = merge $files (get (get $facts $svc) "files") -}}
{{- end -}}
{{- else -}}
{{- $files = get (get $facts .name) "files" -}}
{{- end -}}
{{- range $var, $file := $files }}
- {name: {{ $var }}, value: {{ printf "%s/%s" $mount $file | quote }}}
{{- end }}
{{- $c := $root.Values.config }}
{{- if or (eq .name "audit") (eq .name "migrations") }}
- {name: DRIFTLINE_AUDIT__WRITER_USER, value: {{ $c.audit.writerUser | quote }}}
- {name: DRIFTLINE_AUDIT__SIGNING_KEY_ID, value: {{ $c.audit.signingKeyId | quote }}}
- {name: DRIFTLINE_AUDIT__ARCHIVE_DIR, value: /tmp/archive/audit}
{{- end }}
{{- if or (eq .name "compliance-report") (eq .name "migrations") }}
- {name: DRIFTLINE_REPORTS__SIGNING_KEY_ID, value: {{ $c.reports.signingKeyId | quote }}}
{{- end }}
{{- if eq .name "console" }}
{{- /* the proxy's upstreams: each service's in-cluster Service (browser: /api/<service>/...) */}}
{{- range $svc := list "ingestion" "drift-detection" "alerting" "audit" "compliance-report" }}
- {name: {{ printf "DRIFTLINE_CONSOLE__UPSTREAMS__%s" ($svc | upper | replace "-" "_") }}, value: {{ printf "http://%s:%v" (include "driftline.component" (dict "root" $root "name" $svc)) $root.Values.service.port | quote }}}
{{- end }}
- {name: DRIFTLINE_CONSOLE__DIST_DIR, value: /app/console/dist}
{{- end }}
{{- if eq .name "ingestion" }}
{{- include "driftline.ssoEnv" $root }}
{{- end }}
{{- if ne .name "migrations" }}
{{- range $k, $v := (get $root.Values.services .name).env }}
- {name: {{ $k }}, value: {{ toString $v | quote }}}
{{- end }}
{{- end }}
{{- end -}}

{{- define "driftline.podSecurity" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "driftline.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{/* The partitions of a topic: the catalogue's count unless topics.partitions overrides it */}}
{{- define "driftline.partitions" -}}
{{- $catalogue := .root.Files.Get "files/topics.json" | fromJson -}}
{{- $n := 0 -}}
{{- range $catalogue.topics -}}
{{- if eq .name $.topic }}{{ $n = .partitions }}{{ end -}}
{{- end -}}
{{- if hasKey .root.Values.topics.partitions .topic }}{{ $n = get .root.Values.topics.partitions .topic }}{{ end -}}
{{- if not $n }}{{ fail (printf "topic %s is not in files/topics.json" .topic) }}{{ end -}}
{{- $n | int -}}
{{- end -}}

{{/* Egress rules of a component: DNS, then each dependency it uses (from driftline.facts) */}}
{{- define "driftline.egressRules" -}}
{{- $np := .root.Values.networkPolicy -}}
{{- $facts := include "driftline.facts" . | fromYaml -}}
{{- $deps := list "kafka" "postgres" -}}
{{- if ne .name "migrations" }}{{ $deps = get (get $facts .name) "deps" }}{{ end -}}
- ports: {{- toYaml $np.dns.ports | nindent 4 }}
  to: {{- toYaml $np.dns.to | nindent 4 }}
{{- range $dep := $deps }}
{{- if eq $dep "services" }}
- ports: [{port: {{ $.root.Values.service.port }}, protocol: TCP}]
  to:
    {{- range $svc := list "ingestion" "drift-detection" "alerting" "audit" "compliance-report" }}
    - podSelector:
        matchLabels: {{- include "driftline.selectorLabels" (dict "root" $.root "name" $svc) | nindent 10 }}
    {{- end }}
{{- else }}
{{- $rule := get $np.egress $dep }}
- ports: {{- toYaml $rule.ports | nindent 4 }}
  to: {{- toYaml $rule.to | nindent 4 }}
{{- end }}
{{- end }}
{{- if $np.egress.cloudApis.enabled }}
- ports: {{- toYaml $np.egress.cloudApis.ports | nindent 4 }}
  to: {{- toYaml $np.egress.cloudApis.to | nindent 4 }}
{{- end }}
{{- if and (eq .name "ingestion") (include "driftline.ssoOn" .root) }}
- ports: {{- toYaml $np.egress.idp.ports | nindent 4 }}
  to: {{- toYaml $np.egress.idp.to | nindent 4 }}
{{- end }}
{{- end -}}
