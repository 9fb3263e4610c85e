-- Batches: a group of jobs with progress counters and a callback job (see
-- clew_core::batch). A job names its batch and how the batch counts it
-- (clew_core::batch::BatchOutcome::code: 0 pending, 1 complete, 2 failed);
-- old rows belong to no batch.
ALTER TABLE jobs ADD COLUMN batch TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN batch_outcome BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_batch ON jobs (batch, jid) WHERE batch IS NOT NULL;

CREATE TABLE batches (
    id           TEXT COLLATE "C" PRIMARY KEY,
    created      BIGINT NOT NULL,
    spec         TEXT   NOT NULL,            -- JSON of clew_core::batch::BatchSpec
    total        BIGINT NOT NULL,
    pending      BIGINT NOT NULL,
    complete     BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    canceled     BIGINT NOT NULL,
    finished     BIGINT,
    callback_jid TEXT
);
CREATE INDEX batches_created ON batches (created DESC, id DESC);
