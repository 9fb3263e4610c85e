-- clew SQLite schema: throttles (clew_core::throttle).
-- A job's throttle names: a JSON array of strings.
ALTER TABLE jobs ADD COLUMN throttles TEXT NOT NULL DEFAULT '[]';
-- Defined throttles and their maxima (0: unlimited).
CREATE TABLE throttles (
    name TEXT    PRIMARY KEY NOT NULL,
    max  INTEGER NOT NULL
) WITHOUT ROWID;
-- Slots and waiters: one row per job and throttle while the job holds a
-- slot (`holding` 1: in the lock set) or waits for one (`holding` 0: in
-- the throttled placement, ordered by its work-list place prio/time/seq).
CREATE TABLE throttle_jobs (
    throttle TEXT    NOT NULL,
    jid      TEXT    NOT NULL,
    holding  INTEGER NOT NULL,
    prio     INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (throttle, jid)
) WITHOUT ROWID;
CREATE INDEX throttle_jobs_jid ON throttle_jobs (jid);
CREATE INDEX throttle_jobs_order ON throttle_jobs (throttle, holding, prio DESC, time, seq, jid);
