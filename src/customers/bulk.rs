//! The bulk sync behind `stripe:sync-customers`: streams users in keyset pages and
//! calls the same create, update and refresh the settings page calls,
//! concurrently, under the gateway's rate limiter. One user's failure never stops
//! the run.
//!
//! Every selected user ends the run handled, failed, or reported as held by a
//! living run; none is silently left out:
//! 1. A user whose attempts all went unanswered (timeouts, dropped connections,
//!    5xx, 429) gets a second pass at the end, when the network may have
//!    recovered; a failure Stripe answered with a verdict is final at once.
//! 2. A user another process holds is tried again every second until its claim
//!    is released or lapses; claims of a living holder are renewed by its
//!    heartbeat and never lapse, a killed holder's lapse within [`LEASE`]. Users
//!    still held after [`LEASE`] and a margin are reported as held.
//!
//! Stripe limits each endpoint on its own, so a run that creates and updates works
//! two lanes at once, each scanning the users for its own action under its own
//! workers: creates and updates each get their endpoint's rate instead of taking
//! turns. A user the create lane took is never the update lane's too.
//! `--refresh` reads customers in list pages first ([`refresh`]).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

mod lane;
pub mod refresh;

use lane::{Handled, Lane, LaneEnd, Share};

use super::{CreateOutcome, CustomerError, Customers, LEASE, Push, UpdateOutcome};
use crate::db::users::{self, FieldRow};
use crate::fields::Prefer;
use crate::fields::merge::Settle;
use crate::runs::report::{Count, Failures, Notes};
use crate::stripe::ListReads;
use refresh::Reads;

const PAGE_SIZE: i64 = 500;
/// How long a run waits for users held elsewhere: past a killed holder's lease.
const HELD_WAIT: Duration = Duration::from_secs(LEASE.as_secs() + 5);
const HELD_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct BulkOptions {
    pub create: bool,
    pub update: bool,
    /// Pull every linked user's customer (card, trial, snapshot) instead.
    pub refresh: bool,
    pub user: Option<i64>,
    pub dry_run: bool,
    pub force: bool,
    /// Which side wins a field changed on both sides; `None`: report it.
    pub prefer: Option<Prefer>,
    pub concurrency: usize,
}

impl BulkOptions {
    fn settle(&self) -> Settle<'static> {
        match self.prefer {
            Some(side) => Settle::All(side),
            None => Settle::Report,
        }
    }
}

/// Live counts, read by the progress display while the run goes on.
#[derive(Debug, Default)]
pub struct Tally {
    pub processed: Count,
    pub created: Count,
    pub relinked: Count,
    pub updated: Count,
    pub refreshed: Count,
    pub unchanged: Count,
    /// Users whose local columns took fields changed in Stripe (counted beside
    /// their outcome, not as one).
    pub pulled: Count,
    pub skipped: Count,
    pub held: Count,
    pub failed: Count,
}

impl Tally {
    /// One more user done, counted as `outcome` too.
    pub(super) fn add(&self, outcome: &Count) {
        outcome.add();
        self.processed.add();
    }
}

/// The final report; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct BulkReport {
    pub dry_run: bool,
    pub interrupted: bool,
    pub processed: u64,
    /// In a dry run: customers that would be created.
    pub created: u64,
    pub relinked: u64,
    /// In a dry run: customers that would be updated.
    pub updated: u64,
    /// Customers pulled into the local copy (`--refresh`).
    pub refreshed: u64,
    pub unchanged: u64,
    /// Users whose local columns took fields changed in Stripe.
    pub pulled: u64,
    /// Not acted on: outside the chosen actions, or done by another run meanwhile.
    pub skipped: u64,
    /// Still held by another living run when this one gave up waiting.
    pub held: u64,
    pub failed: u64,
    /// Users whose first attempts went unanswered and who were tried again at the end.
    pub retried: u64,
    #[serde(flatten)]
    pub failures: Failures,
    /// Users with fields changed on both sides, left alone (see `--prefer`), and
    /// fields Stripe's types could not take, not sent.
    #[serde(flatten)]
    pub notes: Notes,
    /// How `--refresh` read the customers: list pages, or list pages then
    /// retrieves (when few of the account's customers are this app's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<Reads>,
    /// The segments and pages `--refresh`'s listing read.
    #[serde(flatten)]
    pub list: ListReads,
    pub elapsed_seconds: f64,
}

impl BulkReport {
    /// Every selected user was handled: nothing failed, held or left unseen.
    pub fn complete(&self) -> bool {
        self.failed == 0 && self.held == 0 && !self.interrupted
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Refresh,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Refresh => "refresh",
        }
    }
}

enum Done {
    /// Created, or linked to what an interrupted attempt created.
    Created(CreateOutcome),
    /// What the update did: it may have pushed nothing.
    Updated(UpdateOutcome),
    Refreshed,
}

impl Customers {
    /// Creates, updates or refreshes customers for every user (or one), as
    /// `options` says. Stops scheduling new users once `stop` is set; in-flight
    /// calls finish.
    pub async fn sync_customers(
        &self,
        options: &BulkOptions,
        tally: Arc<Tally>,
        stop: Arc<AtomicBool>,
    ) -> Result<BulkReport, CustomerError> {
        if !options.dry_run {
            self.stripe()?;
        }
        let started = Instant::now();
        let failures: Arc<Mutex<Failures>> = Arc::default();
        let notes: Arc<Mutex<Notes>> = Arc::default();
        let handled: Handled = Arc::default();
        let lane = |share: Share| {
            let (service, options) = (self.clone(), options.clone());
            let reports = (failures.clone(), notes.clone());
            Lane::new(
                service,
                options,
                share,
                handled.clone(),
                tally.clone(),
                reports,
            )
        };

        let (mut reads, mut list, mut listing_interrupted) = (None, ListReads::default(), false);
        if options.refresh && options.user.is_none() && !options.dry_run {
            let listed = self.refresh_listed(&tally, &stop).await?;
            *handled.lock().expect("handled lock") = listed.refreshed;
            (reads, list) = (Some(listed.reads), listed.list);
            listing_interrupted = listed.interrupted;
        }
        let ends = if listing_interrupted {
            vec![LaneEnd {
                interrupted: true,
                retried: 0,
            }]
        } else if options.create && options.update && options.user.is_none() {
            let (creates, updates) = tokio::join!(
                lane(Share::Creates).run(&stop),
                lane(Share::Updates).run(&stop)
            );
            vec![creates?, updates?]
        } else {
            vec![lane(Share::Alone).run(&stop).await?]
        };

        let failures = std::mem::take(&mut *failures.lock().expect("failures lock"));
        let notes = std::mem::take(&mut *notes.lock().expect("notes lock"));
        Ok(BulkReport {
            dry_run: options.dry_run,
            interrupted: ends.iter().any(|end| end.interrupted),
            processed: tally.processed.get(),
            created: tally.created.get(),
            relinked: tally.relinked.get(),
            updated: tally.updated.get(),
            refreshed: tally.refreshed.get(),
            unchanged: tally.unchanged.get(),
            pulled: tally.pulled.get(),
            skipped: tally.skipped.get(),
            held: tally.held.get(),
            failed: tally.failed.get(),
            retried: ends.iter().map(|end| end.retried).sum(),
            failures,
            notes,
            reads,
            list,
            elapsed_seconds: started.elapsed().as_secs_f64(),
        })
    }

    async fn sync_row(&self, id: i64) -> Result<FieldRow, CustomerError> {
        users::field_row(self.db(), id, &self.columns())
            .await?
            .ok_or(CustomerError::UserNotFound(id))
    }

    async fn run(
        &self,
        user_id: i64,
        action: Action,
        options: &BulkOptions,
    ) -> Result<Done, CustomerError> {
        match action {
            Action::Create => Ok(Done::Created(self.create_customer(user_id).await?)),
            Action::Update => {
                let push = if options.force {
                    Push::Always
                } else {
                    Push::IfChanged
                };
                let outcome = self
                    .update_settling(user_id, push, options.settle())
                    .await?;
                Ok(Done::Updated(outcome))
            }
            Action::Refresh => {
                self.refresh_customer(user_id).await?;
                Ok(Done::Refreshed)
            }
        }
    }
}
