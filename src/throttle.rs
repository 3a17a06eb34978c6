//! Request limits shared by every instance of the app.
//!
//! Invariant: no more than `max` guarded operations per bucket and window run,
//! however many requests arrive at once and at however many instances.
//! 1. The hit is counted *before* the work it guards (checking a password, calling
//!    Stripe), in one atomic upsert, so requests sent together are each counted.
//! 2. The count lives in the database, so every instance sees it.
//! 3. Buckets are keyed by a fixed-width hash of what they limit, so neither memory
//!    nor the table grows with the size of the input; lapsed rows are pruned.

use std::time::Duration;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::config::Limit;
use crate::db::{Db, rate_limits};

#[derive(Clone, Debug)]
pub struct Throttle {
    db: Db,
}

/// What a limit said of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Refused { retry_after: Duration },
}

/// One counter: a purpose and what it counts (an email, an address, a user id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket(String);

impl Bucket {
    pub fn new(purpose: &str, key: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(purpose.as_bytes())
            .chain_update([0u8])
            .chain_update(key.as_bytes())
            .finalize();
        Bucket(hex::encode(digest))
    }

    /// Password guesses at one account, keyed by its id: changing the login
    /// email starts no new count.
    pub fn password_guesses(user_id: i64) -> Self {
        Bucket::new("password-guesses:user", &user_id.to_string())
    }

    /// Sign-in attempts for an email no account has (as typed, trimmed and
    /// lower-cased), limited as an account's are, so the answer tells nothing.
    pub fn sign_in_unknown_email(email: &str) -> Self {
        Bucket::new("sign-in:unknown-email", &email.trim().to_lowercase())
    }

    /// Sign-in and registration attempts from one client address.
    pub fn sign_in_address(address: &str) -> Self {
        Bucket::new("sign-in:address", address)
    }

    /// Password-reset requests for one email, as typed, trimmed and lower-cased.
    pub fn password_reset_email(email: &str) -> Self {
        Bucket::new("password-reset:email", &email.trim().to_lowercase())
    }

    /// Password-reset requests from one client address.
    pub fn password_reset_address(address: &str) -> Self {
        Bucket::new("password-reset:address", address)
    }

    /// Actions on the page that call Stripe, for one user.
    pub fn stripe_actions(user_id: i64) -> Self {
        Bucket::new("stripe-actions:user", &user_id.to_string())
    }
}

impl Throttle {
    pub fn new(db: Db) -> Self {
        Throttle { db }
    }

    /// Counts a hit and says whether it is within the limit.
    pub async fn hit(&self, bucket: &Bucket, limit: Limit) -> Result<Verdict, sqlx::Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX / 2);
        let (hits, reset_at) = rate_limits::hit(&self.db, &bucket.0, now, now + window).await?;
        if hits <= i64::from(limit.max) {
            return Ok(Verdict::Allowed);
        }
        let seconds = u64::try_from(reset_at - now).unwrap_or(0).max(1);
        Ok(Verdict::Refused {
            retry_after: Duration::from_secs(seconds),
        })
    }

    /// Counts a hit in every bucket (each one, even after a refusal, so a flood
    /// spread over the buckets is counted everywhere) and returns the longest wait.
    pub async fn hit_all(&self, hits: &[(&Bucket, Limit)]) -> Result<Verdict, sqlx::Error> {
        let mut verdict = Verdict::Allowed;
        for (bucket, limit) in hits {
            if let Verdict::Refused { retry_after } = self.hit(bucket, *limit).await? {
                verdict = match verdict {
                    Verdict::Refused {
                        retry_after: longer,
                    } if longer >= retry_after => verdict,
                    _ => Verdict::Refused { retry_after },
                };
            }
        }
        Ok(verdict)
    }

    pub async fn clear(&self, bucket: &Bucket) -> Result<(), sqlx::Error> {
        rate_limits::clear(&self.db, &bucket.0).await
    }

    /// Deletes lapsed counters; `serve` calls this in the background.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        rate_limits::prune(&self.db, OffsetDateTime::now_utc().unix_timestamp()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_fixed_width_and_never_hold_the_email() {
        let long = format!("{}@example.com", "a".repeat(60_000));
        for bucket in [
            Bucket::sign_in_unknown_email("ann@example.com"),
            Bucket::sign_in_unknown_email(&long),
        ] {
            assert_eq!(bucket.0.len(), 64);
            assert!(!bucket.0.contains("example"));
        }
        assert_eq!(
            Bucket::sign_in_unknown_email(" Ann@Example.com"),
            Bucket::sign_in_unknown_email("ann@example.com")
        );
        assert_ne!(Bucket::password_guesses(1), Bucket::password_guesses(2));
        assert_ne!(Bucket::new("a", "b:c"), Bucket::new("a:b", "c"));
    }
}
