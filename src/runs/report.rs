//! What a bulk run reports, whichever it is (`stripe:sync-customers`, its
//! `--check`, `stripe:replay-events`): live counts, and its failures, the first
//! [`LISTED_FAILURES`] kept for the report and the rest counted and logged (a run
//! against a Stripe that is down must not hold one entry per user in memory).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::fields::Withheld;

/// How many failures a report lists.
pub const LISTED_FAILURES: usize = 100;

/// A live count, read by the progress display while the run goes on.
#[derive(Debug, Default)]
pub struct Count(AtomicU64);

impl Count {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What failed: a user (and the action tried on it), or an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Subject {
    User {
        user_id: i64,
        action: &'static str,
    },
    Event {
        event_id: String,
        event_type: String,
        created: i64,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User { user_id, action } => write!(f, "user {user_id} ({action})"),
            Subject::Event {
                event_id,
                event_type,
                ..
            } => write!(f, "{event_id} ({event_type})"),
        }
    }
}

/// One failure of a run: what, why in an operator's words, and Stripe's request
/// id when it answered.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    #[serde(flatten)]
    pub subject: Subject,
    pub reason: String,
    pub request_id: Option<String>,
    /// Whether Stripe answered (with an error status) rather than not at all.
    pub stripe_answered: bool,
}

/// An error a run reports: in an operator's words, with Stripe's request id.
pub trait RunError {
    fn operator_reason(&self) -> String;
    fn request_id(&self) -> Option<&str>;
    /// Whether Stripe answered (with an error status) rather than not at all.
    fn stripe_answered(&self) -> bool;
}

impl Failure {
    pub fn of(subject: Subject, err: &impl RunError) -> Self {
        Failure {
            subject,
            reason: err.operator_reason(),
            request_id: err.request_id().map(str::to_string),
            stripe_answered: err.stripe_answered(),
        }
    }
}

/// A run's failures: the first [`LISTED_FAILURES`], and how many more there were
/// (each of those logged when it happened). In `--json`, `failures` and
/// `failures_not_listed`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failures {
    failures: Vec<Failure>,
    failures_not_listed: u64,
}

impl Failures {
    pub fn push(&mut self, failure: Failure) {
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push(failure);
            return;
        }
        self.failures_not_listed += 1;
        tracing::warn!(
            subject = %failure.subject,
            reason = %failure.reason,
            request_id = failure.request_id,
            "failed (beyond the report's list)"
        );
    }

    /// The listed failures, in the order they happened.
    pub fn listed(&self) -> &[Failure] {
        &self.failures
    }

    pub fn not_listed(&self) -> u64 {
        self.failures_not_listed
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What a bulk run says of users besides their counts, by field (never the
/// values: they are the user's data): conflicts and fields not sent, each list's
/// first [`LISTED_FAILURES`] kept and the rest counted. In `--json`: `conflicts`,
/// `conflicts_not_listed`, `not_sent`, `not_sent_not_listed`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notes {
    #[serde(flatten)]
    pub conflicts: Listed<Conflict>,
    #[serde(flatten)]
    pub not_sent: Listed<NotSent>,
}

impl Notes {
    /// A user's conflict, if any, and the fields not sent, if any.
    pub fn add(&mut self, user_id: i64, conflict: Option<Conflict>, withheld: &[Withheld]) {
        if let Some(conflict) = conflict {
            self.conflicts.push(conflict);
        }
        for note in NotSent::of(user_id, withheld) {
            self.not_sent.push(note);
        }
    }
}

/// A user whose fields changed on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub user_id: i64,
    pub fields: Vec<String>,
}

/// A user's field, or group of fields, that was not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotSent {
    pub user_id: i64,
    pub field: &'static str,
    pub reason: &'static str,
}

impl NotSent {
    pub fn of(user_id: i64, withheld: &[Withheld]) -> impl Iterator<Item = NotSent> + '_ {
        withheld.iter().map(move |w| NotSent {
            user_id,
            field: w.group(),
            reason: w.reason(),
        })
    }
}

/// What a list of notes is called in `--json`.
pub trait Noted {
    const KEY: &'static str;
    const NOT_LISTED_KEY: &'static str;
}

impl Noted for Conflict {
    const KEY: &'static str = "conflicts";
    const NOT_LISTED_KEY: &'static str = "conflicts_not_listed";
}

impl Noted for NotSent {
    const KEY: &'static str = "not_sent";
    const NOT_LISTED_KEY: &'static str = "not_sent_not_listed";
}

/// The first [`LISTED_FAILURES`] notes of one kind, and how many more there were.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    listed: Vec<T>,
    not_listed: u64,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            listed: Vec::new(),
            not_listed: 0,
        }
    }
}

impl<T> Listed<T> {
    pub fn push(&mut self, note: T) {
        if self.listed.len() < LISTED_FAILURES {
            self.listed.push(note);
        } else {
            self.not_listed += 1;
        }
    }

    pub fn listed(&self) -> &[T] {
        &self.listed
    }

    pub fn not_listed(&self) -> u64 {
        self.not_listed
    }

    /// Notes, listed or not.
    pub fn count(&self) -> u64 {
        self.listed.len() as u64 + self.not_listed
    }
}

impl<T: Serialize + Noted> Serialize for Listed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(T::KEY, &self.listed)?;
        map.serialize_entry(T::NOT_LISTED_KEY, &self.not_listed)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(user_id: i64) -> Failure {
        Failure {
            subject: Subject::User {
                user_id,
                action: "create",
            },
            reason: "Stripe unavailable".into(),
            request_id: None,
            stripe_answered: false,
        }
    }

    #[test]
    fn the_first_hundred_are_listed_and_the_rest_counted() {
        let mut failures = Failures::default();
        for user_id in 0..250 {
            failures.push(failure(user_id));
        }
        assert_eq!(failures.listed().len(), LISTED_FAILURES);
        assert_eq!(failures.not_listed(), 150);
        assert_eq!(
            failures.listed()[99].subject,
            Subject::User {
                user_id: 99,
                action: "create"
            }
        );
        let json = serde_json::to_value(&failures).unwrap();
        assert_eq!(json["failures"].as_array().unwrap().len(), 100);
        assert_eq!(json["failures"][0]["user_id"], 0);
        assert_eq!(json["failures"][0]["action"], "create");
        assert_eq!(json["failures_not_listed"], 150);
    }

    #[test]
    fn subjects_read_as_an_operator_writes_them() {
        assert_eq!(failure(7).subject.to_string(), "user 7 (create)");
        let event = Subject::Event {
            event_id: "evt_1".into(),
            event_type: "customer.updated".into(),
            created: 1,
        };
        assert_eq!(event.to_string(), "evt_1 (customer.updated)");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event_id"], "evt_1");
        assert_eq!(json["created"], 1);
    }
}
