-- Retention, legal holds and archives. Old records leave the trail only after they were
-- archived (with their chain proof), once the tenant's retention has passed, and never while
-- a legal hold is active; the trigger enforces all three, for every role.
CREATE TABLE policies (
    tenant_id      text PRIMARY KEY,
    retention_days integer NOT NULL CHECK (retention_days > 0),
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE holds (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_by text,
    released_at timestamptz
);
CREATE INDEX holds_active ON holds (tenant_id) WHERE released_at IS NULL;

CREATE TABLE archives (
    tenant_id   text NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    last_hash   text NOT NULL,
    records     bigint NOT NULL,
    file        text NOT NULL,
    sha256      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, last_seq)
);
CREATE TRIGGER archives_append_only BEFORE UPDATE OR DELETE ON archives
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE FUNCTION refuse_unless_expired() RETURNS trigger LANGUAGE plpgsql
SET search_path = audit, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('driftline.audit_purge', true) = 'on'
       AND EXISTS (SELECT 1 FROM archives a
                   WHERE a.tenant_id = OLD.tenant_id AND OLD.seq BETWEEN a.first_seq AND a.last_seq)
       AND NOT EXISTS (SELECT 1 FROM holds h
                       WHERE h.tenant_id = OLD.tenant_id AND h.released_at IS NULL)
       AND EXISTS (SELECT 1 FROM policies p
                   WHERE p.tenant_id = OLD.tenant_id
                     AND OLD.occurred_ts < now() - make_interval(days => p.retention_days))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER records_append_only ON records;
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_unless_expired();

-- The only way records leave: archived, expired, not held (checked again per row above).
CREATE FUNCTION purge(tenant text, upto bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = audit, pg_temp AS $$
DECLARE n bigint;
BEGIN
    PERFORM set_config('driftline.audit_purge', 'on', true);
    DELETE FROM records WHERE tenant_id = tenant AND seq <= upto;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('driftline.audit_purge', 'off', true);
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION purge(text, bigint) FROM PUBLIC;
