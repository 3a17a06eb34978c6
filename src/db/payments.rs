//! The `payments` table: job-posting payments, written from webhook events only.

use sqlx::FromRow;
use time::OffsetDateTime;

use super::dialect::{self, stmt};
use super::{Db, Tx, on_pool, on_tx};

/// What Stripe said of a job's Checkout payment; stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Completed, the money not yet confirmed (a delayed payment method).
    Processing,
    Paid,
    Failed,
    Expired,
    /// Paid, then refunded in full.
    Refunded,
}

impl PaymentStatus {
    const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Processing,
        PaymentStatus::Paid,
        PaymentStatus::Failed,
        PaymentStatus::Expired,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Processing => "processing",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, String> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == stored)
            .ok_or_else(|| format!("unknown payment status {stored:?}"))
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct PaymentRow {
    pub id: i64,
    pub job_id: i64,
    pub job_title: String,
    pub checkout_session_id: String,
    pub amount: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    pub created_at: OffsetDateTime,
}

pub struct PaymentUpdate<'a> {
    pub user_id: i64,
    pub job_id: i64,
    pub checkout_session_id: &'a str,
    pub payment_intent_id: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    pub status: PaymentStatus,
}

/// Records what an event says about a session's payment. A final status (paid,
/// failed) is never replaced by an earlier stage delivered late.
pub async fn upsert(
    tx: &mut Tx,
    payment: PaymentUpdate<'_>,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const INSERT: &str = "INSERT INTO payments (user_id, job_id, checkout_session_id, \
            payment_intent_id, amount, currency, status, created_at, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
    let sql = dialect::upsert(
        tx.dialect(),
        INSERT,
        "checkout_session_id",
        &[
            (
                "payment_intent_id",
                "COALESCE(excluded.payment_intent_id, payments.payment_intent_id)",
            ),
            (
                "status",
                "CASE WHEN payments.status IN ($9, $10) THEN payments.status \
                 ELSE excluded.status END",
            ),
            ("updated_at", "excluded.updated_at"),
        ],
    );
    on_tx!(tx, conn => q::query(&sql)
        .bind(payment.user_id)
        .bind(payment.job_id)
        .bind(payment.checkout_session_id)
        .bind(payment.payment_intent_id)
        .bind(payment.amount)
        .bind(payment.currency)
        .bind(payment.status.as_str())
        .bind(now)
        .bind(PaymentStatus::Paid.as_str())
        .bind(PaymentStatus::Failed.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A full refund of the payment made through `payment_intent`: a paid payment
/// becomes refunded. Returns its job, when there was such a payment.
pub async fn mark_refunded(
    tx: &mut Tx,
    payment_intent: &str,
    now: OffsetDateTime,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    const SQL: &str = "UPDATE payments SET status = $2, updated_at = $3 \
        WHERE payment_intent_id = $1 AND status = $4";
    const LOCK: &str = "SELECT job_id, CAST(user_id AS SIGNED) FROM payments \
        WHERE payment_intent_id = $1 AND status = $2 FOR UPDATE";
    let paid = PaymentStatus::Paid.as_str();
    let refund = stmt!(
        SQL,
        payment_intent,
        PaymentStatus::Refunded.as_str(),
        now,
        paid
    );
    let lock = stmt!(LOCK, payment_intent, paid);
    dialect::update_returning_in(tx, refund, "job_id, user_id", lock).await
}

/// The user's billing history, newest first.
pub async fn list_for_user(db: &Db, user_id: i64) -> Result<Vec<PaymentRow>, sqlx::Error> {
    const SQL: &str = "SELECT p.id, p.job_id, j.title AS job_title, p.checkout_session_id, \
            p.amount, p.currency, p.status, p.created_at \
        FROM payments p JOIN job_postings j ON j.id = p.job_id \
        WHERE p.user_id = $1 ORDER BY p.id DESC LIMIT 50";
    on_pool!(db, pool => q::query_as(SQL).bind(user_id).fetch_all(pool).await)
}
