-- Publisher cursors shared by every process on the schema: the sequence
-- number of the last lifecycle event each `--publish` sink took (the sink's
-- name is its spec). Saved by the process leading the sink; a save never
-- moves a cursor backwards. A flush keeps them (event numbers keep counting).
CREATE TABLE publisher_cursors (
    name       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
