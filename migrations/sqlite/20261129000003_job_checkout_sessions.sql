-- Every Checkout Session the app made for a job, with the attempt it belongs to.
-- A Checkout event is trusted only for a session made for that very job:
-- metadata alone can be copied onto any session by anyone with the account's key.
CREATE TABLE job_checkout_sessions (
    session_id VARCHAR(255) PRIMARY KEY,
    job_id     BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX job_checkout_sessions_job_id_index ON job_checkout_sessions (job_id);
