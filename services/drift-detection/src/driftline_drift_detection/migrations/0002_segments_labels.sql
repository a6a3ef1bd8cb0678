-- Segments, the model's task and schema, the PCA reference, and late-label performance.
ALTER TABLE models ADD COLUMN task text;
ALTER TABLE models ADD COLUMN features jsonb;          -- feature names of the current schema
ALTER TABLE models ADD COLUMN multivariate jsonb;      -- PCA reference, when one was fitted

ALTER TABLE windows ADD COLUMN segment text NOT NULL DEFAULT '';
ALTER TABLE windows DROP CONSTRAINT windows_pkey;
ALTER TABLE windows ADD PRIMARY KEY (group_id, tenant_id, model_id, model_version, segment, window_start);

-- open performance windows (by label time) and their accumulators
CREATE TABLE perf_windows (
    group_id     text NOT NULL,
    partition    integer NOT NULL,
    tenant_id    text NOT NULL,
    model_id     text NOT NULL,
    model_version text NOT NULL,
    segment      text NOT NULL,
    window_start double precision NOT NULL,
    state        jsonb NOT NULL,
    PRIMARY KEY (group_id, tenant_id, model_id, model_version, segment, window_start)
);
CREATE INDEX perf_windows_partition ON perf_windows (group_id, partition);

-- per model: how far performance windows are closed, and the change detector's state
CREATE TABLE perf_progress (
    group_id     text NOT NULL,
    partition    integer NOT NULL,
    tenant_id    text NOT NULL,
    model_id     text NOT NULL,
    closed_until double precision NOT NULL,
    watermark    double precision NOT NULL,
    detector     jsonb NOT NULL,
    PRIMARY KEY (group_id, tenant_id, model_id)
);
