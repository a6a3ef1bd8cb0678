-- The class contract of each classifier, as the registry announced it.
ALTER TABLE models ADD COLUMN classes jsonb;

-- Events held until their model's registry state arrives (or their label's prediction is
-- stashed), saved with the offsets that passed them, so a crash neither loses nor repeats
-- them. Raw record bytes: whatever they hold, PostgreSQL stores them.
CREATE TABLE held_events (
    group_id      text NOT NULL,
    partition     integer NOT NULL,
    source_offset bigint NOT NULL,
    tenant_id     text NOT NULL,
    model_id      text NOT NULL,
    held_since    double precision NOT NULL,
    reason        text NOT NULL,
    payload       bytea NOT NULL,
    PRIMARY KEY (group_id, partition, source_offset)
);
