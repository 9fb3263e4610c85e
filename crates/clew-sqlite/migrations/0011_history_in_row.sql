-- clew SQLite schema: each job's history lives in its row, as qless keeps
-- it in the job's hash. `history` is a JSON array of `[at, what, extra]`
-- entries, oldest first (`at` in microseconds, `extra` an object). A step
-- of a job's life (put, pop, complete) rewrites the row anyway; a table of
-- its own cost two B-tree inserts per entry (the row and the `history_jid`
-- index) and a query to list them when a pop hands the job out.
ALTER TABLE jobs ADD COLUMN history TEXT NOT NULL DEFAULT '[]';
UPDATE jobs SET history = (
    SELECT json_group_array(json_array(h.at, h.what, json(h.extra)) ORDER BY h.id)
    FROM history h WHERE h.jid = jobs.jid
) WHERE jid IN (SELECT jid FROM history);
-- Entries of jobs that no longer exist go with the table (the logic deletes
-- a job's history with it; none are read without the job).
DROP TABLE history;
