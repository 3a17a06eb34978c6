//! Laravel Cashier's `subscriptions` table, on a database a Cashier app shares.

use time::OffsetDateTime;

use super::dialect::catalog::{columns, table_exists};
use super::{Db, LaravelTime, Tx, on_tx};

/// Whether the database has Cashier's `subscriptions` (with the columns its
/// webhook handler writes), and whether it has `trial_ends_at` to clear.
pub async fn cashier_table(db: &Db) -> Result<Option<CashierTable>, sqlx::Error> {
    if !table_exists(db, "subscriptions").await? {
        return Ok(None);
    }
    let present = columns(db, "subscriptions").await?;
    let has = |name: &str| present.iter().any(|c| c.eq_ignore_ascii_case(name));
    if !(has("user_id") && has("stripe_status") && has("ends_at")) {
        return Ok(None);
    }
    Ok(Some(CashierTable {
        trial_ends_at: has("trial_ends_at"),
        updated_at: has("updated_at"),
    }))
}

#[derive(Debug, Clone, Copy)]
pub struct CashierTable {
    trial_ends_at: bool,
    updated_at: bool,
}

/// As Cashier's `handleCustomerDeleted`: every subscription of the user skips
/// its trial and is marked canceled, ending now. Returns how many.
pub async fn cancel_for_user_in(
    tx: &mut Tx,
    table: CashierTable,
    user_id: i64,
    now: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    let mut set = vec!["stripe_status = 'canceled'", "ends_at = $2"];
    if table.trial_ends_at {
        set.push("trial_ends_at = NULL");
    }
    if table.updated_at {
        set.push("updated_at = $2");
    }
    let sql = format!(
        "UPDATE subscriptions SET {} WHERE user_id = $1",
        set.join(", ")
    );
    on_tx!(tx, conn => q::query(&sql)
        .bind(user_id)
        .bind(LaravelTime(now))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))
}
