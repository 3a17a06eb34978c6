//! The `users` table: accounts, Cashier's customer columns and the creation guard.

use std::fmt;

use sqlx::FromRow;
use time::OffsetDateTime;

mod claims;
mod fields;

pub use claims::{
    ClaimCreate, CreateClaim, CreateGroups, Lease, LinkCustomer, claim_create, claim_update,
    release_create, release_lease, renew_leases, store_pushed_in,
};

pub use fields::{
    CheckError, CustomerCopy, FieldRow, Pull, check_columns, field_page_after, field_row,
    field_row_in, store_copy_in, store_fields_in,
};

use super::dialect::{self, stmt};
use super::{Db, LaravelTime, Tx, on_pool, on_tx};

/// The columns of [`User`]. On PostgreSQL, Laravel's and Cashier's timestamps are
/// `timestamp without time zone` in a database a Laravel app made (UTC, as
/// Laravel writes them): read as `timestamptz` whatever their type. On MySQL,
/// Laravel's `id` is unsigned: read as the signed integer it is everywhere else.
fn columns(db: &Db) -> String {
    columns_in(db.dialect())
}

pub(in crate::db) fn columns_in(dialect: dialect::Dialect) -> String {
    let laravel_time = |column| dialect.laravel_time(column);
    format!(
        "{}, name, email, password, stripe_id, pm_type, pm_last_four, {}, stripe_snapshot, \
         stripe_snapshot_at, stripe_create_key, stripe_create_params, stripe_lease_holder, \
         stripe_lease_expires, stripe_synced_hash, stripe_synced_at, stripe_event_created, \
         stripe_base, {}, {}",
        dialect.signed_id("id"),
        laravel_time("trial_ends_at"),
        laravel_time("created_at"),
        laravel_time("updated_at"),
    )
}

#[derive(Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    /// Laravel's `password` column: a bcrypt or Argon2id hash.
    #[sqlx(rename = "password")]
    pub password_hash: String,
    pub stripe_id: Option<String>,
    pub pm_type: Option<String>,
    pub pm_last_four: Option<String>,
    pub trial_ends_at: Option<OffsetDateTime>,
    pub stripe_snapshot: Option<String>,
    pub stripe_snapshot_at: Option<OffsetDateTime>,
    pub stripe_create_key: Option<String>,
    pub stripe_create_params: Option<String>,
    /// Which process holds the row for a create or update, and until when (Unix ms).
    pub stripe_lease_holder: Option<String>,
    pub stripe_lease_expires: Option<i64>,
    pub stripe_synced_hash: Option<String>,
    pub stripe_synced_at: Option<OffsetDateTime>,
    /// `created` (Unix seconds) of the newest customer event applied.
    pub stripe_event_created: Option<i64>,
    /// JSON: each synced field's value as both sides last agreed on it.
    pub stripe_base: Option<String>,
    /// Laravel leaves these empty on rows made without Eloquent.
    pub created_at: Option<OffsetDateTime>,
    pub updated_at: Option<OffsetDateTime>,
}

/// The password hash never reaches a log line.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("stripe_id", &self.stripe_id)
            .finish_non_exhaustive()
    }
}

pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
}

/// The Stripe-side state written after a call: pm columns and the page's snapshot.
pub struct CustomerState<'a> {
    pub pm_type: Option<&'a str>,
    pub pm_last_four: Option<&'a str>,
    pub snapshot: &'a str,
    pub at: OffsetDateTime,
}

/// One row of the bulk sync's scan.
#[derive(Debug, FromRow)]
pub struct SyncRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub stripe_id: Option<String>,
    pub stripe_synced_hash: Option<String>,
}

/// A time as Unix milliseconds, the form lease times are stored in.
pub use crate::clock::unix_ms;

pub async fn insert(db: &Db, user: NewUser<'_>, now: OffsetDateTime) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO users (name, email, password, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, $4)";
    let insert = stmt!(
        SQL,
        user.name,
        user.email,
        user.password_hash,
        LaravelTime(now)
    );
    dialect::insert_returning_id(db, insert).await
}

pub async fn find(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {} FROM users WHERE id = $1", columns(db));
    on_pool!(db, pool => q::query_as(&sql).bind(id).fetch_optional(pool).await)
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {} FROM users WHERE email = $1", columns(db));
    on_pool!(db, pool => q::query_as(&sql).bind(email).fetch_optional(pool).await)
}

pub async fn find_by_stripe_id(db: &Db, stripe_id: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {} FROM users WHERE stripe_id = $1", columns(db));
    on_pool!(db, pool => q::query_as(&sql).bind(stripe_id).fetch_optional(pool).await)
}

/// The user linked to `stripe_id`, read inside `tx` and held (its row locked
/// until `tx` ends, as SQLite's writer holds the whole database): what the
/// transaction decides from it stays true until it commits.
pub async fn find_by_stripe_id_in(
    tx: &mut Tx,
    stripe_id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let dialect = tx.dialect();
    let sql = format!(
        "SELECT {} FROM users WHERE stripe_id = $1{}",
        columns_in(dialect),
        dialect.for_update()
    );
    on_tx!(tx, conn => q::query_as(&sql).bind(stripe_id).fetch_optional(conn).await)
}

/// The users linked to any of `stripe_ids` (a page of a customer list): one query.
pub async fn find_by_stripe_ids(db: &Db, stripe_ids: &[&str]) -> Result<Vec<User>, sqlx::Error> {
    if stripe_ids.is_empty() {
        return Ok(Vec::new());
    }
    // The list is padded to a power of two with its first id (IN ignores the
    // repeats): a few statement shapes, each prepared once per connection,
    // rather than one for every length a page can have. Each connection caches
    // up to 100 prepared statements, and a long `--refresh` meets every length
    // from 1 to 100 in its segments' last pages: on SQLite, whose statements
    // live in the process, its memory grew with the length of the run.
    let padded = stripe_ids.len().next_power_of_two();
    let placeholders: Vec<String> = (1..=padded).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT {} FROM users WHERE stripe_id IN ({})",
        columns(db),
        placeholders.join(", ")
    );
    let ids = stripe_ids
        .iter()
        .chain(std::iter::repeat(&stripe_ids[0]))
        .take(padded);
    on_pool!(db, pool => {
        let mut query = q::query_as(&sql);
        for id in ids.clone() {
            query = query.bind(*id);
        }
        query.fetch_all(pool).await
    })
}

/// Stores a new password hash. Laravel's `remember_token` is cleared too, so a
/// "remember me" cookie of the Laravel app stops working as it would there.
pub async fn set_password(
    db: &Db,
    id: i64,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE users SET password = $2, remember_token = NULL, updated_at = $3 \
        WHERE id = $1";
    let done = on_pool!(db, pool => q::query(SQL).bind(id).bind(password_hash).bind(LaravelTime(now)).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn update_profile(
    db: &Db,
    id: i64,
    name: &str,
    email: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET name = $2, email = $3, updated_at = $4 WHERE id = $1";
    on_pool!(db, pool => q::query(SQL).bind(id).bind(name).bind(email).bind(LaravelTime(now)).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stores what a pull or an event found, if the user is still linked to the same
/// customer. With `event_created` (an event's `created`), only when no newer
/// customer event was applied to the row already (the ordering guard), noting it
/// as the newest. Returns whether it was stored.
pub async fn store_customer_state(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    state: CustomerState<'_>,
    event_created: Option<i64>,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE users SET \
            pm_type = $3, pm_last_four = $4, stripe_snapshot = $5, stripe_snapshot_at = $6, \
            stripe_event_created = COALESCE($7, stripe_event_created) \
        WHERE id = $1 AND stripe_id = $2 \
          AND ($7 IS NULL OR stripe_event_created IS NULL OR stripe_event_created <= $7)";
    let done = on_tx!(tx, conn => q::query(SQL)
        .bind(id)
        .bind(stripe_id)
        .bind(state.pm_type)
        .bind(state.pm_last_four)
        .bind(state.snapshot)
        .bind(state.at)
        .bind(event_created)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Sets the ordering guard to `at` (Unix seconds) outright: what a retrieve read
/// at `at` is the customer's state then, whatever was noted before (a guard
/// poisoned by a bad date included). Only while the user is linked to `stripe_id`.
pub async fn anchor_event_order(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_event_created = $3 WHERE id = $1 AND stripe_id = $2";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(stripe_id).bind(at).execute(conn).await.map(|_| ()))
}

/// Notes that a customer event created at `created` has been applied, when it is
/// the newest so far (its data was current, or pulled).
pub async fn note_event_created(tx: &mut Tx, id: i64, created: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_event_created = $2 \
        WHERE id = $1 AND (stripe_event_created IS NULL OR stripe_event_created < $2)";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(created).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stripe deleted the customer: whoever is linked to it is unlinked, as Cashier
/// does (its columns, the trial and the snapshot). Returns the unlinked user's id.
pub async fn forget_deleted_customer(
    tx: &mut Tx,
    stripe_id: &str,
    now: OffsetDateTime,
) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "UPDATE users SET \
            stripe_id = NULL, pm_type = NULL, pm_last_four = NULL, trial_ends_at = NULL, \
            stripe_snapshot = NULL, stripe_snapshot_at = NULL, updated_at = $2 \
        WHERE stripe_id = $1";
    const LOCK: &str = "SELECT CAST(id AS SIGNED) FROM users WHERE stripe_id = $1 FOR UPDATE";
    let forget = stmt!(SQL, stripe_id, LaravelTime(now));
    let found: Option<(i64,)> =
        dialect::update_returning_in(tx, forget, "id", stmt!(LOCK, stripe_id)).await?;
    Ok(found.map(|(id,)| id))
}

/// Records that the linked customer is gone from Stripe, keeping the dead id so the
/// page can say so and offer to re-create it.
pub async fn mark_customer_missing(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    snapshot: &str,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_snapshot = $3, stripe_snapshot_at = $4 \
        WHERE id = $1 AND stripe_id = $2";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(stripe_id).bind(snapshot).bind(at).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Unlinks the customer: Cashier's columns and the snapshot go back to empty.
pub async fn clear_customer(
    db: &Db,
    id: i64,
    stripe_id: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET \
            stripe_id = NULL, pm_type = NULL, pm_last_four = NULL, \
            stripe_snapshot = NULL, stripe_snapshot_at = NULL, updated_at = $3 \
        WHERE id = $1 AND stripe_id = $2";
    on_pool!(db, pool => q::query(SQL).bind(id).bind(stripe_id).bind(LaravelTime(now)).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The next page of users after `after_id`, in id order (keyset pagination, so a
/// scan of any size holds one page at a time).
pub async fn page_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<SyncRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {}, name, email, stripe_id, stripe_synced_hash FROM users \
         WHERE id > $1 ORDER BY id LIMIT $2",
        db.dialect().signed_id("id")
    );
    on_pool!(db, pool => q::query_as(&sql).bind(after_id).bind(limit).fetch_all(pool).await)
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => q::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)
}

pub async fn count_linked(db: &Db) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE stripe_id IS NOT NULL";
    on_pool!(db, pool => q::query_scalar(SQL).fetch_one(pool).await)
}

/// The next page of linked users after `after_id`: (id, stripe_id).
pub async fn linked_after(
    db: &Db,
    after_id: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {}, stripe_id FROM users \
         WHERE id > $1 AND stripe_id IS NOT NULL ORDER BY id LIMIT $2",
        db.dialect().signed_id("id")
    );
    on_pool!(db, pool => q::query_as(&sql).bind(after_id).bind(limit).fetch_all(pool).await)
}

/// Links a customer found by its `metadata.user_id` to a user who has none, unless
/// a create for the user is in flight (it will link its own answer). Any key of an
/// interrupted create is dropped: its customer is this one.
pub async fn link_orphan(
    db: &Db,
    id: i64,
    stripe_id: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_id = $2, \
            stripe_create_key = NULL, stripe_create_params = NULL, \
            stripe_lease_holder = NULL, stripe_lease_expires = NULL, updated_at = $3 \
        WHERE id = $1 AND stripe_id IS NULL \
          AND (stripe_lease_expires IS NULL OR stripe_lease_expires < $4)";
    let done = on_pool!(db, pool => q::query(SQL)
        .bind(id)
        .bind(stripe_id)
        .bind(LaravelTime(now))
        .bind(unix_ms(now))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
