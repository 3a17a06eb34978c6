//! MySQL and MariaDB take `?` placeholders, bound in the order they appear; the
//! app's SQL numbers them (`$1`, `$2`, a number used twice, out of order), as
//! SQLite and PostgreSQL take them. In the MySQL arm of [`on_pool!`] and
//! [`on_tx!`], `sqlx::query`, `query_as` and `query_scalar` resolve here: the
//! same text and the same binds, each `$n` made a `?` and its value bound where
//! it appears. Everything else of `sqlx` is sqlx's own.
//!
//! [`on_pool!`]: super::on_pool
//! [`on_tx!`]: super::on_tx

pub use ::sqlx::*;

use ::sqlx::error::BoxDynError;
use ::sqlx::mysql::{MySqlArguments, MySqlQueryResult, MySqlRow};

/// One bound value, kept so it can be added wherever its number appears.
type Bind<'q> = Box<dyn Fn(&mut MySqlArguments) -> Result<(), BoxDynError> + Send + Sync + 'q>;

/// A statement with numbered placeholders and its values in bind order (`$1` first).
pub struct Numbered<'q> {
    sql: &'q str,
    binds: Vec<Bind<'q>>,
}

impl<'q> Numbered<'q> {
    fn new(sql: &'q str) -> Self {
        Numbered {
            sql,
            binds: Vec::new(),
        }
    }

    fn push<T>(&mut self, value: T)
    where
        T: 'q + Encode<'q, MySql> + Type<MySql> + Clone + Send + Sync,
    {
        self.binds.push(Box::new(move |args: &mut MySqlArguments| {
            args.add(value.clone())
        }));
    }

    /// The text with `?` for every `$n`, and the values in the order they appear.
    fn prepare(self) -> Result<(String, MySqlArguments), Error> {
        let (sql, order) = translate(self.sql);
        let mut args = MySqlArguments::default();
        for number in order {
            let bind = number.checked_sub(1).and_then(|i| self.binds.get(i));
            let bind = bind.ok_or_else(|| {
                Error::Protocol(format!("${number} has no bound value in: {}", self.sql))
            })?;
            bind(&mut args).map_err(Error::Encode)?;
        }
        Ok((sql, args))
    }
}

/// Replaces each `$n` outside quotes with `?`; returns the numbers in order.
pub fn translate(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut number = 0usize;
                while let Some(&(_, d)) = chars.peek() {
                    let Some(digit) = d.to_digit(10) else { break };
                    number = number * 10 + digit as usize;
                    chars.next();
                }
                order.push(number);
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    (out, order)
}

pub fn query(sql: &str) -> Query<'_> {
    Query(Numbered::new(sql))
}

pub fn query_as<O>(sql: &str) -> QueryAs<'_, O> {
    QueryAs(Numbered::new(sql), std::marker::PhantomData)
}

pub fn query_scalar<O>(sql: &str) -> QueryScalar<'_, O> {
    QueryScalar(Numbered::new(sql), std::marker::PhantomData)
}

/// What `UPDATE … RETURNING` does elsewhere: `update`, then, when it took
/// exactly one row, `read` of that row in the same transaction (the update's
/// row lock holds until the commit).
pub async fn update_returning<O>(
    pool: &MySqlPool,
    update: Query<'_>,
    read: QueryAs<'_, O>,
) -> Result<Option<O>, Error>
where
    O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
{
    let mut tx = pool.begin().await?;
    let row = match update.execute(&mut *tx).await?.rows_affected() {
        1 => Some(read.fetch_one(&mut *tx).await?),
        _ => None,
    };
    tx.commit().await?;
    Ok(row)
}

/// `bind`, which keeps the value for wherever its number appears.
macro_rules! bind {
    () => {
        pub fn bind<T>(mut self, value: T) -> Self
        where
            T: 'q + Encode<'q, MySql> + Type<MySql> + Clone + Send + Sync,
        {
            self.0.push(value);
            self
        }
    };
}

/// `fetch_one`, `fetch_optional` and `fetch_all` through sqlx's `$with`
/// (`query_as_with` or `query_scalar_with`).
macro_rules! fetches {
    ($with:path) => {
        pub async fn fetch_one<'c, E>(self, executor: E) -> Result<O, Error>
        where
            E: Executor<'c, Database = MySql>,
        {
            let (sql, args) = self.0.prepare()?;
            $with(&sql, args).fetch_one(executor).await
        }

        pub async fn fetch_optional<'c, E>(self, executor: E) -> Result<Option<O>, Error>
        where
            E: Executor<'c, Database = MySql>,
        {
            let (sql, args) = self.0.prepare()?;
            $with(&sql, args).fetch_optional(executor).await
        }

        pub async fn fetch_all<'c, E>(self, executor: E) -> Result<Vec<O>, Error>
        where
            E: Executor<'c, Database = MySql>,
        {
            let (sql, args) = self.0.prepare()?;
            $with(&sql, args).fetch_all(executor).await
        }
    };
}

pub struct Query<'q>(Numbered<'q>);

impl<'q> Query<'q> {
    bind!();

    pub async fn execute<'c, E>(self, executor: E) -> Result<MySqlQueryResult, Error>
    where
        E: Executor<'c, Database = MySql>,
    {
        let (sql, args) = self.0.prepare()?;
        ::sqlx::query_with(&sql, args).execute(executor).await
    }
}

pub struct QueryAs<'q, O>(Numbered<'q>, std::marker::PhantomData<fn() -> O>);

impl<'q, O> QueryAs<'q, O>
where
    O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
{
    bind!();
    fetches!(::sqlx::query_as_with);
}

pub struct QueryScalar<'q, O>(Numbered<'q>, std::marker::PhantomData<fn() -> O>);

impl<'q, O> QueryScalar<'q, O>
where
    O: Send + Unpin,
    (O,): for<'r> FromRow<'r, MySqlRow>,
{
    bind!();
    fetches!(::sqlx::query_scalar_with);
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn numbered_placeholders_become_question_marks_in_order_of_appearance() {
        let (sql, order) = translate("UPDATE t SET a = $2, b = $3 WHERE id = $1 AND ($3 IS NULL)");
        assert_eq!(
            sql,
            "UPDATE t SET a = ?, b = ? WHERE id = ? AND (? IS NULL)"
        );
        assert_eq!(order, [2, 3, 1, 3]);
    }

    #[test]
    fn quoted_dollars_and_two_digit_numbers() {
        let (sql, order) = translate("SELECT '$1', `a$2`, $10, $1 FROM t");
        assert_eq!(sql, "SELECT '$1', `a$2`, ?, ? FROM t");
        assert_eq!(order, [10, 1]);
    }

    #[test]
    fn a_number_without_a_value_is_an_error_not_a_panic() {
        for sql in ["SELECT $2", "SELECT $0"] {
            let err = super::query(sql).bind(1_i64).0.prepare().unwrap_err();
            assert!(err.to_string().contains("has no bound value"), "{err}");
        }
    }
}
