-- A classifier's class contract: its classes, positive class and spelling map (declared at
-- registration, or learnt once from the reference's label column). NULL: none yet.
ALTER TABLE models ADD COLUMN classes jsonb;
