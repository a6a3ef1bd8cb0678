-- What drift detection knows of each model (from driftline.registry.v1) and its own state:
-- open windows and the source offsets they include, checkpointed in one transaction, so a
-- restart resumes exactly where the saved state ends (each event counted once).
CREATE TABLE models (
    tenant_id   text NOT NULL,
    model_id    text NOT NULL,
    monitoring  jsonb NOT NULL DEFAULT '{}',
    references_ jsonb,
    profile_version integer,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model_id)
);

CREATE TABLE offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);

CREATE TABLE windows (
    group_id     text NOT NULL,
    partition    integer NOT NULL,
    tenant_id    text NOT NULL,
    model_id     text NOT NULL,
    model_version text NOT NULL,
    window_start double precision NOT NULL,
    state        jsonb NOT NULL,
    PRIMARY KEY (group_id, tenant_id, model_id, model_version, window_start)
);
CREATE INDEX windows_partition ON windows (group_id, partition);

-- how far each model's windows are closed (events older than this are too late)
CREATE TABLE progress (
    group_id     text NOT NULL,
    partition    integer NOT NULL,
    tenant_id    text NOT NULL,
    model_id     text NOT NULL,
    closed_until double precision NOT NULL,
    watermark    double precision NOT NULL,
    PRIMARY KEY (group_id, tenant_id, model_id)
);
