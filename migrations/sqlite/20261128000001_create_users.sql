-- Users with Laravel Cashier's customer columns, plus what the sync service needs
-- to create a Stripe customer exactly once (see src/sync/create.rs).
CREATE TABLE users (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    name                      TEXT NOT NULL,
    email                     TEXT NOT NULL UNIQUE,
    password_hash             TEXT NOT NULL,
    stripe_id                 TEXT NULL,
    pm_type                   TEXT NULL,
    pm_last_four              TEXT NULL,
    trial_ends_at             TEXT NULL,
    -- The Stripe-side fields the settings page shows, as last pulled, and when.
    stripe_snapshot           TEXT NULL,
    stripe_snapshot_at        TEXT NULL,
    -- An in-flight or interrupted customer creation: its idempotency key and the
    -- parameters fixed with that key.
    stripe_create_key         TEXT NULL,
    stripe_create_params      TEXT NULL,
    -- Until when one create or update holds the row (crashed holders lapse).
    stripe_lease_until        TEXT NULL,
    -- What was last pushed to Stripe (a hash of name and email) and when.
    stripe_synced_hash        TEXT NULL,
    stripe_synced_at          TEXT NULL,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL
);

CREATE UNIQUE INDEX users_stripe_id_unique ON users (stripe_id) WHERE stripe_id IS NOT NULL;
