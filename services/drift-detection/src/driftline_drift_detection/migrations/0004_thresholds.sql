-- Bootstrapped drift thresholds, computed once per reference when a model's reference
-- arrives (or at start, for stored models without one): a table of thresholds over window
-- sizes per feature, named by the fingerprint of what it depends on (the reference's sample
-- or shares, alpha, the method's version), so models with the same reference share it and a
-- new reference never reads an old table. Window closes read them; they never compute one.
CREATE TABLE thresholds (
    fingerprint text PRIMARY KEY,
    test        text NOT NULL,
    thresholds  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
