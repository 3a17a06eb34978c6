-- Laravel's names for the columns Laravel owns, so one users table can serve a
-- Laravel app and this one: its password column (bcrypt or Argon2id hashes both
-- verify), remember_token and email_verified_at.
ALTER TABLE users RENAME COLUMN password_hash TO password;
ALTER TABLE users ADD COLUMN remember_token VARCHAR(100) NULL;
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ NULL;
