-- Uniqueness keys (singleton jobs). A job may carry a key; at most one
-- live job (neither failed nor complete) holds a key. The logic enforces it
-- (clew_core::unique) under the schema's exclusive command lock; this
-- unique partial index makes a second live holder fail loudly whatever the
-- path, and serves Tx::unique_holder's look-up (same condition).
ALTER TABLE jobs ADD COLUMN unique_key TEXT COLLATE "C";
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('failed', 'complete');
