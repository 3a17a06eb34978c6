-- The processes doing bulk Stripe work (stripe:sync-customers, stripe:replay-events)
-- now or before: Stripe's rate limits are per account, so each living run takes its
-- share of the planned rate. A run beats every second; one whose heartbeat lapsed
-- was killed. Times are Unix milliseconds.
CREATE TABLE stripe_sync_runs (
    id           BIGSERIAL PRIMARY KEY,
    holder       VARCHAR(64) NOT NULL UNIQUE,
    command      VARCHAR(64) NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX stripe_sync_runs_living ON stripe_sync_runs (ended_at, heartbeat_at);
