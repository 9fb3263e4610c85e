-- clew SQLite schema: batches (a group of jobs with progress counters and a
-- callback job; see clew_core::batch). A job names its batch and how the
-- batch counts it (clew_core::batch::BatchOutcome::code: 0 pending,
-- 1 complete, 2 failed); old rows belong to no batch.
ALTER TABLE jobs ADD COLUMN batch TEXT;
ALTER TABLE jobs ADD COLUMN batch_outcome INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_batch ON jobs (batch, jid) WHERE batch IS NOT NULL;

CREATE TABLE batches (
    id           TEXT    PRIMARY KEY NOT NULL,
    created      INTEGER NOT NULL,
    spec         TEXT    NOT NULL,          -- JSON of clew_core::batch::BatchSpec
    total        INTEGER NOT NULL,
    pending      INTEGER NOT NULL,
    complete     INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    canceled     INTEGER NOT NULL,
    finished     INTEGER,
    callback_jid TEXT
);
CREATE INDEX batches_created ON batches (created DESC, id DESC);
