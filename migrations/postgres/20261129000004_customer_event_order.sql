-- The `created` time (Unix seconds) of the newest customer event applied to the
-- row: an event older than it never overwrites the Stripe-side copy, whatever
-- order Stripe delivers or the Events API lists them in.
ALTER TABLE users ADD COLUMN stripe_event_created BIGINT NULL;
