//! Who is signed in: axum-login over the users table. Pages and extractors read
//! [`AuthSession`] from here; the sign-in pages live in `auth`.

use std::fmt;

use axum_login::{AuthUser, AuthnBackend, UserId};
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::{AccountError, Accounts};
use crate::db::users::User;
use crate::password::HashError;

pub type AuthSession = axum_login::AuthSession<Backend>;

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// A password change ends every other session.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

#[derive(Clone, Debug)]
pub struct Backend {
    accounts: Accounts,
}

impl Backend {
    pub fn new(accounts: Accounts) -> Self {
        Backend { accounts }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Hashing(#[from] HashError),
}

#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

/// The password never reaches a log line.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = AuthError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, AuthError> {
        let user = self.accounts.find_by_email(&creds.email).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = self
            .accounts
            .hasher()
            .verify(SecretString::from(creds.password), stored)
            .await?;
        Ok(user.filter(|_| verified))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, AuthError> {
        Ok(self.accounts.find(*id).await?)
    }
}
