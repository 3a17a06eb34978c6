-- Webhook events applied, recorded in the same transaction as their change, so a
-- redelivered event is recognised and changes nothing.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    created      BIGINT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL
);
