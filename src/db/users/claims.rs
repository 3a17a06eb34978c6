//! Claims on user rows: one create or one update holds a row at a time, under a
//! lease its holder renews while it lives (see `sync::LEASE`).

use std::sync::Arc;

use sqlx::FromRow;
use time::OffsetDateTime;

use super::CustomerState;
use super::fields::{FieldRow, select};
use crate::db::dialect::{self, stmt};
use crate::db::group::{Flushing, Group};
use crate::db::{Db, Tx, on_pool, on_tx};

/// What a creation claim hands back: the attempt's key and the parameters fixed with it.
#[derive(Debug, FromRow)]
pub struct CreateClaim {
    pub stripe_create_key: String,
    pub stripe_create_params: String,
}

/// Takes the row for one creation attempt. Keeps an earlier attempt's key and
/// parameters when one was interrupted, so its retry is the same request to Stripe.
/// Returns `None` when the user is linked already or another attempt holds the row.
pub async fn claim_create(
    db: &Db,
    id: i64,
    fresh_key: &str,
    fresh_params: &str,
    lease: Lease<'_>,
) -> Result<Option<CreateClaim>, sqlx::Error> {
    let claim = ClaimCreate {
        id,
        fresh_key: fresh_key.into(),
        fresh_params: fresh_params.into(),
        holder: lease.holder.into(),
        now_ms: lease.now_ms,
        expires_ms: lease.expires_ms,
    };
    let mut claims = claim_creates(db.clone(), vec![claim]).await?;
    Ok(claims.pop().flatten())
}

/// One creation claim to take (see [`claim_create`]), as a group takes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimCreate {
    pub id: i64,
    pub fresh_key: String,
    pub fresh_params: String,
    pub holder: Arc<str>,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Takes several creation claims in one transaction, on the disk before it
/// returns: a key lost after Stripe used it would make the next attempt create
/// a second customer.
pub fn claim_creates(db: Db, claims: Vec<ClaimCreate>) -> Flushing<Option<CreateClaim>> {
    const SQL: &str = "UPDATE users SET \
            stripe_create_key = COALESCE(stripe_create_key, $2), \
            stripe_create_params = COALESCE(stripe_create_params, $3), \
            stripe_lease_holder = $4, stripe_lease_expires = $6 \
        WHERE id = $1 AND stripe_id IS NULL \
          AND (stripe_lease_expires IS NULL OR stripe_lease_expires < $5)";
    const READ: &str = "SELECT stripe_create_key, stripe_create_params FROM users WHERE id = $1";
    const RETURNING: &str = "stripe_create_key, stripe_create_params";
    Box::pin(async move {
        let updates = claims
            .iter()
            .map(|c| {
                let claim = stmt!(
                    SQL,
                    c.id,
                    &c.fresh_key,
                    &c.fresh_params,
                    &*c.holder,
                    c.now_ms,
                    c.expires_ms
                );
                (claim, stmt!(READ, c.id))
            })
            .collect();
        dialect::updates_returning_durably(&db, updates, RETURNING).await
    })
}

/// Ends an attempt that did not link a customer. `forget_key` drops the key when
/// Stripe definitely created nothing; otherwise the next attempt must reuse it.
pub async fn release_create(
    db: &Db,
    id: i64,
    key: &str,
    forget_key: bool,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET \
            stripe_lease_holder = NULL, stripe_lease_expires = NULL, \
            stripe_create_key = CASE WHEN $3 THEN NULL ELSE stripe_create_key END, \
            stripe_create_params = CASE WHEN $3 THEN NULL ELSE stripe_create_params END \
        WHERE id = $1 AND stripe_create_key = $2";
    on_pool!(db, pool => q::query(SQL).bind(id).bind(key).bind(forget_key).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The customer an attempt created, to link to its user (ending the attempt).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkCustomer {
    pub id: i64,
    /// The attempt's key: the row must still be this attempt's.
    pub key: String,
    pub stripe_id: String,
    pub pm_type: Option<String>,
    pub pm_last_four: Option<String>,
    pub snapshot: String,
    pub at: OffsetDateTime,
    pub pushed_hash: String,
    pub base: String,
}

/// Links several created customers in one transaction; for each, false when the
/// row is no longer its attempt's (someone else linked it meanwhile). The commit
/// does not wait for the disk: a link lost to a power loss (or, on PostgreSQL, a
/// server crash) is found again by the next attempt, which reuses the key the
/// claim stored durably.
pub fn link_customers(db: Db, links: Vec<LinkCustomer>) -> Flushing<bool> {
    const SQL: &str = "UPDATE users SET \
            stripe_id = $3, pm_type = $4, pm_last_four = $5, \
            stripe_snapshot = $6, stripe_snapshot_at = $7, \
            stripe_synced_hash = $8, stripe_synced_at = $7, stripe_base = $9, \
            stripe_create_key = NULL, stripe_create_params = NULL, \
            stripe_lease_holder = NULL, stripe_lease_expires = NULL \
        WHERE id = $1 AND stripe_id IS NULL AND stripe_create_key = $2";
    Box::pin(async move {
        let updates: Vec<_> = links
            .iter()
            .map(|l| {
                stmt!(
                    SQL,
                    l.id,
                    &l.key,
                    &l.stripe_id,
                    l.pm_type.as_deref(),
                    l.pm_last_four.as_deref(),
                    &l.snapshot,
                    l.at,
                    &l.pushed_hash,
                    &l.base
                )
            })
            .collect();
        let taken = dialect::execute_all_lazily(&db, &updates).await?;
        Ok(taken.into_iter().map(|rows| rows == 1).collect())
    })
}

/// The groups a process commits creates' claims and links in (see [`Group`]).
#[derive(Debug, Clone)]
pub struct CreateGroups {
    pub claims: Group<ClaimCreate, Option<CreateClaim>>,
    pub links: Group<LinkCustomer, bool>,
}

impl CreateGroups {
    pub fn new(db: &Db) -> Self {
        CreateGroups {
            claims: Group::new(db.clone(), claim_creates),
            links: Group::new(db.clone(), link_customers),
        }
    }
}

/// Takes the row of a linked user for one update, and reads its synced fields
/// (`columns`, the map's) under the claim. Returns `None` when the user is not
/// linked or another update holds the row.
pub async fn claim_update(
    db: &Db,
    id: i64,
    lease: Lease<'_>,
    columns: &[&str],
) -> Result<Option<FieldRow>, sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_lease_holder = $2, stripe_lease_expires = $4 \
        WHERE id = $1 AND stripe_id IS NOT NULL \
          AND (stripe_lease_expires IS NULL OR stripe_lease_expires < $3)";
    let returning = select(db.dialect(), columns);
    let read = format!("SELECT {returning} FROM users WHERE id = $1");
    let claim = stmt!(SQL, id, lease.holder, lease.now_ms, lease.expires_ms);
    dialect::update_returning(db, claim, &returning, stmt!(read, id)).await
}

/// Records a push: what Stripe answered, the hash of the name and email sent,
/// the base with the pushed fields, and the end of the update's claim.
pub async fn store_pushed_in(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    state: CustomerState<'_>,
    pushed_hash: &str,
    base: &str,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET \
            pm_type = $3, pm_last_four = $4, stripe_snapshot = $5, stripe_snapshot_at = $6, \
            stripe_synced_hash = $7, stripe_synced_at = $6, stripe_base = $8, \
            stripe_lease_holder = NULL, stripe_lease_expires = NULL \
        WHERE id = $1 AND stripe_id = $2";
    on_tx!(tx, conn => q::query(SQL)
        .bind(id)
        .bind(stripe_id)
        .bind(state.pm_type)
        .bind(state.pm_last_four)
        .bind(state.snapshot)
        .bind(state.at)
        .bind(pushed_hash)
        .bind(base)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Ends an update's claim without recording a push, if `holder` still holds it.
pub async fn release_lease(db: &Db, id: i64, holder: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_lease_holder = NULL, stripe_lease_expires = NULL \
        WHERE id = $1 AND stripe_lease_holder = $2";
    on_pool!(db, pool => q::query(SQL).bind(id).bind(holder).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Extends every claim `holder` has to `expires_ms`: the heartbeat of a living
/// process. Returns how many it holds.
pub async fn renew_leases(db: &Db, holder: &str, expires_ms: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE users SET stripe_lease_expires = $2 \
        WHERE stripe_lease_holder = $1 AND stripe_lease_expires IS NOT NULL";
    on_pool!(db, pool => q::query(SQL).bind(holder).bind(expires_ms).execute(pool).await.map(|r| r.rows_affected()))
}

/// A claim on a user row: who takes it, the time now and when it lapses (Unix ms).
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub holder: &'a str,
    pub now_ms: i64,
    pub expires_ms: i64,
}
