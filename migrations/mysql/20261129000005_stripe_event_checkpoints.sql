-- Where `stripe:replay-events` got to: the last event it applied with every
-- earlier one applied too (created in Unix seconds, ties ordered by id). The next
-- run continues from a minute before it (events can appear in the list slightly
-- late; ones applied already are recognised by stripe_events).
CREATE TABLE stripe_event_checkpoints (
    name          VARCHAR(64) NOT NULL PRIMARY KEY,
    event_id      VARCHAR(255) NOT NULL,
    event_created BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
