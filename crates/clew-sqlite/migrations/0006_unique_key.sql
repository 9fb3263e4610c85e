-- clew SQLite schema: uniqueness keys (singleton jobs). A job may carry a
-- key; at most one live job (neither failed nor complete) holds a key. The
-- logic enforces it (clew_core::unique); this unique partial index makes a
-- second live holder fail loudly, and serves Tx::unique_holder's look-up
-- (its WHERE names the same condition literally).
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('failed', 'complete');
