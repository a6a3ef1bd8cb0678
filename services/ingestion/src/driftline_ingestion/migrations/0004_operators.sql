-- Operators (people) of a tenant: argon2id password hashes, a TOTP secret encrypted under the
-- tenant's data key (FieldCipher, purpose `totp`, record = user id), the last TOTP time step
-- accepted (a code is good once), and argon2id hashes of unused backup codes.
CREATE TABLE users (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    username        text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
    role            text NOT NULL CHECK (role IN ('admin', 'ml-engineer', 'auditor', 'viewer')),
    password_hash   text NOT NULL,
    totp_secret     text,
    totp_pending    text,
    totp_enabled_at timestamptz,
    totp_last_step  bigint NOT NULL DEFAULT 0,
    backup_codes    text[] NOT NULL DEFAULT '{}',
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    UNIQUE (tenant_id, username)
);

-- API keys may now carry the `write` and `audit` scopes too.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['ingest', 'read', 'write', 'audit', 'admin']::text[]);
