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
//! `--refresh` reads customers in list pages first ([`super::bulk_refresh`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bulk_refresh::Reads;
use super::{CreateOutcome, LEASE, Push, SyncError, SyncService, UpdateOutcome, payload_hash};
use crate::db::users::{self, SyncRow};
use crate::stripe::CustomerParams;

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
    pub concurrency: usize,
}

/// Live counts, read by the progress display while the run goes on.
#[derive(Debug, Default)]
pub struct Tally {
    pub processed: AtomicU64,
    pub created: AtomicU64,
    pub relinked: AtomicU64,
    pub updated: AtomicU64,
    pub refreshed: AtomicU64,
    pub unchanged: AtomicU64,
    pub skipped: AtomicU64,
    pub held: AtomicU64,
    pub failed: AtomicU64,
}

impl Tally {
    pub(super) fn add(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.processed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedUser {
    pub user_id: i64,
    pub action: &'static str,
    pub reason: String,
    pub request_id: Option<String>,
    /// Whether Stripe answered (with an error status) rather than not at all.
    pub stripe_answered: bool,
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
    /// Not acted on: outside the chosen actions, or done by another run meanwhile.
    pub skipped: u64,
    /// Still held by another living run when this one gave up waiting.
    pub held: u64,
    pub failed: u64,
    /// Users whose first attempts went unanswered and who were tried again at the end.
    pub retried: u64,
    pub failures: Vec<FailedUser>,
    /// How `--refresh` read the customers: list pages, or list pages then
    /// retrieves (when few of the account's customers are this app's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<Reads>,
    /// List pages `--refresh` read.
    pub list_pages: u64,
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
    Created,
    Relinked,
    Updated,
    Unchanged,
    Refreshed,
}

/// Which pass a user's attempt belongs to: what happens to an attempt that is not
/// final (no answer, held elsewhere) depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    Again,
}

/// Users to try again, and the failure to report if they cannot be.
#[derive(Default)]
struct Later {
    unanswered: Vec<(i64, Action, FailedUser)>,
    held: Vec<(i64, Action)>,
}

/// Ids of users one lane handles and another must leave alone: the ones the
/// create lane took, or the ones a list page already refreshed.
type Handled = Arc<Mutex<HashSet<i64>>>;

/// Which users a lane acts on when two lanes scan the same users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    /// Every user: the only lane of the run.
    Alone,
    /// Users without a customer (their ids go into `handled`).
    Creates,
    /// Linked users the create lane did not take.
    Updates,
}

/// One scan of the users and the workers acting on what it finds, at most
/// `concurrency` at once; every lane of a run counts into the same tally.
struct Lane {
    service: SyncService,
    options: BulkOptions,
    share: Share,
    handled: Handled,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    tally: Arc<Tally>,
    failures: Arc<Mutex<Vec<FailedUser>>>,
    later: Arc<Mutex<Later>>,
}

/// How a lane's run ended.
struct LaneEnd {
    interrupted: bool,
    retried: u64,
}

impl Lane {
    async fn spawn(&mut self, user_id: i64, action: Action, pass: Pass) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let service = self.service.clone();
        let force = self.options.force;
        let (tally, failures, later) = (
            self.tally.clone(),
            self.failures.clone(),
            self.later.clone(),
        );
        self.tasks.spawn(async move {
            let outcome = service.run(user_id, action, force).await;
            record(&tally, &failures, &later, pass, user_id, action, outcome);
            drop(permit);
        });
        while self.tasks.try_join_next().is_some() {}
    }

    async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    fn take_later(&self) -> Later {
        std::mem::take(&mut *self.later.lock().expect("later lock"))
    }

    fn fail(&self, failure: FailedUser) {
        self.tally.add(&self.tally.failed);
        self.failures.lock().expect("failures lock").push(failure);
    }

    /// What this lane does for one user of the scan, if anything.
    fn plan(&self, row: &SyncRow) -> Option<Action> {
        let mut handled = self.handled.lock().expect("handled lock");
        let others = match self.share {
            Share::Alone => handled.contains(&row.id),
            Share::Creates => row.stripe_id.is_some(),
            Share::Updates => row.stripe_id.is_none() || handled.contains(&row.id),
        };
        if others {
            return None;
        }
        let action = plan(row, &self.options, &self.tally)?;
        if self.share == Share::Creates {
            handled.insert(row.id);
        }
        Some(action)
    }

    /// Scans the users, then gives the unanswered a second pass and waits for
    /// users held elsewhere. Stops scheduling new users once `stop` is set.
    async fn run(mut self, stop: &AtomicBool) -> Result<LaneEnd, SyncError> {
        let stopped = || stop.load(Ordering::Relaxed);
        let mut cursor = 0;
        let mut interrupted = false;
        'pages: loop {
            let page = match self.options.user {
                Some(id) if cursor == 0 => vec![self.service.sync_row(id).await?],
                Some(_) => Vec::new(),
                None => users::page_after(self.service.db(), cursor, PAGE_SIZE).await?,
            };
            let Some(last) = page.last() else { break };
            cursor = last.id;
            for row in page {
                if stopped() {
                    interrupted = true;
                    break 'pages;
                }
                let Some(action) = self.plan(&row) else {
                    continue;
                };
                if self.options.dry_run {
                    let tally = &self.tally;
                    tally.add(match action {
                        Action::Create => &tally.created,
                        Action::Update => &tally.updated,
                        Action::Refresh => &tally.refreshed,
                    });
                    continue;
                }
                self.spawn(row.id, action, Pass::First).await;
            }
        }
        self.finish().await;

        // Second pass for the unanswered.
        let Later { unanswered, held } = self.take_later();
        let retried = unanswered.len() as u64;
        for (user_id, action, failure) in unanswered {
            if stopped() {
                interrupted = true;
                self.fail(failure);
            } else {
                self.spawn(user_id, action, Pass::Again).await;
            }
        }
        self.finish().await;

        // Users held elsewhere, until their holder lets go or dies: at once (a
        // run beside this one has most likely finished them by now), then every
        // poll.
        let mut held = [held, self.take_later().held].concat();
        let waiting_since = Instant::now();
        while !held.is_empty() && !stopped() && waiting_since.elapsed() < HELD_WAIT {
            for (user_id, action) in std::mem::take(&mut held) {
                self.spawn(user_id, action, Pass::Again).await;
            }
            self.finish().await;
            held = self.take_later().held;
            if !held.is_empty() {
                tokio::time::sleep(HELD_POLL).await;
            }
        }
        interrupted |= stopped() && !held.is_empty();
        for _ in &held {
            self.tally.add(&self.tally.held);
        }
        Ok(LaneEnd {
            interrupted,
            retried,
        })
    }
}

impl SyncService {
    /// Creates, updates or refreshes customers for every user (or one), as
    /// `options` says. Stops scheduling new users once `stop` is set; in-flight
    /// calls finish.
    pub async fn sync_customers(
        &self,
        options: &BulkOptions,
        tally: Arc<Tally>,
        stop: Arc<AtomicBool>,
    ) -> Result<BulkReport, SyncError> {
        if !options.dry_run {
            self.stripe()?;
        }
        let started = Instant::now();
        let failures: Arc<Mutex<Vec<FailedUser>>> = Arc::default();
        let handled: Handled = Arc::default();
        let lane = |share: Share| Lane {
            service: self.clone(),
            options: options.clone(),
            share,
            handled: handled.clone(),
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            tasks: JoinSet::new(),
            tally: tally.clone(),
            failures: failures.clone(),
            later: Arc::default(),
        };

        let (mut reads, mut list_pages, mut listing_interrupted) = (None, 0, false);
        if options.refresh && options.user.is_none() && !options.dry_run {
            let listed = self.refresh_listed(&tally, &stop).await?;
            *handled.lock().expect("handled lock") = listed.refreshed;
            (reads, list_pages) = (Some(listed.reads), listed.pages);
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
        Ok(BulkReport {
            dry_run: options.dry_run,
            interrupted: ends.iter().any(|end| end.interrupted),
            processed: Tally::get(&tally.processed),
            created: Tally::get(&tally.created),
            relinked: Tally::get(&tally.relinked),
            updated: Tally::get(&tally.updated),
            refreshed: Tally::get(&tally.refreshed),
            unchanged: Tally::get(&tally.unchanged),
            skipped: Tally::get(&tally.skipped),
            held: Tally::get(&tally.held),
            failed: Tally::get(&tally.failed),
            retried: ends.iter().map(|end| end.retried).sum(),
            failures,
            reads,
            list_pages,
            elapsed_seconds: started.elapsed().as_secs_f64(),
        })
    }

    async fn sync_row(&self, id: i64) -> Result<SyncRow, SyncError> {
        let user = self.user(id).await?;
        Ok(SyncRow {
            id: user.id,
            name: user.name,
            email: user.email,
            stripe_id: user.stripe_id,
            stripe_synced_hash: user.stripe_synced_hash,
        })
    }

    async fn run(&self, user_id: i64, action: Action, force: bool) -> Result<Done, SyncError> {
        match action {
            Action::Create => match self.create_customer(user_id).await? {
                CreateOutcome::Created { .. } => Ok(Done::Created),
                CreateOutcome::Relinked { .. } => Ok(Done::Relinked),
            },
            Action::Update => {
                let push = if force { Push::Always } else { Push::IfChanged };
                match self.update_customer(user_id, push).await? {
                    UpdateOutcome::Updated => Ok(Done::Updated),
                    UpdateOutcome::Unchanged => Ok(Done::Unchanged),
                }
            }
            Action::Refresh => {
                self.refresh_customer(user_id).await?;
                Ok(Done::Refreshed)
            }
        }
    }
}

/// What to do for one user, from the scan alone: unchanged users and users outside
/// the chosen actions are counted here and cost no Stripe call and no write.
fn plan(row: &SyncRow, options: &BulkOptions, tally: &Tally) -> Option<Action> {
    match &row.stripe_id {
        Some(_) if options.refresh => Some(Action::Refresh),
        None if options.create => Some(Action::Create),
        Some(_) if options.update => {
            let params = CustomerParams {
                name: row.name.clone(),
                email: row.email.clone(),
            };
            let unchanged = row.stripe_synced_hash.as_deref() == Some(&payload_hash(&params));
            if unchanged && !options.force {
                tally.add(&tally.unchanged);
                return None;
            }
            Some(Action::Update)
        }
        _ => {
            tally.add(&tally.skipped);
            None
        }
    }
}

/// Counts one user's outcome. An unanswered failure in the first pass, and a user
/// held elsewhere in any pass, are set aside to try again and counted then.
fn record(
    tally: &Tally,
    failures: &Mutex<Vec<FailedUser>>,
    later: &Mutex<Later>,
    pass: Pass,
    user_id: i64,
    action: Action,
    outcome: Result<Done, SyncError>,
) {
    let failure = |err: &SyncError| FailedUser {
        user_id,
        action: action.name(),
        reason: err.operator_reason(),
        request_id: err.request_id().map(str::to_string),
        stripe_answered: err.stripe_answered(),
    };
    match outcome {
        Ok(Done::Created) => tally.add(&tally.created),
        Ok(Done::Relinked) => tally.add(&tally.relinked),
        Ok(Done::Updated) => tally.add(&tally.updated),
        Ok(Done::Unchanged) => tally.add(&tally.unchanged),
        Ok(Done::Refreshed) => tally.add(&tally.refreshed),
        // Another run (or the page) holds the user right now.
        Err(SyncError::CreateInProgress | SyncError::Busy) => {
            later
                .lock()
                .expect("later lock")
                .held
                .push((user_id, action));
        }
        // Another run got there first.
        Err(SyncError::AlreadyHasCustomer { .. } | SyncError::NoCustomer) => {
            tally.add(&tally.skipped)
        }
        Err(err) if err.is_unanswered() && pass == Pass::First => {
            let failed = failure(&err);
            later
                .lock()
                .expect("later lock")
                .unanswered
                .push((user_id, action, failed));
        }
        Err(err) => {
            tally.add(&tally.failed);
            failures.lock().expect("failures lock").push(failure(&err));
        }
    }
}
