-- The value each synced customer field last had on both sides (JSON: field → value),
-- the base of the three-way merge in src/sync/fields/merge.rs. NULL until the first
-- create, push or pull after the upgrade: the user's fields then start from the
-- local values.
ALTER TABLE users ADD COLUMN stripe_base TEXT NULL;
