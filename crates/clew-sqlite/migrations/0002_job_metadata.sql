-- clew SQLite schema, version 2: user metadata on jobs (resque-clues
-- metadata: set at put, added to by a running handler). A JSON object.
ALTER TABLE jobs ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
