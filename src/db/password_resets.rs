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

pub async fn insert(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_sync_password_resets \
        (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    on_pool!(db, pool => q::query(SQL).bind(token_hash).bind(user_id).bind(now).bind(expires_at).execute(pool).await.map(drop))
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
