//! What the settings page shows of a user's customer, decided here rather than
//! in the page: where it stands and the last copy of it read from Stripe.

use time::OffsetDateTime;

use super::snapshot::{CustomerSnapshot, Snapshot};
use crate::db::users::{User, unix_ms};

/// Where a user's Stripe customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    NotLinked,
    Linked,
    /// Linked to a customer Stripe no longer has.
    Missing,
    /// A create holds the user's row (its claim has not lapsed).
    Creating,
}

/// The customer as the page shows it.
#[derive(Debug, Clone)]
pub struct CustomerView {
    pub status: CustomerStatus,
    /// The last copy read from Stripe, when it describes a customer Stripe has.
    pub customer: Option<CustomerSnapshot>,
    /// When that copy was read, while the user is linked.
    pub read_at: Option<OffsetDateTime>,
}

impl CustomerView {
    pub fn of(user: &User, now: OffsetDateTime) -> Self {
        let snapshot = user
            .stripe_snapshot
            .as_deref()
            .and_then(Snapshot::from_json);
        let status = match (&user.stripe_id, &snapshot) {
            (Some(_), Some(Snapshot::Missing)) => CustomerStatus::Missing,
            (Some(_), _) => CustomerStatus::Linked,
            (None, _)
                if user
                    .stripe_lease_expires
                    .is_some_and(|until| until > unix_ms(now)) =>
            {
                CustomerStatus::Creating
            }
            (None, _) => CustomerStatus::NotLinked,
        };
        let customer = match snapshot {
            Some(Snapshot::Present(customer)) => Some(*customer),
            _ => None,
        };
        CustomerView {
            status,
            customer,
            read_at: user.stripe_snapshot_at.filter(|_| user.stripe_id.is_some()),
        }
    }
}
