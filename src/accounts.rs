//! Accounts: the one way a login is created, for `/register` and `user:create`.
//! Web and CLI call this service; neither writes the users table itself.

use secrecy::SecretString;

use crate::db::{self, Db, users::User};
use crate::domain::{UserEmail, UserName};
use crate::password::{HashError, Hasher};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Hashes the password (under the caller's cap) and stores the new user.
pub async fn create_account(
    db: &Db,
    hasher: &Hasher,
    name: &UserName,
    email: &UserEmail,
    password: SecretString,
) -> Result<User, AccountError> {
    let hash = hasher.hash(password).await?;
    let new_user = db::users::NewUser {
        name: name.as_str(),
        email: email.as_str(),
        password_hash: &hash,
    };
    let id = match db::users::insert(db, new_user, crate::sync::now()).await {
        Ok(id) => id,
        Err(err) if db::is_unique_violation(&err) => return Err(AccountError::EmailTaken),
        Err(err) => return Err(err.into()),
    };
    let user = db::users::find(db, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    tracing::info!(user_id = id, "account created");
    Ok(user)
}
