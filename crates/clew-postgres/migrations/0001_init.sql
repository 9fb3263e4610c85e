-- clew PostgreSQL schema, version 1.
--
-- Runs with `search_path` set to the store's schema, so every object below
-- lands there. Every time is a BIGINT of microseconds since the Unix epoch
-- (UTC), as clew_core::Timestamp. JSON columns hold compact serde_json text;
-- job data is TEXT so it round-trips byte for byte. Every text column that
-- orders a listing uses COLLATE "C" (byte order), whatever the database's
-- collation.

-- One row per job. `loc`, `sort_prio`, `sort_time` and `seq` place the job
-- in its queue's sets (see clew_core::Loc).
CREATE TABLE jobs (
    jid           TEXT COLLATE "C" PRIMARY KEY,
    klass         TEXT    NOT NULL,
    queue         TEXT COLLATE "C" NOT NULL,
    state         TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    priority      BIGINT  NOT NULL,
    tags          TEXT    NOT NULL,          -- JSON array of strings
    worker        TEXT COLLATE "C" NOT NULL,
    expires       BIGINT  NOT NULL,
    retries       BIGINT  NOT NULL,
    remaining     BIGINT  NOT NULL,
    time          BIGINT  NOT NULL,
    grace         BOOLEAN NOT NULL,
    scheduled     BIGINT,
    failure       TEXT,                      -- JSON of clew_core::Failure
    spawned_from  TEXT,
    worker_listed BOOLEAN NOT NULL,
    fail_group    TEXT COLLATE "C",
    fail_seq      BIGINT  NOT NULL,
    loc           BIGINT  NOT NULL,          -- clew_core::Loc::code
    sort_prio     BIGINT  NOT NULL,
    sort_time     BIGINT  NOT NULL,
    seq           BIGINT  NOT NULL,
    metadata      TEXT    NOT NULL DEFAULT '{}'  -- JSON object
);
-- The work list's pop order.
CREATE INDEX jobs_work ON jobs (queue, loc, sort_prio DESC, sort_time, seq) INCLUDE (jid);
-- The other sets' order (and time ranges over them).
CREATE INDEX jobs_time ON jobs (queue, loc, sort_time, jid);
CREATE INDEX jobs_failed ON jobs (fail_group, fail_seq, jid) WHERE fail_group IS NOT NULL;
CREATE INDEX jobs_worker ON jobs (worker, expires, jid) WHERE worker_listed;

-- Job histories; `id` orders the entries of one job.
CREATE TABLE history (
    id    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jid   TEXT COLLATE "C" NOT NULL,
    at    BIGINT  NOT NULL,
    what  TEXT    NOT NULL,
    extra TEXT    NOT NULL                   -- JSON object
);
CREATE INDEX history_jid ON history (jid, id);

-- Dependency edges: `jid` waits for `dep`.
CREATE TABLE deps (
    jid TEXT COLLATE "C" NOT NULL,
    dep TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (jid, dep)
);
CREATE INDEX deps_dep ON deps (dep, jid);

-- The tag index and the tag usage counters.
CREATE TABLE tags (
    tag TEXT COLLATE "C" NOT NULL,
    jid TEXT COLLATE "C" NOT NULL,
    at  BIGINT NOT NULL,
    PRIMARY KEY (tag, jid)
);
CREATE INDEX tags_by_time ON tags (tag, at, jid);
CREATE TABLE tag_counts (
    tag   TEXT COLLATE "C" PRIMARY KEY,
    count BIGINT NOT NULL
);
CREATE INDEX tag_counts_top ON tag_counts (count DESC, tag);

-- Tracked jobs.
CREATE TABLE tracked (
    jid TEXT COLLATE "C" PRIMARY KEY,
    at  BIGINT NOT NULL
);
CREATE INDEX tracked_by_time ON tracked (at, jid);

-- Known workers.
CREATE TABLE workers (
    name      TEXT COLLATE "C" PRIMARY KEY,
    last_seen BIGINT NOT NULL
);
CREATE INDEX workers_by_time ON workers (last_seen DESC, name DESC);

-- Queue names: `known` ones are listed; `paused` survives forgetting.
CREATE TABLE queues (
    name       TEXT COLLATE "C" PRIMARY KEY,
    known      BOOLEAN NOT NULL,
    first_seen BIGINT  NOT NULL,
    paused     BOOLEAN NOT NULL
);

-- Recurring job templates.
CREATE TABLE recurring (
    jid      TEXT COLLATE "C" PRIMARY KEY,
    klass    TEXT    NOT NULL,
    queue    TEXT COLLATE "C" NOT NULL,
    data     TEXT    NOT NULL,
    priority BIGINT  NOT NULL,
    tags     TEXT    NOT NULL,               -- JSON array of strings
    retries  BIGINT  NOT NULL,
    interval DOUBLE PRECISION NOT NULL,
    next_at  BIGINT  NOT NULL,
    count    BIGINT  NOT NULL,
    backlog  BIGINT  NOT NULL
);
CREATE INDEX recurring_due ON recurring (queue, next_at, jid);

-- Statistics, per queue and UTC day (`day` is the day's first microsecond).
CREATE TABLE stats_timing (
    queue TEXT COLLATE "C" NOT NULL,
    day   BIGINT NOT NULL,
    kind  TEXT   NOT NULL,                   -- 'wait' or 'run'
    count BIGINT NOT NULL,
    mean  DOUBLE PRECISION NOT NULL,
    vk    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (queue, day, kind)
);
CREATE TABLE stats_hist (
    queue  TEXT COLLATE "C" NOT NULL,
    day    BIGINT NOT NULL,
    kind   TEXT   NOT NULL,
    bucket TEXT COLLATE "C" NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (queue, day, kind, bucket)
);
CREATE TABLE stats_counters (
    queue    TEXT COLLATE "C" NOT NULL,
    day      BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    failed   BIGINT NOT NULL DEFAULT 0,
    retries  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, day)
);

-- Stored configuration values (defaults are not stored).
CREATE TABLE config (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- The durable event log. An identity never hands a number out twice, and
-- commands commit one at a time (the store's advisory lock), so numbers
-- become visible in increasing order.
CREATE TABLE events (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    channel TEXT   NOT NULL,
    message TEXT   NOT NULL
);

-- The placement sequence (clew_core::Tx::seq_next).
CREATE SEQUENCE placement_seq;
