use super::*;

const MYSQL: Dialect = Dialect {
    mysql: true,
    postgres: false,
};
const OTHERS: Dialect = Dialect {
    mysql: false,
    postgres: false,
};

#[test]
fn insert_ignore_per_dialect() {
    let insert = "INSERT INTO t (a) VALUES ($1)";
    assert_eq!(
        insert_ignore(MYSQL, insert, "a"),
        "INSERT IGNORE INTO t (a) VALUES ($1)"
    );
    assert_eq!(
        insert_ignore(OTHERS, insert, "a"),
        "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING"
    );
}

#[test]
fn upsert_per_dialect() {
    let insert = "INSERT INTO payments (k, v, n) VALUES ($1, $2, $3)";
    let set = [
        ("v", "COALESCE(excluded.v, payments.v)"),
        (
            "n",
            "CASE WHEN payments.n IN ($4) THEN payments.n ELSE excluded.n END",
        ),
    ];
    assert_eq!(
        upsert(OTHERS, insert, "k", &set),
        "INSERT INTO payments (k, v, n) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET \
         v = COALESCE(excluded.v, payments.v), \
         n = CASE WHEN payments.n IN ($4) THEN payments.n ELSE excluded.n END"
    );
    assert_eq!(
        upsert(MYSQL, insert, "k", &set),
        "INSERT INTO payments (k, v, n) VALUES ($1, $2, $3) ON DUPLICATE KEY UPDATE \
         v = COALESCE(VALUES(v), v), n = CASE WHEN n IN ($4) THEN n ELSE VALUES(n) END"
    );
}

#[test]
fn only_whole_names_are_rewritten_for_mysql() {
    assert_eq!(
        mysql_values("my_payments.v + payments.v + not_excluded.v", "payments"),
        "my_payments.v + v + not_excluded.v"
    );
}

/// A database error with only a code, as each driver reports one.
#[derive(Debug)]
struct Coded(&'static str);

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}", self.0)
    }
}

impl std::error::Error for Coded {}

impl sqlx::error::DatabaseError for Coded {
    fn message(&self) -> &str {
        "coded"
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.0.into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[test]
fn deadlocks_serialization_failures_and_busy_are_transient_and_nothing_else() {
    let coded = |code| sqlx::Error::Database(Box::new(Coded(code)));
    for code in ["40001", "40P01", "5", "6", "261", "262", "517"] {
        assert!(is_transient(&coded(code)), "{code}");
    }
    for code in ["1062", "23000", "23505", "2067", "42P01", "HY000"] {
        assert!(!is_transient(&coded(code)), "{code}");
    }
    assert!(!is_transient(&sqlx::Error::RowNotFound));
    assert!(!is_transient(&sqlx::Error::PoolTimedOut));
}

#[test]
fn signed_ids_on_mysql_only() {
    assert_eq!(
        MYSQL.signed_id("user_id"),
        "CAST(user_id AS SIGNED) AS user_id"
    );
    assert_eq!(OTHERS.signed_id("user_id"), "user_id");
}
