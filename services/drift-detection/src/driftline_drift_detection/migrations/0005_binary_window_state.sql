-- Open windows are checkpointed in binary (decision 44): MessagePack with each KLL sketch
-- in its compact serialisation and arrays as raw bytes, a third of the JSON's size. Rows
-- written before keep their JSON state until their window closes; new rows carry state_bin.
ALTER TABLE windows ADD COLUMN state_bin bytea;
ALTER TABLE windows ALTER COLUMN state DROP NOT NULL;
ALTER TABLE windows ADD CONSTRAINT windows_some_state
    CHECK (state IS NOT NULL OR state_bin IS NOT NULL);
