-- clew PostgreSQL schema: throttle rate limits (clew_core::throttle::ThrottleRate).
-- A throttle's rate: at most rate_limit starts per rate_period seconds
-- (0: no rate limit).
ALTER TABLE throttles ADD COLUMN rate_limit BIGINT NOT NULL DEFAULT 0;
ALTER TABLE throttles ADD COLUMN rate_period BIGINT NOT NULL DEFAULT 0;
-- Starts of rate-limited throttles (microseconds), pruned as pops add.
CREATE TABLE throttle_starts (
    throttle TEXT COLLATE "C" NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX throttle_starts_at ON throttle_starts (throttle, at);
