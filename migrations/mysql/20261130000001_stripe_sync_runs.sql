-- The processes doing bulk Stripe work (stripe:sync-customers, stripe:replay-events)
-- now or before: Stripe's rate limits are per account, so each living run takes its
-- share of the planned rate. A run beats every second; one whose heartbeat lapsed
-- was killed. Times are Unix milliseconds.
CREATE TABLE stripe_sync_runs (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    holder       VARCHAR(64) NOT NULL,
    command      VARCHAR(64) NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    ended_at     BIGINT,
    UNIQUE KEY stripe_sync_runs_holder (holder),
    KEY stripe_sync_runs_living (ended_at, heartbeat_at)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
