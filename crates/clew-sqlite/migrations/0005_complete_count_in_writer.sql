-- The complete-job counter (0003) is now kept by the writer (the Tx
-- cache adds each group's change at commit) instead of triggers: a trigger
-- on `jobs` made every job write keep a statement journal (13-15% of the
-- writer's time in the lifecycle benchmark).
DROP TRIGGER jobs_complete_insert;
DROP TRIGGER jobs_complete_delete;
DROP TRIGGER jobs_complete_update;
