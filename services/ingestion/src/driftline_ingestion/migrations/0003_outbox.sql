-- Events waiting to be relayed to Kafka (see driftline_core.db.outbox).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
