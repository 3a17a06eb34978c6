-- Job postings, published once their fee is paid through Stripe Checkout.
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- One per rendered form, so a double submit makes one job (and one session).
    form_token          TEXT NOT NULL UNIQUE,
    title               TEXT NOT NULL,
    company             TEXT NOT NULL,
    description         TEXT NOT NULL,
    -- The fee is fixed when the job is posted: a Checkout Session's idempotency key
    -- must always be sent with the same parameters.
    fee_amount          BIGINT NOT NULL,
    fee_currency        TEXT NOT NULL,
    status              TEXT NOT NULL,
    checkout_attempt    INTEGER NOT NULL DEFAULT 0,
    checkout_session_id TEXT NULL,
    checkout_url        TEXT NULL,
    published_at        TEXT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX jobs_user_id ON jobs (user_id);

-- Job-posting payments, recorded from Stripe's webhook events only.
CREATE TABLE payments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id              BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    checkout_session_id TEXT NOT NULL UNIQUE,
    payment_intent_id   TEXT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX payments_user_id ON payments (user_id);
