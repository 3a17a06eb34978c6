//! The `job_postings` table (not `jobs`: that is Laravel's queue): job postings
//! awaiting payment or published.

use sqlx::FromRow;
use time::OffsetDateTime;

use super::dialect::{Dialect, insert_ignore};
use super::{Db, Tx, on_pool, on_tx};

/// Where a job posting stands; stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    AwaitingPayment,
    Published,
    /// Its payment was refunded in full: no longer published.
    Refunded,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::AwaitingPayment => "awaiting_payment",
            JobStatus::Published => "published",
            JobStatus::Refunded => "refunded",
        }
    }
}

impl TryFrom<String> for JobStatus {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, String> {
        [
            JobStatus::AwaitingPayment,
            JobStatus::Published,
            JobStatus::Refunded,
        ]
        .into_iter()
        .find(|status| status.as_str() == stored)
        .ok_or_else(|| format!("unknown job status {stored:?}"))
    }
}

/// The columns of [`Job`]; `user_id` has the type of Laravel's `users.id`.
fn columns(dialect: Dialect) -> String {
    format!(
        "id, {}, title, company, description, fee_amount, fee_currency, status, \
         checkout_attempt, checkout_session_id, checkout_url, published_at, created_at",
        dialect.signed_id("user_id")
    )
}

#[derive(Debug, Clone, FromRow)]
pub struct Job {
    pub id: i64,
    pub user_id: i64,
    pub title: String,
    pub company: String,
    pub description: String,
    pub fee_amount: i64,
    pub fee_currency: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub checkout_attempt: i32,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub published_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

pub struct NewJob<'a> {
    pub user_id: i64,
    pub form_token: &'a str,
    pub title: &'a str,
    pub company: &'a str,
    pub description: &'a str,
    pub fee_amount: i64,
    pub fee_currency: &'a str,
}

/// Saves a job awaiting payment, once per form: a second submit of the same form
/// finds the first one's job.
pub async fn insert_once(
    db: &Db,
    job: NewJob<'_>,
    now: OffsetDateTime,
) -> Result<Job, sqlx::Error> {
    const SQL: &str = "INSERT INTO job_postings (user_id, form_token, title, company, description, \
            fee_amount, fee_currency, status, created_at, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
    let sql = insert_ignore(db.dialect(), SQL, "form_token");
    on_pool!(db, pool => q::query(&sql)
        .bind(job.user_id)
        .bind(job.form_token)
        .bind(job.title)
        .bind(job.company)
        .bind(job.description)
        .bind(job.fee_amount)
        .bind(job.fee_currency)
        .bind(JobStatus::AwaitingPayment.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    let sql = format!(
        "SELECT {} FROM job_postings WHERE form_token = $1 AND user_id = $2",
        columns(db.dialect())
    );
    on_pool!(db, pool => q::query_as(&sql).bind(job.form_token).bind(job.user_id).fetch_one(pool).await)
}

/// A user's own job; `None` for anyone else's.
pub async fn find_for_user(db: &Db, id: i64, user_id: i64) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM job_postings WHERE id = $1 AND user_id = $2",
        columns(db.dialect())
    );
    on_pool!(db, pool => q::query_as(&sql).bind(id).bind(user_id).fetch_optional(pool).await)
}

pub async fn find_in(tx: &mut Tx, id: i64) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM job_postings WHERE id = $1",
        columns(tx.dialect())
    );
    on_tx!(tx, conn => q::query_as(&sql).bind(id).fetch_optional(conn).await)
}

pub async fn list_for_user(db: &Db, user_id: i64) -> Result<Vec<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM job_postings WHERE user_id = $1 ORDER BY id DESC LIMIT 50",
        columns(db.dialect())
    );
    on_pool!(db, pool => q::query_as(&sql).bind(user_id).fetch_all(pool).await)
}

/// Stores the session made for the job's attempt `attempt`, and remembers it among
/// the job's sessions. Returns false, storing nothing on the job, when the attempt
/// has moved on meanwhile (its session expired or failed while this request
/// waited for Stripe): an old session is never put back.
pub async fn store_checkout(
    db: &Db,
    id: i64,
    attempt: i32,
    session_id: &str,
    url: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    const REMEMBER: &str = "INSERT INTO job_checkout_sessions (session_id, job_id, attempt, created_at) \
        VALUES ($1, $2, $3, $4)";
    const STORE: &str = "UPDATE job_postings SET checkout_session_id = $2, checkout_url = $3, updated_at = $4 \
        WHERE id = $1 AND checkout_attempt = $5";
    let remember = insert_ignore(db.dialect(), REMEMBER, "session_id");
    let mut tx = db.begin().await?;
    let stored = on_tx!(&mut tx, conn => {
        q::query(&remember)
            .bind(session_id)
            .bind(id)
            .bind(attempt)
            .bind(now.unix_timestamp())
            .execute(&mut *conn)
            .await?;
        q::query(STORE)
            .bind(id)
            .bind(session_id)
            .bind(url)
            .bind(now)
            .bind(attempt)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
    })?;
    tx.commit().await?;
    Ok(stored)
}

/// Whether the app made this Checkout Session for this job (in any attempt).
pub async fn is_own_session(tx: &mut Tx, id: i64, session_id: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str =
        "SELECT COUNT(*) FROM job_checkout_sessions WHERE job_id = $1 AND session_id = $2";
    let count: i64 =
        on_tx!(tx, conn => q::query_scalar(SQL).bind(id).bind(session_id).fetch_one(conn).await)?;
    Ok(count > 0)
}

pub async fn publish(tx: &mut Tx, id: i64, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE job_postings SET status = $2, published_at = $3, updated_at = $3 \
        WHERE id = $1 AND status <> $2";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(JobStatus::Published.as_str()).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The job's payment was refunded in full: it is no longer published.
pub async fn unpublish_refunded(
    tx: &mut Tx,
    id: i64,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE job_postings SET status = $2, published_at = NULL, updated_at = $3 \
        WHERE id = $1";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(JobStatus::Refunded.as_str()).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The job's session expired or its payment failed: the next "Pay" starts a new
/// attempt (with a new idempotency key).
pub async fn forget_checkout(
    tx: &mut Tx,
    id: i64,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE job_postings SET checkout_session_id = NULL, checkout_url = NULL, \
            checkout_attempt = checkout_attempt + 1, updated_at = $3 \
        WHERE id = $1 AND checkout_session_id = $2";
    on_tx!(tx, conn => q::query(SQL).bind(id).bind(session_id).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}
