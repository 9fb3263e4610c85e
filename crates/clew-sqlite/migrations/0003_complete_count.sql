-- How many jobs are complete (loc 5), kept by triggers so that expiring
-- completed jobs past `jobs-history-count` does not count them on every
-- complete.
CREATE TABLE counters (
    name TEXT    PRIMARY KEY NOT NULL,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, n) SELECT 'complete', COUNT(*) FROM jobs WHERE loc = 5;

CREATE TRIGGER jobs_complete_insert AFTER INSERT ON jobs WHEN new.loc = 5
BEGIN
    INSERT INTO counters (name, n) VALUES ('complete', 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_complete_delete AFTER DELETE ON jobs WHEN old.loc = 5
BEGIN
    INSERT INTO counters (name, n) VALUES ('complete', -1)
        ON CONFLICT (name) DO UPDATE SET n = n - 1;
END;
CREATE TRIGGER jobs_complete_update AFTER UPDATE OF loc ON jobs
    WHEN (old.loc = 5) <> (new.loc = 5)
BEGIN
    INSERT INTO counters (name, n) VALUES ('complete', CASE WHEN new.loc = 5 THEN 1 ELSE -1 END)
        ON CONFLICT (name) DO UPDATE SET n = n + excluded.n;
END;
