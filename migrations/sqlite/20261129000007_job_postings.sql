-- `jobs` is Laravel's queue table: job postings get a name of their own, and so
-- do their indexes (SQLite's index names are shared by the whole database).
-- Foreign keys from payments and job_checkout_sessions follow the rename.
ALTER TABLE jobs RENAME TO job_postings;
DROP INDEX jobs_user_id;
CREATE INDEX job_postings_user_id_index ON job_postings (user_id);
