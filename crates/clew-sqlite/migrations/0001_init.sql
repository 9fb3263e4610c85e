-- clew SQLite schema, version 1.
--
-- Every time is an INTEGER of microseconds since the Unix epoch (UTC).
-- JSON columns hold compact serde_json text.

-- One row per job. `loc`, `sort_prio`, `sort_time` and `seq` place the job
-- in its queue's sets (see clew_core::Loc).
CREATE TABLE jobs (
    jid           TEXT    PRIMARY KEY NOT NULL,
    klass         TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    tags          TEXT    NOT NULL,          -- JSON array of strings
    worker        TEXT    NOT NULL,
    expires       INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    remaining     INTEGER NOT NULL,
    time          INTEGER NOT NULL,
    grace         INTEGER NOT NULL,          -- 0 or 1
    scheduled     INTEGER,
    failure       TEXT,                      -- JSON of clew_core::Failure
    spawned_from  TEXT,
    worker_listed INTEGER NOT NULL,          -- 0 or 1
    fail_group    TEXT,
    fail_seq      INTEGER NOT NULL,
    loc           INTEGER NOT NULL,          -- clew_core::Loc::code
    sort_prio     INTEGER NOT NULL,
    sort_time     INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);
-- The work list's pop order (covering, so a time filter needs no row reads).
CREATE INDEX jobs_work ON jobs (queue, loc, sort_prio DESC, sort_time, seq, jid);
-- The other sets' order (and time ranges over them).
CREATE INDEX jobs_time ON jobs (queue, loc, sort_time, jid);
CREATE INDEX jobs_failed ON jobs (fail_group, fail_seq, jid) WHERE fail_group IS NOT NULL;
CREATE INDEX jobs_worker ON jobs (worker, expires, jid) WHERE worker_listed = 1;

-- Job histories; `id` orders the entries of one job.
CREATE TABLE history (
    id    INTEGER PRIMARY KEY,
    jid   TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    what  TEXT    NOT NULL,
    extra TEXT    NOT NULL                   -- JSON object
);
CREATE INDEX history_jid ON history (jid, id);

-- Dependency edges: `jid` waits for `dep`.
CREATE TABLE deps (
    jid TEXT NOT NULL,
    dep TEXT NOT NULL,
    PRIMARY KEY (jid, dep)
) WITHOUT ROWID;
CREATE INDEX deps_dep ON deps (dep, jid);

-- The tag index and the tag usage counters.
CREATE TABLE tags (
    tag TEXT    NOT NULL,
    jid TEXT    NOT NULL,
    at  INTEGER NOT NULL,
    PRIMARY KEY (tag, jid)
) WITHOUT ROWID;
CREATE INDEX tags_by_time ON tags (tag, at, jid);
CREATE TABLE tag_counts (
    tag   TEXT    PRIMARY KEY NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tag_counts_top ON tag_counts (count DESC, tag);

-- Tracked jobs.
CREATE TABLE tracked (
    jid TEXT    PRIMARY KEY NOT NULL,
    at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tracked_by_time ON tracked (at, jid);

-- Known workers.
CREATE TABLE workers (
    name      TEXT    PRIMARY KEY NOT NULL,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX workers_by_time ON workers (last_seen DESC, name DESC);

-- Queue names: `known` ones are listed; `paused` survives forgetting.
CREATE TABLE queues (
    name       TEXT    PRIMARY KEY NOT NULL,
    known      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    paused     INTEGER NOT NULL
) WITHOUT ROWID;

-- Recurring job templates.
CREATE TABLE recurring (
    jid      TEXT    PRIMARY KEY NOT NULL,
    klass    TEXT    NOT NULL,
    queue    TEXT    NOT NULL,
    data     TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    tags     TEXT    NOT NULL,               -- JSON array of strings
    retries  INTEGER NOT NULL,
    interval REAL    NOT NULL,
    next_at  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    backlog  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX recurring_due ON recurring (queue, next_at, jid);

-- Statistics, per queue and UTC day (`day` is the day's first microsecond).
CREATE TABLE stats_timing (
    queue TEXT    NOT NULL,
    day   INTEGER NOT NULL,
    kind  TEXT    NOT NULL,                  -- 'wait' or 'run'
    count INTEGER NOT NULL,
    mean  REAL    NOT NULL,
    vk    REAL    NOT NULL,
    PRIMARY KEY (queue, day, kind)
) WITHOUT ROWID;
CREATE TABLE stats_hist (
    queue  TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    bucket TEXT    NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (queue, day, kind, bucket)
) WITHOUT ROWID;
CREATE TABLE stats_counters (
    queue    TEXT    NOT NULL,
    day      INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0,
    retries  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, day)
) WITHOUT ROWID;

-- Stored configuration values (defaults are not stored).
CREATE TABLE config (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The durable event log; AUTOINCREMENT so a number is never reused.
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    channel TEXT    NOT NULL,
    message TEXT    NOT NULL
);

-- Store-wide counters: `seq` is the placement sequence's last value.
CREATE TABLE meta (
    key   TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('seq', 0);
