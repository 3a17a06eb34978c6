//! A statement whose values are known before the driver is: the SQL text and
//! its values in placeholder order, bound on whichever driver runs it. The named
//! functions of [`super`] take these, as they run different text per driver.

use std::borrow::Cow;

use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Postgres, Sqlite};
use time::OffsetDateTime;

use super::mysql;
use crate::db::LaravelTime;

/// One value for a numbered placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    SmallInt(i32),
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Time(OffsetDateTime),
    Laravel(LaravelTime),
}

/// `Arg::from` for each type a value may have.
macro_rules! arg_from {
    ($($type:ty => $variant:ident),* $(,)?) => {
        $(impl<'a> From<$type> for Arg<'a> {
            fn from(value: $type) -> Self {
                Arg::$variant(value)
            }
        })*
    };
}
arg_from!(
    i64 => Int,
    i32 => SmallInt,
    &'a str => Text,
    Option<&'a str> => MaybeText,
    OffsetDateTime => Time,
    LaravelTime => Laravel,
);

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(value)
    }
}

/// SQL with numbered placeholders and the values for them, `$1` first.
#[derive(Debug, Clone)]
pub struct Stmt<'a> {
    sql: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

/// `stmt!(SQL, a, b)`: the statement with `a` for `$1` and `b` for `$2`.
macro_rules! stmt {
    ($sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::db::dialect::Stmt::new($sql, vec![$($crate::db::dialect::Arg::from($arg)),*])
    };
}
pub(crate) use stmt;

impl<'a> Stmt<'a> {
    pub fn new(sql: impl Into<Cow<'a, str>>, args: Vec<Arg<'a>>) -> Self {
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The same statement with `suffix` (a `RETURNING` clause) after its text.
    pub(super) fn with_suffix(self, suffix: &str) -> Self {
        Stmt {
            sql: Cow::Owned(format!("{}{suffix}", self.sql)),
            args: self.args,
        }
    }

    /// `builder` (a query made of [`Stmt::sql`]) with every value bound.
    pub fn bind_to<'q, B: BindArg<'q>>(&self, builder: B) -> B
    where
        'a: 'q,
    {
        self.args
            .iter()
            .fold(builder, |builder, arg| builder.bind_arg(*arg))
    }

    pub(super) fn mysql(&self) -> mysql::Query<'_> {
        self.bind_to(mysql::query(&self.sql))
    }

    pub(super) fn mysql_as<O>(&self) -> mysql::QueryAs<'_, O>
    where
        O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
    {
        self.bind_to(mysql::query_as(&self.sql))
    }
}

/// A row type every driver can read.
pub trait FromEveryRow:
    for<'r> FromRow<'r, SqliteRow>
    + for<'r> FromRow<'r, PgRow>
    + for<'r> FromRow<'r, MySqlRow>
    + Send
    + Unpin
{
}

impl<T> FromEveryRow for T where
    T: for<'r> FromRow<'r, SqliteRow>
        + for<'r> FromRow<'r, PgRow>
        + for<'r> FromRow<'r, MySqlRow>
        + Send
        + Unpin
{
}

/// A query builder that takes an [`Arg`].
pub trait BindArg<'q>: Sized {
    fn bind_arg(self, arg: Arg<'q>) -> Self;
}

macro_rules! bind_arg_body {
    () => {
        fn bind_arg(self, arg: Arg<'q>) -> Self {
            match arg {
                Arg::Int(value) => self.bind(value),
                Arg::SmallInt(value) => self.bind(value),
                Arg::Text(value) => self.bind(value),
                Arg::MaybeText(value) => self.bind(value),
                Arg::Time(value) => self.bind(value),
                Arg::Laravel(value) => self.bind(value),
            }
        }
    };
}

macro_rules! bind_arg_for_sqlx {
    ($db:ty, $args:ty) => {
        impl<'q> BindArg<'q> for sqlx::query::Query<'q, $db, $args> {
            bind_arg_body!();
        }

        impl<'q, O> BindArg<'q> for sqlx::query::QueryAs<'q, $db, O, $args> {
            bind_arg_body!();
        }

        impl<'q, O> BindArg<'q> for sqlx::query::QueryScalar<'q, $db, O, $args> {
            bind_arg_body!();
        }
    };
}
bind_arg_for_sqlx!(Sqlite, sqlx::sqlite::SqliteArguments<'q>);
bind_arg_for_sqlx!(Postgres, sqlx::postgres::PgArguments);

impl<'q> BindArg<'q> for mysql::Query<'q> {
    bind_arg_body!();
}

impl<'q, O> BindArg<'q> for mysql::QueryAs<'q, O>
where
    O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
{
    bind_arg_body!();
}

impl<'q, O> BindArg<'q> for mysql::QueryScalar<'q, O>
where
    O: Send + Unpin,
    (O,): for<'r> FromRow<'r, MySqlRow>,
{
    bind_arg_body!();
}
