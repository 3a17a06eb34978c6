//! `--refresh` over every user reads Stripe's customer list, 100 customers a
//! call, instead of retrieving each linked customer: a list page serves a hundred
//! users for the cost of one request. The list is read in segments of creation
//! time side by side ([`crate::stripe::Segments`]), as many as the rate and the
//! round trip call for.
//!
//! 1. Each page's customers are matched to linked users by `stripe_id` in one
//!    query and stored in one transaction, while other pages are being fetched.
//! 2. The list covers the whole account, which may hold many customers that are
//!    not this app's (a shared account, another app). While fewer than one listed
//!    customer in four is ours, a page costs more than the retrieves it replaces:
//!    the listing stops and the remaining users are retrieved one by one.
//! 3. A linked customer the list did not show is retrieved once (deleted, or just
//!    not listed) and reported as a single refresh reports it; never unlinked.
//!    The listing also stops once every linked user has been seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::Tally;
use crate::customers::snapshot::CustomerSnapshot;
use crate::customers::{CustomerError, Customers, StoredCopy, UserIds};
use crate::db::users;
use crate::stripe::ListReads;

/// How `--refresh` read the account's customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reads {
    /// List pages, in segments side by side (and a retrieve for each linked
    /// customer the list did not show).
    ListSegments,
    /// List pages until they proved mostly other customers, then retrieves.
    ListThenRetrieves,
}

impl Reads {
    pub fn describe(self) -> &'static str {
        match self {
            Reads::ListSegments => "customers read in list pages of 100, segments side by side",
            Reads::ListThenRetrieves => {
                "few of the account's customers are this app's: list pages gave way to \
                 one retrieve per remaining user"
            }
        }
    }
}

/// What the listing did: which users it refreshed (the retrieves leave them alone).
pub(super) struct Listed {
    pub refreshed: UserIds,
    pub reads: Reads,
    pub list: ListReads,
    pub interrupted: bool,
}

/// Below this share of listed customers being ours, the listing stops...
const LEAST_OURS: f64 = 0.25;
/// ...once this many have been listed.
const SPARSE_SAMPLE: u64 = 100;

impl Customers {
    pub(super) async fn refresh_listed(
        &self,
        tally: &Tally,
        stop: &AtomicBool,
    ) -> Result<Listed, CustomerError> {
        let stripe = self.stripe()?;
        let linked = users::count_linked(self.db()).await?.max(0) as u64;
        let mut listed = Listed {
            refreshed: UserIds::default(),
            reads: Reads::ListSegments,
            list: ListReads::default(),
            interrupted: false,
        };
        let (mut customers_listed, mut ours) = (0u64, 0u64);
        if linked > 0 {
            let mut pages = stripe.every_customer(linked, |c| CustomerSnapshot::from(&c));
            while let Some(customers) = pages.next_page().await {
                let customers = customers?;
                let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
                let users = users::find_by_stripe_ids(self.db(), &ids).await?;
                customers_listed += customers.len() as u64;
                ours += users.len() as u64;
                // Judged over a page's worth at least: the first pages to arrive
                // may be a few old customers from before the app.
                let sparse = customers_listed >= SPARSE_SAMPLE
                    && (ours as f64) < customers_listed as f64 * LEAST_OURS;
                listed.interrupted = stop.load(Ordering::Relaxed);
                self.store_listed(customers, users, tally, &mut listed.refreshed)
                    .await?;
                if ours >= linked || listed.interrupted {
                    break;
                }
                if sparse {
                    listed.reads = Reads::ListThenRetrieves;
                    break;
                }
            }
            listed.list = pages.reads();
        }
        tracing::info!(
            segments = listed.list.list_segments,
            pages = listed.list.list_pages,
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
        customers: Vec<CustomerSnapshot>,
        users: Vec<users::User>,
        tally: &Tally,
        refreshed: &mut UserIds,
    ) -> Result<(), CustomerError> {
        if users.is_empty() {
            return Ok(());
        }
        let by_id: HashMap<&str, &CustomerSnapshot> =
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
            let copy = StoredCopy::new((*customer).clone());
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
