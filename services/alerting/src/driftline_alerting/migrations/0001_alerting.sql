-- Alerting: rules, routing configuration and silences per tenant; the evaluation and
-- dispatch state (series, groups, notification log, cooldowns); deliveries as an outbox
-- with every attempt logged.
CREATE TABLE rules (
    tenant_id  text NOT NULL,
    id         text NOT NULL,
    body       jsonb NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE configs (
    tenant_id  text PRIMARY KEY,
    body       jsonb NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE silences (
    tenant_id  text NOT NULL,
    id         text NOT NULL,
    body       jsonb NOT NULL,
    ends_at    timestamptz NOT NULL,
    expiry_announced boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE state (
    id         text PRIMARY KEY,
    engine     jsonb NOT NULL,
    dispatcher jsonb NOT NULL,
    cooldowns  jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id              text PRIMARY KEY,          -- the idempotency key receivers see
    tenant_id       text NOT NULL,
    receiver        text NOT NULL,
    kind            text NOT NULL,             -- notification | remediation
    body            jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    delivery_id text NOT NULL REFERENCES deliveries (id),
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    ok          boolean NOT NULL,
    status_code integer,
    error       text,
    duration_ms double precision NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
