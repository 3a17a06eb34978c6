//! Accounts: the one way a login is created, for `/register` and `user:create`.
//! Web and CLI call this service; neither writes the users table itself.

use secrecy::SecretString;

pub use crate::db::password_resets::LinkState;
use crate::db::{self, Db};

/// Where sessions live: the app's database.
pub use crate::db::SessionStore;
/// A login, as the web tier and the commands see it.
pub use crate::db::users::User;
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

/// Logins and the local profile that sync pushes, over the users table.
#[derive(Clone, Debug)]
pub struct Accounts {
    db: Db,
    hasher: Hasher,
}

impl Accounts {
    /// `hasher` caps the password hashes computed at once in this process.
    pub fn new(db: Db, hasher: Hasher) -> Self {
        Accounts { db, hasher }
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Hashes the password (under the cap) and stores the new user.
    pub async fn create(
        &self,
        name: &UserName,
        email: &UserEmail,
        password: SecretString,
    ) -> Result<User, AccountError> {
        create_account(&self.db, &self.hasher, name, email, password).await
    }

    /// Saves the local name and email; another account's email is `EmailTaken`.
    /// A new login email revokes every reset link not used yet (a link mailed
    /// to the old address must not reset the account). Returns whether the
    /// email changed.
    pub async fn update_profile(
        &self,
        user: &User,
        name: &UserName,
        email: &UserEmail,
    ) -> Result<bool, AccountError> {
        let now = crate::clock::now();
        match db::users::update_profile(&self.db, user.id, name.as_str(), email.as_str(), now).await
        {
            Ok(()) => {}
            Err(err) if db::is_unique_violation(&err) => return Err(AccountError::EmailTaken),
            Err(err) => return Err(err.into()),
        }
        let changed = !user.email.eq_ignore_ascii_case(email.as_str());
        if changed {
            db::password_resets::revoke_unused(&self.db, user.id).await?;
            tracing::info!(
                user_id = user.id,
                "login email changed; reset links revoked"
            );
        }
        Ok(changed)
    }

    /// Whether `password` is the user's (under the hashing cap).
    pub async fn verify_password(
        &self,
        user: &User,
        password: SecretString,
    ) -> Result<bool, AccountError> {
        let stored = Some(user.password_hash.clone());
        Ok(self.hasher.verify(password, stored).await?)
    }

    /// Stores a new password, hashed as this database's passwords are (bcrypt
    /// `$2y$` on a Laravel app's, Argon2id otherwise). Every session of the user
    /// ends with it: a session carries the hash it was opened with. Returns the
    /// user as now stored.
    pub async fn set_password(
        &self,
        user_id: i64,
        password: SecretString,
    ) -> Result<User, AccountError> {
        let hash = self.hasher.hash(password).await?;
        if !db::users::set_password(&self.db, user_id, &hash, crate::clock::now()).await? {
            return Err(sqlx::Error::RowNotFound.into());
        }
        // Every link mailed before dies with the old password, the one just
        // used (if any) included.
        db::password_resets::revoke_unused(&self.db, user_id).await?;
        tracing::info!(user_id, "password changed");
        let user = db::users::find(&self.db, user_id).await?;
        Ok(user.ok_or(sqlx::Error::RowNotFound)?)
    }

    /// A reset link's token for the user with this email, if there is one: 256
    /// random bits, URL-safe; only its SHA-256 is stored, for [`RESET_VALID`].
    /// The link is stored only while the user's email and password are still
    /// the ones just read, so one made as either changes is never valid.
    pub async fn request_reset(
        &self,
        email: &str,
    ) -> Result<Option<(User, SecretString)>, AccountError> {
        let Some(user) = self.find_by_email(email).await? else {
            return Ok(None);
        };
        use base64::Engine as _;
        let bytes: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = crate::clock::now().unix_timestamp();
        let expires = now + RESET_VALID.as_secs() as i64;
        let issued_for = (user.email.as_str(), user.password_hash.as_str());
        let stored = db::password_resets::insert_if_current(
            &self.db,
            &token_hash(&token),
            user.id,
            issued_for,
            now,
            expires,
        )
        .await?;
        // Links older than a day are of no use to anyone.
        db::password_resets::prune(&self.db, now - 86_400).await?;
        if !stored {
            tracing::info!(
                user_id = user.id,
                "no reset link: the account changed meanwhile"
            );
            return Ok(None);
        }
        tracing::info!(user_id = user.id, "password reset link made");
        Ok(Some((user, SecretString::from(token))))
    }

    /// Where the link with this token stands.
    pub async fn reset_link(&self, token: &str) -> Result<LinkState, AccountError> {
        let now = crate::clock::now().unix_timestamp();
        Ok(db::password_resets::state(&self.db, &token_hash(token), now).await?)
    }

    /// Uses the link (once) to set a new password. `None`: the link was used,
    /// has lapsed or never was; nothing changed.
    pub async fn reset_password(
        &self,
        token: &str,
        password: SecretString,
    ) -> Result<Option<User>, AccountError> {
        let now = crate::clock::now().unix_timestamp();
        let Some(user_id) = db::password_resets::consume(&self.db, &token_hash(token), now).await?
        else {
            return Ok(None);
        };
        Ok(Some(self.set_password(user_id, password).await?))
    }

    /// The user signing in with this email (as typed; it is parsed here).
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, AccountError> {
        match UserEmail::parse(email) {
            Ok(email) => Ok(db::users::find_by_email(&self.db, email.as_str()).await?),
            Err(_) => Ok(None),
        }
    }

    /// The user, as a session's id names them.
    pub async fn find(&self, user_id: i64) -> Result<Option<User>, AccountError> {
        Ok(db::users::find(&self.db, user_id).await?)
    }
}

/// How long a reset link works.
pub const RESET_VALID: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// What is stored of a reset token: its SHA-256, in hex.
fn token_hash(token: &str) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn create_account(
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
    let id = match db::users::insert(db, new_user, crate::clock::now()).await {
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
