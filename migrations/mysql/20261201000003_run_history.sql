-- Every stripe:sync-customers and stripe:replay-events run, kept as its history
-- (RUN_HISTORY_DAYS, default 90): what it was (kind, flags, host), its progress
-- while it runs (done of total, live counts, the rate limiter's buckets), and how
-- it ended (exit code, interrupted, counts, the first 100 failures as JSON). A dry
-- run is recorded but takes no share of the account's rate (shares = 0).
ALTER TABLE stripe_sync_runs
    ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT '',
    ADD COLUMN flags VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN host VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN shares SMALLINT NOT NULL DEFAULT 1,
    ADD COLUMN done BIGINT,
    ADD COLUMN total BIGINT,
    ADD COLUMN counts TEXT,
    ADD COLUMN limiter TEXT,
    ADD COLUMN exit_code INTEGER,
    ADD COLUMN interrupted SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN failed BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN failures TEXT,
    ADD KEY stripe_sync_runs_latest (command, kind, ended_at);
