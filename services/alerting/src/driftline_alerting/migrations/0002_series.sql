-- Rule series get a row each, written only when they change (the state document keeps the
-- dispatcher and the cooldowns).
CREATE TABLE series (
    fingerprint text PRIMARY KEY,
    body        jsonb NOT NULL
);

-- aggregation groups (by group key) and notification log entries ("log:" + key)
CREATE TABLE dispatch (
    key  text PRIMARY KEY,
    body jsonb NOT NULL
);
