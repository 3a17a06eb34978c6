-- MySQL and MariaDB start from the schema's present shape (their history on the
-- other databases is in migrations/sqlite and migrations/postgres), under the same
-- versions, so adoption (src/db/adopt.rs) records the same ones on every driver.
--
-- Users as Laravel 11 and Cashier 15 make them on MySQL (the same column types, so
-- a Laravel app can use this table and this app a Laravel app's), plus what the
-- sync service needs to create a Stripe customer exactly once (src/sync/create.rs).
CREATE TABLE users (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                 VARCHAR(255) NOT NULL,
    email                VARCHAR(255) NOT NULL,
    email_verified_at    TIMESTAMP NULL,
    password             VARCHAR(255) NOT NULL,
    remember_token       VARCHAR(100) NULL,
    created_at           TIMESTAMP NULL,
    updated_at           TIMESTAMP NULL,
    stripe_id            VARCHAR(255) NULL,
    pm_type              VARCHAR(255) NULL,
    pm_last_four         VARCHAR(4) NULL,
    trial_ends_at        TIMESTAMP NULL,
    -- The Stripe-side fields the settings page shows, as last pulled, and when.
    stripe_snapshot      TEXT NULL,
    stripe_snapshot_at   DATETIME(6) NULL,
    -- An in-flight or interrupted customer creation: its idempotency key and the
    -- parameters fixed with that key.
    stripe_create_key    TEXT NULL,
    stripe_create_params TEXT NULL,
    -- Which process holds the row for a create or update, and until when (Unix ms).
    stripe_lease_holder  VARCHAR(64) NULL,
    stripe_lease_expires BIGINT NULL,
    -- What was last pushed to Stripe (a hash of name and email) and when.
    stripe_synced_hash   TEXT NULL,
    stripe_synced_at     DATETIME(6) NULL,
    -- `created` (Unix seconds) of the newest customer event applied.
    stripe_event_created BIGINT NULL,
    UNIQUE KEY users_email_unique (email),
    -- One user per customer; MySQL's unique indexes let any number of rows be NULL.
    UNIQUE KEY users_stripe_id_unique (stripe_id)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
