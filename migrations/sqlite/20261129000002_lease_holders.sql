-- A claim on a user row now names its holder (one id per running process) and
-- expires in Unix milliseconds: the holder renews its claims every few seconds
-- while it lives, so a killed holder's claims lapse within seconds, and an integer
-- compares correctly on every driver (SQLite compared the old text timestamps as
-- text).
ALTER TABLE users ADD COLUMN stripe_lease_holder VARCHAR(64) NULL;
ALTER TABLE users ADD COLUMN stripe_lease_expires BIGINT NULL;
ALTER TABLE users DROP COLUMN stripe_lease_until;
