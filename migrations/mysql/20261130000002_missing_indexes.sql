-- Indexes for queries that ran over whole tables:
-- every process renews its claims on users every 5 s (`WHERE stripe_lease_holder = ?`);
-- (payments.payment_intent_id has had its index on MySQL from the start.)
CREATE INDEX users_stripe_lease_holder_index ON users (stripe_lease_holder);
-- `serve` prunes applied events by their Stripe time.
CREATE INDEX stripe_events_created_index ON stripe_events (created);
