-- The complete count of migration 0004 kept in 16 more rows, 'complete:0'
-- to 'complete:15', the one a transaction adds to picked by its id; the
-- count is the sum of 'complete' and those. Completes run next to each
-- other (and to pops) since this version: with one row, each complete
-- would hold it from its first completion to its commit, and the others
-- would wait for that commit.
CREATE OR REPLACE FUNCTION jobs_complete_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
        INSERT INTO counters (name, n) VALUES ('complete:' || (txid_current() % 16), delta)
            ON CONFLICT (name) DO UPDATE SET n = counters.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;
