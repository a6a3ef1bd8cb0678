-- The audit trail: one hash chain per tenant (see driftline_core.auditchain). Metadata that
-- queries need (time, actor, action, resource, outcome) is kept in clear; the full source
-- record is the payload, encrypted under the tenant's data key. The hash covers the
-- ciphertext, so the chain verifies without keys, also after crypto-shredding.
CREATE TABLE records (
    tenant_id     text        NOT NULL,
    seq           bigint      NOT NULL CHECK (seq > 0),
    source_id     uuid        NOT NULL,
    source_topic  text        NOT NULL,
    service       text        NOT NULL,
    occurred_at   text        NOT NULL,  -- ISO 8601 UTC, exactly as hashed
    occurred_ts   timestamptz NOT NULL,
    actor         text        NOT NULL,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    outcome       text        NOT NULL,
    payload       text        NOT NULL,  -- dl1 ciphertext, or "shredded" for an erased tenant
    key_version   integer,
    prev_hash     text        NOT NULL,
    hash          text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, source_id)
);
CREATE INDEX records_time ON records (tenant_id, occurred_ts);
CREATE INDEX records_actor ON records (tenant_id, actor, occurred_ts);
CREATE INDEX records_action ON records (tenant_id, action, occurred_ts);
CREATE INDEX records_resource ON records (tenant_id, resource_type, resource_id);

-- Signed checkpoints of chain heads, stored apart from the records they cover.
CREATE TABLE checkpoints (
    tenant_id  text        NOT NULL,
    seq        bigint      NOT NULL,
    hash       text        NOT NULL,
    created_at text        NOT NULL,
    key_id     text        NOT NULL,
    signature  text        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- Append-only by construction: no row of either table may change or go.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
