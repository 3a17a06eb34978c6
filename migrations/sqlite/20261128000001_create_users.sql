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
    -- An in-flight or interrupted customer creation: its idempotency key, the
    -- parameters fixed with that key, and until when the attempt holds the row.
    stripe_create_key         TEXT NULL,
    stripe_create_params      TEXT NULL,
    stripe_create_lease_until TEXT NULL,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL
);

CREATE UNIQUE INDEX users_stripe_id_unique ON users (stripe_id) WHERE stripe_id IS NOT NULL;
