-- Job postings (not `jobs`: that is Laravel's queue table), published once their
-- fee is paid through Stripe Checkout; their payments, recorded from Stripe's
-- webhook events only; and every Checkout Session made for a job, with its
-- attempt (an event is trusted only for a session made for that very job).
-- `IF NOT EXISTS`, as on the other databases, where this version also fills in a
-- database adopted from a Laravel app.
CREATE TABLE IF NOT EXISTS job_postings (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Laravel's `foreignId`: the type of users.id.
    user_id             BIGINT UNSIGNED NOT NULL,
    -- One per rendered form, so a double submit makes one job (and one session).
    form_token          VARCHAR(255) NOT NULL,
    title               VARCHAR(255) NOT NULL,
    company             VARCHAR(255) NOT NULL,
    description         TEXT NOT NULL,
    -- The fee is fixed when the job is posted: a Checkout Session's idempotency key
    -- must always be sent with the same parameters.
    fee_amount          BIGINT NOT NULL,
    fee_currency        VARCHAR(3) NOT NULL,
    status              VARCHAR(32) NOT NULL,
    checkout_attempt    INT NOT NULL DEFAULT 0,
    checkout_session_id VARCHAR(255) NULL,
    checkout_url        TEXT NULL,
    published_at        DATETIME(6) NULL,
    created_at          DATETIME(6) NOT NULL,
    updated_at          DATETIME(6) NOT NULL,
    UNIQUE KEY job_postings_form_token_unique (form_token),
    KEY job_postings_user_id_index (user_id),
    CONSTRAINT job_postings_user_id_foreign FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS payments (
    id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id             BIGINT UNSIGNED NOT NULL,
    job_id              BIGINT NOT NULL,
    checkout_session_id VARCHAR(255) NOT NULL,
    payment_intent_id   VARCHAR(255) NULL,
    amount              BIGINT NOT NULL,
    currency            VARCHAR(3) NOT NULL,
    status              VARCHAR(32) NOT NULL,
    created_at          DATETIME(6) NOT NULL,
    updated_at          DATETIME(6) NOT NULL,
    UNIQUE KEY payments_checkout_session_id_unique (checkout_session_id),
    KEY payments_user_id_index (user_id),
    -- A refund finds its payment by intent, under a row lock: an index keeps the
    -- lock on that row alone.
    KEY payments_payment_intent_id_index (payment_intent_id),
    CONSTRAINT payments_user_id_foreign FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT payments_job_id_foreign FOREIGN KEY (job_id)
        REFERENCES job_postings (id) ON DELETE CASCADE
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS job_checkout_sessions (
    session_id VARCHAR(255) NOT NULL PRIMARY KEY,
    job_id     BIGINT NOT NULL,
    attempt    INT NOT NULL,
    created_at BIGINT NOT NULL,
    KEY job_checkout_sessions_job_id_index (job_id),
    CONSTRAINT job_checkout_sessions_job_id_foreign FOREIGN KEY (job_id)
        REFERENCES job_postings (id) ON DELETE CASCADE
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
