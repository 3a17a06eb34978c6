//! The synced customer fields of a user row: the mapped columns, the base and the
//! Stripe-side copy, read together; pulls and the base written together.

use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;

use super::LaravelTime;
use crate::db::dialect::{self, Arg, Dialect, Stmt, catalog};
use crate::db::{Db, Tx, on_pool, on_tx};

/// A user's synced fields as stored.
#[derive(Debug, Clone)]
pub struct FieldRow {
    pub id: i64,
    pub stripe_id: Option<String>,
    pub stripe_synced_hash: Option<String>,
    pub stripe_snapshot: Option<String>,
    /// JSON: field → the value both sides last agreed on.
    pub stripe_base: Option<String>,
    /// The mapped columns' values, in the map's order, read as text.
    pub local: Vec<Option<String>>,
}

const FIXED: usize = 5;

impl FieldRow {
    /// The row of a user already read, when the map syncs only its name and
    /// email (no other column to read).
    pub fn of_user(user: &super::User) -> Self {
        FieldRow {
            id: user.id,
            stripe_id: user.stripe_id.clone(),
            stripe_synced_hash: user.stripe_synced_hash.clone(),
            stripe_snapshot: user.stripe_snapshot.clone(),
            stripe_base: user.stripe_base.clone(),
            local: vec![Some(user.name.clone()), Some(user.email.clone())],
        }
    }
}

impl<'r, R> FromRow<'r, R> for FieldRow
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(FieldRow {
            id: row.try_get(0)?,
            stripe_id: row.try_get(1)?,
            stripe_synced_hash: row.try_get(2)?,
            stripe_snapshot: row.try_get(3)?,
            stripe_base: row.try_get(4)?,
            local: (FIXED..row.len())
                .map(|index| row.try_get(index))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The select list of a [`FieldRow`] for `columns` (the map's, in order).
pub(super) fn select(dialect: Dialect, columns: &[&str]) -> String {
    let mut list = vec![
        dialect.signed_id("id"),
        "stripe_id".into(),
        "stripe_synced_hash".into(),
        "stripe_snapshot".into(),
        "stripe_base".into(),
    ];
    list.extend(
        columns
            .iter()
            .map(|column| dialect.as_text(&dialect.quoted(column))),
    );
    list.join(", ")
}

pub async fn field_row(
    db: &Db,
    id: i64,
    columns: &[&str],
) -> Result<Option<FieldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM users WHERE id = $1",
        select(db.dialect(), columns)
    );
    on_pool!(db, pool => q::query_as(&sql).bind(id).fetch_optional(pool).await)
}

pub async fn field_row_in(
    tx: &mut Tx,
    id: i64,
    columns: &[&str],
) -> Result<Option<FieldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM users WHERE id = $1",
        select(tx.dialect(), columns)
    );
    on_tx!(tx, conn => q::query_as(&sql).bind(id).fetch_optional(conn).await)
}

/// The next page of users after `after_id`, in id order (keyset pagination).
pub async fn field_page_after(
    db: &Db,
    after_id: i64,
    limit: i64,
    columns: &[&str],
) -> Result<Vec<FieldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM users WHERE id > $1 ORDER BY id LIMIT $2",
        select(db.dialect(), columns)
    );
    on_pool!(db, pool => q::query_as(&sql).bind(after_id).bind(limit).fetch_all(pool).await)
}

/// A value pulled from Stripe into a column, and the value the column held when
/// it was read: a column changed since (a profile saved meanwhile) is left alone.
pub struct Pull<'a> {
    pub column: &'a str,
    /// Empty: Stripe has none; the column is cleared to NULL, or to `''` when
    /// `not_null`.
    pub value: &'a str,
    pub not_null: bool,
    pub read: Option<&'a str>,
}

/// Writes the pulls and the new base, while the user is linked to `stripe_id`
/// and every pulled column still holds what was read. Returns whether it did.
pub async fn store_fields_in(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    pulls: &[Pull<'_>],
    base: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    store_in(tx, id, stripe_id, None, pulls, Some(base), now).await
}

/// A copy of the customer as Stripe has it, and the `created` of the event that
/// said so (`None`: not a customer event, the ordering guard stays).
pub struct CustomerCopy<'a> {
    pub state: super::CustomerState<'a>,
    pub event_created: Option<i64>,
}

/// As [`store_fields_in`], with the copy they settle stored in the same
/// statement, unless an event newer than `copy`'s was applied. `base` is `None`
/// when it does not move.
pub async fn store_copy_in(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    copy: &CustomerCopy<'_>,
    pulls: &[Pull<'_>],
    base: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    store_in(tx, id, stripe_id, Some(copy), pulls, base, now).await
}

async fn store_in(
    tx: &mut Tx,
    id: i64,
    stripe_id: &str,
    copy: Option<&CustomerCopy<'_>>,
    pulls: &[Pull<'_>],
    base: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let dialect = tx.dialect();
    let mut update = Update {
        args: vec![Arg::Int(id), Arg::Text(stripe_id)],
        set: Vec::new(),
        guard: String::new(),
    };
    if let Some(base) = base {
        update.assign("stripe_base", Arg::Text(base));
    }
    if let Some(CustomerCopy {
        state,
        event_created,
    }) = copy
    {
        update.assign("pm_type", Arg::MaybeText(state.pm_type));
        update.assign("pm_last_four", Arg::MaybeText(state.pm_last_four));
        update.assign("stripe_snapshot", Arg::Text(state.snapshot));
        update.assign("stripe_snapshot_at", Arg::Time(state.at));
        if let Some(created) = event_created {
            let created = update.assign("stripe_event_created", Arg::Int(*created));
            update.guard.push_str(&format!(
                " AND (stripe_event_created IS NULL OR stripe_event_created <= {created})"
            ));
        }
    }
    for pull in pulls {
        let column = dialect.quoted(pull.column);
        // An empty value clears the column, as Stripe's empty means "not set".
        let cleared = pull.value.is_empty() && !pull.not_null;
        update.assign(&column, Arg::MaybeText((!cleared).then_some(pull.value)));
        let read = update.bind(Arg::Text(pull.read.unwrap_or("")));
        let column = dialect.as_text(&column);
        update
            .guard
            .push_str(&format!(" AND COALESCE({column}, '') = {read}"));
    }
    if !pulls.is_empty() {
        update.assign("updated_at", Arg::Laravel(LaravelTime(now)));
    }
    if update.set.is_empty() {
        return Ok(true);
    }
    let sql = format!(
        "UPDATE users SET {} WHERE id = $1 AND stripe_id = $2{}",
        update.set.join(", "),
        update.guard
    );
    let done = dialect::execute_in(tx, &Stmt::new(sql, update.args)).await?;
    Ok(done == 1)
}

/// An `UPDATE users` being built: its arguments, assignments and conditions.
struct Update<'a> {
    args: Vec<Arg<'a>>,
    set: Vec<String>,
    guard: String,
}

impl<'a> Update<'a> {
    /// Binds `arg`; returns its placeholder.
    fn bind(&mut self, arg: Arg<'a>) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Sets `column` to `arg`; returns the placeholder.
    fn assign(&mut self, column: &str, arg: Arg<'a>) -> String {
        let placeholder = self.bind(arg);
        self.set.push(format!("{column} = {placeholder}"));
        placeholder
    }
}

/// Refuses a map column `users` lacks or that does not hold text, naming it;
/// otherwise what the catalog says of each column, in `columns`' order.
pub async fn check_columns(
    db: &Db,
    columns: &[(String, &str)],
) -> Result<Vec<catalog::ColumnFacts>, CheckError> {
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let present = catalog::column_facts(db, "users").await?;
    let mut facts = Vec::with_capacity(columns.len());
    for (key, column) in columns {
        match present.iter().find(|c| c.name.eq_ignore_ascii_case(column)) {
            None => {
                return Err(CheckError::Refused(format!(
                    "STRIPE_CUSTOMER_FIELDS maps {key} to users.{column}, which does not exist \
                     (adding it is the app's own migration)"
                )));
            }
            Some(found) if !catalog::is_text_type(&found.type_) => {
                return Err(CheckError::Refused(format!(
                    "STRIPE_CUSTOMER_FIELDS maps {key} to users.{column}, a {} column: a \
                     synced column must hold text",
                    found.type_
                )));
            }
            Some(found) => facts.push(found.clone()),
        }
    }
    Ok(facts)
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
