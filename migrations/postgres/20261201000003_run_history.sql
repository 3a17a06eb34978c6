-- Every stripe:sync-customers and stripe:replay-events run, kept as its history
-- (RUN_HISTORY_DAYS, default 90): what it was (kind, flags, host), its progress
-- while it runs (done of total, live counts, the rate limiter's buckets), and how
-- it ended (exit code, interrupted, counts, the first 100 failures as JSON). A dry
-- run is recorded but takes no share of the account's rate (shares = 0).
ALTER TABLE stripe_sync_runs ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE stripe_sync_runs ADD COLUMN flags VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE stripe_sync_runs ADD COLUMN host VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE stripe_sync_runs ADD COLUMN shares SMALLINT NOT NULL DEFAULT 1;
ALTER TABLE stripe_sync_runs ADD COLUMN done BIGINT;
ALTER TABLE stripe_sync_runs ADD COLUMN total BIGINT;
ALTER TABLE stripe_sync_runs ADD COLUMN counts TEXT;
ALTER TABLE stripe_sync_runs ADD COLUMN limiter TEXT;
ALTER TABLE stripe_sync_runs ADD COLUMN exit_code INTEGER;
ALTER TABLE stripe_sync_runs ADD COLUMN interrupted SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE stripe_sync_runs ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stripe_sync_runs ADD COLUMN failures TEXT;
CREATE INDEX stripe_sync_runs_latest ON stripe_sync_runs (command, kind, ended_at);
