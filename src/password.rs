//! Argon2id password hashes, computed off the async runtime.

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret as _, SecretString};

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

pub async fn hash(password: SecretString) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|_| HashError)
    })
    .await
    .map_err(|_| HashError)?
}

/// Verifies against the stored hash, or against a fixed dummy hash when there is
/// no such user, so both cases take the same time.
pub async fn verify(password: SecretString, stored_hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let hash = stored_hash.as_deref().unwrap_or(DUMMY_HASH);
        let ok = Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), hash)
            .is_ok();
        ok && stored_hash.is_some()
    })
    .await
    .unwrap_or(false)
}

/// Argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1Jv2Ox9ivUsEZrsMFPDCQqRA+Q5RHQ5Ob3nHFx8l+Q0";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash(SecretString::from("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify(SecretString::from("correct horse"), Some(hash.clone())).await);
        assert!(!verify(SecretString::from("wrong horse"), Some(hash)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify(SecretString::from("anything"), None).await);
    }
}
