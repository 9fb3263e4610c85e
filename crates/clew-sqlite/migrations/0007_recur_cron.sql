-- Cron schedules of recurring templates: a 5-field expression (NULL: the
-- template recurs on `interval`), its IANA zone (NULL: UTC) and what it does
-- with missed ticks ('catch-up' or 'skip').
ALTER TABLE recurring ADD COLUMN cron TEXT;
ALTER TABLE recurring ADD COLUMN timezone TEXT;
ALTER TABLE recurring ADD COLUMN missed TEXT NOT NULL DEFAULT 'catch-up';
