//! MySQL and MariaDB take `?` placeholders, bound in the order they appear; the
//! app's SQL numbers them (`$1`, `$2`, a number used twice, out of order), as
//! SQLite and PostgreSQL take them. In the MySQL arm of [`on_pool!`] and
//! [`on_tx!`], `q::query`, `query_as` and `query_scalar` are these: the same text
//! and the same binds, each `$n` made a `?` and its value bound where it appears.
//!
//! What cannot be rewritten safely is refused, with an error when the statement
//! first runs: a comment (a `$n` inside one would be counted), a backslash in a
//! quoted string (MySQL reads it as an escape, the others as a character), a `?`
//! of its own, a `$n` with no value, and a value no `$n` uses (a statement that
//! lost a placeholder would otherwise run with its values shifted).
//!
//! [`on_pool!`]: super::on_pool
//! [`on_tx!`]: super::on_tx

#![allow(clippy::disallowed_methods)]

use sqlx::error::BoxDynError;
use sqlx::mysql::{MySql, MySqlArguments, MySqlQueryResult, MySqlRow};
use sqlx::{Arguments as _, Encode, Error, Executor, FromRow, Type};

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
        let refuse =
            |why: String| Error::Protocol(format!("MySQL dialect: {why} in: {}", self.sql));
        let (sql, order) = translate(self.sql).map_err(|why| refuse(why.to_string()))?;
        let mut args = MySqlArguments::default();
        for &number in &order {
            let bind = number.checked_sub(1).and_then(|i| self.binds.get(i));
            let bind = bind.ok_or_else(|| refuse(format!("${number} has no bound value")))?;
            bind(&mut args).map_err(Error::Encode)?;
        }
        if let Some(unused) = (1..=self.binds.len()).find(|n| !order.contains(n)) {
            return Err(refuse(format!(
                "the value bound to ${unused} is used nowhere"
            )));
        }
        Ok((sql, args))
    }
}

/// Replaces each `$n` outside quotes with `?`; returns the numbers in order, or
/// why the text cannot be rewritten safely.
pub fn translate(sql: &str) -> Result<(String, Vec<usize>), &'static str> {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => return Err("a backslash in a quoted string"),
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '#') => return Err("a comment"),
            (None, '-') if chars.peek() == Some(&'-') => return Err("a comment"),
            (None, '/') if chars.peek() == Some(&'*') => return Err("a comment"),
            (None, '?') => return Err("a ? placeholder of its own"),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut number = 0usize;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                    number = number.saturating_mul(10).saturating_add(digit as usize);
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
    Ok((out, order))
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
        sqlx::query_with(&sql, args).execute(executor).await
    }
}

pub struct QueryAs<'q, O>(Numbered<'q>, std::marker::PhantomData<fn() -> O>);

impl<'q, O> QueryAs<'q, O>
where
    O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
{
    bind!();
    fetches!(sqlx::query_as_with);
}

pub struct QueryScalar<'q, O>(Numbered<'q>, std::marker::PhantomData<fn() -> O>);

impl<'q, O> QueryScalar<'q, O>
where
    O: Send + Unpin,
    (O,): for<'r> FromRow<'r, MySqlRow>,
{
    bind!();
    fetches!(sqlx::query_scalar_with);
}

#[cfg(test)]
mod tests {
    use super::{query, translate};

    #[test]
    fn numbered_placeholders_become_question_marks_in_order_of_appearance() {
        let (sql, order) =
            translate("UPDATE t SET a = $2, b = $3 WHERE id = $1 AND ($3 IS NULL)").unwrap();
        assert_eq!(
            sql,
            "UPDATE t SET a = ?, b = ? WHERE id = ? AND (? IS NULL)"
        );
        assert_eq!(order, [2, 3, 1, 3]);
    }

    #[test]
    fn quoted_dollars_and_two_digit_numbers() {
        let (sql, order) = translate("SELECT '$1', `a$2`, \"-- $3\", $10, $1 FROM t").unwrap();
        assert_eq!(sql, "SELECT '$1', `a$2`, \"-- $3\", ?, ? FROM t");
        assert_eq!(order, [10, 1]);
    }

    #[test]
    fn comments_backslashes_and_bare_question_marks_are_refused() {
        for (sql, why) in [
            ("SELECT a FROM t -- $1\nWHERE b = $1", "a comment"),
            ("SELECT a FROM t # $1", "a comment"),
            ("SELECT a /* $2 */ FROM t WHERE b = $1", "a comment"),
            (
                "SELECT 'it\\'s $1' FROM t WHERE b = $1",
                "a backslash in a quoted string",
            ),
            ("SELECT a FROM t WHERE b = ?", "a ? placeholder of its own"),
        ] {
            assert_eq!(translate(sql).unwrap_err(), why, "{sql}");
            let err = query(sql).bind(1_i64).0.prepare().unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
        }
        // A minus, a slash or a hash inside quotes is text.
        assert!(translate("SELECT a - 1, a / 2, '#--/*' FROM t WHERE b = $1").is_ok());
    }

    #[test]
    fn a_number_without_a_value_is_an_error_not_a_panic() {
        for sql in ["SELECT $2", "SELECT $0", "SELECT $99999999999999999999999"] {
            let err = query(sql).bind(1_i64).0.prepare().unwrap_err();
            assert!(err.to_string().contains("has no bound value"), "{err}");
        }
    }

    #[test]
    fn a_value_no_placeholder_uses_is_an_error() {
        let err = query("SELECT $1, $3")
            .bind(1_i64)
            .bind(2_i64)
            .bind(3_i64)
            .0
            .prepare()
            .unwrap_err();
        assert!(err.to_string().contains("$2 is used nowhere"), "{err}");
        assert!(
            query("SELECT $2, $1, $2")
                .bind(1_i64)
                .bind(2_i64)
                .0
                .prepare()
                .is_ok()
        );
    }
}
