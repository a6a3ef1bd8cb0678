-- Announcements (alert transitions, their audit records, retraining commands, delivery
-- outcomes and dead letters) written in the same statement as the state that decided them,
-- then relayed to Kafka (driftline_core.db.outbox): a crash after the save no longer loses
-- them (issue 18).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
