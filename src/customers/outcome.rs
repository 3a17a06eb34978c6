//! What the customers service's operations did, as callers read it, and the
//! stored copy of a customer and the log line each operation leaves.

use super::CustomerError;
use super::snapshot::{self, CustomerSnapshot, Snapshot};
use crate::clock::now;
use crate::db::users::CustomerState;
use crate::fields::{self, merge::Verdict};
use crate::stripe::{CustomerParams, StripeCustomer};

/// Whether an update sends data that is already what Stripe was last given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Always,
    IfChanged,
}

/// What an update did, field by field (by key, `address.city`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// Sent to Stripe; empty when Stripe was not called.
    pub pushed: Vec<String>,
    /// Changed in Stripe, and taken into the local columns.
    pub pulled: Vec<String>,
    /// Changed on both sides since they last agreed: left alone.
    pub conflicts: Vec<String>,
    /// Changed in Stripe and kept there, never written locally (the billing email).
    pub changed_in_stripe: Vec<String>,
    /// Changed here, but not sent: Stripe's published types cannot take them.
    pub not_sent: Vec<fields::Withheld>,
}

impl UpdateOutcome {
    pub(super) fn of(plan: &fields::merge::Plan) -> Self {
        let keys = |verdict| {
            plan.fields
                .iter()
                .filter(|f| f.verdict == verdict)
                .map(|f| f.field.key())
                .collect()
        };
        UpdateOutcome {
            pushed: keys(Verdict::Push),
            pulled: keys(Verdict::Pull),
            conflicts: keys(Verdict::Conflict),
            changed_in_stripe: keys(Verdict::ChangedInStripe),
            not_sent: plan.withheld(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Stripe had no such customer any more; the local link was cleared anyway.
    AlreadyGone,
}

/// A customer's Stripe-side copy as it is stored: the page's snapshot (JSON) and
/// Cashier's pm columns, from one source so they always agree.
pub(crate) struct StoredCopy {
    card: Option<snapshot::Card>,
    json: String,
}

impl StoredCopy {
    pub(crate) fn new(snapshot: CustomerSnapshot) -> Self {
        let card = snapshot.card.clone();
        StoredCopy {
            card,
            json: Snapshot::Present(Box::new(snapshot)).to_json(),
        }
    }

    pub(crate) fn of(customer: &StripeCustomer) -> Self {
        Self::new(CustomerSnapshot::from(customer))
    }

    pub(crate) fn state(&self) -> CustomerState<'_> {
        CustomerState {
            pm_type: self.card.as_ref().map(|card| card.brand.as_str()),
            pm_last_four: self.card.as_ref().map(|card| card.last4.as_str()),
            snapshot: &self.json,
            at: now(),
        }
    }
}

/// What was pushed, as stored in `stripe_synced_hash`: SHA-256 of the JSON payload.
pub fn payload_hash(params: &CustomerParams) -> String {
    use sha2::{Digest as _, Sha256};
    let json = serde_json::to_vec(params).expect("params serialize");
    hex::encode(Sha256::digest(json))
}

/// One log line for each group of fields an operation did not send, and why.
pub(super) fn log_withheld(user_id: i64, operation: &'static str, withheld: &[fields::Withheld]) {
    for reason in withheld {
        tracing::warn!(
            user_id,
            operation,
            field = reason.group(),
            reason = reason.reason(),
            "field not sent to stripe"
        );
    }
}

/// One log line per operation that failed, with the user, the operation and
/// Stripe's request id; never a secret or a card number.
pub(super) fn log_outcome<T>(
    user_id: i64,
    operation: &'static str,
    result: &Result<T, CustomerError>,
) {
    let Err(err) = result else {
        tracing::info!(user_id, operation, "stripe operation succeeded");
        return;
    };
    let request_id = err.request_id();
    if err.is_internal() {
        tracing::error!(user_id, operation, request_id, error = %err, "stripe operation failed");
    } else {
        tracing::warn!(user_id, operation, request_id, error = %err, "stripe operation refused");
    }
}
