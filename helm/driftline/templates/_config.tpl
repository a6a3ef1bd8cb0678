{{/* The DRIFTLINE_* variables every component shares (README "Configuration") */}}
{{- define "driftline.configData" -}}
{{- $c := .Values.config -}}
DRIFTLINE_ENVIRONMENT: {{ .Values.environment | quote }}
DRIFTLINE_LOG_LEVEL: {{ $c.logLevel | quote }}
DRIFTLINE_LOG_JSON: {{ $c.logJson | quote }}
DRIFTLINE_STARTUP_TIMEOUT_S: {{ $c.startupTimeoutSeconds | quote }}
DRIFTLINE_SECRETS_DIR: {{ .Values.secrets.mountPath | quote }}
DRIFTLINE_HTTP__HOST: "0.0.0.0"
DRIFTLINE_HTTP__PORT: {{ .Values.service.port | quote }}
DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS: {{ required "config.kafka.bootstrapServers is required" $c.kafka.bootstrapServers | quote }}
DRIFTLINE_KAFKA__SECURITY_PROTOCOL: {{ $c.kafka.securityProtocol | quote }}
{{- if $c.kafka.saslMechanism }}
DRIFTLINE_KAFKA__SASL_MECHANISM: {{ $c.kafka.saslMechanism | quote }}
{{- end }}
{{- if $c.kafka.saslUsername }}
DRIFTLINE_KAFKA__SASL_USERNAME: {{ $c.kafka.saslUsername | quote }}
{{- end }}
{{- if $c.kafka.sslCaFile }}
DRIFTLINE_KAFKA__SSL_CAFILE: {{ $c.kafka.sslCaFile | quote }}
{{- end }}
DRIFTLINE_KAFKA__COMPRESSION_TYPE: {{ $c.kafka.compressionType | quote }}
DRIFTLINE_KAFKA__TOPIC_REPLICATION_FACTOR: {{ $c.kafka.replicationFactor | quote }}
DRIFTLINE_POSTGRES__HOST: {{ required "config.postgres.host is required" $c.postgres.host | quote }}
DRIFTLINE_POSTGRES__PORT: {{ $c.postgres.port | quote }}
DRIFTLINE_POSTGRES__USER: {{ $c.postgres.user | quote }}
DRIFTLINE_POSTGRES__DATABASE: {{ $c.postgres.database | quote }}
DRIFTLINE_POSTGRES__SSL: {{ $c.postgres.ssl | quote }}
DRIFTLINE_POSTGRES__MAX_POOL: {{ $c.postgres.maxPool | quote }}
{{- if $c.postgres.sslRootCert }}
DRIFTLINE_POSTGRES__SSL_ROOTCERT: {{ $c.postgres.sslRootCert | quote }}
{{- end }}
DRIFTLINE_REDIS__URL: {{ required "config.redis.url is required" $c.redis.url | quote }}
{{- if $c.redis.sslCaCerts }}
DRIFTLINE_REDIS__SSL_CA_CERTS: {{ $c.redis.sslCaCerts | quote }}
{{- end }}
DRIFTLINE_INFLUX__URL: {{ required "config.influx.url is required" $c.influx.url | quote }}
DRIFTLINE_INFLUX__DATABASE: {{ $c.influx.database | quote }}
DRIFTLINE_INFLUX__RETENTION_POLICY: {{ $c.influx.retentionPolicy | quote }}
DRIFTLINE_INFLUX__ORG: {{ $c.influx.org | quote }}
DRIFTLINE_INFLUX__SPOOL_DIR: /tmp/spool/influx
DRIFTLINE_KEK__PROVIDER: {{ $c.kek.provider | quote }}
DRIFTLINE_KEK__KEY_ID: {{ $c.kek.keyId | quote }}
{{- if $c.kek.kmsKey }}
DRIFTLINE_KEK__KMS_KEY: {{ $c.kek.kmsKey | quote }}
{{- end }}
{{- if $c.kek.region }}
DRIFTLINE_KEK__REGION: {{ $c.kek.region | quote }}
{{- end }}
DRIFTLINE_AUTH__JWT_PUBLIC_KEY_FILE: {{ printf "%s/jwt-public.pem" .Values.secrets.mountPath | quote }}
{{- range $k, $v := $c.extraEnv }}
{{ $k }}: {{ toString $v | quote }}
{{- end }}
{{- end -}}
