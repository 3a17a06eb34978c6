-- The job-posting tables in their present shape, for a database adopted from a
-- Laravel app (see src/db/adopt.rs): there the earlier migrations that made them
-- under the name `jobs`, Laravel's queue table, are recorded without being run.
-- Everywhere else they exist already and this changes nothing.
CREATE TABLE IF NOT EXISTS job_postings (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    form_token          TEXT NOT NULL UNIQUE,
    title               TEXT NOT NULL,
    company             TEXT NOT NULL,
    description         TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS job_postings_user_id_index ON job_postings (user_id);

CREATE TABLE IF NOT EXISTS payments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id              BIGINT NOT NULL REFERENCES job_postings (id) ON DELETE CASCADE,
    checkout_session_id TEXT NOT NULL UNIQUE,
    payment_intent_id   TEXT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_user_id ON payments (user_id);

CREATE TABLE IF NOT EXISTS job_checkout_sessions (
    session_id VARCHAR(255) PRIMARY KEY,
    job_id     BIGINT NOT NULL REFERENCES job_postings (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_checkout_sessions_job_id_index ON job_checkout_sessions (job_id);
