//! Who is signed in: axum-login over the users table. Pages and extractors read
//! [`AuthSession`] from here; the sign-in pages live in `auth`.

use std::fmt;

use axum_login::{AuthUser, AuthnBackend, UserId};
use secrecy::SecretString;
use serde::Deserialize;

use crate::db::{self, Db, users::User};
use crate::domain::UserEmail;
use crate::password::{HashError, Hasher};

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
    db: Db,
    hasher: Hasher,
}

impl Backend {
    pub fn new(db: Db, hasher: Hasher) -> Self {
        Backend { db, hasher }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
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
        let user = match UserEmail::parse(&creds.email) {
            Ok(email) => db::users::find_by_email(&self.db, email.as_str()).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = self
            .hasher
            .verify(SecretString::from(creds.password), stored)
            .await?;
        Ok(user.filter(|_| verified))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, AuthError> {
        Ok(db::users::find(&self.db, *id).await?)
    }
}
