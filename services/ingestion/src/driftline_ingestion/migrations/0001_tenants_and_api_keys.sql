-- Tenants and their producer API keys (stored as hashes, with scopes).
CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id),
    prefix       text NOT NULL UNIQUE,
    hash         text NOT NULL,
    scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']::text[]),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
