-- `jobs` is Laravel's queue table: job postings get a name of their own, and so
-- do the indexes, constraints and sequence named after it (Laravel's own `jobs`
-- would otherwise collide with `jobs_pkey`). Foreign keys follow the rename.
ALTER TABLE jobs RENAME TO job_postings;
ALTER INDEX jobs_pkey RENAME TO job_postings_pkey;
ALTER INDEX jobs_form_token_key RENAME TO job_postings_form_token_key;
ALTER INDEX jobs_user_id RENAME TO job_postings_user_id_index;
ALTER SEQUENCE jobs_id_seq RENAME TO job_postings_id_seq;
ALTER TABLE job_postings RENAME CONSTRAINT jobs_user_id_fkey TO job_postings_user_id_fkey;
