//! The clock, as the database stores it: timestamps in whole microseconds and
//! claim and run times in milliseconds since the epoch.

use std::time::Duration;

use time::OffsetDateTime;

/// Now, in whole microseconds: PostgreSQL keeps no more, and SQLite compares the
/// text, so a time written and read back compares equal.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// A time in milliseconds since the epoch, the unit claims and runs are stored in.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A duration in milliseconds, the same unit.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
