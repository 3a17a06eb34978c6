//! `--refresh` over every user reads Stripe's customer list, 100 customers a
//! call, instead of retrieving each linked customer: a list page serves a hundred
//! users for the cost of one request.
//!
//! 1. Each page's customers are matched to linked users by `stripe_id` in one
//!    query and stored in one transaction, while the next page is being fetched.
//! 2. The list covers the whole account, which may hold many customers that are
//!    not this app's (a shared account, another app). While fewer than one listed
//!    customer in four is ours, a page costs more than the retrieves it replaces:
//!    the listing stops and the remaining users are retrieved one by one.
//! 3. A linked customer the list did not show is retrieved once (deleted, or just
//!    not listed) and reported as a single refresh reports it; never unlinked.
//!    The listing also stops once every linked user has been seen.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::Tally;
use crate::customers::{CustomerError, Customers, StoredCopy};
use crate::db::users;
use crate::stripe::StripeCustomer;

/// How `--refresh` read the account's customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reads {
    /// List pages (and a retrieve for each linked customer the list did not show).
    ListPages,
    /// List pages until they proved mostly other customers, then retrieves.
    ListThenRetrieves,
}

impl Reads {
    pub fn describe(self) -> &'static str {
        match self {
            Reads::ListPages => "customers read in list pages of 100",
            Reads::ListThenRetrieves => {
                "few of the account's customers are this app's: list pages gave way to \
                 one retrieve per remaining user"
            }
        }
    }
}

/// What the listing did: which users it refreshed (the retrieves leave them alone).
pub(super) struct Listed {
    pub refreshed: HashSet<i64>,
    pub reads: Reads,
    pub pages: u64,
    pub interrupted: bool,
}

/// Below this share of listed customers being ours, the listing stops.
const LEAST_OURS: f64 = 0.25;

impl Customers {
    pub(super) async fn refresh_listed(
        &self,
        tally: &Tally,
        stop: &AtomicBool,
    ) -> Result<Listed, CustomerError> {
        let stripe = self.stripe()?;
        let linked = users::count_linked(self.db()).await?.max(0) as u64;
        let mut listed = Listed {
            refreshed: HashSet::new(),
            reads: Reads::ListPages,
            pages: 0,
            interrupted: false,
        };
        let (mut customers_listed, mut ours) = (0u64, 0u64);
        let mut page = match linked {
            0 => None,
            _ => Some(stripe.list_customers(None).await?),
        };
        while let Some((customers, has_more)) = page.take() {
            listed.pages += 1;
            let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
            let users = users::find_by_stripe_ids(self.db(), &ids).await?;
            customers_listed += customers.len() as u64;
            ours += users.len() as u64;
            let after = customers.last().map(|c| c.id.as_str().to_string());
            let sparse = (ours as f64) < customers_listed as f64 * LEAST_OURS;
            let seen_all = ours >= linked;
            if stop.load(Ordering::Relaxed) {
                listed.interrupted = true;
            }
            let more = has_more && after.is_some() && !seen_all && !listed.interrupted;
            if more && sparse {
                listed.reads = Reads::ListThenRetrieves;
            }
            let next = async {
                match after.as_deref() {
                    Some(after) if more && !sparse => {
                        stripe.list_customers(Some(after)).await.map(Some)
                    }
                    _ => Ok(None),
                }
            };
            let store = self.store_listed(&customers, users, tally, &mut listed.refreshed);
            let (stored, fetched) = tokio::join!(store, next);
            stored?;
            page = fetched?;
        }
        tracing::info!(
            pages = listed.pages,
            customers = customers_listed,
            ours,
            reads = ?listed.reads,
            "customers listed for --refresh"
        );
        Ok(listed)
    }

    /// Stores one page's customers for the users linked to them, in one transaction.
    async fn store_listed(
        &self,
        customers: &[StripeCustomer],
        users: Vec<users::User>,
        tally: &Tally,
        refreshed: &mut HashSet<i64>,
    ) -> Result<(), CustomerError> {
        if users.is_empty() {
            return Ok(());
        }
        let by_id: HashMap<&str, &StripeCustomer> =
            customers.iter().map(|c| (c.id.as_str(), c)).collect();
        let mut tx = self.db().begin().await?;
        let mut stored = Vec::with_capacity(users.len());
        for user in &users {
            let Some(stripe_id) = user.stripe_id.as_deref() else {
                continue;
            };
            let Some(customer) = by_id.get(stripe_id) else {
                continue;
            };
            let copy = StoredCopy::of(customer);
            let state = copy.state();
            let done =
                users::store_customer_state(&mut tx, user.id, stripe_id, state, None).await?;
            if done {
                self.settle_in(&mut tx, user.id, stripe_id).await?;
            }
            stored.push((user.id, done));
        }
        tx.commit().await?;
        for (user_id, done) in stored {
            refreshed.insert(user_id);
            // Linked to another customer meanwhile: the retrieve pass skips it too.
            tally.add(if done {
                &tally.refreshed
            } else {
                &tally.skipped
            });
        }
        Ok(())
    }
}
