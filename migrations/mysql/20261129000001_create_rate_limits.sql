-- Request limits (sign-in attempts, Stripe actions) counted in the database, so
-- every instance of the app sees the same counts. A bucket's key is a fixed-width
-- hash, never an email address; reset_at is in Unix seconds. Lapsed rows are pruned.
CREATE TABLE rate_limits (
    bucket   VARCHAR(64) NOT NULL PRIMARY KEY,
    hits     BIGINT NOT NULL,
    reset_at BIGINT NOT NULL,
    KEY rate_limits_reset_at_index (reset_at)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
