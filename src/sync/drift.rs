//! `--check`: where local users and Stripe customers disagree, and with `--repair`
//! the fixes that are safe to make without a person deciding.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::{SyncError, SyncService, now};
use crate::db::users;
use crate::stripe::{CustomerLookup, StripeCustomer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The customer's name or email is not the local one (`--update` pushes it).
    Differs,
    /// `stripe_id` points at a customer Stripe no longer has.
    DeadId,
    /// A customer names this user in `metadata.user_id`, but the user is not linked
    /// to any customer (e.g. a database write lost after Stripe's answer).
    Orphan,
    /// A customer names this user, who is linked to another customer.
    Duplicate,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub user_id: i64,
    pub kind: DriftKind,
    pub stripe_id: String,
    pub detail: String,
    pub repaired: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub customers_seen: u64,
    pub drift: Vec<Drift>,
    pub interrupted: bool,
}

impl DriftReport {
    pub fn unrepaired(&self) -> usize {
        self.drift.iter().filter(|d| !d.repaired).count()
    }
}

impl SyncService {
    /// Pages through every Stripe customer once, then confirms with Stripe each
    /// linked id the list did not contain. Writes only when `repair` is set.
    pub async fn check_drift(
        &self,
        only_user: Option<i64>,
        repair: bool,
        stop: Arc<AtomicBool>,
    ) -> Result<DriftReport, SyncError> {
        let stripe = self.stripe()?;
        let mut report = DriftReport::default();
        // Ids of live customers linked to a local user.
        let mut linked_seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(report);
            }
            let (page, has_more) = stripe.list_customers(after.as_deref()).await?;
            after = page.last().map(|c| c.id.as_str().to_string());
            for customer in &page {
                report.customers_seen += 1;
                if let Some(drift) = self
                    .check_customer(customer, only_user, &mut linked_seen)
                    .await?
                {
                    report.drift.push(self.maybe_repair(drift, repair).await?);
                }
            }
            if !has_more || after.is_none() {
                break;
            }
        }
        let mut cursor = 0;
        loop {
            let page = users::linked_after(self.db(), cursor, 500).await?;
            let Some((last, _)) = page.last() else { break };
            cursor = *last;
            for (user_id, stripe_id) in page {
                if only_user.is_some_and(|only| only != user_id) || linked_seen.contains(&stripe_id)
                {
                    continue;
                }
                if stop.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    return Ok(report);
                }
                // Not in the list: deleted, or created after the list was read.
                if let CustomerLookup::Gone = stripe.retrieve_customer(&stripe_id).await? {
                    let drift = Drift {
                        user_id,
                        kind: DriftKind::DeadId,
                        detail: "Stripe has no such customer".into(),
                        stripe_id,
                        repaired: false,
                    };
                    report.drift.push(self.maybe_repair(drift, repair).await?);
                }
            }
        }
        Ok(report)
    }

    async fn check_customer(
        &self,
        customer: &StripeCustomer,
        only_user: Option<i64>,
        linked_seen: &mut HashSet<String>,
    ) -> Result<Option<Drift>, SyncError> {
        let stripe_id = customer.id.as_str();
        if let Some(user) = users::find_by_stripe_id(self.db(), stripe_id).await? {
            linked_seen.insert(stripe_id.to_string());
            if only_user.is_some_and(|only| only != user.id) {
                return Ok(None);
            }
            let same = customer.name.as_deref() == Some(user.name.as_str())
                && customer.email.as_deref() == Some(user.email.as_str());
            return Ok((!same).then(|| Drift {
                user_id: user.id,
                kind: DriftKind::Differs,
                stripe_id: stripe_id.to_string(),
                detail: "name or email differs from Stripe (run --update)".into(),
                repaired: false,
            }));
        }
        let named = customer
            .metadata
            .as_ref()
            .and_then(|m| m.get("user_id"))
            .and_then(|id| id.parse::<i64>().ok());
        let Some(user_id) = named.filter(|id| only_user.is_none_or(|only| only == *id)) else {
            return Ok(None);
        };
        let Some(user) = users::find(self.db(), user_id).await? else {
            return Ok(None);
        };
        let (kind, detail) = match &user.stripe_id {
            None => (DriftKind::Orphan, "not linked to its user".to_string()),
            Some(linked) => (
                DriftKind::Duplicate,
                format!("a second customer for a user linked to {linked}"),
            ),
        };
        Ok(Some(Drift {
            user_id,
            kind,
            stripe_id: stripe_id.to_string(),
            detail,
            repaired: false,
        }))
    }

    /// Re-links orphans and clears dead ids; differing data and duplicates need a
    /// person (or `--update`) and are only reported.
    async fn maybe_repair(&self, mut drift: Drift, repair: bool) -> Result<Drift, SyncError> {
        if !repair {
            return Ok(drift);
        }
        let now = now();
        drift.repaired = match drift.kind {
            DriftKind::Orphan => {
                users::link_orphan(self.db(), drift.user_id, &drift.stripe_id, now).await?
            }
            DriftKind::DeadId => {
                users::clear_customer(self.db(), drift.user_id, &drift.stripe_id, now).await?;
                true
            }
            DriftKind::Differs | DriftKind::Duplicate => false,
        };
        if drift.repaired {
            tracing::info!(user_id = drift.user_id, stripe_id = %drift.stripe_id, kind = ?drift.kind, "drift repaired");
        }
        Ok(drift)
    }
}
