-- clew PostgreSQL schema: throttles (clew_core::throttle).
-- A job's throttle names: a JSON array of strings.
ALTER TABLE jobs ADD COLUMN throttles TEXT NOT NULL DEFAULT '[]';
-- Defined throttles and their maxima (0: unlimited).
CREATE TABLE throttles (
    name TEXT COLLATE "C" PRIMARY KEY,
    max  BIGINT NOT NULL
);
-- Slots and waiters: one row per job and throttle while the job holds a
-- slot (`holding`: in the lock set) or waits for one (not `holding`: in
-- the throttled placement, ordered by its work-list place prio/time/seq).
CREATE TABLE throttle_jobs (
    throttle TEXT COLLATE "C" NOT NULL,
    jid      TEXT COLLATE "C" NOT NULL,
    holding  BOOLEAN NOT NULL,
    prio     BIGINT  NOT NULL,
    time     BIGINT  NOT NULL,
    seq      BIGINT  NOT NULL,
    PRIMARY KEY (throttle, jid)
);
CREATE INDEX throttle_jobs_jid ON throttle_jobs (jid);
CREATE INDEX throttle_jobs_order ON throttle_jobs (throttle, holding, prio DESC, time, seq, jid);
