-- Per-tenant data keys, wrapped by the key-encryption key. `wrapped` becomes NULL when the
-- tenant is erased (crypto-shredding); the row stays as the record that the key existed.
CREATE TABLE data_keys (
    tenant_id    text NOT NULL,
    version      integer NOT NULL CHECK (version > 0),
    wrapped      bytea,
    kek_id       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    PRIMARY KEY (tenant_id, version),
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);
