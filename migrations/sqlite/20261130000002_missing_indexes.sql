-- Indexes for queries that ran over whole tables:
-- every process renews its claims on users every 5 s (`WHERE stripe_lease_holder = ?`);
-- only rows under a claim are indexed, so the index stays as small as the work in flight.
CREATE INDEX IF NOT EXISTS users_stripe_lease_holder_index
    ON users (stripe_lease_holder) WHERE stripe_lease_holder IS NOT NULL;
-- A refund or a Checkout session's intent finds its payment by intent.
CREATE INDEX IF NOT EXISTS payments_payment_intent_id_index ON payments (payment_intent_id);
-- `serve` prunes applied events by their Stripe time.
CREATE INDEX IF NOT EXISTS stripe_events_created_index ON stripe_events (created);
