//! `--check`: where local users and Stripe customers disagree, and with `--repair`
//! the fixes that are safe to make without a person deciding.
//!
//! Repair must never unlink users because the key points somewhere else. A link is
//! cleared only when Stripe proves the customer deleted (`deleted: true` is shown
//! only to the account that had it), or when it answers "no such customer" for a
//! small share of the links checked: a wrong key or account answers that for all
//! of them, and then nothing is cleared. An orphan is re-linked only to the user
//! whose email it carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::snapshot::CustomerSnapshot;
use super::{CustomerError, Customers, UserIds};
use crate::clock::now;
use crate::db::users::{self, User};
use crate::runs::report::LISTED_FAILURES;
use crate::stripe::{ListReads, Missing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The customer's name or email is not the local one (`--update` pushes it).
    Differs,
    /// The default card in Stripe is not the local `pm_type` / `pm_last_four`
    /// (`--refresh` pulls it).
    CardDiffers,
    /// `stripe_id` points at a customer Stripe no longer has.
    DeadId,
    /// A customer names this user in `metadata.user_id` and carries their email, but
    /// the user is not linked to any customer (e.g. a write lost after Stripe's answer).
    Orphan,
    /// A customer names this user in `metadata.user_id` but carries another email:
    /// left for a person, never linked.
    ClaimMismatch,
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

/// What `--check` found: counts, and the first [`LISTED_FAILURES`] cases of
/// drift (the rest counted and logged), as the other runs report failures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub customers_seen: u64,
    /// Local links compared with Stripe.
    pub links_checked: u64,
    /// Cases of drift found, and of those, left as they were.
    pub found: u64,
    pub unrepaired: u64,
    drift: Vec<Drift>,
    drift_not_listed: u64,
    /// Why repair left the dead ids alone, when it did.
    pub repair_refused: Option<String>,
    pub interrupted: bool,
    /// How the customers were read: segments side by side, and pages.
    #[serde(flatten)]
    pub list: ListReads,
}

impl DriftReport {
    pub fn unrepaired(&self) -> u64 {
        self.unrepaired
    }

    /// The listed cases, in the order they were found.
    pub fn drift(&self) -> &[Drift] {
        &self.drift
    }

    pub fn not_listed(&self) -> u64 {
        self.drift_not_listed
    }

    fn record(&mut self, drift: Drift) {
        self.found += 1;
        self.unrepaired += u64::from(!drift.repaired);
        if self.drift.len() < LISTED_FAILURES {
            self.drift.push(drift);
            return;
        }
        self.drift_not_listed += 1;
        tracing::warn!(
            user_id = drift.user_id,
            stripe_id = %drift.stripe_id,
            kind = ?drift.kind,
            repaired = drift.repaired,
            "drift (beyond the report's list)"
        );
    }
}

/// What `--repair` may do: nothing when `None`.
#[derive(Debug, Clone, Copy)]
pub struct Repair {
    /// The largest share of checked links that may answer "no such customer"
    /// before clearing any of them is refused.
    pub max_missing_share: f64,
}

impl Customers {
    /// Pages through every Stripe customer once (segments side by side), then confirms with Stripe each
    /// linked id the list did not contain. Writes only when `repair` is set.
    pub async fn check_drift(
        &self,
        only_user: Option<i64>,
        repair: Option<Repair>,
        stop: Arc<AtomicBool>,
    ) -> Result<DriftReport, CustomerError> {
        let stripe = self.stripe()?;
        let mut report = DriftReport::default();
        // Users whose linked customer the list showed (by user id, a few bits
        // each: a user linked to another customer meanwhile waits for the next run).
        let mut linked_seen = UserIds::default();
        let linked = users::count_linked(self.db()).await?.max(0) as u64;
        let mut pages = stripe.every_customer(linked, |c| CustomerSnapshot::from(&c));
        while let Some(page) = pages.next_page().await {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                report.list = pages.reads();
                return Ok(report);
            }
            let page = page?;
            let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
            let mut linked: HashMap<String, User> = users::find_by_stripe_ids(self.db(), &ids)
                .await?
                .into_iter()
                .filter_map(|user| Some((user.stripe_id.clone()?, user)))
                .collect();
            for customer in &page {
                report.customers_seen += 1;
                let user = linked.remove(customer.id.as_str());
                for drift in self
                    .check_customer(customer, user, only_user, &mut linked_seen, &mut report)
                    .await?
                {
                    let drift = match repair {
                        Some(_) => self.repair(drift).await?,
                        None => drift,
                    };
                    report.record(drift);
                }
            }
        }
        report.list = pages.reads();
        let mut dead = Vec::new();
        let mut cursor = 0;
        loop {
            let page = users::linked_after(self.db(), cursor, 500).await?;
            let Some((last, _)) = page.last() else { break };
            cursor = *last;
            for (user_id, stripe_id) in page {
                if only_user.is_some_and(|only| only != user_id) || linked_seen.contains(user_id) {
                    continue;
                }
                if stop.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    for (drift, _) in dead {
                        report.record(drift);
                    }
                    return Ok(report);
                }
                report.links_checked += 1;
                // Not in the list: deleted, or created after the list was read.
                if let Some(missing) = stripe.missing_customer(&stripe_id).await? {
                    let detail = match missing {
                        Missing::Deleted => "deleted in Stripe",
                        Missing::NotFound => "Stripe has no such customer",
                    };
                    let drift = Drift {
                        user_id,
                        kind: DriftKind::DeadId,
                        detail: detail.into(),
                        stripe_id,
                        repaired: false,
                    };
                    dead.push((drift, missing));
                }
            }
        }
        let dead = match repair {
            Some(repair) => self.repair_dead_ids(dead, repair, &mut report).await?,
            None => dead.into_iter().map(|(drift, _)| drift).collect(),
        };
        for drift in dead {
            report.record(drift);
        }
        Ok(report)
    }

    /// Compares one listed customer with `linked`, the user linked to it (read
    /// with the rest of its page), or looks for the user it names.
    async fn check_customer(
        &self,
        customer: &CustomerSnapshot,
        linked: Option<User>,
        only_user: Option<i64>,
        linked_seen: &mut UserIds,
        report: &mut DriftReport,
    ) -> Result<Vec<Drift>, CustomerError> {
        let stripe_id = customer.id.as_str();
        if let Some(user) = linked {
            linked_seen.insert(user.id);
            if only_user.is_some_and(|only| only != user.id) {
                return Ok(Vec::new());
            }
            report.links_checked += 1;
            return Ok(linked_drift(customer, &user));
        }
        let named = customer
            .metadata_user_id
            .as_deref()
            .and_then(|id| id.parse::<i64>().ok());
        let Some(user_id) = named.filter(|id| only_user.is_none_or(|only| only == *id)) else {
            return Ok(Vec::new());
        };
        let Some(user) = users::find(self.db(), user_id).await? else {
            return Ok(Vec::new());
        };
        let same_email = customer
            .email
            .as_deref()
            .is_some_and(|email| email.trim().eq_ignore_ascii_case(&user.email));
        let (kind, detail) = match &user.stripe_id {
            Some(linked) => (
                DriftKind::Duplicate,
                format!("a second customer for a user linked to {linked}"),
            ),
            None if same_email => (DriftKind::Orphan, "not linked to its user".to_string()),
            None => (
                DriftKind::ClaimMismatch,
                format!("claims user {user_id}, email differs"),
            ),
        };
        Ok(vec![Drift {
            user_id,
            kind,
            stripe_id: stripe_id.to_string(),
            detail,
            repaired: false,
        }])
    }

    /// Re-links orphans; everything else the scan finds needs a person, `--update`
    /// or `--refresh`, and is only reported.
    async fn repair(&self, mut drift: Drift) -> Result<Drift, CustomerError> {
        if drift.kind == DriftKind::Orphan {
            drift.repaired =
                users::link_orphan(self.db(), drift.user_id, &drift.stripe_id, now()).await?;
            log_repair(&drift);
        }
        Ok(drift)
    }

    /// Clears the links Stripe proved deleted, and those it does not know, unless
    /// more of the checked links than `max_missing_share` are unknown.
    async fn repair_dead_ids(
        &self,
        dead: Vec<(Drift, Missing)>,
        repair: Repair,
        report: &mut DriftReport,
    ) -> Result<Vec<Drift>, CustomerError> {
        let not_found = dead
            .iter()
            .filter(|(_, missing)| *missing == Missing::NotFound)
            .count();
        let checked = report.links_checked.max(1) as f64;
        let share = not_found as f64 / checked;
        let clear_not_found = share <= repair.max_missing_share;
        if !clear_not_found {
            report.repair_refused = Some(format!(
                "{not_found} of {} checked links point at customers this Stripe key cannot \
                 find ({:.0}%, more than the {:.0}% --max-missing-share allows). This usually \
                 means STRIPE_SECRET belongs to another Stripe account or mode (test or live); \
                 no such link was cleared.",
                report.links_checked,
                share * 100.0,
                repair.max_missing_share * 100.0
            ));
        }
        let mut drifts = Vec::with_capacity(dead.len());
        for (mut drift, missing) in dead {
            if missing == Missing::Deleted || clear_not_found {
                users::clear_customer(self.db(), drift.user_id, &drift.stripe_id, now()).await?;
                drift.repaired = true;
                log_repair(&drift);
            }
            drifts.push(drift);
        }
        Ok(drifts)
    }
}

/// How a linked customer differs from its user: name or email, and the card.
fn linked_drift(customer: &CustomerSnapshot, user: &User) -> Vec<Drift> {
    let drift = |kind, detail: &str| Drift {
        user_id: user.id,
        kind,
        stripe_id: customer.id.as_str().to_string(),
        detail: detail.into(),
        repaired: false,
    };
    let mut drifts = Vec::new();
    let same = customer.name.as_deref() == Some(user.name.as_str())
        && customer.email.as_deref() == Some(user.email.as_str());
    if !same {
        drifts.push(drift(
            DriftKind::Differs,
            "name or email differs from Stripe (run --update)",
        ));
    }
    let card = customer.card.as_ref();
    let same_card = card.map(|c| c.brand.as_str()) == user.pm_type.as_deref()
        && card.map(|c| c.last4.as_str()) == user.pm_last_four.as_deref();
    if !same_card {
        drifts.push(drift(
            DriftKind::CardDiffers,
            "default card differs from pm_type / pm_last_four (run --refresh)",
        ));
    }
    drifts
}

fn log_repair(drift: &Drift) {
    if drift.repaired {
        tracing::info!(user_id = drift.user_id, stripe_id = %drift.stripe_id, kind = ?drift.kind, "drift repaired");
    }
}
