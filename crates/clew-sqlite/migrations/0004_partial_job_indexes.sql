-- Each job sits in one of the two ordering indexes, not both: waiting jobs
-- (loc 1) in pop order, every other placement by time. A job moving
-- between placements now changes two index entries instead of four.
-- Queries name `loc = 1` or `loc <> 1` literally so the planner can use
-- them (see tx.rs). Both keep `loc` so listings stay covering.
DROP INDEX jobs_work;
DROP INDEX jobs_time;
CREATE INDEX jobs_work ON jobs (queue, loc, sort_prio DESC, sort_time, seq, jid) WHERE loc = 1;
CREATE INDEX jobs_time ON jobs (queue, loc, sort_time, jid) WHERE loc <> 1;
