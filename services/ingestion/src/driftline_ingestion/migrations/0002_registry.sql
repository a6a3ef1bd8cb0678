-- API keys get a name (who holds it: the actor in the audit trail and in approvals).
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';

-- The model registry.
CREATE TABLE models (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    id             text NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    name           text NOT NULL,
    task           text NOT NULL CHECK (task IN ('classification', 'regression')),
    description    text NOT NULL DEFAULT '',
    feature_schema jsonb NOT NULL,
    monitoring     jsonb NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE model_versions (
    tenant_id        text NOT NULL,
    model_id         text NOT NULL,
    version          text NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
    artifact_uri     text NOT NULL,
    artifact_sha256  text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    metadata         jsonb NOT NULL DEFAULT '{}',
    stage            text NOT NULL DEFAULT 'staging'
                     CHECK (stage IN ('staging', 'production', 'archived')),
    submitted_by     text NOT NULL,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    approved_by      text,
    approved_at      timestamptz,
    approval_comment text,
    PRIMARY KEY (tenant_id, model_id, version),
    FOREIGN KEY (tenant_id, model_id) REFERENCES models (tenant_id, id),
    -- segregation of duties, enforced by the database too
    CHECK (approved_by IS NULL OR approved_by <> submitted_by),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL))
);

CREATE TABLE reference_profiles (
    tenant_id  text NOT NULL,
    model_id   text NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    source     jsonb NOT NULL,
    rows       bigint NOT NULL,
    profile    jsonb NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model_id, version),
    FOREIGN KEY (tenant_id, model_id) REFERENCES models (tenant_id, id)
);
