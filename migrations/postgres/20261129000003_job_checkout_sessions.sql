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

-- Sessions made before this table existed: a job's current session is its own, so
-- its events keep being applied after the upgrade (created_at unknown: 0).
INSERT INTO job_checkout_sessions (session_id, job_id, attempt, created_at)
SELECT checkout_session_id, id, checkout_attempt, 0 FROM jobs
WHERE checkout_session_id IS NOT NULL;
