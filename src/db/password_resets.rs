//! `stripe_sync_password_resets`: one row per reset link, keyed by the SHA-256 of
//! its token (the token itself is never stored).

use super::dialect::{self, stmt};
use super::{Db, on_pool};

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Valid { user_id: i64 },
    Used,
    Expired,
    Unknown,
}

/// Stores a link for `user_id`, only while the user's login email and password
/// hash are still `email` and `password_hash` (what the link is mailed for):
/// a link made as either changes is never stored. Returns whether it was.
pub async fn insert_if_current(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    (email, password_hash): (&str, &str),
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_sync_password_resets \
        (token_hash, user_id, created_at, expires_at) \
        SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND email = $5 AND password = $6";
    let stored = on_pool!(db, pool => q::query(SQL).bind(token_hash).bind(user_id).bind(now).bind(expires_at).bind(email).bind(password_hash).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(stored == 1)
}

/// Forgets every link of the user not used yet: its password or login email
/// changed, so no link mailed before may change it again.
pub async fn revoke_unused(db: &Db, user_id: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str =
        "DELETE FROM stripe_sync_password_resets WHERE user_id = $1 AND used_at IS NULL";
    on_pool!(db, pool => q::query(SQL).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))
}

/// Where the link with this token hash stands at `now`.
pub async fn state(db: &Db, token_hash: &str, now: i64) -> Result<LinkState, sqlx::Error> {
    const SQL: &str = "SELECT user_id, expires_at, used_at FROM stripe_sync_password_resets \
        WHERE token_hash = $1";
    let row: Option<(i64, i64, Option<i64>)> =
        on_pool!(db, pool => q::query_as(SQL).bind(token_hash).fetch_optional(pool).await)?;
    Ok(match row {
        None => LinkState::Unknown,
        Some((_, _, Some(_))) => LinkState::Used,
        Some((_, expires_at, None)) if expires_at <= now => LinkState::Expired,
        Some((user_id, _, None)) => LinkState::Valid { user_id },
    })
}

/// Uses the link, if it is still valid at `now`: once, whatever runs at the same
/// moment. Returns its user.
pub async fn consume(db: &Db, token_hash: &str, now: i64) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "UPDATE stripe_sync_password_resets SET used_at = $2 \
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
    const READ: &str = "SELECT user_id FROM stripe_sync_password_resets WHERE token_hash = $1";
    let used: Option<(i64,)> = dialect::update_returning(
        db,
        stmt!(SQL, token_hash, now),
        "user_id",
        stmt!(READ, token_hash),
    )
    .await?;
    Ok(used.map(|(user_id,)| user_id))
}

/// Forgets links made before `before` (used or lapsed long since).
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM stripe_sync_password_resets WHERE created_at < $1";
    on_pool!(db, pool => q::query(SQL).bind(before).execute(pool).await.map(|r| r.rows_affected()))
}
