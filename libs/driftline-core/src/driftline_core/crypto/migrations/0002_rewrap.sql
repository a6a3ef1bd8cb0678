-- When a data key was last re-wrapped under a new key-encryption key (KEK rotation).
ALTER TABLE data_keys ADD COLUMN rewrapped_at timestamptz;
CREATE INDEX data_keys_kek ON data_keys (kek_id) WHERE wrapped IS NOT NULL;
