-- How many jobs are complete (loc 5), kept by a trigger so that expiring
-- completed jobs past `jobs-history-count` does not count them on every
-- complete. Only completes, cancels and expiry move jobs into or out of
-- loc 5, and those run under the schema's exclusive command lock, so the
-- one counter row is no point of contention for pops.
CREATE TABLE counters (
    name TEXT COLLATE "C" PRIMARY KEY,
    n    BIGINT NOT NULL
);
INSERT INTO counters (name, n) SELECT 'complete', COUNT(*) FROM jobs WHERE loc = 5;

CREATE FUNCTION jobs_complete_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := 0;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        IF NEW.loc = 5 THEN
            delta := delta + 1;
        END IF;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        IF OLD.loc = 5 THEN
            delta := delta - 1;
        END IF;
    END IF;
    IF delta <> 0 THEN
        INSERT INTO counters (name, n) VALUES ('complete', delta)
            ON CONFLICT (name) DO UPDATE SET n = counters.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_complete_count AFTER INSERT OR DELETE OR UPDATE OF loc ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_complete_count();
