-- Webhook events applied, recorded in the same transaction as their change, so a
-- redelivered event is recognised and changes nothing.
CREATE TABLE stripe_events (
    id           VARCHAR(255) NOT NULL PRIMARY KEY,
    type         VARCHAR(255) NOT NULL,
    created      BIGINT NOT NULL,
    processed_at DATETIME(6) NOT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
