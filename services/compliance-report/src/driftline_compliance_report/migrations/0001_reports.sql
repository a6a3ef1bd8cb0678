-- What reports are built from (a projection of the audit, registry and alert topics), the
-- reports themselves (files encrypted under the tenant's data key) and their schedules.

CREATE TABLE evidence (
    tenant_id      text        NOT NULL,
    source_id      uuid        NOT NULL,           -- the source event's id: stored once
    topic          text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    kind           text        NOT NULL,           -- audit action, registry change, alert kind
    actor          text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    outcome        text        NOT NULL,
    model_id       text,
    model_version  text,
    payload        text,                           -- the event, encrypted; NULL when shredded
    clear          jsonb,                          -- the event in clear: erasure records only
    PRIMARY KEY (tenant_id, source_id)
);
CREATE INDEX evidence_time ON evidence (tenant_id, occurred_at);
CREATE INDEX evidence_kind ON evidence (tenant_id, kind, occurred_at);

CREATE TABLE schedules (
    id            uuid        PRIMARY KEY,
    tenant_id     text        NOT NULL,
    framework     text        NOT NULL,
    cadence       text        NOT NULL CHECK (cadence IN ('daily', 'weekly', 'monthly')),
    formats       text[]      NOT NULL,
    model_id      text,
    next_run_at   timestamptz NOT NULL,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE deleted_at IS NULL;

CREATE TABLE reports (
    id              uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    framework       text        NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    model_id        text,
    formats         text[]      NOT NULL,
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
    stage           text        NOT NULL DEFAULT 'queued',
    progress        real        NOT NULL DEFAULT 0,
    error           text,
    requested_by    text        NOT NULL,
    schedule_id     uuid        REFERENCES schedules (id),
    attempts        int         NOT NULL DEFAULT 0,
    heartbeat_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    manifest        jsonb,                          -- hashes and signature; no personal data
    UNIQUE (schedule_id, period_start)
);
CREATE INDEX reports_tenant ON reports (tenant_id, created_at DESC);
CREATE INDEX reports_queue ON reports (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE report_files (
    report_id   uuid    NOT NULL REFERENCES reports (id),
    name        text    NOT NULL,
    media_type  text    NOT NULL,
    bytes       int     NOT NULL,
    sha256      text    NOT NULL,
    content     text    NOT NULL,                   -- encrypted under the tenant's data key
    PRIMARY KEY (report_id, name)
);
