//! The bulk sync behind `stripe:sync-customers`: streams users in keyset pages and
//! calls the same create and update the settings page calls, concurrently, under
//! the gateway's rate limiter. One user's failure never stops the run.
//!
//! A user whose attempts all went unanswered (timeouts, dropped connections, 5xx,
//! 429) gets a second pass at the end of the run, when the network may have
//! recovered, before being reported failed; a failure Stripe answered with a
//! verdict (a refused key, an invalid request) is final at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{CreateOutcome, Push, SyncError, SyncService, UpdateOutcome, payload_hash};
use crate::db::users::{self, SyncRow};
use crate::stripe::CustomerParams;

const PAGE_SIZE: i64 = 500;

#[derive(Debug, Clone)]
pub struct BulkOptions {
    pub create: bool,
    pub update: bool,
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
    pub unchanged: AtomicU64,
    pub skipped: AtomicU64,
    pub held: AtomicU64,
    pub failed: AtomicU64,
}

impl Tally {
    fn add(&self, counter: &AtomicU64) {
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

/// Users to try once more at the end of the run.
type SecondPass = std::sync::Mutex<Vec<(i64, Action)>>;

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
    pub unchanged: u64,
    /// Not acted on: outside the chosen actions, or done by another run meanwhile.
    pub skipped: u64,
    /// Not acted on because another run (or a killed one, until its claim lapses)
    /// holds the user: a later run finishes them.
    pub held: u64,
    pub failed: u64,
    /// Users whose first attempts went unanswered and who were tried again at the end.
    pub retried: u64,
    pub failures: Vec<FailedUser>,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Create,
    Update,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
        }
    }
}

impl SyncService {
    /// Creates and/or updates customers for every user (or one), as `options` says.
    /// Stops scheduling new users once `stop` is set; in-flight calls finish.
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
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let second_pass = Arc::new(SecondPass::default());
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let mut cursor = 0;
        let mut interrupted = false;
        'pages: loop {
            let page = match options.user {
                Some(id) if cursor == 0 => vec![self.sync_row(id).await?],
                Some(_) => Vec::new(),
                None => users::page_after(self.db(), cursor, PAGE_SIZE).await?,
            };
            let Some(last) = page.last() else { break };
            cursor = last.id;
            for row in page {
                if stop.load(Ordering::Relaxed) {
                    interrupted = true;
                    break 'pages;
                }
                let Some(action) = plan(&row, options, &tally) else {
                    continue;
                };
                if options.dry_run {
                    tally.add(match action {
                        Action::Create => &tally.created,
                        Action::Update => &tally.updated,
                    });
                    continue;
                }
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let (service, tally, failures) = (self.clone(), tally.clone(), failures.clone());
                let second_pass = second_pass.clone();
                let force = options.force;
                tasks.spawn(async move {
                    let outcome = service.run(row.id, action, force).await;
                    record(
                        &tally,
                        &failures,
                        Some(&second_pass),
                        row.id,
                        action,
                        outcome,
                    );
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
        }
        while tasks.join_next().await.is_some() {}
        let again = std::mem::take(&mut *second_pass.lock().expect("second pass lock"));
        let retried = again.len() as u64;
        for (user_id, action) in again {
            if stop.load(Ordering::Relaxed) {
                // Stopped before the second pass: these users are reported as
                // interrupted, and a rerun picks them up.
                interrupted = true;
            }
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let (service, tally, failures) = (self.clone(), tally.clone(), failures.clone());
            let force = options.force;
            let give_up = stop.load(Ordering::Relaxed);
            tasks.spawn(async move {
                let outcome = if give_up {
                    Err(SyncError::Interrupted)
                } else {
                    service.run(user_id, action, force).await
                };
                record(&tally, &failures, None, user_id, action, outcome);
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
        let failures = std::mem::take(&mut *failures.lock().expect("failures lock"));
        Ok(BulkReport {
            dry_run: options.dry_run,
            interrupted,
            processed: Tally::get(&tally.processed),
            created: Tally::get(&tally.created),
            relinked: Tally::get(&tally.relinked),
            updated: Tally::get(&tally.updated),
            unchanged: Tally::get(&tally.unchanged),
            skipped: Tally::get(&tally.skipped),
            held: Tally::get(&tally.held),
            failed: Tally::get(&tally.failed),
            retried,
            failures,
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
        }
    }
}

enum Done {
    Created,
    Relinked,
    Updated,
    Unchanged,
}

/// What to do for one user, from the scan alone: unchanged users and users outside
/// the chosen actions are counted here and cost no Stripe call and no write.
fn plan(row: &SyncRow, options: &BulkOptions, tally: &Tally) -> Option<Action> {
    match &row.stripe_id {
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

/// Counts one user's outcome. An unanswered failure goes to `second_pass` when
/// there is one (the first pass), and is counted only when it comes back.
fn record(
    tally: &Tally,
    failures: &std::sync::Mutex<Vec<FailedUser>>,
    second_pass: Option<&SecondPass>,
    user_id: i64,
    action: Action,
    outcome: Result<Done, SyncError>,
) {
    match outcome {
        Ok(Done::Created) => tally.add(&tally.created),
        Ok(Done::Relinked) => tally.add(&tally.relinked),
        Ok(Done::Updated) => tally.add(&tally.updated),
        Ok(Done::Unchanged) => tally.add(&tally.unchanged),
        // Another run (or the page) holds the user right now.
        Err(SyncError::CreateInProgress | SyncError::Busy) => tally.add(&tally.held),
        // Another run got there first.
        Err(SyncError::AlreadyHasCustomer { .. } | SyncError::NoCustomer) => {
            tally.add(&tally.skipped)
        }
        Err(err) if err.is_unanswered() && second_pass.is_some() => {
            if let Some(second_pass) = second_pass {
                second_pass
                    .lock()
                    .expect("second pass lock")
                    .push((user_id, action));
            }
        }
        Err(err) => {
            tally.add(&tally.failed);
            failures.lock().expect("failures lock").push(FailedUser {
                user_id,
                action: action.name(),
                reason: err.operator_reason(),
                request_id: err.request_id().map(str::to_string),
                stripe_answered: err.stripe_answered(),
            });
        }
    }
}
